"""wat.wat_pairs gives what webpage.wat_image_pairs gives: the same pairs, counts and errors, on real WAT pages (the
real Common Crawl record in tests/data/cc and WAT files written from the real WARC excerpts) and on hostile ones;
its URLs resolved per site are urljoin's."""

from __future__ import annotations

import copy
import io
import random

import pytest

from metaclip_spark.extraction import wat
from metaclip_spark.extraction import webpage
from metaclip_spark.extraction.wat import wat_pairs
from metaclip_spark.extraction.webarchive import ArchiveCounts, web_pages
from metaclip_spark.extraction.webpage import wat_image_pairs
from wat_writer import write_wat

from conftest import DATA

CC = DATA / "cc"
ATTRIBUTE_SETS = [("alt", "title", "data-image-title"), ("alt",), ("title", "alt"), ("text", "alt", "rel"), ()]


def _outcome(function, html_metadata, page_url, attributes):
    """Pairs and counts, or the class of the error raised (a page that raises is counted as a decode error)."""
    try:
        page = function(html_metadata, page_url, attributes)
    except Exception as e:  # noqa: BLE001 - the error class is part of what must agree
        return type(e)
    return page.pairs, page.img_tags, page.no_src, page.no_text, page.non_http_url


def _same(html_metadata, page_url, attributes=ATTRIBUTE_SETS[0]):
    webpage.clear_caches()
    expected = _outcome(wat_image_pairs, copy.deepcopy(html_metadata), page_url, attributes)
    for _ in range(2):  # the second time from the URL caches
        assert _outcome(wat_pairs, html_metadata, page_url, attributes) == expected, (page_url, attributes)
    return expected


@pytest.fixture(scope="module")
def real_pages(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wat")
    paths = [CC / "CC-MAIN-sample2.warc.wat.gz"]
    for name in ("warcfile.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz", "clueweb-quirk.warc.gz"):
        paths.append(directory / name.replace(".warc.gz", ".warc.wat.gz"))
        write_wat(CC / name, paths[-1])
    pages = []
    for path in paths:
        with open(path, "rb") as stream:
            pages += [(p.page_url, p.html_metadata) for p in web_pages(stream, ArchiveCounts(), 5 << 20)]
    return pages


@pytest.mark.parametrize("attributes", ATTRIBUTE_SETS)
def test_real_wat_pages_give_the_same_pairs_and_counts(real_pages, attributes):
    pairs = sum(len(_same(metadata, url, attributes)[0]) for url, metadata in real_pages)
    if attributes == ATTRIBUTE_SETS[0]:
        assert len(real_pages) == 83 and pairs > 500, pairs


def test_real_pages_read_again_under_other_page_urls_give_the_same_pairs(real_pages):
    """The URL cache is per site: the same links on pages of other sites, other schemes, odd or empty URLs."""
    rng = random.Random(18)
    webpage.clear_caches()
    for page_url, metadata in rng.sample(real_pages, 40):
        for other in ("https://other.example/a/b.html", "http://" + page_url.split("//", 1)[-1], "", "foo",
                      "file:///tmp/x.html", "http://[::1]/x", "http://[bad/x", "HTTP://UPPER.example/P"):
            expected = _outcome(wat_image_pairs, metadata, other, ATTRIBUTE_SETS[0])
            assert _outcome(wat_pairs, metadata, other, ATTRIBUTE_SETS[0]) == expected, (page_url, other)


def test_link_lists_of_objects_are_picked_without_the_careful_reading(real_pages, monkeypatch):
    """wat_pairs picks the image links of a list of objects itself, a path missing or not an image's included (C
    loops: its speed is in make bench); webpage.wat_image_pairs, the careful reading, is only for a list of another
    shape (a link that is not an object, a path that is not a string)."""
    careful = []
    monkeypatch.setattr(wat, "wat_image_pairs", lambda *args: careful.append(args[1]) or wat_image_pairs(*args))
    for page_url, metadata in real_pages:
        wat_pairs(metadata, page_url)
    pathless = {"Links": [{"url": "c.png", "alt": "c"}, {"path": "IMG@/src", "url": "a.png", "alt": "a"}]}
    assert wat_pairs(pathless, "http://x.org/").pairs == [("http://x.org/a.png", "a", "alt")]
    assert careful == []
    wat_pairs({"Links": [{"path": 7, "url": "b.png", "alt": "b"}]}, "http://y.org/")
    assert careful == ["http://y.org/"]


HOSTILE_LINKS = [
    [{"path": "IMG@/src", "url": "a.png", "alt": "a"}, ["IMG@/src"], "IMG@/src", {"path": None},
     {"path": 7, "url": "b.png", "alt": "b"}, {"path": ["IMG@/src"]}, {"url": "c.png", "alt": "c"},
     {"path": "IMG@/srcset", "url": "d.png", "title": "d"}],
    [{"path": "IMG@/src", "url": 5, "alt": "number url"}],
    [{"path": "IMG@/src", "url": None, "alt": "null url"}, {"path": "IMG@/src", "alt": "no url"}],
    [{"path": "IMG@/src", "url": "  ", "alt": "blank url"}, {"path": "IMG@/src", "url": "x.png", "alt": 5}],
    [{"path": "IMG@/src", "url": "x.png", "alt": ["a"], "title": {"t": 1}}, {"path": "IMG@/src", "url": "y.png"}],
    [{"path": "IMG@/src", "url": " \t/tab\tbed.png\n", "alt": " spaced ", "title": "\u3000"}],
    [{"path": "IMG@/src", "url": "javascript:void(0)", "alt": "js"}, {"path": "IMG@/src", "url": "//cdn.x/p.png",
                                                                      "alt": "protocol-relative"}],
    [{"path": "IMG@/src", "url": "http://[bad/i.png", "alt": "bad IPv6"}],
    [{"path": "A@/href", "url": "a.html", "text": "anchor"}, {"path": "", "url": "e.png", "alt": "e"}],
    [{"path": "img@/src", "url": "f.png", "alt": "lower case path"}, {"path": "IMG@/src", "url": "f.png", "alt": "f",
                                                                      "title": "f"}],
]


@pytest.mark.parametrize("links", HOSTILE_LINKS)
@pytest.mark.parametrize("page_url", ["http://x.org/a/", "https://x.org/", "", "http://[::1]/", "http://[bad/"])
def test_hostile_links_give_the_same_pairs_counts_and_errors(links, page_url):
    for attributes in ATTRIBUTE_SETS:
        _same({"Links": links}, page_url, attributes)
        _same({"Head": {"Base": "/base/"}, "Links": links}, page_url, attributes)


@pytest.mark.parametrize("metadata", [
    {}, {"Links": None}, {"Links": []}, {"Links": {}}, {"Links": {"path": "IMG@/src"}}, {"Links": "IMG@/src"},
    {"Links": 5}, {"Links": True}, {"Links": [None]}, {"Links": [5]},
    {"Head": [], "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "a"}]},
    {"Head": "x", "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "a"}]},
    {"Head": {"Base": 5}, "Links": []}, {"Head": {"Base": ""}, "Links": [{"path": "IMG@/src", "url": "a.png",
                                                                          "alt": "a"}]},
    {"Head": {"Base": "http://[bad/"}, "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "a"}]},
    {"Head": {"Base": "https://cdn.example/root/"}, "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "a"},
                                                              {"path": "IMG@/src", "url": "/b.png", "alt": "b"}]},
])
def test_odd_html_metadata_gives_the_same_outcome(metadata):
    for page_url in ("http://x.org/", ""):
        _same(metadata, page_url)


def test_site_cache_resolves_as_urljoin_and_survives_being_cleared(monkeypatch):
    from test_fast_paths import BASES, SOURCES

    monkeypatch.setattr(webpage, "_SITE_CACHE_ENTRIES", 7)  # cleared every few URLs
    webpage.clear_caches()
    for _ in range(2):
        for base in BASES:
            for source in SOURCES:
                try:
                    expected = webpage.resolve_image_url(base, source)
                except ValueError as e:
                    expected = type(e)
                try:
                    found, is_http = webpage._Resolver(base).resolve(source)
                    assert is_http == webpage.http_url(found)
                except ValueError as e:
                    found = type(e)
                assert found == expected, (base, source)
        assert webpage._cached_entries <= 7


def test_a_site_s_images_resolve_on_each_of_its_pages():
    wat.clear_caches()
    pages = ["https://shop.example/a/1.html", "https://shop.example/b/c/2.html", "http://shop.example/",
             "https://shop.example/a/1.html?q", "https://other.example/a/1.html"]
    for _ in range(2):
        for page in pages:
            links = [{"path": "IMG@/src", "url": src, "alt": src} for src in
                     ("/logo.png", "logo.png", "../up.png", "?q=2", "https://cdn.example/x.png", "//cdn.example/y")]
            assert wat_pairs({"Links": links}, page).pairs == [
                (webpage.resolve_image_url(page, link["url"]), link["alt"], "alt") for link in links]


# --- WAT records read the fast way (msgspec, simdjson) against the plain way (orjson, then the standard library) ----

import json  # noqa: E402
import zlib  # noqa: E402

from metaclip_spark.extraction import webarchive  # noqa: E402
from metaclip_spark.extraction.job import page_signals  # noqa: E402
from metaclip_spark.extraction.wat import WatReader, page_pairs  # noqa: E402

HEADERS = webarchive._PlainHeaders({"content-type": "application/json", "warc-target-uri": "http://header.example/"})


def _record_outcome(payload: bytes, reader, attributes):
    counts = webarchive.ArchiveCounts()
    try:
        page = webarchive._wat_page_of(HEADERS, len(payload), lambda: payload, counts, 5 << 20, reader)
    except Exception as e:  # noqa: BLE001 - the plain way lets some errors end the file: the class must agree
        return "raised", type(e)
    if page is None:
        return None, counts
    pairs = _outcome(lambda m, u, a: page_pairs(page, a), None, page.page_url, attributes)
    # and the opt-out signals of its response headers and head metas (optout/signals.py)
    return page.page_url, page.html_metadata, counts, pairs, page_signals(page, None)


def _agree(payload: bytes, attributes=ATTRIBUTE_SETS[0]) -> bool:
    """Both ways give the same page, counts and pairs; whether the fast way read it."""
    webpage.clear_caches()
    reader = WatReader(attributes)
    fast = _record_outcome(payload, reader, attributes)
    plain = _record_outcome(payload, None, attributes)
    assert fast == plain, payload[:300]
    return reader.read(payload) is not None


def _payloads(path) -> list[bytes]:
    data, found = path.read_bytes(), []
    while data:
        inflater = zlib.decompressobj(31)
        member = inflater.decompress(data)
        data = inflater.unused_data
        start = member.find(b"\r\n\r\n") + 4
        if b"application/json" in member[:start]:
            found.append(member[start:len(member) - 4])
    return found


@pytest.fixture(scope="module")
def real_payloads(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wat-records")
    payloads = _payloads(CC / "CC-MAIN-sample2.warc.wat.gz")
    for name in ("warcfile.warc.gz", "sample-0000.warc.gz", "sample-0001.warc.gz", "clueweb-quirk.warc.gz"):
        write_wat(CC / name, directory / "x.wat.gz")
        payloads += _payloads(directory / "x.wat.gz")
    return payloads


@pytest.mark.parametrize("attributes", ATTRIBUTE_SETS + [("alt", "alt"), ("url", "alt"), ("path",)])
def test_real_wat_records_read_the_fast_way_give_the_plain_way_s_pages(real_payloads, attributes):
    fast = sum(_agree(payload, attributes) for payload in real_payloads)
    if len(set(attributes)) == len(attributes) and not {"path", "url"} & set(attributes):
        assert fast == len(real_payloads) > 150  # every real record is read the fast way...
    else:
        assert fast == 0  # ...unless the attributes cannot be typed fields


@pytest.fixture(scope="module")
def optout_payloads(tmp_path_factory):
    """The WAT records of the real opt-out pages (tests/data/optout, with opt-out response headers on some)."""
    from optout_archives import write_warc

    directory = tmp_path_factory.mktemp("wat-optout")
    write_wat(write_warc(directory / "optout.warc.gz"), directory / "optout.warc.wat.gz")
    return _payloads(directory / "optout.warc.wat.gz")


def test_opt_out_signals_of_records_read_the_fast_way_are_the_plain_way_s(optout_payloads):
    """A record read the fast way keeps its headers and metas as raw JSON, decoded only when they may hold an
    opt-out: the signals of its page are the plain way's (the X-Robots-Tag, tdm-reservation and Content-Usage
    headers, the robots and tdm metas of real pages)."""
    from optout_archives import CASES

    found = {}
    for payload in optout_payloads:
        assert _agree(payload)  # read the fast way, and the same page and signals as the plain way's
        page = webarchive._wat_page_of(HEADERS, len(payload), lambda: payload, webarchive.ArchiveCounts(),
                                       5 << 20, WatReader())
        found[page.page_url] = page_signals(page, None)
    assert found == {url: signals for url, _, _, signals in CASES}


def test_the_pairs_of_a_record_read_the_fast_way_do_not_read_its_json_again(real_payloads):
    """Asked for the attributes it was read for, a page gives its pairs from its typed HTML-Metadata: the record's
    JSON is not decoded a second time (as a dict) for them."""
    for payload in real_payloads[:40]:
        page = webarchive._wat_page_of(HEADERS, len(payload), lambda: payload, webarchive.ArchiveCounts(),
                                       5 << 20, WatReader(ATTRIBUTE_SETS[0]))
        if page is not None:
            pairs = page_pairs(page, ATTRIBUTE_SETS[0]).pairs
            assert page._html_metadata is None  # ... not decoded yet
            assert pairs == wat_image_pairs(page.html_metadata, page.page_url, ATTRIBUTE_SETS[0]).pairs


def test_pairs_asked_for_other_attributes_than_the_record_was_read_for_are_the_plain_way_s(real_payloads):
    """A page read the fast way for some text attributes, asked for the pairs of others, gives the pairs of those."""
    differ = 0
    for payload in real_payloads:
        page = webarchive._wat_page_of(HEADERS, len(payload), lambda: payload, webarchive.ArchiveCounts(),
                                       5 << 20, WatReader(ATTRIBUTE_SETS[0]))
        if page is None:
            continue
        assert page.typed is not None
        for attributes in ATTRIBUTE_SETS[1:]:
            expected = _outcome(wat_image_pairs, page.html_metadata, page.page_url, attributes)
            assert _outcome(lambda m, u, a: page_pairs(page, a), None, page.page_url, attributes) == expected
            differ += expected != _outcome(wat_image_pairs, page.html_metadata, page.page_url, ATTRIBUTE_SETS[0])
    assert differ > 50  # pages whose pairs depend on the attributes asked for


def _doc(html=None, envelope_extra=None, **extra) -> dict:
    envelope = {"WARC-Header-Metadata": {"WARC-Target-URI": "http://x.org/p.html"},
                "Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": html if html is not None else {
                    "Head": {"Base": "/b/"}, "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "a"},
                                                       {"path": "A@/href", "url": "p.html", "text": "t"}]}}}}
    envelope.update(envelope_extra or {})
    return {"Envelope": envelope, **extra}


HOSTILE_RECORDS = [
    json.dumps(_doc()).encode(),
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": [{"path": "IMG@/src",'
    b' "url": "a.png", "alt": "first"}]}}}}, "Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": '
    b'{"HTML-Metadata": {"Links": [{"path": "IMG@/src", "url": "b.png", "alt": "last"}]}}}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": [{"path": "IMG@/src",'
    b' "url": "a.png", "alt": "x", "alt": "second", "path": "A@/href", "url": 5}]}}}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": [{"path": "A@/href",'
    b' "path": "IMG@/src", "url": "a.png", "alt": "dup path"}], "Links": 5}}}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": 5, "Links": '
    b'[{"path": "IMG@/src", "url": "a.png", "alt": "x"}]}}}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": [{"\\u0070ath": '
    b'"\\u0049MG@\\/src", "url": "\\u0061.png", "\\u0061lt": "escaped \\"keys\\" \\u00e9\\ud83d\\ude00"}]}}}}}',
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": {"WARC-Target-URI": 5}})).encode(),
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": {"WARC-Target-URI": [7, "http://x.org/a", "b"]}})).encode(),
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": {"WARC-Target-URI": " <http://x.org/a> "}})).encode(),
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": {"WARC-Target-URI": ""}})).encode(),
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": []})).encode(),
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": ["x"]})).encode(),
    json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": None})).encode(),
    json.dumps(_doc(envelope_extra={"Payload-Metadata": []})).encode(),
    json.dumps(_doc(envelope_extra={"Payload-Metadata": ["x"]})).encode(),
    json.dumps(_doc(envelope_extra={"Payload-Metadata": {"HTTP-Response-Metadata": 0}})).encode(),
    json.dumps(_doc(envelope_extra={"Payload-Metadata": {"HTTP-Request-Metadata": {}}})).encode(),
    json.dumps(_doc(html={})).encode(),
    json.dumps(_doc(html=[])).encode(),
    json.dumps(_doc(html="x")).encode(),
    json.dumps(_doc(html={"Head": {"Base": 5}, "Links": []})).encode(),
    json.dumps(_doc(html={"Head": [], "Links": [{"path": "IMG@/src", "url": "a.png", "alt": "a"}]})).encode(),
    json.dumps(_doc(html={"Head": {"Base": "http://[bad/"}, "Links": [{"path": "IMG@/src", "url": "a", "alt": "a"}]})
               ).encode(),
    json.dumps(_doc(html={"Links": [{"path": None, "url": "a.png", "alt": "a"}, {"path": "IMG@/src", "url": "b.png",
                                                                                  "alt": "b"}]})).encode(),
    json.dumps(_doc(html={"Links": [{"path": "IMG@/src", "url": 7, "alt": "number url"}]})).encode(),
    json.dumps(_doc(html={"Links": ["IMG@/src", {"path": "IMG@/src", "url": "b.png", "alt": "b"}]})).encode(),
    json.dumps(_doc(html={"Links": {"path": "IMG@/src"}})).encode(),
    json.dumps(_doc(html={"Links": [{"path": "IMG@/src", "url": "b.png", "alt": ["x"], "title": {"y": 1},
                                     "data-image-title": 12345678901234567890123}]})).encode(),
    json.dumps(_doc(big=10 ** 30, small=-1e-320, inf=1e308)).encode().replace(b"1e+308", b"1e999"),
    json.dumps(_doc()).encode().replace(b'"Envelope"', b'"n": NaN, "Envelope"', 1),
    # keys spelled as the typed structures' own field names are other keys
    b'{"envelope": {}, "Envelope": {"payload": 5, "warc_headers": 7, "Payload-Metadata": {"HTTP-Response-Metadata": '
    b'{"HTML-Metadata": {"links": 5, "head": 3, "Links": [{"path": "IMG@/src", "a0": "x", "a1": "y", "alt": "z", '
    b'"url": "u.png"}]}}}}}',
    json.dumps({"Envelope": None}).encode(), json.dumps({"Envelope": []}).encode(), json.dumps({"x": 1}).encode(),
    b"[]", b"5", b'"Envelope"', b"null", b"", b"{", b"not json",
    json.dumps(_doc(), ensure_ascii=False).encode() + b" x",
    b"\xef\xbb\xbf" + json.dumps(_doc()).encode(),
    json.dumps(_doc(text="caf\u00e9 \u65e5\u672c"), ensure_ascii=False).encode(),
    json.dumps(_doc(text="caf\u00e9")).encode().replace(b"\\u00e9", b"\xff"),
    json.dumps(_doc(text="caf\u00e9")).encode().replace(b"\\u00e9", b"\xed\xa0\x80"),
    json.dumps(_doc(text="caf\u00e9")).encode().replace(b"\\u00e9", b"\xc0\xaf"),
    json.dumps(_doc(text="caf\u00e9")).encode().replace(b"\\u00e9", b"\\ud800"),
    json.dumps(_doc(text="caf\u00e9")).encode().replace(b"\\u00e9", b"\x01"),
    json.dumps(_doc(text="caf\u00e9")).encode().replace(b"\\u00e9", b"\\x"),
    json.dumps(_doc(**{"\u00e9\xff": 1}), ensure_ascii=False).encode().replace("\u00e9".encode(), b"\xff"),
    json.dumps(_doc(deep=0)).encode().replace(b'"deep": 0', b'"deep": ' + b"[" * 990 + b"]" * 990),
    json.dumps(_doc(deep=0)).encode().replace(b'"deep": 0', b'"deep": ' + b"[" * 1010 + b"]" * 1010),
    json.dumps(_doc(deep=0)).encode().replace(b'"deep": 0', b'"deep": ' + b"[" * 1030 + b"]" * 1030),
]


@pytest.mark.parametrize("payload", HOSTILE_RECORDS)
def test_hostile_records_read_the_fast_way_give_the_plain_way_s_pages(payload):
    for attributes in ATTRIBUTE_SETS:
        _agree(payload, attributes)


def test_fuzzed_real_records_give_the_plain_way_s_pages(real_payloads):
    rng = random.Random(20261130)
    small = sorted(real_payloads, key=len)[:60] + [p for p in HOSTILE_RECORDS if p.startswith(b"{")]
    structural = b'{}[]",:\\ \t\nIMG@/src' + "é日".encode()
    fast = 0
    for trial in range(1500):
        data = bytearray(rng.choice(small))
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(data) + 1)
            kind = rng.random()
            if kind < 0.3:
                data[position:position + 1] = b""
            elif kind < 0.6:
                data[position:position] = bytes([rng.choice(structural)])
            elif kind < 0.8:
                data[position:position] = bytes([rng.randrange(256)])
            elif position < len(data):
                data[position] ^= 1 << rng.randrange(8)
        fast += _agree(bytes(data))
    assert fast > 100  # some mutations leave valid JSON, read the fast way


def _file_outcome(data: bytes, attributes):
    """Pages, pairs and counts of a whole file read by web_pages, the fast way (attributes) or the plain way (None)."""
    import io

    webpage.clear_caches()
    counts = webarchive.ArchiveCounts()
    found = []
    for page in webarchive.web_pages(io.BytesIO(data), counts, 5 << 20, attributes):
        pairs = _outcome(lambda m, u, a: page_pairs(page, a), None, page.page_url, ATTRIBUTE_SETS[0])
        found.append((page.page_url, page.html_metadata, pairs))
    return found, counts


def test_damaged_wat_files_give_the_plain_way_s_pages_and_counts(tmp_path):
    """A corrupt member, a cut file, a lying Content-Length, bytes that are not UTF-8 in some records."""
    import gzip

    write_wat(CC / "sample-0000.warc.gz", tmp_path / "x.wat.gz")
    data, members = (tmp_path / "x.wat.gz").read_bytes(), []
    while data:
        inflater = zlib.decompressobj(31)
        members.append(inflater.decompress(data))
        data = inflater.unused_data
    compressed = [gzip.compress(m, mtime=0) for m in members]
    corrupt = list(compressed)
    corrupt[7] = corrupt[7][:len(corrupt[7]) // 2] + bytes([corrupt[7][len(corrupt[7]) // 2] ^ 0xFF]) + \
        corrupt[7][len(corrupt[7]) // 2 + 1:]
    lying = list(members)
    lying[9] = lying[9].replace(b"Content-Length: ", b"Content-Length: 1", 1)
    not_utf8 = [m[:-40] + b"\xff" + m[-39:] if i % 3 == 0 else m for i, m in enumerate(members)]
    whole = b"".join(compressed)
    files = {"corrupt": b"".join(corrupt), "cut": whole[:len(whole) * 2 // 3],
             "lying": b"".join(gzip.compress(m, mtime=0) for m in lying),
             "not utf-8": b"".join(gzip.compress(m, mtime=0) for m in not_utf8),
             "one stream": gzip.compress(b"".join(members), mtime=0), "uncompressed": b"".join(members)}
    for name, data in files.items():
        fast, fast_counts = _file_outcome(data, ATTRIBUTE_SETS[0])
        plain, plain_counts = _file_outcome(data, None)
        assert fast == plain and fast_counts == plain_counts, name
    assert _file_outcome(files["not utf-8"], None)[1].decode_errors > 5
    assert _file_outcome(files["corrupt"], None)[1].corrupt_members == 1


def _metadata_member(target_uri) -> bytes:
    body = json.dumps(_doc(envelope_extra={"WARC-Header-Metadata": {"WARC-Target-URI": target_uri}})).encode()
    head = (f"WARC/1.0\r\nWARC-Type: metadata\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(head + body + b"\r\n\r\n") + compressor.flush()


def test_a_target_uri_of_another_json_type_costs_no_record(tmp_path):
    """WARC-Target-URI as a list (a repeated header) gives its first string; a number or null no URI; the records
    after them are read (an AttributeError used to end the file at the first)."""
    uris = [["http://x.org/a", "http://x.org/b"], 5, None, [3], "http://y.org/c"]
    counts = ArchiveCounts()
    pages = list(web_pages(io.BytesIO(b"".join(_metadata_member(u) for u in uris)), counts, 1 << 20))
    assert [page.page_url for page in pages] == ["http://x.org/a", "", "", "", "http://y.org/c"]
    assert counts.read_error is None and counts.wat_pages == 5
