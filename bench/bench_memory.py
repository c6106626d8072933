"""Case 2, memory: what the automaton adds to one Python worker, and driver memory curating 1M vs 4M pairs.

- Automaton: a fresh process imports what a worker imports, loads the 500k entries (a worker holds them as the
  broadcast value), then builds EntryMatcher; RSS is read from /proc before and after each step.
- Driver: a fresh process runs the curation stages (match, count, balance; see harness.match_stage) over a pool in local[2] while a thread
  samples the JVM heap in use and the driver's Python RSS every 0.2 s; after each stage a full GC shows what the
  driver JVM retains. In local mode the executors live in the driver JVM, so the sampled peak includes task
  buffers; the retained heap after GC and the driver's Python RSS are the driver's own state. The same process
  times each stage: the counting and balancing case reads its figures from here.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import threading
import time
from pathlib import Path

import harness


def automaton_in_child(metadata_path: str) -> dict:
    import ahocorasick  # noqa: F401 - imported before the baseline, as in a worker that already ran a batch
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401

    from metaclip_spark.matching.substrings import EntryMatcher
    from metaclip_spark.metadata.lists import load_metadata

    gc.collect()
    baseline = harness.rss_mb()
    entries = load_metadata(metadata_path)
    gc.collect()
    with_entries = harness.rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    matcher = EntryMatcher(entries)
    build_seconds, build_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    gc.collect()
    with_automaton = harness.rss_mb()
    assert matcher.match(entries[0]) is not None
    return {
        "entries": len(entries),
        "baseline_rss_mb": round(baseline, 1),
        "entries_list_mb": round(with_entries - baseline, 1),
        "automaton_mb": round(with_automaton - with_entries, 1),
        "added_to_worker_mb": round(with_automaton - baseline, 1),
        "peak_added_mb": round(harness.peak_rss_mb() - baseline, 1),
        "build_seconds": round(build_seconds, 2),
        "build_cpu_seconds": round(build_cpu, 2),
    }


class MemorySampler:
    """Samples the driver JVM's heap in use and this process's RSS until stopped."""

    def __init__(self, spark, interval: float = 0.2):
        self.spark, self.interval = spark, interval
        self.heap_peak_mb = 0.0
        self.python_peak_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.heap_peak_mb = max(self.heap_peak_mb, harness.jvm_heap_used_mb(self.spark))
            except Exception:  # noqa: BLE001 - the session may be stopping
                pass
            self.python_peak_mb = max(self.python_peak_mb, harness.rss_mb())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def curate_in_child(master: str, pool: str, metadata_path: str, out_dir: Path) -> dict:
    # The UI's REST API (on 127.0.0.1) is the one place PySpark can read shuffle volumes from.
    config, spark = harness.bench_session(master, f"bench-curate-{master}", {"spark.ui.enabled": "true"})
    metadata = harness.bench_metadata(metadata_path)
    output = str(out_dir)
    shutil.rmtree(output, ignore_errors=True)
    stages, retained = {}, {}
    try:
        retained["start"] = round(harness.jvm_heap_used_mb(spark, collect=True))
        python_start = harness.rss_mb()
        with MemorySampler(spark) as sampler:
            for name, body in (
                ("match", lambda: harness.match_stage(spark, config, pool, metadata, output)),
                ("count", lambda: harness.count_stage(spark, output, metadata)),
                ("balance", lambda: harness.balance_stage(spark, config, output, metadata)),
            ):
                meter = harness.CpuMeter(spark).start()
                started = time.monotonic()
                value = body()
                seconds = time.monotonic() - started
                stages[name] = {"seconds": round(seconds, 2), **meter.stop()}
                if name == "match":
                    match_record = value
                if name == "balance":
                    summary = value
                retained[name] = round(harness.jvm_heap_used_mb(spark, collect=True))
        workers = [p for p in harness.spark_processes(spark)["python"]]
        try:
            metrics = harness.stage_metrics(spark)
        except Exception as e:  # noqa: BLE001 - volumes are a bonus; the timings stand without them
            metrics = {"error": f"{type(e).__name__}: {e}"}
        result = {
            "master": master,
            "pairs_in": match_record["pairs_in"],
            "pairs_matched": match_record["pairs_matched"],
            "pairs_curated": summary["pairs_curated"],
            "matches_total": summary["matches_total"],
            "t": summary["t"],
            "stages": stages,
            "driver_heap_retained_after_gc_mb": retained,
            "driver_heap_peak_sampled_mb": round(sampler.heap_peak_mb),
            "driver_python_rss_start_mb": round(python_start),
            "driver_python_rss_peak_mb": round(max(sampler.python_peak_mb, harness.peak_rss_mb())),
            "driver_jvm_rss_mb": round(harness.rss_mb(harness.jvm_pid(spark))),
            "python_worker_rss_mb": sorted(round(harness.rss_mb(p)) for p in workers),
            "memory_samples": sampler.samples,
            "spark_metrics": metrics,
        }
    finally:
        spark.stop()
    return result  # the output stays for the counting and balancing case; run.py removes it


def curate_pools(work_dir: Path, manifest: dict, log=print) -> dict:
    """The curation stages over the 1M and the 4M pool in local[2], each in a fresh process."""
    runs = {}
    for name in ("pool", "large_pool"):
        rows = manifest[f"{name}_rows"]
        log(f"memory: curating {rows:,} pairs in local[2]")
        runs[str(rows)] = harness.run_child("bench_memory.py", [
            "curate", "--master", "local[2]", "--pool", manifest[name], "--metadata", manifest["metadata"],
            "--out", str(work_dir / f"curate-{name}")], work_dir / f"curate-{name}.log", timeout=1200)
    return runs


def run(work_dir: Path, manifest: dict, curate_runs: dict | None = None, log=print) -> dict:
    log("memory: automaton in a fresh process")
    automaton = harness.run_child("bench_memory.py", ["automaton", "--metadata", manifest["metadata"]],
                                  work_dir / "automaton.log")
    curate_runs = curate_runs if curate_runs is not None else curate_pools(work_dir, manifest, log)
    result = {"automaton": automaton, "curate": curate_runs}
    small, large = (curate_runs.get(str(manifest[f"{n}_rows"]), {}) for n in ("pool", "large_pool"))
    if "stages" in small and "stages" in large:
        def retained_max(run):
            return max(v for k, v in run["driver_heap_retained_after_gc_mb"].items() if k != "start")

        result["driver"] = {
            "pairs": [small["pairs_in"], large["pairs_in"]],
            "heap_retained_mb": [retained_max(small), retained_max(large)],
            "heap_peak_sampled_mb": [small["driver_heap_peak_sampled_mb"], large["driver_heap_peak_sampled_mb"]],
            "python_rss_peak_mb": [small["driver_python_rss_peak_mb"], large["driver_python_rss_peak_mb"]],
        }
        driver = result["driver"]
        driver["total_small_mb"] = driver["heap_retained_mb"][0] + driver["python_rss_peak_mb"][0]
        driver["total_large_mb"] = driver["heap_retained_mb"][1] + driver["python_rss_peak_mb"][1]
        driver["growth_ratio"] = round(driver["total_large_mb"] / driver["total_small_mb"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["automaton", "curate"])
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--pool")
    parser.add_argument("--out")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    if args.mode == "automaton":
        result = automaton_in_child(args.metadata)
    else:
        result = curate_in_child(args.master, args.pool, args.metadata, Path(args.out))
    harness.write_result(args.result, result)


if __name__ == "__main__":
    main()
