"""The checks of an --input (or extract's --manifest) that need no Spark, made before the root or Spark exist.

A wrong path, a listing given as a pool, a pool given as a listing, a Parquet pool without the url column: each
is answered in one line (exit 3, or 2 for a listing's missing --crawl, as ingest says it later) naming what the
input looks like and the fix, in a second, leaving nothing on disk. What is looked at stays small whatever the
input's size: the first HEAD_BYTES of one file (decompressed as far as they go), a Parquet file's footer (its
schema), the first JSON lines. A pool read through Spark's Hadoop file systems only (hdfs://, s3a://, abfs://, ...)
is left to Spark's own checks (ingestion/pool.py), which say the same things later; a listing elsewhere (https://, s3://,
gs://) is read as storage.py reads it, its first bytes only.
"""

from __future__ import annotations

import bz2
import json
import os
import zlib

from metaclip_spark.ingestion import sources
from metaclip_spark.errors import ConfigError, InputError

HEAD_BYTES = 1 << 16  # what is read of one file to tell what it holds
JSON_LINES_LOOKED_AT = 100
_LISTED_FILES = 1000
_WEB_ARCHIVE = (".warc", ".wat")  # what the extract stage reads (extraction/webarchive.py, extraction/wat.py)
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_LOOKS = {
    "parquet": "a Parquet file (pass --input-format parquet)",
    "jsonl": "JSON lines (pass --input-format jsonl)",
    "listing": "a listing of web archives (pass --input-format warc-manifest)",
    "web-archive": "a web archive itself, not a listing of them (write its path in a file, one per line, and pass "
                   "that file as the listing)",
    "binary": "binary data that is neither Parquet nor gzipped/bz2 text",
    "text": "plain text that is neither JSON lines nor a listing of web archives",
    "empty": "an empty file",
}


class Head:
    """The first bytes of one file, decompressed, and what they look like."""

    def __init__(self, name: str, raw: bytes, whole: bool, limit: int = HEAD_BYTES * 8):
        self.name = name
        self.raw = raw
        self.whole = whole  # raw is the whole file (so its lines are all of them)
        self.data, self.complete = _decompressed(raw, whole, limit)
        self.kind = _kind(self.raw, self.data)

    def lines(self) -> list[str]:
        """The complete, non-empty lines of the head (the last one dropped when the head was cut in its middle)."""
        text = self.data.decode("utf-8", errors="replace").lstrip("\ufeff")
        lines = text.splitlines()
        if not self.complete and lines and not text.endswith("\n"):
            lines = lines[:-1]
        return [line.strip() for line in lines if line.strip()]

    def looks_like(self) -> str:
        return _LOOKS[self.kind]


def _decompressed(raw: bytes, whole: bool, limit: int) -> tuple[bytes, bool]:
    """(the head's bytes, decompressed as far as they go, up to `limit` bytes (0: all); whether that is the whole
    content)."""
    try:
        if raw[:2] == b"\x1f\x8b":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(raw, limit)
            return data, whole and inflater.eof and not inflater.unconsumed_tail
        if raw[:3] == b"BZh":
            decompressor = bz2.BZ2Decompressor()
            data = decompressor.decompress(raw, limit or -1)
            return data, whole and decompressor.eof
    except (OSError, EOFError, zlib.error, ValueError):
        return b"", False
    return raw, whole


def _is_web_archive_path(line: str) -> bool:
    name = line.rsplit("/", 1)[-1].lower()
    for suffix in _COMPRESSED:
        name = name.removesuffix(suffix)
    return name.endswith(_WEB_ARCHIVE) and not any(c.isspace() for c in line)


def _kind(raw: bytes, data: bytes) -> str:
    if raw[:4] == b"PAR1":
        return "parquet"
    if not data.strip():
        return "empty" if not raw or data == raw else "binary"
    if data.startswith((b"WARC/", b"filedesc://")):
        return "web-archive"
    try:
        text = data[:HEAD_BYTES].decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data[:HEAD_BYTES]) - 4:  # not merely a character cut at the head's end
            return "binary"
        text = data[:e.start].decode("utf-8")
    first = next((line.strip() for line in text.lstrip("\ufeff").splitlines()
                  if line.strip() and not line.lstrip().startswith("#")), "")
    if first.startswith(("{", "[")):
        return "jsonl"
    if _is_web_archive_path(first):
        return "listing"
    return "text"


# Reading a head, wherever the file is ---------------------------------------------------------------------------

def _local_files(path: str) -> list[str]:
    """The data files of a local directory (Spark's rule: names starting with _ or . are not data), sorted, bounded."""
    found: list[str] = []
    for directory, subdirectories, files in os.walk(path):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith(("_", ".")))
        found += [os.path.join(directory, f) for f in sorted(files) if not f.startswith(("_", "."))]
        if len(found) >= _LISTED_FILES:
            break
    return found[:_LISTED_FILES]


def _local_head(path: str) -> Head:
    with open(path, "rb") as f:
        raw = f.read(HEAD_BYTES + 1)
    return Head(path, raw[:HEAD_BYTES], len(raw) <= HEAD_BYTES)


def _local_listing(path: str) -> Head:
    """A local listing whole (as the ingest reads it): every line is checked, its format told from all of them."""
    with open(path, "rb") as f:
        return Head(path, f.read(), True, limit=0)


def _remote_head(location: str, settings) -> Head:
    """The first bytes of a remote listing, through storage.py (its retries); a missing one is exit 3 now, in the
    words ingestion/manifest.py uses for a listing it cannot read."""
    from metaclip_spark.storage import ResumableReader, _http_status, check_readable, describe

    check_readable(location)
    try:
        with ResumableReader(location, settings) as reader:
            raw = reader.read(HEAD_BYTES + 1)
    except OSError as e:
        causes, error = [], e
        while error is not None and len(causes) < 10:
            causes.append(error)
            error = error.__cause__ or error.__context__
        if any(isinstance(c, FileNotFoundError) or _http_status(c) == 404 for c in causes):
            raise InputError(f"cannot read manifest {location}: it does not exist") from None
        raise InputError(f"cannot read manifest {location}: {describe(e)}") from None
    return Head(location, raw[:HEAD_BYTES], len(raw) <= HEAD_BYTES)


# The checks -----------------------------------------------------------------------------------------------------

def check_input(path: str, input_format: str | None, config, crawl: str | None = None) -> str | None:
    """Check `path` as an input of `input_format` (None: told from its name or content) without Spark: it exists,
    its content is of that format, a pool has the url and text columns as strings, a listing lists web archives.
    Returns the format (the one given, or the one told), or None where only Spark can tell (a pool on a Hadoop
    file system). `crawl`: the --crawl given (a listing's paths must say theirs otherwise)."""
    from metaclip_spark.storage import is_local, local_path

    given = sources.source(input_format) if input_format else None
    if not is_local(path):
        if (given and given.is_listing) or (given is None and sources.format_of_name(path, sources.EXTRACT)):
            return check_listing(path, config, crawl, input_format, head=_remote_head(path, config.remote))
        return input_format  # a pool on a Hadoop file system: Spark's checks (ingestion/pool.py)
    local = local_path(path)
    if not os.path.exists(local):
        raise InputError(f"input path does not exist: {path}")
    by_name = sources.format_of_name(path) if os.path.isfile(local) else None
    chosen = input_format or by_name or (sources.format_of_name(path, sources.POOL) if os.path.isdir(local) else None)
    if os.path.isdir(local):
        if chosen and sources.source(chosen).is_listing:
            raise InputError(f"input {path} is a directory, not a listing of web archives: pass the listing file "
                             "(warc.paths.gz), or a pool's directory with --input-format parquet or jsonl")
        files = _local_files(local)
        if not files:
            raise InputError(f"input {path} holds no data files (names starting with _ or . are not data)")
        if chosen is None:
            told = {sources.format_of_name(f, sources.POOL) for f in files} - {None}
            if len(told) == 1:
                chosen = told.pop()
            else:
                found = ", ".join(sorted(told)) or "no .parquet or .jsonl files"
                looks = _local_head(files[0]).looks_like()
                raise ConfigError(f"cannot tell the input format of {path} ({found}; its first file "
                                  f"{os.path.basename(files[0])} looks like {looks}): pass --input-format")
        # the first file named as the format says (a stray README.txt beside them is Spark's to report, naming it)
        named = [f for f in files if sources.format_of_name(f, sources.POOL) == chosen]
        head = _local_head((named or files)[0])
    else:
        head = _local_head(local)
        if chosen is None:  # a name that says nothing: the content tells, or the input is none of ours
            chosen = {"parquet": "parquet", "jsonl": "jsonl", "listing": "warc-manifest"}.get(head.kind)
            if chosen is None:
                raise InputError(f"input {path} looks like {head.looks_like()}; an input is a pool of pairs "
                                 "(Parquet, JSON lines) or a listing of web archives (warc.paths.gz)")
            if chosen == "warc-manifest":
                input_format = None  # told from the listed names (WARC or WAT) below
    if sources.source(chosen).is_listing:
        return check_listing(path, config, crawl, input_format, _local_listing(local) if head.kind == "listing" else head)
    check_pool(path, chosen, head, config)
    return chosen


def _mismatch(path: str, told: str, head: Head) -> InputError:
    what = "it" if head.name == path else f"its first file {os.path.basename(head.name)}"
    return InputError(f"input {path} is not {told}: {what} looks like {head.looks_like()}")


def check_manifest(path: str, config, crawl: str | None = None) -> None:
    """extract's --manifest: a listing of web archives (its first lines), wherever it is."""
    from metaclip_spark.storage import is_local, local_path

    if not is_local(path):
        check_listing(path, config, crawl, "warc-manifest", _remote_head(path, config.remote), False)
        return
    local = local_path(path)
    if not os.path.isfile(local):
        raise InputError(f"manifest {path} " + ("is a directory, not a listing of web archives" if os.path.isdir(local)
                                                 else "does not exist"))
    head = _local_head(local)
    check_listing(path, config, crawl, "warc-manifest", _local_listing(local) if head.kind == "listing" else head, False)


def check_listing(path: str, config, crawl: str | None, input_format: str | None, head: Head,
                  crawl_required: bool = True) -> str | None:
    """A listing's first lines name web archives (and, without --crawl, say their crawl where the command needs
    one); returns its format."""
    from metaclip_spark.ingestion.manifest import crawl_id, manifest_format

    if head.kind != "listing":
        if head.kind == "empty" or (head.kind == "text" and not head.lines()):
            raise InputError(f"manifest {path} lists no files")
        raise _mismatch(path, "a listing of web archives (warc.paths.gz, wat.paths.gz)", head)
    lines = [line for line in head.lines() if not line.startswith("#")]
    odd = next((line for line in lines if not _is_web_archive_path(line)), None)
    if odd is not None:
        raise InputError(f"manifest {path} lists {odd[:80]!r}, not the path of a web archive (.warc.gz, .wat.gz); "
                         "a listing holds one path per line")
    if not crawl and crawl_required:
        unknown = next((line for line in lines if not crawl_id(line, path)), None)
        if unknown is not None:
            raise ConfigError(f"cannot tell the crawl of {unknown} (no CC-MAIN-YYYY-WW in its path): pass --crawl")
    if input_format:
        return input_format
    return manifest_format(lines) if head.complete else None  # else told later from the whole listing


def _spark_type(kind) -> str:
    """A pyarrow type as Spark names it (its simpleString), as ingestion/pool.py's messages say it."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(kind):
        return _spark_type(kind.value_type)
    named = [(t.is_string, "string"), (t.is_large_string, "string"), (t.is_boolean, "boolean"), (t.is_int8, "tinyint"),
             (t.is_int16, "smallint"), (t.is_int32, "int"), (t.is_int64, "bigint"), (t.is_float32, "float"),
             (t.is_float64, "double"), (t.is_binary, "binary"), (t.is_large_binary, "binary"), (t.is_date, "date"),
             (t.is_timestamp, "timestamp"), (t.is_null, "void")]
    for test, name in named:
        if test(kind):
            return name
    if t.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if t.is_list(kind) or t.is_large_list(kind):
        return f"array<{_spark_type(kind.value_type)}>"
    if t.is_struct(kind):
        return "struct<" + ",".join(f"{kind.field(i).name}:{_spark_type(kind.field(i).type)}"
                                    for i in range(kind.num_fields)) + ">"
    if t.is_map(kind):
        return f"map<{_spark_type(kind.key_type)},{_spark_type(kind.item_type)}>"
    return str(kind)


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, list):
        return "array"
    return "struct" if isinstance(value, dict) else "string"


def check_pool(path: str, input_format: str, head: Head, config) -> None:
    """A pool's content is of its format and has the url and text columns as strings, and no reserved column."""
    from metaclip_spark.ingestion.pool import RESERVED_COLUMNS

    columns: dict[str, str | None]  # name -> Spark type (None: only nulls seen)
    if head.kind == "empty":
        if head.name != path:
            return  # one empty file of a directory: the others may hold rows (Spark reads them all)
        raise InputError(f"input {path} holds no {input_format} rows: it is empty")
    if input_format == "parquet":
        if head.kind != "parquet":
            raise _mismatch(path, "Parquet", head)
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(head.name)
        except Exception as e:  # noqa: BLE001 - pyarrow's ArrowInvalid and OSError alike: a damaged footer
            raise InputError(f"cannot read {head.name} in input {path}: {str(e).splitlines()[0]}") from None
        columns = {field.name: _spark_type(field.type) for field in schema}
        within = ""
    else:
        if head.kind != "jsonl":
            raise _mismatch(path, "JSON lines", head)
        rows = []
        for line in head.lines()[:JSON_LINES_LOOKED_AT]:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        if not rows:
            if head.complete and head.name == path:
                raise InputError(f"input {path} holds no JSON object: every line is malformed")
            return  # malformed lines are counted by the ingest; whether some later line is a pair, Spark tells
        seen: dict[str, set[str]] = {}
        for row in rows:
            for name, value in row.items():
                seen.setdefault(name, set()).update([_json_type(value)] if value is not None else [])
        # Spark reads a column of mixed types as strings: only a column of one other type is not one.
        columns = {name: (kinds.pop() if len(kinds) == 1 else "string" if kinds else None)
                   for name, kinds in seen.items()}
        within = f" in its first {len(rows)} JSON lines" if not head.complete or head.name != path else ""
    for key in ("url_column", "text_column"):
        name = getattr(config.input, key)
        if name not in columns:
            raise InputError(f"input {path} has no column {name!r} (input.{key}){within}; its columns are: "
                             f"{', '.join(columns) or 'none'}")
        kind = columns[name]
        if kind is not None and kind != "string":
            raise InputError(f"input {path}: column {name!r} (input.{key}) is {kind}, not a string; "
                             f"name a column of strings with --{key.replace('_', '-')}")
    reserved = [c for c in columns if c.lower() in RESERVED_COLUMNS]
    if reserved:
        named = f"column {reserved[0]!r} is" if len(reserved) == 1 else f"columns {', '.join(map(repr, reserved))} are"
        raise InputError(f"input {path}: {named} reserved (the pipeline adds {', '.join(RESERVED_COLUMNS)} itself): "
                         "rename or drop it (a pool's crawl is given with --crawl)")
