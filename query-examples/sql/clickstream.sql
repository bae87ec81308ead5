-- Events per minute and event type, from a clickstream table topic in
-- flatten mode: the Avro value's fields are columns of default.clicks.
--
--   floectl topic create clicks --partitions 8 \
--     --config table.topic.enable=true \
--     --config table.topic.convert.value.type=by_schema_id \
--     --config table.topic.transform.value.type=flatten
--
-- with values in the Confluent wire format under a schema registered as
-- clicks-value, e.g.
--   {"type":"record","name":"Click","fields":[
--     {"name":"user_id","type":"string"},
--     {"name":"page","type":"string"},
--     {"name":"event_type","type":"string"},
--     {"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}
-- (timestamp-millis becomes an Iceberg timestamptz column).
--
-- The statement names the table unqualified, so it runs as is in
--   Trino:  USE floe.default;            (catalog file trino/floe.properties)
--   Spark:  USE floe.default;            (spark/spark-sql.sh)
--   DuckDB: node duckdb/query.mjs --table default.clicks --sql "$(cat sql/clickstream.sql)"
-- test/tabletopic runs it through DuckDB against a real table topic.
SELECT
  date_trunc('minute', event_time) AS minute,
  event_type,
  count(*) AS events,
  count(DISTINCT user_id) AS users
FROM clicks
GROUP BY date_trunc('minute', event_time), event_type
ORDER BY minute, event_type
