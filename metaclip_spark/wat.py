"""The image-text pairs of a WAT page: its `IMG@/src` links, exactly as webpage.wat_image_pairs reads them, faster.

A WAT record lists every link of its page (anchors, scripts, styles, forms...); about one in five is an image. What
costs is Python work per link: here the image links are picked out without a Python step per link (C-level map and
compress over the link list), and each image link is read with its lookups bound once per page. Anything the quick
way does not expect (a link that is not an object, a path that is not a string, ...) hands the page to
webpage.wat_image_pairs, which decides as it always has: the pairs, the counts and the errors raised are the same
(tests/test_wat.py compares the two on real and hostile pages).
"""

from __future__ import annotations

from itertools import compress, repeat

from .webpage import (_ABSOLUTE_HTTP, _URL_NOISE, DEFAULT_TEXT_ATTRIBUTES, PageImages, _Resolver, http_url, page_base,
                      wat_image_pairs)

IMAGE_PATH = "IMG@/src"  # a path starting so is an image's src (IMG@/src, and IMG@/srcset as webpage reads it)
_startswith = str.startswith
_get = dict.get
# Image URLs resolved, per site of the base (its scheme and host) and src as written: a site's images recur on its
# pages. Bounded per process (all forgotten at once past the bound).
_SITE_CACHE_ENTRIES = 1 << 16
_site_caches: dict[tuple[str, str], dict[str, str]] = {}
_cached_entries = 0


class _SiteResolver:
    """webpage._Resolver for one page, in front of it a cache by site of what it resolved the same for every page
    of the site: absolute http(s) URLs with a host, and root-relative ones (see webpage._Resolver). A hit costs one
    dictionary look-up; anything else is webpage._Resolver's to resolve."""

    __slots__ = ("resolver", "cache")

    def __init__(self, base: str):
        self.resolver = _Resolver(base)
        # urljoin parses the base first (so does _Resolver, for every src): a base it cannot parse fails here as it
        # would there, at the first image resolved.
        self.cache = _site_caches.get(self.resolver._site()) if base else None

    def __call__(self, src: str) -> str:
        cache = self.cache
        if cache is not None:
            url = cache.get(src)
            if url is not None:
                return url
        url = self.resolver(src)
        if self.resolver.base:
            written = src.strip()
            if "\t" in written or "\n" in written or "\r" in written:
                written = written.translate(_URL_NOISE)
            if _ABSOLUTE_HTTP.match(written) or (written[:1] == "/" and written[1:2] != "/"):
                self._remember(src, url)
        return url

    def _remember(self, src: str, url: str) -> None:
        global _cached_entries
        if _cached_entries >= _SITE_CACHE_ENTRIES:
            _site_caches.clear()
            _cached_entries = 0
            self.cache = None
        if self.cache is None:
            self.cache = _site_caches.setdefault(self.resolver._site(), {})
        self.cache[src] = url
        _cached_entries += 1


def wat_pairs(html_metadata: dict, page_url: str,
              text_attributes: tuple[str, ...] | list[str] = DEFAULT_TEXT_ATTRIBUTES) -> PageImages:
    """webpage.wat_image_pairs(html_metadata, page_url, text_attributes), with less Python per link."""
    head = html_metadata.get("Head") or {}
    base = page_base(page_url, head.get("Base") if isinstance(head, dict) else None)
    links = html_metadata.get("Links") or ()
    try:
        # dict.get and str.startswith raise TypeError on a link that is not an object or a path that is not a
        # string (or links that cannot be iterated): webpage.wat_image_pairs then reads the page its careful way.
        images = list(compress(links, map(_startswith, map(_get, links, repeat("path"), repeat("")),
                                          repeat(IMAGE_PATH))))
    except TypeError:
        return wat_image_pairs(html_metadata, page_url, text_attributes)
    page = PageImages()
    if not images:
        return page
    resolve = None
    pairs = page.pairs
    append = pairs.append
    no_src = no_text = non_http = 0
    attributes = tuple(text_attributes)
    for link in images:
        src = link.get("url")
        if src is None or not src.strip():
            no_src += 1
            continue
        texts = None
        for attribute in attributes:
            value = link.get(attribute)
            if value and isinstance(value, str):
                value = value.strip()
                if value:
                    if texts is None:
                        texts = [(value, attribute)]
                    else:
                        texts.append((value, attribute))
        if texts is None:
            no_text += 1
            continue
        if resolve is None:
            resolve = _SiteResolver(base)
        url = resolve(src)
        if not http_url(url):
            non_http += 1
            continue
        for text, attribute in texts:
            append((url, text, attribute))
    page.img_tags, page.no_src, page.no_text, page.non_http_url = len(images), no_src, no_text, non_http
    return page


def clear_caches() -> None:
    """Forget the image URLs resolved (benchmarks and tests start as a fresh worker does)."""
    global _cached_entries
    _site_caches.clear()
    _cached_entries = 0
