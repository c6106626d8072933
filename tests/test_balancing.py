"""Balancing (curation spec, section 4): p_e, P = 1 - prod(1 - p_e), the auto threshold, seeded draws."""

import numpy as np
import pytest

from metaclip_spark.balancing import draws


def test_entry_probability_is_t_over_count_capped_at_one():
    counts = np.array([0, 1, 10, 20, 40, 1000])
    assert draws.entry_probabilities(counts, 20).tolist() == [1.0, 1.0, 1.0, 1.0, 0.5, 0.02]


@pytest.mark.parametrize("probs, expected", [
    ([0.5], 0.5),
    ([0.5, 0.5], 0.75),  # one draw per entry, kept if any succeeds: not a sum (1.0), not a max (0.5)
    ([0.1, 0.2, 0.5], 1 - 0.9 * 0.8 * 0.5),
    ([1.0, 0.01], 1.0),  # a tail entry keeps the text
    ([0.02, 0.02, 0.02, 0.02], 1 - 0.98 ** 4),
])
def test_keep_probability_is_one_minus_product_of_misses(probs, expected):
    assert draws.keep_probability(np.array(probs)) == pytest.approx(expected, rel=1e-12)


def test_auto_threshold_is_where_the_tail_holds_the_share():
    # 100 matches in all; sorted counts 1,1,2,6,10,80: entries with c_e < t must hold >= 6% -> 1+1+2+6 = 10%
    # is first reached below t = 7 (entries <= 6), while below t = 6 they hold only 4%.
    counts = np.array([80, 0, 10, 1, 6, 2, 1, 0])
    assert draws.auto_threshold(counts, 0.06) == 7
    assert draws.auto_threshold(counts, 0.04) == 3  # 1+1+2 = 4% reached with entries <= 2
    assert draws.auto_threshold(counts, 0.02) == 2  # 1+1
    assert draws.auto_threshold(counts, 0.5) == 81  # only the 80 holds the rest
    assert draws.auto_threshold(np.zeros(3), 0.06) == 1


def test_auto_threshold_matches_the_tail_rule_on_a_zipf_pool():
    counts = (1_000_000 / np.arange(1, 5001) ** 1.1).astype(np.int64)
    t = draws.auto_threshold(counts, 0.06)
    share_below = counts[counts < t].sum() / counts.sum()
    share_below_lower = counts[counts < t - 1].sum() / counts.sum()
    assert share_below >= 0.06 > share_below_lower


def test_draws_are_a_pure_function_of_seed_uuid_text_and_entry():
    a = draws.keep_draw(0, "abc", "a dog", 5)
    assert a == draws.keep_draw(0, "abc", "a dog", 5)
    others = {draws.keep_draw(1, "abc", "a dog", 5), draws.keep_draw(0, "abd", "a dog", 5),
              draws.keep_draw(0, "abc", "a dog.", 5), draws.keep_draw(0, "abc", "a dog", 6)}
    assert a not in others and len(others) == 4
    assert 0.0 <= a < 1.0


def test_draws_are_uniform():
    hashes = np.array([draws.pair_hash(3, f"u{i}", "text") for i in range(20000)], dtype=np.uint64)
    u = draws.entry_draws(hashes, np.full(20000, 42))
    assert abs(u.mean() - 0.5) < 0.01
    assert np.histogram(u, bins=10, range=(0, 1))[0].min() > 1800


def test_decide_keeps_each_pair_at_its_probability_and_agrees_with_scalar_draws():
    n = 20000
    uuids = [f"{i:024x}" for i in range(n)]
    texts = ["a caption"] * n
    probs = np.array([1.0, 0.5, 0.1, 0.02])
    lengths = np.full(n, 2)
    flat = np.tile([1, 2], n)  # every pair matched entries 1 and 2: P = 1 - 0.5 * 0.9 = 0.55
    keep, keep_prob = draws.decide(7, uuids, texts, lengths, flat, probs)
    assert np.allclose(keep_prob, 0.55)
    assert abs(keep.mean() - 0.55) < 0.015
    for i in range(50):
        expected = any(draws.keep_draw(7, uuids[i], texts[i], e) < probs[e] for e in (1, 2))
        assert keep[i] == expected


def test_a_pair_with_a_tail_entry_is_always_kept():
    keep, keep_prob = draws.decide(0, ["u1", "u2"], ["x", "y"], np.array([2, 1]), np.array([3, 0, 0]),
                                       np.array([1.0, 0.5, 0.5, 0.0001]))
    assert keep.tolist() == [True, True] and keep_prob.tolist() == [1.0, 1.0]


def test_raising_counts_only_removes_pairs():
    n = 5000
    rng = np.random.default_rng(0)
    uuids = [f"{i:024x}" for i in range(n)]
    texts = [f"text {i}" for i in range(n)]
    lengths = rng.integers(1, 5, n)
    flat = rng.integers(0, 50, lengths.sum())
    counts = rng.integers(1, 200, 50)
    before, _ = draws.decide(1, uuids, texts, lengths, flat, draws.entry_probabilities(counts, 40))
    after, _ = draws.decide(1, uuids, texts, lengths, flat,
                                draws.entry_probabilities(counts + rng.integers(0, 300, 50), 40))
    assert after.sum() < before.sum()
    assert not (after & ~before).any()
