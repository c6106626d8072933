"""The balance stage as a Spark job: each matched pair kept by its seeded draws (balancing/draws.py), on Arrow
batches on the executors, each pair's entries taking their p_e from the list it was matched against."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from metaclip_spark.balancing import draws
from metaclip_spark.matching.spark import ListChoice, flattened_entry_ids, language_broadcasts
from metaclip_spark.root.columns import ENTRY_IDS, KEEP_PROB


def language_entry_probabilities(codes: list, lengths: np.ndarray, flat: np.ndarray, vector_of) -> np.ndarray:
    """p_e of each (pair, entry), the pairs' entry ids given flattened with their lengths, each from the vector of
    its own pair's language (`codes`, one per pair; `vector_of(code)` gives that language's p_e vector)."""
    if codes and codes.count(codes[0]) == len(codes):  # a batch of one list (every v1 batch): no grouping
        return vector_of(codes[0])[flat]
    codes = np.array(codes, dtype=object)
    flat_codes = np.repeat(codes, lengths)
    flat_probs = np.empty(flat.size, dtype=np.float64)
    for code in set(codes.tolist()):
        where = flat_codes == code
        flat_probs[where] = vector_of(code)[flat[where]]
    return flat_probs


def balance_pool(matched: DataFrame, probabilities: dict[str, np.ndarray], seed: int, text_column: str,
                 choice: ListChoice) -> DataFrame:
    """Rows of `matched` kept by their seeded draws, plus `keep_prob` = 1 - prod(1 - p_e). `probabilities`:
    {language: p_e vector}; each row's entries take their p_e from its own list (`choice`)."""
    broadcasts = language_broadcasts(matched.sparkSession, probabilities)
    output_schema = T.StructType(list(matched.schema.fields) + [T.StructField(KEEP_PROB, T.DoubleType(), False)])

    def balance_batches(batches):
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            flat_probs = language_entry_probabilities(choice.codes(batch), lengths, flat,
                                                      lambda code: broadcasts[code].value)
            keep, keep_prob = draws.decide_flat(seed, batch.column("uuid").to_pylist(),
                                                batch.column(text_column).to_pylist(), lengths, flat, flat_probs)
            mask = pa.array(keep)
            yield pa.RecordBatch.from_arrays(
                [column.filter(mask) for column in batch.columns] + [pa.array(keep_prob[keep], pa.float64())],
                names=batch.schema.names + [KEEP_PROB],
            )

    return matched.mapInArrow(balance_batches, output_schema)
