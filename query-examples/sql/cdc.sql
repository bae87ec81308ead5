-- Current rows of a database table captured by Debezium, from a table topic
-- in flatten_debezium mode: the envelope's "after" image (the "before"
-- image for deletes) becomes the columns, and _cdc_op holds the operation:
-- r (snapshot read), c (create), u (update), d (delete), t (truncate).
--
--   floectl topic create dbserver1.inventory.customers --partitions 4 \
--     --config table.topic.enable=true \
--     --config table.topic.name=customers \
--     --config table.topic.convert.value.type=by_schema_id \
--     --config table.topic.transform.value.type=flatten_debezium
--
-- (without table.topic.name the table would be
-- default.dbserver1_inventory_customers: dots become underscores).
--
-- floe does not apply CDC deletes to the table yet (every change event is
-- one row), so the current state is the newest event per primary key,
-- unless that event is a delete. Debezium keys records by primary key, so
-- all events of a row are in one partition, ordered by offset. Truncate
-- events (t) carry no image and are left out here; a table that was
-- truncated needs its rows before the truncate's offset dropped too.
--
-- Runs unqualified after USE floe.default (Trino, Spark), or through
--   node duckdb/query.mjs --table default.customers --sql "$(cat sql/cdc.sql)"
SELECT
  id,
  email,
  _cdc_op AS last_op,
  _kafka_metadata.timestamp AS changed_at
FROM (
  SELECT
    c.*,
    ROW_NUMBER() OVER (PARTITION BY id ORDER BY _kafka_metadata.offset DESC) AS change_rank
  FROM customers c
  WHERE _cdc_op IN ('r', 'c', 'u', 'd')
) latest
WHERE change_rank = 1
  AND _cdc_op <> 'd'
ORDER BY id
