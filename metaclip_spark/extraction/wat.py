"""WAT records to image-text pairs, as the plain way reads them (orjson, then webpage.wat_image_pairs), faster.

A WAT record is a JSON document listing every link of its page (anchors, scripts, styles, forms...); about one in
five is an image, and what costs is building Python objects for all of them. Two ways here, each giving exactly the
plain way's page, pairs, counts and errors (tests/test_wat.py compares them on real and hostile records):

- `WatReader.read`: the record's JSON read by msgspec into typed structures that keep only what the pairs need (the
  target URI, HTML-Metadata's Head/Base and, of each link, its path, url and text attributes); everything else is
  skipped without being built. msgspec reads JSON as orjson does (RFC 8259, the last of repeated keys wins) but
  does not check the UTF-8 of what it skips: a record that is not ASCII is first checked whole by simdjson (UTF-8
  and JSON grammar, several GB/s). A record either of them refuses, or of another shape than expected (a link that
  is not an object, a path that is not a string, HTML-Metadata that is not an object...), is read the plain way,
  which decides as it always has.
- `wat_pairs`: the pairs of HTML-Metadata already read as a dict (the plain way), image links picked out without a
  Python step per link; a link list of another shape goes to webpage.wat_image_pairs.

Both give their image links, as (src, text attribute values), to webpage.image_pairs: the one rule that turns an
image into pairs, shared with the HTML path.
"""

from __future__ import annotations

import functools
from itertools import compress, repeat
from operator import attrgetter
from typing import Any

import msgspec
import simdjson

from metaclip_spark.extraction.webpage import (DEFAULT_TEXT_ATTRIBUTES, PageImages, image_pairs, image_values,
                                             page_base, wat_image_pairs, wat_page_base)
from metaclip_spark.extraction.webpage import clear_caches  # noqa: F401 - where the WAT path's callers forget its URLs

IMAGE_PATH = "IMG@/src"  # a path starting so is an image's src (IMG@/src, and IMG@/srcset as webpage reads it)
_startswith = str.startswith
_get = dict.get


def wat_pairs(html_metadata: dict, page_url: str,
              text_attributes: tuple[str, ...] | list[str] = DEFAULT_TEXT_ATTRIBUTES) -> PageImages:
    """webpage.wat_image_pairs(html_metadata, page_url, text_attributes), with less Python per link."""
    base = wat_page_base(html_metadata, page_url)
    links = html_metadata.get("Links") or ()
    try:
        # dict.get and str.startswith raise TypeError on a link that is not an object or a path that is not a
        # string (or links that cannot be iterated): webpage.wat_image_pairs then reads the page its careful way.
        images = list(compress(links, map(_startswith, map(_get, links, repeat("path"), repeat("")),
                                          repeat(IMAGE_PATH))))
    except TypeError:
        return wat_image_pairs(html_metadata, page_url, text_attributes)
    return image_pairs(PageImages(), list(map(image_values(("url", *text_attributes)), images)), base,
                       tuple(text_attributes))


class _Head(msgspec.Struct, gc=False, rename={"base": "Base", "metas": "Metas"}):
    base: Any = None
    metas: msgspec.Raw = msgspec.Raw()  # read only for a page whose pairs are kept (optout/signals.py)


class _WarcHeaders(msgspec.Struct, gc=False, rename={"target_uri": "WARC-Target-URI"}):
    target_uri: Any = None


@functools.lru_cache(maxsize=16)
def _record_decoder(attributes: tuple[str, ...]) -> msgspec.json.Decoder:
    """A decoder of the parts of a WAT record the pairs need, the links with `attributes` as fields a0, a1..."""
    link = msgspec.defstruct("Link", [("path", str, ""), ("url", Any, None)]
                             + [(f"a{i}", Any, None) for i in range(len(attributes))],
                             rename={f"a{i}": name for i, name in enumerate(attributes)}, gc=False)
    html = msgspec.defstruct("HtmlMetadata", [("head", _Head | None, None), ("links", list[link] | None, None)],
                             rename={"head": "Head", "links": "Links"})
    response = msgspec.defstruct("HttpResponseMetadata", [("html", html | None, None),
                                                          ("headers", msgspec.Raw, msgspec.Raw())],
                                 rename={"html": "HTML-Metadata", "headers": "Headers"})
    payload = msgspec.defstruct("PayloadMetadata", [("response", response | None, None)],
                                rename={"response": "HTTP-Response-Metadata"})
    envelope = msgspec.defstruct("Envelope", [("warc_headers", _WarcHeaders | None, None),
                                              ("payload", payload | None, None)],
                                 rename={"warc_headers": "WARC-Header-Metadata", "payload": "Payload-Metadata"})
    return msgspec.json.Decoder(msgspec.defstruct("WatRecord", [("envelope", envelope)],
                                                  rename={"envelope": "Envelope"}))


class WatReader:
    """Reads WAT records' JSON for pages whose pairs take `attributes` (see the module doc). One per file read:
    its simdjson parser is not shared between threads."""

    def __init__(self, attributes: tuple[str, ...] | list[str] = DEFAULT_TEXT_ATTRIBUTES):
        self.attributes = tuple(attributes)
        usable = len(set(self.attributes)) == len(self.attributes) and not {"path", "url"} & set(self.attributes)
        self.decoder = _record_decoder(self.attributes) if usable else None
        self.validator = simdjson.Parser()

    def read(self, payload: bytes):
        """The record's Envelope (typed), or None when it is to be read the plain way."""
        if self.decoder is None:
            return None
        if not payload.isascii():
            try:
                self.validator.parse(payload)  # checks UTF-8 and grammar; its result is dropped at once
            except Exception:  # noqa: BLE001 - whatever simdjson refuses is for the plain way to judge
                return None
        try:
            return self.decoder.decode(payload).envelope
        except Exception:  # noqa: BLE001 - msgspec's DecodeError/ValidationError, RecursionError: the plain way
            return None


def html_of(envelope):
    """HTML-Metadata of a typed Envelope, or None (not a page)."""
    payload = envelope.payload
    response = payload.response if payload is not None else None
    return response.html if response is not None else None


def headers_of(envelope) -> msgspec.Raw:
    """HTTP-Response-Metadata's Headers of a typed Envelope, as raw JSON (empty when absent)."""
    response = envelope.payload.response
    return response.headers if response is not None else msgspec.Raw()


def raw_json(raw: msgspec.Raw):
    """The value of a raw JSON field (None when absent or unreadable)."""
    if not len(raw):
        return None
    try:
        return msgspec.json.decode(raw)
    except Exception:  # noqa: BLE001 - it was read as JSON once: a value msgspec cannot build is no value
        return None


def target_uri_of(envelope):
    """WARC-Header-Metadata's WARC-Target-URI of a typed Envelope, as written (None when absent)."""
    warc_headers = envelope.warc_headers
    return warc_headers.target_uri if warc_headers is not None else None


def page_pairs(page, text_attributes: tuple[str, ...] | list[str] = DEFAULT_TEXT_ATTRIBUTES) -> PageImages:
    """The pairs of a webarchive.WatPage: from its typed HTML-Metadata when it was read for these attributes, else
    from its HTML-Metadata as a dict."""
    typed = page.typed
    if typed is not None and page.attributes == tuple(text_attributes):
        return _typed_pairs(typed, page.page_url, page.attributes)
    return wat_pairs(page.html_metadata, page.page_url, text_attributes)


def _typed_pairs(html, page_url: str, attributes: tuple[str, ...]) -> PageImages:
    """wat_image_pairs of typed HTML-Metadata (a link's path is a string here, its other fields as in the JSON)."""
    head = html.head
    base = page_base(page_url, head.base if head is not None else None)
    images = [link for link in html.links or () if link.path.startswith(IMAGE_PATH)]
    return image_pairs(PageImages(), list(map(_fields_getter(len(attributes)), images)), base, attributes)


@functools.lru_cache(maxsize=16)
def _fields_getter(count: int):
    """A typed link's url and text attribute fields a0..a{count-1}, as a tuple (webpage.image_pairs' image)."""
    if count == 0:
        return lambda link: (link.url,)  # (attrgetter of one name gives the value alone)
    return attrgetter("url", *(f"a{i}" for i in range(count)))
