"""Case 7, one pool across dumps (metaclip_spark/ingestion/pair_keys.py): the size of the pair key table and what checking a
new crawl against it costs, per billion pairs, projected to 10 dumps.

One child process in local[2]. Input: a new crawl's unit pairs (NEW_PAIRS rows with the extract stage's columns;
DUPLICATES more rows repeat pairs of the crawl itself) and the keys of the pairs an earlier crawl brought to the
pool, of which OVERLAP of the new crawl's pairs are copies. Pairs are synthetic (a uuid for every two texts, texts of
26-75 characters), keys are computed from them exactly as ingestion/pair_keys.py does, so copies are found as in a real run.

The new crawl's rebuild of pairs/ is run side by side, ROUNDS times each, interleaved, after a warm-up run that is
not counted; the lowest figures are kept:
- per crawl: its (uuid, text) de-duplication alone, what a rebuild cost before pool mode (`--dedup crawl`);
- pool, no keys: CrawlOwnership.owned for the first crawl of a root (keys computed, de-duplication in key buckets);
- pool, K and 4K keys: the same with the anti-join against K (the new crawl's size) and 4K bucketed keys;
- pool, 4K keys read as plain Parquet: the same keys without their bucketing (Spark shuffles them);
- key write: CrawlOwnership.commit, the crawl's own keys written in buckets.
Costs are CPU-seconds of every process (JVM + Python workers), as in the other cases. A line through the pool runs
(0, K, 4K keys) gives the cost per key already in the pool (its slope) and, against the per-crawl rebuild, the cost
per row of the new crawl (its intercept, less the per-crawl rebuild).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402

NEW_PAIRS = 2_000_000
DUPLICATES = 0.1     # rows repeating a pair of the crawl itself (another file of the same dump)
OVERLAP = 0.3        # share of the new crawl's pairs an earlier crawl already brought
POOL_FACTORS = (0, 1, 4)  # pool keys, in multiples of the new crawl's pairs (0: the first crawl of a root)
BUCKETS = 8          # the local profile's root.pair_key_buckets: one bucket per reduce task of local[2]
ROUNDS = 3           # each variant runs this many times, interleaved; the lowest CPU and wall time are kept
NEW, EARLIER = "CC-MAIN-NEW", "CC-MAIN-EARLIER"

# Projection (read docs/scaling.md): how many dumps, and the share of a dump's unique pairs that an earlier dump
# already brought. An assumption: replace it with pairs_already_in_pool / (pairs + pairs_already_in_pool) of a real
# run's crawl states.
DUMPS = 10
RECRAWL_SHARE = 0.3


def _pairs(spark, first: int, count: int):
    """Synthetic pairs number `first`..`first + count - 1`, the columns of a unit's pairs table."""
    from pyspark.sql import functions as F

    ids = spark.range(first, first + count)
    image = F.concat(F.lit("https://img.example.org/"), (F.col("id") / 2).cast("long").cast("string"))
    text = F.concat(F.lit("photo "), F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 20 + F.col("id") % 50))
    return ids.select(
        F.substring(F.sha2(image, 224), 1, 24).alias("uuid"), image.alias("url"), text.alias("text"),
        F.lit("alt").alias("text_source"),
        F.concat(F.lit("https://site"), (F.col("id") % 1000).cast("string"), F.lit(".example.org/page/"),
                 (F.col("id") / 8).cast("long").cast("string")).alias("page_url"),
        F.lit("en").alias("lang"), F.lit(0.9).alias("lang_score"), F.lit(NEW).alias("crawl"),
        F.concat(F.lit("file-"), (F.col("id") % 64).cast("string")).alias("source_file"), F.col("id").alias("_seq"))


def _inputs(spark, directory: Path, new_pairs: int) -> dict:
    from pyspark.sql import functions as F

    from metaclip_spark.ingestion import pair_keys
    from metaclip_spark.root.layout import OutputRoot

    unit = str(directory / "unit-pairs")
    copies = int(new_pairs * DUPLICATES)
    repeated = _pairs(spark, 0, copies).withColumn("source_file", F.lit("file-repeat")) \
        .withColumn("_seq", F.col("_seq") + new_pairs)
    _pairs(spark, 0, new_pairs).unionByName(repeated).write.mode("overwrite").parquet(unit)
    pools = {}
    for factor in POOL_FACTORS:
        root = OutputRoot(spark, str(directory / f"pool-x{factor}"))
        table = pair_keys.KeyTable(spark, root, BUCKETS)
        if factor:
            earlier = _pairs(spark, int(new_pairs * (1 - OVERLAP)), new_pairs * factor)
            table.switch(EARLIER, table.stage(EARLIER, earlier.select(*pair_keys.key_columns("text"))))
        files = list(Path(table.path(EARLIER)).glob("*.parquet"))
        pools[factor] = {"root": root, "keys": new_pairs * factor, "key_files": len(files),
                         "key_bytes": sum(f.stat().st_size for f in files)}
    return {"unit": unit, "pools": pools}


def _plain_owned(spark, rows, keys_directory: str, buckets: int):
    """CrawlOwnership.owned with the pool's keys read as plain Parquet (no bucketing): for comparison only."""
    from metaclip_spark.ingestion import pair_keys
    from metaclip_spark.ingestion.dedup import first_of_duplicates

    keyed = rows.select("*", *pair_keys.key_columns("text")).repartition(buckets, *pair_keys.KEY_COLUMNS)
    unique = first_of_duplicates(keyed, "text", pair_keys.KEY_COLUMNS)
    others = spark.read.parquet(keys_directory).select(*pair_keys.KEY_COLUMNS)
    return unique.join(others, list(pair_keys.KEY_COLUMNS), "left_anti").drop(*pair_keys.KEY_COLUMNS)


def measure_in_child(directory: Path, new_pairs: int) -> dict:
    from metaclip_spark.ingestion import pair_keys
    from metaclip_spark.progress import stage
    from metaclip_spark.root.tables import read_table, write_parquet_atomically

    # The UI's REST API (on 127.0.0.1) is where the shuffle volumes are read from. No broadcast joins: a dump's
    # keys are far beyond any broadcast threshold, so the sort-merge join is the plan to measure.
    _, spark = harness.bench_session("local[2]", "bench-dedup", {
        "spark.ui.enabled": "true", "spark.sql.shuffle.partitions": str(BUCKETS),
        "spark.sql.autoBroadcastJoinThreshold": "-1"})
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    try:
        started = time.monotonic()
        inputs = _inputs(spark, directory, new_pairs)
        generate_seconds = time.monotonic() - started
        rows = read_table(spark, inputs["unit"])
        dedup = pair_keys.Dedup(pair_keys.MODE_POOL, BUCKETS)
        runs: dict = {}

        def timed(name: str, body) -> None:
            """The run's CPU and wall time; run again, the lower of each is kept (a shared machine only adds)."""
            meter = harness.CpuMeter(spark).start()
            begun = time.monotonic()
            with stage(spark, name, "bench"):
                body()
            measured = {"seconds": round(time.monotonic() - begun, 2), **meter.stop()}
            if name in runs:
                measured = {k: min(v, runs[name][k]) for k, v in measured.items()}
            runs.setdefault(name, {"times": 0}).update(measured)
            runs[name]["times"] += 1

        def rebuild(name: str, pool: int | None, plain: bool = False, target: str = "pairs") -> None:
            out = str(directory / target)
            if pool is None:
                crawl = pair_keys.Dedup(pair_keys.MODE_CRAWL, BUCKETS)
                with pair_keys.CrawlOwnership(spark, inputs["pools"][1]["root"], NEW, crawl, "text") as owner:
                    timed(name, lambda: write_parquet_atomically(owner.owned(rows), out))
            elif plain:
                keys = inputs["pools"][pool]["root"].path(pair_keys.KEYS_DIR, f"crawl={EARLIER}")
                timed(name, lambda: write_parquet_atomically(_plain_owned(spark, rows, keys, BUCKETS), out))
            else:
                with pair_keys.CrawlOwnership(spark, inputs["pools"][pool]["root"], NEW, dedup, "text") as owner:
                    timed(name, lambda: write_parquet_atomically(owner.owned(rows, count_candidates=True), out))
                    runs[name]["candidates"] = owner.candidates()
            runs[name]["pairs_kept"] = read_table(spark, out).count()

        with pair_keys.CrawlOwnership(spark, inputs["pools"][1]["root"], NEW, dedup, "text") as owner:
            write_parquet_atomically(owner.owned(rows.limit(new_pairs // 10)), str(directory / "warm-up"))
        for _ in range(ROUNDS):  # interleaved, so a slow spell of the machine touches every variant alike
            rebuild("per-crawl", None)
            for factor in POOL_FACTORS:
                rebuild(f"pool-x{factor}", factor)
            rebuild("pool-x4-plain", 4, plain=True)
        with pair_keys.CrawlOwnership(spark, inputs["pools"][1]["root"], NEW, dedup, "text") as owner:
            kept = read_table(spark, str(directory / "pairs"))
            timed("key-write", lambda: owner.commit(kept))
        try:
            metrics = harness.stage_metrics(spark)
        except Exception as e:  # noqa: BLE001 - volumes are a bonus; the CPU figures stand without them
            metrics = {"error": f"{type(e).__name__}: {e}"}
        for name, run in runs.items():  # the Spark stages of every time the variant ran, summed
            written = metrics.get(name, {}).get("shuffle_write_bytes")
            run["shuffle_write_bytes"] = written / run["times"] if written is not None else None
        return {"new_pairs": new_pairs, "rows": new_pairs + int(new_pairs * DUPLICATES), "duplicates": DUPLICATES,
                "overlap": OVERLAP, "buckets": BUCKETS, "generate_seconds": round(generate_seconds, 1),
                "pools": {str(f): {k: v for k, v in p.items() if k != "root"} for f, p in inputs["pools"].items()},
                "runs": runs}
    finally:
        spark.stop()


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares intercept and slope through (x, y) points."""
    n = len(points)
    mean_x, mean_y = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return mean_y - slope * mean_x, slope


def summarise(result: dict) -> dict:
    """Unit costs from the measured runs: CPU-seconds per new row and per pool key, bytes per key."""
    runs, pools = result["runs"], result["pools"]
    intercept, per_key = _line([(pools[str(f)]["keys"], runs[f"pool-x{f}"]["cpu_seconds"]) for f in POOL_FACTORS])
    per_new_pair = (intercept - runs["per-crawl"]["cpu_seconds"]) / result["rows"]
    anti_join = runs["pool-x1"]["cpu_seconds"] - runs["per-crawl"]["cpu_seconds"]
    kept = runs["pool-x1"]["pairs_kept"]
    plain, bucketed = runs["pool-x4-plain"], runs["pool-x4"]
    return {
        "key_bytes_per_pair": pools["4"]["key_bytes"] / pools["4"]["keys"],
        "dedup_cpu_s_per_row": runs["per-crawl"]["cpu_seconds"] / result["rows"],
        "anti_join_cpu_s_per_new_row": per_new_pair,
        "anti_join_cpu_s_per_pool_key": per_key,
        "anti_join_share_of_rebuild_x1": anti_join / runs["per-crawl"]["cpu_seconds"],
        "key_write_cpu_s_per_pair": runs["key-write"]["cpu_seconds"] / kept,
        "copies_found": runs["pool-x1"]["candidates"] - kept,
        "copies_expected": int(result["new_pairs"] * result["overlap"]),
        "plain_vs_bucketed_cpu": plain["cpu_seconds"] / bucketed["cpu_seconds"],
        "plain_vs_bucketed_shuffle": (plain["shuffle_write_bytes"] / bucketed["shuffle_write_bytes"]
                                      if plain.get("shuffle_write_bytes") and bucketed.get("shuffle_write_bytes")
                                      else None),
    }


def project(units: dict) -> dict:
    """Per billion pairs, and dump by dump up to DUMPS dumps of a whole Common Crawl dump's English pairs
    (projection.py's assumptions), RECRAWL_SHARE of each later dump's unique pairs being copies."""
    import projection

    dump_pairs = projection.DUMP_PAGES * projection.TEXTS_PER_PAGE * projection.ENGLISH_SHARE * projection.UNIQUE_SHARE
    rows = dump_pairs / projection.UNIQUE_SHARE  # the rows a dump's rebuild reads, before its own de-duplication
    billion = 1e9
    out = {"assumptions": {"dumps": DUMPS, "recrawl_share": RECRAWL_SHARE, "dump_unique_pairs": dump_pairs,
                           "dump_rows": rows},
           "per_billion": {
               "key_table_gb": billion * units["key_bytes_per_pair"] / 1e9,
               "anti_join_core_hours_per_billion_new_rows": billion * units["anti_join_cpu_s_per_new_row"] / 3600,
               "anti_join_core_hours_per_billion_pool_keys": billion * units["anti_join_cpu_s_per_pool_key"] / 3600,
               "key_write_core_hours_per_billion_pairs": billion * units["key_write_cpu_s_per_pair"] / 3600,
               "dedup_core_hours_per_billion_rows": billion * units["dedup_cpu_s_per_row"] / 3600}}
    keys, dumps = 0.0, []
    for number in range(1, DUMPS + 1):
        owned = dump_pairs * (1 if number == 1 else 1 - RECRAWL_SHARE)
        anti_join = (rows * units["anti_join_cpu_s_per_new_row"] + keys * units["anti_join_cpu_s_per_pool_key"]) \
            / 3600 if keys else 0.0
        key_write = owned * units["key_write_cpu_s_per_pair"] / 3600
        dumps.append({"dump": number, "pool_keys_before": keys, "anti_join_core_hours": anti_join,
                      "key_write_core_hours": key_write,
                      "dedup_core_hours": rows * units["dedup_cpu_s_per_row"] / 3600})
        keys += owned
    out["dumps"] = dumps
    out["pool_keys_after"] = keys
    out["key_table_gb_after"] = keys * units["key_bytes_per_pair"] / 1e9
    return out


def run(work_dir: Path, log=print) -> dict:
    import data

    new_pairs = max(20_000, int(NEW_PAIRS * data.scale()))
    log(f"dedup: {new_pairs:,} new pairs against {new_pairs:,} and {new_pairs * 4:,} pool keys")
    result = harness.run_child("bench_dedup.py", ["--work", str(work_dir / "dedup"), "--pairs", str(new_pairs)],
                               work_dir / "dedup.log", timeout=3600)
    shutil.rmtree(work_dir / "dedup", ignore_errors=True)
    if "runs" in result:
        try:
            result["units"] = summarise(result)
            result["projection"] = project(result["units"])
        except Exception as e:  # noqa: BLE001 - the measured runs are kept for `run.py --render`
            result["error"] = f"{type(e).__name__}: {e}"
    return result


def _num(value: float) -> str:
    if value is None:
        return "n/a"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.3g}{suffix}"
    return f"{value:,.3g}"


def markdown(result: dict) -> list[str]:
    lines = ["", "## 7. One pool across dumps (bench/bench_dedup.py)", ""]
    if "units" not in result:
        return lines + [result.get("skipped") or f"error: {result.get('error')}"]
    u, p, runs = result["units"], result["projection"], result["runs"]
    lines += [f"A new crawl of {result['rows']:,} rows ({result['new_pairs']:,} pairs, {result['duplicates']:.0%} "
              f"repeated within the crawl, {result['overlap']:.0%} already in the pool) rebuilt in local[2] with "
              f"{result['buckets']} key buckets; CPU-seconds of every process. Copies found: {u['copies_found']:,} "
              f"of {u['copies_expected']:,}.", "",
              "| rebuild of the new crawl's pairs | CPU s | wall s | shuffle written, MB |", "|---|---|---|---|"]
    labels = {"per-crawl": "per-crawl de-duplication only (`--dedup crawl`)",
              "pool-x0": "pool, the first crawl: keyed, de-duplicated in key buckets, no anti-join",
              "pool-x1": f"pool: + anti-join with {result['pools']['1']['keys']:,} bucketed keys",
              "pool-x4": f"pool: + anti-join with {result['pools']['4']['keys']:,} bucketed keys",
              "pool-x4-plain": f"pool: + anti-join with {result['pools']['4']['keys']:,} keys read unbucketed",
              "key-write": "the crawl's own keys written in buckets"}
    for name, label in labels.items():
        r = runs[name]
        shuffle = f"{r['shuffle_write_bytes'] / 1e6:,.1f}" if r.get("shuffle_write_bytes") else "n/a"
        lines.append(f"| {label} | {r['cpu_seconds']} | {r['seconds']} | {shuffle} |")
    per = p["per_billion"]
    lines += ["", "| unit | value |", "|---|---|",
              f"| key table, bytes per pair in the pool | {u['key_bytes_per_pair']:.1f} |",
              f"| keys and anti-join, core-hours per billion new rows (intercept) | "
              f"{per['anti_join_core_hours_per_billion_new_rows']:.2f} |",
              f"| anti-join, core-hours per billion keys in the pool (slope) | "
              f"{per['anti_join_core_hours_per_billion_pool_keys']:.2f} |",
              f"| key write, core-hours per billion pairs | {per['key_write_core_hours_per_billion_pairs']:.2f} |",
              f"| the crawl's own de-duplication, core-hours per billion rows | "
              f"{per['dedup_core_hours_per_billion_rows']:.2f} |",
              f"| unbucketed / bucketed keys, CPU (shuffle written) | {u['plain_vs_bucketed_cpu']:.2f} "
              f"({u['plain_vs_bucketed_shuffle'] or 0:.2f}) |", "",
              f"Projection ({p['assumptions']['dumps']} dumps of {_num(p['assumptions']['dump_unique_pairs'])} unique "
              f"pairs, {p['assumptions']['recrawl_share']:.0%} of each later dump's already in the pool):", "",
              "| dump | keys in the pool before | anti-join core-hours | key write core-hours | "
              "own de-duplication core-hours |", "|---|---|---|---|---|"]
    for d in p["dumps"]:
        lines.append(f"| {d['dump']} | {_num(d['pool_keys_before'])} | {d['anti_join_core_hours']:.1f} | "
                     f"{d['key_write_core_hours']:.1f} | {d['dedup_core_hours']:.1f} |")
    lines += ["", f"Key table after {p['assumptions']['dumps']} dumps: {_num(p['pool_keys_after'])} keys, "
                  f"{p['key_table_gb_after']:,.0f} GB."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--pairs", type=int, default=NEW_PAIRS)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    harness.write_result(args.result, measure_in_child(Path(args.work), args.pairs))


if __name__ == "__main__":
    main()
