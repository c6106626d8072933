"""MetaCLIP balancing (curation spec, section 4): per-entry probabilities, keep probability, seeded keep draws.

Each (pair, matched entry) gets one uniform draw u = H(seed, uuid, text, entry_id) in [0, 1); the pair is kept
when u < p_e for at least one of its entries, so P(keep) = 1 - prod(1 - p_e). Draws are a pure function of their
inputs: the same subset on any partitioning, cluster size, task retry or rerun, and since p_e = min(1, t/c_e)
only falls when counts rise, a larger pool can only remove pairs, never add them.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 1.0 / (1 << 53)


def entry_probabilities(counts: np.ndarray, t: int) -> np.ndarray:
    """p_e = t / max(c_e, t) = min(1, t / c_e); entries never matched get 1 (they are never drawn)."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.minimum(1.0, t / np.maximum(counts, 1.0))


def keep_probability(entry_probs: np.ndarray) -> float:
    """P = 1 - prod(1 - p_e) over a text's matched entries: kept if any one draw per entry succeeds."""
    with np.errstate(divide="ignore"):  # p_e = 1 gives log(0) = -inf, so P = 1
        return float(-np.expm1(np.sum(np.log1p(-np.asarray(entry_probs, dtype=np.float64)))))


def auto_threshold(counts: np.ndarray, tail_share: float = 0.06) -> int:
    """The tail-proportion rule: the smallest t at which entries with c_e < t hold at least `tail_share` of matches.

    Entries with count 0 hold no matches and are ignored. With sorted distinct counts, the share held below
    t only grows at t = c + 1, so t = 1 + the smallest count c whose entries (c_e <= c) reach the share.
    """
    counts = np.asarray(counts, dtype=np.int64)
    counts = np.sort(counts[counts > 0])
    if counts.size == 0:
        return 1
    cumulative = np.cumsum(counts)
    needed = tail_share * cumulative[-1]
    index = int(np.searchsorted(cumulative, needed, side="left"))
    return int(counts[min(index, counts.size - 1)]) + 1


def tail_proportion(counts: np.ndarray, t: int | np.ndarray) -> float:
    """Share of all matches held by entries with a count under t (curation spec, section 4); t may be given per
    entry (a worldwide report: each entry's language's t)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    return float(counts[counts < t].sum() / total) if total else 0.0


ENGLISH = "en"


def derived_threshold(counts: np.ndarray, p: float) -> int:
    """MetaCLIP 2's t for a non-English language (curation spec, section 4): sort the language's counts (every
    entry of its list, zeros included), take the cumulative share of its matches at each position, and return the
    count at the position whose share is nearest to `p`, either side; on a tie the lower position. Never below 1
    (a language with no matches, or whose nearest position holds a zero count, gets 1)."""
    counts = np.sort(np.asarray(counts, dtype=np.int64))
    total = int(counts.sum())
    if total == 0:
        return 1
    distance = np.abs(np.cumsum(counts) / total - p)
    return max(1, int(counts[int(np.argmin(distance))]))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def pair_hash(seed: int, uuid: str, text: str) -> int:
    """64-bit hash of (seed, uuid, text): the per-pair half of every draw."""
    data = f"{seed}\x1f{uuid}\x1f{text}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def entry_draws(pair_hashes: np.ndarray, entry_ids: np.ndarray) -> np.ndarray:
    """u in [0, 1) for each (pair, entry): splitmix64 of the pair hash mixed with the entry id."""
    with np.errstate(over="ignore"):
        mixed = pair_hashes.astype(np.uint64) ^ ((entry_ids.astype(np.uint64) + np.uint64(1)) * _GOLDEN)
        return (_splitmix64(mixed) >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53


def keep_draw(seed: int, uuid: str, text: str, entry_id: int) -> float:
    """One draw, for one (pair, entry); the scalar form of `entry_draws`."""
    return float(entry_draws(np.array([pair_hash(seed, uuid, text)], np.uint64), np.array([entry_id]))[0])


def keep_probabilities(lengths: np.ndarray, flat_entry_ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """P = 1 - prod(1 - p_e) per pair, for pairs whose entry ids are given flattened with their lengths (0 if none)."""
    return keep_probabilities_flat(lengths, probs[flat_entry_ids])


def keep_probabilities_flat(lengths: np.ndarray, flat_probs: np.ndarray) -> np.ndarray:
    """`keep_probabilities` with each (pair, entry)'s p_e given flattened beside its pair's length."""
    lengths = np.asarray(lengths, dtype=np.int64)
    rows = np.repeat(np.arange(lengths.size), lengths)
    with np.errstate(divide="ignore"):  # p_e = 1 gives log(0) = -inf, so P = 1
        log_miss = np.bincount(rows, weights=np.log1p(-flat_probs), minlength=lengths.size)
    keep_prob = -np.expm1(log_miss)
    keep_prob[lengths == 0] = 0.0
    return keep_prob


def decide(seed: int, uuids: list, texts: list, lengths: np.ndarray, flat_entry_ids: np.ndarray,
           probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep decisions for a batch of pairs whose entry id lists are given flattened with their lengths.

    Returns (keep, keep_prob) as arrays with one value per pair. A pair with no entries is never kept.
    """
    return decide_flat(seed, uuids, texts, lengths, flat_entry_ids, probs[flat_entry_ids])


def decide_flat(seed: int, uuids: list, texts: list, lengths: np.ndarray, flat_entry_ids: np.ndarray,
                flat_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`decide` with each (pair, entry)'s p_e given beside its entry id (worldwide: from the pair's language).
    The draw hashes the entry id, a position in the pair's own language's list."""
    n = len(uuids)
    hashes = np.fromiter((pair_hash(seed, u, x) for u, x in zip(uuids, texts)), dtype=np.uint64, count=n)
    rows = np.repeat(np.arange(n), lengths)
    hits = entry_draws(hashes[rows], flat_entry_ids) < flat_probs
    keep = np.bincount(rows, weights=hits, minlength=n) > 0
    return keep, keep_probabilities_flat(lengths, flat_probs)
