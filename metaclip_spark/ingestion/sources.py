"""Input sources: each `--input-format`, what kind of input it is, and how its input becomes files of work.

Two kinds: `extract` inputs are listings of web-archive files that the extract stage streams record by record
(extraction/job.py); `pool` inputs are tables of pairs Spark reads whole (ingestion/pool.py). The CLI's choices, the format
inferred for an input given without one, and ingest's handling all come from this table: a new input (WET text,
another pool type, another listing) is one entry here plus its reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from metaclip_spark.errors import ConfigError

EXTRACT = "extract"
POOL = "pool"


@dataclass(frozen=True)
class Source:
    format: str
    kind: str
    help: str
    suffixes: tuple[str, ...]  # file names that say this format (a listing's kind is read from its lines)

    @property
    def is_listing(self) -> bool:
        return self.kind == EXTRACT


SOURCES = {s.format: s for s in (
    Source("parquet", POOL, "a pool of pairs in Parquet files", (".parquet", ".parq")),
    Source("jsonl", POOL, "a pool of pairs in JSON lines files",
           (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz", ".jsonl.bz2", ".json.bz2")),
    Source("warc-manifest", EXTRACT, "a Common Crawl listing of WARC files (warc.paths.gz)",
           (".paths", ".paths.gz", ".paths.txt")),
    Source("wat-manifest", EXTRACT, "a Common Crawl listing of WAT files (wat.paths.gz)", ()),
)}


def formats(kind: str | None = None) -> tuple[str, ...]:
    """The input formats (of one kind), in the table's order."""
    return tuple(name for name, s in SOURCES.items() if kind is None or s.kind == kind)


def source(input_format: str) -> Source:
    try:
        return SOURCES[input_format]
    except KeyError:
        raise ConfigError(f"unknown input format {input_format!r}: choose one of {', '.join(SOURCES)}") from None


def format_of_name(name: str, kind: str | None = None) -> str | None:
    """The format a file name says by its suffix (of one kind), else None."""
    lowered = name.rstrip("/").lower()
    for s in SOURCES.values():
        if (kind is None or s.kind == kind) and s.suffixes and lowered.endswith(s.suffixes):
            return s.format
    return None
