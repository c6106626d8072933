"""Building the SparkSession from the configuration profile, and owning it for the length of one command.

The JVM a session starts writes its own lines to stderr (its start-up notes, Spark's log4j lines, Java stack
traces of a cancelled job): when this process starts that JVM, its stderr is a pipe read by a thread that passes
each line to the `metaclip_spark.spark` logger, so the console shows them as it shows any message (clearing the
progress bar first, hidden by --quiet): a Spark log line (WARN, ERROR) at INFO, everything else (start-up notes,
stack trace lines) at DEBUG. Under spark-submit the JVM is spark-submit's and writes where it always did.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from metaclip_spark.config import Settings

log = logging.getLogger("metaclip_spark")
spark_log = logging.getLogger("metaclip_spark.spark")

# Spark's log4j2 console pattern: `26/12/05 17:52:03 WARN NativeCodeLoader: Unable to load native-hadoop ...`
_SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|ERROR|FATAL) (.*)$")
_interrupted = threading.Event()
# Warnings every local start gives, about nothing the user can change or needs to know.
_START_UP_NOTES = ("NativeCodeLoader:", "Utils: Service 'SparkUI' could not bind")


def jvm_line_level(line: str) -> int:
    """The level a line of the JVM's stderr is logged at: Spark's own warnings and errors at INFO (one line each,
    shown unless --quiet), anything else (start-up notes, stack trace lines, INFO lines) at DEBUG."""
    found = _SPARK_LOG_LINE.match(line)
    if not found or interrupted() or found.group(2).startswith(_START_UP_NOTES):
        return logging.DEBUG  # after Ctrl-C: the cancelled jobs' and the stopping session's complaints
    return logging.INFO


def _relay(stream) -> None:
    """Pass the JVM's stderr to the logger, line by line, until the JVM closes it (never stop reading: a full pipe
    would block the JVM)."""
    for raw in iter(stream.readline, b""):
        try:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                spark_log.log(jvm_line_level(line), "spark: %s", line)
        except Exception:  # noqa: BLE001 - a message that cannot be shown must not stop the reading
            pass


def _start_jvm(options: dict) -> None:
    """Start the session's JVM with its stderr piped to the logger (see the module's doc), unless a JVM is already
    there (spark-submit's, or an earlier session's in this process)."""
    from pyspark import SparkConf
    from pyspark.core.context import SparkContext
    from pyspark.java_gateway import launch_gateway

    with SparkContext._lock:
        if under_spark_submit() or SparkContext._gateway is not None:
            return
        conf = SparkConf()
        for key, value in options.items():
            conf.set(key, value)
        gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
        SparkContext._gateway, SparkContext._jvm = gateway, gateway.jvm
    threading.Thread(target=_relay, args=(gateway.proc.stderr,), name="metaclip-spark-jvm-stderr", daemon=True).start()


def interrupted() -> bool:
    """Whether Ctrl-C (SIGINT) stopped this command's session."""
    return _interrupted.is_set()


def _note_interrupts(spark: SparkSession) -> None:
    """Ctrl-C (SIGINT) during the session: remember it (the CLI then says so in one line, whatever exception the
    cancelled job raises), silence the gateway's complaints about the call it cuts, cancel the running jobs from a
    thread of their own (PySpark's own handler cancels them from the interrupted thread, a reentrant call on its
    gateway connection that fails with a traceback) and raise KeyboardInterrupt in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return

    def cancel() -> None:
        try:
            spark.sparkContext.cancelAllJobs()
        except Exception:  # noqa: BLE001 - the session may be stopping already
            pass

    def handler(signum, frame):
        if not _interrupted.is_set():
            _interrupted.set()
            for name in ("", "py4j"):  # py4j logs a cut call through the root logger too
                logging.getLogger(name).setLevel(logging.CRITICAL)
            threading.Thread(target=cancel, name="metaclip-spark-cancel", daemon=True).start()
        raise KeyboardInterrupt()

    signal.signal(signal.SIGINT, handler)


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
    _start_jvm(builder._options)
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
    if owned:
        _note_interrupts(spark)
    if owned and spark.sparkContext.uiWebUrl:
        log.info("Spark UI: %s (%s)", spark.sparkContext.uiWebUrl, spark.sparkContext.master)
    try:
        yield spark
    finally:
        if owned:
            try:
                spark.stop()
            except Exception:  # noqa: BLE001 - after Ctrl-C the gateway may be gone: the error is the interrupt
                if not interrupted():
                    raise
