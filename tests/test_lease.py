"""One writer per output root, proven (root/lease.py): taking over a stale lease is a compare-and-swap, a holder is judged
by what it can prove (its heartbeat; its pid only within its own boot and PID namespace), and a run that can no
longer prove it holds the lease stops before its next write. Real processes throughout: a curate paused with SIGSTOP
past the timeout, a holder in another PID namespace (unshare), many takers of one stale lease, and moto's S3 server
for the conditional PUT."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from metaclip_spark.config import load_config
from metaclip_spark.errors import LeaseLostError, RootBusyError
from metaclip_spark.root.lease import LEASE_FILE, RootLease, lease_store, process_identity
from metaclip_spark.root import tables

from conftest import DATA, REPO

SMALL_METADATA = str(DATA / "metadata" / "small.json")
POOL = str(DATA / "pool" / "sample_pairs.jsonl")
FIRST = "000000000001.json"


def _settings(heartbeat=0.2, timeout=2.0, wait=0.0):
    return load_config("local", overrides={"root": {"lease_heartbeat_seconds": heartbeat,
                                                    "lease_timeout_seconds": timeout,
                                                    "lease_wait_seconds": wait}}).root


def _plant(root, content: bytes, seconds_ago: float, name: str = FIRST) -> None:
    """A lease record as a run leaves it, its last heartbeat `seconds_ago`."""
    (root / LEASE_FILE).mkdir(parents=True, exist_ok=True)
    path = root / LEASE_FILE / name
    path.write_bytes(content)
    beat = time.time() - seconds_ago
    os.utime(path, (beat, beat))


def _record(**fields) -> bytes:
    return json.dumps(dict({"token": "x", "host": "other-host", "pid": 4242, "command": "curate"}, **fields)).encode()


def _holder(root) -> dict:
    """The record of the latest generation of the root's lease, or {}."""
    with contextlib.suppress(FileNotFoundError, ValueError):  # released between two looks, or another's record
        names = sorted((root / LEASE_FILE).glob("*.json"))
        return json.loads(names[-1].read_text()) if names else {}
    return {}


# The race: many takers of one stale lease ----------------------------------------------------------------------

def _race(root, takers: int, settings, store_of=lambda: None) -> int:
    """How many of `takers` threads, let go at once, come out holding the lease."""
    barrier = threading.Barrier(takers)
    won = []

    def take():
        lease = RootLease(None, str(root), settings, "curate", store=store_of())
        barrier.wait()
        with contextlib.suppress(RootBusyError):
            won.append(lease.acquire())

    threads = [threading.Thread(target=take) for _ in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for lease in won:
        lease.release()
    return len(won)


def test_many_runs_taking_over_one_stale_lease_give_exactly_one_holder(tmp_path):
    # The old lease deleted the stale file, then created its own: two takers both won in 12 of 60 trials.
    settings = _settings()
    winners = []
    for trial in range(60):
        root = tmp_path / f"root-{trial}"
        _plant(root, _record(), seconds_ago=3600)
        winners.append(_race(root, 8, settings))
    assert winners == [1] * 60


def test_takers_of_a_stale_lease_on_s3_are_one_conditional_put(tmp_path):
    pytest.importorskip("s3fs")
    from servers import s3_server

    (tmp_path / "empty").mkdir()
    with s3_server(tmp_path / "empty", bucket="lease-roots") as endpoint:
        remote = load_config("local", overrides={"remote": {"s3_endpoint_url": endpoint,
                                                            "s3_anonymous": "true"}}).remote
        roots = [f"s3a://lease-roots/root-{trial}" for trial in range(10)]
        for root in roots:
            store = lease_store(None, root, remote)
            assert store.create(FIRST, _record()) and not store.create(FIRST, b"{}")  # If-None-Match: *
        time.sleep(4)  # S3 keeps times to the second: stale past a 3 s timeout
        winners = []
        for root in roots:
            winners.append(_race(root, 4, _settings(timeout=3.0), lambda: lease_store(None, root, remote)))
            assert lease_store(None, root, remote).names() == []  # released: every generation deleted
        assert winners == [1] * 10


def test_the_hadoop_store_takes_and_keeps_a_lease(spark, tmp_path):
    # HDFS's create(overwrite=false) is atomic at its NameNode; no HDFS runs here, so Hadoop's local file system
    # stands in for the calls (one taker at a time: its create is a look, then a write).
    from metaclip_spark.root.lease import _HadoopStore

    root = f"file://{tmp_path}/root"
    lease = RootLease(spark, root, _settings(), "curate", store=_HadoopStore(spark, f"{root}/{LEASE_FILE}"))
    lease.acquire()
    try:
        assert lease.generation == 1 and _holder(tmp_path / "root")["token"] == lease.token
        assert not lease.store.create(FIRST, b"{}")
        before = (tmp_path / "root" / LEASE_FILE / FIRST).stat().st_mtime
        time.sleep(0.5)
        assert (tmp_path / "root" / LEASE_FILE / FIRST).stat().st_mtime > before  # the heartbeat
        with pytest.raises(RootBusyError):
            RootLease(spark, root, _settings(), "curate", store=_HadoopStore(spark, f"{root}/{LEASE_FILE}")).acquire()
    finally:
        lease.release()
    assert not (tmp_path / "root" / LEASE_FILE).exists()


# Judging a holder ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\x00\x17 not json"], ids=["empty", "garbage"])
def test_an_unreadable_lease_record_is_judged_by_its_age(tmp_path, content):
    # A 0-byte or garbage lease made every writing command exit 70 until it was deleted by hand.
    root = tmp_path / "root"
    _plant(root, content, seconds_ago=0)
    with pytest.raises(RootBusyError, match="cannot be read"):
        RootLease(None, str(root), _settings(timeout=30), "curate").acquire()
    _plant(root, content, seconds_ago=31)
    lease = RootLease(None, str(root), _settings(timeout=30), "curate").acquire()
    assert lease.generation == 2
    lease.release()
    assert not (root / LEASE_FILE).exists()


def test_a_full_disk_leaves_no_empty_lease_record(tmp_path):
    # Created, then written, the lease could be left empty by a full disk; it is now written whole, then linked.
    device = tmp_path / "device"
    device.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(device)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (device / "root" / LEASE_FILE).mkdir(parents=True)
        with contextlib.suppress(OSError), open(device / "filler", "wb") as f:
            f.write(b"\0" * (1 << 20))
        with pytest.raises(OSError) as error:
            RootLease(None, str(device / "root"), _settings(), "curate").acquire()
        assert error.value.errno == 28
        assert list((device / "root" / LEASE_FILE).iterdir()) == []
    finally:
        subprocess.run(["umount", str(device)], check=True)


_HOLDER = """
import sys, time
from metaclip_spark.config import load_config
from metaclip_spark.root.lease import RootLease
settings = load_config("local", overrides={"root": {"lease_heartbeat_seconds": 0.3,
                                                    "lease_timeout_seconds": 60.0}}).root
RootLease(None, sys.argv[1], settings, "curate").acquire()
print("held", flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_a_live_holder_in_another_pid_namespace_is_not_judged_by_its_pid(tmp_path):
    # A container with host networking shares the host name; its pid means nothing here. A pid check alone took
    # its live lease over at once.
    root = tmp_path / "root"
    free = next(p for p in range(30000, 2000, -1) if not os.path.exists(f"/proc/{p}"))  # a pid no process has here
    script = f'echo {free - 1} > /proc/sys/kernel/ns_last_pid && "{sys.executable}" -c "$0" "$1"'
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script, _HOLDER, str(root)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        held = _holder(root)
        assert held["pid"] == free and not os.path.exists(f"/proc/{free}")
        assert held["host"] == process_identity()["host"]
        assert held["pid_namespace"] != process_identity()["pid_namespace"]
        with pytest.raises(RootBusyError, match="is busy: curate"):
            RootLease(None, str(root), _settings(timeout=60), "curate").acquire()
        assert _holder(root)["token"] == held["token"]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def test_a_holder_killed_on_this_machine_is_taken_over_at_once(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs, as after kill -9
    root = tmp_path / "root"
    _plant(root, _record(**dict(process_identity(), pid=gone.pid)), seconds_ago=0)
    lease = RootLease(None, str(root), _settings(timeout=60), "curate").acquire()
    assert lease.generation == 2
    lease.release()


# The fence: a paused holder ------------------------------------------------------------------------------------

def _start(argv, log):
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    return subprocess.Popen([sys.executable, "-m", "metaclip_spark.cli", *argv], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(ready, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run ended before it got there"
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.05)


def test_a_paused_holder_stops_before_its_next_write_and_the_run_that_took_over_finishes(tmp_path):
    # A holder paused past the timeout (SIGSTOP; a frozen VM, a long GC) resumed and kept writing after another run
    # took over, and that run died with exit 70.
    timeout = 8.0
    conf = tmp_path / "lease.toml"
    conf.write_text(f"[root]\nlease_heartbeat_seconds = 1.0\nlease_timeout_seconds = {timeout}\n")
    root = tmp_path / "root"
    argv = ["curate", "--input", POOL, "--output", str(root), "--metadata", SMALL_METADATA, "--t", "5",
            "--no-report", "--conf", str(conf)]
    with open(tmp_path / "first.log", "w") as first_log, open(tmp_path / "second.log", "w") as second_log:
        first = _start(argv, first_log)
        second = None
        try:
            _wait_for(lambda: _holder(root).get("pid") == first.pid, first)
            os.killpg(first.pid, signal.SIGSTOP)  # the driver, its JVM and workers
            time.sleep(timeout + 1)
            second = _start(argv, second_log)
            _wait_for(lambda: _holder(root).get("pid") == second.pid, second)
            os.killpg(first.pid, signal.SIGCONT)
            assert first.wait(timeout=300) == 75
            assert second.wait(timeout=300) == 0
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    said = (tmp_path / "first.log").read_text().strip().splitlines()[-1]
    assert said.startswith("metaclip-spark curate: error: lost the lease of") and "took it over" in said
    summary = json.loads((root / "summary.json").read_text())
    assert summary["pairs_curated"] > 0
    assert not (root / LEASE_FILE).exists()


def test_every_change_under_the_root_is_fenced(tmp_path):
    root = tmp_path / "root"
    lease = RootLease(None, str(root), _settings(), "curate").acquire()
    try:
        tables.write_json_atomically(None, str(root / "crawls" / "C.json"), {"ok": True})
        _plant(root, _record(), seconds_ago=0, name="000000000002.json")  # another run took it over
        with pytest.raises(LeaseLostError, match="took it over"):
            tables.write_json_atomically(None, str(root / "crawls" / "C.json"), {"ok": False})
        with pytest.raises(LeaseLostError):
            tables.write_directory_atomically(None, str(root / "report"), {"index.html": b""})
        tables.write_json_atomically(None, str(tmp_path / "elsewhere.json"), {"ok": True})  # not under the root
    finally:
        lease.release()
    assert json.loads((root / "crawls" / "C.json").read_text()) == {"ok": True}
    assert not (root / "report").exists()
