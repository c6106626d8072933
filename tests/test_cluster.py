"""The curation job on a real Spark standalone cluster (a master and two workers on 127.0.0.1), as users submit it.

`spark-submit --master spark://... jobs/curate.py` with the cluster profile, from a manifest of real web-archive
excerpts, must write the same tables as a local-mode run of `metaclip-spark curate`, and still the same tables
when a worker dies in the middle of the job: its executor, the task it was running and the shuffle files it held
are lost; Spark retries and recomputes, and since extraction, dedup and the seeded per-pair keep draws are pure
functions of the input, the retried work decides exactly as the first attempt would have.

Run only these with `make test-cluster` (`pytest -m cluster`).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli

from conftest import DATA, REPO
from servers import ArchiveServer
from standalone_cluster import HOST, StandaloneCluster, command_line, descendants, free_port, get_json

pytestmark = pytest.mark.cluster

METADATA = DATA / "metadata" / "small.json"
CRAWL_EXCERPTS = DATA / "cc"
# Real WARC excerpts (tests/data/cc/README.md): English pages, Chinese pages in GBK, a Japanese EUC-JP crawl, a
# gzip member cut short and a page with no images.
WARC_FILES = ["sample-0000.warc.gz", "warcfile.warc.gz", "clueweb-quirk.warc.gz", "clipped.warc.gz",
              "example.warc.gz"]
# Each excerpt is listed under several names: the extract stage runs one task per file, so it has enough tasks for
# a worker to be killed while some are done and others still to run (the copies' pairs are crawl-wide duplicates,
# dropped in favour of the first file listed, on the cluster as in local mode).
COPIES = 4
JOB_TIMEOUT = 900
# The output root's tables (metaclip_spark/root/layout.py): per-crawl pairs and matched pairs, summed counts, the set.
TABLES = ("pairs", "matched", "counts", "curated")
SUMMARY_KEYS = ("pairs_in", "pairs_matched", "pairs_curated", "t", "seed", "metadata_digest",
                "entries_matched", "entries_over_t", "matches_total", "by_crawl")


def _job_args(job_inputs: tuple[Path, Path, Path], output: Path) -> list[str]:
    """The options of `curate`, the same for the local run and the cluster runs."""
    manifest, excerpts, conf_file = job_inputs
    return ["--conf", str(conf_file), "--metadata", str(METADATA), "--input", str(manifest),
            "--input-format", "warc-manifest", "--input-base", str(excerpts), "--crawl", "excerpts",
            "--t", "auto", "--seed", "7", "--output", str(output)]


def _rows(output: Path, table: str) -> list[str]:
    """Every row of a table, whole, in a canonical order (Spark writes rows in no particular order)."""
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in pq.read_table(output / table).to_pylist())


def _summary(output: Path) -> dict:
    """What a run decided: counts, threshold, sizes, and the extraction counters (timings left out)."""
    summary = json.loads((output / "summary.json").read_text())
    decided = {key: summary.get(key) for key in SUMMARY_KEYS}
    decided["extract"] = {key: value for key, value in (summary.get("extract") or {}).items()
                          if "elapsed" not in key and "seconds" not in key}
    return decided


def _assert_same_output(output: Path, expected: Path) -> None:
    for table in TABLES:
        rows, expected_rows = _rows(output, table), _rows(expected, table)
        assert expected_rows, f"the local run wrote no {table} rows: nothing would be compared"
        assert rows == expected_rows, f"{table} differs from the local-mode run"
    assert _summary(output) == _summary(expected)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two 1-core, 1g workers; every process it started is stopped, pass or fail.

    Launched without waiting: the JVMs boot while the local reference run works.
    """
    standalone = StandaloneCluster(tmp_path_factory.mktemp("standalone"), workers=2, cores=1, memory="1g")
    try:
        yield standalone.launch()
    finally:
        standalone.stop()


@pytest.fixture(scope="module")
def job_inputs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The excerpts under their names, a manifest listing them, and a user TOML laid over the profile."""
    directory = tmp_path_factory.mktemp("cluster-inputs")
    excerpts = directory / "excerpts"
    excerpts.mkdir()
    listed = []
    for copy in range(COPIES):
        for name in WARC_FILES:
            listed.append(f"copy-{copy}/{name}")
            (excerpts / listed[-1]).parent.mkdir(exist_ok=True)
            shutil.copyfile(CRAWL_EXCERPTS / name, excerpts / listed[-1])
    manifest = directory / "warc.paths"
    manifest.write_text("\n".join(listed) + "\n")
    conf_file = directory / "test.toml"
    # One unit of work for all files (a single extract stage of many tasks); small shuffles for a small pool.
    conf_file.write_text(
        f'[extract]\nfiles_per_task = 1\nfiles_per_unit = {len(listed)}\n\n'
        '[spark.conf]\n"spark.sql.shuffle.partitions" = "4"\n"spark.executor.memory" = "512m"\n'
    )
    return manifest, excerpts, conf_file


@pytest.fixture(scope="module")
def local_run(cluster, spark, job_inputs, tmp_path_factory) -> Path:
    """`metaclip-spark curate` with the local profile (in this process, on the suite's local session)."""
    output = tmp_path_factory.mktemp("local-run") / "out"
    assert cli.main(["curate", "--profile", "local", *_job_args(job_inputs, output)]) == 0
    return output


def _submit(cluster: StandaloneCluster, job_inputs: tuple[Path, Path, Path], output: Path, name: str, ui_port: int,
            extra: list[str] = ()):
    cluster.wait_ready()
    return cluster.submit([
        "--driver-memory", "512m", "--executor-memory", "512m", "--total-executor-cores", "2",
        "--conf", f"spark.ui.port={ui_port}", "--conf", "spark.port.maxRetries=0", *extra,
        str(REPO / "jobs" / "curate.py"), "--profile", "cluster", *_job_args(job_inputs, output),
    ], name, cwd=REPO)


def _wait(cluster: StandaloneCluster, process, name: str) -> None:
    try:
        returncode = process.wait(timeout=JOB_TIMEOUT)
    except Exception:
        pytest.fail(f"{name} did not finish within {JOB_TIMEOUT} s:\n{cluster.log_tail()}")
    assert returncode == 0, f"{name} exited with {returncode}:\n{cluster.log_tail(80)}"


def _log(cluster: StandaloneCluster, name: str) -> str:
    return (cluster.workdir / "logs" / f"{name}.log").read_text(errors="replace")


def test_spark_submit_on_a_standalone_cluster_writes_the_same_tables_as_local_mode(cluster, job_inputs, local_run,
                                                                                   tmp_path):
    output = tmp_path / "out"
    events = tmp_path / "events"
    events.mkdir()
    job = _submit(cluster, job_inputs, output, "curate-on-cluster", free_port(), [
        "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={events.as_uri()}",
        "--conf", "spark.eventLog.compress=false", "--conf", "spark.eventLog.rolling.enabled=false"])
    finished_before = {app["id"] for app in (cluster.state() or {}).get("completedapps", [])}
    _wait(cluster, job, "spark-submit")
    finished = [app for app in (cluster.state() or {}).get("completedapps", []) if app["id"] not in finished_before]
    assert [app["state"] for app in finished] == ["FINISHED"], "the job did not run as one application on the cluster"
    _assert_same_output(output, local_run)
    log = _log(cluster, "curate-on-cluster")
    # The report's sums over many thresholds make a plan of more fields than Spark prints by default: no warning.
    assert "Truncated the string representation of a plan" not in log
    # 65 pairs in a root of 4096 key buckets (the cluster profile's): work in proportion to the input, not a task
    # per bucket (each of the crawl stage's shuffles ran 4,096 tasks, 80-110 s on this cluster).
    tasks = _stage_tasks(events)
    assert tasks and max(tasks) < 100 and sum(tasks) < 1000, f"stages ran {sorted(tasks)[-5:]} tasks"


def _stage_tasks(events: Path) -> list[int]:
    """Tasks of each stage the application ran, from its Spark event log."""
    tasks = []
    for path in events.iterdir():
        for line in path.read_text(errors="replace").splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerStageCompleted":
                tasks.append(event["Stage Info"]["Number of Tasks"])
    return tasks


TRIAL_CRAWL = "CC-MAIN-2099-01"


def test_a_trial_of_a_dumps_first_two_files_checks_a_new_cluster(cluster, tmp_path, capsys):
    """docs/cluster.md's check of a new cluster before a whole dump: the dump's listing cut to its first two files
    (`curl -sf .../warc.paths.gz | gunzip | head -n 2 > trial.paths`), the files read by the executors over HTTP as
    from https://data.commoncrawl.org/, the cluster profile and the embedded metadata, into a trial output root."""
    served = tmp_path / "commoncrawl"
    listing = [f"crawl-data/{TRIAL_CRAWL}/segments/1/warc/{name}" for name in WARC_FILES]
    for path in listing:
        (served / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CRAWL_EXCERPTS / path.rsplit("/", 1)[1], served / path)
    with gzip.open(served / "crawl-data" / TRIAL_CRAWL / "warc.paths.gz", "wt") as listed:
        listed.write("\n".join(listing) + "\n")
    server = ArchiveServer(served).start()
    try:
        with urllib.request.urlopen(f"{server.url}crawl-data/{TRIAL_CRAWL}/warc.paths.gz") as response:
            trial = gzip.decompress(response.read()).decode().splitlines()[:2]
        (tmp_path / "trial.paths").write_text("\n".join(trial) + "\n")
        output = tmp_path / "trial"
        cluster.wait_ready()
        job = cluster.submit([
            "--driver-memory", "512m", "--executor-memory", "512m", "--conf", f"spark.ui.port={free_port()}",
            str(REPO / "jobs" / "curate.py"), "--profile", "cluster",
            "--input", str(tmp_path / "trial.paths"), "--input-base", server.url, "--output", str(output),
        ], "trial", cwd=REPO)
        _wait(cluster, job, "the trial")
        fetched = {path.lstrip("/") for method, path, _, status in server.log.entries if method == "GET"}
    finally:
        server.stop()
    assert fetched == {f"crawl-data/{TRIAL_CRAWL}/warc.paths.gz", *trial}  # the executors read the two files
    assert cli.main(["status", str(output)]) == 0
    status = capsys.readouterr().out
    assert f"crawl {TRIAL_CRAWL}: files 2 listed, 2 done, 0 failed;" in status
    assert json.loads((output / "summary.json").read_text())["pairs_curated"] > 0
    assert (output / "report" / "index.html").is_file()
    assert "Truncated the string representation of a plan" not in _log(cluster, "trial")


def _wait_for_running_tasks(job, ui: str, deadline: float) -> tuple[str, dict, dict]:
    """Poll the driver's REST API until a stage of many tasks is part-way done, on two busy-able executors."""
    while time.monotonic() < deadline and job.poll() is None:
        apps = get_json(f"{ui}/api/v1/applications", timeout=2) or []
        if apps:
            app_id = apps[0]["id"]
            stages = get_json(f"{ui}/api/v1/applications/{app_id}/stages?status=active", timeout=2) or []
            executors = [e for e in get_json(f"{ui}/api/v1/applications/{app_id}/executors", timeout=2) or []
                         if e.get("id") != "driver"]
            busy = [e for e in executors if e.get("activeTasks", 0) > 0]
            for stage in stages:
                if (stage["numTasks"] >= 8 and stage["numCompleteTasks"] >= 1
                        and stage["numCompleteTasks"] + stage["numActiveTasks"] < stage["numTasks"]
                        and len(executors) == 2 and busy):
                    return app_id, stage, busy[0]
        time.sleep(0.1)
    pytest.fail("the job finished (or timed out) before a worker could be killed while a stage was running")


def test_job_survives_a_worker_killed_mid_stage_with_the_same_output(cluster, job_inputs, local_run, tmp_path):
    output = tmp_path / "out"
    ui_port = free_port()
    ui = f"http://{HOST}:{ui_port}"
    job = _submit(cluster, job_inputs, output, "curate-losing-a-worker", ui_port)
    app_id, stage, executor = _wait_for_running_tasks(job, ui, time.monotonic() + JOB_TIMEOUT)

    # Kill the worker whose executor is running a task: its JVM, that executor and the executor's Python workers.
    victim = next(i for i in range(len(cluster.workers)) if executor["id"] in cluster.executor_ids(i))
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
    cluster.relaunch_killed()  # the node back for the next test (it boots while this one compares the tables)
    _assert_same_output(output, local_run)


@pytest.mark.skipif(not os.environ.get("METACLIP_TEST_ENV_ARCHIVE"),
                    reason="make test / make test-cluster build dist/ and set METACLIP_TEST_ENV_ARCHIVE")
def test_packed_environment_from_make_dist_runs_the_job_on_executors(cluster, job_inputs, local_run, tmp_path):
    """Executors run their Python from the archive shipped with --archives, as on a cluster without our venv.

    The driver runs the same archive unpacked (as in YARN cluster mode), so driver and executors run the same
    build, and it must find conf/ where the wheel installs it (sys.prefix/share/metaclip-spark/conf). `make test`
    and `make test-cluster` build the archive (when the package changed) and set METACLIP_TEST_ENV_ARCHIVE.
    """
    archive = Path(os.environ["METACLIP_TEST_ENV_ARCHIVE"]).resolve()
    driver_env = tmp_path / "driver-env"
    driver_env.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(driver_env)], check=True)
    output = tmp_path / "out"
    job = _submit(cluster, job_inputs, output, "curate-with-packed-env", free_port(), [
        "--archives", f"{archive}#environment", "--conf", "spark.pyspark.python=./environment/bin/python",
        "--conf", f"spark.pyspark.driver.python={driver_env / 'bin' / 'python'}",
    ])
    try:
        python_workers = set()  # the interpreters the executors started their Python workers with
        drivers = set()  # the interpreter spark-submit started jobs/curate.py with
        while job.poll() is None:
            for pid in descendants(job.pid):
                argv = command_line(pid).split()
                if len(argv) > 1 and argv[1].endswith("curate.py"):
                    drivers.add(argv[0])
            for worker in cluster.workers:
                for pid in descendants(worker.pid) if worker.poll() is None else []:
                    argv = command_line(pid).split()
                    if argv and "pyspark.daemon" in argv:
                        python_workers.add(argv[0])
            time.sleep(0.5)
        _wait(cluster, job, "spark-submit with the packed environment")
        assert python_workers == {"./environment/bin/python"}
        assert drivers == {str(driver_env / "bin" / "python")}
        # The archive holds the package as built by `make dist`: from an older checkout, tables may differ.
        _assert_same_output(output, local_run)
    finally:
        shutil.rmtree(driver_env, ignore_errors=True)
        for unpacked in cluster.workdir.glob("worker-*/app-*/*/environment"):
            shutil.rmtree(unpacked, ignore_errors=True)  # ~600 MB each; pytest keeps its last temporary folders
