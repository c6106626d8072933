"""The curation report: the numbers a user checks before training on a curated set.

Reads the latest run of an output root (summary.json, counts/, curated/, and matched/ of the run's crawls; layout in
project.py) and writes ROOT/report/ (summary.json, PNG plots, one self-contained index.html), replacing any
previous report as a whole.

Every number is a Spark reduction; the driver only receives results bounded by the metadata or by the handful of
crawls / languages / text sources, never anything that grows with the pool:
- matched/: one pass (keep probabilities computed on the executors from a broadcast of the entry probabilities),
  aggregated with grouping sets into sizes by crawl / language / text source, entries per text, a histogram of
  keep probabilities and the expected curated size (sum of keep probabilities over ALL matched pairs);
- curated/: per-entry counts after balancing (explode + groupBy: measured, not derived from a formula) and sizes
  by group;
- pairs in: per crawl from the run's summary; per language / text source (when the pairs carry those columns)
  by a scan of the crawls' pairs (ROOT/pairs for Common Crawl, the pool files read again for a pool of pairs).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import __version__, balancing, pair_keys
from .curation import ENTRY_IDS, GROUP_COLUMNS, flattened_entry_ids, group_value
from .errors import InputError
from .progress import stage
from .project import OutputRoot
from .records import tally_files
from .tables import join_path, path_exists, read_table, write_directory_atomically

log = logging.getLogger("metaclip_spark")

REPORT_DIR = "report"
# Columns a Common Crawl pool carries (the extract stage); a pool without them gets no breakdowns.
TOP_ENTRIES = 30
PROBABILITY_BINS = 50

_ENTRIES = "entries"
_KEEP_PROB = "keep_prob"
_PROB_BIN = "prob_bin"


# --- pure functions (no Spark) ----------------------------------------------------------------------------------

def probability_bins(keep_prob: np.ndarray, bins: int = PROBABILITY_BINS) -> np.ndarray:
    """Histogram bin of each probability: [k/bins, (k+1)/bins), the last bin closed (P = 1 goes in it)."""
    return np.minimum(np.floor(keep_prob * bins), bins - 1).astype(np.int32)


def top_entries(counts: np.ndarray, n: int = TOP_ENTRIES) -> list[tuple[int, int]]:
    """(entry_id, count) of the n largest counts, ties broken by entry id; entries with count 0 left out."""
    nonzero = np.flatnonzero(counts)
    order = np.lexsort((nonzero, -counts[nonzero]))[:n]
    return [(int(nonzero[i]), int(counts[nonzero[i]])) for i in order]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


# --- Spark reductions -------------------------------------------------------------------------------------------

def present_group_columns(df: DataFrame) -> list[str]:
    return [c for c in GROUP_COLUMNS if c in df.columns]


def grouped_counts(df: DataFrame, groups: list[str], extra_sets: list[tuple[str, ...]], aggregations: list) -> list[dict]:
    """One pass over `df`: the aggregations per value of each group column, per extra set, and in total.

    Each result row says which set it belongs to: `set` is the grouped column's name, or "" for the total.
    """
    sets = [(g,) for g in groups] + extra_sets + [()]
    columns = [c for s in sets for c in s]
    if not columns:
        return [{"set": "", "value": None, **df.agg(*aggregations).first().asDict()}]
    flags = [F.grouping(c).alias(f"_grouping_{c}") for c in columns]
    rows = df.groupingSets(sets, *columns).agg(*aggregations, *flags).collect()
    if not rows:  # grouping sets over no rows give no rows at all, not even the total
        return [{"set": "", "value": None, **df.agg(*aggregations).first().asDict()}]
    results = []
    for row in rows:
        grouped = [c for c in columns if row[f"_grouping_{c}"] == 0]
        name = grouped[0] if grouped else ""
        results.append({"set": name, "value": row[name] if name else None, **{k: row[k] for k in row.asDict()
                                                                              if not k.startswith("_grouping_")}})
    return results


def matched_pass(matched: DataFrame, probabilities: np.ndarray, groups: list[str]) -> list[dict]:
    """Over all matched pairs: count, sum of keep probabilities and always-kept pairs, by group, by number of
    entries, by keep-probability bin, and in total (one scan of matched/, keep probabilities on the executors)."""
    spark = matched.sparkSession
    probabilities_broadcast = spark.sparkContext.broadcast(probabilities)
    source = matched.select(*groups, ENTRY_IDS)
    output_schema = T.StructType(
        [source.schema[g] for g in groups]
        + [T.StructField(_ENTRIES, T.IntegerType(), False), T.StructField(_KEEP_PROB, T.DoubleType(), False),
           T.StructField(_PROB_BIN, T.IntegerType(), False)]
    )

    def keep_probability_batches(batches):
        probs = probabilities_broadcast.value
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            keep_prob = balancing.keep_probabilities(lengths, flat, probs)
            yield pa.RecordBatch.from_arrays(
                [batch.column(g) for g in groups]
                + [pa.array(lengths, pa.int32()), pa.array(keep_prob, pa.float64()),
                   pa.array(probability_bins(keep_prob), pa.int32())],
                names=[*groups, _ENTRIES, _KEEP_PROB, _PROB_BIN],
            )

    per_pair = source.mapInArrow(keep_probability_batches, output_schema)
    try:
        return grouped_counts(per_pair, groups, [(_ENTRIES,), (_PROB_BIN,)], [
            F.count("*").alias("pairs"),
            F.sum(_KEEP_PROB).alias("expected"),
            F.sum((F.col(_KEEP_PROB) >= 1.0).cast("long")).alias("always_kept"),
        ])
    finally:
        probabilities_broadcast.unpersist()


def curated_pass(curated: DataFrame, groups: list[str], entries_total: int) -> tuple[np.ndarray, list[dict]]:
    """Over the curated table itself, in one scan: per-entry counts after balancing (explode the kept pairs' entry
    ids, count) and kept pairs by group and in total (each pair's first entry stands for the pair)."""
    exploded = curated.select(*groups, F.posexplode(ENTRY_IDS).alias("position", "entry_id"))
    results = grouped_counts(exploded, groups, [("entry_id",)], [
        F.count("*").alias("matches"),
        F.sum((F.col("position") == 0).cast("long")).alias("pairs"),
    ])
    after = np.zeros(entries_total, dtype=np.int64)
    for r in results:
        if r["set"] == "entry_id":
            after[int(r["value"])] = int(r["matches"])
    return after, [r for r in results if r["set"] != "entry_id"]


def _by_group(results: list[dict], groups: list[str], key: str) -> dict[str, dict[str, float]]:
    return {g: {group_value(r["value"]): r[key] for r in results if r["set"] == g} for g in groups}


def _load_run(spark: SparkSession, root: OutputRoot) -> dict:
    """The latest run's summary (ROOT/summary.json), checked to have the tables the report reads."""
    summary = root.summary()
    if summary is None:
        raise InputError(f"{root.root} holds no finished curation run (summary.json); run `curate` first")
    for table in ("counts", "curated"):
        if not path_exists(spark, root.path(table)):
            raise InputError(f"{root.root} has no {table}/ table; run `curate` first")
    return summary


def _files_read(root: OutputRoot, crawls: list[str]) -> dict:
    """Input files done, read in part (with why) and failed over the run's crawls, from the unit markers."""
    states = OutputRoot.file_states(root.committed_units(crawls))
    return tally_files(sorted(states.values(), key=lambda s: s["file"]))


def _pairs_in_by_group(root: OutputRoot, run: dict, groups: list[str]) -> dict[str, dict[str, int] | None]:
    """Pairs in per value of each group column, from the crawl states (recorded at ingest; the input is never read
    again). None for a column some crawl's pairs do not carry, or a crawl ingested before the states recorded it."""
    result: dict[str, dict[str, int] | None] = {g: None for g in groups}
    if "crawl" in groups and run.get("by_crawl"):
        result["crawl"] = {crawl: int(state["pairs"]) for crawl, state in run["by_crawl"].items()}
    recorded = [(root.crawl_state(crawl) or {}).get("pairs_by") for crawl in run["crawls"]]
    for g in groups:
        if g == "crawl" or any(r is None or g not in r for r in recorded):
            continue
        totals: dict[str, int] = {}
        for by in recorded:
            for value, n in by[g].items():
                totals[value] = totals.get(value, 0) + int(n)
        result[g] = totals
    return result


def compute_report(spark: SparkSession, output: str) -> tuple[dict, dict]:
    """The report's numbers (the report summary, without plots) and the count vectors the plots need."""
    root = OutputRoot(spark, output)
    run = _load_run(spark, root)
    entries_total = int(run["entries_total"])
    t = int(run["t"])
    # One row per matched entry: bounded by the metadata (~500k), like the count vector itself.
    counts_table = read_table(spark, root.path("counts")).select("entry_id", "entry", "count").toArrow()
    before = np.zeros(entries_total, dtype=np.int64)
    before[counts_table.column("entry_id").to_numpy()] = counts_table.column("count").to_numpy()
    probabilities = balancing.entry_probabilities(before, t)

    matched = root.read_crawls("matched", run["crawls"])  # the pool balanced by this run, with `crawl`
    curated = read_table(spark, root.path("curated"))
    groups = present_group_columns(matched)
    matched_results = matched_pass(matched, probabilities, groups)
    after, curated_results = curated_pass(curated, [g for g in groups if g in curated.columns], entries_total)
    pool_by_group = _pairs_in_by_group(root, run, groups)

    total = next(r for r in matched_results if r["set"] == "")
    pairs_matched = int(total["pairs"])
    pairs_curated = int(next(r for r in curated_results if r["set"] == "")["pairs"])
    expected_curated = float(total["expected"] or 0.0)
    pairs_in = int(run["pairs_in"])

    by = {}
    matched_by = _by_group(matched_results, groups, "pairs")
    expected_by = _by_group(matched_results, groups, "expected")
    curated_by = _by_group(curated_results, groups, "pairs")
    for g in groups:
        values = sorted(set(matched_by[g]) | set(curated_by[g]) | set(pool_by_group[g] or {}))
        by[g] = [
            {
                "value": v,
                "pairs_in": int(pool_by_group[g].get(v, 0)) if pool_by_group[g] is not None else None,
                "pairs_matched": int(matched_by[g].get(v, 0)),
                "pairs_curated": int(curated_by[g].get(v, 0)),
                "expected_curated": float(expected_by[g].get(v) or 0.0),
            }
            for v in values
        ]

    entries_distribution = sorted(
        (int(r["value"]), int(r["pairs"])) for r in matched_results if r["set"] == _ENTRIES
    )
    histogram = [0] * PROBABILITY_BINS
    for r in matched_results:
        if r["set"] == _PROB_BIN:
            histogram[int(r["value"])] = int(r["pairs"])

    top_ids = sorted({i for i, _ in top_entries(before)} | {i for i, _ in top_entries(after)})
    id_type = counts_table.schema.field("entry_id").type
    named = counts_table.filter(pc.is_in(counts_table.column("entry_id"), pa.array(top_ids, id_type)))
    names = dict(zip(named.column("entry_id").to_pylist(), named.column("entry").to_pylist()))
    del counts_table
    matches_before = int(before.sum())
    matches_after = int(after.sum())
    def listed(counts: np.ndarray) -> list[dict]:
        return [{"rank": rank, "entry_id": i, "entry": names.get(i, ""), "count": c}
                for rank, (i, c) in enumerate(top_entries(counts), start=1)]

    report = {
        "output": output,
        "version": __version__,
        "run": {k: run.get(k) for k in ("run_id", "crawls", "metadata", "metadata_digest", "seed", "finished_at",
                                        "version")},
        "files": _files_read(root, run["crawls"]),
        "sizes": {
            "pairs_in": pairs_in,
            "pairs_matched": pairs_matched,
            "pairs_curated": pairs_curated,
            "expected_curated": expected_curated,
            "group_columns": groups,
            "groups_skipped": [g for g in GROUP_COLUMNS if g not in groups],
            "by": by,
            **pair_keys.report_sizes(run),  # the mode, and the copies of pool pairs each crawl dropped
        },
        "matching": {
            "share_matched": _ratio(pairs_matched, pairs_in),
            "matches_total": matches_before,
            "mean_entries_per_matched_text": _ratio(matches_before, pairs_matched),
            "entries_per_matched_text": [{"entries": k, "pairs": n} for k, n in entries_distribution],
            "entries_total": entries_total,
            "entries_matched": int((before > 0).sum()),
        },
        "balancing": {
            "t": t,
            "t_mode": run.get("t_mode"),
            "tail_share_target": run.get("tail_share"),
            "seed": run.get("seed"),
            "entries_over_t": int((before > t).sum()),
            "tail_proportion_before": balancing.tail_proportion(before, t),
            "tail_proportion_after": balancing.tail_proportion(after, t),
            "matches_after": matches_after,
            "entries_matched_after": int((after > 0).sum()),
            "entries_over_t_after": int((after > t).sum()),
            "pairs_always_kept": int(total["always_kept"] or 0),
            "keep_probability_histogram": {"bins": PROBABILITY_BINS, "pairs": histogram},
            "top_before": listed(before),
            "top_after": listed(after),
        },
    }
    return report, {"before": before, "after": after}


# --- writing ----------------------------------------------------------------------------------------------------

def write_report(spark: SparkSession, output: str) -> dict:
    """Compute the report of a finished run in `output` and write DIR/report/; returns the report summary.

    Everything comes from the root: its tables, crawl states and summary (never the input again).
    """
    # Imported here, not at the top: executors unpickle this module's functions and need no matplotlib.
    from .report_html import render_html
    from .report_plots import figure_png, plot_cumulative_share, plot_entry_counts, plot_keep_probabilities

    report_path = join_path(output, REPORT_DIR)
    with stage(spark, "report", f"numbers and plots of {output}") as run:
        report, vectors = compute_report(spark, output)
        run.rows = report["sizes"]["pairs_matched"] + report["sizes"]["pairs_curated"]
        before, after, t = vectors["before"], vectors["after"], report["balancing"]["t"]
        figures = {
            "entry_counts.png": plot_entry_counts(before, after, t),
            "cumulative_share.png": plot_cumulative_share(before, after, t),
            "keep_probabilities.png": plot_keep_probabilities(
                report["balancing"]["keep_probability_histogram"]["pairs"]),
        }
        images = {}
        report["plots"] = {}
        for file_name, figure in figures.items():
            axes = figure.axes[0]
            # The labels as drawn, read back from the figure, so a reader (or a test) can check what each plot shows.
            report["plots"][file_name] = {"title": axes.get_title(), "xlabel": axes.get_xlabel(),
                                          "ylabel": axes.get_ylabel(), "xscale": axes.get_xscale(),
                                          "yscale": axes.get_yscale()}
            images[file_name] = figure_png(figure)
        summary_text = json.dumps(report, indent=2, sort_keys=True) + "\n"
        files = {"summary.json": summary_text.encode("utf-8"), **images,
                 "index.html": render_html(report, images).encode("utf-8")}
        write_directory_atomically(spark, report_path, files)
    log.info("report: %s/index.html", report_path)
    return report
