"""Choosing t (balancing/thresholds.py, pure numpy): the plan table against brute force and against the paper's figures."""

from __future__ import annotations

import numpy as np
import pytest

from metaclip_spark.balancing import draws
from metaclip_spark.balancing import thresholds
from metaclip_spark.errors import ConfigError
from metaclip_spark.report.plan import parse_thresholds, resolve_thresholds


def _random_pairs(rng, pairs: int, entries: int):
    lengths = rng.integers(1, 6, pairs)
    flat = rng.integers(0, entries, int(lengths.sum()))
    return lengths, flat


def test_t_series_brackets_the_largest_count():
    assert thresholds.t_series(np.array([0, 3, 21])) == [1, 2, 5, 10, 20, 50]
    assert thresholds.t_series(np.array([0, 20])) == [1, 2, 5, 10, 20]
    assert thresholds.t_series(np.array([1])) == [1]
    assert thresholds.t_series(np.zeros(4, np.int64)) == [1]
    series = thresholds.t_series(np.array([170_001]))  # the paper's t values lie on the way
    assert series[-3:] == [50_000, 100_000, 200_000] and 20_000 in series and len(series) == 17


def test_count_rows_equal_brute_force():
    rng = np.random.default_rng(3)
    counts = np.concatenate([np.zeros(50, np.int64), rng.zipf(1.6, 2000).astype(np.int64)])
    ts = [1, 2, 3, 7, 10, 100, int(counts.max()), int(counts.max()) + 5]
    for row, t in zip(thresholds.count_rows(counts, ts), ts):
        assert row["t"] == t
        assert row["entries_over_t"] == int((counts > t).sum())
        assert row["tail_share"] == pytest.approx(draws.tail_proportion(counts, t), abs=1e-15)
        assert row["matches_after"] == int(np.minimum(counts, t).sum())
        assert row["matches_after_share"] == pytest.approx(np.minimum(counts, t).sum() / counts.sum())


def test_the_papers_400m_setting():
    # Curation spec, section 5: ~16k entries have c_e >= 20k and hold 5.35B of the 5.67B matches (tail ~5.6%);
    # summing min(c_e, t) gives ~0.64B matches at t = 20,000. A count vector shaped like that gives the same table.
    head = np.full(16_000, 5_350_000_000 // 16_000, np.int64)
    tail = np.full(484_000, 320_000_000 // 484_000, np.int64)
    [row] = thresholds.count_rows(np.concatenate([head, tail]), [20_000])
    assert row["entries_over_t"] == 16_000
    assert row["tail_share"] == pytest.approx(0.0564, abs=0.001)
    assert row["matches_after"] == pytest.approx(0.64e9, rel=0.01)


def test_keep_probability_sums_equal_per_pair_probabilities():
    rng = np.random.default_rng(11)
    counts = rng.integers(1, 500, 300)
    lengths, flat = _random_pairs(rng, 5000, counts.size)
    ts = [1, 20, 100, 499, 500]
    sums, certain = thresholds.keep_probability_sums(lengths, flat, counts, ts)
    for i, t in enumerate(ts):
        probs = draws.entry_probabilities(counts, t)
        per_pair = draws.keep_probabilities(lengths, flat, probs)
        assert sums[i] / thresholds.FIXED_POINT == pytest.approx(per_pair.sum(), abs=lengths.size / 2**31)
        assert certain[i] == int((per_pair >= 1.0).sum())
    assert sums[-1] == lengths.size * thresholds.FIXED_POINT  # t over every count: every pair kept


def test_keep_probability_sums_do_not_depend_on_how_pairs_are_batched():
    rng = np.random.default_rng(5)
    counts = rng.integers(1, 10_000, 1000)
    lengths, flat = _random_pairs(rng, 3000, counts.size)
    ts = [10, 1000, 5000]
    whole, _ = thresholds.keep_probability_sums(lengths, flat, counts, ts)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    parts = np.zeros(len(ts), np.int64)
    for start in range(0, lengths.size, 7):  # batches of 7 pairs
        end = min(start + 7, lengths.size)
        part, _ = thresholds.keep_probability_sums(lengths[start:end], flat[offsets[start]:offsets[end]], counts, ts)
        parts += part
    assert np.array_equal(whole, parts)


def test_plan_rows_bound_the_expected_pairs_from_above():
    rng = np.random.default_rng(8)
    counts = rng.integers(1, 300, 200)
    lengths, flat = _random_pairs(rng, 1000, counts.size)
    counts = np.bincount(flat, minlength=counts.size)  # counts consistent with the pairs
    ts = thresholds.t_series(counts)
    sums, certain = thresholds.keep_probability_sums(lengths, flat, counts, ts)
    rows = thresholds.plan_rows(counts, ts, lengths.size, list(sums), list(certain))
    for row in rows:
        assert row["expected_pairs"] <= row["expected_pairs_at_most"] + 1e-6
        assert row["expected_share"] == pytest.approx(row["expected_pairs"] / lengths.size)
    assert rows[-1]["keeps_everything"] and rows[-1]["expected_pairs"] == lengths.size
    assert not rows[0]["keeps_everything"]
    without = thresholds.plan_rows(counts, ts, lengths.size)
    assert without[0]["expected_pairs"] is None and without[0]["expected_pairs_at_most"] == rows[0]["expected_pairs_at_most"]


def test_warning_when_auto_overshoots_its_tail_share():
    # The demo's shape: few entries, small counts: the smallest t reaching 6% gives a 41% tail.
    counts = np.array([1] * 30 + [2] * 40 + [5] * 10 + [21])
    t = draws.auto_threshold(counts, 0.06)
    [warning] = thresholds.balance_warnings(counts, t, "auto", 0.06, pairs_matched=60, pairs_curated=50)
    assert "t = auto could not reach its tail share of 6.0%" in warning and "metaclip-spark plan" in warning
    assert thresholds.balance_warnings(counts, t, "fixed", 0.06, 60, 50) == []  # a fixed t is the user's choice
    smooth = np.arange(1, 10_001)  # many distinct counts: the rule lands close to its target
    t = draws.auto_threshold(smooth, 0.06)
    assert thresholds.balance_warnings(smooth, t, "auto", 0.06, 10_000, 5_000) == []


def test_warning_when_balancing_keeps_everything():
    counts = np.array([3, 3, 3])
    [warning] = thresholds.balance_warnings(counts, 4, "fixed", 0.06, pairs_matched=9, pairs_curated=9)
    assert warning.startswith("balancing keeps everything: no entry's count is over t = 4")
    auto = thresholds.balance_warnings(counts, draws.auto_threshold(counts, 0.06), "auto", 0.06, 9, 9)
    assert [w.split(":")[0] for w in auto] == ["t = auto could not reach its tail share of 6.0%",
                                               "balancing keeps everything"]
    [warning] = thresholds.balance_warnings(np.array([1, 9]), 2, "fixed", 0.06, pairs_matched=9, pairs_curated=9)
    assert warning.startswith("balancing kept every matched pair (9) although 1 entries are over t = 2")
    assert thresholds.balance_warnings(np.array([1, 9]), 2, "fixed", 0.06, pairs_matched=9, pairs_curated=5) == []
    assert thresholds.balance_warnings(np.zeros(3, np.int64), 1, "auto", 0.06, 0, 0) == []


def test_count_decades():
    counts = np.array([0, 1, 9, 10, 99, 100, 999, 1000, 12_345])
    assert [(r["low"], r["high"], r["entries"], r["matches"]) for r in thresholds.count_decades(counts)] == [
        (1, 9, 2, 10), (10, 99, 2, 109), (100, 999, 2, 1099), (1000, 9999, 1, 1000), (10_000, 99_999, 1, 12_345)]
    assert sum(r["matches_share"] for r in thresholds.count_decades(counts)) == pytest.approx(1.0)
    assert thresholds.count_decades(np.zeros(3, np.int64)) == []


def test_thresholds_asked_for_and_the_default_range():
    assert parse_thresholds("20000, 170000,auto") == [20_000, 170_000, "auto"]
    for bad in ("", "0", "-5", "x", "1.5"):
        with pytest.raises(ConfigError):
            parse_thresholds(bad)
    counts = np.array([1] * 30 + [2] * 40 + [5] * 10 + [21])
    assert resolve_thresholds([5, "auto", 5], counts, 0.06, "auto") == ([2, 5], 2)
    assert resolve_thresholds(None, counts, 0.06, 7) == ([1, 2, 5, 7, 10, 20, 50], 2)


# One resolver of t per list (MetaCLIP 2's rule, curation spec section 4) ------------------------------------

def test_resolve_derives_every_language_from_english():
    english = np.array([1, 1, 2, 6, 10, 80])        # t_en = 7: entries under 7 hold 10 of 100 matches, p = .10
    german = np.array([5, 5, 10, 30, 50, 900])       # shares .005 .01 .02 .05 .1 1.0: nearest to .10 is .1 -> 50
    found, p = thresholds.resolve({"en": english, "de": german, "ja": np.zeros(3, np.int64)}, 7, 0.06)
    assert p == pytest.approx(0.10)
    assert found == {"en": 7, "de": 50, "ja": 1}


def test_resolve_auto_applies_the_tail_rule_to_english_then_derives():
    english = np.array([80, 0, 10, 1, 6, 2, 1, 0])   # auto at 6% gives 7 (test_balancing), so p = .10
    german = np.array([5, 5, 10, 30, 50, 900])
    found, p = thresholds.resolve({"en": english, "de": german}, "auto", 0.06)
    assert found == {"en": 7, "de": 50} and p == pytest.approx(0.10)


def test_resolve_without_english_uses_the_tail_share_and_overrides_win():
    german = np.array([5, 5, 10, 30, 50, 900])       # nearest to .06 is .05 -> 30
    found, p = thresholds.resolve({"de": german, "fr": german}, 20_000, 0.06, {"fr": 7})
    assert p == 0.06 and found == {"de": 30, "fr": 7}
