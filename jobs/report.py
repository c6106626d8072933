"""spark-submit entry point: `spark-submit jobs/report.py --root DIR` (same options as `metaclip-spark report`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
