"""`curate` over a Common Crawl listing served from real stores on 127.0.0.1 gives the rows of the same files on disk.

The stores, started by these tests (tests/servers.py): an HTTP server with byte ranges (cutting connections and
answering 503 on demand), moto's S3 server and the gcp-storage-emulator, each holding a tree laid out like
`s3://commoncrawl/`: `crawl-data/CC-MAIN-2024-22/warc.paths.gz` listing real WARC/WAT excerpts under
`segments/.../warc|wat/`, plus one listed file that does not exist.
"""

from __future__ import annotations

import gzip
import json
import shutil

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli

from conftest import DATA
from servers import ArchiveServer, Faults, gcs_server, s3_server

CC = DATA / "cc"
SMALL_METADATA = str(DATA / "metadata" / "small.json")
CRAWL = "CC-MAIN-2024-22"
SEGMENT = f"crawl-data/{CRAWL}/segments/1715971057216.39"
LISTED = [f"{SEGMENT}/warc/{name}" for name in ("warcfile.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz",
                                               "clipped.warc.gz", "missing-00099.warc.gz")]
LISTED.append(f"{SEGMENT}/wat/CC-MAIN-sample2.warc.wat.gz")
MANIFEST = f"crawl-data/{CRAWL}/warc.paths.gz"
TABLES = ("pairs", "matched", "crawl_counts", "curated")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A directory laid out like the Common Crawl bucket (the missing file is listed, not stored)."""
    root = tmp_path_factory.mktemp("commoncrawl")
    for line in LISTED:
        source = CC / line.rsplit("/", 1)[1]
        if source.exists():
            (root / line).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / line)
    (root / MANIFEST).write_bytes(gzip.compress(("\n".join(LISTED) + "\n").encode()))
    return root


def _conf(directory, **remote) -> str:
    """Short waits, a failed file allowed (the missing one), every language kept, and the given [remote] keys."""
    lines = ["[remote]", "backoff_seconds = 0.01", "backoff_max_seconds = 0.05", "timeout_seconds = 5.0",
             "block_bytes = 65536"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in remote.items()]
    lines += ["[extract]", "languages = []", "max_failed_share = 0.5"]
    path = directory / f"remote-{len(list(directory.glob('remote-*.toml')))}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _curate(output, manifest: str, input_base: str, conf: str) -> int:
    # no --input-format: a *.paths.gz listing is recognised, wherever it lives
    return cli.main(["curate", "--input", manifest, "--input-base", input_base, "--output", str(output),
                     "--metadata", SMALL_METADATA, "--conf", conf, "--t", "3", "--seed", "5", "--no-report"])


def _rows(root, table: str) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in pq.read_table(str(root / table)).to_pylist())


def _status(root, capsys) -> dict:
    capsys.readouterr()
    assert cli.main(["status", str(root), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def on_disk(spark, tree, tmp_path_factory):
    """The reference: the same listing and files read from the local file system."""
    work = tmp_path_factory.mktemp("on-disk")
    assert _curate(work / "root", str(tree / MANIFEST), str(tree), _conf(work)) == 0
    return work / "root"


def _assert_same_rows(root, reference) -> None:
    for table in TABLES:
        assert _rows(root, table) == _rows(reference, table), table
    assert len(_rows(reference, "matched")) > 20 and len(_rows(reference, "curated")) > 0


def test_listing_on_disk_fails_only_the_missing_file(on_disk, capsys):
    crawl = _status(on_disk, capsys)["crawls"][CRAWL]
    assert crawl["files_done"] == 5 and crawl["files_failed"] == 1
    assert crawl["failed_files"][0]["file"].endswith("missing-00099.warc.gz")


def test_https_listing_with_cut_connections_and_503s_gives_the_rows_on_disk(spark, tree, on_disk, tmp_path, capsys):
    server = ArchiveServer(tree, Faults(fail_first=2, drop_gets=frozenset({1}), chunk_delay=0.02)).start()
    try:
        conf = _conf(tmp_path, max_concurrent_downloads=1)
        assert _curate(tmp_path / "root", server.url + MANIFEST, server.url, conf) == 0
        log = server.log
    finally:
        server.stop()
    _assert_same_rows(tmp_path / "root", on_disk)
    statuses = [status for *_, status in log.entries]
    assert statuses.count(503) >= 2 * 6  # every listed path and the listing answered 503 twice first
    cut_and_retried = [p for m, p, r, s in log.entries if m == "GET" and s == 206 and r and r.startswith("bytes=0-")]
    assert len(cut_and_retried) >= 2 * 5  # each stored file: a first GET cut half-way, then asked for again
    assert log.max_active == 1  # remote.max_concurrent_downloads = 1 held across the two local[2] tasks
    crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
    assert (crawl["files_done"], crawl["files_failed"]) == (5, 1)
    assert "404" in crawl["failed_files"][0]["reason"]


def test_files_cut_on_every_try_are_failed_then_read_by_the_next_run(spark, tree, on_disk, tmp_path, capsys):
    server = ArchiveServer(tree).start()
    try:
        conf = _conf(tmp_path, retries=1)
        listing = server.url + MANIFEST
        server.reset(Faults(drop_gets=frozenset(range(1, 1000)), only="/segments/"))  # every archive body cut
        assert _curate(tmp_path / "root", listing, server.url, conf) == 4  # 6 of 6 failed > max_failed_share
        crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
        assert (crawl["files_done"], crawl["files_failed"]) == (0, 6)
        reasons = [f["reason"] for f in crawl["failed_files"]]
        assert sum(r.startswith("read failed:") and "after 1 retries" in r for r in reasons) == 5
        server.reset()  # the network heals: the same command again
        assert _curate(tmp_path / "root", listing, server.url, conf) == 0
    finally:
        server.stop()
    _assert_same_rows(tmp_path / "root", on_disk)
    crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
    assert (crawl["files_done"], crawl["files_failed"]) == (5, 1)


def test_files_cut_with_no_length_are_failed_not_read_in_part_then_read_by_the_next_run(spark, tree, on_disk,
                                                                                          tmp_path, capsys):
    # No Content-Length: a body cut half-way ends like a whole one. It was kept as "read in part", never read again.
    server = ArchiveServer(tree).start()
    try:
        conf = _conf(tmp_path, retries=1)
        listing = server.url + MANIFEST
        server.reset(Faults(no_length=True, drop_gets=frozenset(range(1, 1000)), only="/segments/"))
        assert _curate(tmp_path / "root", listing, server.url, conf) == 4  # 6 of 6 failed > max_failed_share
        crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
        assert (crawl["files_done"], crawl["files_partial"], crawl["files_failed"]) == (0, 0, 6)
        reasons = [f["reason"] for f in crawl["failed_files"]]
        assert sum("the server gave no length, so the download may have been cut" in r for r in reasons) == 5
        server.reset(Faults(no_length=True))  # the network heals, the server still sends no length
        assert _curate(tmp_path / "root", listing, server.url, conf) == 0
        crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
        assert (crawl["files_done"], crawl["files_partial"], crawl["files_failed"]) == (4, 0, 2)
        # clipped.warc.gz really ends inside a record: without a length that cannot be told from a cut
        assert sorted(f["file"].rsplit("/", 1)[1] for f in crawl["failed_files"]) == ["clipped.warc.gz",
                                                                                     "missing-00099.warc.gz"]
        server.reset()  # with its length, it is read in part as from disk
        assert _curate(tmp_path / "root", listing, server.url, conf) == 0
    finally:
        server.stop()
    _assert_same_rows(tmp_path / "root", on_disk)
    crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
    assert (crawl["files_done"], crawl["files_partial"], crawl["files_failed"]) == (5, 1, 1)


def test_archives_labelled_content_encoding_gzip_give_the_rows_on_disk(spark, tree, on_disk, tmp_path):
    # Static servers (and objects uploaded with that header) label .gz files `Content-Encoding: gzip`: the files
    # must be read as stored, not inflated by the client (nor refused: "Cannot seek streaming HTTP file").
    server = ArchiveServer(tree, Faults(gzip_encoding=True)).start()
    try:
        assert _curate(tmp_path / "root", server.url + MANIFEST, server.url, _conf(tmp_path)) == 0
    finally:
        server.stop()
    _assert_same_rows(tmp_path / "root", on_disk)


def test_extract_command_reads_an_https_listing(spark, tree, tmp_path):
    server = ArchiveServer(tree).start()
    try:
        code = cli.main(["extract", "--manifest", server.url + MANIFEST, "--input-base", server.url,
                         "--output", str(tmp_path / "http"), "--conf", _conf(tmp_path)])
    finally:
        server.stop()
    assert code == 0
    assert cli.main(["extract", "--manifest", str(tree / MANIFEST), "--input-base", str(tree),
                     "--output", str(tmp_path / "disk"), "--conf", _conf(tmp_path)]) == 0
    assert _rows(tmp_path / "http", "pairs") == _rows(tmp_path / "disk", "pairs")
    record = json.loads((tmp_path / "http" / "extract.json").read_text())
    assert (record["files_ok"], record["files_failed"]) == (5, 1)


def test_s3_listing_gives_the_rows_on_disk(spark, tree, on_disk, tmp_path, capsys):
    with s3_server(tree) as endpoint:  # read anonymously, as the public bucket is (conftest clears credentials)
        conf = _conf(tmp_path, s3_endpoint_url=endpoint)
        assert _curate(tmp_path / "root", f"s3://commoncrawl/{MANIFEST}", "s3://commoncrawl/", conf) == 0
    _assert_same_rows(tmp_path / "root", on_disk)
    crawl = _status(tmp_path / "root", capsys)["crawls"][CRAWL]
    assert (crawl["files_done"], crawl["files_failed"]) == (5, 1)
    assert crawl["failed_files"][0]["file"].endswith("missing-00099.warc.gz")


def test_private_s3_bucket_is_read_with_the_usual_aws_variables(tree, monkeypatch):
    from metaclip_spark.config import load_config
    from metaclip_spark.errors import InputError
    from metaclip_spark.ingestion.manifest import read_manifest

    with s3_server(tree, bucket="private-crawl", public=False) as endpoint:
        settings = load_config("local", overrides={"remote": {"s3_endpoint_url": endpoint}}).remote
        with pytest.raises(InputError, match="PermissionError"):  # anonymous: refused
            read_manifest(f"s3://private-crawl/{MANIFEST}", remote=settings)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        files = read_manifest(f"s3://private-crawl/{MANIFEST}", remote=settings)
    assert [f.source_file for f in files] == LISTED
    # no --input-base: Common Crawl's listing paths are relative to the root above crawl-data/
    assert files[0].location == f"s3://private-crawl/{LISTED[0]}" and files[0].crawl == CRAWL


def test_gcs_listing_gives_the_rows_on_disk(spark, tree, on_disk, tmp_path):
    with gcs_server(tree) as endpoint:
        conf = _conf(tmp_path, gcs_endpoint_url=endpoint, gcs_anonymous=True)
        assert _curate(tmp_path / "root", f"gs://commoncrawl/{MANIFEST}", "gs://commoncrawl/", conf) == 0
    _assert_same_rows(tmp_path / "root", on_disk)


def test_unreachable_listing_exits_3_naming_it(spark, tmp_path, capsys):
    server = ArchiveServer(tmp_path).start()
    try:
        code = cli.main(["curate", "--input", server.url + "crawl-data/none/warc.paths.gz", "--output",
                         str(tmp_path / "root"), "--metadata", SMALL_METADATA, "--conf", _conf(tmp_path)])
    finally:
        server.stop()
    assert code == 3
    assert "cannot read manifest http://127.0.0.1" in capsys.readouterr().err
    assert not (tmp_path / "root" / "summary.json").exists()


def test_status_reads_a_root_without_spark_locally_and_on_s3(on_disk, tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    def status(root: str, *extra: str) -> dict:
        script = ("import json, sys; from metaclip_spark import cli; from pyspark import SparkContext; "
                  "code = cli.main(sys.argv[1:]); assert SparkContext._gateway is None, 'a JVM was started'; "
                  "sys.exit(code)")
        run = subprocess.run([sys.executable, "-c", script, "status", root, "--json", *extra], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    local = status(str(on_disk))
    crawl = local["crawls"][CRAWL]
    assert (crawl["files_listed"], crawl["files_done"], crawl["files_failed"], crawl["files_pending"]) == (6, 5, 1, 0)
    assert local["last_run"]["pairs_curated"] > 0
    with s3_server(on_disk, bucket="roots") as endpoint:  # the same root, as an object store holds it
        remote = status("s3a://roots", "--conf", _conf(tmp_path, s3_endpoint_url=endpoint))
    assert {k: v for k, v in remote.items() if k != "root"} == {k: v for k, v in local.items() if k != "root"}
