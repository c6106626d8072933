"""Benchmark inputs, generated reproducibly (fixed seeds) from offline sources and cached under bench/work/.

- Metadata: the embedded default list (metaclip_spark.metadata.lists.load_metadata(None)), kept first and in its order,
  then bigrams and multi-word titles made of real English words until the list has 500k entries.
- Alt texts: 30-120 characters of real English words (wordfreq's list), drawn with Zipf-like weights so that,
  as real alt texts do, most of them match several entries. A few are file-name-like and match nothing.
- Pools: Parquet directories of (url, uuid, text), many equal files so every Spark master reads the same splits.

BENCH_SCALE (default 1) multiplies every size; a cache directory is kept per scale.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "work"
# Bump when the generators change: the cache is keyed by it.
GENERATOR_VERSION = 1

METADATA_SIZE = 500_000
TEXTS = 1_000_000
LARGE_POOL = 4_000_000
ROWS_PER_FILE = 62_500
TEXT_LENGTH = (30, 120)

SEED_METADATA = 20231025
SEED_TEXTS = 20231026
VOCABULARY = 200_000  # wordfreq's most frequent English words used to compose texts, bigrams and titles
# Words kept lowercase inside a title ("Battle of the Somme").
TITLE_SMALL_WORDS = {"of", "the", "and", "in", "on", "at", "for", "to", "a", "an", "de", "by", "with"}
CAPTION_SEPARATORS = (" - ", " | ", ", ", ": ")


def scale() -> float:
    value = float(os.environ.get("BENCH_SCALE", "1") or 1)
    if not 0 < value <= 1:
        raise SystemExit(f"BENCH_SCALE must be in (0, 1], got {value}")
    return value


def sizes(factor: float | None = None) -> dict:
    factor = scale() if factor is None else factor
    return {
        "metadata_entries": max(2_000, int(METADATA_SIZE * factor)),
        "texts": max(10_000, int(TEXTS * factor)),
        "large_pool": max(40_000, int(LARGE_POOL * factor)),
    }


def work_dir(factor: float | None = None) -> Path:
    factor = scale() if factor is None else factor
    return WORK / f"scale-{factor:g}"


def vocabulary() -> list[str]:
    """Real English words by decreasing frequency (wordfreq ships its lists in the wheel: offline)."""
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", VOCABULARY * 2, wordlist="large") if w.isalpha() or "'" in w]
    return words[:VOCABULARY]


def zipf_weights(n: int, exponent: float = 1.0, offset: float = 8.0) -> np.ndarray:
    """Word frequencies in text follow Zipf's law; the offset flattens the head like real captions (fewer 'the')."""
    weights = 1.0 / (np.arange(n, dtype=np.float64) + offset) ** exponent
    return weights / weights.sum()


def _title_case(words: list[str]) -> str:
    out = [w if (i and w in TITLE_SMALL_WORDS) else w[:1].upper() + w[1:] for i, w in enumerate(words)]
    return " ".join(out)


def metadata_entries(size: int) -> tuple[list[str], dict]:
    """The default list first (ids kept), then bigrams, then multi-word titles, all distinct, until `size`."""
    from metaclip_spark.metadata.lists import load_metadata, metadata_digest

    default = load_metadata(None)
    entries = list(default[:size])
    seen = set(entries)
    words = vocabulary()
    rng = np.random.Generator(np.random.PCG64(SEED_METADATA))
    weights = zipf_weights(len(words), exponent=0.9, offset=50.0)
    remaining = size - len(entries)
    bigram_target = len(entries) + remaining * 11 // 20  # about 55% bigrams, 45% titles, like MetaCLIP's caps
    made = {"default": len(entries), "bigrams": 0, "titles": 0}
    while len(entries) < bigram_target:
        pairs = rng.choice(len(words), size=(50_000, 2), p=weights)
        for a, b in pairs:
            if a == b:
                continue
            bigram = f"{words[a]} {words[b]}"
            if bigram not in seen:
                seen.add(bigram)
                entries.append(bigram)
                made["bigrams"] += 1
                if len(entries) >= bigram_target:
                    break
    while len(entries) < size:
        lengths = rng.integers(2, 5, size=50_000)
        picks = rng.choice(len(words), size=(50_000, 4), p=weights)
        for length, row in zip(lengths, picks):
            title = _title_case([words[i] for i in row[:length]])
            if title not in seen:
                seen.add(title)
                entries.append(title)
                made["titles"] += 1
                if len(entries) >= size:
                    break
    made["default_digest"] = metadata_digest(default)[:16]
    made["default_total"] = len(default)
    return entries, made


def alt_texts(count: int, seed: int = SEED_TEXTS, chunk: int = 100_000,
              length: tuple[int, int] = TEXT_LENGTH) -> list[str]:
    """`count` alt texts of `length` (30-120) characters: captions (70%), title-cased product/page names (25%), file
    names (5%)."""
    words = vocabulary()
    word_array = np.array(words, dtype=object)
    word_lengths = np.array([len(w) for w in words], dtype=np.int64)
    weights = zipf_weights(len(words))
    rng = np.random.Generator(np.random.PCG64(seed))
    low, high = length
    max_words = 40  # enough for 120 characters of real words; the prefix rule trims the rest
    texts: list[str] = []
    while len(texts) < count:
        n = min(chunk, count - len(texts))
        picks = rng.choice(len(words), size=(n, max_words), p=weights)
        targets = rng.integers(low, high + 1, size=n)
        kinds = rng.random(n)
        separators = rng.integers(0, len(CAPTION_SEPARATORS), size=n)
        split_at = rng.integers(2, 6, size=n)
        numbers = rng.integers(0, 100_000, size=n)
        # Words kept: the longest prefix whose joined length (one space between words) stays <= target.
        running = np.cumsum(word_lengths[picks] + 1, axis=1) - 1
        keep = np.maximum(1, (running <= targets[:, None]).sum(axis=1))
        for i in range(n):
            chosen = word_array[picks[i, : keep[i]]].tolist()
            kind = kinds[i]
            if kind < 0.70:
                text = " ".join(chosen)
                text = text[:1].upper() + text[1:]
                if kind < 0.25:
                    text += "."
            elif kind < 0.95:
                cut = min(int(split_at[i]), len(chosen))
                text = _title_case(chosen[:cut])
                if cut < len(chosen):
                    text += CAPTION_SEPARATORS[separators[i]] + " ".join(chosen[cut:])
            else:
                text = f"IMG_{numbers[i]:05d}_{'_'.join(chosen[:3])}.jpg"
            if len(text) < low:
                text = (text + " " + " ".join(chosen)).strip()
            texts.append(text[:high])
    return texts


def _uuid(url: str) -> str:
    return hashlib.sha224(url.encode("utf-8")).hexdigest()[:24]


def write_pool(path: Path, texts: list[str], start: int = 0, rows_per_file: int = ROWS_PER_FILE) -> None:
    """A Parquet pool of (url, uuid, text) in equal files; urls are unique per row (one image per text)."""
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for file_index, offset in enumerate(range(0, len(texts), rows_per_file)):
        part = texts[offset: offset + rows_per_file]
        urls = [f"https://img{(start + offset + i) % 997}.example.org/media/{(start + offset + i):09d}.jpg"
                for i in range(len(part))]
        table = pa.table({"url": urls, "uuid": [_uuid(u) for u in urls], "text": part})
        pq.write_table(table, tmp / f"part-{file_index:05d}.parquet", row_group_size=rows_per_file)
    tmp.rename(path)


def ensure_inputs(factor: float | None = None, log=print) -> dict:
    """Generate (or reuse from the cache) every input; returns their paths and descriptions."""
    factor = scale() if factor is None else factor
    size = sizes(factor)
    directory = work_dir(factor)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    from metaclip_spark.metadata.lists import default_metadata_path

    default_stamp = hashlib.sha256(default_metadata_path().read_bytes()).hexdigest()[:16]
    key = {"generator": GENERATOR_VERSION, "scale": factor, "sizes": size, "default_metadata_sha256": default_stamp}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") == key:
            log(f"inputs: cached in {directory}")
            return manifest
    started = time.monotonic()
    entries, made = metadata_entries(size["metadata_entries"])
    metadata_path = directory / "metadata.json.gz"
    with gzip.open(metadata_path, "wt", encoding="utf-8") as f:
        json.dump(entries, f, ensure_ascii=False)
    log(f"inputs: metadata {len(entries):,} entries ({made}) in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    texts = alt_texts(size["large_pool"])
    log(f"inputs: {len(texts):,} alt texts in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    pools = {"pool": size["texts"], "large_pool": size["large_pool"]}
    for name, rows in pools.items():
        if (directory / name).exists():
            import shutil

            shutil.rmtree(directory / name)
        write_pool(directory / name, texts[:rows])
    # Two small files: a run over them starts every Python worker of a local[2] session and builds its automaton.
    if (directory / "warmup_pool").exists():
        import shutil

        shutil.rmtree(directory / "warmup_pool")
    write_pool(directory / "warmup_pool", texts[:2_000], rows_per_file=1_000)
    (directory / "sample_texts.json").write_text(json.dumps(texts[:1_000], ensure_ascii=False))
    log(f"inputs: pools written in {time.monotonic() - started:.1f} s")
    lengths = np.array([len(t) for t in texts[: size["texts"]]])
    manifest = {
        "key": key,
        "directory": str(directory),
        "metadata": str(metadata_path),
        "metadata_entries": len(entries),
        "metadata_parts": made,
        "pool": str(directory / "pool"),
        "pool_rows": size["texts"],
        "large_pool": str(directory / "large_pool"),
        "large_pool_rows": size["large_pool"],
        "warmup_pool": str(directory / "warmup_pool"),
        "sample_texts": str(directory / "sample_texts.json"),
        "text_length": {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 1), "max": int(lengths.max())},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_texts(pool_dir: str) -> list[str]:
    return pq.read_table(pool_dir, columns=["text"]).column("text").to_pylist()


if __name__ == "__main__":
    print(json.dumps(ensure_inputs(), indent=2))
