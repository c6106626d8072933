"""Building the SparkSession from the configuration profile."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession


def under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already running and the master already chosen."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(config: dict, app_name: str | None = None, master: str | None = None) -> SparkSession:
    """The session for a run: the profile's Spark settings; the master from spark-submit, --master or the profile."""
    spark_conf = config.get("spark", {})
    if config.get("profile") == "local":
        # Spark otherwise binds to the external interface; Python workers must be this interpreter (the venv's).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or spark_conf.get("app_name", "metaclip-spark"))
    chosen_master = master or (None if under_spark_submit() else spark_conf.get("master")) or None
    if chosen_master:
        builder = builder.master(chosen_master)
    # Partition values are crawl names: never let Spark read "2023" as a number.
    builder = builder.config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    for key, value in spark_conf.get("conf", {}).items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(spark_conf.get("log_level", "WARN"))
    return spark
