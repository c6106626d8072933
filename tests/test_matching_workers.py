"""What a Python worker keeps for matching: one automaton per metadata digest, per-language automata within a byte
budget, built once and counted; and the v1 / worldwide difference in how a text is prepared."""

from __future__ import annotations

from metaclip_spark.matching import substrings
from metaclip_spark.matching.substrings import EntryMatcher, LanguageMatchers, cached_language_matchers, cached_matcher


def test_a_worker_builds_one_matcher_per_metadata_digest():
    loads = []

    def load(entries):
        return lambda: loads.append(entries) or entries

    first = cached_matcher("digest-1", load(["dog", "cat"]))
    assert cached_matcher("digest-1", load(["never", "read"])) is first and loads == [["dog", "cat"]]
    assert first.match("a dog") == [0]
    other = cached_matcher("digest-2", load(["cat"]))
    assert other is not first and other.match("a cat") == [0] and loads == [["dog", "cat"], ["cat"]]
    assert set(substrings._MATCHERS) == {"digest-2"}  # the old automaton is freed


def test_a_worker_keeps_one_set_of_language_matchers_per_digest():
    made = []

    def make(name):
        return lambda: made.append(name) or LanguageMatchers({"en"}, lambda code: ["dog"], 1 << 30)

    first = cached_language_matchers("set-1", make("first"))
    assert cached_language_matchers("set-1", make("again")) is first and made == ["first"]
    assert first.match("en", "a dog") == [0]
    assert cached_language_matchers("set-2", make("second")) is not first and made == ["first", "second"]
    assert set(substrings._LANGUAGE_MATCHERS) == {"set-2"}


def test_entries_total_counts_every_entry_repeats_included():
    assert EntryMatcher(["dog", "cat", "dog"]).entries_total == 3


def test_automata_are_built_once_and_again_only_after_eviction():
    lists = {"de": ["Hund"], "ja": ["犬"], "th": ["หมา"]}
    total = sum(EntryMatcher(words, worldwide=True, kana=False).memory_bytes for words in lists.values())
    matchers = LanguageMatchers(lists, lists.__getitem__, max_bytes=total - 1, kana=False)  # any two, not three
    assert matchers.builds == 0
    matchers.match("de", "ein Hund"), matchers.match("de", "der Hund"), matchers.match("ja", "犬です")
    assert matchers.builds == 2 and matchers.loaded == ["de", "ja"]
    matchers.match("de", "Hund")  # used again: now the most recent
    matchers.match("th", "หมา")  # over budget: the least recently used (ja) goes
    assert matchers.loaded == ["de", "th"] and matchers.builds == 3
    assert matchers.match("ja", "犬です") == [0] and matchers.builds == 4 and matchers.loaded == ["th", "ja"]


def test_language_matchers_pass_the_kana_rule_to_their_automata():
    lists = {"ja": ["ねこ"]}
    text = "かわいいねこです"  # the entry begins and ends with kana, inside running Japanese text
    assert LanguageMatchers(lists, lists.__getitem__, 1 << 30, kana=True).match("ja", text) == [0]
    assert LanguageMatchers(lists, lists.__getitem__, 1 << 30, kana=False).match("ja", text) == []


def test_a_batch_of_one_text_is_matched_with_its_language():
    lists = {"de": ["Hund"], "en": ["dog"]}
    matchers = LanguageMatchers(lists, lists.__getitem__, 1 << 30, kana=False)
    assert matchers.match_many(["de"], ["ein Hund"]) == [[0]]
    assert matchers.match_many(["en", "en"], ["a dog", "no"]) == [[0], []]
    assert matchers.match_many(["de", "en", None, "xx"], ["ein Hund", "a dog", "a dog", "a dog"]) == [
        [0], [0], [], []]
    assert matchers.match(None, "a dog") == [] and matchers.match("xx", "a dog") == []


def test_only_worldwide_texts_are_stripped_before_matching():
    """v1 matches the text as MetaCLIP's v1 does, unstripped: an ideographic space before a word is not a space to
    it; MetaCLIP 2 strips every text first (curation spec, section 3)."""
    text = "\u3000dog"
    assert substrings.prepared_text(text) == " \u3000dog "
    assert substrings.reference_match(text, ["dog"]) == EntryMatcher(["dog"]).match(text) == []
    assert substrings.reference_match(text, ["dog"], worldwide=True) == [0]
    assert EntryMatcher(["dog"], worldwide=True).match(text) == [0]
