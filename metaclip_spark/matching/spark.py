"""The match stage as a Spark job: each pool text matched against its list's entries, on Arrow batches on the
executors. One path for both kinds of metadata: a v1 list is one list (English's) that every text is matched
against; a worldwide set is a list per language, each text matched against its own language's (METADATA_LANG)."""

from __future__ import annotations

from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from metaclip_spark.matching import lang_codes
from metaclip_spark.matching import substrings
from metaclip_spark.root.columns import ENTRY_IDS, METADATA_LANG


def matched_schema(pool_schema: T.StructType) -> T.StructType:
    """The pool's columns plus `entry_ids` (sorted ascending, never empty)."""
    return T.StructType(list(pool_schema.fields) + [T.StructField(ENTRY_IDS, T.ArrayType(T.IntegerType(), False))])


def language_broadcasts(spark, lists: dict[str, list]) -> dict:
    """One broadcast per language: an executor fetches only the languages its tasks read."""
    return {code: spark.sparkContext.broadcast(values) for code, values in lists.items()}


class ListChoice:
    """Which list each pair is matched against (and balanced with): a worldwide pool's pairs name theirs in
    METADATA_LANG (Metadata.list_column); a v1 pool's all take its one list, and its tables have no such column.
    Built from the run's Metadata, or, by what reads a finished root, from its RunSummary (the same `lists` and
    `list_column`). Small and picklable: it travels inside the tasks."""

    def __init__(self, metadata):
        self.column = metadata.list_column
        self.one_list = None if self.column else next(iter(metadata.lists))
        self.keys = [self.column] if self.column else []  # what a table of pairs or counts is keyed by, besides ids

    def codes(self, batch: pa.RecordBatch) -> list:
        """The code of each row's list."""
        return batch.column(self.column).to_pylist() if self.column else [self.one_list] * batch.num_rows

    def code_of(self, row: dict) -> str:
        """The code of one row's list (a row as a dict)."""
        return row[self.column] if self.column else self.one_list

    def expression(self):
        """The same as a Spark column expression (a literal for one list)."""
        return F.col(self.column) if self.column else F.lit(self.one_list)


def match_pool(pool: DataFrame, metadata, text_column: str) -> DataFrame:
    """Rows of `pool` whose text matches at least one entry of its list, with their `entry_ids`.

    Each list travels as a broadcast of its own, fetched by an executor only when a text of that list comes; each
    Python worker builds a list's automaton once (cached by the metadata digest) and runs it over Arrow batches. A
    worldwide pool carries METADATA_LANG (see `with_metadata_lang`), and a text whose language has no list matches
    nothing; a v1 pool's texts all take its one list.
    """
    lists = language_broadcasts(pool.sparkSession, metadata.lists)
    digest, kana, max_bytes = metadata.digest, metadata.kana, metadata.automata_max_bytes
    choice, edge_rule = ListChoice(metadata), metadata.worldwide  # MetaCLIP 2's edge rule for a set, v1's for a list

    def match_batches(batches):
        matchers = substrings.cached_language_matchers(digest, lambda: substrings.LanguageMatchers(
            lists, lambda code: lists[code].value, max_bytes, kana, worldwide=edge_rule))
        for batch in batches:
            # A batch of one list (every v1 batch) is matched in one call (LanguageMatchers.match_many)
            yield with_entry_ids(batch, matchers.match_many(choice.codes(batch), batch.column(text_column).to_pylist()))

    return pool.mapInArrow(match_batches, matched_schema(pool.schema))


def with_metadata_lang(pairs: DataFrame, lang_column: str | None, text_column: str) -> DataFrame:
    """`pairs` with METADATA_LANG, the code of the list each text is matched against (`other` when it has no
    language or no Wikipedia code): a pool's `lang_column`, when the pool has one (it holds metadata codes; a
    variant's merged into its prefix's); else the lid.176 label of a
    `lang` column (Common Crawl pairs) mapped to its code; else lid.176 run on the texts (adding `lang` and
    `lang_score`, as extraction does)."""
    if lang_column and lang_column in pairs.columns:
        # A variant code goes to its prefix's list (zh-yue -> zh), an empty one to `other` (matching/lang_codes.py).
        code = F.col(lang_column).cast("string")
        merged = F.split(F.regexp_replace(code, "_", "-"), "-").getItem(0)
        return pairs.withColumn(METADATA_LANG, F.when(F.coalesce(code, F.lit("")) == "", F.lit(lang_codes.OTHER))
                                .otherwise(merged))
    if "lang" in pairs.columns:
        mapping = F.create_map(*[F.lit(x) for pair in lang_codes.LABEL_TO_CODE.items() for x in pair])
        return pairs.withColumn(METADATA_LANG, F.coalesce(F.try_element_at(mapping, F.col("lang")),
                                                          F.lit(lang_codes.OTHER)))
    schema = T.StructType(list(pairs.schema.fields) + [
        T.StructField("lang", T.StringType()), T.StructField("lang_score", T.FloatType()),
        T.StructField(METADATA_LANG, T.StringType())])

    def identify(batches):
        from metaclip_spark.extraction.language import identify_language

        for batch in batches:
            found = [identify_language(text) if text else ("", 0.0) for text in batch.column(text_column).to_pylist()]
            labels = [label for label, _ in found]
            yield pa.RecordBatch.from_arrays(
                list(batch.columns) + [pa.array(labels, pa.string()), pa.array([s for _, s in found], pa.float32()),
                                       pa.array([lang_codes.metadata_code(x) for x in labels], pa.string())],
                names=batch.schema.names + ["lang", "lang_score", METADATA_LANG])

    return pairs.mapInArrow(identify, schema)


_ENTRY_IDS_TYPE = pa.list_(pa.field("element", pa.int32(), nullable=False))


def matched_batch(matcher: substrings.EntryMatcher, batch: pa.RecordBatch, text_column: str) -> pa.RecordBatch:
    """The rows of one Arrow batch that match at least one entry of one list, with their `entry_ids` column added
    (the body of match_pool's work for a batch of one list; bench/profile_match.py times it)."""
    return with_entry_ids(batch, matcher.match_many(batch.column(text_column).to_pylist()))


def entry_ids_array(ids: list[list[int]]) -> tuple[np.ndarray, pa.Array]:
    """(keep: rows with at least one id, the kept rows' id lists as an Arrow list column), built from flat
    offsets and values: converting ~10 Python lists of ints per row one by one costs more than matching them."""
    lengths = np.fromiter(map(len, ids), np.int32, len(ids))
    keep = lengths > 0
    offsets = np.zeros(int(keep.sum()) + 1, np.int32)
    np.cumsum(lengths[keep], out=offsets[1:])
    values = np.fromiter(chain.from_iterable(ids), np.int32, int(offsets[-1]))
    return keep, pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), type=_ENTRY_IDS_TYPE)


def with_entry_ids(batch: pa.RecordBatch, ids: list[list[int]]) -> pa.RecordBatch:
    """The rows of `batch` with at least one id in `ids` (one list per row), with their `entry_ids` column."""
    keep, matched_ids = entry_ids_array(ids)
    mask = pa.array(keep)
    return pa.RecordBatch.from_arrays([column.filter(mask) for column in batch.columns] + [matched_ids],
                                      names=batch.schema.names + [ENTRY_IDS])


def flattened_entry_ids(entry_ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow column of entry id lists as (length per row, all ids flattened): the shape balancing works on."""
    lengths = pc.list_value_length(entry_ids).fill_null(0).to_numpy(zero_copy_only=False)
    return lengths, pc.list_flatten(entry_ids).to_numpy(zero_copy_only=False)
