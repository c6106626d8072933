"""`metaclip-spark status ROOT`: what an output root holds, read from its commit markers and state files only,
without Spark (root/layout.py's RootReader.at: local paths, or fsspec for s3://, gs://, ...)."""

from __future__ import annotations

from metaclip_spark.ingestion import pair_keys
from metaclip_spark.root.columns import METADATA_LANG
from metaclip_spark.root.layout import RootReader
from metaclip_spark.root.records import RunSummary, tally_files


def root_status(root: RootReader) -> dict:
    root.check_exists()
    units = root.committed_units()
    files = RootReader.file_states(units)
    crawls = {}
    for crawl in sorted({u["crawl"] for u in units} | set(root.crawls()) | set(root.listed_crawls())):
        state = root.crawl_state(crawl) or {}
        crawl_files = [s for (c, _), s in files.items() if c == crawl]
        crawl_units = sorted(u["unit"] for u in units if u["crawl"] == crawl)
        tally = tally_files(crawl_files)
        listed = (root.listing(crawl) or {}).get("files_listed")
        crawls[crawl] = {
            "files_listed": listed,  # by the latest input of this crawl; None for a root made before it was kept
            # listed, never committed in a unit: a killed run's unfinished work, done by the same command again
            "files_pending": None if listed is None else max(0, listed - tally["files_done"] - tally["files_failed"]),
            **tally,
            "units": len(crawl_units),
            # Units committed after the crawl's tables were last rebuilt: the next curate/match run folds them in.
            "pending_rebuild": bool(state) is False
            or state.get("units_digest") != RootReader.units_digest([u for u in units if u["crawl"] == crawl]),
            "pairs": state.get("pairs"),
            "pairs_matched": state.get("pairs_matched"),
            "pairs_already_in_pool": state.get("pairs_already_in_pool"),  # copies of pairs other crawls own
            "skipped": state.get("skipped"),  # pools: rows that are not pairs, by reason (records.SKIP_REASONS)
            "uuid_computed": state.get("uuid_computed"),  # pools: pairs whose null or empty uuid was computed
            # worldwide roots: pairs and matched pairs per metadata language
            "pairs_by_lang": (state.get("pairs_by") or {}).get(METADATA_LANG),
            "matched_by_lang": state.get("matched_by_lang"),
            "metadata_digest": state.get("metadata_digest"),
        }
    return {"root": root.root, "dedup": pair_keys.status_of(root), "crawls": crawls,
            "last_run": last_run(root.summary())}


def last_run(summary: RunSummary | None) -> dict | None:
    """The last run as `status --json` shows it: a few of its summary's figures (worldwide and by_lang null for a v1
    run, whose summary records neither)."""
    if summary is None:
        return None
    return {"run_id": summary.run_id, "finished_at": summary.finished_at, "crawls": summary.crawls, "t": summary.t,
            "t_mode": summary.t_mode, "seed": summary.seed, "pairs_in": summary.pairs_in,
            "pairs_matched": summary.pairs_matched, "pairs_curated": summary.pairs_curated,
            "worldwide": summary.worldwide or None,
            "by_lang": {code: v.to_json() for code, v in summary.by_lang.items()} or None}


def format_status(status: dict) -> str:
    lines = [f"root: {status['root']}", pair_keys.status_line(status.get("dedup"))]
    if not status["crawls"]:
        lines.append("no crawl ingested yet")
    for crawl, c in status["crawls"].items():
        pairs = f"{c['pairs']:,} pairs, {c['pairs_matched']:,} matched" if c["pairs"] is not None else "not built yet"
        skipped = ", ".join(f"{n:,} {reason}" for reason, n in (c.get("skipped") or {}).items() if n)
        partial = f" ({c['files_partial']:,} read in part)" if c["files_partial"] else ""
        listed = (f"{c['files_listed']:,} listed, " if c["files_listed"] is not None else "")
        pending = f", {c['files_pending']:,} pending" if c["files_pending"] else ""
        lines.append(f"crawl {crawl}: files {listed}{c['files_done']:,} done, {c['files_failed']:,} failed{partial}"
                     f"{pending}; {pairs}"
                     + (f"; {copies:,} already in the pool" if (copies := c.get("pairs_already_in_pool")) else "")
                     + (f"; rows skipped: {skipped}" if skipped else "")
                     + (f"; {computed:,} null or empty uuids computed from the url"
                        if (computed := c.get("uuid_computed")) else "")
                     + ("; rebuild pending" if c["pending_rebuild"] else ""))
        if c.get("pairs_by_lang"):
            matched = c.get("matched_by_lang") or {}
            by = sorted(c["pairs_by_lang"].items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{code} {n:,}/{matched.get(code, 0):,}" for code, n in by[:12])
            more = f" and {len(by) - 12} more" if len(by) > 12 else ""
            lines.append(f"  pairs/matched by language: {shown}{more}")
        for f in c["failed_files"][:10]:
            lines.append(f"  failed {f['file']}: {f['reason']}")
        for f in c["partial_files"][:10]:
            lines.append(f"  read in part {f['file']}: {f['reason']}")
    run = status["last_run"]
    if run and run.get("by_lang"):  # a set's lists, each on its line
        by_lang = {code: v for code, v in run["by_lang"].items() if v["pairs"]}
        lines.append(f"last curated run {run['run_id']} ({run['finished_at']}): crawls {', '.join(run['crawls'])}, "
                     f"worldwide ({len(run['by_lang'])} lists, {len(by_lang)} with pairs), English t "
                     f"{run['t'] if run['t'] is not None else '(no English list)'} ({run['t_mode']}), seed "
                     f"{run['seed']}, {run['pairs_curated']:,} of {run['pairs_in']:,} pairs curated")
        for code, v in sorted(by_lang.items(), key=lambda kv: (-kv[1]["pairs"], kv[0])):
            top = ", ".join(f"{entry} {n:,}" for entry, n in v.get("top_entries", [])[:3])
            lines.append(f"  {code}: {v['pairs']:,} pairs, {v['pairs_matched']:,} matched, {v['pairs_curated']:,} "
                         f"curated; t {v['t']:,}, tail share {v['tail_proportion']:.1%}"
                         + (f"; top: {top}" if top else ""))
    elif run:
        lines.append(f"last curated run {run['run_id']} ({run['finished_at']}): crawls {', '.join(run['crawls'])}, "
                     f"t = {run['t']:,} ({run['t_mode']}), seed {run['seed']}, {run['pairs_curated']:,} of "
                     f"{run['pairs_in']:,} pairs curated")
    else:
        lines.append("no curated run yet")
    return "\n".join(lines)
