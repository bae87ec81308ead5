package chaos

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/floeproc"
)

// brokerFault is what happens to one process in a round of the schedule.
type brokerFault int

const (
	faultKill     brokerFault = iota // SIGKILL a broker, restart it a few seconds later
	faultPause                       // SIGSTOP a broker past its lease TTL, then SIGCONT
	faultTerm                        // SIGTERM (graceful drain), restart
	faultEtcdKill                    // SIGKILL an etcd member, restart it
	numFaults
)

func (f brokerFault) String() string {
	return [...]string{"SIGKILL broker", "SIGSTOP broker", "SIGTERM broker", "SIGKILL etcd member"}[f]
}

// faultNames are the kinds FLOE_CHAOS_FAULTS selects from ("s3" is the
// object-store windows).
var faultNames = map[string]brokerFault{"kill": faultKill, "stop": faultPause, "term": faultTerm, "etcd": faultEtcdKill}

// faultRecord is one fault as it happened.
type faultRecord struct {
	kind   string
	target string
	start  time.Time
	end    time.Time // when the process was back (ready / healthy), or the window closed
	whole  time.Time // when every broker listed every broker live again (process faults)
	note   string
}

// chaos drives faults against the cluster. Process faults run one at a
// time from the test goroutine (so at most one broker and at most one etcd
// member is ever down); object-store windows run alongside from their own
// goroutine.
type chaos struct {
	t       *testing.T
	rng     *rand.Rand
	etcd    *etcdCluster
	brokers []*floeproc.Floe
	proxy   *s3Proxy
	rec     *recorder

	kinds []brokerFault // the process faults to run

	mu     sync.Mutex
	faults []faultRecord
	paused int // broker index under SIGSTOP, or -1
}

func (c *chaos) logFault(f faultRecord) {
	c.mu.Lock()
	c.faults = append(c.faults, f)
	c.mu.Unlock()
	whole := ""
	if !f.whole.IsZero() {
		whole = fmt.Sprintf("; every broker lists all three live %v later", f.whole.Sub(f.end).Round(time.Millisecond))
	}
	c.t.Logf("chaos: %s (%s): %v%s%s", f.kind, f.target, f.end.Sub(f.start).Round(time.Millisecond), f.note, whole)
}

// uniform returns a duration in [lo, hi].
func (c *chaos) uniform(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
}

// runProcessFaults runs rounds of process faults until the deadline: each
// round is every selected kind in a seeded random order, so a run of a few
// minutes sees every kind, with a random pause between faults for the
// cluster to settle.
func (c *chaos) runProcessFaults(until time.Time) {
	c.t.Helper()
	var deck []brokerFault
	for len(c.kinds) > 0 && time.Now().Add(10*time.Second).Before(until) {
		if len(deck) == 0 {
			deck = append(deck, c.kinds...)
			c.rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		}
		f := deck[0]
		deck = deck[1:]
		r := c.runFault(f)
		c.waitBrokersLive(45 * time.Second)
		r.whole = time.Now()
		c.logFault(r)
		time.Sleep(c.uniform(3*time.Second, 8*time.Second))
	}
}

// runFault runs one process fault and returns its record once the process
// is back.
func (c *chaos) runFault(f brokerFault) faultRecord {
	c.t.Helper()
	if f == faultEtcdKill {
		m := c.rng.IntN(len(c.etcd.members))
		down := c.uniform(2*time.Second, 8*time.Second)
		start := time.Now()
		c.rec.event("kill etcd%d", m)
		c.etcd.kill(m)
		time.Sleep(down)
		restart := time.Now()
		c.etcd.restart(m)
		return faultRecord{kind: f.String(), target: fmt.Sprintf("etcd%d", m), start: start, end: time.Now(),
			note: fmt.Sprintf(" (restarted after %v, healthy in %v)", down.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))}
	}
	victim, why := c.pickBroker()
	b := c.brokers[victim]
	target := fmt.Sprintf("broker %d%s", victim, why)
	start := time.Now()
	switch f {
	case faultKill:
		down := c.uniform(2*time.Second, 6*time.Second)
		c.rec.event("kill b%d", victim)
		b.Kill()
		time.Sleep(down)
		restart := time.Now()
		b.Restart()
		return faultRecord{kind: f.String(), target: target, start: start, end: time.Now(),
			note: fmt.Sprintf(" (restarted after %v, ready in %v)", down.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))}
	case faultPause:
		// Longer than the lease TTL: the lease expires while the broker
		// still believes it leads its partitions.
		down := leaseTTL + c.uniform(time.Second, 4*time.Second)
		c.rec.event("stop b%d", victim)
		c.mu.Lock()
		c.paused = victim
		c.mu.Unlock()
		b.Pause()
		time.Sleep(down)
		b.Resume()
		c.mu.Lock()
		c.paused = -1
		c.mu.Unlock()
		return faultRecord{kind: f.String(), target: target, start: start, end: time.Now(),
			note: fmt.Sprintf(" (SIGCONT after %v)", down.Round(time.Millisecond))}
	case faultTerm:
		c.rec.event("term b%d", victim)
		b.Stop()
		stopped := time.Since(start)
		down := c.uniform(time.Second, 4*time.Second)
		time.Sleep(down)
		restart := time.Now()
		b.Restart()
		return faultRecord{kind: f.String(), target: target, start: start, end: time.Now(),
			note: fmt.Sprintf(" (drained and exited in %v, restarted after %v, ready in %v)",
				stopped.Round(time.Millisecond), down.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))}
	}
	panic(fmt.Sprintf("unknown fault %d", f))
}

// pickBroker chooses the victim: half the time the controller (its loss
// moves the controller too), otherwise any broker.
func (c *chaos) pickBroker() (int, string) {
	if c.rng.IntN(2) == 0 {
		if ctl, ok := controllerOf(c.brokers); ok && ctl >= 0 && int(ctl) < len(c.brokers) {
			return int(ctl), ", the controller"
		}
	}
	return c.rng.IntN(len(c.brokers)), ""
}

// resumePaused sends SIGCONT to a broker left stopped by a test that
// failed mid-fault, so its cleanup can stop it.
func (c *chaos) resumePaused() {
	c.mu.Lock()
	i := c.paused
	c.mu.Unlock()
	if i >= 0 && c.brokers[i].Running() {
		c.brokers[i].Resume()
	}
}

// runObjectStoreWindows alternates calm periods and fault windows on the
// S3 proxy (errors, latency, or both) until stop is closed. It runs on its
// own goroutine with its own random source.
func (c *chaos) runObjectStoreWindows(rng *rand.Rand, stop <-chan struct{}) {
	proxy, rec := c.proxy, c.rec
	uniform := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	wait := func(d time.Duration) bool {
		select {
		case <-stop:
			return false
		case <-time.After(d):
			return true
		}
	}
	defer proxy.set(proxyFaults{})
	for {
		if !wait(uniform(5*time.Second, 15*time.Second)) {
			return
		}
		var f proxyFaults
		kind := rng.IntN(3)
		if kind != 1 {
			f.ErrorRate = []float64{0.05, 0.10, 0.20}[rng.IntN(3)]
			f.AfterShare = 0.25
		}
		if kind != 0 {
			f.LatencyMin, f.LatencyMax = 200*time.Millisecond, 500*time.Millisecond
		}
		d := uniform(5*time.Second, 15*time.Second)
		rec.event("s3 %s", []string{"errors", "latency", "errors+latency"}[kind])
		start := time.Now()
		proxy.set(f)
		ok := wait(d)
		proxy.set(proxyFaults{})
		c.logFault(faultRecord{kind: "object store", target: f.String(), start: start, end: time.Now()})
		if !ok {
			return
		}
	}
}

// clusterInfo is the part of a broker's /v1/cluster the harness reads.
type clusterInfo struct {
	Brokers []struct {
		NodeID   int32 `json:"node_id"`
		Draining bool  `json:"draining"`
	} `json:"brokers"`
	Balance struct {
		Controller int32 `json:"controller"`
	} `json:"balance"`
}

func readClusterInfo(b *floeproc.Floe) (clusterInfo, error) {
	var ci clusterInfo
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + b.AdminAddr() + "/v1/cluster")
	if err != nil {
		return ci, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ci, fmt.Errorf("/v1/cluster: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&ci)
	return ci, err
}

// controllerOf asks the running brokers which node is the controller.
func controllerOf(brokers []*floeproc.Floe) (int32, bool) {
	for _, b := range brokers {
		if !b.Running() {
			continue
		}
		if ci, err := readClusterInfo(b); err == nil {
			return ci.Balance.Controller, true
		}
	}
	return -1, false
}

// waitBrokersLive waits until every broker lists every broker as live and
// not draining, and returns how long that took: after a fault, the victim
// must be a member again (a broker that never recovers fails the test
// here).
func (c *chaos) waitBrokersLive(timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var last string
	for {
		ok := true
		for i, b := range c.brokers {
			ci, err := readClusterInfo(b)
			if err != nil {
				ok, last = false, fmt.Sprintf("broker %d: %v", i, err)
				break
			}
			live := map[int32]bool{}
			for _, r := range ci.Brokers {
				live[r.NodeID] = !r.Draining
			}
			for j := range c.brokers {
				if !live[int32(j)] {
					ok, last = false, fmt.Sprintf("broker %d does not list broker %d as live: %+v", i, j, ci.Brokers)
					break
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not whole %v after the fault: %s", timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
