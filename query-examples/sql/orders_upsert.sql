-- Latest state per key of an orders topic: one row per order, the newest
-- value produced for its Kafka key, and no row for a key whose newest
-- record is a tombstone (null value).
--
-- table.topic.upsert.enable=true (the table keeping one row per key, with
-- equality deletes) is NOT implemented yet: floe refuses such a topic with a
-- clear status. What works today is an append-only table topic, every
-- record one row, and this query over it:
--
--   floectl topic create orders --partitions 8 \
--     --config table.topic.enable=true \
--     --config table.topic.convert.value.type=by_schema_id \
--     --config table.topic.transform.value.type=flatten
--
-- with a string key (the order id) and values of a schema like
--   {"type":"record","name":"Order","fields":[
--     {"name":"order_id","type":"string"},
--     {"name":"status","type":"string"},
--     {"name":"amount_cents","type":"long"}]}
--
-- Why the offset orders versions: Kafka sends every record of a key to one
-- partition (while the partition count stays the same), and offsets grow
-- within a partition, so the highest _kafka_metadata.offset of a key is
-- its newest version. A tombstone has every value column null, so
-- "status IS NOT NULL" drops keys whose newest record deleted them.
--
-- Runs unqualified after USE floe.default (Trino, Spark), or through
--   node duckdb/query.mjs --table default.orders --sql "$(cat sql/orders_upsert.sql)"
SELECT
  _kafka_key AS order_key,
  order_id,
  status,
  amount_cents,
  _kafka_metadata.timestamp AS updated_at
FROM (
  SELECT
    o.*,
    ROW_NUMBER() OVER (PARTITION BY _kafka_key ORDER BY _kafka_metadata.offset DESC) AS version_rank
  FROM orders o
  WHERE _kafka_key IS NOT NULL
) latest
WHERE version_rank = 1
  AND status IS NOT NULL
ORDER BY order_key
