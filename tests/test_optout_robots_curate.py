"""`curate --robots`: robots.txt captures (real files in a real WARC file, read over HTTP from a server on 127.0.0.1
and from a directory) judge every crawl of the root, past and future, by the newest capture of each host; a pair
refused is neither counted nor curated, the root keeps why; new captures and options re-judge the crawl.

Two curates share one root (module fixture): the first reads a crawl and a robots listing, the second (the command
line's `curate --robots`) only newer captures, with apply_star_group = false and a blocked domain."""

from __future__ import annotations

import gzip
import json
import logging
import shutil

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli, pipeline
from metaclip_spark.ingestion.ingest import InputSpec
from metaclip_spark.metadata.lists import Metadata
from metaclip_spark.optout.captures import hosts as host_table, read_robots
from metaclip_spark.optout.signals import Policy
from metaclip_spark.optout.tables import SiteJudge
from metaclip_spark.report.build import write_report
from metaclip_spark.root.layout import OutputRoot
from metaclip_spark.root.tables import read_table

from conftest import DATA
from robots_archives import ROBOTS, write_captures, write_pages
from servers import ArchiveServer, gcs_server, s3_server

CRAWL = "CC-MAIN-2025-13"
SMALL_METADATA = str(DATA / "metadata" / "small.json")
KAPANLAGI = "https://www.kapanlagi.example/news/1"  # 002.txt: CCBot's group disallows /
BLOG = "https://blog.byeong.example/blog/post"  # 027.txt: the AI crawlers' group disallows /blog/
PAPERS = "https://blog.byeong.example/papers/x"
CLOSED = "https://closed.example/a"  # 024.txt: only `User-agent: *` / Disallow: /
GONE = "https://gone.example/a"  # 404
DOWN = "https://down.example/a"  # 503
CHANGED = "https://changed.example/a"  # 018.txt (CCBot disallowed) in January, 029.txt (all allowed) in February
SHOP = "https://shop.example/p"  # its image on cdn.images.example, whose 018.txt disallows CCBot
NOCAPTURE = "https://nocapture.example/a"
BLOCKED = "https://news.blocked.co.uk/a"
PAGES = [(KAPANLAGI, "/img/1.jpg"), (BLOG, "/img/2.jpg"), (PAPERS, "/img/3.jpg"), (CLOSED, "/img/4.jpg"),
         (GONE, "/img/5.jpg"), (DOWN, "/img/6.jpg"), (CHANGED, "/img/7.jpg"),
         (SHOP, "https://cdn.images.example/img/8.jpg"), (NOCAPTURE, "/img/9.jpg"), (BLOCKED, "/img/10.jpg")]
EVERY = {url for url, _ in PAGES}


def _pages(path) -> set[str]:
    return set(pq.read_table(path).column("page_url").to_pylist())


def _removed(root) -> dict:
    return {r["page_url"]: (r["optout_signal"], r["robots_host"], r["robots_fetched"])
            for r in pq.read_table(root / "optout" / f"crawl={CRAWL}").to_pylist()}


@pytest.fixture(scope="module")
def curated(spark, config, tmp_path_factory):
    base = tmp_path_factory.mktemp("cc")
    segment = base / "crawl-data" / CRAWL / "segments" / "1"
    (segment / "warc").mkdir(parents=True)
    (segment / "robotstxt").mkdir(parents=True)
    warc = "crawl-data/CC-MAIN-2025-13/segments/1/warc/CC-MAIN-20250301000000-20250301235959-00000.warc.gz"
    write_pages(base / warc, PAGES)
    (base / "warc.paths").write_text(warc + "\n")
    robots = "crawl-data/CC-MAIN-2025-13/segments/1/robotstxt/CC-MAIN-20250301-00000.warc.gz"
    write_captures(base / robots, [
        ("www.kapanlagi.example", "200 OK", "002.txt", "2025-03-01T01:00:00Z"),
        ("blog.byeong.example", "200 OK", "027.txt", "2025-03-01T02:00:00Z"),
        ("closed.example", "200 OK", "024.txt", "2025-03-01T03:00:00Z"),
        ("gone.example", "404 Not Found", None, "2025-03-01T04:00:00Z"),
        ("down.example", "503 Service Unavailable", None, "2025-03-01T05:00:00Z"),
        ("changed.example", "200 OK", "029.txt", "2025-02-01T00:00:00Z"),  # the newer one first in the file
        ("changed.example", "200 OK", "018.txt", "2025-01-01T00:00:00Z"),
        ("cdn.images.example", "200 OK", "018.txt", "2025-03-01T06:00:00Z")])
    (base / "crawl-data" / CRAWL / "robotstxt.paths").write_text(robots + "\n")
    later = tmp_path_factory.mktemp("later")
    write_captures(later / "robots-april.warc.gz", [
        ("www.kapanlagi.example", "200 OK", "029.txt", "2025-04-01T00:00:00Z")])
    blocked = later / "blocked.txt"
    blocked.write_text("# registered domains that asked to be left out\nblocked.co.uk\n")

    root = tmp_path_factory.mktemp("root") / "root"
    config = config.updated({"curation": {"t": 3, "seed": 5}, "extract": {"languages": []}})
    metadata = Metadata(SMALL_METADATA)
    server = ArchiveServer(base).start()
    try:
        first = pipeline.curate(spark, config, InputSpec(str(base / "warc.paths"), "warc-manifest", str(base)),
                                metadata, str(root), report=False,
                                robots=[f"{server.url}/crawl-data/{CRAWL}/robotstxt.paths"])
    finally:
        server.stop()
    state_first = json.loads((root / "crawls" / f"{CRAWL}.json").read_text())
    removed_first = _removed(root)
    matched_first = _pages(root / "matched" / f"crawl={CRAWL}")
    counts_first = {r["entry"]: r["count"] for r in pq.read_table(root / "counts").to_pylist()}
    units_before = sorted((str(p), p.read_text()) for p in (root / "units").rglob("*.json"))
    # the second through the command line: `curate --robots DIRECTORY`, the options in a --conf file
    conf = later / "conf.toml"
    conf.write_text(f'[curation]\nt = 3\nseed = 5\n[extract]\nlanguages = []\n'
                    f'[optout]\napply_star_group = false\nblocked_domains = "{blocked}"\n')
    assert cli.main(["curate", "--root", str(root), "--metadata", SMALL_METADATA, "--conf", str(conf),
                     "--robots", str(later), "--no-report"]) == 0
    second = json.loads((root / "summary.json").read_text())
    second_config = config.updated({"optout": {"apply_star_group": False, "blocked_domains": str(blocked)}})
    return {"root": root, "first": first, "second": second, "state_first": state_first,
            "removed_first": removed_first, "matched_first": matched_first, "counts_first": counts_first,
            "units_before": units_before, "config": second_config, "base": base, "conf": conf}


def test_robots_txt_refuses_by_the_newest_capture_of_the_page_and_image_hosts(curated):
    root = curated["root"]
    assert curated["removed_first"] == {
        KAPANLAGI: ("robots-txt@ccbot:page", "www.kapanlagi.example", "2025-03-01T01:00:00Z"),
        BLOG: ("robots-txt@ai2bot:page", "blog.byeong.example", "2025-03-01T02:00:00Z"),
        CLOSED: ("robots-txt@ai2bot:page", "closed.example", "2025-03-01T03:00:00Z"),  # the `*` group
        DOWN: ("robots-txt@ai2bot:page", "down.example", "2025-03-01T05:00:00Z"),  # 5xx: complete disallow
        SHOP: ("robots-txt@ccbot:image", "cdn.images.example", "2025-03-01T06:00:00Z")}
    kept_first = EVERY - set(curated["removed_first"])  # 404 and the newest of two captures allow
    assert curated["matched_first"] == kept_first
    assert curated["counts_first"]["the"] == len(kept_first)  # neither counted...
    first = curated["first"]
    optout = first["optout"]
    assert optout["pairs_removed"] == 5 and optout["by_kind"] == {"robots-txt": 5}
    assert optout["by_agent"] == {"ai2bot": 3, "ccbot": 2}
    assert optout["robots"] == {"hosts_with_capture": 6, "hosts_without_capture": 3}
    assert first["by_crawl"][CRAWL]["optout"]["robots"]["hosts_with_capture"] == 6
    assert curated["state_first"]["optout"]["robots"]["hosts_digest"]


def test_new_captures_and_options_rejudge_the_crawl_without_reading_it_again(curated):
    root, second = curated["root"], curated["second"]
    # April's capture of kapanlagi allows; apply_star_group = false frees closed.example (no group names an agent);
    # 5xx still disallows; blocked.co.uk is refused as a blocked domain
    assert {url: why[0] for url, why in _removed(root).items()} == {
        BLOG: "robots-txt@ai2bot:page", DOWN: "robots-txt@ai2bot:page", SHOP: "robots-txt@ccbot:image",
        BLOCKED: "blocked-domain:page"}
    kept = EVERY - {BLOG, DOWN, SHOP, BLOCKED}
    assert _pages(root / "pairs" / f"crawl={CRAWL}") == kept == _pages(root / "matched" / f"crawl={CRAWL}")
    assert {r["entry"]: r["count"] for r in pq.read_table(root / "counts").to_pylist()}["the"] == len(kept)
    assert _pages(root / "curated") <= kept
    assert second["optout"]["by_kind"] == {"blocked-domain": 1, "robots-txt": 3}
    assert second["ingest"]["files_processed_now"] == 0
    assert sorted((str(p), p.read_text()) for p in (root / "units").rglob("*.json")) == curated["units_before"]
    # the audit: what did kapanlagi's robots.txt say when (every capture is kept, by run)
    captures = pq.read_table(root / "robots" / "captures").to_pylist()
    kapanlagi = sorted((c["fetched"], c["status"], len(c["body"])) for c in captures
                       if c["host"] == "www.kapanlagi.example")
    assert kapanlagi == [("2025-03-01T01:00:00Z", 200, 324), ("2025-04-01T00:00:00Z", 200, 223)]
    state = json.loads((root / "robots" / "state.json").read_text())
    assert [entry["captures"] for entry in state["listings"]] == [8, 1] and len(state["runs"]) == 2


def test_overwrite_keeps_the_captures_and_judges_the_new_crawls_by_them(curated, tmp_path, caplog):
    """The captures are an input of the root, not built from --input: `curate --overwrite` without --robots keeps
    them (and says so), and the replacement's crawl is judged by them as the replaced one was."""
    root = tmp_path / "root"
    shutil.copytree(curated["root"], root)
    state = (root / "robots" / "state.json").read_text()
    base = curated["base"]
    caplog.set_level(logging.WARNING, logger="metaclip_spark")
    assert cli.main(["curate", "--root", str(root), "--input", str(base / "warc.paths"), "--input-format",
                     "warc-manifest", "--input-base", str(base), "--metadata", SMALL_METADATA, "--conf",
                     str(curated["conf"]), "--overwrite", "--no-report"]) == 0
    assert (root / "robots" / "state.json").read_text() == state and not (root / ".replacement").exists()
    assert f"--overwrite keeps {root}/robots/, the robots.txt captures read by 2 run(s) of curate --robots (9 " \
        f"captures)" in caplog.text and f"to drop them, delete {root}/robots/" in caplog.text
    assert {url: why[0] for url, why in _removed(root).items()} == {
        BLOG: "robots-txt@ai2bot:page", DOWN: "robots-txt@ai2bot:page", SHOP: "robots-txt@ccbot:image",
        BLOCKED: "blocked-domain:page"}
    assert _pages(root / "matched" / f"crawl={CRAWL}") == EVERY - {BLOG, DOWN, SHOP, BLOCKED}
    summary = json.loads((root / "summary.json").read_text())
    assert summary["optout"]["robots"] == {"hosts_with_capture": 6, "hosts_without_capture": 3}
    # the note's way to drop them: delete robots/, and the next curate re-judges the crawl without them
    shutil.rmtree(root / "robots")
    assert cli.main(["curate", "--root", str(root), "--metadata", SMALL_METADATA, "--conf", str(curated["conf"]),
                     "--no-report"]) == 0
    assert {url: why[0] for url, why in _removed(root).items()} == {BLOCKED: "blocked-domain:page"}
    assert json.loads((root / "summary.json").read_text())["pairs_in"] == len(EVERY) - 1


def test_the_report_shows_agents_and_hosts_with_a_capture(spark, curated):
    report = write_report(spark, str(curated["root"]))
    assert report["optout"]["by_agent"] == {"*": 1, "ai2bot": 2, "ccbot": 1}
    assert report["optout"]["robots"] == {"hosts_with_capture": 6, "hosts_without_capture": 3}
    page = (curated["root"] / "report" / "index.html").read_text()
    assert "hosts with a robots.txt capture" in page and "robots-txt@ccbot:image" in page
    public = json.loads((curated["root"] / "report" / "public-summary.json").read_text())
    robots = public["opt_out_measures"]["robots_txt"]
    assert robots["applied"] and robots["pairs_removed"] == 3 and robots["hosts_with_capture"] == 6
    assert public["opt_out_measures"]["blocked_domains"]["pairs_removed"] == 1
    text = (curated["root"] / "report" / "public-summary.md").read_text()
    assert "- robots.txt (RFC 9309" in text and "3 pairs removed; 6 page hosts with a capture, 3 without" in text
    assert "- Blocked domains: 1 pairs removed." in text


def test_the_robots_join_shuffles_the_pairs_once(spark, curated):
    """The pairs meet the host table in one join by page host: with no broadcast, one Exchange on the pairs' side
    of the plan; the lookup's own Exchanges shuffle distinct host pairs and the host table, not pairs."""
    root = OutputRoot(spark, str(curated["root"]))
    pairs = spark.read.parquet(str(curated["root"] / "units" / f"crawl={CRAWL}" / "*" / "pairs"))
    previous = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        with SiteJudge(Policy.from_settings(curated["config"].optout), host_table(spark, root), pairs) as site:
            site.lookup.count()  # cached: the judged plan reads it from memory
            lookup_plan = site.lookup._jdf.queryExecution().executedPlan().toString()
            plan = site.judged(pairs)._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", previous)
    assert plan.count("Exchange") - lookup_plan.count("Exchange") == 1, plan
@pytest.mark.parametrize("store", ["s3", "gs"])
def test_a_listing_and_its_archives_are_read_from_s3_and_gs(spark, config, tmp_path, store):
    """`--robots s3://.../robotstxt.paths.gz` (or gs://) as Common Crawl lays it out: the listing is read, its
    relative paths resolved against the root above crawl-data/, and the archives it names read on the executors,
    from moto's S3 server and the gcp-storage-emulator on 127.0.0.1 (as --input's tests read them)."""
    tree = tmp_path / "bucket"
    robots = f"crawl-data/{CRAWL}/segments/1/robotstxt/CC-MAIN-20250301-00000.warc.gz"
    (tree / robots).parent.mkdir(parents=True)
    write_captures(tree / robots, [
        ("www.kapanlagi.example", "200 OK", "002.txt", "2025-03-01T01:00:00Z"),
        ("gone.example", "404 Not Found", None, "2025-03-01T04:00:00Z"),
        ("changed.example", "200 OK", "029.txt", "2025-02-01T00:00:00Z"),
        ("changed.example", "200 OK", "018.txt", "2025-01-01T00:00:00Z")])
    (tree / "crawl-data" / CRAWL / "robotstxt.paths.gz").write_bytes(gzip.compress(f"{robots}\n".encode()))
    server, remote = (s3_server, {"s3_endpoint_url": "{}"}) if store == "s3" else \
        (gcs_server, {"gcs_endpoint_url": "{}", "gcs_anonymous": True})
    with server(tree) as endpoint:
        settings = config.updated({"remote": {key: value.format(endpoint) if isinstance(value, str) else value
                                              for key, value in remote.items()}}).remote
        read = read_robots(spark, OutputRoot(spark, str(tmp_path / "listing")),
                           f"{store}://commoncrawl/crawl-data/{CRAWL}/robotstxt.paths.gz", settings)
        # one archive named by its URL, as --robots also takes it
        one = read_robots(spark, OutputRoot(spark, str(tmp_path / "archive")), f"{store}://commoncrawl/{robots}",
                          settings)
    assert (read["files_listed"], read["files_read"], read["files_failed"], read["captures"]) == (1, 1, 0, 4)
    assert (one["files_listed"], one["files_read"], one["files_failed"], one["captures"]) == (1, 1, 0, 4)
    state = json.loads((tmp_path / "listing" / "robots" / "state.json").read_text())
    assert state["files_done"] == [f"{store}://commoncrawl/{robots}"]

    def newest(root) -> dict:
        return {r["host"]: (r["fetched"], r["status"], r["body"]) for r in
                pq.read_table(root / "robots" / "hosts").to_pylist()}

    assert newest(tmp_path / "listing") == newest(tmp_path / "archive") == {"www.kapanlagi.example": ("2025-03-01T01:00:00Z", 200, (ROBOTS / "002.txt").read_bytes()),
                      "gone.example": ("2025-03-01T04:00:00Z", 404, b""),
                      "changed.example": ("2025-02-01T00:00:00Z", 200, (ROBOTS / "029.txt").read_bytes())}


def test_dropping_a_crawls_units_drops_its_optout_table(spark, tmp_path):
    for table in ("units", "optout"):
        (tmp_path / table / f"crawl={CRAWL}").mkdir(parents=True)
        (tmp_path / table / f"crawl={CRAWL}" / "part-0.parquet").write_bytes(b"x")
    OutputRoot(spark, str(tmp_path)).drop_units(CRAWL)
    assert not (tmp_path / "optout" / f"crawl={CRAWL}").exists()
    assert not (tmp_path / "units" / f"crawl={CRAWL}").exists()


def test_the_wat_path_is_judged_as_the_warc_path(spark, config, tmp_path):
    """The same pages read from their WAT file (Common Crawl's layout, tests/wat_writer.py) and the same captures:
    the site verdicts are the WARC path's, pair for pair (both judge the pair's page and image URLs)."""
    from wat_writer import write_wat

    segment = tmp_path / "crawl-data" / CRAWL / "segments" / "1"
    (segment / "warc").mkdir(parents=True)
    (segment / "wat").mkdir(parents=True)
    warc = segment / "warc" / "CC-MAIN-20250301000000-20250301235959-00000.warc.gz"
    wat = "crawl-data/CC-MAIN-2025-13/segments/1/wat/CC-MAIN-20250301000000-20250301235959-00000.warc.wat.gz"
    write_pages(warc, PAGES)
    write_wat(warc, tmp_path / wat)
    (tmp_path / "wat.paths").write_text(wat + "\n")
    captures = tmp_path / "captures"
    captures.mkdir()
    write_captures(captures / "robots.warc.gz", [
        ("www.kapanlagi.example", "200 OK", "002.txt", "2025-03-01T01:00:00Z"),
        ("closed.example", "200 OK", "024.txt", "2025-03-01T03:00:00Z"),
        ("gone.example", "404 Not Found", None, "2025-03-01T04:00:00Z"),
        ("cdn.images.example", "200 OK", "018.txt", "2025-03-01T06:00:00Z")])
    root = tmp_path / "root"
    config = config.updated({"curation": {"t": 3, "seed": 5}, "extract": {"languages": []}})
    summary = pipeline.curate(spark, config, InputSpec(str(tmp_path / "wat.paths"), "wat-manifest", str(tmp_path)),
                              Metadata(SMALL_METADATA), str(root), report=False, robots=[str(captures)])
    assert {url: why[0] for url, why in _removed(root).items()} == {
        KAPANLAGI: "robots-txt@ccbot:page", CLOSED: "robots-txt@ai2bot:page", SHOP: "robots-txt@ccbot:image"}
    assert _pages(root / "matched" / f"crawl={CRAWL}") == EVERY - {KAPANLAGI, CLOSED, SHOP}
    assert summary["optout"]["robots"] == {"hosts_with_capture": 3, "hosts_without_capture": 6}


def test_a_rejudge_curates_what_it_did_less_the_pairs_newly_refused_and_no_other(spark, curated, tmp_path):
    """Nested subsets (docs/curation-rules.md): each (pair, entry) draw is fixed by the seed, so a smaller count can
    only add pairs. New captures that only refuse take pairs out of the pool, its counts drop: every pair curated
    before and not refused now is curated again, none refused is, and nothing outside the new pool is."""
    root = tmp_path / "root"
    shutil.copytree(curated["root"], root)
    config = curated["config"].updated({"curation": {"t": 1}})  # t = 1: a thin set, so that a draw can fail
    metadata = Metadata(SMALL_METADATA)
    pipeline.curate(spark, config, None, metadata, str(root), report=False)
    before = _pages(root / "curated")
    later = tmp_path / "may"
    later.mkdir()
    write_captures(later / "robots-may.warc.gz", [  # 002.txt: CCBot's group disallows /
        ("nocapture.example", "200 OK", "002.txt", "2025-05-01T00:00:00Z"),
        ("gone.example", "200 OK", "002.txt", "2025-05-01T00:00:00Z")])
    pipeline.curate(spark, config, None, metadata, str(root), report=False, robots=[str(later)])
    newly = {NOCAPTURE, GONE}
    assert set(_removed(root)) == {BLOG, DOWN, SHOP, BLOCKED} | newly
    pool = _pages(root / "pairs" / f"crawl={CRAWL}")
    assert pool == EVERY - {BLOG, DOWN, SHOP, BLOCKED} - newly
    after = _pages(root / "curated")
    assert before - newly and before & newly  # the case is not empty: pairs kept, pairs now refused
    assert before - newly <= after <= pool


def test_the_host_table_does_not_depend_on_the_order_or_partitioning_of_the_files(spark, tmp_path):
    """The newest capture of each host is chosen whatever order the archives are listed and read in, and however
    they are split in runs and partitions: ties on the date are broken by URL, status, body, then the file."""
    archives = tmp_path / "archives"
    archives.mkdir()
    write_captures(archives / "a.warc.gz", [
        ("same.example", "200 OK", "002.txt", "2025-03-01T01:00:00Z"),  # the same capture in two files
        ("newer.example", "200 OK", "018.txt", "2025-01-01T00:00:00Z"),
        ("body.example", "200 OK", "002.txt", "2025-03-01T01:00:00Z")])
    write_captures(archives / "b.warc.gz", [
        ("newer.example", "200 OK", "029.txt", "2025-02-01T00:00:00Z"),
        ("body.example", "200 OK", "018.txt", "2025-03-01T01:00:00Z"),  # the same date: the body decides
        ("status.example", "503 Service Unavailable", None, "2025-03-01T01:00:00Z")])
    write_captures(archives / "c.warc.gz", [
        ("same.example", "200 OK", "002.txt", "2025-03-01T01:00:00Z"),
        ("newer.example", "200 OK", "024.txt", "2025-01-15T00:00:00Z"),
        ("status.example", "404 Not Found", None, "2025-03-01T01:00:00Z")])  # the same date: the status decides

    def table(root) -> list[tuple]:
        return sorted(tuple(r.values()) for r in pq.read_table(root / "robots" / "hosts").to_pylist())

    # one run: the directory, read in name order
    read_robots(spark, OutputRoot(spark, str(tmp_path / "together")), str(archives), None)
    # three runs, one archive each, in the reverse order (each run's captures a table of its own)
    for name in ("c", "b", "a"):
        read_robots(spark, OutputRoot(spark, str(tmp_path / "apart")), str(archives / f"{name}.warc.gz"), None)
    together = table(tmp_path / "together")
    assert together == table(tmp_path / "apart")
    chosen = {row[0]: row for row in together}
    assert chosen["newer.example"][1] == "2025-02-01T00:00:00Z"
    assert chosen["status.example"][2] == 404
    assert chosen["body.example"][3] == min((ROBOTS / "002.txt").read_bytes(), (ROBOTS / "018.txt").read_bytes())
    assert chosen["same.example"][5] == str(archives / "a.warc.gz")  # the first file by name, in either order
