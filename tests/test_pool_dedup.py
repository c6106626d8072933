"""One pool across dumps: (uuid, text) unique over the whole output root, crawls checked against the pair keys of the
pairs already in the pool (ingestion/pair_keys.py), in any arrival order, through kills, --force, --rematch and rebuilds."""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli, pipeline, progress
from metaclip_spark.ingestion import pair_keys
from metaclip_spark.ingestion.dedup import PYTHON_WHITESPACE
from metaclip_spark.errors import ConfigError
from metaclip_spark.ingestion.ingest import InputSpec, ingest
from metaclip_spark.metadata.lists import Metadata
from metaclip_spark.root.layout import OutputRoot, RootReader

from conftest import DATA
from test_incremental import _kill_when, _rows, _start, common_crawl_layout, write_listing

SMALL_METADATA = str(DATA / "metadata" / "small.json")
# Three crawls of real excerpts sharing files, as consecutive dumps re-crawl pages: every pair of sample-0000 is in
# A and B, of sample-0001 in B and C, of warcfile in A and C.
CRAWLS = {
    "CC-MAIN-2024-10": ["warcfile.warc.gz", "sample-0000.warc.gz"],
    "CC-MAIN-2024-20": ["sample-0000.warc.gz", "sample-0001.warc.gz"],
    "CC-MAIN-2024-30": ["sample-0001.warc.gz", "clipped.warc.gz", "warcfile.warc.gz"],
}
T = 3
SEED = 5


# --- pure rules -----------------------------------------------------------------------------------------------------

def test_collisions_expected_at_ten_billion_pairs():
    assert pair_keys.expected_collisions(10e9, bits=64) == pytest.approx(2.71, abs=0.01)  # a 64-bit key loses ~3
    assert pair_keys.expected_collisions(10e9) == pytest.approx(1.47e-19, rel=0.01)  # the 128-bit key: none
    assert pair_keys.expected_collisions(1) == 0


def test_key_buckets_are_configured_per_profile():
    from metaclip_spark.config import load_config

    assert load_config("local").root.pair_key_buckets == 8
    assert load_config("cluster").root.pair_key_buckets == 4096
    with pytest.raises(ConfigError, match="root.pair_key_buckets"):
        load_config("local", overrides={"root": {"pair_key_buckets": 0}})
    assert load_config("cluster").root.pair_key_bucket_min_pairs == 10_000
    with pytest.raises(ConfigError, match="root.pair_key_bucket_min_pairs"):
        load_config("local", overrides={"root": {"pair_key_bucket_min_pairs": -1}})


def test_texts_are_stripped_of_what_python_strips():
    import sys as system

    assert set(PYTHON_WHITESPACE) == {c for c in map(chr, range(system.maxunicode + 1)) if c.isspace()}


def test_deduplicated_rows_are_uuid_text_then_file_and_position_then_the_rest_as_they_were():
    """The column order a de-duplication writes (a unit without duplicates is taken as its crawl's in that order):
    the file, then the position in it, is also which of two duplicates is kept."""
    from metaclip_spark.ingestion.dedup import deduplicated_columns

    columns = ["url", "_seq", "caption", "lang", "uuid", "source_file"]
    assert deduplicated_columns(columns, "caption") == ["uuid", "caption", "source_file", "_seq", "url", "lang"]
    assert deduplicated_columns(["text", "uuid", "url", "_seq"]) == ["uuid", "text", "_seq", "url"]
    assert deduplicated_columns(["lang", "text", "uuid"]) == ["uuid", "text", "lang"]  # a pool: no file, no position


def test_a_column_holding_a_map_is_not_used_to_rank_duplicates():
    """Spark cannot order maps: first_of_duplicates ranks a pool with a map column by its other columns."""
    from pyspark.sql import types as T

    from metaclip_spark.ingestion.dedup import _orderable

    string_map = T.MapType(T.StringType(), T.StringType())
    assert _orderable(T.StringType()) and _orderable(T.ArrayType(T.LongType()))
    assert _orderable(T.StructType([T.StructField("a", T.StringType()), T.StructField("b", T.ArrayType(T.LongType()))]))
    assert not _orderable(string_map) and not _orderable(T.ArrayType(string_map))
    assert not _orderable(T.StructType([T.StructField("a", T.StringType()), T.StructField("m", string_map)]))
    assert not _orderable(T.ArrayType(T.StructType([T.StructField("m", string_map)])))


def _plain_root(path) -> RootReader:
    path.mkdir(parents=True, exist_ok=True)
    return RootReader.at(str(path), None)


def test_a_new_root_records_its_mode_and_refuses_the_other(tmp_path):
    root = _plain_root(tmp_path / "root")
    assert pair_keys.settle(root, None, False, 8) == pair_keys.Dedup("pool", 8)
    assert json.loads((tmp_path / "root" / "dedup.json").read_text())["mode"] == "pool"
    assert pair_keys.settle(root, "pool", False, 16) == pair_keys.Dedup("pool", 8)  # a root keeps its buckets
    with pytest.raises(ConfigError, match="over the whole pool.*cannot take --dedup crawl.*--rebuild-dedup"):
        pair_keys.settle(root, "crawl", False, 8)
    crawl_root = _plain_root(tmp_path / "crawl-root")
    assert pair_keys.settle(crawl_root, "crawl", False, 8).mode == "crawl"
    assert pair_keys.settle(crawl_root, None, False, 8).mode == "crawl"  # recorded: no need to say it again
    with pytest.raises(ConfigError, match="within each crawl only.*cannot take --dedup pool"):
        pair_keys.settle(crawl_root, "pool", False, 8)


def test_a_root_made_before_modes_were_recorded_is_told_what_to_do(tmp_path):
    root = _plain_root(tmp_path / "old")
    (tmp_path / "old" / "crawls").mkdir()
    (tmp_path / "old" / "crawls" / "CC-MAIN-2024-10.json").write_text('{"crawl": "CC-MAIN-2024-10"}')
    for settle in (lambda: pair_keys.settle(root, None, False, 8), lambda: pair_keys.recorded_mode(root)):
        with pytest.raises(ConfigError, match="made before pairs were de-duplicated across crawls.*--rebuild-dedup.*"
                                              "--dedup crawl"):
            settle()
    assert not (tmp_path / "old" / "dedup.json").exists()
    assert pair_keys.settle(root, None, True, 8) == pair_keys.Dedup("pool", 8, rebuilding=True)
    with pytest.raises(ConfigError, match="rebuild-dedup of .* was interrupted"):
        pair_keys.recorded_mode(root)  # count and balance wait for the rebuild
    assert pair_keys.settle(root, None, False, 8).rebuilding  # the next writing run starts it over


# --- Common Crawl crawls in local Spark ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crawl_data(tmp_path_factory):
    """Common Crawl's layout over the real excerpts, one listing per crawl and one of all three."""
    base = tmp_path_factory.mktemp("cc")
    return base, common_crawl_layout(base, CRAWLS, _listing_name)


def _listing_name(crawl, names):
    return f"{crawl}-{len(names)}.warc.paths"


def _listing(base, crawl, names):
    return write_listing(base / _listing_name(crawl, names), crawl, names)


def _config(config):
    return config.updated({"curation": {"t": T, "seed": SEED}, "extract": {"languages": [], "files_per_unit": 1}})


def _source(manifest, base):
    return InputSpec(str(manifest), "warc-manifest", str(base))


def _curate(spark, config, root, manifest=None, base=None, **kwargs):
    return pipeline.curate(spark, _config(config), _source(manifest, base) if manifest else None,
                           Metadata(SMALL_METADATA), str(root), report=False, **kwargs)


def _ingest(spark, config, root, manifest, base, **kwargs):
    return ingest(spark, _config(config), OutputRoot(spark, str(root)), _source(manifest, base),
                  Metadata(SMALL_METADATA), **kwargs)


def _copy_units(source_root, root, crawl, names=None):
    """Units another root already extracted, as a killed run would have left them: the next run only rebuilds."""
    for unit in glob.glob(f"{source_root}/units/crawl={crawl}/unit=*"):
        marker = json.loads(open(f"{unit}/_COMMITTED.json").read())
        if names is None or {f["file"].rsplit("/", 1)[1] for f in marker["files"]} <= set(names):
            shutil.copytree(unit, f"{root}/units/crawl={crawl}/{os.path.basename(unit)}")


def _new_root(spark, root, mode=None):
    """A root as a first run leaves it before its first unit (units are then copied in): its marker, its mode."""
    OutputRoot(spark, str(root)).mark()
    pair_keys.settle(OutputRoot(spark, str(root)), mode, False, 8)


def _pair_set(root, table="pairs"):
    return _rows(root / table, "uuid", "text")


def _state(root, crawl):
    return json.loads((root / "crawls" / f"{crawl}.json").read_text())


@pytest.fixture(scope="module")
def one_go(spark, config, crawl_data, tmp_path_factory):
    base, manifests = crawl_data
    root = tmp_path_factory.mktemp("one_go") / "root"
    return root, _curate(spark, config, root, manifests["all"], base)


@pytest.fixture(scope="module")
def per_crawl(spark, config, crawl_data, one_go, tmp_path_factory):
    """The same crawls with --dedup crawl (their units copied from one_go: extraction does not depend on the mode)."""
    base, manifests = crawl_data
    root = tmp_path_factory.mktemp("per_crawl") / "root"
    for crawl in CRAWLS:
        _copy_units(one_go[0], root, crawl)
    return root, _curate(spark, config, root, manifests["all"], base, dedup="crawl")


def test_one_pool_holds_each_pair_once_and_counts_the_copies_per_crawl(one_go, per_crawl, capsys):
    root, summary = one_go
    crawl_root, crawl_summary = per_crawl
    assert json.loads((root / "dedup.json").read_text())["mode"] == "pool" and summary["dedup"] == "pool"
    pairs = _pair_set(root)
    assert len(pairs) == len(set(pairs)) == summary["pairs_in"]
    assert len(set(_pair_set(root, "matched"))) == len(_pair_set(root, "matched")) == summary["pairs_matched"]
    # the pool is exactly the union of the crawls' own pairs; per-crawl mode keeps every crawl's copy
    copies = _pair_set(crawl_root)
    assert set(pairs) == set(copies) and len(copies) > len(pairs)
    assert crawl_summary["dedup"] == "crawl" and crawl_summary["pairs_already_in_pool"] is None
    first, *later = sorted(CRAWLS)  # taken in name order: the first crawl keeps every pair it brings
    assert _state(root, first)["pairs_already_in_pool"] == 0
    assert _state(root, first)["pairs"] == crawl_summary["by_crawl"][first]["pairs"]
    for crawl in later:
        state = _state(root, crawl)
        assert state["pairs"] + state["pairs_already_in_pool"] == crawl_summary["by_crawl"][crawl]["pairs"]
        assert state["pairs_already_in_pool"] > 0
        assert summary["by_crawl"][crawl]["pairs_already_in_pool"] == state["pairs_already_in_pool"]
        # within-crawl duplicates stay counted apart from the copies of other crawls' pairs
        assert state["extract"]["dropped_duplicate"] == \
            _state(crawl_root, crawl)["extract"]["dropped_duplicate"]
    assert summary["pairs_already_in_pool"] == len(copies) - len(pairs)
    # counts are per unique pair: one count per (uuid, text) of the union, whichever crawl holds it
    matched = {}
    for uuid, text, entry_ids in _rows(crawl_root / "matched", "uuid", "text", "entry_ids"):
        matched[(uuid, text)] = entry_ids
    expected = {}
    for entry_ids in matched.values():
        for entry_id in entry_ids:
            expected[entry_id] = expected.get(entry_id, 0) + 1
    assert dict(_rows(root / "counts", "entry_id", "count")) == expected
    assert dict(_rows(crawl_root / "counts", "entry_id", "count")) != expected  # re-crawled pairs counted twice
    # the key table: one bucket file per bucket, 16 bytes a key, one key per pair a crawl holds
    for crawl in CRAWLS:
        keys = pq.read_table(root / "pair_keys" / f"crawl={crawl}")
        assert keys.num_rows == _state(root, crawl)["pairs"]
        assert len(glob.glob(f"{root}/pair_keys/crawl={crawl}/*.parquet")) <= 8
    assert cli.main(["status", str(root)]) == 0
    status = capsys.readouterr().out
    assert "(uuid, text) unique over the whole pool" in status
    later_state = _state(root, later[0])
    assert f"{later_state['pairs_already_in_pool']:,} already in the pool" in status
    assert cli.main(["report", "--output", str(root)]) == 0
    report = json.loads((root / "report" / "summary.json").read_text())["sizes"]
    assert report["dedup"] == "pool" and report["pairs_already_in_pool"] == summary["pairs_already_in_pool"]
    assert report["pairs_already_in_pool_by_crawl"][later[0]] == later_state["pairs_already_in_pool"]
    assert "unique over the whole pool" in (root / "report" / "index.html").read_text()


def test_each_key_file_holds_the_keys_of_its_bucket(spark, one_go):
    """The bucket number in a key file's name is the bucket Spark's bucketed reader assumes for every key in it."""
    import re

    from pyspark.sql import functions as F

    root, _ = one_go
    buckets = json.loads((root / "dedup.json").read_text())["buckets"]
    found = spark.read.parquet(str(root / "pair_keys")).select(
        F.input_file_name().alias("file"), F.expr(f"pmod(hash(key_hi, key_lo), {buckets})").alias("bucket"))
    pairs = {(re.search(r"_(\d+)\.c\d+", row["file"]).group(1), row["bucket"]) for row in found.distinct().collect()}
    assert len(pairs) == buckets and all(int(named) == bucket for named, bucket in pairs)  # every bucket used


def _same_pool(root, summary, reference_root, reference):
    """The same pairs, counts and curated (uuid, text) rows as the reference, whichever crawl holds each pair."""
    assert sorted(_pair_set(root)) == sorted(_pair_set(reference_root))
    assert sorted(_pair_set(root, "matched")) == sorted(_pair_set(reference_root, "matched"))
    assert _rows(root / "counts", "entry_id", "count") == _rows(reference_root / "counts", "entry_id", "count")
    assert _rows(root / "curated", "uuid", "text", "keep_prob") == \
        _rows(reference_root / "curated", "uuid", "text", "keep_prob")
    figures = ("pairs_in", "pairs_matched", "pairs_curated", "t", "pairs_already_in_pool")
    assert {k: summary[k] for k in figures} == {k: reference[k] for k in figures}


def test_crawls_arriving_one_by_one_in_any_order_equal_all_at_once(spark, config, crawl_data, one_go, tmp_path):
    base, manifests = crawl_data
    reference_root, reference = one_go
    for order in itertools.permutations(CRAWLS):
        root = tmp_path / "-".join(crawl[-2:] for crawl in order)
        _new_root(spark, root)
        for crawl in order[:-1]:
            _copy_units(reference_root, root, crawl)  # extracted once: what differs is the order of the rebuilds
            _ingest(spark, config, root, manifests[crawl], base)
        _copy_units(reference_root, root, order[-1])
        summary = _curate(spark, config, root, manifests[order[-1]], base)
        _same_pool(root, summary, reference_root, reference)
        assert summary["by_crawl"][order[0]]["pairs_already_in_pool"] == 0  # the first to arrive keeps its pairs
        if order == tuple(sorted(CRAWLS)):  # arriving in name order, each crawl holds what it holds in one go
            assert _rows(root / "curated", "crawl", "uuid", "text") == \
                _rows(reference_root / "curated", "crawl", "uuid", "text")


def test_a_growing_pool_never_takes_back_a_pair_it_dropped(spark, config, crawl_data, tmp_path):
    """Nested subsets across dumps, from real extraction in reverse name order: counts only grow (a re-crawled pair
    adds nothing), so with the same t and seed a pair an earlier run dropped stays dropped."""
    base, manifests = crawl_data
    root = tmp_path / "root"
    earlier = None
    for crawl in sorted(CRAWLS, reverse=True):
        summary = _curate(spark, config, root, manifests[crawl], base)
        assert summary["ingest"]["files_processed_now"] == len(CRAWLS[crawl])
        curated = set(_rows(root / "curated", "crawl", "uuid", "text"))
        counts = dict(_rows(root / "counts", "entry_id", "count"))
        if earlier is not None:
            assert {row for row in curated if row[0] in earlier_crawls} <= earlier
            assert all(counts.get(entry, 0) >= n for entry, n in earlier_counts.items())
        earlier, earlier_crawls, earlier_counts = curated, set(summary["crawls"]), counts
    assert summary["by_crawl"][max(CRAWLS)]["pairs_already_in_pool"] == 0


def _argv(root, *extra, manifest=None, base=None, conf=None):
    source = ["--input", str(manifest), "--input-format", "warc-manifest", "--input-base", str(base)] if manifest else []
    return ["curate", *source, "--metadata", SMALL_METADATA, "--output", str(root), "--t", str(T), "--seed", str(SEED),
            "--no-report", *(["--conf", str(conf)] if conf else []), *extra]


def test_per_crawl_mode_is_recorded_and_a_root_refuses_the_other(crawl_data, per_crawl, capsys):
    base, manifests = crawl_data
    root, summary = per_crawl
    assert json.loads((root / "dedup.json").read_text())["mode"] == "crawl"
    assert all(state["pairs_already_in_pool"] is None for state in map(lambda c: _state(root, c), CRAWLS))
    assert not (root / "pair_keys").exists()
    before = _rows(root / "matched", "crawl", "uuid", "text")
    assert cli.main(_argv(root, "--dedup", "pool", manifest=manifests["CC-MAIN-2024-10"], base=base)) == 2
    assert "cannot take --dedup pool" in capsys.readouterr().err
    match = ["match", "--input", str(manifests["CC-MAIN-2024-10"]), "--input-format", "warc-manifest", "--input-base",
             str(base), "--metadata", SMALL_METADATA, "--output", str(root)]
    assert cli.main([*match, "--dedup", "pool"]) == 2
    assert "cannot take --dedup pool" in capsys.readouterr().err
    assert _rows(root / "matched", "crawl", "uuid", "text") == before
    assert cli.main(["status", str(root)]) == 0
    assert "dedup: crawl, (uuid, text) unique within each crawl only" in capsys.readouterr().out


def _made_before(per_crawl_root, path):
    """A root as versions before pool-wide de-duplication left it: per-crawl tables, no dedup.json, states without
    the fields this version adds."""
    shutil.copytree(per_crawl_root, path)
    (path / "dedup.json").unlink()
    for state_file in (path / "crawls").glob("*.json"):
        state = json.loads(state_file.read_text())
        state_file.write_text(json.dumps({k: v for k, v in state.items() if k not in ("dedup", "pairs_already_in_pool")}))
    return path


def test_a_root_made_before_is_refused_until_rebuilt_across_crawls(one_go, per_crawl, tmp_path, capsys):
    reference_root, reference = one_go
    root = _made_before(per_crawl[0], tmp_path / "old")
    assert cli.main(_argv(root)) == 2
    err = capsys.readouterr().err
    assert "made before pairs were de-duplicated across crawls" in err and "--rebuild-dedup" in err
    assert cli.main(["balance", "--output", str(root), "--metadata", SMALL_METADATA]) == 2
    assert "--rebuild-dedup" in capsys.readouterr().err
    assert cli.main(["status", str(root)]) == 0
    assert "dedup: not recorded" in capsys.readouterr().out
    assert cli.main(_argv(root, "--rebuild-dedup")) == 0  # no input: the crawls are rebuilt from their units
    summary = json.loads((root / "summary.json").read_text())
    _same_pool(root, summary, reference_root, reference)
    assert _rows(root / "pairs", "crawl", "uuid", "text") == _rows(reference_root / "pairs", "crawl", "uuid", "text")
    assert json.loads((root / "dedup.json").read_text())["rebuilding"] is False
    # --dedup crawl keeps such a root as it is, and records it
    kept = _made_before(per_crawl[0], tmp_path / "kept")
    assert cli.main(_argv(kept, "--dedup", "crawl")) == 0
    assert json.loads((kept / "dedup.json").read_text())["mode"] == "crawl"
    assert _rows(kept / "counts", "entry_id", "count") == _rows(per_crawl[0] / "counts", "entry_id", "count")


def _conf(tmp_path):
    conf = tmp_path / "conf.toml"
    conf.write_text("[extract]\nlanguages = []\nfiles_per_unit = 1\n")
    return conf


def _finish(argv):
    """The rerun after a kill, in this process (only the killed runs need a process of their own)."""
    assert cli.main(argv) == 0


def _released(root, crawl):
    path = root / "crawls" / f"{crawl}.json"
    return path.exists() and json.loads(path.read_text()).get("units_digest") == pair_keys.RELEASED


def test_a_crawl_redone_with_fewer_files_gives_back_the_pairs_others_dropped(spark, config, crawl_data, one_go,
                                                                            tmp_path):
    """--force: the first crawl is redone from one of its two files; the pairs of the other file, which the second
    crawl dropped as copies, are the second crawl's again (its tables are rebuilt): nothing is lost, even when the
    run is killed once the second crawl is marked for its rebuild."""
    base, manifests = crawl_data
    reference_root, _ = one_go
    first, second = sorted(CRAWLS)[:2]
    fewer = _listing(base, first, ["warcfile.warc.gz"])
    root = tmp_path / "root"
    _new_root(spark, root)
    for crawl in (first, second):
        _copy_units(reference_root, root, crawl)
        _ingest(spark, config, root, manifests[crawl], base)
    dropped = _state(root, second)["pairs_already_in_pool"]
    assert dropped > 0
    argv = _argv(root, "--force", manifest=fewer, base=base, conf=_conf(tmp_path))
    with open(tmp_path / "run.log", "wb") as log:
        _kill_when(_start(argv, log), lambda: _released(root, second))
        _finish(argv)
    summary = json.loads((root / "summary.json").read_text())
    assert summary["ingest"]["files_processed_now"] == 1
    expected_root = tmp_path / "expected"  # the two crawls as they are now, brought in one by one from scratch
    _new_root(spark, expected_root)
    _copy_units(reference_root, expected_root, first, ["warcfile.warc.gz"])
    _ingest(spark, config, expected_root, fewer, base)
    _copy_units(reference_root, expected_root, second)
    expected = _curate(spark, config, expected_root, manifests[second], base)
    _same_pool(root, summary, expected_root, expected)
    assert _state(root, second)["pairs"] == _state(expected_root, second)["pairs"]
    assert _state(root, second)["pairs_already_in_pool"] < dropped


def test_a_crawl_left_without_units_gives_its_pairs_to_the_others(spark, config, crawl_data, one_go, per_crawl,
                                                                  tmp_path):
    """A --force run killed after it dropped a crawl's units, before any was redone; another crawl's ingest runs
    first: the unitless crawl's keys leave the pool and the crawl that dropped copies of them takes them back."""
    base, manifests = crawl_data
    reference_root, reference = one_go
    first, second = sorted(CRAWLS)[:2]
    root = tmp_path / "root"
    _new_root(spark, root)
    for crawl in (first, second):
        _copy_units(reference_root, root, crawl)
        _ingest(spark, config, root, manifests[crawl], base)
    argv = _argv(root, "--force", manifest=manifests[first], base=base, conf=_conf(tmp_path))
    with open(tmp_path / "run.log", "wb") as log:
        _kill_when(_start(argv, log), lambda: not (root / "units" / f"crawl={first}").exists()
                   and not (root / "crawls" / f"{first}.json").exists())  # drop_units' two deletes both done
    assert not (root / "crawls" / f"{first}.json").exists()
    _ingest(spark, config, root, manifests[second], base)
    assert not (root / "pair_keys" / f"crawl={first}").exists()
    assert _state(root, second)["pairs_already_in_pool"] == 0
    assert set(_rows(root / "pairs" / f"crawl={second}", "uuid", "text")) == \
        set(_rows(per_crawl[0] / "pairs" / f"crawl={second}", "uuid", "text"))  # all its own pairs, copies none
    summary = _curate(spark, config, root, manifests[first], base, force=True)  # the killed command, again
    expected_root = tmp_path / "expected"  # the same two crawls, arriving second first
    _new_root(spark, expected_root)
    for crawl in (second, first):
        _copy_units(reference_root, expected_root, crawl)
        expected = _curate(spark, config, expected_root, manifests[crawl], base)
    _same_pool(root, summary, expected_root, expected)
    assert _rows(root / "pairs", "crawl", "uuid", "text") == _rows(expected_root / "pairs", "crawl", "uuid", "text")


def test_a_run_killed_at_any_point_of_the_rebuilds_resumes_exactly(spark, crawl_data, one_go, tmp_path):
    base, manifests = crawl_data
    reference_root, reference = one_go
    second, third = sorted(CRAWLS)[1:]
    root = tmp_path / "root"
    _new_root(spark, root)
    for crawl in CRAWLS:  # the units a killed first run committed: what remains is the crawls' rebuilds
        _copy_units(reference_root, root, crawl)
    argv = _argv(root, manifest=manifests["all"], base=base, conf=_conf(tmp_path))
    with open(tmp_path / "run.log", "wb") as log:
        # killed while the second crawl's keys are being written, then once the third's are in place
        _kill_when(_start(argv, log), lambda: glob.glob(f"{root}/pair_keys/{pair_keys.STAGING}/{second}/*"))
        assert not (root / "summary.json").exists()
        _kill_when(_start(argv, log), lambda: (root / "pair_keys" / f"crawl={third}").exists())
        _finish(argv)
    summary = json.loads((root / "summary.json").read_text())
    _same_pool(root, summary, reference_root, reference)
    assert _rows(root / "curated", "crawl", "uuid", "text") == _rows(reference_root / "curated", "crawl", "uuid", "text")
    assert not glob.glob(f"{root}/pair_keys/{pair_keys.STAGING}/*")


def test_a_killed_rebuild_blocks_balancing_and_is_started_over(one_go, per_crawl, tmp_path, capsys):
    reference_root, reference = one_go
    root = _made_before(per_crawl[0], tmp_path / "old")
    second = sorted(CRAWLS)[1]
    with open(tmp_path / "run.log", "wb") as log:
        _kill_when(_start(_argv(root, "--rebuild-dedup"), log),
                   lambda: (root / "pair_keys" / f"crawl={second}").exists())
    assert cli.main(["balance", "--output", str(root), "--metadata", SMALL_METADATA]) == 2
    assert "was interrupted" in capsys.readouterr().err
    assert cli.main(_argv(root)) == 0  # any writing run finishes it: no need to say --rebuild-dedup again
    summary = json.loads((root / "summary.json").read_text())
    _same_pool(root, summary, reference_root, reference)
    assert _rows(root / "pairs", "crawl", "uuid", "text") == _rows(reference_root / "pairs", "crawl", "uuid", "text")


def test_rematching_keeps_which_crawl_holds_each_pair(spark, config, crawl_data, one_go, tmp_path):
    base, manifests = crawl_data
    root = tmp_path / "root"
    shutil.copytree(one_go[0], root)
    other = tmp_path / "other.json"
    other.write_text('["a", "of", "the", "photo", "Scholar", "news"]')
    summary = pipeline.curate(spark, _config(config), _source(manifests["CC-MAIN-2024-20"], base),
                              Metadata(str(other)), str(root), report=False, rematch=True)
    assert summary["ingest"]["files_processed_now"] == 0
    assert _rows(root / "pairs", "crawl", "uuid", "text") == _rows(one_go[0] / "pairs", "crawl", "uuid", "text")
    for crawl in CRAWLS:
        assert _state(root, crawl)["pairs_already_in_pool"] == _state(one_go[0], crawl)["pairs_already_in_pool"]
    matched = _rows(root / "matched", "uuid", "text")
    assert len(matched) == len(set(matched)) and set(matched) <= set(_pair_set(root))


# --- pools of pairs -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """Three pools cut from the real sample pool, overlapping, some texts padded with whitespace Python strips
    (ideographic space, tab, newline, no-break space) and one pool holding the same pair twice."""
    rows = [json.loads(line) for line in (DATA / "pool" / "sample_pairs.jsonl").read_text().splitlines()]
    directory = tmp_path_factory.mktemp("pools")
    padded_b = [dict(r, text="\u3000" + r["text"] + " \t") if i < 20 else r for i, r in enumerate(rows[40:])]
    made = {
        "pool-a": ("parquet", rows[:80]),
        "pool-b": ("jsonl", padded_b + [dict(rows[100], text="\n" + rows[100]["text"])]),
        "pool-c": ("parquet", [dict(r, text=r["text"] + "\u00a0") for r in rows[:20]] + rows[110:]
                   + [dict(r, text="photo of " + r["text"]) for r in rows[:5]]),
    }
    found = {}
    for name, (kind, pool) in made.items():
        path = directory / f"{name}.{kind}"
        if kind == "parquet":
            pq.write_table(pa.Table.from_pylist(pool), path)
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in pool))
        found[name] = (str(path), kind, pool)
    return found


def _uuid(url: str) -> str:
    import hashlib

    return hashlib.sha224(url.encode("utf-8")).hexdigest()[:24]


BUCKETS = 3  # root.pair_key_buckets of the pool roots


def _pool_run(spark, config, root, pools, order, root_settings=None, **kwargs):
    config = _config(config).updated({"root": {"pair_key_buckets": BUCKETS, **(root_settings or {})}})
    for name in order[:-1]:
        path, kind, _ = pools[name]
        ingest(spark, config, OutputRoot(spark, str(root)), InputSpec(path, kind, None, name),
               Metadata(SMALL_METADATA), **kwargs)
    path, kind, _ = pools[order[-1]]
    return pipeline.curate(spark, config, InputSpec(path, kind, None, order[-1]), Metadata(SMALL_METADATA),
                           str(root), report=False, **kwargs)


def test_pools_are_stripped_and_each_pair_kept_once_in_any_order(spark, config, pools, tmp_path):
    unique = {name: {(_uuid(r["url"]), r["text"].strip()) for r in pool} for name, (_, _, pool) in pools.items()}
    everything = set().union(*unique.values())
    results = []
    for order in (("pool-a", "pool-b", "pool-c"), ("pool-c", "pool-b", "pool-a")):
        root = tmp_path / "-".join(order)
        summary = _pool_run(spark, config, root, pools, order)
        matched = _rows(root / "matched", "uuid", "text")
        assert len(matched) == len(set(matched)) and set(matched) <= everything  # stripped, once each
        assert summary["pairs_in"] == len(everything)
        assert summary["pairs_already_in_pool"] == sum(map(len, unique.values())) - len(everything)
        assert summary["by_crawl"][order[0]]["pairs"] == len(unique[order[0]])
        keys = sum(pq.read_table(root / "pair_keys" / f"crawl={name}").num_rows for name in order)
        assert keys == len(everything)
        assert json.loads((root / "dedup.json").read_text())["buckets"] == BUCKETS
        assert all(len(glob.glob(f"{root}/pair_keys/crawl={name}/*.parquet")) <= BUCKETS for name in order)
        results.append((matched, _rows(root / "counts", "entry_id", "count"),
                        _rows(root / "curated", "uuid", "text", "keep_prob")))
    assert results[0] == results[1]
    # --dedup crawl: pools kept exactly as given (texts as they are, the pair pool-b holds twice twice)
    root = tmp_path / "per-crawl"
    summary = _pool_run(spark, config, root, pools, ("pool-a", "pool-b", "pool-c"), dedup="crawl")
    assert summary["pairs_in"] == sum(len(pool) for _, _, pool in pools.values())
    assert any(text != text.strip() for _, text in _rows(root / "matched", "uuid", "text"))


def _crawl_stage_tasks(spark, since: float) -> list[int]:
    """Tasks of each Spark stage the crawl stages (the rebuilds) ran since `since` (time.monotonic())."""
    tracker = spark.sparkContext.statusTracker()
    tasks = []
    for run in [r for r in list(progress._timings) if r.name == "crawl" and r.started >= since]:
        for job_id in tracker.getJobIdsForGroup(run.group):
            for stage_id in tracker.getJobInfo(job_id).stageIds:
                info = tracker.getStageInfo(stage_id)
                tasks.extend([info.numTasks] if info is not None else [])
    return tasks


def _keys_by_bucket(spark, root, buckets: int) -> set:
    """(crawl, bucket, key_hi, key_lo) of every key in the root's key files, each file's keys checked to be of the
    bucket its name gives (Murmur3 of the key columns modulo the buckets: what Spark's bucketed reader assumes)."""
    from pyspark.sql import functions as F

    keys = spark.read.parquet(str(root / "pair_keys")).select(
        "crawl", "key_hi", "key_lo", F.input_file_name().alias("file"),
        F.expr(f"pmod(hash(key_hi, key_lo), {buckets})").alias("bucket")).collect()
    assert all(int(re.search(r"_(\d+)\.c\d+", row["file"]).group(1)) == row["bucket"] for row in keys)
    return {(row["crawl"], row["bucket"], row["key_hi"], row["key_lo"]) for row in keys}


MANY_BUCKETS = 64  # as a dump's 4096 to a pool of a few hundred pairs: most buckets empty


def test_a_small_rebuild_runs_no_task_per_empty_bucket_and_keeps_what_the_buckets_keep(spark, config, pools, tmp_path):
    """A pool of a few hundred pairs in a root of many key buckets: below root.pair_key_bucket_min_pairs per bucket the
    rebuilds run as few tasks as the rows need, and keep the same pairs, counts, curated rows and key files as
    rebuilds through every bucket (min 0), crawl by crawl with copies of other crawls' pairs dropped."""
    order = ("pool-b", "pool-a", "pool-c")
    found = {}
    for name, min_pairs in (("small", 10_000), ("bucketed", 0)):
        root = tmp_path / name
        since = time.monotonic()
        summary = _pool_run(spark, config, root, pools, order,
                            {"pair_key_buckets": MANY_BUCKETS, "pair_key_bucket_min_pairs": min_pairs})
        tasks = _crawl_stage_tasks(spark, since)
        keys = _keys_by_bucket(spark, root, MANY_BUCKETS)
        found[name] = (tasks, sorted(_pair_set(root, "matched")), _rows(root / "counts", "entry_id", "count"),
                       _rows(root / "curated", "crawl", "uuid", "text", "keep_prob"), keys,
                       {k: summary[k] for k in ("pairs_in", "pairs_already_in_pool", "t")})
    small, bucketed = found["small"], found["bucketed"]
    assert max(bucketed[0]) == MANY_BUCKETS  # what the test would see of a task per bucket
    assert small[0] and max(small[0]) < MANY_BUCKETS / 4 and sum(small[0]) < sum(bucketed[0]) / 4, small[0]
    assert small[1:] == bucketed[1:]
    assert small[-1]["pairs_already_in_pool"] > 0  # copies were dropped, through the anti-join of each path

