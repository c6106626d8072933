"""Reruns on new crawl dumps: incremental, resumable, nothing lost or doubled (output root of root/layout.py)."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli, pipeline
from metaclip_spark.errors import ConfigError
from metaclip_spark.ingestion.ingest import InputSpec
from metaclip_spark.metadata.lists import Metadata

from conftest import DATA, REPO

SMALL_METADATA = str(DATA / "metadata" / "small.json")
# Three crawls of real excerpts; crawl C also lists the truncated file.
CRAWLS = {
    "CC-MAIN-2020-34": ["warcfile.warc.gz"],
    "CC-MAIN-2024-17": ["sample-0000.warc.gz"],
    "CC-MAIN-2024-18": ["sample-0001.warc.gz", "clipped.warc.gz"],
}
T = 3
SEED = 5


def _path(crawl, name):
    return f"crawl-data/{crawl}/segments/1/warc/{name}"


def common_crawl_layout(base, crawls: dict, listing_name=lambda crawl, names: f"{crawl}.warc.paths") -> dict:
    """Common Crawl's layout (crawl-data/<crawl>/segments/...) under `base` over the real excerpts `crawls` names,
    with one listing per crawl and one of them all ("all")."""
    listings = {}
    for crawl, names in crawls.items():
        for name in names:
            target = base / _path(crawl, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(DATA / "cc" / name, target)
        listings[crawl] = write_listing(base / listing_name(crawl, names), crawl, names)
    listings["all"] = base / "all.warc.paths"
    listings["all"].write_text("".join(_path(c, n) + "\n" for c, names in crawls.items() for n in names))
    return listings


def write_listing(path, crawl, names):
    path.write_text("".join(_path(crawl, n) + "\n" for n in names))
    return path


@pytest.fixture(scope="module")
def crawl_data(tmp_path_factory):
    """The three crawls' layout, with one manifest per crawl and one of all."""
    base = tmp_path_factory.mktemp("cc")
    return base, common_crawl_layout(base, CRAWLS)


def _config(config):
    return config.updated({"curation": {"t": T, "seed": SEED}, "extract": {"languages": [], "files_per_unit": 1}})


def _curate(spark, config, root, manifest=None, base=None, **kwargs):
    source = InputSpec(str(manifest), "warc-manifest", str(base)) if manifest else None
    return pipeline.curate(spark, _config(config), source, Metadata(SMALL_METADATA), str(root),
                           report=False, **kwargs)


def _rows(path, *columns):
    table = pq.read_table(path)
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)))


@pytest.fixture(scope="module")
def one_go(spark, config, crawl_data, tmp_path_factory):
    base, manifests = crawl_data
    root = tmp_path_factory.mktemp("one_go") / "root"
    summary = _curate(spark, config, root, manifests["all"], base)
    return root, summary


def test_one_go_builds_every_crawl_and_counts_the_truncated_file(one_go):
    root, summary = one_go
    assert summary["crawls"] == sorted(CRAWLS)
    assert summary["ingest"]["files_done"] == 4 and summary["ingest"]["files_failed"] == 0
    assert summary["extract"]["records_truncated"] >= 1
    assert set(os.listdir(root / "matched")) >= {f"crawl={c}" for c in CRAWLS}
    assert summary["pairs_curated"] < summary["pairs_matched"]


def test_crawls_added_one_by_one_equal_all_at_once(spark, config, crawl_data, one_go, tmp_path):
    base, manifests = crawl_data
    reference_root, reference = one_go
    root = tmp_path / "root"
    earlier = None
    for crawl in CRAWLS:
        summary = _curate(spark, config, root, manifests[crawl], base)
        assert summary["ingest"]["files_processed_now"] == len(CRAWLS[crawl])  # only the new crawl's files
        curated = set(_rows(root / "curated", "crawl", "uuid", "text"))
        if earlier is not None:
            # with the same seed and t, a pair an earlier run dropped never comes back
            assert {row for row in curated if row[0] in earlier_crawls} <= earlier
        earlier, earlier_crawls = curated, set(summary["crawls"])
    assert _rows(root / "counts", "entry_id", "entry", "count") == \
        _rows(reference_root / "counts", "entry_id", "entry", "count")
    assert _rows(root / "curated", "crawl", "uuid", "text", "keep_prob") == \
        _rows(reference_root / "curated", "crawl", "uuid", "text", "keep_prob")
    assert {k: summary[k] for k in ("pairs_in", "pairs_matched", "pairs_curated", "t")} == \
        {k: reference[k] for k in ("pairs_in", "pairs_matched", "pairs_curated", "t")}
    # --crawls picks the pool without re-ingesting anything
    only = _curate(spark, config, root, crawls=["CC-MAIN-2024-17"])
    assert only["crawls"] == ["CC-MAIN-2024-17"] and only["pairs_in"] == reference["by_crawl"]["CC-MAIN-2024-17"]["pairs"]


def test_a_rerun_skips_done_files_and_force_redoes_them(spark, config, crawl_data, one_go):
    base, manifests = crawl_data
    root, reference = one_go
    again = _curate(spark, config, root, manifests["CC-MAIN-2024-17"], base)
    assert again["ingest"]["files_processed_now"] == 0
    forced = _curate(spark, config, root, manifests["CC-MAIN-2024-17"], base, force=True)
    assert forced["ingest"]["files_processed_now"] == 1
    assert forced["pairs_curated"] == reference["pairs_curated"]


def test_another_metadata_list_is_refused_unless_rematched(spark, config, crawl_data, one_go, tmp_path):
    base, manifests = crawl_data
    root, _ = one_go
    other = tmp_path / "other.json"
    other.write_text('["a", "of", "the", "photo"]')
    source = InputSpec(str(manifests["CC-MAIN-2024-17"]), "warc-manifest", str(base))
    with pytest.raises(ConfigError, match="another metadata list"):
        pipeline.curate(spark, _config(config), source, Metadata(str(other)), str(root), report=False)
    rematched_root = tmp_path / "copy"
    _curate(spark, config, rematched_root, manifests["CC-MAIN-2024-17"], base)
    summary = pipeline.curate(spark, _config(config), source, Metadata(str(other)), str(rematched_root),
                              report=False, rematch=True)
    assert summary["entries_total"] == 4 and summary["ingest"]["files_processed_now"] == 0
    assert {e for _, e in _rows(rematched_root / "counts", "entry_id", "entry")} <= {"a", "of", "the", "photo"}


def test_failed_files_are_kept_with_their_reason_and_retried(spark, config, crawl_data, tmp_path, capsys):
    base, manifests = crawl_data
    manifest = tmp_path / "with-missing.warc.paths"
    missing = _path("CC-MAIN-2024-17", "later.warc.gz")
    manifest.write_text(_path("CC-MAIN-2024-17", "sample-0000.warc.gz") + "\n" + missing + "\n")
    root = tmp_path / "root"
    argv = ["curate", "--input", str(manifest), "--input-format", "warc-manifest", "--input-base", str(base),
            "--metadata", SMALL_METADATA, "--output", str(root), "--t", str(T)]
    assert cli.main(argv) == 4  # 1 of 2 files failed: more than extract.max_failed_share
    assert "1 of 2 input files failed" in capsys.readouterr().err
    assert not (root / "summary.json").exists()
    assert cli.main(["status", str(root)]) == 0
    status = capsys.readouterr().out
    assert "files 2 listed, 1 done, 1 failed" in status and "later.warc.gz" in status
    os.symlink(DATA / "cc" / "sample-0001.warc.gz", base / missing)
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Curated" in out
    assert cli.main(["status", str(root)]) == 0
    assert "files 2 listed, 2 done, 0 failed" in capsys.readouterr().out


def _start(argv, log):
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    return subprocess.Popen([sys.executable, "-m", "metaclip_spark.cli", *argv], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_when(process, ready, timeout=300):
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its JVM, as a lost driver host would
    process.wait()


def _status_json(root) -> dict:
    run = subprocess.run([sys.executable, "-m", "metaclip_spark.cli", "status", str(root), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_killed_run_resumes_to_the_rows_of_an_uninterrupted_one(crawl_data, one_go, tmp_path):
    base, manifests = crawl_data
    reference_root, _ = one_go
    conf = tmp_path / "conf.toml"
    conf.write_text(f"[extract]\nlanguages = []\nfiles_per_unit = 1\n[curation]\nt = {T}\nseed = {SEED}\n")
    root = tmp_path / "root"
    argv = ["curate", "--input", str(manifests["all"]), "--input-format", "warc-manifest", "--input-base", str(base),
            "--metadata", SMALL_METADATA, "--output", str(root), "--conf", str(conf), "--no-report"]
    log = open(tmp_path / "run.log", "wb")
    # killed mid-extract: after the first unit committed, before the last
    _kill_when(_start(argv, log), lambda: glob.glob(f"{root}/units/*/*/_COMMITTED.json"))
    committed = len(glob.glob(f"{root}/units/*/*/_COMMITTED.json"))
    assert 1 <= committed < 4 and not (root / "summary.json").exists()
    status = _status_json(root)  # the killed run's unfinished files, as status tells them (without Spark)
    assert sum(c["files_listed"] for c in status["crawls"].values()) == 4
    assert sum(c["files_pending"] for c in status["crawls"].values()) == 4 - committed
    assert cli.main(argv) == 0  # the rerun, in this process (only the killed runs need a process of their own)
    assert len(glob.glob(f"{root}/units/*/*/_COMMITTED.json")) == 4  # every file once: none twice, none missing
    expected = _rows(reference_root / "curated", "crawl", "uuid", "text", "keep_prob")
    assert _rows(root / "curated", "crawl", "uuid", "text", "keep_prob") == expected
    assert _rows(root / "counts", "entry_id", "count") == _rows(reference_root / "counts", "entry_id", "count")
    # killed mid-balance: readers still see the previous finished curated table; the rerun gives the same rows
    (root / "summary.json").unlink()
    _kill_when(_start(argv, log), lambda: glob.glob(f"{root}/.next-run/.curated.tmp-*"))
    assert not (root / "summary.json").exists()
    assert _rows(root / "curated", "crawl", "uuid", "text", "keep_prob") == expected
    assert cli.main(argv) == 0  # the rerun, in this process (only the killed runs need a process of their own)
    assert _rows(root / "curated", "crawl", "uuid", "text", "keep_prob") == expected
    assert not (root / ".next-run").exists()  # the killed run's half-written outputs are cleared
