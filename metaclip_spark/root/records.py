"""The JSON records an output root keeps (layout in root/layout.py), their shapes, and the one file tally.

Records stay plain JSON objects on disk and dicts in memory (a root written by an older version still reads);
these TypedDicts say what each holds, and the constants name the values that were bare strings.

- `UnitMarker`  units/crawl=C/unit=U/_COMMITTED.json: a committed unit of work, written last.
- `CrawlState`  crawls/C.json: a crawl's tables are finished, and what they hold.
- `RunSummary`  summary.json and runs/<id>.json: one curation run.
- `ExtractCounters`: what extraction counted, one shape everywhere (a file's counters, a unit's, a crawl's state,
  extract.json, the run summary): counts keyed by name, drops as `dropped_<reason>` as datatrove counts them.
"""

from __future__ import annotations

from typing import Iterable, TypedDict

# Unit kinds: files of a Common Crawl listing extracted, or a pool of pairs read as it is.
KIND_EXTRACT = "extract"
KIND_POOL = "pool"
# A file's state in a unit marker.
FILE_OK = "ok"
FILE_PARTIAL = "partial"  # done, its own bytes damaged: every readable record kept, the reason recorded
FILE_FAILED = "failed"
FILE_PENDING = "pending"  # listed, never committed in a unit
# Why a row of a pool is not a pair (counted per unit and crawl as `skipped`): a JSON line that does not parse, a
# null or empty url (no uuid), a null text (nothing to match), a url or text that is not valid UTF-8 (a Parquet
# string column holding other bytes: no text to match, no url to hash as MetaCLIP does).
SKIP_MALFORMED_LINE = "malformed_line"
SKIP_NULL_URL = "null_url"
SKIP_NULL_TEXT = "null_text"
SKIP_BAD_ENCODING = "bad_encoding"
SKIP_REASONS = (SKIP_MALFORMED_LINE, SKIP_NULL_URL, SKIP_NULL_TEXT, SKIP_BAD_ENCODING)

# Counted per file, summed per unit, crawl and run. `dropped_no_src`, `dropped_non_http_url`, `dropped_no_text` count
# <img> tags; `dropped_language` and `dropped_duplicate` count pairs; the other drops and `non_html` count records.
EXTRACT_COUNTERS = (
    "records_read", "records_truncated", "html_pages", "wat_pages", "non_html", "img_tags", "pairs",
    "dropped_no_src", "dropped_non_http_url", "dropped_no_text", "dropped_language", "dropped_oversized_page",
    "dropped_decode_error", "dropped_corrupt_member", "bytes_skipped",
)


def is_done(status: str | None) -> bool:
    """A file read (whole or in part) is never read again; a failed or pending one is."""
    return status in (FILE_OK, FILE_PARTIAL)


class FileRecord(TypedDict):
    file: str            # the path as listed
    location: str        # where it was read
    status: str          # FILE_OK or FILE_FAILED
    reason: str | None   # why it failed, or what cut it short
    seconds: float
    counters: dict[str, int]  # EXTRACT_COUNTERS


class UnitMarker(TypedDict, total=False):
    crawl: str
    unit: str
    kind: str            # KIND_EXTRACT or KIND_POOL
    format: str          # the input format (ingestion/sources.py)
    columns: dict[str, str]   # {"url": ..., "text": ...}: the pairs' own column names
    metadata_digest: str
    files: list[FileRecord]
    pairs: int
    pairs_by: dict[str, dict[str, int]]  # pools: pairs per value of each report group column
    skipped: dict[str, int]  # pools: rows that are not pairs, per SKIP_REASONS
    uuid_computed: int   # pools with a uuid column: pairs whose uuid was null or empty, computed from the url
    texts_stripped: bool  # pools: texts stripped before matching (pool mode, ingestion/pair_keys.py)
    pairs_matched: int
    committed_at: str


class CrawlState(TypedDict, total=False):
    crawl: str
    kind: str
    units: list[str]
    units_digest: str    # changes whenever a unit is committed again
    metadata_digest: str
    columns: dict[str, str]
    pairs: int
    pairs_by: dict[str, dict[str, int]] | None
    dedup: str           # pair_keys.MODE_POOL or MODE_CRAWL: how the tables were built
    pairs_already_in_pool: int | None  # pool mode: the crawl's copies of pairs another crawl holds, dropped
    skipped: dict[str, int] | None  # pools: the units' `skipped` summed; None for Common Crawl input
    uuid_computed: int   # the units' `uuid_computed` summed
    pairs_matched: int
    files_done: int
    files_failed: int
    extract: dict[str, int]   # ExtractCounters summed over the crawl's files, with files_ok / files_failed
    finished_at: str


class RunSummary(TypedDict, total=False):
    run_id: str
    crawls: list[str]
    pairs_in: int
    pairs_matched: int
    pairs_curated: int
    t: int
    t_mode: str
    tail_share: float
    seed: int
    metadata: str
    metadata_digest: str
    entries_total: int
    entries_matched: int
    entries_over_t: int
    matches_total: int
    tail_proportion: float
    by_crawl: dict[str, dict]
    dedup: str | None    # the crawls' de-duplication mode
    pairs_already_in_pool: int | None  # copies of pool pairs the crawls dropped (pool mode)
    extract: dict[str, int] | None
    finished_at: str


class FileTally(TypedDict):
    files_done: int      # read, whole or in part: never read again
    files_partial: int   # of those, read in part (damaged bytes)
    files_failed: int    # to be retried by the next run
    failed_files: list[dict]   # {"file", "reason"}, in the given order
    partial_files: list[dict]


def tally_files(states: Iterable[dict]) -> FileTally:
    """Files done, partly read and failed (with why) among file states: the one count behind extract.json,
    ingest, crawl states and status."""
    states = list(states)

    def listed(status: str) -> list[dict]:
        return [{"file": s["file"], "reason": s["reason"]} for s in states if s["status"] == status]

    return {
        "files_done": sum(is_done(s["status"]) for s in states),
        "files_partial": sum(s["status"] == FILE_PARTIAL for s in states),
        "files_failed": sum(s["status"] == FILE_FAILED for s in states),
        "failed_files": listed(FILE_FAILED),
        "partial_files": listed(FILE_PARTIAL),
    }


def sum_counters(counters: Iterable[dict | None]) -> dict[str, int]:
    """Counters summed key by key (EXTRACT_COUNTERS and any other integer counts they carry)."""
    total: dict[str, int] = {}
    for part in counters:
        for key, value in (part or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + int(value)
    return total
