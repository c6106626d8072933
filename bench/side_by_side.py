"""This tree against a baseline commit, side by side in one run, on the same inputs: the whole `curate`, and the
per-batch work of the match and balance stages. What a refactor must leave unchanged within noise (issue 29).

    .venv/bin/python bench/side_by_side.py [--baseline COMMIT] [--runs N] [--cases curate,matching,balance]
                                           [--master local[1]] [--rows 500000]

The baseline is the commit's metaclip_spark and conf (git archive, as case 6 does: bench_peers.baseline_tree) run by
this virtualenv's interpreter with PYTHONPATH and the working directory set to its tree, so both sides use the same
libraries; every side reports the metaclip_spark it imported, and the run stops if it is not its own tree's. Inputs
are `make bench`'s (bench/data.py, bench_curate.ensure_pools), generated once and read by both sides. CPU-seconds
(user + system) of every process, not wall time: the machine is shared. Each case is run RUNS times per side,
alternating which side goes first, and the best run of each side is kept (other load only ever adds CPU, through
cache misses and migrations); the spread is (slowest - best) / best of a side's runs.

- curate: `metaclip-spark curate --input POOL --input-format parquet --root ROOT --overwrite --metadata M
  --master MASTER` over case 9's large pool (900k texts) and the bench's 500k-entry metadata, a fresh process each
  run, as bench_curate runs it. CPU: this process is a child subreaper, so every descendant (the CLI, its JVM, the
  pyspark daemon) is reaped here and counted in RUSAGE_CHILDREN; the daemon's forked Python workers, which the kernel
  reaps (the daemon ignores SIGCHLD), are sampled from /proc and added (ForkedWorkers). Output: the curated rows
  (sorted by uuid, text) and the counts (sorted) digested; they must be identical on both sides.
- matching: the function match_pool hands to mapInArrow (what a Python worker runs per Arrow batch), taken from each
  tree's own match_pool, run without Spark over the first ROWS rows of the bench pool in 10,000-row batches
  (spark.sql.execution.arrow.maxRecordsPerBatch), its automaton built once beforehand as a worker's cache holds it.
- balance: the same for balance_pool's function, over the matched batches the matching case produced (identical on
  both sides, checked), with p_e from the counts of those batches at the tree's auto t.
Both per-batch cases run in one long-lived process per side (bench/side_by_side.py batches), timed with
time.process_time; their outputs are digested after the clock stops.

Writes bench/work/side-by-side-<commit>.json; with --record, also bench/side_by_side.json, which `make bench`'s
results.md shows as its section 10.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RECORD = BENCH / "side_by_side.json"
BATCH_ROWS = 10_000
CASES = ("matching", "balance", "curate")


# ---- one side's per-batch work (runs in the side's process, its tree first on sys.path) ------------------------

class Captured:
    """Stands for the DataFrame match_pool or balance_pool is given: it has the input's schema, its broadcasts hold
    their value, and it keeps the function handed to mapInArrow (the per-batch work a Python worker runs)."""

    def __init__(self, schema):
        self.schema = schema
        self.sparkSession = self
        self.sparkContext = self
        self.function = None

    def broadcast(self, value):
        return type("Broadcast", (), {"value": value})()

    def mapInArrow(self, function, schema):  # noqa: N802 - PySpark's name
        self.function = function
        return self


class Tree:
    """The few calls whose home moved in issue 29's refactor, resolved in whichever layout this tree has."""

    def __init__(self):
        try:
            from metaclip_spark.balancing import draws
            from metaclip_spark.balancing.spark import balance_pool
            from metaclip_spark.matching.spark import ListChoice, match_pool
            from metaclip_spark.metadata.lists import Metadata
            self.layout = "stage subpackages"
            self._list_choice = ListChoice
        except ImportError:  # the tree before issue 29: one flat package
            from metaclip_spark import balancing as draws
            from metaclip_spark.curation import balance_pool, match_pool
            from metaclip_spark.metadata import Metadata
            self.layout = "flat"
            self._list_choice = None
        self.draws, self.balance_pool, self.match_pool, self.Metadata = draws, balance_pool, match_pool, Metadata

    def match_function(self, schema, metadata):
        captured = Captured(schema)
        self.match_pool(captured, metadata, "text")
        return captured.function

    def balance_function(self, schema, metadata, probabilities, seed: int):
        captured = Captured(schema)
        if self._list_choice is None:
            self.balance_pool(captured, probabilities, seed, "text")
        else:
            choice = self._list_choice(metadata)
            self.balance_pool(captured, {choice.one_list: probabilities}, seed, "text", choice)
        return captured.function


def digest(batches, sort_keys: list[str]) -> str:
    """sha256 of the rows (every column, sorted by `sort_keys`), whatever the batching."""
    import pyarrow as pa

    table = pa.Table.from_batches(list(batches)) if not isinstance(batches, pa.Table) else batches
    table = table.sort_by([(k, "ascending") for k in sort_keys])
    h = hashlib.sha256(repr(table.schema.remove_metadata()).encode())
    for name in table.column_names:
        h.update(name.encode())
        h.update(repr(table.column(name).to_pylist()).encode())
    return h.hexdigest()[:16]


def batch_side(manifest_path: str, rows: int, seed: int, tail_share: float) -> None:
    """`side_by_side.py batches`: set up, say "ready", then one JSON line per "matching" or "balance" on stdin."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    import metaclip_spark

    tree = Tree()
    manifest = json.loads(Path(manifest_path).read_text())
    started = time.process_time()
    metadata = tree.Metadata(manifest["metadata"])
    pool = pq.read_table(manifest["pool"]).slice(0, rows)
    batches = pool.to_batches(max_chunksize=BATCH_ROWS)
    match = tree.match_function(from_arrow_schema(pool.schema), metadata)
    list(match(iter(batches[:1])))  # builds the automaton into the worker's cache, as a worker's first batch does
    matched = [b for b in match(iter(batches)) if b.num_rows]
    flat = np.concatenate([pc.list_flatten(b.column("entry_ids")).to_numpy(zero_copy_only=False) for b in matched])
    counts = np.bincount(flat, minlength=len(metadata.entries))
    t = int(tree.draws.auto_threshold(counts, tail_share))
    probabilities = tree.draws.entry_probabilities(counts, t)
    balance = tree.balance_function(from_arrow_schema(matched[0].schema), metadata, probabilities, seed)
    ready = {"metaclip_spark": metaclip_spark.__file__, "layout": tree.layout, "rows": pool.num_rows,
             "batches": len(batches), "pairs_matched": sum(b.num_rows for b in matched), "t": t,
             "probabilities": hashlib.sha256(probabilities.tobytes()).hexdigest()[:16],
             "setup_cpu_seconds": round(time.process_time() - started, 2)}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        case = line.strip()
        if case == "matching":
            started = time.process_time()
            out = list(match(iter(batches)))
            cpu = time.process_time() - started
            result = {"cpu_seconds": cpu, "digest": digest(out, ["uuid"]), "rows": sum(b.num_rows for b in out)}
        elif case == "balance":
            started = time.process_time()
            out = list(balance(iter(matched)))
            cpu = time.process_time() - started
            result = {"cpu_seconds": cpu, "digest": digest(out, ["uuid"]), "rows": sum(b.num_rows for b in out)}
        else:
            result = {"error": f"unknown case {case!r}"}
        out = None  # let the last run's output go before the next run
        print(json.dumps(result), flush=True)


# ---- the driver -------------------------------------------------------------------------------------------------

def become_subreaper() -> None:
    """Orphaned descendants (a Spark JVM's Python workers) are re-parented to this process, so their CPU is counted
    when they are reaped here (prctl PR_SET_CHILD_SUBREAPER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_all(timeout: float = 120) -> list[int]:
    """Wait for every child left (orphans adopted as subreaper); those still alive after `timeout` are killed (they
    are descendants of a run this process started). Returns the pids that had to be killed."""
    killed, deadline = [], time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return killed
        if pid:
            continue
        if time.monotonic() > deadline:
            import harness

            for child in harness.descendants(os.getpid()):
                try:
                    os.kill(child, 9)
                    killed.append(child)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
        time.sleep(0.05)


def side_env(tree: Path) -> dict:
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable, PYTHONPATH=str(tree))
    env.pop("METACLIP_SPARK_CONF_DIR", None)  # each side reads its own tree's conf/
    return env


def curate_once(tree: Path, master: str, pool: str, metadata: str, root: Path, log_path: Path,
                event_log: Path | None = None) -> dict:
    """One `curate` in a fresh process from `tree`; CPU of its whole process tree; its outputs digested. With
    `event_log` (a directory), Spark writes its event log there (through SPARK_CONF_DIR's spark-defaults.conf) and
    the result breaks the CPU down by stage (--profile)."""
    import pyarrow.parquet as pq

    command = [sys.executable, "-m", "metaclip_spark.cli", "curate", "--input", pool, "--input-format", "parquet",
               "--root", str(root), "--overwrite", "--metadata", metadata, "--master", master]
    shutil.rmtree(root, ignore_errors=True)
    reap_all()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(log_path, "w") as log:
        env = side_env(tree)
        if event_log:
            shutil.rmtree(event_log, ignore_errors=True)
            (event_log / "conf").mkdir(parents=True)
            (event_log / "conf" / "spark-defaults.conf").write_text(
                f"spark.eventLog.enabled true\nspark.eventLog.dir file://{event_log / 'events'}\n"
                "spark.eventLog.compress false\nspark.eventLog.rolling.enabled false\n")  # one plain JSON file
            (event_log / "events").mkdir()
            env["SPARK_CONF_DIR"] = str(event_log / "conf")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tree)
        workers = ForkedWorkers(process.pid)
        code = process.wait()
    sampled = workers.stop()
    killed = reap_all()
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-10:]
        return {"error": f"curate exited with {code}", "log": str(log_path), "log_tail": tail}
    summary = json.loads((root / "summary.json").read_text())
    reaped = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result = {"cpu_seconds": round(reaped + sampled["forked_workers_cpu_seconds"], 2),
              "reaped_cpu_seconds": round(reaped, 2), **sampled, "wall_seconds": round(seconds, 1), "killed_leftovers": killed,
              "load_average": [round(x, 2) for x in os.getloadavg()],
              "curated": digest(pq.read_table(root / "curated"), ["uuid", "text"]),
              "counts": digest(pq.read_table(root / "counts"), ["entry_id"]),
              **{k: summary.get(k) for k in ("pairs_in", "pairs_matched", "pairs_curated", "matches_total", "t")}}
    if event_log:
        result["stage_cpu_sampled"] = stage_cpu(workers.timeline, log_path)
        result["spark_by_stage"] = event_log_cpu(event_log / "events")
    shutil.rmtree(root, ignore_errors=True)
    return result


class ForkedWorkers:
    """CPU-seconds of the Python workers the pyspark daemon forks, sampled from /proc every `interval` seconds (each
    one's last reading kept after it exits). The daemon ignores SIGCHLD, so its workers are reaped by the kernel and
    their CPU never reaches anyone's RUSAGE_CHILDREN; everything else in a run's process tree does. Also samples the
    whole tree, as a cross-check of the total."""

    def __init__(self, root: int, interval: float = 0.25):
        import threading

        self.root, self.interval = root, interval
        self.last: dict[int, float] = {}
        self.forked: set[int] = set()
        self.timeline: list[tuple[float, float]] = []  # (time.time(), the tree's CPU so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import harness

        for pid in [self.root, *harness.descendants(self.root)]:
            fields = harness._stat_fields(pid)
            if fields is None:
                continue
            self.last[pid] = (int(fields[11]) + int(fields[12])) / harness.CLOCK_TICKS
            if pid not in self.forked and "pyspark.daemon" in harness.cmdline(int(fields[1])) \
                    and "pyspark.daemon" in harness.cmdline(pid):
                self.forked.add(pid)  # a worker: a pyspark.daemon process whose parent is the daemon
        self.timeline.append((time.time(), sum(self.last.values())))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"forked_workers": len(self.forked),
                "forked_workers_cpu_seconds": round(sum(self.last[p] for p in self.forked), 2),
                "sampled_tree_cpu_seconds": round(sum(self.last.values()), 2)}


def stage_cpu(timeline: list[tuple[float, float]], log_path: Path) -> dict:
    """The process tree's CPU-seconds (sampled) between the ends of the run's stages, from the log's `stage NAME
    done` lines (to the second): session start and ingest go to the first stage, the exit to `after`."""
    import re

    day = dt.datetime.fromtimestamp(timeline[0][0]).date()
    ends = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = re.match(r"(\d\d:\d\d:\d\d) metaclip_spark stage (\S+)\s+done", line)
        if m:
            ends.append((m.group(2), dt.datetime.combine(day, dt.time.fromisoformat(m.group(1))).timestamp() + 1))

    def cpu_at(moment: float) -> float:
        before = [cpu for t, cpu in timeline if t <= moment]
        return before[-1] if before else 0.0

    result, previous = {}, 0.0
    for name, end in ends:
        now = cpu_at(end)
        result[name] = round(result.get(name, 0) + now - previous, 1)
        previous = now
    result["after"] = round(timeline[-1][1] - previous, 1)
    return result


def event_log_cpu(directory: Path) -> dict:
    """Per stage of the run (its Spark jobs' description, as harness.stage_metrics names them): Spark jobs, tasks and
    the executors' task CPU-seconds (the JVM's task threads: not the Python workers, not the driver), from the
    event log Spark wrote into `directory`."""
    files = [p for p in directory.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))]
    stage_of, totals = {}, {}
    for line in files[0].read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # the last line of a run that was stopped
            continue
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            description = (event.get("Properties") or {}).get("spark.job.description") or ""
            name = description.split(":", 1)[0].removeprefix("metaclip-spark ").strip() or "other"
            totals.setdefault(name, {"jobs": 0, "tasks": 0, "task_cpu_seconds": 0.0, "gc_seconds": 0.0})["jobs"] += 1
            for stage in event.get("Stage IDs", []):
                stage_of[stage] = name
        elif kind == "SparkListenerTaskEnd":
            t = totals.setdefault(stage_of.get(event["Stage ID"], "other"),
                                  {"jobs": 0, "tasks": 0, "task_cpu_seconds": 0.0, "gc_seconds": 0.0})
            metrics = event.get("Task Metrics") or {}
            t["tasks"] += 1
            t["task_cpu_seconds"] += metrics.get("Executor CPU Time", 0) / 1e9
            t["gc_seconds"] += metrics.get("JVM GC Time", 0) / 1e3
    return {k: {m: round(v, 2) if isinstance(v, float) else v for m, v in t.items()} for k, t in totals.items()}


class BatchSide:
    """A running `side_by_side.py batches` process of one tree."""

    def __init__(self, tree: Path, manifest_path: Path, rows: int, seed: int, tail_share: float):
        command = [sys.executable, str(Path(__file__).resolve()), "batches", "--manifest", str(manifest_path),
                   "--rows", str(rows), "--seed", str(seed), "--tail-share", str(tail_share)]
        self.process = subprocess.Popen(command, cwd=tree, env=side_env(tree), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        self.ready = json.loads(line) if line else {"error": "the side did not start"}

    def run(self, case: str) -> dict:
        self.process.stdin.write(case + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        return json.loads(line) if line else {"error": "the side exited"}

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=120)


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Per side: best CPU, every run's, spread; now / baseline of the best runs (> 1: now costs more)."""
    sides = {}
    for side, records in runs.items():
        good = [r for r in records if "cpu_seconds" in r]
        if not good:
            sides[side] = {"error": (records or [{"error": "no run"}])[-1].get("error")}
            continue
        cpus = [r["cpu_seconds"] for r in good]
        sides[side] = {"best_cpu_seconds": round(min(cpus), 3), "all_cpu_seconds": [round(c, 3) for c in cpus],
                       "spread": round((max(cpus) - min(cpus)) / min(cpus), 3), "runs": len(good),
                       "outputs": sorted({r.get("digest") or f"{r.get('curated')}/{r.get('counts')}" for r in good})}
    result = {"sides": sides}
    if all("best_cpu_seconds" in s for s in sides.values()):
        result["now_vs_baseline_cpu"] = round(sides["now"]["best_cpu_seconds"] / sides["baseline"]["best_cpu_seconds"],
                                              3)
        result["median_now_vs_baseline_cpu"] = round(_median(sides["now"]["all_cpu_seconds"])
                                                     / _median(sides["baseline"]["all_cpu_seconds"]), 3)
        outputs = {tuple(s["outputs"]) for s in sides.values()}
        result["identical_outputs"] = len(outputs) == 1 and len(next(iter(outputs))) == 1
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def log(message: str) -> None:
    print(f"[side by side {dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {message}", flush=True)


def main_driver(args) -> int:
    sys.path.insert(0, str(BENCH))
    import bench_curate
    import bench_peers
    import data
    import harness
    from metaclip_spark.config import load_config

    become_subreaper()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"--cases: unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    work_dir = data.work_dir(1.0)
    manifest = data.ensure_inputs(1.0, log)
    trees = {"now": REPO, "baseline": bench_peers.baseline_tree(work_dir, args.baseline)}
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    config = load_config("local")
    result = {"baseline_commit": args.baseline, "now_commit": head, "runs_per_side": args.runs,
              "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": {k: v for k, v in harness.machine().items() if k in ("nproc", "cpu_model", "memory_gib")},
              "load_average_start": [round(x, 2) for x in os.getloadavg()], "cases": {}}

    def order(round_index: int) -> list[str]:
        return ["now", "baseline"] if round_index % 2 == 0 else ["baseline", "now"]

    batch_cases = [c for c in cases if c in ("matching", "balance")]
    if batch_cases:
        log("per-batch sides starting (each loads the 500k-entry metadata and builds its automaton)")
        sides = {name: BatchSide(tree, Path(manifest["directory"]) / "manifest.json", args.rows,
                                 config.curation.seed, config.curation.tail_share) for name, tree in trees.items()}
        try:
            for name, side in sides.items():
                log(f"{name}: {side.ready}")
                if "error" in side.ready or not side.ready["metaclip_spark"].startswith(str(trees[name])):
                    raise SystemExit(f"side {name} did not import its own tree's metaclip_spark: {side.ready}")
            runs = {case: {"now": [], "baseline": []} for case in batch_cases}
            for round_index in range(args.runs):
                for name in order(round_index):
                    for case in batch_cases:
                        runs[case][name].append(sides[name].run(case))
                log(f"per-batch round {round_index + 1}/{args.runs}: " + "; ".join(
                    f"{case} " + ", ".join(f"{n} {runs[case][n][-1].get('cpu_seconds', 0):.2f}" for n in sides)
                    for case in batch_cases))
        finally:
            for side in sides.values():
                side.close()
        ready = {name: side.ready for name, side in sides.items()}
        for case in batch_cases:
            result["cases"][case] = dict(summarise(runs[case]), setup=ready, rows=args.rows,
                                         batch_rows=BATCH_ROWS)
        same_input = len({(r["pairs_matched"], r["t"], r["probabilities"]) for r in ready.values()}) == 1
        for case in batch_cases:
            result["cases"][case]["identical_inputs_to_balance"] = same_input
    if "curate" in cases:
        pools = bench_curate.ensure_pools(work_dir, 1.0, log)
        pool = pools["pools"][args.curate_pool]
        runs = {"now": [], "baseline": []}
        for round_index in range(args.runs):
            for name in order(round_index):
                tag = f"{name}-{round_index}"
                record = curate_once(trees[name], args.master, pool["path"], manifest["metadata"],
                                     work_dir / f"side-curate-root-{tag}", work_dir / f"side-curate-{tag}.log")
                runs[name].append(record)
                log(f"curate round {round_index + 1}/{args.runs}, {name}: {record}")
        result["cases"]["curate"] = dict(summarise(runs), master=args.master, pool_rows=pool["rows"],
                                         summary={n: {k: r[-1].get(k) for k in ("pairs_in", "pairs_matched",
                                                                                 "pairs_curated", "t")}
                                                  for n, r in runs.items()},
                                         wall_seconds={n: [x.get("wall_seconds") for x in r] for n, r in runs.items()},
                                         load_averages=[x.get("load_average") for r in runs.values() for x in r])
    if args.profile:
        pool = bench_curate.ensure_pools(work_dir, 1.0, log)["pools"][args.curate_pool]
        profiles = {}
        for name in ("baseline", "now"):
            profiles[name] = curate_once(trees[name], args.master, pool["path"], manifest["metadata"],
                                         work_dir / f"side-profile-root-{name}", work_dir / f"side-profile-{name}.log",
                                         event_log=work_dir / f"side-profile-events-{name}")
            log(f"profile, {name}: {json.dumps(profiles[name])}")
        result["curate_profile"] = profiles
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    text = json.dumps(result, indent=2) + "\n"
    (work_dir / f"side-by-side-{args.baseline}.json").write_text(text)
    if args.record:
        RECORD.write_text(text)
    print("\n".join(markdown(result)))
    return 0


def markdown(r: dict | None = None) -> list[str]:
    """Section 10 of results.md, from bench/side_by_side.json (the last recorded run) when `r` is not given."""
    if r is None:
        if not RECORD.exists():
            return []
        r = json.loads(RECORD.read_text())
    lines = ["", f"## 10. This tree against {r['baseline_commit']}, side by side (bench/side_by_side.py)", "",
             f"Measured {r['finished_at']}, commit {r['now_commit']} against {r['baseline_commit']}, "
             f"{r['machine']['nproc']} CPUs ({r['machine']['cpu_model']}) shared with other sessions, load average at "
             f"start / end {r['load_average_start']} / {r['load_average_end']}. CPU-seconds (user + system) of every "
             f"process; best of {r['runs_per_side']} runs per side, alternating which side goes first; spread = "
             f"(slowest - best) / best of a side's runs. Ratio > 1: this tree costs more.", "",
             "| case | baseline CPU s, best (all runs) | now CPU s, best (all runs) | now / baseline, best | "
             "now / baseline, median | spread baseline / now | outputs identical |", "|---|---|---|---|---|---|---|"]
    labels = {"curate": "whole `curate`, {pool_rows:,} texts, {master}",
              "matching": "match stage per-batch function, {rows:,} texts",
              "balance": "balance stage per-batch function, matched pairs of those texts"}
    for case in CASES:
        c = r["cases"].get(case)
        if not c or "sides" not in c:
            continue
        b, n = c["sides"].get("baseline", {}), c["sides"].get("now", {})
        if "best_cpu_seconds" not in b or "best_cpu_seconds" not in n:
            lines.append(f"| {case} | error: {b.get('error') or n.get('error')} | | | | | |")
            continue
        label = labels[case].format(**{k: c.get(k, 0) for k in ("pool_rows", "rows")}, master=c.get("master"))
        lines.append(f"| {label} | {b['best_cpu_seconds']:.2f} ({', '.join(f'{x:.2f}' for x in b['all_cpu_seconds'])})"
                     f" | {n['best_cpu_seconds']:.2f} ({', '.join(f'{x:.2f}' for x in n['all_cpu_seconds'])}) | "
                     f"{c['now_vs_baseline_cpu']:.3f} | {c['median_now_vs_baseline_cpu']:.3f} | "
                     f"{b['spread']:.1%} / {n['spread']:.1%} | {'yes' if c['identical_outputs'] else '**no**'} |")
    if r.get("notes"):  # what the person who recorded the run observed (added to side_by_side.json by hand)
        lines += ["", r["notes"]]
    return lines + profile_markdown(r.get("curate_profile"))


def profile_markdown(p: dict | None) -> list[str]:
    """--profile's breakdown of one curate per side: CPU by stage of the run."""
    if not p or any("stage_cpu_sampled" not in p.get(side, {}) for side in ("baseline", "now")):
        return []
    b, n = p["baseline"], p["now"]
    lines = ["", f"Where a `curate`'s CPU goes (--profile: one more run per side, Spark's event log on; "
                 f"whole run {b['cpu_seconds']:.1f} / {n['cpu_seconds']:.1f} CPU-s, baseline / now): CPU-seconds of "
                 "the process tree (sampled) from the end of the previous stage to the end of this one (session start "
                 "and listing go to the first), and the executors' task CPU, jobs and tasks of the stage's Spark jobs.",
             "", "| stage | tree CPU s, baseline / now | task CPU s, baseline / now | Spark jobs | tasks |",
             "|---|---|---|---|---|"]
    stages = list(dict.fromkeys([*b["stage_cpu_sampled"], *n["stage_cpu_sampled"]]))
    spark_names = list(dict.fromkeys([*b["spark_by_stage"], *n["spark_by_stage"]]))
    for stage in stages:
        spark_b, spark_n = b["spark_by_stage"].get(stage, {}), n["spark_by_stage"].get(stage, {})
        lines.append(f"| {stage} | {b['stage_cpu_sampled'].get(stage, '')} / {n['stage_cpu_sampled'].get(stage, '')} | "
                     f"{spark_b.get('task_cpu_seconds', '')} / {spark_n.get('task_cpu_seconds', '')} | "
                     f"{spark_b.get('jobs', '')} / {spark_n.get('jobs', '')} | "
                     f"{spark_b.get('tasks', '')} / {spark_n.get('tasks', '')} |")
    for name in spark_names:
        if name not in stages:
            spark_b, spark_n = b["spark_by_stage"].get(name, {}), n["spark_by_stage"].get(name, {})
            lines.append(f"| (Spark jobs named `{name}`) | | {spark_b.get('task_cpu_seconds', '')} / "
                         f"{spark_n.get('task_cpu_seconds', '')} | {spark_b.get('jobs', '')} / "
                         f"{spark_n.get('jobs', '')} | {spark_b.get('tasks', '')} / {spark_n.get('tasks', '')} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "batches"])
    parser.add_argument("--baseline", default=os.environ.get("BENCH_SIDE_BASELINE", "1df2611"))
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_SIDE_RUNS", "5")))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--master", default="local[1]")
    parser.add_argument("--rows", type=int, default=500_000, help="texts of the per-batch cases")
    parser.add_argument("--curate-pool", choices=["small", "large"], default="large",
                        help="case 9's pool of 300k (small) or 900k (large) texts")
    parser.add_argument("--record", action="store_true", help="also write bench/side_by_side.json (results.md's "
                                                                 "section 10)")
    parser.add_argument("--profile", action="store_true", help="then one more curate per side, Spark's event log "
                                                                 "on, its CPU broken down by stage (not timed)")
    parser.add_argument("--manifest")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--tail-share", type=float)
    args = parser.parse_args()
    if args.mode == "batches":
        batch_side(args.manifest, args.rows, args.seed, args.tail_share)
        return 0
    return main_driver(args)


if __name__ == "__main__":
    sys.exit(main())
