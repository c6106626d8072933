"""What every benchmark case shares: the machine description, Spark sessions in child processes, /proc readings."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# ---- /proc readings (no psutil needed) ------------------------------------------------------------------------

def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of one process, in MB (VmRSS)."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's high-water resident set size, in MB (VmHWM)."""
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def descendants(root: int) -> list[int]:
    """Every live process below `root` (its Python workers, for a Spark JVM)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes, including their reaped children (forked Python workers that exited)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


# ---- machine ----------------------------------------------------------------------------------------------------

def _first(path: str, prefix: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except FileNotFoundError:
        pass
    return "unknown"


def _command_output(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> dict:
    import importlib.metadata

    import numpy
    import pyarrow
    import pyspark

    import metaclip_spark

    memory_kb = float(_first("/proc/meminfo", "MemTotal").split()[0])
    java = _command_output(["java", "-version"]).splitlines()
    commit = _command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java[0] if java else "unknown",
        "pyspark": pyspark.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
        "pyahocorasick": importlib.metadata.version("pyahocorasick"),
        "metaclip_spark": metaclip_spark.__version__,
        "git_commit": commit,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# ---- Spark in a child process -------------------------------------------------------------------------------------

def bench_session(master: str, app_name: str, extra_conf: dict | None = None):
    """The local profile's session (127.0.0.1, this interpreter as Python workers) with the given master."""
    from metaclip_spark.config import load_config
    from metaclip_spark.session import spark_session

    conf = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8", **(extra_conf or {})}
    config = load_config("local", overrides={"spark": {"master": master, "conf": conf}})
    return config, spark_session(config, app_name)


def jvm_pid(spark) -> int:
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())


def spark_processes(spark) -> dict:
    """The JVM and the Python processes Spark started (the pyspark daemon and its forked workers)."""
    pid = jvm_pid(spark)
    python = [p for p in descendants(pid) if "python" in cmdline(p)]
    return {"jvm": pid, "python": python}


def jvm_heap_used_mb(spark, collect: bool = False) -> float:
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
    if collect:
        spark.sparkContext._jvm.java.lang.System.gc()
    return (runtime.totalMemory() - runtime.freeMemory()) / 1024 / 1024


def run_child(script: str, args: list[str], log_path: Path, timeout: float = 900) -> dict:
    """Run `python bench/<script> <args> --result FILE` in a fresh process; its JSON result, or the log's tail."""
    result_path = log_path.with_suffix(".json")
    if result_path.exists():
        result_path.unlink()
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    command = [sys.executable, str(BENCH / script), *args, "--result", str(result_path)]
    started = time.monotonic()
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout, cwd=REPO)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0 or not result_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        return {"error": f"{script} {' '.join(args)} exited with {code}", "log": str(log_path), "log_tail": tail}
    result = json.loads(result_path.read_text())
    result["process_seconds"] = round(time.monotonic() - started, 1)
    return result


def write_result(path: str, result: dict) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")


# ---- the curation stages, composed from the library as the pipeline composes them --------------------------------
# The pipeline's orchestration (output roots, units, crawls) changes often; the per-pair work it runs is these
# library functions, so the benchmark calls them directly: read_pool + match_pool + Parquet write, count_entries,
# balance_pool. What is timed is what scales with a dump.

def bench_metadata(path: str):
    """The run's metadata as the pipeline loads it (a file: one v1 list; a directory: a worldwide set)."""
    from metaclip_spark.metadata.lists import Metadata

    return Metadata(path)


def match_stage(spark, config: dict, pool_path: str, metadata, output: str) -> dict:
    from metaclip_spark.matching.spark import match_pool
    from metaclip_spark.ingestion.pool import read_pool
    from metaclip_spark.progress import stage
    from metaclip_spark.root.tables import write_parquet_atomically

    with stage(spark, "match", f"bench: {pool_path}"):
        pool = read_pool(spark, pool_path, "parquet", config)
        pairs_in = pool.count()
        write_parquet_atomically(match_pool(pool, metadata, config.input.text_column),
                                 f"{output}/matched")
        pairs_matched = spark.read.parquet(f"{output}/matched").count()
    return {"pairs_in": pairs_in, "pairs_matched": pairs_matched}


def count_stage(spark, output: str, metadata) -> dict:
    from metaclip_spark.balancing.counts import count_entries
    from metaclip_spark.progress import stage
    from metaclip_spark.root.tables import write_parquet_atomically

    with stage(spark, "count", "bench"):
        write_parquet_atomically(count_entries(spark.read.parquet(f"{output}/matched"), metadata),
                                 f"{output}/counts")
        entries_matched = spark.read.parquet(f"{output}/counts").count()
    return {"entries_matched": entries_matched}


def balance_stage(spark, config: dict, output: str, metadata) -> dict:
    from pyspark.sql import functions as F

    from metaclip_spark.balancing import draws, thresholds
    from metaclip_spark.balancing.counts import read_count_vectors
    from metaclip_spark.balancing.spark import balance_pool
    from metaclip_spark.matching.spark import ListChoice
    from metaclip_spark.progress import stage
    from metaclip_spark.root.columns import KEEP_PROB
    from metaclip_spark.root.tables import write_parquet_atomically

    with stage(spark, "balance", "bench"):
        counts = read_count_vectors(spark.read.parquet(f"{output}/counts"), metadata)
        t_by_lang, _ = thresholds.resolve(counts, "auto", config.curation.tail_share)
        probabilities = {code: draws.entry_probabilities(counts[code], t) for code, t in t_by_lang.items()}
        curated = balance_pool(spark.read.parquet(f"{output}/matched"), probabilities, config.curation.seed,
                               config.input.text_column, ListChoice(metadata))
        write_parquet_atomically(curated, f"{output}/curated")
        totals = spark.read.parquet(f"{output}/curated").agg(F.count("*"), F.sum(KEEP_PROB)).first()
    return {"t": int(t_by_lang.get(draws.ENGLISH, 0)), "matches_total": int(sum(v.sum() for v in counts.values())),
            "pairs_curated": int(totals[0]), "expected_curated": float(totals[1] or 0.0)}


def stage_metrics(spark) -> dict:
    """Per curation stage (by job description), summed over Spark stages: bytes read/written/shuffled, task time.

    Read from the driver's own status REST API on 127.0.0.1 (spark.ui.enabled must be true): the shuffle volume
    is what the scaling projections need and PySpark exposes no other way to read it.
    """
    import urllib.request

    url = spark.sparkContext.uiWebUrl
    if not url:
        return {}
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages?status=complete", timeout=30) as response:
        stages = json.loads(response.read())
    totals: dict = {}
    for s in stages:
        description = s.get("description") or ""
        name = description.split(":", 1)[0].removeprefix("metaclip-spark ").strip() or "other"
        t = totals.setdefault(name, {"spark_stages": 0, "tasks": 0, "input_bytes": 0, "output_bytes": 0,
                                     "shuffle_write_bytes": 0, "shuffle_write_records": 0,
                                     "shuffle_read_bytes": 0, "executor_run_ms": 0, "executor_cpu_ms": 0})
        t["spark_stages"] += 1
        t["tasks"] += s.get("numCompleteTasks", 0)
        t["input_bytes"] += s.get("inputBytes", 0)
        t["output_bytes"] += s.get("outputBytes", 0)
        t["shuffle_write_bytes"] += s.get("shuffleWriteBytes", 0)
        t["shuffle_write_records"] += s.get("shuffleWriteRecords", 0)
        t["shuffle_read_bytes"] += s.get("shuffleReadBytes", 0)
        t["executor_run_ms"] += s.get("executorRunTime", 0)
        t["executor_cpu_ms"] += round(s.get("executorCpuTime", 0) / 1e6)
    return totals


def own_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process alone (not its children)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else None


class CpuMeter:
    """CPU-seconds used by a Spark JVM and every process below it between start() and stop().

    Python workers come and go (Spark stops idle ones after a minute), so each process's own CPU is sampled
    every `interval` seconds and its last reading kept after it exits; a process seen for the first time counts
    from zero. Children's reaped time (cutime) is not used: it would count an exited worker twice.
    """

    def __init__(self, spark=None, interval: float = 0.25, root: int | None = None):
        import threading

        self.root = jvm_pid(spark) if root is None else root
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, first: bool = False) -> None:
        for pid in [self.root, *descendants(self.root)]:
            value = own_cpu_seconds(pid)
            if value is None:
                continue
            if pid not in self._first:
                self._first[pid] = value if first else 0.0
                self._names[pid] = cmdline(pid)
            self._last[pid] = value

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "CpuMeter":
        self._sample(first=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self._sample()
        jvm = self._last[self.root] - self._first[self.root]
        python = sum(self._last[p] - self._first[p] for p in self._last if p != self.root)
        return {"cpu_seconds": round(jvm + python, 1), "jvm_cpu_seconds": round(jvm, 1),
                "python_cpu_seconds": round(python, 1)}

    def stop_by_kind(self) -> dict:
        """stop() for a tree rooted at a command (not a JVM): CPU seconds of the JVMs and of the Python processes."""
        self._stop.set()
        self._thread.join()
        self._sample()
        jvm = python = 0.0
        for pid, last in self._last.items():
            used = last - self._first[pid]
            if "java" in self._names.get(pid, ""):
                jvm += used
            else:
                python += used
        return {"cpu_seconds": round(jvm + python, 1), "jvm_cpu_seconds": round(jvm, 1),
                "python_cpu_seconds": round(python, 1)}
