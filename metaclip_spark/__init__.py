"""metaclip-spark: MetaCLIP data curation (extract, match, count, balance, report) on Apache Spark."""

__version__ = "0.1.0"
