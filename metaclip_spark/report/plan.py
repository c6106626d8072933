"""`metaclip-spark plan --root ROOT`: what balancing the root's pool with each of a list of thresholds gives.

The counts are the chosen crawls' crawl_counts/ summed (every finished crawl by default: the pool `balance` would
take), read as Parquet without Spark (local roots directly, s3:// and gs:// through fsspec, as `status` reads);
entries over t, tail share and matches after balancing follow from them alone (balancing/thresholds.py). The expected
curated pairs need each matched pair's entry set: one Spark pass over matched/ (its entry_ids column only) sums the
keep probabilities of every requested t at once, in exact fixed point. `--counts-only` skips that pass and starts
no Spark; the table then gives the upper bound min(pairs matched, matches after balancing) instead.

A worldwide root (MetaCLIP 2) counts and balances each language apart, with its own t: its plan is one language's
(`--lang CODE`), from that language's counts and matched pairs, with the t the root's last balance gave it marked;
without --lang, the table of its languages as the last balance left them (`languages_plan`).
"""

from __future__ import annotations

import numpy as np

from metaclip_spark.balancing import draws
from metaclip_spark.balancing import thresholds
from metaclip_spark.balancing.counts import count_vectors
from metaclip_spark.errors import ConfigError, InputError
from metaclip_spark.metadata.lists import ONE_LIST
from metaclip_spark.root.columns import METADATA_LANG
from metaclip_spark.root.layout import OutputRoot

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


def chosen_crawls(root: OutputRoot, crawls: list[str] | None) -> tuple[list[str], dict[str, dict]]:
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


def _parquet_filesystem(root: str, remote):
    """(pyarrow-readable file system, function from a root path to its path inside it), without Spark."""
    import fsspec

    from metaclip_spark.storage import filesystem, is_local, local_path

    if is_local(root):
        return fsspec.filesystem("file"), local_path
    fs, _ = filesystem(root, remote)
    return fs, lambda path: fs._strip_protocol(path.split("://", 1)[1])


def _first_parquet(fs, directory: str) -> str:
    files = sorted(p for p in fs.find(directory)
                   if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith((".", "_")))
    if not files:
        raise InputError(f"{directory} holds no Parquet file")
    return files[0]


def read_counts(root: OutputRoot, crawls: list[str], remote, language: str | None = None) -> np.ndarray:
    """The chosen crawls' per-entry counts summed, as one vector indexed by entry id (bounded by the metadata); of a
    worldwide root, those of `language`'s list, which must then be given."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    fs, inside = _parquet_filesystem(root.root, remote)
    tables, languages = [], set()
    for crawl in crawls:
        path = inside(root.crawl_table("crawl_counts", crawl))
        worldwide = METADATA_LANG in pq.read_schema(_first_parquet(fs, path), filesystem=fs).names
        if not worldwide and language is not None:
            raise ConfigError(f"--lang {language}: {root.root} is not a worldwide root (one metadata list, one t); "
                              "plan it without --lang")
        table = pq.read_table(path, columns=COUNT_COLUMNS + ([METADATA_LANG] if worldwide else []), filesystem=fs)
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


def language_matched(matched, language: str | None):
    """The matched pairs of one language's list (all of them when `language` is None)."""
    from pyspark.sql import functions as F

    return matched if language is None else matched.where(F.col(METADATA_LANG) == language)


def last_balance_t(root: OutputRoot, crawls: list[str], language: str | None) -> int | None:
    """The t the root's last balance used for these crawls (of `language`, on a worldwide root), if any."""
    summary = root.summary() or {}
    if sorted(summary.get("crawls") or []) != sorted(crawls):
        return None
    t = (summary.get("t_by_lang") or {}).get(language) if language is not None else summary.get("t")
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
    root = OutputRoot.records_only(output, config.remote)
    root.check_exists()
    summary = root.summary()
    if not summary or not summary.get("worldwide"):
        return None
    rows = [{"lang": code, **{k: v[k] for k in ("entries", "pairs", "pairs_matched", "pairs_curated", "t",
                                                  "entries_over_t", "tail_proportion")}}
            for code, v in sorted(summary["by_lang"].items(), key=lambda kv: (-kv[1]["pairs"], kv[0])) if v["pairs"]]
    return {"root": root.root, "run_id": summary.get("run_id"), "t_mode": summary.get("t_mode"),
            "english_tail_share": summary.get("english_tail_share"), "languages": rows,
            "languages_without_pairs": sorted(c for c, v in summary["by_lang"].items() if not v["pairs"])}


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
    root = OutputRoot.records_only(output, config.remote)
    chosen, states = chosen_crawls(root, crawls)
    counts = read_counts(root, chosen, config.remote, language)
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
                spark_root = OutputRoot(spark, output)
                matched = language_matched(spark_root.read_crawls("matched", chosen), language)
                sums, certain, seen = expected_sums(matched, counts, ts)
                run.rows = seen
        pairs_matched = seen  # what was summed over
    rows = thresholds.plan_rows(counts, ts, pairs_matched, sums, certain)
    for row in rows:
        row["auto"] = row["t"] == auto_t
        row["this_run"] = row["t"] == this_run_t
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
