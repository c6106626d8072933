"""The two file systems an output root is read through, behind one interface (exists, read_json, glob), for
root/layout.py's RootReader:

- `HadoopFiles`: Spark's Hadoop file systems, what every Spark command writes the root with (root/tables.py);
- `FsspecFiles`: without Spark, local paths directly and any other scheme through fsspec as storage.py opens it
  (s3://, s3a://, gs://, hdfs:// where fsspec has a backend for it). It also reads the root's Parquet files as
  Arrow (`data_files`, `schema`, `read_parquet`, `open`): plan's counts, export's tables, on the driver or in a
  Spark task (an FsspecFiles is made again there from the root and the [remote] settings).
"""

from __future__ import annotations

import glob as globbing
import json


class HadoopFiles:
    """The root's files through Spark's Hadoop file systems."""

    def __init__(self, spark):
        self.spark = spark

    def exists(self, path: str) -> bool:
        from metaclip_spark.root.tables import path_exists

        return path_exists(self.spark, path)

    def read_json(self, path: str) -> dict | None:
        from metaclip_spark.root.tables import read_json

        return read_json(self.spark, path)

    def glob(self, root: str, *parts: str) -> list[str]:
        from metaclip_spark.root.tables import glob_escape, glob_paths

        return glob_paths(self.spark, "/".join([glob_escape(root), *parts]))


class FsspecFiles:
    """The root's files without Spark: a local root directly, another through fsspec (`remote`: the [remote]
    settings, unused for a local root)."""

    def __init__(self, root: str, remote):
        from metaclip_spark.storage import filesystem, is_local

        self.local = is_local(root)
        self.fs, _ = filesystem(root, remote)

    def path(self, path: str) -> str:
        """`path` (a root path, or one this file system gave back: without its scheme) as the file system names it."""
        from metaclip_spark.storage import local_path

        return local_path(path) if self.local else self.fs._strip_protocol(path)

    def exists(self, path: str) -> bool:
        return self.fs.exists(self.path(path))

    def read_json(self, path: str) -> dict | None:
        try:
            with self.fs.open(self.path(path), "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def glob(self, root: str, *parts: str) -> list[str]:
        return sorted(self.fs.glob("/".join([globbing.escape(self.path(root).rstrip("/")), *parts])))

    # Parquet tables ----------------------------------------------------------------------------------------------
    def data_files(self, directory: str) -> list[str]:
        """The Parquet files Spark wrote in the table `directory` (not _SUCCESS, .crc or other hidden files),
        sorted; none when it does not exist."""
        found = self.fs.glob(f"{globbing.escape(self.path(directory).rstrip('/'))}/*.parquet")
        return sorted(p for p in found if not p.rsplit("/", 1)[-1].startswith(("_", ".")))

    def open(self, path: str):
        return self.fs.open(self.path(path), "rb")

    def schema(self, path: str):
        """The Arrow schema of one Parquet file."""
        import pyarrow.parquet as pq

        with self.open(path) as f:
            return pq.ParquetFile(f).schema_arrow

    def read_parquet(self, paths: list[str], columns: list[str] | None = None):
        """The Parquet files `paths` as one Arrow table (of `columns`, else of all the files' columns), or None when
        there are none. For what is bounded by the metadata (counts), never a pool's pairs."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        for path in paths:
            with self.open(path) as f:
                tables.append(pq.read_table(f, columns=columns))
        return pa.concat_tables(tables, promote_options="default") if tables else None
