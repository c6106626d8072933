"""Building the metadata the MetaCLIP way (curation-spec section 2): sources in a fixed order, merged as a set.

Order: "0".."99"; WordNet (English: WordNet 3.0 synset names; other languages: OMW lemmas); Wikipedia unigrams
with count >= 100; Wikipedia bigrams with PMI >= 30; Wikipedia article titles with >= 70 views. The merge keeps
each exact string once, where it was first seen (no lowercasing), and skips empty entries and single ASCII
punctuation characters (English, v1's rule) or strings made only of punctuation (every other language, MetaCLIP 2's
rule). Every source reports how many strings it offered and how many became new entries.

One build is one language (`--lang`, a Wikipedia code): its dumps, its pageview lines, its segmenter when it is
written without spaces (metadata/segmentation.py). A worldwide metadata set is a directory of `<code>.json` files.

The embedded default (metaclip_spark/data/metadata_default.json.gz) needs no download: it uses wordfreq's
English word frequencies (shipped in the wheel) in place of Wikipedia unigram counts, and has no bigrams or
titles. `make metadata-default` rebuilds it. The offline worldwide default (`make metadata-worldwide`) does the
same for each of wordfreq's languages (`build_wordfreq_worldwide`).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from metaclip_spark.config import MetadataBuildSettings, Settings
from metaclip_spark.errors import ConfigError
from metaclip_spark.metadata.lists import is_pure_punctuation, is_single_punctuation



@dataclass(frozen=True)
class BuildThresholds:
    """The thresholds of curation-spec section 2 (defaults in conf/base.toml [metadata_build])."""

    unigram_min_count: int
    bigram_min_pmi: float
    title_min_views: int
    pageview_min_hourly_views: int
    wordfreq_min_frequency: float

    @classmethod
    def from_config(cls, section: MetadataBuildSettings | None = None, **overrides) -> "BuildThresholds":
        """The configured thresholds (the shipped defaults when no section is given), options laid over them."""
        if section is None:
            from metaclip_spark.config import load_config

            section = load_config("local").metadata_build
        values = {f.name: getattr(section, f.name) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"metadata_build.{key} must be a non-negative number, got {value!r}")
        return cls(**values)


def number_entries() -> list[str]:
    """Source 1: the strings "0" .. "99"."""
    return [str(n) for n in range(100)]


def skip_reason(entry: str, pure_punctuation: bool = False) -> str | None:
    """Why the merge leaves a string out: "empty", "punctuation", else None. Punctuation is one ASCII punctuation
    character (v1's English rule, curation-spec section 2), or with `pure_punctuation` (every other language, as
    MetaCLIP 2's builder does) any string made only of punctuation (metadata.is_pure_punctuation)."""
    if entry == "":
        return "empty"
    if is_pure_punctuation(entry) if pure_punctuation else is_single_punctuation(entry):
        return "punctuation"
    return None


def merge_sources(sources: Iterable[tuple[str, Iterable[str]]],
                  pure_punctuation: bool = False) -> tuple[list[str], list[dict]]:
    """Merge (name, strings) sources in order as a set of exact strings keeping first-seen order.

    The report has one row per source: strings offered, entries added, strings already present (from this or
    an earlier source), and strings skipped as empty or punctuation (`skip_reason`).
    """
    entries: list[str] = []
    seen: set[str] = set()
    report: list[dict] = []
    for name, strings in sources:
        row = {"source": name, "offered": 0, "added": 0, "already_present": 0, "skipped_empty": 0,
               "skipped_punctuation": 0}
        for entry in strings:
            row["offered"] += 1
            reason = skip_reason(entry, pure_punctuation)
            if reason:
                row[f"skipped_{reason}"] += 1
            elif entry in seen:
                row["already_present"] += 1
            else:
                seen.add(entry)
                entries.append(entry)
                row["added"] += 1
        report.append(row)
    return entries, report


# wordfreq's language codes that differ from Wikipedia's (Norwegian Bokmål's wiki is no.wikipedia.org, Filipino's
# is tl.wikipedia.org); every other wordfreq code is the Wikipedia code.
WORDFREQ_TO_WIKIPEDIA = {"nb": "no", "fil": "tl"}


def wordfreq_languages() -> dict[str, str]:
    """{Wikipedia code: wordfreq code} for every language wordfreq ships a word list for."""
    import wordfreq

    return {WORDFREQ_TO_WIKIPEDIA.get(code, code): code for code in sorted(wordfreq.available_languages())}


def wordfreq_unigrams(min_frequency: float, lang: str = "en") -> list[str]:
    """Words of wordfreq's best list for a language (a Wikipedia code) with frequency >= min_frequency, most
    frequent first.

    Read from the list's frequency bins (bin i holds the words of frequency 10^(-i/100)), which needs no word
    tokenizer (wordfreq's own lookups want MeCab for Japanese). wordfreq lowercases its words and writes every
    digit as "0" ("0,000"); both are kept as wordfreq has them."""
    import wordfreq

    code = wordfreq_languages().get(lang)
    if code is None:
        raise ConfigError(f"wordfreq has no word list for {lang!r}; it has: {', '.join(wordfreq_languages())}")
    words = []
    for centibels, bin_words in enumerate(wordfreq.get_frequency_list(code, "best")):
        if 10 ** (-centibels / 100) < min_frequency:
            break
        words.extend(bin_words)
    return words


def metadata_bytes(entries: list[str]) -> bytes:
    """The released format: one JSON array of strings (one entry per line, so diffs of the file stay readable)."""
    return ("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n").encode("utf-8")


def write_metadata(entries: list[str], path: str | Path) -> Path:
    """Write the JSON array; gzip (-9, no timestamp, so reruns give the same bytes) when the name ends in .gz."""
    path = Path(path)
    data = metadata_bytes(entries)
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as f:
            f.write(data)
        data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def format_report(report: list[dict], total: int) -> str:
    """A small table: entries per source, in build order."""
    lines = [f"{'source':<20} {'offered':>10} {'added':>10} {'present':>10} {'empty':>7} {'punct':>7}"]
    for row in report:
        lines.append(f"{row['source']:<20} {row['offered']:>10,} {row['added']:>10,} {row['already_present']:>10,} "
                     f"{row['skipped_empty']:>7,} {row['skipped_punctuation']:>7,}")
    lines.append(f"{'total entries':<20} {'':>10} {total:>10,}")
    return "\n".join(lines)


@dataclass
class MetadataBuild:
    """A finished build: the entries, one report row per source (build order) and the sources' own counters."""

    entries: list[str]
    report: list[dict]
    details: dict


def build_metadata(spark=None, *, lang: str = "en", wikipedia: list[str] = (), pageviews: list[str] = (),
                   use_wordfreq: bool = False, wordnet: bool = True, omw_tab: list[str] = (),
                   thresholds: BuildThresholds | None = None, nltk_data: str | Path | None = None,
                   counts_output: str | None = None) -> MetadataBuild:
    """Build one language's metadata in the spec's order: numbers, WordNet (English synset names, or the
    language's lemmas from OMW tab files), unigrams (Wikipedia counts, then wordfreq when asked), Wikipedia
    bigrams, pageview titles. A SparkSession is needed only for Wikipedia dumps or pageviews."""
    from metaclip_spark.metadata.segmentation import canonical_code, is_no_space_language

    lang = canonical_code(lang)
    thresholds = thresholds or BuildThresholds.from_config()
    if (wikipedia or pageviews) and spark is None:
        raise ConfigError("a SparkSession is needed to count Wikipedia dumps or pageview files")
    details: dict = {"lang": lang, "thresholds": asdict(thresholds)}
    sources: list[tuple[str, Iterable[str]]] = [("numbers", number_entries())]
    if omw_tab:
        from metaclip_spark.metadata.wordnet import omw_lemmas

        omw_counters: dict = {}
        sources.append(("wordnet_omw", list(omw_lemmas(list(omw_tab), lang, omw_counters))))
        details["wordnet_omw"] = omw_counters
    elif wordnet and lang == "en":
        from metaclip_spark.metadata.wordnet import synset_names

        sources.append(("wordnet", synset_names(nltk_data)))
    bigrams: list[str] = []
    if wikipedia:
        from metaclip_spark.metadata.wikipedia import count_wikipedia

        counts = count_wikipedia(spark, list(wikipedia), thresholds.unigram_min_count, thresholds.bigram_min_pmi,
                                 counts_output, lang=lang)
        details["wikipedia"] = {"pages": counts.pages, "tokens_total": counts.tokens_total,
                                "unigrams_distinct": counts.unigrams_distinct,
                                "bigrams_distinct": counts.bigrams_distinct,
                                "unigrams_kept": len(counts.unigrams), "bigrams_kept": len(counts.bigrams)}
        sources.append(("wikipedia_unigrams", [term for term, _ in counts.unigrams]))
        # Written as they stand in the text: without the space in a language written without spaces (MetaCLIP 2).
        joiner = "" if is_no_space_language(lang) else " "
        bigrams = [joiner.join(term.split(" ")) for term, _, _ in counts.bigrams]
    if use_wordfreq:
        sources.append(("wordfreq_unigrams", wordfreq_unigrams(thresholds.wordfreq_min_frequency, lang)))
    if wikipedia:
        sources.append(("wikipedia_bigrams", bigrams))
    if pageviews:
        from metaclip_spark.metadata.pageviews import desktop_domain_code, pageview_titles

        titles = pageview_titles(spark, list(pageviews), thresholds.title_min_views,
                                 thresholds.pageview_min_hourly_views, desktop_domain_code(lang))
        details["pageviews"] = {"lines": titles.lines, "titles_kept": len(titles.titles)}
        sources.append(("pageview_titles", [title for title, _ in titles.titles]))
    # English keeps v1's rule (its list is MetaCLIP v1's); every other language drops punctuation-only strings.
    entries, report = merge_sources(sources, pure_punctuation=lang != "en")
    return MetadataBuild(entries=entries, report=report, details=details)


def metadata_file_name(lang: str) -> str:
    """The file of one language in a worldwide metadata directory: `<Wikipedia code>.json`."""
    return f"{lang}.json"


def build_wordfreq_worldwide(output_dir: str | Path, section: MetadataBuildSettings,
                             nltk_data: str | Path | None = None, wordnet: bool = True) -> list[dict]:
    """The offline worldwide default: for every wordfreq language, numbers "0".."99" and its wordfreq words over
    the language's floor (`wordfreq_min_frequency_by_lang`, else `wordfreq_min_frequency`); English also gets
    the WordNet synset names, as the v1 default does. Writes OUTPUT_DIR/<code>.json; one report row per language.

    A stand-in for per-language Wikipedia metadata (no bigrams, no titles): see docs/metadata.md."""
    import time

    languages = wordfreq_languages()
    unknown = sorted(set(section.wordfreq_min_frequency_by_lang) - set(languages))
    if unknown:
        raise ConfigError(f"metadata_build.wordfreq_min_frequency_by_lang names {', '.join(unknown)}, which wordfreq "
                          f"has no list for; its languages (Wikipedia codes): {', '.join(languages)}")
    output_dir = Path(output_dir)
    rows = []
    for lang, code in languages.items():
        started = time.monotonic()
        floor = section.wordfreq_floor(lang)
        thresholds = BuildThresholds.from_config(section, wordfreq_min_frequency=floor)
        build = build_metadata(lang=lang, use_wordfreq=True, wordnet=wordnet, thresholds=thresholds,
                               nltk_data=nltk_data)
        path = write_metadata(build.entries, output_dir / metadata_file_name(lang))
        rows.append({"lang": lang, "wordfreq_code": code, "wordfreq_min_frequency": floor,
                     "entries": len(build.entries), "sources": build.report, "file": str(path),
                     "seconds": round(time.monotonic() - started, 2)})
    return rows


def format_worldwide_report(rows: list[dict]) -> str:
    """Entries per language of a worldwide build, one line each."""
    lines = [f"{'lang':<5} {'wordfreq':<8} {'floor':>8} {'entries':>10} {'wordnet':>9} {'wordfreq':>9} {'seconds':>8}"]
    for row in rows:
        added = {source["source"]: source["added"] for source in row["sources"]}
        lines.append(f"{row['lang']:<5} {row['wordfreq_code']:<8} {row['wordfreq_min_frequency']:>8.0e} "
                     f"{row['entries']:>10,} {added.get('wordnet', 0):>9,} {added.get('wordfreq_unigrams', 0):>9,} "
                     f"{row['seconds']:>8.2f}")
    lines.append(f"{len(rows)} languages, {sum(row['entries'] for row in rows):,} entries")
    return "\n".join(lines)


def add_build_arguments(parser) -> None:
    """Options of `metaclip-spark build-metadata` (the CLI adds --profile/--conf/--master)."""
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--output", help="JSON array to write (gzipped when the name ends in .gz)")
    output.add_argument("--output-dir", help="worldwide metadata directory: writes DIR/<lang>.json")
    parser.add_argument("--lang", default="en",
                        help="Wikipedia language code of the build (default en): its segmenter, pageview lines, "
                             "OMW lemmas and wordfreq list")
    parser.add_argument("--wiki-dump", "--wikipedia", dest="wikipedia", action="append", default=[], metavar="DUMP",
                        help="the language's Wikipedia XML dump (.xml.bz2), file or glob; repeatable")
    parser.add_argument("--pageviews", action="append", default=[], metavar="FILES",
                        help="hourly pageview files (`en Title views bytes` lines, plain or .gz); repeatable")
    parser.add_argument("--wordfreq", action="store_true",
                        help="add wordfreq's words of the language as unigrams (the offline stand-in for Wikipedia)")
    parser.add_argument("--all-languages", action="store_true",
                        help="with --wordfreq and --output-dir: the offline worldwide default, one file per wordfreq "
                             "language")
    parser.add_argument("--omw-tab", action="append", default=[], metavar="FILE",
                        help="Open Multilingual Wordnet tab file (wn-data-xxx.tab): the language's lemmas; repeatable")
    parser.add_argument("--no-wordnet", dest="wordnet", action="store_false", help="leave WordNet out")
    parser.add_argument("--nltk-data", help="nltk data folder holding corpora/wordnet (default: search nltk's path)")
    parser.add_argument("--unigram-min-count", type=int, help="keep Wikipedia unigrams with count >= N (100)")
    parser.add_argument("--bigram-min-pmi", type=float, help="keep Wikipedia bigrams with PMI >= X (30)")
    parser.add_argument("--title-min-views", type=int, help="keep titles with >= N total views (70)")
    parser.add_argument("--pageview-min-hourly-views", type=int, help="ignore hourly lines under N views (50)")
    parser.add_argument("--wordfreq-min-frequency", type=float,
                        help="wordfreq words kept (>= this frequency; default: the language's floor in config, 1e-8)")
    parser.add_argument("--counts-output", help="also write the Wikipedia count table (kind, term, count) as Parquet")
    parser.add_argument("--report", help="write the build report as JSON to this file")


def _check_options(args) -> None:
    from metaclip_spark.metadata.segmentation import canonical_code

    if args.all_languages:
        if not (args.wordfreq and args.output_dir):
            raise ConfigError("--all-languages builds the wordfreq stand-in of every language: give --wordfreq and "
                              "--output-dir")
        if args.wikipedia or args.pageviews or args.omw_tab or args.lang != "en" or args.wordfreq_min_frequency:
            raise ConfigError("--all-languages takes only wordfreq and WordNet; build a language's Wikipedia, "
                              "pageviews or OMW lemmas with --lang L (floors per language: "
                              "[metadata_build] wordfreq_min_frequency_by_lang)")
        return
    if not canonical_code(args.lang):
        raise ConfigError("--lang needs a Wikipedia language code (en, de, zh, ja, ...)")
    if not (args.wikipedia or args.pageviews or args.wordfreq or args.omw_tab
            or (args.wordnet and canonical_code(args.lang) == "en")):
        raise ConfigError("nothing to build from: give --wiki-dump, --pageviews, --wordfreq, --omw-tab, or keep "
                          "WordNet (English)")


def run_build_command(args, config: Settings) -> int:
    """`metaclip-spark build-metadata`: build, write, print the per-source report and the validation report."""
    import time
    from contextlib import nullcontext

    from metaclip_spark.metadata.lists import format_validation, validate_entries
    from metaclip_spark.metadata.segmentation import canonical_code

    _check_options(args)
    section = config.metadata_build
    nltk_data = args.nltk_data or section.nltk_data or None
    started = time.monotonic()
    if args.all_languages:
        rows = build_wordfreq_worldwide(args.output_dir, section, nltk_data, wordnet=args.wordnet)
        seconds = time.monotonic() - started
        print(format_worldwide_report(rows))
        print(f"Wrote {len(rows)} files to {args.output_dir} in {seconds:.1f} s")
        if args.report:
            report = {"output_dir": str(args.output_dir), "seconds": round(seconds, 1), "languages": rows}
            Path(args.report).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return 0
    lang = canonical_code(args.lang)
    thresholds = BuildThresholds.from_config(
        section, unigram_min_count=args.unigram_min_count, bigram_min_pmi=args.bigram_min_pmi,
        title_min_views=args.title_min_views, pageview_min_hourly_views=args.pageview_min_hourly_views,
        wordfreq_min_frequency=(args.wordfreq_min_frequency if args.wordfreq_min_frequency is not None
                                else section.wordfreq_floor(lang)))
    output = args.output or str(Path(args.output_dir) / metadata_file_name(lang))
    # Spark only reads Wikipedia dumps and pageview files: numbers, WordNet and wordfreq are built without it.
    if args.wikipedia or args.pageviews:
        from metaclip_spark.session import owned_session

        session = owned_session(config, "metaclip-spark build-metadata", args.master)
    else:
        session = nullcontext(None)
    with session as spark:
        build = build_metadata(spark, lang=lang, wikipedia=args.wikipedia, pageviews=args.pageviews,
                               use_wordfreq=args.wordfreq, wordnet=args.wordnet, omw_tab=args.omw_tab,
                               thresholds=thresholds, nltk_data=nltk_data, counts_output=args.counts_output)
    write_metadata(build.entries, output)
    seconds = time.monotonic() - started
    validation = validate_entries(build.entries)
    print(format_report(build.report, len(build.entries)))
    for source, values in build.details.items():
        if source not in ("thresholds", "lang"):
            print(f"{source}: {json.dumps(values, sort_keys=True, ensure_ascii=False)}")
    print(format_validation(validation))
    print(f"Wrote {len(build.entries):,} entries ({lang}) to {output} in {seconds:.1f} s")
    if args.report:
        report = {"output": output, "lang": lang, "entries": len(build.entries), "seconds": round(seconds, 1),
                  "sources": build.report, **{k: v for k, v in build.details.items() if k != "lang"},
                  "validation": {k: v for k, v in validation.items() if k != "examples"}}
        Path(args.report).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
