"""Case 1, matching: the bare single-process loop vs our match stage in local[1] and local[2], same data, same run.

The bare loop is `textbook_loop`: pyahocorasick over each spaced text, collecting its id set, over texts already in
memory, with EntryMatcher's automaton (the library's own loop, EntryMatcher.match_many, is timed beside it). The stage is our match stage on the Parquet pool: read, uuid kept, match in
Arrow batches on Python workers, write matched/ Parquet, count (harness.match_stage: the library functions the
pipeline's match step calls). Each master runs in its own child process.

Spark's fixed costs (the first job, forking the Python workers, shipping the 500k entries and building one automaton
per worker) are measured apart, by a cold run over a 2,000-row pool; then the 1M pool is matched twice in the same
session, and the second run ("timed") is the throughput that scales with a dump: the first ("first") still pays the
JVM's JIT compilation, which an executor pays once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import harness

REFERENCE_SAMPLE = 100
ROUNDS = 2  # runs of each master, best kept


def textbook_loop(automaton, texts: list[str]) -> list[list[int]]:
    """The bare pyahocorasick loop, written as anyone would: MetaCLIP's spacing, every match's id, as a sorted set.
    It stays the yardstick whatever the library does to go faster (EntryMatcher.match_many is timed beside it)."""
    from metaclip_spark.matching.substrings import space_text

    return [sorted({entry_id for _, entry_id in automaton.iter(space_text(text))}) if text else [] for text in texts]


def bare_loop(entries: list[str], texts: list[str]) -> dict:
    """One Python process, no Spark: build the automaton, then match every text, collecting the id sets."""
    from metaclip_spark.matching.substrings import EntryMatcher

    started = time.perf_counter()
    matcher = EntryMatcher(entries)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cpu_started = time.process_time()
    ids = textbook_loop(matcher._automaton, texts)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    library_cpu_started = time.process_time()
    library_ids = matcher.match_many(texts)
    library_cpu = time.process_time() - library_cpu_started
    # The bench's metadata holds no string twice, the one case where the library adds ids the loop does not find.
    assert library_ids == ids, "EntryMatcher.match_many and the bare loop disagree"
    matched = [x for x in ids if x]
    return {
        "texts": len(texts),
        "build_seconds": round(build_seconds, 2),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "texts_per_s": round(len(texts) / seconds),
        "library_cpu_seconds": round(library_cpu, 2),
        "library_vs_bare_cpu": round(cpu / library_cpu, 3),
        "matched_texts": len(matched),
        "mean_entries_per_matched_text": round(sum(map(len, matched)) / max(1, len(matched)), 2),
    }, matcher


def reference_sample(entries: list[str], texts: list[str], matcher) -> dict:
    """The spec's literal rule (" entry " in spaced text, for every entry) on a few texts; also checks the automaton."""
    from metaclip_spark.matching.substrings import reference_match

    started = time.perf_counter()
    expected = [reference_match(text, entries) for text in texts]
    seconds = time.perf_counter() - started
    agree = sum(1 for text, ids in zip(texts, expected) if matcher.match(text) == ids)
    return {"texts": len(texts), "seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 2),
            "automaton_agrees": agree == len(texts), "agreeing_texts": agree}


def stage_in_child(master: str, manifest: dict, out_dir: Path) -> dict:
    """Body of the child process: one session, a cold run over the warm-up pool, then the timed run."""
    started = time.monotonic()
    # One split per Parquet file (each file is far under the open cost), so local[1] and local[2] see the same
    # 16 tasks per million rows and differ only in how many run at once.
    config, spark = harness.bench_session(master, f"bench-match-{master}", {
        "spark.sql.files.openCostInBytes": str(256 * 1024 * 1024),
        "spark.sql.files.maxPartitionBytes": str(256 * 1024 * 1024),
    })
    session_seconds = time.monotonic() - started
    started = time.monotonic()
    metadata = harness.bench_metadata(manifest["metadata"])
    metadata_seconds = time.monotonic() - started
    result = {"master": master, "session_seconds": round(session_seconds, 2),
              "metadata_load_seconds": round(metadata_seconds, 2)}
    try:
        # The first full run still pays the JVM's JIT compilation (~3 CPU-s of the JVM's ~8 in local[1]); a dump's
        # executors run for hours, so the second run of the same session is the throughput that scales ("timed").
        for name, pool, rows in (("warmup", manifest["warmup_pool"], 2_000),
                                 ("first", manifest["pool"], manifest["pool_rows"]),
                                 ("timed", manifest["pool"], manifest["pool_rows"])):
            output = out_dir / f"match-{master.replace('[', '').replace(']', '')}-{name}"
            shutil.rmtree(output, ignore_errors=True)
            meter = harness.CpuMeter(spark).start()
            started = time.monotonic()
            record = harness.match_stage(spark, config, pool, metadata, str(output))
            seconds = time.monotonic() - started
            cpu = meter.stop()
            processes = harness.spark_processes(spark)
            workers = [p for p in processes["python"] if "pyspark.daemon" in harness.cmdline(p)]
            result[name] = {
                "rows": record["pairs_in"], "pairs_matched": record["pairs_matched"], "seconds": round(seconds, 2),
                "texts_per_s": round(record["pairs_in"] / seconds),
                **cpu, "cores_busy": round(cpu["cpu_seconds"] / seconds, 2),
                "python_processes": len(workers),
                "python_worker_rss_mb": sorted(round(harness.rss_mb(p)) for p in workers),
                "jvm_rss_mb": round(harness.rss_mb(processes["jvm"])),
            }
            assert record["pairs_in"] == rows, (record["pairs_in"], rows)
            shutil.rmtree(output, ignore_errors=True)
    finally:
        spark.stop()
    return result


def run(work_dir: Path, manifest: dict, log=print) -> dict:
    import data
    from metaclip_spark.metadata.lists import load_metadata

    entries = load_metadata(manifest["metadata"])
    texts = data.read_texts(manifest["pool"])
    log(f"matching: bare loop over {len(texts):,} texts, {len(entries):,} entries")
    bare_before, matcher = bare_loop(entries, texts)
    sample = json.loads(Path(manifest["sample_texts"]).read_text())[:REFERENCE_SAMPLE]
    log(f"matching: naive reference on {len(sample)} texts")
    reference = reference_sample(entries, sample, matcher)
    del matcher, texts
    every: dict[str, list] = {"local[1]": [], "local[2]": []}
    for round_index in range(ROUNDS):  # interleaved: a burst of other load hits one run, not every run of a master
        for master in every:
            log(f"matching: match stage in {master}, round {round_index + 1}/{ROUNDS}")
            every[master].append(harness.run_child("bench_matching.py", [
                "stage", "--master", master, "--manifest", str(Path(manifest["directory"]) / "manifest.json"),
                "--out", str(work_dir)], work_dir / f"match-{master[6]}-{round_index}.log"))
    stages = {master: dict(_fastest(runs), rounds=[r.get("timed", {}).get("seconds") for r in runs])
              for master, runs in every.items()}
    log("matching: bare loop again (the machine is shared: the bare figure is the best of before and after)")
    texts = data.read_texts(manifest["pool"])
    bare_after, matcher = bare_loop(entries, texts)
    del matcher, texts
    return summarise(bare_before, bare_after, reference, stages)


def _fastest(runs: list[dict]) -> dict:
    timed = [r for r in runs if "timed" in r]
    return min(timed, key=lambda r: r["timed"]["seconds"]) if timed else runs[-1]


def summarise(bare_before: dict, bare_after: dict, reference: dict, stages: dict) -> dict:
    # The best of the two, as the stage's figures are the best of their rounds: other load only ever slows a run.
    bare_rate = max(bare_before["texts_per_s"], bare_after["texts_per_s"])
    # Texts per CPU-second of every process involved: less sensitive than wall time to other load on the machine.
    bare_cpu_rate = max(b["texts"] / b["cpu_seconds"] for b in (bare_before, bare_after))
    result = {"bare_before": bare_before, "bare_after": bare_after, "bare_texts_per_s": round(bare_rate),
              "reference": reference, "reference_factor": round(bare_rate / reference["texts_per_s"]),
              "bare_texts_per_cpu_s": round(bare_cpu_rate), "stages": stages}
    one, two = stages.get("local[1]", {}), stages.get("local[2]", {})
    if "timed" in one and "timed" in two:
        rate1, rate2 = one["timed"]["texts_per_s"], two["timed"]["texts_per_s"]
        result.update({
            "stage_texts_per_s_local1": rate1,
            "stage_texts_per_s_local2": rate2,
            "stage_per_core_vs_bare_local1": round(rate1 / bare_rate, 3),
            "stage_per_core_vs_bare_local2": round(rate2 / 2 / bare_rate, 3),
            "local2_vs_local1": round(rate2 / rate1, 3),
            "stage_texts_per_cpu_s_local1": round(one["timed"]["rows"] / one["timed"]["cpu_seconds"]),
            "stage_texts_per_cpu_s_local2": round(two["timed"]["rows"] / two["timed"]["cpu_seconds"]),
            "fixed_cost_seconds_local1": one["warmup"]["seconds"] + one["session_seconds"],
            "fixed_cost_seconds_local2": two["warmup"]["seconds"] + two["session_seconds"],
        })
        # With the fixed costs left in (session start, first job, automaton builds): what a one-off run would see.
        rows = one["timed"]["rows"]
        cold1 = rows / (one.get("first", one["timed"])["seconds"] + one["warmup"]["seconds"])
        cold2 = rows / (two.get("first", two["timed"])["seconds"] + two["warmup"]["seconds"])
        result["cpu_efficiency_vs_bare_local1"] = round(result["stage_texts_per_cpu_s_local1"] / bare_cpu_rate, 3)
        result["cpu_efficiency_vs_bare_local2"] = round(result["stage_texts_per_cpu_s_local2"] / bare_cpu_rate, 3)
        result.update({"with_fixed_costs_per_core_vs_bare_local1": round(cold1 / bare_rate, 3),
                       "with_fixed_costs_local2_vs_local1": round(cold2 / cold1, 3)})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["stage"])
    parser.add_argument("--master", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    manifest = json.loads(Path(args.manifest).read_text())
    harness.write_result(args.result, stage_in_child(args.master, manifest, Path(args.out)))


if __name__ == "__main__":
    main()
