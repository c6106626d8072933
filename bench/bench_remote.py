"""Case 5: one WARC file read over HTTP against the same file read from disk, in one run, side by side.

The issue's goal: the remote path costs at most 1.2x the local one in CPU seconds. What a Spark task runs per file
(extraction.file_pairs, no Spark) reads the bench_extract WARC (~100 MB uncompressed at scale 1):

- local: from disk (the page cache after the first run: no disk time in either side);
- streaming: over http://127.0.0.1 through ResumableReader with the shipped [remote] settings (conf/base.toml),
  FastWARC reading the seekable reader as it goes (the design the code ships); again with 32 MiB blocks to show
  how much the block size matters;
- spooled: the alternative design (cc-pyspark's): the whole file downloaded first, through the same reader, into a
  local temporary file, then read from there. Its CPU seconds are the download's plus the local read's.

The server (tests/servers.py's ArchiveServer, HTTP/1.1 with ranges) runs in a child process so that its CPU is not
charged to the reading process; CPU seconds are time.process_time() of this process, which counts fsspec's IO
thread. Every side runs RUNS times, interleaved in rotating order so that other load on a shared machine hits all
of them, and keeps its best. Every run must give exactly the local side's pairs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

RUNS = 3
GOAL = 1.2  # remote read CPU / local read CPU
LARGE_BLOCK = 32 << 20
WARC = "part-00000.warc.gz"


# ---- the server, in its own process --------------------------------------------------------------------------------

def serve(directory: str) -> None:
    """(child) Serve `directory`, print the URL; then answer each line on stdin with the GETs served and the
    process's CPU seconds so far; stop at end of input (the parent closed the pipe or exited)."""
    sys.path.insert(0, str(REPO / "tests"))
    from servers import ArchiveServer

    server = ArchiveServer(Path(directory)).start()
    print(server.url, flush=True)
    for _ in sys.stdin:
        gets = sum(1 for method, *_ in list(server.log.entries) if method == "GET")
        print(json.dumps({"gets": gets, "cpu_seconds": time.process_time()}), flush=True)
    server.stop()


class ServerProcess:
    def __init__(self, directory: Path):
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(directory)], cwd=REPO,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the HTTP server did not start (said {self.url!r})")

    def counters(self) -> dict:
        self.process.stdin.write("?\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


# ---- one side, once --------------------------------------------------------------------------------------------------

def _pairs(location: str, settings) -> tuple[list[tuple], dict]:
    from metaclip_spark.extraction.job import FileStats, file_pairs
    from metaclip_spark.ingestion.manifest import ManifestFile

    # The same source_file name on every side: it is part of each pair, the location is not.
    stats = FileStats(WARC, location)
    rows = list(file_pairs(ManifestFile(0, WARC, location, None), settings, stats))
    if stats.status != "ok" or stats.error:
        raise RuntimeError(f"{location}: {stats.status}: {stats.error}")
    return rows, stats.counts


def _spool(url: str, remote) -> tuple[str, float]:
    """The whole file through a ResumableReader (same retries) into a local temporary file; its path and CPU."""
    from metaclip_spark.storage import ResumableReader

    cpu_started = time.process_time()
    spool = tempfile.NamedTemporaryFile(prefix="bench-spool-", suffix=".warc.gz", delete=False)
    with spool, ResumableReader(url, remote) as reader:
        shutil.copyfileobj(reader, spool, length=remote.block_bytes)
    return spool.name, time.process_time() - cpu_started


def measure(side: str, path: Path, url: str, settings, large_block_settings) -> dict:
    started, cpu_started = time.perf_counter(), time.process_time()
    download_cpu = None
    if side == "local":
        rows, counts = _pairs(str(path), settings)
    elif side == "streaming":
        rows, counts = _pairs(url, settings)
    elif side == "streaming_32mib":
        rows, counts = _pairs(url, large_block_settings)
    else:  # spooled
        spooled, download_cpu = _spool(url, settings.remote)
        try:
            rows, counts = _pairs(spooled, settings)
        finally:
            os.unlink(spooled)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
            "download_cpu_seconds": download_cpu, "rows": rows, "counts": counts}


# ---- the case ------------------------------------------------------------------------------------------------------

def run(work_dir) -> dict:
    import bench_extract

    from metaclip_spark.config import load_config
    from metaclip_spark.extraction.job import ExtractJob
    from metaclip_spark.extraction.language import identify_language

    work_dir = Path(work_dir)
    scale = float(os.environ.get("BENCH_SCALE", "1") or 1)
    # The extract case's file (and cache directory): the same bytes for both cases.
    directory = work_dir / "extract-warc"
    built = bench_extract.build_warcs(directory, bench_extract.TARGET_MB * scale)
    path = directory / built["files"][0]
    megabytes = built["uncompressed_mb"]
    settings = ExtractJob.from_config(load_config("local"))  # shipped [extract] and [remote], for every side
    large_block = dataclasses.replace(settings, remote=dataclasses.replace(settings.remote, block_bytes=LARGE_BLOCK))
    identify_language("warm up the model")  # loading fastText is paid once per worker, not per file
    sides = ("local", "streaming", "spooled", "streaming_32mib")
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    load_start = [round(x, 2) for x in os.getloadavg()]
    server = ServerProcess(directory)
    try:
        url = server.url + path.name
        # A first, untimed remote read: fsspec's event loop thread, the aiohttp session and the connection are set
        # up once per Python worker, not once per file.
        measure("streaming", path, url, settings, large_block)
        reference = None
        for attempt in range(RUNS):
            # Rotating order: a side is never always first (cold caches) or always after the same neighbour.
            for side in sides[attempt % len(sides):] + sides[:attempt % len(sides)]:
                before = server.counters()
                result = measure(side, path, url, settings, large_block)
                after = server.counters()
                result["gets"] = after["gets"] - before["gets"]
                result["server_cpu_seconds"] = after["cpu_seconds"] - before["cpu_seconds"]
                if reference is None:
                    reference = (result["rows"], result["counts"])
                # Exactly the same pairs (every column, in order) and counters from every side and every run.
                if (result["rows"], result["counts"]) != reference:
                    raise AssertionError(f"{side} run {attempt + 1} gave other pairs or counters than the first run")
                result["pairs"] = len(result.pop("rows"))
                del result["counts"]
                runs[side].append(result)
    finally:
        server.stop()
    best = {side: min(results, key=lambda r: r["cpu_seconds"]) for side, results in runs.items()}
    local_cpu = best["local"]["cpu_seconds"]
    result = {
        "warc_uncompressed_mb": megabytes,
        "warc_compressed_mb": built["compressed_mb"],
        "block_bytes": settings.remote.block_bytes,
        "runs_per_side": RUNS,
        "pairs": best["local"]["pairs"],
        "identical_pairs": True,  # asserted above, every run of every side
        "load_average_start": load_start,
        "sides": {},
    }
    for side, b in best.items():
        result["sides"][side] = {
            "cpu_seconds": round(b["cpu_seconds"], 2),
            "all_cpu_seconds": ", ".join(f"{r['cpu_seconds']:.2f}" for r in runs[side]),
            "seconds": round(b["seconds"], 2),
            "all_seconds": ", ".join(f"{r['seconds']:.2f}" for r in runs[side]),
            "mb_per_s": round(megabytes / b["seconds"], 1),
            "cpu_vs_local": round(b["cpu_seconds"] / local_cpu, 3),
            "http_gets": b["gets"],
            "server_cpu_seconds": round(b["server_cpu_seconds"], 2),  # the child's, not in cpu_seconds
        }
        if b["download_cpu_seconds"] is not None:
            result["sides"][side]["download_cpu_seconds"] = round(b["download_cpu_seconds"], 2)
    s = result["sides"]
    result.update({
        "streaming_cpu_vs_local": s["streaming"]["cpu_vs_local"],
        "spooled_cpu_vs_local": s["spooled"]["cpu_vs_local"],
        "streaming_32mib_cpu_vs_local": s["streaming_32mib"]["cpu_vs_local"],
        "goal_remote_vs_local": GOAL,
        "goal_met": s["streaming"]["cpu_vs_local"] <= GOAL,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    })
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", metavar="DIR", help="(internal) the HTTP server's side")
    parser.add_argument("--work-dir", default=str(BENCH / "work"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    print(json.dumps(run(args.work_dir), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
