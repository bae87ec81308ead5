package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Self-balancing (DESIGN §6): every broker measures the bytes in and out of
// each partition it leads and publishes the rates under load/<node> on its
// lease; the controller moves partitions from the most to the least loaded
// broker until loads are within a band of the mean. A partition's weight is
// its measured rate plus a small per-partition term, so idle partitions
// spread by count and busy ones by throughput. Moves are rate-limited: at
// most BalanceMaxMoves per BalanceInterval.

// loadReport is one broker's published measurement.
type loadReport struct {
	NodeID     int32              `json:"node_id"`
	WindowMs   int64              `json:"window_ms"`
	Partitions map[string]float64 `json:"partitions"` // "<topicid>/<p>" -> bytes/s in+out
}

// BalanceStatus is the controller's last balancing round, for floectl and
// the admin API.
type BalanceStatus struct {
	Controller int32           `json:"controller"`
	Band       float64         `json:"band"`
	InBand     bool            `json:"in_band"`
	Brokers    []BrokerLoad    `json:"brokers"`
	Moves      []BalanceMove   `json:"recent_moves"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Pending    []PendingLeader `json:"pending,omitempty"`
}

// BrokerLoad is one broker's share.
type BrokerLoad struct {
	NodeID      int32   `json:"node_id"`
	Partitions  int     `json:"partitions"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	Draining    bool    `json:"draining,omitempty"`
}

// BalanceMove is one partition move the balancer made.
type BalanceMove struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	From      int32     `json:"from"`
	To        int32     `json:"to"`
	Rate      float64   `json:"bytes_per_sec"`
	At        time.Time `json:"at"`
}

// PendingLeader is an assignment not yet taken over.
type PendingLeader struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Leader    int32  `json:"leader"`
	Epoch     int32  `json:"epoch"`
}

const balanceStatusKey = "balance/status"

// runLoadReports publishes this broker's per-partition rates.
func (b *Broker) runLoadReports(interval time.Duration) {
	last := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-tick.C:
		}
		now := time.Now()
		window := now.Sub(last)
		last = now
		rep := loadReport{NodeID: b.cfg.NodeID, WindowMs: window.Milliseconds(), Partitions: map[string]float64{}}
		for _, t := range b.topics.all() {
			for _, p := range t.partitions() {
				n := p.bytesIn.Swap(0) + p.bytesOut.Swap(0)
				if !p.status().leader {
					continue
				}
				rep.Partitions[hex.EncodeToString(t.id[:])+"/"+strconv.Itoa(int(p.id))] = float64(n) / window.Seconds()
			}
		}
		m := b.currentMember()
		if m == nil {
			continue
		}
		val, _ := json.Marshal(rep)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := b.meta.Txn().PutWithLease(loadKey(b.cfg.NodeID), val, m.lease).Commit(ctx); err != nil {
			b.log.Debug("publishing load failed", "err", err)
		}
		cancel()
	}
}

// readLoads returns every partition's last measured rate.
func (b *Broker) readLoads(ctx context.Context) (map[tpKey]float64, error) {
	kvs, err := b.meta.List(ctx, loadPrefix)
	if err != nil {
		return nil, err
	}
	out := map[tpKey]float64{}
	for _, kv := range kvs {
		var rep loadReport
		if json.Unmarshal(kv.Value, &rep) != nil {
			continue
		}
		for s, rate := range rep.Partitions {
			if k, ok := parseLeaderKey(leadersPrefix + s); ok {
				out[k] = rate
			}
		}
	}
	return out, nil
}

// balanceRound makes up to BalanceMaxMoves moves toward balance and records
// the status.
func (b *Broker) balanceRound(cs *controllerState) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rates, err := b.readLoads(ctx)
	if err != nil {
		b.log.Warn("balance: reading loads failed", "err", err)
		return
	}
	brokers := b.view.live()
	targets := eligible(brokers)
	load := map[int32]float64{}
	count := map[int32]int{}
	for id := range targets {
		load[id] = 0
	}
	owned := map[int32]map[tpKey]float64{}
	names := map[[16]byte]string{}
	var total float64
	var n int
	b.view.mu.RLock()
	for _, t := range b.topics.all() {
		names[t.id] = t.name
		for _, p := range t.partitions() {
			k := tpKey{t.id, p.id}
			a, ok := b.view.assign[k]
			if !ok {
				continue
			}
			total += rates[k]
			n++
			if owned[a.Leader] == nil {
				owned[a.Leader] = map[tpKey]float64{}
			}
			owned[a.Leader][k] = rates[k]
		}
	}
	b.view.mu.RUnlock()
	// The per-partition term: 5% of the mean rate, at least 1 byte/s.
	unit := 1.0
	if n > 0 {
		unit = math.Max(1, 0.05*total/float64(n))
	}
	weight := func(k tpKey, r float64) float64 { return r + unit }
	for id, ps := range owned {
		for k, r := range ps {
			if _, ok := targets[id]; ok {
				load[id] += weight(k, r)
			}
			count[id]++
		}
	}
	var moves []BalanceMove
	inBand := true
	if len(targets) >= 2 {
		for range b.cfg.BalanceMaxMoves {
			hi, lo := extremes(load)
			mean := 0.0
			for _, l := range load {
				mean += l
			}
			mean /= float64(len(load))
			if mean == 0 || (load[hi]-load[lo]) <= b.cfg.BalanceBand*mean {
				break
			}
			// The move that best evens the pair, if it strictly helps.
			var best tpKey
			bestPeak := load[hi]
			for _, k := range sortedKeys(owned[hi]) {
				w := weight(k, owned[hi][k])
				if peak := math.Max(load[hi]-w, load[lo]+w); peak < bestPeak {
					best, bestPeak = k, peak
				}
			}
			if bestPeak == load[hi] {
				break
			}
			if time.Since(cs.reassignedAt[best]) < b.cfg.BalanceInterval {
				break // do not bounce a partition we just moved
			}
			w := weight(best, owned[hi][best])
			if err := b.assign(ctx, cs, best, targets[lo], "balance"); err != nil {
				b.log.Warn("balance: move failed", "err", err)
				break
			}
			moves = append(moves, BalanceMove{Topic: names[best.id], Partition: best.p, From: hi, To: lo, Rate: owned[hi][best], At: time.Now()})
			delete(owned[hi], best)
			if owned[lo] == nil {
				owned[lo] = map[tpKey]float64{}
			}
			owned[lo][best] = w - unit
			load[hi] -= w
			load[lo] += w
			count[hi]--
			count[lo]++
		}
		hi, lo := extremes(load)
		mean := 0.0
		for _, l := range load {
			mean += l
		}
		mean /= float64(len(load))
		inBand = mean == 0 || load[hi]-load[lo] <= b.cfg.BalanceBand*mean
	}
	for _, mv := range moves {
		b.log.Info("balance: moved partition", "topic", mv.Topic, "partition", mv.Partition, "from", mv.From, "to", mv.To, "bytes_per_sec", mv.Rate)
	}
	b.m.balanceMoves.Add(float64(len(moves)))
	st := BalanceStatus{Controller: b.cfg.NodeID, Band: b.cfg.BalanceBand, InBand: inBand, UpdatedAt: time.Now()}
	for _, r := range brokers {
		var bps float64
		for _, rate := range owned[r.NodeID] {
			bps += rate
		}
		st.Brokers = append(st.Brokers, BrokerLoad{NodeID: r.NodeID, Partitions: count[r.NodeID], BytesPerSec: bps, Draining: r.Draining})
	}
	cs.mu.Lock()
	st.Moves = append(moves, cs.balance.Moves...)
	if len(st.Moves) > 20 {
		st.Moves = st.Moves[:20]
	}
	cs.balance = st
	cs.mu.Unlock()
	if inBand {
		b.m.balanceInBand.Set(1)
	} else {
		b.m.balanceInBand.Set(0)
	}
	val, _ := json.Marshal(st)
	if _, err := b.meta.Txn().IfModRevision(controllerKey, cs.rev).Put(balanceStatusKey, val).Commit(ctx); err != nil {
		b.log.Debug("balance: writing status failed", "err", err)
	}
}

func extremes(load map[int32]float64) (hi, lo int32) {
	first := true
	for id, l := range load {
		if first {
			hi, lo, first = id, id, false
			continue
		}
		if l > load[hi] || (l == load[hi] && id < hi) {
			hi = id
		}
		if l < load[lo] || (l == load[lo] && id < lo) {
			lo = id
		}
	}
	return hi, lo
}

// ClusterStatus is the admin API's view of the cluster: members, the
// controller, the balancer's last round and assignments not yet taken over.
func (b *Broker) ClusterStatus(ctx context.Context) (BalanceStatus, []brokerReg, error) {
	var st BalanceStatus
	kv, err := b.meta.Get(ctx, balanceStatusKey)
	if err == nil {
		_ = json.Unmarshal(kv.Value, &st)
	}
	st.Controller = b.view.controllerID()
	st.Pending = nil
	for _, t := range b.topics.all() {
		for _, p := range t.partitions() {
			a, _, ok := b.view.leaderOf(tpKey{t.id, p.id})
			if !ok {
				st.Pending = append(st.Pending, PendingLeader{Topic: t.name, Partition: p.id, Leader: a.Leader, Epoch: a.Epoch})
			}
		}
	}
	return st, b.view.live(), nil
}

// AdminClusterJSON renders ClusterStatus for the admin endpoint.
func (b *Broker) AdminClusterJSON(ctx context.Context) ([]byte, error) {
	st, brokers, err := b.ClusterStatus(ctx)
	if err != nil {
		return nil, err
	}
	type brokerOut struct {
		NodeID   int32  `json:"node_id"`
		Addr     string `json:"addr"`
		Rack     string `json:"rack,omitempty"`
		Draining bool   `json:"draining,omitempty"`
	}
	out := struct {
		ClusterID string        `json:"cluster_id"`
		Brokers   []brokerOut   `json:"brokers"`
		Balance   BalanceStatus `json:"balance"`
	}{ClusterID: b.clusterID, Balance: st}
	for _, r := range brokers {
		out.Brokers = append(out.Brokers, brokerOut{NodeID: r.NodeID, Addr: fmt.Sprintf("%s:%d", r.Host, r.Port), Rack: r.Rack, Draining: r.Draining})
	}
	return json.MarshalIndent(out, "", "  ")
}
