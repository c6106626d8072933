"""owned_session: a command stops the session it started, never one that was already running."""

import pytest
from pyspark.sql import SparkSession

from metaclip_spark import session


class _FakeContext:
    uiWebUrl = "http://127.0.0.1:4040"
    master = "local[2]"


class _FakeSession:
    stopped = False
    sparkContext = _FakeContext()

    def stop(self):
        self.stopped = True


def _fake_start(monkeypatch) -> _FakeSession:
    """No session running; starting one gives a fake, so the test needs no Spark of its own."""
    fake = _FakeSession()
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(session, "spark_session", lambda config, app_name=None, master=None: fake)
    return fake


def test_a_session_it_started_is_stopped_on_exit_and_on_error(monkeypatch, caplog):
    caplog.set_level("INFO", logger="metaclip_spark")
    fake = _fake_start(monkeypatch)
    with session.owned_session(None, "started here") as spark:
        assert spark is fake and not fake.stopped
    assert fake.stopped
    assert "Spark UI: http://127.0.0.1:4040 (local[2])" in caplog.messages  # where to watch the run
    fake = _fake_start(monkeypatch)
    with pytest.raises(RuntimeError), session.owned_session(None, "started here"):
        raise RuntimeError("the command failed")
    assert fake.stopped


def test_a_running_session_is_used_and_left_running(spark, config):
    # The suite's own shuffle partitions, so this test leaves the shared session's settings as they were.
    same = config.updated({"spark": {"conf": {
        "spark.sql.shuffle.partitions": spark.conf.get("spark.sql.shuffle.partitions")}}})
    with session.owned_session(same, "metaclip-spark test") as inner:
        assert inner.sparkContext is spark.sparkContext
    assert SparkSession.getActiveSession() is not None
    assert spark.range(3).count() == 3


def test_version(capsys):
    from metaclip_spark import __version__, cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"metaclip-spark {__version__}"


def test_columns_of_distinct_values_are_written_without_a_parquet_dictionary(spark, tmp_path):
    """Parquet's dictionaries of a pair's url, uuid, text and entry ids overflow and are dropped after hashing every
    value, half the match stage's JVM time (docs/scaling.md): conf/base.toml turns them off for those columns only."""
    import glob

    import pyarrow.parquet as pq

    rows = [(f"https://x.org/{i}.jpg", f"{i:024x}", f"a text {i}", "en", [i % 7, 100 + i]) for i in range(3000)]
    pairs = spark.createDataFrame(rows, "url string, uuid string, text string, lang string, entry_ids array<int>")
    pairs.coalesce(1).write.parquet(str(tmp_path / "matched"))
    group = pq.ParquetFile(glob.glob(str(tmp_path / "matched" / "*.parquet"))[0]).metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: set(group.column(i).encodings) for i in range(group.num_columns)}
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    for column in ("url", "uuid", "text", "entry_ids.list.element"):
        assert not encodings[column] & dictionary, (column, encodings[column])
    assert encodings["lang"] & dictionary  # a column of few values keeps its dictionary


def test_the_local_profile_starts_its_jvm_with_the_throughput_collector(spark):
    """conf/local.toml: the JVM a local run starts collects garbage with the parallel (throughput) collector, whose
    CPU per run is lower than G1's (docs/scaling.md); the option reaches the JVM, not only Spark's conf."""
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    names = {bean.getName() for bean in beans}
    assert names == {"PS Scavenge", "PS MarkSweep"}, names
