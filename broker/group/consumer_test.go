package group

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

// fakeImage is a mutable set of topics; it serves as the coordinator's
// Topics and TopicImage.
type fakeImage struct {
	mu     sync.Mutex
	topics map[string]int32
}

func newFakeImage(topics map[string]int32) *fakeImage {
	return &fakeImage{topics: topics}
}

func fakeTopicID(name string) topicID {
	sum := sha256.Sum256([]byte(name))
	var id topicID
	copy(id[:], sum[:])
	return id
}

func (f *fakeImage) set(name string, partitions int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topics[name] = partitions
}

func (f *fakeImage) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.topics, name)
}

func (f *fakeImage) TopicMeta(name string) ([16]byte, int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.topics[name]
	return fakeTopicID(name), n, ok
}

func (f *fakeImage) TopicName(id [16]byte) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range f.topics {
		if fakeTopicID(name) == id {
			return name, true
		}
	}
	return "", false
}

func (f *fakeImage) TopicNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for name := range f.topics {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (f *fakeImage) PartitionExists(topic string, p int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.topics[topic]
	return ok && p >= 0 && p < n
}

// cgHarness is a coordinator on a fake clock, an in-memory (or given)
// store and a fake topic image, with simulated KIP-848 members.
type cgHarness struct {
	t     *testing.T
	c     *Coordinator
	clk   *fakeClock
	store Store
	mem   *memStore // store, when it is the in-memory one
	img   *fakeImage
	cfg   Config

	mu    sync.Mutex
	owner map[string]map[topicPartition]string // group -> partition -> member that owns it client-side
}

func newCGHarness(t *testing.T) *cgHarness {
	t.Helper()
	mem := newMemStore()
	h := &cgHarness{t: t, clk: newFakeClock(), store: mem, mem: mem, cfg: testConfig(),
		img:   newFakeImage(map[string]int32{"orders": 8, "clicks": 4, "audit": 2}),
		owner: make(map[string]map[topicPartition]string)}
	h.start()
	return h
}

func (h *cgHarness) start() {
	h.t.Helper()
	c, err := New(h.cfg, h.store, h.img, slog.New(slog.NewTextHandler(io.Discard, nil)), WithClock(h.clk), WithTopicImage(h.img))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	h.t.Cleanup(c.Close)
}

func (h *cgHarness) restart() {
	h.t.Helper()
	h.c.Close()
	h.start()
}

func (h *cgHarness) hb(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	return h.c.ConsumerGroupHeartbeat(context.Background(), Client{ID: "client", Host: "/127.0.0.1"}, req)
}

// member848 is a simulated consumer: it owns exactly what the coordinator
// last assigned it, giving up revoked partitions at once (as a consumer
// that commits and revokes before its next heartbeat).
type member848 struct {
	h        *cgHarness
	group    string
	id       string
	instance *string
	epoch    int32
	owned    partSet
	topics   []string
	regex    *string
	assignor *string
	version  int16
}

func (h *cgHarness) member(group string, topics ...string) *member848 {
	return &member848{h: h, group: group, id: newConsumerMemberID(), topics: topics, owned: partSet{}, version: 1}
}

func (m *member848) request(epoch int32, full bool) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = m.version
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, epoch
	req.RebalanceTimeoutMillis = -1
	if full || epoch == 0 {
		req.InstanceID = m.instance
		req.RebalanceTimeoutMillis = 30_000
		req.ServerAssignor = m.assignor
		if m.regex != nil {
			req.SubscribedTopicRegex = m.regex
		} else {
			req.SubscribedTopicNames = append([]string{}, m.topics...)
		}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if epoch != 0 {
			for _, id := range m.owned.ids() {
				req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: slices.Clone(m.owned[id])})
			}
		}
	}
	return req
}

// join sends a join (epoch 0) and applies the answer.
func (m *member848) join() *kmsg.ConsumerGroupHeartbeatResponse {
	m.h.t.Helper()
	m.release(m.owned)
	m.owned = partSet{}
	resp := m.h.hb(m.request(0, true))
	m.apply(resp)
	return resp
}

// beat sends a full heartbeat with what the member owns.
func (m *member848) beat() *kmsg.ConsumerGroupHeartbeatResponse {
	m.h.t.Helper()
	resp := m.h.hb(m.request(m.epoch, true))
	m.apply(resp)
	return resp
}

// keepalive sends a heartbeat with every optional field null.
func (m *member848) keepalive() *kmsg.ConsumerGroupHeartbeatResponse {
	m.h.t.Helper()
	resp := m.h.hb(m.request(m.epoch, false))
	m.apply(resp)
	return resp
}

func (m *member848) leave() *kmsg.ConsumerGroupHeartbeatResponse {
	m.h.t.Helper()
	req := m.request(leaveEpoch, false)
	resp := m.h.hb(req)
	if resp.ErrorCode == 0 {
		m.release(m.owned)
		m.owned = partSet{}
	}
	return resp
}

func (m *member848) release(s partSet) {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, ps := range s {
		for _, p := range ps {
			tp := topicPartition{id, p}
			if h.owner[m.group][tp] == m.id {
				delete(h.owner[m.group], tp)
			}
		}
	}
}

// apply takes a heartbeat answer: the new epoch, and the assignment if
// there is one. Taking a partition another member still owns is the bug
// KIP-848's reconciliation exists to prevent.
func (m *member848) apply(resp *kmsg.ConsumerGroupHeartbeatResponse) {
	h := m.h
	h.t.Helper()
	if resp.ErrorCode != 0 {
		return
	}
	if resp.MemberID != nil {
		m.id = *resp.MemberID
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment == nil {
		return
	}
	next := partSetOf(len(resp.Assignment.Topics), func(i int) (topicID, []int32) {
		return resp.Assignment.Topics[i].TopicID, resp.Assignment.Topics[i].Partitions
	})
	revoked := partSet{}
	for id, ps := range m.owned {
		for _, p := range ps {
			if !next.has(id, p) {
				revoked.add(id, p)
			}
		}
	}
	m.release(revoked)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owner[m.group] == nil {
		h.owner[m.group] = make(map[topicPartition]string)
	}
	for id, ps := range next {
		for _, p := range ps {
			tp := topicPartition{id, p}
			if o, ok := h.owner[m.group][tp]; ok && o != m.id {
				h.t.Errorf("partition %d of %x given to %s while %s still owns it", p, id[:4], m.id, o)
			}
			h.owner[m.group][tp] = m.id
		}
	}
	m.owned = next
}

func (h *cgHarness) describe(group string) kmsg.ConsumerGroupDescribeResponseGroup {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Version = 1
	req.Groups = []string{group}
	return h.c.ConsumerGroupDescribe(context.Background(), req).Groups[0]
}

// settle heartbeats every member until the group is Stable, and fails if
// it does not get there in a few rounds.
func (h *cgHarness) settle(group string, ms ...*member848) {
	h.t.Helper()
	for range 10 {
		for _, m := range ms {
			if r := m.beat(); r.ErrorCode != 0 {
				h.t.Fatalf("heartbeat of %s: %s", m.id, kerr.ErrorForCode(r.ErrorCode))
			}
		}
		if h.describe(group).State == "Stable" {
			return
		}
	}
	h.t.Fatalf("group %s did not settle: %+v", group, h.describe(group))
}

func ownedCount(ms ...*member848) int {
	n := 0
	for _, m := range ms {
		n += m.owned.count()
	}
	return n
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestConsumerGroupJoinAndRevocationBeforeReassignment(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("g", "orders")
	resp := a.join()
	wantCode(t, "join", resp.ErrorCode, nil)
	if resp.MemberEpoch != 1 || a.owned.count() != 8 || resp.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("first member: epoch %d, %d partitions, interval %d", resp.MemberEpoch, a.owned.count(), resp.HeartbeatIntervalMillis)
	}
	if d := h.describe("g"); d.State != "Stable" || d.Epoch != 1 || d.AssignmentEpoch != 1 || d.AssignorName != "uniform" {
		t.Fatalf("describe: %+v", d)
	}

	b := h.member("g", "orders")
	resp = b.join()
	wantCode(t, "second join", resp.ErrorCode, nil)
	if resp.MemberEpoch != 2 || b.owned.count() != 0 {
		t.Fatalf("second member must wait for a's partitions: epoch %d, owns %d", resp.MemberEpoch, b.owned.count())
	}
	if st := h.describe("g").State; st != "Reconciling" {
		t.Fatalf("state %s, want Reconciling", st)
	}
	// a is told to revoke half, and keeps its epoch until it has.
	resp = a.keepalive()
	if resp.MemberEpoch != 1 || resp.Assignment == nil || a.owned.count() != 4 {
		t.Fatalf("revocation: epoch %d, assignment %v, owns %d", resp.MemberEpoch, resp.Assignment, a.owned.count())
	}
	// b still gets nothing: a has not acknowledged.
	b.beat()
	if b.owned.count() != 0 {
		t.Fatalf("b got %d partitions before a released them", b.owned.count())
	}
	// a acknowledges (reports its 4) and moves to epoch 2.
	if resp = a.beat(); resp.MemberEpoch != 2 {
		t.Fatalf("after acknowledging, a at epoch %d", resp.MemberEpoch)
	}
	b.beat()
	if b.owned.count() != 4 || b.epoch != 2 {
		t.Fatalf("b after the release: %d partitions at epoch %d", b.owned.count(), b.epoch)
	}
	if st := h.describe("g").State; st != "Stable" {
		t.Fatalf("state %s, want Stable", st)
	}
}

func TestConsumerGroupHeartbeatWritesOnlyOnChange(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("g", "orders")
	a.join()
	before := h.mem.writeCount()
	for range 5 {
		wantCode(t, "keepalive", a.keepalive().ErrorCode, nil)
		wantCode(t, "full heartbeat", a.beat().ErrorCode, nil)
	}
	if w := h.mem.writeCount(); w != before {
		t.Fatalf("steady heartbeats wrote %d times", w-before)
	}
	if keys := h.mem.keys("groups/g/"); !slices.Equal(keys, []string{"groups/g/consumer", "groups/g/members/" + a.id}) {
		t.Fatalf("keys: %v", keys)
	}
}

func TestConsumerGroupFencing(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("g", "orders")
	a.join()

	req := a.request(a.epoch+1, false)
	wantCode(t, "epoch ahead", h.hb(req).ErrorCode, kerr.FencedMemberEpoch)
	req = h.member("g", "orders").request(1, false)
	wantCode(t, "unknown member", h.hb(req).ErrorCode, kerr.UnknownMemberID)
	req = h.member("nope", "orders").request(1, false)
	wantCode(t, "unknown group", h.hb(req).ErrorCode, kerr.GroupIDNotFound)
	req = h.member("nope", "orders").request(leaveEpoch, false)
	wantCode(t, "leave unknown group", h.hb(req).ErrorCode, kerr.GroupIDNotFound)

	// The previous epoch is accepted when what the member reports is
	// part of its assignment: the answer that bumped it got lost.
	b := h.member("g", "orders")
	b.join()
	a.beat() // revoke
	prev := a.epoch
	a.beat() // acknowledge: a moves on to epoch 2
	b.beat()
	if a.epoch == prev {
		t.Fatal("a did not move to the next epoch")
	}
	req = a.request(prev, true)
	resp := h.hb(req)
	wantCode(t, "previous epoch", resp.ErrorCode, nil)
	if resp.MemberEpoch != a.epoch || resp.Assignment == nil {
		t.Fatalf("previous epoch answer: %+v", resp)
	}
	// ...but not when the member does not say what it owns, or owns
	// more than it was left with.
	wantCode(t, "previous epoch without owned partitions", h.hb(a.request(prev, false)).ErrorCode, kerr.FencedMemberEpoch)
	req = a.request(prev, true)
	req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: fakeTopicID("orders"), Partitions: b.owned[fakeTopicID("orders")]})
	wantCode(t, "previous epoch owning too much", h.hb(req).ErrorCode, kerr.FencedMemberEpoch)
	wantCode(t, "current epoch still fine", a.beat().ErrorCode, nil)
}

func TestConsumerGroupValidation(t *testing.T) {
	h := newCGHarness(t)
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name   string
		modify func(r *kmsg.ConsumerGroupHeartbeatRequest)
		want   *kerr.Error
	}{
		{"v1 without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"empty group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest},
		{"empty instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = str("") }, kerr.InvalidRequest},
		{"empty rack", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = str("") }, kerr.InvalidRequest},
		{"join without rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest},
		{"join owning partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: fakeTopicID("orders"), Partitions: []int32{0}}}
		}, kerr.InvalidRequest},
		{"join with null owned partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest},
		{"bad epoch", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicRegex = str("orders(") }, kerr.InvalidRegularExpression},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = str("sticky") }, kerr.UnsupportedAssignor},
		{"valid", func(*kmsg.ConsumerGroupHeartbeatRequest) {}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := h.member("valid-"+strings.ReplaceAll(tc.name, " ", "-"), "orders").request(0, true)
			tc.modify(req)
			resp := h.hb(req)
			wantCode(t, tc.name, resp.ErrorCode, tc.want)
			if tc.want != nil && resp.ErrorMessage == nil {
				t.Fatal("an error without a message")
			}
		})
	}
}

func TestConsumerGroupV0MemberID(t *testing.T) {
	h := newCGHarness(t)
	m := h.member("g", "orders")
	m.version, m.id = 0, ""
	resp := m.join()
	wantCode(t, "v0 join", resp.ErrorCode, nil)
	if resp.MemberID == nil || len(*resp.MemberID) != 22 || m.owned.count() != 8 {
		t.Fatalf("v0 join: member %v, %d partitions", resp.MemberID, m.owned.count())
	}
	wantCode(t, "v0 heartbeat", m.keepalive().ErrorCode, nil)
}

func TestConsumerGroupLeaveAndSessionExpiry(t *testing.T) {
	h := newCGHarness(t)
	a, b, c := h.member("g", "orders"), h.member("g", "orders"), h.member("g", "orders")
	a.join()
	b.join()
	c.join()
	h.settle("g", a, b, c)
	if n := ownedCount(a, b, c); n != 8 {
		t.Fatalf("%d partitions owned, want 8", n)
	}
	epoch := h.describe("g").Epoch

	resp := a.leave()
	wantCode(t, "leave", resp.ErrorCode, nil)
	if resp.MemberEpoch != leaveEpoch {
		t.Fatalf("leave answered epoch %d", resp.MemberEpoch)
	}
	if d := h.describe("g"); d.Epoch != epoch+1 || len(d.Members) != 2 {
		t.Fatalf("after leave: %+v", d)
	}
	h.settle("g", b, c)
	if b.owned.count() != 4 || c.owned.count() != 4 {
		t.Fatalf("after leave: b %d, c %d", b.owned.count(), c.owned.count())
	}

	// c stops heartbeating; b keeps going and inherits c's partitions
	// once c's session times out.
	for range 8 {
		h.clk.Advance(h.cfg.ConsumerHeartbeatInterval)
		wantCode(t, "b heartbeat", b.beat().ErrorCode, nil)
	}
	h.clk.Advance(10 * time.Second) // c's last heartbeat is 50s old, b's 10s
	if d := h.describe("g"); len(d.Members) != 1 || d.Members[0].MemberID != b.id {
		t.Fatalf("after c's session expired: %+v", d.Members)
	}
	c.release(c.owned) // c is gone; its client would have lost them
	h.settle("g", b)
	if b.owned.count() != 8 {
		t.Fatalf("b owns %d after c expired", b.owned.count())
	}
	wantCode(t, "expired member", c.keepalive().ErrorCode, kerr.UnknownMemberID)
	b.leave()
	if d := h.describe("g"); d.State != "Empty" {
		t.Fatalf("after everyone left: %s", d.State)
	}
}

func TestConsumerGroupRebalanceTimeoutFences(t *testing.T) {
	h := newCGHarness(t)
	a, b := h.member("g", "orders"), h.member("g", "orders")
	a.join()
	b.join()
	// a is told to revoke, then only sends keepalives, which never
	// acknowledge a revocation.
	a.keepalive()
	if st := h.describe("g").State; st != "Reconciling" {
		t.Fatalf("state %s", st)
	}
	for range 5 {
		h.clk.Advance(5 * time.Second)
		wantCode(t, "keepalive while revoking", a.keepalive().ErrorCode, nil)
		b.beat()
	}
	h.clk.Advance(5 * time.Second) // a's 30s rebalance timeout passes
	wantCode(t, "after the rebalance timeout", a.keepalive().ErrorCode, kerr.UnknownMemberID)
	a.release(a.owned)
	h.settle("g", b)
	if b.owned.count() != 8 {
		t.Fatalf("b owns %d", b.owned.count())
	}
}

func TestConsumerGroupStaticMembers(t *testing.T) {
	h := newCGHarness(t)
	inst := "instance-1"
	a := h.member("g", "orders")
	a.instance = &inst
	b := h.member("g", "orders")
	a.join()
	b.join()
	h.settle("g", a, b)
	aOwned := a.owned.clone()
	epoch := h.describe("g").Epoch

	// Another process with the same instance id cannot join while a holds it.
	a2 := h.member("g", "orders")
	a2.instance = &inst
	wantCode(t, "unreleased instance", a2.join().ErrorCode, kerr.UnreleasedInstanceID)
	req := a2.request(1, false)
	req.InstanceID = &inst
	wantCode(t, "fenced instance", h.hb(req).ErrorCode, kerr.FencedInstanceID)

	// a leaves for now (-2): no rebalance, its partitions stay reserved.
	req = a.request(staticLeaveEpoch, false)
	req.InstanceID = &inst
	resp := h.hb(req)
	wantCode(t, "static leave", resp.ErrorCode, nil)
	if resp.MemberEpoch != staticLeaveEpoch {
		t.Fatalf("static leave answered epoch %d", resp.MemberEpoch)
	}
	a.release(a.owned)
	if d := h.describe("g"); d.Epoch != epoch || len(d.Members) != 2 {
		t.Fatalf("after the static leave: %+v", d)
	}
	b.beat()
	if b.owned.count() != 4 {
		t.Fatalf("b took a's partitions while a was away: %d", b.owned.count())
	}

	// The restarted instance comes back under a new member id and gets the
	// same partitions at once, without a group epoch bump.
	resp = a2.join()
	wantCode(t, "static rejoin", resp.ErrorCode, nil)
	if !a2.owned.equal(aOwned) {
		t.Fatalf("static rejoin got %v, want %v", a2.owned, aOwned)
	}
	if d := h.describe("g"); d.Epoch != epoch || len(d.Members) != 2 || d.State != "Stable" {
		t.Fatalf("after the static rejoin: %+v", d)
	}
	wantCode(t, "old member id", a.keepalive().ErrorCode, kerr.UnknownMemberID)

	// A static member away longer than the session timeout is removed.
	req = a2.request(staticLeaveEpoch, false)
	req.InstanceID = &inst
	wantCode(t, "static leave again", h.hb(req).ErrorCode, nil)
	a2.release(a2.owned)
	for range 10 {
		h.clk.Advance(5 * time.Second)
		b.beat()
	}
	h.settle("g", b)
	if b.owned.count() != 8 || len(h.describe("g").Members) != 1 {
		t.Fatalf("after the static member expired: b owns %d", b.owned.count())
	}
}

func TestConsumerGroupRangeAssignor(t *testing.T) {
	h := newCGHarness(t)
	rng := assignorRange
	var ms []*member848
	for _, id := range []string{"m-a", "m-b", "m-c"} {
		m := h.member("g", "orders", "clicks")
		m.id, m.assignor = id, &rng
		m.join()
		ms = append(ms, m)
	}
	h.settle("g", ms...)
	d := h.describe("g")
	if d.AssignorName != "range" {
		t.Fatalf("assignor %q", d.AssignorName)
	}
	orders, clicks := fakeTopicID("orders"), fakeTopicID("clicks")
	want := map[string][2][]int32{
		"m-a": {{0, 1, 2}, {0, 1}},
		"m-b": {{3, 4, 5}, {2}},
		"m-c": {{6, 7}, {3}},
	}
	for _, m := range ms {
		w := want[m.id]
		if !slices.Equal(m.owned[orders], w[0]) || !slices.Equal(m.owned[clicks], w[1]) {
			t.Fatalf("%s owns orders %v clicks %v, want %v", m.id, m.owned[orders], m.owned[clicks], w)
		}
	}
}

func TestConsumerGroupTopicChanges(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("g", "orders", "later")
	b := h.member("g", "orders", "later")
	a.join()
	b.join()
	h.settle("g", a, b)
	epoch := h.describe("g").Epoch

	// A subscribed topic is created: the next heartbeat bumps the epoch.
	h.img.set("later", 4)
	h.settle("g", a, b)
	if d := h.describe("g"); d.Epoch != epoch+1 || ownedCount(a, b) != 12 {
		t.Fatalf("after creating a topic: epoch %d, owned %d", d.Epoch, ownedCount(a, b))
	}
	// Partitions are added.
	h.img.set("orders", 12)
	h.settle("g", a, b)
	if d := h.describe("g"); d.Epoch != epoch+2 || ownedCount(a, b) != 16 || a.owned.count() != 8 {
		t.Fatalf("after adding partitions: epoch %d, a %d, b %d", d.Epoch, a.owned.count(), b.owned.count())
	}
	// The topic is deleted.
	h.img.remove("later")
	h.settle("g", a, b)
	if d := h.describe("g"); d.Epoch != epoch+3 || ownedCount(a, b) != 12 {
		t.Fatalf("after deleting a topic: epoch %d, owned %d", d.Epoch, ownedCount(a, b))
	}
}

func TestConsumerGroupRegexSubscription(t *testing.T) {
	h := newCGHarness(t)
	re := "or.*|aud.t"
	a := h.member("g")
	a.regex = &re
	a.join()
	if a.owned.count() != 10 {
		t.Fatalf("regex matched %d partitions, want orders and audit (10)", a.owned.count())
	}
	d := h.describe("g")
	if d.Members[0].SubscribedTopicRegex == nil || *d.Members[0].SubscribedTopicRegex != re {
		t.Fatalf("describe regex: %v", d.Members[0].SubscribedTopicRegex)
	}
	// A matching topic created later is picked up within the refresh.
	h.img.set("orders-v2", 2)
	h.clk.Advance(regexRefresh)
	h.settle("g", a)
	if a.owned.count() != 12 {
		t.Fatalf("after a matching topic appeared: %d partitions", a.owned.count())
	}
	// The whole name must match.
	h.img.set("xorders", 2)
	h.clk.Advance(regexRefresh)
	h.settle("g", a)
	if a.owned.count() != 12 {
		t.Fatalf("a partial match was subscribed: %d partitions", a.owned.count())
	}
}

func TestConsumerGroupRejoinInPlace(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("g", "orders")
	a.join()
	epoch := a.epoch
	// The client lost its answer, abandoned everything and joins again
	// with the same id: it is taken back and gets its partitions again.
	resp := a.join()
	wantCode(t, "rejoin", resp.ErrorCode, nil)
	if a.owned.count() != 8 || a.epoch != epoch || len(h.describe("g").Members) != 1 {
		t.Fatalf("rejoin: %d partitions at epoch %d", a.owned.count(), a.epoch)
	}
}

func TestConsumerGroupOffsets(t *testing.T) {
	h := newCGHarness(t)
	a, b := h.member("g", "orders"), h.member("g", "orders")
	a.join()
	commit := func(member string, epoch int32, version int16, partitions ...int32) []int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = version
		req.Group, req.MemberID, req.Generation = "g", member, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders"
		for _, p := range partitions {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, 100+int64(p)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		var codes []int16
		for _, p := range h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions {
			codes = append(codes, p.ErrorCode)
		}
		return codes
	}
	ok := []int16{0}
	if got := commit(a.id, a.epoch, 9, 0); !slices.Equal(got, ok) {
		t.Fatalf("commit at the member epoch: %v", got)
	}
	if got := commit(a.id, a.epoch+1, 9, 0); got[0] != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit ahead of the member epoch: %v", got)
	}
	if got := commit("nobody", 1, 9, 0); got[0] != kerr.UnknownMemberID.Code {
		t.Fatalf("commit by an unknown member: %v", got)
	}
	if got := commit(a.id, a.epoch, 8, 0); got[0] != kerr.UnsupportedVersion.Code {
		t.Fatalf("commit v8 by a consumer-protocol member: %v", got)
	}
	if got := commit("", -1, 9, 0); got[0] != kerr.UnknownMemberID.Code {
		t.Fatalf("simple commit to a group with members: %v", got)
	}

	// b joins; a keeps half and moves to epoch 2. A commit a sent with
	// epoch 1 is accepted for partitions a had at epoch 1 and still has
	// (KIP-1251), refused for the ones it gave up.
	b.join()
	a.beat()
	a.beat()
	b.beat()
	if a.epoch != 2 {
		t.Fatalf("a at epoch %d", a.epoch)
	}
	kept, gone := a.owned[fakeTopicID("orders")][0], b.owned[fakeTopicID("orders")][0]
	if got := commit(a.id, 1, 9, kept, gone); got[0] != 0 || got[1] != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit with the previous epoch: %v", got)
	}

	fetch := func(member *string, epoch int32) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 9
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "g", member, epoch
		req.Groups = append(req.Groups, rg)
		return h.c.OffsetFetch(context.Background(), req).Groups[0].ErrorCode
	}
	wantCode(t, "fetch at the member epoch", fetch(&a.id, a.epoch), nil)
	wantCode(t, "fetch at an old epoch", fetch(&a.id, 1), kerr.StaleMemberEpoch)
	nobody := "nobody"
	wantCode(t, "fetch by an unknown member", fetch(&nobody, 1), kerr.UnknownMemberID)
	wantCode(t, "admin fetch", fetch(nil, -1), nil)

	a.leave()
	b.leave()
	if got := commit("", -1, 9, 3); !slices.Equal(got, ok) {
		t.Fatalf("simple commit to an empty consumer group: %v", got)
	}
}

func TestConsumerGroupAdminAPIs(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("cg", "orders")
	a.join()

	list := func(types ...string) map[string]kmsg.ListGroupsResponseGroup {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = 5
		req.TypesFilter = types
		out := map[string]kmsg.ListGroupsResponseGroup{}
		for _, g := range h.c.ListGroups(context.Background(), req).Groups {
			out[g.Group] = g
		}
		return out
	}
	// A classic group next to it.
	h.c.OffsetCommit(context.Background(), &kmsg.OffsetCommitRequest{Version: 9, Group: "classic", Generation: -1,
		Topics: []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}})
	all := list()
	if g := all["cg"]; g.GroupType != "consumer" || g.ProtocolType != "consumer" || g.GroupState != "Stable" {
		t.Fatalf("listed consumer group: %+v", g)
	}
	if g := all["classic"]; g.GroupType != "classic" {
		t.Fatalf("listed classic group: %+v", g)
	}
	if got := list("Consumer"); len(got) != 1 {
		t.Fatalf("type filter consumer: %v", got)
	}
	if got := list("classic"); len(got) != 1 {
		t.Fatalf("type filter classic: %v", got)
	}

	dg := h.c.DescribeGroups(context.Background(), &kmsg.DescribeGroupsRequest{Version: 6, Groups: []string{"cg"}}).Groups[0]
	if dg.State != "Dead" || dg.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("DescribeGroups of a consumer group: %+v", dg)
	}
	if d := h.describe("classic"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe of a classic group: %+v", d)
	}
	if d := h.describe("none"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe of no group: %+v", d)
	}
	d := h.describe("cg")
	if len(d.Members) != 1 || d.Members[0].MemberType != 1 || d.Members[0].Assignment.TopicPartitions[0].Topic != "orders" ||
		len(d.Members[0].TargetAssignment.TopicPartitions[0].Partitions) != 8 || d.AuthorizedOperations != -2147483648 {
		t.Fatalf("ConsumerGroupDescribe: %+v", d)
	}

	del := func() int16 {
		return h.c.DeleteGroups(context.Background(), &kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{"cg"}}).Groups[0].ErrorCode
	}
	wantCode(t, "delete with members", del(), kerr.NonEmptyGroup)
	a.leave()
	wantCode(t, "delete when empty", del(), nil)
	if keys := h.mem.keys("groups/cg/"); len(keys) != 0 {
		t.Fatalf("keys left after delete: %v", keys)
	}
	if d := h.describe("cg"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe after delete: %+v", d)
	}
}

func TestConsumerAndClassicProtocolsExclude(t *testing.T) {
	h := newCGHarness(t)
	join := func(group, member string) *kmsg.JoinGroupResponse {
		s := joinSpec{member: member}
		return h.c.JoinGroup(context.Background(), Client{ID: "c", Host: "/h"}, joinRequest(group, s))
	}
	// A consumer group with members refuses classic joins.
	a := h.member("g", "orders")
	a.join()
	wantCode(t, "classic join to a consumer group", join("g", "").ErrorCode, kerr.InconsistentGroupProtocol)

	// A classic group with members refuses consumer joins.
	if r := join("classic", ""); r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first classic join: %v", kerr.ErrorForCode(r.ErrorCode))
	} else {
		go join("classic", r.MemberID) // parks in the initial rebalance delay
		deadline := time.Now().Add(5 * time.Second)
		for {
			h.c.mu.Lock()
			g := h.c.groups["classic"]
			h.c.mu.Unlock()
			g.mu.Lock()
			n := len(g.members)
			g.mu.Unlock()
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("classic member did not join")
			}
			time.Sleep(time.Millisecond)
		}
	}
	wantCode(t, "consumer join to a classic group", h.member("classic", "orders").join().ErrorCode, kerr.GroupIDNotFound)

	// An empty consumer group (offsets kept) becomes classic on a classic
	// join, and an empty classic group consumer on a consumer join.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = "g", a.id, a.epoch
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 42}}}}
	wantCode(t, "member commit", h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode, nil)
	a.leave()
	if r := join("g", ""); r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("classic join to an empty consumer group: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if keys := h.mem.keys("groups/g/"); !slices.Equal(keys, []string{"groups/g/offsets/orders/1"}) {
		t.Fatalf("keys after the group turned classic: %v", keys)
	}
	b := h.member("g", "orders")
	wantCode(t, "consumer join to an empty classic group", b.join().ErrorCode, nil)
	if got := h.fetchOffsets("g"); got["orders/1"] != 42 {
		t.Fatalf("offsets after changing protocols twice: %v", got)
	}
}

func (h *cgHarness) fetchOffsets(group string) map[string]int64 {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg)
	out := map[string]int64{}
	for _, t := range h.c.OffsetFetch(context.Background(), req).Groups[0].Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.Offset
		}
	}
	return out
}

func TestConsumerGroupSurvivesRestart(t *testing.T) {
	h := newCGHarness(t)
	a, b := h.member("g", "orders"), h.member("g", "orders")
	a.join()
	b.join()
	a.beat() // a is told to revoke; the restart catches it in the middle
	h.restart()

	d := h.describe("g")
	if d.State != "Reconciling" || d.Epoch != 2 || len(d.Members) != 2 {
		t.Fatalf("after restart: %+v", d)
	}
	h.settle("g", a, b)
	if a.owned.count() != 4 || b.owned.count() != 4 {
		t.Fatalf("after restart: a %d b %d", a.owned.count(), b.owned.count())
	}
	h.restart()
	before := h.mem.writeCount()
	wantCode(t, "heartbeat after restart", a.keepalive().ErrorCode, nil)
	wantCode(t, "heartbeat after restart", b.beat().ErrorCode, nil)
	if h.mem.writeCount() != before {
		t.Fatal("a settled group wrote on its first heartbeats after a restart")
	}
	if d := h.describe("g"); d.State != "Stable" || d.Epoch != 2 {
		t.Fatalf("after the second restart: %+v", d)
	}
}

func TestConsumerGroupFlushFailure(t *testing.T) {
	h := newCGHarness(t)
	a := h.member("g", "orders")
	h.mem.failNext(errInjected)
	wantCode(t, "join while the store fails", a.join().ErrorCode, kerr.CoordinatorNotAvailable)
	wantCode(t, "join again", a.join().ErrorCode, nil)
	if a.owned.count() != 8 || len(h.mem.keys("groups/g/members/")) != 1 {
		t.Fatalf("after the retry: %d partitions, keys %v", a.owned.count(), h.mem.keys("groups/g/"))
	}
}

// TestConsumerGroupChurn runs members joining, leaving, vanishing and
// heartbeating in random order and checks that no partition is ever owned
// by two members, and that the group always settles with every partition
// assigned.
func TestConsumerGroupChurn(t *testing.T) {
	for _, assignor := range assignors {
		t.Run(assignor, func(t *testing.T) {
			h := newCGHarness(t)
			rng := rand.New(rand.NewPCG(1, 2))
			var live []*member848
			add := func() {
				m := h.member("g", "orders", "clicks")
				a := assignor
				m.assignor = &a
				wantCode(t, "join", m.join().ErrorCode, nil)
				live = append(live, m)
			}
			for range 3 {
				add()
			}
			for step := range 300 {
				switch r := rng.IntN(10); {
				case r == 0 && len(live) < 6:
					add()
				case r == 1 && len(live) > 1:
					i := rng.IntN(len(live))
					wantCode(t, "leave", live[i].leave().ErrorCode, nil)
					live = slices.Delete(live, i, i+1)
				case r == 2:
					h.clk.Advance(time.Second)
				default:
					m := live[rng.IntN(len(live))]
					var resp *kmsg.ConsumerGroupHeartbeatResponse
					if rng.IntN(2) == 0 {
						resp = m.keepalive()
					} else {
						resp = m.beat()
					}
					switch resp.ErrorCode {
					case 0:
					case kerr.UnknownMemberID.Code, kerr.FencedMemberEpoch.Code:
						// Fenced (say, it sat on a revocation past its
						// rebalance timeout): rejoin as a client does.
						if resp.ErrorCode == kerr.UnknownMemberID.Code {
							m.id = newConsumerMemberID()
						}
						wantCode(t, "rejoin", m.join().ErrorCode, nil)
					default:
						t.Fatalf("step %d heartbeat: %v", step, kerr.ErrorForCode(resp.ErrorCode))
					}
				}
			}
			h.settle("g", live...)
			if n := ownedCount(live...); n != 12 {
				t.Fatalf("%d partitions owned after settling, want 12", n)
			}
			counts := []int{}
			for _, m := range live {
				counts = append(counts, m.owned.count())
			}
			slices.Sort(counts)
			if assignor == assignorUniform && counts[len(counts)-1]-counts[0] > 1 {
				t.Fatalf("uniform assignment unbalanced: %v", counts)
			}
		})
	}
}

// TestConsumerGroupMetaStoreRestart runs the persistence on the real
// metadata store.
func TestConsumerGroupMetaStoreRestart(t *testing.T) {
	ms := metastoretest.OpenEmbedded(t)
	h := &cgHarness{t: t, clk: newFakeClock(), store: MetaStore(ms), cfg: testConfig(),
		img:   newFakeImage(map[string]int32{"orders": 8}),
		owner: make(map[string]map[topicPartition]string)}
	h.start()
	inst := "i-1"
	a, b := h.member("g/x", "orders"), h.member("g/x", "orders")
	a.instance = &inst
	a.join()
	b.join()
	h.settle("g/x", a, b)
	h.restart()
	d := h.describe("g/x")
	if d.State != "Stable" || len(d.Members) != 2 || d.Epoch != 2 {
		t.Fatalf("after restart: %+v", d)
	}
	wantCode(t, "static member after restart", a.beat().ErrorCode, nil)
	wantCode(t, "dynamic member after restart", b.beat().ErrorCode, nil)
	if a.owned.count()+b.owned.count() != 8 {
		t.Fatalf("owned after restart: %d", a.owned.count()+b.owned.count())
	}
}
