"""The `metaclip-spark` command (and, through jobs/, the spark-submit entry points).

`build_parser` defines the options of every subcommand; `COMMANDS` says, for each one, which handler runs it and
what `main` prepares for it first: the configuration, the metadata (loaded before Spark starts, so a bad file
costs no Spark start-up) and a Spark session (`session.owned_session`). `main` dispatches through that table
only and turns errors into exit codes: a CurationError is one line on stderr and its exit_code, anything else
a traceback and INTERNAL_ERROR_EXIT_CODE.

pyspark and the pipeline modules are imported inside the handlers, so `explain` and `metadata-info` answer
without loading them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metaclip_spark.ingestion import sources
from metaclip_spark.errors import INTERNAL_ERROR_EXIT_CODE, CurationError, NoSpaceError, is_out_of_space

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from metaclip_spark.config import Settings
    from metaclip_spark.ingestion.ingest import InputSpec
    from metaclip_spark.metadata.lists import Metadata

log = logging.getLogger("metaclip_spark")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="local", help="configuration profile in conf/: local (default) or cluster")
    parser.add_argument("--conf", dest="conf_file", help="a TOML file laid over the profile")
    parser.add_argument("--master", help="Spark master URL (default: spark-submit's, else the profile's)")


_METADATA_HELP = ("JSON array or one-entry-per-line file (default: the embedded English list); a directory of "
                  "<code>.json lists, one per language, or the word 'worldwide' (the built default set), makes the "
                  "run worldwide (MetaCLIP 2)")


def _add_metadata(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metadata", help=_METADATA_HELP)


def _add_input(parser: argparse.ArgumentParser, manifests: bool = False, required: bool = True) -> None:
    parser.add_argument("--input", required=required, help="pool of pairs: Parquet or JSON lines file or directory"
                        + (", or a Common Crawl manifest (warc.paths.gz, wat.paths.gz)" if manifests else ""))
    formats = sources.formats() if manifests else sources.formats(sources.POOL)
    parser.add_argument("--input-format", choices=formats,
                        help="default: from the name (*.paths[.gz]: a WARC or WAT listing, by the files it lists; "
                             "*.parquet, *.jsonl) or from the files of the directory")
    if manifests:
        _add_input_base(parser)
        parser.add_argument("--crawl", help="crawl name of this input (default: the CC-MAIN-... id in the file paths; "
                            "'pool' for a pool of pairs)")
        parser.add_argument("--fail-fast", action="store_true", help="stop at the first input file that fails")
    parser.add_argument("--url-column", help="name of the image URL column (default: url)")
    parser.add_argument("--text-column", help="name of the text column (default: text)")


def _add_input_base(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-base", help="where a manifest's relative paths live: a directory, file://..., "
                        "https://data.commoncrawl.org/, s3://commoncrawl/, gs://... (default: for a listing under "
                        "crawl-data/ listing crawl-data/ paths, the root above crawl-data/; else the listing's folder)")


def _add_common_crawl(parser: argparse.ArgumentParser) -> None:
    from metaclip_spark.ingestion.crawl_index import ARCHIVE_TYPES, ORIGINS

    parser.add_argument("--common-crawl", metavar="ID|latest|next",
                        help="instead of --input: a dump of Common Crawl's index (commoncrawl.index_url), by id; "
                             "latest, the newest; next, the oldest newer than every dump the root holds (latest on "
                             "a new root). latest and next finish a partly done dump first, and end at once (exit "
                             "0) when there is nothing new (unless --robots brings captures: they are read and applied)")
    parser.add_argument("--archive-type", choices=ARCHIVE_TYPES, help="with --common-crawl: the dump's WARC "
                        "(default) or WAT files")
    parser.add_argument("--from", dest="origin", choices=ORIGINS, help="with --common-crawl: read the dump from "
                        "commoncrawl.data_url (https, default) or commoncrawl.s3_url (s3)")


class _RootOption(argparse.Action):
    """--root ROOT, the output root, in every command that has one; its old spelling --output still works, with a
    one-line note on stderr (`--output` now only names what a command writes that is not a root: extract's
    directory, build-metadata's file)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == "--output":  # told once the console is set up (main), as a warning
            namespace.deprecated = [*getattr(namespace, "deprecated", []), "--output ROOT is now --root ROOT (the old "
                                    "spelling still works)"]
        setattr(namespace, self.dest, values)


def _add_root_option(parser: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    """--root (dest `output`, as every handler reads it), with --output as its deprecated spelling."""
    parser.add_argument("--root", "--output", dest="output", metavar="ROOT", required=required, action=_RootOption,
                        help=help + " (--output: the old spelling)")


def _add_root(parser: argparse.ArgumentParser, ingest: bool = True, crawls: bool = True,
              required: bool = True) -> None:
    _add_root_option(parser, "the output root of the curation project", required=required)
    if crawls:  # `match` ingests whatever its input brings: it takes no pool to choose
        parser.add_argument("--crawls", help="comma-separated crawls forming the pool (default: every crawl)")
    if ingest:
        parser.add_argument("--force", action="store_true", help="redo the input's crawls even where files are done")
        parser.add_argument("--rematch", action="store_true",
                            help="match the root's pairs again when the metadata list changed")
        parser.add_argument("--dedup", choices=("pool", "crawl"),
                            help="(uuid, text) unique over the whole pool, across crawls (pool, the default of a new "
                                 "root) or within each crawl only (crawl); recorded in the root, which refuses the "
                                 "other")
        parser.add_argument("--rebuild-dedup", action="store_true",
                            help="rebuild every crawl's tables from its units in the --dedup mode (default pool): for "
                                 "a root made before pool-wide de-duplication, or to change its mode")


def _add_balance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--t", help="threshold: a positive integer or 'auto' (tail-proportion rule)")
    parser.add_argument("--tail-share", type=float, help="tail proportion for --t auto (default 0.06)")
    parser.add_argument("--seed", type=int, help="seed of the keep draws (default 0)")


def _add_console(parser: argparse.ArgumentParser) -> None:
    from metaclip_spark.progress import MODES

    parser.add_argument("--progress", choices=MODES,
                        help="progress of the running stage on stderr: a bar rewritten in place (the default on a "
                             "terminal), log lines (the default otherwise, e.g. spark-submit to a file) or off")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        help="metaclip-spark's messages on stderr (default INFO; Spark's own: spark.log_level)")
    parser.add_argument("--quiet", action="store_true",
                        help="warnings and errors only, no progress (unless --progress is given); results still print")


def build_parser() -> argparse.ArgumentParser:
    from metaclip_spark import __version__

    parser = argparse.ArgumentParser(prog="metaclip-spark", description="MetaCLIP data curation on Apache Spark")
    parser.add_argument("--version", action="version", version=f"metaclip-spark {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    curate = commands.add_parser("curate", help="ingest new input into an output root, then count, balance, report")
    _add_common(curate), _add_input(curate, manifests=True, required=False), _add_common_crawl(curate)
    _add_metadata(curate)
    _add_balance(curate), _add_root(curate)
    curate.add_argument("--overwrite", action="store_true",
                        help="replace the output root with what --input brings: built beside it, swapped in once its "
                             "run has committed (the old root is kept whole until then); its robots.txt captures "
                             "(--robots) are kept")
    curate.add_argument("--no-report", dest="report", action="store_false", help="skip the report stage")
    curate.add_argument("--robots", metavar="LISTING", action="append",
                        help="robots.txt captures to judge every crawl of the root by (docs/optout.md): a crawl's "
                             "robotstxt.paths.gz or one archive (local, https://, s3://, gs://), or a local "
                             "directory of web archives; repeatable. Kept in the root: the newest capture of each host applies")
    extract = commands.add_parser("extract", help="Common Crawl WARC/WAT files to image-text pairs: DIR/pairs")
    _add_common(extract)
    extract.add_argument("--manifest", required=True, help="warc.paths.gz or wat.paths.gz (gzipped or plain)")
    _add_input_base(extract)
    extract.add_argument("--crawl", help="crawl id for the crawl column (default: CC-MAIN-... found in the paths)")
    extract.add_argument("--output", required=True, help="output directory (pairs/ and extract.json)")
    extract.add_argument("--fail-fast", action="store_true", help="stop at the first file that cannot be read")

    match = commands.add_parser("match", help="stage 1: ingest (extract and) match input into ROOT/matched")
    _add_common(match), _add_input(match, manifests=True), _add_metadata(match), _add_root(match, crawls=False)

    count = commands.add_parser("count", help="stage 2: ROOT/crawl_counts of the chosen crawls to ROOT/counts")
    _add_common(count), _add_metadata(count), _add_root(count, ingest=False)

    balance = commands.add_parser("balance", help="stage 3: ROOT/matched + ROOT/counts to ROOT/curated")
    _add_common(balance), _add_metadata(balance), _add_balance(balance), _add_root(balance, ingest=False)

    status = commands.add_parser("status", help="what an output root holds: crawls, files, matches, last run")
    _add_common(status)
    _add_root_option(status, "the output root", required=False)
    status.add_argument("root", nargs="?", help="the output root, as the old spelling `status ROOT` (use --root)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    crawls = commands.add_parser("crawls", help="Common Crawl's dumps as its index lists them, newest first, and "
                                 "what the output root holds of each (no Spark)")
    _add_common(crawls), _add_root(crawls, ingest=False, crawls=False, required=False)
    crawls.add_argument("--json", action="store_true", help="print the dumps as JSON")

    plan = commands.add_parser("plan", help="for a list of thresholds t: entries over t, tail share, matches after "
                               "balancing and the expected curated pairs of the root's pool")
    _add_common(plan)
    _add_root_option(plan, "the output root (after `match` or `curate`)")
    plan.add_argument("--crawls", help="comma-separated crawls forming the pool (default: every crawl)")
    thresholds = plan.add_mutually_exclusive_group()
    thresholds.add_argument("--t", dest="t_list", metavar="A,B,C",
                            help="thresholds to tabulate: positive integers, and auto for the tail-share rule's t")
    thresholds.add_argument("--t-range", action="store_true",
                            help="thresholds 1, 2, 5, 10, 20, ... up to the largest count, with auto's t (default)")
    plan.add_argument("--lang", dest="plan_lang", metavar="CODE",
                      help="worldwide roots: the metadata language whose counts, pairs and t to plan (without it: "
                           "the table of the root's languages as its last balance left them)")
    plan.add_argument("--tail-share", type=float, help="tail proportion of the auto rule (default 0.06)")
    plan.add_argument("--counts-only", action="store_true",
                      help="no Spark: from the counts alone, the expected pairs as an upper bound")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    report = commands.add_parser("report", help="numbers, plots and an HTML page of a finished run: DIR/report")
    _add_common(report)
    _add_root_option(report, "the output root of a finished `curate` run")

    export = commands.add_parser("export", help="the last run's pairs as flat Parquet/JSON lines files for training "
                                 "(img2dataset), or with --online every matched pair and the entry probabilities")
    _add_common(export)
    _add_root_option(export, "the output root to export from (local, s3://, s3a://, gs://)")
    export.add_argument("--to", required=True, help="directory to write (replaced whole; local, s3://, gs://); "
                        "refused if it holds anything but an earlier export's own files; one export at a time")
    export.add_argument("--format", choices=("parquet", "jsonl"), help="file format (default: export.format)")
    size = export.add_mutually_exclusive_group()
    size.add_argument("--rows-per-file", type=int, help="about this many rows per file (default: export.rows_per_file)")
    size.add_argument("--files", type=int, help="this many files (some may be empty and are not written)")
    export.add_argument("--shuffle-seed", type=int, help="seed of the file placement, row order and text pick "
                        "(default: export.shuffle_seed)")
    export.add_argument("--one-text-per-image", action="store_true",
                        help="one text per image (uuid), chosen by a seeded hash: each image is downloaded once")
    export.add_argument("--with-entries", action="store_true",
                        help="an `entries` column: the matched entry names as a JSON array string")
    export.add_argument("--columns", help="comma-separated columns to write, in order (default: url, text, uuid, "
                        "keep_prob, crawl, lang, those the root has)")
    export.add_argument("--online", action="store_true", help="every matched pair with its entry_ids, and "
                        "entry_probabilities.parquet for a data loader's per-epoch draws (metaclip_spark.export.online)")
    export.add_argument("--t", help="with --online: t of the probability table, an integer or 'auto' "
                        "(default: the root's last run's)")

    explain = commands.add_parser("explain", help="show how one caption is spaced and which entries it matches")
    _add_metadata(explain)
    explain.add_argument("--lang", help="worldwide: the metadata language to match in (default: lid.176's, mapped)")
    explain.add_argument("--kana-no-space", choices=("true", "false"), default="false",
                         help="worldwide: kana as a no-space script at entry edges too (default false: the reference's "
                              "ranges, as worldwide.kana_no_space)")
    explain.add_argument("text", help="the caption")

    from metaclip_spark.metadata.build import add_build_arguments

    build = commands.add_parser("build-metadata", help="build the metadata: numbers, WordNet, Wikipedia, pageviews")
    _add_common(build), add_build_arguments(build)

    info = commands.add_parser("metadata-info", help="size and validation report of a metadata file (or set)")
    info.add_argument("--metadata", help=_METADATA_HELP)
    for command in commands.choices.values():
        _add_console(command)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    overrides: dict = {"input": {}, "curation": {}, "metadata": {}}
    if getattr(args, "metadata", None):
        overrides["metadata"]["path"] = args.metadata
    if getattr(args, "url_column", None):
        overrides["input"]["url_column"] = args.url_column
    if getattr(args, "text_column", None):
        overrides["input"]["text_column"] = args.text_column
    # export's --t is its online table's threshold, not the curation's
    if getattr(args, "t", None) is not None and getattr(args, "command", None) != "export":
        overrides["curation"]["t"] = args.t
    if getattr(args, "tail_share", None) is not None:
        overrides["curation"]["tail_share"] = args.tail_share
    if getattr(args, "seed", None) is not None:
        overrides["curation"]["seed"] = args.seed
    export = {key: getattr(args, key) for key in ("format", "rows_per_file", "shuffle_seed")
              if getattr(args, key, None) is not None}
    if export:
        overrides["export"] = export
    return overrides


# Handlers: one per command, called as handler(args, **what its Command needs) -----------------------------------

def _curate(args: argparse.Namespace, config: Settings, metadata: Metadata, spark: SparkSession) -> int:
    from metaclip_spark import pipeline

    summary = pipeline.curate(spark, config, _source(args, config, spark), metadata, args.output,
                              crawls=_crawls(args), overwrite=args.overwrite, force=args.force,
                              rematch=args.rematch, fail_fast=args.fail_fast, report=args.report,
                              dedup=args.dedup, rebuild_dedup=args.rebuild_dedup, robots=args.robots)
    _print_summary(summary, args.output)
    return 0


def _check_curate(args: argparse.Namespace) -> None:
    from metaclip_spark.errors import ConfigError

    if args.overwrite and not args.input:
        raise ConfigError(f"--overwrite replaces {args.output} with what --input brings, and there is no --input: "
                          "nothing was changed (to recount, rebalance or report the root, leave out --overwrite)")


def _extract(args: argparse.Namespace, config: Settings, spark: SparkSession) -> int:
    from metaclip_spark.extraction.job import run_extract
    from metaclip_spark.pipeline import check_failed_share

    record = run_extract(spark, config, args.manifest, args.input_base, args.output, args.crawl, args.fail_fast)
    print(
        f"Extracted {record['pairs_written']:,} pairs ({record['dropped_duplicate']:,} duplicates dropped) from "
        f"{record['html_pages'] + record['wat_pages']:,} pages in {record['files_ok']:,} of {record['files_listed']:,} "
        f"files ({record['files_failed']:,} failed). Pairs: {args.output.rstrip('/')}/pairs; "
        f"counters: {args.output.rstrip('/')}/extract.json."
    )
    # After writing and printing, as `match` does: the pairs of the files that were read are kept either way.
    check_failed_share(config, record, kept=f"the pairs of the other files are in {args.output.rstrip('/')}/pairs")
    return 0


def _match(args: argparse.Namespace, config: Settings, metadata: Metadata, spark: SparkSession) -> int:
    from metaclip_spark.ingestion.ingest import ingest
    from metaclip_spark.pipeline import check_failed_share
    from metaclip_spark.root.layout import OutputRoot

    source = _source(args, config, spark)
    ingested = ingest(spark, config, OutputRoot(spark, args.output), source, metadata, force=args.force,
                      rematch=args.rematch, fail_fast=args.fail_fast, dedup=args.dedup,
                      rebuild_dedup=args.rebuild_dedup)
    print(json.dumps(ingested))
    check_failed_share(config, ingested)  # after printing: the counters of a failed run are still worth seeing
    return 0


def _count(args: argparse.Namespace, metadata: Metadata, spark: SparkSession) -> int:
    from metaclip_spark.pipeline import pool_crawls, run_count
    from metaclip_spark.root.layout import OutputRoot

    root = OutputRoot(spark, args.output)
    run_count(spark, root, metadata, pool_crawls(root, metadata, _crawls(args)))
    return 0


def _balance(args: argparse.Namespace, config: Settings, metadata: Metadata, spark: SparkSession,
             started: float) -> int:
    from metaclip_spark.pipeline import pool_crawls, run_balance
    from metaclip_spark.root.layout import OutputRoot

    root = OutputRoot(spark, args.output)
    summary = run_balance(spark, config, root, metadata, pool_crawls(root, metadata, _crawls(args)),
                          started=started)
    _print_summary(summary, args.output)
    return 0


def _status(args: argparse.Namespace, config: Settings) -> int:
    from metaclip_spark.errors import ConfigError
    from metaclip_spark.root.layout import RootReader
    from metaclip_spark.report.status import format_status, root_status

    if args.output and args.root:
        raise ConfigError(f"status: the root given twice ({args.root} and --root {args.output}): give --root only")
    if not args.output and not args.root:
        raise ConfigError("status needs the output root: status --root ROOT")
    if args.root:
        log.warning("note: `status ROOT` is now `status --root ROOT` (the old spelling still works)")
    status = root_status(RootReader.at(args.output or args.root, config.remote))  # no Spark
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def _crawl_index(args: argparse.Namespace, config: Settings) -> int:
    from metaclip_spark.ingestion.crawl_index import crawls_listing, format_crawls

    listing = crawls_listing(config, args.output)
    print(json.dumps(listing, indent=2) if args.json else format_crawls(listing))
    return 0


def _plan(args: argparse.Namespace, config: Settings) -> int:
    from metaclip_spark.report.plan import format_languages_plan, format_plan, languages_plan, parse_thresholds, run_plan

    if args.plan_lang is None and not args.t_list and _crawls(args) is None \
            and (languages := languages_plan(config, args.output)):
        print(json.dumps(languages, indent=2) if args.json else format_languages_plan(languages))
        return 0
    requested = parse_thresholds(args.t_list) if args.t_list else None
    plan = run_plan(config, args.output, _crawls(args), requested, counts_only=args.counts_only, master=args.master,
                    language=args.plan_lang)
    print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
    return 0


def _report(args: argparse.Namespace, spark: SparkSession) -> int:
    from metaclip_spark.report.build import write_report

    write_report(spark, args.output)
    print(f"Report: {args.output.rstrip('/')}/report/index.html (numbers in report/summary.json)")
    return 0


def _export(args: argparse.Namespace, config: Settings, spark: SparkSession) -> int:
    from metaclip_spark.config import parse_threshold
    from metaclip_spark.export.files import ExportSpec, run_export
    from metaclip_spark.storage import is_local
    from metaclip_spark.root.tables import check_output_directory

    if is_local(args.to):
        check_output_directory(spark, args.to)  # a read-only place stops now (exit 2), not after the work
    columns = tuple(c.strip() for c in args.columns.split(",") if c.strip()) if args.columns is not None else None
    spec = ExportSpec(root=args.output, to=args.to, format=config.export.format,
                      rows_per_file=config.export.rows_per_file, files=args.files,
                      shuffle_seed=config.export.shuffle_seed, one_text_per_image=args.one_text_per_image,
                      with_entries=args.with_entries, columns=columns, online=args.online,
                      t=parse_threshold(args.t) if args.t is not None else None)
    record = run_export(spark, config, spec)
    where = f"{args.to.rstrip('/')}/{'pairs/' if args.online else ''}"
    print(f"Exported {record['rows']:,} {'matched' if args.online else 'curated'} pairs of {record['images']:,} images "
          f"(of {record['rows_in_source']:,} in {record['source']}/, run {record['run_id']}) to {where} as "
          f"{record['files']:,} {record['format']} files, {record['bytes']:,} bytes"
          + (f"; expected pairs per epoch {record['expected_rows_per_epoch']:,.1f}, probabilities of "
             f"{record['entries_in_table']:,} entries in {args.to.rstrip('/')}/entry_probabilities.parquet"
             if args.online else "")
          + f". Counts: {args.to.rstrip('/')}/_EXPORT.json.")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from metaclip_spark.errors import ConfigError
    from metaclip_spark.matching.substrings import EntryMatcher, prepared_text
    from metaclip_spark.metadata.lists import Metadata

    metadata = Metadata(args.metadata, kana=args.kana_no_space == "true")  # explain has no profile or --conf
    entries = metadata.entries
    if metadata.worldwide:
        from metaclip_spark.matching.lang_codes import list_code, metadata_code
        from metaclip_spark.extraction.language import identify_language

        label, score = identify_language(args.text)
        code = list_code(args.lang) if args.lang else metadata_code(label)
        told = "--lang" if args.lang else f"lid.176 says {label!r} ({score:.2f})"
        if code not in metadata.lists:
            raise ConfigError(f"no list for language {code!r} ({told}) in {metadata.path}; it has: "
                              f"{', '.join(metadata.languages)}")
        print(f"language: {code} ({told})")
        entries = metadata.lists[code]
    print(f"spaced: {prepared_text(args.text, metadata.worldwide)!r}")
    ids = EntryMatcher(entries, worldwide=metadata.worldwide, kana=metadata.kana).match(args.text)
    print(f"matched {len(ids)} of {len(entries):,} entries")
    for entry_id in ids:
        print(f"  {entry_id:>8}  {entries[entry_id]!r}")
    return 0


def _build_metadata(args: argparse.Namespace, config: Settings) -> int:
    from metaclip_spark.metadata.build import run_build_command

    return run_build_command(args, config)  # starts Spark itself, and only to read Wikipedia or pageview files


def _metadata_info(args: argparse.Namespace) -> int:
    from metaclip_spark.metadata.lists import Metadata, default_metadata_path, format_validation, metadata_digest, validate_entries

    metadata = Metadata(args.metadata)
    if not metadata.worldwide:
        entries = metadata.entries
        print(f"metadata: {args.metadata or default_metadata_path()} (sha256 of entries {metadata_digest(entries)[:16]})")
        print(format_validation(validate_entries(entries)))
        return 0
    print(f"metadata set: {metadata.path}: {len(metadata.lists)} languages, {metadata.entries_total:,} entries "
          f"(digest {metadata.digest[:16]})")
    for code in metadata.languages:
        report = validate_entries(metadata.lists[code], worldwide=True)
        print(f"[{code}] " + format_validation(report))
        if report["pure_punctuation"]:
            shown = ", ".join(repr(e) for _, e in report["examples"]["pure_punctuation"])
            print(f"warning: {code}.json holds {report['pure_punctuation']:,} entries made only of punctuation "
                  f"(e.g. {shown}): MetaCLIP 2's builder drops them, and each matches any {code} text holding it; "
                  "rebuild the list or remove them", file=sys.stderr)
    return 0


# What handlers share --------------------------------------------------------------------------------------------

def _crawls(args: argparse.Namespace) -> list[str] | None:
    """--crawls as a list; None (every crawl of the root) when not given."""
    from metaclip_spark.errors import ConfigError

    if getattr(args, "crawls", None) is None:
        return None
    crawls = [c.strip() for c in args.crawls.split(",") if c.strip()]
    if not crawls:  # an empty list must not fall back to "every crawl": the user meant to choose some
        raise ConfigError(f"--crawls {args.crawls!r} names no crawl: give comma-separated crawl names, or leave "
                          "--crawls out to use every crawl of the root")
    return crawls


def _source(args: argparse.Namespace, config: Settings, spark: SparkSession) -> InputSpec | None:
    """The --input to ingest, its format inferred when not given; None when there is no --input."""
    from metaclip_spark.ingestion.ingest import InputSpec, infer_input_format

    if not args.input:
        return None
    input_format = args.input_format or infer_input_format(spark, args.input, config)
    return InputSpec(args.input, input_format, args.input_base, args.crawl)


def _resolve_common_crawl(args: argparse.Namespace, config: Settings) -> int | None:
    """curate --common-crawl: the dump's listing as --input (ingestion/crawl_index.py), or 0 when there is nothing new."""
    from metaclip_spark.ingestion.crawl_index import resolve_curate_input

    return resolve_curate_input(args, config)


def _print_summary(written: dict, output: str) -> None:
    from metaclip_spark.root.records import RunSummary

    summary = RunSummary.from_json(written)  # the summary as the run wrote it
    if summary.worldwide:
        by_lang = summary.by_lang
        print(
            f"Curated {summary.pairs_curated:,} of {summary.pairs_in:,} pairs in "
            f"{sum(1 for v in by_lang.values() if v.pairs)} languages "
            f"({summary.pairs_matched:,} matched at least one of {summary.entries_total:,} entries). "
            f"t per language ({summary.t_mode} for English, the others derived from its tail share "
            f"{summary.english_tail_share:.3f}): "
            + ", ".join(f"{code} {v.t:,}" for code, v in by_lang.items() if v.pairs)
            + (f" ({sum(not v.pairs for v in by_lang.values())} languages with no pairs not shown)"
               if not all(v.pairs for v in by_lang.values()) else "")
            + f"; seed {summary.seed}. Pairs in languages without a list (`other`: no language, or none with a "
            f"Wikipedia code): {sum(summary.pairs_without_list.values()):,}"
            + (f", with no language: {summary.pairs_unknown_lang:,}" if summary.pairs_unknown_lang else "")
            + ". "
            f"Tables: {output}/matched, {output}/counts, {output}/curated; summary: {output}/summary.json."
        )
    else:
        print(
            f"Curated {summary.pairs_curated:,} of {summary.pairs_in:,} pairs "
            f"({summary.pairs_matched:,} matched at least one of {summary.entries_total:,} entries; "
            f"{summary.entries_matched:,} entries matched). Threshold t = {summary.t:,} ({summary.t_mode}): "
            f"{summary.entries_over_t:,} entries were over t and were sampled down, seed {summary.seed}. "
            f"Tables: {output}/matched, {output}/counts, {output}/curated; summary: {output}/summary.json."
        )
    for warning in summary.warnings:
        log.warning("warning: %s", warning)


# The command table ----------------------------------------------------------------------------------------------

NEEDS = ("config", "metadata", "spark", "started")


@dataclass(frozen=True)
class Command:
    """How `main` runs one subcommand: handler(args, **needs), each need prepared by `main` first.

    config    the profile, --conf and the options laid over them (`_overrides`)
    metadata  the run's Metadata, from the config's metadata.path; loaded before Spark starts
    spark     a session from `owned_session`, stopped when the handler returns unless it was already running
    started   time.monotonic() before any of the above, for elapsed times that include the start-up
    """

    handler: Callable[..., int]
    needs: tuple[str, ...] = ()
    writes_root: bool = False  # holds the --root root's lease (root/lease.py) while it runs
    writes_output: bool = False  # writes into extract's --output (checked to be a directory it can write before any work)
    creates_root: bool = False  # may make --root a new root (a directory that does not exist or is empty)
    check: Callable[[argparse.Namespace], None] | None = None  # options checked before anything starts
    # after the config, before the metadata and Spark: may fill in options, or end the command with an exit code
    resolve: Callable[[argparse.Namespace, Settings], int | None] | None = None

    def __post_init__(self):
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"unknown needs {sorted(unknown)} of {self.handler.__name__}: choose from {NEEDS}")


COMMANDS: dict[str, Command] = {
    "curate": Command(_curate, ("config", "metadata", "spark"), writes_root=True, creates_root=True,
                      check=_check_curate, resolve=_resolve_common_crawl),
    "extract": Command(_extract, ("config", "spark"), writes_output=True),
    "match": Command(_match, ("config", "metadata", "spark"), writes_root=True, creates_root=True),
    "count": Command(_count, ("metadata", "spark"), writes_root=True),
    "balance": Command(_balance, ("config", "metadata", "spark", "started"), writes_root=True),
    "status": Command(_status, ("config",)),
    "crawls": Command(_crawl_index, ("config",)),
    "plan": Command(_plan, ("config",)),  # starts Spark itself, unless --counts-only
    "report": Command(_report, ("spark",), writes_root=True),
    "export": Command(_export, ("config", "spark")),  # reads the root, writes --to: no lease (a rerun is checked)
    "explain": Command(_explain),
    "build-metadata": Command(_build_metadata, ("config",)),
    "metadata-info": Command(_metadata_info),
}


def _check_inputs(name: str, args: argparse.Namespace, config: Settings) -> None:
    """The checks of --input (--manifest) that need no Spark (ingestion/input_checks.py); the format told is kept, so Spark
    is not asked again."""
    from metaclip_spark.ingestion import input_checks

    if name == "extract":
        input_checks.check_manifest(args.manifest, config, args.crawl)
    elif getattr(args, "input", None):
        args.input_format = input_checks.check_input(args.input, args.input_format, config, args.crawl)


# Commands that read a root a run made: whether it is one is answered from its records, before Spark starts.
_READS_ROOT = {"count": False, "balance": False, "report": True, "export": True}  # command: needs a finished run


def _check_root(name: str, args: argparse.Namespace, config: Settings) -> None:
    """A root that is missing, not a root, or (report, export) holds no finished run: exit 3 before Spark starts.
    Local roots, and export's wherever they are (export reads records through fsspec anyway); others are left to
    the command's own checks."""
    from metaclip_spark.storage import is_local

    if name not in _READS_ROOT or not (is_local(args.output) or name == "export"):
        return
    import os

    from metaclip_spark.errors import ConfigError, InputError
    from metaclip_spark.root.layout import RootReader
    from metaclip_spark.storage import local_path

    if is_local(args.output):  # a file in the way: exit 2, as tables.check_output_directory says it
        existing = os.path.abspath(local_path(args.output))
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if os.path.isfile(existing):
            raise ConfigError(f"--output {args.output} is a file, not a directory"
                              if existing == os.path.abspath(local_path(args.output))
                              else f"--output {args.output}: {existing} is a file, not a directory")
    root = RootReader.at(args.output, config.remote)
    root.check_exists()
    # a killed switch, or a killed swap of an --overwrite's replacement: the command finishes it (cli._run)
    ready = root.unfinished_switch() is not None
    # whether a run finished, not what it holds: a folder that is no root is refused by its marker, later (exit 2)
    finished = root.files.exists(root.path("summary.json"))
    if _READS_ROOT[name] and not finished and not ready:  # export says 75 (busy) itself
        raise InputError(f"{root.root} holds no finished curation run (summary.json); run `curate` first")


def _run(name: str, args: argparse.Namespace) -> int:
    """Prepare what the command needs, in this order (each step may stop the run), then call its handler."""
    command = COMMANDS[name]
    if command.check is not None:
        command.check(args)
    prepared: dict = {"started": time.monotonic()}
    if {"config", "metadata", "spark"} & set(command.needs):  # metadata's path and Spark's settings are config
        from metaclip_spark.config import load_config

        prepared["config"] = load_config(args.profile, args.conf_file, _overrides(args))
        if command.resolve and (code := command.resolve(args, prepared["config"])) is not None:
            return code
    if "metadata" in command.needs:
        from metaclip_spark.metadata.lists import Metadata

        prepared["metadata"] = Metadata.from_config(prepared["config"])  # a bad file: no Spark start-up
    if "config" in prepared:  # before Spark and the root: a bad input or root costs a second
        _check_inputs(name, args, prepared["config"])
        _check_root(name, args, prepared["config"])
    if "spark" not in command.needs:
        return command.handler(args, **{need: prepared[need] for need in command.needs})
    from metaclip_spark.session import owned_session

    with owned_session(prepared["config"], f"metaclip-spark {name}", args.master) as spark:
        prepared["spark"] = spark
        if command.writes_root or command.writes_output:
            from metaclip_spark.root.tables import check_output_directory

            check_output_directory(spark, args.output)
        if not command.writes_root:
            return command.handler(args, **{need: prepared[need] for need in command.needs})
        from metaclip_spark.root.lease import root_lease
        from metaclip_spark.root.layout import OutputRoot, claim_root, remove_created_directory, unclaim_root

        # Nothing, not even the lease, is written to --output before it is known to be a root or empty.
        created = claim_root(spark, args.output, create=command.creates_root)
        try:
            with root_lease(spark, args.output, prepared["config"].root, name, prepared["config"].remote):
                try:
                    root = OutputRoot(spark, args.output)
                    # what a run killed while switching its outputs, or swapping in its --overwrite, left
                    root.finish_replacement(keep_unfinished=bool(getattr(args, "overwrite", False)))
                    root.finish_switch()
                    return command.handler(args, **{need: prepared[need] for need in command.needs})
                finally:
                    unclaim_root(spark, args.output, created)
        finally:
            remove_created_directory(spark, args.output, created)


INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


def _was_interrupted() -> bool:
    session = sys.modules.get("metaclip_spark.session")  # imported only by commands that start Spark
    return bool(session and session.interrupted())


def _interrupted(command: str) -> int:
    """Ctrl-C: one line, no traceback (committed units are kept: the same command resumes)."""
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    print(f"metaclip-spark {command}: interrupted: rerun the same command to resume", file=sys.stderr)
    return INTERRUPTED_EXIT_CODE


def main(argv: list[str] | None = None) -> int:
    from metaclip_spark import progress

    args = build_parser().parse_args(argv)
    progress.configure(args.progress, args.log_level, args.quiet)
    for note in getattr(args, "deprecated", []):
        log.warning("note: %s", note)
    try:
        return _run(args.command, args)
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except CurationError as e:
        print(f"metaclip-spark {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - a crash must still exit with a code a scheduler can tell from bad input
        if _was_interrupted():  # the cancelled job's own error, raised before the KeyboardInterrupt
            return _interrupted(args.command)
        if is_out_of_space(e):
            print(f"metaclip-spark {args.command}: error: no space left on the device (of the root, --output or "
                  "Spark's local directories); free some and run the same command again: committed work is kept", file=sys.stderr)
            return NoSpaceError.exit_code
        traceback.print_exc()
        print(f"metaclip-spark {args.command}: internal error (see the traceback above)", file=sys.stderr)
        return INTERNAL_ERROR_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
