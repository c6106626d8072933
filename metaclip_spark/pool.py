"""Reading a pool of image-text pairs (Parquet or JSON lines) and giving every pair its MetaCLIP uuid."""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .errors import ConfigError, InputError
from .tables import path_exists

INPUT_FORMATS = ("parquet", "jsonl")


def uuid_column(url_column: str):
    """MetaCLIP's uuid in Spark SQL (same as ids.image_uuid): first 24 hex digits of SHA-224 of the URL's UTF-8."""
    return F.substring(F.sha2(F.col(url_column).cast("string"), 224), 1, 24)


def read_pool(spark: SparkSession, path: str, input_format: str, config: dict) -> DataFrame:
    """The pool with at least `url`/`text` columns (names from config) plus `uuid` (computed when absent)."""
    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"unknown input format {input_format!r}: choose one of {', '.join(INPUT_FORMATS)}")
    if not path_exists(spark, path):
        raise InputError(f"input path does not exist: {path}")
    try:
        df = spark.read.parquet(path) if input_format == "parquet" else spark.read.json(path)
    except AnalysisException as e:
        # Spark cannot infer a schema from an empty directory or from files holding no rows.
        raise InputError(f"input {path} holds no {input_format} rows: {e.getMessage().splitlines()[0]}") from None
    if not df.columns:
        raise InputError(f"input {path} holds no {input_format} rows")
    columns = config["input"]
    for key in ("url_column", "text_column"):
        if columns[key] not in df.columns:
            raise InputError(
                f"input {path} has no column {columns[key]!r} (input.{key}); its columns are: {', '.join(df.columns)}"
            )
    if "_corrupt_record" in df.columns:
        df = df.where(F.col("_corrupt_record").isNull()).drop("_corrupt_record")
    if "uuid" not in df.columns:
        df = df.withColumn("uuid", uuid_column(columns["url_column"]))
    partitions = int(columns.get("partitions") or 0)
    if partitions > 0:
        df = df.repartition(partitions)
    return df
