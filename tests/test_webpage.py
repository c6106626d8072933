"""Pages to pairs without Spark, on the real crawl excerpts in tests/data/cc (see its README)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter

import pytest

from metaclip_spark.extraction.language import LanguageFilter, identify_language
from metaclip_spark.ingestion.manifest import crawl_id, read_manifest, resolve
from metaclip_spark.extraction.webarchive import ArchiveCounts, HtmlPage, WatPage, decode_content, dechunk, target_uri, web_pages
from metaclip_spark.extraction.webpage import html_image_pairs, sniff_charset, wat_image_pairs

from conftest import DATA

CC = DATA / "cc"


def _pages(name: str, max_page_bytes: int = 5 << 20):
    counts = ArchiveCounts()
    with open(CC / name, "rb") as stream:
        pages = list(web_pages(stream, counts, max_page_bytes))
    return pages, counts


def _pairs(name: str) -> list[tuple[str, str, str, str]]:
    """(page URL, image URL, text, attribute) of every HTML page of a WARC file, in file order."""
    pairs = []
    for page in _pages(name)[0]:
        for url, text, attribute in html_image_pairs(page.html, page.page_url, page.http_charset).pairs:
            pairs.append((page.page_url, url, text, attribute))
    return pairs


# --- every <img> with a text becomes a pair, with the right absolute URL -------------------------------------

def test_every_img_with_alt_or_title_in_the_common_crawl_excerpt_becomes_a_pair():
    # README of the excerpt (counted independently): 32 <img> with a non-empty alt, 9 with a non-empty title.
    sources = Counter(attribute for *_, attribute in _pairs("warcfile.warc.gz"))
    assert sources == {"alt": 32, "title": 9}


def test_every_img_with_a_text_in_the_wget_excerpt_becomes_a_pair():
    # README: 170 alt and 8 title, counting one <img alt="default"> that sits inside an HTML comment, which is
    # not an element; WordPress images also carry data-image-title.
    sources = Counter(attribute for *_, attribute in _pairs("sample-0000.warc.gz"))
    assert sources == {"alt": 169, "title": 8, "data-image-title": 6}


@pytest.mark.parametrize("page_url, src, text, expected_url", [
    # root-relative src on a CC page: <img src="/images/meneu_header.jpg" alt="Tour de France Live, ...">
    ("http://06.live-radsport.ch/fahrerstatistik_801/Anthony_Ravard.html", "/images/meneu_header.jpg",
     "Tour de France Live, Resultate, Etappen, Startliste Liveticker",
     "http://06.live-radsport.ch/images/meneu_header.jpg"),
    # root-relative on a page in a folder: <img src="/logo.png" alt="Стратегия ..."> (windows-1251 page)
    ("http://01spb.ru/company/", "/logo.png", "Стратегия пожарной безопасности", "http://01spb.ru/logo.png"),
    # single-quoted root-relative: <img src='/images/me.jpg' id='avatar' alt='Avatar'>
    ("https://joe.cat/", "/images/me.jpg", "Avatar", "https://joe.cat/images/me.jpg"),
    # path-relative: <img src="null" alt="img alt"> on https://homes.cs.washington.edu/~axz/
    ("https://homes.cs.washington.edu/~axz/", "null", "img alt", "https://homes.cs.washington.edu/~axz/null"),
    # <base href=https://soldaini.net/> and <img src=/alt.webp alt="A raccoon ...">
    ("https://soldaini.net/", "/alt.webp",
     "A raccoon wearing a top hat and holding a pizza slice. Luca sometimes uses this image as their online "
     "profile picture.", "https://soldaini.net/alt.webp"),
    # absolute src, GB2312-labelled page: <img src="http://img3.jxtdw.com/logo200/0760_logo.gif" alt="中山英才网">
    ("http://0760.jxtdw.com/area/sanxiang/", "http://img3.jxtdw.com/logo200/0760_logo.gif", "中山英才网",
     "http://img3.jxtdw.com/logo200/0760_logo.gif"),
    # alt with an HTML entity, kept as the page wrote it: alt="98a8e084f2bc4be1.jpg (781&Atilde;\xc2\x97451)"
    ("http://044545.com/topic/20200207/015849.html", "https://cdnimg.acgget.com/images/202003/98a8e084f2bc4be1.jpg",
     "98a8e084f2bc4be1.jpg (781\u00c3\u0097451)", "https://cdnimg.acgget.com/images/202003/98a8e084f2bc4be1.jpg"),
])
def test_hand_checked_pairs_have_absolute_image_urls(page_url, src, text, expected_url):
    pairs = {(p, u, t) for p, u, t, _ in _pairs("warcfile.warc.gz") + _pairs("sample-0000.warc.gz")}
    assert (page_url, expected_url, text) in pairs


def test_wget_angle_bracket_target_uri_is_the_page_url():
    pages, _ = _pages("sample-0000.warc.gz")
    assert pages[0].page_url == "https://www.semanticscholar.org/research/research-team"
    assert target_uri("<https://a.example/x>") == "https://a.example/x"


def test_base_href_relative_urls_non_http_sources_and_empty_texts():
    html = """<html><head><base href="/static/v2/"></head><body>
      <img src="a.png" alt="  a cat on a mat  ">
      <img src="../b.png" title="B" data-image-title="Bee">
      <img src="//cdn.example.org/c.png" alt="C">
      <img src="data:image/png;base64,AAAA" alt="inline">
      <img src="javascript:void(0)" alt="script">
      <img src="d.png" alt="   " title="">
      <img alt="no source">
      <img src=" e.png&#10; " alt="E">
    </body></html>"""
    page = html_image_pairs(html, "https://www.example.com/blog/post.html")
    assert page.pairs == [
        ("https://www.example.com/static/v2/a.png", "a cat on a mat", "alt"),
        ("https://www.example.com/static/b.png", "B", "title"),
        ("https://www.example.com/static/b.png", "Bee", "data-image-title"),
        ("https://cdn.example.org/c.png", "C", "alt"),
        ("https://www.example.com/static/v2/e.png", "E", "alt"),
    ]
    assert (page.img_tags, page.non_http_url, page.no_text, page.no_src) == (8, 2, 1, 1)


def test_text_attributes_are_configurable():
    page = html_image_pairs('<img src="x.png" alt="A" title="T">', "http://example.com/", text_attributes=["title"])
    assert page.pairs == [("http://example.com/x.png", "T", "title")]


# --- charsets ---------------------------------------------------------------------------------------------------

def test_gbk_and_cp1251_pages_decode_without_mojibake():
    texts = {t for _, _, t, _ in _pairs("warcfile.warc.gz")}
    assert {"中山英才网", "用心专注，服务专业", "Стратегия пожарной безопасности"} <= texts
    assert not any("\ufffd" in t for t in texts)


def test_euc_jp_pages_decode_without_mojibake():
    pages, counts = _pages("clueweb-quirk.warc.gz")
    assert counts.html_pages == 29  # HTTP headers with LF-only lines, Content-Encoding: gzip on a plain body
    first = html_image_pairs(pages[0].html, pages[0].page_url, pages[0].http_charset).pairs
    assert ("http://www.uraharajuku.st/design/porter/navi/navi-wallet.jpg", "当店一番人気、ヘッドポーター財布",
            "alt") in first
    assert not any("\ufffd" in t for _, t, _ in first)


def test_charset_comes_from_bom_then_http_header_then_meta_then_utf8_check():
    meta_gbk = '<meta http-equiv="Content-Type" content="text/html; charset=gbk"><p>中文</p>'.encode("gbk")
    assert sniff_charset(meta_gbk) == "gb18030"
    assert sniff_charset(meta_gbk, "GB2312") == "gb18030"  # GB2312 labels are read as GBK, as browsers do
    assert sniff_charset('<meta charset="EUC-JP">'.encode()) == "euc_jp"
    assert sniff_charset(b"\xef\xbb\xbf<p>x</p>", "iso-8859-1") == "utf-8-sig"
    assert sniff_charset("<p>caf\u00e9</p>".encode("utf-8")) == "utf-8"
    assert sniff_charset("<p>caf\u00e9</p>".encode("cp1252")) == "cp1252"
    assert sniff_charset(b"<p>x</p>", "no-such-charset") == "utf-8"  # unknown label: ignored
    page = html_image_pairs('<img src="a.png" alt="Ærøskøbing café">'.encode("cp1252"), "http://example.dk/")
    assert page.pairs[0][1] == "Ærøskøbing café"


# --- WARC records: encodings, truncation, caps --------------------------------------------------------------------

def test_truncated_gzip_member_yields_the_pairs_before_the_cut_and_is_counted():
    pages, counts = _pages("clipped.warc.gz")
    assert (counts.records_read, counts.records_truncated, counts.read_error) == (1, 1, None)
    pairs = html_image_pairs(pages[0].html, pages[0].page_url, pages[0].http_charset).pairs
    assert ("A Humble Chance The Rapper Leads a Spiritual Awakening at Revention" in {t for _, t, _ in pairs})
    assert len(pairs) == 7


def test_gzip_content_encoding_is_decoded():
    pages, counts = _pages("example.warc.gz")  # the response declares Content-Encoding: gzip
    assert counts.html_pages == 1 and b"Example Domain" in pages[0].html


def test_chunked_transfer_encoding_is_decoded():
    pages, _ = _pages("sample-0000.warc.gz")
    weld = next(p for p in pages if p.page_url.endswith("/weld"))  # Transfer-Encoding: chunked
    assert weld.html.lstrip().startswith(b"<!DOCTYPE html") and weld.html.rstrip().endswith(b"</html>")
    assert dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n") == b"Wikipedia"
    assert dechunk(b"<html>not chunked</html>") == b"<html>not chunked</html>"


def test_content_decoding_caps_output_and_reports_garbage():
    assert decode_content(gzip.compress(b"<p>hi</p>"), "gzip", 100) == b"<p>hi</p>"
    assert decode_content(zlib.compress(b"<p>hi</p>")[2:-4], "deflate", 100) == b"<p>hi</p>"  # raw deflate
    assert len(decode_content(gzip.compress(b"x" * 10_000), "gzip", 100)) == 101  # stops just past the cap
    with pytest.raises(ValueError):
        decode_content(b"\x00\x01 binary, not gzip", "gzip", 100)


def test_pages_over_the_size_cap_are_skipped_and_counted():
    pages, counts = _pages("warcfile.warc.gz", max_page_bytes=20_000)
    assert counts.oversized_pages == 8 and counts.html_pages == 8 and len(pages) == 8
    assert all(len(p.html) <= 20_000 for p in pages)


# --- WAT ----------------------------------------------------------------------------------------------------------

def test_wat_img_links_are_resolved_against_the_page_url():
    pages, counts = _pages("CC-MAIN-sample2.warc.wat.gz")
    assert counts.wat_pages == 1 and isinstance(pages[0], WatPage)
    page = pages[0]
    assert page.page_url == "http://19august93.nsarchive.ru/songs/875.html"
    found = wat_image_pairs(page.html_metadata, page.page_url)
    assert (found.img_tags, found.no_text, found.pairs) == (27, 27, [])  # this record's IMG links carry no alt
    # The same links with a text, as most WAT records have: every relative URL resolved against the page URL.
    links = [dict(link, alt="text") for link in page.html_metadata["Links"] if link["path"].startswith("IMG@/src")]
    urls = [url for url, _, _ in wat_image_pairs({"Links": links}, page.page_url).pairs]
    assert len(urls) == 27 and all(u.startswith("http://19august93.nsarchive.ru/") for u in urls)
    assert "http://19august93.nsarchive.ru/img/empty.gif" in urls  # "../img/empty.gif"


def test_wat_alt_title_and_base():
    metadata = {"Head": {"Base": "http://example.org/a/"}, "Links": [
        {"path": "IMG@/src", "url": "x.jpg", "alt": " An apple ", "title": "Apple"},
        {"path": "A@/href", "url": "page.html", "text": "not an image"},
        {"path": "IMG@/src", "url": "data:image/gif;base64,R0lG", "alt": "pixel"},
    ]}
    found = wat_image_pairs(metadata, "http://example.org/index.html")
    assert found.pairs == [("http://example.org/a/x.jpg", "An apple", "alt"), ("http://example.org/a/x.jpg", "Apple", "title")]
    assert found.non_http_url == 1


def test_only_response_records_with_html_give_pages():
    pages, counts = _pages("example.warc.gz")  # warcinfo x2, request x2, response, revisit (no payload)
    assert (counts.records_read, counts.html_pages, len(pages)) == (6, 1, 1)
    assert isinstance(pages[0], HtmlPage) and pages[0].page_url == "http://example.com/"


# --- language -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, lang", [
    ("A black and white photo of two people sitting on a couch in the living room.", "en"),
    ("Der schnelle braune Fuchs springt über den faulen Hund.", "de"),
    ("Le petit chat dort sur le canapé depuis ce matin.", "fr"),
    ("Стратегия пожарной безопасности для вашего бизнеса", "ru"),
    ("当店一番人気のヘッドポーターの財布です", "ja"),
])
def test_language_of_clear_sentences(text, lang):
    found, score = identify_language(text)
    assert found == lang and 0.5 < score <= 1.0


def test_language_filter_keeps_listed_languages_and_an_empty_list_keeps_all():
    assert LanguageFilter(["en"]).keeps("en", 0.2) and not LanguageFilter(["en"]).keeps("de", 0.99)
    assert not LanguageFilter(["en"], min_score=0.5).keeps("en", 0.2)
    assert LanguageFilter([]).keeps("zh", 0.01)
    assert identify_language("line one\nline two")[0] == "en"  # fastText reads one line


# --- manifests ----------------------------------------------------------------------------------------------------

def test_real_warc_paths_listing_resolves_against_each_input_base():
    listing = str(CC / "CC-MAIN-2016-07.warc.paths.gz")
    files = read_manifest(listing, "s3://commoncrawl/")
    assert len(files) == 34_900
    first = files[0]
    assert first.source_file == ("crawl-data/CC-MAIN-2016-07/segments/1454701145519.33/warc/"
                                 "CC-MAIN-20160205193905-00000-ip-10-236-182-209.ec2.internal.warc.gz")
    assert first.location == "s3://commoncrawl/" + first.source_file and first.crawl == "CC-MAIN-2016-07"
    assert read_manifest(listing, "https://data.commoncrawl.org")[0].location == (
        "https://data.commoncrawl.org/" + first.source_file)
    assert read_manifest(listing, "/data/cc/")[0].location == "/data/cc/" + first.source_file
    assert read_manifest(listing, crawl="CC-MAIN-2099-01")[0].crawl == "CC-MAIN-2099-01"


def test_plain_manifest_defaults_to_its_own_directory(tmp_path):
    (tmp_path / "paths.txt").write_text("a.warc.gz\n\nsub/b.warc.gz\n/abs/c.warc.gz\n", encoding="utf-8")
    files = read_manifest(str(tmp_path / "paths.txt"))
    assert [f.location for f in files] == [str(tmp_path / "a.warc.gz"), str(tmp_path / "sub/b.warc.gz"),
                                           "/abs/c.warc.gz"]
    assert [f.crawl for f in files] == [None, None, None]
    assert resolve("file:///data/", "x.gz") == "file:///data/x.gz"
    assert crawl_id("crawl-data/CC-MAIN-2023-06/segments/x.warc.gz") == "CC-MAIN-2023-06"


@pytest.mark.parametrize("pack", [lambda b: b, gzip.compress], ids=["plain", "gzipped"])
def test_a_listing_that_starts_with_a_byte_order_mark_reads_its_first_path(tmp_path, pack):
    # Windows editors write a UTF-8 BOM first: it was read as part of the first path, which then could not be found.
    (tmp_path / "paths.txt").write_bytes(pack("\ufeffa.warc.gz\nb.warc.gz\n".encode("utf-8")))
    files = read_manifest(str(tmp_path / "paths.txt"))
    assert [f.location for f in files] == [str(tmp_path / "a.warc.gz"), str(tmp_path / "b.warc.gz")]


def test_wat_paths_listing_is_read_too():
    files = read_manifest(str(CC / "CC-MAIN-2016-07.wat.paths.gz"), "s3://commoncrawl/")
    assert len(files) == 34_900 and files[0].source_file.endswith(".warc.wat.gz")


def test_json_of_the_real_wat_record_has_the_spec_path():
    with gzip.open(CC / "CC-MAIN-sample2.warc.wat.gz") as f:
        raw = f.read()
    envelope = json.loads(raw[raw.index(b"{"):])["Envelope"]
    assert "Links" in envelope["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]


# --- bad input inside a file ----------------------------------------------------------------------------------------

def _members(name: str) -> list[bytes]:
    data, records = (CC / name).read_bytes(), []
    while data:
        inflater = zlib.decompressobj(31)
        records.append(inflater.decompress(data))
        data = inflater.unused_data
    return records


def test_a_record_with_a_bad_header_is_skipped_not_the_rest_of_the_file():
    import io

    records = _members("warcfile.warc.gz")
    broken = next(i for i, r in enumerate(records) if b"WARC-Type: response" in r[:300])
    header_end = records[broken].index(b"\r\n\r\n")
    header = records[broken][:header_end].replace(b"WARC/1.0", b"XXXX/1.0", 1)  # not a WARC header any more
    records[broken] = header + records[broken][header_end:]
    counts = ArchiveCounts()
    pages = list(web_pages(io.BytesIO(b"".join(gzip.compress(r) for r in records)), counts, 5 << 20))
    assert (counts.records_read, counts.html_pages, counts.read_error) == (49, 15, None)  # 50 records, 16 pages
    assert pages[0].page_url == "http://01spb.ru/company/"  # the broken one was the first page
    assert pages[-1].page_url == "http://096355.com/video/11073.html?11073-0-2"  # the file's last page is read


def test_deeply_nested_and_malformed_html_still_gives_its_images():
    deep = "<div>" * 50_000 + '<img src="deep.png" alt="deep">' + "</div>" * 10
    assert html_image_pairs(deep, "http://example.com/").pairs == [("http://example.com/deep.png", "deep", "alt")]
    broken = '<table><tr><td><img src="a.png" alt="unclosed <b>bold <img src=b.png alt=second title="t'
    pairs = html_image_pairs(broken, "http://example.com/x/").pairs
    assert ("http://example.com/x/a.png", "unclosed <b>bold <img src=b.png alt=second title=", "alt") not in pairs
    assert all(url.startswith("http://example.com/x/") for url, _, _ in pairs)


def test_undecodable_bytes_become_replacement_characters_not_a_lost_page():
    html = b'<meta charset="utf-8"><img src="a.png" alt="caf\xe9 \xff ok">'
    assert html_image_pairs(html, "http://example.com/").pairs == [
        ("http://example.com/a.png", "caf\ufffd \ufffd ok", "alt")]


@pytest.mark.parametrize("tag", ["div", "section", "blockquote", "ul", "table", "pre", "figcaption", "optgroup"])
def test_pages_nested_a_quarter_million_deep_give_their_images_without_the_nesting(tag):
    n = 250_000  # such pages took 38-216 s each to parse: nesting this deep is parsed as <img>/<base> tags alone
    html = ('<html><head><base href="http://cdn.example/d/"></head><body><img src="top.png" alt="top">'
            + f'<{tag} class="x">' * n + '<img src="deep.png" alt="deep &amp; deeper">'
            + '<!-- <img src="commented.png" alt="not an image"> --><script>"<img src=s.png alt=s>"</script>'
            + '<noscript><img src="ns.png" alt="no script"></noscript>' + f"</{tag}>" * n
            + '<img src="end.png" title="the end">')
    page = html_image_pairs(html, "http://example.com/a/")
    assert page.too_deep
    assert page.pairs == [("http://cdn.example/d/top.png", "top", "alt"),
                          ("http://cdn.example/d/deep.png", "deep & deeper", "alt"),
                          ("http://cdn.example/d/ns.png", "no script", "alt"),
                          ("http://cdn.example/d/end.png", "the end", "title")]


def test_the_images_only_parse_agrees_with_the_full_parse():
    """Pages that leave thousands of <p> open count as deep: their pairs are the same either way."""
    body = "".join(f'<p>para {i} <img src="i{i}.png" alt="image {i}" title=\'a "quoted" > title\'>' for i in range(5000))
    html = f"<html><body>{body}</body></html>"
    page = html_image_pairs(html, "http://example.com/")
    assert page.too_deep and len(page.pairs) == 10_000
    shallow = "".join(f'<div><p>para {i} <img src="i{i}.png" alt="image {i}" title=\'a "quoted" > title\'></p></div>'
                      for i in range(5000))
    full = html_image_pairs(f"<html><body>{shallow}</body></html>", "http://example.com/")
    assert not full.too_deep and full.pairs == page.pairs


def test_real_pages_are_parsed_whole():
    for name in ("warcfile.warc.gz", "sample-0000.warc.gz", "clueweb-quirk.warc.gz"):
        counts = ArchiveCounts()
        with open(CC / name, "rb") as stream:
            for page in web_pages(stream, counts, 5 << 20):
                assert not html_image_pairs(page.html, page.page_url, page.http_charset).too_deep
