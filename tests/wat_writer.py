"""A WAT writer: a gzipped WARC file in, the WAT file Common Crawl would publish for it out (tests and benchmark).

Common Crawl derives a WAT file from each WARC file with ia-web-commons: one `metadata` record of JSON per WARC
record, gzipped one member per record. This writer follows that layout, copied from the real record in
tests/data/cc/CC-MAIN-sample2.warc.wat.gz (and from ia-web-commons' ExtractingParseObserver for what goes in
`HTML-Metadata`):

    {"Container": {"Filename", "Compressed", "Offset", "Gzip-Metadata": {...}},
     "Envelope": {"Payload-Metadata": {"Actual-Content-Type",
                                        "HTTP-Response-Metadata": {"Response-Message", "Headers-Length", "Headers",
                                                                   "HTML-Metadata": {"Head": {...}, "Links": [...]},
                                                                   "Entity-Length", ...},
                                        "Actual-Content-Length", "Trailing-Slop-Length", "Block-Digest"},
                  "Format", "WARC-Header-Length", "WARC-Header-Metadata": {...}}}

`Links` holds, in document order, `A@/href` (with `text`, `title`, ...), `IMG@/src` (with `alt` and `title` when
present: never `data-image-title`), `IFRAME@/src`, `FORM@/action`, ...; `Head` holds `Title`, `Metas`, `Link`,
`Scripts` and `Base`. Like Common Crawl's (an HTML lexer, not an HTML5 tree builder), the page is read tag by tag,
here with the standard library's html.parser; attribute values are unescaped with the HTML5 rule for attributes
(`&copy=` stays as written), as jsoup does for Common Crawl. The page's bytes are decoded as metaclip_spark decodes
them (webpage.decode_html), so non-ASCII texts compare with the WARC path's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import io
import json
import re
import uuid
import zlib
from html.parser import HTMLParser
from html.entities import html5 as HTML5_ENTITIES
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType

from metaclip_spark.extraction.webarchive import PayloadDecodeError, _http_payload, _is_html, target_uri
from metaclip_spark.extraction.webpage import decode_html

MAX_TEXT_LEN = 128  # ia-web-commons clips anchor texts to 128 characters
_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_SPACES = re.compile(r"\s+")


def unescape_attribute(value: str) -> str:
    """Character references in an attribute value, by the HTML5 rule: a named reference without its semicolon
    followed by '=' or an ASCII letter or digit stays as written (URLs like `?a=1&copy=2`)."""
    if "&" not in value:
        return value

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("#") or name.endswith(";") and name in HTML5_ENTITIES:
            return html.unescape(match.group(0))
        for size in range(len(name), 1, -1):
            if name[:size] in HTML5_ENTITIES:
                following = name[size:size + 1] or value[match.end():match.end() + 1]
                if following == "=" or (following.isascii() and following.isalnum()):
                    return match.group(0)
                return HTML5_ENTITIES[name[:size]] + name[size:]
        return match.group(0)

    return _CHARREF.sub(replace, value)


class _HtmlMetadata(HTMLParser):
    """Head and Links of one page, as ia-web-commons' ExtractingParseObserver collects them."""

    _ATTRIBUTE = re.compile(r"""((?<=[\'"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*(\'[^\']*\'|"[^"]*"|(?![\'"])[^>\s]*))?(?:\s|/(?!>))*""")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.head: dict = {}
        self.links: list[dict] = []
        self.anchors: list[tuple[dict | None, list[str]]] = []
        self.title: list[str] | None = None

    def _attributes(self) -> dict[str, str | None]:
        """The tag's attributes from its raw text (first of duplicates wins, as in HTML5), unescaped for attributes."""
        raw = self.get_starttag_text() or ""
        found: dict[str, str | None] = {}
        start = re.match(r"<[a-zA-Z][^\t\n\r\f />\x00]*", raw)
        for m in self._ATTRIBUTE.finditer(raw, start.end() if start else 0):
            name, rest, value = m.group(1, 2, 3)
            name = name.lower()
            if name in found:
                continue
            if not rest:
                found[name] = None
                continue
            if value[:1] == value[-1:] and value[:1] in ("'", '"') and len(value) >= 2:
                value = value[1:-1]
            found[name] = unescape_attribute(value)
        return found

    @staticmethod
    def _link(path: str, url: str, attributes: dict, extra: tuple[str, ...]) -> dict:
        link = {"path": path, "url": url}
        for name in extra:
            if attributes.get(name) is not None:
                link[name] = attributes[name]
        return link

    def handle_starttag(self, tag, _attrs):
        a = self._attributes()
        if tag == "title" and "Title" not in self.head:
            self.title = []
        elif tag == "a":
            link = self._link("A@/href", a["href"], a, ("target", "alt", "title", "rel", "hreflang", "type")) \
                if a.get("href") is not None else None
            self.anchors.append((link, []))
        elif tag == "img":
            if a.get("src") is not None:
                self.links.append(self._link("IMG@/src", a["src"], a, ("alt", "title")))
            if a.get("longdesc") is not None:
                self.links.append({"path": "IMG@/longdesc", "url": a["longdesc"]})
        elif tag == "base" and a.get("href") is not None:
            self.head["Base"] = a["href"]
        elif tag == "meta":
            meta = {k: a[k] for k in ("name", "rel", "content", "http-equiv", "property") if a.get(k) is not None}
            if meta:
                self.head.setdefault("Metas", []).append(meta)
        elif tag == "link" and a.get("href") is not None:
            self.head.setdefault("Link", []).append(self._link("LINK@/href", a["href"], a, ("rel", "type")))
        elif tag == "script" and a.get("src") is not None:
            self.head.setdefault("Scripts", []).append(self._link("SCRIPT@/src", a["src"], a, ("type",)))
        elif tag in ("iframe", "frame", "embed", "source", "audio", "track") and a.get("src") is not None:
            self.links.append({"path": f"{tag.upper()}@/src", "url": a["src"]})
        elif tag == "form" and a.get("action") is not None:
            self.links.append(self._link("FORM@/action", a["action"], a, ("target", "method")))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "a" and self.anchors:
            self.handle_endtag("a")

    def handle_endtag(self, tag):
        if tag == "title" and self.title is not None:
            self.head["Title"] = _SPACES.sub(" ", "".join(self.title)).strip()[:MAX_TEXT_LEN]
            self.title = None
        elif tag == "a" and self.anchors:
            link, text = self.anchors.pop()
            if link is not None:
                text = _SPACES.sub(" ", "".join(text)).strip()[:MAX_TEXT_LEN]
                if text:
                    link["text"] = text
                self.links.append(link)

    def handle_data(self, data):
        if self.title is not None:
            self.title.append(data)
        for _, text in self.anchors:
            text.append(data)

    def metadata(self) -> dict:
        while self.anchors:
            self.handle_endtag("a")
        found = {}
        if self.head:
            found["Head"] = self.head
        if self.links:
            found["Links"] = self.links
        return found


def html_metadata(page: str) -> dict:
    """The `HTML-Metadata` object of one decoded page."""
    parser = _HtmlMetadata()
    try:
        parser.feed(page)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser gives up on some broken markup: keep what it found
        pass
    return parser.metadata()


def _sha1(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def _signed(crc: int) -> str:
    return str(crc - (1 << 32) if crc >= 1 << 31 else crc)


def gzip_members_with_offsets(data: bytes):
    """(offset, compressed length, inflated bytes) of each gzip member."""
    position = 0
    while position < len(data):
        inflater = zlib.decompressobj(31)
        inflated = inflater.decompress(data[position:position + (64 << 20)])
        length = len(data[position:position + (64 << 20)]) - len(inflater.unused_data)
        if not inflater.eof:
            return
        yield position, length, inflated
        position += length


def _headers(fields) -> dict:
    found: dict[str, str] = {}
    for name, value in fields.items():
        found[name] = value if name not in found else found[name] + ", " + value
    return found


def _payload_metadata(record, member: bytes, header_length: int) -> dict:
    block = member[header_length:header_length + record.content_length]
    payload: dict = {}
    record_type = record.record_type
    if record_type in (WarcRecordType.response, WarcRecordType.request) and record.http_headers is not None:
        http_end = block.find(b"\r\n\r\n")
        http_length = http_end + 4 if http_end >= 0 else block.find(b"\n\n") + 2
        entity = block[http_length:]
        line = record.http_headers.status_line
        if record_type == WarcRecordType.response:
            version, _, rest = line.partition(" ")
            status, _, reason = rest.partition(" ")
            http = {"Response-Message": {"Status": status, "Version": version, "Reason": reason}}
            key, kind = "HTTP-Response-Metadata", "application/http; msgtype=response"
        else:
            method, _, rest = line.partition(" ")
            path, _, version = rest.rpartition(" ")
            http = {"Request-Message": {"Method": method, "Path": path, "Version": version}}
            key, kind = "HTTP-Request-Metadata", "application/http; msgtype=request"
        http["Headers-Length"] = str(http_length)
        http["Headers"] = _headers(record.http_headers)
        if record_type == WarcRecordType.response and _is_html(record):
            try:
                body = _http_payload(record.reader.read(), record.http_headers, 5_000_000)
                http["HTML-Metadata"] = html_metadata(decode_html(body, record.http_charset))
            except PayloadDecodeError:
                pass
        http["Entity-Length"] = str(len(entity))
        if entity:
            http["Entity-Digest"] = _sha1(entity)
        http["Entity-Trailing-Slop-Length"] = "0"
        payload = {"Actual-Content-Type": kind, key: http}
    elif record_type in (WarcRecordType.metadata, WarcRecordType.warcinfo):
        fields = [line.split(":", 1) for line in block.decode("utf-8", "replace").splitlines() if ":" in line]
        if record_type == WarcRecordType.metadata:
            payload = {"Actual-Content-Type": "application/warc-fields",
                       "WARC-Metadata-Metadata": {"Metadata-Records": [{"Name": k.strip(), "Value": v.strip()}
                                                                       for k, v in fields]}}
        else:
            payload = {"Actual-Content-Type": "application/warc-fields",
                       "WARC-Info-Metadata": {k.strip(): v.strip() for k, v in fields}}
    else:
        payload = {"Actual-Content-Type": record.headers.get("Content-Type") or ""}
    payload["Actual-Content-Length"] = str(len(block))
    payload["Trailing-Slop-Length"] = "4"
    payload["Block-Digest"] = _sha1(block)
    return payload


def _wat_record(fields: list[tuple[str, str]], body: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields)
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode("utf-8") + body + b"\r\n\r\n"


def write_wat(warc: Path, wat: Path) -> dict:
    """Write the WAT file of a gzipped WARC file (one member per record); returns what was written."""
    data = Path(warc).read_bytes()
    written = {"records": 0, "html_metadata": 0, "img_links": 0}
    with open(wat, "wb") as out:
        info = f"software: metaclip-spark tests/wat_writer.py\r\nformat: WARC File Format 1.0\r\n" \
               f"description: WAT of {Path(warc).name}, laid out as Common Crawl's\r\n".encode()
        out.write(gzip.compress(_wat_record([("WARC-Type", "warcinfo"), ("WARC-Date", "2000-01-01T00:00:00Z"),
                                             ("WARC-Filename", Path(wat).name),
                                             ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid5(_NAMESPACE, str(wat))}>"),
                                             ("Content-Type", "application/warc-fields")], info),
                                mtime=0))
        for offset, length, member in gzip_members_with_offsets(data):
            header_length = member.find(b"\r\n\r\n") + 4
            for record in ArchiveIterator(io.BytesIO(member), parse_http=True, strict_mode=False, quirks_mode=True):
                warc_headers = _headers(record.headers)
                envelope = {
                    "Payload-Metadata": _payload_metadata(record, member, header_length),
                    "Format": "WARC",
                    "WARC-Header-Length": str(header_length),
                    "WARC-Header-Metadata": warc_headers,
                }
                container = {"Filename": Path(warc).name, "Compressed": True, "Offset": str(offset),
                             "Gzip-Metadata": {"Deflate-Length": str(length - 18), "Header-Length": "10",
                                               "Footer-Length": "8", "Inflated-CRC": _signed(zlib.crc32(member)),
                                               "Inflated-Length": str(len(member))}}
                document = {"Container": container, "Envelope": envelope}
                html_meta = (envelope["Payload-Metadata"].get("HTTP-Response-Metadata") or {}).get("HTML-Metadata")
                if html_meta is not None:
                    written["html_metadata"] += 1
                    written["img_links"] += sum(1 for link in html_meta.get("Links", ())
                                                if link["path"] == "IMG@/src")
                record_id = warc_headers.get("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>")
                fields = [("WARC-Type", "metadata"),
                          ("WARC-Target-URI", target_uri(warc_headers.get("WARC-Target-URI"))
                           or warc_headers.get("WARC-Filename", "")),
                          ("WARC-Date", warc_headers.get("WARC-Date", "")),
                          ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid5(_NAMESPACE, record_id)}>"),
                          ("WARC-Refers-To", record_id),
                          ("Content-Type", "application/json")]
                body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                out.write(gzip.compress(_wat_record(fields, body), compresslevel=6, mtime=0))
                written["records"] += 1
    return written


if __name__ == "__main__":
    import sys

    print(write_wat(Path(sys.argv[1]), Path(sys.argv[2])))
