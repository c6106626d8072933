"""Loading the metadata: the list of entries ("queries") texts are matched against; an entry's id is its position."""

from __future__ import annotations

import gzip
import hashlib
import json
import string
from importlib import resources
from pathlib import Path

from metaclip_spark.errors import ConfigError
from metaclip_spark.root.columns import METADATA_LANG

DEFAULT_METADATA = "metadata_default.json.gz"


def default_metadata_path() -> Path:
    """The embedded default list shipped inside the package (built offline by `build-metadata`)."""
    return Path(str(resources.files("metaclip_spark") / "data" / DEFAULT_METADATA))


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"metadata file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"metadata path is a directory, not a file: {path}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ConfigError(f"metadata file {path} is not a valid gzip file: {e}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"metadata file {path} is not UTF-8: bad byte at offset {e.start} (line {line})") from None


def _json_kind(text: str) -> str | None:
    """What JSON value the whole text is ("JSON null", "a JSON number", ...), or None when it is not one JSON value
    (a file of lines: parsing stops at the second line, so this costs nothing on a large list)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    names = {type(None): "JSON null", bool: "a JSON boolean", int: "a JSON number", float: "a JSON number",
             str: "a JSON string", dict: "a JSON object", list: "a JSON array"}
    return names[type(value)]


def parse_metadata(text: str, source: str) -> list[str]:
    """A JSON array of strings (MetaCLIP's metadata.json) or one entry per line; errors name source and position."""
    stripped = text.lstrip("\ufeff")
    if stripped.lstrip().startswith("["):
        try:
            entries = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ConfigError(f"metadata file {source} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        if not isinstance(entries, list):
            raise ConfigError(f"metadata file {source} must hold a JSON array of strings")
        for position, entry in enumerate(entries):
            if not isinstance(entry, str):
                raise ConfigError(
                    f"metadata file {source}: entry {position} is {type(entry).__name__} {entry!r}, not a string"
                )
    elif (kind := _json_kind(stripped)) or stripped.lstrip().startswith(("{", '"')):
        # A file that is one JSON value but an array (null, 42, an object) is a mistake, not a list of one entry.
        raise ConfigError(f"metadata file {source} holds {kind or 'invalid JSON'}: a JSON array of strings (or one "
                          "entry per line) is expected")
    else:
        # One entry per line; the line number minus one is the entry id, so blank lines are kept as entries.
        entries = stripped.split("\n")
        if entries and entries[-1] == "":
            entries.pop()
        entries = [e[:-1] if e.endswith("\r") else e for e in entries]
    if not entries:
        raise ConfigError(f"metadata file {source} holds no entries")
    return entries


def load_metadata(path: str | Path | None = None) -> list[str]:
    """Entries from a file (JSON array or text, optionally gzipped); None or "" means the embedded default."""
    path = Path(path) if path else default_metadata_path()
    return parse_metadata(_read_text(path), str(path))


def metadata_digest(entries: list[str]) -> str:
    """A content digest of the list (order included): the same entries give the same digest from any file format."""
    h = hashlib.sha256()
    for entry in entries:
        data = entry.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


# MetaCLIP's spacing (curation-spec section 3) wraps these seven characters in spaces and turns these three into
# spaces; matching looks for " entry " in the spaced text.
WRAPPED_CHARACTERS = frozenset(",.;:?!`")
BLANKED_CHARACTERS = frozenset("\t\n\r")


def never_matches(entry: str) -> bool:
    """True when no text at all can contain " entry " after MetaCLIP's spacing (curation-spec section 3).

    In a spaced text every wrapped character stands between two spaces of its own, so two wrapped characters are
    at least two spaces apart, and no tab, newline or carriage return is left. " entry " is a substring of some
    spaced text exactly when it obeys the same three rules: it holds no tab/newline/CR, each wrapped character in
    it has a space on both sides (the entry's one-space padding counts), and no two wrapped characters are
    separated by a single space. Then the text made by removing one space on each side of every wrapped character
    spaces back to " entry " padded once more ("Paris , France" is found in "Paris,France", though not in
    "Paris, France", whose typed space doubles the one spacing adds); otherwise nothing can ("U.S.", "Mr.", "a,b",
    ", ,").
    """
    if not BLANKED_CHARACTERS.isdisjoint(entry):
        return True
    padded = f" {entry} "
    previous_wrapped = -3
    for position, char in enumerate(padded):
        if char in WRAPPED_CHARACTERS:
            if padded[position - 1] != " " or padded[position + 1] != " " or position - previous_wrapped < 3:
                return True
            previous_wrapped = position
    return False


def is_single_punctuation(entry: str) -> bool:
    """One ASCII punctuation character (Python's string.punctuation), which the builder skips (curation-spec
    section 2); other Unicode punctuation ("\u2014", "\u3001") is kept."""
    return len(entry) == 1 and entry in string.punctuation


# What MetaCLIP 2's builder calls punctuation: Python's string.punctuation and these marks (it has "¿", which the
# matcher's no-space marks lack).
BUILDER_PUNCTUATION = frozenset(string.punctuation) | frozenset("，。、；：？¿！“”‘’（）【】《》〈〉「」『』～—")


def is_pure_punctuation(entry: str) -> bool:
    """A non-empty entry made only of punctuation (BUILDER_PUNCTUATION), which a worldwide build drops at any length
    (curation-spec section 3): under the worldwide edge rule it gets no padding and matches any text holding it."""
    return bool(entry) and all(char in BUILDER_PUNCTUATION for char in entry)


def validate_entries(entries: list[str], examples: int = 5, worldwide: bool = False) -> dict:
    """Counts of entries that are wasted or suspicious: repeats of an earlier entry, empty strings, single ASCII
    punctuation characters, entries that can never match under MetaCLIP's spacing (`never_matches`: "U.S.",
    "a,b", a tab), and entries with leading or trailing whitespace (" dog" is matched as
    "  dog ", so only where the spaced text has two spaces, as after a comma: almost never what was meant).
    A list of a worldwide set (`worldwide`) also counts the entries made only of punctuation, which MetaCLIP 2's
    builder drops at any length. Each kind also lists up to `examples` (position, entry) pairs."""
    kinds_checked = ("duplicates", "empty", "single_punctuation", "never_match", "surrounding_space")
    kinds_checked += ("pure_punctuation",) if worldwide else ()
    report = {"entries": len(entries), "distinct": 0, **dict.fromkeys(kinds_checked, 0),
              "examples": {kind: [] for kind in kinds_checked}}
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        kinds = []
        if entry in seen:
            kinds.append("duplicates")
        else:
            seen.add(entry)
        if entry == "":
            kinds.append("empty")
        elif is_single_punctuation(entry):
            kinds.append("single_punctuation")
        if never_matches(entry):
            kinds.append("never_match")
        if entry != entry.strip():
            kinds.append("surrounding_space")
        if worldwide and is_pure_punctuation(entry):
            kinds.append("pure_punctuation")
        for kind in kinds:
            report[kind] += 1
            if len(report["examples"][kind]) < examples:
                report["examples"][kind].append((position, entry))
    report["distinct"] = len(seen)
    return report


def format_validation(report: dict) -> str:
    """The validation report as a few human-readable lines."""
    lines = [f"{report['entries']:,} entries, {report['distinct']:,} distinct"]
    for kind, label in (("duplicates", "duplicates (repeat an earlier entry)"), ("empty", "empty strings"),
                        ("single_punctuation", "single ASCII punctuation characters"),
                        ("never_match", "can never match (a , . ; : ? ! ` not between spaces, or a tab/newline/CR)"),
                        ("surrounding_space", "leading/trailing whitespace (match only next to a doubled space)"),
                        ("pure_punctuation", "made only of punctuation (MetaCLIP 2's builder drops them: with no "
                                             "padding each matches any text holding it)")):
        if kind not in report:
            continue
        shown = ", ".join(f"#{p} {e!r}" for p, e in report["examples"][kind])
        lines.append(f"  {report[kind]:>9,}  {label}" + (f"  e.g. {shown}" if shown else ""))
    return "\n".join(lines)


# `--metadata worldwide`: the offline worldwide set `make metadata-worldwide` builds inside the package.
WORLDWIDE = "worldwide"


def default_worldwide_path() -> Path:
    return Path(str(resources.files("metaclip_spark") / "data" / WORLDWIDE))


def _list_code(name: str) -> str | None:
    """The language code of a list file name (`zh.json`, `zh.json.gz`), or None for any other file."""
    for suffix in (".json", ".json.gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def load_metadata_set(directory: str | Path) -> dict[str, list[str]]:
    """{language code: entries} from a directory of per-language lists, `<code>.json` (JSON arrays, optionally
    gzipped as `<code>.json.gz`), codes as Wikipedia spells them, variants merged into their prefix (zh, not zh-yue),
    and `other.json`: the layout MetaCLIP 2's align_lid_to_wiki.py writes. Other files (a README, the reference's
    `<code>.pkl` automata) are ignored; a list under a name that is no such code stops the run."""
    from metaclip_spark.matching.lang_codes import list_name_problem

    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"metadata directory not found: {directory}")
    lists: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        code = _list_code(path.name)
        if code is None:
            continue
        if problem := list_name_problem(code):
            raise ConfigError(f"metadata file {path}: {problem}")
        if code in lists:
            raise ConfigError(f"metadata directory {directory} holds two lists for {code!r} ({code}.json and "
                              f"{code}.json.gz): keep one")
        lists[code] = parse_metadata(_read_text(path), str(path))
    if not lists:
        raise ConfigError(f"metadata directory {directory} holds no <code>.json list (one JSON array of entries per "
                          "language, e.g. en.json, zh.json)")
    return lists


def metadata_set_digest(lists: dict[str, list[str]], kana: bool = False) -> str:
    """A digest of a worldwide set: every language's code and list digest, and the no-space ranges used."""
    h = hashlib.sha256(b"worldwide" + (b"" if kana else b"\x00reference-no-space-ranges"))
    for code in sorted(lists):
        h.update(f"\x00{code}\x00{metadata_digest(lists[code])}".encode())
    return h.hexdigest()


# The code of a v1 run's one list: MetaCLIP v1's list is English's (draws.ENGLISH is the same code).
ONE_LIST = "en"


def is_metadata_set(path: str | None) -> bool:
    """True when `path` names a worldwide set: a directory, or the word `worldwide` (the built default)."""
    return bool(path) and (path == WORLDWIDE or Path(path).is_dir())


class Metadata:
    """The entry list(s) of a run with their digest and where they came from.

    A file is one list (MetaCLIP v1: English, `entries`). A directory is a worldwide set (MetaCLIP 2): one list per
    language in `lists`, matched with MetaCLIP 2's edge rule; an entry id is a position in its language's list.
    """

    def __init__(self, path: str | None, kana: bool = False, automata_max_mb: int = 2048):
        self.worldwide = is_metadata_set(path)
        self.kana = kana
        self.automata_max_bytes = automata_max_mb << 20
        if self.worldwide:
            if path == WORLDWIDE:
                if not default_worldwide_path().is_dir():
                    raise ConfigError(f"the worldwide default metadata is not built ({default_worldwide_path()}): "
                                      "run `make metadata-worldwide`, or pass --metadata DIR")
                path = str(default_worldwide_path())
            self.path = path
            self._lists = load_metadata_set(path)
            self.entries = None
            self.digest = metadata_set_digest(self._lists, kana)
        else:
            self.path = path or "(embedded default)"
            self.entries = load_metadata(path)
            self.digest = metadata_digest(self.entries)

    @property
    def lists(self) -> dict[str, list[str]]:
        """{language code: entries}: a set's lists, or a v1 list as English's (the one list every text is matched
        against). Every stage works on these; only how a text's list is chosen differs (`list_column`)."""
        return self._lists if self.worldwide else {ONE_LIST: self.entries}

    @property
    def list_column(self) -> str | None:
        """The column naming the list each pair is matched against: a set's pairs carry their language
        (METADATA_LANG); with one list there is no choice, and v1 tables keep their schema without it."""
        return METADATA_LANG if self.worldwide else None

    @classmethod
    def from_config(cls, config) -> "Metadata":
        return cls(config.metadata.path or None, kana=config.worldwide.kana_no_space,
                   automata_max_mb=config.worldwide.automata_max_mb)

    def digest_difference(self, digest: str) -> str:
        """What a root's recorded digest tells of the difference, when it is this set matched with the other kana
        setting (`worldwide.kana_no_space`, whose default became the reference's ranges); else ""."""
        if not self.worldwide or digest != metadata_set_digest(self.lists, not self.kana):
            return ""
        was, now = ("true", "false") if not self.kana else ("false", "true")
        return (f". It holds these same lists matched with worldwide.kana_no_space = {was} (now {now}"
                + (", the reference's no-space ranges and the default since kana edges were found to flood Japanese "
                   "matches" if not self.kana else "") + f"): pass --rematch to match its pairs again with "
                f"kana_no_space = {now}, or keep them with a --conf file setting kana_no_space = {was}")

    @property
    def languages(self) -> list[str]:
        return sorted(self.lists)

    @property
    def entries_total(self) -> int:
        return sum(len(entries) for entries in self.lists.values())
