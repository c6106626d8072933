"""root/records.py: the one file tally behind extract.json, crawl states and status, counters summed, and the run
summary as one record (old summaries read, the JSON written as it always was)."""

from __future__ import annotations

import pytest

from metaclip_spark.errors import InputError
from metaclip_spark.root.records import (FILE_FAILED, FILE_OK, FILE_PARTIAL, FILE_PENDING, RunSummary, is_done,
                                         sum_counters, tally_files)


def test_files_read_whole_or_in_part_are_done_and_the_others_are_read_again():
    assert [is_done(s) for s in (FILE_OK, FILE_PARTIAL, FILE_FAILED, FILE_PENDING, None)] == [
        True, True, False, False, False]


def test_the_tally_counts_each_state_and_lists_failed_and_partial_files_in_order():
    states = [{"file": "a", "status": FILE_OK, "reason": None},
              {"file": "b", "status": FILE_FAILED, "reason": "timeout"},
              {"file": "c", "status": FILE_PARTIAL, "reason": "corrupt member"},
              {"file": "d", "status": FILE_PENDING, "reason": None},
              {"file": "e", "status": FILE_FAILED, "reason": "404"},
              {"file": "f", "status": FILE_PARTIAL, "reason": "cut end"}]
    assert tally_files(iter(states)) == {
        "files_done": 3, "files_partial": 2, "files_failed": 2,
        "failed_files": [{"file": "b", "reason": "timeout"}, {"file": "e", "reason": "404"}],
        "partial_files": [{"file": "c", "reason": "corrupt member"}, {"file": "f", "reason": "cut end"}]}
    assert tally_files([]) == {"files_done": 0, "files_partial": 0, "files_failed": 0, "failed_files": [],
                               "partial_files": []}


def test_counters_are_summed_key_by_key_and_only_numbers_count():
    parts = [{"pairs": 2, "img_tags": 5, "ok": True, "name": "x"}, None, {},
             {"pairs": 3, "bytes_skipped": 7.0, "dropped_no_text": 0}]
    assert sum_counters(parts) == {"pairs": 5, "img_tags": 5, "bytes_skipped": 7, "dropped_no_text": 0}
    assert isinstance(sum_counters(parts)["bytes_skipped"], int)
    assert sum_counters([]) == {}


# --- the run summary ---------------------------------------------------------------------------------------------

# A summary as the first versions wrote it: none of the keys added since (by_crawl, warnings, stages, optout, ...).
OLD_SUMMARY = {"run_id": "2026-11-20T101010-0a1b2c3d", "crawls": ["CC-MAIN-2024-10"], "pairs_in": 16,
               "pairs_matched": 12, "pairs_curated": 9, "t": 3, "t_mode": "fixed", "tail_share": 0.06, "seed": 0,
               "metadata": "m.json", "metadata_digest": "ab" * 32, "entries_total": 6, "entries_matched": 5,
               "entries_over_t": 2, "matches_total": 18, "tail_proportion": 0.33,
               "finished_at": "2026-11-20T10:10:10+00:00"}


def test_an_old_summary_reads_with_the_newer_figures_at_their_defaults():
    summary = RunSummary.from_json(OLD_SUMMARY)
    assert (summary.run_id, summary.t, summary.pairs_curated, summary.crawls) == (
        "2026-11-20T101010-0a1b2c3d", 3, 9, ["CC-MAIN-2024-10"])
    assert (summary.warnings, summary.by_crawl, summary.stages, summary.optout, summary.extract) == (
        [], {}, [], None, None)
    assert not summary.worldwide and summary.by_lang == {} and summary.t_by_lang == {}
    assert "worldwide" not in summary.to_json() and "ingest" not in summary.to_json()  # a v1 run writes neither


def test_a_v1_summary_as_written_today_reads_and_writes_back_key_for_key():
    written = {**OLD_SUMMARY, "mean_entries_per_matched_text": 1.5, "warnings": ["w"], "dedup": "pool",
               "pairs_already_in_pool": 0, "extract": None, "optout": None, "ingest": {"files_listed": 1},
               "stages": [{"stage": "balance", "runs": 1, "seconds": 1.0, "rows": 12}], "config": {"curation": {}},
               "version": "0.1.0", "elapsed_seconds": 3.0,
               "by_crawl": {"c": {"pairs": 16, "pairs_matched": 12, "files_done": 1, "files_partial": 0,
                                  "files_failed": 0, "skipped": {"null_text": 2}, "optout": None,
                                  "pairs_already_in_pool": 0}}}
    summary = RunSummary.from_json(written, exact=True)
    assert summary.by_crawl["c"].skipped == {"null_text": 2} and summary.ingest == {"files_listed": 1}
    assert summary.to_json() == written  # no worldwide key, no matched_by_lang: a v1 summary.json as it always was


def test_a_worldwide_summary_reads_its_languages_and_crawls_as_records():
    written = {**OLD_SUMMARY, "t": None, "worldwide": True, "t_by_lang": {"de": 2, "ja": 4}, "t_overrides": {},
               "english_tail_share": 0.2, "metadata_languages": ["de", "ja"], "kana_no_space": False,
               "by_lang": {code: {"entries": 3, "pairs": 8, "pairs_matched": 6, "pairs_curated": 4, "t": t,
                                  "entries_matched": 2, "entries_over_t": 1, "matches_total": 9,
                                  "tail_proportion": 0.5, "top_entries": [["x", 5]]}
                           for code, t in (("de", 2), ("ja", 4))},
               "pairs_without_list": {"fr": 3}, "pairs_unknown_lang": 1, "languages_with_pairs": 2,
               "by_crawl": {"c": {"pairs": 16, "pairs_matched": 12, "files_done": 1, "files_partial": 0,
                                  "files_failed": 0, "skipped": None, "optout": None, "pairs_already_in_pool": 0,
                                  "matched_by_lang": {"de": 6, "ja": 6}}}}
    summary = RunSummary.from_json(written)
    assert summary.by_lang["ja"].t == 4 and summary.by_lang["de"].top_entries == [["x", 5]]
    assert summary.by_crawl["c"].matched_by_lang == {"de": 6, "ja": 6} and summary.t is None
    # written back, the same JSON (key for key: tools that read summary.json directly see what they always saw)
    assert summary.to_json() == {**written, "warnings": [], "stages": [], "dedup": None,
                                 "pairs_already_in_pool": None, "extract": None, "optout": None, "config": None,
                                 "version": None, "elapsed_seconds": None, "mean_entries_per_matched_text": None}


def test_every_summary_reads_as_its_lists_a_v1_one_as_english_s_one_list():
    """What the readers of a root (report, plan) work on: each list's (entries, t), in the set's order; a v1 run is
    one list, English's, with every entry at its t, and its tables name no list."""
    v1 = RunSummary.from_json(OLD_SUMMARY)
    assert v1.lists == {"en": (OLD_SUMMARY["entries_total"], 3)} and v1.list_column is None
    by_lang = {code: {"entries": n, "pairs": 8, "pairs_matched": 6, "pairs_curated": 4, "t": t, "entries_matched": 2,
                      "entries_over_t": 1, "matches_total": 9, "tail_proportion": 0.5}
               for code, n, t in (("ja", 5, 4), ("de", 3, 2))}
    worldwide = RunSummary.from_json({**OLD_SUMMARY, "worldwide": True, "t_by_lang": {"de": 2, "ja": 4},
                                      "metadata_languages": ["ja", "de"], "by_lang": by_lang})
    assert list(worldwide.lists.items()) == [("ja", (5, 4)), ("de", (3, 2))]
    assert worldwide.list_column == "metadata_lang"


def test_a_summary_without_the_keys_every_run_writes_is_refused_by_name():
    broken = {k: v for k, v in OLD_SUMMARY.items() if k not in ("run_id", "pairs_in")}
    with pytest.raises(InputError, match=r"^root/summary.json is not a run summary: it lacks run_id, pairs_in$"):
        RunSummary.from_json(broken, "root/summary.json")
    with pytest.raises(InputError, match="not a run summary"):
        RunSummary.from_json(["not", "an", "object"])


def test_a_run_writes_no_key_the_record_does_not_declare():
    assert RunSummary.from_json({**OLD_SUMMARY, "later": 1}).to_json() == RunSummary.from_json(OLD_SUMMARY).to_json()
    with pytest.raises(ValueError, match="RunSummary holds no later"):
        RunSummary.from_json({**OLD_SUMMARY, "later": 1}, exact=True)
    with pytest.raises(ValueError, match="CrawlFigures holds no extra"):
        RunSummary.from_json({**OLD_SUMMARY, "by_crawl": {"c": {"pairs": 1, "pairs_matched": 1, "extra": 0}}},
                             exact=True)
