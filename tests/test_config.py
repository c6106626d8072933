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
