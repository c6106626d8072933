"""Hand-off to training, end to end (`make test-roundtrip`): images generated here and served over HTTP on
127.0.0.1, a pool of their URLs and captions curated, exported, and downloaded by img2dataset as a user runs it:
its command with the multiprocessing distributor, and examples/img2dataset_spark.py (img2dataset's pyspark
distributor in a session the script starts) on a Spark standalone cluster on 127.0.0.1.

img2dataset lives in its own virtualenv with pyspark (its dependencies are not the project's): the make target
builds it and passes its command in IMG2DATASET; without it these tests are skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli

from conftest import DATA, REPO
from servers import ArchiveServer
from standalone_cluster import StandaloneCluster, spark_env

pytestmark = pytest.mark.roundtrip
IMG2DATASET = os.environ.get("IMG2DATASET", "")
if not IMG2DATASET:
    pytest.skip("IMG2DATASET (img2dataset's command, from `make test-roundtrip`) is not set", allow_module_level=True)
IMG2DATASET_PYTHON = str(Path(IMG2DATASET).with_name("python"))  # its virtualenv's Python, with pyspark

SMALL_METADATA = str(DATA / "metadata" / "small.json")
# Captions that match entries of the small metadata, with what a caption byte comparison must survive: accents,
# CJK, emoji (outside the BMP), quotes, a backslash, a tab and an inner newline.
CAPTIONS = [
    "Semantic Scholar logo ✨",
    "A photo of a dog and a cat, café au lait 🐶🐱",
    "Seattle skyline at night — 西雅图",
    'Research team "AI2" in 2023',
    "a red apple\\green apple",
    "Scholar\tand\nresearcher",
]
IMAGES = 12
COLUMNS = ["uuid", "keep_prob", "crawl"]  # our columns img2dataset carries into each sample (save_additional_columns)
SAMPLES_PER_SHARD = 3  # on Spark: IMAGES / 3 = 4 shards, one task each, more than the cluster's two executors


def _png(i: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (32 + i, 24), (20 * i % 256, 255 - 20 * i % 256, 90))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def served(spark, tmp_path_factory):
    """IMAGES PNG files over HTTP; a pool where every third image has two captions."""
    work = tmp_path_factory.mktemp("roundtrip")
    (work / "site" / "img").mkdir(parents=True)
    for i in range(IMAGES):
        (work / "site" / "img" / f"{i}.png").write_bytes(_png(i))
    server = ArchiveServer(work / "site").start()
    rows = []
    for i in range(IMAGES):
        url = f"{server.url}img/{i}.png"
        rows.append({"url": url, "text": CAPTIONS[i % len(CAPTIONS)]})
        if i % 3 == 0:
            rows.append({"url": url, "text": CAPTIONS[(i + 1) % len(CAPTIONS)] + f" #{i}"})
    pool = work / "pool.jsonl"
    pool.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    root = work / "root"
    # t far above every count: every matched pair is kept, so every one must come back from img2dataset
    assert cli.main(["curate", "--input", str(pool), "--output", str(root), "--metadata", SMALL_METADATA,
                     "--t", "1000000", "--no-report"]) == 0
    yield work, server, root, rows
    server.stop()


def _export(root: Path, to: Path, *options: str) -> list[dict]:
    """`metaclip-spark export` of the root into `to`; the rows it wrote."""
    assert cli.main(["export", "--output", str(root), "--to", str(to), *options]) == 0
    return [r for f in sorted(to.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _run(command: list[str], env: dict | None = None) -> str:
    """An img2dataset run (no wandb, no update check); its output."""
    env = dict(env or os.environ, NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled")
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


def _download(export: Path, out: Path, output_format: str) -> list[dict]:
    """img2dataset's command over the export as the README shows it (the multiprocessing distributor)."""
    _run([IMG2DATASET, "--url_list", str(export), "--input_format", "parquet", "--url_col", "url",
          "--caption_col", "text", "--save_additional_columns", json.dumps(COLUMNS),
          "--output_format", output_format, "--output_folder", str(out), "--processes_count", "1",
          "--thread_count", "4", "--resize_mode", "no", "--disable_all_reencoding", "True",
          "--enable_wandb", "False", "--retries", "0", "--timeout", "10", "--distributor", "multiprocessing"])
    return _samples(out)


def _samples(out: Path) -> list[dict]:
    """One dict per sample img2dataset wrote: its json, caption and image bytes (webdataset shards unpacked as a
    training reader would)."""
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            tar.extractall(out / shard.stem, filter="data")
    samples = []
    for meta in sorted(out.glob("*/*.json")):
        record = json.loads(meta.read_text(encoding="utf-8"))
        image = [p for p in meta.parent.glob(meta.stem + ".*") if p.suffix not in (".json", ".txt")]
        record["caption_bytes"] = meta.with_suffix(".txt").read_bytes()
        record["image_bytes"] = image[0].read_bytes() if image else None
        samples.append(record)
    return samples


def _assert_every_pair_arrived(samples: list[dict], exported: list[dict], work: Path) -> None:
    """Each exported pair is one downloaded sample: its caption byte-identical, our columns carried, its image whole."""
    assert sorted((s["url"], s["caption_bytes"]) for s in samples) == \
        sorted((r["url"], r["text"].encode("utf-8")) for r in exported)
    by_pair = {(r["url"], r["text"]): r for r in exported}
    assert len(by_pair) == len(samples)
    for s in samples:
        row = by_pair[(s["url"], s["caption_bytes"].decode("utf-8"))]
        assert s["caption"] == row["text"] and s["status"] == "success"
        assert {c: s[c] for c in COLUMNS} == {c: row[c] for c in COLUMNS}
        assert s["keep_prob"] == 1.0 and s["crawl"] == "pool"
        assert s["image_bytes"] == (work / "site" / s["url"].split("/", 3)[3]).read_bytes()


def _assert_one_text_per_image(exported: list[dict], rows: list[dict], server) -> None:
    """One of each image's pool texts was exported, and each image was fetched exactly once."""
    assert sorted(r["url"] for r in exported) == sorted({r["url"] for r in rows})
    assert {(r["url"], r["text"]) for r in exported} <= {(r["url"], r["text"]) for r in rows}
    gets = _gets(server)
    assert sorted(gets) == sorted(f"/img/{i}.png" for i in range(IMAGES)) and set(gets.values()) == {1}


def _gets(server) -> Counter:
    return Counter(path for method, path, _, status in server.log.entries if method == "GET" and status == 200)


def test_every_curated_pair_arrives_with_its_caption_byte_for_byte(served, tmp_path):
    work, server, root, rows = served
    exported = _export(root, tmp_path / "export", "--files", "2")
    assert sorted((r["url"], r["text"]) for r in exported) == sorted((r["url"], r["text"]) for r in rows)
    server.reset()
    _assert_every_pair_arrived(_download(tmp_path / "export", tmp_path / "images", "webdataset"), exported, work)
    assert max(_gets(server).values()) == 2  # an image with two texts is fetched twice without the option below


def test_one_text_per_image_downloads_each_image_once(served, tmp_path):
    work, server, root, rows = served
    exported = _export(root, tmp_path / "export", "--one-text-per-image")
    server.reset()
    _assert_every_pair_arrived(_download(tmp_path / "export", tmp_path / "images", "files"), exported, work)
    _assert_one_text_per_image(exported, rows, server)


@pytest.fixture
def cluster(tmp_path_factory):
    """A standalone master and two 1-core workers on 127.0.0.1 whose executors run img2dataset's Python; every
    process it started is stopped, pass or fail. Launched without waiting: the JVMs boot while export runs."""
    standalone = StandaloneCluster(tmp_path_factory.mktemp("standalone"), workers=2, cores=1, memory="1g",
                                   python=IMG2DATASET_PYTHON)
    try:
        yield standalone.launch()
    finally:
        standalone.stop()


def _tasks_finished_on(cluster: StandaloneCluster) -> set[str]:
    """The task indices the cluster's executors finished (their logs, in the workers' work directories)."""
    logs = [log.read_text("utf-8", "replace") for log in cluster.workdir.glob("worker-*/app-*/*/stderr")]
    return {task for log in logs for task in re.findall(r"Finished task (\d+)\.\d+ in stage", log)}


def test_the_spark_driver_script_downloads_on_the_cluster_executors(served, cluster, tmp_path):
    """examples/img2dataset_spark.py, run with img2dataset's Python as the README says: it starts a session on the
    cluster and img2dataset's pyspark distributor downloads one shard per task on its executors."""
    work, server, root, rows = served
    exported = _export(root, tmp_path / "export", "--one-text-per-image")  # one file: img2dataset shards it
    conf = tmp_path / "driver-conf"  # the driver's spark-defaults.conf, as a cluster's gateway machine has one
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(  # and the executors' img2dataset makes no update check either
        "spark.driver.memory 512m\nspark.executor.memory 512m\nspark.ui.enabled false\n"
        "spark.executorEnv.NO_ALBUMENTATIONS_UPDATE 1\nspark.executorEnv.WANDB_MODE disabled\n")
    env = spark_env(IMG2DATASET_PYTHON, conf)
    del env["SPARK_HOME"]  # the driver runs the Spark of img2dataset's environment (its pyspark), as a user's would
    cluster.wait_ready()
    server.reset()
    output = _run([IMG2DATASET_PYTHON, str(REPO / "examples" / "img2dataset_spark.py"), str(tmp_path / "export"),
                   str(tmp_path / "images"), "--master", cluster.master_url, "--columns", ",".join(COLUMNS),
                   "--samples-per-shard", str(SAMPLES_PER_SHARD), "--threads", "4"], env=env)
    assert "No pyspark session found" not in output  # img2dataset used the script's session, not a local one of its own
    shards = len(list((tmp_path / "images").glob("*.tar")))
    assert shards == IMAGES // SAMPLES_PER_SHARD == len(_tasks_finished_on(cluster))  # one task each, on the cluster
    _assert_every_pair_arrived(_samples(tmp_path / "images"), exported, work)
    _assert_one_text_per_image(exported, rows, server)
