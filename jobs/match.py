"""spark-submit entry point: `spark-submit jobs/match.py --root DIR ...` (same options as `metaclip-spark match`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["match", *sys.argv[1:]]))
