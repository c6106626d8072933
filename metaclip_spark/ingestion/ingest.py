"""Ingestion into an output root: new input files are extracted and matched in committed units, then each
touched crawl's tables are rebuilt from its units (in name order; by default without the pairs other crawls
brought first, ingestion/pair_keys.py). Files already done are skipped; a killed run loses at most its unfinished unit, and
the next run redoes exactly that.
"""

from __future__ import annotations

import json
import logging
import uuid as uuidlib
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from metaclip_spark import progress
from metaclip_spark.optout import captures as robots_captures
from metaclip_spark.optout import tables as optout_tables
from metaclip_spark.ingestion import pair_keys
from metaclip_spark.ingestion import sources
from metaclip_spark.config import Settings
from metaclip_spark.balancing.counts import count_entries, pairs_per_list
from metaclip_spark.matching.spark import match_pool, with_metadata_lang
from metaclip_spark.root.columns import PAIRS_BY_COLUMNS, pairs_by_group
from metaclip_spark.errors import ConfigError, InputError
from metaclip_spark.ingestion.dedup import deduplicated_columns, stripped_texts
from metaclip_spark.extraction.job import extract_files, file_record, job_for, sum_file_counters
from metaclip_spark.ingestion.manifest import ManifestFile, manifest_format, read_manifest, read_manifest_text
from metaclip_spark.optout.signals import SIGNALS_COLUMN, Policy
from metaclip_spark.ingestion.pool import SKIPPED, UUID_COMPUTED, infer_pool_format, input_read_errors, pairs_of, read_pool, read_pool_rows
from metaclip_spark.progress import stage
from metaclip_spark.root.layout import OutputRoot, check_crawl_name, now, unit_id
from metaclip_spark.root.records import (FILE_OK, FILE_PENDING, KIND_EXTRACT, KIND_POOL, SKIP_REASONS, CrawlState, is_done,
                      sum_counters, tally_files)
from metaclip_spark.root.tables import delete_path, read_table, write_parquet_atomically

log = logging.getLogger("metaclip_spark")

DEFAULT_POOL_CRAWL = "pool"


@dataclass(frozen=True)
class InputSpec:
    """What to ingest: a pool of pairs (parquet/jsonl) or a manifest of WARC/WAT files."""

    path: str
    format: str
    input_base: str | None = None
    crawl: str | None = None

    @property
    def is_manifest(self) -> bool:
        return sources.source(self.format).is_listing


def infer_input_format(spark: SparkSession, path: str, config: Settings) -> str:
    """The format of an input given without --input-format: a listing's (WARC or WAT, from the names it lists),
    else a pool's (from its name or its files' names)."""
    if sources.format_of_name(path, sources.EXTRACT):
        return manifest_format(read_manifest_text(path, config.remote))
    return infer_pool_format(spark, path)


def _work_files(source: InputSpec, config: Settings) -> list[ManifestFile]:
    if not source.is_manifest:
        crawl = check_crawl_name(source.crawl or DEFAULT_POOL_CRAWL)
        return [ManifestFile(0, source.path, source.path, crawl)]
    files = read_manifest(source.path, source.input_base, source.crawl, config.remote)
    for f in files:
        if not f.crawl:
            raise ConfigError(f"cannot tell the crawl of {f.source_file} (no CC-MAIN-YYYY-WW in its path): pass --crawl")
        check_crawl_name(f.crawl)
    return files


def check_input(spark: SparkSession, config: Settings, source: InputSpec) -> None:
    """Fail now (exit 3) if the input cannot be read: a listing is read, a pool's schema and columns checked."""
    if source.is_manifest:
        _work_files(source, config)
    else:
        with input_read_errors(source.path):
            read_pool(spark, source.path, source.format, config)


def input_crawls(source: InputSpec, config: Settings) -> list[str]:
    """The crawls an input brings: its --crawl, or "pool" for a pool (no I/O); else those of the listing's paths."""
    if source.crawl or not source.is_manifest:
        return [check_crawl_name(source.crawl or DEFAULT_POOL_CRAWL)]
    return sorted({f.crawl for f in _work_files(source, config)})


def _units_of(files: list[ManifestFile], files_per_unit: int) -> list[tuple[str, list[ManifestFile]]]:
    """Pending files grouped per crawl, in listing order, `files_per_unit` at a time."""
    by_crawl: dict[str, list[ManifestFile]] = {}
    for f in files:
        by_crawl.setdefault(f.crawl, []).append(f)
    return [(crawl, group[i:i + files_per_unit]) for crawl, group in by_crawl.items()
            for i in range(0, len(group), files_per_unit)]


def _columns(source_is_listing: bool, config: Settings, worldwide: bool = False) -> dict:
    """The url/text columns of the pairs a unit holds (and, for a worldwide pool, its language column): recorded,
    so later stages never need the options again."""
    if source_is_listing:
        return {"url": "url", "text": "text"}
    columns = {"url": config.input.url_column, "text": config.input.text_column}
    return dict(columns, lang=config.input.lang_column) if worldwide else columns


def _languages_known(pairs: DataFrame, columns: dict, metadata) -> DataFrame:
    """Worldwide: the pairs with the metadata language each text is matched in (v1: as they are)."""
    if metadata.list_column is None or metadata.list_column in pairs.columns:
        return pairs
    return with_metadata_lang(pairs, columns.get("lang"), columns["text"])


def _match_unit(spark: SparkSession, root: OutputRoot, marker: dict, pool: DataFrame, metadata) -> int:
    matched_path = root.unit_path(marker["crawl"], marker["unit"], "matched")
    pool = _languages_known(pool, marker["columns"], metadata)
    matched = match_pool(pool, metadata, marker["columns"]["text"])
    if marker["kind"] == KIND_POOL and marker.get("texts_stripped"):
        # Pool mode: in the order a de-duplication writes, so the crawl can take the table as it is (_takes_unit).
        matched = matched.select(*deduplicated_columns(matched.columns, marker["columns"]["text"]))
    write_parquet_atomically(matched, matched_path)
    return read_table(spark, matched_path).count()


def _extract_languages(config: Settings, metadata) -> tuple[str, ...]:
    """The languages extraction keeps: every one in a worldwide run, extract.languages in a v1 run."""
    return () if metadata.worldwide else tuple(config.extract.languages)


def _unit_pool(spark: SparkSession, root: OutputRoot, marker: dict, config: Settings) -> DataFrame:
    if marker["kind"] == KIND_POOL:
        columns = marker["columns"]
        config = config.updated({"input": {"url_column": columns["url"], "text_column": columns["text"],
                                           **({"lang_column": columns["lang"]} if "lang" in columns else {})}})
        pool = read_pool(spark, marker["files"][0]["location"], marker["format"], config)
        return stripped_texts(pool, columns["text"]) if marker.get("texts_stripped") else pool
    return read_table(spark, root.unit_path(marker["crawl"], marker["unit"], "pairs"))


def _run_unit(spark, root: OutputRoot, config: Settings, source: InputSpec, crawl: str, files: list[ManifestFile],
              metadata, fail_fast: bool, dedup: pair_keys.Dedup) -> dict:
    marker = {"crawl": crawl, "unit": unit_id(crawl, [f.source_file for f in files]),
              "kind": KIND_EXTRACT if source.is_manifest else KIND_POOL, "format": source.format,
              "columns": _columns(source.is_manifest, config, metadata.worldwide), "metadata_digest": metadata.digest}
    with stage(spark, "unit", f"{crawl} unit {marker['unit']}: {len(files)} file(s)") as run:
        if source.is_manifest:
            pairs_path = root.unit_path(crawl, marker["unit"], "pairs")
            languages = _extract_languages(config, metadata)
            marker["languages"] = list(languages)  # what the unit's pairs hold: [] is every language
            job = job_for(spark, config.updated({"extract": {"languages": list(languages)}}))
            file_rows = extract_files(spark, files, job, fail_fast, pairs_path, keep_order=True)
            pool = read_table(spark, pairs_path)
            marker["files"] = [file_record(r) for r in sorted(file_rows, key=lambda r: r["source_file"])]
            marker["optout_signals"] = True  # its pairs carry their pages' opt-out signals
            marker["pairs"] = pool.count()
            marker["pairs_matched"] = _match_unit(spark, root, marker, pool, metadata)
        else:
            marker["texts_stripped"] = dedup.pool  # a pool's texts, stripped as the reference does (pool mode)
            with input_read_errors(source.path):  # a file Spark cannot read fails here, at the first action on it
                rows = read_pool_rows(spark, source.path, source.format, config)
                rows = stripped_texts(rows, marker["columns"]["text"]) if marker["texts_stripped"] else rows
                rows = _languages_known(rows, marker["columns"], metadata)
                # One aggregation counts the pairs, their groups and the rows that are not pairs, by reason: the
                # skipped rows are recorded in the marker (and the crawl's state), never dropped unseen.
                marker["pairs"], marker["pairs_by"], skipped = pairs_by_group(rows, SKIPPED, UUID_COMPUTED)
                marker["skipped"] = {reason: skipped.get(reason, 0) for reason in SKIP_REASONS}
                marker["uuid_computed"] = skipped.get(UUID_COMPUTED, 0)
                if marker["uuid_computed"]:
                    log.warning("ingest: %s: %d pairs with a null or empty uuid were given the uuid of their url",
                                source.path, marker["uuid_computed"])
                if not marker["pairs"]:
                    raise InputError(f"input {source.path} holds no pairs{_skipped_text(marker['skipped'], ': ')}")
                if any(marker["skipped"].values()):
                    log.warning("ingest: %s%s", source.path, _skipped_text(marker["skipped"], ": "))
                marker["files"] = [{"file": source.path, "location": source.path, "status": FILE_OK, "reason": None}]
                marker["pairs_matched"] = _match_unit(spark, root, marker, pairs_of(rows), metadata)
        marker["committed_at"] = now()
        root.commit_unit(marker)  # the unit becomes visible only now
        run.rows = marker["pairs"]
    return marker


def _skipped_text(skipped: dict[str, int], prefix: str = "") -> str:
    """`skipped` as words ("3 rows skipped (malformed_line 2, null_url 1)"), or "" when none was."""
    if not any(skipped.values()):
        return ""
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in skipped.items() if n)
    return f"{prefix}{sum(skipped.values()):,} rows skipped ({reasons})"


def _summed_skips(units: list[dict]) -> dict[str, int] | None:
    """The units' skipped rows summed; None for Common Crawl units or units committed before they were counted."""
    if any("skipped" not in u for u in units):
        return None
    return {reason: 0 for reason in SKIP_REASONS} | sum_counters(u["skipped"] for u in units)


def _check_rematch_languages(units: list[dict], config: Settings, metadata) -> None:
    """Units whose pairs were extracted keeping fewer languages than this run needs cannot simply be matched
    again: their other languages were never kept (a v1 root is English only)."""
    wanted = set(_extract_languages(config, metadata))
    for marker in units:
        if marker["kind"] != KIND_EXTRACT:
            continue
        kept = set(marker.get("languages", ["en"]))  # units committed before this was recorded were v1 (English)
        if kept != wanted:
            raise ConfigError(
                f"crawl {marker['crawl']} in this root was extracted keeping "
                f"{'only ' + ', '.join(sorted(kept)) if kept else 'every language of its'} texts; "
                f"{'a worldwide run needs every language' if not wanted else 'this run needs ' + ', '.join(sorted(wanted))}"
                ": extract its files again with --force (or use another --root)")


def _rematch(spark, root: OutputRoot, units: list[dict], metadata, config: Settings, dedup: pair_keys.Dedup) -> None:
    _check_rematch_languages(units, config, metadata)
    for marker in units:
        with stage(spark, "rematch", f"{marker['crawl']} unit {marker['unit']}") as run:
            columns = marker.get("columns") or _columns(marker["kind"] == KIND_EXTRACT, config)
            if metadata.worldwide and marker["kind"] == KIND_POOL and "lang" not in columns:
                columns = dict(columns, lang=config.input.lang_column)
            marker = dict(marker, metadata_digest=metadata.digest, columns=columns)
            if marker["kind"] == KIND_POOL:
                marker["texts_stripped"] = dedup.pool
            marker["pairs_matched"] = _match_unit(spark, root, marker, _unit_pool(spark, root, marker, config),
                                                  metadata)
            root.commit_unit(dict(marker, committed_at=now()))
            run.rows = marker["pairs"]


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def _crawl_columns(crawl: str, units: list[dict]) -> dict:
    found = {json.dumps(u.get("columns") or {"url": "url", "text": "text"}, sort_keys=True) for u in units}
    if len(found) > 1:
        raise ConfigError(f"crawl {crawl} holds pools with different url/text columns ({' and '.join(sorted(found))});"
                          " give each its own --crawl")
    return json.loads(found.pop())


def _summed_groups(parts: list[dict | None]) -> dict | None:
    """Pairs per group value summed over units; None when a unit did not record them (a root made before)."""
    if any(p is None for p in parts):
        return None
    total: dict[str, dict[str, int]] = {}
    for part in parts:
        for column, values in part.items():
            for value, n in values.items():
                total.setdefault(column, {})[value] = total.setdefault(column, {}).get(value, 0) + n
    return {c: v for c, v in total.items() if all(c in p for p in parts)}


def _finalize_crawl(spark, root: OutputRoot, crawl: str, units: list[dict], metadata, config: Settings,
                    dedup: pair_keys.Dedup) -> dict:
    """Rebuild a crawl's pairs/, matched/ and crawl_counts/ from its committed units (pool mode: without the pairs
    other crawls own, and its pair keys), then its state file."""
    kinds = {u["kind"] for u in units}
    if len(kinds) > 1:
        raise ConfigError(f"crawl {crawl} mixes Common Crawl files and pools of pairs; give the pool another --crawl")
    columns = _crawl_columns(crawl, units)
    policy = Policy.from_settings(config.optout)
    extract = kinds == {KIND_EXTRACT}
    unit_pairs = _union([read_table(spark, root.unit_path(crawl, u["unit"], "pairs")) for u in units]) \
        if extract else None
    # robots.txt captures of the root and blocked domains judge Common Crawl pairs (optout/tables.py's SiteJudge)
    hosts = robots_captures.hosts(spark, root) if extract else None
    with stage(spark, "crawl", f"{crawl}: {len(units)} unit(s)") as run, \
            pair_keys.CrawlOwnership(spark, root, crawl, dedup, columns["text"], _unit_rows(units),
                                     config.root.pair_key_bucket_min_pairs) as owner, \
            optout_tables.SiteJudge(policy, hosts, unit_pairs) as site:
        matched = _union([read_table(spark, root.unit_matched(u)) for u in units])
        if extract:
            matched = site.kept(matched)  # pairs whose page or site opts out: set apart (see below)
        matched = owner.owned(matched)
        already_in_pool = None  # pairs of the crawl another crawl owns (pool mode)
        pool_rows = None  # pool mode: the rows of a pool crawl's files, before de-duplication
        optout_figures = None
        if kinds == {KIND_EXTRACT}:
            # Duplicates of (uuid, text) across the crawl's files are dropped here, keeping the same row however
            # the crawl's files were grouped into units and runs.
            pairs = unit_pairs
            # Pairs whose page opts out are set apart first (kept in optout/), so that they are neither counted nor
            # curated, and a copy of the pair on a page that does not opt out is the one de-duplication keeps.
            optout_path = root.crawl_table(optout_tables.TABLE, crawl)
            if site.applies:  # judged once (one join), both halves written from it
                pairs, removed_rows = site.split(pairs)
                write_parquet_atomically(removed_rows, optout_path)
                optout_figures = optout_tables.figures(read_table(spark, optout_path), policy)
                if hosts is not None:
                    optout_figures["robots"] = {"hosts_digest": robots_captures.hosts_digest(root),
                                                **optout_tables.host_coverage(unit_pairs, hosts)}
            elif SIGNALS_COLUMN in pairs.columns:  # (units extracted before signals were kept have none)
                write_parquet_atomically(optout_tables.removed(pairs, policy), optout_path)
                optout_figures = optout_tables.figures(read_table(spark, optout_path), policy)
                pairs = optout_tables.kept(pairs, policy)
            else:
                delete_path(spark, optout_path)  # a table of an earlier build does not describe this one
            write_parquet_atomically(owner.owned(pairs, count_candidates=dedup.pool).drop("_seq", "crawl"),
                                     root.crawl_table("pairs", crawl))
            crawl_pairs = _languages_known(read_table(spark, root.crawl_table("pairs", crawl)), columns, metadata)
            pairs_total, pairs_by, _ = pairs_by_group(crawl_pairs)
            if dedup.pool:
                already_in_pool = owner.candidates() - pairs_total
                owner.commit(read_table(spark, root.crawl_table("pairs", crawl)))
        elif dedup.pool:
            # A pool's pairs are not copied into the root: its unique pairs are read from its files, flagged when
            # another crawl owns them, counted in one aggregation, and the keys of the others kept.
            read = Observation(f"rows of {crawl} {uuidlib.uuid4().hex[:8]}")  # names are unique in a session
            rows = _union([_unit_pool(spark, root, u, config) for u in units])
            rows = _flag_columns(rows, columns).observe(read, F.count(F.lit(1)).alias("n"))
            flagged = owner.flagged(rows)
            flagged = flagged.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                pairs_total, pairs_by, copies = pairs_by_group(_languages_known(flagged, columns, metadata),
                                                               pair_keys.IN_POOL)
                already_in_pool = copies.get(pair_keys.ALREADY_IN_POOL, 0)
                pool_rows = int(read.get["n"])
                owner.commit(flagged.where(F.col(pair_keys.IN_POOL).isNull()))
            finally:
                flagged.unpersist()
        else:
            pairs_total, pairs_by = sum(u["pairs"] for u in units), _summed_groups([u.get("pairs_by") for u in units])
        if _takes_unit(spark, root, units, dedup, pairs_total, pool_rows, already_in_pool, columns["text"]):
            root.take_unit_matched(units[0])  # a move: its rows are the crawl's, column for column
        else:
            write_parquet_atomically(matched.drop("_seq", "crawl", SIGNALS_COLUMN), root.crawl_table("matched", crawl),
                                     before_replacing=lambda: root.give_back_unit_matched(crawl, units))
        crawl_matched = read_table(spark, root.crawl_table("matched", crawl))
        write_parquet_atomically(count_entries(crawl_matched, metadata), root.crawl_table("crawl_counts", crawl))
        tally = tally_files(OutputRoot.file_states(units).values())
        extracted = sum_file_counters([dict(f, counters=f.get("counters", {})) for u in units for f in u["files"]])
        if kinds == {KIND_EXTRACT}:  # over the whole crawl (copies of other crawls' pairs are counted apart)
            removed = optout_figures["pairs_removed"] if optout_figures else 0
            extracted["dropped_duplicate"] = extracted["pairs"] - removed - pairs_total - (already_in_pool or 0)
        state: CrawlState = {
            "crawl": crawl, "kind": kinds.pop(), "units": sorted(u["unit"] for u in units),
            "units_digest": OutputRoot.units_digest(units),
            "metadata_digest": metadata.digest, "columns": columns, "pairs": pairs_total, "pairs_by": pairs_by,
            "dedup": dedup.mode, "pairs_already_in_pool": already_in_pool,
            "skipped": _summed_skips(units),
            "uuid_computed": sum(u.get("uuid_computed", 0) for u in units),
            # pairs set apart because their page opts out (before de-duplication), and why; None: no signals kept
            "optout": optout_figures,
            "pairs_matched": crawl_matched.count(),
            # matched pairs per list, when a pool's texts choose theirs (a v1 crawl's state keeps its keys)
            **({"matched_by_lang": pairs_per_list(crawl_matched, metadata)} if metadata.list_column else {}),
            "files_done": tally["files_done"],
            "files_partial": tally["files_partial"],
            "files_failed": tally["files_failed"],
            "extract": extracted,
            "finished_at": now(),
        }
        root.write_crawl_state(crawl, state)
        run.rows = state["pairs"]
    return state


def _carries_signals(units: list[dict]) -> bool:
    """Whether a crawl's pairs carry their pages' opt-out signals (Common Crawl units extracted since they do)."""
    return any(u.get("optout_signals") for u in units)


def optout_stale(state: dict | None, units: list[dict], policy: Policy, robots_digest: str | None = None) -> bool:
    """Whether a Common Crawl crawl was judged under another opt-out policy than `policy`, or other robots.txt
    captures than the root's host table's (`robots_digest`; None: none). Only a crawl something can refuse in (its
    pairs carry signals, the root has captures or blocked domains) or that was judged before can be."""
    if state is None or any(u["kind"] != KIND_EXTRACT for u in units):
        return False
    recorded = state.get("optout") or {}
    if not (_carries_signals(units) or robots_digest or policy.blocked or recorded):
        return False
    return recorded.get("policy") != policy.digest() or (recorded.get("robots") or {}).get("hosts_digest") \
        != robots_digest


def optout_pending(root: OutputRoot, config: Settings) -> bool:
    """Whether a crawl of the root was built under another opt-out policy than the configuration's: `curate` then
    rebuilds it (from its units' stored signals) before counting."""
    policy = Policy.from_settings(config.optout)
    by_crawl: dict[str, list[dict]] = {}
    for u in root.committed_units():
        by_crawl.setdefault(u["crawl"], []).append(u)
    digest = robots_captures.hosts_digest(root)
    return any(optout_stale(root.crawl_state(crawl), units, policy, digest) for crawl, units in by_crawl.items())


def _unit_rows(units: list[dict]) -> int | None:
    """The rows a crawl's rebuild reads (its units' pairs; None when a unit did not record them)."""
    rows = [u.get("pairs") for u in units]
    return None if None in rows else sum(rows)


def _flag_columns(rows: DataFrame, columns: dict) -> DataFrame:
    """The columns of a pool's rows the crawl's flagging pass needs: (uuid, text) alone when the pairs carry no
    column they are counted by (the url and the rest would only travel through its de-duplication shuffle); every
    column otherwise (which duplicate a group value comes from depends on them all)."""
    counted = [c for c in (*PAIRS_BY_COLUMNS, columns.get("lang")) if c and c in rows.columns]
    return rows if counted else rows.select("uuid", columns["text"])


def _takes_unit(spark, root: OutputRoot, units: list[dict], dedup: pair_keys.Dedup, pairs_total: int,
                pool_rows: int | None, already_in_pool: int | None, text_column: str) -> bool:
    """Whether a crawl's matched/ would be a copy of its one unit's, row for row and column for column: a pool's
    (crawl mode: kept as given); in pool mode, when its files hold no duplicate pair (as many unique pairs as rows)
    and no pair another crawl owns, and the unit wrote its columns in the de-duplication's order."""
    if len(units) != 1 or units[0]["kind"] != KIND_POOL:
        return False
    if not dedup.pool:
        return True
    if pool_rows != pairs_total or already_in_pool:
        return False
    columns = read_table(spark, root.unit_matched(units[0])).columns
    return columns == deduplicated_columns(columns, text_column)


def _finalize_crawls(spark, root: OutputRoot, units: list[dict], metadata, config: Settings,
                     dedup: pair_keys.Dedup) -> None:
    """Rebuild every crawl whose tables do not describe its units (new units, another metadata list, a rebuild
    pending), one at a time in name order: in pool mode the first rebuilt keeps a pair several crawls bring. A
    rebuild that leaves a crawl with fewer pairs marks the crawls that dropped copies for a rebuild too (the loop
    takes them next)."""
    by_crawl: dict[str, list[dict]] = {}
    for u in units:
        by_crawl.setdefault(u["crawl"], []).append(u)
    pair_keys.retire_orphans(spark, root, dedup, set(by_crawl))

    policy = Policy.from_settings(config.optout)
    robots_digest = robots_captures.hosts_digest(root)

    def stale(crawl: str) -> bool:
        state = root.crawl_state(crawl)
        return state is None or state.get("units_digest") != OutputRoot.units_digest(by_crawl[crawl]) \
            or state["metadata_digest"] != metadata.digest \
            or optout_stale(state, by_crawl[crawl], policy, robots_digest)

    while pending := [crawl for crawl in sorted(by_crawl) if stale(crawl)]:
        _finalize_crawl(spark, root, pending[0], by_crawl[pending[0]], metadata, config, dedup)


def ingest(spark: SparkSession, config: Settings, root: OutputRoot, source: InputSpec | None, metadata, *,
           force: bool = False, rematch: bool = False, fail_fast: bool = False, dedup: str | None = None,
           rebuild_dedup: bool = False) -> dict:
    """Bring `source` into `root`: new files extracted and matched unit by unit, touched crawls rebuilt. `dedup`:
    the mode a new root records (ingestion/pair_keys.py); `rebuild_dedup`: rebuild every crawl in the mode asked for (no
    `source` needed)."""
    # a listing that cannot be read stops the run before the root is touched
    files = _work_files(source, config) if source else []
    root.mark()
    mode = pair_keys.settle(root, dedup, rebuild_dedup, config.root.pair_key_buckets)
    if mode.rebuilding:
        pair_keys.prepare_rebuild(spark, root, mode)
    crawls = sorted({f.crawl for f in files})
    for crawl in crawls:
        root.record_listing(crawl, {"input": source.path, "files_listed": len({f.source_file for f in files
                                                                              if f.crawl == crawl}),
                                    "listed_at": now()})
    if force:
        for crawl in crawls:
            root.drop_units(crawl)
    units = root.committed_units()
    stale = [u for u in units if u["metadata_digest"] != metadata.digest]
    if stale and not rematch:
        raise ConfigError(
            f"{root.root} was matched with another metadata list (digest {stale[0]['metadata_digest'][:12]}, "
            f"now {metadata.digest[:12]} from {metadata.path}); pass --rematch to match its pairs again"
            + metadata.digest_difference(stale[0]["metadata_digest"]))
    # A rebuild into another mode matches pools again with their texts stripped (pool mode) or as given (crawl mode).
    restrip = [u for u in units if u["kind"] == KIND_POOL and bool(u.get("texts_stripped")) != mode.pool]
    if stale or restrip:
        _rematch(spark, root, stale + [u for u in restrip if u not in stale], metadata, config, mode)
    states = OutputRoot.file_states(units)
    seen: set[tuple[str, str]] = set()
    pending = []
    for f in files:
        key = (f.crawl, f.source_file)
        if key not in seen and not is_done(states.get(key, {}).get("status")):
            pending.append(f)
        seen.add(key)
    files_per_unit = config.extract.files_per_unit if source and source.is_manifest else 1
    log.info("ingest: %d file(s) listed, %d already done, %d to process", len(seen), len(seen) - len(pending),
             len(pending))
    work = _units_of(pending, files_per_unit)
    with progress.units("ingest", len(work), len(pending)) as committed:
        for crawl, group in work:
            committed.commit(_run_unit(spark, root, config, source, crawl, group, metadata, fail_fast, mode))
    units = root.committed_units()
    _finalize_crawls(spark, root, units, metadata, config, mode)
    if mode.rebuilding:
        mode = pair_keys.finish_rebuild(root, mode)
    states = OutputRoot.file_states(units)
    listed = [states.get(key, {"status": FILE_PENDING}) for key in sorted(seen)]
    return {"input": source.path if source else None, "input_format": source.format if source else None,
            "crawls": crawls, "files_listed": len(listed), **tally_files(listed), "files_processed_now": len(pending),
            "dedup": mode.mode}
