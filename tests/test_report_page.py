"""The report of a Common Crawl run, read as a user reads it: the funnel against the run's counters, unmatched
captions, image hosts, and the page itself opened in a real headless Chromium (every section rendered, every plot
decoded, no console error)."""

from __future__ import annotations

import collections
import json
from urllib.parse import urlsplit

import pytest

from browser import GLYPHS_EXPRESSION, SECTIONS_EXPRESSION, dump, open_page
from conftest import DATA
from metaclip_spark import cli
from metaclip_spark.report.html import SECTIONS

FILES = ["sample-0000.warc.gz", "sample-0001.warc.gz", "clipped.warc.gz", "warcfile.warc.gz"]
SMALL_METADATA = str(DATA / "metadata" / "small.json")


@pytest.fixture(scope="module")
def warc_run(spark, tmp_path_factory):
    directory = tmp_path_factory.mktemp("page")
    listing = directory / "warc.paths"
    listing.write_text("".join(f"{DATA / 'cc' / name}\n" for name in FILES))
    output = directory / "root"
    code = cli.main(["curate", "--input", str(listing), "--input-format", "warc-manifest", "--crawl", "CC-MAIN-page",
                     "--output", str(output), "--metadata", SMALL_METADATA, "--t", "2", "--progress", "off"])
    assert code == 0
    return {"output": output, "summary": json.loads((output / "summary.json").read_text()),
            "report": json.loads((output / "report" / "summary.json").read_text())}


def test_funnel_follows_the_runs_counters(warc_run):
    extract, report = warc_run["summary"]["extract"], warc_run["report"]
    steps = {s["step"]: s for s in report["funnel"]}
    assert list(steps) == ["records read", "HTML pages", "<img> tags", "image-text pairs", "in a kept language",
                           "after de-duplication", "matched", "curated"]
    assert steps["records read"]["count"] == extract["records_read"] > 0
    assert steps["HTML pages"]["count"] == extract["html_pages"]
    assert steps["<img> tags"]["count"] == extract["img_tags"]
    assert steps["image-text pairs"]["count"] == extract["pairs"] + extract["dropped_language"]
    assert steps["image-text pairs"]["dropped"]["dropped_no_text"] == extract["dropped_no_text"] > 0
    assert steps["in a kept language"]["count"] == extract["pairs"]
    assert steps["in a kept language"]["dropped"] == {"dropped_language": extract["dropped_language"]}
    assert steps["after de-duplication"]["count"] == warc_run["summary"]["pairs_in"] == \
        extract["pairs"] - extract["dropped_duplicate"]
    assert steps["matched"]["count"] == warc_run["summary"]["pairs_matched"]
    assert steps["curated"]["count"] == warc_run["summary"]["pairs_curated"]
    assert steps["matched"]["share_of_previous"] == pytest.approx(
        warc_run["summary"]["pairs_matched"] / warc_run["summary"]["pairs_in"])
    assert report["files"]["files_partial"] == 1  # clipped.warc.gz ends inside a record


def test_unmatched_samples_are_pairs_no_entry_matched(spark, warc_run):
    output, samples = warc_run["output"], warc_run["report"]["samples"]
    pairs = {(r["uuid"], r["text"]) for r in spark.read.parquet(str(output / "pairs")).collect()}
    matched = {(r["uuid"], r["text"]) for r in spark.read.parquet(str(output / "matched")).collect()}
    assert samples["unmatched"], "the sample pool holds unmatched pairs"
    assert len(samples["unmatched"]) <= 12 and samples["pairs_sampled"] == min(400, len(pairs))
    for item in samples["unmatched"]:
        assert (item["uuid"], item["text"]) in pairs - matched and item["entries"] == []
    assert samples["curated"] and samples["dropped"]  # t = 2 on this pool drops some pairs


def test_top_image_hosts_are_counted_from_the_curated_urls(spark, warc_run):
    curated = [urlsplit(r["url"]).hostname for r in spark.read.parquet(str(warc_run["output"] / "curated")).collect()]
    matched = collections.Counter(urlsplit(r["url"]).hostname
                                  for r in spark.read.parquet(str(warc_run["output"] / "matched")).collect())
    expected = sorted(collections.Counter(curated).items(), key=lambda item: (-item[1], item[0]))[:25]
    assert [(h["host"], h["curated"], h["matched"]) for h in warc_run["report"]["hosts"]] == [
        (host, n, matched[host]) for host, n in expected]


def test_the_page_renders_every_section_in_a_browser_with_no_console_error(warc_run):
    visit = open_page(warc_run["output"] / "report" / "index.html", SECTIONS_EXPRESSION)
    assert visit.errors == [], dump(visit)
    page = visit.value
    assert page["title"] == "MetaCLIP curation report"
    sections = {s["id"]: s for s in page["sections"]}
    assert list(sections) == [section_id for section_id, _ in SECTIONS]
    for section_id, heading in SECTIONS:
        section = sections[section_id]
        assert section["heading"] == heading and section["visible"], dump(visit)
        assert section["height"] > 30 and section["text"] > len(heading), (section_id, dump(visit))
    for section_id in ("funnel", "sizes", "files", "matching", "balancing", "counts", "plan", "samples", "hosts",
                       "captions", "stages", "configuration"):
        assert sections[section_id]["tables"] and sections[section_id]["rows"], (section_id, dump(visit))
    images = [image for s in page["sections"] for image in s["images"]]
    assert len(images) == 7
    assert all(i["complete"] and (i["width"], i["height"]) == (750, 480) for i in images), images
    for section_id, plots in (("matching", 1), ("balancing", 3), ("counts", 1), ("plan", 1), ("captions", 1)):
        assert len(sections[section_id]["captions"]) == plots
        assert all(caption.startswith("Look ") for caption in sections[section_id]["captions"])
    assert page["links"] and all(link["target"] for link in page["links"])  # the contents lead to the sections


def test_the_browser_check_sees_console_errors_broken_images_and_exceptions(tmp_path):
    """The check above can fail: a page with a console error, an uncaught exception and an image that does not load
    is reported with all three."""
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><title>broken</title></head><body><section id="a"><h2>A</h2>'
                      '<img alt="missing" src="missing.png"></section><script>console.error("a console error");'
                      'throw new Error("an uncaught exception");</script></body></html>', encoding="utf-8")
    visit = open_page(broken, SECTIONS_EXPRESSION)
    errors = " | ".join(visit.errors)
    assert "a console error" in errors and "an uncaught exception" in errors and "missing.png" in errors, errors
    [image] = visit.value["sections"][0]["images"]
    assert image["width"] == 0


def test_a_worldwide_root_has_a_report_that_says_how_it_reads_languages(spark, tmp_path, capsys):
    """Worldwide curation keeps t and counts per language: the report says how it reads entries and t; its plan
    table is by English's t, each row with every language's derived t; its sample captions say their language and
    are drawn with real glyphs; `plan` without --lang lists its languages, and refuses thresholds without --lang."""
    output = tmp_path / "worldwide"
    code = cli.main(["curate", "--input", str(DATA / "pool" / "worldwide_pairs.jsonl"), "--metadata",
                     str(DATA / "metadata" / "worldwide"), "--t", "3", "--output", str(output), "--progress", "off"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((output / "report" / "summary.json").read_text())
    assert report["samples"]["curated"]
    assert all(item["metadata_lang"] and item["entries"] for item in report["samples"]["curated"])
    assert report["warnings"][0].startswith("a worldwide root: an entry is a (language, entry) pair")
    summary = json.loads((output / "summary.json").read_text())
    [this_run] = [row for row in report["plan"]["rows"] if row["this_run"]]
    assert this_run["t"] == 3 and this_run["t_by_lang"] == {
        code: t for code, t in summary["t_by_lang"].items() if summary["by_lang"][code]["pairs_matched"]}
    assert (output / "report" / "plan.png").exists()
    capsys.readouterr()
    assert cli.main(["plan", "--output", str(output), "--counts-only"]) == 0  # the table of its languages
    table = capsys.readouterr().out
    assert "a worldwide root, t per language" in table and "Plan one language's t with --lang CODE" in table
    listed = [line.split()[0] for line in table.splitlines()[2:] if line.split() and line.split()[0] in summary["by_lang"]]
    assert listed and set(listed) == {c for c, v in summary["by_lang"].items() if v["pairs"]}
    assert cli.main(["plan", "--output", str(output), "--t", "2,3"]) == 2  # thresholds are one language's: --lang
    assert "plan one language with --lang" in capsys.readouterr().err
    # Japanese captions are drawn with glyphs, not the empty boxes of a machine without CJK fonts (make chromium)
    glyphs = open_page(output / "report" / "index.html", GLYPHS_EXPRESSION).value
    assert glyphs and glyphs["chars"] >= 3 and glyphs["distinct"] == glyphs["chars"], glyphs
    visit = open_page(output / "report" / "index.html", SECTIONS_EXPRESSION)
    assert visit.errors == [], dump(visit)
    sections = {s["id"]: s for s in visit.value["sections"]}
    assert list(sections) == [section_id for section_id, _ in SECTIONS]
    assert all(s["height"] > 30 for s in sections.values())
