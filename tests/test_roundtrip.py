"""Hand-off to training, end to end (`make test-roundtrip`): images generated here and served over HTTP on
127.0.0.1, a pool of their URLs and captions curated, exported, and downloaded by img2dataset as a user runs it.

img2dataset lives in its own virtualenv (its dependencies are not the project's): the make target builds it and
passes its command in IMG2DATASET; without it these tests are skipped.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from metaclip_spark import cli

from conftest import DATA
from servers import ArchiveServer

pytestmark = pytest.mark.roundtrip
IMG2DATASET = os.environ.get("IMG2DATASET", "")
if not IMG2DATASET:
    pytest.skip("IMG2DATASET (img2dataset's command, from `make test-roundtrip`) is not set", allow_module_level=True)

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


def _download(export: Path, out: Path, output_format: str) -> list[dict]:
    """img2dataset over the export as the README shows it; one dict per sample: its json, caption and image."""
    command = [IMG2DATASET, "--url_list", str(export), "--input_format", "parquet", "--url_col", "url",
               "--caption_col", "text", "--save_additional_columns", '["uuid","keep_prob","crawl"]',
               "--output_format", output_format, "--output_folder", str(out), "--processes_count", "1",
               "--thread_count", "4", "--resize_mode", "no", "--disable_all_reencoding", "True",
               "--enable_wandb", "False", "--retries", "0", "--timeout", "10", "--distributor", "multiprocessing"]
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled")
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    if output_format == "webdataset":  # shards 00000.tar, ...: unpack them as a training reader would
        import tarfile

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


def _gets(server) -> Counter:
    return Counter(path for method, path, _, status in server.log.entries if method == "GET" and status == 200)


def test_every_curated_pair_arrives_with_its_caption_byte_for_byte(served, tmp_path):
    work, server, root, rows = served
    assert cli.main(["export", "--output", str(root), "--to", str(tmp_path / "export"), "--files", "2"]) == 0
    exported = [r for f in sorted((tmp_path / "export").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted((r["url"], r["text"]) for r in exported) == sorted((r["url"], r["text"]) for r in rows)
    server.reset()
    samples = _download(tmp_path / "export", tmp_path / "images", "webdataset")
    assert sorted((s["url"], s["status"]) for s in samples) == sorted((r["url"], "success") for r in rows)
    by_pair = {(r["url"], r["text"]): r for r in exported}
    assert len(by_pair) == len(samples)
    for s in samples:
        text = s["caption_bytes"].decode("utf-8")
        assert s["caption_bytes"] == text.encode("utf-8") and (s["url"], text) in by_pair  # byte-identical
        assert s["caption"] == text and s["uuid"] == by_pair[(s["url"], text)]["uuid"]
        assert s["keep_prob"] == 1.0 and s["crawl"] == "pool"
        assert s["image_bytes"] == (work / "site" / s["url"].split("/", 3)[3]).read_bytes()
    assert max(_gets(server).values()) == 2  # an image with two texts is fetched twice without the option below


def test_one_text_per_image_downloads_each_image_once(served, tmp_path):
    work, server, root, rows = served
    assert cli.main(["export", "--output", str(root), "--to", str(tmp_path / "export"), "--one-text-per-image"]) == 0
    server.reset()
    samples = _download(tmp_path / "export", tmp_path / "images", "files")
    gets = _gets(server)
    assert sorted(gets) == sorted(f"/img/{i}.png" for i in range(IMAGES)) and set(gets.values()) == {1}
    assert len(samples) == IMAGES and all(s["status"] == "success" for s in samples)
    texts = {(r["url"], r["text"]) for r in rows}
    assert all((s["url"], s["caption_bytes"].decode("utf-8")) in texts for s in samples)
