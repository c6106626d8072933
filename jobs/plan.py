"""spark-submit entry point: `spark-submit jobs/plan.py --root DIR ...` (same options as `metaclip-spark plan`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["plan", *sys.argv[1:]]))
