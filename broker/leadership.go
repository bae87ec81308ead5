package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// runLeadership makes this broker lead exactly the partitions assigned to
// its incarnation: it takes over new ones (bumping the partition record to
// the assigned epoch, which fences the previous leader) and steps down
// from the others.
func (b *Broker) runLeadership() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		b.applyAssignments()
		select {
		case <-b.closing:
			return
		case <-b.leadershipKick:
		case <-tick.C:
		}
	}
}

type takeover struct {
	p     *partition
	epoch int32
}

// applyAssignments compares the assignments with what this broker leads.
func (b *Broker) applyAssignments() {
	inc := b.incarnation()
	if inc == "" {
		return
	}
	var take []takeover
	changed := false
	for _, t := range b.topics.all() {
		for _, p := range t.partitions() {
			a, ok := b.view.assignment(tpKey{t.id, p.id})
			mine := ok && a.Leader == b.cfg.NodeID && a.Inc == inc
			st := p.status()
			if st.deleted {
				continue
			}
			if st.leader && (!mine || a.Epoch != st.epoch) {
				p.stepDown()
				changed = true
				b.log.Info("stepped down from partition", "topic", t.name, "partition", p.id, "epoch", st.epoch)
			}
			if mine && (!st.leader || st.epoch != a.Epoch) && p.failedEpoch() != a.Epoch {
				take = append(take, takeover{p, a.Epoch})
			}
		}
	}
	if len(take) > 0 {
		b.takeOver(take)
		changed = true
	}
	if changed {
		b.view.poke()
	}
}

// takeOver takes leadership of partitions, in parallel, while no flush
// commits (a flush of ours in flight would otherwise race our own epoch
// bump), and fails whatever is still queued for them from an earlier term.
func (b *Broker) takeOver(take []takeover) {
	start := time.Now()
	b.wal.commitMu.Lock()
	defer b.wal.commitMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for _, tk := range take {
		b.wal.dropQueued(tk.p, kerr.NotLeaderForPartition)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := tk.p.takeLeadership(ctx, tk.epoch)
			if err != nil {
				if !errors.Is(err, errStaleAssignment) {
					b.log.Warn("taking partition leadership failed", "topic", tk.p.topic.name, "partition", tk.p.id, "epoch", tk.epoch, "err", err)
				}
				tk.p.noteFailedEpoch(tk.epoch, err)
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ok > 0 {
		b.m.takeoverSeconds.Observe(time.Since(start).Seconds())
		b.log.Info("took partition leadership", "partitions", ok, "took", time.Since(start).Round(time.Millisecond))
		b.notify.broadcast()
	}
}

// ownsAssigned reports whether this broker leads every partition assigned
// to it (readiness).
func (b *Broker) ownsAssigned() bool {
	inc := b.incarnation()
	for _, t := range b.topics.all() {
		for _, p := range t.partitions() {
			a, ok := b.view.assignment(tpKey{t.id, p.id})
			if ok && a.Leader == b.cfg.NodeID && a.Inc == inc {
				if st := p.status(); !st.deleted && (!st.leader || st.epoch != a.Epoch) {
					return false
				}
			}
		}
	}
	return true
}

// waitLeaders waits until every partition of t has a serving leader that
// has taken over, so a client told "created" finds leaders.
func (b *Broker) waitLeaders(ctx context.Context, t *topic, timeout time.Duration) bool {
	return b.waitView(ctx, timeout, func() bool {
		for _, p := range t.partitions() {
			a, _, ok := b.view.leaderOf(tpKey{t.id, p.id})
			if !ok {
				return false
			}
			if a.Leader == b.cfg.NodeID {
				if st := p.status(); !st.leader || st.epoch != a.Epoch {
					return false
				}
			}
		}
		return true
	})
}
