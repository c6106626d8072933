"""The JSON records an output root keeps (layout in root/layout.py), their shapes, and the one file tally.

Records stay plain JSON objects on disk (a root written by an older version still reads). The markers and states
are dicts in memory, these TypedDicts saying what each holds; the run summary is one typed record, written and read
through it; the constants name the values that were bare strings.

- `UnitMarker`  units/crawl=C/unit=U/_COMMITTED.json: a committed unit of work, written last.
- `CrawlState`  crawls/C.json: a crawl's tables are finished, and what they hold.
- `RunSummary`  summary.json and runs/<id>.json: one curation run (with its `CrawlFigures` and, worldwide, its
  `LanguageFigures`); `RunSummary.from_json` / `to_json` are the one way between the record and its JSON.
- `ExtractCounters`: what extraction counted, one shape everywhere (a file's counters, a unit's, a crawl's state,
  extract.json, the run summary): counts keyed by name, drops as `dropped_<reason>` as datatrove counts them.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Iterable, TypedDict

from metaclip_spark.errors import InputError
from metaclip_spark.metadata.lists import ONE_LIST
from metaclip_spark.root.columns import METADATA_LANG

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


# --- the run summary ---------------------------------------------------------------------------------------------

def _required(cls) -> list[str]:
    return [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]


def _known(cls, data: dict, where: str, exact: bool) -> dict:
    """The fields of `cls` in `data`: a missing required key stops with a one-line message (not a run summary);
    with `exact`, so does a key the record does not hold (a run writing a key it never declared)."""
    if not isinstance(data, dict):
        raise InputError(f"{where} is not a run summary (a JSON object)")
    missing = [name for name in _required(cls) if name not in data]
    if missing:
        raise InputError(f"{where} is not a run summary: it lacks {', '.join(missing)}")
    names = {f.name for f in fields(cls)}
    if exact and (unknown := sorted(set(data) - names)):
        raise ValueError(f"{cls.__name__} holds no {', '.join(unknown)}: declare it in root/records.py")
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class CrawlFigures:
    """One crawl of a run (summary.json's `by_crawl`), from its state crawls/C.json when the run ended."""

    pairs: int
    pairs_matched: int
    files_done: int = 0
    files_partial: int = 0
    files_failed: int = 0
    skipped: dict[str, int] | None = None  # pools: rows that are not pairs, per SKIP_REASONS; None for Common Crawl
    optout: dict | None = None  # the crawl's pairs set apart for opting out (optout/tables.py's figures)
    pairs_already_in_pool: int | None = None  # pool mode: the crawl's copies of pairs another crawl holds
    matched_by_lang: dict[str, int] | None = None  # worldwide runs only: matched pairs per metadata language

    @classmethod
    def from_json(cls, data: dict, where: str = "by_crawl", exact: bool = False) -> "CrawlFigures":
        return cls(**_known(cls, data, where, exact))

    def to_json(self, worldwide: bool) -> dict:
        data = asdict(self)
        if not worldwide:
            del data["matched_by_lang"]
        return data


@dataclass(frozen=True)
class LanguageFigures:
    """One language of a worldwide run (summary.json's `by_lang`): counted at ingest and in the balance stage."""

    entries: int  # its list's entries
    pairs: int
    pairs_matched: int
    pairs_curated: int
    t: int  # its own t: English's, or derived from English's tail share, or set in worldwide.t_by_lang
    entries_matched: int
    entries_over_t: int
    matches_total: int
    tail_proportion: float
    top_entries: list = field(default_factory=list)  # its most matched entries as [entry, count], most first

    @classmethod
    def from_json(cls, data: dict, where: str = "by_lang", exact: bool = False) -> "LanguageFigures":
        return cls(**_known(cls, data, where, exact))

    def to_json(self) -> dict:
        return asdict(self)


# Keys a worldwide run writes and a v1 run does not (a v1 summary.json stays as it was).
_WORLDWIDE_ONLY = ("worldwide", "t_by_lang", "t_overrides", "english_tail_share", "metadata_languages",
                   "kana_no_space", "by_lang", "pairs_without_list", "pairs_unknown_lang", "languages_with_pairs")


@dataclass(frozen=True)
class RunSummary:
    """One curation run: summary.json (the latest run) and runs/<id>.json. Built by pipeline.py when a balance ends,
    read by the report, plan, status, export and the CLI; every one of them goes through this record.

    Fields without a default were in every summary ever written; the others came later, and an older summary.json
    reads with their defaults. `to_json` gives the JSON as written (the worldwide keys only for a worldwide run,
    `ingest` only when the run ingested), so tools reading summary.json directly see the keys they always saw."""

    run_id: str  # finished_at's second and a hash of what the run balanced
    crawls: list[str]
    pairs_in: int
    pairs_matched: int
    pairs_curated: int  # the pairs kept by the draws (their expected number is in the report)
    t: int | None  # v1: the t; worldwide: English's (None without an English list)
    t_mode: str  # "auto" or "fixed"
    seed: int
    metadata: str
    metadata_digest: str
    entries_total: int
    entries_matched: int
    entries_over_t: int  # worldwide: each entry against its own language's t
    matches_total: int
    tail_proportion: float
    finished_at: str
    tail_share: float | None = None  # the tail share `t = auto` aims at
    mean_entries_per_matched_text: float | None = None
    warnings: list[str] = field(default_factory=list)
    by_crawl: dict[str, CrawlFigures] = field(default_factory=dict)
    dedup: str | None = None  # the crawls' de-duplication mode (ingestion/pair_keys.py)
    pairs_already_in_pool: int | None = None  # copies of pool pairs the crawls dropped (pool mode)
    extract: dict[str, int] | None = None  # ExtractCounters summed over the crawls read from Common Crawl
    optout: dict | None = None  # pairs set apart for opting out of AI training, summed (optout/tables.py)
    ingest: dict | None = None  # what this run's ingest did (none when it ingested nothing)
    stages: list[dict] = field(default_factory=list)  # this process's stages: runs, seconds, rows
    config: dict | None = None  # the settings of the run (config.Settings.record)
    version: str | None = None  # of metaclip-spark
    elapsed_seconds: float | None = None
    # A worldwide run (one list per language; curation spec section 4):
    worldwide: bool = False
    t_by_lang: dict[str, int] = field(default_factory=dict)
    t_overrides: dict[str, int] = field(default_factory=dict)  # worldwide.t_by_lang as configured
    english_tail_share: float | None = None  # p: every other language's t is where its share is nearest this
    metadata_languages: list[str] = field(default_factory=list)  # the lists' languages, in the set's order
    kana_no_space: bool | None = None
    by_lang: dict[str, LanguageFigures] = field(default_factory=dict)
    pairs_without_list: dict[str, int] = field(default_factory=dict)  # pairs whose language has no list
    pairs_unknown_lang: int = 0  # pairs with no language
    languages_with_pairs: int | None = None

    @property
    def lists(self) -> dict[str, tuple[int, int]]:
        """(entries, t) of each list the run balanced, in the set's order: what a reader of the root works on, one
        path for every run. A v1 summary records no list by its code: its one list (English's, ONE_LIST) holds every
        entry, at the run's t."""
        return ({code: (int(self.by_lang[code].entries), int(self.t_by_lang[code])) for code in self.metadata_languages}
                or {ONE_LIST: (int(self.entries_total), int(self.t or 1))})

    @property
    def list_column(self) -> str | None:
        """The column of the run's tables naming each pair's list (as Metadata.list_column): a set's METADATA_LANG;
        None for a v1 run, whose tables keep their schema without it."""
        return METADATA_LANG if self.worldwide else None

    @classmethod
    def from_json(cls, data: dict, where: str = "summary.json", exact: bool = False) -> "RunSummary":
        """The record of a summary as JSON (as read from summary.json, or as a run builds it: `exact` then refuses
        a key the record does not hold, so nothing a run writes goes around the record)."""
        values = _known(cls, data, where, exact)
        values["by_crawl"] = {crawl: CrawlFigures.from_json(v, f"{where}'s by_crawl.{crawl}", exact)
                              for crawl, v in (data.get("by_crawl") or {}).items()}
        values["by_lang"] = {code: LanguageFigures.from_json(v, f"{where}'s by_lang.{code}", exact)
                             for code, v in (data.get("by_lang") or {}).items()}
        return cls(**values)

    def to_json(self) -> dict:
        """The summary as summary.json holds it."""
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if (f.name in _WORLDWIDE_ONLY and not self.worldwide) or (f.name == "ingest" and not value):
                continue
            if f.name == "by_crawl":
                value = {crawl: v.to_json(self.worldwide) for crawl, v in value.items()}
            elif f.name == "by_lang":
                value = {code: v.to_json() for code, v in value.items()}
            data[f.name] = value
        return data
