"""One pool across crawls: (uuid, text) unique over a whole output root, checked against a table of pair keys.

The rule (curation spec, section 1): a pair re-crawled in a later dump is the same pair, counted once and curated
once. The crawl whose tables brought a pair into the pool first keeps it; crawls rebuilt in one run are taken in
name order (chronological for CC-MAIN ids). Each crawl's pairs/, matched/ and crawl_counts/ hold only the pairs it
owns; its copies of pairs another crawl owns are dropped when its tables are rebuilt and counted in its state
(`pairs_already_in_pool`). Crawls arriving one by one, in any order, give the same set of (uuid, text) pairs, the
same counts and the same curated (uuid, text) rows as all of them at once: only which crawl holds a pair differs.

The check never reads another crawl's pairs. ROOT/pair_keys/crawl=C/ holds a key of every pair crawl C owns: 128
bits, two 64-bit xxhash64 of (uuid, text) with different seeds (16 bytes a pair, which random numbers cannot
compress), bucketed by key into a fixed number of files (Spark's bucketed layout, `dedup.json` records how many).
A crawl's rebuild shuffles its own candidates into the same buckets (the shuffle its within-crawl de-duplication
needs anyway), so the anti-join against the other crawls' keys reads their bucket files where they lie and
shuffles none of them. Collisions: n pairs collide with probability ~n^2 / 2^129; 10 billion pairs expect 1.5e-19
colliding pairs (a 64-bit key alone would expect 2.7, each one a pair lost, so the key holds 128 bits).

Going through the buckets costs one task per bucket, rows or not: a dump's 4096 buckets made a 65-pair job spend
minutes scheduling empty tasks. So a rebuild goes through them only when its own rows and the other crawls' keys
come to `root.pair_key_bucket_min_pairs` per bucket; a smaller one de-duplicates in as few partitions as adaptive
execution makes of its rows, joins the other crawls' keys read unbucketed (few, by definition), and writes each key
into the file of its bucket all the same. Both ways keep the same pairs and write the same key files.

Invariants: the crawls' key sets are disjoint; a crawl's set only grows, unless its own candidates shrink (a crawl
redone with --force from fewer files). When a rebuild drops keys a crawl held, every crawl that dropped copies of
pool pairs is rebuilt too, so a pair no crawl holds any more is taken back by a crawl that has it.

Modes (ROOT/dedup.json, written when a run first writes the root; a root refuses the other mode):
- pool (default): the above.
- crawl: (uuid, text) unique within each crawl only, a pool of pairs kept as given: the behaviour before this mode
  existed, and the reference's per-dump de-duplication.
"""

from __future__ import annotations

import logging
import re
import uuid as uuidlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from metaclip_spark.ingestion.dedup import first_of_duplicates
from metaclip_spark.errors import ConfigError
from metaclip_spark.root.records import RunSummary
from metaclip_spark.root.tables import delete_path, glob_escape, glob_paths, path_exists, rename_path, write_json_atomically

log = logging.getLogger("metaclip_spark")

MODE_POOL = "pool"
MODE_CRAWL = "crawl"
MODES = (MODE_POOL, MODE_CRAWL)
RECORD = "dedup.json"
KEYS_DIR = "pair_keys"
KEY_COLUMNS = ("key_hi", "key_lo")
STAGING = "staged"  # pair_keys/staged/C/<id>: a crawl's next keys, written whole before they replace its keys
BUCKET = "bucket"  # a small rebuild's staged keys, by bucket (bucket=N/) before they are moved into the flat layout
# A file Spark's Parquet writer names (part-<task>-<job>-c<file>.<extension>, or .c<file> in a partition directory),
# and where its bucketed reader finds a file's bucket: part-<task>-<job>_<bucket>.c<file>.<extension>.
_PART_FILE = re.compile(r"^part-(\d+)-(.+)[-.](c\d+)(\..+)$")
_SALT = "metaclip-spark pair key"
# Recorded with the keys: a root whose keys were computed otherwise is refused rather than silently mis-joined.
KEY_DEFINITION = f"key_hi = xxhash64(uuid, text), key_lo = xxhash64('{_SALT}', uuid, text) (Spark SQL, seed 42)"
# Set on a crawl's state when another crawl stopped holding pairs it may have dropped as copies: rebuild it.
RELEASED = "released"
# pool_flags(): the column saying a candidate is a copy of a pair another crawl owns.
IN_POOL = "_metaclip_in_pool"
ALREADY_IN_POOL = "already_in_pool"


def expected_collisions(pairs: float, bits: int = 2 * 64) -> float:
    """Expected number of pairs of distinct pairs whose `bits`-bit keys are equal among `pairs` keys (birthday
    bound, n(n-1)/2 / 2^bits): each one is a pair dropped as if it were a copy."""
    return pairs * (pairs - 1) / 2 / 2.0 ** bits


def key_columns(text_column: str) -> list:
    """The 128-bit key of (uuid, text) as two long columns (KEY_DEFINITION)."""
    uuid, text = F.col("uuid").cast("string"), F.col(text_column)
    return [F.xxhash64(uuid, text).alias(KEY_COLUMNS[0]), F.xxhash64(F.lit(_SALT), uuid, text).alias(KEY_COLUMNS[1])]


# --- the root's mode ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dedup:
    mode: str
    buckets: int
    rebuilding: bool = False  # a --rebuild-dedup not finished yet: the next writing run starts it over

    @property
    def pool(self) -> bool:
        return self.mode == MODE_POOL


def _record(root) -> dict | None:
    return root.files.read_json(root.path(RECORD))


def _holds_crawls(root) -> bool:
    return bool(root.crawls() or root.committed_units())


def _described(mode: str) -> str:
    return "over the whole pool, across crawls" if mode == MODE_POOL else "within each crawl only"


def _made_before(root, how: str) -> ConfigError:
    return ConfigError(
        f"{root.root} was made before pairs were de-duplicated across crawls (it has no {RECORD}): each of its "
        "crawls is de-duplicated on its own, so a pair re-crawled in two dumps counts in both. " + how)


def settle(root, requested: str | None, rebuild: bool, buckets: int) -> Dedup:
    """The mode of a run that writes `root` (curate, match): the recorded one, or `requested` (default pool) on a
    root that has none yet, recorded now. Stops (exit 2) when `requested` differs from the recorded mode, and on a
    root made before modes were recorded, unless it is told what to do: `--dedup crawl` keeps its per-crawl tables,
    `--rebuild-dedup` rebuilds them (the caller does, while `rebuilding` is recorded)."""
    if requested is not None and requested not in MODES:
        raise ConfigError(f"--dedup must be one of {', '.join(MODES)}, got {requested!r}")
    record = _record(root)
    if record is not None and record.get("key", KEY_DEFINITION) != KEY_DEFINITION:
        raise ConfigError(f"{root.root}/{RECORD} keys pairs as {record['key']!r}, this version as "
                          f"{KEY_DEFINITION!r}: pass --rebuild-dedup to compute them again")
    if rebuild:
        dedup = Dedup(requested or (record or {}).get("mode", MODE_POOL), buckets, rebuilding=_holds_crawls(root))
    elif record is None:
        if _holds_crawls(root) and requested != MODE_CRAWL:
            raise _made_before(root, "Pass --rebuild-dedup to rebuild its crawls' tables from their units with "
                                     "(uuid, text) unique over the whole pool (no input is read again), or "
                                     "--dedup crawl to keep de-duplicating within each crawl.")
        dedup = Dedup(requested or MODE_POOL, buckets)
    else:
        dedup = Dedup(record["mode"], int(record["buckets"]), bool(record.get("rebuilding")))
        if requested is not None and requested != dedup.mode:
            raise ConfigError(
                f"{root.root} de-duplicates pairs {_described(dedup.mode)} (recorded in {RECORD}); it cannot take "
                f"--dedup {requested}: use another --root, or pass --rebuild-dedup --dedup {requested} to rebuild "
                "every crawl's tables that way")
        if dedup.buckets != buckets and dedup.pool:
            log.info("dedup: %s keeps its %d key buckets (root.pair_key_buckets = %d applies to new roots and to "
                     "--rebuild-dedup)", root.root, dedup.buckets, buckets)
    if record is None or {key: record.get(key) for key in _payload(dedup)} != _payload(dedup):
        _write(root, dedup)
    return dedup


def _payload(dedup: Dedup) -> dict:
    return {"mode": dedup.mode, "buckets": dedup.buckets, "key": KEY_DEFINITION, "rebuilding": dedup.rebuilding}


def _write(root, dedup: Dedup) -> None:
    from metaclip_spark.root.layout import now

    write_json_atomically(root.spark, root.path(RECORD), _payload(dedup) | {"recorded_at": now()})


def finish_rebuild(root, dedup: Dedup) -> Dedup:
    """Record that a rebuild is complete (every crawl rebuilt in the recorded mode)."""
    done = Dedup(dedup.mode, dedup.buckets)
    _write(root, done)
    return done


def rebuild_pending(root) -> bool:
    """A --rebuild-dedup was interrupted: `curate` finishes it even without an input."""
    return bool((_record(root) or {}).get("rebuilding"))


def recorded_mode(root) -> str | None:
    """The mode a root's tables were built in, for readers (count, balance, status): None for a root that holds
    nothing yet; stops (exit 2) on a root made before modes were recorded or in the middle of a rebuild."""
    record = _record(root)
    if record is None:
        if _holds_crawls(root):
            raise _made_before(root, f"Run `metaclip-spark curate --root {root.root} --rebuild-dedup` to rebuild "
                                     "its crawls' tables with (uuid, text) unique over the whole pool, or `--dedup "
                                     "crawl` to keep them as they are.")
        return None
    if record.get("rebuilding"):
        raise ConfigError(f"a --rebuild-dedup of {root.root} was interrupted: run `curate --root {root.root}` "
                          "again (the rebuild starts over) before counting or balancing")
    return record["mode"]


def status_of(root) -> dict | None:
    """The recorded mode for `status` (None: a root made before modes were recorded, or holding nothing)."""
    record = _record(root)
    return None if record is None else {k: record.get(k) for k in ("mode", "buckets", "rebuilding")}


# --- the key table ------------------------------------------------------------------------------------------------

def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class KeyTable:
    """ROOT/pair_keys/crawl=C/: the keys of the pairs each crawl owns, in `buckets` bucket files per crawl.

    Spark reads files as bucketed only through a catalog table, so each read registers a temporary external table
    over the files (the session's catalog: in memory unless the cluster's session uses Hive's) and drops it after;
    dropping an external table leaves its files. `bucketed`: read and write one task per bucket (a large rebuild),
    else as few tasks as the keys need (the files are laid out the same).
    """

    def __init__(self, spark: SparkSession, root, buckets: int, bucketed: bool = True):
        self.spark, self.root, self.buckets, self.bucketed = spark, root, buckets, bucketed

    def path(self, crawl: str) -> str:
        return self.root.path(KEYS_DIR, f"crawl={crawl}")

    def crawls(self) -> list[str]:
        """Crawls whose keys are in the table (never keys still being staged)."""
        found = self.root.files.glob(self.root.root, KEYS_DIR, "crawl=*")
        return sorted(p.rstrip("/").rsplit("/", 1)[1].removeprefix("crawl=") for p in found)

    @contextmanager
    def read(self, parts: dict[str, str], bucketed: bool | None = None):
        """The keys under each directory of `parts` ({label: directory}) as one DataFrame with a `part` column,
        bucketed unless `bucketed` (default: the table's) is false, while the block runs (the temporary table is
        dropped after)."""
        name = f"metaclip_pair_keys_{uuidlib.uuid4().hex[:16]}"
        buckets = f"CLUSTERED BY ({', '.join(KEY_COLUMNS)}) INTO {self.buckets} BUCKETS " \
            if (self.bucketed if bucketed is None else bucketed) else ""
        self.spark.sql(
            f"CREATE TABLE {name} ({KEY_COLUMNS[0]} BIGINT, {KEY_COLUMNS[1]} BIGINT, part STRING) USING parquet "
            f"PARTITIONED BY (part) {buckets}LOCATION {_sql_string(self.root.path(KEYS_DIR))}")
        try:
            for label, directory in parts.items():
                self.spark.sql(f"ALTER TABLE {name} ADD PARTITION (part = {_sql_string(label)}) "
                               f"LOCATION {_sql_string(directory)}")
            yield self.spark.table(name)
        finally:
            self.spark.sql(f"DROP TABLE IF EXISTS {name}")

    def stage(self, crawl: str, keys: DataFrame) -> str:
        """Write `keys` (KEY_COLUMNS) as the crawl's next key files, beside its current ones; returns where."""
        # Not a hidden name: Spark ignores a table location whose name starts with "." or "_".
        staging = self.root.path(KEYS_DIR, STAGING, crawl)
        delete_path(self.spark, staging)  # what a killed run left
        staged = f"{staging}/{uuidlib.uuid4().hex[:12]}"
        # A key's bucket is Murmur3 of the keys modulo n, as Spark's bucketing computes it; the bucket's number goes
        # where the bucketed reader looks for it, the file name. (Spark's own bucketed write, saveAsTable, would
        # need the catalog and fails on a root named with [ ] { }.)
        if self.bucketed:
            # repartition(n, keys) hashes as bucketing does, so the file task i writes holds exactly bucket i.
            keys.select(*KEY_COLUMNS).repartition(self.buckets, *KEY_COLUMNS).write.parquet(staged)
            for path in glob_paths(self.spark, f"{glob_escape(staged)}/part-*"):
                self._move(path, staged, int(_PART_FILE.match(path.rsplit("/", 1)[1]).group(1)))
            return staged
        # Few keys: shuffled by bucket number into as few tasks as adaptive execution makes, each writing a file per
        # bucket it holds (bucket=N/), moved into the flat layout; empty buckets get no task and no file.
        bucket = F.pmod(F.hash(*KEY_COLUMNS), F.lit(self.buckets)).alias(BUCKET)
        keys.select(*KEY_COLUMNS, bucket).repartition(BUCKET).write.partitionBy(BUCKET).parquet(staged)
        for directory in glob_paths(self.spark, f"{glob_escape(staged)}/{BUCKET}=*"):
            for path in glob_paths(self.spark, f"{glob_escape(directory)}/part-*"):
                self._move(path, staged, int(directory.rsplit("=", 1)[1]))
            delete_path(self.spark, directory)
        return staged

    def _move(self, path: str, staged: str, bucket: int) -> None:
        """A file Spark wrote, named into `staged` as a file of `bucket`."""
        task, job, file, extension = _PART_FILE.match(path.rsplit("/", 1)[1]).groups()
        rename_path(self.spark, path, f"{staged}/part-{task}-{job}_{bucket:05d}.{file}{extension}")

    def released(self, crawl: str, staged: str) -> int:
        """How many keys the crawl holds now and not in its staged next keys."""
        current = self.path(crawl)
        if not path_exists(self.spark, current):
            return 0
        with self.read({"current": current, "next": staged}) as keys:
            now, after = (keys.where(F.col("part") == label).select(*KEY_COLUMNS) for label in ("current", "next"))
            return now.join(after, list(KEY_COLUMNS), "left_anti").count()

    def switch(self, crawl: str, staged: str) -> None:
        delete_path(self.spark, self.path(crawl))
        rename_path(self.spark, staged, self.path(crawl))
        delete_path(self.spark, self.root.path(KEYS_DIR, STAGING, crawl))

    def count(self, crawl: str) -> int:
        with self.read({"keys": self.path(crawl)}, bucketed=False) as keys:
            return keys.count()

    def drop(self, crawl: str) -> None:
        delete_path(self.spark, self.path(crawl))

    def drop_all(self) -> None:
        delete_path(self.spark, self.root.path(KEYS_DIR))


def _release(root, crawl: str) -> None:
    """Crawl `crawl` stopped holding some pairs: every other crawl that dropped copies of pool pairs is rebuilt by
    the next finalize, so one that has such a pair takes it back. Written before the keys switch, so a kill after
    it loses nothing."""
    for other in root.crawls():
        state = root.crawl_state(other) if other != crawl else None
        if state and state.get("pairs_already_in_pool") and state.get("units_digest") != RELEASED:
            log.info("dedup: crawl %s no longer holds pairs crawl %s may have dropped as copies: %s will be rebuilt",
                     crawl, other, other)
            root.write_crawl_state(other, dict(state, units_digest=RELEASED))


def retire_orphans(spark: SparkSession, root, dedup: Dedup, crawls_with_units: set[str]) -> None:
    """Keys of crawls that have no committed unit any more (units dropped by --force, the run killed before any
    was redone): their pairs leave the pool, and crawls that dropped copies of them are rebuilt."""
    if not dedup.pool:
        return
    table = KeyTable(spark, root, dedup.buckets)
    for crawl in table.crawls():
        if crawl not in crawls_with_units:
            if table.count(crawl):
                _release(root, crawl)
            table.drop(crawl)


# --- one crawl's rebuild ------------------------------------------------------------------------------------------

class CrawlOwnership:
    """Which pairs one crawl's rebuild keeps: its rows de-duplicated on (uuid, text) over the crawl and, in pool
    mode, without the pairs other crawls own; then its keys. A context manager: the other crawls' keys are read
    through a temporary table while it is open.

    `rows`: how many rows the crawl's units hold (None: unknown); with the other crawls' keys (their states' pairs)
    they decide whether the rebuild goes through the key buckets: at `min_pairs_per_bucket` pairs per bucket and
    more, or when either is unknown."""

    def __init__(self, spark: SparkSession, root, crawl: str, dedup: Dedup, text_column: str,
                 rows: int | None = None, min_pairs_per_bucket: int = 0):
        self.spark, self.root, self.crawl, self.dedup, self.text_column = spark, root, crawl, dedup, text_column
        self.rows, self.min_pairs_per_bucket = rows, min_pairs_per_bucket
        self.table = KeyTable(spark, root, dedup.buckets)
        self.others: DataFrame | None = None
        self._candidates = Observation(f"candidates of {crawl} {uuidlib.uuid4().hex[:8]}")  # names are unique
        self._stack = ExitStack()

    def __enter__(self) -> "CrawlOwnership":
        if self.dedup.pool:
            held = [c for c in self.table.crawls() if c != self.crawl]
            self.table = KeyTable(self.spark, self.root, self.dedup.buckets, self._through_buckets(held))
            if held:
                keys = self._stack.enter_context(self.table.read({c: self.table.path(c) for c in held}))
                self.others = keys.select(*KEY_COLUMNS)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _through_buckets(self, held: list[str]) -> bool:
        """Whether the crawl's rows and the keys of the crawls in `held` make pairs enough to fill the buckets."""
        keys = [(self.root.crawl_state(c) or {}).get("pairs") for c in held]
        if self.rows is None or None in keys:
            return True
        pairs = self.rows + sum(keys)
        bucketed = pairs >= self.dedup.buckets * self.min_pairs_per_bucket
        log.info("dedup: crawl %s, %d rows and %d keys of other crawls: %s", self.crawl, self.rows, sum(keys),
                 f"through the {self.dedup.buckets} key buckets" if bucketed else
                 f"fewer than {self.min_pairs_per_bucket} per key bucket, in as few tasks as they need")
        return bucketed

    @property
    def bucketed(self) -> bool:
        return self.table.bucketed

    def _unique(self, rows: DataFrame) -> DataFrame:
        """The rows de-duplicated over the crawl, keyed and partitioned by key: as the key buckets are (a large
        rebuild), else into the partitions adaptive execution coalesces (spark.sql.shuffle.partitions at most)."""
        keyed = rows.select("*", *key_columns(self.text_column))
        keyed = keyed.repartition(self.dedup.buckets, *KEY_COLUMNS) if self.bucketed \
            else keyed.repartition(*KEY_COLUMNS)
        return first_of_duplicates(keyed, self.text_column, KEY_COLUMNS)

    def owned(self, rows: DataFrame, count_candidates: bool = False) -> DataFrame:
        """The crawl's rows it keeps. Crawl mode: Common Crawl rows de-duplicated over the crawl, a pool's as given.
        `count_candidates`: count the crawl's unique pairs as the result is written (candidates(): the count is
        taken after the shuffle, in the stage that writes, where Spark counts every partition once)."""
        if not self.dedup.pool:
            return first_of_duplicates(rows, self.text_column) if "_seq" in rows.columns else rows
        unique = self._unique(rows)
        if count_candidates:
            unique = unique.observe(self._candidates, F.count(F.lit(1)).alias("pairs"))
        if self.others is not None:
            unique = unique.join(self.others, list(KEY_COLUMNS), "left_anti")
        return unique.drop(*KEY_COLUMNS)

    def candidates(self) -> int:
        return int(self._candidates.get["pairs"])

    def flagged(self, rows: DataFrame) -> DataFrame:
        """Pool mode: the crawl's unique rows, each with IN_POOL = ALREADY_IN_POOL when another crawl owns it (else
        null): counted by one aggregation with the pairs it keeps (root/columns.py pairs_by_group)."""
        unique = self._unique(rows)
        if self.others is None:
            return unique.drop(*KEY_COLUMNS).withColumn(IN_POOL, F.lit(None).cast("string"))
        held = self.others.dropDuplicates(list(KEY_COLUMNS)).withColumn(IN_POOL, F.lit(ALREADY_IN_POOL))
        return unique.join(held, list(KEY_COLUMNS), "left").drop(*KEY_COLUMNS)

    def commit(self, pairs: DataFrame) -> None:
        """Pool mode: make the keys of `pairs` (all the crawl owns now) the crawl's keys."""
        if not self.dedup.pool:
            return
        staged = self.table.stage(self.crawl, pairs.select(*key_columns(self.text_column)))
        released = self.table.released(self.crawl, staged)
        if released:
            log.info("dedup: crawl %s holds %d pairs fewer than before", self.crawl, released)
            _release(self.root, self.crawl)
        self.table.switch(self.crawl, staged)


def prepare_rebuild(spark: SparkSession, root, dedup: Dedup) -> None:
    """Start (or start over) a --rebuild-dedup: no keys, every crawl's state marked for a rebuild, which the
    ingest's finalize then does crawl by crawl in name order."""
    KeyTable(spark, root, dedup.buckets).drop_all()
    for crawl in root.crawls():
        state = root.crawl_state(crawl)
        if state is not None:
            root.write_crawl_state(crawl, dict(state, units_digest=RELEASED))


def run_figures(states: dict[str, dict]) -> tuple[str | None, int | None]:
    """(mode, copies dropped) over a run's crawl states: the mode they were built in, and the pairs they dropped as
    copies of pairs other crawls own (None in crawl mode)."""
    modes = {state.get("dedup", MODE_CRAWL) for state in states.values()}
    mode = modes.pop() if len(modes) == 1 else None
    copies = [state.get("pairs_already_in_pool") for state in states.values()]
    return mode, (sum(copies) if mode == MODE_POOL and None not in copies else None)


def status_line(record: dict | None) -> str:
    """The root's mode in words, for `status`."""
    if record is None:
        return "dedup: not recorded (a root made before pairs were de-duplicated across crawls, or an empty one)"
    if record["mode"] == MODE_CRAWL:
        return "dedup: crawl, (uuid, text) unique within each crawl only"
    rebuilding = "; a --rebuild-dedup is unfinished (the next curate or match starts it over)" \
        if record.get("rebuilding") else ""
    return f"dedup: pool, (uuid, text) unique over the whole pool ({record['buckets']} key buckets){rebuilding}"


def report_sizes(run: RunSummary) -> dict:
    """The report's de-duplication figures, from a run's summary (root/records.py's RunSummary): the mode, the
    copies dropped, per crawl."""
    return {"dedup": run.dedup, "pairs_already_in_pool": run.pairs_already_in_pool,
            "pairs_already_in_pool_by_crawl": {crawl: figures.pairs_already_in_pool
                                               for crawl, figures in run.by_crawl.items()}}


def dedup_note(sizes: dict) -> str:
    """One sentence saying how pairs were de-duplicated (report_sizes' figures)."""
    if sizes["dedup"] == MODE_CRAWL:
        return ("De-duplication: (uuid, text) unique within each crawl; a pair re-crawled in several crawls is in the "
                "pool (and counted) once per crawl.")
    by_crawl = ", ".join(f"{crawl} {n:,}" for crawl, n in sizes["pairs_already_in_pool_by_crawl"].items()
                         if n is not None)
    return (f"De-duplication: (uuid, text) unique over the whole pool; {sizes['pairs_already_in_pool'] or 0:,} copies "
            f"of pairs an earlier crawl brought were dropped ({by_crawl}).")
