"""Online balancing (metaclip_spark.export.online): the keep decision of (pair, epoch, seed), without Spark.

The statistical tests draw a pool once from a seeded generator (the pool is test data; the decisions under test
are the module's hashes) and hold every epoch's kept count within 4 sigma of its expectation, the sum of P.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.balancing import draws
from metaclip_spark.export.online import NO_LANGUAGE, EntryProbabilities, OnlineBalancer, epoch_seed

from conftest import REPO

ENTRIES = 300
T = 40
EPOCHS = 6


@pytest.fixture(scope="module")
def pool():
    """20,000 pairs matching 1-4 of 300 entries with Zipf-like counts: most entries far over t, a tail under it."""
    rng = np.random.default_rng(2024)
    weights = 1.0 / np.arange(1, ENTRIES + 1) ** 1.1
    weights /= weights.sum()
    entry_ids = [np.unique(rng.choice(ENTRIES, size=rng.integers(1, 5), p=weights)) for _ in range(20_000)]
    counts = np.bincount(np.concatenate(entry_ids), minlength=ENTRIES)
    probs = draws.entry_probabilities(counts, T)
    uuids = [f"{i:024x}" for i in rng.integers(0, 2**62, size=len(entry_ids))]
    texts = [f"caption {i} of an image" for i in range(len(entry_ids))]
    return SimpleNamespace(uuids=uuids, texts=texts, entry_ids=entry_ids, counts=counts, probs=probs,
                           table=EntryProbabilities.from_columns(np.arange(ENTRIES), probs))


def _keep_probs(pool, balancer) -> np.ndarray:
    return np.array([balancer.keep_probability(ids) for ids in pool.entry_ids])


def test_each_epoch_keeps_the_sum_of_p_within_4_sigma_and_a_new_subset(pool):
    balancer = OnlineBalancer(pool.table, seed=7)
    p = _keep_probs(pool, balancer)
    assert 0.2 < p.mean() < 0.8 and (p == 1).sum() > 100  # the pool is balanced down, and has a tail
    expected, sigma = p.sum(), np.sqrt((p * (1 - p)).sum())
    subsets = [balancer.keep_batch(pool.uuids, pool.texts, pool.entry_ids, epoch) for epoch in range(EPOCHS)]
    for epoch, kept in enumerate(subsets):
        assert abs(kept.sum() - expected) < 4 * sigma, (epoch, kept.sum(), expected, sigma)
        assert kept[p == 1].all()  # a pair matching a tail entry is kept in every epoch
    for a in range(EPOCHS):
        for b in range(a + 1, EPOCHS):
            both = (subsets[a] & subsets[b]).sum()
            # independent epochs: the pairs kept in both number sum(P^2), up to noise
            var = (p**2 * (1 - p**2)).sum()
            assert abs(both - (p**2).sum()) < 4 * np.sqrt(var), (a, b)
            assert (subsets[a] != subsets[b]).sum() > 1000


def test_a_pair_is_kept_in_a_share_of_epochs_near_its_p(pool):
    balancer = OnlineBalancer(pool.table, seed=3)
    sample = slice(0, 400)
    p = _keep_probs(pool, balancer)[sample]
    epochs = 200
    kept = sum(balancer.keep_batch(pool.uuids[sample], pool.texts[sample], pool.entry_ids[sample], e).astype(int)
               for e in range(epochs))
    sigma = np.sqrt(epochs * p * (1 - p)) + 1e-9
    z = (kept - epochs * p) / sigma
    assert np.abs(z).max() < 4.5 and abs(z.mean()) < 4 / np.sqrt(len(z))


def test_the_same_subset_for_the_same_epoch_in_any_process_and_batch_split(pool, tmp_path):
    balancer = OnlineBalancer(pool.table, seed=11)
    n = 2000
    whole = balancer.keep_batch(pool.uuids[:n], pool.texts[:n], pool.entry_ids[:n], epoch=4)
    one_by_one = [balancer.keep(u, x, ids, epoch=4) for u, x, ids in zip(pool.uuids[:n], pool.texts[:n],
                                                                         pool.entry_ids[:n])]
    assert whole.tolist() == one_by_one
    again = OnlineBalancer(EntryProbabilities.from_columns(np.arange(ENTRIES), pool.probs), seed=11)
    assert again.keep_batch(pool.uuids[:n], pool.texts[:n], pool.entry_ids[:n], epoch=4).tolist() == whole.tolist()
    # another interpreter with another string-hash seed (workers of a loader are separate processes)
    table = pa.table({"entry_id": pa.array(np.arange(ENTRIES), pa.int32()), "p": pool.probs,
                      "t": pa.array([T] * ENTRIES, pa.int64())})
    pq.write_table(table, tmp_path / "entry_probabilities.parquet")
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([pool.uuids[:n], pool.texts[:n], [ids.tolist() for ids in pool.entry_ids[:n]]]))
    script = ("import json, sys; from metaclip_spark.export.online import EntryProbabilities, OnlineBalancer; "
              "u, x, e = json.load(open(sys.argv[2])); "
              "b = OnlineBalancer(EntryProbabilities.from_parquet(sys.argv[1]), seed=11); "
              "print(json.dumps(b.keep_batch(u, x, e, epoch=4).tolist())); "
              "assert not any(m.startswith('pyspark') for m in sys.modules), 'Spark was imported'")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(pairs)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == whole.tolist()


def test_draws_depend_on_the_epoch_and_seed_and_differ_from_the_offline_draws(pool):
    assert len({epoch_seed(0, e) for e in range(1000)}) == 1000
    assert epoch_seed(0, 1) != epoch_seed(1, 0) and epoch_seed(5, 0) != 5
    n = 3000
    args = (pool.uuids[:n], pool.texts[:n], pool.entry_ids[:n])
    by_seed = [OnlineBalancer(pool.table, seed=s).keep_batch(*args, epoch=0) for s in (0, 1)]
    assert (by_seed[0] != by_seed[1]).sum() > 100
    lengths = np.array([ids.size for ids in pool.entry_ids[:n]])
    offline, _ = draws.decide(0, pool.uuids[:n], pool.texts[:n], lengths, np.concatenate(pool.entry_ids[:n]),
                                  pool.probs)
    assert (offline != by_seed[0]).sum() > 100  # epoch 0 is not the offline subset of the same seed


def test_keep_probability_is_one_minus_the_product_of_misses(pool):
    balancer = OnlineBalancer(pool.table, seed=0)
    ids = pool.entry_ids[0]
    assert balancer.keep_probability(ids) == pytest.approx(draws.keep_probability(pool.probs[ids]))
    assert not balancer.keep("u", "a text with no entries", [], epoch=0)


def test_probabilities_per_metadata_language_and_unknown_ids():
    table = EntryProbabilities.from_columns([0, 1, 0], [0.0, 0.5, 1.0], ["en", "en", "zh"], {"en": 10, "zh": 3})
    assert table.of("en", np.array([0, 1, 7])).tolist() == [0.0, 0.5, 1.0]  # an id past the table: p = 1
    assert table.of("zh", np.array([0])).tolist() == [1.0]
    balancer = OnlineBalancer(table, seed=0)
    assert not any(balancer.keep(f"u{i}", "x", [0], epoch=e, lang="en") for i in range(50) for e in range(3))
    assert all(balancer.keep(f"u{i}", "x", [0], epoch=e, lang="zh") for i in range(50) for e in range(3))
    with pytest.raises(KeyError, match="'fr'"):
        balancer.keep("u", "x", [0], epoch=0, lang="fr")


def test_pytorch_style_iterable_splits_an_epoch_over_ranks_and_workers(pool, tmp_path):
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from online_loader import OnlineCuratedPairs
    finally:
        sys.path.remove(str(REPO / "examples"))
    n = 3000
    (tmp_path / "pairs").mkdir()
    for part in range(5):  # five files, as an export writes them
        rows = range(part, n, 5)
        pq.write_table(pa.table({
            "url": [f"http://127.0.0.1/{i}.jpg" for i in rows], "text": [pool.texts[i] for i in rows],
            "uuid": [pool.uuids[i] for i in rows],
            "entry_ids": pa.array([pool.entry_ids[i].tolist() for i in rows], pa.list_(pa.int32()))}),
            tmp_path / "pairs" / f"part-{part:05d}.parquet")
    pq.write_table(pa.table({"entry_id": pa.array(np.arange(ENTRIES), pa.int32()), "p": pool.probs,
                             "t": pa.array([T] * ENTRIES, pa.int64())}), tmp_path / "entry_probabilities.parquet")
    expected = {e: {pool.uuids[i] for i in np.flatnonzero(OnlineBalancer(pool.table, seed=9).keep_batch(
        pool.uuids[:n], pool.texts[:n], pool.entry_ids[:n], e))} for e in (0, 1)}

    def epoch_over(world_size: int, workers: int, epoch: int) -> list[str]:
        seen = []
        for rank in range(world_size):
            for worker in range(workers):
                info = SimpleNamespace(id=worker, num_workers=workers)
                dataset = OnlineCuratedPairs(str(tmp_path), seed=9, rank=rank, world_size=world_size,
                                             worker_info=lambda info=info: info, batch_rows=100)
                dataset.set_epoch(epoch)
                seen += [row["uuid"] for row in dataset]
        return seen

    for world_size, workers in ((1, 1), (2, 2), (3, 1)):
        for epoch in (0, 1):
            seen = epoch_over(world_size, workers, epoch)
            assert len(seen) == len(set(seen))  # no pair twice in an epoch
            assert set(seen) == expected[epoch], (world_size, workers, epoch)
    assert expected[0] != expected[1]



def test_one_text_per_image_is_picked_anew_each_epoch_by_seed_epoch_and_image():
    # 3,000 images with 1-4 texts each: MetaCLIP 2's loader draws one of an image's texts on every pass.
    rng = np.random.default_rng(7)
    uuids, texts, texts_of = [], [], {}
    for image in range(3000):
        n = int(rng.integers(1, 5))
        texts_of[f"img{image}"] = n
        for k in range(n):
            uuids.append(f"img{image}"), texts.append(f"text {k} of image {image}")
    balancer = OnlineBalancer(EntryProbabilities({NO_LANGUAGE: np.ones(1)}), seed=4)
    picks = []
    for epoch in range(4):
        chosen = balancer.picked(uuids, texts, epoch)
        picked = {u: x for u, x, c in zip(uuids, texts, chosen) if c}
        assert int(chosen.sum()) == len(picked) == 3000  # exactly one text per image
        order = rng.permutation(len(uuids))  # the same pick whatever the order of the rows
        again = balancer.picked([uuids[i] for i in order], [texts[i] for i in order], epoch)
        assert {uuids[i]: texts[i] for i, c in zip(order, again) if c} == picked
        picks.append(picked)
    several = [u for u, n in texts_of.items() if n > 1]
    changed = sum(picks[0][u] != picks[1][u] for u in several)
    assert 0.5 * len(several) < changed < len(several)  # a new pick each epoch
    assert balancer.picked(uuids, texts, 0).tolist() != \
        OnlineBalancer(balancer.probabilities, seed=5).picked(uuids, texts, 0).tolist()  # and by the seed
    # uniform: over epochs and images, an image's first text is picked 1/n of the time on average
    first = sum(picks[e][u].startswith("text 0 ") for e in range(4) for u in several)
    expected = sum(1 / texts_of[u] for u in several) * 4
    assert abs(first - expected) < 4 * np.sqrt(expected)


def test_the_text_each_epoch_picks_is_pinned_and_the_pick_is_a_row_mask():
    """Which text of an image an epoch trains on is part of the subset a seed promises (as the keep draws are): 20
    images with the same four texts, seed 4, the index of the text picked per image in epochs 0 and 1."""
    balancer = OnlineBalancer(EntryProbabilities({NO_LANGUAGE: np.ones(1)}), seed=4)
    uuids = [f"img{i}" for i in range(20) for _ in range(4)]
    texts = np.array([f"text {k}" for _ in range(20) for k in range(4)])
    picks = []
    for epoch in (0, 1):
        chosen = balancer.picked(uuids, list(texts), epoch)
        picks.append("".join(text[-1] for text in texts[chosen]))  # used as a mask over the rows, as loaders do
    assert picks == ["31322211213210100301", "11210221202012320022"]


def test_the_probability_table_is_read_from_its_file_or_the_export_directory(tmp_path):
    """`export --online` writes entry_probabilities.parquet: a loader names it or the directory holding it; a
    worldwide table keeps each language's p apart."""
    export = tmp_path / "online-X"
    export.mkdir()
    pq.write_table(pa.table({"metadata_lang": ["en", "en", "zh"], "entry_id": pa.array([0, 1, 0], pa.int32()),
                             "p": [0.25, 1.0, 0.5], "t": pa.array([3, 3, 9], pa.int64())}),
                   export / "entry_probabilities.parquet")
    for path in (str(export / "entry_probabilities.parquet"), str(export), f"{export}/"):
        table = EntryProbabilities.from_parquet(path)
        assert table.of("en", np.array([0, 1])).tolist() == [0.25, 1.0]
        assert table.of("zh", np.array([0])).tolist() == [0.5] and table.t == {"en": 3, "zh": 9}
    v1 = tmp_path / "v1.parquet"  # a root curated with one metadata list: no metadata_lang column
    pq.write_table(pa.table({"entry_id": pa.array([0, 2], pa.int32()), "p": [0.75, 0.5], "t": pa.array([4, 4])}), v1)
    table = EntryProbabilities.from_parquet(str(v1))
    assert table.of(None, np.array([0, 1, 2])).tolist() == [0.75, 1.0, 0.5] and table.t == {NO_LANGUAGE: 4}


def test_the_probability_table_is_read_from_an_export_on_s3(tmp_path, monkeypatch):
    """A loader on a cluster reads the table where `export --online` wrote it: an S3 directory, named with or without
    its trailing slash (moto's S3 server on 127.0.0.1; pyarrow takes the endpoint from AWS_ENDPOINT_URL). Its key
    must not get a doubled slash, which an object store reads as another key."""
    from servers import s3_server

    (tmp_path / "online-X").mkdir()
    pq.write_table(pa.table({"entry_id": pa.array([0, 1], pa.int32()), "p": [0.25, 1.0], "t": pa.array([3, 3])}),
                   tmp_path / "online-X" / "entry_probabilities.parquet")
    with s3_server(tmp_path, bucket="exports") as endpoint:
        for name, value in (("AWS_ENDPOINT_URL", endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        for path in ("s3://exports/online-X/", "s3://exports/online-X",
                     "s3://exports/online-X/entry_probabilities.parquet"):
            table = EntryProbabilities.from_parquet(path)
            assert table.of(None, np.array([0, 1])).tolist() == [0.25, 1.0] and table.t == {NO_LANGUAGE: 3}


def test_worldwide_batches_draw_each_pair_against_its_own_language_s_table():
    table = EntryProbabilities.from_columns([0, 1, 0], [0.0, 0.5, 1.0], ["en", "en", "zh"])
    balancer = OnlineBalancer(table, seed=3)
    uuids, texts, ids, langs = [f"u{i}" for i in range(40)], ["x"] * 40, [[0]] * 40, ["en", "zh"] * 20
    kept = balancer.keep_batch(uuids, texts, ids, epoch=1, langs=langs)
    assert kept.tolist() == [lang == "zh" for lang in langs]  # entry 0: p = 0 in English, 1 in Chinese
    one_by_one = [balancer.keep(u, x, e, epoch=1, lang=lang) for u, x, e, lang in zip(uuids, texts, ids, langs)]
    assert kept.tolist() == one_by_one
    assert (balancer.keep_probability([0], "zh"), balancer.keep_probability([0], "en")) == (1.0, 0.0)


def test_pairs_without_entries_are_never_kept_even_last_in_a_batch():
    table = EntryProbabilities.from_columns([0], [1.0])
    balancer = OnlineBalancer(table, seed=0)
    assert balancer.keep_batch(["a", "b", "c"], ["x"] * 3, [[0], [], []], epoch=0).tolist() == [True, False, False]
    assert balancer.keep_batch([], [], [], epoch=0).tolist() == []
    assert balancer.keep_probability([]) == 0.0 and table.of(None, []).tolist() == []
    half = EntryProbabilities.from_columns([0], [0.5])  # the default seed is 0: the subset the docs' examples get
    pairs = ([f"u{i}" for i in range(64)], ["x"] * 64, [[0]] * 64)
    assert OnlineBalancer(half).keep_batch(*pairs, epoch=0).tolist() == \
        OnlineBalancer(half, seed=0).keep_batch(*pairs, epoch=0).tolist()


def test_an_unknown_language_names_the_ones_the_table_holds():
    table = EntryProbabilities.from_columns([0, 0], [0.5, 0.5], ["zh", "en"])
    with pytest.raises(KeyError) as refused:
        table.of("fr", [0])
    assert refused.value.args[0] == "no probabilities for metadata language 'fr' (the table holds en, zh)"
    empty = EntryProbabilities({})
    with pytest.raises(KeyError) as refused:
        empty.of("en", [0])
    assert refused.value.args[0] == "no probabilities for metadata language 'en' (the table holds none)"
    assert empty.t == {} and table.t == {}
