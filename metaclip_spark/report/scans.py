"""The report's reads of an output root (layout in root/layout.py): the Spark scans of matched/, curated/ and pairs/,
counts/ as one per-entry vector, and the records (unit markers, crawl states) the report takes its other figures from.

Every number is a Spark reduction or a bounded take; the driver only receives results bounded by the metadata, by
the handful of crawls / languages / text sources / length bins, or by a fixed sample size, never anything that
grows with the pool:
- matched/: one pass (keep probabilities computed on the executors from a broadcast of the entry probabilities)
  giving sizes by crawl / language / text source / caption length, entries per text, a histogram of keep
  probabilities, the expected curated size (sum of keep probabilities over ALL matched pairs) and the plan table's
  sums (the expected size at each t, report/plan.py): each Arrow batch is summed on its executor into a few rows per set,
  which Spark adds up in exact fixed point;
- curated/: per-entry counts after balancing (explode + groupBy: measured, not derived from a formula) and, in a
  second pass, sizes by group and caption length;
- counts/: one row per matched entry (bounded by the metadata), as the per-entry vector before balancing, and the
  names of the few entries the report shows;
- image hosts: the top hosts of curated/ (a grouped count, of which only the first TOP_HOSTS rows are taken) and
  their counts in matched/;
- samples: the SAMPLE_POOL matched pairs first in a seeded hash order (a bounded take), split into curated and
  dropped by the run's own keep draws (draws.decide, a pure function: the split balance made); unmatched
  captions from the SAMPLE_POOL first pairs of pairs/ in the same order that are not in matched/;
- pairs in per language / text source from the crawl states (recorded at ingest: the input is never read again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from metaclip_spark.balancing import draws, thresholds
from metaclip_spark.balancing.spark import language_entry_probabilities
from metaclip_spark.matching.spark import ListChoice, flattened_entry_ids, language_broadcasts
from metaclip_spark.root.columns import ENTRY_IDS, GROUP_COLUMNS
from metaclip_spark.balancing.counts import count_vectors
from metaclip_spark.root.layout import RootReader
from metaclip_spark.root.records import FileTally, RunSummary, tally_files
from metaclip_spark.root.tables import read_table

if TYPE_CHECKING:
    from metaclip_spark.report.plan import PlanThresholds

TOP_HOSTS = 25
PROBABILITY_BINS = 50
# Caption lengths in characters: bin k holds lengths in [LENGTH_EDGES[k], LENGTH_EDGES[k + 1]).
LENGTH_EDGES = (0, 5, 10, 20, 50, 100, 200, 500, 1000)
SAMPLE_POOL = 400  # matched (and pairs) rows taken in seeded order, before splitting them
SAMPLES_SHOWN = 12  # captions shown per kind: curated, dropped by balancing, unmatched
SAMPLE_TEXT_CHARS = 300

# The sets of a pass's results (`set`): a group column's name, these, or "" for the total.
ENTRIES = "entries"
PROB_BIN = "prob_bin"
LENGTH_BIN = "length_bin"
_HOST = "host"
_ORDER = "_sample_order"
# The host of an absolute URL (after the scheme and any user info, before a port, path, query or fragment).
_HOST_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]*)"


# --- bins (applied on the executors) ----------------------------------------------------------------------------

def probability_bins(keep_prob: np.ndarray, bins: int = PROBABILITY_BINS) -> np.ndarray:
    """Histogram bin of each probability: [k/bins, (k+1)/bins), the last bin closed (P = 1 goes in it)."""
    return np.minimum(np.floor(keep_prob * bins), bins - 1).astype(np.int32)


def length_bins(lengths: np.ndarray) -> np.ndarray:
    """Bin of each caption length (characters) over LENGTH_EDGES; the last bin is open-ended."""
    return (np.searchsorted(np.asarray(LENGTH_EDGES[1:]), np.asarray(lengths), side="right")).astype(np.int32)


def sample_text(text) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= SAMPLE_TEXT_CHARS else text[:SAMPLE_TEXT_CHARS - 1] + "\u2026"


# --- matched/ and curated/ ---------------------------------------------------------------------------------------

def present_group_columns(df: DataFrame) -> list[str]:
    return [c for c in GROUP_COLUMNS if c in df.columns]


def grouped_counts(df: DataFrame, groups: list[str], extra_sets: list[tuple[str, ...]], aggregations: list) -> list[dict]:
    """One pass over `df`: the aggregations per value of each group column, per extra set, and in total.

    Each result row says which set it belongs to: `set` is the grouped column's name, or "" for the total.
    """
    sets = [(g,) for g in groups] + extra_sets + [()]
    columns = [c for s in sets for c in s]
    if not columns:
        return [{"set": "", "value": None, **df.agg(*aggregations).first().asDict()}]
    flags = [F.grouping(c).alias(f"_grouping_{c}") for c in columns]
    rows = df.groupingSets(sets, *columns).agg(*aggregations, *flags).collect()
    if not rows:  # grouping sets over no rows give no rows at all, not even the total
        return [{"set": "", "value": None, **df.agg(*aggregations).first().asDict()}]
    results = []
    for row in rows:
        grouped = [c for c in columns if row[f"_grouping_{c}"] == 0]
        name = grouped[0] if grouped else ""
        results.append({"set": name, "value": row[name] if name else None, **{k: row[k] for k in row.asDict()
                                                                              if not k.startswith("_grouping_")}})
    return results


def _length_bin_column(text_column: str):
    """The caption-length bin of `text_column` as a Spark expression (the Spark side of `length_bins`)."""
    length = F.coalesce(F.length(F.col(text_column)), F.lit(0))
    return sum((F.when(length >= edge, 1).otherwise(0) for edge in LENGTH_EDGES[1:]), F.lit(0)).cast("int")


_SET, _VALUE, _PLAN = "set", "value", "plan"
_SUMMED = ("pairs", "expected", "always_kept")


def _summed_by(keys: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{_VALUE: each key value that occurs, ascending; each name in `weights`: its sum over the rows of that key}
    (int64 sums, exact)."""
    values, rows = np.unique(np.asarray(keys, dtype=np.int64), return_inverse=True)
    sums = {_VALUE: values}
    for name, weight in weights.items():
        sums[name] = np.zeros(values.size, np.int64)
        np.add.at(sums[name], rows, weight)
    return sums


def _part(schema: pa.Schema, name: str, rows: int, columns: dict) -> pa.Table:
    """`rows` rows of partial sums for one set: `columns` given, other sums 0, other values null."""
    arrays = []
    for field in schema:
        if field.name == _SET:
            arrays.append(pa.array([name] * rows, pa.string()))
        elif field.name in columns:
            column = columns[field.name]
            arrays.append(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else
                          pa.array(column, field.type))
        else:
            arrays.append(pa.nulls(rows, field.type) if field.nullable else pa.array(np.zeros(rows, np.int64)))
    return pa.Table.from_arrays(arrays, schema=schema)


def matched_pass(matched: DataFrame, probabilities: dict[str, np.ndarray], groups: list[str], choice: ListChoice,
                 text_column: str | None = None,
                 planned: "PlanThresholds | None" = None) -> tuple[list[dict], tuple | None]:
    """Over all matched pairs, in one scan of matched/: count, sum of keep probabilities and always-kept pairs, by
    group, by number of entries, by keep-probability bin, by caption-length bin (with `text_column`) and in total;
    with `planned` (report/plan.py's table thresholds), also the plan's sums at each of its t (as plan.expected_sums
    gives them: sums, certain, pairs). Each Arrow batch is summed on its executor into a few rows per set (keep
    probabilities in fixed point, thresholds.FIXED_POINT, as the plan sums them), which Spark adds exactly: the same
    on any partitioning. `probabilities` is {list: p_e vector}: each pair takes its own list's p_e (`choice`); the
    plan's counts and t are per list too (the i-th t of every list makes the i-th sum)."""
    spark = matched.sparkSession
    list_probabilities = language_broadcasts(spark, probabilities)
    plan_counts = (language_broadcasts(spark, {code: np.asarray(c, np.float64) for code, c in planned.counts.items()})
                   if planned else {})
    plan_ts = planned.summed_ts if planned else {}
    n_ts = len(planned.ts) if planned else 0
    read = [*groups, ENTRY_IDS, *([text_column] if text_column else [])]
    source = matched.select(*read, *[key for key in choice.keys if key not in read])
    plan_names = [f"p{i}" for i in range(n_ts)] + [f"k{i}" for i in range(n_ts)]
    sum_names = [*_SUMMED, *plan_names]
    output_schema = T.StructType(
        [T.StructField(_SET, T.StringType(), False)]
        + [T.StructField(g, source.schema[g].dataType, True) for g in groups]
        + [T.StructField(_VALUE, T.IntegerType(), True)]
        + [T.StructField(name, T.LongType(), False) for name in sum_names])

    def plan_sums_of(codes, lengths, flat):
        sums, certain = np.zeros(n_ts, np.int64), np.zeros(n_ts, np.int64)
        if codes and codes.count(codes[0]) == len(codes):  # a batch of one list (every v1 batch): no grouping
            parts = [(codes[0], slice(None), slice(None))]
        else:
            array = np.array(codes, dtype=object)
            parts = [(code, array == code, np.repeat(array == code, lengths)) for code in set(codes)]
        for code, rows, entries in parts:
            list_sums, list_certain = thresholds.keep_probability_sums(
                lengths[rows], flat[entries], plan_counts[code].value, plan_ts[code])
            sums += list_sums
            certain += list_certain
        return sums, certain

    def partial_sums(batches):
        for batch in batches:
            schema = pa.schema([pa.field(_SET, pa.string(), False)]
                               + [pa.field(g, batch.schema.field(g).type) for g in groups]
                               + [pa.field(_VALUE, pa.int32())]
                               + [pa.field(name, pa.int64(), False) for name in sum_names])
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            codes = choice.codes(batch)
            keep_prob = draws.keep_probabilities_flat(lengths, language_entry_probabilities(
                codes, lengths, flat, lambda code: list_probabilities[code].value))
            weights = {"pairs": np.ones(batch.num_rows, np.int64),
                       "expected": thresholds.fixed_point(keep_prob),
                       "always_kept": (keep_prob >= 1.0).astype(np.int64)}
            parts = [_part(schema, "", 1, {name: [int(w.sum())] for name, w in weights.items()})]
            for g in groups:
                by_value = (pa.table({g: batch.column(g), **weights}).group_by(g, use_threads=False)
                            .aggregate([(name, "sum") for name in _SUMMED]))
                parts.append(_part(schema, g, by_value.num_rows,
                                   {g: by_value.column(g), **{n: by_value.column(f"{n}_sum") for n in _SUMMED}}))
            keys = {ENTRIES: lengths, PROB_BIN: probability_bins(keep_prob)}
            if text_column:
                keys[LENGTH_BIN] = length_bins(pc.utf8_length(batch.column(text_column)).fill_null(0)
                                                .to_numpy(zero_copy_only=False))
            for name, key in keys.items():
                sums = _summed_by(key, weights)
                parts.append(_part(schema, name, sums[_VALUE].size, sums))
            if n_ts:
                plan_sums, certain = plan_sums_of(codes, lengths, flat)
                parts.append(_part(schema, _PLAN, 1, {"pairs": [batch.num_rows], **{
                    name: [int(v)] for name, v in zip(plan_names, [*plan_sums, *certain])}}))
            yield from pa.concat_tables(parts).to_batches()

    try:
        rows = (source.mapInArrow(partial_sums, output_schema).groupBy(_SET, *groups, _VALUE)
                .agg(*[F.sum(F.col(name).cast("decimal(38,0)")).alias(name) for name in sum_names]).collect())
    finally:
        for broadcast in [*list_probabilities.values(), *plan_counts.values()]:
            broadcast.unpersist()
    results = [{"set": "", "value": None, "pairs": 0, "expected": 0.0, "always_kept": 0}]  # when nothing matched
    plan = ([0] * n_ts, [0] * n_ts, 0) if planned else None
    for row in rows:
        name = row[_SET]
        if name == _PLAN:
            values = [int(row[c]) for c in plan_names]
            plan = (values[:n_ts], values[n_ts:], int(row["pairs"]))
            continue
        result = {"set": name, "value": row[name] if name in groups else row[_VALUE], "pairs": int(row["pairs"]),
                  "expected": int(row["expected"]) / thresholds.FIXED_POINT, "always_kept": int(row["always_kept"])}
        if name == "":
            results[0] = result
        else:
            results.append(result)
    return results, plan


def curated_pass(curated: DataFrame, groups: list[str], entries_total: int, choice: ListChoice,
                 offsets: dict[str, int], text_column: str | None = None) -> tuple[np.ndarray, list[dict]]:
    """Over the curated table itself: per-entry counts after balancing (explode the kept pairs' entry ids, count;
    one row per entry reaches the driver, as Arrow), and kept pairs by group, by caption-length bin (with
    `text_column`) and in total (grouping sets over the pairs themselves, in a second scan: applied to the exploded
    ids, the sets would multiply each pair's rows by its entries). Entries are counted per (list, id) and placed as
    entry_keys places them."""
    lengths = [_length_bin_column(text_column).alias(LENGTH_BIN)] if text_column else []
    results = grouped_counts(curated.select(*groups, *lengths), groups, [(LENGTH_BIN,)] if text_column else [],
                             [F.count("*").alias("pairs")])
    counts = (curated.select(*choice.keys, F.explode(ENTRY_IDS).alias("entry_id")).groupBy(*choice.keys, "entry_id")
              .agg(F.count("*").alias("matches")).toArrow())
    after = np.zeros(entries_total, dtype=np.int64)
    after[entry_keys(counts, offsets, choice)] = counts.column("matches").to_numpy()
    return after, results


# --- counts/: the per-entry vector -------------------------------------------------------------------------------

def list_offsets(run: RunSummary) -> dict[str, int]:
    """Where each list starts in the report's one per-entry vector, the lists laid end to end in the run's order
    (so (list, id) is one position, and no two lists' ids meet); a v1 run's one list starts at 0, its entry ids
    being the positions."""
    offsets, start = {}, 0
    for code, (entries, _) in run.lists.items():
        offsets[code] = start
        start += entries
    return offsets


def entry_keys(table: pa.Table, offsets: dict[str, int], choice: ListChoice) -> np.ndarray:
    """Positions in the per-entry vector of a table's entries (entry_id, in the list `choice` gives each row)."""
    ids = table.column("entry_id").to_numpy().astype(np.int64)
    codes = choice.codes(table)
    return ids + np.fromiter((offsets[code] for code in codes), np.int64, len(codes))


def read_counts(spark: SparkSession, root: RootReader, run: RunSummary, offsets: dict[str, int],
                choice: ListChoice) -> tuple[np.ndarray, pa.Table]:
    """The run's per-entry counts (counts/) as one vector over the entries (the lists end to end, at `offsets`), and
    counts/ itself with each entry's position (`key`), for the names of the entries shown. One row per matched
    entry: bounded by the metadata (~500k), like the count vector itself."""
    table = read_table(spark, root.path("counts")).select(*choice.keys, "entry_id", "entry", "count").toArrow()
    table = table.append_column("key", pa.array(entry_keys(table, offsets, choice), pa.int64()))
    # the one reading of a count table (balancing/counts.py), each list at its full length, laid end to end
    vectors = count_vectors(table, {code: entries for code, (entries, _) in run.lists.items()})
    return np.concatenate([vectors[code] for code in offsets]) if offsets else np.zeros(0, np.int64), table


def list_counts(run: RunSummary, counts: np.ndarray, offsets: dict[str, int]) -> dict[str, np.ndarray]:
    """Each list's own count vector, its part of the one per-entry vector."""
    return {code: counts[start:start + run.lists[code][0]] for code, start in offsets.items()}


def entry_names(table: pa.Table, keys: list[int],
                choice: ListChoice) -> tuple[dict[int, str], dict[int, tuple[str, int]]]:
    """The entries at positions `keys` (from read_counts' table): {key: entry}, and {key: (its list, its id in
    that list)}."""
    named = table.filter(pc.is_in(table.column("key"), pa.array(keys, pa.int64())))
    names = dict(zip(named.column("key").to_pylist(), named.column("entry").to_pylist()))
    located = dict(zip(named.column("key").to_pylist(),
                       zip(choice.codes(named), named.column("entry_id").to_pylist())))
    return names, located


# --- image hosts and samples ------------------------------------------------------------------------------------

def _host_counts(df: DataFrame, url_column: str) -> DataFrame:
    """Pairs per image host (lower case; URLs with none left out): grouped by the host as the URL writes it, then
    by its lower case over those groups, so `lower` (costlier than the regular expression) runs once per distinct
    host instead of once per pair. The same counts as lower-casing every pair's host."""
    written = (df.select(F.regexp_extract(F.col(url_column), _HOST_PATTERN, 1).alias(_HOST))
               .where(F.col(_HOST) != "").groupBy(_HOST).count())
    return written.select(F.lower(_HOST).alias(_HOST), "count").groupBy(_HOST).agg(F.sum("count").alias("count"))


def top_hosts(curated: DataFrame, matched: DataFrame, url_column: str, n: int = TOP_HOSTS) -> list[dict]:
    """The n image hosts with most curated pairs (ties by name), with their matched pairs: a grouped count of which
    only the first n rows reach the driver."""
    if url_column not in curated.columns:
        return []
    top = _host_counts(curated, url_column).orderBy(F.desc("count"), _HOST).limit(n).collect()
    hosts = [r[_HOST] for r in top]
    if not hosts:
        return []
    in_matched = dict(_host_counts(matched, url_column).where(F.col(_HOST).isin(hosts)).collect())
    return [{"host": r[_HOST], "curated": int(r["count"]), "matched": int(in_matched.get(r[_HOST], 0))} for r in top]


def _seeded_order(seed: int, text_column: str):
    return F.xxhash64(F.lit(int(seed)), F.col("uuid"), F.col(text_column))


def _first_in_seeded_order(df: DataFrame, seed: int, text_column: str, columns: list[str], n: int) -> list[dict]:
    """The n rows of `df` first in the seeded hash order of (uuid, text) (ties broken by the columns): a bounded take,
    the same rows on any partitioning."""
    ordered = df.select(*columns, _seeded_order(seed, text_column).alias(_ORDER))
    return [r.asDict() for r in ordered.orderBy(_ORDER, *columns).limit(n).drop(_ORDER).collect()]


def caption_samples(matched: DataFrame, pairs: DataFrame | None, probabilities: dict[str, np.ndarray],
                    choice: ListChoice, seed: int, text_column: str) -> dict:
    """Seeded samples: curated and dropped-by-balancing captions from the SAMPLE_POOL matched pairs first in the
    seeded order, told apart by the run's own keep draws; unmatched captions from the first pairs of `pairs` in the
    same order that are not in `matched` (a semi-join against that bounded list). Entries as ids (names added by
    the caller for the ids in them). Each pair's draws take its own list's p_e (`probabilities` per list), and each
    item carries the column naming its list when the run's tables have one (`choice.keys`)."""
    columns = ["crawl", "uuid", text_column, ENTRY_IDS, *choice.keys]
    rows = _first_in_seeded_order(matched, seed, text_column, columns, SAMPLE_POOL)
    lengths = np.array([len(r[ENTRY_IDS]) for r in rows], dtype=np.int64)
    flat = np.array([e for r in rows for e in r[ENTRY_IDS]], dtype=np.int64)
    flat_probs = language_entry_probabilities([choice.code_of(r) for r in rows], lengths, flat,
                                              probabilities.__getitem__)
    keep, keep_prob = draws.decide_flat(seed, [r["uuid"] for r in rows], [r[text_column] for r in rows],
                                        lengths, flat, flat_probs)
    items = [{"crawl": r["crawl"], "uuid": r["uuid"], "text": sample_text(r[text_column]),
              "entry_ids": list(r[ENTRY_IDS]), "keep_prob": float(p), **{key: r[key] for key in choice.keys}}
             for r, p in zip(rows, keep_prob)]
    samples = {
        "matched_sampled": len(rows),
        "curated": [item for item, k in zip(items, keep) if k][:SAMPLES_SHOWN],
        "dropped": [item for item, k in zip(items, keep) if not k][:SAMPLES_SHOWN],
        "dropped_in_sample": int((~keep).sum()),
        "unmatched": None,
        "pairs_sampled": None,
    }
    if pairs is not None:
        candidates = _first_in_seeded_order(pairs, seed, text_column, ["crawl", "uuid", text_column], SAMPLE_POOL)
        spark = matched.sparkSession
        keys = spark.createDataFrame([(c["crawl"], c["uuid"], c[text_column]) for c in candidates],
                                     f"crawl string, uuid string, `{text_column}` string")
        found = {(r["crawl"], r["uuid"], r[text_column]) for r in matched.select("crawl", "uuid", text_column)
                 .join(F.broadcast(keys), ["crawl", "uuid", text_column], "left_semi").collect()}
        samples["pairs_sampled"] = len(candidates)
        samples["unmatched"] = [{"crawl": c["crawl"], "uuid": c["uuid"], "text": sample_text(c[text_column]),
                                 "entry_ids": []} for c in candidates
                                if (c["crawl"], c["uuid"], c[text_column]) not in found][:SAMPLES_SHOWN]
    return samples


# --- the root's records -----------------------------------------------------------------------------------------

def files_read(root: RootReader, crawls: list[str]) -> FileTally:
    """Input files done, read in part (with why) and failed over the run's crawls, from the unit markers."""
    states = RootReader.file_states(root.committed_units(crawls))
    return tally_files(sorted(states.values(), key=lambda s: s["file"]))


def pairs_in_by_group(run: RunSummary, states: dict[str, dict], groups: list[str]) -> dict[str, dict[str, int] | None]:
    """Pairs in per value of each group column, from the run's crawls and their states (recorded at ingest; the input
    is never read again). None for a column some crawl's pairs do not carry, or a crawl ingested before the states
    recorded it."""
    result: dict[str, dict[str, int] | None] = {g: None for g in groups}
    if "crawl" in groups and run.by_crawl:
        result["crawl"] = {crawl: int(figures.pairs) for crawl, figures in run.by_crawl.items()}
    recorded = [states[crawl].get("pairs_by") for crawl in run.crawls]
    for g in groups:
        if g == "crawl" or any(r is None or g not in r for r in recorded):
            continue
        totals: dict[str, int] = {}
        for by in recorded:
            for value, n in by[g].items():
                totals[value] = totals.get(value, 0) + int(n)
        result[g] = totals
    return result


def pair_columns(states: dict[str, dict]) -> tuple[str, str]:
    """The url and text columns the run's crawls were ingested with (recorded in their states)."""
    columns = [state.get("columns") or {} for state in states.values()] or [{}]
    return columns[0].get("url", "url"), columns[0].get("text", "text")
