"""The one place configuration is read: conf/base.toml, then a profile, then a user file, then CLI options."""

from __future__ import annotations

import copy
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

PROFILES = ("local", "cluster")


def conf_dir() -> Path:
    """Where the shipped TOML files are: $METACLIP_SPARK_CONF_DIR, the source checkout, or the installed copy."""
    candidates = []
    if os.environ.get("METACLIP_SPARK_CONF_DIR"):
        candidates.append(Path(os.environ["METACLIP_SPARK_CONF_DIR"]))
    candidates.append(Path(__file__).resolve().parent.parent / "conf")
    candidates.append(Path(sys.prefix) / "share" / "metaclip-spark" / "conf")
    for candidate in candidates:
        if (candidate / "base.toml").is_file():
            return candidate
    raise ConfigError(f"configuration directory not found (looked in {', '.join(map(str, candidates))})")


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def _merge(base: dict, top: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_threshold(value: Any) -> int | str:
    """t is a positive integer or the word "auto"."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        t = int(value)
        if t != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"curation.t must be a positive integer or 'auto', got {value!r}") from None
    if t <= 0:
        raise ConfigError(f"curation.t must be a positive integer or 'auto', got {value!r}")
    return t


def _validate(config: dict) -> dict:
    cur = config.setdefault("curation", {})
    cur["t"] = parse_threshold(cur.get("t", "auto"))
    try:
        cur["seed"] = int(cur.get("seed", 0))
    except (TypeError, ValueError):
        raise ConfigError(f"curation.seed must be an integer, got {cur.get('seed')!r}") from None
    share = cur.get("tail_share", 0.06)
    if not isinstance(share, (int, float)) or not 0 < share < 1:
        raise ConfigError(f"curation.tail_share must be a number between 0 and 1, got {share!r}")
    ext = config.setdefault("extract", {})
    langs = ext.get("languages", [])
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        raise ConfigError(f"extract.languages must be a list of language codes, got {langs!r}")
    if not isinstance(ext.get("max_page_bytes", 1), int) or ext.get("max_page_bytes", 1) <= 0:
        raise ConfigError(f"extract.max_page_bytes must be a positive integer, got {ext.get('max_page_bytes')!r}")
    inp = config.setdefault("input", {})
    for key in ("url_column", "text_column"):
        if not isinstance(inp.get(key), str) or not inp.get(key):
            raise ConfigError(f"input.{key} must be a non-empty column name, got {inp.get(key)!r}")
    return config


def load_config(profile: str = "local", conf_file: str | None = None, overrides: dict | None = None) -> dict:
    """Merge base.toml, the profile, an optional user TOML file and overrides (nested dict); validate."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    directory = conf_dir()
    config = _read_toml(directory / "base.toml")
    config = _merge(config, _read_toml(directory / f"{profile}.toml"))
    if conf_file:
        config = _merge(config, _read_toml(Path(conf_file)))
    if overrides:
        config = _merge(config, overrides)
    config["profile"] = profile
    return _validate(config)
