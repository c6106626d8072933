"""Reading remote files (storage.py) against a real HTTP server on 127.0.0.1 that cuts, throttles and stalls.

No Spark here: the reader, its retries, the download slots and one file's extraction (extraction.file_pairs, what
a Spark task runs per file) over HTTP, compared with the same file read from disk.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import random
import threading
import time

import pytest

from metaclip_spark.config import load_config
from metaclip_spark.errors import ConfigError
from metaclip_spark.extraction.job import ExtractJob, FileStats, file_pairs
from metaclip_spark.ingestion.manifest import ManifestFile, manifest_format
from metaclip_spark.config import RemoteSettings
from metaclip_spark.storage import (DownloadSlot, RemoteReadError, ResumableReader, backoff_seconds, check_readable,
                                    is_transient, open_archive, s3_is_anonymous)
from metaclip_spark.extraction.webarchive import ArchiveCounts, web_pages

from conftest import DATA
from servers import ArchiveServer, Faults

CC = DATA / "cc"


@pytest.fixture(scope="module")
def server():
    running = ArchiveServer(CC).start()
    yield running
    running.stop()


@pytest.fixture
def settings():
    """The shipped [remote] settings with short waits and 64 KiB range requests (several per test file)."""
    return dataclasses.replace(load_config("local").remote, backoff_seconds=0.01,
                               backoff_max_seconds=0.05, block_bytes=65536, timeout_seconds=2.0)


def _gets(server, path):
    return [(r, status) for method, p, r, status in server.log.entries if method == "GET" and p == path]


def test_cut_connection_resumes_at_the_byte_already_read(server, settings):
    server.reset(Faults(drop_gets=frozenset({2})))  # the second range request of the file is cut half-way
    with ResumableReader(server.url + "sample-0000.warc.gz", settings) as reader:
        data = reader.read()
    assert data == (CC / "sample-0000.warc.gz").read_bytes()
    assert reader.retries == 1 and reader.failure is None
    ranges = [r for r, _ in _gets(server, "/sample-0000.warc.gz")]
    # the cut block is asked for again from its own first byte, not from the start of the file
    assert ranges[1] == ranges[2] and ranges[2].startswith("bytes=131072-")
    assert sum(r.startswith("bytes=0-") for r in ranges) == 1


def test_throttled_server_is_retried_until_it_answers(server, settings):
    server.reset(Faults(fail_first=3))  # 503 Slow Down to the first three requests
    with ResumableReader(server.url + "clipped.warc.gz", settings) as reader:
        assert reader.read() == (CC / "clipped.warc.gz").read_bytes()
    assert reader.retries >= 1
    assert [s for *_, s in server.log.entries[:3]] == [503, 503, 503]


def test_stalled_response_times_out_and_is_retried(server, settings):
    server.reset(Faults(stall_gets=frozenset({1}), stall_seconds=4.0))
    started = time.monotonic()
    with ResumableReader(server.url + "sample-0001.warc.gz", dataclasses.replace(settings, timeout_seconds=1.0)) as r:
        assert r.read() == (CC / "sample-0001.warc.gz").read_bytes()
    assert r.retries == 1
    assert time.monotonic() - started < 4.0  # the timeout, not the stall, ended the first try


def test_missing_object_fails_at_once_without_retries(server, settings):
    server.reset()
    with pytest.raises(RemoteReadError, match="404"):
        ResumableReader(server.url + "missing.warc.gz", settings)
    assert len(server.log.entries) <= 2  # HEAD, then fsspec's GET; never retried


def test_reader_gives_up_after_the_configured_retries(server, settings):
    server.reset(Faults(drop_gets=frozenset(range(1, 100))))
    reader = ResumableReader(server.url + "sample-0000.warc.gz", dataclasses.replace(settings, retries=2))
    with pytest.raises(RemoteReadError, match="after 2 retries"):
        reader.read()
    assert "ClientPayloadError" in reader.failure
    assert len(_gets(server, "/sample-0000.warc.gz")) == 3


def test_transient_errors_are_told_from_permanent_ones():
    class StatusError(Exception):
        def __init__(self, status):
            super().__init__(f"HTTP {status}")
            self.status = status

    for error in (ConnectionResetError(), TimeoutError(), StatusError(503), StatusError(429), StatusError(500)):
        assert is_transient(error), error
    for error in (FileNotFoundError("gone"), PermissionError(), StatusError(403), StatusError(404), ValueError()):
        assert not is_transient(error), error
    wrapped = FileNotFoundError("http://host/x")  # how fsspec's http reports a 503 while asking for a size
    wrapped.__cause__ = StatusError(503)
    assert is_transient(wrapped)
    wrapped.__cause__ = StatusError(404)
    assert not is_transient(wrapped)


def test_backoff_doubles_up_to_its_cap_with_jitter(settings):
    settings = dataclasses.replace(settings, backoff_seconds=1.0, backoff_max_seconds=10.0)
    rng = random.Random(7)
    waits = {attempt: [backoff_seconds(attempt, settings, rng) for _ in range(200)] for attempt in (1, 2, 3, 4, 8)}
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (8, 10.0)):
        assert all(ceiling / 2 <= w <= ceiling for w in waits[attempt])
        assert max(waits[attempt]) - min(waits[attempt]) > ceiling / 4  # spread, so retrying workers drift apart


def test_download_slots_cap_readers_at_once(tmp_path):
    first = DownloadSlot(1, str(tmp_path)).acquire()
    acquired = []

    def second_reader():
        slot = DownloadSlot(1, str(tmp_path)).acquire()
        acquired.append(time.monotonic())
        slot.release()

    thread = threading.Thread(target=second_reader)
    thread.start()
    time.sleep(0.4)
    assert not acquired  # waiting for the only slot
    released = time.monotonic()
    first.release()
    thread.join(5)
    assert acquired and acquired[0] >= released
    two = [DownloadSlot(2, str(tmp_path)).acquire() for _ in range(2)]  # a larger cap lets both through at once
    assert all(s.waited_seconds < 0.2 for s in two)
    for slot in two:
        slot.release()


def test_s3_reads_anonymously_unless_credentials_are_configured(settings):
    auto = dataclasses.replace(settings, s3_anonymous="auto")
    assert not s3_is_anonymous(auto, {"AWS_ACCESS_KEY_ID": "AKIA...", "AWS_SECRET_ACCESS_KEY": "x"})
    assert not s3_is_anonymous(auto, {"AWS_PROFILE": "crawler"})
    assert s3_is_anonymous(auto, {})  # conftest leaves no credential file or instance profile to find
    assert s3_is_anonymous(dataclasses.replace(settings, s3_anonymous="true"), {"AWS_ACCESS_KEY_ID": "x"})
    assert not s3_is_anonymous(dataclasses.replace(settings, s3_anonymous="false"), {})


def test_remote_settings_are_checked():
    for key, value in (("retries", -1), ("block_bytes", 10), ("s3_anonymous", "maybe"), ("timeout_seconds", "60"),
                       ("max_concurrent_downloads", 0), ("gcs_anonymous", "yes")):
        with pytest.raises(ConfigError, match=f"remote.{key}"):
            load_config("local", overrides={"remote": {key: value}})


def test_a_scheme_without_its_backend_stops_before_any_work():
    with pytest.raises(ConfigError, match="adlfs"):
        check_readable("abfs://container/crawl-data/x.warc.gz")
    with pytest.raises(ConfigError, match="no fsspec file system"):
        check_readable("nosuchscheme://bucket/x.warc.gz")
    check_readable("/local/path.warc.gz")
    check_readable("https://data.commoncrawl.org/crawl-data/x.warc.gz")


def test_listing_format_follows_the_listed_names():
    assert manifest_format(["crawl-data/C/segments/s/wat/a.warc.wat.gz", "b.warc.wat.gz"]) == "wat-manifest"
    assert manifest_format(["crawl-data/C/segments/s/warc/a.warc.gz", "b.warc.wat.gz"]) == "warc-manifest"


# One file's extraction, as a Spark task runs it ------------------------------------------------------------------
def _extract(location: str, settings: RemoteSettings) -> tuple[list[tuple], FileStats]:
    job = ExtractJob.from_config(load_config("local", overrides={"extract": {"languages": []}}))
    job = dataclasses.replace(job, remote=settings)
    stats = FileStats("warcfile.warc.gz", location)
    rows = list(file_pairs(ManifestFile(0, "warcfile.warc.gz", location, "CC-MAIN-2020-34"), job, stats))
    return rows, stats


def test_file_over_http_gives_the_pairs_of_the_file_on_disk(server, settings):
    local_rows, local_stats = _extract(str(CC / "warcfile.warc.gz"), settings)
    server.reset(Faults(fail_first=1, drop_gets=frozenset({1, 3}), chunk_delay=0.001))  # slow, throttled, cut
    remote_rows, remote_stats = _extract(server.url + "warcfile.warc.gz", settings)
    assert len(local_rows) > 30 and remote_rows == local_rows
    assert remote_stats.status == local_stats.status == "ok"
    assert remote_stats.counts == local_stats.counts


def test_file_that_cannot_be_fetched_whole_is_failed_never_ok(server, settings):
    server.reset(Faults(drop_gets=frozenset(range(2, 100))))  # the first block arrives, then every try is cut
    _, stats = _extract(server.url + "warcfile.warc.gz", dataclasses.replace(settings, retries=2))
    assert stats.status == "failed"
    assert stats.error.startswith("read failed:") and "after 2 retries" in stats.error


def test_missing_remote_file_is_failed_with_its_reason(server, settings):
    server.reset()
    rows, stats = _extract(server.url + "nowhere/missing.warc.gz", settings)
    assert rows == [] and stats.status == "failed" and "404" in stats.error


class _Unseekable(io.RawIOBase):
    """A stream that cannot seek, like a urllib response or a boto3 body (`rewinds`: seek(0) alone works)."""

    def __init__(self, data: bytes, rewinds: bool = False):
        self._data = io.BytesIO(data)
        self.rewinds = rewinds

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._data.readinto(buffer)

    def seekable(self):
        return False

    def seek(self, offset, whence=0):
        if self.rewinds and (offset, whence) == (0, 0):
            return self._data.seek(0)
        raise io.UnsupportedOperation("seek")

    def tell(self):
        raise io.UnsupportedOperation("tell")


def test_a_gzipped_archive_is_read_from_a_stream_that_cannot_seek():
    counts = ArchiveCounts()
    pages = list(web_pages(_Unseekable((CC / "sample-0000.warc.gz").read_bytes()), counts, 5 << 20))
    assert len(pages) == 22 and counts.records_read == 48 and counts.read_in_part is None


def test_a_panic_of_the_warc_reader_ends_the_file_not_the_task():
    plain = gzip.decompress((CC / "sample-0000.warc.gz").read_bytes())  # uncompressed: FastWARC reads it whole
    counts = ArchiveCounts()
    pages = list(web_pages(_Unseekable(plain, rewinds=True), counts, 5 << 20))
    # FastWARC panics (pyo3's PanicException, a BaseException) on a stream it cannot tell(): caught, recorded
    assert pages == [] and counts.reader_panicked
    assert counts.read_error.startswith("PanicException")


class _CutAfter(io.BytesIO):
    def __init__(self, data: bytes, cut: int):
        super().__init__(data)
        self.cut = cut

    def read(self, size=-1):
        if self.tell() >= self.cut:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(size, 32768) if size and size > 0 else 32768)  # as a network read arrives

    readinto = None  # FastWARC must go through read()


def test_a_stream_error_mid_file_keeps_the_pages_before_it():
    counts = ArchiveCounts()
    pages = list(web_pages(_CutAfter((CC / "sample-0000.warc.gz").read_bytes(), 100_000), counts, 5 << 20))
    assert 0 < len(pages) < 22 and 0 < counts.records_read < 48
    assert counts.read_error == "ConnectionResetError: connection reset by peer" and not counts.reader_panicked


def test_open_archive_reads_local_paths_and_file_urls_directly(settings):
    for location in (str(CC / "clipped.warc.gz"), f"file://{CC / 'clipped.warc.gz'}"):
        with open_archive(location, settings) as f:
            assert isinstance(f, io.BufferedReader) and f.read() == (CC / "clipped.warc.gz").read_bytes()
