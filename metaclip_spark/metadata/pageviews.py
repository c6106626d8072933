"""Wikipedia article titles from pageview files, as a Spark job (curation-spec section 2, source 5).

Input: Wikimedia's hourly pageview files (plain or gzipped), one `domain_code page_title views bytes` line per
page and hour, e.g. `en Main_Page 242332 0`. Rules: desktop lines of the language's Wikipedia only (domain code
exactly the language code, "en" or "zh"; "en.m" is mobile, "en.d" Wiktionary, ...); hourly lines under 50 views are ignored; titles containing ":"
(other namespaces: "Special:", "File:", ...) are dropped; "_" becomes a space; a title is kept when its views
over all the given files add up to >= 70. Lines that are not four space-separated fields with a whole number of
views are skipped and counted as malformed. Titles are used as they appear in the files (not percent-decoded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DESKTOP_ENGLISH = "en"


def desktop_domain_code(lang: str) -> str:
    """The pageview domain code of a language's desktop Wikipedia: its code as in the wiki's host name ("zh-yue")."""
    return lang.strip().lower().replace("_", "-")


@dataclass
class PageviewTitles:
    """Line counters by outcome and the kept titles (views descending, then title)."""

    lines: dict[str, int]
    titles: list[tuple[str, int]] = field(default_factory=list)


def pageview_titles(spark, paths: list[str], min_total_views: int = 70, min_hourly_views: int = 50,
                    domain_code: str = DESKTOP_ENGLISH) -> PageviewTitles:
    """Titles with >= min_total_views views summed over the files, from hourly lines with >= min_hourly_views."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from pyspark.errors import AnalysisException

    from metaclip_spark.errors import InputError

    try:
        lines = spark.read.text(list(paths))
    except AnalysisException as e:  # a missing file or a glob matching nothing
        raise InputError(f"pageview files not readable: {e.getMessage().splitlines()[0]}") from None
    fields = F.split(F.col("value"), " ")
    parsed = lines.select(
        # get() gives NULL past the end of a short line (getItem fails under ANSI mode).
        F.size(fields).alias("n_fields"), F.get(fields, 0).alias("domain"), F.get(fields, 1).alias("title"),
        # A view count must be a whole number: anything else makes the line malformed.
        F.when(F.get(fields, 2).rlike(r"^[0-9]{1,18}$"), F.get(fields, 2).cast("long")).alias("views"),
    )
    outcome = (F.when((F.col("n_fields") != 4) | F.col("views").isNull() | (F.col("title") == ""), "malformed")
               .when(F.col("domain") != domain_code, "other_domain")
               .when(F.col("views") < min_hourly_views, "under_hourly_views")
               .when(F.col("title").contains(":"), "title_with_colon")
               .otherwise("used"))
    classified = parsed.select(outcome.alias("outcome"), "title", "views").persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counters = {row["outcome"]: int(row["count"]) for row in classified.groupBy("outcome").count().collect()}
        totals = (classified.where(F.col("outcome") == "used")
                  .groupBy(F.regexp_replace("title", "_", " ").alias("title"))
                  .agg(F.sum("views").alias("views"))
                  .where(F.col("views") >= min_total_views)
                  .orderBy(F.desc("views"), "title"))
        titles = [(row["title"], int(row["views"])) for row in totals.collect()]
    finally:
        classified.unpersist()
    return PageviewTitles(lines=counters, titles=titles)
