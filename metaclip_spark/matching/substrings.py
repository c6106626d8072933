"""MetaCLIP substring matching (curation spec, section 3), with an Aho-Corasick automaton.

A text matches an entry when " entry " is a substring of the spaced text. Matching is case-sensitive, at token
boundaries only, and yields the SET of matched entry ids (an entry counts at most once per text).

Worldwide (MetaCLIP 2): the text is stripped first, and an entry is padded with a space only on an edge whose
character is not a "no-space" character (CJK, Thai, Lao, Burmese, Khmer, Tibetan, punctuation, as the reference
has them; kana too when asked for), so "苹果" matches inside "我喜欢吃苹果". Each text is matched against its
own language's list.
"""

from __future__ import annotations

import string
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter

import ahocorasick

# MetaCLIP keeps these seven characters as tokens, padding them with one space on each side.
PUNCTUATION_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
# ... and turns these into spaces.
CHARACTERS_TO_SPACE = ("\t", "\n", "\r")


def space_text(text: str) -> str:
    """MetaCLIP's "spacing": pad both ends, wrap the seven characters, blank tab/newline/CR. Nothing else."""
    spaced = f" {text} "
    for char in PUNCTUATION_TO_WRAP:
        spaced = spaced.replace(char, f" {char} ")
    for char in CHARACTERS_TO_SPACE:
        spaced = spaced.replace(char, " ")
    return spaced


# space_text's replacements as (character, replacement) pairs, in its order (EntryMatcher.match_many inlines it).
_REPLACEMENTS = tuple((char, f" {char} ") for char in PUNCTUATION_TO_WRAP) + tuple((c, " ") for c in CHARACTERS_TO_SPACE)
_SECOND = itemgetter(1)


# No-space characters of MetaCLIP 2 (curation spec, section 3): an entry edge on one of these gets no space.
REFERENCE_NO_SPACE_RANGES = (
    # CJK, block by block as the reference lists them: it leaves out two unassigned stretches (2A6E0-2A6FF,
    # 2FE0-2FEF), so do we.
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2EBEF), (0xF900, 0xFAFF),
    (0x2E80, 0x2FDF), (0x2FF0, 0x2FFF),
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF),  # Thai .. Tibetan
)
# Hiragana, Katakana (and its phonetic extensions), half-width Katakana: the reference omits them, so a Japanese
# entry ending in kana matches inside running Japanese text only where a no-space character or a space is beside
# it. Added only when `kana` is asked for (worldwide.kana_no_space): then kana-only entries (particles, tokenizer
# fragments) flood Japanese matches (docs/worldwide.md).
KANA_RANGES = ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF65, 0xFF9F))
FULL_WIDTH_MARKS = frozenset("，。、；：？！“”‘’（）【】《》〈〉「」『』～—")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def is_no_space(char: str, kana: bool = False) -> bool:
    """True for a character written without spaces around it (MetaCLIP 2's ranges, plus kana when `kana`)."""
    if char in _ASCII_PUNCTUATION or char in FULL_WIDTH_MARKS:
        return True
    code = ord(char)
    ranges = REFERENCE_NO_SPACE_RANGES + KANA_RANGES if kana else REFERENCE_NO_SPACE_RANGES
    return any(low <= code <= high for low, high in ranges)


def padded_entry(entry: str, worldwide: bool = False, kana: bool = False) -> str:
    """The string searched for in spaced texts: " entry " (v1); worldwide, a space only on an edge that needs one."""
    if not worldwide or not entry:
        return f" {entry} "
    return ("" if is_no_space(entry[0], kana) else " ") + entry + ("" if is_no_space(entry[-1], kana) else " ")


def prepared_text(text: str, worldwide: bool = False) -> str:
    """The spaced text matched against: worldwide texts are stripped first (curation spec, section 3)."""
    return space_text(text.strip() if worldwide else text)


def reference_match(text: str, entries: Sequence[str], worldwide: bool = False, kana: bool = False) -> list[int]:
    """The spec's literal definition, one substring test per entry: the oracle for tests and benchmarks."""
    spaced = prepared_text(text, worldwide)
    return [entry_id for entry_id, entry in enumerate(entries) if padded_entry(entry, worldwide, kana) in spaced]


class EntryMatcher:
    """Finds, for each text, the sorted ids of the entries it matches; builds its automaton once."""

    def __init__(self, entries: Sequence[str], worldwide: bool = False, kana: bool = False):
        self.entries_total = len(entries)
        self.worldwide = worldwide
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        # A list may hold the same string twice (two ids); the automaton keeps the first id, the rest go here.
        self._more_ids: dict[int, list[int]] = {}
        first_id: dict[str, int] = {}
        for entry_id, entry in enumerate(entries):
            key = padded_entry(entry, worldwide, kana)
            if key in first_id:
                self._more_ids.setdefault(first_id[key], []).append(entry_id)
            else:
                first_id[key] = entry_id
                self._automaton.add_word(key, entry_id)
        self._automaton.make_automaton()
        self.memory_bytes = int(self._automaton.get_stats()["total_size"])

    def match(self, text: str | None) -> list[int]:
        """Sorted ids of the entries matched by one text (empty for None or no match)."""
        return self.match_many((text,))[0]

    def match_many(self, texts: Iterable[str | None]) -> list[list[int]]:
        """`match` of each text. The hot loop of the match stage: pyahocorasick's walk is most of its time, so what
        is around it stays in C where it can (the ids are taken from its (end, id) tuples by `map`, not bytecode)."""
        iterate, worldwide, more_ids = self._automaton.iter, self.worldwide, self._more_ids
        found_ids = []
        for text in texts:
            if not text:
                found_ids.append([])
                continue
            # space_text / prepared_text, inlined: a function call per text is a measurable share of the loop.
            spaced = f" {text.strip() if worldwide else text} "
            for char, wrapped in _REPLACEMENTS:
                spaced = spaced.replace(char, wrapped)
            found = set(map(_SECOND, iterate(spaced)))
            if more_ids and found:
                for entry_id in [e for e in found if e in more_ids]:
                    found.update(more_ids[entry_id])
            found_ids.append(sorted(found))
        return found_ids



# One matcher per Python worker process, keyed by the metadata digest: Spark reuses workers across tasks, so the
# automaton is built once per worker, not once per task or batch.
_MATCHERS: dict[str, EntryMatcher] = {}


def cached_matcher(digest: str, load_entries) -> EntryMatcher:
    """The worker's matcher for this metadata digest; `load_entries()` is called only on the first use."""
    matcher = _MATCHERS.get(digest)
    if matcher is None:
        _MATCHERS.clear()  # a worker serves one metadata list at a time; free the old automaton
        matcher = _MATCHERS[digest] = EntryMatcher(load_entries())
    return matcher


class LanguageMatchers:
    """Matching on one Python worker: one automaton per language (a v1 run's one list is English's), built on first
    use from `load_entries(code)` and kept, least recently used first out once their total size passes `max_bytes`
    (the language being matched always stays). Never rebuilt per batch."""

    def __init__(self, codes: Iterable[str], load_entries: Callable[[str], list[str]], max_bytes: int,
                 kana: bool = False, worldwide: bool = True):
        self.codes = frozenset(codes)
        self._load_entries = load_entries
        self._max_bytes = max_bytes
        self._kana = kana
        self._worldwide = worldwide  # MetaCLIP 2's edge rule; False: v1's (a v1 run's one list)
        self._matchers: OrderedDict[str, EntryMatcher] = OrderedDict()
        self.builds = 0  # automata built so far (a language evicted and needed again is built again)

    def matcher(self, code: str) -> EntryMatcher | None:
        """The automaton of language `code`, or None when the metadata has no list for it."""
        if code not in self.codes:
            return None
        matcher = self._matchers.get(code)
        if matcher is not None:
            self._matchers.move_to_end(code)
            return matcher
        matcher = EntryMatcher(self._load_entries(code), worldwide=self._worldwide, kana=self._kana)
        self.builds += 1
        self._matchers[code] = matcher
        while len(self._matchers) > 1 and self.memory_bytes > self._max_bytes:
            self._matchers.popitem(last=False)
        return matcher

    @property
    def memory_bytes(self) -> int:
        return sum(m.memory_bytes for m in self._matchers.values())

    @property
    def loaded(self) -> list[str]:
        return list(self._matchers)

    def match(self, code: str | None, text: str | None) -> list[int]:
        """Sorted ids, in `code`'s list, of the entries `text` matches; empty for a language without a list."""
        matcher = self.matcher(code) if code else None
        return matcher.match(text) if matcher is not None else []

    def match_many(self, codes: Sequence[str | None], texts: Sequence[str | None]) -> list[list[int]]:
        """`match` of each (code, text), each language's texts matched together (one automaton lookup per language)."""
        if codes and codes[0] and list(codes).count(codes[0]) == len(codes):  # a batch of one language: no grouping
            matcher = self.matcher(codes[0])
            return matcher.match_many(texts) if matcher is not None else [[] for _ in texts]
        found_ids: list[list[int]] = [[] for _ in texts]
        rows_by_code: dict[str, list[int]] = {}
        for row, code in enumerate(codes):
            if code:
                rows_by_code.setdefault(code, []).append(row)
        for code, rows in rows_by_code.items():
            matcher = self.matcher(code)
            if matcher is None:
                continue
            for row, ids in zip(rows, matcher.match_many([texts[row] for row in rows])):
                found_ids[row] = ids
        return found_ids


_LANGUAGE_MATCHERS: dict[str, LanguageMatchers] = {}


def cached_language_matchers(digest: str, make: Callable[[], LanguageMatchers]) -> LanguageMatchers:
    """The worker's per-language matchers for this metadata set digest (built lazily, kept across tasks)."""
    matchers = _LANGUAGE_MATCHERS.get(digest)
    if matchers is None:
        _LANGUAGE_MATCHERS.clear()
        matchers = _LANGUAGE_MATCHERS[digest] = make()
    return matchers
