"""extraction/heap.py: an extracting worker keeps its freed heap, so that a page's parse does not fault in again the
memory the last page's gave back. Each case runs in a fresh interpreter (the thresholds are per process, and set once).

The probe: blocks of 64 KiB (malloc's heap, under the 128 KiB mmap threshold) allocated to 16 MiB and freed, twenty
times. With glibc's defaults the free top passes the trim threshold and is given back each time, so the next round
faults it in again (about 4,000 faults a round here; after reading a file, glibc's own raised thresholds do not reach
16 MiB either); with the heap kept, none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

PROBE = """
import json, resource, sys

def churn(rounds=20, blocks=256, size=65536):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        held = [bytearray(size) for _ in range(blocks)]
        del held
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds

kept = None
if sys.argv[1] == "keep":
    from metaclip_spark.extraction.heap import keep_freed_heap
    kept = keep_freed_heap()
elif sys.argv[1] == "extract":  # what a Spark task runs per file
    from metaclip_spark.config import load_config
    from metaclip_spark.extraction.job import ExtractJob, FileStats, file_pairs
    from metaclip_spark.ingestion.manifest import ManifestFile
    job = ExtractJob.from_config(load_config("local", overrides={"extract": {"languages": []}}))
    stats = FileStats("f", sys.argv[2])
    pairs = len(list(file_pairs(ManifestFile(0, "f", sys.argv[2], "CC-MAIN-2016-07"), job, stats)))
    assert pairs > 0 and stats.status == "ok", (pairs, stats)
churn(2)  # (the first rounds also grow the heap to its size)
print(json.dumps({"kept": kept, "faults_per_round": churn()}))
"""

glibc_only = pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
                                reason="malloc's thresholds are glibc's")


def probe(*args: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@glibc_only
def test_the_probe_sees_the_heap_given_back_without_it():
    # (so that the cases below can fail: a heap given back faults at every round)
    assert probe("plain")["faults_per_round"] >= 1024  # a quarter of the 4,096 pages, at least


@glibc_only
def test_a_kept_heap_is_reused_without_faults():
    found = probe("keep")
    assert found["kept"] is True
    assert found["faults_per_round"] < 4


@glibc_only
def test_reading_a_file_keeps_the_workers_heap():
    found = probe("extract", str(DATA / "cc" / "sample-0000.warc.gz"))
    assert found["faults_per_round"] < 4


@glibc_only
def test_the_users_own_malloc_settings_are_left_alone():
    found = probe("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert found["kept"] is False
    assert found["faults_per_round"] >= 1024  # glibc's own trimming, as the user asked
    assert probe("keep", MALLOC_MMAP_THRESHOLD_="131072")["kept"] is False
