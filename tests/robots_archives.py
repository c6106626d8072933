"""Web archives for `curate --robots` tests: pages with one image each (a WARC file of `response` records, as
tests/optout_archives.py writes them) and robots.txt captures of their hosts, as Common Crawl's robotstxt WARC files
hold them (a `response` record per robots.txt fetched, its HTTP status, the file byte for byte), built from the
real robots.txt files of tests/data/optout/robots."""

from __future__ import annotations

from pathlib import Path

from optout_archives import ALT, DATA, response_record

ROBOTS = DATA / "robots"


def page(url: str, image: str) -> tuple[str, bytes]:
    body = (f'<!doctype html><html><head><title>t</title></head><body><p>words</p>'
            f'<img src="{image}" alt="{ALT}"></body></html>').encode()
    return url, body


def write_pages(path: Path, pages: list[tuple[str, str]]) -> Path:
    """One gzipped WARC file of the pages (page URL, image URL)."""
    with open(path, "wb") as out:
        for url, image in pages:
            url, body = page(url, image)
            out.write(response_record(url, [("Content-Type", "text/html; charset=utf-8")], body))
    return path


def write_captures(path: Path, captures: list[tuple[str, str, str | None, str]]) -> Path:
    """One gzipped WARC file of robots.txt captures: (host, status line, real file name or None, WARC-Date)."""
    with open(path, "wb") as out:
        for host, status, name, date in captures:
            body = (ROBOTS / name).read_bytes() if name else b""
            out.write(response_record(f"https://{host}/robots.txt", [("Content-Type", "text/plain")], body,
                                      date=date, status=status))
    return path
