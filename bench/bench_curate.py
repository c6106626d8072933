"""Case curate: the whole `metaclip-spark curate` on Parquet pools, run as a user runs it, against the bare loop.

Issue 18's measure: pools of 300k and 900k short alt texts (bench/data.py's generator with 20-88 characters, mean
~54) against the bench's 500k-entry metadata; `curate --input POOL --input-format parquet --root ROOT
--overwrite --metadata M --master local[N]` in a fresh process each time (session start, ingest and match, the crawl
tables, count, balance, report: everything a user waits for). The marginal cost per text, (large - small) / 600k,
cancels the fixed cost of a run (session, first jobs, automaton builds, report). It is compared with the bare loop
(one process, no Spark: spacing + pyahocorasick + the id set per text, bench_matching.bare_loop) over the large
pool's texts, measured before, between and after the curate runs.

Every run is repeated `ROUNDS` times, interleaved (small/large, local[1]/local[2] in turn), and the best wall time
of each kind is kept: the machine is shared, and a burst of load from other processes hits one run, not all.
CPU seconds of the whole process tree (the CLI's Python, its JVM, the Python workers) are sampled from /proc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import harness

POOLS = {"small": 300_000, "large": 900_000}
TEXT_LENGTH = (20, 88)
SEED = 20261130
ROUNDS = 3
MASTERS = ("local[1]", "local[2]")


def ensure_pools(work_dir: Path, factor: float, log=print) -> dict:
    """The two pools (url, text: a user's pool, uuid computed by the run), cached by size and generator."""
    import data

    sizes = {name: max(20_000, int(rows * factor)) for name, rows in POOLS.items()}
    directory = work_dir / "curate-pools"
    stamp = directory / "pools.json"
    key = {"sizes": sizes, "length": list(TEXT_LENGTH), "seed": SEED, "generator": data.GENERATOR_VERSION}
    if stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        return json.loads(stamp.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    log(f"curate: generating {sizes['large']:,} texts of {TEXT_LENGTH[0]}-{TEXT_LENGTH[1]} characters")
    texts = data.alt_texts(sizes["large"], seed=SEED, length=TEXT_LENGTH)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pools = {}
    for name, rows in sizes.items():
        path = directory / name
        path.mkdir()
        for index, start in enumerate(range(0, rows, data.ROWS_PER_FILE)):
            part = texts[start:min(start + data.ROWS_PER_FILE, rows)]
            urls = [f"https://img{(start + i) % 997}.example.org/c/{start + i:09d}.jpg" for i in range(len(part))]
            pq.write_table(pa.table({"url": urls, "text": part}), path / f"part-{index:05d}.parquet")
        pools[name] = {"path": str(path), "rows": rows}
    manifest = {"key": key, "pools": pools,
                "mean_characters": round(sum(map(len, texts)) / len(texts), 1)}
    stamp.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def curate_run(master: str, pool: str, metadata: str, output: Path, log_path: Path) -> dict:
    """One `curate` in a fresh process; wall and CPU seconds of its whole process tree."""
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable)
    command = [sys.executable, "-m", "metaclip_spark.cli", "curate", "--input", pool, "--input-format", "parquet",
               "--root", str(output), "--overwrite", "--metadata", metadata, "--master", master]
    shutil.rmtree(output, ignore_errors=True)
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=harness.REPO)
        meter = harness.CpuMeter(root=process.pid).start()
        code = process.wait()
    seconds = time.monotonic() - started
    cpu = meter.stop_by_kind()
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-10:]
        return {"error": f"curate exited with {code}", "log": str(log_path), "log_tail": tail}
    summary = json.loads((output / "summary.json").read_text())
    shutil.rmtree(output, ignore_errors=True)
    return {"seconds": round(seconds, 1), **cpu, "pairs_in": summary["pairs_in"],
            "pairs_matched": summary["pairs_matched"], "pairs_curated": summary["pairs_curated"],
            "matches_total": summary["matches_total"], "t": summary["t"]}


def bare(metadata: str, pool: str) -> dict:
    import bench_matching
    import data
    from metaclip_spark.metadata.lists import load_metadata

    record, _ = bench_matching.bare_loop(load_metadata(metadata), data.read_texts(pool))
    return record


def run(work_dir: Path, manifest: dict, factor: float = 1.0, log=print) -> dict:
    pools = ensure_pools(work_dir, factor, log)
    small, large = pools["pools"]["small"], pools["pools"]["large"]
    runs: dict = {master: {"small": [], "large": []} for master in MASTERS}
    bares = []
    log(f"curate: bare loop over {large['rows']:,} texts")
    bares.append(bare(manifest["metadata"], large["path"]))
    loads = [[round(x, 2) for x in os.getloadavg()]]
    for round_index in range(ROUNDS):
        for master in MASTERS:
            for name, pool in (("small", small), ("large", large)):
                log(f"curate: round {round_index + 1}/{ROUNDS}, {master}, {pool['rows']:,} texts")
                tag = f"{master[6]}-{name}-{round_index}"
                runs[master][name].append(curate_run(master, pool["path"], manifest["metadata"],
                                                     work_dir / f"curate-root-{tag}", work_dir / f"curate-{tag}.log"))
                loads.append([round(x, 2) for x in os.getloadavg()])
        log("curate: bare loop again")
        bares.append(bare(manifest["metadata"], large["path"]))
    return summarise(pools, bares, runs, loads)


def _best(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if key in r]
    return min(values) if values else None


def summarise(pools: dict, bares: list[dict], runs: dict, loads: list) -> dict:
    small_rows, large_rows = pools["pools"]["small"]["rows"], pools["pools"]["large"]["rows"]
    bare_best = max(bares, key=lambda b: b["texts_per_s"])
    bare_cpu_rate = max(b["texts"] / b["cpu_seconds"] for b in bares)
    result = {"pools": pools, "bare": bares, "bare_texts_per_s": bare_best["texts_per_s"],
              "bare_texts_per_cpu_s": round(bare_cpu_rate), "runs": runs, "load_averages": loads,
              "rounds": len(bares) - 1}
    marginal = {}
    for master, sizes in runs.items():
        cores = int(master[6])
        s, lg = _best(sizes["small"], "seconds"), _best(sizes["large"], "seconds")
        cs, cl = _best(sizes["small"], "cpu_seconds"), _best(sizes["large"], "cpu_seconds")
        if None in (s, lg, cs, cl) or lg <= s:
            marginal[master] = {"error": "a run failed, or the large pool was not slower", "small": s, "large": lg}
            continue
        rate = (large_rows - small_rows) / (lg - s)
        cpu_per_text = (cl - cs) / (large_rows - small_rows)
        marginal[master] = {
            "seconds_small": s, "seconds_large": lg,
            "fixed_seconds": round(s - small_rows / rate, 1),
            "marginal_texts_per_s": round(rate),
            "marginal_per_core_vs_bare": round(rate / cores / bare_best["texts_per_s"], 3),
            "marginal_cpu_us_per_text": round(cpu_per_text * 1e6, 1),
            "marginal_cpu_efficiency_vs_bare": round(1 / cpu_per_text / bare_cpu_rate, 3),
            "cpu_seconds_small": cs, "cpu_seconds_large": cl,
        }
    result["marginal"] = marginal
    one, two = marginal.get("local[1]", {}), marginal.get("local[2]", {})
    if "marginal_texts_per_s" in one and "marginal_texts_per_s" in two:
        result["local2_vs_local1_marginal"] = round(two["marginal_texts_per_s"] / one["marginal_texts_per_s"], 3)
        result["local2_vs_local1_large_run"] = round(one["seconds_large"] / two["seconds_large"], 3)
    return result


def markdown(r: dict) -> list[str]:
    lines = ["", "## 9. The whole `curate` on a Parquet pool (bench/bench_curate.py)", ""]
    if "marginal" not in r:
        return lines + [r.get("skipped") or f"error: {r.get('error')}"]
    pools = r["pools"]["pools"]
    lines += [f"`curate` over pools of {pools['small']['rows']:,} and {pools['large']['rows']:,} alt texts (mean "
              f"{r['pools']['mean_characters']} characters), 500k entries, each run a fresh process; best of "
              f"{r['rounds']} interleaved rounds. Bare loop: {r['bare_texts_per_s']:,} texts/s "
              f"({r['bare_texts_per_cpu_s']:,} per CPU-second; runs: "
              f"{', '.join(str(b['texts_per_s']) for b in r['bare'])}). Load average before and after each run: "
              f"{r['load_averages']}.", "",
              "| master | seconds, small / large pool | fixed seconds | marginal texts/s | per core / bare | "
              "marginal CPU µs per text (all processes) | CPU efficiency / bare |", "|---|---|---|---|---|---|---|"]
    for master, m in r["marginal"].items():
        if "error" in m:
            lines.append(f"| {master} | {m.get('small')} / {m.get('large')} | | | | | {m['error']} |")
            continue
        lines.append(f"| {master} | {m['seconds_small']} / {m['seconds_large']} | {m['fixed_seconds']} | "
                     f"{m['marginal_texts_per_s']:,} | {m['marginal_per_core_vs_bare']} | "
                     f"{m['marginal_cpu_us_per_text']} | {m['marginal_cpu_efficiency_vs_bare']} |")
    if "local2_vs_local1_marginal" in r:
        lines += ["", f"local[2] / local[1]: {r['local2_vs_local1_marginal']} (marginal rate), "
                      f"{r['local2_vs_local1_large_run']} (whole run over the large pool)."]
    return lines
