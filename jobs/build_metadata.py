"""spark-submit entry point: `spark-submit jobs/build_metadata.py --lang de --output-dir worldwide --wiki-dump DUMP ...`
(same options as `metaclip-spark build-metadata`)."""

import sys

from metaclip_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["build-metadata", *sys.argv[1:]]))
