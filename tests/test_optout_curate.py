"""Opt-outs applied by `curate`: a pair whose page refuses AI training is never counted nor curated, the root keeps
it and why, the figures reach summary.json and the report, and a new [optout] configuration rebuilds the crawl from
its stored signals without reading a file again. Real pages (tests/optout_archives.py) in a real WARC file."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest

from metaclip_spark import pipeline
from metaclip_spark.ingestion.ingest import InputSpec
from metaclip_spark.metadata.lists import Metadata
from metaclip_spark.optout.signals import SIGNALS_COLUMN
from metaclip_spark.report.build import write_report

from conftest import DATA
from optout_archives import CASES, write_warc

CRAWL = "CC-MAIN-2025-13"
SMALL_METADATA = str(DATA / "metadata" / "small.json")
# Pages the default [optout] refuses (test_optout.py checks why, page by page)
REFUSED = {"https://licence.example/001", "https://georges.example/003", "https://healsdata.example/004",
           "https://andrea.example/006", "https://yjmini.example/007", "https://bardejov.example/008",
           "https://bardejov.example/010", "https://soberana.example/011", "https://headers.example/x-robots",
           "https://headers.example/x-robots-agent", "https://headers.example/tdm",
           "https://headers.example/content-usage", "https://headers.example/late-meta"}
NOINDEX = {"https://nineplus.example/002", "https://taosband.example/005", "https://regen.example/012"}


@pytest.fixture(scope="module")
def listing(tmp_path_factory):
    base = tmp_path_factory.mktemp("cc")
    # named as Common Crawl names its files: the capture window of the records it holds
    path = f"crawl-data/{CRAWL}/segments/1/warc/CC-MAIN-20250301000000-20250301235959-00000.warc.gz"
    (base / path).parent.mkdir(parents=True)
    write_warc(base / path)
    (base / "optout.warc.paths").write_text(path + "\n")
    return base, base / "optout.warc.paths"


def _curate(spark, config, root, listing=None, **optout):
    config = config.updated({"curation": {"t": 3, "seed": 5}, "extract": {"languages": []}, "optout": optout})
    source = InputSpec(str(listing[1]), "warc-manifest", str(listing[0])) if listing else None
    return pipeline.curate(spark, config, source, Metadata(SMALL_METADATA), str(root), report=False)


def _pages(path) -> set[str]:
    return set(pq.read_table(path).column("page_url").to_pylist())


def test_opted_out_pairs_are_never_counted_nor_curated_and_the_root_keeps_why(spark, config, listing, tmp_path):
    root = tmp_path / "root"
    summary = _curate(spark, config, root, listing)
    every = {url for url, *_ in CASES}
    kept = every - REFUSED
    assert _pages(root / "pairs" / f"crawl={CRAWL}") == kept
    assert _pages(root / "matched" / f"crawl={CRAWL}") == kept  # every alt text matches "a", "in", "the"
    assert _pages(root / "curated") <= kept
    # the pairs matched per entry (counts/) are those of the pages kept: "the" once per kept page
    counts = pq.read_table(root / "counts").to_pylist()
    assert {r["entry"]: r["count"] for r in counts}["the"] == len(kept)
    # what was removed, and why
    removed = pq.read_table(root / "optout" / f"crawl={CRAWL}").to_pylist()
    assert {r["page_url"]: r["optout_signal"] for r in removed} == {
        "https://licence.example/001": "tdm-reservation:meta", "https://georges.example/003": "robots:noai",
        "https://healsdata.example/004": "robots:noai", "https://andrea.example/006": "robots:noai",
        "https://yjmini.example/007": "tdm-reservation:meta", "https://bardejov.example/008": "robots:noai",
        "https://bardejov.example/010": "robots:noai", "https://soberana.example/011": "robots:noai",
        "https://headers.example/x-robots": "x-robots-tag:noai",
        "https://headers.example/x-robots-agent": "x-robots-tag@gptbot:noimageai",
        "https://headers.example/tdm": "tdm-reservation:header",
        "https://headers.example/content-usage": "content-usage:train-ai=n",
        "https://headers.example/late-meta": "robots:noimageai"}
    assert all(r[SIGNALS_COLUMN] for r in removed)
    optout = summary["optout"]
    assert optout["pairs_removed"] == len(REFUSED) == summary["by_crawl"][CRAWL]["optout"]["pairs_removed"]
    assert optout["by_kind"] == {"content-usage": 1, "robots-meta": 7, "tdm-reservation": 3, "x-robots-tag": 2}
    assert optout["by_agent"] == {"*": 12, "gptbot": 1}
    assert optout["top_domains"][0] == ["headers.example", 5]
    assert summary["pairs_in"] == len(kept) and summary["extract"]["dropped_duplicate"] == 0
    # the report shows it: a funnel step and its own section
    report = write_report(spark, str(root))
    step = next(s for s in report["funnel"] if s["step"] == "not opted out")
    assert step["count"] == len(kept) and step["dropped"]["optout_robots-meta"] == 7
    assert report["optout"]["by_signal"]["robots:noai"] == 6
    assert report["optout"]["top_domains"] == optout["top_domains"]
    page = (root / "report" / "index.html").read_text()
    assert 'id="optout"' in page and "x-robots-tag@gptbot:noimageai" in page
    # the public summary: what the set was built from, its top 10% of registered domains, the opt-outs honoured
    public = json.loads((root / "report" / "public-summary.json").read_text())
    web = public["web_crawled_data"]
    assert web["source"]["name"] == "Common Crawl" and web["source"]["crawls"] == [CRAWL]
    assert web["collection_period"]["first_capture"] == "2025-03-01T00:00:00Z"
    assert web["collection_period"]["last_capture"] == "2025-03-01T23:59:59Z"
    curated = pq.read_table(root / "curated").column("page_url").to_pylist()
    by_domain = {}
    for url in curated:  # a plain reading: the host's registered domain (all hosts here are under .example)
        by_domain[url.split("/")[2]] = by_domain.get(url.split("/")[2], 0) + 1
    top = sorted(by_domain.items(), key=lambda kv: (-kv[1], kv[0]))[:math.ceil(len(by_domain) / 10)]
    assert web["top_domains"]["domains_total"] == len(by_domain)
    assert [(d["domain"], d["pairs"]) for d in web["top_domains"]["domains"]] == top
    assert web["top_domains"]["domains"][0]["share"] == top[0][1] / len(curated)
    assert (root / "report" / "public-summary-domains.csv").read_text().splitlines()[1].split(",")[1] == top[0][0]
    measures = public["opt_out_measures"]["page_signals"]
    assert measures["applied"] and measures["pairs_removed"] == len(REFUSED)
    assert measures["honoured"]["directives"] == ["noai", "noimageai"]
    text = (root / "report" / "public-summary.md").read_text()
    assert "Collection period: 2025-03-01T00:00:00Z to 2025-03-01T23:59:59Z" in text and f"| 1 | {top[0][0]} |" in text

    # Another configuration: noindex refuses too, TDMRep is not honoured. The next curate, with no input, rebuilds
    # the crawl from the signals its units kept: no file is read again.
    units_before = sorted((str(p), p.read_text()) for p in (root / "units").rglob("*.json"))
    assert units_before
    summary = _curate(spark, config, root, directives=["noai", "noimageai", "noindex"], tdm_reservation=False)
    tdm_only = {"https://licence.example/001", "https://yjmini.example/007", "https://headers.example/tdm"}
    refused = REFUSED - tdm_only | NOINDEX
    assert _pages(root / "matched" / f"crawl={CRAWL}") == every - refused
    assert summary["optout"]["pairs_removed"] == len(refused)
    assert summary["ingest"]["files_processed_now"] == 0
    assert summary["extract"]["records_read"] == len(CASES)  # the counters of the one extraction, not doubled
    assert sorted((str(p), p.read_text()) for p in (root / "units").rglob("*.json")) == units_before  # not redone

    # Opt-outs off: every pair is back, and the crawl state says nothing was removed.
    summary = _curate(spark, config, root, honour_page_signals=False)
    assert _pages(root / "matched" / f"crawl={CRAWL}") == every
    assert summary["optout"]["pairs_removed"] == 0
    assert json.loads((root / "crawls" / f"{CRAWL}.json").read_text())["optout"]["pairs_removed"] == 0


def test_pairs_of_a_root_made_before_signals_were_kept_are_all_kept(spark):
    """A unit's pairs without the signals column (extracted before it existed) showed no opt-out."""
    from metaclip_spark.optout import tables
    from metaclip_spark.config import load_config
    from metaclip_spark.optout.signals import Policy

    policy = Policy.from_settings(load_config().optout)
    old = spark.createDataFrame([("u1", "a photo", "https://x.example/")], "uuid string, text string, page_url string")
    new = spark.createDataFrame([("u2", "a photo", "https://y.example/", ["robots:noai"])],
                                f"uuid string, text string, page_url string, {SIGNALS_COLUMN} array<string>")
    assert tables.kept(old, policy).count() == 1
    both = old.unionByName(new, allowMissingColumns=True)
    assert [r["uuid"] for r in tables.kept(both, policy).collect()] == ["u1"]


def test_the_top_opted_out_domains_are_registered_domains_and_an_older_root_reads_on(spark):
    """The opt-out figures rank registered domains (Public Suffix List), the unit of the public summary: two hosts of
    one domain are one row, a private suffix's subdomain (x.github.io) is a domain of its own. Figures written
    before (`top_hosts`) read as their hosts' domains."""
    from metaclip_spark.config import load_config
    from metaclip_spark.optout import tables
    from metaclip_spark.optout.signals import Policy
    from metaclip_spark.report.sections import optout_section
    from metaclip_spark.root.records import RunSummary

    pages = (["https://www.bbc.co.uk/a", "https://news.BBC.co.uk/b", "http://news.bbc.co.uk:8080/c",
              "https://bbc.co.uk/d"]
             + ["https://alice.github.io/1", "https://alice.github.io/2", "https://alice.github.io/3"]
             + ["https://bob.github.io/1"]
             + ["https://big.example.com/1", "https://img.example.com/2", "https://example.com/3"]
             + ["http://192.168.0.1/x", "not a url"])
    table = spark.createDataFrame([(f"u{i}", url, "robots:noai") for i, url in enumerate(pages)],
                                  "uuid string, page_url string, optout_signal string")
    figures = tables.figures(table, Policy.from_settings(load_config().optout))
    top = [["bbc.co.uk", 4], ["alice.github.io", 3], ["example.com", 3], ["192.168.0.1", 1], ["bob.github.io", 1]]
    assert figures["top_domains"] == top and figures["pairs_removed"] == len(pages)

    # a crawl state written before: its top hosts, summed with a crawl of today as their domains
    old = {"pairs_removed": 3, "by_signal": {"robots:noai": 3}, "by_kind": {"robots-meta": 3}, "by_agent": {"*": 3},
           "top_hosts": [["www.bbc.co.uk", 2], ["img.example.com", 1]]}
    summed = tables.summed([figures, old])
    assert summed["top_domains"][:3] == [["bbc.co.uk", 6], ["example.com", 4], ["alice.github.io", 3]]
    # a summary.json written before: the report shows its hosts' domains
    run = RunSummary(run_id="r", crawls=["c"], pairs_in=1, pairs_matched=1, pairs_curated=1, t=1, t_mode="fixed",
                     seed=0, metadata="m", metadata_digest="d", entries_total=1, entries_matched=1, entries_over_t=0,
                     matches_total=1, tail_proportion=0.0, finished_at="2026-01-01T00:00:00Z", optout=old)
    assert optout_section(run)["top_domains"] == [["bbc.co.uk", 2], ["example.com", 1]]
