package maintain

import (
	"fmt"
	"strconv"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Summary properties the table-topic pipeline writes (package tabletopic,
// offsets.go). Maintenance copies the first two forward verbatim; it never
// interprets them.
const (
	summaryOffsets = "floe.offsets"
	summaryTopicID = "floe.topic-id"
	// summaryMaintenance marks a maintenance snapshot: compact.
	summaryMaintenance = "floe.maintenance"
	// summaryMaintenanceID identifies one maintenance commit, to tell
	// whether a commit whose answer was lost landed.
	summaryMaintenanceID = "floe.maintenance-id"
)

// offsetsCarrier returns the newest snapshot, walking back from snap along
// its parents, whose summary carries floe.offsets, and how many snapshots
// lie before it on the way (0: snap itself). It mirrors the lookup of
// tabletopic.committedOffsets, so both read the same snapshot.
func offsetsCarrier(meta table.Metadata, snap *table.Snapshot) (carrier *table.Snapshot, depth int) {
	for s := snap; s != nil; depth++ {
		if s.Summary != nil {
			if _, ok := s.Summary.Properties[summaryOffsets]; ok {
				return s, depth
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return nil, 0
}

// carriedProperties are the pipeline's summary properties a maintenance
// snapshot on top of head must repeat so that the offsets stay readable
// from the newest snapshot even once head's ancestors are expired.
func carriedProperties(meta table.Metadata, head *table.Snapshot) iceberg.Properties {
	props := iceberg.Properties{}
	carrier, _ := offsetsCarrier(meta, head)
	if carrier == nil {
		return props
	}
	for _, k := range []string{summaryOffsets, summaryTopicID} {
		if v, ok := carrier.Summary.Properties[k]; ok {
			props[k] = v
		}
	}
	return props
}

// onlyAppendsSince reports whether head descends from base through
// snapshots that only appended data files: nothing removed, no delete files
// added. A rewrite planned at base is then equally valid on head. When not,
// why names the first snapshot that prevents it.
func onlyAppendsSince(meta table.Metadata, base, head int64) (ok bool, why string) {
	for id := head; id != base; {
		s := meta.SnapshotByID(id)
		if s == nil {
			return false, fmt.Sprintf("snapshot %d is not in the table's history", id)
		}
		if s.Summary == nil || s.Summary.Operation != table.OpAppend {
			op := "unknown"
			if s.Summary != nil {
				op = string(s.Summary.Operation)
			}
			return false, fmt.Sprintf("snapshot %d is a %s, not an append", id, op)
		}
		for _, k := range []string{"deleted-data-files", "added-delete-files", "removed-delete-files",
			"added-position-delete-files", "added-equality-delete-files", "added-dvs"} {
			if n, _ := strconv.ParseInt(s.Summary.Properties[k], 10, 64); n != 0 {
				return false, fmt.Sprintf("snapshot %d has %s=%d", id, k, n)
			}
		}
		if s.ParentSnapshotID == nil {
			return false, fmt.Sprintf("snapshot %d does not descend from %d", head, base)
		}
		id = *s.ParentSnapshotID
	}
	return true, ""
}
