"""Streaming the web pages out of one WARC or WAT file, record by record, with FastWARC.

Pure: a binary file object in, pages out, every skipped record counted. Nothing here holds a whole file: a record
is read, decoded and handed on before the next one is read.

- WARC `response` records with an HTML payload become `HtmlPage`s; HTTP transfer (chunked) and content (gzip,
  deflate, brotli) encodings are removed here, since servers mislabel them (a page declaring gzip may be plain).
- WAT `metadata` records (JSON) with HTML metadata become `WatPage`s.
- A gzipped file is read gzip member by member (extraction/gzip_members.py; one member per record, as Common Crawl writes
  them), so a bad record costs that record: a false Content-Length stays inside its member, a corrupt member is
  skipped to the next one (counted). A bad record header is skipped by FastWARC's non-strict mode. A record cut
  short still yields what it holds and is counted; a stream error, or a panic of the Rust reader, ends the file,
  keeping what came before and recording why (`ArchiveCounts.read_in_part`).
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import orjson
from fastwarc.warc import ArchiveIterator, WarcRecordType

from metaclip_spark.extraction.gzip_members import MemberCounts, OneStreamFile, gzip_members
from metaclip_spark.optout.signals import HEADER_NAMES, raw_headers_may_signal, raw_metas_may_signal
from metaclip_spark.extraction.wat import WatReader, headers_of, html_of, raw_json, target_uri_of
from metaclip_spark.extraction.webpage import DEFAULT_TEXT_ATTRIBUTES

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MEMBER_HEADROOM = 1 << 20  # WARC and HTTP headers around a page of max_page_bytes, in one member


@dataclass
class ArchiveCounts:
    """What one file held and why records were skipped (records, not pairs)."""

    records_read: int = 0
    records_truncated: int = 0
    html_pages: int = 0
    wat_pages: int = 0
    non_html: int = 0
    oversized_pages: int = 0
    decode_errors: int = 0
    corrupt_members: int = 0  # gzip members that could not be inflated, skipped to the next member
    bytes_skipped: int = 0  # compressed bytes passed over to reach the next member
    truncated_at_end: bool = False  # the file ends inside a record (what it held was kept)
    read_error: str | None = None  # the stream error that ended the file early, if any
    reader_panicked: bool = False  # the error was a panic of FastWARC, not an exception

    @property
    def read_in_part(self) -> str | None:
        """Why the file was read only in part (its bytes, not the network), or None when it was read whole."""
        reasons = []
        if self.corrupt_members or self.bytes_skipped:
            reasons.append(f"{self.corrupt_members} unreadable gzip member(s), {self.bytes_skipped:,} bytes skipped")
        if self.truncated_at_end:
            reasons.append("the file ends inside a record")
        if self.read_error:
            reasons.append(f"stopped by {self.read_error}")
        return "; ".join(reasons) or None


@dataclass
class HtmlPage:
    page_url: str
    html: bytes
    http_charset: str | None
    http_headers: object = None  # FastWARC's HeaderMap of the response, read while the page is the current one


def html_header_values(page: HtmlPage) -> tuple[list[str], list[str], list[str]]:
    """(X-Robots-Tag, tdm-reservation, Content-Usage) values of an HTML page's response, repeated headers apart."""
    headers = page.http_headers
    if headers is None or _OPTOUT_HEADERS.isdisjoint(map(bytes.lower, headers.keys_bytes())):
        return [], [], []  # (names listed as bytes: about 30 times faster than looking each name up)
    return (list(headers.get_multiple("X-Robots-Tag")), list(headers.get_multiple("tdm-reservation")),
            list(headers.get_multiple("Content-Usage")))


_OPTOUT_HEADERS = frozenset(name.encode() for name in HEADER_NAMES)


class WatPage:
    """A WAT record's page: its URL and HTML-Metadata, as a dict (`html_metadata`), and when the record was read the
    fast way (wat.WatReader) also typed (`typed`, for wat.page_pairs with `attributes`); the dict is then read from
    the record's JSON when first asked for."""

    __slots__ = ("page_url", "_html_metadata", "payload", "typed", "attributes", "_headers")

    def __init__(self, page_url: str, html_metadata: dict | None = None, *, payload: bytes | None = None, typed=None,
                 attributes: tuple[str, ...] = (), headers=None):
        self.page_url, self._html_metadata = page_url, html_metadata
        self.payload, self.typed, self.attributes = payload, typed, attributes
        self._headers = headers  # HTTP-Response-Metadata's Headers: a dict, or raw JSON (typed records)

    @property
    def optout_headers(self) -> dict:
        """The response's headers as the WAT lists them, when one of them may be an opt-out (optout/signals.py); else {}.
        Raw JSON (typed records) is decoded only when it may name one (signals.raw_headers_may_signal)."""
        headers = self._headers
        if headers is not None and not isinstance(headers, dict):
            if not raw_headers_may_signal(bytes(headers)):
                return {}
            headers = raw_json(headers)
        return headers if isinstance(headers, dict) else {}

    @property
    def optout_metas(self) -> list:
        """HTML-Metadata's Head/Metas, the page's metas as the WAT lists them; [] when none may hold an opt-out (raw
        JSON of typed records that cannot hold one, signals.raw_metas_may_signal, is not decoded)."""
        if self.typed is not None:
            head = self.typed.head
            if head is None or not raw_metas_may_signal(bytes(head.metas)):
                return []
            metas = raw_json(head.metas)
        else:
            head = (self.html_metadata or {}).get("Head")
            metas = head.get("Metas") if isinstance(head, dict) else None
        return metas if isinstance(metas, list) else []

    @property
    def html_metadata(self) -> dict:
        if self._html_metadata is None:
            envelope = _json(self.payload)["Envelope"]
            self._html_metadata = ((envelope.get("Payload-Metadata") or {}).get("HTTP-Response-Metadata")
                                   or {}).get("HTML-Metadata")
        return self._html_metadata

    def __repr__(self) -> str:
        return f"WatPage({self.page_url!r})"


class PayloadDecodeError(ValueError):
    """A content or transfer encoding that cannot be undone."""


def target_uri(value) -> str:
    """WARC-Target-URI without the angle brackets some writers (wget, WARC 1.0 drafts) put around it. In a WAT's JSON
    it may be of another type: a list gives its first string (a repeated header), anything else no URI."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    value = (value if isinstance(value, str) else "").strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def dechunk(body: bytes) -> bytes:
    """Undo HTTP chunked transfer encoding; a body that is not really chunked is returned as it is."""
    parts = []
    position = 0
    while position < len(body):
        line_end = body.find(b"\n", position, position + 1024)
        if line_end < 0:
            if not parts:
                return body  # no chunk header at all: the header lied
            break
        size_field = body[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            if not parts:
                return body  # no chunk header at all: the header lied
            break
        if size == 0:
            break
        start = line_end + 1
        parts.append(body[start:start + size])
        position = start + size
        if body[position:position + 2] == b"\r\n":
            position += 2
        elif body[position:position + 1] == b"\n":
            position += 1
    return b"".join(parts)


def _looks_like_markup(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] == b"<"


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    # A truncated stream inflates to what it holds; stop just past the cap so a bomb cannot fill memory.
    return decompressor.decompress(body, limit + 1)


def decode_content(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo a Content-Encoding, reading at most `limit` + 1 bytes of output; plain markup mislabelled is kept."""
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    for encoding in reversed(encodings):
        if encoding in ("identity", "none", "utf-8", "binary"):
            continue
        try:
            if encoding in ("gzip", "x-gzip"):
                body = _inflate(body, 47, limit)  # 32 + 15: gzip or zlib header, detected
            elif encoding == "deflate":
                try:
                    body = _inflate(body, 15, limit)
                except zlib.error:
                    body = _inflate(body, -15, limit)  # raw deflate, as many servers send it
            elif encoding in ("br", "brotli"):
                import brotli

                body = brotli.decompress(body)
            else:
                raise PayloadDecodeError(f"unsupported content encoding {encoding!r}")
        except Exception as e:  # noqa: BLE001 - zlib, brotli and ours each raise their own error class
            if _looks_like_markup(body):
                return body  # declared compressed, sent plain (seen in ClueWeb09 and on real servers)
            raise PayloadDecodeError(f"{encoding}: {e}") from None
    return body


def _http_payload(body: bytes, headers, limit: int) -> bytes:
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        body = dechunk(body)
    return decode_content(body, headers.get("Content-Encoding"), limit)


def _is_html(record) -> bool:
    content_type = (record.http_content_type or "").lower()
    if content_type in HTML_TYPES:
        return True
    if not content_type or content_type == "application/octet-stream":
        identified = (record.headers.get("WARC-Identified-Payload-Type") or "").split(";")[0].strip().lower()
        return identified in HTML_TYPES
    return False


def _json(payload: bytes):
    """The record's JSON, by orjson (several times the standard library's speed); what orjson refuses and the
    standard library reads (NaN, integers past 64 bits, lone surrogates) is read as before."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


def _wat_page(record, counts: ArchiveCounts, limit: int, reader: WatReader | None) -> WatPage | None:
    return _wat_page_of(record.headers, record.content_length, record.reader.read, counts, limit, reader)


def _wat_page_of(headers, content_length: int, read_payload, counts: ArchiveCounts, limit: int,
                 reader: WatReader | None) -> WatPage | None:
    if not (headers.get("Content-Type") or "").lower().startswith("application/json"):
        return None
    if content_length > limit:
        counts.oversized_pages += 1
        return None
    payload = read_payload()
    if len(payload) < content_length:
        counts.records_truncated += 1
    envelope = reader.read(payload) if reader is not None else None
    if envelope is not None:  # read the fast way: what follows is the plain way's, on the typed record
        html = html_of(envelope)
        if html is None:
            return None
        page_url = target_uri(target_uri_of(envelope) or headers.get("WARC-Target-URI"))
        counts.wat_pages += 1
        return WatPage(page_url, payload=payload, typed=html, attributes=reader.attributes,
                       headers=headers_of(envelope))
    try:
        envelope = _json(payload)["Envelope"]
    except (ValueError, KeyError, TypeError):
        counts.decode_errors += 1
        return None
    response = (envelope.get("Payload-Metadata") or {}).get("HTTP-Response-Metadata") or {}
    html_metadata = response.get("HTML-Metadata")
    if not isinstance(html_metadata, dict):
        return None  # metadata of a request or of a non-HTML response
    page_url = target_uri((envelope.get("WARC-Header-Metadata") or {}).get("WARC-Target-URI")
                          or headers.get("WARC-Target-URI"))
    counts.wat_pages += 1
    return WatPage(page_url, html_metadata, headers=response.get("Headers"))


def _html_page(record, counts: ArchiveCounts, limit: int) -> HtmlPage | None:
    if not _is_html(record):
        counts.non_html += 1
        return None
    if record.content_length > limit:
        counts.oversized_pages += 1
        return None
    raw = record.reader.read(limit + 1)
    if len(raw) < record.content_length:
        counts.records_truncated += 1  # cut short (truncated gzip member): keep what it holds
    try:
        html = _http_payload(raw, record.http_headers, limit)
    except PayloadDecodeError:
        counts.decode_errors += 1
        return None
    if len(html) > limit:
        counts.oversized_pages += 1  # small on the wire, over the cap once decompressed
        return None
    counts.html_pages += 1
    return HtmlPage(target_uri(record.headers.get("WARC-Target-URI")), html, record.http_charset, record.http_headers)


class _PlainHeaders(dict):
    """WARC headers by lower-cased name, read as FastWARC reads them: names in any case, the first of repeated
    names, values without surrounding blanks."""

    def get(self, name: str, default=None):
        return dict.get(self, name.lower(), default)


_PLAIN_TYPES = frozenset({"warcinfo", "request", "metadata", "resource", "revisit", "conversion", "continuation"})
_WARC_VERSIONS = (b"WARC/1.0\r\n", b"WARC/1.1\r\n")


def _plain_record(member: bytes) -> tuple[str, _PlainHeaders, bytes] | None:
    """(WARC-Type, headers, block) of a member that is exactly one well-formed record of a type that needs no HTTP
    parsing (every WAT record, a WARC file's requests and metadata), read without a FastWARC reader per member;
    None for anything else (responses, quirks, damage), which FastWARC reads."""
    if member[:10] not in _WARC_VERSIONS:
        return None
    end = member.find(b"\r\n\r\n")
    if end < 0 or member.find(b"\r\nWARC-Type: response\r\n", 0, end + 2) >= 0:
        return None  # (a response: FastWARC parses its HTTP message)
    headers = _PlainHeaders()
    try:
        for line in member[10:end].decode("utf-8").split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or " " in name or "\t" in name:
                return None
            headers.setdefault(name.lower(), value.strip(" \t"))
    except UnicodeDecodeError:
        return None
    record_type, length = headers.get("WARC-Type"), headers.get("Content-Length") or ""
    if record_type not in _PLAIN_TYPES or not length.isdigit() or not length.isascii():
        return None
    start = end + 4
    stop = start + int(length)
    if len(member) != stop + 4 or member[stop:] != b"\r\n\r\n":
        return None
    return record_type, headers, member[start:stop]


def _records(stream: BinaryIO) -> ArchiveIterator:
    # quirks_mode reads LF-only header lines (ClueWeb09, hand-made WATs); strict_mode=False skips a bad header
    # instead of ending the file.
    return ArchiveIterator(stream, parse_http=True, strict_mode=False, quirks_mode=True)


def _pages(records: ArchiveIterator, counts: ArchiveCounts, max_page_bytes: int,
           reader: WatReader | None) -> Iterator[HtmlPage | WatPage]:
    for record in records:
        counts.records_read += 1
        record_type = record.record_type
        if record_type == WarcRecordType.response:
            page = _html_page(record, counts, max_page_bytes)
        elif record_type == WarcRecordType.metadata:
            page = _wat_page(record, counts, max_page_bytes, reader)
        else:
            continue
        if page is not None:
            yield page


def _pages_by_member(stream: BinaryIO, head: bytes, counts: ArchiveCounts, max_page_bytes: int,
                     reader: WatReader | None) -> Iterator[HtmlPage | WatPage]:
    """Member by member (extraction/gzip_members.py): a bad record costs that record. A file compressed as one stream is
    read as one stream."""
    members = MemberCounts()
    try:
        for member in gzip_members(stream, members, max_page_bytes + MEMBER_HEADROOM, initial=head):
            plain = _plain_record(member)
            if plain is None:
                yield from _pages(_records(io.BytesIO(member)), counts, max_page_bytes, reader)
                continue
            counts.records_read += 1
            record_type, headers, block = plain
            if record_type == "metadata":
                page = _wat_page_of(headers, len(block), lambda: block, counts, max_page_bytes, reader)
                if page is not None:
                    yield page
    except OneStreamFile:
        stream.seek(0)
        yield from _pages(_records(stream), counts, max_page_bytes, reader)
    finally:
        counts.corrupt_members += members.members_skipped - members.oversized
        counts.oversized_pages += members.oversized
        counts.bytes_skipped += members.bytes_skipped
        counts.truncated_at_end = counts.truncated_at_end or members.truncated_at_end


def web_pages(stream: BinaryIO, counts: ArchiveCounts, max_page_bytes: int,
              text_attributes: tuple[str, ...] | list[str] | None = DEFAULT_TEXT_ATTRIBUTES
              ) -> Iterator[HtmlPage | WatPage]:
    """The HTML pages (WARC) and HTML metadata (WAT) of one file, in file order; `counts` is updated as it goes.

    WAT records are read the fast way (wat.WatReader) for pairs with `text_attributes` (None: the plain way only).

    A gzipped file is read member by member and need not seek; an uncompressed one is handed to FastWARC whole,
    which needs a seekable stream (local files and storage.ResumableReader are)."""
    reader = WatReader(text_attributes) if text_attributes is not None else None
    try:
        head = stream.read(2)
        if head == b"\x1f\x8b":
            yield from _pages_by_member(stream, head, counts, max_page_bytes, reader)
        else:
            stream.seek(0)
            yield from _pages(_records(stream), counts, max_page_bytes, reader)
    except (GeneratorExit, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - even a panic of the Rust reader (pyo3's PanicException is a
        # BaseException) ends this file only, keeping what came before
        counts.read_error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        counts.reader_panicked = not isinstance(e, Exception)
