"""Opt-outs applied to a crawl's tables (Spark): the pairs whose page refuses are set apart before the crawl is
de-duplicated, matched and counted, and kept, with why, in ROOT/optout/crawl=<crawl>.

The verdict is a SQL expression over the stored signals (optout.Policy): no Python per row, no shuffle. A crawl is
rebuilt when the policy it was built under changes (its state's `optout.policy`), from its units' pairs, which keep
every signal: no file is read again.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from metaclip_spark.optout.signals import SIGNALS_COLUMN, Policy, signal_agent, signal_kind

TABLE = "optout"  # ROOT/optout/crawl=<crawl>: the pairs set apart, with the signal refused on
REFUSED = "optout_signal"
# Opted-out pairs kept for the audit (a pair's own columns, its page's signals and the one refused on).
KEPT_COLUMNS = ("uuid", "url", "text", "text_source", "page_url", "source_file", SIGNALS_COLUMN)
TOP_DOMAINS = 20


def refused_signal(policy: Policy) -> Column:
    """The first stored signal (sorted) the policy refuses on, or null: the pair is kept."""
    refusing = sorted(policy.refusing)
    return F.try_element_at(F.filter(F.col(SIGNALS_COLUMN), lambda s: s.isin(refusing)), F.lit(1))


def applies(policy: Policy, frame: DataFrame) -> bool:
    """Whether the policy can refuse any row of `frame` (it refuses something, and the rows carry signals)."""
    return policy.enabled and SIGNALS_COLUMN in frame.columns


def kept(frame: DataFrame, policy: Policy) -> DataFrame:
    """The rows of `frame` the policy does not refuse."""
    return frame.where(refused_signal(policy).isNull()) if applies(policy, frame) else frame


def removed(frame: DataFrame, policy: Policy) -> DataFrame:
    """The rows of `frame` the policy refuses, with the signal it refuses on (REFUSED)."""
    columns = [c for c in KEPT_COLUMNS if c in frame.columns]
    return frame.select(*columns, refused_signal(policy).alias(REFUSED)).where(F.col(REFUSED).isNotNull())


def page_host(column: str = "page_url") -> Column:
    """The host of a page URL, lower-cased, without a port or user info (null when it has none)."""
    host = F.lower(F.regexp_extract(F.col(column), r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#:]*)", 1))
    return F.when(host != "", host)


def figures(table: DataFrame, policy: Policy) -> dict:
    """What a crawl's opt-out table holds, for its state: pairs removed, per signal, kind and agent, and its top
    hosts. Small collects: one row per distinct signal (bounded by the policy), TOP_DOMAINS hosts."""
    by_signal = {row[REFUSED]: int(row["count"]) for row in table.groupBy(REFUSED).count().collect()}
    by_kind: dict[str, int] = {}
    by_agent: dict[str, int] = {}
    for signal, n in by_signal.items():
        by_kind[signal_kind(signal)] = by_kind.get(signal_kind(signal), 0) + n
        by_agent[signal_agent(signal)] = by_agent.get(signal_agent(signal), 0) + n
    hosts = (table.groupBy(page_host().alias("host")).count()
             .orderBy(F.desc("count"), F.asc_nulls_last("host")).limit(TOP_DOMAINS).collect())
    return {"policy": policy.digest(), "pairs_removed": sum(by_signal.values()),
            "by_signal": dict(sorted(by_signal.items())), "by_kind": dict(sorted(by_kind.items())),
            "by_agent": dict(sorted(by_agent.items())),
            "top_hosts": [[row["host"], int(row["count"])] for row in hosts]}


def summed(parts: list[dict | None]) -> dict | None:
    """Crawls' opt-out figures summed (top hosts: of each crawl's own top, summed); None when no crawl has any."""
    parts = [p for p in parts if p]
    if not parts:
        return None
    total: dict = {"pairs_removed": sum(p["pairs_removed"] for p in parts)}
    for key in ("by_signal", "by_kind", "by_agent"):
        merged: dict[str, int] = {}
        for part in parts:
            for name, n in part[key].items():
                merged[name] = merged.get(name, 0) + n
        total[key] = dict(sorted(merged.items()))
    hosts: dict = {}
    for part in parts:
        for host, n in part["top_hosts"]:
            hosts[host] = hosts.get(host, 0) + n
    total["top_hosts"] = sorted(([h, n] for h, n in hosts.items()), key=lambda x: (-x[1], x[0] or ""))[:TOP_DOMAINS]
    return total
