"""Choosing t: what each threshold gives, as numbers (pure numpy, no Spark; curation spec, sections 4 and 5).

For a threshold t and the per-entry counts c_e of a pool:
- entries over t: entries with c_e > t, the ones balancing samples down (p_e = t / c_e < 1);
- tail share: the share of all matches held by entries with c_e < t (the `auto` rule picks the smallest t where it
  reaches `curation.tail_share`, ~6% in MetaCLIP);
- matches after balancing: sum of min(c_e, t), the paper's figure (~0.64B matches at t = 20,000 for 400M pairs).
  The curated set holds somewhat more: a pair kept for one entry also brings its other entries;
- expected curated pairs: the sum over matched pairs of P = 1 - prod(1 - p_e) over the pair's entries. Unlike the
  others it needs each pair's entry set, not only the counts: `keep_probability_sums` adds it up batch by batch
  (the Spark pass in report/plan.py). Without that pass, min(pairs matched, sum of min(c_e, t)) bounds it from above
  (P <= sum of p_e over the pair's entries, and summed over pairs that is sum of min(c_e, t)).

Every function takes one count vector, so a pool curated per language (MetaCLIP 2) gets its table per language by
calling them with each language's counts.
"""

from __future__ import annotations

import numpy as np

from metaclip_spark.balancing import draws

# P is summed in fixed point, P rounded to a multiple of 2^-30 per pair: integer sums are exact, so the total is
# the same on any partitioning or batch size, and rounding moves it by at most n * 2^-31 (about one pair in 2^31).
FIXED_POINT = 1 << 30
# `t = auto` is said to miss its tail share when the tail it gets is more than this much larger (relatively): on a
# small pool the step from one distinct count to the next can jump far past the target.
AUTO_TAIL_TOLERANCE = 0.5


def resolve(counts_by_lang: dict[str, np.ndarray], t: int | str, tail_share: float,
            overrides: dict[str, int] | None = None) -> tuple[dict[str, int], float]:
    """({language: t}, p): the t each list of a pool is balanced at, with MetaCLIP 2's rule (curation spec section 4).
    Balance, plan, report and export all resolve t here. English's t is `t` ("auto": the tail rule on English's
    counts; a v1 run's one list is English's); p is the share of English matches held by entries under it; every
    other language's t is derived from p (draws.derived_threshold). With no English matches in the pool, p is
    `tail_share`. `overrides` (worldwide.t_by_lang) sets a language's t outright."""
    english = np.asarray(counts_by_lang.get(draws.ENGLISH, np.zeros(0, np.int64)), dtype=np.int64)
    if t == "auto":
        t = draws.auto_threshold(english, tail_share)
    p = draws.tail_proportion(english, int(t)) if english.sum() > 0 else tail_share
    thresholds = {lang: int(t) if lang == draws.ENGLISH else draws.derived_threshold(counts, p)
                  for lang, counts in counts_by_lang.items()}
    thresholds.update({lang: int(value) for lang, value in (overrides or {}).items() if lang in thresholds})
    return thresholds, p


def auto_t(counts: np.ndarray, tail_share: float) -> int:
    """The t `auto` gives one list on its own (its tail rule): `resolve` of that list as the pool's English one."""
    return resolve({draws.ENGLISH: counts}, "auto", tail_share)[0][draws.ENGLISH]


def t_series(counts: np.ndarray) -> list[int]:
    """Thresholds 1, 2, 5, 10, 20, 50, ... up to the first one at or over the largest count (where balancing keeps
    every pair): a range that brackets any useful t in ~3 values per decade."""
    largest = int(np.max(counts, initial=0))
    series, decade = [], 1
    while True:
        for step in (1, 2, 5):
            series.append(step * decade)
            if step * decade >= largest:
                return series
        decade *= 10


def _count_sums(counts: np.ndarray, ts: list[int]) -> tuple[list[int], list[int], list[int], int]:
    """Per t: entries over t, matches held by entries under t, matches after balancing; and all matches."""
    counts = np.asarray(counts, dtype=np.int64)
    ordered = np.sort(counts[counts > 0])
    cumulative = np.concatenate([[0], np.cumsum(ordered)])
    over, tail, after = [], [], []
    for t in ts:
        under = int(np.searchsorted(ordered, t, side="left"))  # entries with c_e < t
        at_most = int(np.searchsorted(ordered, t, side="right"))  # entries with c_e <= t
        over.append(ordered.size - at_most)
        tail.append(int(cumulative[under]))
        after.append(int(cumulative[at_most]) + (ordered.size - at_most) * int(t))
    return over, tail, after, int(cumulative[-1])


def _rows(ts: list[int], over: list[int], tail: list[int], after: list[int], total: int) -> list[dict]:
    return [{"t": int(t), "entries_over_t": int(o), "tail_share": float(u / total) if total else 0.0,
             "matches_after": int(a), "matches_after_share": float(a / total) if total else 0.0}
            for t, o, u, a in zip(ts, over, tail, after)]


def count_rows(counts: np.ndarray, ts: list[int]) -> list[dict]:
    """Per t, what the counts alone say: entries over t, tail share, matches after balancing (sum of min(c_e, t))
    and the share of all matches that is."""
    return _rows(ts, *_count_sums(counts, ts))


def count_rows_by_language(counts_by_lang: dict[str, np.ndarray], ts: list[int],
                           ts_by_lang: dict[str, list[int]]) -> list[dict]:
    """count_rows of a worldwide pool: row i is labelled ts[i] (English's t) and judges each language's entries
    against that language's own t, ts_by_lang[language][i]; entries and matches are summed over the languages."""
    over, tail, after, total = np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64), np.zeros(len(ts), np.int64), 0
    for code, counts in counts_by_lang.items():
        language_over, language_tail, language_after, language_total = _count_sums(counts, ts_by_lang[code])
        over += language_over
        tail += language_tail
        after += language_after
        total += language_total
    return _rows(ts, over.tolist(), tail.tolist(), after.tolist(), total)


def fixed_point(keep_prob: np.ndarray) -> np.ndarray:
    """Keep probabilities in fixed point (int64, units of 1/FIXED_POINT): summed as integers, exactly, in any order."""
    return np.rint(np.asarray(keep_prob) * FIXED_POINT).astype(np.int64)


def keep_probability_sums(lengths: np.ndarray, flat_entry_ids: np.ndarray, counts: np.ndarray,
                          ts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """For pairs given as flattened entry id lists (as balancing takes them): per t, the sum of the pairs' keep
    probabilities in fixed point (int64, units of 1/FIXED_POINT) and the pairs kept for sure (P = 1)."""
    sums = np.zeros(len(ts), dtype=np.int64)
    certain = np.zeros(len(ts), dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return sums, certain
    # p_e only for the entries these pairs hold (elementwise, so the same values as over the whole count vector):
    # the vector of every entry, once per t and batch, cost more than the pairs' own probabilities.
    flat_counts = np.asarray(counts, dtype=np.float64)[flat_entry_ids]
    for i, t in enumerate(ts):
        keep_prob = draws.keep_probabilities_flat(lengths, draws.entry_probabilities(flat_counts, t))
        sums[i] = int(fixed_point(keep_prob).sum())
        certain[i] = int(np.count_nonzero(keep_prob >= 1.0))
    return sums, certain


def plan_rows(counts: np.ndarray, ts: list[int], pairs_matched: int, fixed_point_sums: list[int] | None = None,
              certain: list[int] | None = None) -> list[dict]:
    """The plan table: count_rows, plus the expected curated pairs from the summed keep probabilities when given,
    else only their upper bound min(pairs matched, sum of min(c_e, t))."""
    return expected_rows(count_rows(counts, ts), pairs_matched, fixed_point_sums, certain)


def expected_rows(rows: list[dict], pairs_matched: int, fixed_point_sums: list[int] | None = None,
                  certain: list[int] | None = None) -> list[dict]:
    """Count rows (count_rows, count_rows_by_language) with the expected curated pairs added (see plan_rows)."""
    for i, row in enumerate(rows):
        row["expected_pairs_at_most"] = min(int(pairs_matched), row["matches_after"])
        if fixed_point_sums is not None:
            expected = int(fixed_point_sums[i]) / FIXED_POINT
            row["expected_pairs"] = expected
            row["expected_share"] = expected / pairs_matched if pairs_matched else 0.0
            row["pairs_kept_for_sure"] = int(certain[i]) if certain is not None else None
        else:
            row["expected_pairs"] = row["expected_share"] = row["pairs_kept_for_sure"] = None
        row["keeps_everything"] = row["entries_over_t"] == 0
    return rows


def auto_misses_tail(counts: np.ndarray, t: int, tail_share: float) -> float | None:
    """The tail share `t = auto` got when it overshoots the target by more than AUTO_TAIL_TOLERANCE; else None."""
    achieved = draws.tail_proportion(counts, t)
    return achieved if achieved > tail_share * (1 + AUTO_TAIL_TOLERANCE) else None


def balance_warnings(counts: np.ndarray, t: int, t_mode: str, tail_share: float, pairs_matched: int,
                     pairs_curated: int | None = None) -> list[str]:
    """What a user should know before training on a balanced set, in words: `t = auto` far from its tail share, or
    balancing that removed nothing."""
    counts = np.asarray(counts, dtype=np.int64)
    warnings = []
    if t_mode == "auto" and counts.any():
        achieved = auto_misses_tail(counts, t, tail_share)
        if achieved is not None:
            warnings.append(
                f"t = auto could not reach its tail share of {tail_share:.1%}: entries under t = {t:,} hold "
                f"{achieved:.1%} of matches (the pool's counts are too coarse: the next smaller t holds less than "
                f"{tail_share:.1%}); choose t with `metaclip-spark plan`")
    over_t = int((counts > t).sum())
    if pairs_matched and over_t == 0:
        warnings.append(f"balancing keeps everything: no entry's count is over t = {t:,}, so every matched pair "
                        f"has P = 1 ({pairs_matched:,} pairs); a smaller t balances (see `metaclip-spark plan`)")
    elif pairs_matched and pairs_curated is not None and pairs_curated == pairs_matched:
        warnings.append(f"balancing kept every matched pair ({pairs_matched:,}) although {over_t:,} entries are over "
                        f"t = {t:,}: each pair also matches an entry under t (P = 1)")
    return warnings


def count_decades(counts: np.ndarray) -> list[dict]:
    """Entries by count decade (1-9, 10-99, 100-999, ...): how many entries, and how many of all matches they hold."""
    counts = np.asarray(counts, dtype=np.int64)
    positive = counts[counts > 0]
    total = int(positive.sum())
    if positive.size == 0:
        return []
    powers = 10 ** np.arange(19, dtype=np.int64)  # integer decades: no floating log10 at the edges (999, 1000)
    decades = np.searchsorted(powers, positive, side="right") - 1
    rows = []
    for d in range(int(decades.max()) + 1):
        members = positive[decades == d]
        rows.append({"low": 10 ** d, "high": 10 ** (d + 1) - 1, "entries": int(members.size),
                     "matches": int(members.sum()), "matches_share": float(members.sum() / total)})
    return rows
