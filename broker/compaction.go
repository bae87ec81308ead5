package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/floe-io/floe/internal/streamobj"
)

// Object compaction (DESIGN §4, invariant 6): every flush adds one segment
// record per partition it touches, so the metadata store would grow with
// flushes forever. Compaction rewrites a run of a partition's small
// segments into one per-partition stream object and swaps the records in
// one transaction fenced like a flush: O(objects + partitions) keys, not
// O(flushes). The old objects go to garbage collection once nothing
// references them.

// compactionPolicy decides which segments merge.
type compactionPolicy struct {
	minAge      time.Duration // leave recent segments alone (they sit in the tail cache)
	smallBytes  int64         // a segment below this is worth merging
	targetBytes int64         // stop a run at this size
	minRun      int           // merge at least this many segments
}

var defaultCompaction = compactionPolicy{minAge: 30 * time.Second, smallBytes: 8 << 20, targetBytes: 64 << 20, minRun: 4}

func (b *Broker) compactionPolicy() compactionPolicy {
	cp := defaultCompaction
	cp.minAge = b.cfg.CompactionMinAge
	return cp
}

// pickRun returns the first run [i, j) of consecutive small segments of one
// leader epoch, older than minAge, worth merging, or (0, 0).
func (cp compactionPolicy) pickRun(segs []segment, logStart int64, ages func(segment) time.Duration) (int, int) {
	for i := 0; i < len(segs); {
		s := segs[i]
		if s.Last < logStart || s.Len >= cp.smallBytes || ages(s) < cp.minAge {
			i++
			continue
		}
		j, total := i, int64(0)
		for j < len(segs) && segs[j].Len < cp.smallBytes && segs[j].Epoch == s.Epoch &&
			total+segs[j].Len <= cp.targetBytes && ages(segs[j]) >= cp.minAge {
			total += segs[j].Len
			j++
		}
		if j-i >= cp.minRun {
			return i, j
		}
		i = max(j, i+1)
	}
	return 0, 0
}

// compactPartition merges one run of p's segments, if any is worth it, and
// reports whether it did.
func (b *Broker) compactPartition(ctx context.Context, p *partition, cp compactionPolicy, now time.Time) (bool, error) {
	st := p.status()
	if !st.leader || st.deleted {
		return false, nil
	}
	age := func(s segment) time.Duration { return now.Sub(time.UnixMilli(s.MaxTS)) }
	i, j := cp.pickRun(st.segs, st.logStart, age)
	if j == 0 {
		return false, nil
	}
	run := st.segs[i:j]
	var chunks [][]byte
	var size int64
	maxTS, records := int64(-1), int32(0)
	for _, s := range run {
		data, err := b.cache.segment(ctx, s)
		if err != nil {
			return false, err
		}
		chunks = append(chunks, data)
		size += s.Len
		maxTS = max(maxTS, s.MaxTS)
		records += s.Records
	}
	first, last := run[0], run[len(run)-1]
	builder := streamobj.NewBuilder(int(size))
	e := builder.AddChunk(streamobj.Entry{TopicID: p.topic.id, Partition: p.id, BaseOffset: first.Base, LastOffset: last.Last, MaxTimestamp: maxTS, Records: records}, chunks)
	obj := builder.Finish()
	name := streamObjectName(p, first.Base, last.Last)
	if err := b.wal.upload(ctx, name, obj); err != nil {
		return false, fmt.Errorf("uploading %s: %w", name, err)
	}
	merged := segment{Object: name, Pos: e.Pos, Len: e.Len, Base: first.Base, Last: last.Last, MaxTS: maxTS, Records: records, Epoch: first.Epoch}

	w := b.wal
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	p.mu.RLock()
	modRev, segs, leader := p.modRev, p.segs, p.leader
	p.mu.RUnlock()
	if !leader {
		return false, errFenced
	}
	// The run must still be there as read (retention may have moved on).
	at := -1
	for k := range segs {
		if segs[k].Base == first.Base && segs[k].Object == first.Object {
			at = k
			break
		}
	}
	if at < 0 || at+len(run) > len(segs) || segs[at+len(run)-1].Last != last.Last {
		return false, nil
	}
	val, _ := json.Marshal(merged)
	txn := b.meta.Txn().IfModRevision(p.key(), modRev)
	for _, s := range run {
		if s.Base != first.Base {
			txn.Delete(segmentKey(p.topic.id, p.id, s.Base))
		}
	}
	txn.Put(segmentKey(p.topic.id, p.id, first.Base), val)
	if _, err := txn.Commit(ctx); err != nil {
		w.resync(ctx, []*partFlush{{p: p, epoch: st.epoch}})
		return false, err
	}
	p.mu.Lock()
	if p.modRev == modRev {
		next := make([]segment, 0, len(p.segs)-len(run)+1)
		next = append(next, p.segs[:at]...)
		next = append(next, merged)
		next = append(next, p.segs[at+len(run):]...)
		p.segs = next
	}
	p.mu.Unlock()
	b.cache.putObject(name, obj)
	b.m.compactions.Inc()
	b.m.compactedSegments.Add(float64(len(run)))
	return true, nil
}

// streamObjectName names a per-partition object, hash first like flush objects.
func streamObjectName(p *partition, base, last int64) string {
	rest := fmt.Sprintf("obj/%x-%d-%d-%d.fobj", p.topic.id, p.id, base, last)
	h := fnv.New32a()
	h.Write([]byte(rest))
	return fmt.Sprintf("%04x/%s", h.Sum32()&0xffff, rest)
}

// runCompaction compacts the partitions this broker leads, every interval.
func (b *Broker) runCompaction(interval time.Duration, cp compactionPolicy) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
		}
		for _, tp := range b.topics.all() {
			for _, p := range tp.partitions() {
				for n := 0; n < 16 && !b.isClosing(); n++ { // a few runs per partition per round
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					did, err := b.compactPartition(ctx, p, cp, time.Now())
					cancel()
					if err != nil {
						b.log.Warn("compaction failed", "topic", tp.name, "partition", p.id, "err", err)
					}
					if !did {
						break
					}
				}
			}
		}
	}
}
