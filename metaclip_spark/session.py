"""Building the SparkSession from the configuration profile, and owning it for the length of one command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from .config import Settings

log = logging.getLogger("metaclip_spark")


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already running and the master already chosen."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(config: Settings, app_name: str | None = None, master: str | None = None) -> SparkSession:
    """The session for a run: the profile's Spark settings; the master from spark-submit, --master or the profile."""
    spark_conf = config.spark
    if config.profile == "local":
        # Spark otherwise binds to the external interface; Python workers must be this interpreter (the venv's).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or spark_conf.app_name)
    chosen_master = master or (None if under_spark_submit() else spark_conf.master) or None
    if chosen_master:
        builder = builder.master(chosen_master)
    # Partition values are crawl names: never let Spark read "2023" as a number.
    builder = builder.config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    for key, value in spark_conf.conf.items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(spark_conf.log_level)
    return spark


@contextmanager
def owned_session(config: Settings, app_name: str | None = None, master: str | None = None) -> Iterator[SparkSession]:
    """The session of one command, stopped on exit only if this call started it.

    A session already running (a notebook's, a test's) is reused and left running:
    stopping it would pull it out from under its owner.
    """
    owned = SparkSession.getActiveSession() is None
    spark = spark_session(config, app_name, master)
    if owned and spark.sparkContext.uiWebUrl:
        log.info("Spark UI: %s (%s)", spark.sparkContext.uiWebUrl, spark.sparkContext.master)
    try:
        yield spark
    finally:
        if owned:
            spark.stop()
