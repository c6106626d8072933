"""De-duplication of pairs: one row per (uuid, text), the same row whatever the partitioning, grouping or run.

The row rule lives here alone: the extract stage applies it over a unit's files, a crawl's rebuild again over all
the crawl's units, so a crawl extracted over several incremental runs keeps exactly the rows of a single run. Which
pairs a crawl keeps when other crawls hold the same pair is ingestion/pair_keys.py's rule (one pool across crawls).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# Which of two duplicate pairs is kept: the one from the first file by path, then the first in that file. File
# paths (not manifest positions) so that a crawl extracted over several incremental runs keeps the same rows. Rows
# without these columns (a pool of pairs) keep the smallest by their other columns.
DEDUP_ORDER = ("source_file", "_seq")

# What Python's str.strip() removes (every character whose str.isspace() is true; tested against it): MetaCLIP's
# reference strips the texts of a pool this way before anything else. Spark's trim() removes U+0020 only.
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _orderable(kind: T.DataType) -> bool:
    """Whether Spark can order values of this type (maps cannot be compared, nor anything holding one)."""
    if isinstance(kind, T.MapType):
        return False
    if isinstance(kind, T.ArrayType):
        return _orderable(kind.elementType)
    if isinstance(kind, T.StructType):
        return all(_orderable(f.dataType) for f in kind.fields)
    return True


def deduplicated_columns(columns: list[str], text_column: str = "text") -> list[str]:
    """The column order of first_of_duplicates' rows (its `keys` aside): uuid, the text, DEDUP_ORDER's columns, then
    the others as they were. A table written in this order is what a de-duplication of it would write, column for
    column, when it holds no duplicate (ingestion/ingest.py takes such a unit's matched/ as its crawl's)."""
    order = [c for c in DEDUP_ORDER if c in columns]
    return ["uuid", text_column, *order, *[c for c in columns if c not in ("uuid", text_column, *order)]]


def first_of_duplicates(rows: DataFrame, text_column: str = "text", keys: tuple[str, ...] = ()) -> DataFrame:
    """One row per (uuid, text), all columns kept: the first by DEDUP_ORDER (else by the other columns), whatever
    the partitioning or run. `keys`: columns that are functions of (uuid, text) grouped by too, so rows already
    partitioned on them (ingestion/pair_keys.py) are de-duplicated without another shuffle."""
    group = (*keys, "uuid", text_column)
    kept = deduplicated_columns(rows.columns, text_column)[2:]
    kept = [c for c in kept if c not in keys]
    if not kept:  # nothing to choose between: the distinct keys (a hash aggregate, on rows partitioned by `keys`)
        return rows.select(*group).distinct()
    whole = F.struct(*[F.col(c) for c in kept])
    ranked = [c for c in kept if _orderable(rows.schema[c].dataType)]
    # min(struct) orders by every field; a pool with a map column is ranked by its other columns instead.
    first = (F.min(whole) if len(ranked) == len(kept) else F.min_by(whole, F.struct(*[F.col(c) for c in ranked])))
    return (rows.groupBy(*group).agg(first.alias("first"))
            .select(*group, *[F.col(f"first.{c}").alias(c) for c in kept]))


def stripped_texts(rows: DataFrame, text_column: str) -> DataFrame:
    """`rows` with the text column stripped as Python's str.strip() strips (a pool's texts, before matching and
    de-duplication: " a dog" and "a dog " of one image are one pair)."""
    return rows.withColumn(text_column, F.btrim(F.col(text_column), F.lit(PYTHON_WHITESPACE)))
