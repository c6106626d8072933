"""The output root of a curation project: its layout, its commit markers and the state they record.

ROOT/
  units/crawl=C/unit=U/      one committed unit of work: pairs/ and matched/ of a group of input files,
                             made visible by _COMMITTED.json (written last) listing its files and their state
  dedup.json                 how pairs are de-duplicated (ingestion/pair_keys.py): over the whole pool, or within each crawl
  pairs/crawl=C/             a crawl's pairs, de-duplicated over all its units (Common Crawl input only), and in pool
                             mode without the pairs other crawls hold
  pair_keys/crawl=C/         pool mode: the keys of the pairs crawl C holds, in bucket files
  matched/crawl=C/           a crawl's pairs that match at least one entry, with entry_ids; when they are exactly
                             its one unit's matched/, that directory is moved here (no copy), tagged _UNIT_MATCHED.json
  crawl_counts/crawl=C/      a crawl's per-entry counts (entry_id, entry, count)
  optout/crawl=C/            the crawl's pairs whose page or site opts out of AI training, set apart, with why
                             (optout/tables.py)
  robots/                    robots.txt captures read by curate --robots, and the newest per host (optout/captures.py):
                             an input store, kept by --overwrite (KEPT_BY_OVERWRITE)
  crawls/C.json              a crawl's state, written last when the three tables above are finished
  counts/                    per-entry counts summed over the crawls of the latest curated pool
  curated/                   the latest curated set; summary.json its summary; report/ its report
  runs/<run id>.json         the summary of every finished curation run
  _METACLIP_ROOT.json        says "an output root": written first, into a directory that was absent or empty
  .replacement/              curate --overwrite: the new root, built here and swapped in once it has committed

RootReader is the one reader of these records and tables (every command that reads a root, with Spark or without);
OutputRoot, a RootReader, writes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession

from metaclip_spark.errors import ConfigError, InputError
from metaclip_spark.root.filesystems import FsspecFiles, HadoopFiles
from metaclip_spark.root.lease import LEASE_FILE
from metaclip_spark.root.records import RunSummary, is_done
from metaclip_spark.root.tables import (child_names, create_exclusively, delete_empty_directory, delete_path, glob_escape,
                     join_path, path_exists, read_json, rename_path, write_json_atomically)

UNIT_MARKER = "_COMMITTED.json"
# In a crawl's matched/ that is a unit's matched/ moved there (a hidden name: Spark's readers skip it): which unit.
TAKEN_MARKER = "_UNIT_MATCHED.json"
ROOT_MARKER = "_METACLIP_ROOT.json"  # says "an output root": the only kind of directory a command writes into
# A root made before ROOT_MARKER existed holds the others: readers still read it, writers ask for the marker.
_ROOT_CONTENTS = (ROOT_MARKER, "units", "crawls", "summary.json")
# --overwrite builds the new root here, inside the old one, and swaps it in once it has committed (replace_with).
REPLACEMENT = ".replacement"
_REPLACEMENT_INPUT = "_OVERWRITE.json"  # what the replacement is built from: a rerun of the same command resumes it
_REPLACEMENT_READY = "_READY"  # the replacement is complete: from here on the swap is rolled forward, never back
_REPLACEMENT_CLEARED = "_CLEARED"  # the old root's entries are deleted: the rest of the swap only moves entries in
# Input stores a root keeps through --overwrite: what they hold is read by their own option, not built from --input
# (robots/: the robots.txt captures of curate --robots, which must go on judging the replaced root's crawls). A
# replacement reads and adds to the root's own store (`kept_path`) and the swap leaves it in place.
KEPT_BY_OVERWRITE = ("robots",)
# A run's outputs (counts/, curated/, summary.json) are written here first, then switched in together.
RUN_STAGING = ".next-run"
_STAGED_READY = "_READY"
_STAGED_TABLES = ("counts", "curated")
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def check_crawl_name(crawl: str) -> str:
    if not crawl or not set(crawl) <= _SAFE or crawl.startswith((".", "_")):
        raise ConfigError(f"crawl name {crawl!r} must be letters, digits, '-', '_' or '.' (e.g. CC-MAIN-2023-06)")
    return crawl


def unit_id(crawl: str, sources: Iterable[str]) -> str:
    """A unit's name: a digest of its crawl and input files, so a retried unit lands in the same place."""
    h = hashlib.sha256(crawl.encode())
    for source in sources:
        h.update(b"\n" + source.encode())
    return h.hexdigest()[:16]


def _lease_file(name: str) -> bool:
    """The lease of a run (root/lease.py) or what its atomic rewrite leaves: the only names a run writes before it
    knows the directory is a root or empty, so a directory holding only them is still empty."""
    return name == LEASE_FILE or name.startswith(LEASE_FILE + ".")


CREATED_DIRECTORY, CREATED_MARKER = "directory", "marker"


def claim_root(spark: SparkSession, root: str, create: bool) -> str | None:
    """Before a writing command writes anything to `root` (its lease first): `root` must be an output root (it holds
    ROOT_MARKER), or, when `create`, a directory that does not exist or is empty, made one here by writing the
    marker. Any other directory is refused (exit 2) with nothing written. Returns what was created (CREATED_DIRECTORY
    or CREATED_MARKER, for `unclaim_root`), or None."""
    names = child_names(spark, root)
    if names is not None and ROOT_MARKER in names:
        return None
    if names is None or all(_lease_file(n) for n in names):
        if not create:
            raise InputError(f"output root {root} does not exist" if names is None else
                             f"{root} is not an output root (it holds no {ROOT_MARKER})")
        if not create_exclusively(spark, join_path(root, ROOT_MARKER), {"created_at": now()}):
            return None  # another run made it a root a moment ago: its lease decides who goes on
        return CREATED_DIRECTORY if names is None else CREATED_MARKER
    others = sorted(n for n in names if not _lease_file(n))
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    if set(others) & set(_ROOT_CONTENTS):
        raise ConfigError(f"--output {root} holds {shown} but no {ROOT_MARKER}: if it is an output root made by an "
                          f"older metaclip-spark, mark it as one (echo '{{}}' > {join_path(root, ROOT_MARKER)}) and "
                          "run again; else choose a new or empty directory")
    raise ConfigError(f"--output {root} is not a metaclip-spark output root (no {ROOT_MARKER}) and not empty: it holds "
                      f"{shown}; choose a new or empty directory (nothing was written)")


def unclaim_root(spark: SparkSession, root: str, created: str | None) -> None:
    """Undo `claim_root` when the run wrote nothing else: the marker goes (while the run still holds the lease), so a
    failed first run leaves the directory as it found it."""
    if created is None:
        return
    if all(name == ROOT_MARKER or _lease_file(name) for name in child_names(spark, root) or []):
        delete_path(spark, join_path(root, ROOT_MARKER))


def remove_created_directory(spark: SparkSession, root: str, created: str | None) -> None:
    """After the lease is released: the directory `claim_root` created, if it is empty (never a non-empty one: a
    run that came in meanwhile keeps it)."""
    if created == CREATED_DIRECTORY:
        delete_empty_directory(spark, root)


class RootReader:
    """An output root as every command reads it: where each record and table lives (the layout above), its JSON
    records (unit markers, crawl states, listings, the last run's summary) and, without Spark, its Parquet files.

    One class whichever the file system (root/filesystems.py): a Spark command reads through Spark's Hadoop file
    systems, which it writes the root with (`RootReader.through_spark`; OutputRoot, the writer, is a RootReader);
    the commands without Spark (`status`, `plan`, `export`, `crawls`) through `RootReader.at`: a local root
    directly, another through fsspec (s3://, s3a://, gs://, hdfs:// where fsspec has it)."""

    def __init__(self, root: str, files, spark: SparkSession | None = None):
        self.root = root.rstrip("/")
        self.home = self.root  # where the stores of KEPT_BY_OVERWRITE are: a replacement's are its root's
        self.files = files
        self.spark = spark

    @classmethod
    def at(cls, root: str, remote) -> "RootReader":
        """The root read without Spark (`remote`: the [remote] settings, for a root that is not local)."""
        return cls(root, FsspecFiles(root, remote))

    @classmethod
    def through_spark(cls, spark: SparkSession, root: str) -> "RootReader":
        return cls(root, HadoopFiles(spark), spark)

    # Where things are ----------------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def kept_path(self, *parts: str) -> str:
        """A path in a store of KEPT_BY_OVERWRITE (the root's own, also while an --overwrite builds its replacement)."""
        assert parts and parts[0] in KEPT_BY_OVERWRITE, parts
        return "/".join([self.home, *parts])

    def unit_path(self, crawl: str, unit: str, table: str | None = None) -> str:
        return self.path("units", f"crawl={crawl}", f"unit={unit}", *([table] if table else []))

    def crawl_table(self, table: str, crawl: str) -> str:
        return self.path(table, f"crawl={crawl}")

    def check_exists(self) -> None:
        """Exit 3 unless the root exists and holds what a run writes first: a reader of a mistyped root must not
        report it as an empty project."""
        if not self.files.exists(self.root):
            raise InputError(f"output root {self.root} does not exist")
        if not any(self.files.exists(self.path(name)) for name in _ROOT_CONTENTS):
            raise InputError(f"{self.root} is not an output root (it holds no {ROOT_MARKER})")

    def unfinished_switch(self) -> str | None:
        """REPLACEMENT or RUN_STAGING while an --overwrite's swap or a run's switch of its outputs was made ready and
        not finished (a killed run's: the next writing command finishes it), else None."""
        for staging, ready in ((REPLACEMENT, _REPLACEMENT_READY), (RUN_STAGING, _STAGED_READY)):
            if self.files.exists(self.path(staging, ready)):
                return staging
        return None

    # Records -------------------------------------------------------------------------------------------------
    def committed_units(self, crawls: Iterable[str] | None = None) -> list[dict]:
        """Markers of every committed unit (optionally of some crawls), oldest first."""
        markers = [self.files.read_json(p) for p in self.files.glob(self.root, "units", "*", "*", UNIT_MARKER)]
        wanted = set(crawls) if crawls is not None else None
        units = [m for m in markers if m and (wanted is None or m["crawl"] in wanted)]
        return sorted(units, key=lambda m: (m["committed_at"], m["unit"]))

    @staticmethod
    def units_digest(units: list[dict]) -> str:
        """A digest of the committed markers: a unit committed again (a retried failed file: same files, same unit
        id, new states) changes it, so the crawl's tables are rebuilt."""
        text = json.dumps(sorted(units, key=lambda m: m["unit"]), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @staticmethod
    def file_states(units: list[dict]) -> dict[tuple[str, str], dict]:
        """(crawl, file) -> its latest state; a file done in any unit is done, else its latest failure counts."""
        states: dict[tuple[str, str], dict] = {}
        for marker in units:  # oldest first: later failures replace earlier ones, a success is final
            for f in marker["files"]:
                key = (marker["crawl"], f["file"])
                if not is_done(states.get(key, {}).get("status")):
                    states[key] = dict(f, unit=marker["unit"], committed_at=marker["committed_at"])
        return states

    def crawl_state(self, crawl: str) -> dict | None:
        """The crawl's state, or None before its tables are built; a damaged one (a disk fault, a hand edit) stops
        the command, exit 3, naming the file and how to rebuild it."""
        path = self.path("crawls", f"{crawl}.json")
        try:
            state = self.files.read_json(path)
        except ValueError as e:  # not JSON, or not UTF-8
            state, reason = False, f"not JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        else:
            reason = "not a JSON object"
        if state is None or isinstance(state, dict):
            return state
        raise InputError(f"the state of crawl {crawl}, {path}, is damaged ({reason}): delete it, then run "
                         f"`metaclip-spark curate --output {self.root} --rebuild-dedup` to rebuild the crawl's tables "
                         "from its committed units")

    def crawls(self) -> list[str]:
        """Crawls whose tables are finished (their state file exists)."""
        return sorted(p.rsplit("/", 1)[1].removesuffix(".json") for p in self.files.glob(self.root, "crawls", "*.json"))

    def listing(self, crawl: str) -> dict | None:
        return self.files.read_json(self.path("listings", f"{crawl}.json"))

    def listed_crawls(self) -> list[str]:
        """Crawls an input has listed, whether or not any of their files is done yet."""
        listings = self.files.glob(self.root, "listings", "*.json")
        return sorted(p.rsplit("/", 1)[1].removesuffix(".json") for p in listings)

    def summary(self) -> RunSummary | None:
        """The latest run's summary (root/records.py), or None before the first run."""
        summary = self.files.read_json(self.path("summary.json"))
        return None if summary is None else RunSummary.from_json(summary, f"{self.root}/summary.json")

    # Tables --------------------------------------------------------------------------------------------------
    def table_files(self, table: str, crawl: str | None = None) -> list[str]:
        """The Parquet files of a table (of one crawl's, for a per-crawl table), listed without Spark (`at`)."""
        return self.files.data_files(self.crawl_table(table, crawl) if crawl is not None else self.path(table))

    def read_crawls(self, table: str, crawls: list[str]) -> DataFrame:
        """A per-crawl table over the chosen crawls, with its `crawl` column (the partition), read by Spark."""
        paths = [self.crawl_table(table, c) for c in crawls]
        return self.spark.read.option("basePath", self.path(table)).parquet(*map(glob_escape, paths))


class OutputRoot(RootReader):
    """The root as a Spark command writes it: its units, its crawls' tables and states, its runs, --overwrite."""

    def __init__(self, spark: SparkSession, root: str, home: str | None = None):
        super().__init__(root, HadoopFiles(spark), spark)
        self.home = (home or root).rstrip("/")

    # Units ---------------------------------------------------------------------------------------------------
    def mark(self) -> None:
        """Write ROOT_MARKER once, when a run first writes to the root."""
        if not path_exists(self.spark, self.path(ROOT_MARKER)):
            write_json_atomically(self.spark, self.path(ROOT_MARKER), {"created_at": now()})

    def commit_unit(self, marker: dict) -> None:
        write_json_atomically(self.spark, self.unit_path(marker["crawl"], marker["unit"], UNIT_MARKER), marker)

    def unit_matched(self, marker: dict) -> str:
        """Where a committed unit's matched/ is: in the unit, or in its crawl's matched/ when the crawl took it
        (take_unit_matched) and the unit was not committed again since."""
        own = self.unit_path(marker["crawl"], marker["unit"], "matched")
        if self.files.exists(own):
            return own
        table = self.crawl_table("matched", marker["crawl"])
        return table if self._taken_by(table) == self._taken_tag(marker) else own

    @staticmethod
    def _taken_tag(marker: dict) -> dict:
        return {"unit": marker["unit"], "marker_digest": OutputRoot.units_digest([marker])}

    def _taken_by(self, table: str) -> dict | None:
        tag = self.files.read_json(f"{table}/{TAKEN_MARKER}")
        return {k: tag.get(k) for k in ("unit", "marker_digest")} if tag else None

    def take_unit_matched(self, marker: dict) -> None:
        """Make a unit's matched/ its crawl's matched/ by moving it (a rename, not a copy), tagged with the unit's
        marker so the unit finds it there. At every step one of the two places holds it: a kill is finished by the
        next rebuild."""
        own = self.unit_path(marker["crawl"], marker["unit"], "matched")
        table = self.crawl_table("matched", marker["crawl"])
        if not path_exists(self.spark, own):
            return  # taken already
        write_json_atomically(self.spark, f"{own}/{TAKEN_MARKER}", dict(self._taken_tag(marker), taken_at=now()))
        delete_path(self.spark, table)
        rename_path(self.spark, own, table)

    def give_back_unit_matched(self, crawl: str, units: list[dict]) -> None:
        """Before a crawl's matched/ is replaced: a unit's matched/ it holds (take_unit_matched) goes back into its
        unit, which still needs it for the crawl's next rebuilds."""
        table = self.crawl_table("matched", crawl)
        tag = self._taken_by(table)
        for marker in units:
            own = self.unit_path(marker["crawl"], marker["unit"], "matched")
            if tag == self._taken_tag(marker) and not path_exists(self.spark, own):
                rename_path(self.spark, table, own)
                return

    def drop_units(self, crawl: str) -> None:
        delete_path(self.spark, self.path("units", f"crawl={crawl}"))
        delete_path(self.spark, self.path("crawls", f"{crawl}.json"))
        delete_path(self.spark, self.crawl_table("optout", crawl))  # its pairs set apart describe the units dropped

    # Crawls --------------------------------------------------------------------------------------------------
    def record_listing(self, crawl: str, listing: dict) -> None:
        """How many files the input listed for a crawl (status tells pending files from it)."""
        write_json_atomically(self.spark, self.path("listings", f"{crawl}.json"), listing)

    def write_crawl_state(self, crawl: str, state: dict) -> None:
        write_json_atomically(self.spark, self.path("crawls", f"{crawl}.json"), state)

    # Runs ----------------------------------------------------------------------------------------------------
    def run_staging(self) -> str:
        """An empty directory for a run's outputs; one a killed run left unfinished (never made ready) is dropped."""
        self.finish_switch()
        return self.path(RUN_STAGING)

    def switch_run(self) -> None:
        """Make the staged outputs the root's, together: once marked ready, a kill at any point is finished by the
        next run (finish_switch), so counts/, curated/, summary.json and report/ never describe different runs."""
        write_json_atomically(self.spark, self.path(RUN_STAGING, _STAGED_READY), {"ready_at": now()})
        self.finish_switch()

    def finish_switch(self) -> None:
        """Roll a ready staging forward into the root (report/ is dropped: it described the previous run), or
        drop a staging that never got ready. Each step can be redone, so a kill here is finished next time."""
        staging = self.path(RUN_STAGING)
        if not path_exists(self.spark, self.path(RUN_STAGING, _STAGED_READY)):
            delete_path(self.spark, staging)
            return
        delete_path(self.spark, self.path("report"))
        for table in _STAGED_TABLES:
            if path_exists(self.spark, self.path(RUN_STAGING, table)):
                delete_path(self.spark, self.path(table))
                rename_path(self.spark, self.path(RUN_STAGING, table), self.path(table))
        summary = read_json(self.spark, self.path(RUN_STAGING, "summary.json"))
        if summary is not None:
            run_id = RunSummary.from_json(summary).run_id
            write_json_atomically(self.spark, self.path("runs", f"{run_id}.json"), summary)
            write_json_atomically(self.spark, self.path("summary.json"), summary)
        delete_path(self.spark, staging)

    # --overwrite ---------------------------------------------------------------------------------------------
    def replacement(self, built_from: dict) -> "OutputRoot":
        """The root --overwrite builds in ROOT/.replacement/, beside the old root's tables, which stay as they are
        until it has committed (replace_with). One left by a killed or failed --overwrite is resumed when it is
        built from the same input (`built_from`: input, metadata, mode), else started afresh."""
        path = self.path(REPLACEMENT)
        if read_json(self.spark, join_path(path, _REPLACEMENT_INPUT)) != built_from:
            delete_path(self.spark, path)
            write_json_atomically(self.spark, join_path(path, _REPLACEMENT_INPUT), built_from)
        return OutputRoot(self.spark, path, home=self.root)

    def replace_with(self, replacement: "OutputRoot") -> None:
        """Swap a committed replacement in: marked ready first (the commit point), then the old entries deleted and
        the new ones moved in. A kill anywhere after the mark is finished by the next writing command."""
        assert replacement.root == self.path(REPLACEMENT)
        write_json_atomically(self.spark, join_path(replacement.root, _REPLACEMENT_READY), {"ready_at": now()})
        self.finish_replacement()

    def finish_replacement(self, keep_unfinished: bool = False) -> None:
        """Roll a ready replacement forward into the root; drop an unfinished one (a killed or failed --overwrite's:
        the old root stays whole) unless `keep_unfinished` (a rerun of --overwrite may resume it). Each step can be
        redone: entries are deleted from the root only before _CLEARED, and after it only moved in, each one
        (a rename: atomic on a local disk and HDFS, a copy then a delete on an object store) redone whole."""
        path = self.path(REPLACEMENT)
        if not path_exists(self.spark, join_path(path, _REPLACEMENT_READY)):
            if not keep_unfinished:
                delete_path(self.spark, path)
            return
        own = {REPLACEMENT, ROOT_MARKER, *KEPT_BY_OVERWRITE}  # the input stores stay (the replacement used them)
        if not path_exists(self.spark, join_path(path, _REPLACEMENT_CLEARED)):
            for name in child_names(self.spark, self.root) or []:
                if name not in own and not _lease_file(name):
                    delete_path(self.spark, self.path(name))
            write_json_atomically(self.spark, join_path(path, _REPLACEMENT_CLEARED), {"cleared_at": now()})
        for name in child_names(self.spark, path) or []:
            if not name.startswith("_") and name not in KEPT_BY_OVERWRITE:  # not its marker, nor the bookkeeping above
                delete_path(self.spark, self.path(name))  # a half-copied entry of an object store's killed rename
                rename_path(self.spark, join_path(path, name), self.path(name))
        delete_path(self.spark, path)
