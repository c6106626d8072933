"""Web archives of the real opt-out pages in tests/data/optout (tests of optout/signals.py on both extraction paths).

Each page becomes a WARC `response` record (gzipped, one member per record, as Common Crawl writes them) with the
HTTP headers given here, and an image with an English alt text after the page's own markup (most of the pages are
head excerpts, some with no image: a page gives signals only through a pair). tests/wat_writer.py then writes the
WAT file of that WARC file, as Common Crawl derives one.
"""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "optout"
PAGES = DATA / "pages"
ALT = "a red fox standing in the snow"


def response_record(url: str, headers: list[tuple[str, str]], body: bytes, date: str = "2025-03-01T10:00:00Z",
                    status: str = "200 OK") -> bytes:
    """One gzipped WARC/1.0 response record holding an HTTP/1.1 response."""
    http = (f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
            + f"Content-Length: {len(body)}\r\n\r\n").encode("utf-8") + body
    warc = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Date: {date}\r\n"
            f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url + date)}>\r\n"
            f"WARC-Target-URI: {url}\r\nContent-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http)}\r\n\r\n").encode("utf-8")
    return gzip.compress(warc + http + b"\r\n\r\n", mtime=0)


def page_body(name: str, image: str | None = None) -> bytes:
    """A real page with one image (its own, `image`) after its own markup."""
    return (PAGES / name).read_bytes() + f'\n<img src="/img/{image or name}.jpg" alt="{ALT}">\n'.encode()


# A page whose parse the fast path cuts after its last image (more than 4 KiB before the end): the head, with its
# robots meta, was closed by then (an <img> ends the head), and is read whole.
LATE_META = (b'<!doctype html><html><head><title>late</title><meta name="robots" content="noimageai">'
             + b"<style>p{margin:0}</style><body>" + f'<img src="/late.jpg" alt="{ALT}">'.encode() + b"<p>"
             + b"words " * 2000 + b"</p></body></html>")

# (page URL, response headers, body, the signals a plain reading of the page and its headers gives)
CASES = [
    ("https://licence.example/001", [("Content-Type", "text/html; charset=utf-8")], page_body("001.html"),
     ["tdm-reservation:meta"]),
    ("https://nineplus.example/002", [("Content-Type", "text/html")], page_body("002.html"),
     ["robots:noindex"]),
    ("https://georges.example/003", [("Content-Type", "text/html")], page_body("003.html"),
     ["robots:noai", "robots:noimageai", "tdm-reservation:meta"]),
    ("https://healsdata.example/004", [("Content-Type", "text/html")], page_body("004.html"),
     ["robots:noai", "robots:noimageai", "robots@ccbot:nofollow"]),
    ("https://taosband.example/005", [("Content-Type", "text/html")], page_body("005.html"),
     ["robots:nofollow", "robots:noindex"]),
    ("https://andrea.example/006", [("Content-Type", "text/html")], page_body("006.html"),
     ["robots:noai", "robots:noimageai", "tdm-reservation:meta"]),
    ("https://yjmini.example/007", [("Content-Type", "text/html")], page_body("007.html"),
     ["tdm-reservation:meta"]),
    ("https://bardejov.example/008", [("Content-Type", "text/html")], page_body("008.html"),
     ["robots:noai", "robots:nofollow", "robots:noimageai", "robots:noindex", "tdm-reservation:meta"]),
    ("https://macarons.example/009", [("Content-Type", "text/html")], page_body("009.html"), None),
    ("https://bardejov.example/010", [("Content-Type", "text/html")], page_body("010.html"),
     ["robots:noai", "robots:noimageai", "tdm-reservation:meta"]),
    ("https://soberana.example/011", [("Content-Type", "text/html")], page_body("011.html"),
     ["robots:noai", "robots:noimageai", "tdm-reservation:meta"]),
    ("https://regen.example/012", [("Content-Type", "text/html")], page_body("012.html"),
     ["robots:noindex"]),
    # the same page without opt-outs (002's noindex aside), its response refusing in each header form
    ("https://headers.example/x-robots", [("Content-Type", "text/html"), ("X-Robots-Tag", "noai, noimageai")],
     page_body("009.html", "h1"), ["x-robots-tag:noai", "x-robots-tag:noimageai"]),
    ("https://headers.example/x-robots-agent", [("Content-Type", "text/html"),
                                                ("X-Robots-Tag", "GPTBot: noimageai, max-snippet: 20")],
     page_body("009.html", "h2"), ["x-robots-tag@gptbot:noimageai"]),
    ("https://headers.example/x-robots-google", [("Content-Type", "text/html"),
                                                 ("X-Robots-Tag", "googlebot: noindex")],
     page_body("009.html", "h3"), ["x-robots-tag@googlebot:noindex"]),
    ("https://headers.example/tdm", [("Content-Type", "text/html"), ("tdm-reservation", "1")],
     page_body("009.html", "h4"), ["tdm-reservation:header"]),
    ("https://headers.example/tdm-0", [("Content-Type", "text/html"), ("tdm-reservation", "0")],
     page_body("009.html", "h5"), None),
    ("https://headers.example/content-usage", [("Content-Type", "text/html"),
                                               ("Content-Usage", "train-ai=n, search=y")],
     page_body("009.html", "h6"), ["content-usage:train-ai=n"]),
    ("https://headers.example/late-meta", [("Content-Type", "text/html")], LATE_META, ["robots:noimageai"]),
]


def write_warc(path: Path, cases=CASES) -> Path:
    """The cases' pages as one gzipped WARC file (one member per record)."""
    with open(path, "wb") as out:
        for url, headers, body, _ in cases:
            out.write(response_record(url, headers, body))
    return path
