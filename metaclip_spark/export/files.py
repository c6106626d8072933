"""Export: a root's curated pairs as flat files a training pipeline reads as they are (img2dataset's parquet and
jsonl inputs), or, with `online`, every matched pair with its entry ids and the per-entry probability table that
a data loader balances with at every epoch (export/online.py).

    DIR/part-00000.parquet ...       url, text, uuid, keep_prob, crawl, lang (those the root has; --columns),
                                     metadata_lang in a worldwide root, `entries` (JSON array of entry names)
    DIR/_EXPORT.json                 what was exported: rows, images, files, by crawl, options, the root's run
  --online:
    DIR/pairs/part-00000.parquet ... the same columns plus entry_ids, keep_prob being P at the chosen t
    DIR/entry_probabilities.parquet  [metadata_lang,] entry_id, entry, count, p = min(1, t/count), t

The root is read (root/layout.py's RootReader) and DIR written through fsspec (storage.py: local paths, s3://,
s3a://, gs://), in Spark tasks one file at a time, so an export needs no Hadoop connector for the stores img2dataset
itself reads from. Rows are placed and ordered by seeded hashes, never rand(): file = xxhash64(seed, uuid) mod files
(an image's texts share a file, so each file counts its images exactly), order within a file = xxhash64(seed, uuid,
text) (with --online --one-text-per-image xxhash64(seed, uuid), then the text: an image's texts next to each other,
for the loader's per-epoch pick). The files are written beside DIR and switched in whole (tables.publish_directory);
_EXPORT.json is written last.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import uuid as uuidlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from metaclip_spark import __version__
from metaclip_spark.balancing import draws
from metaclip_spark.balancing.counts import count_vectors
from metaclip_spark.balancing.thresholds import resolve
from metaclip_spark.config import RemoteSettings, RootSettings, Settings
from metaclip_spark.matching.spark import flattened_entry_ids
from metaclip_spark.root.columns import ENTRY_IDS, KEEP_PROB, METADATA_LANG
from metaclip_spark.errors import ConfigError, InputError, RootBusyError
from metaclip_spark.export.online import NO_LANGUAGE, PROBABILITIES_FILE
from metaclip_spark.progress import stage
from metaclip_spark.root.filesystems import FsspecFiles
from metaclip_spark.root.layout import REPLACEMENT, RUN_STAGING, RootReader, now
from metaclip_spark.root.records import RunSummary
from metaclip_spark.storage import filesystem

log = logging.getLogger("metaclip_spark")

FORMATS = ("parquet", "jsonl")
DEFAULT_COLUMNS = ("url", "text", "uuid", KEEP_PROB, "crawl", "lang")
ENTRIES = "entries"
MARKER = "_EXPORT.json"
PAIRS = "pairs"
_FILE, _ORDER = "_export_file", "_export_order"
_EPOCH_SHARE = "_export_epoch_share"  # a pair's part of an epoch's expected rows with a per-epoch text pick
LOCK_SUFFIX = ".export-lock"  # beside --to: .DIR.export-lock, held by the one export writing DIR
MAX_FILES = 1_000_000  # --files: one Spark partition per file
SEED_RANGE = (-(2**63), 2**63 - 1)  # --shuffle-seed: a 64-bit integer (Spark's hash seed)


@dataclass(frozen=True)
class ExportSpec:
    root: str
    to: str
    format: str = "parquet"
    rows_per_file: int = 1_000_000
    files: int | None = None  # a number of files instead of rows_per_file
    shuffle_seed: int = 0
    one_text_per_image: bool = False
    with_entries: bool = False
    columns: tuple[str, ...] | None = None
    online: bool = False
    t: int | str | None = None  # --online: the threshold of the probability table (default: the root's last run)

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ConfigError(f"export format {self.format!r}: choose {' or '.join(FORMATS)}")
        if self.rows_per_file <= 0 or (self.files is not None and self.files <= 0):
            raise ConfigError("--rows-per-file and --files must be positive")
        if self.files is not None and self.files > MAX_FILES:
            raise ConfigError(f"--files {self.files}: at most {MAX_FILES:,} files (use --rows-per-file for fewer, "
                              "larger ones)")
        if not SEED_RANGE[0] <= self.shuffle_seed <= SEED_RANGE[1]:
            raise ConfigError(f"--shuffle-seed {self.shuffle_seed}: a 64-bit integer, from {SEED_RANGE[0]} to "
                              f"{SEED_RANGE[1]}")
        if self.t is not None and not self.online:
            raise ConfigError("--t chooses the threshold of the --online probability table; curated/ was balanced "
                              "with the root's t (rebalance with `balance --t` to change it)")


# --to: only an earlier export's own files are replaced, by one export at a time -----------------------------------

def _owned_files(record: dict) -> set[str]:
    """The files an export wrote in its directory, relative to it: _EXPORT.json and the files it lists."""
    names = [w["file"] for w in record.get("file_list", [])]
    if record.get("source") == "matched":  # --online
        return {MARKER, PROBABILITIES_FILE, *(f"{PAIRS}/{n}" for n in names)}
    return {MARKER, *names}


def check_export_directory(fs, path: str) -> None:
    """Exit 2, writing nothing, unless --to is absent, empty, or an earlier export holding only the files it wrote
    (as its _EXPORT.json lists them): a file someone added (a README, img2dataset's downloads) is never deleted."""
    base = path.rstrip("/")
    if not fs.exists(base):
        return
    if fs.isfile(base):
        raise ConfigError(f"--to {path} is a file, not a directory")
    found = {p.rstrip("/")[len(base) + 1:]: info["type"]
             for p, info in fs.find(base, withdirs=True, detail=True).items() if p.rstrip("/") != base}
    if not found:
        return
    if MARKER not in found:
        raise ConfigError(f"refusing to replace --to {path}: it is not an export (no {MARKER}); it holds "
                          f"{_shown(sorted(n for n in found if '/' not in n))}")
    try:
        owned = _owned_files(json.loads(fs.cat_file(f"{base}/{MARKER}")))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"refusing to replace --to {path}: its {MARKER} is unreadable ({e}), so which files are "
                          "the export's is unknown; delete the directory yourself if it is all an export's") from None
    folders = {f.rsplit("/", 1)[0] for f in owned if "/" in f}
    foreign = sorted(n for n, kind in found.items() if n not in owned and not (kind == "directory" and n in folders))
    if foreign:
        raise ConfigError(f"refusing to replace --to {path}: it holds {_shown(foreign)}, which the export there did "
                          "not write; move them out, or export to another directory (nothing was written)")


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _this_machine() -> dict:
    """What tells a process on this machine from one elsewhere: host, boot and PID namespace (a pid means nothing
    across containers or reboots)."""
    def read(path: str) -> str | None:
        try:
            if path.startswith("/proc/self/ns/"):
                return os.readlink(path)
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            return None

    return {"host": socket.gethostname(), "boot_id": read("/proc/sys/kernel/random/boot_id"),
            "pid_namespace": read("/proc/self/ns/pid")}


class ExportLock:
    """One export per --to at a time: `.DIR.export-lock` beside DIR, created exclusively (O_EXCL locally, a
    conditional write on S3, If-None-Match, and GCS, ifGenerationMatch=0), its heartbeat rewritten while the
    export runs. Another export finds it and exits 75, unless it is stale: silent past root.lease_timeout_seconds,
    or its holder's process is gone on this very machine (same host, boot and PID namespace). Only the holder
    deletes staging leftovers beside DIR."""

    def __init__(self, fs, path: str, settings: RootSettings):
        parent, name = path.rstrip("/").rsplit("/", 1) if "/" in path.rstrip("/") else (".", path.rstrip("/"))
        self.fs, self.path, self.target, self.settings = fs, f"{parent}/.{name}{LOCK_SUFFIX}", path, settings
        self.owner = {"token": uuidlib.uuid4().hex, "pid": os.getpid(), **_this_machine()}
        self.parent = parent
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _text(self) -> bytes:
        return (json.dumps(dict(self.owner, heartbeat_at=now(), heartbeat_epoch=time.time())) + "\n").encode()

    def _create(self) -> bool:
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(self.fs, LocalFileSystem):
            os.makedirs(self.parent, exist_ok=True)  # --to's parent may not exist yet (an object store has no folders)
        try:
            with self.fs.open(self.path, "xb") as f:
                f.write(self._text())
            return True
        except FileExistsError:
            return False

    def _held(self) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except ValueError:
            return {}  # unreadable (a full disk): stale after the timeout, from its file's age

    def _stale(self, held: dict) -> bool:
        beat = held.get("heartbeat_epoch")
        if not isinstance(beat, (int, float)):
            try:
                beat = self.fs.modified(self.path).timestamp()
            except (OSError, NotImplementedError):
                beat = 0.0
        if time.time() - beat > self.settings.lease_timeout_seconds:
            return True
        here = _this_machine()
        if any(held.get(k) != here[k] for k in here) or not isinstance(held.get("pid"), int) or not here["boot_id"]:
            return False
        try:
            os.kill(held["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __enter__(self) -> "ExportLock":
        while not self._create():
            held = self._held()
            if held is None:
                continue  # released between our two looks
            if not self._stale(held):
                raise RootBusyError(f"--to {self.target} is being exported to by pid {held.get('pid')} on "
                                    f"{held.get('host')} (alive at {held.get('heartbeat_at')}; its lock: {self.path}); "
                                    "try again when it ends")
            log.warning("export to %s: taking over the lock of pid %s on %s, which is gone or silent", self.target,
                        held.get("pid"), held.get("host"))
            if self._held() == held:
                self.fs.rm(self.path)
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="metaclip-spark-export-lock")
        self._beat.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.settings.lease_heartbeat_seconds):
            try:
                if (self._held() or {}).get("token") != self.owner["token"]:
                    log.error("export to %s: lost its lock to another export", self.target)
                    return
                self.fs.pipe(self.path, self._text())
            except Exception as e:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("export to %s: lock heartbeat failed: %s", self.target, e)

    def holds(self) -> bool:
        return (self._held() or {}).get("token") == self.owner["token"]

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
        if self.holds():
            self.fs.rm(self.path)


# Reading the root (root/layout.py's RootReader, through fsspec) -------------------------------------------------------

def _read_files_job(spark: SparkSession, location: str, remote: RemoteSettings, files: list[tuple[str, str | None]],
                    schema: pa.Schema) -> DataFrame:
    """The rows of Parquet `files` ((path, crawl or None) pairs), one Spark task per file, as `schema`: columns a
    file lacks are nulls, and a crawl given with the file fills the `crawl` column (matched/crawl=C/ files)."""
    listing = spark.createDataFrame(spark.sparkContext.parallelize(files, max(1, len(files))),
                                    "path string, crawl string")

    def read(batches):
        root = FsspecFiles(location, remote)
        for listed in batches:
            for path, crawl in zip(listed.column("path").to_pylist(), listed.column("crawl").to_pylist()):
                with root.open(path) as f:
                    parquet = pq.ParquetFile(f)
                    present = [n for n in schema.names if n in parquet.schema_arrow.names]
                    for batch in parquet.iter_batches(batch_size=8192, columns=present):
                        columns = []
                        for field in schema:
                            if field.name in present:
                                columns.append(batch.column(field.name).cast(field.type))
                            elif field.name == "crawl" and crawl is not None:
                                columns.append(pa.array([crawl] * batch.num_rows, pa.string()))
                            else:
                                columns.append(pa.nulls(batch.num_rows, field.type))
                        yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return listing.mapInArrow(read, _spark_schema(schema))


def _spark_schema(schema: pa.Schema) -> T.StructType:
    nullable = pa.schema([pa.field(f.name, f.type, nullable=True) for f in schema])
    return from_arrow_schema(nullable)


def _merged_schema(schemas: list[pa.Schema], wanted: list[str] | None = None) -> pa.Schema:
    """One field per column name, in first-seen order (a column some crawls lack is read as nulls)."""
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for field in schema:
            fields.setdefault(field.name, pa.field(field.name, field.type, nullable=True))
    names = wanted if wanted is not None else list(fields)
    return pa.schema([fields[n] for n in names if n in fields])


class RootTables:
    """The last run of a root as export takes it: its summary, crawls and url/text columns, and its tables' Parquet
    files, read through root/layout.py's RootReader without Spark."""

    def __init__(self, root: str, remote: RemoteSettings):
        self.reader = RootReader.at(root, remote)
        self.location = self.reader.root
        self.remote = remote
        self.reader.check_exists()
        summary = self.reader.summary()
        if summary is None:
            raise InputError(f"{self.location} holds no finished run (no summary.json): run `curate` or `balance` "
                             "first")
        self.summary: RunSummary = summary
        switching = self.reader.unfinished_switch()
        if switching == REPLACEMENT:
            raise RootBusyError(f"{self.location}: an --overwrite is swapping its new root in ({REPLACEMENT}/); run "
                                "any writing command (e.g. `report`) to finish it, or wait for the run, then export")
        if switching == RUN_STAGING:
            raise RootBusyError(f"{self.location}: a run's outputs are being switched in ({RUN_STAGING}/); run any "
                                "writing command (e.g. `report`) to finish it, or wait for the run, then export")
        self.crawls = list(summary.crawls)
        self.columns = self._columns()

    def _columns(self) -> dict:
        """The url and text column names the crawls were ingested with (crawls/C.json)."""
        found = {json.dumps((self.reader.crawl_state(c) or {}).get("columns") or {"url": "url", "text": "text"},
                            sort_keys=True) for c in self.crawls}
        if len(found) > 1:
            raise ConfigError(f"the crawls of {self.location} hold pairs under different url/text columns "
                              f"({' and '.join(sorted(found))}): export them apart")
        return json.loads(found.pop())

    def curated_files(self) -> list[tuple[str, str | None]]:
        return [(p, None) for p in self.reader.table_files("curated")]

    def matched_files(self) -> list[tuple[str, str | None]]:
        return [(p, c) for c in self.crawls for p in self.reader.table_files("matched", c)]

    def counts_files(self) -> list[tuple[str, str | None]]:
        return [(p, None) for p in self.reader.table_files("counts")]

    def schema(self, files: list[tuple[str, str | None]]) -> pa.Schema:
        """The columns of the files: the first file of each crawl (a crawl's files share one schema)."""
        firsts = {}
        for path, crawl in files:
            firsts.setdefault(crawl, path)
        schema = _merged_schema([self.reader.files.schema(p) for p in firsts.values()])
        if any(crawl is not None for _, crawl in files) and "crawl" not in schema.names:
            schema = schema.append(pa.field("crawl", pa.string()))
        return schema

    def read(self, spark: SparkSession, files: list[tuple[str, str | None]], schema: pa.Schema) -> DataFrame:
        return _read_files_job(spark, self.location, self.remote, files, schema)

    def counts(self) -> pa.Table:
        """counts/ of the last run on the driver: one row per matched entry (bounded by the metadata, not the pool)."""
        table = self.reader.files.read_parquet([path for path, _ in self.counts_files()])
        if table is None:
            raise InputError(f"{self.location}/counts holds no table: run `curate` or `count` first")
        return table

    def run_id(self) -> str | None:
        summary = self.reader.summary()
        return summary.run_id if summary is not None else None


# Columns ---------------------------------------------------------------------------------------------------------

def chosen_columns(spec: ExportSpec, available: list[str]) -> list[str]:
    """The columns to write, in order: --columns, or the defaults the root has (+ metadata_lang, entries, and for
    --online the entry ids a loader draws with)."""
    can_write = list(available) + [ENTRIES]
    if spec.columns is None:
        columns = [c for c in DEFAULT_COLUMNS if c in available]
        if METADATA_LANG in available:
            columns.append(METADATA_LANG)
        if spec.online:
            columns.append(ENTRY_IDS)
            if KEEP_PROB not in columns:
                columns.insert(columns.index("uuid") + 1, KEEP_PROB)
        if spec.with_entries:
            columns.append(ENTRIES)
        return columns
    unknown = [c for c in spec.columns if c not in can_write + ([KEEP_PROB] if spec.online else [])]
    if unknown:
        raise ConfigError(f"--columns: {unknown[0]!r} is not a column of the export (it can write: "
                          f"{', '.join(sorted(set(can_write)))})")
    required = ["url"] + (["uuid", "text", ENTRY_IDS] if spec.online else [])
    required += [METADATA_LANG] if spec.online and METADATA_LANG in available else []
    missing = [c for c in required if c not in spec.columns]
    if missing:
        raise ConfigError(f"--columns must include {', '.join(required)} (missing: {', '.join(missing)})")
    if len(set(spec.columns)) != len(spec.columns):
        raise ConfigError(f"--columns names a column twice: {','.join(spec.columns)}")
    return list(spec.columns)


# Transformations -------------------------------------------------------------------------------------------------

def one_text_per_image(rows: DataFrame, seed: int) -> DataFrame:
    """One row per uuid: the text with the smallest seeded hash (ties, impossible in practice, by the text itself)."""
    key = F.struct(F.xxhash64(F.lit(seed), F.lit("one-text"), "uuid", "text").alias("h"), F.col("text"))
    picked = rows.groupBy("uuid").agg(F.min_by(F.struct(*rows.columns), key).alias("row"))
    return picked.select("row.*")


def with_entry_names(rows: DataFrame, counts: DataFrame) -> DataFrame:
    """`entries`: the names of the pair's entry ids, in id order, as a JSON array string (a flat column that
    img2dataset saves as it is); names come from the root's counts/ (every matched entry is there)."""
    lang = [METADATA_LANG] if METADATA_LANG in rows.columns else []
    keys = ["crawl", "uuid", "text", *lang]
    exploded = rows.select(*keys, F.posexplode(ENTRY_IDS).alias("position", "entry_id"))
    named = exploded.join(counts.select(*lang, "entry_id", "entry"), on=[*lang, "entry_id"], how="left")
    lists = named.groupBy(*keys).agg(F.sort_array(F.collect_list(F.struct("position", "entry"))).alias("named"))
    entries = lists.select(*keys, F.to_json(F.col("named.entry")).alias(ENTRIES))
    return rows.join(entries, on=keys, how="left")


def with_keep_prob(rows: DataFrame, probabilities: dict[str, np.ndarray]) -> DataFrame:
    """`keep_prob` = P = 1 - prod(1 - p_e) at the probability table's t (replacing the curated one)."""
    spark = rows.sparkSession
    shared = spark.sparkContext.broadcast(probabilities)
    base = rows.drop(KEEP_PROB) if KEEP_PROB in rows.columns else rows
    schema = T.StructType(list(base.schema.fields) + [T.StructField(KEEP_PROB, T.DoubleType(), True)])
    has_lang = METADATA_LANG in base.columns

    def add(batches):
        tables = shared.value
        for batch in batches:
            lengths, flat = flattened_entry_ids(batch.column(ENTRY_IDS))
            langs = np.asarray(batch.column(METADATA_LANG).to_pylist() if has_lang else [NO_LANGUAGE] * batch.num_rows,
                               dtype=object)
            flat_langs = np.repeat(langs, lengths)
            probs = np.ones(flat.size)
            for lang in set(langs.tolist()):
                table = tables.get(lang or NO_LANGUAGE, np.zeros(0))
                rows_of_lang = (flat_langs == lang) & (flat < table.size)
                probs[rows_of_lang] = table[flat[rows_of_lang]]
            p = draws.keep_probabilities(lengths, np.arange(flat.size), probs)
            yield pa.RecordBatch.from_arrays(list(batch.columns) + [pa.array(p, pa.float64())],
                                             names=batch.schema.names + [KEEP_PROB])

    return base.mapInArrow(add, schema)


def probability_table(counts: pa.Table, thresholds: dict[str, int]) -> pa.Table:
    """[metadata_lang,] entry_id, entry, count, p, t for every counted entry."""
    langs = counts.column(METADATA_LANG).to_pylist() if METADATA_LANG in counts.column_names else None
    keys = langs if langs is not None else [NO_LANGUAGE] * counts.num_rows
    t = np.array([thresholds[k] for k in keys], dtype=np.int64)
    count = counts.column("count").to_numpy(zero_copy_only=False)
    p = np.minimum(1.0, t / np.maximum(count, 1))
    columns = {METADATA_LANG: langs} if langs is not None else {}
    columns.update(entry_id=counts.column("entry_id"), entry=counts.column("entry"), count=counts.column("count"),
                   p=p, t=t)
    table = pa.table(columns)
    return table.sort_by([(c, "ascending") for c in ([METADATA_LANG] if langs is not None else []) + ["entry_id"]])


def thresholds(tables: RootTables, counts: pa.Table, config: Settings, t: int | str | None) -> dict[str, int]:
    """{metadata language: t} of the probability table: the last run's unless --t is given (worldwide: English's t,
    the others derived from it, as balancing resolves them: thresholds.resolve)."""
    summary = tables.summary
    lists = summary.lists  # each list's (entries, t); a v1 run's one list English's
    if t is None:
        chosen = {code: list_t for code, (_, list_t) in lists.items()}
    else:
        # every entry of each list, zeros included (derived_threshold's rule): the list sizes are the run's
        vectors = count_vectors(counts, {code: entries for code, (entries, _) in lists.items()})
        chosen, _ = resolve(vectors, t, config.curation.tail_share, config.worldwide.t_by_lang)
    # the rows of a v1 root carry no language: its one list is NO_LANGUAGE here
    worldwide = METADATA_LANG in counts.column_names
    return {(code if worldwide else NO_LANGUAGE): int(value) for code, value in chosen.items()}


# Writing ---------------------------------------------------------------------------------------------------------

_WRITTEN = "file string, rows long, images long, bytes long, by_crawl string, keep_prob_sum double"


def _write_files(rows: DataFrame, location: str, remote: RemoteSettings, directory: str, file_format: str,
                 columns: list[str]) -> list[dict]:
    """Write each file index's rows (sorted within the partition by file, then order) as one file under
    `directory`; returns one record per file written. A retried task rewrites the same names with the same rows."""
    extension = file_format

    def write(batches):
        fs, _ = filesystem(location, remote)
        current, sink, writer, stats = None, None, None, None

        def close():
            if sink is None:
                return None
            if writer is not None:
                writer.close()
            sink.close()
            name = f"part-{current:05d}.{extension}"
            size = fs.size(f"{directory}/{name}")
            return pa.RecordBatch.from_pylist([{"file": name, "rows": stats["rows"], "images": len(stats["uuids"]),
                                                "bytes": size, "by_crawl": json.dumps(stats["by_crawl"]),
                                                "keep_prob_sum": stats["keep_prob_sum"]}])

        for batch in batches:
            files = batch.column(_FILE).to_numpy(zero_copy_only=False)
            starts = np.flatnonzero(np.r_[True, files[1:] != files[:-1]])
            for start, end in zip(starts, np.r_[starts[1:], files.size]):
                if files[start] != current:
                    done = close()
                    if done is not None:
                        yield done
                    current = int(files[start])
                    sink = fs.open(f"{directory}/part-{current:05d}.{extension}", "wb")
                    writer = None
                    stats = {"rows": 0, "uuids": set(), "by_crawl": Counter(), "keep_prob_sum": 0.0}
                piece = batch.slice(start, end - start).select(columns)
                stats["rows"] += piece.num_rows
                stats["uuids"].update(batch.column("uuid").slice(start, end - start).to_pylist())
                if "crawl" in batch.schema.names:
                    stats["by_crawl"].update(batch.column("crawl").slice(start, end - start).to_pylist())
                share = _EPOCH_SHARE if _EPOCH_SHARE in batch.schema.names else KEEP_PROB
                if share in batch.schema.names:
                    stats["keep_prob_sum"] += pc.sum(batch.column(share).slice(start, end - start)).as_py() or 0.0
                if file_format == "parquet":
                    if writer is None:
                        writer = pq.ParquetWriter(sink, piece.schema)
                    writer.write_batch(piece)
                else:
                    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in piece.to_pylist())
                    sink.write(lines.encode("utf-8"))
        done = close()
        if done is not None:
            yield done

    return [row.asDict() for row in rows.mapInArrow(write, _WRITTEN).collect()]  # one row per file: bounded


def _placed(rows: DataFrame, files: int, seed: int, images_together: bool = False) -> DataFrame:
    """Rows with their file index and order key, each file's rows in one partition, sorted. `images_together`
    orders by image first (its texts next to each other, for a loader's per-epoch pick), then by text."""
    placed = rows.withColumn(_FILE, F.pmod(F.xxhash64(F.lit(seed), F.lit("file"), "uuid"), F.lit(files)).cast("int"))
    if images_together:
        placed = placed.withColumn(_ORDER, F.xxhash64(F.lit(seed), F.lit("order"), "uuid"))
    else:
        placed = placed.withColumn(_ORDER, F.xxhash64(F.lit(seed), F.lit("order"), "uuid", "text"))
    return placed.repartition(files, _FILE).sortWithinPartitions(_FILE, _ORDER, "uuid", "text")


# The command -----------------------------------------------------------------------------------------------------

def run_export(spark: SparkSession, config: Settings, spec: ExportSpec) -> dict:
    """Export the root's last run to spec.to; returns the record written as _EXPORT.json."""
    to_fs, to_path = filesystem(spec.to, config.remote)
    check_export_directory(to_fs, to_path)  # before any work, and before anything is written
    with ExportLock(to_fs, to_path, config.root) as lock:
        return _export(spark, config, spec, to_fs, to_path, lock)


def _export(spark: SparkSession, config: Settings, spec: ExportSpec, to_fs, to_path: str, lock: ExportLock) -> dict:
    from metaclip_spark.root.tables import publish_directory, staging_directory

    remote = config.remote
    tables = RootTables(spec.root, remote)
    run_id = tables.summary.run_id
    files = tables.matched_files() if spec.online else tables.curated_files()
    source = "matched" if spec.online else "curated"
    if not files:
        raise InputError(f"{tables.location}/{source} holds no Parquet file")
    schema = tables.schema(files)
    renames = {tables.columns["url"]: "url", tables.columns["text"]: "text"}
    available = [renames.get(n, n) for n in schema.names]
    columns = chosen_columns(spec, available)
    wanted = [n for n in schema.names if renames.get(n, n) in set(columns) | {"uuid", "text", "crawl", ENTRY_IDS}]
    rows = tables.read(spark, files, _merged_schema([schema], wanted))
    for old, new in renames.items():
        if old != new:
            rows = rows.withColumnRenamed(old, new)
    record: dict = {"root": tables.location, "run_id": run_id, "source": source, "crawls": tables.crawls,
                    "format": spec.format, "columns": columns, "shuffle_seed": spec.shuffle_seed,
                    "one_text_per_image": spec.one_text_per_image}
    counts = None
    if spec.online or spec.with_entries:
        counts = tables.counts()
    if spec.online:
        chosen = thresholds(tables, counts, config, spec.t)
        table = probability_table(counts, chosen)
        langs = table.column(METADATA_LANG).to_pylist() if METADATA_LANG in table.column_names else None
        by_lang: dict[str, np.ndarray] = {}
        for lang in sorted(set(langs)) if langs is not None else [NO_LANGUAGE]:
            part = table if langs is None else table.filter(pc.equal(table.column(METADATA_LANG), lang))
            ids = part.column("entry_id").to_numpy()
            dense = np.ones(int(ids.max()) + 1 if ids.size else 0)
            dense[ids] = part.column("p").to_numpy()
            by_lang[lang] = dense
        rows = with_keep_prob(rows, by_lang)
        record.update({"t": chosen.get(NO_LANGUAGE) if langs is None else None,
                       **({"t_by_lang": chosen} if langs is not None else {}),
                       "entries_in_table": table.num_rows, "seed_of_offline_run": tables.summary.seed})
    per_epoch = spec.online and spec.one_text_per_image
    if per_epoch:
        # Every text stays; the loader picks one per image each epoch (online.OnlineBalancer.picked). An epoch's
        # expected rows: each image's mean P over its texts.
        texts = F.count(F.lit(1)).over(Window.partitionBy("uuid"))
        rows = rows.withColumn(_EPOCH_SHARE, F.col(KEEP_PROB) / texts)
        record["text_pick"] = "per_epoch"
    elif spec.one_text_per_image:
        rows = one_text_per_image(rows, spec.shuffle_seed)
    if spec.with_entries or ENTRIES in columns:
        counts_files = tables.counts_files()
        rows = with_entry_names(rows, tables.read(spark, counts_files, tables.schema(counts_files)))
    # One stage, as curate's are: its Spark jobs named and watched (progress.py), its time logged at the end.
    with stage(spark, "export", f"{source}/ of {tables.location} to {spec.to}") as run:
        n_files = spec.files or _files_for(rows, tables, spec)
        record["files_requested"] = n_files

        staging = staging_directory(to_fs, to_path)
        data_dir = f"{staging}/{PAIRS}" if spec.online else staging
        to_fs.makedirs(data_dir, exist_ok=True)
        keep = columns + [c for c in ("uuid", "crawl", _EPOCH_SHARE) if c not in columns and c in rows.columns]
        written = _write_files(_placed(rows.select(*keep, *([] if "text" in keep else ["text"])), n_files,
                                       spec.shuffle_seed, images_together=per_epoch),
                               spec.to, remote, data_dir, spec.format, columns)
        run.rows = sum(w["rows"] for w in written)
    written.sort(key=lambda w: w["file"])
    if spec.online:
        with to_fs.open(f"{staging}/{PROBABILITIES_FILE}", "wb") as f:
            pq.write_table(table, f)
    by_crawl: Counter = Counter()
    for w in written:
        by_crawl.update(json.loads(w.pop("by_crawl")))
    record.update({
        "rows": sum(w["rows"] for w in written),
        "images": sum(w["images"] for w in written),
        "rows_by_crawl": dict(sorted(by_crawl.items())),
        "files": len(written),
        "bytes": sum(w["bytes"] for w in written),
        "file_list": written,
    })
    record["rows_in_source"] = _source_rows(tables, spec)
    if spec.online:  # the expected size of one epoch's subset
        record["expected_rows_per_epoch"] = round(sum(w.pop("keep_prob_sum") for w in written), 3)
    else:
        for w in written:
            w.pop("keep_prob_sum")
    if tables.run_id() != run_id:
        to_fs.rm(staging, recursive=True)
        raise RootBusyError(f"{tables.location} was curated again while exporting (run {run_id} became "
                            f"{tables.run_id()}): nothing was written to {spec.to}; export again")
    record.update({"version": __version__, "exported_at": now()})
    if not lock.holds():
        to_fs.rm(staging, recursive=True)
        raise RootBusyError(f"export to {spec.to} lost its lock to another export (it was silent for longer than "
                            "root.lease_timeout_seconds): nothing was written; export again")
    try:
        check_export_directory(to_fs, to_path)  # still only an export's files: someone may have added one meanwhile
    except ConfigError:
        to_fs.rm(staging, recursive=True)
        raise
    publish_directory(to_fs, staging, to_path, MARKER, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _source_rows(tables: RootTables, spec: ExportSpec) -> int:
    """Rows of the table exported (matched pairs of the run's crawls, or its curated pairs), as the run recorded."""
    summary = tables.summary
    if spec.online:
        return sum(v.pairs_matched for c, v in summary.by_crawl.items() if c in tables.crawls)
    return int(summary.pairs_curated)


def _files_for(rows: DataFrame, tables: RootTables, spec: ExportSpec) -> int:
    """How many files for about spec.rows_per_file rows each: from the run's recorded numbers, or a count of the
    rows left by --one-text-per-image (offline; online, every text stays)."""
    total = rows.count() if spec.one_text_per_image and not spec.online else _source_rows(tables, spec)
    return max(1, math.ceil(total / spec.rows_per_file))


