"""Worldwide curation (MetaCLIP 2), the pure rules: language codes, edge padding per script, t per language, the
metadata set, the per-language automata. Spark runs are in test_worldwide.py."""

import gzip
import json
import random

import numpy as np
import pytest

from metaclip_spark.balancing import draws
from metaclip_spark.matching import lang_codes
from metaclip_spark.extraction import language
from metaclip_spark.errors import ConfigError
from metaclip_spark.matching.substrings import (EntryMatcher, LanguageMatchers, is_no_space, padded_entry,
                                                reference_match)
from metaclip_spark.metadata.lists import Metadata, load_metadata_set, metadata_digest


# Language codes -------------------------------------------------------------------------------------------------

def test_every_lid176_label_of_the_model_file_maps_to_its_merged_wikipedia_list_or_other():
    # The predict-only fastText build lists no labels; asking for every label with no threshold returns all 176.
    model = language._fasttext_model()
    labels = {label.removeprefix("__label__") for _, label in model.f.predict("hello world\n", -1, -1.0, "replace")}
    assert labels == lang_codes.LID_LABELS and len(labels) == 176
    for label in labels:
        # MetaCLIP 2's rule (align_lid_to_wiki.py): the label's Wikipedia code, cut at its first "_" (our "-").
        wiki = {"cbk": "cbk-zam", "yue": "zh-yue"}.get(label, label)
        expected = wiki.split("-")[0] if wiki in lang_codes.WIKIPEDIA_CODES else "other"
        assert lang_codes.metadata_code(label) == lang_codes.LABEL_TO_CODE[label] == expected, label
        assert lang_codes.list_name_problem(expected) is None, label
    assert sum(code == "other" for code in lang_codes.LABEL_TO_CODE.values()) == 1  # lrc: no Wikipedia code there
    assert all("-" not in code for code in lang_codes.LABEL_TO_CODE.values())


@pytest.mark.parametrize("label, code", [("en", "en"), ("zh", "zh"), ("ja", "ja"), ("th", "th"), ("yue", "zh"),
                                         ("cbk", "cbk"), ("lrc", "other"), ("no", "no"), ("", "other"),
                                         (None, "other"), ("xx", "other"), ("__label__en", "other")])
def test_lid_labels_map_to_merged_wikipedia_codes_and_the_rest_to_other(label, code):
    assert lang_codes.metadata_code(label) == code


# Matching per script class (curation spec, section 3) ------------------------------------------------------------

# (entry, text, matches with kana as no-space (ours), matches with the reference's ranges)
SCRIPT_CASES = [
    ("苹果", "我喜欢吃苹果和香蕉", True, True),            # Chinese entry inside a sentence without spaces
    ("苹果", "苹果", True, True),
    ("苹果手机", "我的苹果很好", False, False),
    ("iPhone", "我的iPhone手机", False, False),             # a Latin edge is padded: Han beside it is no space
    ("iPhone", "我的 iPhone 手机", True, True),
    ("iPhone 手机", "我的 iPhone 手机很好", True, True),      # Latin start padded, Han end not
    ("东京", "我去东京。", True, True),                       # full-width punctuation after
    ("ラーメン", "東京のラーメン屋", True, False),             # kana edges: no-space only with kana added
    ("ラーメン", "ラーメン", True, True),                      # alone, the stripped text is padded anyway
    ("すし", "おいしいすしです", True, False),
    ("東京タワー", "東京タワーの夜景", True, False),           # Han start, kana end
    ("ｶﾚｰ", "今日はｶﾚｰです", True, False),                   # half-width katakana
    ("（株）", "ソニー（株）の", True, True),                   # full-width brackets at both edges
    ("【公式】", "【公式】サイト", True, True),
    ("แมว", "ฉันรักแมวมาก", True, True),                     # Thai, written without spaces
    ("ແມວ", "ຂ້ອຍມັກແມວ", True, True),                      # Lao
    ("(dog)", "hot(dog)s", True, True),                      # ASCII punctuation edges are not padded
    ("dog", "hotdogs", False, False),                        # a Latin entry still needs token boundaries
    ("dog", "  dog  ", True, True),                          # texts are stripped first, then spaced
    ("Hund", "Der Hund, die Katze", True, True),
    ("Katze", "Der Hund, die Katze.", True, True),
    ("кошка", "Моя кошка спит", True, True),                 # Cyrillic: spaces as in v1
    ("кошка", "кошками", False, False),
    ("قطة", "هذه قطة جميلة", True, True),                    # Arabic
    (",", "a,b", True, True),
]


@pytest.mark.parametrize("entry, text, ours, reference", SCRIPT_CASES)
def test_worldwide_edge_padding_per_script(entry, text, ours, reference):
    assert bool(reference_match(text, [entry], worldwide=True, kana=True)) is ours
    assert bool(reference_match(text, [entry], worldwide=True, kana=False)) is reference
    assert bool(EntryMatcher([entry], worldwide=True, kana=True).match(text)) is ours
    assert bool(EntryMatcher([entry], worldwide=True, kana=False).match(text)) is reference


@pytest.mark.parametrize("entry, padded", [("dog", " dog "), ("苹果", "苹果"), ("iPhone 手机", " iPhone 手机"),
                                           ("(dog)", "(dog)"), ("ラーメン", " ラーメン "), ("", "  ")])  # default: the reference ranges
def test_padded_entry(entry, padded):
    assert padded_entry(entry, worldwide=True) == padded


def test_unless_asked_for_kana_is_not_no_space_anywhere_and_the_rule_is_v1_s():
    """The defaults of every entry point (curation spec, section 3): kana counts as no-space only when asked for
    (the characters, the literal rule, the automata, a worker's per-language automata); with no rule named, an
    entry is padded as v1 pads it, on both sides."""
    text, entry, lists = "かわいいねこです", "ねこ", {"ja": ["ねこ"]}  # an entry of kana inside running Japanese
    assert not is_no_space("ね") and is_no_space("ね", kana=True)
    assert reference_match(text, [entry], worldwide=True) == [] == EntryMatcher([entry], worldwide=True).match(text)
    assert LanguageMatchers(lists, lists.__getitem__, 1 << 30).match("ja", text) == []
    assert LanguageMatchers(lists, lists.__getitem__, 1 << 30, kana=True).match("ja", text) == [0]
    assert padded_entry("苹果") == " 苹果 " and reference_match("我喜欢吃苹果", ["苹果"]) == []


def test_v1_matching_is_unchanged_by_the_worldwide_rules():
    assert EntryMatcher(["苹果"]).match("我喜欢吃苹果和香蕉") == []
    assert EntryMatcher(["dog"]).match("  dog  ") == [0]
    assert EntryMatcher(["(dog)"]).match("hot(dog)s") == []


def test_the_automaton_equals_the_literal_rule_on_random_multilingual_texts():
    rng = random.Random(7)
    alphabet = list("ab 苹果香蕉ラーメンすし東京แมว,.（）!") + ["Hund", "кошка"]
    entries = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))) for _ in range(300)})
    for kana in (True, False):
        matcher = EntryMatcher(entries, worldwide=True, kana=kana)
        for _ in range(400):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
            assert matcher.match(text) == reference_match(text, entries, worldwide=True, kana=kana), text


# t per language (curation spec, section 4) ----------------------------------------------------------------------

def test_derived_threshold_is_the_count_where_the_cumulative_share_is_nearest_p():
    # sorted counts 1, 2, 3, 4, 90 (total 100): cumulative shares .01 .03 .06 .10 1.0
    counts = np.array([90, 3, 1, 4, 2])
    assert draws.derived_threshold(counts, 0.06) == 3   # exactly at .06
    assert draws.derived_threshold(counts, 0.07) == 3   # .06 is nearer than .10 (below p)
    assert draws.derived_threshold(counts, 0.09) == 4   # .10 is nearer than .06 (above p)
    assert draws.derived_threshold(counts, 0.5) == 4    # .10 vs 1.0
    assert draws.derived_threshold(counts, 0.9) == 90


def test_derived_threshold_tie_takes_the_lower_position():
    counts = np.array([2, 2, 4])  # shares .25 .5 1.0; p = .75 is .25 from both .5 and 1.0
    assert draws.derived_threshold(counts, 0.75) == 2


def test_derived_threshold_is_never_below_one():
    # zero counts sort first with a cumulative share of 0: nearest to a tiny p, so the derived t would be 0
    assert draws.derived_threshold(np.array([0, 0, 0, 50, 50]), 0.001) == 1
    assert draws.derived_threshold(np.zeros(4, np.int64), 0.06) == 1   # no matches at all
    assert draws.derived_threshold(np.array([], np.int64), 0.06) == 1


# The metadata set -----------------------------------------------------------------------------------------------

def _write_set(tmp_path, lists):
    for code, entries in lists.items():
        (tmp_path / f"{code}.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    return tmp_path


def test_a_directory_is_a_worldwide_set_and_a_file_stays_v1(tmp_path):
    directory = tmp_path / "set"
    directory.mkdir()
    _write_set(directory, {"en": ["dog", "cat"], "zh": ["苹果"]})
    (directory / "de.json.gz").write_bytes(gzip.compress(json.dumps(["Hund"]).encode()))
    (directory / "README.md").write_text("not a list")
    metadata = Metadata(str(directory))
    assert metadata.worldwide and metadata.languages == ["de", "en", "zh"]
    assert metadata.lists["zh"] == ["苹果"] and metadata.entries_total == 4
    single = tmp_path / "en.json"
    single.write_text(json.dumps(["dog", "cat"]))
    v1 = Metadata(str(single))
    assert not v1.worldwide and v1.entries == ["dog", "cat"] and v1.digest == metadata_digest(["dog", "cat"])


def test_the_set_digest_follows_every_list_and_the_kana_option(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    _write_set(a, {"en": ["dog"], "zh": ["苹果"]})
    _write_set(b, {"en": ["dog"], "zh": ["苹果", "香蕉"]})
    assert Metadata(str(a)).digest != Metadata(str(b)).digest
    assert Metadata(str(a)).digest == Metadata(str(a)).digest
    assert Metadata(str(a), kana=True).digest != Metadata(str(a)).digest
    assert Metadata(str(a)).kana is False  # the reference's ranges by default


@pytest.mark.parametrize("files, message", [
    ({}, "holds no <code>.json list"),
    ({"English.json": '["dog"]'}, "'English' is not a Wikipedia language code"),
    ({"en.json": '["dog"]', "jp.json": '["犬"]'}, "jp.json: 'jp' is not a Wikipedia language code"),
    ({"en.json": '["dog"]', "xx.json": '["dog"]'}, "xx.json: 'xx' is not a Wikipedia language code"),
    ({"zh.json": '["苹果"]', "zh-yue.json": '["蘋果"]'}, "'zh-yue' is a variant code: its texts are matched with zh.json"),
    ({"en.json": '{"a": 1}'}, "a JSON object"),
    ({"en.json": '["dog", 3]'}, "entry 1 is int"),
])
def test_a_bad_set_stops_with_a_message_naming_the_file(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_metadata_set(tmp_path)


def test_a_folder_written_by_the_reference_builder_loads_as_it_is(tmp_path):
    # align_lid_to_wiki.py writes <merged code>.json (a JSON array) and its pickled automaton <code>.pkl, and
    # other.json for the texts with no label or no Wikipedia code.
    _write_set(tmp_path, {"en": ["dog"], "zh": ["苹果", "蘋果"], "cbk": ["perro"], "other": ["Pokémon"]})
    for code in ("en", "zh", "cbk", "other"):
        (tmp_path / f"{code}.pkl").write_bytes(b"\x80\x04\x95binary automaton")
    assert Metadata(str(tmp_path)).languages == ["cbk", "en", "other", "zh"]


def test_a_jp_list_stops_the_command_with_one_line_naming_the_file(tmp_path, capsys):
    from metaclip_spark import cli

    _write_set(tmp_path, {"en": ["dog"], "jp": ["東京"]})
    assert cli.main(["metadata-info", "--metadata", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "jp.json" in err and "not a Wikipedia language code" in err


def test_two_files_for_one_language_are_refused(tmp_path):
    (tmp_path / "en.json").write_text('["dog"]')
    (tmp_path / "en.json.gz").write_bytes(gzip.compress(b'["cat"]'))
    with pytest.raises(ConfigError, match="two lists for 'en'"):
        load_metadata_set(tmp_path)


# Per-language automata on a worker ------------------------------------------------------------------------------

def test_language_automata_are_built_once_and_evicted_least_recently_used_first():
    lists = {"en": [f"word{i}" for i in range(2000)], "de": [f"wort{i}" for i in range(2000)],
             "zh": [f"字{i}" for i in range(2000)]}
    loads = []

    def load(code):
        loads.append(code)
        return lists[code]

    one = EntryMatcher(lists["en"], worldwide=True).memory_bytes
    matchers = LanguageMatchers(lists, load, max_bytes=int(2.5 * one))
    assert matchers.match("en", "a word7 here") == [7]
    assert matchers.match("en", "word8") == [8] and loads == ["en"]      # never rebuilt per text or batch
    assert matchers.match("de", "wort3") == [3]
    assert matchers.match("en", "word1") == [1]                           # en is now the most recent
    assert matchers.match("zh", "字5") == [5]                              # third one: over the bound, de goes
    assert matchers.loaded == ["en", "zh"] and loads == ["en", "de", "zh"]
    assert matchers.memory_bytes <= int(2.5 * one)
    assert matchers.match("fr", "word1") == [] and matchers.match(None, "word1") == []  # no list: nothing
    assert matchers.match("de", "wort3") == [3] and loads[-1] == "de"     # evicted, built again when needed


def test_a_batch_of_mixed_languages_matches_each_text_in_its_own_list():
    """LanguageMatchers.match_many (a worldwide match batch) groups rows by language: each row gets what `match`
    gives it alone, rows of a language without a list or without a language get nothing."""
    lists = {"en": ["apple", "pie"], "zh": ["苹果", "派"], "ja": ["林檎"]}
    matchers = LanguageMatchers(lists, lists.__getitem__, max_bytes=1 << 30)
    codes = ["en", "zh", None, "fr", "ja", "en", "zh", "en"]
    texts = ["apple pie", "我喜欢吃苹果派", "apple", "apple", "林檎が好き", None, "", "an apple"]
    expected = [matchers.match(code, text) for code, text in zip(codes, texts)]
    assert matchers.match_many(codes, texts) == expected == [[0, 1], [0, 1], [], [], [0], [], [], [0]]
    assert matchers.match_many(["en", "en", "en"], ["apple", None, "pie"]) == [[0], [], [1]]  # one language
    assert matchers.match_many(["fr", "fr"], ["apple", "pie"]) == [[], []]  # one language without a list


# Entries made only of punctuation (MetaCLIP 2's builder, curation spec section 3) ---------------------------------

def _real_tokens(lang: str) -> list[str]:
    """The words lid-labelled `lang` texts of the real worldwide pool segment into (punctuation among them)."""
    from metaclip_spark.metadata.segmentation import segmenter_for

    from conftest import DATA

    with open(DATA / "pool" / "worldwide_pairs.jsonl", encoding="utf-8") as f:
        texts = [row["text"] for row in map(json.loads, f) if row["lang"] == lang]
    return [token for text in texts for token in segmenter_for(lang)(text)], texts


def test_a_worldwide_build_drops_entries_made_only_of_punctuation_at_any_length():
    from metaclip_spark.metadata.lists import is_pure_punctuation
    from metaclip_spark.metadata.build import merge_sources

    tokens, texts = _real_tokens("zh")
    punctuation = {t for t in tokens if is_pure_punctuation(t)}
    assert {"。", "，", "《", "》", "：", "“"} <= punctuation  # what jieba leaves of real Chinese sentences
    sources = [("unigrams", tokens), ("more", ["...", "——", "¿?", "（）", "C++", "(株)", "。。"])]
    entries, report = merge_sources(sources, pure_punctuation=True)
    assert not any(is_pure_punctuation(e) for e in entries)
    assert "C++" in entries and "(株)" in entries and "马克思" in entries
    assert report[1]["skipped_punctuation"] == 5
    # v1's English rule is unchanged: one ASCII punctuation character only
    english, _ = merge_sources(sources, pure_punctuation=False)
    assert "。" in english and "..." in english and "," not in english
    # why: under the edge rule "。" gets no padding and matches every text holding it
    with_stop = EntryMatcher(["。"], worldwide=True)
    assert sum(bool(with_stop.match(t)) for t in texts) == sum("。" in t for t in texts) > 0


def test_metadata_info_warns_about_punctuation_entries_in_a_list_it_did_not_build(tmp_path, capsys):
    from metaclip_spark import cli

    tokens, _ = _real_tokens("ja")
    _write_set(tmp_path, {"en": ["dog", "..."], "ja": list(dict.fromkeys(tokens))})
    assert cli.main(["metadata-info", "--metadata", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and warnings[1].startswith("warning: ja.json holds ")
    assert "'「'" in warnings[1] and "made only of punctuation" in warnings[1] and "made only of punctuation" in out


def test_kana_edges_flood_japanese_matches_on_real_text_so_the_reference_ranges_are_the_default():
    """The measured effect of worldwide.kana_no_space on real Japanese text (docs/worldwide.md quotes these
    numbers): the 16 Japanese feed titles of the worldwide pool and the 7 sentences of the jawiki excerpt, matched
    with the built default ja.json (wordfreq words, kana-only particles and fragments among them)."""
    import bz2

    from metaclip_spark.metadata import wikipedia
    from metaclip_spark.config import load_config
    from metaclip_spark.matching.substrings import KANA_RANGES
    from metaclip_spark.metadata.lists import default_worldwide_path, load_metadata

    from conftest import DATA

    _, texts = _real_tokens("ja")
    xml = bz2.decompress((DATA / "wiki" / "jawiki-excerpt-pages-articles.xml.bz2").read_bytes()).decode()
    plain = wikipedia.clean_wikitext(wikipedia.page_article_text(xml.split("</page>")[0])[1])
    texts += [sentence.strip() + "。" for sentence in plain.split("。") if sentence.strip()]
    assert len(texts) == 23

    def kana_only(entry: str) -> bool:
        return all(any(low <= ord(c) <= high for low, high in KANA_RANGES) for c in entry)

    ja = load_metadata(default_worldwide_path() / "ja.json")
    kana_only_entries, ja_all = sum(1 for entry in ja if kana_only(entry)), ja

    # Only the entries found somewhere in these texts can match one (the rest would cost a 215k-entry automaton).
    everything = "\n".join(texts)
    ja = [entry for entry in ja if entry in everything]
    figures, found = {}, {}
    for kana in (False, True):
        ids = found[kana] = [EntryMatcher(ja, worldwide=True, kana=kana).match(text) for text in texts]
        matches = [entry_id for one in ids for entry_id in one]
        figures[kana] = (sum(map(bool, ids)), len(matches) / sum(map(bool, ids)),
                         sum(kana_only(ja[e]) for e in matches) / len(matches))
    (texts_ref, per_text_ref, kana_share_ref), (texts_kana, per_text_kana, kana_share_kana) = figures[False], figures[True]
    assert kana_share_ref == 0.0 and kana_share_kana > 0.5         # kana-only entries: none, or over half the matches
    assert per_text_kana > 2 * per_text_ref and texts_kana >= texts_ref
    # ... so the default is the reference's ranges: in the matcher, the metadata and the configuration
    assert [EntryMatcher(ja, worldwide=True).match(text) for text in texts] == found[False]
    assert load_config().worldwide.kana_no_space is False
    print(f"ja.json: {len(ja_all):,} entries, {kana_only_entries:,} made only of kana")
    print(f"kana_no_space false: {texts_ref}/23 texts matched, {per_text_ref:.2f} entries per matched text, "
          f"{kana_share_ref:.1%} kana-only; true: {texts_kana}/23, {per_text_kana:.2f}, {kana_share_kana:.1%}")


def test_a_root_matched_under_the_old_kana_default_is_told_how_to_rematch(tmp_path):
    _write_set(tmp_path, {"en": ["dog"], "ja": ["ラーメン", "東京"]})
    old, new = Metadata(str(tmp_path), kana=True), Metadata(str(tmp_path))
    said = new.digest_difference(old.digest)
    assert "worldwide.kana_no_space = true (now false" in said and "pass --rematch" in said
    assert "kana_no_space = true" in said.split("or keep them")[1]
    assert old.digest_difference(new.digest).startswith(". It holds these same lists matched with worldwide."
                                                        "kana_no_space = false (now true)")
    _write_set(tmp_path, {"ja": ["ラーメン"]})
    assert new.digest_difference(Metadata(str(tmp_path), kana=True).digest) == ""  # other lists: no such hint


def test_the_report_lists_languages_with_pairs_and_folds_the_empty_ones_into_one_line():
    from metaclip_spark.report.html import _languages

    def row(pairs):
        return {"entries": 10, "pairs": pairs, "pairs_matched": pairs, "pairs_curated": pairs, "t": 1,
                "tail_proportion": 1.0, "entries_over_t": 0, "top_entries": [["東京", pairs]] if pairs else []}

    by_lang = {"ja": row(16), "en": row(8), "ko": row(0), "fr": row(0), "vi": row(0)}
    html = "\n".join(_languages({"languages": {"t_en": 5, "t_mode": "fixed", "p": 1.0, "by_lang": by_lang,
                                               "pairs_without_list": {"other": 3}, "pairs_unknown_lang": 0}}))
    assert html.count("<tr>") - 1 == 2 and '<td class="text">ja</td>' in html and ">ko</td>" not in html
    assert "3 more languages of the metadata set have no pairs in this pool: fr, ko, vi." in html
    assert "other 3" in html and "with no language" not in html


def test_balance_warnings_are_given_per_language_with_matched_pairs():
    from metaclip_spark.config import load_config
    from metaclip_spark.pipeline import _warnings as _worldwide_warnings

    config = load_config(overrides={"curation": {"t": 5}})

    def lang(t, matched, curated):
        return {"t": t, "pairs_matched": matched, "pairs_curated": curated}

    counts = {"en": np.array([1, 2, 3, 50]), "ja": np.array([100, 100, 1]), "ko": np.zeros(3, np.int64),
              "th": np.array([1, 2, 2])}
    # en: 50 over t = 5, balanced; ja: nothing over its t = 100; ko: no pairs; th: its t = 3 leaves every match
    # under it, far over p = 6/56 (its counts are too coarse)
    by_lang = {"en": lang(5, 4, 3), "ja": lang(100, 150, 150), "ko": lang(1, 0, 0), "th": lang(3, 4, 4)}
    warnings = _worldwide_warnings(config, by_lang, counts, 6 / 56)
    assert [w.split(":")[0] for w in warnings] == ["ja", "th", "th"]
    assert warnings[0].startswith("ja: balancing keeps everything: no entry's count is over t = 100")
    assert warnings[1].startswith("th: its t = 3, derived from English's tail share 10.7%, leaves 100.0% of")
    assert warnings[2].startswith("th: balancing keeps everything")
    assert _worldwide_warnings(load_config(overrides={"curation": {"t": 5}, "worldwide": {"t_by_lang": {"th": 3}}}),
                               by_lang, counts, 6 / 56)[1].startswith("th: balancing keeps")  # t set: not derived


def test_a_variant_code_is_matched_with_its_prefix_s_list_written_with_a_hyphen_or_an_underscore():
    assert [lang_codes.list_code(c) for c in ("zh-yue", "zh_yue", "zh-min-nan", "be-tarask", "en")] == \
        ["zh", "zh", "zh", "be", "en"]


def test_a_list_file_not_named_by_a_list_code_is_told_what_to_do():
    assert lang_codes.list_name_problem("zh-yue") == (
        "'zh-yue' is a variant code: its texts are matched with zh.json (MetaCLIP 2 merges variants into their "
        "prefix's list); merge its entries into zh.json")
    for code in ("qq-zz", "EN"):  # neither a code nor a variant of one
        assert lang_codes.list_name_problem(code) == (
            f"{code!r} is not a Wikipedia language code (lowercase codes such as en, zh, ja, or 'other': name the "
            "lists <code>.json)")
