"""Writing tables, directories and JSON documents so a reader never sees a half-written one: write beside, then
rename into place; and the Hadoop file system operations the rest of the code needs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid as uuidlib
from typing import Callable

from pyspark.sql import DataFrame, SparkSession

from metaclip_spark.errors import ConfigError


def glob_escape(path: str) -> str:
    """`path` as a Hadoop glob that matches only itself. Spark and Hadoop read every path as a glob: a root named
    `root[1]` would match nothing and `root*` another root's tables."""
    return "".join("\\" + c if c in "[]{}*?\\" else c for c in path)


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """The Parquet table at exactly `path` (never a glob)."""
    return spark.read.parquet(glob_escape(path))


def _fs_and_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


# The fences of the leases this process holds (root/lease.py): root -> a check that raises unless the run still holds the
# root's lease. Every change under a leased root below calls it first, so a run that lost its lease writes nothing.
_FENCES: dict[str, Callable[[], None]] = {}


def add_fence(root: str, check: Callable[[], None]) -> None:
    _FENCES[root.rstrip("/")] = check


def remove_fence(root: str) -> None:
    _FENCES.pop(root.rstrip("/"), None)


def fence(path: str) -> None:
    """Before changing `path`: prove the lease of the root it lies in (if this process holds one)."""
    for root, check in list(_FENCES.items()):
        if path == root or path.startswith(root + "/"):
            check()


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, p = _fs_and_path(spark, path)
    return bool(fs.exists(p))


def delete_path(spark: SparkSession, path: str) -> None:
    fence(path)
    fs, p = _fs_and_path(spark, path)
    if fs.exists(p):
        fs.delete(p, True)


def delete_empty_directory(spark: SparkSession, path: str) -> None:
    """Delete the directory `path` only if it is empty (a non-recursive delete: never what another run just wrote)."""
    fs, p = _fs_and_path(spark, path)
    try:
        if fs.exists(p) and not fs.listStatus(p):
            fs.delete(p, False)
    except Exception:  # noqa: BLE001 - Py4J wraps Hadoop's "directory is not empty": someone wrote there, keep it
        pass


def rename_path(spark: SparkSession, source: str, target: str) -> None:
    fence(source)
    fence(target)
    fs, src = _fs_and_path(spark, source)
    _, dst = _fs_and_path(spark, target)
    if not fs.rename(src, dst):
        raise OSError(f"could not rename {source} to {target}")


def write_parquet_atomically(df: DataFrame, path: str, before_replacing=None) -> None:
    """Write `df` as Parquet at `path`, replacing what was there, through a hidden temporary sibling.
    `before_replacing()` runs once the new table is written, before the old one is deleted (it may move it away)."""
    spark = df.sparkSession
    fence(path)
    parent, name = path.rstrip("/").rsplit("/", 1) if "/" in path.rstrip("/") else (".", path)
    for leftover in glob_paths(spark, f"{glob_escape(parent)}/.{glob_escape(name)}.tmp-*"):  # a killed run's
        delete_path(spark, leftover)
    temporary = f"{parent}/.{name}.tmp-{uuidlib.uuid4().hex[:12]}"
    try:
        df.write.mode("overwrite").parquet(temporary)
        if before_replacing is not None:
            before_replacing()
        delete_path(spark, path)
        rename_path(spark, temporary, path)
    finally:
        delete_path(spark, temporary)


def _local(path: str) -> str | None:
    """The local file system path of `path`, or None for a path on another file system (hdfs://, s3a://)."""
    if path.startswith("file://"):
        return path.removeprefix("file://")
    if path.startswith("file:"):
        return path.removeprefix("file:")
    return None if "://" in path else path


def join_path(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def write_directory_atomically(spark: SparkSession, path: str, files: dict[str, bytes]) -> None:
    """Write `files` as the directory `path`, replacing the old one whole: built beside it, then renamed."""
    parent, name = path.rstrip("/").rsplit("/", 1)
    temporary = f"{parent}/.{name}.tmp-{uuidlib.uuid4().hex[:12]}"
    local = _local(path)
    if local is not None:
        fence(path)
        local_temporary = _local(temporary)
        os.makedirs(local_temporary)
        try:
            for file_name, data in files.items():
                with open(os.path.join(local_temporary, file_name), "wb") as f:
                    f.write(data)
            fence(path)
            shutil.rmtree(local, ignore_errors=True)
            os.rename(local_temporary, local)
        finally:
            shutil.rmtree(local_temporary, ignore_errors=True)
        return
    write_directory_through_hadoop(spark, path, temporary, files)


def write_directory_through_hadoop(spark: SparkSession, path: str, temporary: str, files: dict[str, bytes]) -> None:
    """Object stores and HDFS: stage the files locally, copy them beside the target, then swap."""
    with tempfile.TemporaryDirectory() as staging:
        for file_name, data in files.items():
            with open(os.path.join(staging, file_name), "wb") as f:
                f.write(data)
        jvm = spark.sparkContext._jvm
        target = jvm.org.apache.hadoop.fs.Path(temporary)
        fs = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        try:
            fs.mkdirs(target)
            for file_name in files:
                fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(f"file://{staging}/{file_name}"),
                                     jvm.org.apache.hadoop.fs.Path(f"{temporary}/{file_name}"))
            delete_path(spark, path)
            rename_path(spark, temporary, path)
        finally:
            delete_path(spark, temporary)


def create_exclusively(spark: SparkSession, path: str, payload: dict) -> bool:
    """Create the JSON file `path` only if it does not exist (atomic on local and HDFS file systems); False if it
    already did."""
    fence(path)
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    local = _local(path)
    if local is not None:
        os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
        try:
            fd = os.open(local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    fs, hadoop_path = _fs_and_path(spark, path)
    try:
        stream = fs.create(hadoop_path, False)
    except Exception as e:  # noqa: BLE001 - Py4J wraps Hadoop's FileAlreadyExistsException
        if "FileAlreadyExists" in str(e) or fs.exists(hadoop_path):
            return False
        raise
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    return True


def write_json_atomically(spark: SparkSession, path: str, payload: dict) -> None:
    """A small JSON document (a summary, a commit marker), written whole or not at all."""
    fence(path)
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    local = _local(path)
    if local is not None:
        os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
        temporary = f"{local}.tmp-{uuidlib.uuid4().hex[:12]}"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, local)
        return
    fs, final = _fs_and_path(spark, path)
    _, temporary = _fs_and_path(spark, f"{path}.tmp-{uuidlib.uuid4().hex[:12]}")
    stream = fs.create(temporary, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    fs.delete(final, False)
    fs.rename(temporary, final)


def read_json(spark: SparkSession, path: str) -> dict | None:
    """A JSON document written by `write_json_atomically`, or None when it does not exist."""
    local = _local(path)
    if local is not None:
        try:
            with open(local, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
    fs, hadoop_path = _fs_and_path(spark, path)
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        data = spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
    finally:
        stream.close()
    return json.loads(bytes(data).decode("utf-8"))


def glob_paths(spark: SparkSession, pattern: str) -> list[str]:
    """Paths matching a Hadoop glob pattern (e.g. root/units/*/*/_COMMITTED.json), sorted. Escape the literal
    parts of the pattern with glob_escape."""
    fs, hadoop_pattern = _fs_and_path(spark, pattern)
    statuses = fs.globStatus(hadoop_pattern) or []
    local = _local(pattern) is not None and not pattern.startswith("file:")
    return sorted(str(s.getPath().toUri().getPath()) if local else str(s.getPath()) for s in statuses)


def data_file_names(spark: SparkSession, path: str, limit: int) -> list[str]:
    """Names of up to `limit` files under `path` that Spark would read (not `_SUCCESS`, `.crc`, other hidden files)."""
    fs, hadoop_path = _fs_and_path(spark, path)
    if fs.getFileStatus(hadoop_path).isFile():
        return [path.rstrip("/").rsplit("/", 1)[-1]]
    names = []
    files = fs.listFiles(hadoop_path, True)
    while files.hasNext() and len(names) < limit:
        status = files.next()
        relative = str(status.getPath().toUri().getPath())[len(str(hadoop_path.toUri().getPath())):]
        if not any(part.startswith(("_", ".")) for part in relative.split("/") if part and "=" not in part):
            names.append(status.getPath().getName())
    return names


def child_names(spark: SparkSession, path: str) -> list[str] | None:
    """Names of the entries directly under the directory `path`, or None when it does not exist."""
    fs, hadoop_path = _fs_and_path(spark, path)
    if not fs.exists(hadoop_path):
        return None
    return sorted(str(s.getPath().getName()) for s in fs.listStatus(hadoop_path))


def check_output_directory(spark: SparkSession, path: str) -> None:
    """Stop (exit 2) before any work when `path` cannot be the directory a run writes: a file is in the way, or (a
    local path) the nearest existing folder cannot be written by this user."""
    fs, hadoop_path = _fs_and_path(spark, path)
    if fs.exists(hadoop_path) and fs.getFileStatus(hadoop_path).isFile():
        raise ConfigError(f"--output {path} is a file, not a directory")
    local = _local(path)
    if local is None:
        return  # an object store or HDFS: its permissions show at the first write
    existing = os.path.abspath(local)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"--output {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {path}: cannot write in {existing} (read-only or permission denied)")


# Directories through fsspec (export/files.py: local paths and object stores without Hadoop connectors) --------------------

def staging_directory(fs, path: str) -> str:
    """A new hidden sibling of the fsspec path `path` to build a directory in; siblings a killed run left are
    deleted first."""
    import glob as globbing

    parent, name = path.rstrip("/").rsplit("/", 1) if "/" in path.rstrip("/") else (".", path.rstrip("/"))
    for leftover in fs.glob(f"{globbing.escape(parent)}/.{globbing.escape(name)}.tmp-*"):
        fs.rm(leftover, recursive=True)
    return f"{parent}/.{name}.tmp-{uuidlib.uuid4().hex[:12]}"


def publish_directory(fs, staging: str, path: str, marker: str, marker_text: str) -> None:
    """Make the directory built at `staging` the directory `path`, `marker` written last.

    On a local file system the marker is written in the staging and the directory renamed into place whole (the old
    one renamed away first, then deleted). An object store has no rename of a directory: the old files are deleted,
    the new ones moved in, and the marker written after them, so a reader that sees the marker sees every file.
    """
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        with open(os.path.join(staging, marker), "w", encoding="utf-8") as f:
            f.write(marker_text)
        old = None
        if os.path.exists(path):
            old = f"{staging}.old"
            os.rename(path, old)
        os.rename(staging, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return
    if fs.exists(path):
        fs.rm(path, recursive=True)
    staging, path = staging.rstrip("/"), path.rstrip("/")
    for source in fs.find(staging):  # file by file: an object store's "directory" is only a prefix
        fs.copy(source, f"{path}/{source[len(staging) + 1:]}")
    fs.rm(staging, recursive=True)
    fs.pipe(f"{path.rstrip('/')}/{marker}", marker_text.encode("utf-8"))
    fs.invalidate_cache()
