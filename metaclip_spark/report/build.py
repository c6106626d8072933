"""The curation report: the numbers a user checks before training on a curated set.

Reads the latest run of an output root (summary.json, counts/, curated/, and matched/ and pairs/ of the run's crawls;
layout in root/layout.py) and writes ROOT/report/ (summary.json, PNG plots, one self-contained index.html and the
public summary), replacing any previous report as a whole. Everything comes from the root (never the input again).

This module is the orchestration, in this order: report/scans.py reads the root (every Spark scan, each bounded on
the driver), report/plan.py chooses the plan table's thresholds before the scan of matched/ sums at them and makes
the table after it, report/sections.py builds each section of the page from what was read, report/plots.py and
report/html.py draw them.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from pyspark.sql import SparkSession

from metaclip_spark.balancing import draws
from metaclip_spark.errors import InputError
from metaclip_spark.matching.spark import ListChoice
from metaclip_spark.progress import stage
from metaclip_spark.report import plan, scans, sections
from metaclip_spark.root.layout import RootReader
from metaclip_spark.root.records import KIND_EXTRACT, RunSummary
from metaclip_spark.root.tables import join_path, read_table, write_directory_atomically

log = logging.getLogger("metaclip_spark")

REPORT_DIR = "report"


def compute_report(spark: SparkSession, output: str) -> tuple[dict, dict]:
    """The report's numbers (the report summary, without plots) and the count vectors the plots need."""
    root = RootReader.through_spark(spark, output)
    run = _load_run(spark, root)
    # An entry is (list, id): the per-entry vectors lay the run's lists end to end (a v1 run's one list at 0), and
    # each entry is judged against its own list's t; `choice` reads which list a row of the run's tables is of.
    choice = ListChoice(run)
    offsets = scans.list_offsets(run)
    before, counts_table = scans.read_counts(spark, root, run, offsets, choice)
    counts_by_list = scans.list_counts(run, before, offsets)
    t, t_by_entry, probabilities = run_thresholds(run, counts_by_list, offsets)
    # The plan table (expected pairs at each t, the run's t among them) is summed in the same scan of matched/.
    tail_share = sections.tail_share(run)
    planned = plan.table_thresholds(counts_by_list, t, tail_share, run.t_overrides, per_list=bool(choice.keys))

    states = {crawl: root.crawl_state(crawl) or {} for crawl in run.crawls}
    url_column, text_column = scans.pair_columns(states)
    matched = root.read_crawls("matched", run.crawls)  # the pool balanced by this run, with `crawl`
    curated = read_table(spark, root.path("curated"))
    groups = scans.present_group_columns(matched)
    text = text_column if text_column in matched.columns else None
    matched_results, plan_sums = scans.matched_pass(matched, probabilities, groups, choice, text, planned)
    after, curated_results = scans.curated_pass(curated, [g for g in groups if g in curated.columns],
                                                int(run.entries_total), choice, offsets,
                                                text if text in curated.columns else None)
    samples = None
    if text and "uuid" in matched.columns:
        extracted = [c for c, state in states.items() if state.get("kind") == KIND_EXTRACT]
        pairs = root.read_crawls("pairs", extracted) if extracted else None  # pools keep no unmatched rows
        samples = scans.caption_samples(matched, pairs, probabilities, choice, int(run.seed or 0), text)
    names, located = scans.entry_names(counts_table, sections.entries_shown(before, after, samples, offsets, choice),
                                       choice)
    del counts_table
    pairs_matched = int(next(r for r in matched_results if r["set"] == "")["pairs"])
    data = sections.ReportData(
        output=output, run=run, files=scans.files_read(root, run.crawls), groups=groups, text=text,
        matched=matched_results, curated=curated_results,
        pairs_in_by_group=scans.pairs_in_by_group(run, states, groups), before=before, after=after,
        choice=choice, offsets=offsets, t=t, t_by_entry=t_by_entry, names=names, located=located,
        plan=plan.report_table(planned, pairs_matched, plan_sums, t, tail_share), samples=samples,
        hosts=scans.top_hosts(curated, matched, url_column))
    return sections.report_summary(data), {"before": before, "after": after, "t_by_entry": t_by_entry}


def run_thresholds(run: RunSummary, counts_by_list: dict[str, np.ndarray],
                   offsets: dict[str, int]) -> tuple[int, int | np.ndarray, dict[str, np.ndarray]]:
    """The t the run balanced at (English's; 1 for a set without an English list, which has no single t), the t of
    each entry (its list's, position by position; a run of one list keeps its one t, as its plots show it), and the
    entries' keep probabilities {list: p_e} of the lists with matches, each pair taking its own list's."""
    lists = run.lists
    t_by_entry = np.ones(int(run.entries_total), dtype=np.int64)
    for code, start in offsets.items():
        entries, list_t = lists[code]
        t_by_entry[start:start + entries] = list_t
    probabilities = {code: draws.entry_probabilities(counts, lists[code][1])
                     for code, counts in counts_by_list.items() if counts.any()}
    return int(run.t or 1), (t_by_entry if run.list_column else int(run.t)), probabilities


def _load_run(spark: SparkSession, root: RootReader) -> RunSummary:
    """The latest run's summary (ROOT/summary.json), checked to have the tables the report reads."""
    summary = root.summary()
    if summary is None:
        raise InputError(f"{root.root} holds no finished curation run (summary.json); run `curate` first")
    for table in ("counts", "curated"):
        if not root.files.exists(root.path(table)):
            raise InputError(f"{root.root} has no {table}/ table; run `curate` first")
    return summary


def write_report(spark: SparkSession, output: str) -> dict:
    """Compute the report of a finished run in `output` and write DIR/report/; returns the report summary."""
    # Imported here, not at the top: executors unpickle the scans' functions and need no matplotlib.
    from metaclip_spark.report import plots
    from metaclip_spark.report.html import render_html
    from metaclip_spark.report.public_summary import public_summary_files

    report_path = join_path(output, REPORT_DIR)
    with stage(spark, "report", f"numbers and plots of {output}") as run:
        report, vectors = compute_report(spark, output)
        run.rows = report["sizes"]["pairs_matched"] + report["sizes"]["pairs_curated"]
        images = {}
        report["plots"] = {}
        for file_name, figure in plots.report_figures(report, vectors).items():
            axes = figure.axes[0]
            # The labels as drawn, read back from the figure, so a reader (or a test) can check what each plot shows.
            report["plots"][file_name] = {"title": axes.get_title(), "xlabel": axes.get_xlabel(),
                                          "ylabel": axes.get_ylabel(), "xscale": axes.get_xscale(),
                                          "yscale": axes.get_yscale(), "look_for": plots.LOOK_FOR[file_name]}
            images[file_name] = plots.figure_png(figure)
        # This report's own time, up to its writing (the run's other stages are in its summary).
        report["stages"].append({"stage": "report", "runs": 1, "seconds": round(run.elapsed, 1), "rows": run.rows})
        summary_text = json.dumps(report, indent=2, sort_keys=True) + "\n"
        files = {"summary.json": summary_text.encode("utf-8"), **images,
                 "index.html": render_html(report, images).encode("utf-8"),
                 **public_summary_files(spark, output)}  # public-summary.json/.md (report/public_summary.py)
        write_directory_atomically(spark, report_path, files)
    log.info("report: %s/index.html", report_path)
    return report
