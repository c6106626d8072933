"""spark-submit entry point: `spark-submit jobs/count.py --root DIR ...` (same options as `metaclip-spark count`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["count", *sys.argv[1:]]))
