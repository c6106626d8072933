"""What a run records of its settings (summary.json, the report), and the per-language wordfreq floor."""

from __future__ import annotations

import json

from metaclip_spark.config import load_config


def test_the_record_keeps_every_section_but_only_the_names_of_spark_s_settings():
    secret = "s3cr3t-value"
    settings = load_config("local", overrides={"spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": secret}},
                                               "curation": {"t": 7}})
    record = settings.record()
    assert secret not in json.dumps(record)
    assert "spark.hadoop.fs.s3a.secret.key" in record["spark"]["conf"]
    assert record["spark"]["conf"] == sorted(record["spark"]["conf"])
    assert record["profile"] == "local" and record["curation"]["t"] == 7
    assert "tables" not in record and set(record) >= {"spark", "input", "curation", "extract", "export", "root"}


def test_the_wordfreq_floor_of_a_language_is_its_own_else_the_common_one():
    build = load_config("local", overrides={"metadata_build": {"wordfreq_min_frequency": 1e-8,
                                                                "wordfreq_min_frequency_by_lang": {"ja": 1e-7}}})
    assert build.metadata_build.wordfreq_floor("ja") == 1e-7
    assert build.metadata_build.wordfreq_floor("de") == 1e-8
    assert isinstance(build.metadata_build.wordfreq_floor("ja"), float)
