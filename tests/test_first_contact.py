"""What a newcomer meets first, through the real `metaclip-spark` command in a process of its own: a wrong input or
root is one line and its exit code, before Spark starts and leaving nothing on disk; Ctrl-C is one line and exit
130; --quiet shows nothing of the JVM; Spark's own lines go through the console's logger."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA, REPO
from servers import ArchiveServer

POOL = DATA / "pool" / "sample_pairs.jsonl"
DEMO = REPO / "samples" / "demo.warc.paths"
SMALL_METADATA = str(DATA / "metadata" / "small.json")


def _command(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command in a session of its own: on a timeout its whole process group (a JVM it started included, which
    would hold the pipes open) is killed and the test fails instead of hanging."""
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    process = subprocess.Popen([sys.executable, "-m", "metaclip_spark.cli", *argv], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{' '.join(argv)} still running after {timeout} s: {err[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _one_line_error(run: subprocess.CompletedProcess, command: str, code: int) -> str:
    """The run's only output: one error line of `command`, with exit `code`."""
    lines = run.stderr.splitlines()
    assert run.returncode == code and len(lines) == 1 and not run.stdout, (run.returncode, run.stdout, run.stderr)
    assert lines[0].startswith(f"metaclip-spark {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    here = tmp_path_factory.mktemp("inputs")
    rows = [json.loads(line) for line in POOL.read_text(encoding="utf-8").splitlines()[:5]]
    pq.write_table(pa.table({"url": [r["url"] for r in rows], "caption": [r["text"] for r in rows]}),
                   str(here / "captions.parquet"))
    (here / "numbers.jsonl").write_text("".join(json.dumps({"url": r["url"], "text": i}) + "\n"
                                                for i, r in enumerate(rows)))
    (here / "notes.paths").write_text("crawl-data/CC-MAIN-2024-18/a.warc.gz\nmy notes.txt\n")
    (here / "pool.txt").write_text(POOL.read_text(encoding="utf-8"))  # JSON lines under a name that says nothing
    return {"here": here, "pool.jsonl": POOL, "demo": DEMO, **{p.name: p for p in here.iterdir()}}


@pytest.mark.parametrize("argv, code, says", [
    (["--input", "nope.jsonl"], 3, "input path does not exist: nope.jsonl"),
    (["--input", "@demo", "--input-format", "parquet"], 3,
     "is not Parquet: it looks like a listing of web archives (pass --input-format warc-manifest)"),
    (["--input", "@pool.jsonl", "--input-format", "warc-manifest", "--crawl", "CC-MAIN-demo"], 3,
     "is not a listing of web archives (warc.paths.gz, wat.paths.gz): it looks like JSON lines "
     "(pass --input-format jsonl)"),
    (["--input", "@pool.jsonl", "--input-format", "parquet"], 3, "is not Parquet: it looks like JSON lines"),
    (["--input", "@captions.parquet"], 3,
     "has no column 'text' (input.text_column); its columns are: url, caption"),
    (["--input", "@numbers.jsonl"], 3, "column 'text' (input.text_column) is bigint, not a string"),
    (["--input", "@notes.paths", "--crawl", "mine"], 3, "lists 'my notes.txt', not the path of a web archive"),
    (["--input", str(DATA / "cc" / "warcfile.warc.gz")], 3, "looks like a web archive itself, not a listing"),
    (["--input", "@demo"], 2, "cannot tell the crawl of ../tests/data/cc/sample-0000.warc.gz (no CC-MAIN-YYYY-WW in "
     "its path): pass --crawl"),
], ids=["missing", "listing-as-parquet", "pool-as-listing", "jsonl-as-parquet", "no-text-column", "text-not-string",
        "listing-of-notes", "an-archive-itself", "listing-without-crawl"])
@pytest.mark.parametrize("command", ["curate", "match"])
def test_a_wrong_input_is_one_line_before_spark_and_leaves_no_root(inputs, tmp_path, argv, code, says, command):
    root = tmp_path / "root"
    argv = [str(inputs[a[1:]]) if a.startswith("@") else a for a in argv]
    run = _command(command, *argv, "--root", str(root), "--metadata", SMALL_METADATA)
    assert says in _one_line_error(run, command, code)
    assert not root.exists()


def test_an_input_whose_name_says_nothing_is_told_by_its_content(inputs, tmp_path):
    from metaclip_spark.ingestion import input_checks
    from metaclip_spark.config import load_config

    config = load_config("local")
    assert input_checks.check_input(str(inputs["pool.txt"]), None, config) == "jsonl"
    assert input_checks.check_input(str(inputs["captions.parquet"]), None,
                                    config.updated({"input": {"text_column": "caption"}})) == "parquet"
    assert input_checks.check_input(str(DATA / "cc" / "CC-MAIN-2016-07.wat.paths.gz"), None, config) == "wat-manifest"


def test_extract_checks_its_manifest_before_spark(inputs, tmp_path):
    out = tmp_path / "out"
    run = _command("extract", "--manifest", str(inputs["pool.jsonl"]), "--output", str(out))
    assert "it looks like JSON lines" in _one_line_error(run, "extract", 3)
    assert not out.exists()


def test_a_remote_listing_is_checked_by_its_first_bytes(inputs, tmp_path):
    shutil.copy(POOL, tmp_path / "pool.paths")
    server = ArchiveServer(tmp_path).start()
    try:
        missing = _command("curate", "--input", server.url + "nothing.paths", "--root", str(tmp_path / "a"))
        assert _one_line_error(missing, "curate", 3).endswith(f"cannot read manifest {server.url}nothing.paths: it "
                                                              "does not exist")
        wrong = _command("curate", "--input", server.url + "pool.paths", "--crawl", "x", "--root",
                         str(tmp_path / "b"))
        assert "it looks like JSON lines" in _one_line_error(wrong, "curate", 3)
    finally:
        server.stop()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("argv", [["report"], ["count", "--metadata", SMALL_METADATA],
                                  ["balance", "--metadata", SMALL_METADATA], ["export", "--to", "{x}"]],
                         ids=lambda argv: argv[0])
def test_a_command_reading_a_missing_root_answers_before_spark(tmp_path, argv):
    root = tmp_path / "nowhere"
    argv = [a.format(x=tmp_path / "x") for a in argv]
    run = _command(*argv, "--root", str(root), "--log-level", "DEBUG")
    assert _one_line_error(run, argv[0], 3).endswith(f"output root {root} does not exist")  # no Spark UI line
    assert not root.exists() and not (tmp_path / "x").exists()


def test_report_of_a_root_without_a_finished_run_answers_before_spark(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "_METACLIP_ROOT.json").write_text("{}")
    run = _command("report", "--root", str(root), "--log-level", "DEBUG")
    assert "holds no finished curation run (summary.json)" in _one_line_error(run, "report", 3)
    assert sorted(p.name for p in root.iterdir()) == ["_METACLIP_ROOT.json"]


def test_ctrl_c_is_one_line_exit_130_and_quiet_shows_nothing_of_the_jvm(tmp_path):
    """SIGINT to the command's process group, as a terminal's Ctrl-C, once the run holds its root and ingests."""
    root = tmp_path / "root"
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    process = subprocess.Popen([sys.executable, "-m", "metaclip_spark.cli", "curate", "--input", str(DEMO), "--crawl",
                                "CC-MAIN-demo", "--root", str(root), "--quiet"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (root / "listings").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()
        time.sleep(1.0)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert err == "metaclip-spark curate: interrupted: rerun the same command to resume\n"
    assert out == ""
    assert not (root / "_LEASE.json").exists()  # the next run starts without waiting for this one's lease


def test_the_jvms_lines_go_through_the_logger_at_their_level(caplog):
    from metaclip_spark import session

    assert session.jvm_line_level("26/12/05 17:52:03 WARN TaskSetManager: Lost task 0.0 in stage 1.0") == logging.INFO
    assert session.jvm_line_level("26/12/05 17:52:03 ERROR Executor: Exception in task 0.0") == logging.INFO
    for quiet in ("WARNING: Using incubator modules: jdk.incubator.vector", "Setting default log level to \"WARN\".",
                  "\tat org.apache.spark.scheduler.Task.run(Task.scala:141)",
                  "26/12/05 17:52:03 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform"):
        assert session.jvm_line_level(quiet) == logging.DEBUG, quiet
    caplog.set_level(logging.DEBUG, logger="metaclip_spark.spark")
    session._relay(io.BytesIO(b"Setting default log level to \"WARN\".\n"
                              b"26/12/05 17:52:03 WARN TaskSetManager: Lost task\n\tat a.b(C.java:1)\n"))
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("metaclip_spark.spark", logging.DEBUG, "spark: Setting default log level to \"WARN\"."),
        ("metaclip_spark.spark", logging.INFO, "spark: 26/12/05 17:52:03 WARN TaskSetManager: Lost task"),
        ("metaclip_spark.spark", logging.DEBUG, "spark: \tat a.b(C.java:1)"),
    ]


def test_the_root_is_root_in_every_command_and_the_old_spellings_still_work(tmp_path, caplog):
    from metaclip_spark import cli

    parser = cli.build_parser()
    note = "note: --output ROOT is now --root ROOT (the old spelling still works)"
    for command, extra in (("curate", []), ("match", ["--input", "x"]), ("count", []), ("balance", []), ("plan", []),
                           ("report", []), ("export", ["--to", "d"]), ("status", [])):
        assert parser.parse_args([command, "--root", "r", *extra]).output == "r"
        old = parser.parse_args([command, "--output", "r", *extra])
        assert old.output == "r" and old.deprecated == [note.removeprefix("note: ")]
    missing = tmp_path / "nowhere"
    caplog.set_level(logging.WARNING, logger="metaclip_spark")
    assert cli.main(["status", str(missing)]) == 3
    assert cli.main(["status", "--output", str(missing)]) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "note: `status ROOT` is now `status --root ROOT` (the old spelling still works)", note]
    caplog.clear()
    assert cli.main(["status", "--root", str(missing), "--json"]) == 3
    assert cli.main(["status"]) == 2
    assert not caplog.records


def test_an_old_spelling_is_one_warning_line_on_the_console(tmp_path):
    run = _command("report", "--output", str(tmp_path / "nowhere"))
    lines = run.stderr.splitlines()
    assert run.returncode == 3 and len(lines) == 2, run.stderr
    assert lines[0].endswith("metaclip_spark note: --output ROOT is now --root ROOT (the old spelling still works)")
    assert lines[1] == f"metaclip-spark report: error: output root {tmp_path / 'nowhere'} does not exist"


def test_the_docs_link_only_inside_the_repository_and_show_the_demo_as_make_runs_it():
    import re

    from metaclip_spark.metadata.lists import Metadata

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(REPO) and resolved.exists(), (page.name, target)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "(docs/curation-rules.md)" in readme
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    demo = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    demo = " ".join(demo.replace("\\\n", " ").split()).replace("$(VENV)/bin/", "").replace("$(DEMO_OUT)", "out/demo")
    assert demo in " ".join(readme.split()), demo
    entries = Metadata(None).entries  # what the README says of the embedded list
    assert f"embedded list: {len(entries):,} entries" in " ".join(readme.split())
    assert all(entry == entry.lower() for entry in entries) and "Paris" not in entries and "paris" in entries


def test_every_import_the_docs_show_works():
    """A user copies the docs' Python: each `from metaclip_spark... import name` they show must import (the online
    loader's line still named metaclip_spark.online after the module moved to export/)."""
    import importlib
    import re

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples").glob("*.py"))]
    shown = [(page.name, module, names) for page in pages
             for module, names in re.findall(r"^\s*from (metaclip_spark[\w.]*) import ([\w, ]+)$",
                                             page.read_text(encoding="utf-8"), re.M)]
    assert any(module.endswith("online") for _, module, _ in shown)  # the loader's line is among them
    for page, module, names in shown:
        imported = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(imported, name), (page, module, name)
