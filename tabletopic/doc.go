// Package tabletopic turns topics with table.topic.enable=true into Apache
// Iceberg tables, exactly once: a worker per partition this node leads
// converts committed records into Parquet files, and one coordinator per
// table commits them with the partitions' next offsets in the snapshot
// summary, conditional on the snapshot it read. Recovery, after any
// failure, is reading that summary.
//
// # Pieces
//
// Service polls the log (Log: the broker, through a narrow interface) for
// topics and leadership, and runs a tableRunner per table topic with led
// partitions. A runner's session recovers (reads the tables), starts one
// worker per partition, and every table.topic.commit.interval.ms runs a
// round: each worker closes its open Parquet files and hands over a
// checkpoint (files + next offset); the coordinator commits the dead-letter
// table, then the data table. Any failure ends the session: workers stop,
// files not committed become orphans, and the next session recovers from
// what the tables hold. Rows are converted by package convert.
//
// # Exactly once
//
// The data table's snapshot summary holds floe.offsets, the next offset to
// convert of every partition, committed in the same snapshot as the files
// holding every converted record below it. A commit:
//
//  1. loads the table and reads floe.offsets (from the newest snapshot that
//     has them, so a compaction by another engine does not hide them);
//  2. checks that, for every partition it commits, the table's offset is
//     the one this node read at recovery or committed last; if not,
//     another writer (a previous leader, a zombie) committed the partition
//     and the session ends (errFenced);
//  3. appends its files with the merged offsets and floe.commit-id, with
//     the requirement assert-ref-snapshot-id(main = the snapshot read in
//     1), pinned so iceberg-go does not rebase it on retry: nothing can
//     land between 1 and 3. A conflict (another writer's commit on other
//     partitions) goes back to 1.
//
// A commit whose answer is lost (timeout, 5xx) ends the session; recovery
// reads whatever the table holds, so it does not matter whether it landed
// (floe.commit-id tells, for the counters and the log). Records are never
// converted twice into the table because conversion always restarts from
// the offsets committed with the files, and never skipped because offsets
// only move together with the files that hold the records below them.
// Offsets written under another topic id (the topic was deleted and created
// again) are ignored: the new topic backfills into the same table.
//
// # Dead-letter table
//
// Records the converter rejects go, under errors.tolerance invalid_data or
// all, to <table>_dlq (and, at least once, to table.topic.dlq.topic when
// set: dlqtopic.go), which has its own floe.offsets: every rejected
// record below them is in it. Each round commits the dead-letter table
// first (when it has rows), then the data table. After a failure a worker
// resumes from the data table's offset D and dead-letters a record only if
// it is at or past the dead-letter table's offset Q: records in [D, Q) were
// dead-lettered by a round whose data commit did not land. So each rejected
// record is in the dead-letter table exactly once as well. A record that
// became convertible since (its schema was registered late) can then be
// both in the dead-letter table and, once, in the table. Under
// tolerance none, a rejected record stops its table after a round commits
// everything before it; the table restarts on a config change or Retry.
//
// # Upsert and CDC
//
// With table.topic.id.columns and upsert.enable (or cdc.field, which
// implies upsert semantics) the table holds the latest row per key: a
// format-v2 table whose identifier fields are the id columns, made
// required. Each round's commit is one row delta, under the same pinned
// requirement and summary as an append: the keys' new rows, one equality
// delete per table partition holding every key the round touched (it
// removes rows of earlier commits only, by sequence number), and position
// deletes for rows of the round a later record superseded (the worker
// knows where it wrote them). A D (or Debezium d) record deletes its key;
// a record without its id, or with an unknown operation, is a bad record.
// upsert.go has the argument; a round must land in exactly one commit,
// which round guarantees by ending the session on any failed commit.
//
// # Maintenance
//
// Package maintain compacts small data files, expires snapshots and
// removes orphan files, in the background on the node leading partition 0
// (maintenance.go) and on demand through the admin API. Its commits are
// conditional like the data commits and carry floe.offsets forward, and
// expiry keeps the newest snapshot holding them; see its package doc.
//
// # Not yet
//
// Upsert tables do not write
// deletion vectors (format v3) yet, and a partitioned upsert table must be
// partitioned on id columns only. Partitioned append tables
// (table.topic.partition.by) are written with iceberg-go's partitioned
// fanout writer, one set of files per flush, so they have more, smaller
// files than unpartitioned ones. Multi-node clusters: each node commits the partitions it
// leads with the protocol above, which stays exactly once, but nodes then
// commit to a table independently rather than through one coordinator.
package tabletopic
