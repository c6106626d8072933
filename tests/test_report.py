"""The curation report: numbers checked against a pool counted by hand, plots, the self-contained page, the CLI.

The fixture pool (16 pairs) and metadata (6 entries) are small enough to count by hand; with t = 3:
  counts  cat 8, dog 4, red 2, blue 2, tree 2, never 0  -> 18 matches, 12 matched pairs
  p_e     cat 3/8, dog 3/4, the rest 1
so keep probabilities are 3/8 (pairs matching only cat), 3/4 (only dog), 1 - 5/8 * 1/4 = 27/32 (cat and dog),
and 1 (any tail entry). Counts after balancing depend on the seeded draws: the test reads them back from the
curated table in plain Python.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import re

import numpy as np
import pytest
from matplotlib.image import imread

from metaclip_spark import pipeline
from metaclip_spark.balancing import draws
from metaclip_spark.balancing.draws import keep_probabilities, tail_proportion
from metaclip_spark.cli import main
from metaclip_spark.cli import main as cli_main
from metaclip_spark.config import load_config
from metaclip_spark.root.columns import GROUP_COLUMNS
from metaclip_spark.ingestion.ingest import InputSpec, ingest
from metaclip_spark.metadata.lists import Metadata
from metaclip_spark.root.layout import OutputRoot
from metaclip_spark.root.records import RunSummary
from metaclip_spark.report.build import write_report
from metaclip_spark.report.scans import PROBABILITY_BINS
from metaclip_spark.report.sections import top_entries
from metaclip_spark.report.plots import LOOK_FOR

ENTRIES = ["cat", "dog", "red", "blue", "tree", "never"]
T = 3
CRAWL_A, CRAWL_B = "CC-MAIN-2024-10", "CC-MAIN-2024-18"
# text, crawl, lang, text_source
POOL = [
    ("a cat", CRAWL_A, "en", "alt"),                       # cat            3/8
    ("cat on a mat", CRAWL_A, "en", "alt"),                # cat            3/8
    ("red cat", CRAWL_A, "en", "title"),                   # cat red        1
    ("the cat and dog", CRAWL_A, "en", "alt"),             # cat dog        27/32
    ("cat, sleeping", CRAWL_B, "en", "alt"),               # cat            3/8
    ("Cat", CRAWL_B, "en", "alt"),                         # (case differs)
    ("cat", CRAWL_B, "de", "data-image-title"),            # cat            3/8
    ("black cat.", CRAWL_B, "en", "title"),                # cat            3/8
    ("dog", CRAWL_A, "en", "alt"),                         # dog            3/4
    ("a red dog", CRAWL_B, "en", "alt"),                   # dog red        1
    ("blue tree", CRAWL_B, "de", "title"),                 # blue tree      1
    ("nothing here", CRAWL_A, "en", "alt"),                # -
    ("dogs", CRAWL_A, None, "alt"),                        # (not a token)
    ("catalog", CRAWL_B, "en", "data-image-title"),        # (not a token)
    ("cat tree", CRAWL_A, "en", "title"),                  # cat tree       1
    ("dog blue", CRAWL_B, "en", "alt"),                    # dog blue       1
]
EXPECTED_CURATED = 5 * 3 / 8 + 27 / 32 + 3 / 4 + 5 * 1  # 8.46875
PLOTS = ["entry_counts.png", "cumulative_share.png", "keep_probabilities.png", "count_decades.png",
         "entries_per_text.png", "plan.png", "caption_lengths.png"]


def _write_pool(path, rows, with_columns=True):
    with open(path, "w", encoding="utf-8") as f:
        for i, (text, crawl, lang, source) in enumerate(rows):
            record = {"url": f"https://example.com/{crawl}/{i}.jpg", "text": text}
            if with_columns:
                record.update(lang=lang, text_source=source)
            f.write(json.dumps(record) + "\n")
    return str(path)


def _write_metadata(directory):
    metadata = directory / "metadata.json"
    metadata.write_text(json.dumps(ENTRIES), encoding="utf-8")
    return Metadata(str(metadata))


@pytest.fixture(scope="module")
def curated_run(spark, tmp_path_factory):
    """Two crawls in one root (one ingested first, one by `curate`, which then balances both and writes the report)
    over the hand-counted pool with t = 3."""
    directory = tmp_path_factory.mktemp("report")
    metadata = _write_metadata(directory)
    config = load_config("local", overrides={"curation": {"t": T, "seed": 0}})
    output = str(directory / "out")
    for crawl in (CRAWL_A, CRAWL_B):
        rows = [row for row in POOL if row[1] == crawl]
        source = InputSpec(_write_pool(directory / f"{crawl}.jsonl", rows), "jsonl", crawl=crawl)
        if crawl == CRAWL_A:
            ingest(spark, config, OutputRoot(spark, output), source, metadata)
        else:
            pipeline.curate(spark, config, source, metadata, output)
    with open(f"{output}/report/summary.json", encoding="utf-8") as f:
        report = json.load(f)
    curated = spark.read.parquet(f"{output}/curated").select("entry_ids").collect()
    return {"output": output, "report": report, "config": config,
            "curated_entry_ids": [list(row["entry_ids"]) for row in curated]}


def test_sizes_match_the_hand_count(curated_run):
    sizes = curated_run["report"]["sizes"]
    assert sizes["pairs_in"] == 16
    assert sizes["pairs_matched"] == 12
    assert sizes["pairs_curated"] == len(curated_run["curated_entry_ids"])
    assert 5 <= sizes["pairs_curated"] <= 12  # the five pairs holding a tail entry are always kept
    assert sizes["expected_curated"] == pytest.approx(EXPECTED_CURATED, rel=1e-12)
    assert sizes["group_columns"] == list(GROUP_COLUMNS)
    assert sizes["groups_skipped"] == []


def test_breakdowns_by_crawl_language_and_text_source(curated_run):
    by = curated_run["report"]["sizes"]["by"]

    def table(group):
        return {r["value"]: (r["pairs_in"], r["pairs_matched"], r["expected_curated"]) for r in by[group]}

    assert table("crawl") == {
        CRAWL_A: (8, 6, pytest.approx(2 * 3 / 8 + 1 + 27 / 32 + 3 / 4 + 1, rel=1e-12)),
        CRAWL_B: (8, 6, pytest.approx(3 * 3 / 8 + 3, rel=1e-12)),
    }
    assert table("lang") == {
        "en": (13, 10, pytest.approx(4 * 3 / 8 + 1 + 27 / 32 + 3 / 4 + 3, rel=1e-12)),
        "de": (2, 2, pytest.approx(3 / 8 + 1, rel=1e-12)),
        "(none)": (1, 0, 0.0),
    }
    assert table("text_source") == {
        "alt": (10, 7, pytest.approx(3 * 3 / 8 + 27 / 32 + 3 / 4 + 2, rel=1e-12)),
        "title": (4, 4, pytest.approx(3 + 3 / 8, rel=1e-12)),
        "data-image-title": (2, 1, pytest.approx(3 / 8, rel=1e-12)),
    }
    for group in GROUP_COLUMNS:
        assert sum(r["pairs_curated"] for r in by[group]) == curated_run["report"]["sizes"]["pairs_curated"]


def test_matching_numbers(curated_run):
    matching = curated_run["report"]["matching"]
    assert matching["share_matched"] == 12 / 16
    assert matching["matches_total"] == 18
    assert matching["mean_entries_per_matched_text"] == 1.5
    assert matching["entries_per_matched_text"] == [{"entries": 1, "pairs": 6}, {"entries": 2, "pairs": 6}]
    assert matching["entries_matched"] == 5
    assert matching["entries_total"] == 6


def test_balancing_numbers_before_and_after(curated_run):
    numbers = curated_run["report"]["balancing"]
    assert numbers["t"] == T and numbers["t_mode"] == "fixed"
    assert numbers["entries_over_t"] == 2
    assert numbers["tail_proportion_before"] == 6 / 18
    assert numbers["pairs_always_kept"] == 5
    histogram = numbers["keep_probability_histogram"]
    assert histogram["bins"] == PROBABILITY_BINS
    expected_bins = [0] * PROBABILITY_BINS
    expected_bins[18], expected_bins[37], expected_bins[42], expected_bins[49] = 5, 1, 1, 5  # 3/8, 3/4, 27/32, 1
    assert histogram["pairs"] == expected_bins
    assert numbers["top_before"] == [
        {"rank": 1, "entry_id": 0, "entry": "cat", "count": 8},
        {"rank": 2, "entry_id": 1, "entry": "dog", "count": 4},
        {"rank": 3, "entry_id": 2, "entry": "red", "count": 2},
        {"rank": 4, "entry_id": 3, "entry": "blue", "count": 2},
        {"rank": 5, "entry_id": 4, "entry": "tree", "count": 2},
    ]

    # After balancing: counted here from the curated rows themselves.
    after = collections.Counter(e for ids in curated_run["curated_entry_ids"] for e in ids)
    assert after[2] == 2 and after[3] == 2 and after[4] == 2  # the tail is untouched
    expected_top = sorted(after.items(), key=lambda item: (-item[1], item[0]))
    assert [(e["entry_id"], e["entry"], e["count"]) for e in numbers["top_after"]] == [
        (i, ENTRIES[i], c) for i, c in expected_top
    ]
    total_after = sum(after.values())
    assert numbers["matches_after"] == total_after
    assert numbers["tail_proportion_after"] == sum(c for c in after.values() if c < T) / total_after
    assert numbers["entries_over_t_after"] == sum(1 for c in after.values() if c > T)


def test_plots_are_pngs_with_their_axes(curated_run):
    output, plots = curated_run["output"], curated_run["report"]["plots"]
    assert sorted(plots) == sorted(PLOTS)
    assert plots["entry_counts.png"] == {
        "title": "Entry counts before and after balancing", "xlabel": "entry rank (entries sorted by count)",
        "ylabel": "matched texts per entry", "xscale": "log", "yscale": "log", "look_for": LOOK_FOR["entry_counts.png"],
    }
    assert all(plot["look_for"].startswith("Look ") for plot in plots.values())  # a sentence under each plot
    assert plots["cumulative_share.png"]["xlabel"] == "entry rank (entries sorted by count)"
    assert plots["cumulative_share.png"]["ylabel"] == "cumulative share of matches"
    assert plots["keep_probabilities.png"]["xlabel"].startswith("keep probability")
    assert plots["keep_probabilities.png"]["ylabel"] == "matched pairs"
    for name in plots:
        with open(f"{output}/report/{name}", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        image = imread(f"{output}/report/{name}")
        assert image.shape[:2] == (480, 750)
        assert image.std() > 0  # something was drawn


def test_html_page_holds_only_embedded_data(curated_run):
    output = curated_run["output"]
    with open(f"{output}/report/index.html", encoding="utf-8") as f:
        page = f.read()
    # Nothing is loaded from outside the page: no attribute names a URL (a URL may stand as text, e.g. the
    # configuration table's commoncrawl.index_url).
    assert not re.search(r'=\s*"\s*(?:https?|file|ftp):', page, re.I)
    assert not re.search(r"<(?:script|link|iframe|object|embed)\b", page, re.I)
    assert "url(" not in page and "@import" not in page
    assert {link[0] for link in re.findall(r'href="([^"]*)"', page)} == {"#"}  # links to its own sections only
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(PLOTS)
    with open(f"{output}/report/entry_counts.png", "rb") as f:
        entry_counts_png = f.read()
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64encode(entry_counts_png).decode() in {s.removeprefix("data:image/png;base64,") for s in sources}
    assert "8.469" in page or "8.47" in page  # the expected curated size
    assert "<td class=\"text\">cat</td>" in page


def test_report_alone_on_an_output_replaces_the_old_one_and_logs_its_stage(spark, curated_run, caplog):
    caplog.set_level(logging.INFO, logger="metaclip_spark")
    assert main(["report", "--output", curated_run["output"]]) == 0
    with open(f"{curated_run['output']}/report/summary.json", encoding="utf-8") as f:
        again = json.load(f)
    for section in ("sizes", "matching", "balancing", "plots", "funnel", "plan", "samples", "hosts",
                    "caption_lengths", "count_decades", "config", "warnings"):
        assert again[section] == curated_run["report"][section]
    import os

    assert sorted(os.listdir(curated_run["output"] + "/report")) == sorted(
        [*PLOTS, "index.html", "summary.json", "public-summary.json", "public-summary.md", "public-summary-domains.csv"])
    assert not [n for n in os.listdir(curated_run["output"]) if n.startswith(".report")]
    assert any(re.match(r"stage report\s+done in\s+[\d.]+ s, [\d,]+ rows", r.getMessage()) for r in caplog.records)


def test_report_of_an_unfinished_output_is_an_input_error(spark, tmp_path, capsys):
    assert main(["report", "--output", str(tmp_path / "nothing")]) == 3
    assert f"output root {tmp_path / 'nothing'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()  # nothing written, not even a lease
    (tmp_path / "begun").mkdir()
    (tmp_path / "begun" / "_METACLIP_ROOT.json").write_text("{}")  # a root whose first run has not finished
    assert main(["report", "--output", str(tmp_path / "begun")]) == 3
    assert "summary.json" in capsys.readouterr().err


def test_pool_without_language_columns_is_broken_down_by_crawl_only(spark, tmp_path):
    metadata = _write_metadata(tmp_path)
    config = load_config("local", overrides={"curation": {"t": "auto"}})
    output = str(tmp_path / "out")
    source = InputSpec(_write_pool(tmp_path / "pool.jsonl", POOL[:4], with_columns=False), "jsonl")
    pipeline.curate(spark, config, source, metadata, output, report=False)
    report = write_report(spark, output)
    assert report["sizes"]["group_columns"] == ["crawl"]
    assert report["sizes"]["groups_skipped"] == ["lang", "text_source"]
    [row] = report["sizes"]["by"]["crawl"]
    assert (row["value"], row["pairs_in"], row["pairs_matched"]) == ("pool", 4, 4)
    assert report["sizes"]["pairs_matched"] == 4
    with open(f"{output}/report/index.html", encoding="utf-8") as f:
        assert "No breakdown by lang, text_source" in f.read()


def test_keep_probabilities_are_the_curated_tables_values():
    rng = np.random.default_rng(7)
    probs = np.concatenate([[1.0], rng.uniform(0.001, 1.0, 50)])
    lengths = rng.integers(0, 5, 200)
    flat = rng.integers(0, probs.size, int(lengths.sum()))
    uuids = [f"u{i}" for i in range(lengths.size)]
    _, expected = draws.decide(0, uuids, uuids, lengths, flat, probs)
    assert np.array_equal(keep_probabilities(lengths, flat, probs), expected)


def test_tail_proportion_and_top_entries():
    counts = np.array([0, 8, 4, 2, 2, 2, 4])
    assert tail_proportion(counts, 3) == 6 / 22
    assert tail_proportion(np.zeros(3, np.int64), 3) == 0.0
    assert top_entries(counts, 3) == [(1, 8), (2, 4), (6, 4)]


def test_grouped_numbers_of_an_empty_table_are_zero_totals(spark):
    from pyspark.sql import functions as F

    from metaclip_spark.report.scans import grouped_counts  # the empty pool: no row, yet one total

    empty = spark.createDataFrame([], "crawl string, entry_ids array<int>")
    results = grouped_counts(empty, ["crawl"], [], [F.count("*").alias("pairs"), F.sum(F.size("entry_ids")).alias("n")])
    assert results == [{"set": "", "value": None, "pairs": 0, "n": None}]


def test_matched_pass_equals_a_plain_count_on_any_partitioning(spark):
    """The matched pass sums each Arrow batch on its executor: its sets and sums, and the plan's, are those of a plain
    count over the rows (null group values included), on one partition or many, and zero totals on no rows."""
    from types import SimpleNamespace

    from metaclip_spark.matching.spark import ListChoice
    from metaclip_spark.report.plan import expected_sums, one_list
    from metaclip_spark.report.scans import length_bins, matched_pass, probability_bins

    rng = np.random.default_rng(11)
    counts = rng.integers(0, 40, 30)
    rows = [(str(rng.choice(["a", "b"])) if i % 7 else None, ["en", "de", None][i % 3],
             sorted({int(e) for e in rng.integers(0, 30, int(rng.integers(1, 6)))}), "x" * int(rng.integers(0, 120)))
            for i in range(3000)]
    frame = spark.createDataFrame(rows, "crawl string, lang string, entry_ids array<int>, text string")
    probs = draws.entry_probabilities(counts, 9)
    lengths = np.array([len(r[2]) for r in rows])
    keep = keep_probabilities(lengths, np.concatenate([r[2] for r in rows]), probs)
    wanted = collections.defaultdict(lambda: [0, 0.0, 0])
    keys = zip([r[0] for r in rows], [r[1] for r in rows], lengths, probability_bins(keep),
               length_bins([len(r[3]) for r in rows]))
    for (crawl, lang, n, prob_bin, length_bin), p in zip(keys, keep):
        for key in (("crawl", crawl), ("lang", lang), ("entries", int(n)), ("prob_bin", int(prob_bin)),
                    ("length_bin", int(length_bin)), ("", None)):
            wanted[key][0] += 1
            wanted[key][1] += p
            wanted[key][2] += int(p >= 1.0)
    ts = [1, 5, 9, 20]
    choice = ListChoice(SimpleNamespace(list_column=None, lists={"en": []}))  # a v1 pool: one list, no column
    for partitions in (1, 7):
        results, plan = matched_pass(frame.repartition(partitions), {"en": probs}, ["crawl", "lang"], choice, "text",
                                     one_list(counts, ts, None))
        got = {(r["set"], r["value"]): r for r in results}
        assert set(got) == set(wanted)
        for key, (pairs, expected, always) in wanted.items():
            assert (got[key]["pairs"], got[key]["always_kept"]) == (pairs, always)
            assert got[key]["expected"] == pytest.approx(expected, abs=len(rows) * 2.0 ** -30)
        assert plan == expected_sums(frame, counts, ts)
    assert got[("", None)]["expected"] == plan[0][ts.index(9)] / 2 ** 30  # the run's t: the plan's own sum
    empty = spark.createDataFrame([], "crawl string, entry_ids array<int>")
    assert matched_pass(empty, {"en": probs}, ["crawl"], choice, None, one_list(counts, ts, None)) == (
        [{"set": "", "value": None, "pairs": 0, "expected": 0.0, "always_kept": 0}], ([0] * 4, [0] * 4, 0))


def test_spark_jobs_inside_a_stage_carry_its_name(spark, caplog):
    from metaclip_spark.progress import stage

    caplog.set_level(logging.INFO, logger="metaclip_spark")
    with stage(spark, "report", "of a root") as run:
        assert spark.sparkContext.getLocalProperty("spark.job.description") == "metaclip-spark report: of a root"
        run.rows = 1234
    assert spark.sparkContext.getLocalProperty("spark.job.description") is None
    assert re.fullmatch(r"stage report\s+done in\s+[\d.]+ s, 1,234 rows", caplog.records[-1].getMessage())


def test_report_directory_on_a_hadoop_file_system_is_replaced_whole(spark, tmp_path):
    from metaclip_spark.root.tables import write_directory_through_hadoop

    target = f"file://{tmp_path}/report"
    old, new = {"a.txt": b"old", "b.txt": b"old"}, {"a.txt": b"new"}
    write_directory_through_hadoop(spark, target, f"file://{tmp_path}/.report.tmp-1", old)
    write_directory_through_hadoop(spark, target, f"file://{tmp_path}/.report.tmp-2", new)
    assert (tmp_path / "report" / "a.txt").read_bytes() == b"new"
    assert not (tmp_path / "report" / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# --- the funnel, samples, hosts, caption lengths, the plan table and warnings ----------------------------------

def test_funnel_of_a_pool_from_its_pairs_to_the_curated_set(curated_run):
    report = curated_run["report"]
    funnel = [(s["step"], s["count"]) for s in report["funnel"]]
    assert funnel == [("pairs", 16), ("matched", 12), ("curated", report["sizes"]["pairs_curated"])]
    assert report["funnel"][1]["share_of_previous"] == 12 / 16 and report["funnel"][0]["share_of_previous"] is None
    assert report["funnel"][2]["share_of_first"] == report["sizes"]["pairs_curated"] / 16


def _run(**figures) -> RunSummary:
    """A run's summary with the figures given, and the keys every summary holds."""
    every = {"run_id": "r", "crawls": [], "pairs_in": 0, "pairs_matched": 0, "pairs_curated": 0, "t": 1,
             "t_mode": "fixed", "seed": 0, "metadata": "m.json", "metadata_digest": "d", "entries_total": 0,
             "entries_matched": 0, "entries_over_t": 0, "matches_total": 0, "tail_proportion": 0.0,
             "finished_at": "2026-12-01T00:00:00+00:00"}
    return RunSummary.from_json({**every, **figures})


def test_funnel_of_common_crawl_input_says_per_item_where_a_step_grows_and_shares_of_the_pairs():
    from metaclip_spark.report.sections import funnel
    from metaclip_spark.report.html import _funnel

    extract = {"records_read": 300, "html_pages": 100, "img_tags": 1066, "pairs": 900, "dropped_language": 300,
               "dropped_no_text": 200, "dropped_duplicate": 100}
    steps = {s["step"]: s for s in funnel(_run(extract=extract, pairs_in=800), 400, 100)}
    tags, pairs = steps["<img> tags"], steps["image-text pairs"]
    assert (tags["share_of_previous"], tags["per_previous"], tags["per"]) == (None, 10.66, "per page")
    assert (pairs["share_of_previous"], pairs["per_previous"], pairs["per"]) == (None, 1200 / 1066, "per <img> tag")
    assert steps["HTML pages"]["share_of_previous"] == 100 / 300 and steps["matched"]["share_of_previous"] == 0.5
    # shares of the first pairs, not of the records read (which made "<img> tags 1065.68%")
    assert [steps[name]["share_of_first"] for name in steps] == [None, None, None, 1.0, 0.75, 800 / 1200,
                                                                 400 / 1200, 100 / 1200]
    html = "".join(_funnel({"funnel": list(steps.values())}))
    assert "10.66 per page" in html and "of the image-text pairs" in html and "%" in html
    assert not any(float(share) > 100 for share in re.findall(r"([\d.]+)%", html))


def test_count_decades_legend_covers_no_bar():
    from matplotlib.transforms import Bbox

    from metaclip_spark.report.plots import plot_count_decades

    for before, after in (([0.97, 0.03], [0.9, 0.1]), ([0.01, 0.04, 0.15, 0.8], [0.1, 0.2, 0.3, 0.4])):
        figure = plot_count_decades([{"matches_share": x} for x in before], [{"matches_share": x} for x in after])
        renderer = figure.canvas.get_renderer()
        legend = figure.axes[0].get_legend().get_window_extent(renderer)
        bars = [patch.get_window_extent(renderer) for patch in figure.axes[0].patches]
        assert bars and not any(Bbox.intersection(legend, bar) for bar in bars), (before, after)


def test_samples_split_the_matched_pairs_as_balancing_did(spark, curated_run):
    samples = curated_run["report"]["samples"]
    curated = {(r["uuid"], r["text"]) for r in spark.read.parquet(f"{curated_run['output']}/curated").collect()}
    matched = {(r["uuid"], r["text"]): r["entry_ids"] for r in spark.read.parquet(
        f"{curated_run['output']}/matched").collect()}
    assert samples["matched_sampled"] == 12  # the whole pool fits in the sample
    kept = {(s["uuid"], s["text"]) for s in samples["curated"]}
    dropped = {(s["uuid"], s["text"]) for s in samples["dropped"]}
    assert kept == curated and dropped == set(matched) - curated and samples["dropped_in_sample"] == len(dropped)
    for item in samples["curated"] + samples["dropped"]:
        assert item["entries"] == [ENTRIES[i] for i in matched[(item["uuid"], item["text"])]]
        assert 0 < item["keep_prob"] <= 1
    assert samples["unmatched"] is None  # a pool's unmatched rows are not kept in the root
    page = open(f"{curated_run['output']}/report/index.html", encoding="utf-8").read()
    assert "Not available: the root keeps the unmatched pairs of Common Crawl input only" in page


def test_top_hosts_match_a_plain_count_of_lower_cased_hosts(spark):
    """Hosts are counted as the URL writes them, then merged by lower case: the same counts as lower-casing every
    pair's host (mixed case, user info, ports, no host, not a URL), ties by name, matched counts for the top ones."""
    from metaclip_spark.report.scans import _HOST_PATTERN, top_hosts

    curated_urls = ["http://Example.COM/a.jpg", "https://example.com:8080/b", "http://user:pw@EXAMPLE.com/c",
                    "HTTP://img.Example.org?x=1", "http://img.example.org#f", "https://a@b@c.net/x", "file:///tmp/x",
                    "not a url", "//cdn.example.net/x.jpg", "http://b.example/", "http://a.example/", None]
    matched_urls = curated_urls + ["http://EXAMPLE.com/d", "http://other.example/e", "http://A.example/f"]

    def host(url):
        found = re.match(_HOST_PATTERN, url or "")
        return found.group(1).lower() if found and found.group(1) else None

    frame = lambda urls: spark.createDataFrame([(u,) for u in urls], "url string")
    got = top_hosts(frame(curated_urls), frame(matched_urls), "url", n=4)
    curated = collections.Counter(h for h in map(host, curated_urls) if h)
    matched = collections.Counter(h for h in map(host, matched_urls) if h)
    top = sorted(curated.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    assert got == [{"host": h, "curated": n, "matched": matched[h]} for h, n in top]
    assert got[:2] == [{"host": "example.com", "curated": 3, "matched": 4},
                       {"host": "img.example.org", "curated": 2, "matched": 2}]
    assert got[2] == {"host": "a.example", "curated": 1, "matched": 2}  # ties by name: a.example before b.example


def test_image_hosts_and_caption_lengths(curated_run):
    report = curated_run["report"]
    curated = report["sizes"]["pairs_curated"]
    assert report["hosts"] == [{"host": "example.com", "curated": curated, "matched": 12}]
    lengths = report["caption_lengths"]
    by_bin = dict(zip(lengths["bins"], lengths["matched"]))
    # matched texts: a cat (5), cat on a mat (12), red cat (7), the cat and dog (15), cat, sleeping (13), cat (3),
    # black cat. (10), dog (3), a red dog (9), blue tree (9), cat tree (8), dog blue (8)
    assert by_bin == {"0-4": 2, "5-9": 6, "10-19": 4, "20-49": 0, "50-99": 0, "100-199": 0, "200-499": 0,
                      "500-999": 0, "1000+": 0}
    assert sum(lengths["curated"]) == curated


def test_count_decades_in_the_report(curated_run):
    decades = curated_run["report"]["count_decades"]
    assert [(r["low"], r["entries"], r["matches"]) for r in decades["before"]] == [(1, 5, 18)]


def _plan(argv, capsys) -> dict:
    assert cli_main(["plan", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_plan_gives_the_hand_counted_expected_size(spark, curated_run, capsys):
    plan = _plan(["--output", curated_run["output"], "--t", "3,auto,100"], capsys)
    assert plan["auto_t"] == 3 and plan["pairs_matched"] == 12 and plan["matches_total"] == 18
    assert [row["t"] for row in plan["rows"]] == [3, 100]
    at_3, at_100 = plan["rows"]
    assert at_3["auto"] and not at_100["auto"]
    assert plan["this_run_t"] == 3 and at_3["this_run"] and not at_100["this_run"]  # the root's last balance used 3
    assert (at_3["entries_over_t"], at_3["tail_share"], at_3["matches_after"]) == (2, 6 / 18, 3 + 3 + 2 + 2 + 2)
    assert at_3["expected_pairs"] == EXPECTED_CURATED  # dyadic probabilities: the fixed-point sum is exact
    assert at_3["pairs_kept_for_sure"] == 5
    assert (at_100["expected_pairs"], at_100["keeps_everything"], at_100["tail_share"]) == (12, True, 1.0)
    # The report's table is the same computation.
    report_rows = {row["t"]: row for row in curated_run["report"]["plan"]["rows"]}
    assert report_rows[3]["expected_pairs"] == at_3["expected_pairs"] and report_rows[3]["this_run"]
    assert sorted(report_rows) == [1, 2, 3, 5, 10]


def test_plan_of_one_crawl_and_the_default_range(spark, curated_run, capsys):
    plan = _plan(["--output", curated_run["output"], "--crawls", CRAWL_A], capsys)
    assert plan["crawls"] == [CRAWL_A] and plan["pairs_matched"] == 6
    # crawl A alone: cat 4 (a cat, cat on a mat, red cat, the cat and dog, cat tree = 5), dog 2, red 1, tree 1
    assert plan["matches_total"] == 5 + 2 + 1 + 1 and plan["largest_count"] == 5
    assert [row["t"] for row in plan["rows"]] == sorted({1, 2, 5, plan["auto_t"]})  # the 1-2-5 series, and auto


def test_plan_t_range_and_tail_share(spark, curated_run, capsys):
    default = _plan(["--output", curated_run["output"], "--counts-only"], capsys)
    assert _plan(["--output", curated_run["output"], "--counts-only", "--t-range"], capsys)["rows"] == default["rows"]
    assert [row["t"] for row in default["rows"]] == [1, 2, 3, 5, 10]  # 1-2-5 up to the largest count 8, auto's 3
    # counts 2, 2, 2, 4, 8 of 18: a tail share of 50% is first reached by the entries under t = 5 (10 of 18)
    wider = _plan(["--output", curated_run["output"], "--counts-only", "--tail-share", "0.5"], capsys)
    assert wider["auto_t"] == 5 and wider["tail_share_target"] == 0.5


def test_plan_from_the_counts_alone_starts_no_spark(curated_run):
    import subprocess
    import sys

    from conftest import REPO

    script = ("import sys; from metaclip_spark import cli; from pyspark import SparkContext; "
              "code = cli.main(sys.argv[1:]); assert SparkContext._gateway is None, 'a JVM was started'; sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", script, "plan", "--output", curated_run["output"], "--t", "3",
                          "--counts-only", "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    [row] = json.loads(run.stdout)["rows"]
    assert row["expected_pairs"] is None and row["expected_pairs_at_most"] == 12 >= EXPECTED_CURATED
    # The spark-submit twin (run here by Python: it only hands its arguments to the CLI), printing the text table.
    text = subprocess.run([sys.executable, str(REPO / "jobs" / "plan.py"), "--output", curated_run["output"],
                           "--counts-only"], cwd=REPO, capture_output=True, text=True, timeout=120).stdout
    assert re.search(r"^\s+3\s+2\s+33\.3%\s+12\s+<= 12\s+<= 100\.0% auto \(this root's t\)$", text, re.M), text


def test_plan_mistakes_exit_2(curated_run, capsys):
    for argv, message in (
        (["--t", "0"], "each threshold must be a positive integer or auto"),
        (["--t", ","], "names no threshold"),
        (["--crawls", "CC-MAIN-none"], "crawl 'CC-MAIN-none' is not in"),
        (["--lang", "en", "--counts-only"], "is not a worldwide root (one metadata list, one t)"),
    ):
        assert cli_main(["plan", "--output", curated_run["output"], *argv]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli_main(["plan", "--output", curated_run["output"], "--t", "5", "--t-range"])
    assert exited.value.code == 2


def test_warnings_when_auto_misses_its_tail_share_or_balancing_keeps_everything(spark, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="metaclip_spark")
    pool = _write_pool(tmp_path / "pool.jsonl", POOL)
    _write_metadata(tmp_path)
    base = ["curate", "--input", pool, "--metadata", str(tmp_path / "metadata.json"), "--progress", "off"]
    assert cli_main([*base, "--output", str(tmp_path / "auto"), "--t", "auto"]) == 0
    summary = json.loads((tmp_path / "auto" / "summary.json").read_text())
    [warning] = summary["warnings"]  # counts 8, 4, 2, 2, 2: auto picks t = 3, whose tail holds 33% of matches
    assert warning.startswith("t = auto could not reach its tail share of 6.0%: entries under t = 3 hold 33.3%")
    assert f"warning: {warning}" in caplog.messages
    page = (tmp_path / "auto" / "report" / "index.html").read_text(encoding="utf-8")
    assert '<p class="warning"><strong>Warning:</strong> t = auto could not reach its tail share' in page
    assert json.loads((tmp_path / "auto" / "report" / "summary.json").read_text())["warnings"] == [warning]

    assert cli_main([*base, "--output", str(tmp_path / "all"), "--t", "100", "--no-report"]) == 0
    [warning] = json.loads((tmp_path / "all" / "summary.json").read_text())["warnings"]
    assert warning.startswith("balancing keeps everything: no entry's count is over t = 100")


def test_the_report_keeps_the_runs_configuration_and_stage_timings(curated_run):
    report = curated_run["report"]
    assert report["config"]["curation"] == {"t": T, "tail_share": 0.06, "seed": 0}
    assert [s["stage"] for s in report["stages"]] == ["unit", "crawl", "count", "balance", "report"]
    page = open(f"{curated_run['output']}/report/index.html", encoding="utf-8").read()
    assert '<td class="text">curation.t</td><td class="text">3</td>' in page


def test_plan_reads_the_counts_of_a_root_on_s3_without_spark(curated_run, tmp_path, capsys):
    from pathlib import Path

    from servers import s3_server

    local = _plan(["--output", curated_run["output"], "--counts-only"], capsys)
    # A bucket of its own: moto's state is shared by every server in the process, so a bucket name another test
    # uses would hold that test's files too.
    with s3_server(Path(curated_run["output"]), bucket="plan-roots") as endpoint:
        conf = tmp_path / "s3.toml"
        conf.write_text(f'[remote]\ns3_endpoint_url = "{endpoint}"\n', encoding="utf-8")
        remote = _plan(["--output", "s3a://plan-roots", "--counts-only", "--conf", str(conf)], capsys)
    assert {k: v for k, v in remote.items() if k != "root"} == {k: v for k, v in local.items() if k != "root"}


def test_each_section_of_the_page_has_one_builder_in_the_pages_order():
    from metaclip_spark.report.html import SECTIONS as PAGE
    from metaclip_spark.report.sections import SECTIONS

    assert list(SECTIONS) == [section_id for section_id, _ in PAGE]


def test_the_run_summary_is_written_through_its_record_and_an_older_one_still_reads(curated_run, tmp_path, capsys):
    import shutil

    written = json.loads(open(f"{curated_run['output']}/summary.json", encoding="utf-8").read())
    assert RunSummary.from_json(written, exact=True).to_json() == written  # no key around the record
    # The same root with the summary an older version wrote (none of the keys added since): status and plan read it.
    root = tmp_path / "older"
    shutil.copytree(curated_run["output"], root)
    first = ("run_id", "crawls", "pairs_in", "pairs_matched", "pairs_curated", "t", "t_mode", "tail_share", "seed",
             "metadata", "metadata_digest", "entries_total", "entries_matched", "entries_over_t", "matches_total",
             "tail_proportion", "finished_at")
    (root / "summary.json").write_text(json.dumps({k: written[k] for k in first}), encoding="utf-8")
    assert cli_main(["status", "--root", str(root), "--json"]) == 0
    last_run = json.loads(capsys.readouterr().out)["last_run"]
    assert last_run == {**{k: written[k] for k in ("run_id", "finished_at", "crawls", "t", "t_mode", "seed",
                                                   "pairs_in", "pairs_matched", "pairs_curated")},
                        "worldwide": None, "by_lang": None}
    assert cli_main(["status", "--root", str(root)]) == 0
    assert f"last curated run {written['run_id']}" in capsys.readouterr().out
    plan = _plan(["--output", str(root), "--counts-only"], capsys)
    assert [row["t"] for row in plan["rows"] if row["this_run"]] == [T]
