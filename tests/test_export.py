"""`export`: a curated root to flat files for training tools, deterministic, atomic, counted; `--online` with the
entry probability table a loader draws with; a root and an export on moto's S3 server."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli, pipeline, progress
from metaclip_spark.balancing import draws
from metaclip_spark.balancing.thresholds import resolve as resolve_t
from metaclip_spark.ingestion.ingest import InputSpec
from metaclip_spark.metadata.lists import Metadata, load_metadata
from metaclip_spark.export.online import EntryProbabilities, OnlineBalancer

from conftest import DATA, REPO
from servers import s3_server, upload_tree

SMALL_METADATA = str(DATA / "metadata" / "small.json")
T = 30
PAIR_COLUMNS = ["url", "text", "uuid", "keep_prob", "crawl"]


def _pool_rows() -> list[dict]:
    """The real sample pairs under 4 URLs each; a third of the images get a second text (as alt + title do)."""
    with open(DATA / "pool" / "sample_pairs.jsonl", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    rows = []
    for copy in range(4):
        for i, p in enumerate(pairs):
            row = dict(p, url=f"{p['url']}?copy={copy}")
            rows.append(row)
            if i % 3 == 0:
                rows.append(dict(row, text=f"{p['text']} and a photo ✨", text_source="title"))
    return rows


@pytest.fixture(scope="module")
def root(spark, config, tmp_path_factory):
    work = tmp_path_factory.mktemp("export-root")
    spark.createDataFrame(_pool_rows()).coalesce(2).write.parquet(str(work / "pool"))
    settings = config.updated({"curation": {"t": T, "seed": 3}})
    summary = pipeline.curate(spark, settings, InputSpec(str(work / "pool"), "parquet"), Metadata(SMALL_METADATA),
                              str(work / "root"), report=False)
    assert 0 < summary["pairs_curated"] < summary["pairs_matched"]
    return work / "root"


def _export(root, to, *options: str) -> int:
    return cli.main(["export", "--output", str(root), "--to", str(to), *options])


def _files(directory: Path, extension: str = "parquet") -> list[Path]:
    return sorted(directory.glob(f"part-*.{extension}"))


def _rows(directory: Path) -> list[dict]:
    """Every row of an export, file by file in order."""
    return [row for f in _files(directory) for row in pq.read_table(f).to_pylist()]


def _key(row: dict, columns=PAIR_COLUMNS) -> tuple:
    return tuple(row[c] for c in columns)


def test_curated_pairs_exported_as_flat_files_with_counts(root, tmp_path, capsys):
    started = time.monotonic()
    assert _export(root, tmp_path / "out", "--rows-per-file", "100") == 0
    # a watched stage of its own, as curate's are: its progress line, its time (progress.py)
    assert [s["stage"] for s in progress.stage_timings(started)] == ["export"]
    out = tmp_path / "out"
    curated = pq.read_table(root / "curated").to_pylist()
    rows = _rows(out)
    assert sorted(map(_key, rows)) == sorted(map(_key, curated))
    assert pq.read_table(_files(out)[0]).column_names == PAIR_COLUMNS  # the pool has no lang column
    record = json.loads((out / "_EXPORT.json").read_text())
    assert record["rows"] == len(curated) == record["rows_in_source"]
    assert record["images"] == len({r["uuid"] for r in curated})
    assert record["rows_by_crawl"] == {"pool": len(curated)}
    assert record["files"] == len(_files(out)) == math.ceil(len(curated) / 100) == record["files_requested"]
    assert [f["rows"] for f in record["file_list"]] == [pq.read_metadata(f).num_rows for f in _files(out)]
    assert record["run_id"] == json.loads((root / "summary.json").read_text())["run_id"]
    printed = capsys.readouterr().out
    assert f"Exported {len(curated):,} curated pairs of {record['images']:,} images" in printed
    assert "_EXPORT.json" in printed
    # an image's texts share a file, so the images of the files add up exactly
    by_file = {f["file"]: f["images"] for f in record["file_list"]}
    assert by_file == {f.name: len(set(pq.read_table(f).column("uuid").to_pylist())) for f in _files(out)}


def test_order_is_a_seeded_hash_order_the_same_on_every_run_and_format(root, tmp_path):
    assert _export(root, tmp_path / "a", "--files", "3") == 0
    assert _export(root, tmp_path / "b", "--files", "3", "--format", "jsonl") == 0
    assert _export(root, tmp_path / "c", "--files", "3", "--shuffle-seed", "1") == 0
    a = _rows(tmp_path / "a")
    jsonl = [json.loads(line) for f in _files(tmp_path / "b", "jsonl") for line in f.read_text("utf-8").splitlines()]
    assert [_key(r) for r in jsonl] == [_key(r) for r in a]  # same files, same order, text byte for byte
    c = _rows(tmp_path / "c")
    assert sorted(map(_key, c)) == sorted(map(_key, a)) and [_key(r) for r in c] != [_key(r) for r in a]
    curated = [r["uuid"] for r in pq.read_table(root / "curated").to_pylist()]
    assert [r["uuid"] for r in a] != curated  # not the table's own order
    # rerun into the same directory: replaced whole, with the same bytes
    before = {f.name: f.read_bytes() for f in _files(tmp_path / "a")}
    assert _export(root, tmp_path / "a", "--files", "3") == 0
    assert {f.name: f.read_bytes() for f in _files(tmp_path / "a")} == before
    assert not list(tmp_path.glob(".a.tmp-*"))


def test_one_text_per_image_keeps_one_seeded_text_per_uuid(root, tmp_path):
    curated = pq.read_table(root / "curated").to_pylist()
    texts = defaultdict(set)
    for r in curated:
        texts[r["uuid"]].add(r["text"])
    assert sum(len(v) > 1 for v in texts.values()) > 10  # images with several curated texts
    picks = {}
    for seed in ("0", "1"):
        out = tmp_path / f"seed{seed}"
        assert _export(root, out, "--one-text-per-image", "--shuffle-seed", seed) == 0
        rows = _rows(out)
        assert len(rows) == len({r["uuid"] for r in rows}) == len(texts)
        assert all(r["text"] in texts[r["uuid"]] for r in rows)
        picks[seed] = {r["uuid"]: r["text"] for r in rows}
        record = json.loads((out / "_EXPORT.json").read_text())
        assert record["rows"] == record["images"] == len(texts) and record["rows_in_source"] == len(curated)
    assert picks["0"] != picks["1"]  # the pick follows the seed
    assert _export(root, tmp_path / "again", "--one-text-per-image", "--shuffle-seed", "0") == 0
    assert {r["uuid"]: r["text"] for r in _rows(tmp_path / "again")} == picks["0"]


def test_entries_as_a_json_string_of_names_and_chosen_columns(root, tmp_path):
    entries = load_metadata(SMALL_METADATA)
    ids = {(r["uuid"], r["text"]): r["entry_ids"] for r in pq.read_table(root / "curated").to_pylist()}
    assert _export(root, tmp_path / "e", "--columns", "url,text,entries,uuid") == 0  # entries: --with-entries implied
    rows = _rows(tmp_path / "e")
    assert pq.read_table(_files(tmp_path / "e")[0]).column_names == ["url", "text", "entries", "uuid"]
    for r in rows:
        assert json.loads(r["entries"]) == [entries[i] for i in ids[(r["uuid"], r["text"])]]
    assert len(rows) == len(ids)


def test_bad_options_and_roots_exit_with_their_codes(root, tmp_path, capsys):
    def fails(code, text, *args):
        capsys.readouterr()
        assert cli.main(["export", *args]) == code
        assert text in capsys.readouterr().err

    fails(2, "'caption' is not a column", "--output", str(root), "--to", str(tmp_path / "x"), "--columns", "caption")
    fails(2, "--columns must include url", "--output", str(root), "--to", str(tmp_path / "x"), "--columns", "text")
    fails(2, "--t chooses the threshold of the --online", "--output", str(root), "--to", str(tmp_path / "x"),
          "--t", "5")
    fails(3, "does not exist", "--output", str(tmp_path / "nowhere"), "--to", str(tmp_path / "x"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    fails(2, "refusing to replace", "--output", str(root), "--to", str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    fails(2, "refusing to replace", "--output", str(root), "--to", str(root))  # never the root itself
    assert not (tmp_path / "x").exists()
    switching = tmp_path / "switching"  # a run killed while switching its outputs in: export waits for it
    shutil.copytree(root, switching)
    (switching / ".next-run").mkdir()
    (switching / ".next-run" / "_READY").write_text("{}")
    fails(75, "being switched in", "--output", str(switching), "--to", str(tmp_path / "x"))
    shutil.rmtree(switching / ".next-run")
    (switching / ".replacement").mkdir()  # a curate --overwrite killed while swapping its new root in
    (switching / ".replacement" / "_READY").write_text("{}")
    fails(75, "an --overwrite is swapping its new root in", "--output", str(switching), "--to", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_online_export_has_every_matched_pair_and_the_probability_table(root, tmp_path):
    assert _export(root, tmp_path / "on", "--online", "--t", "5") == 0
    out = tmp_path / "on"
    pairs = _rows(out / "pairs")
    matched = pq.read_table(root / "matched").to_pylist()
    assert sorted((r["uuid"], r["text"], r["entry_ids"]) for r in pairs) == \
        sorted((r["uuid"], r["text"], r["entry_ids"]) for r in matched)
    counts = {r["entry_id"]: r["count"] for r in pq.read_table(root / "counts").to_pylist()}
    table = pq.read_table(out / "entry_probabilities.parquet").to_pylist()
    assert {r["entry_id"]: (r["count"], r["p"], r["t"]) for r in table} == \
        {e: (c, min(1.0, 5 / c), 5) for e, c in counts.items()}
    probs = draws.entry_probabilities(np.array([counts.get(i, 0) for i in range(max(counts) + 1)]), 5)
    for r in pairs:  # keep_prob is P at the chosen t, not the curated run's
        assert r["keep_prob"] == pytest.approx(draws.keep_probability(probs[r["entry_ids"]]))
    record = json.loads((out / "_EXPORT.json").read_text())
    assert record["t"] == 5 and record["rows"] == len(matched) == record["rows_in_source"]
    assert record["expected_rows_per_epoch"] == pytest.approx(sum(r["keep_prob"] for r in pairs), abs=1e-2)
    # default t: the root's run's
    assert _export(root, tmp_path / "run-t", "--online") == 0
    assert {r["t"] for r in pq.read_table(tmp_path / "run-t" / "entry_probabilities.parquet").to_pylist()} == {T}

    sys.path.insert(0, str(REPO / "examples"))
    try:
        from online_loader import OnlineCuratedPairs
    finally:
        sys.path.remove(str(REPO / "examples"))
    balancer = OnlineBalancer(EntryProbabilities.from_parquet(str(out)), seed=2)
    for epoch in (0, 1):
        dataset = OnlineCuratedPairs(str(out), seed=2)
        dataset.set_epoch(epoch)
        got = sorted((r["uuid"], r["text"]) for r in dataset)
        want = sorted((r["uuid"], r["text"]) for r in pairs
                      if balancer.keep(r["uuid"], r["text"], r["entry_ids"], epoch))
        assert got == want and 0 < len(got) < len(pairs)


def test_online_one_text_per_image_leaves_the_pick_to_the_loader_each_epoch(root, tmp_path):
    out = tmp_path / "per-epoch"
    assert _export(root, out, "--online", "--one-text-per-image", "--files", "2") == 0
    matched = pq.read_table(root / "matched").to_pylist()
    record = json.loads((out / "_EXPORT.json").read_text())
    assert record["text_pick"] == "per_epoch" and record["rows"] == len(matched)  # every text of every image
    texts = defaultdict(list)
    for f in _files(out / "pairs"):
        seen_here = []
        for r in pq.read_table(f).to_pylist():
            texts[r["uuid"]].append(r)
            if not seen_here or seen_here[-1] != r["uuid"]:
                seen_here.append(r["uuid"])
        assert len(seen_here) == len(set(seen_here))  # an image's texts next to each other
    assert sum(len(v) > 1 for v in texts.values()) > 10
    # an epoch's expected rows: each image's mean P
    assert record["expected_rows_per_epoch"] == pytest.approx(
        sum(sum(r["keep_prob"] for r in rows) / len(rows) for rows in texts.values()), abs=1e-2)
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from online_loader import OnlineCuratedPairs
    finally:
        sys.path.remove(str(REPO / "examples"))
    balancer = OnlineBalancer(EntryProbabilities.from_parquet(str(out)), seed=2)
    picked_texts = []
    for epoch in (0, 1, 2):
        dataset = OnlineCuratedPairs(str(out), seed=2, batch_rows=7)  # batches cut through images' texts
        dataset.set_epoch(epoch)
        got = [(r["uuid"], r["text"]) for r in dataset]
        assert len(got) == len({u for u, _ in got})  # at most one text per image per epoch
        want = []
        for uuid, rows in texts.items():
            chosen = balancer.picked([uuid] * len(rows), [r["text"] for r in rows], epoch)
            row = rows[int(np.flatnonzero(chosen)[0])]
            if balancer.keep(uuid, row["text"], row["entry_ids"], epoch):
                want.append((uuid, row["text"]))
        assert sorted(got) == sorted(want) and got
        picked_texts.append(dict(got))
    common = set(picked_texts[0]) & set(picked_texts[1]) & {u for u, v in texts.items() if len(v) > 1}
    assert any(picked_texts[0][u] != picked_texts[1][u] for u in common)  # another text in another epoch


def test_a_root_on_s3_exported_to_s3_gives_the_local_files(root, tmp_path):
    import fsspec

    assert _export(root, tmp_path / "local", "--files", "2", "--with-entries") == 0
    conf = tmp_path / "s3.toml"
    with s3_server(root, bucket="export-roots") as endpoint:
        conf.write_text(f'[remote]\ns3_endpoint_url = "{endpoint}"\ns3_anonymous = "true"\n', encoding="utf-8")
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        client.create_bucket(Bucket="exports", ACL="public-read-write")
        upload_tree(lambda key, data: client.put_object(Bucket="exports", Key=f"old/{key}", Body=data),
                    tmp_path / "local")  # an earlier export in the place: replaced
        code = cli.main(["export", "--output", "s3a://export-roots", "--to", "s3://exports/old", "--files", "2",
                         "--with-entries", "--conf", str(conf)])
        assert code == 0
        s3 = fsspec.filesystem("s3", anon=True, endpoint_url=endpoint)
        names = sorted(p.rsplit("/", 1)[1] for p in s3.ls("exports/old"))
        remote = {name: s3.cat(f"exports/old/{name}") for name in names}
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == local
    for name in names:
        if name.endswith(".parquet"):
            assert remote[name] == (tmp_path / "local" / name).read_bytes()
    record = json.loads(remote["_EXPORT.json"])
    assert record["root"] == "s3a://export-roots" and record["rows"] == json.loads(
        (tmp_path / "local" / "_EXPORT.json").read_text())["rows"]


# A worldwide root (MetaCLIP 2): entry ids are positions in their language's list --------------------------------

WORLDWIDE = str(DATA / "metadata" / "worldwide")
T_EN = 6


@pytest.fixture(scope="module")
def worldwide_root(spark, config, tmp_path_factory):
    work = tmp_path_factory.mktemp("export-ww")
    with open(DATA / "pool" / "worldwide_pairs.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    rows = [dict(r, url=f"{r['url']}?copy={k}") for k in range(4) for r in texts]
    spark.createDataFrame(rows).coalesce(2).write.parquet(str(work / "pool"))
    settings = config.updated({"curation": {"t": T_EN, "seed": 5}})
    summary = pipeline.curate(spark, settings, InputSpec(str(work / "pool"), "parquet"), Metadata(WORLDWIDE),
                              str(work / "root"), report=False)
    assert summary["worldwide"] and len(summary["t_by_lang"]) > 3
    return work / "root", summary


def test_worldwide_export_carries_metadata_lang_and_names_from_its_list(worldwide_root, tmp_path):
    root, _ = worldwide_root
    lists = Metadata(WORLDWIDE).lists
    assert _export(root, tmp_path / "out", "--with-entries") == 0
    rows = _rows(tmp_path / "out")
    curated = pq.read_table(root / "curated").to_pylist()
    columns = PAIR_COLUMNS + ["lang", "metadata_lang", "entries"]
    assert pq.read_table(_files(tmp_path / "out")[0]).column_names == columns
    assert sorted(_key(r, columns[:-1]) for r in rows) == sorted(_key(r, columns[:-1]) for r in curated)
    ids = {(r["uuid"], r["text"]): (r["metadata_lang"], r["entry_ids"]) for r in curated}
    for r in rows:
        code, entry_ids = ids[(r["uuid"], r["text"])]
        assert json.loads(r["entries"]) == [lists[code][i] for i in entry_ids]
    assert len({r["metadata_lang"] for r in rows}) > 3


def test_worldwide_online_table_is_keyed_by_language_and_entry(worldwide_root, tmp_path):
    root, summary = worldwide_root
    lists = Metadata(WORLDWIDE).lists
    vectors = {code: np.zeros(len(entries), np.int64) for code, entries in lists.items()}
    for r in pq.read_table(root / "counts").to_pylist():
        vectors[r["metadata_lang"]][r["entry_id"]] = r["count"]
    for t, expected in ((None, summary["t_by_lang"]), ("3", resolve_t(vectors, 3, 0.06)[0])):
        out = tmp_path / f"online-{t}"
        assert _export(root, out, "--online", *(["--t", t] if t else [])) == 0
        table = pq.read_table(out / "entry_probabilities.parquet").to_pylist()
        assert {(r["metadata_lang"], r["entry_id"]): (r["p"], r["t"]) for r in table} == {
            (code, e): (min(1.0, expected[code] / c), expected[code])
            for code, v in vectors.items() for e, c in enumerate(v) if c > 0}
        assert json.loads((out / "_EXPORT.json").read_text())["t_by_lang"] == expected
        pairs = _rows(out / "pairs")
        assert len(pairs) == summary["pairs_matched"]
        for r in pairs:
            probs = draws.entry_probabilities(vectors[r["metadata_lang"]], expected[r["metadata_lang"]])
            assert r["keep_prob"] == pytest.approx(draws.keep_probability(probs[r["entry_ids"]]))
        balancer = OnlineBalancer(EntryProbabilities.from_parquet(str(out)), seed=1)
        assert balancer.keep_probability(pairs[0]["entry_ids"], pairs[0]["metadata_lang"]) == \
            pytest.approx(pairs[0]["keep_prob"])


# Export writes only what it owns, one export per --to at a time ---------------------------------------------------

# a run summary with the keys every summary holds (root/records.py RunSummary), of one crawl c1
_SUMMARY = {"run_id": "r1", "crawls": ["c1"], "pairs_in": 1, "pairs_matched": 1, "pairs_curated": 1, "t": 1,
            "t_mode": "fixed", "seed": 0, "metadata": "m.json", "metadata_digest": "d", "entries_total": 1,
            "entries_matched": 1, "entries_over_t": 0, "matches_total": 1, "tail_proportion": 1.0,
            "finished_at": "2026-12-05T00:00:00+00:00"}


def test_the_tables_of_a_root_named_with_glob_characters_are_its_own(tmp_path):
    """A root's name is a name, never a pattern: the root runs[1] is exported from its own files (the pattern
    runs[1] matches runs1, whose files must not be taken, nor its own be missed)."""
    import pyarrow as pa

    from metaclip_spark.export.files import RootTables

    for name, url in (("runs[1]", "its-own"), ("runs1", "another-root's")):
        root = tmp_path / name
        for folder in ("curated", "counts", "crawls"):
            (root / folder).mkdir(parents=True)
        (root / "_METACLIP_ROOT.json").write_text("{}")
        (root / "summary.json").write_text(json.dumps(_SUMMARY))
        (root / "crawls" / "c1.json").write_text("{}")
        pq.write_table(pa.table({"url": [url], "text": ["t"], "uuid": ["x"]}), root / "curated" / "part-00000.parquet")
        (root / "curated" / "_SUCCESS").write_text("")
        pq.write_table(pa.table({"entry_id": [0], "entry": [url], "count": [1]}), root / "counts" / "part-00000.parquet")
    tables = RootTables(str(tmp_path / "runs[1]"), None)
    files = tables.curated_files()
    assert [(Path(p).parent.parent.name, Path(p).name) for p, _ in files] == [("runs[1]", "part-00000.parquet")]
    assert tables.counts().to_pylist() == [{"entry_id": 0, "entry": "its-own", "count": 1}]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_an_earlier_export_holding_files_it_did_not_write_is_refused_and_kept(root, tmp_path, capsys, online):
    to = tmp_path / "export"
    options = ("--online",) if online else ()
    assert _export(root, to, *options) == 0
    assert _export(root, to, *options, "--shuffle-seed", "1") == 0  # an export alone is replaced whole
    (to / "README.txt").write_text("downloaded on Monday\n")  # what people add to a directory of theirs
    (to / "images").mkdir()  # img2dataset's output folder inside the export
    (to / "images" / "00000.tar").write_bytes(b"tar of images")
    (to / "images" / "00000.parquet").write_bytes(b"img2dataset's own parquet")
    before = _tree(to)
    capsys.readouterr()
    assert _export(root, to, *options, "--shuffle-seed", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "refusing to replace" in err and "README.txt" in err and "images" in err
    assert _tree(to) == before
    assert not list(tmp_path.glob(".export.*"))  # no staging, no lock left beside it


def test_two_exports_to_one_directory_one_waits_its_turn(root, tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    to = tmp_path / "export"
    argv = ["export", "--output", str(root), "--to", str(to), "--files", "3", "--shuffle-seed", "5"]
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen([sys.executable, "-m", "metaclip_spark.cli", *argv], cwd=REPO, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"))
        try:
            deadline = time.monotonic() + 300
            while not list(tmp_path.glob(".export.tmp-*")):  # the first export is writing its files
                assert first.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            capsys.readouterr()
            assert cli.main([*argv[:-1], "6"]) == 75  # a second export to the same --to
            assert "is being exported to by pid" in capsys.readouterr().err.strip().splitlines()[-1]
            assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
    record = json.loads((to / "_EXPORT.json").read_text())
    assert record["shuffle_seed"] == 5 and record["rows"] == len(_rows(to))
    assert not list(tmp_path.glob(".export.*"))
    # an export killed with -9 on this machine leaves its lock: the next export takes it over at once
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    from metaclip_spark.export.files import _this_machine

    (tmp_path / ".export.export-lock").write_text(json.dumps(dict(_this_machine(), token="x", pid=gone.pid,
                                                                  heartbeat_epoch=time.time())))
    assert cli.main([*argv[:-1], "6"]) == 0
    assert json.loads((to / "_EXPORT.json").read_text())["shuffle_seed"] == 6
    assert not (tmp_path / ".export.export-lock").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--shuffle-seed", str(2**64), "--shuffle-seed 18446744073709551616: a 64-bit integer"),
    ("--shuffle-seed", str(-(2**63) - 1), "a 64-bit integer"),
    ("--files", str(10**12), "--files 1000000000000: at most 1,000,000 files"),
])
def test_numbers_out_of_range_exit_2_with_one_line(root, tmp_path, capsys, option, value, message):
    capsys.readouterr()
    assert _export(root, tmp_path / "x", option, value) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1], err
    assert not (tmp_path / "x").exists()
