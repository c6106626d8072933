"""The curation stages as Spark jobs: match (Arrow batches on executors), count (a reduction), balance."""

from __future__ import annotations

from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from metaclip_spark.balancing import draws
from metaclip_spark.matching import lang_codes
from metaclip_spark.matching import substrings

ENTRY_IDS = "entry_ids"
KEEP_PROB = "keep_prob"
# Worldwide: the metadata language a pair is matched in (a code naming one list of the set), null when unknown.
METADATA_LANG = "metadata_lang"
# Columns the report breaks pairs down by, when a table has them; a null value is shown as NO_VALUE.
GROUP_COLUMNS = ("crawl", "lang", "text_source")
# ... and the ones ingest counts pairs by (a worldwide pool's pairs per metadata language too).
PAIRS_BY_COLUMNS = GROUP_COLUMNS + (METADATA_LANG,)
NO_VALUE = "(none)"


def matched_schema(pool_schema: T.StructType) -> T.StructType:
    """The pool's columns plus `entry_ids` (sorted ascending, never empty)."""
    return T.StructType(list(pool_schema.fields) + [T.StructField(ENTRY_IDS, T.ArrayType(T.IntegerType(), False))])


def match_pool(pool: DataFrame, metadata, text_column: str) -> DataFrame:
    """Rows of `pool` whose text matches at least one entry, with their `entry_ids`.

    The entry list travels once per executor as a broadcast; each Python worker builds its automaton once
    (cached by the metadata digest) and runs it over Arrow batches. Worldwide, each language's list is a broadcast
    of its own, fetched by a worker only when a text of that language comes (the pool carries METADATA_LANG, see
    `with_metadata_lang`); a text whose language has no list matches nothing.
    """
    if metadata.worldwide:
        return _match_pool_worldwide(pool, metadata, text_column)
    spark = pool.sparkSession
    entries_broadcast = spark.sparkContext.broadcast(metadata.entries)
    digest = metadata.digest

    def match_batches(batches):
        matcher = substrings.cached_matcher(digest, lambda: entries_broadcast.value)
        for batch in batches:
            yield matched_batch(matcher, batch, text_column)

    return pool.mapInArrow(match_batches, matched_schema(pool.schema))


def language_broadcasts(spark, lists: dict[str, list]) -> dict:
    """One broadcast per language: an executor fetches only the languages its tasks read."""
    return {code: spark.sparkContext.broadcast(values) for code, values in lists.items()}


def _match_pool_worldwide(pool: DataFrame, metadata, text_column: str) -> DataFrame:
    lists = language_broadcasts(pool.sparkSession, metadata.lists)
    digest, kana, max_bytes = metadata.digest, metadata.kana, metadata.automata_max_bytes

    def match_batches(batches):
        matchers = substrings.cached_language_matchers(
            digest, lambda: substrings.LanguageMatchers(lists, lambda code: lists[code].value, max_bytes, kana))
        for batch in batches:
            yield matched_batch_worldwide(matchers, batch, text_column)

    return pool.mapInArrow(match_batches, matched_schema(pool.schema))


def matched_batch_worldwide(matchers: substrings.LanguageMatchers, batch: pa.RecordBatch,
                            text_column: str) -> pa.RecordBatch:
    """`matched_batch` with each text matched against its own language's list (the METADATA_LANG column)."""
    ids = matchers.match_many(batch.column(METADATA_LANG).to_pylist(), batch.column(text_column).to_pylist())
    return _with_entry_ids(batch, ids)


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
    """The rows of one Arrow batch that match at least one entry, with their `entry_ids` column added."""
    return _with_entry_ids(batch, matcher.match_many(batch.column(text_column).to_pylist()))


def entry_ids_array(ids: list[list[int]]) -> tuple[np.ndarray, pa.Array]:
    """(keep: rows with at least one id, the kept rows' id lists as an Arrow list column), built from flat
    offsets and values: converting ~10 Python lists of ints per row one by one costs more than matching them."""
    lengths = np.fromiter(map(len, ids), np.int32, len(ids))
    keep = lengths > 0
    offsets = np.zeros(int(keep.sum()) + 1, np.int32)
    np.cumsum(lengths[keep], out=offsets[1:])
    values = np.fromiter(chain.from_iterable(ids), np.int32, int(offsets[-1]))
    return keep, pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), type=_ENTRY_IDS_TYPE)


def _with_entry_ids(batch: pa.RecordBatch, ids: list[list[int]]) -> pa.RecordBatch:
    keep, matched_ids = entry_ids_array(ids)
    mask = pa.array(keep)
    return pa.RecordBatch.from_arrays([column.filter(mask) for column in batch.columns] + [matched_ids],
                                      names=batch.schema.names + [ENTRY_IDS])


def flattened_entry_ids(entry_ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow column of entry id lists as (length per row, all ids flattened): the shape balancing works on."""
    lengths = pc.list_value_length(entry_ids).fill_null(0).to_numpy(zero_copy_only=False)
    return lengths, pc.list_flatten(entry_ids).to_numpy(zero_copy_only=False)


COUNTS_SCHEMA = "entry_id int, entry string, count long"
WORLDWIDE_COUNTS_SCHEMA = f"{METADATA_LANG} string, entry_id int, entry string, count long"


def count_entries(matched: DataFrame, metadata) -> DataFrame:
    """`entry_id, entry, count` for every entry matched at least once: a distributed reduction, then the entry
    names looked up from a broadcast list (a table of 500k names joined in would travel inside every task).
    Worldwide, `metadata_lang, entry_id, entry, count`: counted per (language, entry) in the same reduction."""
    if getattr(metadata, "worldwide", False):
        return _count_entries_worldwide(matched, metadata)
    counts = matched.select(F.explode(ENTRY_IDS).alias("entry_id")).groupBy("entry_id").agg(F.count("*").alias("count"))
    # A v1 Metadata, or its entry list as such.
    names = matched.sparkSession.sparkContext.broadcast(getattr(metadata, "entries", metadata))

    def named(batches):
        entry_names = names.value
        for batch in batches:
            ids = batch.column("entry_id").to_pylist()
            yield pa.RecordBatch.from_arrays(
                [batch.column("entry_id"), pa.array([entry_names[i] for i in ids], pa.string()),
                 batch.column("count")], names=["entry_id", "entry", "count"])

    return counts.select("entry_id", "count").mapInArrow(named, COUNTS_SCHEMA)


def _count_entries_worldwide(matched: DataFrame, metadata) -> DataFrame:
    counts = (matched.select(METADATA_LANG, F.explode(ENTRY_IDS).alias("entry_id"))
              .groupBy(METADATA_LANG, "entry_id").agg(F.count("*").alias("count")))
    lists = language_broadcasts(matched.sparkSession, metadata.lists)

    def named(batches):
        for batch in batches:
            codes, ids = batch.column(METADATA_LANG).to_pylist(), batch.column("entry_id").to_pylist()
            yield pa.RecordBatch.from_arrays(
                [batch.column(METADATA_LANG), batch.column("entry_id"),
                 pa.array([lists[code].value[i] for code, i in zip(codes, ids)], pa.string()), batch.column("count")],
                names=[METADATA_LANG, "entry_id", "entry", "count"])

    return counts.select(METADATA_LANG, "entry_id", "count").mapInArrow(named, WORLDWIDE_COUNTS_SCHEMA)


def group_value(value) -> str:
    return NO_VALUE if value is None else str(value)


def pairs_by_group(pairs: DataFrame, skipped_column: str | None = None,
                   flag_column: str | None = None) -> tuple[int, dict[str, dict[str, int]], dict]:
    """(pairs, {column: {value: pairs}}, {reason: rows}) for the group columns the table has (but `crawl`), in one
    aggregation of at most (languages x text sources x skip reasons) rows: recorded at ingest so the report never
    reads the input again. Rows with a reason in `skipped_column` are not pairs: they are counted by reason only.
    `flag_column` (a boolean column, when the table has it): the pairs where it is true are counted too, under its
    name in the last dict."""
    columns = [c for c in PAIRS_BY_COLUMNS if c != "crawl" and c in pairs.columns]
    flag_column = flag_column if flag_column in pairs.columns else None
    rows = pairs.groupBy(*columns, *[c for c in (skipped_column, flag_column) if c]).count().collect()
    by: dict[str, dict[str, int]] = {c: {} for c in columns}
    skipped: dict[str, int] = {}
    for row in rows:
        if skipped_column and row[skipped_column] is not None:
            skipped[row[skipped_column]] = skipped.get(row[skipped_column], 0) + int(row["count"])
            continue
        if flag_column and row[flag_column]:
            skipped[flag_column] = skipped.get(flag_column, 0) + int(row["count"])
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


def count_vectors(counts: DataFrame, metadata) -> dict[str, np.ndarray]:
    """Worldwide: {language: count vector over its list} on the driver (bounded by the metadata, not the pool)."""
    table = counts.select(METADATA_LANG, "entry_id", "count").toArrow()
    vectors = {code: np.zeros(len(entries), dtype=np.int64) for code, entries in metadata.lists.items()}
    codes = table.column(METADATA_LANG).to_pylist()
    ids, values = table.column("entry_id").to_numpy(), table.column("count").to_numpy()
    for code in set(codes):
        rows = np.fromiter((c == code for c in codes), bool, len(codes))
        vectors[code][ids[rows]] = values[rows]
    return vectors


def balance_pool(matched: DataFrame, probabilities, seed: int, text_column: str) -> DataFrame:
    """Rows of `matched` kept by their seeded draws, plus `keep_prob` = 1 - prod(1 - p_e). `probabilities` is one
    vector (v1) or, worldwide, {language: vector}: each row's entries take their p_e from its own language."""
    if isinstance(probabilities, dict):
        return _balance_pool_worldwide(matched, probabilities, seed, text_column)
    spark = matched.sparkSession
    probabilities_broadcast = spark.sparkContext.broadcast(probabilities)
    output_schema = T.StructType(list(matched.schema.fields) + [T.StructField(KEEP_PROB, T.DoubleType(), False)])

    def balance_batches(batches):
        probs = probabilities_broadcast.value
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            keep, keep_prob = draws.decide(
                seed, batch.column("uuid").to_pylist(), batch.column(text_column).to_pylist(), lengths, flat, probs
            )
            mask = pa.array(keep)
            yield pa.RecordBatch.from_arrays(
                [column.filter(mask) for column in batch.columns] + [pa.array(keep_prob[keep], pa.float64())],
                names=batch.schema.names + [KEEP_PROB],
            )

    return matched.mapInArrow(balance_batches, output_schema)


def language_entry_probabilities(codes: list, lengths: np.ndarray, flat: np.ndarray, vector_of) -> np.ndarray:
    """p_e of each (pair, entry), the pairs' entry ids given flattened with their lengths, each from the vector of
    its own pair's language (`codes`, one per pair; `vector_of(code)` gives that language's p_e vector)."""
    codes = np.array(codes, dtype=object)
    flat_codes = np.repeat(codes, lengths)
    flat_probs = np.empty(flat.size, dtype=np.float64)
    for code in set(codes.tolist()):
        where = flat_codes == code
        flat_probs[where] = vector_of(code)[flat[where]]
    return flat_probs


def _balance_pool_worldwide(matched: DataFrame, probabilities: dict[str, np.ndarray], seed: int,
                            text_column: str) -> DataFrame:
    broadcasts = language_broadcasts(matched.sparkSession, probabilities)
    output_schema = T.StructType(list(matched.schema.fields) + [T.StructField(KEEP_PROB, T.DoubleType(), False)])

    def balance_batches(batches):
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            flat_probs = language_entry_probabilities(batch.column(METADATA_LANG).to_pylist(), lengths, flat,
                                                      lambda code: broadcasts[code].value)
            keep, keep_prob = draws.decide_flat(seed, batch.column("uuid").to_pylist(),
                                                    batch.column(text_column).to_pylist(), lengths, flat, flat_probs)
            mask = pa.array(keep)
            yield pa.RecordBatch.from_arrays(
                [column.filter(mask) for column in batch.columns] + [pa.array(keep_prob[keep], pa.float64())],
                names=batch.schema.names + [KEEP_PROB],
            )

    return matched.mapInArrow(balance_batches, output_schema)
