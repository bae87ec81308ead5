package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// The controller is one broker, elected through the controller key on its
// lease. It is the only writer of leaders/: it gives every partition a
// leader among the live brokers (a dead or restarted leader's partitions
// get a new epoch), carries out reassignments, and balances load. Every
// write is conditional on the controller key's revision, so a deposed
// controller cannot write.

// controllerState is what the controller keeps between rounds.
type controllerState struct {
	rev          int64 // mod revision of our controller key
	lastBalance  time.Time
	reconciled   bool
	mu           sync.Mutex
	balance      BalanceStatus
	reassignedAt map[tpKey]time.Time
}

// runController campaigns for the controller key and, when it holds it,
// keeps the assignments right until it loses it.
func (b *Broker) runController() {
	for {
		select {
		case <-b.closing:
			return
		default:
		}
		rev, err := b.campaign()
		if err != nil {
			b.log.Warn("controller campaign failed", "err", err)
		}
		if rev == 0 {
			// Someone else is controller: wait for a change.
			select {
			case <-b.closing:
				return
			case <-b.controllerKick:
			case <-time.After(time.Second):
			}
			continue
		}
		b.log.Info("this broker is the controller", "node", b.cfg.NodeID)
		b.m.controllerChanges.Inc()
		b.lead(rev)
		b.log.Info("this broker is no longer the controller", "node", b.cfg.NodeID)
	}
}

// campaign tries to take the controller key. It returns the key's mod
// revision when this broker holds it, 0 when another broker does. A key
// left by this node's previous incarnation (a crash within the lease TTL)
// is taken over at once: one node id never runs twice.
func (b *Broker) campaign() (int64, error) {
	m := b.currentMember()
	if m == nil || m.reg.Draining {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	val, _ := json.Marshal(controllerReg{NodeID: b.cfg.NodeID, Incarnation: m.reg.Incarnation})
	expect := int64(0)
	kv, err := b.meta.Get(ctx, controllerKey)
	switch {
	case err == nil:
		var cur controllerReg
		if json.Unmarshal(kv.Value, &cur) == nil && cur.NodeID == b.cfg.NodeID {
			if cur.Incarnation == m.reg.Incarnation {
				return kv.ModRevision, nil
			}
			expect = kv.ModRevision // our dead predecessor's
		} else {
			return 0, nil
		}
	case errors.Is(err, metastore.ErrNotFound):
	default:
		return 0, err
	}
	rev, err := b.meta.Txn().IfModRevision(controllerKey, expect).PutWithLease(controllerKey, val, m.lease).Commit(ctx)
	if errors.Is(err, metastore.ErrConflict) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// isController reports whether this broker currently holds the controller key.
func (b *Broker) isController() bool {
	b.view.mu.RLock()
	defer b.view.mu.RUnlock()
	return b.view.hasCtl && b.view.controller.NodeID == b.cfg.NodeID && b.view.controller.Incarnation == b.incarnation()
}

// lead runs the controller's rounds while this broker holds the key.
func (b *Broker) lead(rev int64) {
	cs := &controllerState{rev: rev, reassignedAt: map[tpKey]time.Time{}}
	b.ctlMu.Lock()
	b.ctl = cs
	b.ctlMu.Unlock()
	defer func() {
		b.ctlMu.Lock()
		b.ctl = nil
		b.ctlMu.Unlock()
	}()
	m := b.currentMember()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if !b.stillController(cs, m) {
			return
		}
		b.reconcile(cs)
		cs.reconciled = true
		if time.Since(cs.lastBalance) >= b.cfg.BalanceInterval {
			b.balanceRound(cs)
			cs.lastBalance = time.Now()
		}
		select {
		case <-b.closing:
			return
		case <-m.lease.Done():
			return
		case <-b.controllerKick:
		case <-tick.C:
		}
	}
}

func (b *Broker) stillController(cs *controllerState, m *member) bool {
	select {
	case <-m.lease.Done():
		return false
	default:
	}
	b.view.mu.RLock()
	defer b.view.mu.RUnlock()
	if !b.view.hasCtl {
		// Our own Put may not have reached the mirror yet.
		return b.view.ctlRev <= cs.rev
	}
	return b.view.controller.NodeID == b.cfg.NodeID && b.view.controller.Incarnation == m.reg.Incarnation
}

// eligible returns the brokers that may lead partitions: live, not draining.
func eligible(brokers []brokerReg) map[int32]brokerReg {
	out := map[int32]brokerReg{}
	for _, r := range brokers {
		if !r.Draining {
			out[r.NodeID] = r
		}
	}
	return out
}

// reconcile gives every partition without a serving leader a new one: new
// partitions, partitions of dead brokers, of restarted brokers (new
// incarnation) and of draining brokers.
func (b *Broker) reconcile(cs *controllerState) {
	brokers := b.view.live()
	targets := eligible(brokers)
	if len(targets) == 0 {
		return
	}
	byID := map[int32]brokerReg{}
	for _, r := range brokers {
		byID[r.NodeID] = r
	}
	counts := map[int32]int{}
	for id := range targets {
		counts[id] = 0
	}
	type work struct {
		k   tpKey
		a   assignment
		has bool
	}
	var todo []work
	b.view.mu.RLock()
	assign := b.view.assign
	for _, t := range b.topics.all() {
		for _, p := range t.partitions() {
			k := tpKey{t.id, p.id}
			a, ok := assign[k]
			if ok {
				if r, live := byID[a.Leader]; live && r.Incarnation == a.Inc && !r.Draining {
					counts[a.Leader]++
					continue
				}
			}
			todo = append(todo, work{k, a, ok})
		}
	}
	b.view.mu.RUnlock()
	if len(todo) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	moved := 0
	for _, w := range todo {
		var target int32 = -1
		if w.has {
			if r, ok := targets[w.a.Leader]; ok && r.Incarnation != w.a.Inc {
				target = w.a.Leader // restarted: give its partitions back, with a new epoch
			}
		}
		if target < 0 {
			target = leastLoaded(counts)
		}
		if err := b.assign(ctx, cs, w.k, targets[target], "failover"); err != nil {
			if errors.Is(err, metastore.ErrConflict) {
				continue // our view lags our own (or a newer) write; the next round sees it
			}
			b.log.Warn("assigning partition leader failed", "topic_id", fmt.Sprintf("%x", w.k.id), "partition", w.k.p, "err", err)
			continue
		}
		counts[target]++
		moved++
	}
	if moved > 0 {
		b.log.Info("controller assigned partition leaders", "partitions", moved)
	}
}

func leastLoaded(counts map[int32]int) int32 {
	ids := make([]int32, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	best := ids[0]
	for _, id := range ids[1:] {
		if counts[id] < counts[best] {
			best = id
		}
	}
	return best
}

// assign writes a partition's new leader with the next epoch, conditional
// on the controller key and on the assignment it replaces.
func (b *Broker) assign(ctx context.Context, cs *controllerState, k tpKey, to brokerReg, why string) error {
	cur, has := b.view.assignment(k)
	var epoch int32
	if has {
		epoch = cur.Epoch + 1
	} else {
		// First assignment: continue from the partition record's epoch
		// (data written before clusters existed, or a lost leaders/ key).
		kv, err := b.meta.Get(ctx, partitionKey(k.id, k.p))
		switch {
		case err == nil:
			var st partitionState
			if err := json.Unmarshal(kv.Value, &st); err != nil {
				return err
			}
			epoch = st.LeaderEpoch + 1
		case errors.Is(err, metastore.ErrNotFound):
			epoch = 1
		default:
			return err
		}
	}
	val, _ := json.Marshal(assignment{Leader: to.NodeID, Epoch: epoch, Inc: to.Incarnation})
	_, err := b.meta.Txn().IfModRevision(controllerKey, cs.rev).IfModRevision(leaderKey(k.id, k.p), cur.rev).Put(leaderKey(k.id, k.p), val).Commit(ctx)
	if err != nil {
		return err
	}
	b.m.leaderChanges.WithLabelValues(why).Inc()
	cs.mu.Lock()
	cs.reassignedAt[k] = time.Now()
	cs.mu.Unlock()
	return nil
}

// controllerState returns the state if this broker is the controller.
func (b *Broker) controllerState() *controllerState {
	b.ctlMu.Lock()
	defer b.ctlMu.Unlock()
	return b.ctl
}

// errNotController is returned by controller-only operations elsewhere.
var errNotController = errors.New("this broker is not the controller")

// reassign moves a partition's leadership to node (AlterPartitionReassignments,
// floectl partition move, the balancer): the old leader is fenced by the
// epoch bump, the new one takes over by reading the partition record. The
// time does not depend on how much data the partition holds.
func (b *Broker) reassign(ctx context.Context, k tpKey, node int32, why string) error {
	cs := b.controllerState()
	if cs == nil {
		return errNotController
	}
	r, ok := b.view.broker(node)
	if !ok || r.Draining {
		return fmt.Errorf("broker %d is not a live broker", node)
	}
	if a, _, ok := b.view.leaderOf(k); ok && a.Leader == node {
		return nil
	}
	return b.assign(ctx, cs, k, r, why)
}

// sortedKeys orders partitions for deterministic choices.
func sortedKeys(m map[tpKey]float64) []tpKey {
	ks := make([]tpKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if c := compareIDs(ks[i].id, ks[j].id); c != 0 {
			return c < 0
		}
		return ks[i].p < ks[j].p
	})
	return ks
}

func compareIDs(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
