"""MetaCLIP's substring matching, pinned case by case (curation spec, section 3)."""

import random

import pytest

from metaclip_spark.matching.substrings import EntryMatcher, reference_match, space_text

SPACING_CASES = [
    # (text, spaced text)
    ("dog", " dog "),
    ("", "  "),
    ("a,b", " a , b "),
    ("a.b", " a . b "),
    ("a;b", " a ; b "),
    ("a:b", " a : b "),
    ("a?b", " a ? b "),
    ("a!b", " a ! b "),
    ("a`b", " a ` b "),
    ("a\tb", " a b "),
    ("a\nb", " a b "),
    ("a\rb", " a b "),
    ("a\r\nb", " a  b "),
    ("dog, cat.", " dog ,  cat .  "),
    ("Hello  World", " Hello  World "),
    ("(dog)", " (dog) "),
    ("dog's", " dog's "),
    ("naïve café", " naïve café "),
    ("U.S.A", " U . S . A "),
    ("a-b/c", " a-b/c "),
]


@pytest.mark.parametrize("text, spaced", SPACING_CASES)
def test_spacing_pads_the_seven_characters_and_blanks_control_whitespace(text, spaced):
    assert space_text(text) == spaced


# (entries, text, names of the entries that must match)
MATCHING_CASES = [
    (["dog"], "dog", ["dog"]),
    (["dog"], "a dog running", ["dog"]),
    (["dog"], "Dog running", []),  # case-sensitive
    (["Dog", "dog"], "Dog and dog", ["Dog", "dog"]),
    (["dog"], "dogs", []),  # token boundary
    (["dog"], "hotdog", []),
    (["dog"], "(dog)", []),  # brackets are not spacing characters
    (["dog"], "dog's bone", []),
    (["dog"], "dog-friendly", []),
    (["dog"], "dog,cat", ["dog"]),  # each of the seven characters separates tokens
    (["dog"], "dog.cat", ["dog"]),
    (["dog"], "dog;cat", ["dog"]),
    (["dog"], "dog:cat", ["dog"]),
    (["dog"], "dog?cat", ["dog"]),
    (["dog"], "dog!cat", ["dog"]),
    (["dog"], "`dog`", ["dog"]),
    (["dog"], "big\tdog\nhouse", ["dog"]),  # tab and newline become spaces
    (["big dog"], "big\tdog", ["big dog"]),
    (["big dog"], "big  dog", []),  # two spaces break a two-word match
    (["big dog"], "big\r\ndog", []),  # CR LF become two spaces
    (["big dog", "dog house", "dog"], "big dog house", ["big dog", "dog house", "dog"]),  # overlapping
    (["New York", "York", "New York City"], "New York City at night", ["New York", "York", "New York City"]),
    (["e.g"], "e.g", []),  # an entry holding one of the seven characters can never match
    (["e.g."], "see e.g. this", []),
    (["what?"], "what?", []),
    (["rock'n'roll"], "rock'n'roll legend", ["rock'n'roll"]),  # other punctuation is part of the token
    (["C++"], "learn C++ now", ["C++"]),
    (["café"], "Le café noir", ["café"]),  # non-ASCII, no normalisation
    (["cafe"], "Le café noir", []),
    (["東京"], "東京 タワー", ["東京"]),
    (["東京"], "東京タワー", []),  # v1 padding applies to every script
    (["dog"], "", []),  # empty text
    (["dog"], "dog dog dog", ["dog"]),  # an entry counts once per text
    (["dog", "dog"], "a dog", ["dog", "dog"]),  # a list holding a string twice: both ids match
    (["0", "1"], "1 of 10", ["1"]),
    ([" dog"], "a  dog", [" dog"]),  # leading space in an entry needs two spaces in the text
    (["dog"], "DOG dog", ["dog"]),
    (["Mr"], "Mr. Smith", ["Mr"]),  # the period is split off
]


@pytest.mark.parametrize("entries, text, expected", MATCHING_CASES)
def test_matching_follows_the_spec(entries, text, expected):
    ids = EntryMatcher(entries).match(text)
    assert sorted(entries[i] for i in ids) == sorted(expected)
    assert ids == reference_match(text, entries)
    assert ids == sorted(set(ids))


def test_match_of_none_is_empty():
    assert EntryMatcher(["dog"]).match(None) == []


def test_automaton_agrees_with_the_reference_on_random_texts():
    """Texts over a small alphabet with every spacing character hit many boundary cases per second."""
    rng = random.Random(7)
    alphabet = ["a", "b", "ab", "A", " ", " ", ",", ".", ";", ":", "?", "!", "`", "\t", "\n", "\r", "'", "-", "é"]
    entries = sorted({"".join(rng.choice(alphabet[:5] + ["'", "-", "é"]) for _ in range(rng.randint(1, 4))).strip()
                      or "a" for _ in range(60)})
    matcher = EntryMatcher(entries)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert matcher.match(text) == reference_match(text, entries), repr(text)


def test_match_many_gives_each_text_what_match_gives_it_alone():
    """The batch loop (what a match task runs) inlines the spacing: it must agree with the rule text by text, with
    None and empty texts in the batch, and a string listed twice giving both its ids."""
    rng = random.Random(11)
    alphabet = ["a", "b", "ab", "A", " ", " ", ",", ".", ";", ":", "?", "!", "`", "\t", "\n", "\r", "é"]
    entries = sorted({"".join(rng.choice(alphabet[:5]) for _ in range(rng.randint(1, 3))).strip() or "a"
                      for _ in range(40)})
    entries += [entries[0], entries[3]]  # the same string under two ids
    matcher = EntryMatcher(entries)
    texts = [None, ""] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(2000)]
    assert matcher.match_many(texts) == [reference_match(t, entries) if t else [] for t in texts]


def test_entry_id_lists_become_an_arrow_column_of_the_matched_rows_only():
    from metaclip_spark.matching.spark import entry_ids_array

    keep, column = entry_ids_array([[3, 7], [], [0], [], [1, 2, 5]])
    assert keep.tolist() == [True, False, True, False, True]
    assert column.to_pylist() == [[3, 7], [0], [1, 2, 5]]
    assert str(column.type) == "list<element: int32 not null>"
    keep, column = entry_ids_array([[], []])
    assert keep.tolist() == [False, False] and len(column) == 0
