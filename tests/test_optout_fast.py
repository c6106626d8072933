"""Page signals read the fast way give what a plain reading gives (optout/signals.py, extraction/job.page_signals).

The fast way skips work: on the WAT path the raw JSON of Headers and Head/Metas is decoded only when it may hold a
signal (signals.raw_*_may_signal), on the WARC path the head's metas are read from the tree cut after the last image,
children compared by tag id. The plain way decodes every record whole (json) and parses every page whole, reading
each head meta's attributes as a dict. Both are compared on every real page of tests/data (Common Crawl excerpts and
the opt-out pages, as WARC and as WAT records) and on generated pages and records, where letters are written as
character references or JSON escapes, in any case.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from metaclip_spark.extraction.job import page_signals
from metaclip_spark.extraction.wat import WatReader, headers_of, html_of, page_pairs
from metaclip_spark.extraction.webarchive import ArchiveCounts, HtmlPage, WatPage, web_pages
from metaclip_spark.extraction.webpage import html_image_pairs, parser_input
from metaclip_spark.optout import signals
from metaclip_spark.optout.signals import combined, header_signals, headers_by_name, meta_signals
from optout_archives import write_warc
from wat_writer import write_wat

from conftest import DATA

REAL_WARCS = [DATA / "cc" / name for name in ("warcfile.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz",
                                              "clueweb-quirk.warc.gz", "example.warc.gz", "clipped.warc.gz")]
HEADER_NAMES = ("X-Robots-Tag", "tdm-reservation", "Content-Usage")


def plain_html_signals(page: HtmlPage) -> list[str] | None:
    """The signals of an HTML page read the plain way: every opt-out header looked up, the whole page parsed, each
    meta child of its head read as a dict of attributes."""
    headers = page.http_headers
    values = [list(headers.get_multiple(name)) if headers is not None else [] for name in HEADER_NAMES]
    head = LexborHTMLParser(parser_input(page.html, page.http_charset)).head
    metas = [meta.attributes for meta in (head.iter() if head is not None else ()) if meta.tag == "meta"]
    return combined(header_signals(*values),
                    meta_signals([(m.get("name"), m.get("content")) for m in metas if m.get("content") is not None]))


def plain_wat_signals(payload: bytes) -> list[str] | None:
    """The signals of a WAT record read the plain way: its JSON decoded whole."""
    response = json.loads(payload)["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]
    headers = response.get("Headers")
    head = (response.get("HTML-Metadata") or {}).get("Head")
    metas = head.get("Metas") if isinstance(head, dict) else None
    metas = [(m.get("name"), m.get("content")) for m in (metas if isinstance(metas, list) else [])
             if isinstance(m, dict)]
    return combined(header_signals(*headers_by_name(headers if isinstance(headers, dict) else {})),
                    meta_signals(metas))


def _html_pages(path):
    with open(path, "rb") as stream:
        for page in web_pages(stream, ArchiveCounts(), 5 << 20):
            images = html_image_pairs(page.html, page.page_url, page.http_charset)
            if images.markup is not None and not images.too_deep:  # a page with an image tag, parsed as a tree
                yield page, images


def _wat_pages(path):
    with open(path, "rb") as stream:
        for page in web_pages(stream, ArchiveCounts(), 5 << 20):
            yield page, page_pairs(page)


def test_every_real_page_gives_the_signals_of_a_plain_reading(tmp_path):
    optout_warc = write_warc(tmp_path / "optout.warc.gz")
    checked = with_signals = 0
    for path in REAL_WARCS + [optout_warc]:
        wat = tmp_path / (path.name.replace(".warc.gz", "") + ".warc.wat.gz")
        write_wat(path, wat)
        for page, images in _html_pages(path):
            fast = page_signals(page, images)
            assert fast == plain_html_signals(page), page.page_url
            checked, with_signals = checked + 1, with_signals + (fast is not None)
        for page, images in _wat_pages(wat):
            assert page.typed is not None  # (read the fast way: the raw JSON gates are on this path)
            fast = page_signals(page, images)
            assert fast == plain_wat_signals(page.payload), page.page_url
            checked, with_signals = checked + 1, with_signals + (fast is not None)
    print(checked, with_signals)
    assert checked > 150 and with_signals >= 20  # both kinds of page, on both paths


def test_no_word_a_signal_needs_holds_a_k():
    # The raw JSON gates rely on it (signals.py): str.lower() turns U+212A KELVIN SIGN into "k".
    assert not any("k" in word for word in signals.DIRECTIVES + signals.HEADER_NAMES + ("tdm-reservation",))


def test_every_directive_starts_with_no():
    # raw_metas_may_signal looks for the directives only where a "no" starts (signals.py)
    assert all(word.startswith("no") for word in signals.DIRECTIVES)


@pytest.mark.parametrize("content", ["no,noai", "No, NOAI", "nono noimageai", "note: no none", "x no\tnotranslate"])
def test_a_directive_after_other_nos_is_screened_in(content):
    # each "no" of the text is a place a directive may start: the ones before it do not hide it
    raw = b'[{"name":"robots","content":"%s"}]' % content.encode()
    assert signals.raw_metas_may_signal(raw)
    assert not signals.raw_metas_may_signal(raw.replace(b"o", b"0").replace(b"O", b"0"))


# --- generated records and pages --------------------------------------------------------------------------------

WORDS = list(signals.DIRECTIVES) + ["no", "nono", "index", "follow", "noodp", "1", " 1 ", "0", "max-snippet: 20",
                                    "GPTBot: noai", "train-ai=n", "search=y", "nocache", "K", "İ", "noaİ", "noai\u212a"]
NAMES = ["robots", "ROBOTS", "RoBots", "ccbot", "GPTBot", "tdm-reservation", "TDM-Reservation", " tdm-reservation ",
         "description", "viewport", "x-robots-tag", "X-ROBOTS-TAG", "Content-Usage", "content-usage", "tdm-policy"]


def _mixed_case(draw, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips))


@st.composite
def texts(draw, words=WORDS) -> str:
    chosen = draw(st.lists(st.sampled_from(words), max_size=4))
    separators = draw(st.lists(st.sampled_from([",", ", ", " ", "\t", ";"]), min_size=len(chosen),
                               max_size=len(chosen)))
    return "".join(_mixed_case(draw, word) + separator for word, separator in zip(chosen, separators)).strip(",; ")


def _json_string(text: str, escaped: list[bool]) -> str:
    """`text` as a JSON string, each character written as itself or, where `escaped` says, as a \\u escape."""
    out = []
    for c, escape in zip(text, escaped):
        if escape or c in '"\\' or ord(c) < 0x20:
            out.append("".join(f"\\u{unit:04x}" for unit in _utf16(c)))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _utf16(c: str) -> list[int]:
    data = c.encode("utf-16-be")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


@st.composite
def json_strings(draw, text_strategy) -> str:
    text = draw(text_strategy)
    escaped = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text))) if draw(st.booleans()) \
        else [False] * len(text)
    return _json_string(text, escaped)


@st.composite
def wat_records(draw) -> bytes:
    headers = draw(st.lists(st.tuples(json_strings(st.sampled_from(NAMES + ["Content-Type", "Server"])),
                                      json_strings(texts())), max_size=4))
    metas = draw(st.lists(st.tuples(json_strings(st.sampled_from(NAMES)), json_strings(texts())), max_size=4))
    headers_json = "{" + ",".join(f"{name}:{value}" for name, value in headers) + "}"
    metas_json = "[" + ",".join('{"name":%s,"content":%s}' % meta for meta in metas) + "]"
    record = ('{"Envelope":{"WARC-Header-Metadata":{"WARC-Target-URI":"https://example.com/a"},"Payload-Metadata":'
              '{"HTTP-Response-Metadata":{"Headers":%s,"HTML-Metadata":{"Head":{"Metas":%s},"Links":'
              '[{"path":"IMG@/src","url":"/a.jpg","alt":"a fox"}]}}}}}') % (headers_json, metas_json)
    return record.encode("utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wat_records())
def test_a_wat_record_gives_the_signals_of_its_decoded_json(payload):
    envelope = WatReader().read(payload)
    assert envelope is not None
    page = WatPage("https://example.com/a", payload=payload, typed=html_of(envelope),
                   attributes=WatReader().attributes, headers=headers_of(envelope))
    assert page_signals(page, page_pairs(page)) == plain_wat_signals(payload)


def test_a_directive_written_with_json_escapes_is_read():
    # Found by the property above: the gate on the raw JSON looked for the words as written, so "no\u0061i" (noai)
    # and an escaped header name went unread.
    payload = (b'{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":'
               b'{"Headers":{"X-Robots-T\\u0061g":"noimageai"},'
               b'"HTML-Metadata":{"Head":{"Metas":[{"name":"robots","content":"no\\u0061i"}]},'
               b'"Links":[{"path":"IMG@/src","url":"/a.jpg","alt":"a fox"}]}}}}}')
    envelope = WatReader().read(payload)
    page = WatPage("https://example.com/a", payload=payload, typed=html_of(envelope),
                   attributes=WatReader().attributes, headers=headers_of(envelope))
    assert page_signals(page, page_pairs(page)) == ["robots:noai", "x-robots-tag:noimageai"]


def _reference(draw, c: str) -> str:
    """`c` as itself or as a numeric character reference, decimal or hexadecimal, in any case."""
    how = draw(st.sampled_from(["plain", "plain", "decimal", "hex", "HEX", "padded"]))
    if how == "plain" or c in "<>":
        return c.replace("&", "&amp;")
    return {"decimal": f"&#{ord(c)};", "hex": f"&#x{ord(c):x};", "HEX": f"&#X{ord(c):X};",
            "padded": f"&#x000{ord(c):x};"}[how]


@st.composite
def attribute_values(draw, text_strategy) -> str:
    text = "".join(_reference(draw, c) for c in draw(text_strategy))
    text = text.replace(",", draw(st.sampled_from([",", ",", "&comma;", "&#44;"])))
    text = text.replace(" ", draw(st.sampled_from([" ", " ", "&NewLine;", "&Tab;", "&#32;"])))
    quote = draw(st.sampled_from(['"', "'", ""] if text and not any(c in text for c in " \t\"'=<>`") else ['"', "'"]))
    if quote and quote in text:
        quote = '"' if quote == "'" else "'"
    return quote + text + quote


@st.composite
def html_pages(draw) -> tuple[bytes, str]:
    parts = ["<!doctype html>", draw(st.sampled_from(["<html>", "<HTML lang=en>", ""])),
             draw(st.sampled_from(["<head>", "<HEAD>", ""]))]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["meta", "meta", "meta", "title", "link", "script", "comment", "noscript"]))
        if kind == "meta":
            attributes = [f"{_mixed_case(draw, 'name')}={draw(attribute_values(st.sampled_from(NAMES)))}",
                          f"{_mixed_case(draw, 'content')}={draw(attribute_values(texts()))}"]
            if draw(st.booleans()):
                attributes.append(f"content={draw(attribute_values(texts()))}")  # a repeated one: the first counts
            random.Random(draw(st.integers(0, 9))).shuffle(attributes)
            end = draw(st.sampled_from([">", "/>", " >"]))
            parts.append(f"<{_mixed_case(draw, 'meta')} " + " ".join(attributes) + end)
        elif kind == "title":
            parts.append("<title>a <meta name=robots content=noai> title</title>")
        elif kind == "link":
            parts.append('<link rel="nofollow" href="/x?a=1&amp;b=noai">')
        elif kind == "script":
            parts.append('<script>var m = "<meta name=robots content=noai>";</script>')
        elif kind == "comment":
            parts.append("<!-- <meta name=robots content=noai> -->")
        else:
            parts.append('<noscript><meta name="robots" content="noimageai"></noscript>')
    parts.append(draw(st.sampled_from(["</head><body>", "<body>", ""])))
    parts.append('<p>text</p><img src="/a.jpg" alt="a red fox">')
    if draw(st.booleans()):  # after the last image: the fast parse is cut there (more than 4 KiB after it)
        parts.append('<meta name="robots" content="noai"><p>' + "words " * 1500 + "</p>")
    charset = draw(st.sampled_from(["utf-8", "windows-1252"]))
    return "".join(parts).encode(charset, "xmlcharrefreplace"), charset


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_pages())
def test_an_html_page_gives_the_signals_of_a_plain_reading(html_and_charset):
    page = HtmlPage("https://example.com/a", *html_and_charset)
    images = html_image_pairs(page.html, page.page_url, page.http_charset)
    assert page_signals(page, images) == plain_html_signals(page)
