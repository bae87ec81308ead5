// Package maintain keeps the Iceberg tables of table topics healthy:
// compaction of small data files toward a target size, snapshot expiry and
// orphan-file cleanup, run in the background by the table's coordinator and
// on demand through the admin API.
//
// # Safety
//
// Table topics are exactly-once because every data commit carries the
// partitions' next offsets (floe.offsets) in its snapshot summary and is
// conditional on the snapshot it read. Maintenance never weakens that:
//
//   - Every maintenance commit asserts that main still points at the
//     snapshot it planned from (assert-ref-snapshot-id, pinned so
//     iceberg-go does not rebase it). It carries that snapshot's
//     floe.offsets and floe.topic-id forward, so the table's newest
//     summary always holds the offsets, even after the snapshots before it
//     are expired. Copying them is exact because nothing can land between
//     the read and the commit.
//   - A compaction whose commit conflicts is re-staged on the new head only
//     when everything committed since is a plain append (no removed data
//     files, no delete files): the rewritten files are still live and hold
//     the same rows, and appended files are untouched. Anything else (a
//     delete, another rewrite) aborts the compaction for this cycle and
//     removes the files it wrote; it is planned again next time.
//   - A compaction reads its input files with their delete files applied
//     (positional, equality, deletion vectors) and writes the survivors.
//     The new files keep the data sequence number of the snapshot the
//     rewrite started from, as Iceberg's rewrite does, so equality deletes
//     committed later still apply to them. Delete files are removed only
//     when iceberg-go proves them dead for the whole rewrite (every data
//     file they could apply to is rewritten).
//   - Expiry keeps every snapshot from the current one back to the newest
//     one carrying floe.offsets, whatever retain-last says, so a snapshot
//     made by another engine (without offsets) never hides them.
//   - Orphan cleanup deletes only files under the table location that no
//     snapshot references and that are older than a grace period (at least
//     MinOrphanAge, one hour), far longer than any commit round keeps
//     written files waiting for their commit.
package maintain
