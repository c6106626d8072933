"""Stage progress: each Spark job carries its stage's name (Spark UI), the console gets one line per stage."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

log = logging.getLogger("metaclip_spark")


class StageRun:
    def __init__(self, name: str):
        self.name = name
        self.rows: int | None = None
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@contextmanager
def stage(spark, name: str, description: str = ""):
    """Name every Spark job started inside as `metaclip-spark <name>` and log `stage <name>: <s>, <rows>` after."""
    context = spark.sparkContext
    context.setJobDescription(f"metaclip-spark {name}" + (f": {description}" if description else ""))
    run = StageRun(name)
    try:
        yield run
    finally:
        context.setLocalProperty("spark.job.description", None)
    rows = f", {run.rows:,} rows" if run.rows is not None else ""
    log.info("stage %-8s done in %6.1f s%s", name, run.elapsed, rows)
