"""The gzip members of a web archive, one at a time, so that one bad record costs that record and not the file.

Common Crawl (and most WARC writers) compress each record as its own gzip member. Handing FastWARC the whole
file lets one bad record end it: a record whose Content-Length is too large makes the reader skip that many
bytes (the rest of the file lost, silently), and a corrupt member stops decompression there. Read member by
member instead, each member's records are parsed on their own: a false length stays inside its member, and a
member that cannot be inflated is skipped up to the next gzip header, what was skipped counted.

Pure Python over ISA-L's inflate (zlib's API, C, about twice zlib's speed); memory is one member at a time (a
record: Common Crawl cuts payloads at 1 MiB). A member that inflates past `limit` is no single record (a file compressed as one stream):
`OneStreamFile` tells the caller to read the file as one stream, when it is the first member; a later one is
skipped and counted, inflated to its end `limit` + 1 bytes at a time (a zip bomb holds no more memory than a
member of the limit).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

try:  # Intel ISA-L's inflate, zlib's API at about twice its speed (measured in make bench); zlib where it is absent
    from isal import isal_zlib as inflate
except ImportError:  # pragma: no cover - isal is a dependency; platforms without its wheels fall back
    inflate = zlib
_INFLATE_ERRORS = (zlib.error, inflate.error)

GZIP_HEADER = b"\x1f\x8b\x08"  # magic and the deflate method: where a member can start
READ_BYTES = 1 << 20
FEED_BYTES = 1 << 16


class OneStreamFile(Exception):
    """The first member inflates past the limit: the file is not one member per record."""


@dataclass
class MemberCounts:
    members: int = 0
    members_skipped: int = 0      # members that could not be inflated (corrupt), or were over the limit
    oversized: int = 0            # of those, the members over the limit
    bytes_skipped: int = 0        # compressed bytes passed over to reach the next member
    truncated_at_end: bool = False  # the file ends inside a member (what it held was kept)


class _Buffer:
    """Compressed bytes read ahead of the current position, refilled from the stream on demand."""

    def __init__(self, stream: BinaryIO, initial: bytes):
        self.stream = stream
        self.data = bytearray(initial)
        self.exhausted = False

    def fill(self) -> bool:
        if self.exhausted:
            return False
        chunk = self.stream.read(READ_BYTES)
        if not chunk:
            self.exhausted = True
            return False
        self.data += chunk
        return True

    def find_header(self, start: int) -> int | None:
        """The offset of the next gzip header at or after `start`, reading on as needed; None at the end."""
        while True:
            found = self.data.find(GZIP_HEADER, start)
            if found >= 0:
                return found
            start = max(start, len(self.data) - len(GZIP_HEADER) + 1)
            if not self.fill():
                return None

    def skip_to_header(self, start: int, counts: "MemberCounts") -> int | None:
        """The next gzip header after `start` (None at the end), the bytes passed over counted in `counts`."""
        found = self.find_header(start + 1)
        counts.bytes_skipped += (len(self.data) if found is None else found) - start
        return found

    def drop_before(self, offset: int) -> int:
        """Forget bytes before `offset` (already inflated); returns how many, to shift offsets by."""
        if offset < READ_BYTES:
            return 0
        del self.data[:offset]
        return offset


def gzip_members(stream: BinaryIO, counts: MemberCounts, limit: int, initial: bytes = b"") -> Iterator[bytes]:
    """Each gzip member of `stream` inflated, in order; corrupt members skipped (counted), see the module doc.
    `initial`: bytes already read from the stream's start. The stream need not seek."""
    buffer = _Buffer(stream, initial)
    start = 0  # where the current member starts in buffer.data
    first = True
    while True:
        # A stream may return fewer bytes than asked (a socket, a remote file): read on until a whole header is in.
        while len(buffer.data) - start < len(GZIP_HEADER) and buffer.fill():
            pass
        if start >= len(buffer.data):
            return
        if buffer.data[start:start + len(GZIP_HEADER)] != GZIP_HEADER:
            start = buffer.skip_to_header(start, counts)  # garbage between members: on to the next header
            if start is None:
                return
        inflater = inflate.decompressobj(31)
        pieces: list[bytes] = []
        size, position, oversized = 0, start, False
        try:
            while not inflater.eof:
                if position >= len(buffer.data) and not buffer.fill():
                    break  # the file ends inside this member
                # Fed in slices: zlib copies what follows a member's end (unused_data), so a slice bounds it. At most
                # limit + 1 bytes out per call, over the limit or not: a member inflating to any size (a zip bomb)
                # holds no more memory than a member of the limit does.
                with memoryview(buffer.data) as view, view[position:position + FEED_BYTES] as data:
                    piece = inflater.decompress(data, limit + 1)
                    position += len(data) - len(inflater.unconsumed_tail) - len(inflater.unused_data)
                if not oversized:
                    pieces.append(piece)
                    size += len(piece)
                    if size > limit:
                        if first:
                            raise OneStreamFile()
                        oversized, pieces = True, []  # inflated to its end, keeping nothing
        except _INFLATE_ERRORS:
            counts.members_skipped += 1
            start, first = buffer.skip_to_header(start, counts), False
            if start is None:
                return
            continue
        first = False
        if not inflater.eof:
            counts.truncated_at_end = True
            rest = b"" if oversized else inflater.flush()
            if pieces or rest:
                counts.members += 1
                yield b"".join(pieces) + rest
            return
        if oversized:
            counts.members_skipped += 1
            counts.oversized += 1
        else:
            counts.members += 1
            yield b"".join(pieces)
        start = position
        shift = buffer.drop_before(start)
        start -= shift
