"""Configuration: profiles laid over base.toml, user files and options laid over them, bad values rejected."""

import pytest

from metaclip_spark.config import load_config
from metaclip_spark.errors import ConfigError


def test_local_profile_defaults():
    config = load_config("local")
    assert (config.curation.t, config.curation.tail_share, config.curation.seed) == ("auto", 0.06, 0)
    assert config.extract.languages == ("en",)
    assert config.spark.conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert config.spark.master == "local[*]" and config.profile == "local"


def test_cluster_profile_does_not_inherit_local_spark_settings():
    config = load_config("cluster")
    assert "spark.driver.bindAddress" not in config.spark.conf
    assert config.curation.seed == 0 and config.extract.files_per_unit == 2000


def test_user_file_and_overrides_are_laid_over(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[curation]\nt = 20000\nseed = 5\n[extract]\nlanguages = []\n')
    config = load_config("local", str(user), {"curation": {"seed": 9}})
    assert config.curation.t == 20000 and config.curation.seed == 9
    assert config.extract.languages == ()
    assert config.updated({"curation": {"t": "auto"}}).curation.t == "auto"
    assert config.curation.t == 20000  # settings are values: updated() leaves the original as it was


@pytest.mark.parametrize("text, message", [
    ("[curation]\nthreshold = 20000\n", "unknown key curation.threshold .*curation. has: t, tail_share, seed"),
    ("[extract]\nlanguage = ['de']\n", "unknown key extract.language"),
    ("[curaton]\nt = 5\n", r"unknown section \[curaton\]"),
    ("[remote]\nretries = 'many'\n", "remote.retries must be an integer"),
    ("[input]\npartitions = -1\n", "input.partitions"),
    ("[extract]\nfiles_per_unit = 0\n", "extract.files_per_unit"),
    ("[extract]\nmax_failed_share = 2\n", "extract.max_failed_share"),
    ("curation = 5\n", r"\[curation\] must be a table"),
])
def test_misspelled_or_mistyped_keys_stop_with_exit_2_naming_them(tmp_path, text, message):
    user = tmp_path / "mine.toml"
    user.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config("local", str(user))
    assert raised.value.exit_code == 2


def test_a_directory_or_binary_conf_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config("local", str(tmp_path))
    binary = tmp_path / "conf.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config("local", str(binary))


def test_every_default_lives_in_base_toml():
    """Every key of every section comes from the shipped files: no section class holds a default of its own."""
    import dataclasses

    from metaclip_spark.config import Settings

    config = load_config("local")
    for section in dataclasses.fields(Settings):
        if section.name in ("profile", "tables"):
            continue
        for key in dataclasses.fields(getattr(config, section.name)):
            assert key.default is dataclasses.MISSING and key.default_factory is dataclasses.MISSING, key.name
            assert key.name in config.tables[section.name], f"{section.name}.{key.name}"


@pytest.mark.parametrize("overrides, message", [
    ({"curation": {"t": "lots"}}, "curation.t"),
    ({"curation": {"t": 0}}, "curation.t"),
    ({"curation": {"t": "2.5"}}, "curation.t"),
    ({"curation": {"seed": "x"}}, "curation.seed"),
    ({"curation": {"tail_share": 1.5}}, "tail_share"),
    ({"extract": {"languages": "en"}}, "extract.languages"),
    ({"input": {"text_column": ""}}, "input.text_column"),
])
def test_bad_values_are_rejected_with_their_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("local", None, overrides)


def test_bad_toml_and_unknown_profile(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[curation\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config("local", str(bad))
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config("yarn")


# Each refusal's whole one-line message: the key a user must fix, what it takes, and the value read.
REFUSALS = [
    ({"input": {"text_column": ""}}, "input.text_column must be a non-empty column name, got ''"),
    ({"input": {"partitions": -1}}, "input.partitions must be 0 or more, got -1"),
    ({"worldwide": {"automata_max_mb": 0}}, "worldwide.automata_max_mb must be a positive integer, got 0"),
    ({"worldwide": {"t_by_lang": {"en": 5}}}, "worldwide.t_by_lang cannot set English's t: that is curation.t (--t)"),
    ({"worldwide": {"t_by_lang": {"zh": 0}}}, "worldwide.t_by_lang.zh must be a positive integer, got 0"),
    ({"worldwide": {"t_by_lang": ["zh"]}}, "worldwide.t_by_lang must be a table, got ['zh']"),
    ({"metadata_build": {"wordfreq_min_frequency_by_lang": {"de": -1e-9}}},
     "metadata_build.wordfreq_min_frequency_by_lang.de must be a non-negative number, got -1e-09"),
    ({"metadata_build": {"wordfreq_min_frequency_by_lang": {"de": "1e-6"}}},
     "metadata_build.wordfreq_min_frequency_by_lang.de must be a non-negative number, got '1e-6'"),
    ({"curation": {"tail_share": 1.0}}, "curation.tail_share must be a number between 0 and 1, got 1.0"),
    ({"curation": {"tail_share": "0.1"}}, "curation.tail_share must be a number, got '0.1'"),
    ({"curation": {"tail_share": True}}, "curation.tail_share must be a number, got True"),
    ({"extract": {"text_attributes": []}},
     "extract.text_attributes must be a non-empty list of attribute names, got ()"),
    ({"extract": {"text_attributes": ["alt", ""]}},
     "extract.text_attributes must be a non-empty list of attribute names, got ('alt', '')"),
    ({"extract": {"max_page_bytes": 0}}, "extract.max_page_bytes must be a positive integer, got 0"),
    ({"extract": {"max_failed_share": 1.5}}, "extract.max_failed_share must be a share between 0 and 1, got 1.5"),
    ({"extract": {"languages": ["en", 5]}}, "extract.languages must be a list of strings, got ['en', 5]"),
    ({"remote": {"retries": 1.5}}, "remote.retries must be an integer, got 1.5"),
    ({"remote": {"retries": True}}, "remote.retries must be an integer, got True"),
    ({"remote": {"s3_anonymous": "TRUE"}}, """remote.s3_anonymous must be "auto", true or false, got 'TRUE'"""),
    ({"commoncrawl": {"data_url": " "}}, "commoncrawl.data_url must be a non-empty location, got ' '"),
    ({"root": {"pair_key_buckets": 0}}, "root.pair_key_buckets must be a positive integer, got 0"),
    ({"root": {"pair_key_bucket_min_pairs": -1}}, "root.pair_key_bucket_min_pairs must be 0 or more, got -1"),
    ({"export": {"format": "csv"}}, "export.format must be 'parquet' or 'jsonl', got 'csv'"),
    ({"export": {"rows_per_file": 0}}, "export.rows_per_file must be a positive integer, got 0"),
    ({"optout": {"honour_page_signals": "yes"}}, "optout.honour_page_signals must be true or false, got 'yes'"),
    ({"optout": {"directives": ["noai", "nocache"]}},
     "optout.directives must be a list of robots directives among noai, noimageai, noindex, noimageindex, nofollow, "
     "none, noarchive, nosnippet, notranslate (the ones extraction records), got 'nocache'"),
    ({"optout": {"agents": ["GPTBot", " "]}}, "optout.agents must be a list of non-empty names, got ('GPTBot', ' ')"),
    ({"spark": {"master": 5}}, "spark.master must be a string, got 5"),
    ({"spark": {"conf": "spark.x=1"}}, "spark.conf must be a table, got 'spark.x=1'"),
    ({"curaton": {"t": 5}}, "unknown section [curaton] (misspelled?); sections: input, metadata, worldwide, "
     "metadata_build, curation, extract, remote, commoncrawl, root, export, optout, spark"),
]


@pytest.mark.parametrize("overrides, message", REFUSALS)
def test_each_refusal_names_the_key_what_it_takes_and_the_value_read(overrides, message):
    with pytest.raises(ConfigError) as refused:
        load_config("local", None, overrides)
    assert str(refused.value) == message and refused.value.exit_code == 2


def test_the_values_each_check_lets_through_are_read_as_given():
    config = load_config("local", None, {
        "remote": {"s3_anonymous": "false", "retries": 0}, "export": {"format": "jsonl"},
        "metadata_build": {"wordfreq_min_frequency_by_lang": {"de": 0}}, "extract": {"text_attributes": ["title"]}})
    assert config.remote.s3_anonymous == "false" and config.export.format == "jsonl"
    assert config.metadata_build.wordfreq_floor("de") == 0.0 and config.extract.text_attributes == ("title",)
    assert load_config("local", None, {"remote": {"s3_anonymous": "true"}}).remote.s3_anonymous == "true"
    updated = config.updated({"curation": {"seed": 3}})
    assert updated.profile == "local" and updated.curation.seed == 3 and updated.export.format == "jsonl"
    assert load_config("cluster").updated({}).profile == "cluster"


def _conf_copy(tmp_path, drop: str = ""):
    """A copy of the shipped conf/ with the lines starting with `drop` left out of base.toml."""
    import shutil

    from metaclip_spark.config import conf_dir

    conf = tmp_path / "conf"
    shutil.copytree(conf_dir(), conf)
    base = conf / "base.toml"
    lines = base.read_text().splitlines(keepends=True)
    base.write_text("".join(line for line in lines if not (drop and line.startswith(drop))))
    return conf


def test_metaclip_spark_conf_dir_points_at_other_shipped_files(tmp_path, monkeypatch):
    conf = _conf_copy(tmp_path)
    (conf / "base.toml").write_text((conf / "base.toml").read_text().replace("seed = 0", "seed = 41"))
    monkeypatch.setenv("METACLIP_SPARK_CONF_DIR", str(conf))
    assert load_config("local").curation.seed == 41


@pytest.mark.parametrize("drop, message", [
    ("seed =", "curation.seed is not set: conf/base.toml must define every key"),
    ("rows_per_file =", "export.rows_per_file is not set: conf/base.toml must define every key"),
])
def test_a_key_missing_from_base_toml_is_named(tmp_path, monkeypatch, drop, message):
    monkeypatch.setenv("METACLIP_SPARK_CONF_DIR", str(_conf_copy(tmp_path, drop)))
    with pytest.raises(ConfigError) as refused:
        load_config("local")
    assert str(refused.value) == message


def test_a_section_missing_from_every_file_names_its_first_key(tmp_path, monkeypatch):
    conf = _conf_copy(tmp_path)
    text = (conf / "base.toml").read_text()
    start = text.index("[export]")
    (conf / "base.toml").write_text(text[:start] + text[text.index("\n[", start) + 1:])
    monkeypatch.setenv("METACLIP_SPARK_CONF_DIR", str(conf))
    with pytest.raises(ConfigError) as refused:
        load_config("local")
    assert str(refused.value) == "export.format is not set: conf/base.toml must define every key"


def test_an_installed_copy_reads_its_conf_under_the_prefix_else_names_where_it_looked(tmp_path, monkeypatch):
    """Installed from a wheel, the TOML files are in <prefix>/share/metaclip-spark/conf (setup.cfg's data_files)."""
    import sys

    from metaclip_spark import config

    installed = tmp_path / "prefix" / "share" / "metaclip-spark" / "conf"
    installed.parent.mkdir(parents=True)
    conf = _conf_copy(tmp_path)
    (conf / "base.toml").write_text((conf / "base.toml").read_text().replace("seed = 0", "seed = 42"))
    conf.rename(installed)
    monkeypatch.delenv("METACLIP_SPARK_CONF_DIR", raising=False)
    monkeypatch.setattr(config, "__file__", str(tmp_path / "site-packages" / "metaclip_spark" / "config.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert config.conf_dir() == installed and load_config("local").curation.seed == 42
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("METACLIP_SPARK_CONF_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError) as refused:
        config.conf_dir()
    assert str(refused.value) == ("configuration directory not found (looked in "
                                  f"{tmp_path / 'nothing-here'}, {tmp_path / 'site-packages' / 'conf'}, "
                                  f"{tmp_path / 'elsewhere' / 'share' / 'metaclip-spark' / 'conf'})")


def test_the_keys_taking_0_or_more_take_0():
    config = load_config("local", None, {"input": {"partitions": 0}, "root": {"pair_key_bucket_min_pairs": 0}})
    assert config.input.partitions == 0  # 0 keeps the reader's split
    assert config.root.pair_key_bucket_min_pairs == 0  # 0 always goes through the key buckets


def test_the_profile_is_local_unless_named_and_an_unknown_one_lists_the_choices():
    assert load_config().profile == "local" and load_config().spark.master == "local[*]"
    with pytest.raises(ConfigError) as refused:
        load_config("yarn")
    assert str(refused.value) == "unknown profile 'yarn': choose one of local, cluster"


def test_a_config_file_that_cannot_be_read_is_named_with_the_reason(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_config("local", str(tmp_path / "mine.toml"))
    assert str(refused.value) == f"config file not found: {tmp_path / 'mine.toml'}"
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError) as refused:
        load_config("local", str(tmp_path / "a-file" / "mine.toml"))  # a path through a file: not a directory
    assert str(refused.value) == f"cannot read config file {tmp_path / 'a-file' / 'mine.toml'}: Not a directory"
