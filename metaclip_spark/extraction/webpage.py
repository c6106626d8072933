"""Image-text pairs of one web page: `<img>` elements of an HTML document, or the `IMG@/src` links of a WAT record.

Pure functions (no Spark, no I/O): bytes and URLs in, pairs and counts out. The rules are the curation spec's
section 1: `src` resolved against `<base href>` or the page URL, http(s) only; texts from `alt`, `title` and
`data-image-title`, stripped, empty ones skipped; one pair per (image, text), tagged with its attribute. That rule
has one home, `image_pairs`, which every path feeds with its images as (src, text values): the HTML path here, the
WAT path's plain reading here (`wat_image_pairs`) and its faster ones in extraction/wat.py.
"""

from __future__ import annotations

import codecs
import functools
import operator
import re
from dataclasses import dataclass, field
from itertools import accumulate
from urllib.parse import urljoin, urlparse

from selectolax.lexbor import LexborHTMLParser

DEFAULT_TEXT_ATTRIBUTES = ("alt", "title", "data-image-title")

# A page declares its charset in a <meta> near the top; the HTML standard's prescan reads the first 1024 bytes,
# real pages put long scripts first, so look a little further.
_META_SCAN_BYTES = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+\-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Labels browsers read as a larger encoding (WHATWG Encoding standard): pages labelled gb2312 use GBK
# characters, latin-1 pages use windows-1252 punctuation. Decoding with the narrow codec garbles them.
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "csgb2312": "gb18030",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-9": "cp1254", "iso-8859-11": "cp874", "tis-620": "cp874",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "windows-31j": "cp932",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "big5": "big5hkscs", "x-user-defined": "cp1252",
    # A <meta> cannot be read as UTF-16 bytes; a page whose meta says so is ASCII-compatible (WHATWG rule).
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8",
}
_URL_NOISE = str.maketrans("", "", "\t\n\r")
# An HTML parser checks the stack of open elements at each block start tag, so a page nesting block elements
# thousands deep (closed or not) parses in quadratic time: 30,000 nested <ul> take 2.5 s, 250,000 minutes. Past
# this depth only the page's <img> and <base> tags are parsed (what the pairs need), without the nesting. The
# depth is looked for only on pages with that many tags: one C-level count on the others.
_NESTING_LIMIT = 4096
# Start and end tags of elements that can hold others (void elements never open): their depth, counted this
# simply, over-counts pages that leave <p> or <li> open, which then only take the images-only parse.
_OPENING_TAG = re.compile(r"<(/?)(?!(?:img|br|hr|meta|link|input|area|base|col|embed|param|source|track|wbr|keygen)"
                          r"\b)[a-zA-Z]", re.IGNORECASE)
# Text the parser never reads as elements: comments, scripts, styles, templates and other raw text.
_NOT_ELEMENTS = re.compile(r"<!--.*?-->|<(script|style|template|textarea|title|xmp)\b.*?</\1\s*>",
                           re.IGNORECASE | re.DOTALL)
# A start tag as the tokenizer reads it: quoted attribute values may hold ">" (possessive: no backtracking).
_IMG_OR_BASE_TAG = re.compile(r"""<(?:img|base)\b(?:[^>"']|"[^"]*"|'[^']*')*+>""", re.IGNORECASE)
# Only an <img> or <image> start tag makes an img element, and its name starts "<im" in any case: a page without
# one cannot give a pair, and is not parsed (its <img> count, 0, is the same).
_IMAGE_TAG_START = re.compile(rb"<im", re.IGNORECASE)
_IMAGE_TAG_START_TEXT = re.compile(r"<im", re.IGNORECASE)
# The parse stops after a page's last <img>/<image>/<base> start tag when that provably gives the same images (see
# _parse_to_last_image): no image element can start after it, and what follows cannot move or change the ones before.
# A page parsed this way is cut at the end of that tag and given a sentinel start tag, "x" and U+10FFFF (a code point
# only a page holding its UTF-8 bytes could name a tag with): the sentinel is an element, last in the document, only
# when the tokenizer was between tokens at the cut; its ancestors are then the elements open there.
_TAG_END = re.compile(rb"""(?:[^>"']|"[^"]*"|'[^']*')*+>""")
_CUT_SENTINEL_CHAR = b"\xf4\x8f\xbf\xbf"
_CUT_SENTINEL = b"<x" + _CUT_SENTINEL_CHAR + b">"
_CUT_SENTINEL_TAG = "x\U0010ffff"
_CUT_MIN_SAVED = 4096  # bytes left unparsed for a cut to pay for its checks
# Formatting elements (the adoption agency moves the elements below one of them, at a misnested end tag) and the
# elements below which the agency leaves the nodes where they are (not "special" in the HTML standard): open at the
# cut, a formatting element may only have these below it. A <select>, <option> or <optgroup> open at the cut may
# yet have its <selectedcontent> copied anew (Lexbor's DOM mutation events).
_FORMATTING = frozenset(("a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt",
                         "u"))
_NOT_SPECIAL = _FORMATTING | frozenset(("span", "label", "abbr", "cite", "dfn", "kbd", "mark", "q", "samp", "sub", "sup",
                                        "var", "time", "data", "bdi", "bdo", "ins", "del", "ruby", "rt", "rp",
                                        "picture"))
_OPEN_AT_CUT_REFUSED = frozenset(("select", "option", "optgroup"))
# Image URLs resolved (see _Resolver), with whether each is http(s), by src as written: absolute ones per scheme of
# the base ((scheme, None)), root-relative ones per site of the base ((scheme, host)). Bounded per process (all
# forgotten at once past the bound).
_ABSOLUTE_HTTP = re.compile(r"https?://[^/?#]")
_SITE_CACHE_ENTRIES = 1 << 16
_site_caches: dict[tuple[str, str | None], dict[str, tuple[str, bool]]] = {}
_NOTHING: dict = {}  # (no URL remembered yet)
_cached_entries = 0
_ATTRIBUTES = operator.attrgetter("attributes")  # an element's attributes, as a dict


@dataclass
class PageImages:
    """The pairs of one page and what its `<img>` elements lost, counted in images."""

    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (image URL, text, attribute)
    img_tags: int = 0
    no_src: int = 0
    non_http_url: int = 0
    no_text: int = 0
    too_deep: bool = False  # nested past _NESTING_LIMIT: its <img> and <base> tags parsed without the nesting
    # What page_metas reads, kept from the parse (HTML pages with an image tag): the tree, the markup parsed and
    # where the tree was cut in its UTF-8 bytes (0: the whole page).
    tree: LexborHTMLParser | None = field(default=None, repr=False)
    markup: bytes | str | None = field(default=None, repr=False)
    cut_at: int = 0


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when the label is unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_charset(html: bytes, http_charset: str | None = None) -> str | None:
    """The codec a page declares: byte order mark, then HTTP header, then <meta> tag; None when none is usable."""
    for bom, name in _BOMS:
        if html.startswith(bom):
            return name
    declared = normalize_charset(http_charset)
    if declared:
        return declared
    match = _META_CHARSET.search(html, 0, _META_SCAN_BYTES)
    if match:
        return normalize_charset(match.group(1).decode("ascii"))  # (the pattern takes ASCII bytes only)
    return None


def _undeclared(html: bytes) -> tuple[str, str | None]:
    """(codec, text when already decoded) for a page declaring nothing: UTF-8 if it is valid UTF-8, else cp1252."""
    try:
        return "utf-8", html.decode("utf-8")
    except UnicodeDecodeError as e:
        # A page cut by a size cap or truncation may end inside a UTF-8 sequence (its last 1-3 bytes): still UTF-8.
        if e.reason == "unexpected end of data":
            return "utf-8", None
        return "cp1252", None  # the web's default when nothing is declared (HTML standard)


def sniff_charset(html: bytes, http_charset: str | None = None) -> str:
    """The codec to decode `html` with: byte order mark, HTTP header, <meta> tag, then UTF-8 if valid, else cp1252."""
    return declared_charset(html, http_charset) or _undeclared(html)[0]


def decode_html(html: bytes, http_charset: str | None = None) -> str:
    """The page as text; undecodable bytes become U+FFFD rather than losing the page."""
    codec = declared_charset(html, http_charset)
    if codec is None:
        codec, text = _undeclared(html)
        if text is not None:
            return text
    return html.decode(codec, errors="replace")


def parser_input(html: bytes, http_charset: str | None = None) -> bytes | str:
    """What the HTML parser reads: a UTF-8 page's own bytes (without a byte order mark), else the decoded text.

    Lexbor reads bytes as UTF-8 the way `bytes.decode("utf-8", "replace")` does (a bad sequence becomes U+FFFD and
    the ASCII after it is kept: tests/test_webpage.py checks it byte by byte), so handing it the bytes gives the
    tree of the decoded text without decoding and re-encoding the page, the common case on today's web.
    """
    codec = declared_charset(html, http_charset)
    if codec is None:
        if html.isascii():
            return html  # valid UTF-8 as it is, without decoding it to find out
        codec, text = _undeclared(html)
        if text is not None:
            return html
    if codec == "utf-8":
        return html
    if codec == "utf-8-sig" and html.startswith(codecs.BOM_UTF8):
        return html[len(codecs.BOM_UTF8):]
    return html.decode(codec, errors="replace")


def http_url(url: str) -> bool:
    return url[:7].lower() == "http://" or url[:8].lower() == "https://"


def page_base(page_url: str, base_href: str | None) -> str:
    """The URL relative image URLs resolve against: `<base href>` (itself relative to the page) when usable."""
    if base_href:
        base = urljoin(page_url, base_href.strip().translate(_URL_NOISE))
        if http_url(base):
            return base
    return page_url


def resolve_image_url(base: str, src: str) -> str:
    """`src` as an absolute URL; the HTML standard strips surrounding whitespace and drops tabs and newlines."""
    src = src.strip()
    if "\t" in src or "\n" in src or "\r" in src:
        src = src.translate(_URL_NOISE)
    return urljoin(base, src)


class _Resolver:
    """resolve_image_url for the images of one page, with whether each URL is http(s), remembering what it resolved.

    urljoin's result depends on the base only through its scheme for an absolute http(s) URL with a host (a CDN's,
    a share button's: they recur across sites), and only through its scheme and host for a root-relative one
    ("/img/logo.png": a site's own images recur on each of its pages): those are remembered per process, by src as
    written, so that a known image is looked up without touching its src; other relative URLs once per page.
    """

    __slots__ = ("base", "site", "absolute", "rooted", "relative")

    def __init__(self, base: str):
        self.base = base
        self.site: tuple[str, str] | None = None
        if base:
            # urljoin parses the base first: a base it cannot parse fails here as it would there
            scheme, host = self._site()
            self.absolute = _site_caches.get((scheme, None), _NOTHING)
            self.rooted = _site_caches.get((scheme, host), _NOTHING)
        else:
            self.absolute = self.rooted = _NOTHING
        self.relative: dict[str, tuple[str, bool]] = {}

    def __call__(self, src: str) -> str:
        return self.resolve(src)[0]

    def resolve(self, src: str) -> tuple[str, bool]:
        """(resolve_image_url(base, src), whether it is an http(s) URL)."""
        found = self.absolute.get(src) or self.rooted.get(src)
        if found is not None:
            return found
        written = src.strip()
        if "\t" in written or "\n" in written or "\r" in written:
            written = written.translate(_URL_NOISE)
        if self.base:
            first = written[:1]
            if first == "/" and written[1:2] != "/":
                found = self._remember("rooted", self.site, src, urljoin(self.base, written))
            elif first == "h" and _ABSOLUTE_HTTP.match(written):
                found = self._remember("absolute", (self.site[0], None), src, urljoin(self.base, written))
            if found is not None:
                return found
        found = self.relative.get(written)
        if found is None:
            url = urljoin(self.base, written)
            found = self.relative[written] = (url, http_url(url))
        return found

    def _site(self) -> tuple[str, str]:
        if self.site is None:
            self.site = urlparse(self.base)[:2]
        return self.site

    def _remember(self, kind: str, key: tuple, src: str, url: str) -> tuple[str, bool]:
        global _cached_entries
        if _cached_entries >= _SITE_CACHE_ENTRIES:
            clear_caches()
            self.absolute = self.rooted = _NOTHING
        cache = getattr(self, kind)
        if cache is _NOTHING:
            cache = _site_caches.setdefault(key, {})
            setattr(self, kind, cache)
        found = cache[src] = (url, http_url(url))
        _cached_entries += 1
        return found


def clear_caches() -> None:
    """Forget the image URLs resolved (benchmarks and tests start as a fresh worker does)."""
    global _cached_entries
    _site_caches.clear()
    _cached_entries = 0


@functools.lru_cache(maxsize=16)
def image_values(names: tuple[str, ...]):
    """A function giving the values of `names` in a mapping (an element's attributes, a WAT link), None where absent,
    as a tuple: image_pairs' image. Spelled out for the usual few names: tuple(map(found.get, names)) costs twice as
    much per image, the lookups aside (a map object, and a tuple allocated to a guessed size and shrunk)."""
    if len(names) == 2:
        a, b = names
        return lambda found: (found.get(a), found.get(b))
    if len(names) == 3:
        a, b, c = names
        return lambda found: (found.get(a), found.get(b), found.get(c))
    if len(names) == 4:
        a, b, c, d = names
        return lambda found: (found.get(a), found.get(b), found.get(c), found.get(d))
    return lambda found: tuple(map(found.get, names))


def image_pairs(page: PageImages, images: list[tuple], base: str, attributes: tuple[str, ...]) -> PageImages:
    """The pair emission rule, one for every path: a page's `<img>` elements (or WAT image links), each given as
    (src, the values of `attributes` in order, None where absent), to (URL, text, attribute) pairs added to `page`,
    in order, with what the images lost counted.

    An image without a src (or a blank one) is counted `no_src`; its texts are its attribute values that are
    strings, stripped, empty ones skipped, one pair per value found; an image without one is counted `no_text`; its
    src is resolved against `base` (stripped, tabs and newlines dropped) and an image whose URL is not http(s) is
    counted `non_http_url`. The base is parsed at the first image with a text: a page whose base urljoin cannot
    parse fails there (ValueError), and only if it has one."""
    page.img_tags = len(images)
    if not images:
        return page
    count = len(attributes)
    resolve = None
    append = page.pairs.append
    no_src = no_text = non_http = 0
    for values in images:
        src = values[0]
        if src is None or not src.strip():
            no_src += 1
            continue
        texts = None
        if values.count(None) != count:  # most images have no text at all
            for value, attribute in zip(values[1:], attributes):
                if value and isinstance(value, str):
                    value = value.strip()
                    if value:
                        if texts is None:
                            texts = [(value, attribute)]
                        else:
                            texts.append((value, attribute))
        if texts is None:
            no_text += 1  # before resolving: most images have no text, and urljoin is the costly step
            continue
        if resolve is None:
            resolve = _Resolver(base).resolve
        url, is_http = resolve(src)
        if not is_http:
            non_http += 1
            continue
        for text, attribute in texts:
            append((url, text, attribute))
    page.no_src, page.no_text, page.non_http_url = no_src, no_text, non_http
    return page


def nested_too_deep(html: str) -> bool:
    """Whether elements nest past _NESTING_LIMIT, closed or not (pages with fewer tags are not scanned)."""
    tags = html.count("<")
    if len(html) < 5 * _NESTING_LIMIT or tags < _NESTING_LIMIT:
        return False
    if tags - html.count("</") < _NESTING_LIMIT:
        return False  # each start tag counted is a "<" not followed by "/": too few to nest that deep
    # The depth after each tag, an end tag never taking it below 0, is the running sum of +1/-1 less the lowest
    # the sum (or 0) has been so far: computed without a Python step per tag.
    sums = list(accumulate(-1 if closing else 1 for closing in _OPENING_TAG.findall(html)))
    if not sums:
        return False
    lowest = accumulate(sums, min, initial=0)
    next(lowest)
    return max(map(operator.sub, sums, map(min, lowest, sums))) >= _NESTING_LIMIT


def _images_only(html: str) -> str:
    """The page's <img> and <base> tags alone, in order, as the parser would have met them."""
    return "".join(_IMG_OR_BASE_TAG.findall(_NOT_ELEMENTS.sub("", html)))


def _nested_too_deep(markup: bytes | str) -> bool:
    """nested_too_deep of the page the parser reads (UTF-8 bytes are decoded only for pages with that many tags)."""
    if isinstance(markup, str):
        return nested_too_deep(markup)
    # the text is no longer than its UTF-8 bytes and has the same number of "<"
    if len(markup) < 5 * _NESTING_LIMIT or markup.count(b"<") < _NESTING_LIMIT:
        return False
    return nested_too_deep(markup.decode("utf-8", errors="replace"))


def _has_image_tag(markup: bytes | str) -> bool:
    if isinstance(markup, bytes):
        return b"<img" in markup or b"<IMG" in markup or _IMAGE_TAG_START.search(markup) is not None
    return "<img" in markup or "<IMG" in markup or _IMAGE_TAG_START_TEXT.search(markup) is not None


def _parse_to_last_image(markup: bytes | str) -> LexborHTMLParser:
    """_parsed_to_last_image's tree."""
    return _parsed_to_last_image(markup)[0]


def _parsed_to_last_image(markup: bytes | str) -> tuple[LexborHTMLParser, int]:
    """(tree, where it was cut in the UTF-8 bytes, or 0 when it holds the whole page): the Lexbor tree of `markup`,
    parsed up to the end of its last <img>/<image>/<base> start tag when that gives the same image and base elements,
    in the same order with the same attributes; else of the whole page.

    Why it is the same: (1) the sentinel is an element only when the tokenizer was in the data state at the cut, so the
    tokens before the cut are those of the whole page; (2) no start tag after the cut names an img, image or base
    element (none of them starts there, in any case); (3) what comes after the cut cannot move, remove or change the
    elements before it: only the adoption agency moves elements that exist (a furthest block open at the cut below a
    formatting element open at the cut: refused), a <frameset> removes <body> only while no <img> has been seen, and
    Lexbor's mutation events only copy an <option> into its <select>'s <selectedcontent> (a select open at the cut:
    refused). The elements open at the cut are the sentinel's ancestors when it is the document's last node; a cut
    that shows anything else is thrown away and the whole page parsed.
    """
    data = markup if isinstance(markup, bytes) else markup.encode("utf-8", "ignore")  # what selectolax parses
    size = len(data)
    if size < 2 * _CUT_MIN_SAVED:
        return LexborHTMLParser(data), 0
    # The last "<im" or "<base" in any case: from the last "<im" (or "<IM", or the start), its tail lowered, so that the
    # search costs about the tail it may save from the parse.
    start = data.rfind(b"<im")
    if start < 0:
        start = max(data.rfind(b"<IM"), 0)
    # Tails too short to cut return before they are lowered and searched, a shortcut (the cut's own check below gives
    # the same answer, as the tag ends after its start): 42 of the 55 pages with an image in the bench's one-copy WARC
    # end within 4 KiB of their last one.
    if size - start < _CUT_MIN_SAVED:
        return LexborHTMLParser(data), 0
    tail = data[start:].lower()
    last = max(tail.rfind(b"<im"), tail.rfind(b"<base"))
    if last < 0 or size - (start + last) < _CUT_MIN_SAVED:  # (no image tag: not a page html_image_pairs parses)
        return LexborHTMLParser(data), 0
    end = _TAG_END.match(data, start + last + 1)
    # cut where that leaves _CUT_MIN_SAVED bytes unparsed; a page that may name a tag with the sentinel's character (its
    # first byte, looked for alone, is rare) is not cut
    if end is None or size - end.end() < _CUT_MIN_SAVED or data.find(_CUT_SENTINEL_CHAR[:1], 0, end.end()) >= 0:
        return LexborHTMLParser(data), 0
    tree = LexborHTMLParser(b"".join((memoryview(data)[:end.end()], _CUT_SENTINEL)))
    node, formatting = tree.root, False
    while node is not None and (child := node.last_child) is not None:
        tag = node.tag
        if tag in _OPEN_AT_CUT_REFUSED or (formatting and tag not in _NOT_SPECIAL):
            return LexborHTMLParser(data), 0
        formatting = formatting or tag in _FORMATTING
        node = child
    if node is not None and node.tag == _CUT_SENTINEL_TAG:
        return tree, end.end()
    return LexborHTMLParser(data), 0


def html_image_pairs(html: str | bytes, page_url: str, http_charset: str | None = None,
                     text_attributes: tuple[str, ...] | list[str] = DEFAULT_TEXT_ATTRIBUTES) -> PageImages:
    """Every `<img>` of an HTML page as (absolute URL, text, attribute) pairs, in document order."""
    markup = parser_input(html, http_charset) if isinstance(html, bytes) else html
    too_deep = _nested_too_deep(markup)
    page = PageImages(too_deep=too_deep)
    if not _has_image_tag(markup):
        return page
    if too_deep:
        text = markup if isinstance(markup, str) else markup.decode("utf-8", errors="replace")
        tree = LexborHTMLParser(_images_only(text))
        page.markup = text  # (page_metas reads its meta tags as its images are read)
    else:
        tree, page.cut_at = _parsed_to_last_image(markup)
        page.tree, page.markup = tree, markup
    # The document's base URL is its first <base href> (HTML standard): in the head, or after it on a careless page, in
    # any case. Most pages have none: the walk for the tag name says so without starting the CSS engine.
    base_href = next((found["href"] for found in map(_ATTRIBUTES, tree.tags("base")) if "href" in found), None)
    base = page_base(page_url, base_href)
    # (tags: what css("img") finds, an "img" element being in the HTML namespace, in document order)
    values = image_values(("src", *text_attributes))
    return image_pairs(page, [values(found) for found in map(_ATTRIBUTES, tree.tags("img"))], base,
                       tuple(text_attributes))


# A meta start tag as the tokenizer reads it (quoted values may hold ">").
_META_TAG = re.compile(r"""<meta\b(?:[^>"']|"[^"]*"|'[^']*')*+>""", re.IGNORECASE)


# Lexbor's id of the tag name "meta": a child compared by id, not by name (a string made per child), in page_metas.
_META_TAG_ID = LexborHTMLParser("<meta>").tags("meta")[0].tag_id


def _metas_of(elements) -> list[tuple]:
    found = []
    for meta in elements:
        attributes = meta.attributes
        content = attributes.get("content")
        if content is not None:
            found.append((attributes.get("name"), content))
    return found


def page_metas(page: PageImages) -> list[tuple]:
    """(name, content) of the `<meta>` elements of the head of the page html_image_pairs read (those with a content),
    in document order (None for a missing name).

    The head, where the robots and TDMRep metas belong, is read from the tree already parsed, its children walked
    (metas are children of the head): a few microseconds, where starting the tree's CSS engine, or walking a whole
    page's tree, costs five to ten times more. A tree cut after the page's last image holds the whole head: an <img>
    start tag ends the head (HTML standard, "in head" insertion mode), so the head was closed before the cut. A page
    nested too deep (parsed as its images alone) gives the meta tags found outside comments and raw text, parsed
    alone, as its images are."""
    if page.markup is None:
        return []
    if page.too_deep:
        tree = LexborHTMLParser("".join(_META_TAG.findall(_NOT_ELEMENTS.sub("", page.markup))))
        return _metas_of(tree.tags("meta"))
    head = page.tree.head
    return _metas_of(node for node in head.iter() if node.tag_id == _META_TAG_ID) if head is not None else []


def wat_page_base(html_metadata: dict, page_url: str) -> str:
    """page_base of a WAT record's page: HTML-Metadata's Head/Base (when Head is an object), else its URL."""
    head = html_metadata.get("Head") or {}
    return page_base(page_url, head.get("Base") if isinstance(head, dict) else None)


def wat_image_pairs(html_metadata: dict, page_url: str,
                    text_attributes: tuple[str, ...] | list[str] = DEFAULT_TEXT_ATTRIBUTES) -> PageImages:
    """The `IMG@/src` links of a WAT record's HTML-Metadata (already UTF-8 JSON) as pairs, like the HTML ones."""
    base = wat_page_base(html_metadata, page_url)
    page = PageImages()
    # Most links are anchors, scripts and styles: only the image links are looked at past their path. A link that is
    # not an object, or a path that is not a string, stops the quick filter and the careful one decides.
    links = html_metadata.get("Links") or ()
    try:
        images = [link for link in links if link.get("path", "").startswith("IMG@/src")]
    except AttributeError:
        images = [link for link in links if isinstance(link, dict)
                  and isinstance(path := link.get("path"), str) and path.startswith("IMG@/src")]
    return image_pairs(page, list(map(image_values(("url", *text_attributes)), images)), base, tuple(text_attributes))
