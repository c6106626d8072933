"""One side of bench_peers.py, kept alive between runs: `python peer_side.py SIDE FILE [COPIES]`, then one line on
stdin per run ("run"), one JSON line back with the run's CPU seconds (this process only: time.process_time) and its
output. The pairs a side yields are kept in a list while the clock runs and hashed (their digest) after it stops.
With COPIES, a run reads the file that many times, each time as a fresh worker reads its first file (caches
forgotten, outside the clock): a crawl's cost, where the 100 MB file's repeats flatter caches, timed over enough
bytes to be steady.

Sides (what runs in this process; the driver picks the interpreter and PYTHONPATH):
- inflate-zlib, inflate-isal, inflate-zlib-ng: every gzip member inflated, 64 KiB fed at a time (as gzip_members does),
  nothing else: the floor any reader of the file pays;
- records: FastWARC over the whole file (its own inflate), every record's bytes read: the bare record loop;
- members: the same records read member by member, as metaclip-spark's reader does (gzip_members + FastWARC), no
  page work;
- ours: metaclip_spark.extraction.job.file_pairs over the file (what a Spark task runs per file), every language kept,
  the module on PYTHONPATH (this tree's, or the baseline commit's);
- ours-no-language-id: the same with every text labelled "en" without fastText: what language ID costs (cc2dataset
  identifies no language);
- cc2dataset: cc2dataset.main.process_wat(path, "image") (what its Spark task runs per WAT file), in its own
  virtualenv.

Language labels, URLs and anything else a side caches are forgotten before each run: each run is one file read by a
fresh worker, as a Spark task reads its first file.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

FEED = 1 << 16
ROWS = "_rows"  # a side's output rows, digested once its clock has stopped (the digest is not the side's work)
DIGESTED = "_digested"  # how many leading fields of each row the digest covers (all when absent)


def inflate(path: str, module) -> dict:
    data = open(path, "rb").read()
    view, position, size = memoryview(data), 0, 0
    while position < len(data):
        inflater = module.decompressobj(31)
        while not inflater.eof and position < len(data):
            chunk = view[position:position + FEED]
            size += len(inflater.decompress(chunk))
            position += len(chunk) - len(inflater.unused_data)
    return {"bytes_out": size}


def records(path: str) -> dict:
    from fastwarc.warc import ArchiveIterator

    count = size = 0
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, parse_http=False, strict_mode=False, quirks_mode=True):
            size += len(record.reader.read())
            count += 1
    return {"records": count, "bytes_out": size}


def members(path: str) -> dict:
    import io

    from fastwarc.warc import ArchiveIterator

    try:
        from metaclip_spark.extraction.gzip_members import MemberCounts, gzip_members
    except ImportError:  # a baseline commit before the stage subpackages (5654a97)
        from metaclip_spark.gzip_members import MemberCounts, gzip_members

    count = size = 0
    with open(path, "rb") as stream:
        for member in gzip_members(stream, MemberCounts(), 6 << 20):
            for record in ArchiveIterator(io.BytesIO(member), parse_http=True, strict_mode=False, quirks_mode=True):
                size += len(record.reader.read())
                count += 1
    return {"records": count, "bytes_out": size}


class Ours:
    def __init__(self, identify: bool = True):
        import dataclasses

        from metaclip_spark.config import load_config

        try:
            from metaclip_spark.extraction import job as extraction
            from metaclip_spark.extraction import language, webpage
            from metaclip_spark.ingestion.manifest import ManifestFile
        except ImportError:  # a baseline commit before the stage subpackages (5654a97)
            from metaclip_spark import extraction, language, webpage
            from metaclip_spark.manifest import ManifestFile

        job = extraction.ExtractJob.from_config(load_config("local"))
        self.job = dataclasses.replace(job, extract=dataclasses.replace(job.extract, languages=()))
        self.language, self.webpage, self.extraction, self.manifest_file = language, webpage, extraction, ManifestFile
        language.identify_language("the model is loaded before the clock starts")
        if not identify:
            extraction.identify_language = lambda text: ("en", 1.0)

    def forget(self) -> None:
        clear = getattr(self.language.identify_language, "cache_clear", None)
        if clear:
            clear()
        getattr(self.webpage, "_site_urls", {}).clear()  # (the image URL cache before webpage.clear_caches)
        getattr(self.webpage, "clear_caches", lambda: None)()
        getattr(self.extraction, "_uuids", {}).clear()
        wat = sys.modules.get("metaclip_spark.extraction.wat") or sys.modules.get("metaclip_spark.wat")
        if wat is not None and hasattr(wat, "clear_caches"):  # the WAT path's URL cache, where it had its own
            wat.clear_caches()

    def __call__(self, path: str) -> dict:
        stats = self.extraction.FileStats("bench", path)
        rows = list(self.extraction.file_pairs(self.manifest_file(0, "bench", path, "bench"), self.job, stats))
        info = getattr(self.language.identify_language, "cache_info", None)
        c = stats.counts
        return {"pairs": len(rows), ROWS: rows, DIGESTED: 7, "status": stats.status,
                "pages": c["html_pages"] + c["wat_pages"], "img_tags": c["img_tags"],
                "language_cache_hits": info().hits if info else None,
                "language_cache_misses": info().misses if info else None}


class Cc2dataset:
    def __init__(self):
        from loguru import logger

        logger.remove()  # its per-file log lines go to stderr otherwise

    def forget(self) -> None:
        pass

    def __call__(self, path: str) -> dict:
        from cc2dataset.main import process_wat

        rows = list(process_wat(path, "image"))
        return {"pairs": len(rows), ROWS: rows}


def side_function(side: str):
    if side == "inflate-zlib":
        import zlib

        return lambda path: inflate(path, zlib)
    if side == "inflate-isal":
        from isal import isal_zlib

        return lambda path: inflate(path, isal_zlib)
    if side == "inflate-zlib-ng":
        from zlib_ng import zlib_ng

        return lambda path: inflate(path, zlib_ng)
    if side == "records":
        return records
    if side == "members":
        return members
    if side == "ours":
        return Ours()
    if side == "ours-no-language-id":
        return Ours(identify=False)
    if side == "cc2dataset":
        return Cc2dataset()
    raise SystemExit(f"unknown side {side}")


def cold_copies(run, path: str, copies: int) -> dict:
    """`run(path)` `copies` times, caches forgotten before each (outside the clock): pairs and times summed."""
    total: dict = {"cpu_seconds": 0.0, "wall_seconds": 0.0, "copies": copies}
    forget = getattr(run, "forget", None)
    for _ in range(copies):
        if forget:
            forget()
        wall, cpu = time.perf_counter(), time.process_time()
        out = run(path)
        total["cpu_seconds"] += time.process_time() - cpu
        total["wall_seconds"] += time.perf_counter() - wall
        for key, value in out.items():
            if key == ROWS:
                total.setdefault(ROWS, []).extend(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != DIGESTED:
                total[key] = total.get(key, 0) + value
            else:
                total[key] = value
    return total


def main() -> int:
    side, path = sys.argv[1], sys.argv[2]
    copies = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    run = side_function(side)
    print(json.dumps({"ready": side}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        out = cold_copies(run, path, copies)
        if ROWS in out:
            digest, width = hashlib.sha256(), out.pop(DIGESTED, None)
            for row in out.pop(ROWS):
                digest.update(json.dumps(row[:width] if width else row, ensure_ascii=False).encode())
            out["digest"] = digest.hexdigest()
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
