"""MetaCLIP substring matching (curation spec, section 3), with an Aho-Corasick automaton.

A text matches an entry when " entry " is a substring of the spaced text. Matching is case-sensitive, at token
boundaries only, and yields the SET of matched entry ids (an entry counts at most once per text).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def reference_match(text: str, entries: Sequence[str]) -> list[int]:
    """The spec's literal definition, one substring test per entry: the oracle for tests and benchmarks."""
    spaced = space_text(text)
    return [entry_id for entry_id, entry in enumerate(entries) if f" {entry} " in spaced]


class EntryMatcher:
    """Finds, for each text, the sorted ids of the entries it matches; builds its automaton once."""

    def __init__(self, entries: Sequence[str]):
        self.entries_total = len(entries)
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        # A list may hold the same string twice (two ids); the automaton keeps the first id, the rest go here.
        self._more_ids: dict[int, list[int]] = {}
        first_id: dict[str, int] = {}
        for entry_id, entry in enumerate(entries):
            key = f" {entry} "
            if key in first_id:
                self._more_ids.setdefault(first_id[key], []).append(entry_id)
            else:
                first_id[key] = entry_id
                self._automaton.add_word(key, entry_id)
        self._automaton.make_automaton()

    def match(self, text: str | None) -> list[int]:
        """Sorted ids of the entries matched by one text (empty for None or no match)."""
        if not text:
            return []
        found = {entry_id for _, entry_id in self._automaton.iter(space_text(text))}
        if self._more_ids and found:
            for entry_id in [e for e in found if e in self._more_ids]:
                found.update(self._more_ids[entry_id])
        return sorted(found)

    def match_many(self, texts: Iterable[str | None]) -> list[list[int]]:
        return [self.match(text) for text in texts]


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
