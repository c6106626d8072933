"""The shortcuts that make extraction fast give what the plain way gives, and the WARC and WAT paths agree.

Each shortcut is checked against the plain computation it replaces, on the real excerpts in tests/data/cc and on
hostile input made to break it: UTF-8 bytes handed to the parser against the decoded text, URLs resolved per site
against urljoin, the nesting depth summed at once against the step-by-step count, records read without FastWARC
against FastWARC, cached language labels against fresh ones.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import zlib
from urllib.parse import urljoin

import pytest
from fastwarc.warc import ArchiveIterator
from selectolax.lexbor import LexborHTMLParser

from metaclip_spark.extraction import webarchive
from metaclip_spark.extraction import webpage
from metaclip_spark.extraction.language import identify_language
from metaclip_spark.extraction.webarchive import ArchiveCounts, HtmlPage, web_pages
from metaclip_spark.extraction.webpage import html_image_pairs, nested_too_deep, wat_image_pairs
from wat_writer import write_wat

from conftest import DATA

CC = DATA / "cc"
REAL_WARCS = ("warcfile.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz", "clueweb-quirk.warc.gz",
              "example.warc.gz", "clipped.warc.gz")


def _pages(path, max_page_bytes=5 << 20):
    counts = ArchiveCounts()
    with open(path, "rb") as stream:
        return list(web_pages(stream, counts, max_page_bytes)), counts


def _members(path) -> list[bytes]:
    data, found = path.read_bytes(), []
    while data:
        inflater = zlib.decompressobj(31)
        found.append(inflater.decompress(data))
        data = inflater.unused_data
    return found


# --- UTF-8 pages are parsed from their bytes -----------------------------------------------------------------------

BAD_UTF8 = [b"\xff", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf",
            b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\x80\x80\xbf", b"\xef\xbf\xbe", b"\x00", b"\xfe\xff"]


@pytest.mark.parametrize("bad", BAD_UTF8)
def test_bad_utf8_in_a_page_gives_the_pairs_of_its_decoded_text(bad):
    html = (b'<meta charset="utf-8"><img src="a' + bad + b'.png" alt="caf\xc3\xa9 ' + bad + b' ok" title="'
            + bad + b'"><p>' + bad + b'</p><img src="b.png" alt="after">')
    expected = html_image_pairs(html.decode("utf-8", "replace"), "http://example.com/")
    found = html_image_pairs(html, "http://example.com/")
    assert found.pairs == expected.pairs and found.pairs[-1] == ("http://example.com/b.png", "after", "alt")
    assert (found.img_tags, found.no_text) == (expected.img_tags, expected.no_text)


def test_real_pages_with_random_bad_bytes_give_the_pairs_of_their_decoded_text():
    rng = random.Random(18)
    pages = [p for name in ("sample-0000.warc.gz", "sample-0001.warc.gz") for p in _pages(CC / name)[0]]
    for page in pages:
        html = bytearray(page.html)
        for _ in range(200):  # bytes of any value, some inside tags and attribute values
            html[rng.randrange(len(html))] = rng.randrange(256)
        html = bytes(html)
        expected = html_image_pairs(webpage.decode_html(html), page.page_url).pairs
        assert html_image_pairs(html, page.page_url).pairs == expected


def test_a_page_declaring_nothing_goes_to_the_parser_as_its_bytes_when_it_is_utf8():
    ascii_page, utf8_page = b"<img src=a.png alt=plain>", "<img src=a.png alt=caf\u00e9>".encode()
    assert webpage.parser_input(ascii_page) is ascii_page and webpage.parser_input(utf8_page) is utf8_page
    assert webpage.parser_input(b"<img src=a.png alt=caf\xe9>") == "<img src=a.png alt=caf\u00e9>"  # cp1252


def test_byte_order_mark_and_declared_charsets_still_decide_the_text():
    assert html_image_pairs(b"\xef\xbb\xbf<img src=a.png alt=\"\xc3\xa9t\xc3\xa9\">", "http://x.org/").pairs == [
        ("http://x.org/a.png", "\u00e9t\u00e9", "alt")]
    gbk = '<meta charset="gbk"><img src=a.png alt="中山英才网">'.encode("gbk")
    assert html_image_pairs(gbk, "http://x.org/").pairs == [("http://x.org/a.png", "中山英才网", "alt")]
    utf16 = "\ufeff<img src=a.png alt=\"x\">".encode("utf-16-le")
    assert html_image_pairs(utf16, "http://x.org/").pairs == [("http://x.org/a.png", "x", "alt")]


def test_a_page_without_an_img_tag_in_any_case_gives_nothing_and_image_tags_in_any_case_are_found():
    assert html_image_pairs(b"<p>no images, an <imp> tag, <i>m</i></p>", "http://x.org/").img_tags == 0
    page = html_image_pairs(b'<IMAGE SRC="a.png" ALT="upper"><iMg src=b.png title=mixed>', "http://x.org/")
    assert page.pairs == [("http://x.org/a.png", "upper", "alt"), ("http://x.org/b.png", "mixed", "title")]


# --- the parse stops after the last image tag ------------------------------------------------------------------------

def _plain_images(markup):
    """The plain way: the whole page parsed, its <img> elements found by CSS, its first <base href> (in <head> first)."""
    tree = LexborHTMLParser(markup)
    head = tree.head
    base = head.css_first("base[href]") if head is not None else None
    base = base if base is not None else tree.css_first("base[href]")
    return [img.attributes for img in tree.css("img")], base.attributes if base is not None else None


def _cut_images(markup):
    tree = webpage._parse_to_last_image(markup)
    head = tree.head
    base = head.css_first("base[href]") if head is not None else None
    base = base if base is not None else tree.css_first("base[href]")
    return [img.attributes for img in tree.tags("img")], base.attributes if base is not None else None


class _CutCounter:
    """Counts the parses ending in the sentinel (a cut tried) and those thrown away for the whole page."""

    def __init__(self, monkeypatch):
        self.tried = self.refused = 0
        self._last = None
        parse = webpage.LexborHTMLParser

        def counting(data, *args, **kwargs):
            if isinstance(data, bytes) and data.endswith(webpage._CUT_SENTINEL):
                self.tried += 1
                self._last = data[:-len(webpage._CUT_SENTINEL)]
            else:
                if self._last is not None and isinstance(data, bytes) and data.startswith(self._last):
                    self.refused += 1
                self._last = None
            return parse(data, *args, **kwargs)

        monkeypatch.setattr(webpage, "LexborHTMLParser", counting)


def _real_markups():
    for name in REAL_WARCS:
        for page in _pages(CC / name)[0]:
            if isinstance(page, HtmlPage):
                yield page.page_url, webpage.parser_input(page.html, page.http_charset)


def test_a_parse_cut_after_the_last_image_tag_finds_the_images_of_the_whole_page(monkeypatch):
    counter = _CutCounter(monkeypatch)
    for _, markup in _real_markups():
        assert _cut_images(markup) == _plain_images(markup)
    assert counter.tried >= 20 and counter.refused == 0  # real pages: cut where their tail is long, never refused


# Markup put near a real page's last image tag: what could open a context at the cut or act on the elements before it.
SNIPPETS = [b"</a>", b"<a href=x>", b"<b>", b"</b>", b"<table>", b"</table>", b"<tr><td>", b"</td>", b"<div>", b"</div>",
            b"<p>", b"</p>", b"<select><option>", b"</select>", b"<option selected>", b"<selectedcontent>",
            b"<button>", b"<frameset>", b"<!--", b"-->", b"<script>", b"</script>", b"<title>", b"</title>",
            b"<textarea>", b'"', b"'", b"<svg>", b"</svg>", b"<math>", b"<template>", b"</template>",
            b"<font color=red>", b"<nobr>", b"</nobr>", b"<plaintext>", b"<xmp>", b"<noscript>", b"<iframe>",
            b"<style>", b"<![CDATA[", b"]]>", b"<form>", b"</form>", b"<li>", b"<ul>", b"</ul>",
            b"<IMG src=late.png alt=late>", b"<Image src=l2.png alt=l2>", b"<base href=/b/>", b"<bAsE href=x/>",
            b"<img src=q alt='a>b'>", b"</body>", b"</html>", b"<body>", b"<head>", b"<span>", b"<i>",
            b"<x\xf4\x8f\xbf\xbf>", b"\x00", b"\r", b"<", b">", b"&", b"<!DOCTYPE html>", b"<caption>",
            b"<colgroup>", b"<input type=hidden>", b"<a><div>", b"</a></div>", b"<em><p>", b"</em>"]


def test_hostile_markup_near_the_last_image_tag_gives_the_images_of_the_whole_page(monkeypatch):
    counter = _CutCounter(monkeypatch)
    rng = random.Random(18)
    pages = [markup if isinstance(markup, bytes) else markup.encode() for _, markup in _real_markups()]
    pages = [page for page in pages if len(page) > 3 * webpage._CUT_MIN_SAVED]
    for _ in range(600):
        html = bytearray(rng.choice(pages))
        for _ in range(rng.randrange(1, 10)):
            lower = bytes(html).lower()
            last = max(lower.rfind(b"<im"), lower.rfind(b"<base"))
            at = min(len(html), max(0, last + rng.randrange(-1500, 5000)))
            html[at:at] = rng.choice(SNIPPETS)
        assert _cut_images(bytes(html)) == _plain_images(bytes(html))
    assert counter.tried > 100 and counter.refused > 10


TAG_SOUP = ["a", "b", "i", "font", "nobr", "em", "div", "p", "span", "table", "tr", "td", "th", "tbody", "caption", "li",
            "ul", "select", "option", "optgroup", "button", "selectedcontent", "form", "template", "svg", "math",
            "frameset", "body", "html", "head", "title", "script", "textarea", "noscript", "object", "applet",
            "marquee", "h1", "dd", "colgroup", "col", "input type=hidden", "hr", "br", "picture", "u", "s", "code",
            "center", "pre", "iframe", "xmp", "base href=/q/"]


def test_tag_soup_cut_after_its_last_image_gives_the_images_of_the_whole_page(monkeypatch):
    """Misnested formatting, tables, selects, frames and raw text around the cut, on small pages (any tail is cut)."""
    monkeypatch.setattr(webpage, "_CUT_MIN_SAVED", 1)
    counter = _CutCounter(monkeypatch)
    rng = random.Random(7)

    def token(k):
        r = rng.random()
        if k is not None and r < 0.15:
            return f"<img src=i{k}.png alt=a{k}>"
        if r < 0.55:
            return "<" + rng.choice(TAG_SOUP) + ">"
        if r < 0.9:
            return "</" + rng.choice(TAG_SOUP).split()[0] + ">"
        return rng.choice(["text", " ", "<!-- c -->", "x"])

    for trial in range(4000):
        before = "".join(token(k) for k in range(rng.randrange(1, 25))) + f"<img src=last.png alt=last{trial}>"
        html = (before + "".join(token(None) for _ in range(rng.randrange(1, 25)))).encode()
        assert _cut_images(html) == _plain_images(html), html
    assert counter.tried > 3500 and 500 < counter.refused < counter.tried - 500  # both ways, many times


def test_what_could_change_the_images_before_the_cut_refuses_it(monkeypatch):
    monkeypatch.setattr(webpage, "_CUT_MIN_SAVED", 1)
    counter = _CutCounter(monkeypatch)
    pad = b"<p>" + b"text " * 100 + b"</p>"
    # a later <option selected> replaces the copy of the first option in <selectedcontent>
    select = (b"<select><button><selectedcontent></selectedcontent></button><option><img src=a.png alt=a></option>"
              + pad + b"<option selected>b</option></select>")
    assert len(_plain_images(select)[0]) == 1 and _cut_images(select) == _plain_images(select)
    cut_blindly = LexborHTMLParser(select[:select.index(b"</option>")] + webpage._CUT_SENTINEL)
    assert len(cut_blindly.css("img")) == 2  # what the cut would find without the refusal
    # the last "<img" sits in an attribute value: the cut there falls inside the tag, which the whole page keeps
    quoted = b'<img alt="<img src=x alt=y>" src=real.png>' + pad
    assert _cut_images(quoted) == _plain_images(quoted) and len(_plain_images(quoted)[0]) == 1
    # a misnested formatting element open over a block at the cut: a later </b> moves the block
    misnested = b"<b><div><img src=a.png alt=a>" + pad + b"</b>"
    assert _cut_images(misnested) == _plain_images(misnested)
    assert counter.tried == 3 and counter.refused == 3
    # the page names a tag with the sentinel's character before the cut: not cut; after it: cut
    sentinel = b"<x\xf4\x8f\xbf\xbf><img src=a.png alt=a>" + pad
    assert _cut_images(sentinel) == _plain_images(sentinel) and counter.tried == 3
    sentinel = b"<img src=a.png alt=a>" + pad + b"<x\xf4\x8f\xbf\xbf>" + pad  # (not the page's end: a cut is told by its end)
    assert _cut_images(sentinel) == _plain_images(sentinel) and (counter.tried, counter.refused) == (4, 3)
    # "<Img" after the last "<img", "<BASE" after the last "<base": the last image tag is found in any case
    mixed = b"<base href=http://a.example/><img src=a alt=a>" + pad + b"<Img src=b alt=b><BASE href=/c/>" + pad
    assert _cut_images(mixed) == _plain_images(mixed) and len(_plain_images(mixed)[0]) == 2


def _plain_html_image_pairs(html: bytes, page_url: str, http_charset=None):
    """The plain way of html_image_pairs, every shortcut left out: the page decoded, parsed whole, found by CSS."""
    text = webpage.decode_html(html, http_charset)
    page = webpage.PageImages(too_deep=nested_too_deep(text))
    if re.search("<im", text, re.IGNORECASE) is None:
        return page
    tree = LexborHTMLParser(webpage._images_only(text) if page.too_deep else text)
    head = tree.head
    base = head.css_first("base[href]") if head is not None else None
    if base is None:
        base = tree.css_first("base[href]")
    base = webpage.page_base(page_url, base.attrs.get("href") if base is not None else None)
    images = tree.css("img")
    for img in images:
        attributes = img.attributes
        src = attributes.get("src")
        if src is None or not src.strip():
            page.no_src += 1
            continue
        texts = [(value.strip(), name) for name in webpage.DEFAULT_TEXT_ATTRIBUTES
                 if (value := attributes.get(name)) and value.strip()]
        if not texts:
            page.no_text += 1
            continue
        url = webpage.resolve_image_url(base, src)
        if not webpage.http_url(url):
            page.non_http_url += 1
            continue
        page.pairs += [(url, found, name) for found, name in texts]
    page.img_tags = len(images)
    return page


def _outcome(function, html, page_url, http_charset):
    try:
        page = function(html, page_url, http_charset)
    except ValueError as e:  # an unusable <base href> or src: the page is skipped and counted by extraction
        return type(e)
    return page.pairs, page.img_tags, page.no_src, page.no_text, page.non_http_url, page.too_deep


def test_pages_and_hostile_copies_give_the_pairs_and_counts_of_the_plain_way():
    webpage.clear_caches()
    pages = [(p.page_url, p.html, p.http_charset) for name in REAL_WARCS for p in _pages(CC / name)[0]
             if isinstance(p, HtmlPage)]
    for page in pages:
        assert _outcome(html_image_pairs, *page[1::-1], page[2]) == _outcome(_plain_html_image_pairs, *page[1::-1],
                                                                            page[2])
    rng = random.Random(2018)
    for _ in range(500):
        page_url, html, charset = rng.choice(pages)
        html = bytearray(html)
        for _ in range(rng.randrange(1, 10)):
            lower = bytes(html).lower()
            last = max(lower.rfind(b"<im"), lower.rfind(b"<base"))
            at = rng.randrange(len(html) + 1) if rng.random() < 0.3 else min(len(html), max(0, last + rng.randrange(
                -1500, 5000)))
            html[at:at] = rng.choice(SNIPPETS)
        html = bytes(html)
        assert _outcome(html_image_pairs, html, page_url, charset) == _outcome(_plain_html_image_pairs, html,
                                                                              page_url, charset)


# --- URLs resolved once per site --------------------------------------------------------------------------------------

BASES = ["http://example.com/a/b/page.html?q=1#f", "https://example.com/", "https://other.example/x/", "http://h",
         "HTTP://Example.COM/p", "file:///tmp/x.html", "foo", "", "//cdn.example/a/", "http://[::1]/x", "mailto:x@y"]
SOURCES = ["/img/logo.png", "/img/../logo.png", "/./a//b/./c.png?x#y", "/;p", "/", "/a?", "/a#", "/é.png",
           "http://cdn.example/x.png", "https://cdn.example/x.png?", "http://cdn.example/a/../b.png",
           "https://[::1]:8080/i.png", "http://a:b@host/i.png", "relative.png", "../up.png", "?q=2", "#frag",
           "//cdn.example/p.png", "http:no-host.png", "HTTP://UPPER.example/I.PNG", "javascript:void(0)",
           "data:image/png;base64,AA", "  /spaced.png ", "/tab\tbed.png", "http://[bad/i.png", "/\u3000.png"]


def _resolve(base, src):
    try:
        return webpage._Resolver(base)(src)
    except ValueError as e:
        return type(e)


def _urljoin(base, src):
    try:
        return webpage.resolve_image_url(base, src)
    except ValueError as e:
        return type(e)


def test_image_urls_resolved_per_site_are_urljoin_s():
    webpage.clear_caches()
    for _ in range(2):  # the second time from the cache, in another order
        for base in BASES:
            for src in SOURCES:
                assert _resolve(base, src) == _urljoin(base, src), (base, src)
        BASES.reverse()


def test_a_site_s_images_resolve_on_each_of_its_pages():
    webpage.clear_caches()
    pages = ["https://shop.example/a/1.html", "https://shop.example/b/c/2.html", "http://shop.example/",
             "https://other.example/a/1.html"]
    for page in pages:
        for src in ("/logo.png", "logo.png", "https://cdn.example/x.png"):
            assert webpage._Resolver(page)(src) == urljoin(page, src)


# --- the nesting depth ------------------------------------------------------------------------------------------------

def _nested_step_by_step(html: str) -> bool:
    if len(html) < 5 * webpage._NESTING_LIMIT or html.count("<") < webpage._NESTING_LIMIT:
        return False
    depth = 0
    for closing in webpage._OPENING_TAG.findall(html):
        depth = max(0, depth - 1) if closing else depth + 1
        if depth >= webpage._NESTING_LIMIT:
            return True
    return False


def test_nesting_depth_summed_at_once_is_the_step_by_step_depth():
    rng = random.Random(7)
    for trial in range(120):
        share = rng.choice([0.45, 0.5, 0.52, 0.55, 0.6, 0.8])
        tags = ["<div>" if rng.random() < share else rng.choice(["</div>", "</p>", "<br>", "<img src=x>"])
                for _ in range(rng.choice([4000, 6000, 12000]))]
        html = "</b>" * rng.randrange(3000) + "".join(tags) + " " * 20_000
        assert nested_too_deep(html) == _nested_step_by_step(html), trial
    limit = webpage._NESTING_LIMIT
    assert [nested_too_deep("<div>" * n + " " * 30_000) for n in (limit - 1, limit)] == [False, True]


# --- records read without FastWARC ------------------------------------------------------------------------------------

NAMES = ("Content-Type", "WARC-Target-URI", "content-length", "WARC-Record-ID", "WARC-Type")


def test_records_read_without_fastwarc_are_what_fastwarc_reads(tmp_path):
    wat = tmp_path / "warcfile.warc.wat.gz"
    write_wat(CC / "warcfile.warc.gz", wat)
    members = [m for path in (wat, CC / "CC-MAIN-sample2.warc.wat.gz", *(CC / n for n in REAL_WARCS))
               for m in _members(path)]
    plain = 0
    for member in members:
        found = webarchive._plain_record(member)
        if found is None:
            continue
        plain += 1
        record_type, headers, block = found
        read = [(str(r.record_type), [r.headers.get(name) for name in NAMES], r.reader.read())
                for r in ArchiveIterator(io.BytesIO(member), parse_http=False, strict_mode=False, quirks_mode=True)]
        assert read == [(record_type, [headers.get(name) for name in NAMES], block)]
    assert plain > 100  # every WAT record and the WARC files' requests, warcinfo and metadata records


@pytest.mark.parametrize("change", [
    lambda r: r.replace(b"WARC/1.0\r\n", b"WARC/0.18\r\n", 1),        # another version
    lambda r: r.replace(b"\r\n", b"\n"),                                 # LF-only lines
    lambda r: r.replace(b"Content-Length: ", b"Content-Length: 9", 1),  # a false length
    lambda r: r[:-10],                                                   # cut short
    lambda r: r.replace(b"\r\nWARC-Date", b"\r\n WARC-Date", 1),        # a folded line
    lambda r: r + b"WARC/1.0\r\n\r\n",                                   # more than one record
])
def test_anything_but_one_well_formed_record_is_left_to_fastwarc(change):
    member = next(m for m in _members(CC / "warcfile.warc.gz") if b"WARC-Type: request" in m[:200])
    assert webarchive._plain_record(member) is not None
    assert webarchive._plain_record(change(member)) is None


def test_a_wat_record_read_without_fastwarc_gives_the_same_page_and_counts(tmp_path):
    """Every member of a WAT file, gzipped alone, read by the whole reader either way."""
    wat = tmp_path / "sample-0000.warc.wat.gz"
    write_wat(CC / "sample-0000.warc.gz", wat)
    plain_pages, plain_counts = _pages(wat)
    original = webarchive._plain_record
    try:
        webarchive._plain_record = lambda member: None
        pages, counts = _pages(wat)
    finally:
        webarchive._plain_record = original
    assert plain_counts == counts and counts.wat_pages == 22
    assert [(p.page_url, p.html_metadata) for p in plain_pages] == [(p.page_url, p.html_metadata) for p in pages]


def test_json_orjson_refuses_is_read_as_before():
    body = json.dumps({"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {
        "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "big number"}]}}},
        "WARC-Header-Metadata": {"WARC-Target-URI": "http://x.org/"}}, "n": 1 << 70}).replace("}}", ', "r": NaN}}', 1)
    record = (f"WARC/1.0\r\nWARC-Type: metadata\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body.encode())}\r\n\r\n{body}\r\n\r\n").encode()
    pages, counts = _pages_of_bytes(gzip.compress(record))
    assert counts.decode_errors == 0 and len(pages) == 1
    assert wat_image_pairs(pages[0].html_metadata, pages[0].page_url).pairs == [("http://x.org/a.png", "big number",
                                                                                  "alt")]


def _pages_of_bytes(data: bytes):
    counts = ArchiveCounts()
    return list(web_pages(io.BytesIO(data), counts, 5 << 20)), counts


def test_odd_wat_links_are_filtered_as_before():
    links = [{"path": "IMG@/src", "url": "a.png", "alt": "a"}, ["IMG@/src"], "IMG@/src", {"path": None},
             {"path": 7, "url": "b.png", "alt": "b"}, {"path": ["IMG@/src"]}, {"url": "c.png", "alt": "c"},
             {"path": "IMG@/srcset", "url": "d.png", "title": "d"}]
    found = wat_image_pairs({"Links": links}, "http://x.org/")
    assert found.pairs == [("http://x.org/a.png", "a", "alt"), ("http://x.org/d.png", "d", "title")]
    assert found.img_tags == 2


# --- language labels cached --------------------------------------------------------------------------------------------

def test_cached_language_labels_are_the_model_s():
    texts = ["A black and white photo of two people", "Der schnelle braune Fuchs", "当店一番人気", "logo", "", " "]
    identify_language.cache_clear()
    fresh = [identify_language.__wrapped__(t) for t in texts]
    assert [identify_language(t) for t in texts] == fresh
    assert [identify_language(t) for t in texts] == fresh and identify_language.cache_info().hits == len(texts)


# --- WARC and WAT paths agree -------------------------------------------------------------------------------------------

def _warc_and_wat_pairs(name, tmp_path):
    wat = tmp_path / name.replace(".warc.gz", ".warc.wat.gz")
    write_wat(CC / name, wat)
    warc_pages, warc_counts = _pages(CC / name)
    wat_pages, wat_counts = _pages(wat)
    # A WAT keeps an image's alt and title, not data-image-title (ia-web-commons' ImgTagExtractor).
    warc = [(p.page_url, html_image_pairs(p.html, p.page_url, p.http_charset, ("alt", "title")).pairs)
            for p in warc_pages if isinstance(p, HtmlPage)]
    wat = [(p.page_url, wat_image_pairs(p.html_metadata, p.page_url, ("alt", "title")).pairs) for p in wat_pages]
    return warc, wat, warc_counts, wat_counts


@pytest.mark.parametrize("name, pairs", [("warcfile.warc.gz", 41), ("sample-0000.warc.gz", 177),
                                         ("sample-0001.warc.gz", 118)])
def test_warc_and_wat_paths_give_the_same_pairs_on_real_pages(name, pairs, tmp_path):
    warc, wat, warc_counts, wat_counts = _warc_and_wat_pairs(name, tmp_path)
    assert warc_counts.html_pages == wat_counts.wat_pages == len(wat)
    assert wat == warc and sum(len(found) for _, found in wat) == pairs


def test_warc_and_wat_paths_differ_only_in_line_breaks_the_html_parser_normalises(tmp_path):
    """HTML parsing turns CR LF into LF (the input stream's preprocessing); a WAT keeps the page's own line breaks,
    which matching then reads as spaces like any other (curation spec, section 1)."""
    warc, wat, _, _ = _warc_and_wat_pairs("clueweb-quirk.warc.gz", tmp_path)
    crlf = [(page, [(u, t.replace("\r\n", "\n"), a) for u, t, a in found]) for page, found in wat]
    assert crlf == warc and wat != warc and sum(len(found) for _, found in wat) == 556
