"""Configuration: profiles laid over base.toml, user files and options laid over them, bad values rejected."""

import pytest

from metaclip_spark.config import load_config
from metaclip_spark.errors import ConfigError


def test_local_profile_defaults():
    config = load_config("local")
    assert config["curation"] == {"t": "auto", "tail_share": 0.06, "seed": 0}
    assert config["extract"]["languages"] == ["en"]
    assert config["spark"]["conf"]["spark.driver.bindAddress"] == "127.0.0.1"


def test_cluster_profile_does_not_inherit_local_spark_settings():
    config = load_config("cluster")
    assert "spark.driver.bindAddress" not in config["spark"]["conf"]
    assert config["curation"]["seed"] == 0


def test_user_file_and_overrides_are_laid_over(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[curation]\nt = 20000\nseed = 5\n[extract]\nlanguages = []\n')
    config = load_config("local", str(user), {"curation": {"seed": 9}})
    assert config["curation"]["t"] == 20000 and config["curation"]["seed"] == 9
    assert config["extract"]["languages"] == []


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
