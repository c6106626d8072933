"""Every edge the code has, tested on both sides: the ends of each no-space character range (and the code point
just outside), counts equal to t, sizes equal to each limit, the reader's buffer boundary, ties in orderings.

An off-by-one (`<` for `<=`, an exclusive upper end, a dropped carry-over) passes any test that stays away from
the edge; these sit on it. Ranges are tested with `kana` given explicitly, so they hold whatever the default.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from metaclip_spark.balancing import draws
from metaclip_spark.balancing import thresholds
from metaclip_spark.extraction import wat
from metaclip_spark.extraction import webpage
from metaclip_spark.config import load_config, parse_threshold
from metaclip_spark.errors import ConfigError
from metaclip_spark.extraction.gzip_members import READ_BYTES, MemberCounts, OneStreamFile, gzip_members
from metaclip_spark.matching.substrings import (KANA_RANGES, REFERENCE_NO_SPACE_RANGES, EntryMatcher, LanguageMatchers,
                                     is_no_space, padded_entry, reference_match)

# --- no-space ranges ------------------------------------------------------------------------------------------------

# Each range of the reference's (MetaCLIP 2's substr_matching.py, block by block; curation spec, section 3) with its first and last code point written out, so a table
# edited by mistake fails here too, and the code point on each side of it with whether it is no-space itself
# (a neighbour range, or not).
REFERENCE_EDGES = [
    # (first, last, before first: no-space?, after last: no-space?)
    (0x4E00, 0x9FFF, False, False),   # CJK Unified Ideographs
    (0x3400, 0x4DBF, False, False),   # CJK Extension A
    (0x20000, 0x2A6DF, False, False),  # CJK Extension B (the reference skips 2A6E0-2A6FF)
    (0x2A700, 0x2EBEF, False, False),  # CJK Extensions C-F
    (0xF900, 0xFAFF, False, False),   # CJK Compatibility Ideographs
    (0x2E80, 0x2FDF, False, False),   # CJK Radicals .. Kangxi Radicals (the reference skips 2FE0-2FEF)
    (0x2FF0, 0x2FFF, False, False),   # Ideographic Description (0x3000 is the ideographic space)
    (0x0E00, 0x0E7F, False, True),    # Thai; Lao follows at once
    (0x0E80, 0x0EFF, True, True),     # Lao; Thai before, Tibetan after
    (0x1000, 0x109F, True, False),    # Myanmar; Tibetan before
    (0x1780, 0x17FF, False, False),   # Khmer
    (0x0F00, 0x0FFF, True, True),     # Tibetan; Lao before, Myanmar after
]
KANA_EDGES = [
    (0x3040, 0x309F, False, True),    # Hiragana; Katakana follows
    (0x30A0, 0x30FF, True, False),    # Katakana
    (0x31F0, 0x31FF, False, False),   # Katakana Phonetic Extensions
    (0xFF65, 0xFF9F, False, False),   # half-width Katakana (0xFF64 is the half-width ideographic comma)
]


def test_the_range_tables_are_the_spec_s():
    assert [(low, high) for low, high, *_ in REFERENCE_EDGES] == list(REFERENCE_NO_SPACE_RANGES)
    assert [(low, high) for low, high, *_ in KANA_EDGES] == list(KANA_RANGES)


def _edges(table, inside_kana: bool):
    """(code point, kana, expected) for both ends of each range and the code point on each side."""
    for low, high, before, after in table:
        for kana in (True, False):
            inside = kana or not inside_kana
            yield low, kana, inside
            yield high, kana, inside
            yield low - 1, kana, before and inside
            yield high + 1, kana, after and inside


@pytest.mark.parametrize("code, kana, expected", [*_edges(REFERENCE_EDGES, False), *_edges(KANA_EDGES, True)],
                         ids=lambda v: hex(v) if isinstance(v, int) and not isinstance(v, bool) else str(v))
def test_each_end_of_each_range_is_no_space_and_the_code_point_outside_is_not(code, kana, expected):
    char = chr(code)
    assert is_no_space(char, kana) is expected
    # ... and as matching sees it: an entry of that one character, inside running text with no spaces
    entry_edge = padded_entry(char, worldwide=True, kana=kana)
    assert entry_edge == (char if expected else f" {char} ")
    text = f"a{char}b"
    assert (reference_match(text, [char], worldwide=True, kana=kana) == [0]) is expected
    assert (EntryMatcher([char], worldwide=True, kana=kana).match(text) == [0]) is expected


def test_an_entry_edge_is_judged_by_its_own_first_and_last_character():
    last_han, after_han, first_han, before_han = chr(0x9FFF), chr(0xA000), chr(0x4E00), chr(0x4DFF)
    # an entry ending in the range's last character needs no space after it; one ending one past it does
    assert reference_match(f"x y{last_han}z", [f"y{last_han}"], worldwide=True, kana=False) == [0]
    assert reference_match(f"x y{after_han}z", [f"y{after_han}"], worldwide=True, kana=False) == []
    # and likewise at the start of an entry
    assert reference_match(f"x{first_han}y z", [f"{first_han}y"], worldwide=True, kana=False) == [0]
    assert reference_match(f"x{before_han}y z", [f"{before_han}y"], worldwide=True, kana=False) == []


# --- counts equal to t ----------------------------------------------------------------------------------------------

def test_an_entry_whose_count_equals_t_keeps_every_pair():
    assert draws.entry_probabilities(np.array([2, 3, 4, 6]), 3).tolist() == [1.0, 1.0, 0.75, 0.5]


def test_tail_share_counts_entries_strictly_under_t():
    assert draws.tail_proportion(np.array([3, 3, 3]), 3) == 0.0
    assert draws.tail_proportion(np.array([2, 3, 5]), 3) == 0.2
    assert draws.tail_proportion(np.array([3, 3, 3]), 4) == 1.0


def test_counts_equal_to_t_in_the_plan_table():
    row, = thresholds.count_rows(np.array([3, 3, 3]), [3])
    assert row == {"t": 3, "entries_over_t": 0, "tail_share": 0.0, "matches_after": 9, "matches_after_share": 1.0}
    row, = thresholds.count_rows(np.array([2, 3, 4]), [3])
    assert (row["entries_over_t"], row["tail_share"], row["matches_after"]) == (1, 2 / 9, 8)


def test_counts_equal_to_t_balance_nothing_and_say_so():
    warnings = thresholds.balance_warnings(np.array([3, 3, 3]), 3, "fixed", 0.06, pairs_matched=9, pairs_curated=9)
    assert len(warnings) == 1 and warnings[0].startswith("balancing keeps everything: no entry's count is over t = 3")
    # one entry over t: balancing can remove, so the other warning (every pair kept anyway) is the one given
    warnings = thresholds.balance_warnings(np.array([3, 3, 4]), 3, "fixed", 0.06, pairs_matched=9, pairs_curated=9)
    assert len(warnings) == 1 and warnings[0].startswith("balancing kept every matched pair (9) although 1 entries")
    assert thresholds.balance_warnings(np.array([3, 3, 4]), 3, "fixed", 0.06, pairs_matched=9, pairs_curated=8) == []
    assert thresholds.balance_warnings(np.array([3, 3, 3]), 3, "fixed", 0.06, pairs_matched=0) == []


def test_auto_t_stops_where_the_tail_reaches_its_share_exactly():
    # entries under t = 3 hold 1 + 1 + 2 = 4 of 8 matches: exactly the 50% asked for
    assert draws.auto_threshold(np.array([4, 2, 1, 1]), 0.5) == 3
    assert draws.auto_threshold(np.array([4, 2, 1, 1, 0, 0]), 0.5) == 3  # zero counts hold no matches
    assert draws.auto_threshold(np.array([4, 2, 1, 1]), 0.5000001) == 5
    assert draws.auto_threshold(np.array([0, 0]), 0.5) == 1
    assert draws.auto_threshold(np.array([7]), 0.06) == 8


def test_auto_missing_its_tail_is_said_only_past_the_tolerance():
    # t = 4 on [3, 5]: the tail holds 3/8 = 0.375, exactly 1.5 times a share of 0.25 (AUTO_TAIL_TOLERANCE 0.5)
    assert thresholds.AUTO_TAIL_TOLERANCE == 0.5
    assert thresholds.auto_misses_tail(np.array([3, 5]), 4, 0.25) is None
    assert thresholds.auto_misses_tail(np.array([3, 5]), 4, 0.2499) == 0.375
    assert thresholds.balance_warnings(np.array([3, 5]), 4, "auto", 0.25, pairs_matched=5) == []
    assert len(thresholds.balance_warnings(np.array([3, 5]), 4, "auto", 0.2499, pairs_matched=5)) == 1
    assert len(thresholds.balance_warnings(np.array([3, 5]), 4, "fixed", 0.2499, pairs_matched=5)) == 0


def test_derived_t_takes_the_lower_position_on_a_tie():
    # sorted [1, 3, 4], cumulative shares 0.125, 0.5, 1.0: p = 0.3125 is as near the first as the second, and the
    # first (count 1) wins; a little nearer the second, its count
    assert draws.derived_threshold(np.array([4, 3, 1]), 0.3125) == 1
    assert draws.derived_threshold(np.array([4, 3, 1]), 0.3126) == 3
    assert draws.derived_threshold(np.array([3, 1, 4]), 0.5) == 3  # shares 0.125, 0.5, 1.0: exactly at 0.5
    assert draws.derived_threshold(np.array([0, 0, 5]), 0.1) == 1  # nearest position holds 0: never below 1
    assert draws.derived_threshold(np.array([0, 0]), 0.1) == 1


def test_the_t_series_stops_at_the_first_t_at_or_over_the_largest_count():
    assert thresholds.t_series(np.array([5])) == [1, 2, 5]
    assert thresholds.t_series(np.array([6])) == [1, 2, 5, 10]
    assert thresholds.t_series(np.array([10])) == [1, 2, 5, 10]
    assert thresholds.t_series(np.array([1])) == [1]
    assert thresholds.t_series(np.array([], np.int64)) == [1]


def test_count_decades_at_each_power_of_ten():
    rows = thresholds.count_decades(np.array([0, 1, 9, 10, 99, 100, 999, 1000]))
    assert [(r["low"], r["high"], r["entries"], r["matches"]) for r in rows] == [
        (1, 9, 2, 10), (10, 99, 2, 109), (100, 999, 2, 1099), (1000, 9999, 1, 1000)]


def test_a_draw_equal_to_p_is_not_a_keep():
    """Kept when u < p_e: p_e equal to the draw drops the pair, the next float up keeps it (offline and online)."""
    from metaclip_spark.export.online import EntryProbabilities, OnlineBalancer, epoch_seed

    u = draws.keep_draw(5, "uuid", "text", 2)
    for p, kept in ((u, False), (np.nextafter(u, 1.0), True)):
        probs = np.array([1.0, 1.0, p])
        keep, _ = draws.decide(5, ["uuid"], ["text"], np.array([1]), np.array([2]), probs)
        assert keep.tolist() == [kept]
        online_u = draws.keep_draw(epoch_seed(5, 0), "uuid", "text", 2)
        balancer = OnlineBalancer(EntryProbabilities({"": np.array([1.0, 1.0, online_u if not kept else
                                                                   np.nextafter(online_u, 1.0)])}), seed=5)
        assert balancer.keep("uuid", "text", [2], epoch=0) is kept
        assert balancer.keep_batch(["uuid"], ["text"], [[2]], epoch=0).tolist() == [kept]


def test_an_entry_id_past_the_online_table_has_p_1():
    from metaclip_spark.export.online import EntryProbabilities

    table = EntryProbabilities({"": np.array([0.5, 0.25])})
    assert table.of("", np.array([0, 1, 2, 3])).tolist() == [0.5, 0.25, 1.0, 1.0]


def test_an_entry_counted_once_at_t_1_keeps_its_pairs():
    assert draws.entry_probabilities(np.array([0, 1, 2]), 1).tolist() == [1.0, 1.0, 0.5]


def test_p_1_entries_give_keep_probability_1_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) must not warn on every batch of a run
        assert draws.keep_probability(np.array([1.0, 0.5])) == 1.0
        assert draws.keep_probabilities_flat(np.array([2, 1]), np.array([1.0, 0.5, 0.25])).tolist() == pytest.approx(
            [1.0, 0.25])


def test_pairs_without_entries_at_the_end_of_a_batch_are_decided_too():
    keep, keep_prob = draws.decide(0, ["a", "b", "c"], ["x", "y", "z"], np.array([1, 0, 0]), np.array([0]),
                                       np.array([1.0]))
    assert keep.tolist() == [True, False, False] and keep_prob.tolist() == [1.0, 0.0, 0.0]


def test_one_english_match_still_gives_english_s_tail_share():
    found, p = thresholds.resolve({"en": np.array([1, 0]), "de": np.array([5, 1])}, 1, 0.06)
    assert p == 0.0 and found == {"en": 1, "de": 1}
    assert thresholds.resolve({"de": np.array([5, 1])}, 1, 0.06)[1] == 0.06


PAIR_HASH_OF_SURROGATE = 0x728974417364260B


def test_a_text_holding_a_lone_surrogate_is_hashed():
    """A JSON pool may hold "\\ud800": such a text is hashed (its UTF-8 with the surrogate passed), not refused."""
    assert draws.pair_hash(0, "u", "\ud800 lone surrogate") == PAIR_HASH_OF_SURROGATE


# --- sizes equal to each limit ----------------------------------------------------------------------------------------

POSITIVE_INTEGERS = [("extract", "max_page_bytes"), ("extract", "files_per_task"), ("extract", "files_per_unit"),
                     ("root", "pair_key_buckets"), ("export", "rows_per_file"), ("worldwide", "automata_max_mb")]


@pytest.mark.parametrize("section, key", POSITIVE_INTEGERS)
def test_positive_integer_settings_take_1_and_refuse_0(section, key):
    assert getattr(getattr(load_config("local", overrides={section: {key: 1}}), section), key) == 1
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load_config("local", overrides={section: {key: 0}})


@pytest.mark.parametrize("section, key, lowest, below, expected", [
    ("extract", "max_failed_share", 0.0, -0.001, "a share between 0 and 1"), ("remote", "retries", 0, -1, "a number >= 0"),
    ("remote", "backoff_seconds", 0.0, -0.001, "a number >= 0"),
    ("remote", "backoff_max_seconds", 0.0, -0.001, "a number >= 0"),
    ("remote", "timeout_seconds", 1.0, 0.999, "a number >= 1"),
    ("remote", "block_bytes", 64 * 1024, 64 * 1024 - 1, "a number >= 65536"),
    ("remote", "max_concurrent_downloads", 1, 0, "a number >= 1"), ("root", "lease_wait_seconds", 0.0, -0.001, "0 or more")])
def test_lower_limits_are_allowed_and_one_step_under_is_refused(section, key, lowest, below, expected):
    assert getattr(getattr(load_config("local", overrides={section: {key: lowest}}), section), key) == lowest
    with pytest.raises(ConfigError) as refused:
        load_config("local", overrides={section: {key: below}})
    assert str(refused.value) == f"{section}.{key} must be {expected}, got {below!r}"


def test_s3_anonymous_takes_auto_true_and_false_only():
    for value, read in (("auto", "auto"), (True, "true"), (False, "false")):
        assert load_config("local", overrides={"remote": {"s3_anonymous": value}}).remote.s3_anonymous == read
    with pytest.raises(ConfigError) as refused:
        load_config("local", overrides={"remote": {"s3_anonymous": "yes"}})
    assert str(refused.value) == """remote.s3_anonymous must be "auto", true or false, got 'yes'"""


def test_upper_limits_are_allowed_and_one_step_over_is_refused():
    assert load_config("local", overrides={"extract": {"max_failed_share": 1.0}}).extract.max_failed_share == 1.0
    with pytest.raises(ConfigError, match="extract.max_failed_share"):
        load_config("local", overrides={"extract": {"max_failed_share": 1.001}})
    for share in (0.0, 1.0):
        with pytest.raises(ConfigError, match="curation.tail_share"):
            load_config("local", overrides={"curation": {"tail_share": share}})
    assert load_config("local", overrides={"curation": {"tail_share": 0.999}}).curation.tail_share == 0.999


def test_the_lease_timeout_must_be_more_than_twice_the_heartbeat():
    with pytest.raises(ConfigError) as refused:
        load_config("local", overrides={"root": {"lease_heartbeat_seconds": 10.0, "lease_timeout_seconds": 20.0}})
    assert str(refused.value) == ("root.lease_timeout_seconds must be more than twice root.lease_heartbeat_seconds "
                                  "(> 0), got 20.0")
    short = load_config("local", overrides={"root": {"lease_heartbeat_seconds": 0.5, "lease_timeout_seconds": 1.5}})
    assert short.root.lease_heartbeat_seconds == 0.5
    settings = load_config("local", overrides={"root": {"lease_heartbeat_seconds": 10.0,
                                                        "lease_timeout_seconds": 20.001}})
    assert settings.root.lease_timeout_seconds == 20.001
    with pytest.raises(ConfigError, match="root.lease_timeout_seconds"):
        load_config("local", overrides={"root": {"lease_heartbeat_seconds": 0.0, "lease_timeout_seconds": 20.0}})


def test_t_must_be_a_whole_positive_number(tmp_path):
    assert parse_threshold(1) == 1 and parse_threshold("auto") == "auto" and parse_threshold(" AUTO ") == "auto"
    conf = tmp_path / "t.toml"
    conf.write_text("[curation]\nt = 2.5\n")
    with pytest.raises(ConfigError, match=r"curation.t must be a positive integer or 'auto', got 2.5"):
        load_config("local", str(conf))
    conf.write_text("[curation]\nt = 3.0\n")
    assert load_config("local", str(conf)).curation.t == 3
    for bad in (0, -1, "2.5", "x", True, None):
        with pytest.raises(ConfigError, match="curation.t"):
            parse_threshold(bad)
    assert load_config("local", overrides={"worldwide": {"t_by_lang": {"zh": 1}}}).worldwide.t_by_lang == {"zh": 1}
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="worldwide.t_by_lang.zh"):
            load_config("local", overrides={"worldwide": {"t_by_lang": {"zh": bad}}})


def test_automata_are_kept_up_to_exactly_their_byte_budget():
    entries = {"a": ["a", "b"], "b": ["c", "d", "e"], "c": ["f"]}
    sizes = {code: EntryMatcher(words, worldwide=True, kana=False).memory_bytes for code, words in entries.items()}
    fits = LanguageMatchers(entries, entries.__getitem__, max_bytes=sizes["a"] + sizes["b"], kana=False)
    fits.matcher("a"), fits.matcher("b")
    assert fits.loaded == ["a", "b"]
    tight = LanguageMatchers(entries, entries.__getitem__, max_bytes=sizes["a"] + sizes["b"] - 1, kana=False)
    tight.matcher("a"), tight.matcher("b")
    assert tight.loaded == ["b"]
    alone = LanguageMatchers(entries, entries.__getitem__, max_bytes=1, kana=False)
    assert alone.matcher("c") is not None and alone.loaded == ["c"]  # the language being matched always stays


def _records(name: str) -> list[bytes]:
    from conftest import DATA

    data, members = (DATA / "cc" / name).read_bytes(), []
    while data:
        inflater = zlib.decompressobj(31)
        members.append(inflater.decompress(data))
        data = inflater.unused_data
    return members


def test_a_page_of_exactly_max_page_bytes_is_kept_and_one_byte_more_is_not():
    from metaclip_spark.extraction.webarchive import ArchiveCounts, web_pages

    record = next(m for m in _records("warcfile.warc.gz") if b"WARC-Type: response" in m and b"text/html" in m)
    data = gzip.compress(record, mtime=0)
    page, = web_pages(io.BytesIO(data), ArchiveCounts(), 1 << 20)
    for limit, pages in ((len(page.html), 1), (len(page.html) - 1, 0)):
        counts = ArchiveCounts()
        assert len(list(web_pages(io.BytesIO(data), counts, limit))) == pages
        assert (counts.oversized_pages, counts.html_pages) == (1 - pages, pages)


# --- the gzip member reader's buffer boundary -----------------------------------------------------------------------

def _member(payload: bytes, size: int | None = None) -> bytes:
    """One gzip member of `payload` (stored, not compressed), `size` bytes long when given: the header's file name
    field is padded to make it so."""
    body = zlib.compressobj(0, zlib.DEFLATED, -15)
    deflated = body.compress(payload) + body.flush()
    trailer = struct.pack("<II", zlib.crc32(payload), len(payload) & 0xFFFFFFFF)
    bare = 10 + 1 + len(deflated) + len(trailer)  # header, the name's NUL, data, trailer
    name = b"n" * ((size - bare) if size is not None else 0)
    assert size is None or len(name) >= 0 and bare + len(name) == size
    return b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff" + name + b"\x00" + deflated + trailer


def _read(data: bytes, limit: int = 4 << 20, initial: int = 0) -> tuple[list[bytes], MemberCounts]:
    stream = io.BytesIO(data)
    counts = MemberCounts()
    return list(gzip_members(stream, counts, limit, initial=stream.read(initial))), counts


PAYLOADS = [os.urandom(1000) for _ in range(3)]


@pytest.mark.parametrize("initial", [0, 2])  # web_pages hands over the 2 bytes it sniffed first
@pytest.mark.parametrize("split", [0, 1, 2, 3, 4])  # bytes of the next header before the boundary
def test_a_member_header_split_across_the_read_boundary(split, initial):
    boundary = READ_BYTES + initial  # the first read holds `initial` + READ_BYTES bytes
    first = _member(os.urandom(READ_BYTES // 2) + PAYLOADS[0], size=boundary - split)
    data = first + _member(PAYLOADS[1]) + _member(PAYLOADS[2])
    members, counts = _read(data, initial=initial)
    assert [len(m) for m in members] == [READ_BYTES // 2 + 1000, 1000, 1000]
    assert members[1:] == PAYLOADS[1:] and (counts.members, counts.bytes_skipped) == (3, 0)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_a_header_split_across_the_read_boundary_is_found_after_garbage(split):
    """Junk between members is passed over by searching for the next header, which may straddle two reads: the
    carry-over keeps the bytes of a header begun at the end of one read."""
    first = _member(PAYLOADS[0])
    junk = b"j" * (READ_BYTES - len(first) - split)
    members, counts = _read(first + junk + _member(PAYLOADS[1]) + _member(PAYLOADS[2]))
    assert members == PAYLOADS and counts.bytes_skipped == len(junk) and counts.members == 3


@pytest.mark.parametrize("split", [1, 2, 3])
def test_a_header_split_across_the_read_boundary_is_found_after_a_corrupt_member(split):
    """A member that cannot be inflated (an invalid block type at once) is skipped to the next header, the same
    search across the boundary."""
    corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" + b"j" * (READ_BYTES - 11 - split)
    members, counts = _read(corrupt + _member(PAYLOADS[1]) + _member(PAYLOADS[2]))
    assert members == PAYLOADS[1:] and counts.members_skipped == 1 and counts.bytes_skipped == len(corrupt)


class _OneByteReads(io.RawIOBase):
    """A stream that returns one byte per read, as a socket or a remote file may when asked for more."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)

    def readable(self):
        return True

    def read(self, n=-1):
        return self.data.read(1)


def test_a_stream_returning_fewer_bytes_than_asked_loses_no_member():
    data = b"".join(_member(p) for p in PAYLOADS)
    counts = MemberCounts()
    assert list(gzip_members(_OneByteReads(data), counts, limit=1 << 20)) == PAYLOADS
    assert (counts.members, counts.bytes_skipped) == (3, 0)


def test_a_member_of_exactly_the_limit_is_a_record_and_one_byte_more_is_not():
    exact, over = _member(b"x" * 5000), _member(b"y" * 5001)
    assert _read(exact + over + exact, limit=5000)[0] == [b"x" * 5000, b"x" * 5000]
    counts = _read(exact + over + exact, limit=5000)[1]
    assert (counts.members, counts.members_skipped, counts.oversized) == (2, 1, 1)
    with pytest.raises(OneStreamFile):
        _read(over + exact, limit=5000)


def test_a_member_over_the_limit_is_caught_however_its_output_arrives():
    """Inflated output arrives capped at limit + 1 bytes per call, in pieces of up to a 64 KiB slice of input: a
    member over the limit is caught when its first piece is (a run of one byte, the cap binding long before its end),
    and when only its pieces summed are (stored, over two slices); the next members are found after either."""
    small = _member(PAYLOADS[0])
    runs = gzip.compress(b"y" * 50_000, mtime=0)
    stored = _member(os.urandom(100_000))
    members, counts = _read(small + runs + small + stored + small, limit=20_000)
    assert members == [PAYLOADS[0]] * 3
    assert (counts.members, counts.members_skipped, counts.oversized, counts.bytes_skipped) == (3, 2, 2, 0)
    members, counts = _read(small + stored + small, limit=80_000)  # 64 KiB and 36 KiB pieces, each under 80,000
    assert members == [PAYLOADS[0]] * 2 and (counts.members_skipped, counts.oversized) == (1, 1)


def test_a_member_inflating_far_past_the_limit_holds_no_more_memory_than_one_of_the_limit():
    """A zip bomb after a record (64 MiB of zeros in 64 KiB, one input slice): inflated on to its end at most
    limit + 1 bytes a call, it costs the memory of a member of the limit, not of what it inflates to."""
    small, bomb = _member(PAYLOADS[0]), gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
    tracemalloc.start()
    try:
        members, counts = _read(small + bomb + small, limit=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert members == [PAYLOADS[0]] * 2 and (counts.members_skipped, counts.oversized) == (1, 1)
    assert peak < 8 << 20, f"{peak / 2 ** 20:.0f} MiB held"


def test_each_corrupt_member_is_counted():
    corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff"
    members, counts = _read(corrupt + _member(PAYLOADS[0]) + corrupt + _member(PAYLOADS[1]))
    assert members == PAYLOADS[:2] and counts.members_skipped == 2 and counts.bytes_skipped == 2 * len(corrupt)


CORRUPT = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff"  # a gzip header, then an invalid block type


def test_a_file_ending_inside_a_member_keeps_what_it_held():
    payload = os.urandom(200_000)
    whole = _member(payload)
    members, counts = _read(_member(PAYLOADS[0]) + _member(PAYLOADS[1]) + whole[:150_000])
    assert members[:2] == PAYLOADS[:2] and len(members) == 3
    assert payload.startswith(members[2]) and len(members[2]) > 140_000  # several slices' pieces, in order
    assert counts.members == 3 and counts.truncated_at_end
    # ... unless that member was already over the limit: then nothing of it
    members, counts = _read(_member(PAYLOADS[0]) + gzip.compress(b"y" * 50_000, mtime=0)[:-20], limit=20_000)
    assert members == PAYLOADS[:1] and counts.members == 1 and counts.truncated_at_end


def test_a_corrupt_last_member_is_counted_to_the_end_of_the_file():
    members, counts = _read(_member(PAYLOADS[0]) + CORRUPT + b"rest")
    assert members == PAYLOADS[:1] and counts.members_skipped == 1 and counts.bytes_skipped == len(CORRUPT) + 4


def test_after_a_corrupt_first_member_an_oversized_one_is_skipped_not_taken_for_one_stream():
    members, counts = _read(CORRUPT + gzip.compress(b"y" * 50_000, mtime=0) + _member(PAYLOADS[0]), limit=20_000)
    assert members == PAYLOADS[:1] and (counts.members_skipped, counts.oversized) == (2, 1)


# --- ties in orderings ------------------------------------------------------------------------------------------------

def test_an_entry_listed_twice_is_matched_under_both_ids_in_order():
    matcher = EntryMatcher(["dog", "cat", "dog", "dog"])
    assert matcher.match("a dog and a cat") == [0, 1, 2, 3] == reference_match("a dog and a cat",
                                                                             ["dog", "cat", "dog", "dog"])


def test_a_duplicate_pair_keeps_the_row_of_the_first_file_by_path_then_the_first_in_that_file(spark):
    """One (uuid, text) in two differently named files at different positions: the row of the file first by path
    is kept, even though its position in that file is later."""
    from metaclip_spark.ingestion.dedup import first_of_duplicates

    rows = spark.createDataFrame([
        ("u1", "a dog", "b.warc.gz", 1, "from b"), ("u1", "a dog", "a.warc.gz", 7, "from a, later"),
        ("u1", "a dog", "a.warc.gz", 9, "from a, later still"), ("u2", "x", "c.warc.gz", 3, "c3"),
        ("u2", "x", "c.warc.gz", 2, "c2")], "uuid string, text string, source_file string, _seq long, page string")
    kept = {(r.uuid, r.page) for r in first_of_duplicates(rows.repartition(3)).collect()}
    assert kept == {("u1", "from a, later"), ("u2", "c2")}


# --- WAT: IMG@/srcset through the fast reader -------------------------------------------------------------------------

def test_srcset_links_are_pairs_through_the_fast_reader_as_through_the_plain_one():
    links = [{"path": "IMG@/srcset", "url": "d.png 2x", "alt": "a srcset image"},
             {"path": "IMG@/src", "url": "e.png", "title": "a src image"},
             {"path": "IMG@/srcsetx", "url": "f.png", "alt": "prefixed"},
             {"path": "IMG@/sr", "url": "g.png", "alt": "not an image src"}]
    record = {"Envelope": {"WARC-Header-Metadata": {"WARC-Target-URI": "http://x.org/a/"},
                           "Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": links}}}}}
    plain = webpage.wat_image_pairs({"Links": links}, "http://x.org/a/")
    envelope = wat.WatReader().read(json.dumps(record).encode())
    assert envelope is not None  # read the fast way, not handed back to the plain one
    fast = wat._typed_pairs(wat.html_of(envelope), wat.target_uri_of(envelope), wat.WatReader().attributes)
    expected = [("http://x.org/a/d.png 2x", "a srcset image", "alt"), ("http://x.org/a/e.png", "a src image", "title"),
                ("http://x.org/a/f.png", "prefixed", "alt")]
    assert plain.pairs == fast.pairs == wat.wat_pairs({"Links": links}, "http://x.org/a/").pairs
    assert [(u.replace("%20", " "), t, a) for u, t, a in fast.pairs] == expected
    assert fast.img_tags == plain.img_tags == 3
