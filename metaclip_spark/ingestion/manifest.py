"""Common Crawl path listings (`warc.paths.gz`, `wat.paths.gz`): reading them and resolving the files they list.

A listing holds one path per line, relative to the crawl's root (`crawl-data/CC-MAIN-2023-06/segments/...`),
gzipped or plain. Each path is resolved against an input base: a local directory, `file://...`,
`https://data.commoncrawl.org/`, `s3://commoncrawl/` or any location storage.py reads.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass

from metaclip_spark.errors import InputError
from metaclip_spark.storage import RemoteSettings, check_readable, default_settings, describe, protocol, read_bytes, scheme

COMMONCRAWL_HTTPS = "https://data.commoncrawl.org/"
COMMONCRAWL_S3 = "s3://commoncrawl/"
_CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")
_GZIP_MAGIC = b"\x1f\x8b"


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
    return scheme(path) is not None


def resolve(input_base: str | None, path: str) -> str:
    """Where a listed path lives: absolute paths and URLs as they are, others joined to the input base."""
    if _has_scheme(path) or os.path.isabs(path) or not input_base:
        return path
    return input_base.rstrip("/") + "/" + path.lstrip("/")


def default_input_base(manifest: str, lines: list[str]) -> str:
    """Where relative paths live when no input base is given: the root above `crawl-data/` for Common Crawl's own
    listings (`.../crawl-data/CC-MAIN-.../warc.paths.gz` listing `crawl-data/...` paths), else the listing's folder."""
    location = manifest if _has_scheme(manifest) else os.path.abspath(manifest)
    marker = "/crawl-data/"
    if lines and lines[0].startswith(marker[1:]) and marker in location:
        return location[:location.rindex(marker) + 1]
    return location.rsplit("/", 1)[0]


def read_manifest_lines(raw: bytes) -> list[str]:
    """The non-empty lines of a listing, gzipped or plain (a byte order mark, as Windows editors write, ignored)."""
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def manifest_format(lines: list[str]) -> str:
    """`wat-manifest` when every listed file is a WAT file, else `warc-manifest` (the reader takes both)."""
    return "wat-manifest" if all(line.endswith((".wat.gz", ".wat")) for line in lines) else "warc-manifest"


def read_manifest_text(manifest: str, remote: RemoteSettings | None = None) -> list[str]:
    """The listed paths of a listing, read wherever it lives (with retries when remote)."""
    check_readable(manifest)
    try:
        raw = read_bytes(manifest, remote or default_settings())
    except (OSError, EOFError) as e:
        raise InputError(f"cannot read manifest {manifest}: {describe(e)}") from None
    try:
        return read_manifest_lines(raw)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"manifest {manifest} is not a gzipped or plain list of paths: {e}") from None


def read_manifest(manifest: str, input_base: str | None = None, crawl: str | None = None,
                  remote: RemoteSettings | None = None) -> list[ManifestFile]:
    """The files a listing names, resolved against `input_base` (default: see default_input_base).

    The crawl of each file is `crawl` when given, else the `CC-MAIN-...` id in its path or the listing's name.
    """
    lines = read_manifest_text(manifest, remote)
    if not lines:
        raise InputError(f"manifest {manifest} lists no files")
    if input_base is None:
        input_base = default_input_base(manifest, lines)
    files = [ManifestFile(index, line, resolve(input_base, line), crawl or crawl_id(line, manifest))
             for index, line in enumerate(lines)]
    for location in {protocol(f.location): f.location for f in files}.values():
        check_readable(location)  # every scheme listed has a reader here, before any task starts
    return files

