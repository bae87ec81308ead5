package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// The cluster lives in four metadata prefixes (DESIGN §6):
//
//	brokers/<node>            a live broker's registration, on its lease
//	controller                the elected controller, on its lease
//	leaders/<topicid>/<p>     a partition's assigned leader and epoch (controller writes)
//	load/<node>               a broker's measured per-partition throughput, on its lease
//
// Every broker mirrors the first three through watches (clusterView) and
// acts on the assignments that name it (leadership.go). The partition
// record (partitions/...) stays the fencing point: a new leader bumps its
// epoch to the assigned one, so a stale leader's next commit fails.
const (
	brokersPrefix = "brokers/"
	controllerKey = "controller"
	leadersPrefix = "leaders/"
	loadPrefix    = "load/"
)

func brokerKey(id int32) string { return brokersPrefix + strconv.Itoa(int(id)) }
func leaderKey(id [16]byte, p int32) string {
	return leadersPrefix + hex.EncodeToString(id[:]) + "/" + strconv.Itoa(int(p))
}
func loadKey(id int32) string { return loadPrefix + strconv.Itoa(int(id)) }

// brokerReg is a broker's registration. Incarnation changes with every
// registration, so the controller can tell a restarted broker (whose
// partitions need a new epoch) from one that kept its lease.
type brokerReg struct {
	NodeID      int32  `json:"node_id"`
	Host        string `json:"host"`
	Port        int32  `json:"port"`
	Rack        string `json:"rack,omitempty"`
	Incarnation string `json:"incarnation"`
	// Draining brokers are shutting down: the controller moves their
	// partitions and coordinators away and gives them nothing new.
	Draining  bool  `json:"draining,omitempty"`
	StartedMs int64 `json:"started_ms"`
}

// controllerReg is the value of the controller key.
type controllerReg struct {
	NodeID      int32  `json:"node_id"`
	Incarnation string `json:"incarnation"`
}

// assignment is a partition's assigned leader. Inc is the incarnation of
// the broker it was made for: a broker only takes partitions assigned to
// its own incarnation.
type assignment struct {
	Leader int32  `json:"leader"`
	Epoch  int32  `json:"epoch"`
	Inc    string `json:"inc"`
	rev    int64
}

type tpKey struct {
	id [16]byte
	p  int32
}

func parseLeaderKey(key string) (tpKey, bool) {
	rest, ok := strings.CutPrefix(key, leadersPrefix)
	if !ok {
		return tpKey{}, false
	}
	idh, ps, ok := strings.Cut(rest, "/")
	if !ok {
		return tpKey{}, false
	}
	idb, err := hex.DecodeString(idh)
	if err != nil || len(idb) != 16 {
		return tpKey{}, false
	}
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 {
		return tpKey{}, false
	}
	var k tpKey
	copy(k.id[:], idb)
	k.p = int32(p)
	return k, true
}

// clusterView mirrors brokers/, controller and leaders/. Readers take
// snapshots; changed() lets waiters sleep until the next change.
type clusterView struct {
	mu         sync.RWMutex
	brokers    map[int32]brokerReg
	controller controllerReg
	hasCtl     bool
	ctlRev     int64
	assign     map[tpKey]assignment
	synced     bool
	changedCh  chan struct{}
}

func newClusterView() *clusterView {
	return &clusterView{
		brokers:   map[int32]brokerReg{},
		assign:    map[tpKey]assignment{},
		changedCh: make(chan struct{}),
	}
}

// changed returns a channel closed at the next change of the view.
func (v *clusterView) changed() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.changedCh
}

// poke wakes waiters without a change of the mirrored keys (a local
// leadership change, which waiters may be watching for too).
func (v *clusterView) poke() {
	v.mu.Lock()
	v.bumpLocked()
	v.mu.Unlock()
}

func (v *clusterView) bumpLocked() {
	close(v.changedCh)
	v.changedCh = make(chan struct{})
}

// apply mirrors one key. It reports whether the key belongs to the view.
func (v *clusterView) applyLocked(kv metastore.KV, deleted bool) {
	switch {
	case strings.HasPrefix(kv.Key, brokersPrefix):
		id, err := strconv.ParseInt(strings.TrimPrefix(kv.Key, brokersPrefix), 10, 32)
		if err != nil {
			return
		}
		if deleted {
			delete(v.brokers, int32(id))
			return
		}
		var r brokerReg
		if json.Unmarshal(kv.Value, &r) == nil {
			v.brokers[int32(id)] = r
		}
	case kv.Key == controllerKey:
		if deleted {
			v.hasCtl, v.controller, v.ctlRev = false, controllerReg{}, 0
			return
		}
		var r controllerReg
		if json.Unmarshal(kv.Value, &r) == nil {
			v.hasCtl, v.controller, v.ctlRev = true, r, kv.ModRevision
		}
	case strings.HasPrefix(kv.Key, leadersPrefix):
		k, ok := parseLeaderKey(kv.Key)
		if !ok {
			return
		}
		if deleted {
			delete(v.assign, k)
			return
		}
		var a assignment
		if json.Unmarshal(kv.Value, &a) == nil {
			a.rev = kv.ModRevision
			v.assign[k] = a
		}
	}
}

// live returns the registered brokers, sorted by node id.
func (v *clusterView) live() []brokerReg {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]brokerReg, 0, len(v.brokers))
	for _, r := range v.brokers {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b brokerReg) int { return int(a.NodeID) - int(b.NodeID) })
	return out
}

func (v *clusterView) broker(id int32) (brokerReg, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, ok := v.brokers[id]
	return r, ok
}

func (v *clusterView) assignment(k tpKey) (assignment, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	a, ok := v.assign[k]
	return a, ok
}

// leaderOf returns a partition's serving leader: assigned, and assigned to
// the live incarnation of its broker.
func (v *clusterView) leaderOf(k tpKey) (assignment, brokerReg, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	a, ok := v.assign[k]
	if !ok {
		return a, brokerReg{}, false
	}
	r, ok := v.brokers[a.Leader]
	if !ok || r.Incarnation != a.Inc {
		return a, r, false
	}
	return a, r, true
}

func (v *clusterView) controllerID() int32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.hasCtl {
		return -1
	}
	return v.controller.NodeID
}

// coordinatorFor places a coordinator key on a live, non-draining broker
// by hashing (DESIGN §6); its state lives in etcd, so a move costs a load.
func (v *clusterView) coordinatorFor(key string) (brokerReg, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return placeKey(v.brokers, key)
}

func placeKey(brokers map[int32]brokerReg, key string) (brokerReg, bool) {
	ids := make([]int32, 0, len(brokers))
	for id, r := range brokers {
		if !r.Draining {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return brokerReg{}, false
	}
	slices.Sort(ids)
	// Rendezvous hashing: a membership change moves only the keys of the
	// broker that came or went.
	var best int32
	var bestScore uint64
	for i, id := range ids {
		h := fnv.New64a()
		h.Write([]byte(key))
		h.Write([]byte{0, byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)})
		s := h.Sum64()
		if i == 0 || s > bestScore {
			best, bestScore = id, s
		}
	}
	return brokers[best], true
}

// watchCluster loads the cluster prefixes and follows them until ctx ends.
// The first load is synchronous so a starting broker sees the cluster.
func (b *Broker) watchCluster(ctx, watchCtx context.Context) error {
	prefixes := []string{brokersPrefix, controllerKey, leadersPrefix}
	revs := make([]int64, len(prefixes))
	v := b.view
	v.mu.Lock()
	for i, pfx := range prefixes {
		kvs, rev, err := b.meta.ListRev(ctx, pfx)
		if err != nil {
			v.mu.Unlock()
			return fmt.Errorf("broker: reading %s: %w", pfx, err)
		}
		for _, kv := range kvs {
			v.applyLocked(kv, false)
		}
		revs[i] = rev
	}
	v.synced = true
	v.bumpLocked()
	v.mu.Unlock()
	for i, pfx := range prefixes {
		ch := b.meta.Watch(watchCtx, pfx, revs[i]+1)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for ev := range ch {
				v.mu.Lock()
				switch ev.Type {
				case metastore.EventPut:
					v.applyLocked(ev.KV, false)
				case metastore.EventDelete:
					v.applyLocked(ev.KV, true)
				case metastore.EventReset:
					v.resetLocked(pfx, ev.Snapshot)
				}
				v.bumpLocked()
				v.mu.Unlock()
				b.clusterChanged()
			}
		}()
	}
	return nil
}

// resetLocked replaces the mirror of one prefix with a snapshot.
func (v *clusterView) resetLocked(prefix string, kvs []metastore.KV) {
	switch prefix {
	case brokersPrefix:
		v.brokers = map[int32]brokerReg{}
	case controllerKey:
		v.hasCtl, v.controller = false, controllerReg{}
	case leadersPrefix:
		v.assign = map[tpKey]assignment{}
	}
	for _, kv := range kvs {
		v.applyLocked(kv, false)
	}
}

// clusterChanged wakes the loops that act on the view.
func (b *Broker) clusterChanged() {
	select {
	case b.leadershipKick <- struct{}{}:
	default:
	}
	select {
	case b.controllerKick <- struct{}{}:
	default:
	}
}

// waitView waits until cond holds for the view, or the timeout passes.
func (b *Broker) waitView(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := b.view.changed()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		case <-ctx.Done():
			return false
		case <-b.closing:
			return false
		}
	}
}
