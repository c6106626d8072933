"""The plan table's columns (balancing/thresholds.py) as `plan` and the report show them, v1 and per language."""

from __future__ import annotations

import numpy as np

from metaclip_spark.balancing import thresholds


def test_plan_rows_carry_expected_pairs_and_the_pairs_kept_for_sure_when_summed():
    counts = np.array([1, 4, 8])
    sums = [int(2.5 * thresholds.FIXED_POINT), int(1.25 * thresholds.FIXED_POINT)]
    rows = thresholds.plan_rows(counts, [2, 4], pairs_matched=10, fixed_point_sums=sums, certain=[1, 2])
    assert [(r["expected_pairs"], r["expected_share"], r["pairs_kept_for_sure"]) for r in rows] == [
        (2.5, 0.25, 1), (1.25, 0.125, 2)]
    rows = thresholds.plan_rows(counts, [2], pairs_matched=0, fixed_point_sums=[0], certain=None)
    assert (rows[0]["expected_share"], rows[0]["pairs_kept_for_sure"]) == (0.0, None)


def test_plan_rows_without_the_pairs_pass_give_only_the_upper_bound():
    row, = thresholds.plan_rows(np.array([1, 4, 8]), [4], pairs_matched=5)
    assert row["expected_pairs_at_most"] == 5 and row["matches_after"] == 9
    assert {k: row[k] for k in ("expected_pairs", "expected_share", "pairs_kept_for_sure")} == dict.fromkeys(
        ("expected_pairs", "expected_share", "pairs_kept_for_sure"))
    assert row["keeps_everything"] is False
    assert thresholds.plan_rows(np.array([1, 4]), [4], pairs_matched=5)[0]["keeps_everything"] is True


def test_a_worldwide_plan_row_judges_each_language_at_its_own_t_and_sums_them():
    counts = {"en": np.array([1, 3, 9, 0]), "de": np.array([2, 2, 5]), "ja": np.array([0, 7])}
    ts_by_lang = {"en": [3, 9], "de": [2, 1], "ja": [10, 7]}
    rows = thresholds.count_rows_by_language(counts, [3, 9], ts_by_lang)
    total = sum(int(c.sum()) for c in counts.values())
    for i, row in enumerate(rows):
        t_of = {code: ts[i] for code, ts in ts_by_lang.items()}
        assert row["t"] == [3, 9][i]
        assert row["entries_over_t"] == sum(int((c > t_of[code]).sum()) for code, c in counts.items())
        assert row["matches_after"] == sum(int(np.minimum(c, t_of[code]).sum()) for code, c in counts.items())
        assert row["tail_share"] == sum(int(c[c < t_of[code]].sum()) for code, c in counts.items()) / total
        assert row["matches_after_share"] == row["matches_after"] / total
    # en 1, 3, 9 at t = 3; de 2, 2, 5 at 2; ja 7 at 10 | en at 9; de at 1; ja at 7
    assert [(r["entries_over_t"], r["matches_after"], r["tail_share"]) for r in rows] == [
        (2, 7 + 6 + 7, (1 + 7) / 29), (3, 13 + 3 + 7, (1 + 3) / 29)]


def test_a_pool_without_matches_has_shares_of_zero():
    row, = thresholds.count_rows(np.array([0, 0]), [1])
    assert (row["tail_share"], row["matches_after_share"], row["matches_after"]) == (0.0, 0.0, 0)


def test_keep_probabilities_are_summed_as_integers_even_for_a_batch_of_one_pair():
    """Fixed point (int64) makes the sum exact and the same in any order: a float sum of 2^30-unit values would
    not be past 2^53, about 8 million pairs."""
    assert thresholds.fixed_point(np.array([0.5, 1.0])).tolist() == [1 << 29, 1 << 30]
    assert thresholds.fixed_point(np.array([0.5])).dtype == np.int64
    sums, certain = thresholds.keep_probability_sums(np.array([2]), np.array([0, 1]), np.array([4, 2]), [1, 2])
    assert sums.dtype == certain.dtype == np.int64
    # p = 1/4, 1/2 at t = 1; 1/2, 1 at t = 2
    assert sums.tolist() == [int(round((1 - 0.75 * 0.5) * (1 << 30))), 1 << 30] and certain.tolist() == [0, 1]
    empty = thresholds.keep_probability_sums(np.array([], np.int64), np.array([], np.int64), np.array([4]), [1])
    assert [a.tolist() for a in empty] == [[0], [0]]


def test_the_report_and_plan_share_one_table_its_thresholds_chosen_as_curate_chooses_them():
    """report/plan.py holds the plan table for both: the 1-2-5 series with the run's t and auto's; worldwide,
    English's t, each row giving every other language the t curate derives from it (or its override), and the
    languages without matches left out; no table without an English list."""
    from metaclip_spark.balancing import draws
    from metaclip_spark.report import plan

    counts = np.array([1, 3, 9, 0, 40])
    planned = plan.table_thresholds({"en": counts}, 7, 0.06, per_list=False)  # a v1 run's one list
    assert planned.ts == sorted({1, 2, 5, 10, 20, 50, 7, draws.auto_threshold(counts, 0.06)})
    rows = plan.table(planned, 10, None, None, this_run_t=7)
    assert [r["t"] for r in rows if r["this_run"]] == [7] and [r["t"] for r in rows if r["auto"]] == [planned.auto_t]
    assert rows == [dict(r, auto=r["t"] == planned.auto_t, this_run=r["t"] == 7)
                    for r in thresholds.plan_rows(counts, planned.ts, 10)]
    by_lang = {"en": counts, "de": np.array([2, 2, 5]), "ja": np.array([0, 0])}
    planned = plan.table_thresholds(by_lang, 7, 0.06, {"de": 4})
    assert set(planned.counts) == {"en", "de"} and planned.ts == plan.table_thresholds({"en": counts}, 7, 0.06).ts
    for i, t_en in enumerate(planned.ts):
        derived = thresholds.resolve(by_lang, t_en, 0.06, {"de": 4})[0]
        assert planned.by_lang[i] == derived and derived["de"] == 4
        assert {code: ts[i] for code, ts in planned.summed_ts.items()} == {"en": derived["en"], "de": 4}
    rows = plan.table(planned, 10, None, None, this_run_t=7)
    assert [r["t_by_lang"] for r in rows] == [{"en": d["en"], "de": d["de"]} for d in planned.by_lang]
    assert plan.table_thresholds({"de": by_lang["de"]}, 7, 0.06) is None
    assert plan.report_table(None, 10, None, 7, 0.06) is None
