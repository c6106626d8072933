"""spark-submit entry point: `spark-submit jobs/extract.py --manifest warc.paths.gz --input-base BASE --output DIR`
(same options as `metaclip-spark extract`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["extract", *sys.argv[1:]]))
