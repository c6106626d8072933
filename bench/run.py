"""`make bench`: generate (or reuse) the inputs, run every case, write bench/results.json and bench/results.md.

Every figure that matters is a ratio measured side by side in the same run: the machines are shared and noisy.
BENCH_SCALE=0.05 (for example) shrinks every input for a quick check; its results go to bench/work/, not over the
committed full-scale results. BENCH_CASES=matching,memory,balance,extract,remote,peers,dedup,worldwide,curate (any
subset) reruns only those cases and keeps the others' last figures.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import data  # noqa: E402
import harness  # noqa: E402
import projection  # noqa: E402

STARTED = time.monotonic()
CASES = ("matching", "memory", "balance", "extract", "remote", "peers", "dedup", "worldwide", "curate")
# The cases that read the generated metadata and pools (bench/data.py); extract and remote build their own WARC.
CASES_ON_POOLS = ("matching", "memory", "balance", "curate")


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.0f} s] {message}", flush=True)


def guarded(name: str, body):
    started = time.monotonic()
    try:
        result = body()
    except Exception as e:  # noqa: BLE001 - one failing case must not hide the others' figures
        traceback.print_exc()
        result = {"error": f"{type(e).__name__}: {e}"}
    result["case_seconds"] = round(time.monotonic() - started, 1)
    log(f"{name} done in {result['case_seconds']:.0f} s")
    return result


def extraction_case(work_dir: Path) -> dict:
    if not (BENCH / "bench_extract.py").exists():
        return {"skipped": "bench/bench_extract.py is absent (end-to-end from WARC not benchmarked)"}
    bench_extract = importlib.import_module("bench_extract")
    return bench_extract.run(work_dir)


def remote_case(work_dir: Path) -> dict:
    bench_remote = importlib.import_module("bench_remote")
    return bench_remote.run(work_dir)


def peers_case(work_dir: Path) -> dict:
    bench_peers = importlib.import_module("bench_peers")
    return bench_peers.run(work_dir, log)


def goals(results: dict) -> list[dict]:
    """Each goal of the issue with its measured value and whether it is met."""
    rows = []
    matching = results.get("matching", {})
    memory = results.get("memory", {})

    def add(name, target, value, met, note=""):
        rows.append({"goal": name, "target": target, "measured": value, "met": met, "note": note})

    if "stage_per_core_vs_bare_local2" in matching:
        one, two = matching["stage_per_core_vs_bare_local1"], matching["stage_per_core_vs_bare_local2"]
        add("match stage per core / bare loop, local[2]", ">= 0.8", two, two >= 0.8,
            f"texts per CPU-second of all processes: {matching.get('cpu_efficiency_vs_bare_local2')} of the bare loop's")
        add("match stage per core / bare loop, local[1]", ">= 0.8", one, one >= 0.8,
            "local[1] runs one Python worker, but the JVM's reading and writing use the second core")
        ratio = matching["local2_vs_local1"]
        add("match stage local[2] / local[1]", ">= 1.7", ratio, ratio >= 1.7,
            "needs two idle cores: see the load average above")
    automaton = memory.get("automaton", {})
    if "added_to_worker_mb" in automaton:
        add(f"RSS added to a Python worker by the {automaton['entries']:,}-entry automaton (+ its entry list)",
            "<= 400 MB", automaton["added_to_worker_mb"], automaton["added_to_worker_mb"] <= 400)
        # CPU time: on a shared machine the wall time mostly measures the other processes' load.
        build = automaton.get("build_cpu_seconds", automaton["build_seconds"])
        add("automaton build time (CPU seconds)", "<= 5 s", build, build <= 5, f"wall {automaton['build_seconds']} s")
    driver = memory.get("driver")
    if driver:
        add(f"driver memory, {driver['pairs'][1]:,} vs {driver['pairs'][0]:,} pairs (retained heap + Python RSS)",
            "does not grow (<= 1.2x)", driver["growth_ratio"], driver["growth_ratio"] <= 1.2,
            f"{driver['pairs'][0]:,} pairs: {driver['total_small_mb']} MB; {driver['pairs'][1]:,}: "
            f"{driver['total_large_mb']} MB")
    peers = results.get("peers", {})
    if peers.get("warc_now_vs_today"):
        ratio = peers["warc_now_vs_today"]
        add(f"WARC path MB/s per core / today's ({peers['baseline_commit']}), same file, same pairs", ">= 2",
            ratio, ratio >= 2 and peers["warc_identical_pairs"],
            f"CPU seconds of file_pairs, best of {peers['runs_per_side']}; pairs identical: "
            f"{'yes' if peers['warc_identical_pairs'] else 'NO'}; on one copy of the excerpts (no repeats): "
            f"{peers.get('one_copy_warc_now_vs_today')}")
    if peers.get("wat_vs_cc2dataset_pairs_per_cpu_s"):
        ratio = peers["wat_vs_cc2dataset_pairs_per_cpu_s"]
        add("WAT path pairs per core-second / cc2dataset's, same WAT file", ">= 2", ratio, ratio >= 2,
            f"CPU per file: cc2dataset / ours {peers['wat_vs_cc2dataset_cpu']}; on one copy of the excerpts, read "
            f"cold (a crawl): {peers.get('one_copy_wat_vs_cc2dataset_pairs_per_cpu_s')} (CPU "
            f"{peers.get('one_copy_wat_vs_cc2dataset_cpu')}), "
            f"{peers.get('one_copy_wat_no_language_id_vs_cc2dataset_pairs_per_cpu_s')} with language ID left out")
    curate = results.get("curate", {}).get("marginal", {})
    for master, cores in (("local[1]", 1), ("local[2]", 2)):
        m = curate.get(master, {})
        if "marginal_per_core_vs_bare" in m:
            add(f"whole `curate` per core / bare loop, marginal 300k -> 900k texts, {master}", ">= 0.5",
                m["marginal_per_core_vs_bare"], m["marginal_per_core_vs_bare"] >= 0.5,
                f"CPU of every process per text: {m['marginal_cpu_efficiency_vs_bare']} of the bare loop's")
    if "local2_vs_local1_marginal" in results.get("curate", {}):
        ratio = results["curate"]["local2_vs_local1_marginal"]
        add("whole `curate` local[2] / local[1] (marginal rate)", ">= 1.7", ratio, ratio >= 1.7,
            "best of interleaved runs; needs two idle cores: see the load averages in section 9")
    remote = results.get("remote", {})
    if "streaming_cpu_vs_local" in remote:
        ratio = remote["streaming_cpu_vs_local"]
        add("remote read CPU / local read CPU", "<= 1.2", ratio, ratio <= 1.2,
            f"one {remote['warc_uncompressed_mb']} MB WARC streamed over HTTP in "
            f"{remote['block_bytes'] / 2**20:g} MiB range requests; spooled to a local file first: "
            f"{remote['spooled_cpu_vs_local']}")
    return rows


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _num(value, unit="", digits=3) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1e9:
        return f"{value / 1e9:,.{digits}g}B{unit}"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.{digits}g}M{unit}"
    return f"{value:,.{digits}g}{unit}"


def projection_markdown(p: dict) -> list[str]:
    if not p or "error" in p:
        return ["", f"## Projection", "", f"error: {p.get('error') if p else 'none'}"]
    a, u, d, m = p["assumptions"], p["unit_costs"], p["dump"], p["executor_memory"]
    lines = ["", "## Projection (bench/projection.py; read docs/scaling.md)", "",
             f"Assumed dump: {a['dump_warc_files']:,} WARC files, {_num(a['dump_pages'])} pages, "
             f"{a['dump_uncompressed_tib']} TiB uncompressed; {a['texts_per_page']} img texts per page, "
             f"{a['english_share']:.0%} English, {a['unique_share']:.0%} left after (uuid, text) de-duplication.", "",
             "| unit cost (CPU-seconds of all processes) | value |", "|---|---|"]
    for key, value in u.items():
        lines.append(f"| {key} | {_num(value)} |")
    lines += ["", "| whole dump | value |", "|---|---|",
              f"| English texts to match | {_num(d['english_texts_to_match'])} |",
              f"| matched pairs / matches | {_num(d['matched_pairs'])} / {_num(d['matches'])} |"]
    for stage, hours in d["core_hours"].items():
        lines.append(f"| core-hours, {stage} | {_num(hours)} |")
    lines += [f"| core-hours, total (measured stages) | {_num(d['core_hours_total'])} |",
              f"| executors of {a['executor_cores']} cores to finish in {a['target_hours']} h | "
              f"{_num(d['executors_for_target_hours'])} |",
              f"| (uuid, text) de-duplication shuffle, GB | {_num(d.get('dedup_shuffle_gb_estimate'))} |",
              f"| Python worker RSS with the automaton, MB | {_num(m['python_worker_rss_mb'])} |",
              f"| spark.executor.memoryOverhead for {a['executor_cores']} workers, MB | "
              f"{_num(m['memory_overhead_mb'])} |"]
    lines += extraction_projection_markdown(p.get("extraction"))
    c = p.get("count_reduction")
    if c:
        ten = c["ten_billion_matches"]
        lines += ["", f"Count reduction of {_num(a['count_matches'])} matches: {_num(ten['matched_pairs'])} matched "
                      f"pairs, {_num(ten['matched_table_gb'])} GB matched table, {_num(ten['map_tasks'])} map tasks "
                      f"of 128 MiB; shuffle at most {_num(ten['shuffle_gb_upper_bound'])} GB with map-side partial "
                      f"aggregation ({_num(ten['shuffle_gb_without_partial_aggregation'])} GB without); "
                      f"{_num(ten['core_hours'])} core-hours. Measured: {c['measured_shuffle_records']:,} shuffle "
                      f"records for {c['measured_matches']:,} matches, "
                      f"{c['measured_shuffle_bytes_per_record']:.1f} bytes per record."]
    return lines


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results", "",
        f"Measured {results['finished_at']} by `make bench` (scale {results['scale']:g}, "
        f"{results['total_seconds']:.0f} s in all).", "",
        "| machine | |", "|---|---|",
        f"| nproc (usable) | {m['nproc']} ({m['cpus_usable']}) |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| CPU model | {m['cpu_model']} |",
        f"| load average at start / end | {m['load_average']} / {results['load_average_end']} |",
        f"| versions | Python {m['python']}, {m['java']}, PySpark {m['pyspark']}, pyarrow {m['pyarrow']}, "
        f"numpy {m['numpy']}, pyahocorasick {m['pyahocorasick']}, metaclip-spark {m['metaclip_spark']} "
        f"(commit {m['git_commit']}) |",
        f"| OS | {m['os']} |", "",
    ]
    for case, rerun in sorted(results.get("reruns", {}).items()):
        lines.append(f"Case {case} rerun alone (BENCH_CASES) {rerun['finished_at']} on {rerun['machine']}, commit "
                     f"{rerun['git_commit']}, load average at start / end {rerun['load_average'][0]} / "
                     f"{rerun['load_average'][1]}.")
    if results.get("reruns"):
        lines.append("")
    inputs = results["inputs"]
    lines += [
        "Inputs (bench/data.py, fixed seeds): "
        f"{inputs['metadata_entries']:,} metadata entries ({inputs['metadata_parts']['default']:,} from the embedded "
        f"default list, {inputs['metadata_parts']['bigrams']:,} bigrams, {inputs['metadata_parts']['titles']:,} "
        f"titles); {inputs['pool_rows']:,} and {inputs['large_pool_rows']:,} alt texts of "
        f"{inputs['text_length']['min']}-{inputs['text_length']['max']} characters "
        f"(mean {inputs['text_length']['mean']}).", "",
        "## Goals", "", "| goal | target | measured | met | note |", "|---|---|---|---|---|",
    ]
    for row in results["goals"]:
        lines.append(f"| {row['goal']} | {row['target']} | {_fmt(row['measured'])} | "
                     f"{'yes' if row['met'] else '**no**'} | {row['note']} |")
    mt = results.get("matching", {})
    lines += ["", "## 1. Matching", ""]
    if "stages" in mt:
        lines += ["| run | texts | seconds | texts/s | CPU cores busy | notes |", "|---|---|---|---|---|---|"]
        for label in ("bare_before", "bare_after"):
            b = mt[label]
            lines.append(f"| bare loop ({label.split('_')[1]} the Spark runs) | {b['texts']:,} | {b['seconds']} | "
                         f"{b['texts_per_s']:,} | 1 | automaton built in {b['build_seconds']} s; "
                         f"{b['matched_texts']:,} texts matched, {b['mean_entries_per_matched_text']} entries each |")
        for master, s in mt["stages"].items():
            if "timed" not in s:
                lines.append(f"| match stage {master} | | | | | error: {s.get('error')} |")
                continue
            w, t = s["warmup"], s["timed"]
            lines.append(f"| match stage {master}, cold start (2,000 rows) | {w['rows']:,} | {w['seconds']} | | "
                         f"{w['cores_busy']} | session start {s['session_seconds']} s (not included) |")
            if "first" in s:
                f = s["first"]
                lines.append(f"| match stage {master}, first run (JIT warming) | {f['rows']:,} | {f['seconds']} | "
                             f"{f['texts_per_s']:,} | {f['cores_busy']} | CPU s: JVM {f['jvm_cpu_seconds']}, Python "
                             f"{f['python_cpu_seconds']} |")
            lines.append(f"| match stage {master}, timed | {t['rows']:,} | {t['seconds']} | {t['texts_per_s']:,} | "
                         f"{t['cores_busy']} | CPU s: JVM {t['jvm_cpu_seconds']}, Python {t['python_cpu_seconds']}; "
                         f"Python workers' RSS {t['python_worker_rss_mb']} MB; best of runs {s.get('rounds')} s |")
        r = mt["reference"]
        lines.append(f"| naive reference (every entry, `in`) | {r['texts']} | {r['seconds']} | {r['texts_per_s']} | 1 | "
                     f"bare loop is {mt['reference_factor']:,}x faster; automaton agrees on "
                     f"{r['agreeing_texts']}/{r['texts']} |")
        if "with_fixed_costs_per_core_vs_bare_local1" in mt:
            lines += ["", f"CPU time of every process (JVM + Python workers) instead of wall time, which other load on "
                          f"the machine disturbs less: bare {mt['bare_texts_per_cpu_s']:,} texts per CPU-second, stage "
                          f"{mt['stage_texts_per_cpu_s_local1']:,} (local[1]) and {mt['stage_texts_per_cpu_s_local2']:,}"
                          f" (local[2]): {mt['cpu_efficiency_vs_bare_local1']} and "
                          f"{mt['cpu_efficiency_vs_bare_local2']} of the bare loop's efficiency."]
            lines += ["", f"With the cold-start run's fixed costs added to the timed run: stage per core / bare "
                          f"{mt['with_fixed_costs_per_core_vs_bare_local1']} (local[1]), local[2] / local[1] "
                          f"{mt['with_fixed_costs_local2_vs_local1']}."]
    else:
        lines.append(f"error: {mt.get('error')}")
    mem = results.get("memory", {})
    lines += ["", "## 2. Memory", ""]
    a = mem.get("automaton", {})
    if "automaton_mb" in a:
        lines += [f"Fresh process: entry list {a['entries_list_mb']} MB, automaton {a['automaton_mb']} MB, together "
                  f"{a['added_to_worker_mb']} MB added (peak during the build +{a['peak_added_mb']} MB), built in "
                  f"{a['build_seconds']} s ({a.get('build_cpu_seconds')} CPU seconds).", ""]
    lines += ["| pairs curated (local[2]) | driver heap retained after GC, MB (start/match/count/balance) | "
              "heap peak sampled, MB | driver Python RSS peak, MB | JVM RSS, MB | Python workers' RSS, MB |",
              "|---|---|---|---|---|---|"]
    for pairs, run in mem.get("curate", {}).items():
        if "stages" not in run:
            lines.append(f"| {int(pairs):,} | error: {run.get('error')} | | | | |")
            continue
        r = run["driver_heap_retained_after_gc_mb"]
        lines.append(f"| {run['pairs_in']:,} | {r['start']} / {r['match']} / {r['count']} / {r['balance']} | "
                     f"{run['driver_heap_peak_sampled_mb']} | {run['driver_python_rss_peak_mb']} | "
                     f"{run['driver_jvm_rss_mb']} | {run['python_worker_rss_mb']} |")
    bal = results.get("balance", {})
    lines += ["", "## 3. Counting and balancing (local[2], per core = rate / 2)", "",
              "| stage | pairs (small / large pool) | seconds | pairs/s per core | marginal pairs/s per core "
              "(4M - 1M) | CPU cores busy |", "|---|---|---|---|---|---|"]
    if "small" in bal and "match" in bal.get("small", {}) and "match" in bal.get("large", {}):
        for stage in ("match", "count", "balance"):
            s, lg = bal["small"][stage], bal["large"][stage]
            lines.append(f"| {stage} | {s['pairs']:,} / {lg['pairs']:,} | {s['seconds']} / {lg['seconds']} | "
                         f"{s['pairs_per_s_per_core']:,} / {lg['pairs_per_s_per_core']:,} | "
                         f"{_fmt(bal['marginal_pairs_per_s_per_core'][stage])} | "
                         f"{s['cores_busy']} / {lg['cores_busy']} |")
        if "bare" in bal:
            b = bal["bare"]
            lines += ["", f"Bare, one process, no Spark, over {b['pairs']:,} matched pairs: counting (np.bincount) "
                          f"{b['count_pairs_per_s']:,} pairs/s, balancing (balancing.decide in 10k batches) "
                          f"{b['balance_pairs_per_s']:,} pairs/s. Stage per core / bare: count "
                          f"{bal['count_stage_per_core_vs_bare']}, balance {bal['balance_stage_per_core_vs_bare']}."]
    else:
        lines.append(f"| error: {bal.get('error') or bal.get('small')} | | | | | |")
    ext = results.get("extract", {"skipped": "not run"})
    lines += ["", "## 4. End to end from WARC", ""]
    if "skipped" in ext or "error" in ext:
        lines.append(ext.get("skipped") or f"error: {ext['error']}")
    else:
        lines += ["| figure | value |", "|---|---|"]
        for key, value in ext.items():
            if not isinstance(value, (dict, list)):
                lines.append(f"| {key} | {_fmt(value)} |")
    lines += remote_markdown(results.get("remote", {"skipped": "not run"}))
    lines += peers_markdown(results.get("peers", {"skipped": "not run"}))
    lines += importlib.import_module("bench_dedup").markdown(results.get("dedup", {"skipped": "not run"}))
    import bench_curate
    import bench_worldwide

    lines += bench_worldwide.markdown(results.get("worldwide", {"skipped": "not run"}))
    lines += bench_curate.markdown(results.get("curate", {"skipped": "not run"}))
    lines += importlib.import_module("side_by_side").markdown()  # bench/side_by_side.json: its own command
    lines += projection_markdown(results.get("projection", {}))
    if results.get("profile_notes"):
        lines += ["", "## Where the time goes", "", results["profile_notes"]]
    return "\n".join(lines) + "\n"


def remote_markdown(r: dict) -> list[str]:
    lines = ["", "## 5. Remote inputs (bench/bench_remote.py)", ""]
    if "sides" not in r:
        return lines + [r.get("skipped") or f"error: {r.get('error')}"]
    lines += [f"One WARC file ({r['warc_uncompressed_mb']} MB uncompressed, {r['warc_compressed_mb']} MB gzipped) "
              f"through extraction.file_pairs (what a Spark task runs per file, no Spark), read from disk and over "
              f"HTTP from tests/servers.py's server on 127.0.0.1 in another process (its CPU is not counted). CPU "
              f"seconds of the reading process, fsspec's IO thread included; best of {r['runs_per_side']} "
              f"interleaved runs per side. Pairs: {r['pairs']:,}, identical on every side and run: "
              f"{_fmt(r['identical_pairs'])}.", "",
              "| read | CPU seconds (all runs) | wall seconds | MB/s | CPU / local | HTTP GETs |",
              "|---|---|---|---|---|---|"]
    labels = {"local": "local file",
              "streaming": f"HTTP, streamed (shipped: {r['block_bytes'] / 2**20:g} MiB blocks)",
              "streaming_32mib": "HTTP, streamed, 32 MiB blocks",
              "spooled": "HTTP, spooled to a temporary file, then local"}
    for side, s in r["sides"].items():
        cpu = f"{s['cpu_seconds']} ({s['all_cpu_seconds']})"
        if "download_cpu_seconds" in s:
            cpu += f", download {s['download_cpu_seconds']}"
        lines.append(f"| {labels.get(side, side)} | {cpu} | {s['seconds']} | {s['mb_per_s']} | "
                     f"{s['cpu_vs_local']} | {s['http_gets']} |")
    return lines


PEER_LABELS = {
    "inflate zlib": "inflate alone, zlib", "inflate isal": "inflate alone, ISA-L (isal)",
    "inflate zlib-ng": "inflate alone, zlib-ng", "records": "bare record loop (FastWARC, whole stream)",
    "members": "record loop member by member (our reader, no page work)", "today": "our path, today",
    "now": "our path, now", "cc2dataset": "cc2dataset (PyPI 1.5.0, process_wat)",
    "now, no language ID": "our path, now, language ID left out (every text labelled en)",
}


def _share(value) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "not measured"


def peers_markdown(r: dict) -> list[str]:
    lines = ["", "## 6. Extraction side by side: WARC and WAT paths, today's code, cc2dataset, the floor "
                 "(bench/bench_peers.py)", ""]
    if "sides" not in r:
        return lines + [r.get("skipped") or f"error: {r.get('error')}"]
    i = r["inputs"]
    lines += [f"Same pages as WARC ({i['warc_uncompressed_mb']} MB uncompressed, {i['warc_compressed_mb']} MB gzipped: "
              f"case 4's file) and as WAT ({i['wat_uncompressed_mb']} MB, {i['wat_compressed_mb']} MB gzipped, written "
              f"from it by tests/wat_writer.py in Common Crawl's WAT layout: {i['wat_writer']['html_metadata']:,} "
              f"HTML-Metadata records, {i['wat_writer']['img_links']:,} IMG@/src links); the one-copy files hold the "
              f"real excerpts once ({i['one_copy_warc_uncompressed_mb']} MB WARC, {i['one_copy_wat_uncompressed_mb']} "
              f"MB WAT), where the 100 MB file repeats them 44 times (a repeated alt text is labelled once: caches "
              f"gain more there than on a crawl). A run of a one-copy side reads its file "
              f"{i.get('one_copy_cold_copies', 1)} times, its caches forgotten before each read (a crawl's cost: "
              f"pages do not repeat; its CPU, MB and pairs are the sums of the reads). Each side is a process of bench/peer_side.py that forgets its caches "
              f"before each run; CPU seconds of that process (the pairs it yields are hashed after the clock stops), best "
              f"of {r['runs_per_side']} runs interleaved with the "
              f"other sides'; every language kept (language ID still runs on every text). Today's code is "
              f"{r['baseline_commit']}. Load average at start / end {r['load_average_start']} / "
              f"{r['load_average_end']} (2 CPUs shared with other sessions).", "",
              "| file | side | CPU s (all runs) | MB/s per core | pairs | pairs per CPU-s | share of the floor |",
              "|---|---|---|---|---|---|---|"]
    for name, s in r["sides"].items():
        file_key = s["file"]
        kind = name[len(file_key) + 1:]
        if "cpu_seconds" not in s:
            lines.append(f"| {file_key} | {PEER_LABELS.get(kind, kind)} | error: {s.get('error')} | | | | |")
            continue
        pairs = f"{s['pairs']:,}" if s.get("pairs") is not None else ""
        per_s = f"{s['pairs_per_cpu_s']:,}" if s.get("pairs_per_cpu_s") else ""
        share = s.get("floor_share", "")
        lines.append(f"| {file_key} | {PEER_LABELS.get(kind, kind)} | {s['cpu_seconds']:.3f} "
                     f"({', '.join(f'{x:.3f}' for x in s['all_cpu_seconds'])}) | {s['mb_per_cpu_s']} | {pairs} | "
                     f"{per_s} | {share} |")
    lines += ["", f"Ratios: WARC now / today {r['warc_now_vs_today']} (pairs identical: "
                  f"{_fmt(r['warc_identical_pairs'])}; one copy {r['one_copy_warc_now_vs_today']}, identical: "
                  f"{_fmt(r['one_copy_warc_identical_pairs'])}); WAT now / today {r['wat_now_vs_today']} (identical: "
                  f"{_fmt(r['wat_identical_pairs'])}); WAT now / cc2dataset: {r['wat_vs_cc2dataset_pairs_per_cpu_s']} "
                  f"in pairs per CPU-second, {r['wat_vs_cc2dataset_cpu']} in CPU per file (one copy: "
                  f"{r['one_copy_wat_vs_cc2dataset_pairs_per_cpu_s']} and {r['one_copy_wat_vs_cc2dataset_cpu']}); "
                  f"our WAT path reads the same pages in 1/{r['wat_vs_warc_cpu']} of our WARC path's CPU. On one copy "
                  f"(a crawl), language ID is {_share(r.get('one_copy_wat_language_id_share'))} of our WAT path's CPU and "
                  f"{_share(r.get('one_copy_warc_language_id_share'))} of our WARC path's; without it, our WAT path "
                  f"would give {r.get('one_copy_wat_no_language_id_vs_cc2dataset_pairs_per_cpu_s')}x cc2dataset's "
                  f"pairs per CPU-second. The share of "
                  f"the floor is the fastest inflate of that file divided by the side's CPU (1 = as cheap as inflating "
                  f"the file)."]
    return lines


def extraction_projection_markdown(e: dict | None) -> list[str]:
    if not e:
        return []
    lines = ["", f"Extraction per dump, each side of case 6 scaled by the dump's size ({e['dump_warc_tib']} TiB of WARC, "
                 f"{e['dump_wat_tib']:.0f} TiB of WAT content, uncompressed) at ${e['usd_per_core_hour']} per core-hour "
                 f"(spot; docs/scaling.md):", "",
             "| side | reads | CPU-s per MB | core-hours per dump | dollars per dump |", "|---|---|---|---|---|"]
    for row in e["rows"]:
        per_mb = f"{row['cpu_s_per_mb']:.2e}" if row["cpu_s_per_mb"] else "n/a"
        lines.append(f"| {row['side']} | {row['reads']} | {per_mb} | {row['core_hours']:,.0f} | {row['usd']:,.0f} |")
    return lines


def finish(results: dict, target: Path) -> None:
    """Goals, projections and the Markdown table from the measured figures; writes results.json and results.md."""
    import bench_matching

    matching = results.get("matching", {})
    if all(k in matching for k in ("bare_before", "bare_after", "reference", "stages")):
        case_seconds = matching.get("case_seconds")
        matching = bench_matching.summarise(matching["bare_before"], matching["bare_after"], matching["reference"],
                                            matching["stages"])
        results["matching"] = dict(matching, case_seconds=case_seconds)
    curate_runs = results.get("memory", {}).get("curate")
    if curate_runs:
        import bench_balance

        previous = results.get("balance", {})
        balance = bench_balance.run(Path(results["inputs"]["directory"]), results["inputs"], curate_runs,
                                    lambda m: None)
        for key in ("bare", "count_stage_per_core_vs_bare", "balance_stage_per_core_vs_bare", "case_seconds"):
            if key not in balance and key in previous:
                balance[key] = previous[key]
        results["balance"] = balance
    results["goals"] = goals(results)
    try:
        results["projection"] = projection.project(results)
    except Exception as e:  # noqa: BLE001 - a missing figure must not lose the measured ones
        traceback.print_exc()
        results["projection"] = {"error": f"{type(e).__name__}: {e}"}
    notes = BENCH / "profile_notes.md"
    results["profile_notes"] = notes.read_text().strip() if notes.exists() and results["scale"] == 1 else ""
    (target / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown(results)
    (target / "results.md").write_text(table)
    print(table)
    log(f"wrote {target / 'results.json'} and {target / 'results.md'}")


def main() -> int:
    factor = data.scale()
    if "--render" in sys.argv[1:]:
        # Only redo the tables (goals, projections, Markdown) from the last results.json of this scale.
        target = BENCH if factor == 1 else data.work_dir(factor)
        finish(json.loads((target / "results.json").read_text()), target)
        return 0
    work_dir = data.work_dir(factor)
    work_dir.mkdir(parents=True, exist_ok=True)
    machine = harness.machine()
    log(f"machine: {machine['nproc']} CPUs, {machine['memory_gib']} GiB, {machine['cpu_model']}; scale {factor:g}")
    target = BENCH if factor == 1 else work_dir
    # BENCH_CASES=matching,memory (for example) reruns only those cases and keeps the others' last figures.
    chosen = [c.strip() for c in os.environ.get("BENCH_CASES", "").split(",") if c.strip()]
    unknown = set(chosen) - set(CASES)
    if unknown:
        raise SystemExit(f"BENCH_CASES: unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    previous = {}
    if chosen and (target / "results.json").exists():
        previous = json.loads((target / "results.json").read_text())
    run_all = not chosen
    if run_all or set(chosen) & set(CASES_ON_POOLS) or "inputs" not in previous:
        manifest = data.ensure_inputs(factor, log)
    else:
        manifest = previous["inputs"]  # not needed by the chosen cases: generating 4M texts would only cost time
    import bench_balance
    import bench_matching
    import bench_memory

    results = {"scale": factor, "machine": machine, "inputs": manifest}
    results.update({c: previous[c] for c in CASES if c in previous and c not in chosen})
    if run_all or "matching" in chosen:
        results["matching"] = guarded("matching", lambda: bench_matching.run(work_dir, manifest, log))
    curate_runs = {}
    if run_all or "memory" in chosen or "balance" in chosen:
        results["memory"] = guarded("memory", lambda: bench_memory.run(
            work_dir, manifest, curate_runs.setdefault("runs", bench_memory.curate_pools(work_dir, manifest, log)),
            log))
        results["balance"] = guarded("counting and balancing", lambda: bench_balance.run(
            work_dir, manifest, curate_runs.get("runs", {}), log))
    if run_all or "extract" in chosen:
        log("end to end from WARC")
        results["extract"] = guarded("end to end", lambda: extraction_case(work_dir))
    if run_all or "remote" in chosen:
        log("remote inputs: one WARC over HTTP and from disk")
        results["remote"] = guarded("remote inputs", lambda: remote_case(work_dir))
    if run_all or "peers" in chosen:
        log("extraction side by side: WARC and WAT paths, today's code, cc2dataset, the floor")
        results["peers"] = guarded("extraction side by side", lambda: peers_case(work_dir))
    if run_all or "dedup" in chosen:
        log("one pool across dumps: a new crawl against the pool's keys")
        results["dedup"] = guarded("dedup", lambda: importlib.import_module("bench_dedup").run(work_dir, log))
    if run_all or "worldwide" in chosen:
        import bench_worldwide

        results["worldwide"] = guarded("worldwide", lambda: bench_worldwide.run(work_dir, factor, log))
    if run_all or "curate" in chosen:
        import bench_curate

        results["curate"] = guarded("curate", lambda: bench_curate.run(work_dir, manifest, factor, log))
    for name in ("curate-pool", "curate-large_pool"):
        shutil.rmtree(work_dir / name, ignore_errors=True)
    this_run = {"load_average_end": [round(x, 2) for x in os.getloadavg()],
                "total_seconds": round(time.monotonic() - STARTED, 1),
                "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if chosen and set(chosen) != set(CASES) and "finished_at" in previous:
        # The header keeps describing the run that measured the kept cases; each rerun case says when, where and
        # under what load it was measured.
        for key in ("machine", "load_average_end", "total_seconds", "finished_at"):
            results[key] = previous[key]
        results["reruns"] = {c: r for c, r in previous.get("reruns", {}).items() if c not in chosen}
        rerun = {"finished_at": this_run["finished_at"], "seconds": this_run["total_seconds"],
                 "git_commit": machine["git_commit"], "machine": f"{machine['nproc']} CPUs, {machine['cpu_model']}",
                 "load_average": [machine["load_average"], this_run["load_average_end"]]}
        results["reruns"].update({c: rerun for c in chosen})
    else:
        results.update(this_run)
    finish(results, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
