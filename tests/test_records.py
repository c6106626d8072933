"""root/records.py: the one file tally behind extract.json, crawl states and status, and counters summed."""

from __future__ import annotations

from metaclip_spark.root.records import (FILE_FAILED, FILE_OK, FILE_PARTIAL, FILE_PENDING, is_done, sum_counters,
                                    tally_files)


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
