"""Where a match task's Python time goes: cProfile of the match stage's batch function over Arrow batches.

Runs matching/spark.py match_pool's per-batch work (the function Spark's Python worker runs) in this process, without
Spark, over the first N rows of the benchmark pool, and prints the top functions by own CPU time. The JVM's share
(Parquet decode, Arrow exchange, Parquet encode) is in results.json as jvm_cpu_seconds of the match runs.

    .venv/bin/python bench/profile_match.py [rows]
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time

import pyarrow.parquet as pq

import data
from bench_matching import textbook_loop
from metaclip_spark.matching.spark import entry_ids_array, matched_batch
from metaclip_spark.matching.substrings import EntryMatcher, space_text
from metaclip_spark.metadata.lists import load_metadata


def batch_function(matcher: EntryMatcher, text_column: str = "text"):
    """The body of matching/spark.py match_pool's match_batches, with the matcher already built."""

    def match_batches(batches):
        for batch in batches:
            yield matched_batch(matcher, batch, text_column)

    return match_batches


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    manifest = data.ensure_inputs(log=lambda m: None)
    matcher = EntryMatcher(load_metadata(manifest["metadata"]))
    table = pq.read_table(manifest["pool"]).slice(0, rows)
    batches = table.to_batches(max_chunksize=10_000)
    run = batch_function(matcher)
    profile = cProfile.Profile()
    cpu = time.process_time()
    profile.enable()
    out_rows = sum(b.num_rows for b in run(batches))
    profile.disable()
    cpu = time.process_time() - cpu
    print(f"{rows:,} rows, {out_rows:,} matched, {cpu:.2f} CPU s under the profiler ({rows / cpu:,.0f} rows/s)")
    stream = io.StringIO()
    pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(12)
    print(stream.getvalue())
    texts = table.column("text").to_pylist()
    parts = {}
    started = time.process_time()
    spaced = [space_text(t) for t in texts]
    parts["spacing (space_text)"] = time.process_time() - started
    automaton = matcher._automaton
    started = time.process_time()
    for s in spaced:
        for _ in automaton.iter(s):
            pass
    parts["automaton.iter (C)"] = time.process_time() - started
    started = time.process_time()
    textbook_loop(automaton, texts)
    parts["bare loop (bench_matching.textbook_loop)"] = time.process_time() - started
    started = time.process_time()
    ids = matcher.match_many(texts)
    parts["match_many (spacing + iter + set, sorted)"] = time.process_time() - started
    started = time.process_time()
    entry_ids_array(ids)
    parts["ids to Arrow (matching.spark.entry_ids_array)"] = time.process_time() - started
    for name, seconds in parts.items():
        print(f"{name:48s} {seconds:6.2f} CPU s  {rows / seconds:>12,.0f} rows/s")


if __name__ == "__main__":
    main()
