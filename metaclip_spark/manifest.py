"""Common Crawl path listings (`warc.paths.gz`, `wat.paths.gz`) and opening the files they list.

A listing holds one path per line, relative to the crawl's root (`crawl-data/CC-MAIN-2023-06/segments/...`),
gzipped or plain. Each path is resolved against an input base: a local directory, `file://...`,
`https://data.commoncrawl.org/` or `s3://commoncrawl/` (needs the `s3` extra, boto3).
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

from .errors import ConfigError, InputError

COMMONCRAWL_HTTPS = "https://data.commoncrawl.org/"
COMMONCRAWL_S3 = "s3://commoncrawl/"
_CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")
_GZIP_MAGIC = b"\x1f\x8b"
_SCHEMES = ("file://", "http://", "https://", "s3://", "s3a://")


@dataclass(frozen=True)
class ManifestFile:
    """One listed file: its position in the listing, the line as written, where to read it, its crawl."""

    index: int
    source_file: str
    location: str
    crawl: str | None


def crawl_id(*paths: str) -> str | None:
    """The first `CC-MAIN-YYYY-WW` in the given paths, in order."""
    for path in paths:
        match = _CRAWL_ID.search(path or "")
        if match:
            return match.group(0)
    return None


def _has_scheme(path: str) -> bool:
    return path.startswith(_SCHEMES)


def resolve(input_base: str | None, path: str) -> str:
    """Where a listed path lives: absolute paths and URLs as they are, others joined to the input base."""
    if _has_scheme(path) or os.path.isabs(path) or not input_base:
        return path
    return input_base.rstrip("/") + "/" + path.lstrip("/")


def open_input(location: str) -> BinaryIO:
    """A binary stream over a local file, file://, http(s):// or s3:// object, read as it streams."""
    if location.startswith("file://"):
        location = location.removeprefix("file://")
    if location.startswith(("http://", "https://")):
        import urllib.request

        request = urllib.request.Request(location, headers={"User-Agent": "metaclip-spark"})
        return urllib.request.urlopen(request, timeout=60)  # noqa: S310 - the user chose the input base
    if location.startswith(("s3://", "s3a://")):
        try:
            import boto3
        except ImportError:
            raise ConfigError("reading s3:// needs boto3: pip install 'metaclip-spark[s3]'") from None
        bucket, _, key = location.split("://", 1)[1].partition("/")
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    return open(location, "rb")


def read_manifest_lines(raw: bytes) -> list[str]:
    """The non-empty lines of a listing, gzipped or plain."""
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_manifest(manifest: str, input_base: str | None = None, crawl: str | None = None) -> list[ManifestFile]:
    """The files a listing names, resolved against `input_base` (default: the listing's own directory).

    The crawl of each file is `crawl` when given, else the `CC-MAIN-...` id in its path or the listing's name.
    """
    try:
        with open_input(manifest) as stream:
            raw = stream.read()
    except (OSError, EOFError) as e:
        raise InputError(f"cannot read manifest {manifest}: {e}") from None
    try:
        lines = read_manifest_lines(raw)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"manifest {manifest} is not a gzipped or plain list of paths: {e}") from None
    if not lines:
        raise InputError(f"manifest {manifest} lists no files")
    if input_base is None and not _has_scheme(manifest):
        input_base = os.path.dirname(os.path.abspath(manifest))
    elif input_base is None:
        input_base = manifest.rsplit("/", 1)[0]
    return [
        ManifestFile(index, line, resolve(input_base, line), crawl or crawl_id(line, manifest))
        for index, line in enumerate(lines)
    ]

