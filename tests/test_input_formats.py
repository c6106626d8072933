"""`--input` without `--input-format`: the format comes from the name or the files; unreadable files exit 3."""

from __future__ import annotations

import gzip
import json
import shutil

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli
from metaclip_spark.ingestion.ingest import infer_input_format

from conftest import DATA

SMALL_METADATA = str(DATA / "metadata" / "small.json")
POOL = DATA / "pool" / "sample_pairs.jsonl"


def _curate(tmp_path, input_path: str, name: str = "root") -> int:
    return cli.main(["curate", "--input", input_path, "--output", str(tmp_path / name), "--metadata", SMALL_METADATA,
                     "--t", "5", "--no-report"])


@pytest.fixture(scope="module")
def parquet_pool(spark, tmp_path_factory):
    """The sample pool written by Spark (part-*.parquet, _SUCCESS and .crc files beside them)."""
    path = tmp_path_factory.mktemp("pools") / "pool"
    spark.read.json(str(POOL)).coalesce(2).write.parquet(str(path))
    return path


def test_formats_are_told_from_names_and_files(spark, config, parquet_pool, tmp_path):
    listing = tmp_path / "CC-MAIN-2016-07.wat.paths.gz"
    shutil.copy(DATA / "cc" / "CC-MAIN-2016-07.wat.paths.gz", listing)
    assert infer_input_format(spark, str(listing), config) == "wat-manifest"
    plain = tmp_path / "warc.paths"
    plain.write_text("crawl-data/CC-MAIN-2016-07/segments/1/warc/a.warc.gz\n", encoding="utf-8")
    assert infer_input_format(spark, str(plain), config) == "warc-manifest"
    assert infer_input_format(spark, str(POOL), config) == "jsonl"
    assert infer_input_format(spark, str(parquet_pool), config) == "parquet"
    json_dir = tmp_path / "json-pool"
    json_dir.mkdir()
    (json_dir / "part-0.jsonl.gz").write_bytes(gzip.compress(POOL.read_bytes()))
    assert infer_input_format(spark, str(json_dir), config) == "jsonl"


def test_jsonl_pool_without_format_gives_the_rows_of_an_explicit_one(spark, tmp_path):
    assert _curate(tmp_path, str(POOL), "inferred") == 0
    assert cli.main(["curate", "--input", str(POOL), "--input-format", "jsonl", "--output", str(tmp_path / "explicit"),
                     "--metadata", SMALL_METADATA, "--t", "5", "--no-report"]) == 0
    rows = [sorted(json.dumps(r, sort_keys=True) for r in pq.read_table(str(tmp_path / name / "curated")).to_pylist())
            for name in ("inferred", "explicit")]
    assert rows[0] == rows[1] and len(rows[0]) > 10


def test_directory_of_unknown_files_asks_for_the_format(spark, tmp_path, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    (folder / "pairs.csv").write_text("url,text\n", encoding="utf-8")
    assert _curate(tmp_path, str(folder)) == 2
    assert "pass --input-format" in capsys.readouterr().err


def test_stray_file_in_a_parquet_pool_exits_3_naming_it(spark, parquet_pool, tmp_path, capsys):
    pool = tmp_path / "pool"
    shutil.copytree(parquet_pool, pool)
    (pool / "README.txt").write_text("pairs extracted in May\n", encoding="utf-8")
    assert _curate(tmp_path, str(pool)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("metaclip-spark curate: error: cannot read ") and "README.txt" in err[-1]
    assert not (tmp_path / "root" / "summary.json").exists()


def test_a_cut_gzipped_json_lines_pool_exits_3_naming_the_file_and_saying_it_is_cut(spark, tmp_path, capsys):
    # Spark said only "SQLSTATE: KD001".
    data = gzip.compress(POOL.read_bytes())
    (tmp_path / "pool.jsonl.gz").write_bytes(data[:len(data) // 2])
    assert _curate(tmp_path, str(tmp_path / "pool.jsonl.gz")) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("metaclip-spark curate: error: cannot read ") and "pool.jsonl.gz" in err
    assert "the file is cut short" in err and "SQLSTATE" not in err


def test_text_that_is_not_utf8_in_a_parquet_pool_is_skipped_and_counted(spark, tmp_path, capsys):
    # A Parquet string column may hold any bytes: such a text crashed the matcher, exit 70, naming no file.
    import pyarrow as pa

    rows = [json.loads(line) for line in POOL.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"].encode() for r in rows] + [b"Semantic Scholar \xff\xfe", b"Icon"]
    urls = [r["url"] for r in rows] + ["https://example.org/bad-text.svg", b"https://example.org/\xc3(.svg"]
    table = pa.table({"url": pa.array([u if isinstance(u, bytes) else u.encode() for u in urls]).view(pa.string()),
                      "text": pa.array(texts, pa.binary()).view(pa.string())})
    (tmp_path / "pool").mkdir()
    pq.write_table(table, tmp_path / "pool" / "part-0.parquet")
    assert _curate(tmp_path, str(tmp_path / "pool")) == 0
    state = json.loads((tmp_path / "root" / "crawls" / "pool.json").read_text())
    assert state["skipped"]["bad_encoding"] == 2
    matched = pq.read_table(str(tmp_path / "root" / "matched")).column("url").to_pylist()
    assert "https://example.org/bad-text.svg" not in matched and len(matched) > 0


def test_pool_with_its_own_column_names_is_balanced_and_reported_without_them_or_the_input(spark, tmp_path):
    pool = tmp_path / "captions.jsonl"
    with open(POOL, encoding="utf-8") as f, open(pool, "w", encoding="utf-8") as out:
        for line in f:
            row = json.loads(line)
            out.write(json.dumps({"image": row["url"], "caption": row["text"], "lang": "en"}) + "\n")
    root = tmp_path / "root"
    assert cli.main(["curate", "--input", str(pool), "--url-column", "image", "--text-column", "caption",
                     "--output", str(root), "--metadata", SMALL_METADATA, "--t", "5", "--no-report"]) == 0
    state = json.loads((root / "crawls" / "pool.json").read_text())
    assert state["columns"] == {"url": "image", "text": "caption"}
    assert state["pairs_by"] == {"lang": {"en": state["pairs"]}}
    curated = sorted(json.dumps(r, sort_keys=True) for r in pq.read_table(str(root / "curated")).to_pylist())
    pool.unlink()  # balance and report read the root alone, never the input (nor the column options) again
    assert cli.main(["balance", "--output", str(root), "--metadata", SMALL_METADATA, "--t", "5"]) == 0
    assert sorted(json.dumps(r, sort_keys=True) for r in pq.read_table(str(root / "curated")).to_pylist()) == curated
    assert cli.main(["report", "--output", str(root)]) == 0
    report = json.loads((root / "report" / "summary.json").read_text())
    assert report["sizes"]["by"]["lang"][0]["pairs_in"] == state["pairs"] == 126
