"""Common Crawl's dumps as its index server lists them, what an output root holds of each, and which dump
`curate --common-crawl ID|latest|next` takes, all without Spark.

The index (`commoncrawl.index_url`, Common Crawl's `collinfo.json`) is a JSON array of dumps: `id`, `name`,
`timegate`, `cdx-api`, `from` and `to` (ISO dates of the crawl's first and last capture). Dumps are ordered by their
dates, never by their ids: the oldest ids do not follow the `CC-MAIN-YYYY-WW` pattern (CC-MAIN-2008-2009,
CC-MAIN-2012). A dump's listing is `crawl-data/<id>/warc.paths.gz` (or `wat.paths.gz`) under `commoncrawl.data_url`
(`--from https`) or `commoncrawl.s3_url` (`--from s3`), its listed paths resolved against the same base; the crawl
is named by the dump's id.

What a root holds of a dump is read from its records as `status` reads them (status.root_status): a dump is *done*
when every listed file was read or failed within `extract.max_failed_share`, its tables are built and the root's
last curated run balanced it; *partly done* when the root holds anything of it short of that (a killed run, failed
files over the share, a run stopped before balancing); else *not in the root*.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass

from metaclip_spark.errors import ConfigError, InputError

log = logging.getLogger("metaclip_spark")

DONE = "done"
PARTLY_DONE = "partly done"
NOT_IN_ROOT = "not in root"
LATEST = "latest"
NEXT = "next"
ARCHIVE_TYPES = ("warc", "wat")
ORIGINS = ("https", "s3")
_ARCHIVE_FORMATS = {"warc": "warc-manifest", "wat": "wat-manifest"}  # ingestion/sources.py's formats
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")  # an id becomes a path segment and a crawl name


@dataclass(frozen=True)
class Dump:
    """One dump of the index, as the index lists it."""

    id: str
    name: str
    timegate: str
    cdx_api: str
    start: dt.datetime  # "from"
    end: dt.datetime    # "to"

    def record(self) -> dict:
        return {"id": self.id, "name": self.name, "timegate": self.timegate, "cdx-api": self.cdx_api,
                "from": self.start.isoformat(), "to": self.end.isoformat()}


# The index ----------------------------------------------------------------------------------------------------------
def parse_index(raw: bytes, where: str) -> list[Dump]:
    """The dumps of a `collinfo.json`, newest first by their dates; exit 3 naming the index when it is not one."""
    def bad(why: str) -> InputError:
        return InputError(f"Common Crawl index {where} is not a list of dumps in collinfo.json's format: {why}")

    try:
        entries = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(entries, list) or not entries:
        raise bad("not a non-empty JSON array" if not isinstance(entries, list) else "it lists no dump")
    dumps: dict[str, Dump] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise bad(f"entry {position} is not an object")
        missing = [key for key in ("id", "from", "to") if not isinstance(entry.get(key), str)]
        if missing:
            raise bad(f"entry {position} has no {missing[0]!r} string")
        dump_id = entry["id"]
        if not _SAFE_ID.match(dump_id):
            raise bad(f"entry {position}'s id {dump_id!r} is not letters, digits, '-', '_' or '.'")
        if dump_id in dumps:
            raise bad(f"{dump_id} is listed twice")
        try:
            start, end = (dt.datetime.fromisoformat(entry[key]) for key in ("from", "to"))
        except ValueError as e:
            raise bad(f"{dump_id}'s dates: {e}") from None
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise bad(f"{dump_id}'s dates mix local and zoned times")
        dumps[dump_id] = Dump(dump_id, str(entry.get("name") or ""), str(entry.get("timegate") or ""),
                              str(entry.get("cdx-api") or ""), start, end)
    try:
        return sorted(dumps.values(), key=lambda d: (d.end, d.start, d.id), reverse=True)
    except TypeError:  # zoned and local dates across entries cannot be compared
        raise bad("its dates mix local and zoned times") from None


def read_index(config) -> list[Dump]:
    """The dumps `commoncrawl.index_url` lists, read with the [remote] retries (storage.py); exit 3 naming the index
    when it cannot be read or is not one."""
    from metaclip_spark.storage import check_readable, describe, read_bytes

    url = config.commoncrawl.index_url
    check_readable(url)
    try:
        raw = read_bytes(url, config.remote)
    except (OSError, EOFError) as e:  # a RemoteReadError keeps the last failure, and how many retries it took
        raise InputError(f"cannot read the Common Crawl index {url}: {getattr(e, 'failure', None) or describe(e)}") \
            from None
    return parse_index(raw, url)


def listing_of(config, dump_id: str, archive_type: str = "warc", origin: str = "https") -> tuple[str, str]:
    """(listing, base its paths resolve against) of one dump: crawl-data/<id>/<type>.paths.gz under data_url or
    s3_url."""
    base = {"https": config.commoncrawl.data_url, "s3": config.commoncrawl.s3_url}[origin].rstrip("/") + "/"
    return f"{base}crawl-data/{dump_id}/{archive_type}.paths.gz", base


# What a root holds ------------------------------------------------------------------------------------------------
def read_root(root: str, remote) -> dict | None:
    """The root's status (status.root_status, read without Spark), or None for a root not made yet (no directory,
    or an empty one: a scheduler's first run)."""
    from metaclip_spark.root.layout import RootReader
    from metaclip_spark.report.status import root_status

    from metaclip_spark.root.lease import LEASE_FILE

    records = RootReader.at(root, remote)
    if not records.files.exists(records.root):
        return None
    if {path.rstrip("/").rsplit("/", 1)[-1] for path in records.files.glob(records.root, "*")} <= {LEASE_FILE}:
        return None  # empty, or a first run has just taken its lease: nothing held yet
    return root_status(records)


def crawl_progress(crawl: dict, curated: bool, max_failed_share: float) -> tuple[str, list[str]]:
    """(DONE or PARTLY_DONE, why it is not done) of a crawl the root holds, from its entry of `status` (`curated`:
    the root's last curated run balanced it)."""
    why = []
    done, failed, listed = crawl["files_done"], crawl["files_failed"], crawl.get("files_listed")
    if crawl.get("files_pending"):
        why.append(f"{crawl['files_pending']:,} of {listed:,} listed files pending (a run stopped before them)")
    total = listed if listed is not None else done + failed
    if failed and total and failed / total > max_failed_share:
        why.append(f"{failed:,} of {total:,} files failed (more than extract.max_failed_share)")
    if crawl.get("pairs") is None or crawl.get("pending_rebuild"):
        why.append("its tables are not built (a run stopped before them)")
    if not curated:
        why.append("not balanced yet (the root's last curated run does not include it)")
    return (PARTLY_DONE if why else DONE), why


def dump_states(dumps: list[Dump], status: dict | None, max_failed_share: float) -> dict[str, dict]:
    """Each dump id -> {"state", "why", "files_failed"}; NOT_IN_ROOT for a dump the root holds nothing of."""
    crawls = (status or {}).get("crawls", {})
    curated = set(((status or {}).get("last_run") or {}).get("crawls") or ())
    states = {}
    for dump in dumps:
        if dump.id not in crawls:
            states[dump.id] = {"state": NOT_IN_ROOT, "why": [], "files_failed": 0}
            continue
        state, why = crawl_progress(crawls[dump.id], dump.id in curated, max_failed_share)
        states[dump.id] = {"state": state, "why": why, "files_failed": crawls[dump.id]["files_failed"]}
    return states


@dataclass(frozen=True)
class Choice:
    dump: Dump | None  # None: nothing new
    why: str


def choose(dumps: list[Dump], states: dict[str, dict], wanted: str) -> Choice:
    """The dump `--common-crawl wanted` takes. ID: that dump. `latest` and `next`: first the oldest partly done dump
    (a killed or failed run is finished before anything newer starts); then `latest` takes the newest dump and
    `next` the oldest dump newer than every dump the root holds (the newest, for a root holding none); None when
    that dump is done already, or no dump is newer."""
    if wanted not in (LATEST, NEXT):
        for dump in dumps:
            if dump.id == wanted:
                return Choice(dump, "asked for by id")
        newest = ", ".join(d.id for d in dumps[:3])
        raise InputError(f"--common-crawl {wanted}: the index lists no such dump (the newest: {newest}; or give "
                         "latest or next)")
    partly = [d for d in dumps if states[d.id]["state"] == PARTLY_DONE]
    if partly:
        dump = partly[-1]  # dumps are newest first
        return Choice(dump, f"partly done, resumed first: {'; '.join(states[dump.id]['why'])}")
    held = [d for d in dumps if states[d.id]["state"] != NOT_IN_ROOT]
    if wanted == LATEST or not held:
        latest = dumps[0]
        if states[latest.id]["state"] == DONE:
            return Choice(None, f"the root holds {latest.id} ({latest.name}), the newest dump, done")
        return Choice(latest, "the newest dump" + ("" if held else "; the root holds no dump yet"))
    newest_held = held[0]
    newer = [d for d in dumps if (d.end, d.start) > (newest_held.end, newest_held.start)]
    if not newer:
        return Choice(None, f"the root holds {newest_held.id} ({newest_held.name}), the newest dump, done")
    return Choice(newer[-1], f"the oldest dump newer than the root's newest, {newest_held.id}")


# The commands -----------------------------------------------------------------------------------------------------
def crawls_listing(config, root: str | None) -> dict:
    """`crawls`: every dump of the index, newest first, with what ROOT holds of each and what --common-crawl next
    and latest would take."""
    dumps = read_index(config)
    status = read_root(root, config.remote) if root else None
    states = dump_states(dumps, status, config.extract.max_failed_share)
    listing = {"index": config.commoncrawl.index_url, "root": root, "root_exists": status is not None,
               "dumps": [dict(d.record(), **(states[d.id] if root else {})) for d in dumps]}
    if root:
        known = {d.id for d in dumps}
        listing["other_crawls"] = sorted(set((status or {}).get("crawls", {})) - known)
        for wanted in (NEXT, LATEST):
            choice = choose(dumps, states, wanted)
            listing[wanted] = {"id": choice.dump.id if choice.dump else None, "why": choice.why}
    return listing


def format_crawls(listing: dict) -> str:
    dumps = listing["dumps"]
    lines = [f"index: {listing['index']}: {len(dumps)} dumps, newest first"
             + (f"; root: {listing['root']}" + ("" if listing["root_exists"] else " (not made yet)")
                if listing["root"] else "")]
    width = max(len(d["id"]) for d in dumps)
    name_width = max(len(d["name"]) for d in dumps)
    for d in dumps:
        line = f"{d['id']:<{width}}  {d['from'][:10]} to {d['to'][:10]}  {d['name']:<{name_width}}"
        if "state" in d:
            line += f"  {d['state']}"
            if d["why"]:
                line += ": " + "; ".join(d["why"])
            elif d["files_failed"]:
                line += f" ({d['files_failed']:,} files failed: --common-crawl {d['id']} retries them)"
        lines.append(line.rstrip())
    if listing["root"]:
        if listing["other_crawls"]:
            lines.append(f"the root also holds crawls the index does not list: {', '.join(listing['other_crawls'])}")
        for wanted in (NEXT, LATEST):
            choice = listing[wanted]
            lines.append(f"--common-crawl {wanted}: " + (f"{choice['id']}, {choice['why']}" if choice["id"]
                                                       else f"nothing new: {choice['why']}"))
    return "\n".join(lines)


def resolve_curate_input(args, config) -> int | None:
    """Before `curate --common-crawl` loads metadata or starts Spark: fill in --input, its format, base and crawl from
    the dump chosen, and return None to go on; or print one line and return 0 when there is nothing new (None, with no
    --input, when --robots brings captures to read: they apply to the crawls the root holds)."""
    common = getattr(args, "common_crawl", None)
    if common is None:
        given = [option for option, value in (("--archive-type", args.archive_type), ("--from", args.origin))
                 if value is not None]
        if given:
            raise ConfigError(f"{given[0]} goes with --common-crawl ID|latest|next")
        return None
    clashing = [option for option, value in (("--input", args.input), ("--input-format", args.input_format),
                                             ("--input-base", args.input_base), ("--crawl", args.crawl))
                if value is not None]
    if clashing:
        raise ConfigError(f"--common-crawl names the input itself: leave out {clashing[0]}")
    dumps = read_index(config)
    held = None if args.overwrite else read_root(args.output, config.remote)  # --overwrite: a new root
    choice = choose(dumps, dump_states(dumps, held, config.extract.max_failed_share), common)
    if choice.dump is None:
        if not getattr(args, "robots", None):
            print(f"Nothing new in {config.commoncrawl.index_url} for {args.output}: {choice.why}.")
            return 0
        # new robots.txt captures judge the crawls the root holds: read them, re-count and re-balance as without
        # --common-crawl (curate --robots LISTING alone)
        print(f"Nothing new in {config.commoncrawl.index_url} for {args.output}: {choice.why}; reading --robots "
              f"{', '.join(args.robots)}.")
        return None
    archive_type, origin = args.archive_type or "warc", args.origin or "https"
    args.input, args.input_base = listing_of(config, choice.dump.id, archive_type, origin)
    args.input_format, args.crawl = _ARCHIVE_FORMATS[archive_type], choice.dump.id
    log.info("--common-crawl %s: %s (%s, %s to %s), %s; listing %s", common, choice.dump.id, choice.dump.name,
             choice.dump.start.date(), choice.dump.end.date(), choice.why, args.input)
    return None
