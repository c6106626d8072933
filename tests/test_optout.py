"""AI-training opt-outs: the signals a page shows, read the same on the WARC and the WAT path, and the verdict of a
configuration on them (optout/signals.py). Real pages of tests/data/optout in real web archives (tests/optout_archives.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from wat_writer import write_wat

from metaclip_spark.optout import signals
from metaclip_spark.config import load_config
from metaclip_spark.errors import ConfigError
from metaclip_spark.extraction.job import PAIR_COLUMNS, ExtractJob, FileStats, file_pairs
from metaclip_spark.ingestion.manifest import ManifestFile
from metaclip_spark.extraction.webarchive import ArchiveCounts, web_pages
from metaclip_spark.extraction.webpage import html_image_pairs, page_metas
from optout_archives import ALT, CASES, LATE_META, write_warc

SIGNALS = PAIR_COLUMNS.index(signals.SIGNALS_COLUMN)
PAGE_URL = PAIR_COLUMNS.index("page_url")


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("optout")
    warc = write_warc(directory / "optout.warc.gz")
    wat = directory / "optout.warc.wat.gz"
    write_wat(warc, wat)
    return warc, wat


def _signals_by_page(path: Path) -> dict[str, list[str] | None]:
    job = ExtractJob.from_config(load_config().updated({"extract": {"languages": []}}))
    stats = FileStats("f", str(path))
    rows = list(file_pairs(ManifestFile(0, "f", str(path), "CC-MAIN-2025-13"), job, stats))
    assert stats.status == "ok" and len(rows) == len(CASES)
    return {row[PAGE_URL]: row[SIGNALS] for row in rows}


def test_each_real_page_gives_its_signals_on_the_warc_and_the_wat_path(archives):
    warc, wat = archives
    expected = {url: signals for url, _, _, signals in CASES}
    assert _signals_by_page(warc) == expected
    assert _signals_by_page(wat) == expected


def test_the_plain_wat_reading_gives_the_same_signals(archives):
    """A WAT record read the plain way (its JSON as a dict: the fallback of records the fast reader refuses)."""
    from metaclip_spark.extraction.job import page_signals
    from metaclip_spark.extraction.wat import page_pairs

    _, wat = archives
    found = {}
    with open(wat, "rb") as stream:
        for page in web_pages(stream, ArchiveCounts(), 5_000_000, text_attributes=None):
            assert page.typed is None
            found[page.page_url] = page_signals(page, page_pairs(page))
    assert found == {url: signals for url, _, _, signals in CASES}


def test_the_head_is_read_whole_when_the_parse_stopped_after_the_last_image():
    images = html_image_pairs(LATE_META, "https://late.example/")
    assert images.cut_at > 0 and len(images.pairs) == 1  # the fast path cut the parse after the image
    assert page_metas(images) == [("robots", "noimageai")]


def test_a_page_nested_too_deep_still_gives_its_head_metas():
    """A page nested past the parser's limit is parsed as its images alone; its meta tags are read the same way."""
    page = (b'<html><head><meta name="robots" content="noai"><!-- <meta name="robots" content="noindex"> -->'
            b"</head><body>" + b"<div>" * 5000 + f'<img src="/deep.jpg" alt="{ALT}">'.encode() + b"</div>" * 5000
            + b"</body></html>")
    images = html_image_pairs(page, "https://deep.example/")
    assert images.too_deep and len(images.pairs) == 1
    assert page_metas(images) == [("robots", "noai")]


def test_headers_are_read_as_google_and_the_drafts_write_them():
    assert signals.x_robots_tag_signals("noindex, GPTBot: noai, noimageai, unavailable_after: 25 Jun 2030") == [
        "x-robots-tag:noindex", "x-robots-tag@gptbot:noai", "x-robots-tag@gptbot:noimageai"]
    assert signals.x_robots_tag_signals("max-image-preview: large, NOAI") == ["x-robots-tag:noai"]
    assert signals.content_usage_signals('train-ai=n;exp="x", search=y, train-genai=N') == [
        "content-usage:train-ai=n", "content-usage:train-genai=n"]
    assert signals.header_signals(tdm_reservations=["0"]) == []
    assert signals.meta_signals([("ROBOTS", "NoAI NoImageAI"), ("tdm-reservation", " 1 "), (None, "noai")]) == [
        "robots:noai", "robots:noimageai", "tdm-reservation:meta"]


def _policy(**optout_settings) -> signals.Policy:
    return signals.Policy.from_settings(load_config(overrides={"optout": optout_settings}).optout)


def test_the_default_configuration_refuses_ai_opt_outs_only():
    policy = _policy()
    refused = {url: policy.verdict(signals) for url, _, _, signals in CASES}
    assert refused == {
        "https://licence.example/001": "tdm-reservation:meta",
        "https://nineplus.example/002": None,  # noindex alone
        "https://georges.example/003": "robots:noai",
        "https://healsdata.example/004": "robots:noai",
        "https://taosband.example/005": None,
        "https://andrea.example/006": "robots:noai",
        "https://yjmini.example/007": "tdm-reservation:meta",
        "https://bardejov.example/008": "robots:noai",
        "https://macarons.example/009": None,  # tdm-policy without tdm-reservation
        "https://bardejov.example/010": "robots:noai",
        "https://soberana.example/011": "robots:noai",
        "https://regen.example/012": None,
        "https://headers.example/x-robots": "x-robots-tag:noai",
        "https://headers.example/x-robots-agent": "x-robots-tag@gptbot:noimageai",  # GPTBot is a default agent
        "https://headers.example/x-robots-google": None,  # googlebot is not an AI-training crawler
        "https://headers.example/tdm": "tdm-reservation:header",
        "https://headers.example/tdm-0": None,
        "https://headers.example/content-usage": "content-usage:train-ai=n",
        "https://headers.example/late-meta": "robots:noimageai",
    }
    assert signals.signal_kind("x-robots-tag@gptbot:noimageai") == "x-robots-tag"
    assert signals.signal_agent("x-robots-tag@gptbot:noimageai") == "gptbot"
    assert signals.signal_agent("robots:noai") == "*" and signals.signal_kind("robots:noai") == "robots-meta"


def test_the_configuration_chooses_directives_agents_and_protocols():
    ccbot_nofollow = ["robots:noai", "robots:noimageai", "robots@ccbot:nofollow"]
    assert _policy(directives=["nofollow"]).verdict(ccbot_nofollow) == "robots@ccbot:nofollow"
    assert _policy(directives=["nofollow"], agents=["GPTBot"]).verdict(ccbot_nofollow) is None
    assert _policy(directives=["NoIndex"], agents=["Googlebot"]).verdict(["x-robots-tag@googlebot:noindex"]) \
        == "x-robots-tag@googlebot:noindex"
    assert _policy(tdm_reservation=False).verdict(["tdm-reservation:meta"]) is None
    assert _policy(content_usage=["train-genai"]).verdict(["content-usage:train-ai=n"]) is None
    off = _policy(honour_page_signals=False)
    assert not off.enabled and off.verdict(["robots:noai", "tdm-reservation:header"]) is None
    assert _policy().digest() != _policy(directives=["noai"]).digest()


def test_a_directive_extraction_does_not_record_stops_the_run():
    with pytest.raises(ConfigError, match="optout.directives"):
        load_config(overrides={"optout": {"directives": ["noai", "nocache"]}})
