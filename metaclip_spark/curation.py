"""The curation stages as Spark jobs: match (Arrow batches on executors), count (a reduction), balance."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import balancing, matching

ENTRY_IDS = "entry_ids"
KEEP_PROB = "keep_prob"
# Columns the report breaks pairs down by, when a table has them; a null value is shown as NO_VALUE.
GROUP_COLUMNS = ("crawl", "lang", "text_source")
NO_VALUE = "(none)"


def matched_schema(pool_schema: T.StructType) -> T.StructType:
    """The pool's columns plus `entry_ids` (sorted ascending, never empty)."""
    return T.StructType(list(pool_schema.fields) + [T.StructField(ENTRY_IDS, T.ArrayType(T.IntegerType(), False))])


def match_pool(pool: DataFrame, entries: list[str], digest: str, text_column: str) -> DataFrame:
    """Rows of `pool` whose text matches at least one entry, with their `entry_ids`.

    The entry list travels once per executor as a broadcast; each Python worker builds its automaton once
    (cached by the metadata digest) and runs it over Arrow batches.
    """
    spark = pool.sparkSession
    entries_broadcast = spark.sparkContext.broadcast(entries)

    def match_batches(batches):
        matcher = matching.cached_matcher(digest, lambda: entries_broadcast.value)
        for batch in batches:
            yield matched_batch(matcher, batch, text_column)

    return pool.mapInArrow(match_batches, matched_schema(pool.schema))


_ENTRY_IDS_TYPE = pa.list_(pa.field("element", pa.int32(), nullable=False))


def matched_batch(matcher: matching.EntryMatcher, batch: pa.RecordBatch, text_column: str) -> pa.RecordBatch:
    """The rows of one Arrow batch that match at least one entry, with their `entry_ids` column added."""
    ids = matcher.match_many(batch.column(text_column).to_pylist())
    keep = pa.array([bool(x) for x in ids], pa.bool_())
    matched_ids = pa.array([x for x in ids if x], _ENTRY_IDS_TYPE)
    return pa.RecordBatch.from_arrays([column.filter(keep) for column in batch.columns] + [matched_ids],
                                      names=batch.schema.names + [ENTRY_IDS])


def flattened_entry_ids(entry_ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow column of entry id lists as (length per row, all ids flattened): the shape balancing works on."""
    lengths = pc.list_value_length(entry_ids).fill_null(0).to_numpy(zero_copy_only=False)
    return lengths, pc.list_flatten(entry_ids).to_numpy(zero_copy_only=False)


COUNTS_SCHEMA = "entry_id int, entry string, count long"


def count_entries(matched: DataFrame, entries: list[str]) -> DataFrame:
    """`entry_id, entry, count` for every entry matched at least once: a distributed reduction, then the entry
    names looked up from a broadcast list (a table of 500k names joined in would travel inside every task)."""
    counts = matched.select(F.explode(ENTRY_IDS).alias("entry_id")).groupBy("entry_id").agg(F.count("*").alias("count"))
    names = matched.sparkSession.sparkContext.broadcast(entries)

    def named(batches):
        entry_names = names.value
        for batch in batches:
            ids = batch.column("entry_id").to_pylist()
            yield pa.RecordBatch.from_arrays(
                [batch.column("entry_id"), pa.array([entry_names[i] for i in ids], pa.string()),
                 batch.column("count")], names=["entry_id", "entry", "count"])

    return counts.select("entry_id", "count").mapInArrow(named, COUNTS_SCHEMA)


def group_value(value) -> str:
    return NO_VALUE if value is None else str(value)


def pairs_by_group(pairs: DataFrame, skipped_column: str | None = None) -> tuple[int, dict[str, dict[str, int]], dict]:
    """(pairs, {column: {value: pairs}}, {reason: rows}) for the group columns the table has (but `crawl`), in one
    aggregation of at most (languages x text sources x skip reasons) rows: recorded at ingest so the report never
    reads the input again. Rows with a reason in `skipped_column` are not pairs: they are counted by reason only."""
    columns = [c for c in GROUP_COLUMNS if c != "crawl" and c in pairs.columns]
    rows = pairs.groupBy(*columns, *([skipped_column] if skipped_column else [])).count().collect()
    by: dict[str, dict[str, int]] = {c: {} for c in columns}
    skipped: dict[str, int] = {}
    for row in rows:
        if skipped_column and row[skipped_column] is not None:
            skipped[row[skipped_column]] = skipped.get(row[skipped_column], 0) + int(row["count"])
            continue
        for c in columns:
            value = group_value(row[c])
            by[c][value] = by[c].get(value, 0) + int(row["count"])
    total = sum(int(row["count"]) for row in rows if not skipped_column or row[skipped_column] is None)
    return total, by, skipped


def count_vector(counts: DataFrame, entries_total: int) -> np.ndarray:
    """The per-entry count vector on the driver (one number per entry: bounded by the metadata, not the pool)."""
    table = counts.select("entry_id", "count").toArrow()
    vector = np.zeros(entries_total, dtype=np.int64)
    vector[table.column("entry_id").to_numpy()] = table.column("count").to_numpy()
    return vector


def balance_pool(matched: DataFrame, probabilities: np.ndarray, seed: int, text_column: str) -> DataFrame:
    """Rows of `matched` kept by their seeded draws, plus `keep_prob` = 1 - prod(1 - p_e)."""
    spark = matched.sparkSession
    probabilities_broadcast = spark.sparkContext.broadcast(probabilities)
    output_schema = T.StructType(list(matched.schema.fields) + [T.StructField(KEEP_PROB, T.DoubleType(), False)])

    def balance_batches(batches):
        probs = probabilities_broadcast.value
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            keep, keep_prob = balancing.decide(
                seed, batch.column("uuid").to_pylist(), batch.column(text_column).to_pylist(), lengths, flat, probs
            )
            mask = pa.array(keep)
            yield pa.RecordBatch.from_arrays(
                [column.filter(mask) for column in batch.columns] + [pa.array(keep_prob[keep], pa.float64())],
                names=batch.schema.names + [KEEP_PROB],
            )

    return matched.mapInArrow(balance_batches, output_schema)
