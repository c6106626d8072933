"""Opening manifests and web archives where they live, through fsspec: local paths, `file://`, `http(s)://`,
`s3://` (s3fs), `gs://` (gcsfs) and any other protocol whose fsspec backend is installed (`hdfs://`, `abfs://`).

A remote file is read through `ResumableReader`, a seekable file object: FastWARC needs one (fsspec's http, s3
and gs files seek with range requests, read ahead in `remote.block_bytes` blocks), and a dropped connection,
a timeout or an HTTP 429/5xx is retried with capped exponential backoff and jitter, reopening the object at the
byte offset already read. When the retries run out the reader raises `RemoteReadError` and keeps the reason in
`failure`: FastWARC may turn an exception raised inside `read` into a panic or an early end of file, so the
extract stage asks the reader, not the record loop, whether the whole file was read.

At most `remote.max_concurrent_downloads` remote files are open at once on an executor (Common Crawl answers
"503 Slow Down" to crowds): the Python workers of an executor share lock files, see `DownloadSlot`.
"""

from __future__ import annotations

import fcntl
import io
import os
import random
import tempfile
import time
from functools import lru_cache
from typing import BinaryIO, Callable, TypeVar

from metaclip_spark.config import RemoteSettings
from metaclip_spark.errors import ConfigError

T = TypeVar("T")

# fsspec protocol of each URL scheme we map ourselves; any other scheme goes to fsspec as it is.
_PROTOCOL_ALIASES = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}
_BACKEND_PACKAGES = {"s3": "s3fs (pip install 'metaclip-spark[s3]')", "gs": "gcsfs (pip install 'metaclip-spark[gcs]')",
                     "http": "aiohttp", "https": "aiohttp", "abfs": "adlfs", "az": "adlfs",
                     "hdfs": "pyarrow with libhdfs"}
_TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_PERMANENT_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
_CLIENT_LIBRARIES = ("aiohttp", "botocore", "aiobotocore", "urllib3", "requests", "google")


class RemoteReadError(OSError):
    """A remote file that could not be read whole, after the configured retries."""


class EarlyEndOfData(ConnectionError):
    """The server ended a response before the object's size: a cut connection, retried like one."""


@lru_cache(maxsize=1)
def default_settings() -> RemoteSettings:
    """The [remote] settings of the local profile (for callers that were given none)."""
    from metaclip_spark.config import load_config

    return load_config("local").remote


# Where a location lives ------------------------------------------------------------------------------------------
def scheme(location: str) -> str | None:
    """The URL scheme of `location` (lower case), or None for a plain local path."""
    head, sep, _ = location.partition("://")
    return head.lower() if sep and head.replace("+", "").replace("-", "").isalnum() else None


def is_local(location: str) -> bool:
    return scheme(location) in (None, "file")


def local_path(location: str) -> str:
    return location.removeprefix("file://") if location.startswith("file://") else location


def protocol(location: str) -> str:
    """The fsspec protocol that reads `location`."""
    name = scheme(location) or "file"
    return _PROTOCOL_ALIASES.get(name, name)


def check_readable(location: str) -> None:
    """Stop early (exit 2) when no installed fsspec backend reads `location`'s scheme."""
    if is_local(location):
        return
    import fsspec

    name = protocol(location)
    try:
        fsspec.get_filesystem_class(name)
    except ValueError:
        raise ConfigError(f"cannot read {location}: no fsspec file system for {name}://") from None
    except ImportError:
        needs = _BACKEND_PACKAGES.get(name, f"the fsspec backend for {name}://")
        raise ConfigError(f"reading {name}:// needs {needs}") from None


def s3_is_anonymous(settings: RemoteSettings, environ=os.environ) -> bool:
    """`auto`: anonymous (the public Common Crawl bucket) unless AWS credentials are configured."""
    if settings.s3_anonymous != "auto":
        return settings.s3_anonymous == "true"
    if environ.get("AWS_ACCESS_KEY_ID") or environ.get("AWS_PROFILE") or environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") \
            or environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return False
    try:
        import botocore.session

        return botocore.session.Session().get_credentials() is None  # ~/.aws files, instance profiles
    except Exception:  # noqa: BLE001 - no botocore, or a credential provider that cannot be reached
        return True


def storage_options(name: str, settings: RemoteSettings) -> dict:
    """fsspec options for protocol `name`: timeouts, endpoints and credentials from the [remote] settings.

    Retries are ours (ResumableReader), so the clients' own are kept to what they do inside one request.
    """
    if name in ("http", "https"):
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.timeout_seconds,
                                        sock_read=settings.timeout_seconds)
        # The bytes as stored: a `.warc.gz` a server labels `Content-Encoding: gzip` must stay gzipped (aiohttp
        # would inflate only its first gzip member, one record of a Common Crawl file).
        return {"client_kwargs": {"timeout": timeout, "headers": {"User-Agent": "metaclip-spark"},
                                  "auto_decompress": False}}
    if name == "s3":
        options: dict = {"anon": s3_is_anonymous(settings),
                         "config_kwargs": {"connect_timeout": settings.timeout_seconds,
                                           "read_timeout": settings.timeout_seconds}}
        if settings.s3_endpoint_url:
            options["endpoint_url"] = settings.s3_endpoint_url
        return options
    if name == "gs":
        options = {"token": "anon"} if settings.gcs_anonymous else {}
        if settings.gcs_endpoint_url:
            options["endpoint_url"] = settings.gcs_endpoint_url
        return options
    return {}


def filesystem(location: str, settings: RemoteSettings | None):
    """(fsspec file system, path inside it) for a location, local (`settings` unused) or remote; instances are
    cached per process by fsspec."""
    import fsspec

    if is_local(location):
        return fsspec.filesystem("file"), local_path(location)
    name = protocol(location)
    path = location.split("://", 1)[1]
    if name == "gs":
        # gcsfs's default class first asks a gRPC control plane for the bucket layout (a minute's timeout against
        # an emulator or a firewall); the JSON API alone reads objects.
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(**storage_options(name, settings)), path
    if name in ("http", "https"):
        path = location
    fs = fsspec.filesystem(name, **storage_options(name, settings))
    return fs, (fs._strip_protocol(path) if name not in ("http", "https") else path)


# Transient or not ------------------------------------------------------------------------------------------------
def _http_status(error: BaseException) -> int | None:
    for attribute in ("status", "code", "status_code"):
        value = getattr(error, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(error, "response", None)  # botocore.exceptions.ClientError
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


def _underlying(error: BaseException) -> BaseException:
    """fsspec's http reports any failure to stat a URL (a 503 included) as FileNotFoundError from the real error."""
    cause = error.__cause__
    if isinstance(error, FileNotFoundError) and cause is not None and cause is not error:
        return _underlying(cause)
    return error


def is_transient(error: BaseException) -> bool:
    """Worth another try: a cut or refused connection, a timeout, HTTP 408/425/429/5xx; not a missing object."""
    error = _underlying(error)
    if isinstance(error, _PERMANENT_ERRORS):
        return False
    status = _http_status(error)
    if status is not None:
        return status in _TRANSIENT_HTTP_STATUS
    if isinstance(error, (OSError, TimeoutError, EOFError)):
        return True
    # aiohttp's ClientError, botocore's BotoCoreError, ...: client-library errors without a status are network ones
    return any(c.__module__.split(".")[0] in _CLIENT_LIBRARIES for c in type(error).__mro__)


def backoff_seconds(attempt: int, settings: RemoteSettings, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: attempt 1 waits ~base, then doubling, never above the cap."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_seconds * 2 ** (attempt - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())  # jitter: workers retrying together drift apart


def describe(error: BaseException) -> str:
    """One line: the error's class and first line of text (the real error under fsspec's FileNotFoundError)."""
    error = _underlying(error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# Download slots --------------------------------------------------------------------------------------------------
class DownloadSlot:
    """One of `limit` slots shared by the Python workers of one executor: lock files in a directory named after
    the worker's parent (the executor's `pyspark.daemon`, or the executor itself without the daemon). A slot is
    freed on release or when its process dies (the kernel drops the lock)."""

    def __init__(self, limit: int, directory: str | None = None, poll_seconds: float = 0.05):
        self.limit = limit
        self.directory = directory or os.path.join(
            tempfile.gettempdir(), f"metaclip-spark-downloads-{os.getuid()}-{os.getppid()}")
        self.poll_seconds = poll_seconds
        self._fd: int | None = None
        self.waited_seconds = 0.0

    def acquire(self) -> "DownloadSlot":
        os.makedirs(self.directory, exist_ok=True)
        started = time.monotonic()
        delay = self.poll_seconds
        while True:
            for number in range(self.limit):
                fd = os.open(os.path.join(self.directory, f"slot-{number}.lock"), os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self._fd = fd
                self.waited_seconds = time.monotonic() - started
                return self
            time.sleep(delay)
            delay = min(1.0, delay * 1.5)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# Reading ---------------------------------------------------------------------------------------------------------
class ResumableReader(io.RawIOBase):
    """A remote object as a seekable binary file that survives cut connections and throttling.

    Every read and (re)open runs under the retry policy; after an error the object is opened again and the read
    that failed is asked for again from its first byte (with fsspec's read-ahead, the start of the block of
    `remote.block_bytes` being fetched: at most one block is fetched twice). `failure` holds the reason once the
    retries run out, `retries` how many were used, `size` the object's size when the store tells it.

    A store that tells no size (an HTTP server sending no Content-Length, or a Content-Encoding that hides it)
    offers no ranges to seek or resume with: the object is copied whole into a local temporary file first, the
    copy started again on an error, and read from there. Without a Content-Length `size` stays None: a connection
    closed early then looks like the object's end, so the caller must not take a file that ends inside a record as
    complete.
    """

    def __init__(self, location: str, settings: RemoteSettings, slot: DownloadSlot | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__()
        self.location = location
        self.settings = settings
        self.failure: str | None = None
        self.retries = 0
        self._sleep = sleep
        self._position = 0
        self._file = None
        self.size: int | None = None
        self._copied = False
        self._slot = None
        self._slot = slot.acquire() if slot else None
        try:
            self._fs, self._path = filesystem(location, settings)
            self._with_retries(self._ensure_open)
        except BaseException:
            self.close()
            raise
        self.size = getattr(self._file, "size", None)
        if self.size is None:
            try:
                self._with_retries(self._copy_whole)
            except BaseException:
                self.close()
                raise

    # io.RawIOBase ----------------------------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            if self.size is None:
                raise io.UnsupportedOperation(f"{self.location}: size unknown, cannot seek from the end")
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        if target != self._position:
            self._position = target
            if self._file is not None:
                self._file.seek(target)  # fsspec files seek locally; the next read asks for the new range
        return self._position

    def readinto(self, buffer) -> int:
        data = self._with_retries(lambda: self._read_at_position(len(buffer)))
        size = len(data)
        buffer[:size] = data
        self._position += size
        return size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        data = self._with_retries(lambda: self._read_at_position(size))
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(self.settings.block_bytes):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.closed:
            return
        self._close_file()
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        super().close()

    # Retries ---------------------------------------------------------------------------------------------------
    def _copy_whole(self) -> None:
        """The object, read from its first byte, into a local temporary file that then serves every read."""
        self._close_file()
        self._ensure_open()
        copy = tempfile.TemporaryFile(prefix="metaclip-spark-download-")
        try:
            while chunk := self._file.read(self.settings.block_bytes):
                copy.write(chunk)
            copied = copy.tell()
            copy.seek(0)
        except BaseException:
            copy.close()
            raise
        # A Content-Length the response did give (beside a Content-Encoding) is a length after all: the HTTP client
        # fails a body shorter than it (retried above), so a copy of exactly that many bytes is the whole file.
        declared = getattr(getattr(self._file, "r", None), "headers", {}).get("Content-Length", "")
        if declared.isdigit() and int(declared) == copied:
            self.size = copied
        self._close_file()
        self._file, self._copied = copy, True

    def _ensure_open(self) -> None:
        if self._file is None and self._copied:
            raise OSError("the local copy of the download was closed")
        if self._file is None:
            self._file = self._fs.open(self._path, "rb", block_size=self.settings.block_bytes,
                                       cache_type="readahead")
            if self._position:
                self._file.seek(self._position)

    def _read_at_position(self, size: int) -> bytes:
        self._ensure_open()
        data = self._file.read(size)
        if not data and size > 0 and self.size is not None and self._position < self.size:
            raise EarlyEndOfData(f"data ended at byte {self._position:,} of {self.size:,}")
        return data

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - the connection is being dropped anyway
                pass
            self._file = None

    def _with_retries(self, action: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return action()
            except Exception as error:  # noqa: BLE001 - each client library raises its own classes
                if attempt >= self.settings.retries or not is_transient(error):
                    tried = f" after {attempt} retries" if attempt else ""
                    self.failure = f"{describe(error)} (at byte {self._position:,}{tried})"
                    raise RemoteReadError(f"{self.location}: {self.failure}") from error
                attempt += 1
                self.retries += 1
                self._close_file()
                self._sleep(backoff_seconds(attempt, self.settings))


def open_archive(location: str, settings: RemoteSettings) -> BinaryIO:
    """A seekable binary file over `location`: the file itself when local, else a ResumableReader holding one of the
    executor's download slots."""
    if is_local(location):
        return open(local_path(location), "rb")
    return ResumableReader(location, settings, DownloadSlot(settings.max_concurrent_downloads))


def read_bytes(location: str, settings: RemoteSettings) -> bytes:
    """The whole of a small object (a manifest), with the same retries as an archive."""
    if is_local(location):
        with open(local_path(location), "rb") as f:
            return f.read()
    with ResumableReader(location, settings) as reader:
        return reader.readall()
