"""Scheduled reruns that find the new dump themselves: `crawls` and `curate --common-crawl ID|latest|next`.

Common Crawl is played by real servers on 127.0.0.1 (tests/servers.py): an HTTP server over a tree laid out like
`https://index.commoncrawl.org/` + `https://data.commoncrawl.org/` (the real `collinfo.json` of tests/data/cc, and
listings `crawl-data/<id>/warc.paths.gz` / `wat.paths.gz` of three of its dumps listing real web-archive excerpts),
and moto's S3 server holding the same tree as `s3://commoncrawl/`. The scheduled command is the same every time;
between its runs only the served index changes (a new dump appears) or the network fails.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli
from metaclip_spark.config import load_config
from metaclip_spark.ingestion.crawl_index import (DONE, NOT_IN_ROOT, PARTLY_DONE, choose, crawl_progress, parse_index,
                                        resolve_curate_input)
from metaclip_spark.errors import InputError
from metaclip_spark.root.lease import root_lease

from conftest import DATA, REPO
from robots_archives import write_captures
from servers import ArchiveServer, Faults, s3_server

CC = DATA / "cc"
COLLINFO = (CC / "collinfo.json").read_bytes()
SMALL_METADATA = str(DATA / "metadata" / "small.json")
# Three dumps of the real index, each listing real excerpts (distinct files: each dump brings pairs of its own).
DUMPS = {
    "CC-MAIN-2025-47": ("warc", ["sample-0001.warc.gz"]),
    "CC-MAIN-2025-43": ("warc", ["sample-0000.warc.gz"]),
    "CC-MAIN-2025-38": ("wat", ["CC-MAIN-sample2.warc.wat.gz"]),
}


def _index_before_november_2025() -> bytes:
    """The index as the server listed it before CC-MAIN-2025-47 came out: the real one without its newest dump."""
    entries = json.loads(COLLINFO)
    assert entries[0]["id"] == "CC-MAIN-2025-47"
    return json.dumps(entries[1:], indent=2).encode()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("commoncrawl")
    for dump, (kind, names) in DUMPS.items():
        listed = [f"crawl-data/{dump}/segments/1762000000000.{n}/{kind}/{name}" for n, name in enumerate(names)]
        for line, name in zip(listed, names):
            (root / line).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CC / name, root / line)
        (root / f"crawl-data/{dump}/{kind}.paths.gz").write_bytes(gzip.compress(("\n".join(listed) + "\n").encode()))
    (root / "collinfo.json").write_bytes(COLLINFO)
    return root


@pytest.fixture()
def server(tree):
    (tree / "collinfo.json").write_bytes(COLLINFO)
    server = ArchiveServer(tree).start()
    yield server
    server.stop()


def _conf(directory, index_url: str, data_url: str = "", retries: int = 2, **remote) -> str:
    lines = ["[commoncrawl]", f"index_url = {json.dumps(index_url)}"]
    if data_url:
        lines.append(f"data_url = {json.dumps(data_url)}")
    lines += ["[remote]", f"retries = {retries}", "backoff_seconds = 0.01", "backoff_max_seconds = 0.05",
              "timeout_seconds = 5.0", "block_bytes = 65536"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in remote.items()]
    lines += ["[extract]", "languages = []", "max_failed_share = 0.5"]
    path = directory / f"cc-{len(list(directory.glob('cc-*.toml')))}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _crawls(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert cli.main(["crawls", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _states(listing: dict) -> dict[str, str]:
    return {d["id"]: d["state"] for d in listing["dumps"] if d["state"] != NOT_IN_ROOT}


def _root_crawls(root) -> tuple[list[str], list[str]]:
    """(crawls whose tables the root holds, crawls of its last curated run)."""
    summary = json.loads((root / "summary.json").read_text()) if (root / "summary.json").exists() else {}
    return sorted(p.stem for p in (root / "crawls").glob("*.json")), summary.get("crawls", [])


# The index, without a server ----------------------------------------------------------------------------------------
def test_dumps_are_ordered_by_their_dates_whatever_the_order_or_form_of_their_ids():
    real = [d.id for d in parse_index(COLLINFO, "collinfo.json")]
    assert len(real) == 118 and real[0] == "CC-MAIN-2025-47"
    assert real[-3:] == ["CC-MAIN-2012", "CC-MAIN-2009-2010", "CC-MAIN-2008-2009"]  # the irregular old ids
    entries = json.loads(COLLINFO)
    random.Random(7).shuffle(entries)  # an index (or a mirror's) in another order
    assert [d.id for d in parse_index(json.dumps(entries).encode(), "mirror")] == real


@pytest.mark.parametrize("body, why", [
    (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
    (b'{"id": "CC-MAIN-2025-47"}', "not a non-empty JSON array"),
    (b"[]", "lists no dump"),
    (b'[{"id": "CC-MAIN-2025-47", "name": "November 2025 Index"}]', "has no 'from'"),
    (b'[{"id": "CC-MAIN-2025-47", "from": "2025-11-06T20:07:18", "to": "last week"}]', "dates"),
    (b'[{"id": "../../etc", "from": "2025-11-06T20:07:18", "to": "2025-11-19T12:34:13"}]', "is not letters"),
])
def test_a_malformed_index_is_bad_input_naming_what_is_wrong(body, why):
    with pytest.raises(InputError, match="index http://mirror/collinfo.json .*" + why) as error:
        parse_index(body, "http://mirror/collinfo.json")
    assert error.value.exit_code == 3


def _crawl(done=1, failed=0, listed=1, pending=0, pairs=10, pending_rebuild=False) -> dict:
    return {"files_done": done, "files_failed": failed, "files_listed": listed, "files_pending": pending,
            "pairs": pairs, "pending_rebuild": pending_rebuild}


@pytest.mark.parametrize("crawl, curated, state, why", [
    (_crawl(), True, DONE, ""),
    (_crawl(done=97, failed=3, listed=100), True, DONE, ""),  # failures within max_failed_share
    (_crawl(done=90, failed=10, listed=100), True, PARTLY_DONE, "10 of 100 files failed"),
    (_crawl(done=40, listed=100, pending=60), True, PARTLY_DONE, "60 of 100 listed files pending"),
    (_crawl(pairs=None, pending_rebuild=True), True, PARTLY_DONE, "tables are not built"),
    (_crawl(), False, PARTLY_DONE, "not balanced yet"),  # killed after ingest, before balancing
])
def test_how_far_a_root_got_with_a_dump(crawl, curated, state, why):
    got, reasons = crawl_progress(crawl, curated, max_failed_share=0.05)
    assert got == state and why in "; ".join(reasons)


def test_which_dump_latest_next_and_an_id_take():
    dumps = parse_index(COLLINFO, "collinfo.json")
    ids = [d.id for d in dumps]

    def states(**held):
        return {i: {"state": held.get(i.replace("-", "_"), NOT_IN_ROOT), "why": ["why"]} for i in ids}

    def pick(wanted, **held):
        choice = choose(dumps, states(**held), wanted)
        return choice.dump.id if choice.dump else None

    assert pick("next") == pick("latest") == "CC-MAIN-2025-47"  # a new root
    assert pick("next", CC_MAIN_2024_10=DONE) == "CC-MAIN-2024-18"  # one dump a run, oldest first
    assert pick("next", CC_MAIN_2024_10=DONE, CC_MAIN_2012=DONE) == "CC-MAIN-2024-18"
    assert pick("latest", CC_MAIN_2024_10=DONE) == "CC-MAIN-2025-47"
    assert pick("next", CC_MAIN_2025_47=DONE) is None and pick("latest", CC_MAIN_2025_47=DONE) is None
    assert pick("next", CC_MAIN_2025_43=DONE, CC_MAIN_2024_10=PARTLY_DONE) == "CC-MAIN-2024-10"  # resumed first
    assert pick("latest", CC_MAIN_2025_47=DONE, CC_MAIN_2024_10=PARTLY_DONE) == "CC-MAIN-2024-10"
    assert pick("next", CC_MAIN_2025_47=PARTLY_DONE, CC_MAIN_2024_10=PARTLY_DONE) == "CC-MAIN-2024-10"
    assert pick("CC-MAIN-2012", CC_MAIN_2025_47=DONE) == "CC-MAIN-2012"
    with pytest.raises(InputError, match="lists no such dump"):
        pick("CC-MAIN-2031-01")


# The index over HTTP -------------------------------------------------------------------------------------------------
def test_crawls_lists_the_index_newest_first_with_what_the_root_holds(server, tmp_path, capsys):
    conf = _conf(tmp_path, server.url + "collinfo.json")
    capsys.readouterr()
    assert cli.main(["crawls", "--conf", conf]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"index: {server.url}collinfo.json: 118 dumps, newest first"
    assert lines[1].split() == ["CC-MAIN-2025-47", "2025-11-06", "to", "2025-11-19", "November", "2025", "Index"]
    assert lines[-1].startswith("CC-MAIN-2008-2009  2008-05-09 to 2009-01-09  2008 - 2009 ARC Files Index")
    listing = _crawls(capsys, "--conf", conf, "--output", str(tmp_path / "new-root"))
    assert listing["dumps"][0] == {"id": "CC-MAIN-2025-47", "name": "November 2025 Index",
                                   "timegate": "https://index.commoncrawl.org/CC-MAIN-2025-47/",
                                   "cdx-api": "https://index.commoncrawl.org/CC-MAIN-2025-47-index",
                                   "from": "2025-11-06T20:07:18", "to": "2025-11-19T12:34:13",
                                   "state": NOT_IN_ROOT, "why": [], "files_failed": 0}
    assert listing["root_exists"] is False and listing["next"]["id"] == listing["latest"]["id"] == "CC-MAIN-2025-47"


def test_an_index_answering_503_is_retried_then_exit_3_naming_it(server, tmp_path, capsys):
    conf = _conf(tmp_path, server.url + "collinfo.json", retries=2)
    server.reset(Faults(fail_first=2, only="collinfo"))  # two 503s, then an answer: retried
    assert _crawls(capsys, "--conf", conf)["dumps"][0]["id"] == "CC-MAIN-2025-47"
    server.reset(Faults(fail_first=10**6, only="collinfo"))  # down
    root = tmp_path / "root"
    for command in (["crawls", "--conf", conf],
                    ["curate", "--common-crawl", "next", "--output", str(root), "--conf", conf]):
        capsys.readouterr()
        assert cli.main(command) == 3
        err = capsys.readouterr().err
        assert f"cannot read the Common Crawl index {server.url}collinfo.json" in err and "after 2 retries" in err
    requests = [e for e in server.log.entries if e[1] == "/collinfo.json"]
    assert len(requests) >= 2 * 3 and {status for *_, status in requests} == {503}
    assert not root.exists()


def test_a_malformed_index_stops_curate_with_exit_3_before_the_root_is_touched(server, tree, tmp_path, capsys):
    (tree / "collinfo.json").write_bytes(b"<html><body>Service temporarily unavailable</body></html>")
    conf = _conf(tmp_path, server.url + "collinfo.json")
    code = cli.main(["curate", "--common-crawl", "latest", "--output", str(tmp_path / "root"), "--conf", conf])
    assert code == 3
    assert f"Common Crawl index {server.url}collinfo.json is not a list of dumps" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("options, message", [
    (["--common-crawl", "next", "--input", "x.warc.paths.gz"], "leave out --input"),
    (["--common-crawl", "next", "--crawl", "mine"], "leave out --crawl"),
    (["--archive-type", "wat"], "--archive-type goes with --common-crawl"),
    (["--from", "s3"], "--from goes with --common-crawl"),
])
def test_common_crawl_options_out_of_place_exit_2(tmp_path, capsys, options, message):
    assert cli.main(["curate", "--output", str(tmp_path / "root"), *options]) == 2
    assert message in capsys.readouterr().err


# The scheduled command -----------------------------------------------------------------------------------------------
def test_one_unchanging_command_curates_each_new_dump_once(spark, server, tree, tmp_path, capsys):
    root = tmp_path / "root"
    conf = _conf(tmp_path, server.url + "collinfo.json", data_url=server.url, retries=1)
    schedule = ["curate", "--common-crawl", "next", "--output", str(root), "--metadata", SMALL_METADATA,
                "--conf", conf, "--t", "3", "--no-report"]

    # October 2025: the index's newest dump is CC-MAIN-2025-43, and its files cannot be fetched.
    (tree / "collinfo.json").write_bytes(_index_before_november_2025())
    server.reset(Faults(drop_gets=frozenset(range(1, 1000)), only="/segments/"))
    assert cli.main(schedule) == 4  # 1 of 1 files failed: more than max_failed_share
    listing = _crawls(capsys, "--conf", conf, "--output", str(root))
    assert _states(listing) == {"CC-MAIN-2025-43": PARTLY_DONE}
    assert "1 of 1 files failed" in listing["dumps"][0]["why"][0]
    # While a run holds the root (one that outlasts the schedule's period), the next one is sent away: exit 75.
    with root_lease(spark, str(root), load_config("local", conf).root, "curate"):
        capsys.readouterr()
        assert cli.main(schedule) == 75
        assert f"{root} is busy" in capsys.readouterr().err

    # November: CC-MAIN-2025-47 is out and the network is back. The partly done dump is finished first.
    (tree / "collinfo.json").write_bytes(COLLINFO)
    server.reset()
    assert cli.main(schedule) == 0
    assert _root_crawls(root) == (["CC-MAIN-2025-43"], ["CC-MAIN-2025-43"])
    assert _states(_crawls(capsys, "--conf", conf, "--output", str(root))) == {"CC-MAIN-2025-43": DONE}
    assert cli.main(schedule) == 0  # the next run takes the new dump
    assert _root_crawls(root) == (["CC-MAIN-2025-43", "CC-MAIN-2025-47"], ["CC-MAIN-2025-43", "CC-MAIN-2025-47"])
    listing = _crawls(capsys, "--conf", conf, "--output", str(root))
    assert _states(listing) == {"CC-MAIN-2025-43": DONE, "CC-MAIN-2025-47": DONE}
    assert listing["next"]["id"] is None and listing["latest"]["id"] is None
    marker = json.loads(next((root / "units" / "crawl=CC-MAIN-2025-47").glob("*/_COMMITTED.json")).read_text())
    assert marker["files"][0]["location"] == server.url + "crawl-data/CC-MAIN-2025-47/segments/1762000000000.0/warc/" \
        "sample-0001.warc.gz" and marker["files"][0]["status"] == "ok"

    # December, before the next dump: one line, exit 0, no Spark started and nothing written.
    runs = sorted(p.name for p in (root / "runs").iterdir())
    script = ("import sys; from metaclip_spark import cli; from pyspark import SparkContext; "
              "code = cli.main(sys.argv[1:]); assert SparkContext._gateway is None, 'a JVM was started'; "
              "sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", script, *schedule], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"Nothing new in {server.url}collinfo.json for {root}: the root holds "
                                       "CC-MAIN-2025-47 (November 2025 Index), the newest dump, done."]
    assert sorted(p.name for p in (root / "runs").iterdir()) == runs and not (root / "_LEASE.json").exists()

    # Still December, and Common Crawl's robots.txt captures of a site the root holds pages of are out: the same
    # schedule with --robots finds no new dump, yet reads the captures and re-judges, re-counts and re-balances
    # the crawls from their stored pairs (no web archive read again).
    pairs_before = _pairs(root)
    host = Counter(_host(page) for page, _ in pairs_before).most_common(1)[0][0]
    captures = tmp_path / "robots"
    captures.mkdir()
    write_captures(captures / "robots.warc.gz", [(host, "200 OK", "024.txt", "2025-12-01T00:00:00Z")])  # `*`: /
    capsys.readouterr()
    assert cli.main([*schedule, "--robots", str(captures)]) == 0
    assert capsys.readouterr().out.startswith(f"Nothing new in {server.url}collinfo.json for {root}: the root holds "
                                              "CC-MAIN-2025-47 (November 2025 Index), the newest dump, done; reading "
                                              f"--robots {captures}.")
    removed = [(r["page_url"], r["url"], r["optout_signal"], r["robots_host"])
               for table in (root / "optout").glob("crawl=*") for r in pq.read_table(table).to_pylist()]
    # every pair of the host is refused (optout/ keeps each refused row, copies de-duplication drops included)...
    of_host = {pair for pair in pairs_before if host in map(_host, pair)}
    assert of_host and of_host <= {(page, image) for page, image, *_ in removed}
    assert {(host in (_host(page), _host(image)), signal.startswith("robots-txt@"), robots_host)
            for page, image, signal, robots_host in removed} == {(True, True, host)}
    # ...and neither counted nor curated: the pool is re-counted and re-balanced without them
    pairs_after = _pairs(root)
    assert not [pair for pair in pairs_after if host in map(_host, pair)] and len(pairs_after) < len(pairs_before)
    summary = json.loads((root / "summary.json").read_text())
    assert summary["pairs_in"] == len(pairs_after) and summary["optout"]["by_kind"] == {"robots-txt": len(removed)}
    assert summary["ingest"]["files_processed_now"] == 0 and len(list((root / "runs").iterdir())) == len(runs) + 1


def _host(url: str) -> str:
    return urlsplit(url).hostname


def _pairs(root) -> list[tuple[str, str]]:
    """(page URL, image URL) of every pair of the root's crawls."""
    return [(r["page_url"], r["url"]) for table in sorted((root / "pairs").glob("crawl=*"))
            for r in pq.read_table(table, columns=["page_url", "url"]).to_pylist()]


def test_a_dump_by_id_as_wat_from_s3_then_latest_finds_nothing_new(spark, tree, tmp_path, capsys):
    root = tmp_path / "root"
    (tree / "collinfo.json").write_bytes(json.dumps(json.loads(COLLINFO)[2:]).encode())  # as in September 2025
    index = ArchiveServer(tree).start()  # the index server; the dumps are read from S3
    try:
        with s3_server(tree) as endpoint:  # a public bucket read unsigned, like s3://commoncrawl/
            conf = _conf(tmp_path, index.url + "collinfo.json", s3_endpoint_url=endpoint)
            options = ["--archive-type", "wat", "--from", "s3", "--output", str(root), "--metadata", SMALL_METADATA,
                       "--conf", conf, "--t", "3", "--no-report"]
            assert cli.main(["curate", "--common-crawl", "CC-MAIN-2025-38", *options]) == 0
            capsys.readouterr()
            assert cli.main(["curate", "--common-crawl", "latest", *options]) == 0
            assert capsys.readouterr().out.startswith(f"Nothing new in {index.url}collinfo.json for {root}: the root "
                                                      "holds CC-MAIN-2025-38 (September 2025 Index), the newest")
            # --overwrite starts the root afresh: what it holds does not count
            args = cli.build_parser().parse_args(["curate", "--common-crawl", "latest", "--overwrite", *options])
            assert resolve_curate_input(args, load_config("local", conf)) is None
            assert (args.input, args.input_base, args.input_format, args.crawl) == (
                "s3://commoncrawl/crawl-data/CC-MAIN-2025-38/wat.paths.gz", "s3://commoncrawl/", "wat-manifest",
                "CC-MAIN-2025-38")
    finally:
        index.stop()
    assert _root_crawls(root) == (["CC-MAIN-2025-38"], ["CC-MAIN-2025-38"])
    [marker] = [json.loads(p.read_text()) for p in root.glob("units/*/*/_COMMITTED.json")]
    assert marker["format"] == "wat-manifest" and marker["crawl"] == "CC-MAIN-2025-38"
    [wat] = marker["files"]
    assert wat["location"] == "s3://commoncrawl/crawl-data/CC-MAIN-2025-38/segments/1762000000000.0/wat/" \
        "CC-MAIN-sample2.warc.wat.gz"
    assert wat["status"] == "ok" and (wat["counters"]["wat_pages"], wat["counters"]["img_tags"]) == (1, 27)
