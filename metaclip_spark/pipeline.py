"""The curation run over an output root (layout in project.py): ingest new input, count, balance, report.

`curate` = ingest (extract + match new files in committed units, rebuild touched crawls) + count (sum the chosen
crawls' per-entry counts) + balance (seeded draws over the chosen crawls' matched pairs) + report. Each table is
written atomically and summary.json last, so a killed run rerun with the same command ends with the same rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from . import __version__, balancing
from .config import Settings
from .curation import balance_pool, count_vector
from .errors import ConfigError, FailedFilesError, InputError
from .ingest import InputSpec, check_input, ingest, input_crawls
from .metadata import Metadata
from .progress import stage, stage_timings
from .project import OutputRoot, now
from .records import KIND_EXTRACT, sum_counters
from .tables import join_path, read_table, write_json_atomically, write_parquet_atomically
from .thresholds import balance_warnings

log = logging.getLogger("metaclip_spark")


def pool_crawls(root: OutputRoot, metadata: Metadata, crawls: list[str] | None) -> list[str]:
    """The crawls forming the pool (all finished ones by default), each checked against the metadata."""
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
                              f"{digest[:12]}, now {metadata.digest[:12]}); pass --rematch with an --input")
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
              into: str | None = None) -> np.ndarray:
    """counts/ (in `into`, a run's staging, else the root) = the chosen crawls' per-entry counts summed (a small
    reduction); returns the count vector."""
    target = join_path(into or root.root, "counts")
    with stage(spark, "count", f"entries over crawls {', '.join(crawls)}") as run:
        per_crawl = root.read_crawls("crawl_counts", crawls)
        merged = per_crawl.groupBy("entry_id", "entry").agg(F.sum("count").cast("long").alias("count"))
        write_parquet_atomically(merged.select("entry_id", "entry", "count"), target)
        vector = count_vector(read_table(spark, target), len(metadata.entries))
        run.rows = int((vector > 0).sum())
    return vector


def _threshold(config: Settings, counts: np.ndarray) -> int:
    curation = config.curation
    return balancing.auto_threshold(counts, curation.tail_share) if curation.t == "auto" else curation.t


def run_balance(spark: SparkSession, config: Settings, root: OutputRoot, metadata: Metadata, crawls: list[str],
                counts: np.ndarray | None = None, started: float | None = None, ingested: dict | None = None,
                into: str | None = None) -> dict:
    """curated/ = the chosen crawls' matched pairs kept by their draws, and summary.json, written into `into` (a
    run's staging, switched in by the caller) or, without it, staged and switched in here."""
    if into is None:
        staging = root.run_staging()
        summary = run_balance(spark, config, root, metadata, crawls, counts, started, ingested, into=staging)
        root.switch_run()
        return summary
    started = started or time.monotonic()
    if counts is None:
        counts = count_vector(read_table(spark, root.path("counts")), len(metadata.entries))
    seed = config.curation.seed
    t = _threshold(config, counts)
    states = {crawl: root.crawl_state(crawl) for crawl in crawls}
    text_column = _text_column(states, config)
    pairs_matched = sum(s["pairs_matched"] for s in states.values())
    with stage(spark, "balance", f"t {t}, seed {seed}, crawls {', '.join(crawls)}") as run:
        matched = root.read_crawls("matched", crawls)
        curated = balance_pool(matched, balancing.entry_probabilities(counts, t), seed, text_column)
        write_parquet_atomically(curated, join_path(into, "curated"))
        pairs_curated = read_table(spark, join_path(into, "curated")).count()
        run.rows = pairs_matched
    matches_total = int(counts.sum())
    summary = {
        "crawls": crawls,
        "pairs_in": sum(s["pairs"] for s in states.values()),
        "pairs_matched": pairs_matched,
        "pairs_curated": pairs_curated,  # the expected size (sum of keep_prob over matched pairs) is in report/
        "t": int(t),
        "t_mode": "auto" if config.curation.t == "auto" else "fixed",
        "tail_share": config.curation.tail_share,
        "seed": seed,
        "metadata": metadata.path,
        "metadata_digest": metadata.digest,
        "entries_total": len(metadata.entries),
        "entries_matched": int((counts > 0).sum()),
        "entries_over_t": int((counts > t).sum()),
        "matches_total": matches_total,
        "tail_proportion": balancing.tail_proportion(counts, t),
        "mean_entries_per_matched_text": matches_total / pairs_matched if pairs_matched else 0.0,
        "by_crawl": {c: {"pairs": s["pairs"], "pairs_matched": s["pairs_matched"], "files_done": s["files_done"],
                         "files_partial": s.get("files_partial", 0), "files_failed": s["files_failed"],
                         "skipped": s.get("skipped")} for c, s in states.items()},
        "extract": _summed_extract(states),  # the ExtractCounters of records.py
        **({"ingest": ingested} if ingested else {}),
        "warnings": balance_warnings(counts, t, "auto" if config.curation.t == "auto" else "fixed",
                                     config.curation.tail_share, pairs_matched, pairs_curated),
        "stages": stage_timings(started),  # this run's stages: runs, seconds, rows
        "config": config.record(),
        "version": __version__,
        "finished_at": now(),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    identity = json.dumps([crawls, [states[c].get("units_digest", states[c]["units"]) for c in crawls], t, seed,
                           metadata.digest])
    summary["run_id"] = f"{summary['finished_at'][:19].replace(':', '')}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
    write_json_atomically(spark, join_path(into, "summary.json"), summary)  # runs/<id>.json when switched in
    return summary


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
           fail_fast: bool = False, report: bool = True) -> dict:
    """Ingest `source` (if any) into the root `output`, then count, balance and report over the chosen crawls."""
    started = time.monotonic()
    root = OutputRoot(spark, output)
    if crawls:  # a crawl that will not be there fails now, not after the ingest (nor after --overwrite)
        check_named_crawls(root, crawls, source, config, overwrite)
    if overwrite:
        # Nothing is deleted before the input is known to be readable (metadata and configuration were checked
        # before Spark started), and nothing but an output root is ever deleted.
        if source is not None:
            check_input(spark, config, source)
        root.clear()
    ingested = ingest(spark, config, root, source, metadata, force=force, rematch=rematch, fail_fast=fail_fast) \
        if source else None
    if ingested:
        check_failed_share(config, ingested)
    chosen = pool_crawls(root, metadata, crawls)
    staging = root.run_staging()  # counts/, curated/ and summary.json switch in together, or not at all
    counts = run_count(spark, root, metadata, chosen, into=staging)
    summary = run_balance(spark, config, root, metadata, chosen, counts, started, ingested, into=staging)
    root.switch_run()
    if report:
        from .report import write_report

        write_report(spark, output)
    return summary
