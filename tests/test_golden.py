"""Golden values: which pairs a seed keeps is a promise (the same subset on any rerun, cluster or version), so the
hashes and draws behind it are pinned to fixed numbers here. A refactor that changes any of them (hashing the
fields in another order, another separator, another mix of the entry id) changes every user's subset: it fails
these tests, and if it is ever wanted it comes with a version bump and the README note "What a seed pins".
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq

from metaclip_spark.balancing import draws
from metaclip_spark.export import online
from metaclip_spark.extraction.ids import image_uuid
from metaclip_spark.matching.substrings import EntryMatcher

from conftest import DATA

SMALL_METADATA = DATA / "metadata" / "small.json"
UUID = "0123456789abcdef01234567"
TEXT = "a photo of a dog"


def test_image_uuid_is_sha224_of_the_url_cut_to_24_hex_digits():
    assert image_uuid("http://images.example/en/1.jpg") == "47395e20ad3e5003bf6470cb"
    assert image_uuid("https://example.com/ä b.png") == hashlib.sha224("https://example.com/ä b.png".encode()) \
        .hexdigest()[:24]


def test_pair_hash_is_pinned():
    """blake2b-64 of "seed\\x1fuuid\\x1ftext", little-endian: the per-pair half of every draw."""
    assert draws.pair_hash(0, UUID, TEXT) == 0x94E1A65BF9BF21EB
    assert draws.pair_hash(7, UUID, TEXT) == 0x202E78BF176C55FA
    assert draws.pair_hash(0, "u", "猫\U0001F431 é") == 0xB9124DE29685C64C


def test_keep_draws_are_pinned():
    assert draws.keep_draw(0, UUID, TEXT, 0) == 0.5748482798766438
    assert draws.keep_draw(0, UUID, TEXT, 41) == 0.9433562869557146
    assert draws.keep_draw(1, UUID, TEXT, 0) == 0.4552451459063249
    values = draws.entry_draws(np.array([0, 2**64 - 1], np.uint64), np.array([0, 5]))
    assert values.tolist() == [0.8833108082136426, 0.5590772812040817]


def test_online_epoch_seeds_are_pinned():
    """A loader's epoch e draws with epoch_seed(seed, e): the subset of each epoch is a promise too."""
    assert [online.epoch_seed(0, 0), online.epoch_seed(0, 1), online.epoch_seed(7, 3)] == [
        9370218965779684112, 7792259576135971849, 1965885208779290899]


# The real sample pool (126 pairs) against the 62-entry test list at t = 4 (its `auto` t) and seed 0: 74 pairs
# match, 63 are kept, and these 11 are dropped by balancing.
T = 4
DROPPED_AT_SEED_0 = [
    ("2b0ca82377882b3eaf785cb6", "Icon - Account"),
    ("3e096ff1ec5693e1372ee391", "august2020writing.png"),
    ("41e17f7f971a08a3d3256940", "Moving Forward by Moving Backward: Embedding Action Impact over Action Semantics"),
    ("4a996a74fe77447594a26003", "August2023PaperPM.png"),
    ("8cbc809d60932a92a70b823e", "Avatar photo"),
    ("9ab85339c780da0ed42211b0", "The CCBot robot diligently sorts vast amounts of data"),
    ("b4fd8f74036cd60181b8fac7", "Two developers with pose estimation visualization."),
    ("c6264ce74b35d336d96af178", "Delphi Logo Demo Card"),
    ("dd93be1002762a3f7fc98151",
     "An abstract illustration of many radiating lines in different colors growing up from the bottom."),
    ("e9ae816ffdd44ea8ab48963b", "Untitled.png"),
    ("ed80ba98a4ded2fbb640d77a", "PRIOR Logo"),
]
# pair_keys.key_columns of (UUID, TEXT) and ("u", "猫\U0001F431 é"): (key_hi, key_lo), Spark's xxhash64.
PAIR_KEYS = [(-5130611353059932328, -3319613440319282691), (-4782515852772256904, 8014701336621745754)]
# sha256 of the kept pairs as sorted "uuid<TAB>text" lines joined by newlines.
KEPT_AT_SEED_0 = (63, "185d150ee533d572d70f196da316f0b7374911af7ce0ab4b9a02e532a6c42c42")


def _digest(pairs) -> str:
    return hashlib.sha256("\n".join(f"{u}\t{x}" for u, x in sorted(pairs)).encode()).hexdigest()


def _sample_pool():
    with open(DATA / "pool" / "sample_pairs.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_sample_pool_keeps_the_pinned_subset_at_seed_0():
    pairs = _sample_pool()
    entries = json.loads(SMALL_METADATA.read_text())
    uuids, texts = [image_uuid(p["url"]) for p in pairs], [p["text"] for p in pairs]
    found = EntryMatcher(entries).match_many(texts)
    counts = np.zeros(len(entries), np.int64)
    for ids in found:
        counts[ids] += 1
    assert draws.auto_threshold(counts) == T
    keep, _ = draws.decide(0, uuids, texts, np.array([len(ids) for ids in found]),
                               np.array([e for ids in found for e in ids], np.int64),
                               draws.entry_probabilities(counts, T))
    kept = [(u, x) for u, x, k in zip(uuids, texts, keep) if k]
    dropped = sorted((u, x) for u, x, k, ids in zip(uuids, texts, keep, found) if ids and not k)
    assert dropped == DROPPED_AT_SEED_0
    assert (len(kept), _digest(kept)) == KEPT_AT_SEED_0


def test_curate_keeps_the_pinned_subset_and_pair_keys(spark, config, tmp_path):
    """The Spark path end to end: `curate` of the sample pool at t = 4, seed 0 keeps exactly the pinned pairs, and
    the pool's pair keys (pair_keys/, compared across crawls and runs) are the pinned xxhash64 values."""
    from metaclip_spark import pipeline
    from metaclip_spark.ingestion.ingest import InputSpec
    from metaclip_spark.metadata.lists import Metadata
    from metaclip_spark.ingestion.pair_keys import key_columns

    output = str(tmp_path / "out")
    settings = config.updated({"curation": {"t": T, "seed": 0}})
    pipeline.curate(spark, settings, InputSpec(str(DATA / "pool" / "sample_pairs.jsonl"), "jsonl"),
                    Metadata(str(SMALL_METADATA)), output, report=False)
    table = pq.read_table(f"{output}/curated", columns=["uuid", "text"])
    kept = list(zip(table.column("uuid").to_pylist(), table.column("text").to_pylist()))
    assert (len(kept), _digest(kept)) == KEPT_AT_SEED_0

    rows = spark.createDataFrame([(UUID, TEXT), ("u", "猫\U0001F431 é")], "uuid string, text string")
    assert [tuple(r) for r in rows.select(*key_columns("text")).collect()] == PAIR_KEYS
