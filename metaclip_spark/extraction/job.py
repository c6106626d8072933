"""The extract stage: Common Crawl WARC/WAT files listed in a manifest to a table of image-text pairs.

Data flow: the driver reads the manifest (a list of paths, never the files) and spreads file numbers over Spark
tasks (`extract.files_per_task` each). Each task opens its files one after the other and streams them record by
record (extraction/webarchive.py), turns pages into pairs (extraction/webpage.py), labels each text's language (extraction/language.py) and
yields Arrow batches: pairs, then one counter row per finished file. The counter rows (one per file, bounded by
the manifest) are collected and summed; the pairs are de-duplicated on (uuid, text) over all the files, keeping
the first by (file path, position in the file), and written to DIR/pairs. DIR/extract.json holds the counters.
`curate` runs the same extraction unit by unit through ingestion/ingest.py.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from metaclip_spark.ingestion.dedup import first_of_duplicates
from metaclip_spark.errors import FailedFilesError
from metaclip_spark.extraction.heap import keep_freed_heap
from metaclip_spark.extraction.ids import image_uuid
from metaclip_spark.extraction.language import LanguageFilter, identify_language
from metaclip_spark.ingestion.manifest import ManifestFile, read_manifest
from metaclip_spark.progress import stage
from metaclip_spark.root.records import EXTRACT_COUNTERS, FILE_FAILED, FILE_OK, FILE_PARTIAL, FileRecord, sum_counters, tally_files
from metaclip_spark.config import ExtractSettings, RemoteSettings, Settings
from metaclip_spark.storage import ResumableReader, describe, open_archive
from metaclip_spark.root.tables import join_path, write_json_atomically, write_parquet_atomically
from metaclip_spark.optout.signals import SIGNALS_COLUMN, combined, header_signals, headers_by_name, meta_signals
from metaclip_spark.extraction.webarchive import ArchiveCounts, HtmlPage, html_header_values, web_pages
from metaclip_spark.extraction.wat import page_pairs
from metaclip_spark.extraction.webpage import html_image_pairs, page_metas

log = logging.getLogger("metaclip_spark")

PAIR_COLUMNS = ("uuid", "url", "text", "text_source", "page_url", "lang", "lang_score", "crawl", "source_file",
                SIGNALS_COLUMN)
PAIRS_SCHEMA = T.StructType([
    T.StructField("uuid", T.StringType(), False),
    T.StructField("url", T.StringType(), False),
    T.StructField("text", T.StringType(), False),
    T.StructField("text_source", T.StringType(), False),
    T.StructField("page_url", T.StringType(), False),
    T.StructField("lang", T.StringType(), False),
    T.StructField("lang_score", T.FloatType(), False),
    T.StructField("crawl", T.StringType(), True),
    T.StructField("source_file", T.StringType(), False),
    # the AI-training opt-out signals of the pair's page (optout/signals.py), null when it showed none
    T.StructField(SIGNALS_COLUMN, T.ArrayType(T.StringType(), False), True),
])
FILE_STATS = "_file_stats"
FILE_STATS_TYPE = T.StructType(
    [T.StructField("source_file", T.StringType()), T.StructField("location", T.StringType()),
     T.StructField("status", T.StringType()), T.StructField("error", T.StringType())]
    + [T.StructField(name, T.LongType()) for name in EXTRACT_COUNTERS]
    + [T.StructField("seconds", T.DoubleType())]
)
_STAGE_SCHEMA = T.StructType(
    [T.StructField(f.name, f.dataType, True) for f in PAIRS_SCHEMA.fields]
    + [T.StructField("_file_index", T.IntegerType(), True), T.StructField("_seq", T.LongType(), True),
       T.StructField(FILE_STATS, FILE_STATS_TYPE, True)]
)
_FAIL_FAST_MARKER = "metaclip-spark fail-fast:"
# The same image URL recurs on many pages (logos, icons): its id is computed once per process (bounded).
_UUID_CACHE_SIZE = 1 << 16
_uuids: dict[str, str] = {}


@dataclass(frozen=True)
class ExtractJob:
    """What a task needs to extract its files: the [extract] and [remote] settings and the Arrow batch size."""

    extract: ExtractSettings
    remote: RemoteSettings
    batch_rows: int = 10_000

    @classmethod
    def from_config(cls, config: Settings, batch_rows: int = 10_000) -> "ExtractJob":
        return cls(config.extract, config.remote, batch_rows)


@dataclass
class FileStats:
    """One file's counters, returned as a row when the file is finished."""

    source_file: str
    location: str
    status: str = FILE_OK
    error: str | None = None
    counts: dict = field(default_factory=lambda: dict.fromkeys(EXTRACT_COUNTERS, 0))
    seconds: float = 0.0

    def row(self) -> dict:
        return {"source_file": self.source_file, "location": self.location, "status": self.status,
                "error": self.error, **self.counts, "seconds": round(self.seconds, 3)}


def _add_archive_counts(stats: FileStats, archive: ArchiveCounts) -> None:
    c = stats.counts
    c["records_read"] = archive.records_read
    c["records_truncated"] = archive.records_truncated
    c["html_pages"] = archive.html_pages
    c["wat_pages"] = archive.wat_pages
    c["non_html"] = archive.non_html
    c["dropped_oversized_page"] = archive.oversized_pages
    c["dropped_decode_error"] = archive.decode_errors
    c["dropped_corrupt_member"] = archive.corrupt_members
    c["bytes_skipped"] = archive.bytes_skipped


_UNREAD = object()


def page_signals(page, images) -> list[str] | None:
    """The opt-out signals (optout/signals.py) of a page: its response headers and its metas, from the WARC record's HTTP
    headers and the tree html_image_pairs parsed, or from the WAT record's Headers and Head/Metas."""
    if isinstance(page, HtmlPage):
        headers = html_header_values(page)
        metas = page_metas(images)
        if not metas and not any(headers):
            return None  # (what combined gives for nothing, without the calls: most pages have no opt-out header)
    else:
        found = page.optout_headers
        listed = page.optout_metas
        if not found and not listed:
            return None  # (the raw JSON of most WAT records rules both out, signals.raw_*_may_signal)
        headers = headers_by_name(found)
        metas = [(m.get("name"), m.get("content")) for m in listed if isinstance(m, dict)]
    return combined(header_signals(*headers), meta_signals(metas))


def file_pairs(file: ManifestFile, job: ExtractJob, stats: FileStats) -> Iterator[tuple]:
    """The pairs of one file as tuples in PAIR_COLUMNS order (plus their sequence number), streamed.

    Plain Python (no Spark): a failure to open the file, to fetch all its bytes (after retries) or a crash of
    the reader marks `stats` failed (its pairs are then dropped by extract_files); damage in the file's own bytes
    (a corrupt gzip member, a cut end) marks it partial: the pairs of every readable record are kept. Only a file
    whose length is known can be partial: with none, damage may be a cut download, so the file is failed.
    """
    started = time.monotonic()
    keep_freed_heap()  # (once per worker: the pages' parse trees reuse freed memory, extraction/heap.py)
    archive = ArchiveCounts()
    settings = job.extract
    keep = LanguageFilter(settings.languages, settings.min_lang_score)
    keep_all = not keep.languages  # no language list: every text is kept (its language still labelled)
    counts = stats.counts
    sequence = 0
    uuids, crawl, source_file, file_index = _uuids, file.crawl, file.source_file, file.index
    try:
        stream = open_archive(file.location, job.remote)
    except Exception as e:  # noqa: BLE001 - any reason a file cannot be opened makes it a failed file
        stats.status, stats.error = FILE_FAILED, describe(e)
        stats.seconds = time.monotonic() - started
        return
    try:
        with stream:
            for page in web_pages(stream, archive, settings.max_page_bytes, settings.text_attributes):
                try:
                    if isinstance(page, HtmlPage):
                        images = html_image_pairs(page.html, page.page_url, page.http_charset,
                                                  settings.text_attributes)
                    else:
                        images = page_pairs(page, settings.text_attributes)
                except Exception:  # noqa: BLE001 - one page the parser cannot take is skipped and counted
                    archive.decode_errors += 1
                    continue
                counts["img_tags"] += images.img_tags
                counts["dropped_no_src"] += images.no_src
                counts["dropped_non_http_url"] += images.non_http_url
                counts["dropped_no_text"] += images.no_text
                page_url = page.page_url
                signals = _UNREAD  # read once per page, for a page with a pair kept
                for url, text, attribute in images.pairs:
                    lang, score = identify_language(text)
                    if not keep_all and not keep.keeps(lang, score):
                        counts["dropped_language"] += 1
                        continue
                    counts["pairs"] += 1
                    if signals is _UNREAD:
                        try:
                            signals = page_signals(page, images)
                        except Exception:  # noqa: BLE001 - headers or metas that cannot be read show nothing
                            signals = None
                    uuid = uuids.get(url)
                    if uuid is None:
                        if len(uuids) >= _UUID_CACHE_SIZE:
                            uuids.clear()
                        uuid = uuids[url] = image_uuid(url)
                    yield (uuid, url, text, attribute, page_url, lang, score, crawl, source_file, signals, file_index,
                           sequence)
                    sequence += 1
                # The page's parsed tree (kept for page_signals) is freed now, before the next page is parsed, whose
                # parse may then reuse its memory: kept until `images` is bound again, it lived through that parse.
                images = None
    except OSError as e:  # the stream failed while opening its first bytes (remote reads) or closing
        archive.read_error = archive.read_error or describe(e)
    _add_archive_counts(stats, archive)
    remote_failure = getattr(stream, "failure", None)
    if remote_failure:
        # The bytes could not all be fetched (retries exhausted): the file is failed, and retried by the next run.
        # Whatever the record loop made of the early end is not trusted.
        stats.status, stats.error = FILE_FAILED, f"read failed: {remote_failure}"
    elif archive.reader_panicked:
        stats.status, stats.error = FILE_FAILED, f"the WARC reader crashed: {archive.read_error}"
    elif archive.records_read == 0:
        stats.status = FILE_FAILED
        stats.error = archive.read_in_part or "no WARC records (empty, or not a WARC/WAT file)"
    elif archive.read_in_part and _length_unknown(stream):
        # No length to check the bytes against: a connection closed early is indistinguishable from the file's end,
        # so a file that ends inside a record (or is otherwise damaged) is failed, and read again by the next run.
        stats.status = FILE_FAILED
        stats.error = (f"read failed: {archive.read_in_part}, and the server gave no length, so the download may "
                       "have been cut")
    elif archive.read_in_part:
        # Its own bytes are damaged: what could be read is kept, the file is done (a rerun reads the same bytes),
        # and `status` lists it as partly read with why.
        stats.status, stats.error = FILE_PARTIAL, archive.read_in_part
    stats.seconds = time.monotonic() - started


def _length_unknown(stream) -> bool:
    """A remote file whose store told no size (storage.ResumableReader.size); a local file's length is known."""
    return isinstance(stream, ResumableReader) and stream.size is None


def _pairs_batch(rows: list[tuple], arrow_schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows))
    arrays = [pa.array(values, type=arrow_schema.field(i).type) for i, values in enumerate(columns)]
    arrays.append(pa.nulls(len(rows), arrow_schema.field(FILE_STATS).type))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def _stats_batch(stats: FileStats, arrow_schema: pa.Schema) -> pa.RecordBatch:
    arrays = [pa.nulls(1, arrow_schema.field(i).type) for i in range(len(arrow_schema) - 1)]
    arrays.append(pa.array([stats.row()], type=arrow_schema.field(FILE_STATS).type))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def _worker_log() -> logging.Logger:
    """Executor-side log (the executor's stderr; the console in local mode): one line per finished file."""
    logger = logging.getLogger("metaclip_spark.extract")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def extract_partition(files: list[ManifestFile], job: ExtractJob, fail_fast: bool,
                      file_numbers: Iterator[int]) -> Iterator[pa.RecordBatch]:
    """A task's files, one after the other: Arrow batches of pairs, then a counter row per file."""
    arrow_schema = to_arrow_schema(_STAGE_SCHEMA)
    logger = _worker_log()
    for number in file_numbers:
        file = files[number]
        stats = FileStats(file.source_file, file.location)
        rows: list[tuple] = []
        for row in file_pairs(file, job, stats):
            rows.append(row)
            if len(rows) >= job.batch_rows:
                yield _pairs_batch(rows, arrow_schema)
                rows = []
        if rows:
            yield _pairs_batch(rows, arrow_schema)
        c = stats.counts
        logger.info("extract %s: %s%s, %d records, %d pages, %d img, %d pairs, %.1f s", file.source_file,
                    stats.status, f" ({stats.error})" if stats.error else "", c["records_read"],
                    c["html_pages"] + c["wat_pages"], c["img_tags"], c["pairs"], stats.seconds)
        if fail_fast and stats.status == FILE_FAILED:
            raise RuntimeError(f"{_FAIL_FAST_MARKER} {file.source_file}: {stats.error}")
        yield _stats_batch(stats, arrow_schema)


def extracted_rows(spark: SparkSession, files: list[ManifestFile], job: ExtractJob,
                   fail_fast: bool = False) -> DataFrame:
    """Pairs and per-file counter rows (FILE_STATS set), one Spark task per `files_per_task` consecutive files."""
    tasks = max(1, math.ceil(len(files) / job.extract.files_per_task))
    files_broadcast = spark.sparkContext.broadcast(files)

    def extract_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        numbers = (n for batch in batches for n in batch.column(0).to_pylist())
        yield from extract_partition(files_broadcast.value, job, fail_fast, numbers)

    return spark.range(0, len(files), 1, tasks).mapInArrow(extract_batches, _STAGE_SCHEMA)


def _failed_file_error(error: Exception) -> str | None:
    text = str(error)
    if _FAIL_FAST_MARKER not in text:
        return None
    return text.split(_FAIL_FAST_MARKER, 1)[1].splitlines()[0].strip()


def job_for(spark: SparkSession, config: Settings) -> ExtractJob:
    """The extraction settings, with Arrow batches as large as the session's."""
    batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000") or 10000)
    return ExtractJob.from_config(config, batch_rows if batch_rows > 0 else 10_000)


# Where Spark logs a failed task (with its Python traceback, several times over) on the driver's console.
_TASK_FAILURE_LOGGERS = ("org.apache.spark.scheduler.TaskSetManager", "org.apache.spark.executor.Executor",
                         "org.apache.spark.storage.BlockManager", "org.apache.spark.scheduler.TaskSchedulerImpl")


@contextlib.contextmanager
def _quiet_task_failures(spark: SparkSession, quiet: bool):
    """With --fail-fast, the first failed file aborts the job by failing its task on purpose: its reason is printed
    as one line, so Spark's own reports of that task failure (pages of Java and Python traces) are silenced for
    the job. A real crash still surfaces: it is re-raised with its traceback (exit 70)."""
    if not quiet:
        yield
        return
    jvm = spark.sparkContext._jvm
    log4j = jvm.org.apache.logging.log4j
    configurator, log_manager = log4j.core.config.Configurator, log4j.LogManager
    before = {name: log_manager.getLogger(name).getLevel() for name in _TASK_FAILURE_LOGGERS}
    for name in _TASK_FAILURE_LOGGERS:
        configurator.setLevel(name, log4j.Level.OFF)
    try:
        yield
    except BaseException:
        # The job's other tasks are being killed: let them end before Spark reports them (or the session stops).
        tracker, deadline = spark.sparkContext.statusTracker(), time.monotonic() + 60
        while (tracker.getActiveStageIds() or any(e.numRunningTasks for e in tracker.getExecutorInfos())) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        raise
    finally:
        for name, level in before.items():
            configurator.setLevel(name, level)


def extract_files(spark: SparkSession, files: list[ManifestFile], job: ExtractJob, fail_fast: bool,
                  pairs_path: str, keep_order: bool = False, written: dict | None = None) -> list[dict]:
    """Write the files' pairs, de-duplicated on (uuid, text), to `pairs_path`; return one counter row per file.

    The counter rows are collected: one per input file, bounded by the manifest (already on the driver), never by
    the number of pairs. `keep_order` keeps `_seq` (dedup.DEDUP_ORDER), for tables de-duplicated again later.
    `written`, when given, receives {"pairs": rows written}, observed during the write (no second read).
    """
    rows = extracted_rows(spark, files, job, fail_fast).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        try:
            with _quiet_task_failures(spark, fail_fast):
                file_rows = [r.asDict() for r in
                             rows.where(F.col(FILE_STATS).isNotNull()).select(f"{FILE_STATS}.*").collect()]
        except Exception as e:  # noqa: BLE001 - a fail-fast stop arrives wrapped in Spark's task failure
            reason = _failed_file_error(e)
            if reason is None:
                raise
            raise FailedFilesError(f"input file failed (--fail-fast): {reason}") from None
        extracted = rows.where(F.col(FILE_STATS).isNull())
        failed = sorted(r["source_file"] for r in file_rows if r["status"] == FILE_FAILED)
        if failed:  # a file read in part because its bytes could not be fetched gives nothing until it is read whole
            extracted = extracted.where(~F.col("source_file").isin(failed))
        pairs = first_of_duplicates(extracted.select(*PAIR_COLUMNS, "_seq"))
        observation = Observation("extract")
        pairs = pairs.observe(observation, F.count(F.lit(1)).alias("pairs"))
        write_parquet_atomically(pairs.select(*PAIR_COLUMNS, *(["_seq"] if keep_order else [])), pairs_path)
        if written is not None:
            written["pairs"] = int(observation.get["pairs"])
    finally:
        rows.unpersist()
    return file_rows


def sum_file_counters(files: list[FileRecord]) -> dict[str, int]:
    """ExtractCounters summed over the files not failed (a failed file gives no pairs), with files_ok /
    files_failed: the one shape of extract.json, a crawl's state and the run summary."""
    totals = dict.fromkeys(EXTRACT_COUNTERS, 0)
    totals.update(sum_counters(f["counters"] for f in files if f["status"] != FILE_FAILED))
    tally = tally_files(files)
    totals["files_ok"], totals["files_failed"] = tally["files_done"], tally["files_failed"]
    totals["files_partial"] = tally["files_partial"]
    return totals


def file_record(row: dict) -> FileRecord:
    """A file's counter row (as the tasks return it) as the record a unit marker keeps."""
    return {"file": row["source_file"], "location": row["location"], "status": row["status"],
            "reason": row["error"], "seconds": row["seconds"], "counters": {k: row[k] for k in EXTRACT_COUNTERS}}


def run_extract(spark: SparkSession, config: Settings, manifest: str, input_base: str | None, output: str,
                crawl: str | None = None, fail_fast: bool = False) -> dict:
    """Write DIR/pairs (Parquet) and DIR/extract.json; return the run's counters."""
    started = time.monotonic()
    job = job_for(spark, config)
    files = read_manifest(manifest, input_base, crawl, job.remote)
    pairs_path = join_path(output, "pairs")
    with stage(spark, "extract", f"{len(files):,} files listed in {manifest}") as run:
        written: dict = {}
        file_rows = extract_files(spark, files, job, fail_fast, pairs_path, written=written)
        pairs_emitted = written["pairs"]
        run.rows = pairs_emitted
    records = sorted((file_record(r) for r in file_rows), key=lambda r: r["file"])
    totals = sum_file_counters(records)
    failed = [{"file": r["file"], "location": r["location"], "reason": r["reason"]}
              for r in records if r["status"] == FILE_FAILED]
    record = {
        "manifest": manifest,
        "input_base": input_base,
        "crawl": crawl or sorted({f.crawl for f in files if f.crawl}),
        "files_listed": len(files),
        # the counters, in the shape of a crawl state's "extract": `pairs` as the files gave them, then the
        # (uuid, text) duplicates dropped over all the files, and the pairs written
        **totals,
        "dropped_duplicate": totals["pairs"] - pairs_emitted,
        "pairs_written": pairs_emitted,
        "failed_files": failed,
        "files_with_errors": [{"file": r["file"], "reason": r["reason"]} for r in records
                              if r["reason"] and r["status"] != FILE_FAILED],
        "settings": asdict(job.extract),
        "pairs_table": pairs_path,
        "file_seconds": round(sum(r["seconds"] or 0.0 for r in file_rows), 1),  # streaming files, summed over tasks
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    write_json_atomically(spark, join_path(output, "extract.json"), record)
    for item in failed:
        log.warning("extract: failed file %s: %s", item["file"], item["reason"])
    log.info("extract: %d of %d files ok, %d records, %d html pages, %d img tags, %d pairs written (%d duplicates)",
             record["files_ok"], len(files), record["records_read"], record["html_pages"] + record["wat_pages"],
             record["img_tags"], pairs_emitted, record["dropped_duplicate"])
    return record

