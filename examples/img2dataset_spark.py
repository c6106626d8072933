"""Download an export with img2dataset's Spark distributor (the driver script of the README's "Downloading the images").

Run it with the Python that has img2dataset (its own environment, not ours; with pyspark of the cluster's Spark
version), for example on one machine:

    python examples/img2dataset_spark.py out/demo-export out/demo-images --master 'local[4]'

or on the cluster that curated (client mode, as docs/cluster.md submits our jobs), with img2dataset's environment
packed by venv-pack for the executors:

    export PYSPARK_PYTHON=./environment/bin/python                   # executors: the unpacked archive
    export PYSPARK_DRIVER_PYTHON=$PWD/.venv-img2dataset/bin/python   # driver: img2dataset's environment
    $SPARK_HOME/bin/spark-submit --master spark://MASTER_HOST:7077 --archives img2dataset-env.tar.gz#environment \\
        examples/img2dataset_spark.py s3://BUCKET/export s3://BUCKET/images

The session is started first, on purpose: img2dataset's pyspark distributor uses the session already running (given
none, it starts a local one), and runs one Spark task per shard of `--samples-per-shard` rows on its executors.
The call below takes the options of the README's img2dataset command (webdataset shards, images as downloaded);
edit it for others (`image_size=384, resize_mode="keep_ratio"` resizes at download).
`make test-roundtrip` runs this script with img2dataset's Python against a Spark standalone cluster on 127.0.0.1
(tests/test_roundtrip.py).
"""

from __future__ import annotations

import argparse

import img2dataset
from pyspark.sql import SparkSession


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="what `metaclip-spark export --to` wrote (Parquet: local, s3://, gs://)")
    parser.add_argument("output", help="img2dataset's output folder (local, s3://, gs://)")
    parser.add_argument("--master", help="Spark master URL (default: the one spark-submit or the Spark conf gives)")
    parser.add_argument("--columns", default="uuid,keep_prob,crawl,lang",
                        help="export columns kept in each sample's JSON (img2dataset's save_additional_columns); "
                             "add metadata_lang for a worldwide root, entries after export --with-entries")
    parser.add_argument("--samples-per-shard", type=int, default=10000, help="rows per shard, i.e. per Spark task")
    parser.add_argument("--threads", type=int, default=32, help="concurrent downloads in each task")
    args = parser.parse_args(argv)

    builder = SparkSession.builder.appName("img2dataset-download")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        img2dataset.download(
            url_list=args.export, input_format="parquet", url_col="url", caption_col="text",
            save_additional_columns=[c for c in args.columns.split(",") if c],
            output_format="webdataset", output_folder=args.output, distributor="pyspark",
            number_sample_per_shard=args.samples_per_shard, thread_count=args.threads,
            resize_mode="no", disable_all_reencoding=True, enable_wandb=False,
        )
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
