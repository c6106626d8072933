"""The curation run: match, count and balance over one output directory, each stage's table written atomically.

Output layout (DIR): matched/, counts/, curated/ (Parquet), match.json (the match stage's record) and
summary.json, written last: a directory without summary.json is an unfinished run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from pyspark.sql import SparkSession

from . import __version__, balancing
from .curation import KEEP_PROB, balance_pool, count_entries, count_vector, match_pool
from .errors import ConfigError, InputError
from .extraction import extract_if_manifest
from .metadata import load_metadata, metadata_digest
from .pool import read_pool
from .progress import stage
from .report import write_report
from .tables import delete_path, path_exists, read_json, write_json_atomically, write_parquet_atomically

log = logging.getLogger("metaclip_spark")


def _join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


class Metadata:
    """The entry list of a run with its digest and where it came from."""

    def __init__(self, path: str | None):
        self.path = path or "(embedded default)"
        self.entries = load_metadata(path)
        self.digest = metadata_digest(self.entries)


def prepare_output(spark: SparkSession, output: str, overwrite: bool) -> None:
    """Refuse to mix a new run into a finished one unless asked; a finished run is one with summary.json."""
    if path_exists(spark, _join(output, "summary.json")):
        if not overwrite:
            raise ConfigError(f"output {output} already holds a finished run (summary.json); pass --overwrite to replace it")
        delete_path(spark, _join(output, "summary.json"))


def run_match(spark: SparkSession, config: dict, input_path: str, input_format: str, metadata: Metadata,
              output: str) -> dict:
    text_column = config["input"]["text_column"]
    with stage(spark, "match", f"{input_path} against {len(metadata.entries):,} entries") as run:
        pool = read_pool(spark, input_path, input_format, config)
        if pool.isEmpty():
            raise InputError(f"input {input_path} holds no rows")
        pairs_in = pool.count()
        write_parquet_atomically(match_pool(pool, metadata.entries, metadata.digest, text_column),
                                 _join(output, "matched"))
        pairs_matched = spark.read.parquet(_join(output, "matched")).count()
        run.rows = pairs_in
    record = {
        "input": input_path, "input_format": input_format, "pairs_in": pairs_in, "pairs_matched": pairs_matched,
        "metadata": metadata.path, "metadata_digest": metadata.digest, "entries_total": len(metadata.entries),
    }
    write_json_atomically(spark, _join(output, "match.json"), record)
    return record


def _match_record(spark: SparkSession, output: str, metadata: Metadata) -> dict:
    record = read_json(spark, _join(output, "match.json"))
    if record is None or not path_exists(spark, _join(output, "matched")):
        raise InputError(f"{output} has no finished match stage (matched/ and match.json); run `match` first")
    if record["metadata_digest"] != metadata.digest:
        raise ConfigError(
            f"{output}/matched was made with another metadata list ({record['metadata']}, digest "
            f"{record['metadata_digest'][:12]}) than {metadata.path} ({metadata.digest[:12]}); match again"
        )
    return record


def run_count(spark: SparkSession, output: str, metadata: Metadata) -> None:
    _match_record(spark, output, metadata)
    with stage(spark, "count", "per-entry counts over the whole pool") as run:
        matched = spark.read.parquet(_join(output, "matched"))
        write_parquet_atomically(count_entries(matched, metadata.entries), _join(output, "counts"))
        run.rows = spark.read.parquet(_join(output, "counts")).count()


def run_balance(spark: SparkSession, config: dict, output: str, metadata: Metadata, started: float,
                extra: dict | None = None) -> dict:
    record = _match_record(spark, output, metadata)
    if not path_exists(spark, _join(output, "counts")):
        raise InputError(f"{output} has no counts/ table; run `count` first")
    curation = config["curation"]
    seed = curation["seed"]
    text_column = config["input"]["text_column"]
    with stage(spark, "balance", f"seed {seed}") as run:
        counts = count_vector(spark.read.parquet(_join(output, "counts")), len(metadata.entries))
        t = balancing.auto_threshold(counts, curation["tail_share"]) if curation["t"] == "auto" else curation["t"]
        probabilities = balancing.entry_probabilities(counts, t)
        matched = spark.read.parquet(_join(output, "matched"))
        write_parquet_atomically(balance_pool(matched, probabilities, seed, text_column), _join(output, "curated"))
        curated = spark.read.parquet(_join(output, "curated"))
        totals = curated.agg({"*": "count", KEEP_PROB: "sum"}).first()
        run.rows = record["pairs_matched"]
    matches_total = int(counts.sum())
    summary = {
        **record,
        **(extra or {}),
        "pairs_curated": int(totals[0]),
        "expected_curated": float(totals[1] or 0.0),
        "t": int(t),
        "t_mode": "auto" if curation["t"] == "auto" else "fixed",
        "tail_share": curation["tail_share"],
        "seed": seed,
        "entries_matched": int((counts > 0).sum()),
        "entries_over_t": int((counts > t).sum()),
        "matches_total": matches_total,
        "tail_proportion": float(counts[counts < t].sum() / matches_total) if matches_total else 0.0,
        "mean_entries_per_matched_text": matches_total / record["pairs_matched"] if record["pairs_matched"] else 0.0,
        "version": __version__,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    write_json_atomically(spark, _join(output, "summary.json"), summary)
    return summary


def curate(spark: SparkSession, config: dict, input_path: str, input_format: str, metadata: Metadata,
           output: str, overwrite: bool = False, input_base: str | None = None) -> dict:
    """All stages, end to end; returns the summary (also written to DIR/summary.json)."""
    started = time.monotonic()
    prepare_output(spark, output, overwrite)
    # A Common Crawl manifest is first extracted into DIR/pairs, which is then the pool (see extraction.py).
    input_path, input_format, extracted = extract_if_manifest(spark, config, input_path, input_format, output,
                                                              input_base)
    run_match(spark, config, input_path, input_format, metadata, output)
    run_count(spark, output, metadata)
    summary = run_balance(spark, config, output, metadata, started, {"extract": extracted} if extracted else None)
    write_report(spark, output, config)
    return summary

