"""Case 3, counting and balancing: pairs/s per core of each stage, beside the same work done bare in one process.

The stage figures come from the memory case's curation runs (match, count, balance over the 1M and 4M pools in
local[2], each stage timed on its own). Per core = pairs / seconds / 2. The marginal rate, (4M - 1M) pairs over the
difference in seconds, cancels each stage's fixed cost (job start, small-file listing, broadcast).

Bare: the same computation without Spark over the 1M run's matched table held in memory: np.bincount over the
flattened entry ids (count), draws.decide in 10,000-row batches (balance, as the stage's Arrow batches).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

CORES = 2


def bare(matched_dir: Path, entries_total: int, probabilities_t: int) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from metaclip_spark.balancing import draws

    table = pq.read_table(matched_dir, columns=["uuid", "text", "entry_ids"])
    pairs = table.num_rows
    started = time.perf_counter()
    flat = pc.list_flatten(table.column("entry_ids")).to_numpy()
    counts = np.bincount(flat, minlength=entries_total)
    count_seconds = time.perf_counter() - started
    probabilities = draws.entry_probabilities(counts, probabilities_t)
    started = time.perf_counter()
    kept = 0
    for batch in table.to_batches(max_chunksize=10_000):
        entry_ids = batch.column(2)
        lengths = pc.list_value_length(entry_ids).fill_null(0).to_numpy(zero_copy_only=False)
        keep, _ = draws.decide(0, batch.column(0).to_pylist(), batch.column(1).to_pylist(), lengths,
                                   pc.list_flatten(entry_ids).to_numpy(zero_copy_only=False), probabilities)
        kept += int(keep.sum())
    balance_seconds = time.perf_counter() - started
    return {"pairs": pairs, "count_seconds": round(count_seconds, 3),
            "count_pairs_per_s": round(pairs / count_seconds), "balance_seconds": round(balance_seconds, 2),
            "balance_pairs_per_s": round(pairs / balance_seconds), "kept": kept}


def run(work_dir: Path, manifest: dict, curate_runs: dict, log=print) -> dict:
    small = curate_runs.get(str(manifest["pool_rows"]), {})
    large = curate_runs.get(str(manifest["large_pool_rows"]), {})
    result: dict = {"cores": CORES}
    for label, run in (("small", small), ("large", large)):
        if "stages" not in run:
            result[label] = {"error": run.get("error", "no pipeline run")}
            continue
        # Every stage reads the matched pairs except match, which reads the whole pool.
        per_stage = {}
        for stage, rows in (("match", run["pairs_in"]), ("count", run["pairs_matched"]),
                            ("balance", run["pairs_matched"])):
            seconds = run["stages"][stage]["seconds"]
            per_stage[stage] = {"pairs": rows, "seconds": seconds,
                                "pairs_per_s_per_core": round(rows / seconds / CORES),
                                "cores_busy": round(run["stages"][stage]["cpu_seconds"] / seconds, 2)}
        result[label] = per_stage
    if "stages" in small and "stages" in large:
        marginal = {}
        for stage, key in (("match", "pairs_in"), ("count", "pairs_matched"), ("balance", "pairs_matched")):
            rows = large[key] - small[key]
            seconds = large["stages"][stage]["seconds"] - small["stages"][stage]["seconds"]
            marginal[stage] = round(rows / seconds / CORES) if seconds > 0 else None
        result["marginal_pairs_per_s_per_core"] = marginal
        # The same difference in CPU-seconds of every process: the per-pair cost once fixed costs cancel out.
        result["marginal_cpu_s_per_pair"] = {
            stage: round((large["stages"][stage]["cpu_seconds"] - small["stages"][stage]["cpu_seconds"])
                         / (large[key] - small[key]), 9)
            for stage, key in (("match", "pairs_in"), ("count", "pairs_matched"), ("balance", "pairs_matched"))}
        matched_dir = work_dir / "curate-pool" / "matched"
        if matched_dir.exists():
            log("balance: bare counting and balancing over the 1M run's matched table")
            result["bare"] = bare(matched_dir, manifest["metadata_entries"], small["t"])
            stage_large = result["large"]
            result["count_stage_per_core_vs_bare"] = round(
                stage_large["count"]["pairs_per_s_per_core"] / result["bare"]["count_pairs_per_s"], 3)
            result["balance_stage_per_core_vs_bare"] = round(
                stage_large["balance"]["pairs_per_s_per_core"] / result["bare"]["balance_pairs_per_s"], 3)
    return result
