"""robots.txt captures kept in a root (`curate --robots LISTING`), and the host table every crawl is judged by.

ROOT/robots/
  captures/run=R/   every robots.txt response read by run R: host, url, fetched (WARC-Date), status, body (its
                    first 500 KiB), source_file; a file that could not be read gives one row with its error
  hosts/            the newest capture of each host over every run (the table crawls are judged by)
  state.json        the listings read, the files done, the runs, and the host table's digest

A listing is read like `--input`'s (a crawl's `robotstxt.paths.gz`, resolved against the root above crawl-data/
or its folder; https/s3/gs as storage.py reads them), or given as a local directory of web archives or one archive.
Files already done are skipped; a failed file is retried by the next run. The host table is rebuilt from every
run's captures whenever a run adds some: the newest capture of a host wins (ties: the URL, then the status, then
the body, then the file's name, so the choice does not depend on the order files were read in). Its digest changes
with the runs, and every crawl built under another digest is rebuilt by the next `curate` (ingestion/ingest.py), as
after a new crawl.

The captures are an input of the root, not something built from --input: `curate --overwrite` keeps them (its
replacement is judged by them and adds what its own --robots reads; root/layout.py's KEPT_BY_OVERWRITE), so a
replaced root goes on honouring the opt-outs read so far. Deleting ROOT/robots/ drops them: the next `curate`
re-judges every crawl without them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid as uuidlib

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from metaclip_spark.errors import InputError
from metaclip_spark.ingestion.manifest import read_manifest
from metaclip_spark.optout.robots import PARSE_LIMIT, url_host
from metaclip_spark.root.layout import OutputRoot, now
from metaclip_spark.root.tables import path_exists, read_table, write_json_atomically, write_parquet_atomically
from metaclip_spark.storage import describe, is_local, local_path, open_archive

log = logging.getLogger("metaclip_spark")

DIRECTORY = "robots"
ARCHIVE_SUFFIXES = (".warc.gz", ".warc")
SCHEMA = T.StructType([
    T.StructField("host", T.StringType()), T.StructField("url", T.StringType()),
    T.StructField("fetched", T.StringType()), T.StructField("status", T.IntegerType()),
    T.StructField("body", T.BinaryType()), T.StructField("source_file", T.StringType()),
    T.StructField("error", T.StringType()),
])


def robots_files(listing: str, remote) -> list[str]:
    """Where the web archives of `listing` are: one archive (wherever it lives), the archives of a local directory
    (sorted), or the files a listing names (Common Crawl's robotstxt.paths.gz, read as --input's)."""
    if listing.rstrip("/").lower().endswith(ARCHIVE_SUFFIXES):
        return [listing]
    if is_local(listing) and os.path.isdir(local_path(listing)):
        found = sorted(os.path.join(local_path(listing), n) for n in os.listdir(local_path(listing))
                       if n.lower().endswith(ARCHIVE_SUFFIXES))
        if not found:
            raise InputError(f"--robots {listing}: a directory without web archives (*.warc.gz, *.warc)")
        return found
    return [f.location for f in read_manifest(listing, crawl="robots", remote=remote)]


def read_captures(location: str, remote) -> list[tuple]:
    """The robots.txt responses of one web archive, as SCHEMA rows; one error row when it cannot be read whole."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    rows = []
    try:
        with open_archive(location, remote) as stream:
            for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True,
                                          strict_mode=False, quirks_mode=True):
                url = (record.headers.get("WARC-Target-URI") or "").strip().strip("<>")
                host = url_host(url)
                if host is None or not url.split("?", 1)[0].lower().endswith("/robots.txt"):
                    continue
                status = record.http_headers.status_code if record.http_headers is not None else None
                body = record.reader.read(PARSE_LIMIT)
                rows.append((host, url, record.headers.get("WARC-Date"), status, body, location, None))
    except Exception as e:  # noqa: BLE001 - any damage fails this file only (retried by the next run)
        return [(None, None, None, None, None, location, describe(e))]
    return rows


def _state(root: OutputRoot) -> dict:
    return root.files.read_json(root.kept_path(DIRECTORY, "state.json")) \
        or {"listings": [], "files_done": [], "runs": []}


def hosts_digest(root: OutputRoot) -> str | None:
    """The digest of the root's host table (None: no robots.txt read): a crawl judged under another is rebuilt."""
    return _state(root).get("hosts_digest")


def kept_note(root: OutputRoot) -> str | None:
    """What `curate --overwrite` says of the captures it keeps (None when the root has none)."""
    state = _state(root)
    if state.get("hosts_digest") is None:
        return None
    store = root.kept_path(DIRECTORY)
    return (f"--overwrite keeps {store}/, the robots.txt captures read by {len(state['runs'])} run(s) of "
            f"curate --robots ({sum(entry.get('captures', 0) for entry in state['listings']):,} captures): an input "
            f"of the root, not built from --input, they judge the new crawls too; to drop them, delete {store}/ "
            "(the next curate re-judges every crawl without them)")


def hosts_table(root: OutputRoot) -> str:
    return root.kept_path(DIRECTORY, "hosts")


def read_robots(spark: SparkSession, root: OutputRoot, listing: str, remote) -> dict:
    """Read the robots.txt captures of `listing`'s files not read before into the root, and rebuild the host table
    when they brought any. Returns what was read."""
    files = robots_files(listing, remote)  # a listing that cannot be read stops the run before the root is touched
    root.mark()
    state = _state(root)
    done = set(state["files_done"])
    pending = [f for f in dict.fromkeys(files) if f not in done]
    log.info("robots: %d file(s) listed, %d already read, %d to read", len(files), len(files) - len(pending),
             len(pending))
    read = {"listing": listing, "files_listed": len(files), "files_read": 0, "files_failed": 0, "captures": 0,
            "failed_files": []}
    if pending:
        run = f"{now().replace(':', '').replace('-', '')[:15]}-{uuidlib.uuid4().hex[:8]}"
        path = root.kept_path(DIRECTORY, "captures", f"run={run}")
        rdd = spark.sparkContext.parallelize(pending, max(1, min(len(pending), spark.sparkContext.defaultParallelism
                                                                  * 4)))
        frame = spark.createDataFrame(rdd.flatMap(lambda location: read_captures(location, remote)), SCHEMA)
        write_parquet_atomically(frame, path)
        written = read_table(spark, path)
        failed = {row["source_file"]: row["error"] for row in written.where(F.col("error").isNotNull())
                  .select("source_file", "error").collect()}  # at most one row per file listed
        read.update(captures=written.where(F.col("error").isNull()).count(), files_failed=len(failed),
                    files_read=len(pending) - len(failed),
                    failed_files=[{"file": f, "reason": r} for f, r in sorted(failed.items())][:20])
        state["runs"].append(run)
        state["files_done"] = sorted(done | {f for f in pending if f not in failed})
        state["hosts_digest"] = _rebuild_hosts(spark, root, state["runs"])
    state["listings"].append({k: read[k] for k in ("listing", "files_listed", "files_read", "files_failed",
                                                   "captures")} | {"read_at": now()})
    write_json_atomically(spark, root.kept_path(DIRECTORY, "state.json"), state)
    return read


def _rebuild_hosts(spark: SparkSession, root: OutputRoot, runs: list[str]) -> str:
    """Write the newest capture of each host over `runs` (one shuffle of the captures); its digest."""
    captures = read_table(spark, root.kept_path(DIRECTORY, "captures")).where(F.col("error").isNull())
    # a total order: the same capture read from two files is a tie on every column but the file's name
    newest = Window.partitionBy("host").orderBy(F.desc("fetched"), "url", "status", "body", "source_file")
    hosts = (captures.withColumn("_n", F.row_number().over(newest)).where(F.col("_n") == 1)
             .select("host", "fetched", "status", "body", "url", "source_file"))
    write_parquet_atomically(hosts, hosts_table(root))
    return hashlib.sha256("\n".join(sorted(runs)).encode()).hexdigest()[:16]


def hosts(spark: SparkSession, root: OutputRoot) -> DataFrame | None:
    """The host table (host, fetched, status, body), or None when the root has no robots.txt captures."""
    if hosts_digest(root) is None or not path_exists(spark, hosts_table(root)):
        return None
    return read_table(spark, hosts_table(root)).select("host", "fetched", "status", "body")
