"""Opt-outs applied to a crawl's tables (Spark): the pairs whose page refuses are set apart before the crawl is
de-duplicated, matched and counted, and kept, with why, in ROOT/optout/crawl=<crawl>.

The page signals' verdict is a SQL expression over the stored signals (optout.Policy): no Python per row, no
shuffle. A crawl is rebuilt when the policy it was built under changes (its state's `optout.policy`), from its
units' pairs, which keep every signal: no file is read again.

The site's verdict (robots.txt captures, optout/captures.py; blocked domains) is one join of the pairs with a
lookup keyed by page host (SiteJudge): for each page host of the crawl, the captures of that host and of the image
hosts its pairs use. The lookup is built from the (page host, image host) pairs of the crawl, distinct (aggregated
before their shuffle), joined with the host table; the pairs themselves are shuffled once, by page host, and
judged by optout/robots.py's Judge in Python, next to the captures of their hosts.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.storagelevel import StorageLevel

from metaclip_spark.optout.signals import SIGNALS_COLUMN, Policy, signal_agent, signal_kind

TABLE = "optout"  # ROOT/optout/crawl=<crawl>: the pairs set apart, with the signal refused on
REFUSED = "optout_signal"
# Refused by robots.txt: the host whose capture refused, and that capture's date (WARC-Date); null otherwise.
ROBOTS_HOST, ROBOTS_FETCHED = "robots_host", "robots_fetched"
# Opted-out pairs kept for the audit (a pair's own columns, its page's signals and the one refused on).
KEPT_COLUMNS = ("uuid", "url", "text", "text_source", "page_url", "source_file", SIGNALS_COLUMN)
TOP_DOMAINS = 20  # the opted-out registered domains a crawl's figures name, most pairs first
_PAGE_HOST, _CAPTURES, _SITE = "_page_host", "_captures", "_site"


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


def site_host(column: str) -> Column:
    """The key of the host table for a URL: page_host without a final dot (robots.url_host in SQL)."""
    host = F.regexp_replace(page_host(column), r"\.$", "")
    return F.when(host != "", host)


_VERDICT = T.StructType([T.StructField(REFUSED, T.StringType()), T.StructField(ROBOTS_HOST, T.StringType()),
                         T.StructField(ROBOTS_FETCHED, T.StringType())])


class SiteJudge:
    """The site's verdict on a crawl's pairs (robots.txt of the page's and image's hosts, blocked domains), as one
    join with a capture lookup keyed by page host. A context manager: the lookup is kept (persisted) while the
    crawl's tables are built from it, then released. `hosts`: the host table (None: no captures)."""

    def __init__(self, policy: Policy, hosts: DataFrame | None, pairs: DataFrame):
        self.policy = policy
        self.lookup = None
        self._persisted: list[DataFrame] = []
        if hosts is not None:
            keys = pairs.select(site_host("page_url").alias(_PAGE_HOST), site_host("url").alias("_image_host")) \
                .where(F.col(_PAGE_HOST).isNotNull())
            wanted = keys.select(_PAGE_HOST, F.col(_PAGE_HOST).alias("host")).union(
                keys.where(F.col("_image_host").isNotNull() & (F.col("_image_host") != F.col(_PAGE_HOST)))
                .select(_PAGE_HOST, F.col("_image_host").alias("host"))).distinct()
            self.lookup = (wanted.join(hosts, "host")
                           .groupBy(_PAGE_HOST)
                           .agg(F.collect_list(F.struct("host", "fetched", "status", "body")).alias(_CAPTURES))
                           .persist(StorageLevel.MEMORY_AND_DISK))

    @property
    def applies(self) -> bool:
        return self.lookup is not None or bool(self.policy.blocked)

    def __enter__(self) -> "SiteJudge":
        return self

    def __exit__(self, *exc) -> None:
        for frame in self._persisted + ([self.lookup] if self.lookup is not None else []):
            frame.unpersist()

    def judged(self, frame: DataFrame) -> DataFrame:
        """`frame` with its verdict: REFUSED (the page's signal refused on, else the site's), ROBOTS_HOST and
        ROBOTS_FETCHED (where robots.txt refused)."""
        page = refused_signal(self.policy) if applies(self.policy, frame) else F.lit(None).cast("string")
        if not self.applies:
            return frame.withColumn(REFUSED, page).withColumn(ROBOTS_HOST, F.lit(None).cast("string")) \
                .withColumn(ROBOTS_FETCHED, F.lit(None).cast("string"))
        if self.lookup is not None:
            joined = frame.withColumn(_PAGE_HOST, site_host("page_url")).join(self.lookup, _PAGE_HOST, "left")
            captures = F.col(_CAPTURES)
        else:
            joined, captures = frame, F.lit(None).cast("array<struct<host:string,fetched:string,status:int,"
                                                         "body:binary>>")
        site = _site_verdict(self.policy)(F.col("page_url"), F.col("url"), captures)
        return (joined.withColumn(_SITE, site)
                .withColumn(REFUSED, F.coalesce(page, F.col(f"{_SITE}.{REFUSED}")))
                .withColumn(ROBOTS_HOST, F.when(page.isNull(), F.col(f"{_SITE}.{ROBOTS_HOST}")))
                .withColumn(ROBOTS_FETCHED, F.when(page.isNull(), F.col(f"{_SITE}.{ROBOTS_FETCHED}")))
                .drop(_SITE, _CAPTURES, _PAGE_HOST))

    def kept(self, frame: DataFrame) -> DataFrame:
        """The rows of `frame` neither the page nor the site refuses, with `frame`'s columns."""
        if not self.applies:
            return kept(frame, self.policy)
        return self.judged(frame).where(F.col(REFUSED).isNull()).select(*frame.columns)

    def split(self, frame: DataFrame) -> tuple[DataFrame, DataFrame]:
        """(kept rows, removed rows with why) of `frame`, judged once: the judged rows are persisted (until the
        judge closes), so that both halves come from one join."""
        judged = self.judged(frame).persist(StorageLevel.MEMORY_AND_DISK)
        self._persisted.append(judged)
        columns = [c for c in KEPT_COLUMNS if c in frame.columns]
        removed_rows = judged.where(F.col(REFUSED).isNotNull()).select(*columns, REFUSED, ROBOTS_HOST, ROBOTS_FETCHED)
        return judged.where(F.col(REFUSED).isNull()).select(*frame.columns), removed_rows


def _site_verdict(policy: Policy):
    """The Python UDF judging a pair by its site: (page_url, url, captures) -> _VERDICT or null."""
    from metaclip_spark.optout.robots import Judge

    agents, star, blocked = policy.agents, policy.apply_star_group, policy.blocked
    judge = None

    def verdict(page_url, url, captures):
        nonlocal judge
        if judge is None:  # one per worker process: its parse cache is shared by the rows it judges
            judge = Judge(agents, star, blocked)
        found = {c["host"]: (c["fetched"], c["status"], c["body"]) for c in captures or ()}
        return judge.verdict(page_url, url, found)

    return F.udf(verdict, _VERDICT)


def host_coverage(pairs: DataFrame, hosts: DataFrame | None) -> dict:
    """Page hosts of `pairs` with and without a robots.txt capture: one aggregation over the distinct hosts."""
    distinct = pairs.select(site_host("page_url").alias("host")).where(F.col("host").isNotNull()).distinct()
    if hosts is None:
        return {"hosts_with_capture": 0, "hosts_without_capture": distinct.count()}
    flagged = distinct.join(hosts.select("host", F.lit(True).alias("_captured")), "host", "left")
    row = flagged.agg(F.count(F.col("_captured")).alias("with"), F.count(F.lit(1)).alias("all")).first()
    return {"hosts_with_capture": int(row["with"]), "hosts_without_capture": int(row["all"] - row["with"])}


def _domains_of_hosts(batches):
    from metaclip_spark.optout.domains import registered_domain

    for batch in batches:
        hosts = batch.column("host").to_pylist()
        yield pa.RecordBatch.from_arrays([pa.array([registered_domain(h) for h in hosts], pa.string()),
                                          batch.column("pairs")], names=["domain", "pairs"])


def domain_counts(frame: DataFrame, column: str) -> DataFrame:
    """Rows of `frame` per registered domain (Public Suffix List, optout/domains.py) of the URL in `column`: domain,
    pairs; rows without a host left out. Two reductions: rows are counted per host first, and only the hosts are
    mapped to their domain (in Python, by batch), then summed per domain."""
    hosts = frame.groupBy(page_host(column).alias("host")).agg(F.count(F.lit(1)).alias("pairs"))
    schema = T.StructType([T.StructField("domain", T.StringType()), T.StructField("pairs", T.LongType())])
    return (hosts.mapInArrow(_domains_of_hosts, schema).groupBy("domain").agg(F.sum("pairs").alias("pairs"))
            .where(F.col("domain").isNotNull()))


def top_domains(optout: dict) -> list:
    """The top opted-out domains of opt-out figures (a crawl's, or summed) as [domain, pairs], most first. Figures
    written before domains were ranked hold `top_hosts` instead: their hosts are mapped to their registered domain
    here (at most TOP_DOMAINS of them), so an older root reads on."""
    if "top_domains" in optout:
        return optout["top_domains"]
    from metaclip_spark.optout.domains import registered_domain

    merged: dict = {}
    for host, n in optout.get("top_hosts") or ():
        if (domain := registered_domain(host)) is not None:
            merged[domain] = merged.get(domain, 0) + n
    return sorted(([d, n] for d, n in merged.items()), key=lambda x: (-x[1], x[0]))[:TOP_DOMAINS]


def figures(table: DataFrame, policy: Policy) -> dict:
    """What a crawl's opt-out table holds, for its state: pairs removed, per signal, kind and agent, and its top
    registered domains (the unit the public summary ranks by). Small collects: one row per distinct signal (bounded
    by the policy), TOP_DOMAINS domains."""
    by_signal = {row[REFUSED]: int(row["count"]) for row in table.groupBy(REFUSED).count().collect()}
    by_kind: dict[str, int] = {}
    by_agent: dict[str, int] = {}
    for signal, n in by_signal.items():
        by_kind[signal_kind(signal)] = by_kind.get(signal_kind(signal), 0) + n
        by_agent[signal_agent(signal)] = by_agent.get(signal_agent(signal), 0) + n
    domains = domain_counts(table, "page_url").orderBy(F.desc("pairs"), F.asc("domain")).limit(TOP_DOMAINS).collect()
    return {"policy": policy.digest(), "pairs_removed": sum(by_signal.values()),
            "by_signal": dict(sorted(by_signal.items())), "by_kind": dict(sorted(by_kind.items())),
            "by_agent": dict(sorted(by_agent.items())),
            "top_domains": [[row["domain"], int(row["pairs"])] for row in domains]}


def summed(parts: list[dict | None]) -> dict | None:
    """Crawls' opt-out figures summed (top domains: of each crawl's own top, summed); None when no crawl has any."""
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
    domains: dict = {}
    for part in parts:
        for domain, n in top_domains(part):
            domains[domain] = domains.get(domain, 0) + n
    robots = [p["robots"] for p in parts if p.get("robots")]
    if robots:  # page hosts of each crawl, summed (a host in two crawls counts twice)
        total["robots"] = {key: sum(r[key] for r in robots) for key in ("hosts_with_capture", "hosts_without_capture")}
    total["top_domains"] = sorted(([d, n] for d, n in domains.items()), key=lambda x: (-x[1], x[0]))[:TOP_DOMAINS]
    return total
