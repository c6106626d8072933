"""spark-submit entry point: `spark-submit jobs/export.py --root ROOT --to DIR ...` (same options as `metaclip-spark export`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
