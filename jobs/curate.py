"""spark-submit entry point: `spark-submit jobs/curate.py --root DIR ...` (same options as `metaclip-spark curate`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["curate", *sys.argv[1:]]))
