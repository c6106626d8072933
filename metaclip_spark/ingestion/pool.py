"""Reading a pool of image-text pairs (Parquet or JSON lines) and giving every pair its MetaCLIP uuid."""

from __future__ import annotations

import contextlib
import re

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from metaclip_spark.config import Settings
from metaclip_spark.root.columns import ENTRY_IDS, KEEP_PROB
from metaclip_spark.errors import ConfigError, InputError
from metaclip_spark.root.records import SKIP_BAD_ENCODING, SKIP_MALFORMED_LINE, SKIP_NULL_TEXT, SKIP_NULL_URL
from metaclip_spark.ingestion.sources import POOL, format_of_name, formats, source
from metaclip_spark.root.tables import data_file_names, path_exists

_LISTED_FILES = 1000  # enough to tell a directory's format without walking a huge pool
# Spark's words for a data file it cannot read (a stray README.txt in a Parquet directory, a corrupt footer).
_UNREADABLE_FILE = re.compile(r"(?:FAILED_READ_FILE|while reading file|is not a Parquet file)")
_FILE_AND_REASON = re.compile(r"reading file (\S+?)\.?\s+([^\n]*)")
_SQLSTATE = re.compile(r"SQLSTATE: \w+\.?")
# A compressed file that ends early, as Hadoop's codecs say it.
_CUT_SHORT = re.compile(r"EOFException|Unexpected end of (input )?stream|unexpected end of file|Premature EOF")
# Columns the pipeline adds to a pool's rows (the matched table's entry ids, the curated table's keep probability,
# the per-crawl tables' partition, the crawl rebuild's de-duplication order, which it drops): a pool's own column
# of that name would be overwritten, dropped or read back as the partition. Compared lowercased, as Spark does.
RESERVED_COLUMNS = (ENTRY_IDS, KEEP_PROB, "crawl", "_seq")
# The column read_pool_rows adds: why a row is not a pair (records.SKIP_REASONS), null for a pair.
SKIPPED = "_metaclip_skipped"
# The column read_pool_rows adds to a pool with its own `uuid` column: true where that uuid was null or empty and was
# computed from the url (counted at ingest: such rows must not become one pair per text).
UUID_COMPUTED = "_metaclip_uuid_computed"
# Where Spark's PERMISSIVE JSON reader keeps a line it cannot parse (a name no pool is expected to have).
_MALFORMED = "_metaclip_malformed_line"


def infer_pool_format(spark: SparkSession, path: str) -> str:
    """A pool's format from its name, or from the data files of the directory it names (Hadoop file systems)."""
    by_name = format_of_name(path, POOL)
    if by_name:
        return by_name
    if not path_exists(spark, path):
        raise InputError(f"input path does not exist: {path}")
    formats = {format_of_name(name, POOL) for name in data_file_names(spark, path, _LISTED_FILES)} - {None}
    if len(formats) == 1:
        return formats.pop()
    found = ", ".join(sorted(formats)) or "no .parquet or .jsonl files"
    raise ConfigError(f"cannot tell the input format of {path} ({found}): pass --input-format")


@contextlib.contextmanager
def input_read_errors(path: str):
    """Spark's failure to read a data file of the input becomes exit 3 naming the file, not a Java trace."""
    try:
        yield
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - Py4JJavaError or one of pyspark's captured exception classes
        text = str(e)
        if not _UNREADABLE_FILE.search(text):
            raise
        found = _FILE_AND_REASON.search(text)
        file, reason = (found.group(1), found.group(2).strip()) if found else (path, text.strip().splitlines()[0])
        cause = _root_cause(e)
        if cause and _CUT_SHORT.search(cause):
            reason = f"the file is cut short (it ends inside its compressed data: {cause}); copy it again whole"
        elif cause and (not reason or _SQLSTATE.fullmatch(reason)):
            reason = cause  # Spark's own words are then only "SQLSTATE: KD001"
        raise InputError(f"cannot read {file} in input {path}: {reason}") from None


def _root_cause(error: BaseException) -> str | None:
    """The innermost Java exception under a pyspark error ("EOFException: Unexpected end of input stream"), or
    None."""
    throwable = getattr(error, "_origin", None) or getattr(error, "java_exception", None)
    innermost = None
    for _ in range(20):
        if throwable is None:
            break
        innermost, throwable = throwable, throwable.getCause()
    if innermost is None:
        return None
    message = innermost.getMessage()
    name = str(innermost.getClass().getSimpleName())
    return f"{name}: {str(message).splitlines()[0]}" if message else name


def uuid_column(url_column: str):
    """MetaCLIP's uuid in Spark SQL (same as ids.image_uuid): first 24 hex digits of SHA-224 of the URL's UTF-8."""
    return F.substring(F.sha2(F.col(url_column).cast("string"), 224), 1, 24)


def read_pool_rows(spark: SparkSession, path: str, input_format: str, config: Settings) -> DataFrame:
    """Every row of the pool: its columns, `uuid` (computed when absent, null or empty), SKIPPED, why the row is not
    a pair (a malformed JSON line, a null or empty url, a null text, a url or text not valid UTF-8) or null, and for
    a pool with its own uuid column UUID_COMPUTED (whether this pair's uuid was computed). Nothing is counted or
    collected here: the caller counts the reasons in the aggregation that reads the rows anyway (ingest), so the pool
    is read once."""
    if source(input_format).kind != POOL:
        raise ConfigError(f"{input_format} is not a pool format: choose one of {', '.join(formats(POOL))}")
    if not path_exists(spark, path):
        raise InputError(f"input path does not exist: {path}")
    try:
        with input_read_errors(path):
            # PERMISSIVE with a corrupt-record column: a line that does not parse becomes a row to count, neither
            # dropped unseen (DROPMALFORMED) nor fatal. Spark refuses a query that reads that column alone, so
            # SKIPPED always reads it together with the url and text columns.
            df = spark.read.parquet(path) if input_format == "parquet" else \
                spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", _MALFORMED).json(path)
    except AnalysisException as e:
        # Spark cannot infer a schema from an empty directory or from files holding no rows.
        raise InputError(f"input {path} holds no {input_format} rows: {e.getMessage().splitlines()[0]}") from None
    if not df.columns:
        raise InputError(f"input {path} holds no {input_format} rows")
    if df.columns == [_MALFORMED]:
        raise InputError(f"input {path} holds no JSON object: every line is malformed")
    columns = config.input
    for key in ("url_column", "text_column"):
        name = getattr(columns, key)
        if name not in df.columns:
            raise InputError(f"input {path} has no column {name!r} (input.{key}); its columns are: "
                             f"{', '.join(c for c in df.columns if c != _MALFORMED)}")
        # Matching and the uuid read strings: any other type would be matched or hashed as its text form.
        kind = df.schema[name].dataType
        if not isinstance(kind, T.StringType):
            raise InputError(f"input {path}: column {name!r} (input.{key}) is {kind.simpleString()}, not a string; "
                             f"name a column of strings with --{key.replace('_', '-')}")
    reserved = [c for c in df.columns if c.lower() in RESERVED_COLUMNS]
    if reserved:
        named = f"column {reserved[0]!r} is" if len(reserved) == 1 else f"columns {', '.join(map(repr, reserved))} are"
        raise InputError(f"input {path}: {named} reserved (the pipeline adds {', '.join(RESERVED_COLUMNS)} itself): "
                         "rename or drop it (a pool's crawl is given with --crawl)")
    url, text = F.col(columns.url_column), F.col(columns.text_column)
    reason = (F.when(url.isNull() | (url == ""), SKIP_NULL_URL).when(text.isNull(), SKIP_NULL_TEXT)
              .when(~F.is_valid_utf8(url) | ~F.is_valid_utf8(text), SKIP_BAD_ENCODING))
    if _MALFORMED in df.columns:  # a malformed line's url and text are null too: it counts as malformed only
        reason = F.when(F.col(_MALFORMED).isNotNull(), SKIP_MALFORMED_LINE).otherwise(reason)
    df = df.withColumn(SKIPPED, reason)
    if _MALFORMED in df.columns:
        df = df.drop(_MALFORMED)
    if "uuid" not in df.columns:
        df = df.withColumn("uuid", uuid_column(columns.url_column))
    elif isinstance(df.schema["uuid"].dataType, T.StringType):
        # A null or empty uuid is no identity: used as given, every such image with the same text would be one pair.
        missing = F.col("uuid").isNull() | (F.trim(F.col("uuid")) == "")
        df = (df.withColumn(UUID_COMPUTED, missing & F.col(SKIPPED).isNull())
              .withColumn("uuid", F.when(missing, uuid_column(columns.url_column)).otherwise(F.col("uuid"))))
    if columns.partitions > 0:
        df = df.repartition(columns.partitions)
    return df


def pairs_of(rows: DataFrame) -> DataFrame:
    """The rows of read_pool_rows that are pairs, without SKIPPED and UUID_COMPUTED."""
    return rows.where(F.col(SKIPPED).isNull()).drop(SKIPPED, UUID_COMPUTED)


def read_pool(spark: SparkSession, path: str, input_format: str, config: Settings) -> DataFrame:
    """The pool's pairs with at least `url`/`text` columns (names from config) plus `uuid` (computed when absent);
    rows that are not pairs (read_pool_rows) are left out."""
    return pairs_of(read_pool_rows(spark, path, input_format, config))
