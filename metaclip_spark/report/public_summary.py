"""The public summary of a curated set: report/public-summary.json and public-summary.md (and the domain list
public-summary-domains.csv), with the fields the EU AI Office's template for the public summary of training content
(2025) asks of data crawled and scraped from online sources: the crawler and the dataset it comes from (Common
Crawl), the collection period, the type of content, the top 10% of registered domains by curated pairs with their
share, and the measures taken to respect reservations of rights (opt-outs), with their counts.

Registered domains follow the Public Suffix List snapshot bundled with the `publicsuffixlist` package (read offline,
never fetched; optout/domains.py): its version names the snapshot. A page host that is an IP address is its own
domain.
"""

from __future__ import annotations

import csv
import io
import json
import math
from importlib.metadata import version

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from metaclip_spark.optout.signals import signal_agent, signal_kind
from metaclip_spark.optout.tables import domain_counts
from metaclip_spark.root.layout import RootReader
from metaclip_spark.root.tables import read_table

TEMPLATE = ("EU AI Office, Template for the Public Summary of Training Content for general-purpose AI models (July "
            "2025), section 2.3: data crawled and scraped from online sources; section 3: measures to respect "
            "reservations of rights")
TOP_SHARE = 0.10  # the template's top 10% of domain names, by size of content
LISTED_IN_JSON = 100  # domains written in the JSON and Markdown files; all of the top 10% are in the CSV file
# Common Crawl's file names carry the capture window of their records: CC-MAIN-<start>-<end>-<part>.warc.gz.
_WINDOW = r"CC-MAIN-(\d{14})-(\d{14})-"


def top_domains(curated: DataFrame, column: str) -> tuple[int, DataFrame]:
    """(registered domains of the URLs in `column` of the curated pairs, a frame of the top 10% of them by pairs:
    domain, pairs, most first, ties by name). Pairs are first counted per host (a reduction), and only hosts are
    mapped to domains (optout/tables.py's domain_counts)."""
    domains = domain_counts(curated, column)
    total = domains.count()
    return total, domains.orderBy(F.desc("pairs"), F.asc("domain")).limit(math.ceil(total * TOP_SHARE))


def collection_period(curated: DataFrame) -> dict | None:
    """First and last capture time of the curated pairs' files (from Common Crawl's file names); None when no file
    name carries one."""
    if "source_file" not in curated.columns:
        return None
    start = F.regexp_extract(F.col("source_file"), _WINDOW, 1)
    end = F.regexp_extract(F.col("source_file"), _WINDOW, 2)
    row = curated.select(F.min(F.when(start != "", start)).alias("first"),
                         F.max(F.when(end != "", end)).alias("last")).first()
    if row is None or row["first"] is None:
        return None

    def iso(stamp: str) -> str:
        return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:{stamp[12:14]}Z"

    return {"first_capture": iso(row["first"]), "last_capture": iso(row["last"]),
            "basis": "the capture windows Common Crawl writes in the names of the files the curated pairs come from"}


def compute_public_summary(spark: SparkSession, output: str) -> tuple[dict, str]:
    """The public summary of the root's last run, and the CSV text of its top 10% of domains."""
    root = RootReader.through_spark(spark, output)
    run = root.summary()  # the report is written for a finished run
    states = {crawl: root.crawl_state(crawl) or {} for crawl in run.crawls}
    url_column = next(((s.get("columns") or {}).get("url") for s in states.values() if s.get("columns")), "url")
    curated = read_table(spark, root.path("curated"))
    pairs_curated = int(run.pairs_curated or 0)
    # the pages the pairs were found on (Common Crawl); a pool of pairs without page URLs: the images'
    column = "page_url" if "page_url" in curated.columns else url_column
    total, top = top_domains(curated, column)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["rank", "domain", "pairs", "share"])
    listed, listed_pairs = [], 0
    for rank, row in enumerate(top.toLocalIterator(), 1):  # streamed: the top 10% is never held as a whole
        share = row["pairs"] / pairs_curated if pairs_curated else 0.0
        writer.writerow([rank, row["domain"], row["pairs"], f"{share:.6f}"])
        listed_pairs += row["pairs"]
        if rank <= LISTED_IN_JSON:
            listed.append({"domain": row["domain"], "pairs": int(row["pairs"]), "share": share})
    common_crawl = any(s.get("kind") == "extract" for s in states.values())
    optout = run.optout
    config = (run.config or {}).get("optout") or {}
    by_kind = (optout or {}).get("by_kind", {})
    site_kinds = ("robots-txt", "blocked-domain")  # the site's verdicts; the other kinds are the page's signals
    robots = (optout or {}).get("robots")
    robots_by_agent: dict[str, int] = {}
    page_by_agent: dict[str, int] = {}
    for signal, n in ((optout or {}).get("by_signal") or {}).items():
        agent = signal_agent(signal)
        if signal.startswith("robots-txt@"):
            robots_by_agent[agent] = robots_by_agent.get(agent, 0) + n
        elif signal_kind(signal) not in site_kinds:
            page_by_agent[agent] = page_by_agent.get(agent, 0) + n
    summary = {
        "template": TEMPLATE,
        "dataset": {"pairs_curated": pairs_curated, "crawls": run.crawls, "run_id": run.run_id,
                    "finished_at": run.finished_at, "tool": f"metaclip-spark {run.version}",
                    "content": "image URLs with the alt, title or data-image-title text of their <img> element on a "
                               "web page, balanced over metadata entries (MetaCLIP); the images are not downloaded"},
        "web_crawled_data": {
            "source": {"name": "Common Crawl", "url": "https://commoncrawl.org",
                       "crawls": [c for c, s in states.items() if s.get("kind") == "extract"],
                       "listings": {c: (root.listing(c) or {}).get("input") for c in states}} if common_crawl
            else None,
            "crawler": {"name": "CCBot", "operator": "Common Crawl Foundation",
                        "behaviour": "Common Crawl's crawler; it obeys robots.txt rules for CCBot at crawl time. "
                                     "This curation crawls nothing itself: it reads Common Crawl's archives."}
            if common_crawl else None,
            "collection_period": collection_period(curated),
            "top_domains": {"rule": f"top {TOP_SHARE:.0%} of the registered domains of the curated pairs' "
                                    f"{'pages' if column == 'page_url' else 'images'}, by curated pairs", "public_suffix_list": f"publicsuffixlist {version('publicsuffixlist')}",
                            "domains_total": total, "domains_listed": math.ceil(total * TOP_SHARE),
                            "share_of_pairs": listed_pairs / pairs_curated if pairs_curated else 0.0,
                            "domains": listed, "file": "public-summary-domains.csv"},
        },
        "opt_out_measures": {
            "page_signals": {"applied": bool(optout) and bool(config.get("honour_page_signals")),
                             "honoured": {k: config.get(k) for k in ("directives", "agents", "tdm_reservation",
                                                                     "content_usage")},
                             "pairs_removed": sum(n for k, n in by_kind.items() if k not in site_kinds),
                             "by_kind": {k: n for k, n in by_kind.items() if k not in site_kinds},
                             "by_agent": dict(sorted(page_by_agent.items()))},
            # robots.txt of every page's and image's host, from Common Crawl's captures (curate --robots)
            "robots_txt": {"applied": bool(robots), "rule": "RFC 9309, the newest capture of each host; 4xx allows, "
                                                            "5xx disallows",
                           "agents": config.get("agents"), "apply_star_group": config.get("apply_star_group", True),
                           "pairs_removed": by_kind.get("robots-txt", 0),
                           "by_agent": dict(sorted(robots_by_agent.items())),
                           **(robots or {"hosts_with_capture": 0, "hosts_without_capture": 0})},
            "blocked_domains": {"applied": bool(config.get("blocked_domains")),
                                "pairs_removed": by_kind.get("blocked-domain", 0)},
        },
    }
    return summary, text.getvalue()


def markdown(summary: dict) -> str:
    """The public summary as a page to publish."""
    dataset, web, measures = summary["dataset"], summary["web_crawled_data"], summary["opt_out_measures"]
    lines = ["# Public summary of training content", "", f"Following the {summary['template']}.", "",
             "## The data set", "", f"- {dataset['pairs_curated']:,} curated image-text pairs ({dataset['content']}).",
             f"- Built by {dataset['tool']}, run {dataset['run_id']}, finished {dataset['finished_at']}.", "",
             "## Data crawled from online sources", ""]
    if web["source"]:
        lines += [f"- Source: {web['source']['name']} ({web['source']['url']}), crawls "
                  f"{', '.join(web['source']['crawls'])}.",
                  f"- Crawler: {web['crawler']['name']} ({web['crawler']['operator']}). {web['crawler']['behaviour']}"]
    period = web["collection_period"]
    lines.append(f"- Collection period: {period['first_capture']} to {period['last_capture']} ({period['basis']})."
                 if period else "- Collection period: not known from the input's file names.")
    top = web["top_domains"]
    lines += ["", f"### Top domains ({top['rule']}; {top['public_suffix_list']})", "",
              f"{top['domains_listed']:,} of {top['domains_total']:,} domains, {top['share_of_pairs']:.2%} of the pairs"
              f" (all in {top['file']}).", "", "| rank | domain | pairs | share |", "|---:|---|---:|---:|"]
    lines += [f"| {i} | {d['domain']} | {d['pairs']:,} | {d['share']:.2%} |" for i, d in enumerate(top["domains"], 1)]
    signals = measures["page_signals"]
    honoured = signals["honoured"]
    lines += ["", "## Measures to respect reservations of rights (opt-outs)", "",
              f"- Page signals {'applied' if signals['applied'] else 'not applied'}: robots directives "
              f"{', '.join(honoured['directives'] or [])} (X-Robots-Tag and robots metas, for every crawler or one of "
              f"{len(honoured['agents'] or [])} AI-training agents), TDMRep "
              f"{'honoured' if honoured['tdm_reservation'] else 'not honoured'}, Content-Usage refusals of "
              f"{', '.join(honoured['content_usage'] or [])}: {signals['pairs_removed']:,} pairs removed.",
              *[f"  - {kind}: {n:,}" for kind, n in signals["by_kind"].items()],
              _robots_line(measures["robots_txt"]),
              f"- Blocked domains: {measures['blocked_domains']['pairs_removed']:,} pairs removed."
              if measures["blocked_domains"]["applied"] else "- Blocked domains: none configured.", ""]
    return "\n".join(lines)


def _robots_line(robots: dict) -> str:
    if not robots["applied"]:
        return ("- robots.txt: not checked by this curation beyond Common Crawl's own crawl (CCBot obeys robots.txt "
                "for CCBot only).")
    return (f"- robots.txt ({robots['rule']}; {len(robots['agents'] or [])} AI-training agents, the `*` group "
            f"{'obeyed' if robots['apply_star_group'] else 'not obeyed'} by an agent no group names): "
            f"{robots['pairs_removed']:,} pairs removed; {robots['hosts_with_capture']:,} page hosts with a capture, "
            f"{robots['hosts_without_capture']:,} without.")


def public_summary_files(spark: SparkSession, output: str) -> dict[str, bytes]:
    """The files of the public summary, for the report directory."""
    summary, domains = compute_public_summary(spark, output)
    return {"public-summary.json": (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode("utf-8"),
            "public-summary.md": markdown(summary).encode("utf-8"),
            "public-summary-domains.csv": domains.encode("utf-8")}
