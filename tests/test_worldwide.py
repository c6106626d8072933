"""Worldwide curation (MetaCLIP 2) in local Spark: real multilingual texts and pages, one list per language.

The pool is tests/data/pool/worldwide_pairs.jsonl: real titles and sentences in Russian, Japanese, Thai, Chinese,
Arabic, German, French and English (provenance in tests/data/README.md), each text under several image URLs so
counts rise above t. The metadata set is tests/data/metadata/worldwide/ (no French list: French pairs are counted
and dropped). Every table is checked against the spec's literal rules computed here without Spark.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli, pipeline
from metaclip_spark.balancing import draws
from metaclip_spark.balancing.thresholds import resolve as resolve_t
from metaclip_spark.errors import ConfigError
from metaclip_spark.extraction.ids import image_uuid
from metaclip_spark.ingestion.ingest import InputSpec
from metaclip_spark.matching.lang_codes import metadata_code
from metaclip_spark.extraction.language import identify_language
from metaclip_spark.matching.substrings import reference_match
from metaclip_spark.metadata.lists import Metadata

from conftest import DATA

WORLDWIDE = str(DATA / "metadata" / "worldwide")
T = 6
SEED = 5
COPIES = 4


def _texts() -> list[dict]:
    with open(DATA / "pool" / "worldwide_pairs.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _write_pool(spark, path, copies=COPIES, start=0, lang=True) -> str:
    rows = [dict(r, url=f"{r['url']}?copy={k}") for k in range(start, start + copies) for r in _texts()]
    if not lang:
        rows = [{k: v for k, v in r.items() if k != "lang"} for r in rows]
    spark.createDataFrame(rows).coalesce(2).write.mode("overwrite").parquet(str(path))
    return str(path)


def _config(config, partitions=0, t=T, **worldwide):
    return config.updated({"input": {"partitions": partitions}, "curation": {"t": t, "seed": SEED},
                           **({"worldwide": worldwide} if worldwide else {})})


def _table(path, *columns):
    table = pq.read_table(path)
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)))


def _expected_matches(rows, lists, lang_of) -> list[tuple]:
    expected = []
    for row in rows:
        code = lang_of(row)
        ids = reference_match(row["text"], lists[code], worldwide=True) if code in lists else []
        if ids:
            expected.append((code, image_uuid(row["url"]), row["text"], ids))
    return sorted(expected)


@pytest.fixture(scope="module")
def metadata():
    return Metadata(WORLDWIDE)


@pytest.fixture(scope="module")
def pool(spark, tmp_path_factory):
    return _write_pool(spark, tmp_path_factory.mktemp("ww") / "pool")


@pytest.fixture(scope="module")
def run(spark, config, pool, metadata, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("ww") / "out")
    summary = pipeline.curate(spark, _config(config, partitions=3), InputSpec(pool, "parquet"), metadata, output,
                              report=False)
    return output, summary


def test_each_text_is_matched_against_its_own_languages_list(run, pool, metadata):
    output, summary = run
    rows = pq.read_table(pool).to_pylist()
    expected = _expected_matches(rows, metadata.lists, lambda r: r["lang"])
    assert _table(f"{output}/matched", "metadata_lang", "uuid", "text", "entry_ids") == expected
    matched_langs = {code for code, *_ in expected}
    assert matched_langs == {"ar", "de", "en", "ja", "ru", "th", "zh"}   # every script class matched something
    # French has no list: its pairs are counted, not matched
    assert summary["pairs_without_list"] == {"fr": 4 * COPIES} and summary["pairs_unknown_lang"] == 0
    assert summary["pairs_in"] == len(rows) and summary["pairs_matched"] == len(expected)
    assert {c: v["pairs"] for c, v in summary["by_lang"].items()} == {
        c: n for c, n in Counter(r["lang"] for r in rows).items() if c in metadata.lists}
    assert {c: v["pairs_matched"] for c, v in summary["by_lang"].items()} == Counter(c for c, *_ in expected)


def test_counts_are_per_language_and_entry(run, metadata):
    output, _ = run
    matched = pq.read_table(f"{output}/matched")
    recount = Counter((code, e) for code, ids in zip(matched.column("metadata_lang").to_pylist(),
                                                    matched.column("entry_ids").to_pylist()) for e in ids)
    assert _table(f"{output}/counts", "metadata_lang", "entry_id", "entry", "count") == sorted(
        (code, e, metadata.lists[code][e], n) for (code, e), n in recount.items())
    assert pq.read_table(f"{output}/counts").column_names == ["metadata_lang", "entry_id", "entry", "count"]


def _count_vectors(output, metadata) -> dict[str, np.ndarray]:
    vectors = {code: np.zeros(len(entries), np.int64) for code, entries in metadata.lists.items()}
    for code, entry_id, count in _table(f"{output}/counts", "metadata_lang", "entry_id", "count"):
        vectors[code][entry_id] = count
    return vectors


def test_t_of_every_language_is_derived_from_englishs_tail_share(run, metadata):
    output, summary = run
    vectors = _count_vectors(output, metadata)
    thresholds, p = resolve_t(vectors, T, 0.06)
    assert summary["t_by_lang"] == thresholds and summary["t"] == T
    assert summary["english_tail_share"] == pytest.approx(p)
    assert p == pytest.approx(draws.tail_proportion(vectors["en"], T))
    for code, numbers in summary["by_lang"].items():
        assert numbers["t"] == thresholds[code] >= 1
        assert numbers["entries_over_t"] == int((vectors[code] > thresholds[code]).sum())
        assert numbers["matches_total"] == int(vectors[code].sum())


def _expected_curated(output, metadata, thresholds) -> list[tuple]:
    vectors = _count_vectors(output, metadata)
    kept = []
    for code, uuid, text, ids in _table(f"{output}/matched", "metadata_lang", "uuid", "text", "entry_ids"):
        probs = draws.entry_probabilities(vectors[code], thresholds[code])
        if any(draws.keep_draw(SEED, uuid, text, e) < probs[e] for e in ids):
            kept.append((code, uuid, text, round(draws.keep_probability(probs[ids]), 12)))
    return sorted(kept)


def test_each_pair_is_balanced_with_its_own_languages_probabilities(run, metadata):
    output, summary = run
    curated = [(c, u, x, round(p, 12)) for c, u, x, p in
               _table(f"{output}/curated", "metadata_lang", "uuid", "text", "keep_prob")]
    assert curated == _expected_curated(output, metadata, summary["t_by_lang"])
    assert 0 < len(curated) < summary["pairs_matched"]                       # some pairs were sampled down
    assert {c: v["pairs_curated"] for c, v in summary["by_lang"].items() if v["pairs_curated"]} == \
        Counter(c for c, *_ in curated)


def test_another_partitioning_and_evicted_automata_give_the_same_rows(spark, config, run, pool, tmp_path):
    output, _ = run
    # A bound of 1 byte keeps one automaton at a time: every change of language in a batch rebuilds one.
    metadata = Metadata(WORLDWIDE)
    metadata.automata_max_bytes = 1
    again = str(tmp_path / "again")
    pipeline.curate(spark, _config(config, partitions=7), InputSpec(pool, "parquet"), metadata, again, report=False)
    for table, columns in (("matched", ("metadata_lang", "uuid", "text", "entry_ids")),
                           ("counts", ("metadata_lang", "entry_id", "count")),
                           ("curated", ("metadata_lang", "uuid", "text", "keep_prob"))):
        assert _table(f"{again}/{table}", *columns) == _table(f"{output}/{table}", *columns), table


def test_a_rerun_of_the_same_command_redoes_nothing_and_keeps_the_rows(spark, config, run, pool, metadata):
    output, summary = run
    before = _table(f"{output}/curated", "metadata_lang", "uuid", "text", "keep_prob")
    again = pipeline.curate(spark, _config(config, partitions=3), InputSpec(pool, "parquet"), metadata, output,
                            report=False)
    assert again["ingest"]["files_processed_now"] == 0
    assert _table(f"{output}/curated", "metadata_lang", "uuid", "text", "keep_prob") == before
    assert again["t_by_lang"] == summary["t_by_lang"] and again["run_id"] != "" and again["by_lang"] == summary["by_lang"]


def test_status_and_summary_show_each_language(run, capsys):
    output, summary = run
    assert summary["by_lang"]["de"]["top_entries"][0] == ["Deutsche", 3 * COPIES]  # tied with Auslandsschulen: the lower entry id first
    assert cli.main(["status", output]) == 0
    out = capsys.readouterr().out
    de = summary["by_lang"]["de"]
    assert f"  pairs/matched by language: ja {16 * COPIES}/" in out
    assert (f"  de: {de['pairs']:,} pairs, {de['pairs_matched']:,} matched, {de['pairs_curated']:,} curated; "
            f"t {de['t']:,}, tail share {de['tail_proportion']:.1%}; top: Deutsche {3 * COPIES}, Auslandsschulen {3 * COPIES}") in out


def test_the_report_has_a_row_per_language(spark, run, metadata):
    from metaclip_spark.report.build import write_report

    output, summary = run
    report = write_report(spark, output)
    # The pair numbers take each pair's own language's p_e (its counts and t), as balancing did.
    vectors = _count_vectors(output, metadata)
    probs = {code: draws.entry_probabilities(vectors[code], summary["t_by_lang"][code]) for code in vectors}
    keep = [draws.keep_probability(probs[code][ids])
            for code, ids in _table(f"{output}/matched", "metadata_lang", "entry_ids")]
    assert report["sizes"]["expected_curated"] == pytest.approx(sum(keep), abs=1e-6)
    assert report["balancing"]["pairs_always_kept"] == sum(p >= 1.0 for p in keep) < len(keep)
    assert sum(report["balancing"]["keep_probability_histogram"]["pairs"]) == len(keep)
    # The per-entry numbers take an entry as (language, id), each against its own language's t.
    t_of = summary["t_by_lang"]
    counted = {(code, e): n for code, e, n in _table(f"{output}/counts", "metadata_lang", "entry_id", "count")}
    kept = Counter((code, e) for code, ids in _table(f"{output}/curated", "metadata_lang", "entry_ids") for e in ids)
    numbers = report["balancing"]
    assert numbers["entries_over_t"] == sum(n > t_of[c] for (c, _), n in counted.items()) == \
        sum(v["entries_over_t"] for v in summary["by_lang"].values())
    assert numbers["tail_proportion_before"] == pytest.approx(
        sum(n for (c, _), n in counted.items() if n < t_of[c]) / sum(counted.values()))
    assert numbers["matches_after"] == sum(kept.values())
    assert numbers["entries_over_t_after"] == sum(n > t_of[c] for (c, _), n in kept.items())
    assert numbers["tail_proportion_after"] == pytest.approx(
        sum(n for (c, _), n in kept.items() if n < t_of[c]) / sum(kept.values()))
    assert report["matching"]["entries_matched"] == len(counted)
    top = numbers["top_before"]
    order = {code: i for i, code in enumerate(summary["metadata_languages"])}  # ties: languages in the run's order
    assert [(e["metadata_lang"], e["entry_id"], e["count"]) for e in top] == sorted(
        ((c, e, n) for (c, e), n in counted.items()), key=lambda x: (-x[2], order[x[0]], x[1]))[:len(top)]
    assert all(e["entry"] == metadata.lists[e["metadata_lang"]][e["entry_id"]] for e in top + numbers["top_after"])
    # The plan: t is English's; each row gives every language the t curate derives from it, and sums over languages.
    rows = report["plan"]["rows"]
    assert [row["t"] for row in rows if row["this_run"]] == [T] and len(rows) > 2
    matched_rows = _table(f"{output}/matched", "metadata_lang", "entry_ids")
    for row in rows:
        derived, _ = resolve_t(vectors, row["t"], 0.06)
        assert row["t_by_lang"] == {code: derived[code] for code in row["t_by_lang"]}
        assert set(row["t_by_lang"]) == {code for code, _ in matched_rows}
        at = {code: draws.entry_probabilities(vectors[code], derived[code]) for code in row["t_by_lang"]}
        assert row["expected_pairs"] == pytest.approx(
            sum(draws.keep_probability(at[code][ids]) for code, ids in matched_rows), abs=1e-6)
        assert row["entries_over_t"] == sum(n > derived[c] for (c, _), n in counted.items())
        assert row["matches_after"] == sum(min(n, derived[c]) for (c, _), n in counted.items())
    assert next(row for row in rows if row["this_run"])["expected_pairs"] == pytest.approx(sum(keep), abs=1e-6)
    # The sample captions are split by the run's own draws (each pair's own language's p_e), and named per language.
    samples = report["samples"]
    curated = {(code, uuid, text): round(p, 12) for code, uuid, text, p in
               _table(f"{output}/curated", "metadata_lang", "uuid", "text", "keep_prob")}
    assert samples["curated"] and samples["dropped"]
    for item in samples["curated"]:
        assert curated[(item["metadata_lang"], item["uuid"], item["text"])] == round(item["keep_prob"], 12)
        assert item["entries"] == [metadata.lists[item["metadata_lang"]][e] for e in item["entry_ids"]]
    assert not {(item["metadata_lang"], item["uuid"], item["text"]) for item in samples["dropped"]} & set(curated)
    languages = report["languages"]
    assert list(languages["by_lang"])[0] == "ja"                         # most pairs first
    assert languages["by_lang"]["th"] == summary["by_lang"]["th"] and languages["pairs_without_list"] == {"fr": 16}
    page = (Path(output) / "report" / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="languages">'):]
    section = section[:section.index("</section>")]
    assert "จุลินทรีย์ (" in section
    assert re.search(r"Not matched, no list for their language \(<code>other</code>: [^)]*\): fr 16\.", section)
    assert section.count("<tr>") == 1 + len(summary["by_lang"])


def _plan(argv, capsys) -> dict:
    assert cli.main(["plan", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_plan_of_one_language_sums_its_own_pairs_keep_probabilities(spark, run, metadata, capsys):
    """`plan --lang` tabulates one language's counts and matched pairs; its expected pairs at the t the run gave that
    language are the plain sum of those pairs' keep probabilities (the run's own p_e), and its row is marked."""
    output, summary = run
    vectors = _count_vectors(output, metadata)
    matched = _table(f"{output}/matched", "metadata_lang", "entry_ids")
    sampled = [code for code, numbers in summary["by_lang"].items() if numbers["entries_over_t"]]
    assert sampled, "the pool samples no language down: the check below would not test the sums"
    for code in sampled[:2]:
        t = summary["t_by_lang"][code]
        plan = _plan(["--output", output, "--lang", code, "--t", f"{t},{10 * t}"], capsys)
        assert plan["language"] == code and plan["this_run_t"] == t
        assert plan["pairs_matched"] == summary["by_lang"][code]["pairs_matched"]
        assert plan["matches_total"] == int(vectors[code].sum())
        at_t, above = plan["rows"]
        assert at_t["this_run"] and not above["this_run"]
        assert at_t["entries_over_t"] == summary["by_lang"][code]["entries_over_t"]
        probs = draws.entry_probabilities(vectors[code], t)
        expected = sum(draws.keep_probability(probs[ids]) for lang, ids in matched if lang == code)
        assert at_t["expected_pairs"] == pytest.approx(expected, abs=1e-6) and at_t["expected_pairs"] < plan["pairs_matched"]
        assert above["expected_pairs"] == plan["pairs_matched"]                  # 10 t keeps every pair
    # Without --lang, plan prints the root's per-language table (from summary.json) and how to plan one language;
    # a language the root has no pair of is refused.
    capsys.readouterr()
    assert cli.main(["plan", "--output", output, "--counts-only"]) == 0
    table = capsys.readouterr().out
    assert [line.split()[0] for line in table.splitlines()[2:9]] == ["ja", "th", "en", "ru", "zh", "de", "ar"]
    assert "Plan one language's t with --lang CODE" in table
    assert cli.main(["plan", "--output", output, "--counts-only", "--lang", "fr"]) == 2
    assert "--lang fr: no pair of" in capsys.readouterr().err


def test_a_pool_without_a_lang_column_is_labelled_by_lid176(spark, config, metadata, tmp_path):
    pool = _write_pool(spark, tmp_path / "pool", copies=1, lang=False)
    output = str(tmp_path / "out")
    summary = pipeline.curate(spark, _config(config), InputSpec(pool, "parquet"), metadata, output, report=False)
    rows = pq.read_table(pool).to_pylist()
    labels = {r["text"]: identify_language(r["text"])[0] for r in rows}
    expected = _expected_matches(rows, metadata.lists, lambda r: metadata_code(labels[r["text"]]))
    assert _table(f"{output}/matched", "metadata_lang", "uuid", "text", "entry_ids") == expected
    assert summary["pairs_matched"] == len(expected)
    assert _table(f"{output}/matched", "text", "lang") == sorted((x, labels[x]) for _, _, x, _ in expected)
    # lid.176 gets most of these real texts right: the scripts at least
    assert {code for code, *_ in expected} >= {"ar", "ja", "ru", "th", "zh"}


def test_common_crawl_pages_keep_every_language_and_match_in_their_own(spark, config, metadata, tmp_path):
    listing = tmp_path / "warc.paths"
    listing.write_text(f"{DATA / 'cc' / 'warcfile.warc.gz'}\n")
    output = str(tmp_path / "cc")
    summary = pipeline.curate(spark, _config(config, t=1), InputSpec(str(listing), "warc-manifest",
                                                                      crawl="CC-MAIN-2020-34"),
                              metadata, output, report=False)
    pairs = pq.read_table(f"{output}/pairs").to_pylist()
    languages = Counter(p["lang"] for p in pairs)
    assert {"zh", "ru", "de", "nl"} <= set(languages)                   # v1 would have kept English only
    expected = _expected_matches(pairs, metadata.lists, lambda p: metadata_code(p["lang"]))
    assert _table(f"{output}/matched", "metadata_lang", "uuid", "text", "entry_ids") == expected
    assert {"zh", "ru", "de"} <= {code for code, *_ in expected}        # GBK pages decoded and matched in Chinese
    assert summary["pairs_without_list"]["nl"] == languages["nl"]


def test_texts_without_a_language_go_to_the_other_list_and_variants_to_their_prefixs(spark, config, tmp_path,
                                                                                    capsys):
    """MetaCLIP 2's routing (substr_matching.lid_langcode_to_metadata_langcode, align_lid_to_wiki.py): a text with
    an empty language is matched with other.json when the set has one (else counted as without a list), a variant
    code with its prefix's list. The Chinese texts of the real pool are relabelled "", null, zh-yue, zh_classical."""
    relabel = ["", None, "zh-yue", "zh_classical"]
    rows, k = [], 0
    for r in _texts():
        if r["lang"] == "zh":
            r, k = dict(r, lang=relabel[k % 4]), k + 1
        rows.append(r)
    pool = str(tmp_path / "pool")
    spark.createDataFrame(rows, "url string, text string, lang string").coalesce(1).write.parquet(pool)
    lists = tmp_path / "lists"
    lists.mkdir()
    for path in Path(WORLDWIDE).iterdir():
        (lists / path.name).write_bytes(path.read_bytes())
    (lists / "other.json").write_text(json.dumps(["马克思", "维基百科", "blog"], ensure_ascii=False), encoding="utf-8")
    with_other = Metadata(str(lists))
    code_of = {"": "other", None: "other", "zh-yue": "zh", "zh_classical": "zh"}
    summary = pipeline.curate(spark, _config(config), InputSpec(pool, "parquet"), with_other, str(tmp_path / "a"),
                              report=False)
    expected = _expected_matches(rows, with_other.lists, lambda r: code_of.get(r["lang"], r["lang"]))
    assert _table(str(tmp_path / "a" / "matched"), "metadata_lang", "uuid", "text", "entry_ids") == expected
    assert {code for code, *_ in expected} >= {"other", "zh"} and summary["by_lang"]["other"]["pairs"] == 4
    assert "other" not in summary["pairs_without_list"] and "zh-yue" not in summary["by_lang"]
    (lists / "other.json").unlink()  # without other.json: counted as without a list
    (lists / "ko.json").write_text('["김치"]', encoding="utf-8")  # a language of the set with no pairs
    summary = pipeline.curate(spark, _config(config, t=1000), InputSpec(pool, "parquet"), Metadata(str(lists)),
                              str(tmp_path / "b"), report=False)
    assert summary["pairs_without_list"] == {"fr": 4, "other": 4} and summary["by_lang"]["zh"]["pairs"] == 4
    # t = 1000 keeps every pair: said per language with matched pairs, not `warnings: None`; counted languages
    # are those with pairs
    with_pairs = sorted(c for c, v in summary["by_lang"].items() if v["pairs"])
    assert "ko" not in with_pairs and summary["languages_with_pairs"] == len(with_pairs) == 7
    assert summary["pairs_curated"] == summary["pairs_matched"]
    assert any(w.startswith("en: balancing keeps everything: no entry's count is over t = 1,000")
               for w in summary["warnings"])
    assert {w.split(":")[0] for w in summary["warnings"]} == {c for c in with_pairs
                                                             if summary["by_lang"][c]["pairs_matched"]}
    capsys.readouterr()
    cli._print_summary(summary, str(tmp_path / "b"))
    out = capsys.readouterr().out
    assert f"pairs in {len(with_pairs)} languages" in out and "(1 languages with no pairs not shown)" in out
    # the same lists under the other kana setting: the root says which setting it was matched with
    with pytest.raises(ConfigError, match=r"same lists matched with worldwide.kana_no_space = false \(now true\): "
                                          r"pass --rematch"):
        pipeline.curate(spark, _config(config), InputSpec(pool, "parquet"), Metadata(str(lists), kana=True),
                        str(tmp_path / "b"), report=False)


def test_a_v1_root_is_not_rematched_worldwide_without_extracting_again(spark, config, metadata, tmp_path):
    listing = tmp_path / "warc.paths"
    listing.write_text(f"{DATA / 'cc' / 'warcfile.warc.gz'}\n")
    source = InputSpec(str(listing), "warc-manifest", crawl="CC-MAIN-2020-34")
    output = str(tmp_path / "root")
    pipeline.curate(spark, _config(config), source, Metadata(str(DATA / "metadata" / "small.json")), output,
                    report=False)
    with pytest.raises(ConfigError, match="extracted keeping only en texts; a worldwide run needs every language"):
        pipeline.curate(spark, _config(config), source, metadata, output, rematch=True, report=False)
    summary = pipeline.curate(spark, _config(config), source, metadata, output, force=True, report=False)
    assert summary["worldwide"] and "zh" in summary["by_lang"] and summary["pairs_in"] > 3


def test_with_fixed_t_per_language_a_larger_pool_keeps_a_subset(spark, config, metadata, tmp_path):
    fixed = {"ar": 3, "de": 4, "ja": 2, "ru": 3, "th": 2, "zh": 3}
    small = _write_pool(spark, tmp_path / "small", copies=2)
    large = _write_pool(spark, tmp_path / "large", copies=6)
    runs = {}
    for name, pool in (("small", small), ("large", large)):
        output = str(tmp_path / f"out-{name}")
        summary = pipeline.curate(spark, _config(config, t=T, t_by_lang=fixed), InputSpec(pool, "parquet"),
                                  metadata, output, report=False)
        assert summary["t_by_lang"] == dict(fixed, en=T)
        runs[name] = set(_table(f"{output}/curated", "metadata_lang", "uuid", "text"))
    small_pairs = {(r["lang"], image_uuid(r["url"]), r["text"]) for r in pq.read_table(small).to_pylist()}
    assert runs["large"] & small_pairs <= runs["small"]
    assert runs["large"] & small_pairs != runs["small"]                 # counts rose: some pairs left


def test_t_by_lang_cannot_set_english(config):
    with pytest.raises(ConfigError, match="curation.t"):
        config.updated({"worldwide": {"t_by_lang": {"en": 5}}})


def test_cli_names_a_bad_list_and_the_unbuilt_default(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "set"
    bad.mkdir()
    (bad / "zh.json").write_text('["苹果", 1]')
    assert cli.main(["explain", "--metadata", str(bad), "苹果"]) == 2
    assert "zh.json: entry 1 is int" in capsys.readouterr().err
    monkeypatch.setattr("metaclip_spark.metadata.lists.default_worldwide_path", lambda: tmp_path / "missing")
    assert cli.main(["explain", "--metadata", "worldwide", "苹果"]) == 2
    assert "make metadata-worldwide" in capsys.readouterr().err


def test_explain_matches_in_the_texts_language(capsys):
    assert cli.main(["explain", "--metadata", WORLDWIDE, "--lang", "ja", "--kana-no-space", "true",
                     "東京のフリーランスのススメ"]) == 0
    out = capsys.readouterr().out
    assert "language: ja (--lang)" in out and "'フリーランス'" in out and "'ススメ'" in out
    assert cli.main(["explain", "--metadata", WORLDWIDE, "--lang", "ja", "東京のフリーランスのススメ"]) == 0
    assert "matched 0 of" in capsys.readouterr().out                 # the default, the reference's: kana edges padded
    assert cli.main(["explain", "--metadata", WORLDWIDE, "--lang", "zh-yue", "我喜欢吃苹果"]) == 0
    assert "language: zh (--lang)" in capsys.readouterr().out        # a variant is matched with its prefix's list
