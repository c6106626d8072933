"""Progress on the driver's console, and the time each stage took.

Every Spark job started inside `stage(...)` carries the stage's name (Spark UI) and a job group of its own, so
Spark's status tracker (`SparkContext.statusTracker()`) tells which of its stages and tasks are running. While a
stage runs, a watcher thread on the driver shows that: tasks done of the running Spark stages and the stage's
ETA from their pace. Around the ingest's units, `units(...)` adds what the committed unit markers say: units k of
n, files done / failed / total, pairs so far, files per second and the ingest's ETA.

Where it goes (`--progress`, set once by `configure`):
- bar: one line on stderr rewritten in place (the default when stderr is a terminal); log messages clear it first;
- log: log lines, one per committed unit and one every LOG_SECONDS while a stage runs (the default otherwise:
  spark-submit output sent to a file, a scheduler's log);
- off: nothing but the messages themselves.
Nothing here changes what a run computes: the watcher only reads the tracker, and a failure to read it is ignored.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("metaclip_spark")

MODES = ("bar", "log", "off")
LOG_SECONDS = 30.0  # a heartbeat line this often while a stage runs (log mode)
BAR_SECONDS = 0.5  # the bar is redrawn this often
LOG_FORMAT = "%(asctime)s %(name)s %(message)s"
_TIMINGS_KEPT = 100_000  # stage runs remembered for stage_timings (a long-lived notebook process stays bounded)


# --- what is shown (pure: no Spark, no clock) -------------------------------------------------------------------

def format_duration(seconds: float | None) -> str:
    """'1:02:03', '2:03', '5 s'; '?' when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def remaining_seconds(done: float, total: float, elapsed: float) -> float | None:
    """Time left at the pace so far (done items in `elapsed` s); None before anything was done."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, total - done) * elapsed / done


@dataclass
class SparkTasks:
    """Tasks of a job group's running Spark stages, as the status tracker reports them."""

    stage_ids: list[int] = field(default_factory=list)
    tasks_total: int = 0
    tasks_done: int = 0
    tasks_running: int = 0
    tasks_failed: int = 0
    jobs_done: int = 0

    def describe(self) -> str:
        """`Spark stage 12: 7/16 tasks, 2 running`, or how many of the group's jobs are done between two jobs."""
        if not self.stage_ids:
            return f"{self.jobs_done} Spark job{'s' if self.jobs_done != 1 else ''} done" if self.jobs_done \
                else "starting"
        stages = ",".join(map(str, self.stage_ids))
        failed = f", {self.tasks_failed} failed" if self.tasks_failed else ""
        return (f"Spark stage{'s' if len(self.stage_ids) > 1 else ''} {stages}: {self.tasks_done}/{self.tasks_total} "
                f"tasks, {self.tasks_running} running{failed}")


@dataclass
class UnitTally:
    """What the committed units of one ingest say: the numbers of its progress line (pure, for tests)."""

    name: str
    units_total: int
    files_total: int
    units_done: int = 0
    files_done: int = 0
    files_failed: int = 0
    files_partial: int = 0
    pairs: int = 0
    pairs_matched: int = 0

    def add(self, marker: dict) -> None:
        """A committed unit marker (ingestion/ingest.py): its files by status, its pairs and matched pairs."""
        statuses = [f.get("status") for f in marker.get("files", [])]
        self.units_done += 1
        self.files_failed += sum(s == "failed" for s in statuses)
        self.files_partial += sum(s == "partial" for s in statuses)
        self.files_done += sum(s in ("ok", "partial") for s in statuses)
        self.pairs += int(marker.get("pairs") or 0)
        self.pairs_matched += int(marker.get("pairs_matched") or 0)

    def line(self, elapsed: float, final: bool = False) -> str:
        """`ingest: 3/10 units, 48/160 files (1 failed, 2 read in part), 123,456 pairs (4,567 matched), 0.80
        files/s, ETA 2:20`; the rate and ETA count files done or failed (both are finished work). `final`: the
        closing line, with the time taken instead of the ETA."""
        finished = self.files_done + self.files_failed
        notes = [f"{self.files_failed:,} failed"] if self.files_failed else []
        notes += [f"{self.files_partial:,} read in part"] if self.files_partial else []
        rate = finished / elapsed if elapsed > 0 and finished else None
        if final:
            pace = f"in {format_duration(elapsed)}" + (f" ({rate:.2f} files/s)" if rate else "")
        elif rate:
            pace = f"{rate:.2f} files/s, ETA {format_duration(remaining_seconds(finished, self.files_total, elapsed))}"
        else:
            pace = "ETA after the first unit"
        return (f"{self.name}: {self.units_done}/{self.units_total} units, {finished:,}/{self.files_total:,} files"
                + (f" ({', '.join(notes)})" if notes else "")
                + f", {self.pairs:,} pairs ({self.pairs_matched:,} matched), {pace}")


# --- the console ------------------------------------------------------------------------------------------------

class _Console:
    """stderr shared by log messages and the progress line: a message clears the bar first, the bar is redrawn
    at its next tick. sys.stderr is looked up at every write (tests and notebooks replace it)."""

    def __init__(self):
        self.mode = "log"
        self.lock = threading.RLock()
        self.drawn = False

    def show(self, line: str) -> None:
        if self.mode != "bar":
            return
        width = max(20, shutil.get_terminal_size((120, 20)).columns - 1)
        with self.lock:
            sys.stderr.write("\r" + line[:width] + "\x1b[K")
            sys.stderr.flush()
            self.drawn = True

    def clear(self) -> None:
        with self.lock:
            if self.drawn:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
                self.drawn = False


_console = _Console()


class ConsoleHandler(logging.Handler):
    """Log records to the current sys.stderr, clearing the progress bar first."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            with _console.lock:
                _console.clear()
                sys.stderr.write(message + "\n")
                sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never stop a run
            self.handleError(record)


def default_mode() -> str:
    """bar on a terminal, log lines otherwise (a file, a pipe, a scheduler's log)."""
    try:
        return "bar" if sys.stderr.isatty() else "log"
    except (AttributeError, ValueError):
        return "log"


def configure(mode: str | None = None, level: str | int = "INFO", quiet: bool = False,
              handler: bool | None = None) -> str:
    """Set up the console of a command: metaclip-spark's messages of `level` and above (WARNING with `quiet`), and
    the progress mode (`quiet` turns it off unless `mode` is given). Returns the mode.

    Messages go to stderr through one ConsoleHandler on the root logger, installed (or replaced) when `handler` is
    True, or when None and the root logger has no other handler: like logging.basicConfig, a process that set up
    its own logging (a notebook, pytest) keeps it."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"progress mode {mode!r}: choose from {', '.join(MODES)}")
    level = "WARNING" if quiet else (level if isinstance(level, int) else level.upper())
    chosen = mode or ("off" if quiet else default_mode())
    _console.clear()
    _console.mode = chosen
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, ConsoleHandler)]
    if handler is None:
        handler = len(ours) == len(root.handlers)
    for old in ours:
        root.removeHandler(old)
    if handler:
        console = ConsoleHandler()
        console.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(console)
        root.setLevel(level)
    log.setLevel(level)
    for noisy in ("py4j", "matplotlib", "urllib3", "botocore", "s3fs", "fsspec", "asyncio", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return chosen


def mode() -> str:
    return _console.mode


# --- stages and their watcher -----------------------------------------------------------------------------------

class StageRun:
    """One run of a stage: its name, Spark job group, when it started and how long it took, rows it reports."""

    def __init__(self, name: str, group: str = ""):
        self.name = name
        self.group = group
        self.rows: int | None = None
        self.started = time.monotonic()
        self.seconds: float | None = None

    @property
    def elapsed(self) -> float:
        return self.seconds if self.seconds is not None else time.monotonic() - self.started


_timings: deque[StageRun] = deque(maxlen=_TIMINGS_KEPT)
_active_units: list["UnitProgress"] = []
_group_numbers = iter(range(1, 1 << 62))
_group_lock = threading.Lock()


def spark_tasks(tracker, group: str) -> SparkTasks:
    """The running stages of a job group's jobs, from a StatusTracker (its answers may lag or miss: it is read
    as it is)."""
    tasks = SparkTasks()
    active = set(tracker.getActiveStageIds())
    for job_id in sorted(tracker.getJobIdsForGroup(group)):
        job = tracker.getJobInfo(job_id)
        if job is None:
            continue
        if job.status == "SUCCEEDED":
            tasks.jobs_done += 1
            continue
        for stage_id in sorted(job.stageIds):
            info = tracker.getStageInfo(stage_id) if stage_id in active else None
            if info is None or stage_id in tasks.stage_ids:
                continue
            tasks.stage_ids.append(stage_id)
            tasks.tasks_total += info.numTasks
            tasks.tasks_done += info.numCompletedTasks
            tasks.tasks_running += info.numActiveTasks
            tasks.tasks_failed += info.numFailedTasks
    return tasks


class _Watcher:
    """A driver thread that reads the stage's tasks from the tracker and shows them (bar) or logs them (log)."""

    def __init__(self, spark, run: StageRun):
        self.spark, self.run = spark, run
        self.stop_event = threading.Event()
        self.first_seen: dict[tuple, tuple[float, int]] = {}  # running stages -> (when first seen, tasks done then)
        self.thread = threading.Thread(target=self._loop, name=f"metaclip-progress-{run.name}", daemon=True)

    def start(self) -> "_Watcher":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)
        _console.clear()

    def line(self, tasks: SparkTasks) -> str:
        now = time.monotonic()
        key = tuple(tasks.stage_ids)
        since, done_then = self.first_seen.setdefault(key, (now, tasks.tasks_done))
        eta = remaining_seconds(tasks.tasks_done - done_then, tasks.tasks_total - done_then, now - since) \
            if key else None
        stage_part = (f"{self.run.name} {format_duration(self.run.elapsed)}: {tasks.describe()}"
                      + (f", stage ETA {format_duration(eta)}" if eta is not None else ""))
        units = _active_units[-1].line() if _active_units else ""
        return f"{units} | {stage_part}" if units else stage_part

    def _loop(self) -> None:
        interval = BAR_SECONDS if _console.mode == "bar" else 1.0
        last_log = time.monotonic()
        while not self.stop_event.wait(interval):
            try:
                tasks = spark_tasks(self.spark.sparkContext.statusTracker(), self.run.group)
                line = self.line(tasks)
            except Exception:  # noqa: BLE001 - the session stopping, a gateway hiccup: progress is best effort
                continue
            if _console.mode == "bar":
                _console.show(line)
            elif _console.mode == "log" and time.monotonic() - last_log >= LOG_SECONDS:
                log.info("progress: %s", line)
                last_log = time.monotonic()


@contextmanager
def stage(spark, name: str, description: str = ""):
    """Run a stage: its Spark jobs named `metaclip-spark <name>: <description>` in a job group of their own,
    watched while it runs, then `stage <name> done in <s>, <rows> rows` logged and its time kept."""
    context = spark.sparkContext
    with _group_lock:
        group = f"metaclip-spark-{name}-{next(_group_numbers)}"
    saved = {key: context.getLocalProperty(key) for key in ("spark.jobGroup.id", "spark.job.description")}
    context.setJobGroup(group, f"metaclip-spark {name}" + (f": {description}" if description else ""))
    run = StageRun(name, group)
    watcher = _Watcher(spark, run).start() if _console.mode != "off" else None
    try:
        yield run
    finally:
        if watcher:
            watcher.stop()
        for key, value in saved.items():
            context.setLocalProperty(key, value)
        run.seconds = time.monotonic() - run.started
        _timings.append(run)
    rows = f", {run.rows:,} rows" if run.rows is not None else ""
    log.info("stage %-8s done in %6.1f s%s", name, run.seconds, rows)


def stage_timings(since: float | None = None) -> list[dict]:
    """Stages finished in this process (since the time.monotonic() `since`), by name in the order first run:
    runs, seconds (summed) and rows (summed where reported)."""
    by_name: dict[str, dict] = {}
    for run in list(_timings):
        if since is not None and run.started < since:
            continue
        entry = by_name.setdefault(run.name, {"stage": run.name, "runs": 0, "seconds": 0.0, "rows": None})
        entry["runs"] += 1
        entry["seconds"] = round(entry["seconds"] + (run.seconds or 0.0), 1)
        if run.rows is not None:
            entry["rows"] = (entry["rows"] or 0) + int(run.rows)
    return list(by_name.values())


# --- units of the ingest ----------------------------------------------------------------------------------------

class UnitProgress:
    """The ingest's committed units, as they are committed: the first part of the progress line, and one log line
    per unit (log mode)."""

    def __init__(self, name: str, units: int, files: int):
        self.tally = UnitTally(name, units, files)
        self.started = time.monotonic()

    def line(self) -> str:
        return self.tally.line(time.monotonic() - self.started)

    def commit(self, marker: dict) -> dict:
        """A unit's marker, once committed; returns it (so the call can wrap the unit's run)."""
        self.tally.add(marker)
        if _console.mode == "log":
            log.info("progress: %s", self.line())
        elif _console.mode == "bar":
            _console.show(self.line())
        return marker


@contextmanager
def units(name: str, units: int, files: int):
    """Progress of `units` units of work holding `files` files: call `.commit(marker)` as each is committed."""
    progress = UnitProgress(name, units, files)
    _active_units.append(progress)
    try:
        yield progress
    finally:
        _active_units.remove(progress)
        _console.clear()
    if units:
        log.info("%s", progress.tally.line(time.monotonic() - progress.started, final=True))
