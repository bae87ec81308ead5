package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/kbatch"
	"github.com/floe-io/floe/internal/metastore"
)

// partitionState is a partition's record in the metadata store. Every
// flush that touches the partition rewrites it in the same transaction that
// adds the flush's segment, compared against the mod revision the leader
// last saw: a new leader's epoch bump makes a stale leader's commit fail.
type partitionState struct {
	LeaderEpoch    int32 `json:"leader_epoch"`
	Leader         int32 `json:"leader"`
	HighWatermark  int64 `json:"high_watermark"`
	LogStartOffset int64 `json:"log_start_offset"`
	// Producers is the committed idempotent-producer state (producers.go).
	Producers map[int64]producerEntry `json:"producers,omitempty"`
}

// segment locates a run of one partition's batches inside an object.
type segment struct {
	Object  string `json:"o"`
	Pos     int64  `json:"p"`
	Len     int64  `json:"l"`
	Base    int64  `json:"b"`
	Last    int64  `json:"e"`
	MaxTS   int64  `json:"t"`
	Records int32  `json:"n"`
	Epoch   int32  `json:"pe"` // leader epoch of the flush that wrote it
}

// partition is the leader's in-memory view of one partition's log.
type partition struct {
	b     *Broker
	topic *topic
	id    int32

	mu       sync.RWMutex
	leader   bool
	deleted  bool
	epoch    int32
	modRev   int64 // mod revision of the partition record we last wrote or read
	hw       int64 // next offset to assign == high watermark (everything flushed is committed)
	logStart int64
	segs     []segment // sorted by Base; replaced, never mutated, so readers may keep a snapshot

	producers map[int64]producerEntry    // committed; replaced, never mutated
	pending   map[int64]*pendingProducer // accepted, not yet committed
	failed    int32                      // an assigned epoch that could not be taken

	// Bytes produced and fetched since the last load report (balance.go).
	bytesIn, bytesOut atomic.Int64
}

func newPartition(b *Broker, t *topic, id int32) *partition {
	return &partition{b: b, topic: t, id: id}
}

func (p *partition) key() string { return partitionKey(p.topic.id, p.id) }

// errStaleAssignment: the partition record already carries the assigned
// epoch or a later one; a newer assignment is on its way.
var errStaleAssignment = errors.New("assignment epoch is not newer than the partition's")

// takeLeadership sets the partition record's leader epoch to the assigned
// one and loads its committed state: reading metadata is all a new leader
// needs. The epoch bump changes the record's revision, so the previous
// leader's next commit fails (DESIGN invariant 3).
func (p *partition) takeLeadership(ctx context.Context, epoch int32) error {
	for attempt := 0; ; attempt++ {
		var st partitionState
		kv, err := p.b.meta.Get(ctx, p.key())
		switch {
		case err == nil:
			if err := json.Unmarshal(kv.Value, &st); err != nil {
				return fmt.Errorf("partition record: %w", err)
			}
		case errors.Is(err, metastore.ErrNotFound):
			kv.ModRevision = 0
		default:
			return err
		}
		if st.LeaderEpoch >= epoch {
			return fmt.Errorf("%w: record %d, assigned %d", errStaleAssignment, st.LeaderEpoch, epoch)
		}
		st.LeaderEpoch = epoch
		st.Leader = p.b.cfg.NodeID
		val, _ := json.Marshal(st)
		rev, err := p.b.meta.CAS(ctx, p.key(), kv.ModRevision, val)
		if errors.Is(err, metastore.ErrConflict) && attempt < 10 {
			// The previous leader committed a flush in between: read again.
			continue
		}
		if err != nil {
			return fmt.Errorf("taking leadership: %w", err)
		}
		segs, err := p.loadSegments(ctx)
		if err != nil {
			return err
		}
		if n := len(segs); n > 0 && segs[n-1].Last+1 != st.HighWatermark {
			return fmt.Errorf("metadata inconsistent: last segment ends at %d, high watermark %d", segs[n-1].Last, st.HighWatermark)
		}
		p.mu.Lock()
		p.leader, p.epoch, p.modRev = true, st.LeaderEpoch, rev
		p.hw, p.logStart, p.segs = st.HighWatermark, st.LogStartOffset, segs
		p.producers, p.pending = st.Producers, nil
		p.failed = 0
		p.mu.Unlock()
		return nil
	}
}

// stepDown stops leading: produce and fetch answer NOT_LEADER_OR_FOLLOWER
// and queued batches fail at the next flush (the client retries them on
// the new leader, deduplicated there by the committed producer state).
func (p *partition) stepDown() {
	p.mu.Lock()
	p.leader = false
	p.mu.Unlock()
}

// noteFailedEpoch remembers an assignment that cannot be taken (stale), so
// the leadership loop does not retry it every second.
func (p *partition) noteFailedEpoch(epoch int32, err error) {
	if !errors.Is(err, errStaleAssignment) {
		return
	}
	p.mu.Lock()
	p.failed = epoch
	p.mu.Unlock()
}

func (p *partition) failedEpoch() int32 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.failed
}

func (p *partition) loadSegments(ctx context.Context) ([]segment, error) {
	kvs, err := p.b.meta.List(ctx, segmentPrefix(p.topic.id, p.id))
	if err != nil {
		return nil, err
	}
	segs := make([]segment, 0, len(kvs))
	for _, kv := range kvs {
		var s segment
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return nil, fmt.Errorf("segment %s: %w", kv.Key, err)
		}
		segs = append(segs, s)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Base < segs[j].Base })
	return segs, nil
}

func (p *partition) markDeleted() {
	p.mu.Lock()
	p.deleted, p.leader = true, false
	p.mu.Unlock()
}

// status is a consistent snapshot of the partition's offsets.
type partStatus struct {
	leader   bool
	deleted  bool
	epoch    int32
	hw       int64
	logStart int64
	segs     []segment
}

func (p *partition) status() partStatus {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return partStatus{leader: p.leader, deleted: p.deleted, epoch: p.epoch, hw: p.hw, logStart: p.logStart, segs: p.segs}
}

// errOffsetOutOfRange is returned by read for offsets outside the log.
var errOffsetOutOfRange = errors.New("offset out of range")

// read returns whole batches starting with the one holding offset, up to
// maxBytes (the first batch is returned even if larger, per KIP-74).
func (p *partition) read(ctx context.Context, st partStatus, offset int64, maxBytes int) ([]byte, error) {
	if offset < st.logStart || offset > st.hw {
		return nil, errOffsetOutOfRange
	}
	if offset == st.hw {
		return nil, nil
	}
	i := sort.Search(len(st.segs), func(i int) bool { return st.segs[i].Last >= offset })
	var out []byte
	for ; i < len(st.segs); i++ {
		seg := st.segs[i]
		data, err := p.b.cache.segment(ctx, seg)
		if err != nil {
			if len(out) > 0 {
				return out, nil // what was read is good; the next fetch retries the rest
			}
			return nil, err
		}
		full := false
		err = kbatch.Iterate(data, func(h kbatch.Header, batch []byte) bool {
			if h.LastOffset() < offset {
				return true
			}
			if len(out) > 0 && len(out)+len(batch) > maxBytes {
				full = true
				return false
			}
			out = append(out, batch...)
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("segment %s@%d: %w", seg.Object, seg.Pos, err)
		}
		if full || len(out) >= maxBytes {
			break
		}
	}
	return out, nil
}

// offsetForTimestamp returns the first offset whose timestamp is >= ts, or
// -1 if none is. Batches are located by their max timestamp; within an
// uncompressed batch the exact record is found.
func (p *partition) offsetForTimestamp(ctx context.Context, ts int64) (int64, int64, error) {
	st := p.status()
	for _, seg := range st.segs {
		if seg.MaxTS < ts || seg.Last < st.logStart {
			continue
		}
		data, err := p.b.cache.segment(ctx, seg)
		if err != nil {
			return -1, -1, err
		}
		found, foundTS := int64(-1), int64(-1)
		err = kbatch.Iterate(data, func(h kbatch.Header, batch []byte) bool {
			if h.MaxTimestamp < ts || h.LastOffset() < st.logStart {
				return true
			}
			found, foundTS = h.BaseOffset, h.MaxTimestamp
			if h.Compression() == 0 && !h.LogAppendTime() {
				done := false
				_ = kbatch.ReadRecords(batch[kbatch.HeaderSize:], int(h.NumRecords), func(i int, r kbatch.Record) {
					rts, off := h.FirstTimestamp+r.TimestampDelta, h.BaseOffset+int64(i)
					if !done && rts >= ts && off >= st.logStart {
						found, foundTS, done = off, rts, true
					}
				})
			}
			return false
		})
		if err != nil {
			return -1, -1, err
		}
		if found >= 0 {
			if found < st.logStart {
				found = st.logStart
			}
			return found, foundTS, nil
		}
	}
	return -1, -1, nil
}

// maxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3), at batch granularity.
func (p *partition) maxTimestamp(ctx context.Context) (int64, int64, error) {
	st := p.status()
	best, bestTS := int64(-1), int64(-1)
	for _, seg := range st.segs {
		if seg.MaxTS > bestTS && seg.Last >= st.logStart {
			best, bestTS = seg.Last, seg.MaxTS
		}
	}
	return best, bestTS, nil
}

// ledPartition resolves a partition of topic t that this broker leads and
// checks the client's current leader epoch (KIP-320; -1 means unknown),
// returning the Kafka error to answer otherwise.
func ledPartition(t *topic, id, currentEpoch int32) (*partition, partStatus, *kerr.Error) {
	var p *partition
	if t != nil {
		p = t.partition(id)
	}
	if p == nil {
		return nil, partStatus{}, kerr.UnknownTopicOrPartition
	}
	ps := p.status()
	switch {
	case ps.deleted:
		return nil, ps, kerr.UnknownTopicOrPartition
	case !ps.leader:
		return nil, ps, kerr.NotLeaderForPartition
	case currentEpoch >= 0 && currentEpoch < ps.epoch:
		return nil, ps, kerr.FencedLeaderEpoch
	case currentEpoch > ps.epoch:
		return nil, ps, kerr.UnknownLeaderEpoch
	}
	return p, ps, nil
}
