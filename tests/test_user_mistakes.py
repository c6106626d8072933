"""A user's mistake is one line and an exit code, never a crash; rows the pipeline cannot use are counted, never
dropped unseen. Each test checks the exit code, the last line of stderr and what is on disk afterwards."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli

from conftest import DATA

SMALL_METADATA = str(DATA / "metadata" / "small.json")
POOL = DATA / "pool" / "sample_pairs.jsonl"
LINES = POOL.read_text(encoding="utf-8").splitlines()


def _curate(root, *argv: str) -> int:
    return cli.main(["curate", "--output", str(root), "--metadata", SMALL_METADATA, "--t", "5", "--no-report", *argv])


def _error(capsys, command: str) -> str:
    """stderr's last line, checked to be the one-line error of `command`."""
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"metaclip-spark {command}: error: "), last
    return last


def _rows(path) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in pq.read_table(str(path)).to_pylist())


def _status(root, capsys) -> dict:
    capsys.readouterr()
    assert cli.main(["status", str(root), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _write_lines(path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


# 2. a url or text column that is not a string -------------------------------------------------------------------

@pytest.mark.parametrize("values, type_name", [
    (pa.array(range(len(LINES)), pa.int64()), "bigint"),
    (pa.array([[f"caption {i}"] for i in range(len(LINES))], pa.list_(pa.string())), "array<string>"),
    (pa.array([b"caption"] * len(LINES), pa.binary()), "binary"),
    (pa.array([{"en": "caption"}] * len(LINES), pa.struct([("en", pa.string())])), "struct<en:string>"),
], ids=["int", "list", "binary", "struct"])
def test_a_text_column_that_is_not_a_string_exits_3_naming_it_and_its_type(spark, tmp_path, capsys, values,
                                                                          type_name):
    urls = [json.loads(line)["url"] for line in LINES]
    pool = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"url": urls, "caption": values}), str(pool))
    root = tmp_path / "root"
    assert _curate(root, "--input", str(pool), "--text-column", "caption") == 3
    error = _error(capsys, "curate")
    assert f"column 'caption' (input.text_column) is {type_name}, not a string" in error
    assert not (root / "units").exists() and not (root / "summary.json").exists()


# 4. columns the pipeline adds itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("column, value", [("entry_ids", [1, 2]), ("keep_prob", 0.5), ("crawl", "CC-MAIN-2020-34"),
                                           ("Crawl", "mine")])
def test_a_pool_with_a_reserved_column_exits_3_naming_it(spark, tmp_path, capsys, column, value):
    pool = _write_lines(tmp_path / "pool.jsonl", [json.dumps(dict(json.loads(line), **{column: value}))
                                                  for line in LINES])
    root = tmp_path / "root"
    assert _curate(root, "--input", pool) == 3
    assert f"column {column!r} is reserved" in _error(capsys, "curate")
    assert not (root / "units").exists() and not (root / "summary.json").exists()


def test_a_pool_with_its_own_uuid_keeps_it(spark, tmp_path):
    pool = _write_lines(tmp_path / "pool.jsonl", [json.dumps(dict(json.loads(line), uuid=f"given-{i}"))
                                                  for i, line in enumerate(LINES)])
    root = tmp_path / "root"
    assert _curate(root, "--input", pool) == 0
    uuids = pq.read_table(str(root / "matched")).column("uuid").to_pylist()
    assert uuids and all(u.startswith("given-") for u in uuids)
