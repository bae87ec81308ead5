package tabletopic

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/apache/iceberg-go/table"
)

// Snapshot summary properties written with every commit. floe.offsets is
// what makes the pipeline exactly-once: the next offset to convert for
// every partition, committed atomically with the files holding everything
// below it.
const (
	summaryOffsets  = "floe.offsets"   // JSON {"0": 1234, ...}
	summaryTopicID  = "floe.topic-id"  // hex; offsets of another topic incarnation do not apply
	summaryCommitID = "floe.commit-id" // random per commit, to recognize one's own commit
	summaryNodeID   = "floe.node-id"

	propTopic   = "floe.topic"
	propTopicID = "floe.topic-id"
)

// offsetMap maps partitions to the next offset to convert.
type offsetMap map[int32]int64

func (m offsetMap) clone() offsetMap { return maps.Clone(m) }

// get returns the committed next offset, or -1 when none is.
func (m offsetMap) get(p int32) int64 {
	if v, ok := m[p]; ok {
		return v
	}
	return -1
}

func (m offsetMap) encode() string {
	out := make(map[string]int64, len(m))
	for p, o := range m {
		out[strconv.Itoa(int(p))] = o
	}
	b, _ := json.Marshal(out) // cannot fail for this type
	return string(b)
}

func decodeOffsets(s string) (offsetMap, error) {
	var raw map[string]int64
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", summaryOffsets, err)
	}
	out := make(offsetMap, len(raw))
	for k, v := range raw {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil || p < 0 || v < 0 {
			return nil, fmt.Errorf("%s: bad entry %q: %d", summaryOffsets, k, v)
		}
		out[int32(p)] = v
	}
	return out, nil
}

// committedOffsets reads the offsets of the newest snapshot, walking back
// from the current one, whose summary carries them: a snapshot another
// writer made (a compaction, a delete) keeps the offsets committed
// before it. Offsets written for another incarnation of the topic
// (deleted and created again under the same name) are ignored: the new
// topic starts from its log start, appending to the same table.
func committedOffsets(tbl *table.Table, topicID [16]byte) (offsetMap, error) {
	meta := tbl.Metadata()
	for snap := tbl.CurrentSnapshot(); snap != nil; {
		if snap.Summary != nil {
			props := snap.Summary.Properties
			if raw, ok := props[summaryOffsets]; ok {
				if id, ok := props[summaryTopicID]; ok && id != hex.EncodeToString(topicID[:]) {
					return offsetMap{}, nil
				}
				return decodeOffsets(raw)
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		snap = meta.SnapshotByID(*snap.ParentSnapshotID)
	}
	return offsetMap{}, nil
}
