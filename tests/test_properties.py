"""Property-based tests (hypothesis): where a rule has a literal form, the code is checked against it on many
generated inputs, not on the few a person thought of.

- matching: EntryMatcher (Aho-Corasick) against the spec's literal loop, `matching.reference_match`;
- gzip members: the member reader against whole-file inflation, on random splits of the stream into reads;
- t: `auto` (the tail rule), the derived t of other languages and the tail share against plain recomputations;
- dedup: the row kept for a (uuid, text) does not depend on the rows' order or partitioning (one small Spark test).

Examples are few and drawn the same way on every run (derandomize: CI is deterministic); HYPOTHESIS_PROFILE=thorough
draws many more, at random, for a search by hand.
"""

from __future__ import annotations

import io
import os
import zlib
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaclip_spark.balancing import draws, thresholds
from metaclip_spark.extraction import gzip_members as gzip_members_module
from metaclip_spark.extraction.gzip_members import MemberCounts, gzip_members
from metaclip_spark.matching.substrings import EntryMatcher, reference_match

settings.register_profile("project", max_examples=60, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "project"))

# --- matching against the spec's literal loop -----------------------------------------------------------------------

# Characters where matching has rules: spaces and the characters spaced or blanked, the edges of no-space ranges
# (CJK, Thai, kana, the code point just outside), full-width marks, other punctuation, letters.
ALPHABET = ("ab AB", ",.;:?!`", "\t\n\r", "\u4e00\u9fff\u4dff\ua000", "\u0e00\u0e7f", "\u3040\u30ff\u303f",
            "，。「", "-'/", "\u3000")
characters = st.sampled_from("".join(ALPHABET))
texts = st.text(characters, max_size=16)


@st.composite
def texts_and_entries(draw):
    """A text and a list of entries, some cut from the text itself (so that matches happen), some made up."""
    text = draw(texts)
    # at least one entry: an empty list never reaches a matcher (metadata.load_metadata refuses it)
    entries = draw(st.lists(st.text(characters, min_size=1, max_size=4), min_size=1, max_size=6))
    for _ in range(draw(st.integers(0, 4))):
        if text:
            start = draw(st.integers(0, len(text) - 1))
            piece = text[start:start + draw(st.integers(1, 5))]
            entries.append(piece)
    entries = draw(st.permutations(entries))
    return text, entries


@given(texts_and_entries(), st.booleans(), st.booleans())
def test_the_automaton_matches_as_the_spec_s_literal_loop(case, worldwide, kana):
    text, entries = case
    assert EntryMatcher(entries, worldwide, kana).match(text) == reference_match(text, entries, worldwide, kana)


@given(st.lists(texts, max_size=6), st.lists(st.text(characters, min_size=1, max_size=3), min_size=1, max_size=8),
       st.booleans())
def test_matching_texts_in_one_batch_is_matching_each_alone(batch, entries, worldwide):
    matcher = EntryMatcher(entries, worldwide)
    assert matcher.match_many(batch) == [reference_match(t, entries, worldwide) if t else [] for t in batch]


# --- gzip members against whole-file inflation ----------------------------------------------------------------------

def _inflate_whole(data: bytes) -> list[bytes]:
    """Every member of a file with nothing between members, by zlib alone: the literal form."""
    members = []
    while data:
        inflater = zlib.decompressobj(31)
        members.append(inflater.decompress(data) + inflater.flush())
        data = inflater.unused_data
    return members


class _ShortReads(io.RawIOBase):
    """A stream whose reads return at most the next of `sizes` bytes (then whole reads): any split into reads."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.position, self.sizes = data, 0, list(sizes)

    def readable(self):
        return True

    def read(self, n=-1):
        size = self.sizes.pop(0) if self.sizes else n
        chunk = self.data[self.position:self.position + min(n, size)]
        self.position += len(chunk)
        return chunk


payloads = st.lists(st.binary(max_size=300) | st.text(max_size=300).map(str.encode), min_size=1, max_size=6)


@given(payloads, st.lists(st.integers(0, 9), min_size=1, max_size=6), st.integers(4, 80),
       st.lists(st.integers(1, 40), max_size=30))
def test_the_member_reader_gives_what_whole_file_inflation_gives_on_any_split(records, levels, read_bytes, reads):
    data = b"".join(_gzip(r, levels[i % len(levels)]) for i, r in enumerate(records))
    counts = MemberCounts()
    # a read size of a few bytes puts the buffer's boundary (and the forgetting of bytes already inflated) at every
    # place of the stream in turn; short reads split it further
    with mock.patch.object(gzip_members_module, "READ_BYTES", read_bytes), \
         mock.patch.object(gzip_members_module, "FEED_BYTES", max(1, read_bytes // 3)):
        members = list(gzip_members(_ShortReads(data, reads), counts, limit=1 << 20))
    assert members == _inflate_whole(data) == records
    assert (counts.members, counts.members_skipped, counts.bytes_skipped) == (len(records), 0, 0)


def _gzip(payload: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(payload) + compressor.flush()


@given(payloads, st.lists(st.binary(max_size=40).filter(lambda junk: b"\x1f" not in junk), min_size=1),
       st.integers(4, 80))
def test_junk_between_members_is_counted_and_costs_no_member(records, junks, read_bytes):
    pieces = []
    for i, record in enumerate(records):
        pieces.append(_gzip(record, 6))
        pieces.append(junks[i % len(junks)])
    data = b"".join(pieces)
    counts = MemberCounts()
    with mock.patch.object(gzip_members_module, "READ_BYTES", read_bytes):
        assert list(gzip_members(io.BytesIO(data), counts, limit=1 << 20)) == records
    assert counts.bytes_skipped == sum(len(junks[i % len(junks)]) for i in range(len(records)))


# --- t against plain recomputations ---------------------------------------------------------------------------------

counts_vectors = st.lists(st.integers(0, 60), max_size=25).map(lambda c: np.array(c, dtype=np.int64))
shares = st.floats(0.0, 1.0, allow_nan=False)


def _plain_tail(counts, t) -> float:
    total = sum(int(c) for c in counts)
    return sum(int(c) for c in counts if c < t) / total if total else 0.0


def _plain_auto(counts, tail_share) -> int:
    """The smallest t whose entries under it (count > 0) hold at least `tail_share` of the matches; past every
    count, one more than the largest."""
    positive = sorted(int(c) for c in counts if c > 0)
    if not positive:
        return 1
    needed = tail_share * sum(positive)
    for c in positive:
        if sum(x for x in positive if x <= c) >= needed:
            return c + 1
    return positive[-1] + 1


def _plain_derived(counts, p) -> int:
    ordered = sorted(int(c) for c in counts)
    total = sum(ordered)
    if total == 0:
        return 1
    best, running = None, 0
    for i, c in enumerate(ordered):
        running += c
        distance = abs(running / total - p)
        if best is None or distance < best[0]:  # strictly nearer: a tie keeps the lower position
            best = (distance, c)
    return max(1, best[1])


@given(counts_vectors, st.floats(0.0, 1.0))
def test_auto_t_is_the_tail_rule(counts, tail_share):
    assert draws.auto_threshold(counts, tail_share) == _plain_auto(counts, tail_share)


@given(counts_vectors, st.integers(1, 70))
def test_tail_share_is_the_share_held_under_t(counts, t):
    assert draws.tail_proportion(counts, t) == _plain_tail(counts, t)


@given(counts_vectors, shares)
def test_derived_t_is_the_count_at_the_nearest_cumulative_share(counts, p):
    assert draws.derived_threshold(counts, p) == _plain_derived(counts, p)


@given(st.dictionaries(st.sampled_from(["en", "de", "ja", "th"]), counts_vectors, min_size=1),
       st.integers(1, 70) | st.just("auto"), st.floats(0.01, 0.5))
def test_every_language_s_t_is_derived_from_english_s_tail(counts_by_lang, t_en, tail_share):
    found, p = thresholds.resolve(counts_by_lang, t_en, tail_share)
    english = counts_by_lang.get("en", np.zeros(0, np.int64))
    t = _plain_auto(english, tail_share) if t_en == "auto" else t_en
    expected_p = _plain_tail(english, t) if english.sum() > 0 else tail_share
    assert p == expected_p
    assert found == {lang: t if lang == "en" else _plain_derived(c, expected_p) for lang, c in counts_by_lang.items()}


@given(st.lists(st.lists(st.floats(0.0, 1.0), max_size=4), max_size=8))
def test_keep_probability_is_one_minus_the_product_of_misses(pairs):
    lengths = np.array([len(p) for p in pairs], np.int64)
    flat = np.array([x for p in pairs for x in p], np.float64)
    expected = [1 - float(np.prod([1 - x for x in p])) if p else 0.0 for p in pairs]
    assert np.allclose(draws.keep_probabilities_flat(lengths, flat), expected, rtol=1e-9, atol=1e-12)


# --- dedup: independent of order and partitioning -------------------------------------------------------------------

rows = st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["a dog", "a cat"]),
                          st.sampled_from(["b.warc.gz", "a.warc.gz", "c/a.warc.gz"]), st.integers(0, 5),
                          st.text("xyz", max_size=2)), min_size=1, max_size=12)


@settings(max_examples=6)
@given(rows, st.integers(1, 5), st.randoms(use_true_random=False))
def test_dedup_keeps_the_same_row_whatever_the_order_and_partitioning(spark, candidates, partitions, rng):
    from metaclip_spark.ingestion.dedup import first_of_duplicates

    shuffled = list(candidates)
    rng.shuffle(shuffled)
    frame = spark.createDataFrame(shuffled, "uuid string, text string, source_file string, _seq long, page string")
    kept = sorted(tuple(r) for r in first_of_duplicates(frame.repartition(partitions)).collect())
    first = {}
    for uuid, text, source_file, seq, page in candidates:
        key = (uuid, text)
        first[key] = min(first.get(key, (source_file, seq, page)), (source_file, seq, page))
    assert kept == sorted((*key, *rest) for key, rest in first.items())
