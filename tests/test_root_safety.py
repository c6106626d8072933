"""An output root has one writer at a time (its lease), and --overwrite deletes an output root and nothing else,
only once the input is known to be readable."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import time

import pytest

from metaclip_spark import cli
from metaclip_spark.config import load_config
from metaclip_spark.errors import RootBusyError
from metaclip_spark.root.lease import LEASE_FILE, process_identity, root_lease
from metaclip_spark.root.layout import ROOT_MARKER

from conftest import DATA

SMALL_METADATA = str(DATA / "metadata" / "small.json")
LEASE_RECORD = "000000000001.json"  # the first generation of a root's lease (root/lease.py)
POOL = str(DATA / "pool" / "sample_pairs.jsonl")


def _curate(root, *extra: str, input_path: str = POOL) -> int:
    return cli.main(["curate", "--input", input_path, "--output", str(root), "--metadata", SMALL_METADATA,
                     "--t", "5", "--no-report", *extra])


def _plant_lease(root, seconds_ago: float, **holder) -> None:
    """A lease record another run holds, its last heartbeat (the record's modification time) `seconds_ago`."""
    (root / LEASE_FILE).mkdir(parents=True, exist_ok=True)
    beat = time.time() - seconds_ago
    record = dict({"token": "x", "host": "other-host", "pid": 4242, "command": "curate",
                   "acquired_at": dt.datetime.fromtimestamp(beat, dt.timezone.utc).isoformat()}, **holder)
    (root / LEASE_FILE / LEASE_RECORD).write_text(json.dumps(record))
    os.utime(root / LEASE_FILE / LEASE_RECORD, (beat, beat))


@pytest.fixture(scope="module")
def finished_root(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("roots") / "root"
    assert _curate(root) == 0
    return root


def _files(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_run_writes_nothing_to_a_root_another_live_run_holds(spark, finished_root, capsys):
    before = _files(finished_root)
    _plant_lease(finished_root, seconds_ago=5)
    try:
        assert _curate(finished_root, "--seed", "9") == 75
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("metaclip-spark curate: error: ") and "is busy: curate by other-host pid 4242" in err
        root = str(finished_root)
        assert cli.main(["balance", "--output", root, "--metadata", SMALL_METADATA, "--t", "7"]) == 75
        assert cli.main(["count", "--output", root, "--metadata", SMALL_METADATA]) == 75
        assert cli.main(["report", "--output", root]) == 75
        assert {k: v for k, v in _files(finished_root).items() if not k.startswith(LEASE_FILE)} == \
            {k: v for k, v in before.items() if not k.startswith(LEASE_FILE)}
        assert cli.main(["status", str(finished_root)]) == 0  # reading needs no lease
    finally:
        shutil.rmtree(finished_root / LEASE_FILE)


def test_a_dead_runs_lease_is_taken_over_and_released_at_the_end(spark, finished_root):
    _plant_lease(finished_root, seconds_ago=3600)  # silent for an hour: its run is gone
    assert _curate(finished_root) == 0
    assert not (finished_root / LEASE_FILE).exists()


def test_a_killed_driver_on_this_machine_does_not_block_the_rerun(spark, finished_root):
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs, as after kill -9
    _plant_lease(finished_root, seconds_ago=1, **dict(process_identity(), pid=gone.pid))
    assert _curate(finished_root) == 0
    assert not (finished_root / LEASE_FILE).exists()


def test_lease_is_exclusive_and_kept_alive_by_its_holder(spark, tmp_path):
    settings = load_config("local", overrides={"root": {"lease_heartbeat_seconds": 0.2,
                                                        "lease_timeout_seconds": 3.0}}).root
    with root_lease(spark, str(tmp_path), settings, "curate") as lease:
        record = tmp_path / LEASE_FILE / LEASE_RECORD
        held, beat = json.loads(record.read_text()), record.stat().st_mtime
        assert (held["host"], held["pid"], held["token"]) == (socket.gethostname(), os.getpid(), lease.token)
        time.sleep(3.5)  # past the timeout: only the heartbeat keeps it from looking dead
        with pytest.raises(RootBusyError, match="is busy"):
            with root_lease(spark, str(tmp_path), settings, "balance"):
                pass
        assert record.stat().st_mtime > beat + 3
    assert not (tmp_path / LEASE_FILE).exists()
    with root_lease(spark, str(tmp_path), settings, "balance"):  # free again
        pass


def test_overwrite_refuses_a_directory_that_is_not_an_output_root(spark, tmp_path, capsys):
    folder = tmp_path / "my-photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 not really")
    assert _curate(folder, "--overwrite") == 2
    assert "is not a metaclip-spark output root" in capsys.readouterr().err.strip().splitlines()[-1]
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]


def test_overwrite_with_a_mistyped_input_keeps_the_finished_root(spark, finished_root, capsys):
    before = _files(finished_root)
    assert _curate(finished_root, "--overwrite", "--input-format", "jsonl", input_path=POOL + ".typo") == 3
    assert "does not exist" in capsys.readouterr().err.strip().splitlines()[-1]
    assert _files(finished_root) == before


def test_overwrite_starts_a_root_afresh(spark, finished_root, tmp_path):
    root = tmp_path / "root"
    assert _curate(root) == 0
    (root / "units" / "stray-leftover").write_text("from an older layout")
    assert (root / ROOT_MARKER).exists()
    assert _curate(root, "--overwrite") == 0
    assert not (root / "units" / "stray-leftover").exists() and (root / "summary.json").exists()
    assert not (root / LEASE_FILE).exists()


def _consistent(root) -> dict:
    """summary.json, counts/ and curated/ describe the same run (and report/, when there, too)."""
    import pyarrow.parquet as pq

    summary = json.loads((root / "summary.json").read_text())
    assert pq.read_table(str(root / "curated")).num_rows == summary["pairs_curated"]
    assert sum(pq.read_table(str(root / "counts")).column("count").to_pylist()) == summary["matches_total"]
    if (root / "report").exists():
        assert json.loads((root / "report" / "summary.json").read_text())["run"]["run_id"] == summary["run_id"]
    assert (root / "runs" / f"{summary['run_id']}.json").exists()
    return summary


def test_a_run_killed_before_its_outputs_switch_leaves_the_last_run_whole(spark, tmp_path, monkeypatch):
    from metaclip_spark import pipeline

    root = tmp_path / "root"
    assert _curate(root, "--seed", "1") == 0
    last = _consistent(root)
    tables = {name: _files(root / name) for name in ("counts", "curated")}

    def killed(*args, **kwargs):
        raise RuntimeError("killed between count and balance")

    monkeypatch.setattr(pipeline, "balance_pool", killed)
    assert _curate(root, "--seed", "2", "--t", "3") == 70
    assert {name: _files(root / name) for name in ("counts", "curated")} == tables  # the new counts are staged only
    assert _consistent(root) == last
    monkeypatch.undo()
    assert _curate(root, "--seed", "2", "--t", "3") == 0
    summary = _consistent(root)
    assert (summary["t"], summary["seed"]) == (3, 2) and not (root / ".next-run").exists()


def test_a_run_killed_while_switching_is_finished_by_the_next_one(spark, tmp_path, monkeypatch):
    from metaclip_spark.root import layout

    root = tmp_path / "root"
    assert cli.main(["curate", "--input", POOL, "--output", str(root), "--metadata", SMALL_METADATA,
                     "--t", "5"]) == 0  # with its report
    _consistent(root)
    renames = []
    real_rename = layout.rename_path

    def rename_then_die(spark, source, target):
        renames.append(target)
        if len(renames) == 2:  # counts/ switched in, curated/ not yet
            raise RuntimeError("killed while switching")
        real_rename(spark, source, target)

    monkeypatch.setattr(layout, "rename_path", rename_then_die)
    assert _curate(root, "--t", "2") == 70
    monkeypatch.undo()
    assert not (root / "report").exists()  # the old report went first: it never sits beside the new counts
    assert cli.main(["report", "--output", str(root)]) == 0  # any writing command finishes the switch first
    summary = _consistent(root)
    assert summary["t"] == 2 and (root / "report" / "index.html").exists()


@pytest.mark.parametrize("name", ["root[1]", "root{a,b}", "root*"])
def test_roots_named_with_glob_characters_read_only_themselves(spark, tmp_path, name):
    import pyarrow.parquet as pq

    neighbour = tmp_path / "root-neighbour"  # what `root*` would match as a glob
    assert _curate(neighbour, "--t", "2", "--seed", "4") == 0
    root = tmp_path / name
    assert _curate(root) == 0  # pool mode: its pair keys live under the glob-named root too
    assert cli.main(["report", "--output", str(root)]) == 0
    clean = tmp_path / "clean"
    assert _curate(clean) == 0

    def rows(r, table):
        return sorted(map(str, pq.read_table(str(r / table)).to_pylist()))

    for table in ("matched", "counts", "curated"):
        assert rows(root, table) == rows(clean, table), table
    assert json.loads((root / "summary.json").read_text())["pairs_in"] == \
        json.loads((clean / "summary.json").read_text())["pairs_in"]


# A directory is a root only by its marker; nothing is written into one before it is known to be a root or empty ---

def _tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _someones_folder(tmp_path, *root_like: str):
    folder = tmp_path / "mine"
    (folder / "thesis").mkdir(parents=True)
    (folder / "thesis" / "ch1.tex").write_text("\\chapter{One}\n")
    for name in root_like:  # names an output root also holds
        if name.endswith(".json"):
            (folder / name).write_text('{"mine": true}\n')
        else:
            (folder / name).mkdir()
            (folder / name / "notes.txt").write_text("my notes\n")
    return folder


@pytest.mark.parametrize("root_like", [(), ("summary.json", "units", "crawls")], ids=["plain", "root-like names"])
@pytest.mark.parametrize("extra", [(), ("--overwrite",)], ids=["curate", "overwrite"])
def test_a_directory_that_is_not_a_root_is_refused_and_left_untouched(spark, tmp_path, capsys, root_like, extra):
    folder = _someones_folder(tmp_path, *root_like)
    before, stamp = _tree(folder), folder.stat().st_mtime_ns
    assert _curate(folder, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--output {folder} " in err and ROOT_MARKER in err
    assert _tree(folder) == before
    assert folder.stat().st_mtime_ns == stamp  # not even a lease was written and deleted again


@pytest.mark.parametrize("command", ["match", "count", "balance", "report"])
def test_other_writing_commands_write_nothing_into_a_directory_that_is_not_a_root(spark, tmp_path, capsys, command):
    folder = _someones_folder(tmp_path, "summary.json")
    before, stamp = _tree(folder), folder.stat().st_mtime_ns
    argv = [command, "--output", str(folder)]
    argv += ["--input", POOL] if command == "match" else []
    argv += ["--metadata", SMALL_METADATA] if command != "report" else []
    assert cli.main(argv) == 2
    assert ROOT_MARKER in capsys.readouterr().err.strip().splitlines()[-1]
    assert _tree(folder) == before and folder.stat().st_mtime_ns == stamp


def test_an_empty_directory_becomes_a_root_and_a_failed_first_run_leaves_it_empty(spark, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _curate(empty, input_path=POOL + ".typo") == 3  # a first run that fails writes nothing that stays
    assert empty.is_dir() and list(empty.iterdir()) == []
    assert cli.main(["count", "--output", str(empty), "--metadata", SMALL_METADATA]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"{empty} is not an output root (it holds no "
                                                                      f"{ROOT_MARKER})")
    assert list(empty.iterdir()) == []
    assert _curate(empty) == 0
    assert (empty / ROOT_MARKER).exists() and (empty / "summary.json").exists()


# --overwrite never loses a root before its replacement is complete ------------------------------------------------

def _copy(root, to):
    import shutil

    shutil.copytree(root, to)
    return to


def test_overwrite_without_an_input_is_refused_keeping_the_root(spark, finished_root, tmp_path, capsys):
    root = _copy(finished_root, tmp_path / "root")
    before = _files(root)
    assert cli.main(["curate", "--output", str(root), "--metadata", SMALL_METADATA, "--overwrite"]) == 2
    assert "--overwrite replaces" in capsys.readouterr().err.strip().splitlines()[-1]
    assert _files(root) == before


@pytest.mark.parametrize("failed_share", [None, 1.0], ids=["failed-files", "empty-replacement"])
def test_overwrite_with_an_input_whose_files_all_fail_keeps_the_old_root(spark, finished_root, tmp_path, capsys,
                                                                          failed_share):
    from servers import ArchiveServer

    root = _copy(finished_root, tmp_path / "root")
    before = _tree(root)
    listing = tmp_path / "warc.paths"
    listing.write_text("".join(f"crawl-data/CC-MAIN-2024-17/segments/1/warc/gone-{i}.warc.gz\n" for i in range(3)))
    (tmp_path / "served").mkdir()
    server = ArchiveServer(tmp_path / "served").start()  # answers 404 to every file
    argv = ["--input-format", "warc-manifest", "--input-base", server.url, "--overwrite"]
    if failed_share is not None:
        conf = tmp_path / "conf.toml"
        conf.write_text(f"[extract]\nmax_failed_share = {failed_share}\n")
        argv += ["--conf", str(conf)]
    try:
        code = _curate(root, *argv, input_path=str(listing))
    finally:
        server.stop()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == (4 if failed_share is None else 3), err
    assert f"{root} is kept as it was" in err
    assert {k: v for k, v in _tree(root).items() if not k.startswith(".replacement")} == before
    assert _curate(root) == 0  # the next run on the root drops the failed replacement and reads the old tables
    assert not (root / ".replacement").exists()
    assert json.loads((root / "summary.json").read_text())["pairs_in"] == \
        json.loads(before["summary.json"])["pairs_in"]


def test_overwrite_killed_mid_ingest_keeps_the_old_root_and_the_rerun_replaces_it(spark, finished_root, tmp_path):
    import glob
    import signal
    import subprocess
    import sys

    from conftest import REPO

    root = _copy(finished_root, tmp_path / "root")
    before = _tree(root)
    pool = tmp_path / "other.jsonl"  # another input: the replacement's rows differ from the old root's
    lines = (DATA / "pool" / "sample_pairs.jsonl").read_text().splitlines()
    pool.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    argv = ["curate", "--input", str(pool), "--output", str(root), "--metadata", SMALL_METADATA, "--t", "5",
            "--no-report", "--overwrite"]
    with open(tmp_path / "run.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "metaclip_spark.cli", *argv], cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"))
        deadline = time.monotonic() + 300
        while not glob.glob(f"{root}/.replacement/units/*/*/_COMMITTED.json"):
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its JVM
        process.wait()
    now = _tree(root)
    assert {k: v for k, v in now.items() if not k.startswith((".replacement", LEASE_FILE))} == before
    assert cli.main(argv) == 0  # the same command again: takes over the dead run's lease, resumes the replacement
    fresh = tmp_path / "fresh"
    assert cli.main([*argv[:4], str(fresh), *argv[5:-1]]) == 0
    assert not (root / ".replacement").exists() and not (root / LEASE_FILE).exists()
    for table in ("matched", "counts", "curated"):
        assert _rows(root, table) == _rows(fresh, table), table
    assert sorted(p.name for p in (root / "crawls").iterdir()) == sorted(p.name for p in (fresh / "crawls").iterdir())


def _rows(root, table) -> list[str]:
    import pyarrow.parquet as pq

    return sorted(map(str, pq.read_table(str(root / table)).to_pylist()))


def test_overwrite_killed_while_swapping_in_is_finished_by_the_next_command(spark, finished_root, tmp_path,
                                                                            monkeypatch):
    from metaclip_spark.root import layout

    root = _copy(finished_root, tmp_path / "root")
    fresh = tmp_path / "fresh"
    assert _curate(fresh, "--t", "3") == 0
    real_rename, moved = layout.rename_path, []

    def rename_then_die(spark, source, target):
        if "/.replacement/" in source and "/.replacement" not in target:  # the swap, not the replacement's own
            moved.append(target)
            if len(moved) == 3:  # some of the new root's entries moved in, not all
                raise RuntimeError("killed while swapping in")
        real_rename(spark, source, target)

    monkeypatch.setattr(layout, "rename_path", rename_then_die)
    assert _curate(root, "--overwrite", "--t", "3") == 70
    monkeypatch.undo()
    assert (root / ".replacement" / "_READY").exists()
    assert cli.main(["report", "--output", str(root)]) == 0  # any writing command rolls the swap forward
    assert not (root / ".replacement").exists()
    for table in ("matched", "counts", "curated"):
        assert _rows(root, table) == _rows(fresh, table), table
    assert _consistent(root)["t"] == 3
