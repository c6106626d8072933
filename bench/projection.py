"""Projections for a whole Common Crawl dump and for a 10B-match count, from the measured figures (docs/scaling.md).

Costs are taken in CPU-seconds of every process involved (JVM + Python workers) per unit of work, not wall time:
on a cluster each core runs one task, and CPU time is what a shared benchmark machine disturbs least. The dump's
size and the pair yield per page are assumptions, stated here once; change them to re-project.
"""

from __future__ import annotations

# Common Crawl's announcements for recent monthly dumps: ~90k WARC files, ~3 billion pages, ~400 TiB of
# uncompressed content (about 1 GB gzipped / 4.5 GB uncompressed per WARC file).
DUMP_WARC_FILES = 90_000
DUMP_PAGES = 3.0e9
DUMP_UNCOMPRESSED_TIB = 400
# Assumed yield, to replace with a real extraction's counters: img texts (alt, title, data-image-title) per HTML
# page, the English share (MetaCLIP v1 keeps English), and the share left after exact (uuid, text) de-duplication
# (logos and icons repeat on every page of a site).
TEXTS_PER_PAGE = 10.0
ENGLISH_SHARE = 0.45
UNIQUE_SHARE = 0.5
COUNT_MATCHES = 10e9
# WAT files are about a third of the WARC files' size: CC-MAIN-2016-40's announcement (commoncrawl.org, "September
# 2016 Crawl Archive Now Available", read 2026-11-30) lists 28.94 TiB of WARC and 10.35 TiB of WAT files, both
# gzipped; the benchmark's WARC and WAT files compress alike (3.7x), so the ratio holds uncompressed too.
WAT_TO_WARC_SIZE = 10.35 / 28.94
# Spot price of one core-hour: AWS's example of Spot pricing per unit hour (EC2 Auto Scaling user guide, "Spot price
# per unit hour example", read 2026-11-30): c5.4xlarge, 16 vCPUs, $0.318-0.361 an hour in us-east-1, i.e. about
# $0.02 per vCPU-hour (AWS marks it as example pricing, not current). cc2dataset's README counts $0.04 per core-hour.
SPOT_USD_PER_CORE_HOUR = 0.02
# cc2dataset's README: "process one warc in about 50s" (one WAT file per core, download included).
CC2DATASET_PUBLISHED_SECONDS_PER_FILE = 50
# Executor shape we recommend (docs/scaling.md): 4 cores, hence 4 Python workers each holding an automaton.
EXECUTOR_CORES = 4
TARGET_HOURS = 24
MAX_PARTITION_BYTES = 128 * 1024 * 1024
JVM_OVERHEAD_MB = 512


def _get(d: dict, *keys, default=None):
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def extraction(results: dict) -> dict | None:
    """Core-hours and dollars per dump of each extraction side of case 6 (bench_peers), per uncompressed MB of the
    file it reads: WARC sides over the dump's WARC content, WAT sides over its WAT content."""
    peers = results.get("peers", {})
    sides, inputs = peers.get("sides", {}), peers.get("inputs", {})
    if not sides or not inputs.get("warc_uncompressed_mb"):
        return None
    warc_dump_mb = DUMP_UNCOMPRESSED_TIB * 1024 ** 4 / 1e6
    dump_mb = {"warc": warc_dump_mb, "wat": warc_dump_mb * WAT_TO_WARC_SIZE}
    # MB a side's best run read: the one-copy sides read their file `one_copy_cold_copies` times per run
    copies = inputs.get("one_copy_cold_copies", 1)
    bench_mb = {"warc": inputs["warc_uncompressed_mb"], "wat": inputs["wat_uncompressed_mb"],
                "one-copy warc": inputs.get("one_copy_warc_uncompressed_mb", 0) * copies,
                "one-copy wat": inputs.get("one_copy_wat_uncompressed_mb", 0) * copies}
    rows = []

    def add(label, file_key, cpu_per_mb, source):
        if cpu_per_mb:
            hours = cpu_per_mb * dump_mb[file_key] / 3600
            rows.append({"side": label, "reads": file_key.upper(), "cpu_s_per_mb": cpu_per_mb, "core_hours": hours,
                         "usd": hours * SPOT_USD_PER_CORE_HOUR, "source": source})

    def measured(name):
        cpu = sides.get(name, {}).get("cpu_seconds")
        file_key = sides.get(name, {}).get("file")
        return cpu / bench_mb[file_key] if cpu and bench_mb.get(file_key) else None

    floor = peers.get("floor", {})
    for file_key in ("warc", "wat"):
        fastest = floor.get(file_key, {}).get("fastest_inflate")
        if fastest:
            add(f"floor: inflating the {file_key.upper()} files alone ({fastest.split('inflate ')[-1]})", file_key,
                measured(fastest), "case 6")
    add("WARC path, today (" + peers.get("baseline_commit", "") + ")", "warc", measured("warc today"), "case 6")
    add("WARC path, now", "warc", measured("warc now"), "case 6")
    add("WARC path, now, on a crawl (pages not repeated: one copy, read cold)", "warc", measured("one-copy warc now"),
        "case 6")
    extract = results.get("extract", {})
    if extract.get("stage_local1_cpu_seconds") and extract.get("warc_uncompressed_mb"):
        add("WARC path, whole Spark stage (local[1], every process, 100 MB run)", "warc",
            extract["stage_local1_cpu_seconds"] / extract["warc_uncompressed_mb"], "case 4")
    add("WAT path, today (" + peers.get("baseline_commit", "") + ")", "wat", measured("wat today"), "case 6")
    add("WAT path, now", "wat", measured("wat now"), "case 6")
    add("WAT path, now, on a crawl (one copy, read cold)", "wat", measured("one-copy wat now"), "case 6")
    add("cc2dataset on the same WAT file", "wat", measured("wat cc2dataset"), "case 6")
    add("cc2dataset on a crawl (one copy, read cold)", "wat", measured("one-copy wat cc2dataset"), "case 6")
    hours = CC2DATASET_PUBLISHED_SECONDS_PER_FILE * DUMP_WARC_FILES / 3600
    rows.append({"side": "cc2dataset, published (50 s per WAT file, download included)", "reads": "WAT",
                 "cpu_s_per_mb": None, "core_hours": hours, "usd": hours * SPOT_USD_PER_CORE_HOUR,
                 "source": "cc2dataset README"})
    return {"dump_warc_tib": DUMP_UNCOMPRESSED_TIB, "dump_wat_tib": DUMP_UNCOMPRESSED_TIB * WAT_TO_WARC_SIZE,
            "usd_per_core_hour": SPOT_USD_PER_CORE_HOUR, "rows": rows}


def project(results: dict) -> dict:
    """Core-hours, executors, executor memory and shuffle volume; None where a needed figure is missing."""
    matching = results.get("matching", {})
    memory = results.get("memory", {})
    extract = results.get("extract", {})
    large = _get(memory, "curate", str(_get(results, "inputs", "large_pool_rows")), default={}) or {}
    out: dict = {"assumptions": {
        "dump_warc_files": DUMP_WARC_FILES, "dump_pages": DUMP_PAGES, "dump_uncompressed_tib": DUMP_UNCOMPRESSED_TIB,
        "texts_per_page": TEXTS_PER_PAGE, "english_share": ENGLISH_SHARE, "unique_share": UNIQUE_SHARE,
        "executor_cores": EXECUTOR_CORES, "target_hours": TARGET_HOURS, "count_matches": COUNT_MATCHES}}

    # ---- unit costs (CPU-seconds) ----
    # Marginal costs between the 1M and the 4M pipeline runs where both exist (each run's fixed costs, JIT
    # compilation, first jobs, automaton builds, cancel out); else the larger run's average.
    timed = _get(matching, "stages", "local[2]", "timed", default={}) or {}
    stages = large.get("stages", {})
    matched = large.get("pairs_matched")
    matches = large.get("matches_total")
    # A marginal cost within the runs' noise can come out at or below zero (the count stage is a few seconds in
    # both runs): the larger run's average stands in for it then.
    marginal = {stage: cost for stage, cost in
                (_get(results, "balance", "marginal_cpu_s_per_pair", default={}) or {}).items() if cost and cost > 0}
    match_cpu_per_text = marginal.get("match") or (
        stages["match"]["cpu_seconds"] / large["pairs_in"] if "match" in stages else None)
    entries_per_text = matches / matched if matches else None
    count_cpu_per_match = (marginal["count"] / entries_per_text if marginal.get("count") and entries_per_text else
                           (stages["count"]["cpu_seconds"] / matches if matches and "count" in stages else None))
    balance_cpu_per_pair = marginal.get("balance") or (
        stages["balance"]["cpu_seconds"] / matched if matched and "balance" in stages else None)
    extract_cpu_per_mb = None
    if extract.get("stage_local1_cpu_seconds") and extract.get("warc_uncompressed_mb"):
        extract_cpu_per_mb = extract["stage_local1_cpu_seconds"] / extract["warc_uncompressed_mb"]
    matched_share = matched / large["pairs_in"] if matched else None
    out["unit_costs"] = {
        "extract_cpu_s_per_uncompressed_mb": extract_cpu_per_mb,
        "match_cpu_s_per_text": match_cpu_per_text,
        "match_cpu_s_per_text_1M_run_local2": timed["cpu_seconds"] / timed["rows"] if timed.get("rows") else None,
        "count_cpu_s_per_match": count_cpu_per_match,
        "balance_cpu_s_per_matched_pair": balance_cpu_per_pair,
        "matched_share": matched_share,
        "entries_per_matched_text": entries_per_text,
    }

    # ---- a whole dump ----
    uncompressed_mb = DUMP_UNCOMPRESSED_TIB * 1024 ** 4 / 1e6
    texts = DUMP_PAGES * TEXTS_PER_PAGE * ENGLISH_SHARE * UNIQUE_SHARE
    dump_matched = texts * matched_share if matched_share else None
    dump_matches = dump_matched * entries_per_text if dump_matched and entries_per_text else None
    hours = {
        "extract": uncompressed_mb * extract_cpu_per_mb / 3600 if extract_cpu_per_mb else None,
        "match": texts * match_cpu_per_text / 3600 if match_cpu_per_text else None,
        "count": dump_matches * count_cpu_per_match / 3600 if dump_matches and count_cpu_per_match else None,
        "balance": dump_matched * balance_cpu_per_pair / 3600 if dump_matched and balance_cpu_per_pair else None,
    }
    known = [v for v in hours.values() if v is not None]
    total = sum(known) if known else None
    out["dump"] = {
        "english_texts_to_match": texts, "matched_pairs": dump_matched, "matches": dump_matches,
        "core_hours": hours, "core_hours_total": total,
        "core_hours_missing": [k for k, v in hours.items() if v is None],
        "executors_for_target_hours": (total / TARGET_HOURS / EXECUTOR_CORES) if total else None,
    }

    out["extraction"] = extraction(results)

    # ---- executor memory: one Python worker per core, each with the automaton ----
    workers = timed.get("python_worker_rss_mb") or []
    worker_mb = max(workers) if workers else None
    out["executor_memory"] = {
        "python_worker_rss_mb": worker_mb,
        "automaton_plus_entries_mb": _get(memory, "automaton", "added_to_worker_mb"),
        "python_per_executor_mb": worker_mb * EXECUTOR_CORES if worker_mb else None,
        "memory_overhead_mb": (worker_mb * EXECUTOR_CORES * 1.25 + JVM_OVERHEAD_MB) if worker_mb else None,
    }

    # ---- shuffle volume of the count reduction ----
    metrics = large.get("spark_metrics", {})
    count_metrics, match_metrics = metrics.get("count", {}), metrics.get("match", {})
    if count_metrics.get("shuffle_write_records") and match_metrics.get("output_bytes") and matched:
        bytes_per_record = count_metrics["shuffle_write_bytes"] / count_metrics["shuffle_write_records"]
        matched_bytes_per_pair = match_metrics["output_bytes"] / matched
        entries_total = _get(results, "inputs", "metadata_entries")

        def count_shuffle(n_matches: float) -> dict:
            pairs = n_matches / entries_per_text
            table_bytes = pairs * matched_bytes_per_pair
            tasks = max(1.0, table_bytes / MAX_PARTITION_BYTES)
            # Map-side partial aggregation: each task sends at most one record per distinct entry it saw.
            matches_per_task = n_matches / tasks
            records = tasks * min(entries_total, matches_per_task)
            return {"matched_pairs": pairs, "matched_table_gb": table_bytes / 1e9, "map_tasks": tasks,
                    "shuffle_records_upper_bound": records,
                    "shuffle_gb_upper_bound": records * bytes_per_record / 1e9,
                    "shuffle_gb_without_partial_aggregation": n_matches * bytes_per_record / 1e9,
                    "core_hours": n_matches * count_cpu_per_match / 3600 if count_cpu_per_match else None}

        # The crawl-wide (uuid, text) de-duplication shuffles every kept candidate pair once; a pair's size in
        # the matched table (url, uuid, text, ids; compressed) stands in for its shuffle record.
        out["dump"]["dedup_shuffle_gb_estimate"] = texts / UNIQUE_SHARE * matched_bytes_per_pair / 1e9
        out["count_reduction"] = {
            "measured_shuffle_bytes_per_record": bytes_per_record,
            "measured_matched_bytes_per_pair": matched_bytes_per_pair,
            "measured_shuffle_records": count_metrics["shuffle_write_records"],
            "measured_matches": matches,
            "ten_billion_matches": count_shuffle(COUNT_MATCHES),
            "dump": count_shuffle(dump_matches) if dump_matches else None,
        }
    return out
