"""Shared fixtures: one local SparkSession (local[2], bound to 127.0.0.1) for the whole suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# Every driver JVM the tests start (the session below, each CLI run in a subprocess, spark-submit to the test cluster)
# compiles with the JIT's first tier only (the launcher adds SPARK_SUBMIT_OPTS to the JVM's command line, after the
# profile's options). The tests' jobs are many and tiny: the optimizing tier's compiling costs more CPU than it ever
# saves. The same code runs; only how the JVM compiles it changes. Measured: a `curate` of the 126-pair sample pool
# in one session, ten in a row, 62 -> 38 CPU-seconds for the JVM and its Python workers together.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
# No cloud credentials or metadata endpoints: S3 and GCS are real servers on 127.0.0.1 (tests/servers.py), and
# botocore must never look for an instance profile off this machine. Set before Spark starts, so its Python
# workers inherit it.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["NO_GCE_CHECK"] = "true"
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "GOOGLE_APPLICATION_CREDENTIALS"):
    os.environ.pop(_name, None)

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent


@pytest.fixture(scope="session")
def config():
    """The local profile as the CLI loads it."""
    from metaclip_spark.config import load_config

    return load_config("local")


@pytest.fixture(scope="session")
def spark(config):
    from metaclip_spark.session import spark_session

    tests = config.updated({"spark": {"master": "local[2]", "conf": {
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "4",
        "spark.ui.enabled": "false",
    }}})
    session = spark_session(tests, "metaclip-spark-tests")
    yield session
    session.stop()
