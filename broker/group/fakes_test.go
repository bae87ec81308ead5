package group

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
)

// fakeClock is a manual clock: timers fire, in order, inside Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves time forward by d, firing due timers one by one at their
// own time.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.stopped || t.fired {
				continue
			}
			live = append(live, t)
			if !t.at.After(target) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.fired = true
		c.mu.Unlock()
		next.f()
	}
}

// memStore is an in-memory Store with revisions and injectable failures.
type memStore struct {
	mu     sync.Mutex
	rev    int64
	kv     map[string]metastore.KV
	writes int
	fail   error // returned (once) by the next write
}

func newMemStore() *memStore { return &memStore{kv: make(map[string]metastore.KV)} }

var errInjected = errors.New("injected store failure")

func (s *memStore) List(_ context.Context, prefix string) ([]metastore.KV, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metastore.KV
	for k, kv := range s.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *memStore) Apply(_ context.Context, writes []Write) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail; err != nil {
		s.fail = nil
		return 0, err
	}
	s.writes++
	s.rev++
	for _, w := range writes {
		if w.Delete {
			delete(s.kv, w.Key)
		} else {
			s.kv[w.Key] = metastore.KV{Key: w.Key, Value: append([]byte(nil), w.Value...), ModRevision: s.rev}
		}
	}
	return s.rev, nil
}

func (s *memStore) DeletePrefix(_ context.Context, prefix string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail; err != nil {
		s.fail = nil
		return err
	}
	s.writes++
	s.rev++
	for k := range s.kv {
		if strings.HasPrefix(k, prefix) {
			delete(s.kv, k)
		}
	}
	return nil
}

func (s *memStore) failNext(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *memStore) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *memStore) keys(prefix string) []string {
	kvs, _ := s.List(context.Background(), prefix)
	var ks []string
	for _, kv := range kvs {
		ks = append(ks, kv.Key)
	}
	return ks
}

// fakeTopics knows topics and their partition counts.
type fakeTopics map[string]int32

func (f fakeTopics) PartitionExists(topic string, p int32) bool {
	n, ok := f[topic]
	return ok && p >= 0 && p < n
}

// harness is a coordinator on a fake clock and an in-memory store.
type harness struct {
	t     *testing.T
	c     *Coordinator
	clk   *fakeClock
	store *memStore
	cfg   Config
}

const (
	session   = 10 * time.Second
	rebalance = 30 * time.Second
)

func testConfig() Config { return DefaultConfig() }

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), store: newMemStore(), cfg: cfg}
	h.start()
	return h
}

// start (re)creates the coordinator on the harness's store.
func (h *harness) start() {
	h.t.Helper()
	c, err := New(h.cfg, h.store, fakeTopics{"orders": 4, "clicks": 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), WithClock(h.clk))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	h.t.Cleanup(c.Close)
}

func consumerMeta(topics ...string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = topics
	return md.AppendTo(nil)
}

type joinSpec struct {
	version    int16
	member     string
	instance   string
	protoType  string
	protocols  []string
	topics     []string
	sessionDur time.Duration
}

func joinRequest(group string, s joinSpec) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = s.version
	if req.Version == 0 {
		req.Version = 9
	}
	req.Group = group
	req.MemberID = s.member
	if s.instance != "" {
		inst := s.instance
		req.InstanceID = &inst
	}
	req.SessionTimeoutMillis = int32(session.Milliseconds())
	if s.sessionDur != 0 {
		req.SessionTimeoutMillis = int32(s.sessionDur.Milliseconds())
	}
	req.RebalanceTimeoutMillis = int32(rebalance.Milliseconds())
	req.ProtocolType = "consumer"
	if s.protoType != "" {
		req.ProtocolType = s.protoType
	}
	protos := s.protocols
	if protos == nil {
		protos = []string{"range"}
	}
	topics := s.topics
	if topics == nil {
		topics = []string{"orders"}
	}
	for _, p := range protos {
		rp := kmsg.NewJoinGroupRequestProtocol()
		rp.Name = p
		rp.Metadata = consumerMeta(topics...)
		req.Protocols = append(req.Protocols, rp)
	}
	return req
}

// joinAsync starts a JoinGroup that may park.
func (h *harness) joinAsync(group string, s joinSpec) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	req := joinRequest(group, s)
	go func() { ch <- h.c.JoinGroup(context.Background(), Client{ID: "client", Host: "/127.0.0.1"}, req) }()
	return ch
}

// join joins a brand-new member through MEMBER_ID_REQUIRED and returns
// the parked second join.
func (h *harness) newMember(group string, s joinSpec) <-chan *kmsg.JoinGroupResponse {
	h.t.Helper()
	resp := <-h.joinAsync(group, s)
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		h.t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED with an id", resp.ErrorCode, resp.MemberID)
	}
	s.member = resp.MemberID
	return h.joinAsync(group, s)
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no response within 5s")
		var zero T
		return zero
	}
}

func noRecv[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected response %+v", v)
	case <-time.After(50 * time.Millisecond):
	}
}

// waitParked waits until n members of the group have a parked join.
func (h *harness) waitParked(name string, n int) {
	h.t.Helper()
	h.waitFor(func(g *group) bool {
		k := 0
		for _, m := range g.members {
			if m.awaitingJoin() {
				k++
			}
		}
		return k == n
	}, name, "joins parked")
}

func (h *harness) waitSyncParked(name string, n int) {
	h.t.Helper()
	h.waitFor(func(g *group) bool {
		k := 0
		for _, m := range g.members {
			if m.awaitingSync() {
				k++
			}
		}
		return k == n
	}, name, "syncs parked")
}

func (h *harness) waitFor(cond func(*group) bool, name, what string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.c.mu.Lock()
		g := h.c.groups[name]
		h.c.mu.Unlock()
		if g != nil {
			g.mu.Lock()
			ok := cond(g)
			g.mu.Unlock()
			if ok {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	h.t.Fatalf("group %s: timed out waiting for %s", name, what)
}

func (h *harness) state(group string) string {
	resp := h.c.DescribeGroups(context.Background(), &kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{group}})
	return resp.Groups[0].State
}

func (h *harness) syncAsync(group, member string, gen int32, assign map[string]string) <-chan *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	pt, p := "consumer", "range"
	req.ProtocolType, req.Protocol = &pt, &p
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- h.c.SyncGroup(context.Background(), req) }()
	return ch
}

func (h *harness) heartbeat(group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, member, gen
	return h.c.Heartbeat(context.Background(), req).ErrorCode
}

func (h *harness) leave(group string, members ...string) *kmsg.LeaveGroupResponse {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = group
	for _, m := range members {
		req.Members = append(req.Members, kmsg.LeaveGroupRequestMember{MemberID: m})
	}
	return h.c.LeaveGroup(context.Background(), req)
}

// stableGroup forms a Stable group of n dynamic members and returns their
// ids (leader first) and the generation.
func (h *harness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	var chs []<-chan *kmsg.JoinGroupResponse
	for range n {
		chs = append(chs, h.newMember(group, joinSpec{}))
		// One at a time, so the first joiner is deterministically the
		// leader and later ones join the running round.
		h.waitParked(group, len(chs))
	}
	// The initial delay collects the joiners into one round.
	h.clk.Advance(h.cfg.InitialRebalanceDelay)
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chs {
		resps = append(resps, recv(h.t, ch))
	}
	ids := make([]string, n)
	var leader string
	gen := resps[0].Generation
	for i, r := range resps {
		if r.ErrorCode != 0 {
			h.t.Fatalf("join %d: error %d", i, r.ErrorCode)
		}
		ids[i] = r.MemberID
		leader = r.LeaderID
	}
	for i, id := range ids {
		if id == leader {
			ids[0], ids[i] = ids[i], ids[0]
		}
	}
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "assignment-of-" + id
	}
	var syncs []<-chan *kmsg.SyncGroupResponse
	for _, id := range ids[1:] {
		syncs = append(syncs, h.syncAsync(group, id, gen, nil))
	}
	h.waitSyncParked(group, n-1)
	syncs = append(syncs, h.syncAsync(group, ids[0], gen, assign))
	for _, ch := range syncs {
		if r := recv(h.t, ch); r.ErrorCode != 0 {
			h.t.Fatalf("sync: error %d", r.ErrorCode)
		}
	}
	return ids, gen
}
