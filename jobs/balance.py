"""spark-submit entry point: `spark-submit jobs/balance.py --root DIR ...` (same options as `metaclip-spark balance`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["balance", *sys.argv[1:]]))
