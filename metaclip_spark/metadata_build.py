"""Building the metadata the MetaCLIP way (curation-spec section 2): sources in a fixed order, merged as a set.

Order: "0".."99"; WordNet 3.0 synset names; Wikipedia unigrams with count >= 100; Wikipedia bigrams with
PMI >= 30; Wikipedia article titles with >= 70 views. The merge keeps each exact string once, where it was
first seen (no lowercasing), and skips empty entries and single punctuation characters. Every source reports
how many strings it offered and how many became new entries.

The embedded default (metaclip_spark/data/metadata_default.json.gz) needs no download: it uses wordfreq's
English word frequencies (shipped in the wheel) in place of Wikipedia unigram counts, and has no bigrams or
titles. `make metadata-default` rebuilds it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ConfigError

# wordfreq's "large" English list ends at a frequency of 1e-8 (one occurrence per 100 million words): keeping
# every listed word (~321k) is the closest offline stand-in for "count >= 100 in English Wikipedia".
WORDFREQ_MIN_FREQUENCY = 1e-8


@dataclass(frozen=True)
class BuildThresholds:
    """The thresholds of curation-spec section 2 (configurable; conf/base.toml [metadata_build])."""

    unigram_min_count: int = 100
    bigram_min_pmi: float = 30.0
    title_min_views: int = 70
    pageview_min_hourly_views: int = 50
    wordfreq_min_frequency: float = WORDFREQ_MIN_FREQUENCY

    @classmethod
    def from_config(cls, section: dict | None, **overrides) -> "BuildThresholds":
        values = {**asdict(cls()), **{k: v for k, v in (section or {}).items() if k in asdict(cls())}}
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"metadata_build.{key} must be a non-negative number, got {value!r}")
        return cls(**values)


def number_entries() -> list[str]:
    """Source 1: the strings "0" .. "99"."""
    return [str(n) for n in range(100)]


def skip_reason(entry: str) -> str | None:
    """Why the merge leaves a string out: "empty", "punctuation" (one punctuation character), else None."""
    if entry == "":
        return "empty"
    if len(entry) == 1 and (entry in string.punctuation or unicodedata.category(entry).startswith("P")):
        return "punctuation"
    return None


def merge_sources(sources: Iterable[tuple[str, Iterable[str]]]) -> tuple[list[str], list[dict]]:
    """Merge (name, strings) sources in order as a set of exact strings keeping first-seen order.

    The report has one row per source: strings offered, entries added, strings already present (from this or
    an earlier source), and strings skipped as empty or single punctuation.
    """
    entries: list[str] = []
    seen: set[str] = set()
    report: list[dict] = []
    for name, strings in sources:
        row = {"source": name, "offered": 0, "added": 0, "already_present": 0, "skipped_empty": 0,
               "skipped_punctuation": 0}
        for entry in strings:
            row["offered"] += 1
            reason = skip_reason(entry)
            if reason:
                row[f"skipped_{reason}"] += 1
            elif entry in seen:
                row["already_present"] += 1
            else:
                seen.add(entry)
                entries.append(entry)
                row["added"] += 1
        report.append(row)
    return entries, report


def wordfreq_unigrams(min_frequency: float = WORDFREQ_MIN_FREQUENCY, lang: str = "en") -> list[str]:
    """English words from wordfreq's "large" list with frequency >= min_frequency, most frequent first.

    wordfreq lowercases its words and writes every digit as "0" ("0,000"); both are kept as wordfreq has them.
    """
    import wordfreq

    words = []
    for word in wordfreq.iter_wordlist(lang, "large"):  # sorted by descending frequency
        if wordfreq.word_frequency(word, lang, "large") < min_frequency:
            break
        words.append(word)
    return words


def build_default_metadata(thresholds: BuildThresholds | None = None,
                           nltk_data: str | Path | None = None) -> tuple[list[str], list[dict]]:
    """The embedded default: numbers, WordNet synset names, wordfreq English unigrams (no download needed)."""
    from .wordnet import synset_names

    thresholds = thresholds or BuildThresholds()
    return merge_sources([
        ("numbers", number_entries()),
        ("wordnet", synset_names(nltk_data)),
        ("wordfreq_unigrams", wordfreq_unigrams(thresholds.wordfreq_min_frequency)),
    ])


def metadata_bytes(entries: list[str]) -> bytes:
    """The released format: one JSON array of strings (one entry per line, so diffs of the file stay readable)."""
    return ("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n").encode("utf-8")


def write_metadata(entries: list[str], path: str | Path) -> Path:
    """Write the JSON array; gzip (-9, no timestamp, so reruns give the same bytes) when the name ends in .gz."""
    path = Path(path)
    data = metadata_bytes(entries)
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as f:
            f.write(data)
        data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def format_report(report: list[dict], total: int) -> str:
    """A small table: entries per source, in build order."""
    lines = [f"{'source':<20} {'offered':>10} {'added':>10} {'present':>10} {'empty':>7} {'punct':>7}"]
    for row in report:
        lines.append(f"{row['source']:<20} {row['offered']:>10,} {row['added']:>10,} {row['already_present']:>10,} "
                     f"{row['skipped_empty']:>7,} {row['skipped_punctuation']:>7,}")
    lines.append(f"{'total entries':<20} {'':>10} {total:>10,}")
    return "\n".join(lines)
