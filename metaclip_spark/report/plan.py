"""`metaclip-spark plan --root ROOT`: what balancing the root's pool with each of a list of thresholds gives.

The counts are the chosen crawls' crawl_counts/ summed (every finished crawl by default: the pool `balance` would
take), read as Parquet without Spark (root/layout.py's RootReader, as `status` reads: local roots directly, s3://
and gs:// through fsspec); entries over t, tail share and matches after balancing follow from them alone
(balancing/thresholds.py). The expected curated pairs need each matched pair's entry set: one Spark pass over
matched/ (its entry_ids column only) sums the keep probabilities of every requested t at once, in exact fixed point.
`--counts-only` skips that pass and starts no Spark; the table then gives the upper bound min(pairs matched, matches
after balancing) instead.

A worldwide root (MetaCLIP 2) counts and balances each language apart, with its own t: its plan is one language's
(`--lang CODE`), from that language's counts and matched pairs, with the t the root's last balance gave it marked;
without --lang, the table of its languages as the last balance left them (`languages_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaclip_spark.balancing import draws
from metaclip_spark.balancing import thresholds
from metaclip_spark.balancing.counts import count_vectors
from metaclip_spark.errors import ConfigError, InputError
from metaclip_spark.metadata.lists import ONE_LIST
from metaclip_spark.root.columns import METADATA_LANG
from metaclip_spark.root.layout import RootReader

COUNT_COLUMNS = ["entry_id", "count"]  # crawl_counts/ of a worldwide root are keyed by (metadata_lang, entry_id) too


def parse_thresholds(text: str) -> list[int | str]:
    """`--t 1000,20000,auto`: positive integers and the word auto."""
    from metaclip_spark.config import parse_threshold

    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"--t {text!r} names no threshold: give comma-separated positive integers (or auto)")
    try:
        return [parse_threshold(v) for v in values]
    except ConfigError:
        raise ConfigError(f"--t {text!r}: each threshold must be a positive integer or auto") from None


def chosen_crawls(root: RootReader, crawls: list[str] | None) -> tuple[list[str], dict[str, dict]]:
    """The crawls of the pool (every finished crawl by default) and their states, matched with one metadata list."""
    root.check_exists()
    available = root.crawls()
    chosen = sorted(set(crawls)) if crawls else available
    if not chosen:
        raise InputError(f"{root.root} holds no ingested crawl yet; run `match` or `curate` with --input first")
    missing = [c for c in chosen if c not in available]
    if missing:
        raise ConfigError(f"crawl {missing[0]!r} is not in {root.root} (it holds: {', '.join(available) or 'none'})")
    states = {c: root.crawl_state(c) for c in chosen}
    digests = {s["metadata_digest"] for s in states.values()}
    if len(digests) > 1:
        raise ConfigError(f"the crawls {', '.join(chosen)} were matched with different metadata lists; plan them apart "
                          "with --crawls, or match them again with --rematch")
    return chosen, states


def read_counts(root: RootReader, crawls: list[str], language: str | None = None) -> np.ndarray:
    """The chosen crawls' per-entry counts summed, as one vector indexed by entry id (bounded by the metadata); of a
    worldwide root, those of `language`'s list, which must then be given."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables, languages = [], set()
    for crawl in crawls:
        files = root.table_files("crawl_counts", crawl)
        if not files:
            raise InputError(f"{root.crawl_table('crawl_counts', crawl)} holds no Parquet file")
        worldwide = METADATA_LANG in root.files.schema(files[0]).names
        if not worldwide and language is not None:
            raise ConfigError(f"--lang {language}: {root.root} is not a worldwide root (one metadata list, one t); "
                              "plan it without --lang")
        table = root.files.read_parquet(files, columns=COUNT_COLUMNS + ([METADATA_LANG] if worldwide else []))
        if worldwide:
            languages.update(table.column(METADATA_LANG).unique().to_pylist())
            if language is None:
                continue
            table = table.filter(pc.equal(table.column(METADATA_LANG), language))
        tables.append(table)
    if languages and (language is None or language not in languages):
        listed = ", ".join(sorted(languages))
        if language is None:
            raise ConfigError(f"{root.root} is a worldwide root (counts and t per language): plan one language "
                              f"with --lang CODE, one of: {listed}")
        raise ConfigError(f"--lang {language}: no pair of {root.root} matched a {language!r} list (its languages: "
                          f"{listed})")
    vectors = count_vectors(pa.concat_tables(tables)) if tables else {}
    return vectors.get(language or ONE_LIST, np.zeros(0, np.int64))


def resolve_thresholds(requested: list[int | str] | None, counts: np.ndarray, tail_share: float,
                       configured: int | str) -> tuple[list[int], int]:
    """The thresholds to tabulate (sorted, distinct) and the one `auto` picks: the given ones (auto standing for
    its value), else the 1-2-5 series over the counts, plus the configured t and auto's."""
    auto_t = thresholds.auto_t(counts, tail_share)
    if requested:
        ts = {auto_t if v == "auto" else int(v) for v in requested}
    else:
        ts = set(thresholds.t_series(counts)) | {auto_t} | ({int(configured)} if configured != "auto" else set())
    return sorted(ts), auto_t


@dataclass(frozen=True)
class PlanThresholds:
    """The thresholds of a plan table, chosen before the matched pairs' keep probabilities are summed at each."""

    ts: list[int]  # the table's t column (English's t)
    auto_t: int | None  # the t `auto` picks (English's)
    counts: dict[str, np.ndarray]  # the counts the sums judge: each list with matches
    summed_ts: dict[str, list[int]]  # each row's t of each list in `counts`
    by_lang: list[dict[str, int]] | None = None  # a set's: each row's t of every list (the table names them)


def one_list(counts: np.ndarray, ts: list[int], auto_t: int, code: str = ONE_LIST) -> PlanThresholds:
    """The thresholds of one list's plan (a v1 root's, or one language's of a set: `plan --lang`)."""
    return PlanThresholds(ts, auto_t, {code: counts}, {code: ts})


def table_thresholds(counts_by_list: dict[str, np.ndarray], t: int, tail_share: float,
                     overrides: dict[str, int] | None = None, per_list: bool = True) -> PlanThresholds | None:
    """The thresholds of the report's plan table of a run balanced at t (English's): the 1-2-5 series over English's
    counts, with t and auto's; each row gives every other list the t `curate` derives from English's at that row (or
    its `overrides`). None without an English list (no t to plan from). `per_list`: the table names each row's t of
    every list (a set's; a v1 run's one list is English's, its t the row's)."""
    if draws.ENGLISH not in counts_by_list:
        return None
    ts, auto_t = resolve_thresholds(None, counts_by_list[draws.ENGLISH], tail_share, t)
    by_lang = [thresholds.resolve(counts_by_list, t_en, tail_share, overrides or {})[0] for t_en in ts]
    matched = {code: c for code, c in counts_by_list.items() if c.any()}
    return PlanThresholds(ts, auto_t, matched, {code: [row[code] for row in by_lang] for code in matched},
                          by_lang if per_list else None)


def table(planned: PlanThresholds, pairs_matched: int, sums: list[int] | None, certain: list[int] | None,
          this_run_t: int | None) -> list[dict]:
    """The plan table (thresholds.expected_rows; each row's lists judged at their own t, summed), each row marked
    `auto` and `this_run`, and, for a set, each row's t_by_lang: the one table of `plan` and of the report."""
    rows = thresholds.expected_rows(thresholds.count_rows_by_language(planned.counts, planned.ts, planned.summed_ts),
                                    pairs_matched, sums, certain)
    for row, by_lang in zip(rows, planned.by_lang or ()):
        row["t_by_lang"] = {code: by_lang[code] for code in planned.counts}
    for row in rows:
        row["auto"] = row["t"] == planned.auto_t
        row["this_run"] = row["t"] == this_run_t
    return rows


def report_table(planned: PlanThresholds | None, pairs_matched: int, plan_sums: tuple | None, t: int,
                 tail_share: float) -> dict | None:
    """The report's plan section: the table at `planned`'s thresholds with the sums the report's scan of matched/
    gave (report/scans.py matched_pass), the run's t marked; None without thresholds to plan."""
    if planned is None:
        return None
    sums, certain, _ = plan_sums
    return {"auto_t": planned.auto_t, "tail_share_target": tail_share,
            "rows": table(planned, pairs_matched, sums, certain, t),
            **({"t_is": "English's; every other language's derived from it"} if planned.by_lang is not None else {})}


def language_matched(matched, language: str | None):
    """The matched pairs of one language's list (all of them when `language` is None)."""
    from pyspark.sql import functions as F

    return matched if language is None else matched.where(F.col(METADATA_LANG) == language)


def last_balance_t(root: RootReader, crawls: list[str], language: str | None) -> int | None:
    """The t the root's last balance used for these crawls (of `language`, on a worldwide root), if any."""
    summary = root.summary()
    if summary is None or sorted(summary.crawls) != sorted(crawls):
        return None
    _, t = summary.lists.get(language or ONE_LIST, (0, None))  # a v1 root's one list is English's
    return int(t) if t else None


def expected_sums(matched, counts: np.ndarray, ts: list[int]) -> tuple[list[int], list[int], int]:
    """One pass over the matched pairs (a DataFrame with entry_ids): per t the fixed-point sum of keep
    probabilities and the pairs kept for sure, and the pairs seen. Each Arrow batch gives one row of partial sums;
    Spark adds them as decimals, exactly, so the result is the same on any partitioning."""
    import pyarrow as pa
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from metaclip_spark.matching.spark import flattened_entry_ids
    from metaclip_spark.root.columns import ENTRY_IDS

    spark = matched.sparkSession
    counts_broadcast = spark.sparkContext.broadcast(counts.astype(np.float64))
    n = len(ts)
    names = [f"p{i}" for i in range(n)] + [f"k{i}" for i in range(n)] + ["pairs"]
    schema = T.StructType([T.StructField(name, T.LongType(), False) for name in names])

    def partial_sums(batches):
        vector = counts_broadcast.value
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            sums, certain = thresholds.keep_probability_sums(lengths, flat, vector, ts)
            values = [*sums.tolist(), *certain.tolist(), int(batch.num_rows)]
            yield pa.RecordBatch.from_arrays([pa.array([v], pa.int64()) for v in values], names=names)

    try:
        row = matched.select(ENTRY_IDS).mapInArrow(partial_sums, schema).agg(
            *[F.sum(F.col(c).cast("decimal(38,0)")).alias(c) for c in names]).first()
    finally:
        counts_broadcast.unpersist()
    value = [int(row[c] or 0) for c in names]
    return value[:n], value[n:2 * n], value[-1]


def languages_plan(config, output: str) -> dict | None:
    """`plan` without --lang on a worldwide root that was balanced: its languages as the last balance left them (one
    row per language with pairs: pairs, matched, curated, t, entries over t, tail share; from summary.json, no
    Spark). None for a v1 root, or a root never balanced (then run_plan says which languages it holds)."""
    root = RootReader.at(output, config.remote)
    root.check_exists()
    summary = root.summary()
    if summary is None or not summary.by_lang:  # a v1 summary records no figures by language
        return None
    rows = [{"lang": code, "entries": v.entries, "pairs": v.pairs, "pairs_matched": v.pairs_matched,
             "pairs_curated": v.pairs_curated, "t": v.t, "entries_over_t": v.entries_over_t,
             "tail_proportion": v.tail_proportion}
            for code, v in sorted(summary.by_lang.items(), key=lambda kv: (-kv[1].pairs, kv[0])) if v.pairs]
    return {"root": root.root, "run_id": summary.run_id, "t_mode": summary.t_mode,
            "english_tail_share": summary.english_tail_share, "languages": rows,
            "languages_without_pairs": sorted(c for c, v in summary.by_lang.items() if not v.pairs)}


def format_languages_plan(plan: dict) -> str:
    lines = [f"{plan['root']}: a worldwide root, t per language (last balance {plan['run_id']}: English's t "
             f"{plan['t_mode']}, the others at English's tail share {plan['english_tail_share'] or 0:.3f})",
             f"{'lang':<8}{'entries':>10}{'pairs':>10}{'matched':>10}{'curated':>10}{'t':>8}{'over t':>9}"
             f"{'tail share':>12}"]
    for r in plan["languages"]:
        lines.append(f"{r['lang']:<8}{r['entries']:>10,}{r['pairs']:>10,}{r['pairs_matched']:>10,}"
                     f"{r['pairs_curated']:>10,}{r['t']:>8,}{r['entries_over_t']:>9,}{r['tail_proportion']:>12.1%}")
    if plan["languages_without_pairs"]:
        lines.append(f"{len(plan['languages_without_pairs'])} languages of the metadata set have no pairs: "
                     + ", ".join(plan["languages_without_pairs"]))
    lines.append("Plan one language's t with --lang CODE (its table of thresholds, then worldwide.t_by_lang).")
    return "\n".join(lines)


def run_plan(config, output: str, crawls: list[str] | None, requested: list[int | str] | None, *,
             counts_only: bool = False, master: str | None = None, language: str | None = None) -> dict:
    """The plan of a root (of one language's list on a worldwide root): its table (thresholds.plan_rows) and what
    it was computed from."""
    root = RootReader.at(output, config.remote)
    chosen, states = chosen_crawls(root, crawls)
    counts = read_counts(root, chosen, language)
    if language is None:
        pairs_matched = sum(int(s["pairs_matched"]) for s in states.values())
    else:
        pairs_matched = sum(int((s.get("matched_by_lang") or {}).get(language, 0)) for s in states.values())
    # The configured t: English's is curation.t; another language's is worldwide.t_by_lang's, else derived from
    # English's tail share when balancing (this_run_t shows the one the last balance derived).
    configured = config.curation.t if language in (None, draws.ENGLISH) else \
        config.worldwide.t_by_lang.get(language, "auto")
    this_run_t = last_balance_t(root, chosen, language)
    ts, auto_t = resolve_thresholds(requested, counts, config.curation.tail_share, configured)
    if this_run_t and not requested:
        ts = sorted(set(ts) | {this_run_t})
    sums = certain = None
    if not counts_only:
        from metaclip_spark.progress import stage
        from metaclip_spark.session import owned_session

        with owned_session(config, "metaclip-spark plan", master) as spark:
            with stage(spark, "plan", f"keep probabilities at {len(ts)} thresholds") as run:
                matched = language_matched(RootReader.through_spark(spark, output).read_crawls("matched", chosen),
                                           language)
                sums, certain, seen = expected_sums(matched, counts, ts)
                run.rows = seen
        pairs_matched = seen  # what was summed over
    rows = table(one_list(counts, ts, auto_t), pairs_matched, sums, certain, this_run_t)
    return {
        "root": root.root,
        "crawls": chosen,
        "language": language,
        "this_run_t": this_run_t,
        "pairs_matched": pairs_matched,
        "matches_total": int(counts.sum()),
        "entries_matched": int((counts > 0).sum()),
        "largest_count": int(counts.max(initial=0)),
        "tail_share_target": config.curation.tail_share,
        "auto_t": auto_t,
        "expected_from": "counts only (upper bound)" if counts_only else "matched pairs (sum of keep probabilities)",
        "rows": rows,
        "warnings": thresholds.balance_warnings(counts, auto_t, "auto", config.curation.tail_share, pairs_matched)
        if counts.any() else [],
    }


def format_plan(plan: dict) -> str:
    """The plan as a text table, one row per t."""
    header = f"{'t':>12} {'entries > t':>12} {'tail share':>10} {'matches after':>15} {'expected pairs':>16} " \
             f"{'of matched':>10}"
    of = f", {plan['language']}'s list" if plan.get("language") else ""
    lines = [
        f"root: {plan['root']} (crawls {', '.join(plan['crawls'])}{of}): {plan['pairs_matched']:,} matched pairs, "
        f"{plan['matches_total']:,} matches over {plan['entries_matched']:,} entries, largest count "
        f"{plan['largest_count']:,}",
        f"expected pairs from {plan['expected_from']}; auto (tail share {plan['tail_share_target']:.1%}) picks "
        f"t = {plan['auto_t']:,}",
        header,
    ]
    for row in plan["rows"]:
        if row["expected_pairs"] is not None:
            expected, share = f"{row['expected_pairs']:,.1f}", f"{row['expected_share']:.1%}"
        else:
            expected = f"<= {row['expected_pairs_at_most']:,}"
            share = f"<= {row['expected_pairs_at_most'] / plan['pairs_matched']:.1%}" if plan["pairs_matched"] else "-"
        notes = (" auto" if row["auto"] else "") + (" (this root's t)" if row.get("this_run") else "") + \
            (" (keeps everything)" if row["keeps_everything"] else "")
        lines.append(f"{row['t']:>12,} {row['entries_over_t']:>12,} {row['tail_share']:>10.1%} "
                     f"{row['matches_after']:>15,} {expected:>16} {share:>10}{notes}")
    lines += [f"warning: {w}" for w in plan["warnings"]]
    return "\n".join(lines)
