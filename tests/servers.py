"""Real servers on 127.0.0.1 that tests (and the benchmark) read web archives from, each started in-process.

- `ArchiveServer`: HTTP/1.1 over a directory, with HEAD and byte ranges as Common Crawl's https endpoint serves
  them, and faults to order: cut a response half-way, answer 503 to the first requests of each path, stall in the
  middle of a body, or send slowly; send no length (the body ends when the connection closes, no ranges), or label
  a `.gz` file `Content-Encoding: gzip` as some static servers do. It records every request and the most requests
  it served at once.
- `s3_server`: moto's standalone S3 server (`ThreadedMotoServer`), a bucket laid out like `s3://commoncrawl/`.
- `gcs_server`: gcp-storage-emulator, the Google Cloud Storage JSON API, a bucket laid out the same way.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Faults:
    """What the server does wrong, per path (counted over GET and HEAD requests of that path)."""

    fail_first: int = 0          # answer 503 Slow Down to the first N requests
    drop_gets: frozenset = frozenset()   # cut these GET bodies (1 = the first served) half-way, closing the connection
    stall_gets: frozenset = frozenset()  # stop sending half-way through these GET bodies for stall_seconds
    stall_seconds: float = 0.0
    chunk_delay: float = 0.0     # pause between 16 KiB chunks of every body (a slow server)
    only: str = ""               # when set, the faults hit only paths containing this text
    no_length: bool = False      # no Content-Length and no ranges: the body ends when the connection closes
    gzip_encoding: bool = False  # a `.gz` file is sent as it is, labelled `Content-Encoding: gzip`


@dataclass
class RequestLog:
    entries: list = field(default_factory=list)  # (method, path, range header, status)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - quiet; the request log holds what tests need
        pass

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self._serve(body=False)

    def do_GET(self):  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        log = self.server.log
        with log.lock:
            log.active += 1
            log.max_active = max(log.max_active, log.active)
        self._active = True
        try:
            self._respond(body)
        finally:
            self._finished()

    def _finished(self) -> None:
        """The request stops counting as active. Called just before its last bytes go out too: a client that has them
        all may start its next download at once, before this thread runs again (seen as two at once under load)."""
        if self._active:
            self._active = False
            with self.server.log.lock:
                self.server.log.active -= 1

    def _record(self, status: int) -> None:
        with self.server.log.lock:
            self.server.log.entries.append((self.command, self.path, self.headers.get("Range"), status))

    def _respond(self, body: bool) -> None:
        server = self.server
        path = self.path.split("?", 1)[0]
        faults = server.faults if server.faults.only in path else Faults()
        with server.log.lock:
            server.seen[path] += 1
            seen = server.seen[path]
            if body and seen > faults.fail_first:
                server.gets[path] += 1
            gets = server.gets[path]
        if seen <= faults.fail_first:
            self._record(503)
            self.send_response(503, "Slow Down")
            self.send_header("Content-Length", "0")
            self.send_header("Retry-After", "0")
            self._finished()
            self.end_headers()
            return
        file = (server.root / path.lstrip("/")).resolve()
        if server.root not in file.parents or not file.is_file():
            self._record(404)
            self._finished()
            self.send_error(404)
            return
        size = file.stat().st_size
        start, end = 0, size - 1
        status = 200
        match = None if faults.no_length else _RANGE.match(self.headers.get("Range", "") or "")
        if match:
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:  # a suffix range: the last N bytes
                start = max(0, size - int(match.group(2)))
            if start >= size:
                self._record(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self._finished()
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if faults.gzip_encoding and path.endswith(".gz"):
            self.send_header("Content-Encoding", "gzip")
        if faults.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        data = b""
        if body:
            with open(file, "rb") as f:
                f.seek(start)
                data = f.read(length)
        if not data:
            self._finished()
        self.end_headers()
        if not data:
            return
        if gets in faults.drop_gets:
            self._finished()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        stall = gets in faults.stall_gets
        for offset in range(0, len(data), 16384):
            if stall and offset >= len(data) // 2:
                self.wfile.flush()
                time.sleep(faults.stall_seconds)
                stall = False
            if faults.chunk_delay:
                time.sleep(faults.chunk_delay)
            if offset + 16384 >= len(data):
                self._finished()
            try:
                self.wfile.write(data[offset:offset + 16384])
            except OSError:  # the client gave up (a timeout): nothing more to send
                self.close_connection = True
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ArchiveServer:
    """An HTTP server over `root` on 127.0.0.1 (an ephemeral port); `faults` may be changed between runs."""

    def __init__(self, root: Path, faults: Faults | None = None):
        self.root = Path(root).resolve()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.root = self.root
        self._server.faults = faults or Faults()
        self._server.log = RequestLog()
        self._server.seen = Counter()
        self._server.gets = Counter()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/"

    @property
    def log(self) -> RequestLog:
        return self._server.log

    def reset(self, faults: Faults | None = None) -> None:
        """New faults, fresh request counters and log."""
        self._server.faults = faults or Faults()
        self._server.log = RequestLog()
        self._server.seen = Counter()
        self._server.gets = Counter()

    def start(self) -> "ArchiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def upload_tree(put, root: Path) -> list[str]:
    """Call put(key, bytes) for every file under root; returns the keys."""
    keys = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            key = path.relative_to(root).as_posix()
            put(key, path.read_bytes())
            keys.append(key)
    return keys


@contextlib.contextmanager
def s3_server(root: Path, bucket: str = "commoncrawl", public: bool = True):
    """moto's S3 server on 127.0.0.1 with `bucket` holding the files under `root`; yields the endpoint URL.

    A public bucket can be read without signing, like Common Crawl's; a private one answers 403 to anonymous
    requests and takes any signed ones (moto checks no secrets).
    """
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        acl = {"ACL": "public-read"} if public else {}
        client.create_bucket(Bucket=bucket, **acl)
        upload_tree(lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data, **acl), root)
        yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def gcs_server(root: Path, bucket: str = "commoncrawl"):
    """gcp-storage-emulator on 127.0.0.1 with `bucket` holding the files under `root`; yields the endpoint URL."""
    from gcp_storage_emulator.server import create_server
    from gcsfs.core import GCSFileSystem

    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=bucket)
    server.start()
    endpoint = f"http://127.0.0.1:{server._api._httpd.server_port}"
    try:
        fs = GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True)
        upload_tree(lambda key, data: fs.pipe(f"{bucket}/{key}", data), root)
        yield endpoint
    finally:
        server.stop()

