"""Progress on the console: the numbers of the progress line, Spark's status tracker read while a job runs, the
bar / log / off modes, --quiet and --log-level, and an ingest whose units are counted as they commit."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time

import pytest

from metaclip_spark import cli, progress
from metaclip_spark.progress import SparkTasks, UnitTally, format_duration, remaining_seconds

from conftest import DATA


@pytest.fixture(autouse=True)
def console_restored():
    """Each test configures the console as a command would (with its stderr handler, which pytest's own logging
    would otherwise keep out); the suite's settings are put back after."""
    root, ours = logging.getLogger(), logging.getLogger("metaclip_spark")
    levels = root.level, ours.level
    yield
    progress.configure("log")
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


def _marker(statuses: list[str], pairs: int, matched: int) -> dict:
    return {"files": [{"file": f"f{i}", "status": s} for i, s in enumerate(statuses)], "pairs": pairs,
            "pairs_matched": matched}


def test_durations_and_remaining_time():
    assert [format_duration(s) for s in (0, 5.4, 59.6, 61, 3599, 3600, 7325)] == [
        "0 s", "5 s", "1:00", "1:01", "59:59", "1:00:00", "2:02:05"]
    assert format_duration(None) == "?"
    assert remaining_seconds(0, 10, 5.0) is None
    assert remaining_seconds(2, 10, 4.0) == 16.0
    assert remaining_seconds(10, 10, 4.0) == 0.0


def test_unit_tally_counts_files_pairs_and_the_pace():
    tally = UnitTally("ingest", units_total=3, files_total=6)
    assert tally.line(1.0) == "ingest: 0/3 units, 0/6 files, 0 pairs (0 matched), ETA after the first unit"
    tally.add(_marker(["ok", "failed"], 1200, 300))
    assert tally.line(10.0) == ("ingest: 1/3 units, 2/6 files (1 failed), 1,200 pairs (300 matched), 0.20 files/s, "
                                "ETA 20 s")
    tally.add(_marker(["partial", "ok"], 800, 100))
    assert (tally.files_done, tally.files_failed, tally.files_partial, tally.pairs, tally.pairs_matched) == (
        3, 1, 1, 2000, 400)
    assert tally.line(20.0, final=True) == ("ingest: 2/3 units, 4/6 files (1 failed, 1 read in part), 2,000 pairs "
                                            "(400 matched), in 20 s (0.20 files/s)")


def test_spark_tasks_describe():
    assert SparkTasks().describe() == "starting"
    assert SparkTasks(jobs_done=3).describe() == "3 Spark jobs done"
    assert SparkTasks([7], 16, 5, 2, 1).describe() == "Spark stage 7: 5/16 tasks, 2 running, 1 failed"
    assert SparkTasks([7, 8], 20, 5, 4).describe() == "Spark stages 7,8: 5/20 tasks, 4 running"


def _slow_job(spark, partitions: int = 8, seconds: float = 0.4) -> int:
    def slow(rows):
        time.sleep(seconds)
        yield sum(1 for _ in rows)

    return sum(spark.sparkContext.parallelize(range(partitions * 10), partitions).mapPartitions(slow).collect())


def test_the_status_tracker_shows_the_running_stage_of_a_job_group(spark):
    context = spark.sparkContext
    seen: list[SparkTasks] = []

    def watch():
        tracker = context.statusTracker()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tasks = progress.spark_tasks(tracker, "progress-test")
            seen.append(tasks)
            if tasks.jobs_done:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    context.setJobGroup("progress-test", "a slow job")
    try:
        watcher.start()
        assert _slow_job(spark) == 80
        watcher.join()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)
    running = [t for t in seen if t.stage_ids]
    assert running, "the job's stage was never seen running"
    assert all(t.tasks_total == 8 and 0 <= t.tasks_done <= 8 for t in running)
    assert seen[-1].jobs_done == 1 and not seen[-1].stage_ids
    assert progress.spark_tasks(context.statusTracker(), "no-such-group") == SparkTasks()


def test_log_mode_writes_a_heartbeat_with_the_running_tasks(spark, caplog, monkeypatch):
    progress.configure("log")
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.5)
    caplog.set_level(logging.INFO, logger="metaclip_spark")
    with progress.stage(spark, "count", "a slow job") as run:
        run.rows = _slow_job(spark, partitions=6, seconds=1.0)
    beats = [m for m in caplog.messages if m.startswith("progress: count")]
    assert beats, caplog.messages
    assert any(re.fullmatch(r"progress: count [\d:]+ s?: Spark stage \d+: [0-6]/6 tasks, \d running"
                            r"(, stage ETA .+)?", m) for m in beats), beats
    assert re.fullmatch(r"stage count\s+done in\s+[\d.]+ s, 60 rows", caplog.messages[-1])
    assert not [t for t in threading.enumerate() if t.name.startswith("metaclip-progress")]  # the watcher ended


def test_bar_mode_rewrites_one_line_and_clears_it_for_messages(spark, capsys, monkeypatch):
    monkeypatch.setattr(progress, "BAR_SECONDS", 0.1)
    assert progress.configure("bar", handler=True) == "bar"
    with progress.stage(spark, "balance", "a slow job"):
        _slow_job(spark, partitions=4, seconds=0.8)
        logging.getLogger("metaclip_spark").info("a message while the bar is drawn")
    err = capsys.readouterr().err
    assert re.search(r"\rbalance [\d:]+ s?: Spark stage \d+: \d/4 tasks, \d running[^\r\n]*\x1b\[K", err), repr(err)
    message = err.index("a message while the bar is drawn")
    assert err.rfind("\r\x1b[K", 0, message) > err.rfind("\rbalance", 0, message)  # cleared before the message
    assert re.search(r"(\n|\r\x1b\[K)\d\d:\d\d:\d\d metaclip_spark stage balance\s+done in[^\r]*\n$", err)  # no bar left


def test_off_mode_and_quiet_show_no_progress(spark, capsys):
    assert progress.configure("off", handler=True) == "off"
    with progress.stage(spark, "count"):
        assert not [t for t in threading.enumerate() if t.name.startswith("metaclip-progress")]
    assert "stage count" in capsys.readouterr().err  # messages still print
    assert progress.configure(quiet=True, handler=True) == "off"
    with progress.stage(spark, "count"):
        pass
    assert capsys.readouterr().err == ""  # the INFO line is below --quiet's WARNING
    assert progress.configure("bar", quiet=True, handler=True) == "bar"  # asked for explicitly: shown even when quiet


def test_default_mode_is_log_lines_when_stderr_is_not_a_terminal(monkeypatch):
    class Terminal:
        def isatty(self):
            return True

    assert progress.default_mode() == "log"  # pytest captures stderr
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.default_mode() == "bar"


def test_cli_console_options(tmp_path, capsys):
    root = str(DATA / "no-such-root")
    for argv in (["status", root, "--quiet"], ["status", root, "--log-level", "warning"],
                 ["status", root, "--progress", "off"], ["plan", "--output", root, "--progress", "log"]):
        assert cli.main(argv) == 3, argv  # parsed and run (the root is missing)
        assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", root, "--progress", "fancy"])
    assert exited.value.code == 2
    assert cli.build_parser().parse_args(["count", "--output", "x", "--log-level", "debug"]).log_level == "DEBUG"


def test_log_level_chooses_the_messages_shown(spark, capsys):
    for level, shown in (("WARNING", False), ("INFO", True), ("DEBUG", True)):
        progress.configure("off", level, handler=True)
        assert logging.getLogger("metaclip_spark").level == getattr(logging, level)
        logging.getLogger("metaclip_spark").info("an info message")
        logging.getLogger("metaclip_spark").warning("a warning")
        err = capsys.readouterr().err
        assert ("an info message" in err) == shown and "a warning" in err


LISTING = ["sample-0000.warc.gz", "sample-0001.warc.gz", "example.warc.gz"]


def test_curate_reports_units_files_pairs_and_eta_as_units_commit(spark, tmp_path, caplog, capsys):
    """Three real WARC files in units of one: a progress line per committed unit, the closing ingest line, and the
    run's stage timings in its summary."""
    listing = tmp_path / "warc.paths"
    listing.write_text("".join(f"{DATA / 'cc' / name}\n" for name in LISTING))
    conf = tmp_path / "units.toml"
    conf.write_text("[extract]\nfiles_per_unit = 1\n")
    output = tmp_path / "root"
    caplog.set_level(logging.INFO, logger="metaclip_spark")
    code = cli.main(["curate", "--input", str(listing), "--input-format", "warc-manifest", "--crawl", "CC-MAIN-t",
                     "--output", str(output), "--conf", str(conf), "--no-report", "--progress", "log",
                     "--metadata", str(DATA / "metadata" / "small.json")])
    assert code == 0, capsys.readouterr().err
    lines = [m for m in caplog.messages if m.startswith("progress: ingest")]
    assert [re.match(r"progress: ingest: (\d)/3 units, (\d)/3 files", m).groups() for m in lines] == [
        ("1", "1"), ("2", "2"), ("3", "3")]
    assert re.search(r", [\d,]+ pairs \([\d,]+ matched\), [\d.]+ files/s, ETA ", lines[0])
    assert any(re.fullmatch(r"ingest: 3/3 units, 3/3 files, [\d,]+ pairs \([\d,]+ matched\), in .+ files/s\)", m)
               for m in caplog.messages)
    summary = json.loads((output / "summary.json").read_text())
    stages = {s["stage"]: s for s in summary["stages"]}
    assert list(stages) == ["unit", "crawl", "count", "balance"]
    assert stages["unit"]["runs"] == 3 and stages["unit"]["rows"] == sum(
        json.loads(p.read_text())["pairs"] for p in output.glob("units/*/*/_COMMITTED.json"))
    assert all(s["seconds"] > 0 for s in summary["stages"])
    assert summary["config"]["extract"]["files_per_unit"] == 1
    assert summary["config"]["spark"]["conf"] and all(isinstance(k, str) for k in summary["config"]["spark"]["conf"])


def test_a_process_with_its_own_logging_keeps_it():
    """Like logging.basicConfig: the console handler is added only where nothing else handles the root logger."""
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = []
        progress.configure("log")
        assert [type(h) for h in root.handlers] == [progress.ConsoleHandler]
        progress.configure("log")  # replaced, not added twice
        assert [type(h) for h in root.handlers] == [progress.ConsoleHandler]
        other = logging.NullHandler()
        root.handlers = [other]
        progress.configure("log")
        assert root.handlers == [other]
    finally:
        root.handlers = saved
