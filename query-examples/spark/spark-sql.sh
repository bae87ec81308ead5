#!/usr/bin/env bash
# Opens a spark-sql shell on floe's Iceberg REST catalog, as catalog "floe":
#
#   spark-sql> USE floe.default;
#   spark-sql> SHOW TABLES;
#   spark-sql> SELECT count(*) FROM clicks;
#
# Settings (Iceberg's documentation):
#   catalogs:  https://iceberg.apache.org/docs/latest/spark-configuration/#catalogs
#   REST:      https://iceberg.apache.org/docs/latest/rest-catalog/
#   S3FileIO:  https://iceberg.apache.org/docs/latest/aws/#s3-fileio
#              (iceberg-aws-bundle, s3.endpoint, s3.path-style-access,
#               s3.access-key-id, s3.secret-access-key, client.region)
# Not run here (Spark is not on floe's CI machines); DuckDB reads the same
# tables in test/tabletopic.
#
# Environment:
#   FLOE_CATALOG_URI   floe serve --catalog-addr (default http://127.0.0.1:8181)
#   S3_ENDPOINT        the object store floe writes to, for an s3:// warehouse
#                      (floe serve --object-store s3://bucket/prefix?endpoint=...)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
#   SPARK_VERSION      Spark/Scala build of the runtime jar (default 3.5_2.12)
#   ICEBERG_VERSION    Iceberg release (default 1.10.0)
# Extra arguments go to spark-sql, e.g. -e "SELECT ..." or -f query.sql.
set -euo pipefail

catalog_uri=${FLOE_CATALOG_URI:-http://127.0.0.1:8181}
spark_version=${SPARK_VERSION:-3.5_2.12}
iceberg_version=${ICEBERG_VERSION:-1.10.0}

args=(
  # Iceberg's Spark runtime, and the AWS SDK bundle S3FileIO needs.
  --packages "org.apache.iceberg:iceberg-spark-runtime-${spark_version}:${iceberg_version},org.apache.iceberg:iceberg-aws-bundle:${iceberg_version}"
  # SQL extensions: CALL procedures, metadata tables' extra syntax.
  --conf spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions
  # A catalog named floe, served by floe's REST catalog. The server gives
  # its path prefix in GET /v1/config; no prefix setting is needed.
  --conf spark.sql.catalog.floe=org.apache.iceberg.spark.SparkCatalog
  --conf spark.sql.catalog.floe.type=rest
  --conf "spark.sql.catalog.floe.uri=${catalog_uri}"
)

if [ -n "${S3_ENDPOINT:-}" ]; then
  args+=(
    # Read data and metadata files with Iceberg's own S3 client.
    --conf spark.sql.catalog.floe.io-impl=org.apache.iceberg.aws.s3.S3FileIO
    --conf "spark.sql.catalog.floe.s3.endpoint=${S3_ENDPOINT}"
    # S3-compatible servers (MinIO, versitygw) want path-style requests.
    --conf spark.sql.catalog.floe.s3.path-style-access=true
    --conf "spark.sql.catalog.floe.client.region=${AWS_REGION:-us-east-1}"
  )
  if [ -n "${AWS_ACCESS_KEY_ID:-}" ]; then
    # Static keys; without them S3FileIO uses the AWS default credential chain.
    args+=(
      --conf "spark.sql.catalog.floe.s3.access-key-id=${AWS_ACCESS_KEY_ID}"
      --conf "spark.sql.catalog.floe.s3.secret-access-key=${AWS_SECRET_ACCESS_KEY}"
    )
  fi
fi
# Without S3_ENDPOINT the catalog's default FileIO reads file:// warehouses
# (floe serve's default, DATA-DIR/warehouse) on the machine Spark runs on.

exec spark-sql "${args[@]}" "$@"
