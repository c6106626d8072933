"""The extract stage on Spark, from a manifest of real crawl excerpts to DIR/pairs and DIR/extract.json."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli
from metaclip_spark.extraction.job import PAIR_COLUMNS, run_extract
from metaclip_spark.extraction.ids import image_uuid
from metaclip_spark.extraction.language import identify_language
from metaclip_spark.extraction.webarchive import ArchiveCounts, HtmlPage, web_pages
from metaclip_spark.extraction.webpage import html_image_pairs, wat_image_pairs

from conftest import DATA

CC = DATA / "cc"
SMALL_METADATA = str(DATA / "metadata" / "small.json")
# Listed in this order: the missing file fails, the copy and the repeated listing only bring duplicates.
LISTING = [
    "warcfile.warc.gz",
    "clipped.warc.gz",
    "missing/nowhere.warc.gz",
    "sample-0000.warc.gz",
    "CC-MAIN-sample2.warc.wat.gz",
    "copies/warcfile-copy.warc.gz",
    "warcfile.warc.gz",
]


def _expected_pairs(name: str, max_page_bytes: int = 5 << 20) -> tuple[list[tuple], ArchiveCounts]:
    """(uuid, url, text, attribute, page URL) computed with the pure functions, no Spark."""
    counts = ArchiveCounts()
    pairs = []
    with open(CC / name, "rb") as stream:
        for page in web_pages(stream, counts, max_page_bytes):
            found = (html_image_pairs(page.html, page.page_url, page.http_charset) if isinstance(page, HtmlPage)
                     else wat_image_pairs(page.html_metadata, page.page_url))
            pairs += [(image_uuid(u), u, t, a, page.page_url) for u, t, a in found.pairs]
    return pairs, counts


def _table(path) -> list[dict]:
    return pq.read_table(str(path)).to_pylist()


@pytest.fixture(scope="module")
def input_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("cc")
    for name in ("warcfile.warc.gz", "clipped.warc.gz", "sample-0000.warc.gz", "CC-MAIN-sample2.warc.wat.gz"):
        os.symlink(CC / name, base / name)
    (base / "copies").mkdir()
    shutil.copy(CC / "warcfile.warc.gz", base / "copies" / "warcfile-copy.warc.gz")
    return base


def _manifest(directory, name: str, lines: list[str]) -> str:
    path = directory / name
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return str(path)


@pytest.fixture(scope="module")
def all_languages_run(spark, input_base, tmp_path_factory):
    """`metaclip-spark extract` over LISTING with every language kept."""
    work = tmp_path_factory.mktemp("extract")
    manifest = _manifest(work, "warc.paths.gz", LISTING)
    conf = work / "all-languages.toml"
    conf.write_text("[extract]\nlanguages = []\nmax_failed_share = 0.5\n", encoding="utf-8")  # 1 of 7 files fails
    output = work / "out"
    code = cli.main(["extract", "--manifest", manifest, "--input-base", str(input_base), "--output", str(output),
                     "--conf", str(conf), "--crawl", "CC-MAIN-2020-34"])
    return code, output, json.loads((output / "extract.json").read_text())


def test_a_missing_file_is_listed_as_failed_and_the_job_finishes(all_languages_run):
    code, _, record = all_languages_run
    assert code == 0
    assert (record["files_listed"], record["files_ok"], record["files_failed"]) == (7, 6, 1)
    assert [f["file"] for f in record["failed_files"]] == ["missing/nowhere.warc.gz"]
    assert "No such file" in record["failed_files"][0]["reason"]


def test_pairs_table_holds_every_pair_once_with_the_spec_columns(all_languages_run):
    _, output, record = all_languages_run
    rows = _table(output / "pairs")
    assert list(rows[0]) == list(PAIR_COLUMNS)
    expected = {}
    for name in ("warcfile.warc.gz", "clipped.warc.gz", "sample-0000.warc.gz"):
        for uuid, url, text, attribute, page_url in _expected_pairs(name)[0]:
            expected.setdefault((uuid, text), (url, page_url))
    assert {(r["uuid"], r["text"]): (r["url"], r["page_url"]) for r in rows} == expected
    assert len(rows) == len(expected) == record["pairs_written"]
    assert all(r["uuid"] == image_uuid(r["url"]) for r in rows)
    assert all(r["lang"] and 0 < r["lang_score"] <= 1 and r["crawl"] == "CC-MAIN-2020-34" for r in rows)
    joe = [r for r in rows if r["url"] == "https://joe.cat/images/me.jpg" and r["text"] == "Avatar"]
    assert [(j["text_source"], j["page_url"], j["source_file"]) for j in joe] == [
        ("alt", "https://joe.cat/", "sample-0000.warc.gz")]


def test_duplicates_are_dropped_across_the_whole_crawl_keeping_one_row_chosen_by_file_path(all_languages_run):
    _, output, record = all_languages_run
    rows = _table(output / "pairs")
    warcfile_pairs = {(u, t) for u, _, t, _, _ in _expected_pairs("warcfile.warc.gz")[0]}
    kept = [r for r in rows if (r["uuid"], r["text"]) in warcfile_pairs]
    assert len(kept) == len(warcfile_pairs)  # the file listed twice and its copy add no row
    # The kept row is the first by file path, then by position in the file (not by listing order), so a crawl
    # extracted over several incremental runs keeps the same rows: "copies/..." sorts before "warcfile...".
    assert {r["source_file"] for r in kept} == {"copies/warcfile-copy.warc.gz"}
    assert record["pairs"] - record["pairs_written"] == record["dropped_duplicate"]
    assert record["dropped_duplicate"] >= 2 * 41  # the copy and the repeated listing, at least


def test_truncated_file_yields_its_pairs_and_a_counted_error(all_languages_run):
    _, output, record = all_languages_run
    assert record["records_truncated"] == 1
    clipped = [r for r in _table(output / "pairs") if r["source_file"] == "clipped.warc.gz"]
    assert len(clipped) == 7
    assert "A Humble Chance The Rapper Leads a Spiritual Awakening at Revention" in {r["text"] for r in clipped}


def test_counters_add_up_over_files(all_languages_run):
    _, _, record = all_languages_run
    singles = {name: _expected_pairs(name)[1] for name in ("warcfile.warc.gz", "clipped.warc.gz",
                                                            "sample-0000.warc.gz", "CC-MAIN-sample2.warc.wat.gz")}
    listed = [n.split("/")[-1].replace("warcfile-copy", "warcfile") for n in LISTING if not n.startswith("missing")]
    assert record["records_read"] == sum(singles[n].records_read for n in listed)
    assert record["html_pages"] == 3 * 16 + 1 + 22 and record["wat_pages"] == 1
    assert record["dropped_language"] == 0  # languages = [] keeps all
    assert record["img_tags"] == 3 * 153 + 7 + 240 + 27


def test_language_filter_and_page_size_cap(spark, config, input_base, tmp_path):
    manifest = _manifest(tmp_path, "paths.txt", ["sample-0000.warc.gz", "warcfile.warc.gz"])
    small_cap = config.updated({"extract": {"languages": ["en"], "max_page_bytes": 30_000, "files_per_task": 2}})
    record = run_extract(spark, small_cap, manifest, str(input_base), str(tmp_path / "out"))
    expected, oversized = set(), 0
    for name in ("sample-0000.warc.gz", "warcfile.warc.gz"):
        pairs, counts = _expected_pairs(name, max_page_bytes=30_000)
        oversized += counts.oversized_pages
        expected |= {(uuid, text) for uuid, _, text, _, _ in pairs if identify_language(text)[0] == "en"}
    rows = _table(tmp_path / "out" / "pairs")
    assert {(r["uuid"], r["text"]) for r in rows} == expected
    assert {r["lang"] for r in rows} == {"en"} and record["dropped_language"] > 0
    assert record["dropped_oversized_page"] == oversized > 0
    assert {r["crawl"] for r in rows} == {None}  # no CC-MAIN-... in these paths, no --crawl


def test_fail_fast_makes_a_missing_file_fatal(input_base, tmp_path, capsys):
    manifest = _manifest(tmp_path, "paths.txt", ["clipped.warc.gz", "missing.warc.gz"])
    code = cli.main(["extract", "--manifest", manifest, "--input-base", str(input_base),
                     "--output", str(tmp_path / "out"), "--fail-fast"])
    assert code == 4
    assert "missing.warc.gz" in capsys.readouterr().err
    assert not (tmp_path / "out" / "pairs").exists() and not (tmp_path / "out" / "extract.json").exists()


def test_curate_goes_from_a_manifest_to_a_curated_set(input_base, tmp_path):
    manifest = _manifest(tmp_path, "warc.paths.gz", ["sample-0000.warc.gz", "clipped.warc.gz"])
    output = tmp_path / "run"
    code = cli.main(["curate", "--input", manifest, "--input-format", "warc-manifest", "--input-base",
                     str(input_base), "--crawl", "CC-MAIN-2024-18", "--metadata", SMALL_METADATA, "--t", "5",
                     "--output", str(output)])
    assert code == 0
    summary = json.loads((output / "summary.json").read_text())
    english = set()
    for name in ("sample-0000.warc.gz", "clipped.warc.gz"):
        english |= {(u, t) for u, _, t, _, _ in _expected_pairs(name)[0] if identify_language(t)[0] == "en"}
    assert summary["pairs_in"] == len(english)  # languages = ["en"] by default, duplicates dropped
    assert summary["extract"]["files_ok"] == 2 and summary["pairs_matched"] > 0
