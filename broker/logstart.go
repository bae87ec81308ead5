package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// errLogStartRange means a requested log start offset is past the high watermark.
var errLogStartRange = errors.New("log start offset beyond the high watermark")

// advanceLogStart moves a partition's log start offset forward to off
// (DeleteRecords, retention) and drops the segment records wholly below it,
// in one transaction fenced like a flush. It returns the new log start.
// The objects go later, once no segment references them (gc.go).
func (b *Broker) advanceLogStart(ctx context.Context, p *partition, off int64) (int64, error) {
	w := b.wal
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	p.mu.RLock()
	leader, epoch, modRev, hw, logStart, segs, producers := p.leader, p.epoch, p.modRev, p.hw, p.logStart, p.segs, p.producers
	p.mu.RUnlock()
	if !leader {
		return -1, errFenced
	}
	if off > hw {
		return -1, fmt.Errorf("%w: %d > %d", errLogStartRange, off, hw)
	}
	if off <= logStart {
		return logStart, nil
	}
	st := partitionState{LeaderEpoch: epoch, Leader: b.cfg.NodeID, HighWatermark: hw, LogStartOffset: off, Producers: producers}
	val, _ := json.Marshal(st)
	txn := b.meta.Txn().IfModRevision(p.key(), modRev).Put(p.key(), val)
	keep := 0
	for i, s := range segs {
		if s.Last >= off {
			keep = i
			break
		}
		keep = i + 1
		txn.Delete(segmentKey(p.topic.id, p.id, s.Base))
	}
	rev, err := txn.Commit(ctx)
	if err != nil {
		w.resync(ctx, []*partFlush{{p: p, epoch: epoch}})
		return -1, err
	}
	p.mu.Lock()
	if p.modRev == modRev {
		p.modRev, p.logStart = rev, off
		p.segs = append([]segment(nil), p.segs[keep:]...)
	}
	p.mu.Unlock()
	b.notify.broadcast()
	b.log.Info("log start moved", "topic", p.topic.name, "partition", p.id, "log_start", off, "segments_dropped", keep)
	return off, nil
}

// retentionTarget computes how far retention.ms and retention.bytes let the
// log start move: whole segments only, oldest first.
func retentionTarget(st partStatus, retentionMs, retentionBytes, nowMs int64) int64 {
	target := st.logStart
	live := st.segs[sort.Search(len(st.segs), func(i int) bool { return st.segs[i].Last >= st.logStart }):]
	if retentionMs >= 0 {
		for _, s := range live {
			if s.MaxTS >= nowMs-retentionMs {
				break
			}
			target = max(target, s.Last+1)
		}
	}
	if retentionBytes >= 0 {
		var total int64
		for _, s := range live {
			total += s.Len
		}
		for _, s := range live {
			if total <= retentionBytes {
				break
			}
			total -= s.Len
			target = max(target, s.Last+1)
		}
	}
	return min(target, st.hw)
}

// runRetention enforces retention on every partition this broker leads,
// every interval, until the broker closes.
func (b *Broker) runRetention(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
		}
		b.enforceRetention()
	}
}

func (b *Broker) enforceRetention() {
	now := time.Now().UnixMilli()
	for _, t := range b.topics.all() {
		if !contains(splitList(t.config("cleanup.policy")), "delete") {
			continue
		}
		rms, rbytes := t.configInt("retention.ms"), t.configInt("retention.bytes")
		for _, p := range t.partitions() {
			st := p.status()
			if !st.leader {
				continue
			}
			if target := retentionTarget(st, rms, rbytes, now); target > st.logStart {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if _, err := b.advanceLogStart(ctx, p, target); err != nil {
					b.log.Warn("retention failed", "topic", t.name, "partition", p.id, "err", err)
				}
				cancel()
			}
		}
	}
}
