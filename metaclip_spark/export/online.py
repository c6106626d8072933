"""Online balancing for a training data loader: the keep decision for (pair, epoch, seed), with numpy only.

MetaCLIP balances online by storing P per pair and drawing again at load time (curation spec, section 4): each
epoch sees a different subset of the head entries while the tail is always kept. `export --online` writes what
a loader needs for that: every matched pair with its entry ids (and `metadata_lang` in a worldwide root) and the
per-entry probability table p_e = min(1, t / c_e) for a chosen t (per language when worldwide).

The draws are the offline ones (balancing/draws.py) with the seed mixed with the epoch: for each matched entry e,
u = entry_draws(pair_hash(epoch_seed(seed, epoch), uuid, text), e), and the pair is kept when u < p_e for any e.
So a decision is a pure function of (seed, epoch, uuid, text, entry id): every worker, process and machine gets
the same subset for the same epoch with no coordination, another one for the next epoch, and the share kept
in an epoch is the sum of P = 1 - prod(1 - p_e) over the pairs, up to binomial noise.

One text per image (`export --online --one-text-per-image`): the export keeps every matched text of an image, next
to each other in one file, and `picked` chooses one of them anew each epoch, seeded by (seed, epoch, uuid), before
its keep draw: MetaCLIP 2's order (its loader's `random.choice` of an image's texts on every pass, then P).

This module imports no Spark (and pyarrow only to read the exported table): a loader depends on numpy alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from metaclip_spark.balancing.draws import _splitmix64, entry_draws, keep_probabilities, pair_hash
from metaclip_spark.root.columns import METADATA_LANG

# `metadata_lang` of pairs in a root curated with one metadata list (MetaCLIP v1): a single table of entries.
NO_LANGUAGE = ""
PROBABILITIES_FILE = "entry_probabilities.parquet"
_EPOCH_MIX = np.uint64(0xD1B54A32D192ED03)  # an odd constant unrelated to entry_draws' golden ratio


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's draws: splitmix64 of the seed mixed with the epoch (a different stream per epoch,
    never the offline draws' own stream for `seed`)."""
    with np.errstate(over="ignore"):
        mixed = np.array([seed], np.uint64) ^ ((np.array([epoch], np.uint64) + np.uint64(1)) * _EPOCH_MIX)
        return int(_splitmix64(mixed)[0])


_PICK_SALT = 0x9E6C63D0676A9A99  # the per-epoch text pick's stream, apart from the keep draws' of the same epoch


def pick_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's pick of a text per image (`OnlineBalancer.picked`)."""
    return epoch_seed(int(seed) ^ _PICK_SALT, epoch)


class EntryProbabilities:
    """p_e per (metadata_lang, entry_id): one dense array per language, indexed by entry id.

    An entry id the table does not hold has p = 1, as balancing.entry_probabilities gives entries never counted.
    """

    def __init__(self, by_language: dict[str, np.ndarray], t: dict[str, int] | None = None):
        self.by_language = {lang: np.asarray(p, dtype=np.float64) for lang, p in by_language.items()}
        self.t = t or {}

    @classmethod
    def from_columns(cls, entry_ids: Sequence[int], probabilities: Sequence[float],
                     languages: Sequence[str] | None = None, t: dict[str, int] | None = None) -> "EntryProbabilities":
        entry_ids = np.asarray(entry_ids, dtype=np.int64)
        probabilities = np.asarray(probabilities, dtype=np.float64)
        langs = np.asarray(languages if languages is not None else [NO_LANGUAGE] * len(entry_ids), dtype=object)
        by_language = {}
        for lang in sorted(set(langs.tolist())):
            rows = langs == lang
            dense = np.ones(int(entry_ids[rows].max()) + 1 if rows.any() else 0, dtype=np.float64)
            dense[entry_ids[rows]] = probabilities[rows]
            by_language[lang] = dense
        return cls(by_language, t)

    @classmethod
    def from_parquet(cls, path: str) -> "EntryProbabilities":
        """The table `export --online` writes (entry_probabilities.parquet: [metadata_lang,] entry_id, entry, count,
        p, t), a file or the export directory holding it. Needs pyarrow."""
        import pyarrow.parquet as pq

        if not path.endswith(".parquet"):
            path = f"{path.rstrip('/')}/{PROBABILITIES_FILE}"
        table = pq.read_table(path)
        langs = table.column(METADATA_LANG).to_pylist() if METADATA_LANG in table.column_names else None
        keys = langs if langs is not None else [NO_LANGUAGE] * table.num_rows
        t = dict(zip(keys, table.column("t").to_pylist()))
        return cls.from_columns(table.column("entry_id").to_numpy(), table.column("p").to_numpy(), langs, t)

    def of(self, lang: str | None, entry_ids: np.ndarray) -> np.ndarray:
        """p_e of the given entry ids of one language (p = 1 for an id past the table's end)."""
        table = self.by_language.get(lang or NO_LANGUAGE)
        if table is None:
            raise KeyError(f"no probabilities for metadata language {lang!r} (the table holds "
                           f"{', '.join(sorted(self.by_language)) or 'none'})")
        entry_ids = np.asarray(entry_ids, dtype=np.int64)
        probs = np.ones(entry_ids.size, dtype=np.float64)
        inside = entry_ids < table.size
        probs[inside] = table[entry_ids[inside]]
        return probs


class OnlineBalancer:
    """Keep decisions for pairs at load time, for a seed and an epoch; stateless, so safe in any worker."""

    def __init__(self, probabilities: EntryProbabilities, seed: int = 0):
        self.probabilities = probabilities
        self.seed = int(seed)

    def keep_probability(self, entry_ids: Sequence[int], lang: str | None = None) -> float:
        """P = 1 - prod(1 - p_e) over the pair's entries: the chance it is kept in any one epoch."""
        ids = np.asarray(entry_ids, dtype=np.int64)
        return float(keep_probabilities(np.array([ids.size]), np.arange(ids.size), self.probabilities.of(lang, ids))[0])

    def keep(self, uuid: str, text: str, entry_ids: Sequence[int], epoch: int, lang: str | None = None) -> bool:
        """Whether the pair is in the subset of `epoch`."""
        ids = np.asarray(entry_ids, dtype=np.int64)
        if ids.size == 0:
            return False
        draws = entry_draws(np.full(ids.size, pair_hash(epoch_seed(self.seed, epoch), uuid, text), np.uint64), ids)
        return bool(np.any(draws < self.probabilities.of(lang, ids)))

    def picked(self, uuids: Sequence[str], texts: Sequence[str], epoch: int) -> np.ndarray:
        """One text per image for `epoch`, as MetaCLIP 2's loader picks one of an image's texts on every pass: True
        for the row holding, among the rows of its uuid, the smallest pair_hash(pick_seed(seed, epoch), uuid, text)
        (ties by the text). A uniform pick, seeded by (seed, epoch, image), whatever the order of the rows; every
        row of an image must be in the call (`export --online --one-text-per-image` writes them next to each
        other in one file)."""
        seed = pick_seed(self.seed, epoch)
        best: dict[str, tuple[int, str, int]] = {}
        for row, (uuid, text) in enumerate(zip(uuids, texts)):
            key = (pair_hash(seed, uuid, text), text, row)
            if uuid not in best or key < best[uuid]:
                best[uuid] = key
        chosen = np.zeros(len(uuids), dtype=bool)
        chosen[[row for _, _, row in best.values()]] = True
        return chosen

    def keep_batch(self, uuids: Sequence[str], texts: Sequence[str], entry_ids: Iterable[Sequence[int]], epoch: int,
                   langs: Sequence[str | None] | None = None) -> np.ndarray:
        """`keep` for many pairs at once (vectorised over their entries): a boolean array, one value per pair."""
        lists = [np.asarray(ids, dtype=np.int64) for ids in entry_ids]
        n = len(lists)
        lengths = np.fromiter((ids.size for ids in lists), dtype=np.int64, count=n)
        flat = np.concatenate(lists) if n else np.zeros(0, np.int64)
        langs = list(langs) if langs is not None else [None] * n
        probs = np.concatenate([self.probabilities.of(lang, ids) for lang, ids in zip(langs, lists)]) if n \
            else np.zeros(0)
        seed = epoch_seed(self.seed, epoch)
        hashes = np.fromiter((pair_hash(seed, u, x) for u, x in zip(uuids, texts)), dtype=np.uint64, count=n)
        rows = np.repeat(np.arange(n), lengths)
        hits = entry_draws(hashes[rows], flat) < probs
        return np.bincount(rows, weights=hits, minlength=n) > 0
