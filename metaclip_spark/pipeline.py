"""The curation run over an output root (layout in root/layout.py): ingest new input, count, balance, report.

`curate` = ingest (extract + match new files in committed units, rebuild touched crawls) + count (sum the chosen
crawls' per-entry counts) + balance (seeded draws over the chosen crawls' matched pairs) + report. Each table is
written atomically and summary.json last, so a killed run rerun with the same command ends with the same rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import replace

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from metaclip_spark import __version__
from metaclip_spark.balancing import draws
from metaclip_spark.optout import captures as robots_captures
from metaclip_spark.balancing import thresholds
from metaclip_spark.balancing.counts import pairs_per_list, read_count_vectors
from metaclip_spark.balancing.spark import balance_pool
from metaclip_spark.optout import tables as optout_tables
from metaclip_spark.ingestion import pair_keys
from metaclip_spark.config import Settings
from metaclip_spark.errors import ConfigError, FailedFilesError, InputError
from metaclip_spark.ingestion.ingest import InputSpec, check_input, ingest, input_crawls, optout_pending
from metaclip_spark.matching.spark import ListChoice
from metaclip_spark.metadata.lists import Metadata
from metaclip_spark.progress import stage, stage_timings
from metaclip_spark.root.layout import OutputRoot, now
from metaclip_spark.root.columns import METADATA_LANG, NO_VALUE
from metaclip_spark.root.records import KIND_EXTRACT, RunSummary, sum_counters
from metaclip_spark.root.tables import join_path, read_table, write_json_atomically, write_parquet_atomically

log = logging.getLogger("metaclip_spark")


def pool_crawls(root: OutputRoot, metadata: Metadata, crawls: list[str] | None) -> list[str]:
    """The crawls forming the pool (all finished ones by default), each checked against the metadata."""
    pair_keys.recorded_mode(root)  # a root made before modes were recorded, or mid-rebuild, stops here
    available = root.crawls()
    chosen = sorted(set(crawls)) if crawls else available
    if not chosen:
        raise InputError(f"{root.root} holds no ingested crawl yet; run `curate` or `match` with --input first")
    for crawl in chosen:
        if crawl not in available:
            raise ConfigError(f"crawl {crawl!r} is not in {root.root} (it holds: {', '.join(available) or 'none'})")
        digest = root.crawl_state(crawl)["metadata_digest"]
        if digest != metadata.digest:
            raise ConfigError(f"crawl {crawl} in {root.root} was matched with another metadata list (digest "
                              f"{digest[:12]}, now {metadata.digest[:12]}); pass --rematch with an --input"
                              + metadata.digest_difference(digest))
    return chosen


def check_named_crawls(root: OutputRoot, crawls: list[str], source: InputSpec | None, config: Settings,
                       overwrite: bool = False) -> None:
    """Before any ingest work: every crawl --crawls names is in the root (unless --overwrite empties it) or comes
    with the ingest (the input's crawls, and units committed by a killed run, which the ingest finishes). The input's
    crawls are looked up (a listing without --crawl is read) only when the root lacks a named crawl."""
    held = set() if overwrite else set(root.crawls())
    missing = [c for c in crawls if c not in held]
    if not missing:
        return
    holds = "emptied by --overwrite" if overwrite else f"it holds: {', '.join(sorted(held)) or 'none'}"
    where = f"{root.root} ({holds})"
    if source is None:
        raise ConfigError(f"crawl {missing[0]!r} is not in {where}")
    brought = set(input_crawls(source, config))
    finishing = set() if overwrite else {u["crawl"] for u in root.committed_units()}
    missing = [c for c in missing if c not in brought | finishing]
    if missing:
        raise ConfigError(f"crawl {missing[0]!r} is neither in {where} nor in the input {source.path} "
                          f"(it brings: {', '.join(sorted(brought))})")


def run_count(spark: SparkSession, root: OutputRoot, metadata: Metadata, crawls: list[str],
              into: str | None = None) -> dict[str, np.ndarray]:
    """counts/ (in `into`, a run's staging, else the root) = the chosen crawls' per-entry counts summed (a small
    reduction; worldwide keyed by (metadata_lang, entry)); returns the count vectors, {language: vector} (a v1
    run's one list is English's)."""
    target = join_path(into or root.root, "counts")
    keys = ListChoice(metadata).keys
    with stage(spark, "count", f"entries over crawls {', '.join(crawls)}") as run:
        per_crawl = root.read_crawls("crawl_counts", crawls)
        merged = per_crawl.groupBy(*keys, "entry_id", "entry").agg(F.sum("count").cast("long").alias("count"))
        write_parquet_atomically(merged.select(*keys, "entry_id", "entry", "count"), target)
        counts = read_count_vectors(read_table(spark, target), metadata)
        run.rows = int(sum((v > 0).sum() for v in counts.values()))
    return counts


def run_balance(spark: SparkSession, config: Settings, root: OutputRoot, metadata: Metadata, crawls: list[str],
                counts: dict[str, np.ndarray] | None = None, started: float | None = None,
                ingested: dict | None = None, into: str | None = None) -> dict:
    """curated/ = the chosen crawls' matched pairs kept by their draws, and summary.json, written into `into` (a
    run's staging, switched in by the caller) or, without it, staged and switched in here. Each list has its t
    (thresholds.resolve: English's t, the others derived from its tail share, curation spec section 4; a v1 run's
    one list is English's) and each pair is balanced with its own list's p_e."""
    if into is None:
        staging = root.run_staging()
        summary = run_balance(spark, config, root, metadata, crawls, counts, started, ingested, into=staging)
        root.switch_run()
        return summary
    started = started or time.monotonic()
    if counts is None:
        counts = read_count_vectors(read_table(spark, root.path("counts")), metadata)
    seed = config.curation.seed
    unknown = sorted(set(config.worldwide.t_by_lang) - set(counts))
    if unknown:
        log.warning("worldwide.t_by_lang sets t for %s, which the metadata has no list for: ignored", ", ".join(unknown))
    t_by_lang, p = thresholds.resolve(counts, config.curation.t, config.curation.tail_share,
                                      config.worldwide.t_by_lang)
    states = {crawl: root.crawl_state(crawl) for crawl in crawls}
    text_column = _text_column(states, config)
    pairs_in = sum(s["pairs"] for s in states.values())
    pairs_matched = sum(s["pairs_matched"] for s in states.values())
    shown = ", ".join(f"{code} {t}" for code, t in sorted(t_by_lang.items())) if len(t_by_lang) > 1 \
        else str(next(iter(t_by_lang.values())))
    with stage(spark, "balance", f"t {shown}; seed {seed}, crawls {', '.join(crawls)}") as run:
        matched = root.read_crawls("matched", crawls)
        probabilities = {code: draws.entry_probabilities(counts[code], t) for code, t in t_by_lang.items()}
        write_parquet_atomically(balance_pool(matched, probabilities, seed, text_column, ListChoice(metadata)),
                                 join_path(into, "curated"))
        curated_by_lang = pairs_per_list(read_table(spark, join_path(into, "curated")), metadata)
        run.rows = pairs_matched
    pairs_by_lang, matched_by_lang = _pairs_by_list(states, metadata, pairs_in, pairs_matched)
    by_lang = {}
    for code in metadata.languages:
        vector, t = counts[code], t_by_lang[code]
        by_lang[code] = {
            "entries": len(metadata.lists[code]),
            "pairs": pairs_by_lang.get(code, 0),
            "pairs_matched": matched_by_lang.get(code, 0),
            "pairs_curated": curated_by_lang.get(code, 0),
            "t": t,
            "entries_matched": int((vector > 0).sum()),
            "entries_over_t": int((vector > t).sum()),
            "matches_total": int(vector.sum()),
            "tail_proportion": draws.tail_proportion(vector, t),
            "top_entries": _top_entries(vector, metadata.lists[code]),
        }
    matches_total = sum(v["matches_total"] for v in by_lang.values())
    matches_in_tail = sum(int(counts[c][counts[c] < t_by_lang[c]].sum()) for c in by_lang)
    t_mode = "auto" if config.curation.t == "auto" else "fixed"
    summary = {
        "crawls": crawls,
        "pairs_in": pairs_in,
        "pairs_matched": pairs_matched,
        "pairs_curated": sum(curated_by_lang.values()),  # the expected size (sum of keep_prob) is in report/
        "t": int(t_by_lang.get(draws.ENGLISH, 0)) or None,  # English's (a set without an English list has none)
        "t_mode": t_mode,
        "tail_share": config.curation.tail_share,
        "seed": seed,
        "metadata": metadata.path,
        "metadata_digest": metadata.digest,
        "entries_total": metadata.entries_total,
        "entries_matched": sum(v["entries_matched"] for v in by_lang.values()),
        "entries_over_t": sum(v["entries_over_t"] for v in by_lang.values()),
        "matches_total": matches_total,
        "tail_proportion": matches_in_tail / matches_total if matches_total else 0.0,
        "mean_entries_per_matched_text": matches_total / pairs_matched if pairs_matched else 0.0,
        "warnings": _warnings(config, by_lang, counts, p, named=bool(metadata.list_column)),
    }
    crawl_keys = ()
    if metadata.list_column:  # a set's summary has each language's figures (a v1 summary keeps its keys)
        crawl_keys = ("matched_by_lang",)
        summary.update({
            "worldwide": True,
            "t_by_lang": t_by_lang,
            "t_overrides": dict(config.worldwide.t_by_lang),
            "english_tail_share": p,  # p: every other language's t is where its cumulative share is nearest this
            "metadata_languages": metadata.languages,
            "kana_no_space": metadata.kana,
            "by_lang": by_lang,
            # Pairs matched against nothing: their language has no list in the set, or no language was told.
            "pairs_without_list": {code: n for code, n in sorted(pairs_by_lang.items())
                                   if code not in metadata.lists and code != NO_VALUE},
            "pairs_unknown_lang": pairs_by_lang.get(NO_VALUE, 0),
            "languages_with_pairs": sum(1 for v in by_lang.values() if v["pairs"]),
        })
    summary.update(_run_figures(states, ingested, config, started, *crawl_keys))
    return _finish_summary(spark, summary, states, crawls, t_by_lang, seed, metadata, into)


def _pairs_by_list(states: dict, metadata: Metadata, pairs_in: int, pairs_matched: int) -> tuple[dict, dict]:
    """({list: pairs}, {list: matched pairs}) of the chosen crawls: as ingest recorded them per metadata language
    (worldwide), or, with one list, every pair's."""
    if metadata.list_column is None:
        (one_list,) = metadata.lists
        return {one_list: pairs_in}, {one_list: pairs_matched}
    return (_summed_by(states, lambda s: (s.get("pairs_by") or {}).get(METADATA_LANG)),
            _summed_by(states, lambda s: s.get("matched_by_lang")))


def _run_figures(states: dict, ingested: dict | None, config: Settings, started: float, *crawl_keys: str) -> dict:
    """The summary's parts shared by v1 and worldwide runs: each crawl's figures (with `crawl_keys` of its state),
    extraction counters, the ingest record, stage timings, the configuration and when the run ended."""
    return {
        "by_crawl": {c: {"pairs": s["pairs"], "pairs_matched": s["pairs_matched"], "files_done": s["files_done"],
                         "files_partial": s.get("files_partial", 0), "files_failed": s["files_failed"],
                         "skipped": s.get("skipped"), "optout": s.get("optout"),
                         **{key: s.get(key) for key in crawl_keys}}
                     for c, s in states.items()},
        # pairs set apart because their page opts out of AI training, summed over the crawls (root/tables.py)
        "optout": optout_tables.summed([s.get("optout") for s in states.values()]),
        "extract": _summed_extract(states),  # the ExtractCounters of root/records.py
        **({"ingest": ingested} if ingested else {}),
        "stages": stage_timings(started),  # this run's stages: runs, seconds, rows
        "config": config.record(),
        "version": __version__,
        "finished_at": now(),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def _finish_summary(spark, summary: dict, states: dict, crawls: list[str], t_by_lang: dict[str, int], seed: int,
                    metadata: Metadata, into: str) -> dict:
    summary["dedup"], summary["pairs_already_in_pool"] = pair_keys.run_figures(states)
    for crawl, state in states.items():
        summary["by_crawl"][crawl]["pairs_already_in_pool"] = state.get("pairs_already_in_pool")
    identity = json.dumps([crawls, [states[c].get("units_digest", states[c]["units"]) for c in crawls], t_by_lang,
                           seed, metadata.digest])
    # Every key goes through the one record (root/records.py): a key it does not declare stops the run here.
    record = RunSummary.from_json({**summary, "run_id": ""}, exact=True)
    record = replace(record, run_id=f"{record.finished_at[:19].replace(':', '')}-"
                                    f"{hashlib.sha256(identity.encode()).hexdigest()[:8]}")
    written = record.to_json()
    write_json_atomically(spark, join_path(into, "summary.json"), written)  # runs/<id>.json when switched in
    return written


def _warnings(config: Settings, by_lang: dict, counts: dict[str, np.ndarray], p: float,
              named: bool = True) -> list[str]:
    """balance_warnings of each list that has matched pairs (`named` by its code: a set's lists, not a v1 list):
    English's `t = auto` against its tail share, a derived t against English's tail share p; every list's "nothing
    over t, every pair kept" and "kept every matched pair"."""
    warnings = []
    for code, v in by_lang.items():
        if not v["pairs_matched"]:
            continue
        mode = ("auto" if config.curation.t == "auto" else "fixed") if code == draws.ENGLISH else "fixed"
        if code != draws.ENGLISH and code not in config.worldwide.t_by_lang and counts[code].any() \
                and (achieved := thresholds.auto_misses_tail(counts[code], v["t"], p)) is not None:
            warnings.append(f"{code}: its t = {v['t']:,}, derived from English's tail share {p:.1%}, leaves "
                            f"{achieved:.1%} of its matches under t (its counts are too coarse to come nearer); set "
                            f"it in worldwide.t_by_lang after `metaclip-spark plan --lang {code}`")
        for warning in thresholds.balance_warnings(counts[code], v["t"], mode, config.curation.tail_share,
                                                   v["pairs_matched"], v["pairs_curated"]):
            warnings.append(f"{code}: {warning}" if named else warning)
    return warnings


def _top_entries(counts: np.ndarray, entries: list[str], n: int = 5) -> list[list]:
    """The n most matched entries of a language as [entry, count], most first (ties by entry id)."""
    top = np.argsort(-counts, kind="stable")[:n]
    return [[entries[i], int(counts[i])] for i in top if counts[i] > 0]


def _summed_by(states: dict, part) -> dict[str, int]:
    """{value: n} summed over the crawl states' `part(state)` maps (missing ones count nothing)."""
    total: dict[str, int] = {}
    for state in states.values():
        for key, n in (part(state) or {}).items():
            total[key] = total.get(key, 0) + int(n)
    return total


def _text_column(states: dict, config: Settings) -> str:
    """The text column the crawls were ingested with (recorded in their states; the options for older roots)."""
    found = {(s.get("columns") or {}).get("text", config.input.text_column) for s in states.values()}
    if len(found) > 1:
        raise ConfigError(f"the chosen crawls hold texts in different columns ({', '.join(sorted(found))}); "
                          "balance them apart with --crawls")
    return found.pop()


def _summed_extract(states: dict) -> dict | None:
    extracted = [s["extract"] for s in states.values() if s.get("kind") == KIND_EXTRACT]
    return sum_counters(extracted) if extracted else None


def check_failed_share(config: Settings, ingested: dict,
                       kept: str = "done files are kept and a rerun retries the failed ones") -> None:
    """Exit 4 when more files failed than `extract.max_failed_share` allows: before balancing (curate), after
    writing what was extracted (match, extract). `ingested` holds files_listed, files_failed and failed_files;
    `kept` says what is kept of the run."""
    share = config.extract.max_failed_share
    if ingested["files_listed"] and ingested["files_failed"] / ingested["files_listed"] > share:
        failed = "; ".join(f"{f['file']}: {f['reason']}" for f in ingested["failed_files"][:5])
        raise FailedFilesError(
            f"{ingested['files_failed']} of {ingested['files_listed']} input files failed (more than "
            f"extract.max_failed_share = {share:g}); {kept}. {failed}"
        )


def curate(spark: SparkSession, config: Settings, source: InputSpec | None, metadata: Metadata, output: str, *,
           crawls: list[str] | None = None, overwrite: bool = False, force: bool = False, rematch: bool = False,
           fail_fast: bool = False, report: bool = True, dedup: str | None = None, rebuild_dedup: bool = False,
           robots: list[str] | None = None) -> dict:
    """Ingest `source` (if any) into the root `output`, then count, balance and report over the chosen crawls.
    `dedup`, `rebuild_dedup`: the root's de-duplication mode (ingestion/pair_keys.py), which an ingest settles.
    `robots`: listings of robots.txt captures read into the root first (optout/captures.py); new captures rebuild
    every crawl they judge."""
    started = time.monotonic()
    root = target = OutputRoot(spark, output)
    if crawls:  # a crawl that will not be there fails now, not after the ingest (nor after --overwrite)
        check_named_crawls(root, crawls, source, config, overwrite)
    kept = "done files are kept and a rerun retries the failed ones"
    if overwrite:
        # The new root is built beside the old one (ROOT/.replacement/) and swapped in only once it has committed:
        # a failed, killed or empty replacement leaves the old root as it was.
        if source is None:
            raise ConfigError(f"--overwrite replaces {output} with what --input brings, and there is no --input")
        check_input(spark, config, source)
        root = target.replacement({"input": source.path, "format": source.format, "input_base": source.input_base,
                                   "crawl": source.crawl, "metadata_digest": metadata.digest, "dedup": dedup})
        if note := robots_captures.kept_note(target):
            log.warning("note: %s", note)
        kept = (f"{output} is kept as it was (--overwrite swaps in only a finished run); the replacement's done "
                "files are kept for a rerun of this command, which retries the failed ones")
    for listing in robots or ():
        robots_captures.read_robots(spark, root, listing, config.remote)
    ingested = ingest(spark, config, root, source, metadata, force=force, rematch=rematch, fail_fast=fail_fast,
                      dedup=dedup, rebuild_dedup=rebuild_dedup) \
        if source or dedup or rebuild_dedup or pair_keys.rebuild_pending(root) or optout_pending(root, config) \
        else None
    if ingested:
        check_failed_share(config, ingested, kept)
    chosen = pool_crawls(root, metadata, crawls)
    if overwrite and not sum(root.crawl_state(c)["pairs"] for c in chosen):
        raise InputError(f"--overwrite: the input {source.path} gave no pairs; {output} is kept as it was")
    staging = root.run_staging()  # counts/, curated/ and summary.json switch in together, or not at all
    counts = run_count(spark, root, metadata, chosen, into=staging)
    summary = run_balance(spark, config, root, metadata, chosen, counts, started, ingested, into=staging)
    root.switch_run()
    if overwrite:
        target.replace_with(root)
    if report:
        from metaclip_spark.report.build import write_report

        write_report(spark, output)
    return summary
