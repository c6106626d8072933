"""The curation report: the numbers a user checks before training on a curated set.

Reads the latest run of an output root (summary.json, counts/, curated/, and matched/ and pairs/ of the run's crawls;
layout in root/layout.py) and writes ROOT/report/ (summary.json, PNG plots, one self-contained index.html), replacing
any previous report as a whole.

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
- image hosts: the top hosts of curated/ (a grouped count, of which only the first TOP_HOSTS rows are taken) and
  their counts in matched/;
- samples: the SAMPLE_POOL matched pairs first in a seeded hash order (a bounded take), split into curated and
  dropped by the run's own keep draws (draws.decide, a pure function: the split balance made); unmatched
  captions from the SAMPLE_POOL first pairs of pairs/ in the same order that are not in matched/;
- the funnel (records, pages, img tags, pairs, language, de-duplication, matched, curated) from the run's summary;
- pairs in per language / text source from the crawl states (recorded at ingest: the input is never read again).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from metaclip_spark import __version__
from metaclip_spark.balancing import draws
from metaclip_spark.ingestion import pair_keys
from metaclip_spark.balancing import thresholds
from metaclip_spark.balancing.counts import count_vectors
from metaclip_spark.balancing.spark import language_entry_probabilities
from metaclip_spark.matching.spark import flattened_entry_ids, language_broadcasts
from metaclip_spark.root.columns import ENTRY_IDS, GROUP_COLUMNS, METADATA_LANG, group_value
from metaclip_spark.errors import InputError
from metaclip_spark.metadata.lists import ONE_LIST
from metaclip_spark.progress import stage
from metaclip_spark.root.layout import OutputRoot
from metaclip_spark.root.records import KIND_EXTRACT, tally_files
from metaclip_spark.root.tables import join_path, path_exists, read_table, write_directory_atomically

log = logging.getLogger("metaclip_spark")

REPORT_DIR = "report"
TOP_ENTRIES = 30
TOP_HOSTS = 25
PROBABILITY_BINS = 50
# Caption lengths in characters: bin k holds lengths in [LENGTH_EDGES[k], LENGTH_EDGES[k + 1]).
LENGTH_EDGES = (0, 5, 10, 20, 50, 100, 200, 500, 1000)
SAMPLE_POOL = 400  # matched (and pairs) rows taken in seeded order, before splitting them
SAMPLES_SHOWN = 12  # captions shown per kind: curated, dropped by balancing, unmatched
SAMPLE_TEXT_CHARS = 300

WORLDWIDE_NOTE = ("a worldwide root: an entry is a (language, entry) pair, judged against its own language's t "
                  "(English's is the t shown; every language's is in the Languages section and summary.json's "
                  "t_by_lang), and each pair's keep probability and sampled draws take its own language's p_e; the "
                  "plan table's t is English's, each row giving every other language the t curate derives from it "
                  "(`metaclip-spark plan --lang CODE` gives one language's own table)")

_ENTRIES = "entries"
_PROB_BIN = "prob_bin"
_LENGTH_BIN = "length_bin"
_HOST = "host"
_ORDER = "_sample_order"
# The host of an absolute URL (after the scheme and any user info, before a port, path, query or fragment).
_HOST_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]*)"


# --- pure functions (no Spark) ----------------------------------------------------------------------------------

def probability_bins(keep_prob: np.ndarray, bins: int = PROBABILITY_BINS) -> np.ndarray:
    """Histogram bin of each probability: [k/bins, (k+1)/bins), the last bin closed (P = 1 goes in it)."""
    return np.minimum(np.floor(keep_prob * bins), bins - 1).astype(np.int32)


def top_entries(counts: np.ndarray, n: int = TOP_ENTRIES) -> list[tuple[int, int]]:
    """(entry_id, count) of the n largest counts, ties broken by entry id; entries with count 0 left out."""
    nonzero = np.flatnonzero(counts)
    order = np.lexsort((nonzero, -counts[nonzero]))[:n]
    return [(int(nonzero[i]), int(counts[nonzero[i]])) for i in order]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def length_bins(lengths: np.ndarray) -> np.ndarray:
    """Bin of each caption length (characters) over LENGTH_EDGES; the last bin is open-ended."""
    return (np.searchsorted(np.asarray(LENGTH_EDGES[1:]), np.asarray(lengths), side="right")).astype(np.int32)


def length_bin_labels() -> list[str]:
    edges = LENGTH_EDGES
    return [f"{edges[k]}-{edges[k + 1] - 1}" for k in range(len(edges) - 1)] + [f"{edges[-1]}+"]


def funnel(run: dict, pairs_matched: int, pairs_curated: int) -> list[dict]:
    """The steps from what was read to what was kept, each with its count, what was dropped on the way (by reason)
    and how it compares with the step before: a step that only removes has its share of the step before
    (`share_of_previous`); a step that can grow (`<img>` tags of a page, pairs of a tag) has instead so many per item
    of the step before (`per_previous`, named by `per`). `share_of_first` is the share of the first count of pairs
    (the image-text pairs of Common Crawl input, a pool's rows), None for the steps before it (records, pages, tags
    are not pairs). Common Crawl input starts at the records read; a pool of pairs at its rows. Counters come from
    the run's summary (summed at ingest, never recounted here)."""
    extract = run.get("extract") or {}
    pairs_in = int(run.get("pairs_in") or 0)
    # (step, count, dropped by reason, what it counts, "per <item of the step before>" for a step that can grow)
    steps: list[tuple[str, int, dict[str, int], str, str | None]] = []
    if extract:
        pages = int(extract.get("html_pages", 0)) + int(extract.get("wat_pages", 0))
        candidates = int(extract.get("pairs", 0)) + int(extract.get("dropped_language", 0))
        steps += [
            ("records read", int(extract.get("records_read", 0)), {}, "WARC/WAT records of the files read", None),
            ("HTML pages", pages, {k: int(extract.get(k, 0)) for k in (
                "non_html", "dropped_oversized_page", "dropped_decode_error", "dropped_corrupt_member")},
             "responses with an HTML payload (WAT: metadata records with links)", None),
            ("<img> tags", int(extract.get("img_tags", 0)), {}, "on those pages", "per page"),
            ("image-text pairs", candidates, {k: int(extract.get(k, 0)) for k in (
                "dropped_no_src", "dropped_non_http_url", "dropped_no_text")},
             "one per text attribute of an image with an http(s) src (up to three per image)", "per <img> tag"),
            ("in a kept language", int(extract.get("pairs", 0)), {"dropped_language": int(extract.get(
                "dropped_language", 0))}, "language ID (lid.176) against extract.languages", None),
            *optout_steps(run),
            ("after de-duplication", pairs_in, {"dropped_duplicate": int(extract.get("dropped_duplicate", 0))},
             "exact (uuid, text) duplicates dropped", None),
        ]
    else:
        skipped = {}
        for crawl in (run.get("by_crawl") or {}).values():
            for reason, n in (crawl.get("skipped") or {}).items():
                skipped[reason] = skipped.get(reason, 0) + int(n)
        if any(skipped.values()):
            steps.append(("rows read", pairs_in + sum(skipped.values()), {}, "rows of the pool files", None))
        steps.append(("pairs", pairs_in, skipped, "rows with a url and a text", None))
    steps += [
        ("matched", int(pairs_matched), {}, "texts matching at least one metadata entry", None),
        ("curated", int(pairs_curated), {}, "kept by the seeded draws of balancing", None),
    ]
    first_pairs = next(i for i, step in enumerate(steps) if step[0] in ("image-text pairs", "rows read", "pairs"))
    rows, previous = [], None
    for index, (name, count, dropped, note, per) in enumerate(steps):
        grows = per is not None and previous is not None
        rows.append({"step": name, "count": count,
                     "share_of_previous": _ratio(count, previous) if previous is not None and not grows else None,
                     "per_previous": _ratio(count, previous) if grows else None, "per": per if grows else None,
                     "share_of_first": _ratio(count, steps[first_pairs][1]) if index >= first_pairs else None,
                     "first": steps[first_pairs][0],
                     "dropped": {k: v for k, v in dropped.items() if v}, "note": note})
        previous = count
    return rows


def optout_steps(run: dict) -> list[tuple[str, int, dict[str, int], str, str | None]]:
    """The funnel's opt-out step: the pairs left once those whose page opts out of AI training are set apart, by kind
    of signal; none when no pair was (the funnel of a run without opt-outs is as it was)."""
    optout = run.get("optout")
    if not optout or not optout["pairs_removed"]:
        return []
    kept = int((run.get("extract") or {}).get("pairs", 0)) - int(optout["pairs_removed"])
    return [("not opted out", kept, {f"optout_{kind}": int(n) for kind, n in optout["by_kind"].items()},
             "pairs whose page refuses AI training ([optout]) set apart, kept in optout/", None)]


def optout_section(run: dict) -> dict | None:
    """The report's opt-out section: pairs set apart per kind of signal, per signal and per agent, and the hosts
    with the most (from the run's summary, summed at ingest); None when no crawl kept its pages' signals."""
    optout = run.get("optout")
    if not optout:
        return None
    config = (run.get("config") or {}).get("optout") or {}
    return {"pairs_removed": optout["pairs_removed"], "by_kind": optout["by_kind"], "by_signal": optout["by_signal"],
            "by_agent": optout["by_agent"], "top_hosts": optout["top_hosts"],
            "honoured": {key: config.get(key) for key in ("honour_page_signals", "directives", "tdm_reservation",
                                                          "content_usage")},
            "agents": len(config.get("agents") or ())}


def sample_text(text) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= SAMPLE_TEXT_CHARS else text[:SAMPLE_TEXT_CHARS - 1] + "\u2026"


# --- Spark reductions -------------------------------------------------------------------------------------------

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


def matched_pass(matched: DataFrame, probabilities: np.ndarray | dict[str, np.ndarray], groups: list[str],
                 text_column: str | None = None, plan_counts: np.ndarray | dict[str, np.ndarray] | None = None,
                 plan_ts: list[int] | dict[str, list[int]] = ()) -> tuple[list[dict], tuple | None]:
    """Over all matched pairs, in one scan of matched/: count, sum of keep probabilities and always-kept pairs, by
    group, by number of entries, by keep-probability bin, by caption-length bin (with `text_column`) and in total;
    with `plan_ts`, also the plan's sums over `plan_counts` at each t (as plan.expected_sums gives them: sums,
    certain, pairs). Each Arrow batch is summed on its executor into a few rows per set (keep probabilities in fixed
    point, thresholds.FIXED_POINT, as the plan sums them), which Spark adds exactly: the same on any partitioning.
    `probabilities` is the p_e vector, or, worldwide, {language: vector}: each pair takes its own language's p_e;
    worldwide, `plan_counts` and `plan_ts` are per language too (the i-th t of every language makes the i-th sum)."""
    spark = matched.sparkSession
    worldwide = isinstance(probabilities, dict)
    if worldwide:
        language_probabilities, probabilities_broadcast = language_broadcasts(spark, probabilities), None
        broadcasts = list(language_probabilities.values())
    else:
        language_probabilities, probabilities_broadcast = None, spark.sparkContext.broadcast(probabilities)
        broadcasts = [probabilities_broadcast]
    if not plan_ts:
        counts_broadcast = None
    elif isinstance(plan_counts, dict):
        counts_broadcast = language_broadcasts(spark, {code: np.asarray(c, np.float64) for code, c in plan_counts.items()})
    else:
        counts_broadcast = spark.sparkContext.broadcast(plan_counts.astype(np.float64))
    read = [*groups, ENTRY_IDS, *([text_column] if text_column else [])]
    source = matched.select(*read, *([METADATA_LANG] if worldwide and METADATA_LANG not in read else []))
    n_ts = len(next(iter(plan_ts.values()), ())) if isinstance(plan_ts, dict) else len(plan_ts)
    plan_names = [f"p{i}" for i in range(n_ts)] + [f"k{i}" for i in range(n_ts)]
    sum_names = [*_SUMMED, *plan_names]
    output_schema = T.StructType(
        [T.StructField(_SET, T.StringType(), False)]
        + [T.StructField(g, source.schema[g].dataType, True) for g in groups]
        + [T.StructField(_VALUE, T.IntegerType(), True)]
        + [T.StructField(name, T.LongType(), False) for name in sum_names])

    def plan_sums_of(batch, lengths, flat):
        if not isinstance(counts_broadcast, dict):
            return thresholds.keep_probability_sums(lengths, flat, counts_broadcast.value, plan_ts)
        sums, certain = np.zeros(n_ts, np.int64), np.zeros(n_ts, np.int64)
        codes = np.array(batch.column(METADATA_LANG).to_pylist(), dtype=object)
        for code in set(codes.tolist()):
            rows = codes == code
            language_sums, language_certain = thresholds.keep_probability_sums(
                lengths[rows], flat[np.repeat(rows, lengths)], counts_broadcast[code].value, plan_ts[code])
            sums += language_sums
            certain += language_certain
        return sums, certain

    def keep_probabilities(batch, lengths, flat):
        if worldwide:
            return draws.keep_probabilities_flat(lengths, language_entry_probabilities(
                batch.column(METADATA_LANG).to_pylist(), lengths, flat, lambda code: language_probabilities[code].value))
        return draws.keep_probabilities(lengths, flat, probabilities_broadcast.value)

    def partial_sums(batches):
        for batch in batches:
            schema = pa.schema([pa.field(_SET, pa.string(), False)]
                               + [pa.field(g, batch.schema.field(g).type) for g in groups]
                               + [pa.field(_VALUE, pa.int32())]
                               + [pa.field(name, pa.int64(), False) for name in sum_names])
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            keep_prob = keep_probabilities(batch, lengths, flat)
            weights = {"pairs": np.ones(batch.num_rows, np.int64),
                       "expected": thresholds.fixed_point(keep_prob),
                       "always_kept": (keep_prob >= 1.0).astype(np.int64)}
            parts = [_part(schema, "", 1, {name: [int(w.sum())] for name, w in weights.items()})]
            for g in groups:
                by_value = (pa.table({g: batch.column(g), **weights}).group_by(g, use_threads=False)
                            .aggregate([(name, "sum") for name in _SUMMED]))
                parts.append(_part(schema, g, by_value.num_rows,
                                   {g: by_value.column(g), **{n: by_value.column(f"{n}_sum") for n in _SUMMED}}))
            keys = {_ENTRIES: lengths, _PROB_BIN: probability_bins(keep_prob)}
            if text_column:
                keys[_LENGTH_BIN] = length_bins(pc.utf8_length(batch.column(text_column)).fill_null(0)
                                                .to_numpy(zero_copy_only=False))
            for name, key in keys.items():
                sums = _summed_by(key, weights)
                parts.append(_part(schema, name, sums[_VALUE].size, sums))
            if counts_broadcast is not None:
                plan_sums, certain = plan_sums_of(batch, lengths, flat)
                parts.append(_part(schema, _PLAN, 1, {"pairs": [batch.num_rows], **{
                    name: [int(v)] for name, v in zip(plan_names, [*plan_sums, *certain])}}))
            yield from pa.concat_tables(parts).to_batches()

    try:
        rows = (source.mapInArrow(partial_sums, output_schema).groupBy(_SET, *groups, _VALUE)
                .agg(*[F.sum(F.col(name).cast("decimal(38,0)")).alias(name) for name in sum_names]).collect())
    finally:
        plan_broadcasts = ([] if counts_broadcast is None else list(counts_broadcast.values())
                           if isinstance(counts_broadcast, dict) else [counts_broadcast])
        for broadcast in broadcasts + plan_broadcasts:
            broadcast.unpersist()
    results = [{"set": "", "value": None, "pairs": 0, "expected": 0.0, "always_kept": 0}]  # when nothing matched
    plan = ([0] * n_ts, [0] * n_ts, 0) if plan_ts else None
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


def curated_pass(curated: DataFrame, groups: list[str], entries_total: int, text_column: str | None = None,
                 offsets: dict[str, int] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Over the curated table itself: per-entry counts after balancing (explode the kept pairs' entry ids, count;
    one row per entry reaches the driver, as Arrow), and kept pairs by group, by caption-length bin (with
    `text_column`) and in total (grouping sets over the pairs themselves, in a second scan: applied to the exploded
    ids, the sets would multiply each pair's rows by its entries). Worldwide (`offsets`), entries are counted per
    (language, id) and placed as entry_keys places them."""
    lengths = [_length_bin_column(text_column).alias(_LENGTH_BIN)] if text_column else []
    results = grouped_counts(curated.select(*groups, *lengths), groups, [(_LENGTH_BIN,)] if text_column else [],
                             [F.count("*").alias("pairs")])
    languages = [METADATA_LANG] if offsets is not None else []
    counts = (curated.select(*languages, F.explode(ENTRY_IDS).alias("entry_id")).groupBy(*languages, "entry_id")
              .agg(F.count("*").alias("matches")).toArrow())
    after = np.zeros(entries_total, dtype=np.int64)
    after[entry_keys(counts, offsets)] = counts.column("matches").to_numpy()
    return after, results


def language_offsets(run: dict) -> dict[str, int] | None:
    """Worldwide: where each language's list starts in the report's one per-entry vector, the lists laid end to end
    in the run's order of languages (so (language, id) is one position, and no two languages' ids meet); None for
    a v1 run, whose entry ids are the positions."""
    if not run.get("worldwide"):
        return None
    offsets, start = {}, 0
    for code in run["metadata_languages"]:
        offsets[code] = start
        start += int(run["by_lang"][code]["entries"])
    return offsets


def entry_keys(table: pa.Table, offsets: dict[str, int] | None) -> np.ndarray:
    """Positions in the per-entry vector of a table's entries (entry_id, and METADATA_LANG when worldwide)."""
    ids = table.column("entry_id").to_numpy().astype(np.int64)
    if offsets is None:
        return ids
    codes = table.column(METADATA_LANG).to_pylist()
    return ids + np.fromiter((offsets[code] for code in codes), np.int64, len(codes))


def _thresholds_by_entry(run: dict, offsets: dict[str, int] | None, entries_total: int, t: int) -> int | np.ndarray:
    """The t each entry was balanced at: the run's t (v1), or its language's, position by position (worldwide)."""
    if offsets is None:
        return t
    by_entry = np.ones(entries_total, dtype=np.int64)
    for code, start in offsets.items():
        by_entry[start:start + int(run["by_lang"][code]["entries"])] = int(run["t_by_lang"][code])
    return by_entry


def _binned(results: list[dict], key: str = "pairs") -> list[int]:
    """Pairs per caption-length bin from grouped results (zeros where no pair fell)."""
    counts = [0] * len(LENGTH_EDGES)
    for r in results:
        if r["set"] == _LENGTH_BIN:
            counts[int(r["value"])] = int(r[key] or 0)
    return counts


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


def caption_samples(matched: DataFrame, pairs: DataFrame | None, probabilities: np.ndarray | dict[str, np.ndarray],
                    seed: int, text_column: str) -> dict:
    """Seeded samples: curated and dropped-by-balancing captions from the SAMPLE_POOL matched pairs first in the
    seeded order, told apart by the run's own keep draws; unmatched captions from the first pairs of `pairs` in the
    same order that are not in `matched` (a semi-join against that bounded list). Entries as ids (names added by
    the caller for the ids in them). Worldwide (`probabilities` per language), each pair's draws take its own
    language's p_e, and each item says its language."""
    worldwide = isinstance(probabilities, dict)
    columns = ["crawl", "uuid", text_column, ENTRY_IDS, *([METADATA_LANG] if worldwide else [])]
    rows = _first_in_seeded_order(matched, seed, text_column, columns, SAMPLE_POOL)
    lengths = np.array([len(r[ENTRY_IDS]) for r in rows], dtype=np.int64)
    flat = np.array([e for r in rows for e in r[ENTRY_IDS]], dtype=np.int64)
    if worldwide:
        flat_probs = language_entry_probabilities([r[METADATA_LANG] for r in rows], lengths, flat,
                                                  probabilities.__getitem__)
    else:
        flat_probs = probabilities[flat]
    keep, keep_prob = draws.decide_flat(seed, [r["uuid"] for r in rows], [r[text_column] for r in rows],
                                            lengths, flat, flat_probs)
    items = [{"crawl": r["crawl"], "uuid": r["uuid"], "text": sample_text(r[text_column]),
              "entry_ids": list(r[ENTRY_IDS]), "keep_prob": float(p),
              **({"metadata_lang": r[METADATA_LANG]} if worldwide else {})} for r, p in zip(rows, keep_prob)]
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


def _by_group(results: list[dict], groups: list[str], key: str) -> dict[str, dict[str, float]]:
    return {g: {group_value(r["value"]): r[key] for r in results if r["set"] == g} for g in groups}


def _load_run(spark: SparkSession, root: OutputRoot) -> dict:
    """The latest run's summary (ROOT/summary.json), checked to have the tables the report reads."""
    summary = root.summary()
    if summary is None:
        raise InputError(f"{root.root} holds no finished curation run (summary.json); run `curate` first")
    for table in ("counts", "curated"):
        if not path_exists(spark, root.path(table)):
            raise InputError(f"{root.root} has no {table}/ table; run `curate` first")
    return summary


def _files_read(root: OutputRoot, crawls: list[str]) -> dict:
    """Input files done, read in part (with why) and failed over the run's crawls, from the unit markers."""
    states = OutputRoot.file_states(root.committed_units(crawls))
    return tally_files(sorted(states.values(), key=lambda s: s["file"]))


def _pairs_in_by_group(root: OutputRoot, run: dict, groups: list[str]) -> dict[str, dict[str, int] | None]:
    """Pairs in per value of each group column, from the crawl states (recorded at ingest; the input is never read
    again). None for a column some crawl's pairs do not carry, or a crawl ingested before the states recorded it."""
    result: dict[str, dict[str, int] | None] = {g: None for g in groups}
    if "crawl" in groups and run.get("by_crawl"):
        result["crawl"] = {crawl: int(state["pairs"]) for crawl, state in run["by_crawl"].items()}
    recorded = [(root.crawl_state(crawl) or {}).get("pairs_by") for crawl in run["crawls"]]
    for g in groups:
        if g == "crawl" or any(r is None or g not in r for r in recorded):
            continue
        totals: dict[str, int] = {}
        for by in recorded:
            for value, n in by[g].items():
                totals[value] = totals.get(value, 0) + int(n)
        result[g] = totals
    return result


def compute_report(spark: SparkSession, output: str) -> tuple[dict, dict]:
    """The report's numbers (the report summary, without plots) and the count vectors the plots need."""
    root = OutputRoot(spark, output)
    run = _load_run(spark, root)
    entries_total = int(run["entries_total"])
    t = int(run.get("t") or 1)  # a worldwide set without an English list has no single t
    worldwide = bool(run.get("worldwide"))
    # Worldwide, an entry is (language, id): the per-entry vectors lay the languages' lists end to end, and each
    # entry is judged against its own language's t.
    offsets = language_offsets(run)
    t_by_entry = _thresholds_by_entry(run, offsets, entries_total, t)
    # One row per matched entry: bounded by the metadata (~500k), like the count vector itself.
    counts_table = read_table(spark, root.path("counts")).select(
        *([METADATA_LANG] if worldwide else []), "entry_id", "entry", "count").toArrow()
    counts_table = counts_table.append_column("key", pa.array(entry_keys(counts_table, offsets), pa.int64()))
    sizes = {code: int(run["by_lang"][code]["entries"]) for code in offsets} if worldwide else \
        {ONE_LIST: entries_total}
    counts_by_lang = count_vectors(counts_table, sizes)
    before = np.concatenate([counts_by_lang[code] for code in sizes])  # the lists end to end, as `offsets` says
    # Worldwide, each pair's keep probability takes its own language's p_e (that language's counts and t), as
    # balancing did.
    probabilities = ({code: draws.entry_probabilities(counts, int(run["t_by_lang"][code]))
                      for code, counts in counts_by_lang.items() if counts.any()} if worldwide
                     else draws.entry_probabilities(before, t))

    states = {crawl: root.crawl_state(crawl) or {} for crawl in run["crawls"]}
    url_column, text_column = _pair_columns(states)
    matched = root.read_crawls("matched", run["crawls"])  # the pool balanced by this run, with `crawl`
    curated = read_table(spark, root.path("curated"))
    groups = present_group_columns(matched)
    text = text_column if text_column in matched.columns else None
    tail_share = float(run.get("tail_share") or 0.06)
    # The plan table (expected pairs at each t, in exact fixed point; the run's t among them) is summed in the same
    # scan of matched/. Worldwide, its t is English's, and each row gives every other language the t `curate` would
    # derive from it (a root without an English list has no plan).
    plan_counts, plan_ts, auto_t, derived = before, [], None, []
    if not worldwide:
        auto_t = thresholds.auto_t(before, tail_share)
        plan_ts = sorted(set(thresholds.t_series(before)) | {t, auto_t})
    elif draws.ENGLISH in counts_by_lang:
        english = counts_by_lang[draws.ENGLISH]
        auto_t = thresholds.auto_t(english, tail_share)
        english_ts = sorted(set(thresholds.t_series(english)) | {t, auto_t})
        derived = [thresholds.resolve(counts_by_lang, t_en, tail_share, run.get("t_overrides") or {})[0]
                   for t_en in english_ts]
        plan_counts = {code: counts for code, counts in counts_by_lang.items() if counts.any()}
        plan_ts = {code: [by_lang[code] for by_lang in derived] for code in plan_counts}
    matched_results, plan_sums = matched_pass(matched, probabilities, groups, text, plan_counts, plan_ts)
    after, curated_results = curated_pass(curated, [g for g in groups if g in curated.columns], entries_total,
                                          text if text in curated.columns else None, offsets)
    pool_by_group = _pairs_in_by_group(root, run, groups)

    total = next(r for r in matched_results if r["set"] == "")
    pairs_matched = int(total["pairs"])
    pairs_curated = int(next(r for r in curated_results if r["set"] == "")["pairs"])
    pairs_in = int(run["pairs_in"])

    plan = None
    expected_curated = float(total["expected"])
    if plan_ts:
        sums, certain, _ = plan_sums
        if worldwide:
            plan_rows = thresholds.expected_rows(thresholds.count_rows_by_language(plan_counts, english_ts, plan_ts),
                                                 pairs_matched, sums, certain)
            for row, by_lang in zip(plan_rows, derived):
                row["t_by_lang"] = {code: by_lang[code] for code in plan_counts}
        else:
            plan_rows = thresholds.plan_rows(before, plan_ts, pairs_matched, sums, certain)
        for row in plan_rows:
            row["auto"], row["this_run"] = row["t"] == auto_t, row["t"] == t
        expected_curated = next(row["expected_pairs"] for row in plan_rows if row["t"] == t)
        plan = {"auto_t": auto_t, "tail_share_target": tail_share, "rows": plan_rows,
                **({"t_is": "English's; every other language's derived from it"} if worldwide else {})}

    seed = int(run.get("seed") or 0)
    samples = None
    if text and "uuid" in matched.columns:
        extracted = [c for c, state in states.items() if state.get("kind") == KIND_EXTRACT]
        pairs = root.read_crawls("pairs", extracted) if extracted else None  # pools keep no unmatched rows
        samples = caption_samples(matched, pairs, probabilities, seed, text)
    hosts = top_hosts(curated, matched, url_column)

    by = {}
    matched_by = _by_group(matched_results, groups, "pairs")
    expected_by = _by_group(matched_results, groups, "expected")
    curated_by = _by_group(curated_results, groups, "pairs")
    for g in groups:
        values = sorted(set(matched_by[g]) | set(curated_by[g]) | set(pool_by_group[g] or {}))
        by[g] = [
            {
                "value": v,
                "pairs_in": int(pool_by_group[g].get(v, 0)) if pool_by_group[g] is not None else None,
                "pairs_matched": int(matched_by[g].get(v, 0)),
                "pairs_curated": int(curated_by[g].get(v, 0)),
                "expected_curated": float(expected_by[g].get(v) or 0.0),
            }
            for v in values
        ]

    entries_distribution = sorted(
        (int(r["value"]), int(r["pairs"])) for r in matched_results if r["set"] == _ENTRIES
    )
    histogram = [0] * PROBABILITY_BINS
    for r in matched_results:
        if r["set"] == _PROB_BIN:
            histogram[int(r["value"])] = int(r["pairs"])

    sampled = [item for kind in ("curated", "dropped", "unmatched") for item in (samples or {}).get(kind) or []]

    def keys_of(item: dict) -> list[int]:  # a sample's entries' positions in the per-entry vectors
        start = offsets[item["metadata_lang"]] if offsets is not None and item["entry_ids"] else 0
        return [start + i for i in item["entry_ids"]]

    top_ids = sorted({i for i, _ in top_entries(before)} | {i for i, _ in top_entries(after)}
                     | {k for item in sampled for k in keys_of(item)})
    named = counts_table.filter(pc.is_in(counts_table.column("key"), pa.array(top_ids, pa.int64())))
    names = dict(zip(named.column("key").to_pylist(), named.column("entry").to_pylist()))
    # Worldwide, a position's language and its id in that language's list, for the tables of top entries.
    located = (dict(zip(named.column("key").to_pylist(), zip(named.column(METADATA_LANG).to_pylist(),
                                                             named.column("entry_id").to_pylist())))
               if worldwide else {})
    del counts_table
    matches_before = int(before.sum())
    matches_after = int(after.sum())
    for item in sampled:
        item["entries"] = [names.get(k, "") for k in keys_of(item)]

    def listed(counts: np.ndarray) -> list[dict]:
        if worldwide:
            return [{"rank": rank, "metadata_lang": located[i][0], "entry_id": located[i][1], "entry": names.get(i, ""),
                     "count": c} for rank, (i, c) in enumerate(top_entries(counts), start=1)]
        return [{"rank": rank, "entry_id": i, "entry": names.get(i, ""), "count": c}
                for rank, (i, c) in enumerate(top_entries(counts), start=1)]

    report = {
        "output": output,
        "version": __version__,
        "run": {k: run.get(k) for k in ("run_id", "crawls", "metadata", "metadata_digest", "seed", "finished_at",
                                        "version")},
        "files": _files_read(root, run["crawls"]),
        "sizes": {
            "pairs_in": pairs_in,
            "pairs_matched": pairs_matched,
            "pairs_curated": pairs_curated,
            "expected_curated": expected_curated,
            "group_columns": groups,
            "groups_skipped": [g for g in GROUP_COLUMNS if g not in groups],
            "by": by,
            **pair_keys.report_sizes(run),  # the mode, and the copies of pool pairs each crawl dropped
        },
        "matching": {
            "share_matched": _ratio(pairs_matched, pairs_in),
            "matches_total": matches_before,
            "mean_entries_per_matched_text": _ratio(matches_before, pairs_matched),
            "entries_per_matched_text": [{"entries": k, "pairs": n} for k, n in entries_distribution],
            "entries_total": entries_total,
            "entries_matched": int((before > 0).sum()),
        },
        "balancing": {
            "t": t,
            "t_mode": run.get("t_mode"),
            "tail_share_target": run.get("tail_share"),
            "seed": run.get("seed"),
            # worldwide: each entry against its own language's t (t above is English's)
            "entries_over_t": int((before > t_by_entry).sum()),
            "tail_proportion_before": draws.tail_proportion(before, t_by_entry),
            "tail_proportion_after": draws.tail_proportion(after, t_by_entry),
            "matches_after": matches_after,
            "entries_matched_after": int((after > 0).sum()),
            "entries_over_t_after": int((after > t_by_entry).sum()),
            "pairs_always_kept": int(total["always_kept"] or 0),
            "keep_probability_histogram": {"bins": PROBABILITY_BINS, "pairs": histogram},
            "top_before": listed(before),
            "top_after": listed(after),
        },
        "warnings": [WORLDWIDE_NOTE, *(run.get("warnings") or [])] if worldwide else thresholds.balance_warnings(
            before, t, run.get("t_mode") or "fixed", tail_share, pairs_matched, pairs_curated),
        "funnel": funnel(run, pairs_matched, pairs_curated),
        "optout": optout_section(run),
        "languages": _languages(run) if worldwide else None,
        "plan": plan,
        "count_decades": {"before": thresholds.count_decades(before), "after": thresholds.count_decades(after)},
        "samples": samples,
        "hosts": hosts,
        "caption_lengths": {"bins": length_bin_labels(), "matched": _binned(matched_results),
                            "curated": _binned(curated_results)} if text else None,
        "stages": list(run.get("stages") or []),
        "config": run.get("config"),
    }
    return report, {"before": before, "after": after, "t_by_entry": t_by_entry}


def _languages(run: dict) -> dict:
    """A worldwide run's numbers per language (from its summary: counted at ingest and in the balance stage),
    languages with pairs first, most pairs first."""
    by_lang = dict(sorted(run.get("by_lang", {}).items(), key=lambda kv: (-kv[1]["pairs"], kv[0])))
    return {"t_en": run.get("t"), "t_mode": run.get("t_mode"), "p": run.get("english_tail_share") or 0.0,
            "by_lang": by_lang, "pairs_without_list": run.get("pairs_without_list") or {},
            "pairs_unknown_lang": run.get("pairs_unknown_lang") or 0}


def _pair_columns(states: dict[str, dict]) -> tuple[str, str]:
    """The url and text columns the run's crawls were ingested with (recorded in their states)."""
    columns = [state.get("columns") or {} for state in states.values()] or [{}]
    return columns[0].get("url", "url"), columns[0].get("text", "text")


# --- writing ----------------------------------------------------------------------------------------------------

def write_report(spark: SparkSession, output: str) -> dict:
    """Compute the report of a finished run in `output` and write DIR/report/; returns the report summary.

    Everything comes from the root: its tables, crawl states and summary (never the input again).
    """
    # Imported here, not at the top: executors unpickle this module's functions and need no matplotlib.
    from metaclip_spark.report import plots
    from metaclip_spark.report.public_summary import public_summary_files
    from metaclip_spark.report.html import render_html

    report_path = join_path(output, REPORT_DIR)
    with stage(spark, "report", f"numbers and plots of {output}") as run:
        report, vectors = compute_report(spark, output)
        run.rows = report["sizes"]["pairs_matched"] + report["sizes"]["pairs_curated"]
        before, after, t = vectors["before"], vectors["after"], report["balancing"]["t"]
        figures = {
            "entry_counts.png": plots.plot_entry_counts(before, after, vectors["t_by_entry"]),
            "cumulative_share.png": plots.plot_cumulative_share(before, after, vectors["t_by_entry"]),
            "keep_probabilities.png": plots.plot_keep_probabilities(
                report["balancing"]["keep_probability_histogram"]["pairs"]),
            "count_decades.png": plots.plot_count_decades(report["count_decades"]["before"],
                                                          report["count_decades"]["after"]),
            "entries_per_text.png": plots.plot_entries_per_text(report["matching"]["entries_per_matched_text"]),
        }
        if report["plan"]:
            figures["plan.png"] = plots.plot_plan(report["plan"]["rows"], t, report["plan"]["auto_t"],
                                                  "English's threshold t (every other language's derived from it)"
                                                  if report["plan"].get("t_is") else "threshold t")
        if report["caption_lengths"]:
            lengths = report["caption_lengths"]
            figures["caption_lengths.png"] = plots.plot_caption_lengths(lengths["bins"], lengths["matched"],
                                                                        lengths["curated"])
        images = {}
        report["plots"] = {}
        for file_name, figure in figures.items():
            axes = figure.axes[0]
            # The labels as drawn, read back from the figure, so a reader (or a test) can check what each plot shows.
            report["plots"][file_name] = {"title": axes.get_title(), "xlabel": axes.get_xlabel(),
                                          "ylabel": axes.get_ylabel(), "xscale": axes.get_xscale(),
                                          "yscale": axes.get_yscale(), "look_for": plots.LOOK_FOR[file_name]}
            images[file_name] = plots.figure_png(figure)
        # This report's own time, up to its writing (the run's other stages are in its summary).
        report["stages"].append({"stage": "report", "runs": 1, "seconds": round(run.elapsed, 1), "rows": run.rows})
        summary_text = json.dumps(report, indent=2, sort_keys=True) + "\n"
        files = {"summary.json": summary_text.encode("utf-8"), **images,
                 "index.html": render_html(report, images).encode("utf-8"),
                 **public_summary_files(spark, output)}  # public-summary.json/.md (report/public_summary.py)
        write_directory_atomically(spark, report_path, files)
    log.info("report: %s/index.html", report_path)
    return report
