"""A damaged record costs that record, not the file: real WARC excerpts damaged on purpose, read member by member.

Common Crawl writes one gzip member per record; the reader (webarchive.web_pages over gzip_members) parses each
member's records on their own. Damage is made to real files from tests/data/cc: an impossible Content-Length, a
corrupt member, junk between members, a cut file; then a seeded fuzz of all of those together.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import zlib

import pytest

from metaclip_spark import cli
from metaclip_spark.extraction.gzip_members import MemberCounts, OneStreamFile, gzip_members
from metaclip_spark.extraction.webarchive import ArchiveCounts, web_pages

from conftest import DATA

CC = DATA / "cc"
FILES = ("sample-0000.warc.gz", "sample-0001.warc.gz", "warcfile.warc.gz", "clueweb-quirk.warc.gz",
         "example.warc.gz")
LIMIT = 5 << 20


def _members(name: str) -> list[bytes]:
    """The records of a file, one per gzip member, inflated."""
    data, members = (CC / name).read_bytes(), []
    while data:
        inflater = zlib.decompressobj(31)
        members.append(inflater.decompress(data))
        data = inflater.unused_data
    return members


def _compress(members: list[bytes]) -> list[bytes]:
    return [gzip.compress(m, compresslevel=6, mtime=0) for m in members]


def _pages(data: bytes) -> tuple[list[str], ArchiveCounts]:
    counts = ArchiveCounts()
    pages = [page.page_url + "\n" + str(len(getattr(page, "html", b""))) for page in
             web_pages(io.BytesIO(data), counts, LIMIT)]
    return pages, counts


def _pages_per_member(members: list[bytes]) -> list[list[str]]:
    return [_pages(gzip.compress(m, mtime=0))[0] for m in members]


def test_an_impossible_content_length_costs_no_other_record():
    members = _members("sample-0000.warc.gz")
    clean, _ = _pages(b"".join(_compress(members)))
    target = next(i for i, m in enumerate(members) if i >= 5 and b"WARC-Type: response" in m[:500])
    declared = int(re.search(rb"Content-Length: (\d+)", members[target]).group(1))

    def lying(length: int) -> bytes:
        parts = list(members)
        parts[target] = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % length, parts[target], count=1)
        return b"".join(_compress(parts))

    # whole FastWARC over the file skipped 99,999,999 bytes here and lost 42 of 48 records, silently; now the
    # record that lies is the only one lost (it claims more than the page size cap, and is counted as such)
    pages, counts = _pages(lying(99_999_999))
    assert counts.records_read == 48 and len(pages) == len(clean) - 1 == 21 and counts.oversized_pages == 1
    # a lie under the cap: the record is kept as far as it goes, counted as truncated
    pages, counts = _pages(lying(declared + 300_000))
    assert counts.records_read == 48 and len(pages) == 22 and counts.records_truncated == 1


def test_a_corrupt_member_is_skipped_to_the_next_one_and_counted():
    members = _members("sample-0000.warc.gz")
    per_member = _pages_per_member(members)
    compressed = _compress(members)
    damaged = bytearray(compressed[10])
    damaged[len(damaged) // 2:len(damaged) // 2 + 16] = b"\x00" * 16
    compressed[10] = bytes(damaged)
    pages, counts = _pages(b"".join(compressed))
    assert pages == [p for i, ps in enumerate(per_member) if i != 10 for p in ps]
    assert counts.corrupt_members == 1 and counts.bytes_skipped == len(damaged)
    assert counts.read_in_part.startswith("1 unreadable gzip member(s)")


def test_junk_between_members_is_passed_over():
    compressed = _compress(_members("warcfile.warc.gz"))
    clean, _ = _pages(b"".join(compressed))
    junk = b"\x00garbage\x1f\x8b not a header" * 10
    pages, counts = _pages(b"".join(compressed[:20]) + junk + b"".join(compressed[20:]))
    assert pages == clean and counts.bytes_skipped == len(junk) and counts.corrupt_members == 0
    assert counts.read_in_part == f"0 unreadable gzip member(s), {len(junk)} bytes skipped"


def test_a_file_cut_mid_record_keeps_every_record_before_the_cut():
    compressed = _compress(_members("sample-0001.warc.gz"))
    whole = b"".join(compressed)
    cut = len(b"".join(compressed[:20])) + len(compressed[20]) // 2
    pages, counts = _pages(whole[:cut])
    assert pages[:len(_pages(b"".join(compressed[:20]))[0])] == _pages(b"".join(compressed[:20]))[0]
    assert counts.truncated_at_end and counts.read_in_part == "the file ends inside a record"


def test_a_file_compressed_as_one_stream_is_read_as_one():
    members = _members("sample-0000.warc.gz")
    one_stream = gzip.compress(b"".join(members), mtime=0)
    assert _pages(one_stream)[0] == _pages(b"".join(_compress(members)))[0]
    with pytest.raises(OneStreamFile):  # a first member larger than any record: not one member per record
        list(gzip_members(io.BytesIO(one_stream), MemberCounts(), limit=100_000))


def _damage(rng: random.Random, compressed: list[bytes]) -> tuple[bytes, set[int], str]:
    """The file with one kind of damage at random; the members it touched (whose pages may be lost)."""
    kind = rng.choice(("bit_flips", "cut_member", "false_length", "truncated_file"))
    parts = list(compressed)
    target = rng.randrange(len(parts))
    if kind == "bit_flips":  # inside the deflate data: header and trailer left whole
        member = bytearray(parts[target])
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(10, max(11, len(member) - 8))
            member[position] ^= 1 << rng.randrange(8)
        parts[target] = bytes(member)
        return b"".join(parts), {target}, kind
    if kind == "cut_member":  # a member missing its second half, the next ones whole
        parts[target] = parts[target][:rng.randrange(1, len(parts[target]))]
        return b"".join(parts), {target}, kind
    if kind == "false_length":  # a WARC Content-Length that lies, either way
        record = zlib.decompress(parts[target], 31)
        lie = rng.choice((b"0", b"7", b"99999999", str(rng.randrange(1, 10**6)).encode()))
        parts[target] = gzip.compress(re.sub(rb"Content-Length: \d+", b"Content-Length: " + lie, record, count=1),
                                      mtime=0)
        return b"".join(parts), {target}, kind
    whole = b"".join(parts)
    cut = rng.randrange(1, len(whole))
    first_cut = next(i for i in range(len(parts)) if len(b"".join(parts[:i + 1])) > cut)
    return whole[:cut], set(range(first_cut, len(parts))), kind


def test_fuzz_damaged_real_archives_never_crash_and_keep_every_undamaged_record():
    rng = random.Random(20261130)
    seen_kinds = set()
    for trial in range(60):
        name = FILES[trial % len(FILES)]
        members = _members(name)
        per_member = _pages_per_member(members)
        data, touched, kind = _damage(rng, _compress(members))
        seen_kinds.add(kind)
        pages, counts = _pages(data)  # never raises: damage is counted, not fatal
        kept = set(pages)
        for index, member_pages in enumerate(per_member):
            if index not in touched:
                assert set(member_pages) <= kept, (trial, name, kind, index)
        if kind in ("bit_flips", "cut_member"):
            assert counts.read_in_part, (trial, name, kind)
        assert not counts.reader_panicked
    assert seen_kinds == {"bit_flips", "cut_member", "false_length", "truncated_file"}


def test_status_lists_a_damaged_file_as_read_in_part(spark, tmp_path, capsys):
    members = _members("sample-0000.warc.gz")
    compressed = _compress(members)
    damaged = bytearray(compressed[12])
    damaged[len(damaged) // 2] ^= 0xFF
    compressed[12] = bytes(damaged)
    (tmp_path / "damaged.warc.gz").write_bytes(b"".join(compressed))
    (tmp_path / "warc.paths").write_text("damaged.warc.gz\nsample-0001.warc.gz\n")
    (tmp_path / "sample-0001.warc.gz").write_bytes((CC / "sample-0001.warc.gz").read_bytes())
    root = tmp_path / "root"
    assert cli.main(["curate", "--input", str(tmp_path / "warc.paths"), "--crawl", "CC-MAIN-2024-18", "--output",
                     str(root), "--metadata", str(DATA / "metadata" / "small.json"), "--t", "5"]) == 0
    capsys.readouterr()
    assert cli.main(["status", str(root), "--json"]) == 0
    crawl = json.loads(capsys.readouterr().out)["crawls"]["CC-MAIN-2024-18"]
    assert (crawl["files_done"], crawl["files_partial"], crawl["files_failed"]) == (2, 1, 0)
    assert crawl["partial_files"][0]["file"] == "damaged.warc.gz"
    assert "1 unreadable gzip member(s)" in crawl["partial_files"][0]["reason"]
    state = json.loads((root / "crawls" / "CC-MAIN-2024-18.json").read_text())
    assert state["extract"]["dropped_corrupt_member"] == 1 and state["extract"]["bytes_skipped"] > 0
    report = json.loads((root / "report" / "summary.json").read_text())
    assert report["files"]["files_partial"] == 1
    assert "read in part" in (root / "report" / "index.html").read_text(encoding="utf-8")
    # a partly read file is done: a rerun does not read it again
    assert cli.main(["match", "--input", str(tmp_path / "warc.paths"), "--crawl", "CC-MAIN-2024-18", "--output",
                     str(root), "--metadata", str(DATA / "metadata" / "small.json")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["files_processed_now"] == 0
