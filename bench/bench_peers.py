"""Case 6, extraction cost side by side: our WARC and WAT paths, today's code, cc2dataset and the floor, one run.

Inputs (bench_extract's WARC, ~100 MB uncompressed at scale 1, and files derived from it):
- the WARC file, and its WAT file written by tests/wat_writer.py in Common Crawl's WAT layout (no large real WAT
  file is at hand): the same pages as WARC and as WAT;
- the same two for one copy of the real excerpts alone (the 100 MB file repeats them, which flatters caches: an alt
  text seen once is labelled once). A run of a one-copy side reads its file COLD_COPIES times, caches forgotten
  before each read as a fresh worker starts its first file: what a crawl, where pages do not repeat, costs, timed
  over as many bytes as the 100 MB file's WAT.

Sides, each a process of bench/peer_side.py kept alive and asked for RUNS runs, interleaved in rotating order so that
other load on a shared machine falls on all of them; each keeps its best CPU time (its own process's; the pairs a
side yields are hashed, to compare sides, after its clock stops):
- the floor: inflating the file alone (zlib, ISA-L, zlib-ng), FastWARC's bare record loop, and our reader's member by
  member record loop;
- ours: metaclip_spark.extraction.job.file_pairs (what a Spark task runs per file) of this tree, and of the baseline
  commit (today's code before issue 18) for the same files: their pairs must be identical;
- cc2dataset (PyPI, in its own virtualenv bench/work/peer-venv, made by `make bench`) on the WAT file;
- ours with language ID left out (every text labelled "en" without fastText) on the one-copy files: what language
  ID costs us on a crawl, where cc2dataset identifies no language.

Every language is kept on our side (MetaCLIP 2's worldwide setting; language ID still runs on every text), as
cc2dataset keeps every alt text. cc2dataset takes alt texts only; we take alt and title (and data-image-title from
HTML): both pair counts are reported, and the WAT goal is stated in pairs per CPU-second and in CPU-seconds per file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import io
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

# main before issue 18's extraction work: "today's" code; BENCH_PEER_BASELINE=<commit> measures a change side by side
BASELINE_COMMIT = os.environ.get("BENCH_PEER_BASELINE", "c3245db")
RUNS = int(os.environ.get("BENCH_PEER_RUNS", "5"))
COLD_COPIES = int(os.environ.get("BENCH_PEER_COLD_COPIES", "40"))
GOAL_WAT_VS_CC2DATASET = 2.0
GOAL_WARC_VS_TODAY = 2.0
PEER_VENV = BENCH / "work" / "peer-venv"
PROJECT_PYTHON = sys.executable


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def baseline_tree(work_dir: Path, commit: str = BASELINE_COMMIT) -> Path:
    """A commit's metaclip_spark and conf (the baseline's by default), extracted once (git archive)."""
    target = work_dir / f"baseline-{commit}"
    if not (target / "metaclip_spark" / "__init__.py").exists():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "metaclip_spark", "conf"],
                                 capture_output=True, check=True).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target)
    return target


def one_copy_warc(directory: Path) -> Path:
    """The real excerpts of bench_extract.SOURCES once, one gzip member per record."""
    import gzip

    import bench_extract

    path = directory / "one-copy.warc.gz"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            for name in bench_extract.SOURCES:
                for record in bench_extract._members(REPO / "tests" / "data" / "cc" / name):
                    out.write(gzip.compress(record, compresslevel=6, mtime=0))
    return path


def wat_of(warc: Path) -> Path:
    """The WAT file of `warc` (tests/wat_writer.py), written once."""
    wat = warc.with_name(warc.name.replace(".warc.gz", ".warc.wat.gz"))
    stamp = wat.with_suffix(".json")
    if not (wat.exists() and stamp.exists() and json.loads(stamp.read_text()).get("warc_bytes") == warc.stat().st_size):
        sys.path.insert(0, str(REPO / "tests"))
        from wat_writer import write_wat

        written = write_wat(warc, wat)
        stamp.write_text(json.dumps({**written, "warc_bytes": warc.stat().st_size}))
    return wat


class Side:
    """A running peer_side.py process."""

    def __init__(self, name: str, side: str, path: Path, python: Path | str, pythonpath: Path | None,
                 copies: int = 1):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if pythonpath:
            env["PYTHONPATH"] = str(pythonpath)
        self.name, self.path, self.copies = name, path, copies
        self.process = subprocess.Popen([str(python), str(BENCH / "peer_side.py"), side, str(path), str(copies)], cwd=REPO,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = json.loads(self.process.stdout.readline() or '{"error": "did not start"}')
        self.runs: list[dict] = []

    def run(self) -> None:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        self.runs.append(json.loads(line) if line else {"error": "exited"})

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()

    def best(self) -> dict:
        good = [r for r in self.runs if "cpu_seconds" in r]
        if not good:
            return {"error": (self.runs or [{"error": "no run"}])[-1].get("error", "no run")}
        best = dict(min(good, key=lambda r: r["cpu_seconds"]))
        best["all_cpu_seconds"] = [round(r["cpu_seconds"], 3) for r in good]
        best["same_output_every_run"] = len({r.get("digest", r.get("bytes_out")) for r in good}) == 1
        return best


def _mb(path: Path) -> float:
    """Uncompressed MB of a gzipped file."""
    import zlib

    data, size, position = path.read_bytes(), 0, 0
    while position < len(data):
        inflater = zlib.decompressobj(31)
        size += len(inflater.decompress(data[position:position + (64 << 20)]))
        if not inflater.eof:
            break
        position += len(data[position:position + (64 << 20)]) - len(inflater.unused_data)
    return size / 1e6


def run(work_dir, log=print) -> dict:
    work_dir = Path(work_dir)
    import bench_extract

    scale = float(os.environ.get("BENCH_SCALE", "1") or 1)
    directory = work_dir / "extract-warc"
    built = bench_extract.build_warcs(directory, bench_extract.TARGET_MB * scale)
    warc = directory / built["files"][0]
    log("peers: writing the WAT files (tests/wat_writer.py), once")
    wat = wat_of(warc)
    small_warc = one_copy_warc(work_dir / "extract-one-copy")
    small_wat = wat_of(small_warc)
    baseline = baseline_tree(work_dir)
    here = REPO
    peer = peer_python()
    have_peer = peer.exists()
    load_start = [round(x, 2) for x in os.getloadavg()]

    cold = COLD_COPIES
    plan = [  # (name, side, file, python, PYTHONPATH[, copies])
        ("warc inflate zlib", "inflate-zlib", warc, PROJECT_PYTHON, here),
        ("warc inflate isal", "inflate-isal", warc, PROJECT_PYTHON, here),
        ("warc records", "records", warc, PROJECT_PYTHON, here),
        ("warc members", "members", warc, PROJECT_PYTHON, here),
        ("warc today", "ours", warc, PROJECT_PYTHON, baseline),
        ("warc now", "ours", warc, PROJECT_PYTHON, here),
        ("wat inflate zlib", "inflate-zlib", wat, PROJECT_PYTHON, here),
        ("wat inflate isal", "inflate-isal", wat, PROJECT_PYTHON, here),
        ("wat records", "records", wat, PROJECT_PYTHON, here),
        ("wat members", "members", wat, PROJECT_PYTHON, here),
        ("wat today", "ours", wat, PROJECT_PYTHON, baseline),
        ("wat now", "ours", wat, PROJECT_PYTHON, here),
        ("one-copy warc today", "ours", small_warc, PROJECT_PYTHON, baseline, cold),
        ("one-copy warc now", "ours", small_warc, PROJECT_PYTHON, here, cold),
        ("one-copy warc now, no language ID", "ours-no-language-id", small_warc, PROJECT_PYTHON, here, cold),
        ("one-copy wat now", "ours", small_wat, PROJECT_PYTHON, here, cold),
        ("one-copy wat now, no language ID", "ours-no-language-id", small_wat, PROJECT_PYTHON, here, cold),
    ]
    if have_peer:
        plan += [("warc inflate zlib-ng", "inflate-zlib-ng", warc, peer, None),
                 ("wat inflate zlib-ng", "inflate-zlib-ng", wat, peer, None),
                 ("wat cc2dataset", "cc2dataset", wat, peer, None),
                 ("one-copy wat cc2dataset", "cc2dataset", small_wat, peer, None, cold)]
    log(f"peers: starting {len(plan)} sides")
    sides = [Side(*entry) for entry in plan]
    try:
        for attempt in range(RUNS):
            shift = attempt % len(sides)
            for side in sides[shift:] + sides[:shift]:
                if "error" not in side.ready:
                    side.run()
            log(f"peers: round {attempt + 1} of {RUNS} done")
    finally:
        for side in sides:
            side.close()
    best = {side.name: side.best() for side in sides}
    copies = {side.name: side.copies for side in sides}
    sizes = {"warc": _mb(warc), "wat": _mb(wat), "one-copy warc": _mb(small_warc), "one-copy wat": _mb(small_wat)}
    result = {"inputs": {"warc_file": str(warc.relative_to(work_dir)), "warc_uncompressed_mb": round(sizes["warc"], 1),
                         "warc_compressed_mb": round(warc.stat().st_size / 1e6, 1),
                         "wat_uncompressed_mb": round(sizes["wat"], 1),
                         "wat_compressed_mb": round(wat.stat().st_size / 1e6, 1),
                         "one_copy_warc_uncompressed_mb": round(sizes["one-copy warc"], 2),
                         "one_copy_wat_uncompressed_mb": round(sizes["one-copy wat"], 2),
                         "one_copy_cold_copies": cold,
                         "wat_writer": json.loads(wat.with_suffix(".json").read_text())},
              "baseline_commit": BASELINE_COMMIT, "runs_per_side": RUNS, "peer_venv": have_peer,
              "load_average_start": load_start, "load_average_end": [round(x, 2) for x in os.getloadavg()],
              "sides": {}}
    for name, figures in best.items():
        file_key = next(k for k in ("one-copy warc", "one-copy wat", "warc", "wat") if name.startswith(k))
        cpu = figures.get("cpu_seconds")
        row = {"file": file_key, **{k: v for k, v in figures.items() if k not in ("digest",)}}
        if cpu:
            row["mb_per_cpu_s"] = round(sizes[file_key] * copies[name] / cpu, 1)
            if figures.get("pairs") is not None:
                row["pairs_per_cpu_s"] = round(figures["pairs"] / cpu)
        row["digest"] = figures.get("digest")
        result["sides"][name] = row
    result.update(summarise(result["sides"]))
    return result


def _cpu(sides: dict, name: str) -> float | None:
    return sides.get(name, {}).get("cpu_seconds")


def summarise(sides: dict) -> dict:
    """The floor of each file, every side's share of it, and the goal ratios."""
    out: dict = {"floor": {}}
    for file_key in ("warc", "wat"):
        inflates = {n: _cpu(sides, n) for n in sides if n.startswith(f"{file_key} inflate") and _cpu(sides, n)}
        if not inflates:
            continue
        fastest = min(inflates, key=inflates.get)
        out["floor"][file_key] = {"fastest_inflate": fastest, "cpu_seconds": inflates[fastest]}
        for name, row in sides.items():
            if row["file"] == file_key and row.get("cpu_seconds"):
                row["floor_share"] = round(inflates[fastest] / row["cpu_seconds"], 3)

    def ratio(a, b):
        return round(a / b, 2) if a and b else None

    warc_today, warc_now = sides.get("warc today", {}), sides.get("warc now", {})
    out["warc_now_vs_today"] = ratio(_cpu(sides, "warc today"), _cpu(sides, "warc now"))
    out["warc_identical_pairs"] = bool(warc_today.get("digest")) and warc_today.get("digest") == warc_now.get("digest")
    out["one_copy_warc_now_vs_today"] = ratio(_cpu(sides, "one-copy warc today"), _cpu(sides, "one-copy warc now"))
    out["one_copy_warc_identical_pairs"] = (sides.get("one-copy warc today", {}).get("digest")
                                            == sides.get("one-copy warc now", {}).get("digest"))
    out["wat_now_vs_today"] = ratio(_cpu(sides, "wat today"), _cpu(sides, "wat now"))
    out["wat_identical_pairs"] = sides.get("wat today", {}).get("digest") == sides.get("wat now", {}).get("digest")
    for prefix in ("", "one-copy "):
        ours, peer = sides.get(f"{prefix}wat now", {}), sides.get(f"{prefix}wat cc2dataset", {})
        key = prefix.replace("-", "_").replace(" ", "_")
        out[f"{key}wat_vs_cc2dataset_pairs_per_cpu_s"] = ratio(ours.get("pairs_per_cpu_s"), peer.get("pairs_per_cpu_s"))
        out[f"{key}wat_vs_cc2dataset_cpu"] = ratio(peer.get("cpu_seconds"), ours.get("cpu_seconds"))
    for path in ("warc", "wat"):  # on a crawl (one copy, cold): the share of our CPU that is language ID
        with_id, without = _cpu(sides, f"one-copy {path} now"), _cpu(sides, f"one-copy {path} now, no language ID")
        out[f"one_copy_{path}_language_id_share"] = round(1 - without / with_id, 3) if with_id and without else None
    out["one_copy_wat_no_language_id_vs_cc2dataset_pairs_per_cpu_s"] = ratio(
        sides.get("one-copy wat now, no language ID", {}).get("pairs_per_cpu_s"),
        sides.get("one-copy wat cc2dataset", {}).get("pairs_per_cpu_s"))
    # our two paths on the same pages: pairs and CPU per page
    out["wat_vs_warc_cpu"] = ratio(_cpu(sides, "warc now"), _cpu(sides, "wat now"))
    return out


if __name__ == "__main__":
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    print(json.dumps(run(BENCH / "work" / "scale-1", lambda m: print(m, file=sys.stderr)), indent=2))
