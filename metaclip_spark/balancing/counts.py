"""The entry counts: how many matched pairs hold each entry, as tables (a Spark reduction) and as per-language count
vectors on the driver (one number per entry of a list: bounded by the metadata, never by the pool).

A worldwide count table is keyed by (METADATA_LANG, entry_id); a v1 table, of its one list, by entry_id alone (its
schema as it always was): read as vectors, it is the one list, English's ({ONE_LIST: vector}). Every stage that
needs the counts as numbers (balance, plan, report, export) takes them from `count_vectors`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from metaclip_spark.metadata.lists import ONE_LIST
from metaclip_spark.root.columns import ENTRY_IDS, METADATA_LANG

COUNT_COLUMNS = ["entry_id", "entry", "count"]


def counts_schema(keys: list[str]) -> str:
    return ", ".join([f"{key} string" for key in keys] + ["entry_id int, entry string, count long"])


def count_entries(matched, metadata):
    """`[metadata_lang,] entry_id, entry, count` for every (list, entry) matched at least once: a distributed
    reduction, then the entry names looked up from the broadcast lists (a table of 500k names joined in would
    travel inside every task)."""
    from pyspark.sql import functions as F

    from metaclip_spark.matching.spark import ListChoice, language_broadcasts

    choice = ListChoice(metadata)
    keys = choice.keys
    counts = (matched.select(*keys, F.explode(ENTRY_IDS).alias("entry_id"))
              .groupBy(*keys, "entry_id").agg(F.count("*").alias("count")))
    lists = language_broadcasts(matched.sparkSession, metadata.lists)

    def named(batches):
        for batch in batches:
            entries = {}  # each list's names, taken from its broadcast once per batch
            names = [(entries.get(code) or entries.setdefault(code, lists[code].value))[i]
                     for code, i in zip(choice.codes(batch), batch.column("entry_id").to_pylist())]
            yield pa.RecordBatch.from_arrays(
                [*(batch.column(key) for key in keys), batch.column("entry_id"), pa.array(names, pa.string()),
                 batch.column("count")], names=[*keys, *COUNT_COLUMNS])

    return counts.select(*keys, "entry_id", "count").mapInArrow(named, counts_schema(keys))


def count_vectors(table: pa.Table, sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """{language: count vector} of a count table (Arrow: entry_id, count, and METADATA_LANG when worldwide; rows
    of the same entry, e.g. of several crawls, are summed). `sizes`: each list's length (its vector is that long, a
    language without counts all zeros); a language not in it gets a vector up to its largest counted id. A table
    without METADATA_LANG is the one list, ONE_LIST."""
    ids = np.asarray(table.column("entry_id").to_numpy(), dtype=np.int64)
    values = np.asarray(table.column("count").to_numpy(), dtype=np.int64)
    vectors = {code: np.zeros(int(size), dtype=np.int64) for code, size in (sizes or {}).items()}
    if METADATA_LANG in table.column_names:
        codes = np.array(table.column(METADATA_LANG).to_pylist(), dtype=object)
        rows_of = {code: codes == code for code in set(codes.tolist())}
    else:
        rows_of = {ONE_LIST: slice(None)}
    for code, rows in rows_of.items():
        code_ids, code_values = ids[rows], values[rows]
        vector = vectors.get(code)
        if vector is None:
            vector = vectors[code] = np.zeros(int(code_ids.max(initial=-1)) + 1, dtype=np.int64)
        np.add.at(vector, code_ids, code_values)
    return vectors


def read_count_vectors(counts, metadata) -> dict[str, np.ndarray]:
    """The count vectors of a counts DataFrame (counts/ of a run), one per list of `metadata`, on the driver."""
    from metaclip_spark.matching.spark import ListChoice

    columns = [*ListChoice(metadata).keys, "entry_id", "count"]
    return count_vectors(counts.select(*columns).toArrow(),
                         {code: len(entries) for code, entries in metadata.lists.items()})


def pairs_per_list(pairs, metadata) -> dict[str, int]:
    """{list: pairs} of a DataFrame of matched or curated pairs: one small aggregation by each pair's list (one row
    per language)."""
    from metaclip_spark.matching.spark import ListChoice

    rows = pairs.groupBy(ListChoice(metadata).expression().alias("list")).count().collect()
    return {row["list"]: int(row["count"]) for row in rows}
