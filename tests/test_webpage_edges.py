"""The edges of the page rules, without Spark: which charset decodes a page, where a URL resolves and what the
resolver remembers, which pages count as nested too deep, where <base> is found, where the parse is cut, which
metas a page shows, and odd WAT input. Real pages of tests/data where one fits, small hand-written ones at the exact
boundaries (each test was seen failing on mutants of extraction/webpage.py: mutation/README.md)."""

from __future__ import annotations

import random
from urllib.parse import urljoin

import pytest
from selectolax.lexbor import LexborHTMLParser

from metaclip_spark.extraction import webpage
from metaclip_spark.extraction.webarchive import ArchiveCounts, HtmlPage, web_pages
from metaclip_spark.extraction.webpage import (decode_html, html_image_pairs, nested_too_deep, page_metas,
                                               parser_input, resolve_image_url, sniff_charset, wat_image_pairs)
from optout_archives import PAGES, response_record

from conftest import DATA

CC = DATA / "cc"


def _real_page(name: str, url_part: str) -> HtmlPage:
    with open(CC / name, "rb") as stream:
        return next(p for p in web_pages(stream, ArchiveCounts(), 5 << 20) if url_part in p.page_url)


# --- charsets ---------------------------------------------------------------------------------------------------------

def test_a_charset_in_the_http_header_alone_decodes_a_real_page():
    """01spb.ru is windows-1251, said by its header and its <meta>: with the meta's charset gone, the header decides."""
    page = _real_page("warcfile.warc.gz", "01spb.ru")
    assert page.http_charset == "windows-1251"
    declared = b'content="text/html; charset=windows-1251"'
    assert page.html.count(declared) == 1
    html = page.html.replace(declared, b'content="text/html"')
    expected = html_image_pairs(page.html, page.page_url, page.http_charset).pairs
    assert ("http://01spb.ru/logo.png", "Стратегия пожарной безопасности", "alt") in expected
    assert html_image_pairs(html, page.page_url, "windows-1251").pairs == expected
    assert sniff_charset(html, "windows-1251") == "cp1251" and sniff_charset(html) == "cp1252"
    assert "Стратегия пожарной безопасности" in decode_html(html, "windows-1251")
    assert parser_input(html, "windows-1251") == html.decode("cp1251")


def test_the_http_header_charset_wins_over_a_wrong_meta():
    html = '<meta charset="iso-8859-1"><img src="a.png" alt="café">'.encode("utf-8")
    assert sniff_charset(html) == "cp1252" and sniff_charset(html, "utf-8") == "utf-8"
    assert decode_html(html, "utf-8") == html.decode("utf-8")
    assert parser_input(html, "utf-8") is html  # a UTF-8 page goes to the parser as its own bytes
    assert html_image_pairs(html, "http://x.org/", "utf-8").pairs == [("http://x.org/a.png", "café", "alt")]
    assert html_image_pairs(html, "http://x.org/").pairs == [("http://x.org/a.png", "cafÃ©", "alt")]


def test_a_quoted_charset_in_a_warc_header_decodes_the_page(tmp_path):
    """FastWARC hands the Content-Type's charset on with its quotes (lowered): '"shift_jis"'."""
    body = '<html><body><img src="/a.jpg" alt="当店一番人気"></body></html>'.encode("shift_jis")
    path = tmp_path / "quoted.warc.gz"
    path.write_bytes(response_record("http://shop.example/", [("Content-Type", 'text/html; charset="Shift_JIS"')],
                                     body))
    with open(path, "rb") as stream:
        (page,) = web_pages(stream, ArchiveCounts(), 5 << 20)
    assert page.http_charset == '"shift_jis"'
    assert html_image_pairs(page.html, page.page_url, page.http_charset).pairs == [
        ("http://shop.example/a.jpg", "当店一番人気", "alt")]
    assert sniff_charset(body, "'shift_jis'") == "cp932"


@pytest.mark.parametrize("label, codec", [("X-SJIS", "cp932"), ("X-GBK", "gb18030"), (" 'ISO-8859-1' ", "cp1252"),
                                          ("x-user-defined", "cp1252"), ("no-such-label", None), ("", None)])
def test_charset_labels_are_read_in_any_case_quoted_or_not(label, codec):
    assert webpage.normalize_charset(label) == codec
    assert webpage.declared_charset(b"<p>x</p>", label) == codec  # as a Content-Type header's charset
    if "'" not in label:
        assert webpage.declared_charset(f'<meta charset="{label}">'.encode()) == codec


def test_a_meta_charset_is_read_in_the_first_4_kib_only():
    """The HTML standard's prescan reads 1 KiB; real pages put long scripts first, so 4 KiB are read, no more."""
    meta, text = '<meta charset="gbk">', '<img src="a.png" alt="中山英才网">'
    # the label's last byte at 4095 (the 4096th), then the meta just past the first 4 KiB, then far past it
    for padding, codec in ((3000, "gb18030"), (4096 - len('<meta charset="gbk'), "gb18030"), (4096, None),
                           (5000, None)):
        html = f"<script>{'x' * (padding - 17)}</script>{meta}{text}".encode("gbk")
        assert html.index(b"<meta") == padding
        assert webpage.declared_charset(html) == codec
    late = f"<script>{'x' * 4983}</script>{meta}{text}".encode("gbk")
    assert sniff_charset(late) == "cp1252"  # then: not valid UTF-8, read as the web's default


@pytest.mark.parametrize("end", [b"\xe6", b"\xe6\x97", b"\xf0", b"\xf0\x9f", b"\xf0\x9f\x98"])
def test_an_undeclared_utf8_page_cut_inside_its_last_character_is_still_utf8(end):
    """A size cap or a truncated record cuts a page anywhere: a page valid up to a cut character is UTF-8."""
    html = '<img src="a.png" alt="日本の猫 😀">'.encode() + end
    assert sniff_charset(html) == "utf-8"
    assert html_image_pairs(html, "http://x.org/").pairs == [("http://x.org/a.png", "日本の猫 😀", "alt")]
    assert decode_html(html) == html.decode("utf-8", "replace")


@pytest.mark.parametrize("end", [b"\xff", b"\xe6\x97x", b"\xe6x", b"\x80\x80\x80"])
def test_an_undeclared_page_with_a_bad_byte_near_its_end_is_cp1252(end):
    html = b'<img src="a.png" alt="cafe">' + end
    assert sniff_charset(html) == "cp1252"
    assert html_image_pairs(html, "http://x.org/").pairs == [("http://x.org/a.png", "cafe", "alt")]


def test_decode_html_reads_bom_header_meta_and_the_utf8_check_in_that_order():
    text = '<img src="a.png" alt="Ærøskøbing">'
    assert decode_html(b"\xef\xbb\xbf" + text.encode(), "iso-8859-1") == text  # the BOM first, and dropped
    assert decode_html(text.encode("cp1252"), "iso-8859-1") == text
    assert decode_html(f'<meta charset="latin1">{text}'.encode("cp1252")) == f'<meta charset="latin1">{text}'
    assert decode_html(text.encode()) == text
    assert decode_html(text.encode("cp1252")) == text


def test_bad_bytes_in_a_page_of_a_declared_charset_become_replacement_characters():
    html = '<meta charset="gbk"><img src="a.png" alt="中山'.encode("gbk") + b"\x81<" + '英才网">'.encode("gbk")
    assert decode_html(html) == '<meta charset="gbk"><img src="a.png" alt="中山\ufffd<英才网">'
    assert html_image_pairs(html, "http://x.org/").pairs == [("http://x.org/a.png", "中山\ufffd<英才网", "alt")]


def test_the_parser_gets_a_utf8_page_s_own_bytes_without_its_byte_order_mark():
    html = b'\xef\xbb\xbf<img src="a.png" alt="\xc3\xa9t\xc3\xa9">'
    assert parser_input(html) == html[3:] and isinstance(parser_input(html), bytes)
    # a charset named utf-8-sig by a header, on a page without the mark: nothing of the page is dropped
    plain = b'<img src="a.png" alt="first">'
    assert parser_input(plain, "utf-8-sig") == plain.decode()
    assert html_image_pairs(plain, "http://x.org/", "utf-8-sig").pairs == [("http://x.org/a.png", "first", "alt")]


# --- image URLs ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("noise", ["&#9;", "&#10;", "&#13;", "\n"])
def test_tabs_and_newlines_inside_an_image_url_are_dropped(noise):
    """The HTML standard drops them; urljoin does too, but hands back unparsed an absolute URL of another scheme than
    the page's, as written."""
    page = html_image_pairs(f'<img src="https://cdn.example/a{noise}b.png" alt="x"><img src="/c{noise}d.png" alt="y">',
                            "http://shop.example/p/")
    assert page.pairs == [("https://cdn.example/ab.png", "x", "alt"), ("http://shop.example/cd.png", "y", "alt")]
    char = {"&#9;": "\t", "&#10;": "\n", "&#13;": "\r", "\n": "\n"}[noise]
    assert resolve_image_url("http://shop.example/p/", f" https://cdn.example/a{char}b.png ") == (
        "https://cdn.example/ab.png")
    assert webpage._Resolver("http://shop.example/p/")(f"https://cdn.example/a{char}b.png") == (
        "https://cdn.example/ab.png")


BASES = ["http://example.com/a/b/page.html?q=1", "https://example.com/", "https://example.com/c/d/", "http://h",
         "https://other.example/x/", "HTTP://Example.COM/p", "file:///tmp/x.html", "foo", "", "//cdn.example/a/"]
SOURCES = ["/img/logo.png", "/img/../logo.png", "logo.png", "../up.png", "hello.png", "h", "/", "//cdn.example/p.png",
           "http://cdn.example/x.png", "http://cdn.example/a/../b.png", "https://cdn.example/x.png?",
           "http://cdn.example/y.png#",
           "HTTP://UPPER.example/I.PNG", "http:no-host.png", " /spaced.png ", "/tab\tbed.png", "?q=2", "#frag",
           "data:image/png;base64,AA"]


def test_one_resolver_per_page_resolves_each_src_as_urljoin_would_on_any_order_of_pages():
    """What a worker does: a resolver per page, each page's images in turn, the sites' images remembered between
    pages (and between the http and https pages of one site)."""
    rng = random.Random(33)
    webpage.clear_caches()
    for _ in range(4):
        for base in rng.sample(BASES, len(BASES)):
            resolver = webpage._Resolver(base)
            for src in rng.sample(SOURCES, len(SOURCES)) * 2:
                url = resolve_image_url(base, src)
                assert resolver.resolve(src) == (url, url[:7].lower() == "http://" or url[:8].lower() == "https://"), (
                    base, src)


def test_a_site_s_images_are_resolved_once_per_process_other_relative_ones_once_per_page(monkeypatch):
    """The resolver's promise (the cost of a pair): urljoin runs once per absolute http(s) src per scheme of the
    page, once per root-relative src per site, once per other src per page."""
    calls = []
    monkeypatch.setattr(webpage, "urljoin", lambda base, src: calls.append((base, src)) or urljoin(base, src))
    webpage.clear_caches()
    images = ('<img src="/logo.png" alt="logo"><img src="https://cdn.example/x.png" alt="cdn">'
              '<img src="thumb.png" alt="thumb"><img src="thumb.png" title="again"><img src="/logo.png" title="t">')
    for page_url in ("https://shop.example/a/1.html", "https://shop.example/b/2.html", "https://shop.example/a/1.html"):
        page = html_image_pairs(images, page_url)
        assert [url for url, _, _ in page.pairs] == [urljoin(page_url, src) for src in (
            "/logo.png", "https://cdn.example/x.png", "thumb.png", "thumb.png", "/logo.png")]
    assert sorted(src for _, src in calls) == ["/logo.png", "https://cdn.example/x.png", "thumb.png", "thumb.png",
                                               "thumb.png"]
    calls.clear()
    html_image_pairs(images, "https://other.example/")  # another site: its own root-relative image
    html_image_pairs(images, "http://shop.example/")  # another scheme: its own absolute and root-relative ones
    assert sorted(src for _, src in calls) == ["/logo.png", "/logo.png", "https://cdn.example/x.png", "thumb.png",
                                               "thumb.png"]


def test_the_urls_remembered_are_bounded_and_forgotten_all_at_once(monkeypatch):
    monkeypatch.setattr(webpage, "_SITE_CACHE_ENTRIES", 4)
    webpage.clear_caches()
    resolver = webpage._Resolver("https://shop.example/")

    def remembered():
        return sum(map(len, webpage._site_caches.values()))

    for i in range(4):
        assert resolver(f"/img/{i}.png") == f"https://shop.example/img/{i}.png"
    assert remembered() == 4  # up to the bound
    assert resolver("/img/4.png") == "https://shop.example/img/4.png" and remembered() == 1  # past it: forgotten
    for i in range(12):  # and resolved again as they were, never more than the bound remembered
        assert resolver(f"/img/{i % 6}.png") == f"https://shop.example/img/{i % 6}.png" and remembered() <= 4
    webpage.clear_caches()
    assert remembered() == 0 and webpage._cached_entries == 0


# --- what each image counts -----------------------------------------------------------------------------------------------

def test_each_image_lost_is_counted_once_by_its_reason():
    html = ('<img alt="no src"><img src="" alt="empty"><img src="  " alt="blank"><img src="a.png">'
            '<img src="b.png" alt=" " title=""><img src="mailto:x@y" alt="mail"><img src="javascript:0" title="js">'
            '<img src="c.png" alt="kept">')
    page = html_image_pairs(html, "http://x.org/")
    assert (page.img_tags, page.no_src, page.no_text, page.non_http_url) == (8, 3, 2, 2)
    assert page.pairs == [("http://x.org/c.png", "kept", "alt")]


def test_wat_text_values_that_are_not_strings_give_no_pair():
    """A WAT record is JSON written by another program: an alt may be a number, a list or an object."""
    links = [{"path": "IMG@/src", "url": "a.png", "alt": 5}, {"path": "IMG@/src", "url": "b.png", "alt": ["x"]},
             {"path": "IMG@/src", "url": "c.png", "alt": True, "title": "c"}, {"path": "IMG@/src", "url": "d.png",
                                                                                "alt": {"x": 1}}]
    found = wat_image_pairs({"Links": links}, "http://x.org/")
    assert found.pairs == [("http://x.org/c.png", "c", "title")]
    assert (found.img_tags, found.no_text) == (4, 3)


@pytest.mark.parametrize("head", [["Base"], "http://cdn.example/", 7, [{"Base": "http://cdn.example/"}]])
def test_a_wat_head_that_is_not_an_object_leaves_the_page_url_as_the_base(head):
    links = [{"path": "IMG@/src", "url": "a.png", "alt": "a"}]
    assert wat_image_pairs({"Head": head, "Links": links}, "http://x.org/d/").pairs == [
        ("http://x.org/d/a.png", "a", "alt")]


# --- nesting ------------------------------------------------------------------------------------------------------------

LIMIT = webpage._NESTING_LIMIT


@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "bytes"])
def test_nesting_exactly_at_the_limit_is_too_deep_one_less_is_not(as_bytes):
    """The shortest page that can be too deep: the limit's number of start tags, 5 characters each (the scan's
    thresholds: 5 characters a tag, the limit's number of "<"), checked on the text and on the UTF-8 bytes."""
    def too_deep(html):
        return webpage._nested_too_deep(html.encode() if as_bytes else html)

    assert len("<div>" * LIMIT) == 5 * LIMIT
    assert too_deep("<div>" * LIMIT)
    assert not too_deep("<div>" * (LIMIT - 1) + "<br>")  # as many "<" and more characters: one level short
    assert not too_deep("<div>" * (LIMIT - 1) + "     ")
    # closed and opened again: the depth after each tag, not the number of start tags
    assert too_deep("<div>" * (LIMIT - 10) + "</div>" * 10 + "<div>" * 20)
    assert not too_deep("<div>" * (LIMIT - 10) + "</div>" * 11 + "<div>" * 10)


def test_short_pages_and_pages_of_few_start_tags_are_never_too_deep():
    assert not nested_too_deep("<b>" * 6000)  # 18,000 characters: under 5 per tag of the limit
    assert not nested_too_deep("<div></div>" * 5000)  # 10,000 tags, one level deep
    # thousands of "<" that open nothing: void elements, text, comments
    assert not nested_too_deep('<img src="a.png" alt="a"><br>' * 5000)
    assert not nested_too_deep("1 < 2 and 3 <= 4; " * 5000)
    assert not nested_too_deep("<!-- -->" * 5000)


def test_a_page_nested_too_deep_as_utf8_bytes_gives_its_pairs_and_metas():
    """A UTF-8 page goes to the parser as bytes: the depth is found on its text, bad bytes read as U+FFFD."""
    html = (b'<html><head><meta charset="utf-8"><meta name="robots" content="noai"></head><body>' + b"<div>" * 5000
            + b'<img src="/d\xc3\xa9ep.png" alt="caf\xc3\xa9 \xff ok">' + b"</div>" * 5000 + b"</body></html>")
    page = html_image_pairs(html, "http://x.org/")
    assert page.too_deep
    assert page.pairs == [("http://x.org/d\u00e9ep.png", "caf\u00e9 \ufffd ok", "alt")]
    assert page_metas(page) == [("robots", "noai")]


# --- which pages are parsed, and where <base> is found ----------------------------------------------------------------------

def test_a_page_without_an_image_tag_in_any_case_is_not_parsed_one_with_is_parsed_once(monkeypatch):
    parsed = []
    parser = webpage.LexborHTMLParser
    monkeypatch.setattr(webpage, "LexborHTMLParser", lambda data: parsed.append(data) or parser(data))
    for html in (b"<p>no images, an <i>m</i> tag</p>", "<p>text <b>only</b></p>", b"<base href=x><p>x</p>",
                 "<p>an &lt;img&gt; written as text</p>"):
        page = html_image_pairs(html, "http://x.org/")
        assert (page.img_tags, page.pairs, page.markup) == (0, [], None)
    assert parsed == []
    for html in (b"<img src=a.png alt=a>", "<img src=a.png alt=a>", b"<IMG SRC=a.png ALT=a>", "<IMG SRC=a.png ALT=a>",
                 b"<Img src=a.png alt=a>", "<iMG src=a.png alt=a>", b"<image src=a.png alt=a>", "<IMAGE src=a.png alt=a>"):
        assert html_image_pairs(html, "http://x.org/").pairs == [("http://x.org/a.png", "a", "alt")]
    assert len(parsed) == 8


@pytest.mark.parametrize("as_bytes", [False, True], ids=["text", "bytes"])
@pytest.mark.parametrize("tag", ["base", "BASE", "Base"])
def test_the_first_base_href_sets_the_base_in_the_head_or_after_it(tag, as_bytes):
    """The HTML standard's document base URL is the first <base href> of the document, wherever it is."""
    def pairs(html):
        return html_image_pairs(html.encode() if as_bytes else html, "http://x.org/p/").pairs

    in_head = f'<html><head><{tag} target=_top><{tag} href="http://cdn.example/i/"></head><body><img src=a.png alt=a>'
    assert pairs(in_head) == [("http://cdn.example/i/a.png", "a", "alt")]
    in_body = f'<html><head><title>t</title></head><body><img src=a.png alt=a><{tag} href="/i/"><img src=b.png alt=b>'
    assert pairs(in_body) == [("http://x.org/i/a.png", "a", "alt"), ("http://x.org/i/b.png", "b", "alt")]
    no_href = f"<html><head><{tag} target=_top></head><body><img src=a.png alt=a>"
    assert pairs(no_href) == [("http://x.org/p/a.png", "a", "alt")]


# --- where the parse is cut -------------------------------------------------------------------------------------------------

MIN = webpage._CUT_MIN_SAVED
TAG = b'<img src="a.png" alt="a">'


def _cut_at(html) -> int:
    page = html_image_pairs(html, "http://x.org/")
    whole = LexborHTMLParser(html)
    assert [(url, text) for url, text, _ in page.pairs] == [
        (urljoin("http://x.org/", img.attributes["src"]), img.attributes["alt"]) for img in whole.css("img")]
    return page.cut_at


def test_the_parse_is_cut_after_the_last_image_tag_only_where_that_leaves_4_kib_unparsed():
    def page(size):  # the image tag first, then text: `size` bytes in all
        return TAG + b"<p>" + b"x" * (size - len(TAG) - 3)

    assert _cut_at(page(2 * MIN)) == len(TAG)  # a page under 8 KiB is parsed whole
    assert _cut_at(page(2 * MIN - 1)) == 0

    def tail(n):  # n bytes after the last image tag
        return b"<p>" + b"y" * (2 * MIN) + TAG + TAG + b"z" * n

    assert _cut_at(tail(MIN)) == 3 + 2 * MIN + 2 * len(TAG)
    assert _cut_at(tail(MIN - 1)) == 0


def test_an_old_page_written_in_upper_or_mixed_case_is_cut_after_its_last_image():
    filler = b"<P>" + b"words " * 2000 + b"</P>"
    upper = b"<HTML><BODY><IMG SRC=a.png ALT=a>" + filler + b"<IMG SRC=b.png ALT=b>" + filler
    assert _cut_at(upper) == upper.index(b"<IMG SRC=b.png ALT=b>") + len(b"<IMG SRC=b.png ALT=b>")
    mixed = b"<Img src=a.png alt=a>" + filler
    assert _cut_at(mixed) == len(b"<Img src=a.png alt=a>")
    # a <base> after the last image and near the end: the page is parsed whole, the base found
    late_base = b"<img src=a.png alt=a>" + filler + b"<base href=http://cdn.example/>" + b"<p>end</p>"
    page = html_image_pairs(late_base, "http://x.org/")
    assert page.cut_at == 0 and page.pairs == [("http://cdn.example/a.png", "a", "alt")]


def test_a_text_page_holding_a_lone_surrogate_gives_what_the_parser_reads():
    """A str page (a caller's own decoding, surrogateescape) may hold a lone surrogate: selectolax drops it."""
    html = '<img src="a.png" alt="\udcff caf\u00e9">' + "<p>" + "words " * 2000
    page = html_image_pairs(html, "http://x.org/")
    assert page.pairs == [("http://x.org/a.png", "caf\u00e9", "alt")] and page.cut_at > 0


# --- the metas a page shows (page_metas) -----------------------------------------------------------------------------------

def _plain_metas(html: bytes) -> list[tuple]:
    """The plain way: the page decoded and parsed whole, its head's metas that have a content."""
    head = LexborHTMLParser(decode_html(html)).head
    return [(m.attributes.get("name"), m.attributes.get("content")) for m in head.css("meta")
            if m.attributes.get("content") is not None]


def test_the_metas_of_real_opt_out_pages_are_those_of_their_head():
    pages = sorted(PAGES.glob("*.html"))
    assert len(pages) == 12
    found = []
    for path in pages:
        html = path.read_bytes() + b'\n<img src="/a.jpg" alt="a red fox">\n' + b"<p>" + b"words " * 2000 + b"</p>"
        page = html_image_pairs(html, "https://example.org/")
        assert page.cut_at > 0 and page_metas(page) == _plain_metas(html)
        found += page_metas(page)
    assert ("robots", "noai, noimageai") in found and ("tdm-reservation", "1") in found


def test_page_metas_keeps_order_and_a_missing_name_and_skips_metas_without_content():
    html = ('<html><head><meta charset="utf-8"><meta name="robots" content="noai"><meta content="x">'
            '<meta name="tdm-reservation" content=""><meta name="viewport"></head><body><img src=a.png alt=a>')
    assert page_metas(html_image_pairs(html, "http://x.org/")) == [("robots", "noai"), (None, "x"),
                                                                   ("tdm-reservation", "")]
    assert page_metas(html_image_pairs("<html><head><meta name=robots content=noai></head><p>no image",
                                       "http://x.org/")) == []


def test_a_cut_that_could_change_the_images_before_it_is_thrown_away_and_the_page_parsed_whole():
    filler = b"<p>" + b"words " * 2000 + b"</p>"
    assert _cut_at(TAG + filler) == len(TAG)
    # a select open at the cut (a later option may be copied into its <selectedcontent>), a block below a formatting
    # element (a later </b> may move it)
    for before, after in ((b"<select><option>", b"</select>"), (b"<b><div>", b"</b>")):
        assert _cut_at(before + TAG + filler + after) == 0
    # the last image tag inside a comment: the cut there is not between tokens (the sentinel is no element)
    commented = TAG + b"<!-- " + TAG + b" " + filler + b" -->" + filler
    assert _cut_at(commented) == 0


def test_a_page_naming_a_tag_with_the_sentinel_s_character_before_the_cut_is_not_cut():
    filler = b"<p>" + b"words " * 2000 + b"</p>"
    named = b"<x\xf4\x8f\xbf\xbf>"  # a tag named "x" U+10FFFF, as the cut's sentinel is
    assert _cut_at(named + TAG + filler) == 0
    assert _cut_at(TAG + filler + named + filler) == len(TAG)  # after the cut: nothing the cut tree reads


def test_a_base_href_after_a_base_without_one_is_found_past_the_last_image():
    filler = b"<p>" + b"words " * 1000 + b"</p>"
    html = TAG + filler + b"<base target=_top>" + filler + b'<base href="http://cdn.example/">' + filler
    page = html_image_pairs(html, "http://x.org/")
    assert page.pairs == [("http://cdn.example/a.png", "a", "alt")] and page.cut_at == len(html) - len(filler)


def test_a_page_without_an_image_tag_is_never_cut():
    """(html_image_pairs does not parse such a page; the cut is safe only up to an image tag, which ends the head)"""
    html = b"<html><head><title>t</title>" + b"<meta name=x content=y>" * 400 + b"</head><body>" + b"w " * 5000
    tree, cut_at = webpage._parsed_to_last_image(html)
    assert cut_at == 0 and len(tree.tags("meta")) == 400
