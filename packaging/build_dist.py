"""`make dist`: what spark-submit needs to ship metaclip-spark to a cluster, built into dist/.

- dist/metaclip_spark-VERSION-py3-none-any.whl: the package (and conf/ under share/metaclip-spark/conf).
- dist/metaclip-spark-env.tar.gz: a packed virtualenv (venv-pack) holding the wheel and its Python dependencies
  except PySpark and py4j, which executors take from the cluster's own Spark so the Python and JVM sides always
  match. Ship it with `--archives dist/metaclip-spark-env.tar.gz#environment` and
  `spark.pyspark.python=./environment/bin/python`.
- dist/metaclip_spark.zip: the package alone for `--py-files`, the lighter way when the executors' Python already
  has the dependencies listed, pinned, in dist/requirements-cluster.txt (the same set the packed env holds).

`--extras s3` (make dist DIST_EXTRAS=s3) adds an extra's dependencies, e.g. s3fs for reading s3://commoncrawl/.

See docs/cluster.md for the commands on YARN, Kubernetes, standalone, EMR and Databricks.
"""

from __future__ import annotations

import argparse
import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"
ENV_PREFIX = REPO / "build" / "dist-env"
ENV_ARCHIVE = DIST / "metaclip-spark-env.tar.gz"
PY_FILES_ZIP = DIST / "metaclip_spark.zip"
REQUIREMENTS = DIST / "requirements-cluster.txt"
# Executors take these from the cluster's Spark installation (SPARK_HOME/python/lib/pyspark.zip, py4j-*.zip).
FROM_THE_CLUSTER = ("pyspark", "py4j")


def run(*argv: str | Path) -> None:
    print("+", " ".join(map(str, argv)), flush=True)
    subprocess.run([str(a) for a in argv], check=True, cwd=REPO)


def build_wheel() -> Path:
    for old in DIST.glob("metaclip_spark-*.whl"):
        old.unlink()
    shutil.rmtree(REPO / "build" / "lib", ignore_errors=True)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", DIST, REPO)
    (wheel,) = DIST.glob("metaclip_spark-*.whl")
    return wheel


def runtime_requirements(wheel: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The wheel's Requires-Dist (plus those of `extras`) without what the cluster's Spark provides."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(name))
    requirements = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        marker = requirement.partition(";")[2].replace("'", '"').replace(" ", "")
        if "extra==" in marker and not any(f'extra=="{extra}"' in marker for extra in extras):
            continue
        project = requirement.split(";")[0].strip()
        bare = project.split("[")[0]
        for separator in "<>=!~ (":
            bare = bare.split(separator)[0]
        if bare.lower() not in FROM_THE_CLUSTER:
            requirements.append(project)
    return requirements


def write_pinned_requirements(requirements: list[str]) -> None:
    """The runtime requirements with the versions of constraints.txt: what executors need beside the package."""
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name = line.split("==")[0].strip()
            pins[name.lower().replace("_", "-")] = line.strip()
    lines = []
    for requirement in requirements:
        bare = requirement
        for separator in "<>=!~ ([":
            bare = bare.split(separator)[0]
        lines.append(pins.get(bare.lower().replace("_", "-"), requirement))
    REQUIREMENTS.write_text("# metaclip-spark's runtime dependencies, without PySpark (it comes from the cluster)\n"
                            + "\n".join(lines) + "\n")


def build_py_files_zip(wheel: Path) -> None:
    """The package's files from the wheel (code and package data), importable from a zip on sys.path."""
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(PY_FILES_ZIP, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename.startswith("metaclip_spark/"):
                target.writestr(info, source.read(info))


def build_packed_env(requirements: list[str], wheel: Path) -> None:
    """A fresh `python -m venv` with the wheel installed (not editable: venv-pack refuses those), packed."""
    shutil.rmtree(ENV_PREFIX, ignore_errors=True)
    # The base interpreter, not this venv's: venv-pack links the packed python to it (same path on every node).
    base_python = getattr(sys, "_base_executable", sys.executable)
    run(base_python, "-m", "venv", ENV_PREFIX)
    pip = ENV_PREFIX / "bin" / "pip"
    run(pip, "install", "--quiet", "--disable-pip-version-check", "-c", REPO / "constraints.txt",
        *requirements)
    run(pip, "install", "--quiet", "--disable-pip-version-check", "--no-deps", wheel)
    # pip is not needed on executors; the archive is smaller without it.
    run(sys.executable, "-m", "venv_pack", "--prefix", ENV_PREFIX, "--output", ENV_ARCHIVE, "--force", "--quiet",
        "--exclude", "lib/python*/site-packages/pip/*", "--exclude", "lib/python*/site-packages/pip-*/*")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="", help="comma-separated extras to add, e.g. s3 (s3fs, for s3://), gcs")
    extras = tuple(e.strip() for e in parser.parse_args(argv).extras.split(",") if e.strip())
    DIST.mkdir(exist_ok=True)
    wheel = build_wheel()
    build_py_files_zip(wheel)
    requirements = runtime_requirements(wheel, extras)
    write_pinned_requirements(requirements)
    build_packed_env(requirements, wheel)
    for path in (wheel, PY_FILES_ZIP, REQUIREMENTS, ENV_ARCHIVE):
        print(f"{path.relative_to(REPO)}  {path.stat().st_size / 2**20:.1f} MiB")
    print("Ship it: spark-submit --archives dist/metaclip-spark-env.tar.gz#environment "
          "--conf spark.pyspark.python=./environment/bin/python jobs/curate.py ... (see docs/cluster.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
