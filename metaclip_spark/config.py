"""The one place configuration is read: conf/base.toml, then a profile, then a user file, then CLI options.

Every section is a frozen dataclass whose fields are exactly the keys of conf/base.toml, the only home of the
defaults: a key missing there, a key no section knows (`[curation] threshold = 20000`) or a value of the wrong
type stops the run with exit 2, naming the key.
"""

from __future__ import annotations

import copy
import os
import sys
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from metaclip_spark.errors import ConfigError

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


def parse_threshold(value: Any) -> int | str:
    """t is a positive integer or the word "auto"."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        if isinstance(value, bool):
            raise ValueError
        t = int(value)
        if t != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"curation.t must be a positive integer or 'auto', got {value!r}") from None
    if t <= 0:
        raise ConfigError(f"curation.t must be a positive integer or 'auto', got {value!r}")
    return t


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{key} must be {expected}, got {value!r}")


def _check(key: str, value: Any, hint: Any) -> Any:
    """`value` as the field's type (ints accepted for floats, lists for tuples), or exit 2 naming the key."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(key, "true or false", value)
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, "an integer", value)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, "a number", value)
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise _fail(key, "a string", value)
    elif origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise _fail(key, "a list of strings", value)
        value = tuple(value)
    elif origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _fail(key, "a table", value)
    return value


class Section:
    """A configuration section: built from its TOML table, every key known, present and of its type."""

    name: typing.ClassVar[str]

    @classmethod
    def from_table(cls, table: Any):
        if not isinstance(table, dict):
            raise ConfigError(f"[{cls.name}] must be a table of keys, got {table!r}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(f"unknown key {cls.name}.{unknown[0]} (misspelled?); [{cls.name}] has: "
                              f"{', '.join(known)}")
        missing = [k for k in known if k not in table]
        if missing:
            raise ConfigError(f"{cls.name}.{missing[0]} is not set: conf/base.toml must define every key")
        return cls(**{k: _check(f"{cls.name}.{k}", table[k], hints[k]) for k in known})


@dataclass(frozen=True)
class InputSettings(Section):
    name: typing.ClassVar[str] = "input"
    url_column: str
    text_column: str
    lang_column: str
    partitions: int

    def __post_init__(self):
        for key in ("url_column", "text_column", "lang_column"):
            if not getattr(self, key):
                raise _fail(f"input.{key}", "a non-empty column name", getattr(self, key))
        if self.partitions < 0:
            raise _fail("input.partitions", "0 or more", self.partitions)


@dataclass(frozen=True)
class MetadataSettings(Section):
    name: typing.ClassVar[str] = "metadata"
    path: str


@dataclass(frozen=True)
class WorldwideSettings(Section):
    """[worldwide]: MetaCLIP 2 curation, per-language lists (--metadata DIR)."""

    name: typing.ClassVar[str] = "worldwide"
    kana_no_space: bool
    automata_max_mb: int
    t_by_lang: dict

    def __post_init__(self):
        if self.automata_max_mb <= 0:
            raise _fail("worldwide.automata_max_mb", "a positive integer", self.automata_max_mb)
        for lang, t in self.t_by_lang.items():
            if lang == "en":
                raise ConfigError("worldwide.t_by_lang cannot set English's t: that is curation.t (--t)")
            if isinstance(t, bool) or not isinstance(t, int) or t <= 0:
                raise _fail(f"worldwide.t_by_lang.{lang}", "a positive integer", t)


@dataclass(frozen=True)
class MetadataBuildSettings(Section):
    name: typing.ClassVar[str] = "metadata_build"
    unigram_min_count: int
    bigram_min_pmi: float
    title_min_views: int
    pageview_min_hourly_views: int
    wordfreq_min_frequency: float
    wordfreq_min_frequency_by_lang: dict
    nltk_data: str

    def __post_init__(self):
        for lang, floor in self.wordfreq_min_frequency_by_lang.items():
            if isinstance(floor, bool) or not isinstance(floor, (int, float)) or floor < 0:
                raise _fail(f"metadata_build.wordfreq_min_frequency_by_lang.{lang}", "a non-negative number", floor)

    def wordfreq_floor(self, lang: str) -> float:
        """The wordfreq frequency floor of one language (a Wikipedia code): its own, else the common one."""
        return float(self.wordfreq_min_frequency_by_lang.get(lang, self.wordfreq_min_frequency))


@dataclass(frozen=True)
class CurationSettings(Section):
    name: typing.ClassVar[str] = "curation"
    t: int | str
    tail_share: float
    seed: int

    @classmethod
    def from_table(cls, table: Any):
        if isinstance(table, dict) and "t" in table:
            table = dict(table, t=parse_threshold(table["t"]))
        return super().from_table(table)

    def __post_init__(self):
        if not 0 < self.tail_share < 1:
            raise _fail("curation.tail_share", "a number between 0 and 1", self.tail_share)


@dataclass(frozen=True)
class ExtractSettings(Section):
    """[extract]: what a WARC/WAT file yields (checked on the driver, shipped to the tasks)."""

    name: typing.ClassVar[str] = "extract"
    languages: tuple[str, ...]
    min_lang_score: float
    max_page_bytes: int
    text_attributes: tuple[str, ...]
    files_per_task: int
    files_per_unit: int
    max_failed_share: float

    def __post_init__(self):
        if not self.text_attributes or not all(self.text_attributes):
            raise _fail("extract.text_attributes", "a non-empty list of attribute names", self.text_attributes)
        for key in ("max_page_bytes", "files_per_task", "files_per_unit"):
            if getattr(self, key) <= 0:
                raise _fail(f"extract.{key}", "a positive integer", getattr(self, key))
        if not 0 <= self.max_failed_share <= 1:
            raise _fail("extract.max_failed_share", "a share between 0 and 1", self.max_failed_share)


@dataclass(frozen=True)
class RemoteSettings(Section):
    """[remote]: reading listings and archives outside the local file system (storage.py)."""

    name: typing.ClassVar[str] = "remote"
    retries: int
    backoff_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float
    block_bytes: int
    max_concurrent_downloads: int
    s3_endpoint_url: str
    s3_anonymous: str
    gcs_endpoint_url: str
    gcs_anonymous: bool

    @classmethod
    def from_table(cls, table: Any):
        if isinstance(table, dict) and isinstance(table.get("s3_anonymous"), bool):
            table = dict(table, s3_anonymous=str(table["s3_anonymous"]).lower())  # true/false as TOML booleans
        return super().from_table(table)

    def __post_init__(self):
        for key, minimum in (("retries", 0), ("backoff_seconds", 0), ("backoff_max_seconds", 0),
                             ("timeout_seconds", 1), ("block_bytes", 64 * 1024), ("max_concurrent_downloads", 1)):
            if getattr(self, key) < minimum:
                raise _fail(f"remote.{key}", f"a number >= {minimum}", getattr(self, key))
        if self.s3_anonymous not in ("auto", "true", "false"):
            raise _fail("remote.s3_anonymous", '"auto", true or false', self.s3_anonymous)


@dataclass(frozen=True)
class CommonCrawlSettings(Section):
    """[commoncrawl]: where Common Crawl's index of dumps and its data are (ingestion/crawl_index.py)."""

    name: typing.ClassVar[str] = "commoncrawl"
    index_url: str
    data_url: str
    s3_url: str

    def __post_init__(self):
        for key in ("index_url", "data_url", "s3_url"):
            if not getattr(self, key).strip():
                raise _fail(f"commoncrawl.{key}", "a non-empty location", getattr(self, key))


@dataclass(frozen=True)
class RootSettings(Section):
    """[root]: the output root's lease (root/lease.py) that keeps two runs from writing one root, the bucket count of
    a new root's pair keys, and the pairs per bucket from which a crawl's rebuild goes through them (ingestion/pair_keys.py)."""

    name: typing.ClassVar[str] = "root"
    lease_timeout_seconds: float
    lease_heartbeat_seconds: float
    lease_wait_seconds: float
    pair_key_buckets: int
    pair_key_bucket_min_pairs: int

    def __post_init__(self):
        if self.lease_heartbeat_seconds <= 0 or self.lease_timeout_seconds <= 2 * self.lease_heartbeat_seconds:
            raise _fail("root.lease_timeout_seconds", "more than twice root.lease_heartbeat_seconds (> 0)",
                        self.lease_timeout_seconds)
        if self.lease_wait_seconds < 0:
            raise _fail("root.lease_wait_seconds", "0 or more", self.lease_wait_seconds)
        if self.pair_key_buckets < 1:
            raise _fail("root.pair_key_buckets", "a positive integer", self.pair_key_buckets)
        if self.pair_key_bucket_min_pairs < 0:
            raise _fail("root.pair_key_bucket_min_pairs", "0 or more", self.pair_key_bucket_min_pairs)


@dataclass(frozen=True)
class ExportSettings(Section):
    """[export]: the files `export` writes for training tools (export/files.py)."""

    name: typing.ClassVar[str] = "export"
    format: str
    rows_per_file: int
    shuffle_seed: int

    def __post_init__(self):
        if self.format not in ("parquet", "jsonl"):
            raise _fail("export.format", "'parquet' or 'jsonl'", self.format)
        if self.rows_per_file <= 0:
            raise _fail("export.rows_per_file", "a positive integer", self.rows_per_file)


@dataclass(frozen=True)
class OptoutSettings(Section):
    """[optout]: the AI-training opt-outs honoured (optout/signals.py); pages' signals are stored whatever these say."""

    name: typing.ClassVar[str] = "optout"
    honour_page_signals: bool
    directives: tuple[str, ...]
    agents: tuple[str, ...]
    tdm_reservation: bool
    content_usage: tuple[str, ...]
    apply_star_group: bool
    blocked_domains: str

    def __post_init__(self):
        from metaclip_spark.optout.signals import DIRECTIVES

        unknown = [d for d in self.directives if d.lower() not in DIRECTIVES]
        if unknown:
            raise _fail("optout.directives", f"a list of robots directives among {', '.join(DIRECTIVES)} (the ones "
                        "extraction records)", unknown[0])
        for key in ("agents", "content_usage"):
            if not all(v.strip() for v in getattr(self, key)):
                raise _fail(f"optout.{key}", "a list of non-empty names", getattr(self, key))
        if self.blocked_domains and not os.path.isfile(self.blocked_domains):
            raise _fail("optout.blocked_domains", "a file of registered domains, one a line (or \"\" for none)",
                        self.blocked_domains)


@dataclass(frozen=True)
class SparkSettings(Section):
    name: typing.ClassVar[str] = "spark"
    master: str
    app_name: str
    log_level: str
    conf: dict


@dataclass(frozen=True)
class Settings:
    """The whole configuration of a run; `updated` lays more values over it (and checks them again)."""

    profile: str
    input: InputSettings
    metadata: MetadataSettings
    worldwide: WorldwideSettings
    metadata_build: MetadataBuildSettings
    curation: CurationSettings
    extract: ExtractSettings
    remote: RemoteSettings
    commoncrawl: CommonCrawlSettings
    root: RootSettings
    export: ExportSettings
    optout: OptoutSettings
    spark: SparkSettings
    tables: dict = field(repr=False, compare=False)  # the merged TOML, for `updated`

    @classmethod
    def from_tables(cls, profile: str, tables: dict) -> "Settings":
        sections = {f.name: f for f in fields(cls) if f.name not in ("profile", "tables")}
        unknown = sorted(set(tables) - set(sections))
        if unknown:
            raise ConfigError(f"unknown section [{unknown[0]}] (misspelled?); sections: {', '.join(sections)}")
        hints = typing.get_type_hints(cls)
        values = {name: hints[name].from_table(tables.get(name, {})) for name in sections}
        return cls(profile=profile, tables=tables, **values)

    def updated(self, overrides: dict) -> "Settings":
        """These settings with `overrides` ({section: {key: value}}) laid over them."""
        return Settings.from_tables(self.profile, _merge(self.tables, overrides))

    def record(self) -> dict:
        """The settings as a run's summary and report keep them: every section, but only the names of Spark's own
        settings (spark.conf may hold credentials, e.g. spark.hadoop.fs.s3a.secret.key)."""
        from dataclasses import asdict

        sections = {f.name: asdict(getattr(self, f.name)) for f in fields(self) if f.name not in ("profile", "tables")}
        sections["spark"]["conf"] = sorted(sections["spark"]["conf"])
        return {"profile": self.profile, **sections}


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None


def _merge(base: dict, top: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(profile: str = "local", conf_file: str | None = None, overrides: dict | None = None) -> Settings:
    """Merge base.toml, the profile, an optional user TOML file and overrides (nested dict); check every key."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    directory = conf_dir()
    tables = _merge(_read_toml(directory / "base.toml"), _read_toml(directory / f"{profile}.toml"))
    if conf_file:
        tables = _merge(tables, _read_toml(Path(conf_file)))
    if overrides:
        tables = _merge(tables, overrides)
    return Settings.from_tables(profile, tables)
