"""The curation job on a real Spark standalone cluster (a master and two workers on 127.0.0.1), as users submit it.

`spark-submit --master spark://... jobs/curate.py` with the cluster profile must write the same tables as a
local-mode run of `metaclip-spark curate`, and still the same tables when a worker dies in the middle of the job
(its executor and the shuffle files it held are lost; Spark retries and recomputes, and the seeded, per-pair keep
draws make the retried work decide exactly as the first attempt would have).

Run only these with `make test-cluster` (`pytest -m cluster`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli

from conftest import DATA, REPO
from standalone_cluster import HOST, StandaloneCluster, free_port, get_json

pytestmark = pytest.mark.cluster

METADATA = DATA / "metadata" / "small.json"
POOL = DATA / "pool" / "sample_pairs.jsonl"
# Many small input partitions: every stage of the job runs dozens of tasks, so a worker can be killed while one
# of them is running (and the output is not a single file that one task writes).
INPUT_PARTITIONS = 48
JOB_TIMEOUT = 600
TABLES = {
    "matched": ("uuid", "url", "text", "entry_ids"),
    "counts": ("entry_id", "entry", "count"),
    "curated": ("uuid", "url", "text", "entry_ids", "keep_prob"),
}
SUMMARY_KEYS = ("pairs_in", "pairs_matched", "pairs_curated", "entries_matched", "entries_over_t", "t",
                "matches_total", "metadata_digest", "seed")


def _job_args(conf_file: Path, output: Path) -> list[str]:
    """The options of `curate`, the same for the local run and the cluster runs."""
    return ["--conf", str(conf_file), "--metadata", str(METADATA), "--input", str(POOL), "--input-format", "jsonl",
            "--t", "auto", "--seed", "7", "--output", str(output)]


def _rows(output: Path, table: str) -> list[tuple]:
    data = pq.read_table(output / table)
    columns = [data.column(name).to_pylist() for name in TABLES[table]]
    return sorted(zip(*columns), key=repr)


def _summary(output: Path) -> dict:
    summary = json.loads((output / "summary.json").read_text())
    return {key: summary[key] for key in SUMMARY_KEYS}


def _assert_same_tables(output: Path, expected: Path) -> None:
    for table in TABLES:
        assert _rows(output, table) == _rows(expected, table), f"{table} differs from the local-mode run"
    assert _summary(output) == _summary(expected)


@pytest.fixture(scope="module")
def conf_file(tmp_path_factory) -> Path:
    """A user TOML laid over the profile: small shuffles for a small pool, many input partitions."""
    path = tmp_path_factory.mktemp("cluster-conf") / "test.toml"
    path.write_text(
        f'[input]\npartitions = {INPUT_PARTITIONS}\n\n'
        '[spark.conf]\n"spark.sql.shuffle.partitions" = "4"\n"spark.executor.memory" = "512m"\n'
    )
    return path


@pytest.fixture(scope="module")
def local_run(spark, conf_file, tmp_path_factory) -> Path:
    """`metaclip-spark curate` with the local profile (in this process, on the suite's local session)."""
    output = tmp_path_factory.mktemp("local-run") / "out"
    assert cli.main(["curate", "--profile", "local", *_job_args(conf_file, output)]) == 0
    return output


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two 1-core, 1g workers; every process it started is stopped, pass or fail."""
    standalone = StandaloneCluster(tmp_path_factory.mktemp("standalone"), workers=2, cores=1, memory="1g")
    try:
        standalone.start()
        yield standalone
    finally:
        standalone.stop()


def _submit(cluster: StandaloneCluster, conf_file: Path, output: Path, name: str, ui_port: int):
    return cluster.submit([
        "--driver-memory", "512m", "--executor-memory", "512m", "--total-executor-cores", "2",
        "--conf", f"spark.ui.port={ui_port}", "--conf", "spark.port.maxRetries=0",
        str(REPO / "jobs" / "curate.py"), "--profile", "cluster", *_job_args(conf_file, output),
    ], name, cwd=REPO)


def _wait(cluster: StandaloneCluster, process, name: str) -> None:
    try:
        returncode = process.wait(timeout=JOB_TIMEOUT)
    except Exception:
        pytest.fail(f"{name} did not finish within {JOB_TIMEOUT} s:\n{cluster.log_tail()}")
    assert returncode == 0, f"{name} exited with {returncode}:\n{cluster.log_tail(80)}"


def test_spark_submit_on_a_standalone_cluster_writes_the_same_tables_as_local_mode(cluster, conf_file, local_run,
                                                                                   tmp_path):
    output = tmp_path / "out"
    finished_before = {app["id"] for app in (cluster.state() or {}).get("completedapps", [])}
    job = _submit(cluster, conf_file, output, "curate-on-cluster", free_port())
    _wait(cluster, job, "spark-submit")
    finished = [app for app in (cluster.state() or {}).get("completedapps", []) if app["id"] not in finished_before]
    assert [app["state"] for app in finished] == ["FINISHED"], "the job did not run as one application on the cluster"
    _assert_same_tables(output, local_run)


def _active_executors(ui: str, app_id: str) -> list[dict]:
    executors = get_json(f"{ui}/api/v1/applications/{app_id}/executors") or []
    return [e for e in executors if e.get("id") != "driver"]


def _wait_for_running_tasks(job, ui: str, deadline: float) -> tuple[str, dict, dict]:
    """Poll the driver's REST API until a stage of many tasks is part-way done on two executors."""
    while time.monotonic() < deadline and job.poll() is None:
        apps = get_json(f"{ui}/api/v1/applications", timeout=2) or []
        if apps:
            app_id = apps[0]["id"]
            stages = get_json(f"{ui}/api/v1/applications/{app_id}/stages?status=active", timeout=2) or []
            executors = _active_executors(ui, app_id)
            busy = [e for e in executors if e.get("activeTasks", 0) > 0]
            for stage in stages:
                if (stage["numTasks"] >= INPUT_PARTITIONS // 2 and 1 <= stage["numCompleteTasks"]
                        and stage["numCompleteTasks"] + stage["numActiveTasks"] < stage["numTasks"]
                        and len(executors) == 2 and busy):
                    return app_id, stage, busy[0]
        time.sleep(0.1)
    pytest.fail("the job finished (or timed out) before a worker could be killed while a stage was running")


def test_job_survives_a_worker_killed_mid_stage_with_the_same_output(cluster, conf_file, local_run, tmp_path):
    output = tmp_path / "out"
    ui_port = free_port()
    ui = f"http://{HOST}:{ui_port}"
    job = _submit(cluster, conf_file, output, "curate-losing-a-worker", ui_port)
    app_id, stage, executor = _wait_for_running_tasks(job, ui, time.monotonic() + JOB_TIMEOUT)

    # Kill the worker whose executor is running a task: its JVM, that executor and the executor's Python workers.
    victim = next(i for i, worker in enumerate(cluster.workers)
                  if cluster.executor_ids(i) and executor["id"] in cluster.executor_ids(i))
    cluster.kill_worker(victim)
    assert job.poll() is None, "the job ended before the worker was lost"
    lost = None
    deadline = time.monotonic() + 120
    while lost is None and time.monotonic() < deadline and job.poll() is None:
        everyone = get_json(f"{ui}/api/v1/applications/{app_id}/allexecutors", timeout=2) or []
        lost = next((e for e in everyone if e["id"] == executor["id"] and not e["isActive"]), None)
        time.sleep(0.2)
    assert lost is not None, f"the driver never saw executor {executor['id']} go (stage {stage['stageId']})"

    _wait(cluster, job, "spark-submit after losing a worker")
    assert len(cluster.alive_workers()) == 1
    _assert_same_tables(output, local_run)
