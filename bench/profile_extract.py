"""Where the WARC path's CPU goes: `extraction.file_pairs` over case 6's WARC file, each step of the page work timed.

Runs the per-file work of a Spark task (every language kept, as case 6 does) in this process, with timers wrapped
around webpage's steps, best of RUNS whole runs (caches forgotten before each, as case 6's sides do); then the record
loop alone (webarchive.web_pages) for the records' share. CPU seconds of this process (time.process_time); the
wrappers add ~1 µs per call.

    .venv/bin/python bench/profile_extract.py [path to a WARC file] [runs]

The default file is case 6's (bench/work/scale-1/extract-warc/part-00000.warc.gz, made by `make bench`).
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import time
from pathlib import Path

from metaclip_spark.extraction import job as extraction
from metaclip_spark.extraction import webpage
from metaclip_spark.config import load_config
from metaclip_spark.extraction.job import ExtractJob, FileStats, file_pairs
from metaclip_spark.extraction.language import identify_language
from metaclip_spark.ingestion.manifest import ManifestFile
from metaclip_spark.extraction.webarchive import ArchiveCounts, web_pages

DEFAULT_FILE = Path(__file__).resolve().parent / "work" / "scale-1" / "extract-warc" / "part-00000.warc.gz"
STEPS = {  # webpage's function: the step it is
    "parser_input": "charset decoding",
    "_nested_too_deep": "nesting check",
    "_has_image_tag": "the <im scan",
    "_parse_to_last_image": "parsing (and the UTF-8 encoding of decoded pages, the cut's checks)",
}


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_FILE)
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    job = ExtractJob.from_config(load_config("local"))
    job = dataclasses.replace(job, extract=dataclasses.replace(job.extract, languages=()))
    identify_language("the model is loaded before the clock starts")
    spent: collections.Counter = collections.Counter()
    clock = time.process_time

    def timed(name: str, function):
        def wrapper(*args, **kwargs):
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += clock() - started
        return wrapper

    for name in (*STEPS, "html_image_pairs"):
        setattr(webpage, name, timed(name, getattr(webpage, name)))
    extraction.html_image_pairs = webpage.html_image_pairs
    best: dict = {}
    for _ in range(runs):
        spent.clear()
        identify_language.cache_clear()
        webpage.clear_caches()
        extraction._uuids.clear()
        started = clock()
        for _ in file_pairs(ManifestFile(0, "profile", path, "profile"), job, FileStats("profile", path)):
            pass
        spent["total"] = clock() - started
        started = clock()
        with open(path, "rb") as stream:
            for _ in web_pages(stream, ArchiveCounts(), job.extract.max_page_bytes):
                pass
        spent["records"] = clock() - started
        if not best or spent["total"] < best["total"]:
            best = dict(spent)
    rows = [("records: inflate, gzip members, WARC and HTTP headers (web_pages alone)", best["records"])]
    rows += [(step, best[name]) for name, step in STEPS.items()]
    rows.append(("tree queries, attributes, texts, URL resolution (the rest of html_image_pairs)",
                 best["html_image_pairs"] - sum(best[name] for name in STEPS)))
    rows.append(("per pair: language label, image id, the row (the rest of file_pairs)",
                 best["total"] - best["html_image_pairs"] - best["records"]))
    print(f"file_pairs over {path}: {best['total']:.3f} CPU-s (best of {runs})")
    for step, seconds in rows:
        print(f"| {step} | {seconds:.3f} | {100 * seconds / best['total']:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
