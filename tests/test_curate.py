"""The Spark stages end to end on a real sample pool: output tables, determinism, nesting, bad input."""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli, pipeline
from metaclip_spark.balancing.draws import entry_probabilities, keep_probability
from metaclip_spark.extraction.ids import image_uuid
from metaclip_spark.ingestion.ingest import InputSpec
from metaclip_spark.matching.substrings import reference_match
from metaclip_spark.metadata.lists import Metadata, load_metadata
from metaclip_spark.root.layout import TAKEN_MARKER

from conftest import DATA

SMALL_METADATA = str(DATA / "metadata" / "small.json")
T = 30


def _sample_pairs() -> list[dict]:
    with open(DATA / "pool" / "sample_pairs.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _write_pool(spark, path, copies: int, start: int = 0) -> str:
    """The real sample pairs, each image repeated under `copies` distinct URLs: counts large enough to balance."""
    rows = [dict(p, url=f"{p['url']}?copy={k}") for k in range(start, start + copies) for p in _sample_pairs()]
    spark.createDataFrame(rows).coalesce(2).write.mode("overwrite").parquet(str(path))
    return str(path)


def _config(config, partitions=0, t=T, seed=11):
    return config.updated({"input": {"partitions": partitions}, "curation": {"t": t, "seed": seed}})


def _rows(path, *columns):
    return sorted(zip(*(pq.read_table(path).column(c).to_pylist() for c in columns)))


@pytest.fixture(scope="module")
def pool(spark, tmp_path_factory):
    return _write_pool(spark, tmp_path_factory.mktemp("pool") / "pool", copies=20)


@pytest.fixture(scope="module")
def curated_run(spark, config, pool, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("run") / "out")
    metadata = Metadata(SMALL_METADATA)
    summary = pipeline.curate(spark, _config(config, partitions=3), InputSpec(pool, "parquet"), metadata, output)
    return output, summary


def test_matched_table_holds_exactly_the_matching_pairs_with_sorted_ids(curated_run, pool):
    output, summary = curated_run
    entries = load_metadata(SMALL_METADATA)
    expected = []
    for row in pq.read_table(pool).to_pylist():
        ids = reference_match(row["text"], entries)
        if ids:
            expected.append((image_uuid(row["url"]), row["text"], ids))
    assert _rows(f"{output}/matched", "uuid", "text", "entry_ids") == sorted(expected)
    assert summary["pairs_in"] == 2520 and summary["pairs_matched"] == len(expected)


def test_counts_table_is_the_number_of_matched_texts_per_entry(curated_run):
    output, summary = curated_run
    entries = load_metadata(SMALL_METADATA)
    recount = Counter(e for ids in pq.read_table(f"{output}/matched").column("entry_ids").to_pylist() for e in ids)
    assert _rows(f"{output}/counts", "entry_id", "entry", "count") == sorted(
        (e, entries[e], c) for e, c in recount.items())
    assert summary["entries_matched"] == len(recount)
    assert summary["entries_over_t"] == sum(c > T for c in recount.values())
    assert 0 not in pq.read_table(f"{output}/counts").column("count").to_pylist()


def test_entry_names_never_travel_inside_the_count_tasks(spark):
    """Spark warned "a task of very large size (9432 KiB)" on every run: 500k names were a table joined in."""
    from metaclip_spark.balancing.counts import count_entries

    entries = [f"entry {i}" for i in range(200_000)]
    metadata = Metadata(None)
    metadata.entries = entries
    matched = spark.createDataFrame([([1, 3],), ([3, 199_999],)], "entry_ids array<int>")
    counts = count_entries(matched, metadata)
    plan = counts._jdf.queryExecution().executedPlan().toString()
    assert "LocalTableScan" not in plan and "Join" not in plan
    assert sorted(map(tuple, counts.collect())) == [(1, "entry 1", 1), (3, "entry 3", 2), (199_999, "entry 199999", 1)]


def test_curated_rows_carry_their_keep_probability(curated_run):
    output, summary = curated_run
    counts = dict(_rows(f"{output}/counts", "entry_id", "count"))
    probs = entry_probabilities([counts.get(e, 0) for e in range(max(counts) + 1)], T)
    curated = pq.read_table(f"{output}/curated").to_pylist()
    assert len(curated) == summary["pairs_curated"]
    assert 0 < len(curated) < summary["pairs_matched"]
    for row in curated:
        assert row["keep_prob"] == pytest.approx(keep_probability(probs[row["entry_ids"]]), rel=1e-9)
    # tail entries (count <= t) keep their pairs
    tail = {e for e, c in counts.items() if c <= T}
    matched = pq.read_table(f"{output}/matched").to_pylist()
    kept = {(r["uuid"], r["text"]) for r in curated}
    assert all((r["uuid"], r["text"]) in kept for r in matched if tail & set(r["entry_ids"]))
    assert summary["t"] == T and summary["seed"] == 11


def test_same_curated_rows_on_1_3_and_8_partitions_and_on_a_rerun(spark, config, pool, curated_run, tmp_path):
    output, _ = curated_run
    reference = _rows(f"{output}/curated", "uuid", "text", "keep_prob")
    metadata = Metadata(SMALL_METADATA)
    for partitions in (1, 8, 3):
        out = str(tmp_path / f"p{partitions}")
        pipeline.curate(spark, _config(config, partitions=partitions), InputSpec(pool, "parquet"), metadata, out,
                        report=False)
        assert _rows(f"{out}/curated", "uuid", "text", "keep_prob") == reference
    # a rerun on the same root skips the input already done and balances again to the same rows
    rerun = pipeline.curate(spark, _config(config, partitions=8), InputSpec(pool, "parquet"), metadata, out,
                        report=False)
    assert rerun["ingest"]["files_processed_now"] == 0
    assert _rows(f"{out}/curated", "uuid", "text", "keep_prob") == reference


def test_a_larger_pool_only_removes_earlier_pairs(spark, config, pool, curated_run, tmp_path):
    """Same seed and t: adding pairs raises counts, so earlier pairs can be dropped but never added."""
    output, _ = curated_run
    before = set(_rows(f"{output}/curated", "uuid", "text"))
    bigger = str(tmp_path / "bigger")
    spark.read.parquet(pool).unionByName(spark.read.parquet(_write_pool(spark, tmp_path / "more", 10, start=20))) \
        .write.parquet(bigger)
    out = str(tmp_path / "out")
    pipeline.curate(spark, _config(config), InputSpec(bigger, "parquet"), Metadata(SMALL_METADATA), out,
                    report=False)
    original = set(_rows(f"{output}/matched", "uuid", "text"))
    after = {row for row in _rows(f"{out}/curated", "uuid", "text") if row in original}
    assert after < before


def test_stage_commands_do_the_same_steps_one_at_a_time(spark, pool, curated_run, tmp_path):
    output, summary = curated_run
    out = str(tmp_path / "staged")
    common = ["--metadata", SMALL_METADATA, "--output", out]
    assert cli.main(["match", "--input", pool, *common]) == 0
    assert cli.main(["count", *common]) == 0
    assert cli.main(["balance", "--t", str(T), "--seed", "11", *common]) == 0
    assert _rows(f"{out}/curated", "uuid", "text") == _rows(f"{output}/curated", "uuid", "text")
    staged = json.loads(open(f"{out}/summary.json").read())
    assert {k: staged[k] for k in ("pairs_in", "pairs_matched", "pairs_curated", "t", "seed")} == \
        {k: summary[k] for k in ("pairs_in", "pairs_matched", "pairs_curated", "t", "seed")}


def test_balance_refuses_tables_matched_with_other_metadata(spark, curated_run, tmp_path, capsys):
    output, _ = curated_run
    other = tmp_path / "other.json"
    other.write_text('["dog", "cat"]')
    assert cli.main(["balance", "--metadata", str(other), "--output", output]) == 2
    assert "another metadata list" in capsys.readouterr().err


def _assert_failed(capsys, code, argv, message, output):
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (output / "summary.json").exists()
    assert not (output / "matched").exists()


def test_missing_input_path(spark, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_failed(capsys, 3, ["curate", "--input", str(tmp_path / "nowhere"), "--metadata", SMALL_METADATA,
                               "--output", str(out)], "input path does not exist", out)


def test_unknown_column(spark, pool, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_failed(capsys, 3, ["curate", "--input", pool, "--text-column", "caption", "--metadata", SMALL_METADATA,
                               "--output", str(out)], "no column 'caption'", out)


def test_empty_input(spark, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "out"
    _assert_failed(capsys, 3, ["curate", "--input", str(empty), "--input-format", "jsonl", "--metadata",
                               SMALL_METADATA, "--output", str(out)], "holds no", out)


def test_malformed_metadata_stops_before_spark_work(tmp_path, capsys, monkeypatch):
    from metaclip_spark import session

    def no_spark(*args, **kwargs):
        raise AssertionError("Spark was started before the metadata was checked")

    monkeypatch.setattr(session, "owned_session", no_spark)
    bad = tmp_path / "bad.json"
    bad.write_text('["dog", 7]')
    out = tmp_path / "out"
    for command in ("curate", "match"):
        _assert_failed(capsys, 2, [command, "--input", "whatever", "--metadata", str(bad), "--output", str(out)],
                       "entry 1 is int 7", out)
    for command in ("count", "balance"):
        _assert_failed(capsys, 2, [command, "--metadata", str(bad), "--output", str(out)], "entry 1 is int 7", out)


def test_bad_threshold_is_a_config_error(tmp_path, capsys):
    out = tmp_path / "out"
    _assert_failed(capsys, 2, ["curate", "--input", "x", "--t", "many", "--output", str(out)], "curation.t", out)


def test_explain_prints_the_spaced_text_and_matches(capsys):
    assert cli.main(["explain", "--metadata", SMALL_METADATA, "A photo of people, black and white."]) == 0
    out = capsys.readouterr().out
    assert "' A photo of people ,  black and white .  '" in out
    for entry in ("'photo of'", "'black and white'", "'people'", "'A'"):
        assert entry in out
    assert "'a photo'" not in out  # case-sensitive


def _unit_dirs(root) -> list[str]:
    return sorted(glob.glob(f"{root}/units/crawl=pool/unit=*"))


def test_a_pool_crawl_of_one_unit_takes_its_matched_table_and_gives_it_back(spark, config, pool, curated_run,
                                                                             tmp_path):
    output, _ = curated_run
    # One unit, no duplicate pair: its matched/ is moved into the crawl's table (no copy), tagged with the unit.
    (unit,) = _unit_dirs(output)
    assert not os.path.exists(f"{unit}/matched")
    assert json.loads(open(f"{output}/matched/crawl=pool/{TAKEN_MARKER}").read())["unit"] == unit.rsplit("=", 1)[1]
    # A rebuild finds it there: the crawl's state lost (a run killed before writing it) is rebuilt to the same rows.
    root = tmp_path / "root"
    shutil.copytree(output, root)
    os.remove(root / "crawls" / "pool.json")
    metadata = Metadata(SMALL_METADATA)
    pipeline.curate(spark, _config(config), InputSpec(pool, "parquet"), metadata, str(root), report=False)
    for table, columns in (("matched", ("uuid", "text", "url", "entry_ids")), ("curated", ("uuid", "text", "keep_prob"))):
        assert _rows(f"{root}/{table}", *columns) == _rows(f"{output}/{table}", *columns)
    # A second pool in the same crawl: the crawl's matched/ is rebuilt from both units, the first one's given back.
    more = _write_pool(spark, tmp_path / "more", 3, start=20)
    pipeline.curate(spark, _config(config), InputSpec(more, "parquet", crawl="pool"), metadata, str(root), report=False)
    assert all(os.path.exists(f"{u}/matched") for u in _unit_dirs(root)) and len(_unit_dirs(root)) == 2
    assert not os.path.exists(root / "matched" / "crawl=pool" / TAKEN_MARKER)
    both = tmp_path / "both"
    spark.read.parquet(pool).unionByName(spark.read.parquet(more)).write.parquet(str(both))
    one_go = str(tmp_path / "one_go")
    pipeline.curate(spark, _config(config), InputSpec(str(both), "parquet"), metadata, one_go, report=False)
    for table, columns in (("matched", ("uuid", "text", "url", "entry_ids")), ("curated", ("uuid", "text", "keep_prob"))):
        assert _rows(f"{root}/{table}", *columns) == _rows(f"{one_go}/{table}", *columns)


def test_a_pool_holding_duplicate_pairs_is_de_duplicated_not_taken(spark, config, pool, curated_run, tmp_path):
    output, summary = curated_run
    doubled = tmp_path / "doubled"
    spark.read.parquet(pool).unionByName(spark.read.parquet(pool)).write.parquet(str(doubled))
    out = str(tmp_path / "out")
    again = pipeline.curate(spark, _config(config), InputSpec(str(doubled), "parquet"), Metadata(SMALL_METADATA), out,
                            report=False)
    (unit,) = _unit_dirs(out)
    assert os.path.exists(f"{unit}/matched") and not os.path.exists(f"{out}/matched/crawl=pool/{TAKEN_MARKER}")
    assert _rows(f"{out}/matched", "uuid", "text", "url", "entry_ids") == \
        _rows(f"{output}/matched", "uuid", "text", "url", "entry_ids")
    assert again["pairs_in"] == summary["pairs_in"] and again["pairs_curated"] == summary["pairs_curated"]


def test_a_taken_matched_table_is_rematched_like_a_fresh_run(spark, config, pool, curated_run, tmp_path):
    """--rematch of a crawl whose matched/ is its unit's: the unit writes its own again, the crawl takes it (the
    old one, tagged with the unit's former marker, is replaced), and the rows are those of a fresh run."""
    output, _ = curated_run
    other = tmp_path / "other.json"
    other.write_text(json.dumps(load_metadata(SMALL_METADATA)[::2]))
    root = tmp_path / "root"
    shutil.copytree(output, root)
    pipeline.curate(spark, _config(config), InputSpec(pool, "parquet"), Metadata(str(other)), str(root),
                    rematch=True, report=False)
    fresh = str(tmp_path / "fresh")
    pipeline.curate(spark, _config(config), InputSpec(pool, "parquet"), Metadata(str(other)), fresh, report=False)
    (unit,) = _unit_dirs(root)
    assert not os.path.exists(f"{unit}/matched") and os.path.exists(root / "matched" / "crawl=pool" / TAKEN_MARKER)
    for table, columns in (("matched", ("uuid", "text", "url", "entry_ids")), ("curated", ("uuid", "text", "keep_prob"))):
        assert _rows(f"{root}/{table}", *columns) == _rows(f"{fresh}/{table}", *columns)
