"""De-duplication of pairs: one row per (uuid, text), the same row whatever the partitioning, grouping or run.

The rule lives here alone: the extract stage applies it over a unit's files, ingest again over all the units of a
crawl, so a crawl extracted over several incremental runs keeps exactly the rows of a single run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# Which of two duplicate pairs is kept: the one from the first file by path, then the first in that file. File
# paths (not manifest positions) so that a crawl extracted over several incremental runs keeps the same rows.
DEDUP_ORDER = ("source_file", "_seq")


def first_of_duplicates(rows: DataFrame) -> DataFrame:
    """One row per (uuid, text), all columns kept: the first by DEDUP_ORDER, whatever the partitioning or run."""
    rest = [c for c in rows.columns if c not in ("uuid", "text", *DEDUP_ORDER)]
    first = F.min(F.struct(*[F.col(c) for c in (*DEDUP_ORDER, *rest)])).alias("first")
    return (rows.groupBy("uuid", "text").agg(first)
            .select("uuid", "text", *[F.col(f"first.{c}").alias(c) for c in (*DEDUP_ORDER, *rest)]))
