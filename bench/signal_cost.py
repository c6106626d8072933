"""What page signals cost the WARC and WAT paths (issue #30: at most 5%), side by side: `python bench/signal_cost.py`.

Case 6's inputs and sides (bench_peers.py, peer_side.py), only "ours": metaclip_spark.extraction.job.file_pairs of
this tree against the commit before page signals (4f79962; SIGNAL_COST_BASELINE=<commit> for another), on case 6's
100 MB WARC, its WAT, and the one-copy WARC and WAT read cold (SIGNAL_COST_PATHS=warc,wat,one-copy-warc,one-copy-wat
picks some). One process per side stays alive; each round asks every side of a path for one run, the order alternating
from round to round, after one warm-up round that is not kept. A run's figure is its own process's CPU seconds
(user + sys); the pairs of every run are hashed and must be identical on both sides.

Per path: the ratio baseline CPU / this tree's CPU in each round (1 = as fast as before page signals, 0.95 = 5%
slower), their median over SIGNAL_COST_ROUNDS rounds (default 15), and the ratio of each side's best run; the
1-minute load average before and after. The per-round median is the figure to read: on this VM the same run's CPU
seconds move by up to 2x from one stretch of rounds to the next even at load 1 (the host's other guests), and only
two runs next to each other in time see the same speed. JSON on stdout, progress on stderr. Inputs are built where
`make bench` builds them (bench/work/scale-1, git-ignored), once. bench/signal_cost.json holds the runs that
docs/scaling.md cites.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import bench_extract  # noqa: E402
import bench_peers  # noqa: E402

BASELINE = os.environ.get("SIGNAL_COST_BASELINE", "4f79962")
ROUNDS = int(os.environ.get("SIGNAL_COST_ROUNDS", "15"))
PATHS = os.environ.get("SIGNAL_COST_PATHS", "warc,wat,one-copy-warc,one-copy-wat").split(",")


def inputs(work_dir: Path) -> dict:
    """Case 6's files (bench_peers.run builds the same): path name -> (file, copies per run)."""
    built = bench_extract.build_warcs(work_dir / "extract-warc", bench_extract.TARGET_MB)
    warc = work_dir / "extract-warc" / built["files"][0]
    small_warc = bench_peers.one_copy_warc(work_dir / "extract-one-copy")
    cold = bench_peers.COLD_COPIES
    return {"warc": (warc, 1), "wat": (bench_peers.wat_of(warc), 1),
            "one-copy-warc": (small_warc, cold), "one-copy-wat": (bench_peers.wat_of(small_warc), cold)}


def package_dir(pythonpath: Path) -> Path:
    """Where a side's process imports metaclip_spark from (the editable install must not shadow the baseline)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run([sys.executable, "-c", "import metaclip_spark; print(metaclip_spark.__file__)"], cwd=BENCH,
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    return Path(out).parent


def measure(path_name: str, file: Path, copies: int, baseline: Path, log) -> dict:
    sides = {"baseline": bench_peers.Side(f"{path_name} {BASELINE}", "ours", file, sys.executable, baseline, copies),
             "tree": bench_peers.Side(f"{path_name} this tree", "ours", file, sys.executable, REPO, copies)}
    for side in sides.values():
        if "error" in side.ready:
            raise SystemExit(f"{side.name}: {side.ready['error']}")
    load_start = round(os.getloadavg()[0], 2)
    try:
        for side in sides.values():  # warm-up: first reads of the file, lazy imports
            side.run()
        for side in sides.values():
            side.runs.clear()
        order = list(sides.values())
        for number in range(ROUNDS):
            for side in order if number % 2 == 0 else order[::-1]:
                side.run()
            log(f"{path_name}: round {number + 1} of {ROUNDS}, load {os.getloadavg()[0]:.2f}")
    finally:
        for side in sides.values():
            side.close()
    base, tree = sides["baseline"].runs, sides["tree"].runs
    bad = [r for r in base + tree if "cpu_seconds" not in r]
    if bad:
        raise SystemExit(f"{path_name}: a run failed: {bad[0]}")
    ratios = [b["cpu_seconds"] / t["cpu_seconds"] for b, t in zip(base, tree)]
    digests = {r["digest"] for r in base + tree}
    return {"file": str(file.relative_to(REPO)), "copies_per_run": copies, "rounds": ROUNDS,
            "median_ratio": round(statistics.median(ratios), 3),
            "best_ratio": round(min(r["cpu_seconds"] for r in base) / min(r["cpu_seconds"] for r in tree), 3),
            "ratios": [round(r, 3) for r in ratios],
            "baseline_cpu_seconds": [round(r["cpu_seconds"], 3) for r in base],
            "tree_cpu_seconds": [round(r["cpu_seconds"], 3) for r in tree],
            "pairs": tree[0]["pairs"], "pairs_identical": len(digests) == 1,
            "load_1min_start_end": [load_start, round(os.getloadavg()[0], 2)]}


def main() -> int:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    work_dir = BENCH / "work" / "scale-1"
    files = inputs(work_dir)
    baseline = bench_peers.baseline_tree(work_dir, BASELINE)
    for pythonpath in (baseline, REPO):
        if package_dir(pythonpath) != pythonpath / "metaclip_spark":
            raise SystemExit(f"metaclip_spark is not imported from {pythonpath}")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tree": commit, "baseline": BASELINE,
              "nproc": os.cpu_count(), "paths": {}}
    for name in PATHS:
        file, copies = files[name]
        result["paths"][name] = measure(name, file, copies, baseline, log)
        row = result["paths"][name]
        log(f"{name}: median {row['median_ratio']}, best {row['best_ratio']}, identical {row['pairs_identical']}")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
