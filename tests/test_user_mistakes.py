"""A user's mistake is one line and an exit code, never a crash; rows the pipeline cannot use are counted, never
dropped unseen. Each test checks the exit code, the last line of stderr and what is on disk afterwards."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli
from metaclip_spark.matching.substrings import reference_match
from metaclip_spark.metadata.lists import validate_entries

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


@pytest.fixture(scope="module")
def clean_root(spark, tmp_path_factory):
    """The sample pool curated as it is; `--crawls pool` names the input's crawl before the root holds it."""
    root = tmp_path_factory.mktemp("clean") / "root"
    assert _curate(root, "--input", str(POOL), "--crawls", "pool") == 0
    return root


# 1. malformed JSON lines ----------------------------------------------------------------------------------------

def test_malformed_json_lines_are_skipped_counted_and_the_rest_curated(spark, clean_root, tmp_path, capsys):
    bad = ["{not json", "42", '["a list"]', '{"url": "https://x.org/a.jpg", "text": "dog"']  # the last is cut short
    pool = _write_lines(tmp_path / "pool.jsonl", LINES[:40] + bad[:2] + LINES[40:] + bad[2:])
    root = tmp_path / "root"
    assert _curate(root, "--input", pool) == 0
    assert _rows(root / "curated") == _rows(clean_root / "curated")
    expected = {"malformed_line": 4, "null_url": 0, "null_text": 0, "bad_encoding": 0}
    marker, = [json.loads(p.read_text()) for p in (root / "units").glob("crawl=pool/unit=*/_COMMITTED.json")]
    assert marker["skipped"] == expected and marker["pairs"] == len(LINES)
    assert json.loads((root / "crawls" / "pool.json").read_text())["skipped"] == expected
    assert json.loads((root / "summary.json").read_text())["by_crawl"]["pool"]["skipped"] == expected
    crawl = _status(root, capsys)["crawls"]["pool"]
    assert crawl["skipped"] == expected and crawl["pairs"] == len(LINES)
    assert cli.main(["status", str(root)]) == 0
    assert "rows skipped: 4 malformed_line" in capsys.readouterr().out


def test_a_pool_of_malformed_lines_only_exits_3(spark, tmp_path, capsys):
    pool = _write_lines(tmp_path / "pool.jsonl", ["{not json", "nor this"])
    root = tmp_path / "root"
    assert _curate(root, "--input", pool) == 3
    assert "every line is malformed" in _error(capsys, "curate")
    assert not (root / "units").exists() and not (root / "summary.json").exists()


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


# 3. rows with a null or empty url, or a null text ---------------------------------------------------------------

def test_rows_without_url_or_text_are_skipped_and_counted(spark, clean_root, tmp_path, capsys):
    extra = [json.dumps(row) for row in (
        {"url": None, "text": "a photo of a dog"}, {"text": "a photo of a dog"}, {"url": "", "text": "dog"},
        {"url": "https://example.org/dog.jpg", "text": None}, {"url": "https://example.org/cat.jpg"},
    )]
    pool = _write_lines(tmp_path / "pool.jsonl", extra[:3] + LINES + extra[3:])
    root = tmp_path / "root"
    assert _curate(root, "--input", pool) == 0
    assert _rows(root / "curated") == _rows(clean_root / "curated")
    matched = pq.read_table(str(root / "matched")).to_pylist()
    assert all(r["uuid"] and r["url"] and r["text"] is not None for r in matched)
    expected = {"malformed_line": 0, "null_url": 3, "null_text": 2, "bad_encoding": 0}
    assert json.loads((root / "crawls" / "pool.json").read_text())["skipped"] == expected
    assert _status(root, capsys)["crawls"]["pool"]["skipped"] == expected


def test_a_pool_whose_rows_all_lack_a_url_exits_3_saying_so(spark, tmp_path, capsys):
    pool = _write_lines(tmp_path / "pool.jsonl", [json.dumps({"url": None, "text": "dog"})] * 3)
    root = tmp_path / "root"
    assert _curate(root, "--input", pool) == 3
    assert "holds no pairs: 3 rows skipped (null_url 3)" in _error(capsys, "curate")
    assert not (root / "crawls").exists() and not (root / "summary.json").exists()


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


def test_null_or_empty_uuids_are_computed_from_the_url_and_counted(spark, tmp_path, capsys):
    from metaclip_spark.extraction.ids import image_uuid

    # Three images with one text and no uuid of their own: used as given (null), they were one pair, silently.
    text = "Semantic Scholar"
    urls = [f"https://example.org/logo-{i}.svg" for i in range(3)]
    given = [json.dumps(dict(json.loads(line), uuid=f"given-{i}")) for i, line in enumerate(LINES)]
    nameless = [json.dumps({"url": url, "text": text, "uuid": uuid}) for url, uuid in zip(urls, [None, "", "  "])]
    root = tmp_path / "root"
    assert _curate(root, "--input", _write_lines(tmp_path / "pool.jsonl", given + nameless)) == 0
    matched = {r["url"]: r["uuid"] for r in pq.read_table(str(root / "matched")).to_pylist()}
    assert {url: matched.get(url) for url in urls} == {url: image_uuid(url) for url in urls}
    assert all(uuid.startswith("given-") for url, uuid in matched.items() if url not in urls)
    assert json.loads((root / "crawls" / "pool.json").read_text())["uuid_computed"] == 3
    status = _status(root, capsys)["crawls"]["pool"]
    assert status["uuid_computed"] == 3


@pytest.mark.parametrize("damage", [b"", b'{"crawl": "po', b"\xff\xfe{}", b"[1, 2]\n"],
                         ids=["empty", "cut", "not-utf8", "not-an-object"])
def test_a_damaged_crawl_state_is_named_with_the_command_that_rebuilds_it(spark, clean_root, tmp_path, capsys, damage):
    # status and count exited 70 with a JSON trace.
    root = tmp_path / "root"
    shutil.copytree(clean_root, root)
    (root / "crawls" / "pool.json").write_bytes(damage)
    capsys.readouterr()
    assert cli.main(["status", str(root)]) == 3
    said = _error(capsys, "status")
    assert f"the state of crawl pool, {root}/crawls/pool.json, is damaged" in said
    assert f"delete it, then run `metaclip-spark curate --output {root} --rebuild-dedup`" in said
    if damage != b"":
        return
    assert cli.main(["count", "--output", str(root), "--metadata", SMALL_METADATA]) == 3
    assert f"{root}/crawls/pool.json, is damaged" in _error(capsys, "count")
    (root / "crawls" / "pool.json").unlink()  # as the message says
    assert cli.main(["curate", "--output", str(root), "--rebuild-dedup", "--metadata", SMALL_METADATA, "--t", "5",
                     "--no-report"]) == 0
    assert _rows(root / "curated") == _rows(clean_root / "curated")
    assert _status(root, capsys)["crawls"]["pool"]["pairs"] == _status(clean_root, capsys)["crawls"]["pool"]["pairs"]


# 5. status of a root that is not one ----------------------------------------------------------------------------

def test_status_of_a_missing_root_or_of_another_directory_exits_3(spark, tmp_path, capsys):
    missing = tmp_path / "no-such-root"
    assert cli.main(["status", str(missing), "--json"]) == 3
    assert _error(capsys, "status").endswith(f"output root {missing} does not exist")
    assert not missing.exists()
    assert cli.main(["status", str(POOL.parent)]) == 3
    assert _error(capsys, "status").endswith(f"{POOL.parent} is not an output root "
                                             "(it holds no _METACLIP_ROOT.json)")


# 6. --crawls naming no crawl, or a crawl that will not be there ------------------------------------------------

@pytest.mark.parametrize("command", ["curate", "count", "balance"])
def test_crawls_naming_no_crawl_exits_2(spark, clean_root, tmp_path, capsys, command):
    root = tmp_path / "root"
    shutil.copytree(clean_root, root)
    summary = (root / "summary.json").read_text()
    assert cli.main([command, "--output", str(root), "--metadata", SMALL_METADATA, "--crawls", " , "]) == 2
    assert _error(capsys, command).endswith("--crawls ' , ' names no crawl: give comma-separated crawl names, or "
                                            "leave --crawls out to use every crawl of the root")
    assert (root / "summary.json").read_text() == summary


def test_crawls_naming_a_crawl_neither_in_the_root_nor_the_input_exits_2_before_ingesting(spark, tmp_path, capsys):
    root = tmp_path / "root"
    assert _curate(root, "--input", str(POOL), "--crawls", "pool,CC-MAIN-2024-17") == 2
    assert _error(capsys, "curate").endswith(f"crawl 'CC-MAIN-2024-17' is neither in {root} (it holds: none) nor in "
                                             f"the input {POOL} (it brings: pool)")
    assert not root.exists()
    listing = tmp_path / "warc.paths"  # its crawls are read from its paths; the files are never opened
    listing.write_text("crawl-data/CC-MAIN-2024-17/segments/1/warc/a.warc.gz\n", encoding="utf-8")
    assert _curate(root, "--input", str(listing), "--input-base", str(tmp_path), "--crawls", "pool") == 2
    assert _error(capsys, "curate").endswith("(it brings: CC-MAIN-2024-17)")
    assert not root.exists()


def test_crawls_naming_a_crawl_that_overwrite_would_delete_exits_2_keeping_the_root(spark, clean_root, tmp_path,
                                                                                    capsys):
    root = tmp_path / "root"
    shutil.copytree(clean_root, root)
    assert _curate(root, "--crawls", "pool", "--overwrite") == 2  # no --input: nothing to overwrite with
    assert f"error: --overwrite replaces {root} with what --input brings" in _error(capsys, "curate")
    listing = tmp_path / "warc.paths"  # its crawls are read from its paths; the files are never opened
    listing.write_text("crawl-data/CC-MAIN-2024-17/segments/1/warc/a.warc.gz\n", encoding="utf-8")
    assert _curate(root, "--crawls", "pool", "--overwrite", "--input", str(listing), "--input-base",
                   str(tmp_path)) == 2
    assert _error(capsys, "curate").endswith(f"crawl 'pool' is neither in {root} (emptied by --overwrite) nor in "
                                             f"the input {listing} (it brings: CC-MAIN-2024-17)")
    assert _rows(root / "curated") == _rows(clean_root / "curated") and (root / "summary.json").exists()


# 7. extract with more failed files than allowed -----------------------------------------------------------------

def test_extract_with_6_of_8_files_failed_exits_4_after_writing_what_it_extracted(spark, tmp_path, capsys):
    listing = tmp_path / "warc.paths"
    missing = [f"missing/part-{i}.warc.gz" for i in range(6)]
    listing.write_text("\n".join(["warcfile.warc.gz", "sample-0000.warc.gz", *missing]) + "\n", encoding="utf-8")
    conf = tmp_path / "conf.toml"
    conf.write_text("[extract]\nlanguages = []\n", encoding="utf-8")  # max_failed_share: the default, 0.05
    output = tmp_path / "out"
    assert cli.main(["extract", "--manifest", str(listing), "--input-base", str(DATA / "cc"), "--output", str(output),
                     "--crawl", "CC-MAIN-2020-34", "--conf", str(conf)]) == 4
    error = _error(capsys, "extract")
    assert (f"6 of 8 input files failed (more than extract.max_failed_share = 0.05); the pairs of the other files "
            f"are in {output}/pairs. missing/part-0.warc.gz: ") in error
    record = json.loads((output / "extract.json").read_text())
    assert (record["files_ok"], record["files_failed"]) == (2, 6)
    assert len(pq.read_table(str(output / "pairs"))) == record["pairs_written"] > 0


# 8. a metadata file that is one JSON value, not a list ----------------------------------------------------------

@pytest.mark.parametrize("content, kind", [("null", "JSON null"), ("42\n", "a JSON number"),
                                           ('{"entries": ["dog"]}', "a JSON object"), ("true", "a JSON boolean")])
def test_metadata_holding_one_json_value_exits_2_naming_the_file(tmp_path, capsys, content, kind):
    path = tmp_path / "metadata.json"
    path.write_text(content, encoding="utf-8")
    root = tmp_path / "root"
    for argv in (["metadata-info", "--metadata", str(path)], ["curate", "--input", str(POOL), "--output", str(root),
                                                              "--metadata", str(path)]):
        assert cli.main(argv) == 2
        assert _error(capsys, argv[0]).endswith(f"metadata file {path} holds {kind}: a JSON array of strings (or one "
                                                "entry per line) is expected")
    assert not root.exists()


def test_a_file_of_lines_that_starts_like_json_is_still_lines(tmp_path, capsys):
    path = tmp_path / "metadata.txt"
    path.write_text("42\nnull\ntrue love\n", encoding="utf-8")  # not one JSON value: three entries
    assert cli.main(["metadata-info", "--metadata", str(path)]) == 0
    assert "3 entries, 3 distinct" in capsys.readouterr().out


# 9. entries with leading or trailing whitespace -----------------------------------------------------------------

def test_metadata_info_flags_entries_with_leading_or_trailing_whitespace(tmp_path, capsys):
    entries = ["dog", " dog", "cat ", "\u00a0bird", "black and white", " ", "dog"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    report = validate_entries(entries)
    assert report["surrounding_space"] == 4
    assert report["examples"]["surrounding_space"] == [(1, " dog"), (2, "cat "), (3, "\u00a0bird"), (5, " ")]
    assert reference_match("a dog and a cat", entries) == [0, 6]  # the padded ones are not found where meant
    assert cli.main(["metadata-info", "--metadata", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("        4  leading/trailing whitespace (match only next to a doubled space)  e.g. #1 ' dog', #2 'cat ', "
            "#3 '\\xa0bird', #5 ' '") in out


@pytest.mark.parametrize("argv", [
    ["curate", "--input", str(POOL), "--metadata", SMALL_METADATA],
    ["report"],
    ["balance", "--metadata", SMALL_METADATA],
    ["extract", "--manifest", str(DATA / "cc" / "CC-MAIN-2016-07.warc.paths.gz")],
])
def test_an_output_that_is_a_file_exits_2_before_any_work(spark, tmp_path, capsys, argv):
    target = tmp_path / "results.txt"
    target.write_text("my notes\n")
    command, *rest = argv
    assert cli.main([command, "--output", str(target), *rest]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"metaclip-spark {command}: error: --output {target} is a file, not a directory"
    assert target.read_text() == "my notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]
    beneath = tmp_path / "results.txt" / "root"
    assert cli.main([command, "--output", str(beneath), *rest]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_match_refuses_crawls_it_would_ignore(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["match", "--input", str(POOL), "--output", "/tmp/nowhere", "--crawls", "a"])
    assert exited.value.code == 2 and "unrecognized arguments: --crawls a" in capsys.readouterr().err


def test_fail_fast_stops_with_one_line_and_no_spark_traces(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    listing = tmp_path / "warc.paths"
    listing.write_text(f"missing.warc.gz\n{DATA / 'cc' / 'warcfile.warc.gz'}\n")
    run = subprocess.run([sys.executable, "-m", "metaclip_spark.cli", "extract", "--manifest", str(listing), "--crawl",
                          "CC-MAIN-2020-34", "--output", str(tmp_path / "out"), "--fail-fast"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 4
    output = run.stdout + run.stderr
    assert "Traceback" not in output and "Exception" not in output  # Spark's reports of the task it failed
    assert run.stderr.strip().splitlines()[-1].startswith(
        "metaclip-spark extract: error: input file failed (--fail-fast): missing.warc.gz: FileNotFoundError")
    assert not (tmp_path / "out" / "extract.json").exists()


@contextlib.contextmanager
def _tmpfs(mount_point, options: str):
    """A tmpfs mounted at `mount_point` for the test (as root, as CI runs): a small or read-only output device."""
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_a_full_output_device_exits_74_with_one_line(spark, tmp_path, capsys):
    with _tmpfs(tmp_path / "tiny", "size=96k") as tiny:
        code = cli.main(["curate", "--input", str(POOL), "--output", str(tiny / "root"), "--metadata",
                         SMALL_METADATA, "--t", "5"])
        assert code == 74
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
            "metaclip-spark curate: error: no space left on the device")
        assert not (tiny / "root" / "summary.json").exists()


def test_a_read_only_output_place_exits_2_before_any_work(spark, tmp_path, capsys):
    with _tmpfs(tmp_path / "read-only", "ro,size=64k") as place:
        assert cli.main(["curate", "--input", str(POOL), "--output", str(place / "root"), "--metadata",
                         SMALL_METADATA]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"metaclip-spark curate: error: --output {place / 'root'}: cannot write in {place} "
            "(read-only or permission denied)")
