package group

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListAndDescribe(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, _ := h.stableGroup("stable", 2)
	h.commit("empty", "", -1, "orders", 0, 1)
	h.newMember("preparing", joinSpec{})
	h.waitParked("preparing", 1)

	list := func(version int16, states, types []string) []string {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version, req.StatesFilter, req.TypesFilter = version, states, types
		resp := h.c.ListGroups(context.Background(), req)
		var names []string
		for _, g := range resp.Groups {
			names = append(names, g.Group+":"+g.GroupState+":"+g.ProtocolType+":"+g.GroupType)
		}
		return names
	}
	tests := []struct {
		name          string
		version       int16
		states, types []string
		want          []string
	}{
		{name: "all", version: 5, want: []string{"empty:Empty::classic", "preparing:PreparingRebalance:consumer:classic", "stable:Stable:consumer:classic"}},
		{name: "state filter ignores case", version: 4, states: []string{"stable", "EMPTY"}, want: []string{"empty:Empty::classic", "stable:Stable:consumer:classic"}},
		{name: "type filter classic", version: 5, types: []string{"Classic"}, want: []string{"empty:Empty::classic", "preparing:PreparingRebalance:consumer:classic", "stable:Stable:consumer:classic"}},
		{name: "type filter consumer", version: 5, types: []string{"consumer"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := list(tt.version, tt.states, tt.types)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}

	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version, req.IncludeAuthorizedOperations = 6, true
	req.Groups = []string{"stable", "preparing", "ghost"}
	resp := h.c.DescribeGroups(context.Background(), req)
	st := resp.Groups[0]
	if st.State != "Stable" || st.Protocol != "range" || st.ProtocolType != "consumer" || len(st.Members) != 2 || st.AuthorizedOperations != groupOperations {
		t.Fatalf("stable: %+v", st)
	}
	if m := st.Members[0]; m.MemberID != ids[0] || string(m.MemberAssignment) != "assignment-of-"+ids[0] || len(m.ProtocolMetadata) == 0 || m.ClientHost != "/127.0.0.1" {
		t.Fatalf("stable member: %+v", m)
	}
	if pr := resp.Groups[1]; pr.State != "PreparingRebalance" || pr.Protocol != "" || len(pr.Members) != 1 || pr.Members[0].ProtocolMetadata != nil {
		t.Fatalf("preparing: %+v", pr)
	}
	if gh := resp.Groups[2]; gh.State != "Dead" || gh.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ghost v6: %+v", gh)
	}
	req.Version = 5
	if gh := h.c.DescribeGroups(context.Background(), req).Groups[2]; gh.State != "Dead" || gh.ErrorCode != 0 {
		t.Fatalf("ghost v5: %+v", gh)
	}
}

func TestDeleteGroups(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup("busy", 1)
	h.commit("idle", "", -1, "orders", 0, 1, "clicks", 1, 2)
	del := func(names ...string) []int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = 3, names
		var codes []int16
		for _, g := range h.c.DeleteGroups(context.Background(), req).Groups {
			codes = append(codes, g.ErrorCode)
		}
		return codes
	}
	got := del("busy", "ghost", "idle")
	want := []int16{kerr.NonEmptyGroup.Code, kerr.GroupIDNotFound.Code, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("results %v, want %v", got, want)
		}
	}
	if keys := h.store.keys(groupPrefix("idle")); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
	if st := h.state("idle"); st != "Dead" {
		t.Fatalf("state %s", st)
	}
	if got := del("idle"); got[0] != kerr.GroupIDNotFound.Code {
		t.Fatalf("second delete: %d", got[0])
	}
	// A failed store delete leaves the group as it was.
	h.commit("keep", "", -1, "orders", 0, 1)
	h.store.failNext(errInjected)
	if got := del("keep"); got[0] != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("delete with store failure: %d", got[0])
	}
	if st := h.state("keep"); st != "Empty" || h.fetch("keep")["orders/0"] != 1 {
		t.Fatalf("group after failed delete: %s %v", st, h.fetch("keep"))
	}
	// The group comes back fresh on the next commit.
	h.commit("idle", "", -1, "clicks", 0, 9)
	if got := h.fetch("idle"); len(got) != 1 || got["clicks/0"] != 9 {
		t.Fatalf("recreated group: %v", got)
	}
}

func TestRestartResumesGroups(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	if got := h.commit("g", ids[1], gen, "orders", 0, 42, "clicks", 1, 7); got[0] != 0 || got[1] != 0 {
		t.Fatalf("commit %v", got)
	}
	sc := h.joinAsync("static", joinSpec{instance: "i-1"})
	h.waitParked("static", 1)
	h.clk.Advance(h.cfg.InitialRebalanceDelay)
	sr := recv(t, sc)
	recv(t, h.syncAsync("static", sr.MemberID, sr.Generation, map[string]string{sr.MemberID: "S"}))
	h.c.Close()

	h.start() // a new coordinator on the same store
	d := h.c.DescribeGroups(context.Background(), &kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{"g"}}).Groups[0]
	if d.State != "Stable" || len(d.Members) != 2 || d.Protocol != "range" {
		t.Fatalf("restored: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != "assignment-of-"+m.MemberID {
			t.Fatalf("restored assignment %q for %s", m.MemberAssignment, m.MemberID)
		}
	}
	// Members carry on at their generation without rejoining.
	for _, id := range ids {
		if code := h.heartbeat("g", id, gen); code != 0 {
			t.Fatalf("heartbeat after restart: %d", code)
		}
	}
	if r := recv(t, h.syncAsync("g", ids[1], gen, nil)); string(r.MemberAssignment) != "assignment-of-"+ids[1] {
		t.Fatalf("sync after restart: %+v", r)
	}
	if got := h.fetch("g"); got["orders/0"] != 42 || got["clicks/1"] != 7 {
		t.Fatalf("offsets after restart: %v", got)
	}
	// The static instance is still known: its restart replaces it in place.
	nr := recv(t, h.joinAsync("static", joinSpec{instance: "i-1"}))
	if nr.ErrorCode != 0 || nr.MemberID == sr.MemberID || !nr.SkipAssignment || nr.Generation != sr.Generation {
		t.Fatalf("static rejoin after restart: %+v", nr)
	}
	if r := recv(t, h.syncAsync("static", nr.MemberID, nr.Generation, nil)); string(r.MemberAssignment) != "S" {
		t.Fatalf("static assignment after restart: %q", r.MemberAssignment)
	}
	// A member of the old incarnation that never heartbeats again expires.
	h.clk.Advance(session / 2)
	h.heartbeat("g", ids[0], gen)
	h.clk.Advance(session / 2)
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after the other member expired: %d", code)
	}
}

func TestLeaveGroup(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	resp := h.leave("g", ids[1], "ghost")
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", resp)
	}
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after a leave: %d", code)
	}
	a := h.joinAsync("g", joinSpec{member: ids[0]})
	c := h.joinAsync("g", joinSpec{member: ids[2]})
	ra, rc := recv(t, a), recv(t, c)
	if ra.Generation != gen+1 || rc.Generation != gen+1 || len(ra.Members)+len(rc.Members) != 2 {
		t.Fatalf("rejoin: %+v %+v", ra, rc)
	}

	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Version, v0.Group, v0.MemberID = 0, "g", "ghost"
	if r := h.c.LeaveGroup(context.Background(), v0); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("v0 leave of an unknown member: %d", r.ErrorCode)
	}
	// Everyone leaving empties the group; that is persisted.
	if r := h.leave("g", ids[0], ids[2]); r.Members[0].ErrorCode != 0 || r.Members[1].ErrorCode != 0 {
		t.Fatalf("leave all: %+v", r)
	}
	if st := h.state("g"); st != "Empty" {
		t.Fatalf("state %s", st)
	}
	kvs, _ := h.store.List(context.Background(), metaKey("g"))
	var rec groupRecord
	if len(kvs) != 1 || json.Unmarshal(kvs[0].Value, &rec) != nil || rec.Generation != gen+2 || len(rec.Members) != 0 {
		t.Fatalf("persisted after emptying: %+v", rec)
	}
	if r := h.leave("nope", "m"); r.ErrorCode != 0 || r.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave of an unknown group: %+v", r)
	}
}

func TestLeaderSyncWriteFailureRestartsRound(t *testing.T) {
	h := newHarness(t, testConfig())
	a := h.newMember("g", joinSpec{})
	h.waitParked("g", 1)
	b := h.newMember("g", joinSpec{})
	h.waitParked("g", 2)
	h.clk.Advance(h.cfg.InitialRebalanceDelay)
	ra, rb := recv(t, a), recv(t, b)
	leader, follower := ra, rb
	if rb.LeaderID == rb.MemberID {
		leader, follower = rb, ra
	}
	fs := h.syncAsync("g", follower.MemberID, follower.Generation, nil)
	h.waitSyncParked("g", 1)
	h.store.failNext(errInjected)
	ls := recv(t, h.syncAsync("g", leader.MemberID, leader.Generation, map[string]string{leader.MemberID: "x"}))
	if ls.ErrorCode != kerr.CoordinatorNotAvailable.Code || recv(t, fs).ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("syncs after a failed write: %d", ls.ErrorCode)
	}
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	if keys := h.store.keys(groupsPrefix); len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
}

func TestCloseReleasesParkedRequests(t *testing.T) {
	h := newHarness(t, testConfig())
	ch := h.newMember("g", joinSpec{})
	h.waitParked("g", 1)
	h.c.Close()
	if r := recv(t, ch); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after close: %d", r.ErrorCode)
	}
	if code := h.heartbeat("g", "m", 1); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat after close: %d", code)
	}
}

func TestPendingMemberThatNeverReturnsIsForgotten(t *testing.T) {
	h := newHarness(t, testConfig())
	if r := recv(t, h.joinAsync("g", joinSpec{})); r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("%d", r.ErrorCode)
	}
	h.clk.Advance(session)
	if resp := h.c.ListGroups(context.Background(), kmsg.NewPtrListGroupsRequest()); len(resp.Groups) != 0 {
		t.Fatalf("groups %+v", resp.Groups)
	}
}

type ownsNothing struct{}

func (ownsNothing) Owns(string) bool { return false }

func TestPlacementNotCoordinator(t *testing.T) {
	c, err := New(testConfig(), newMemStore(), fakeTopics{"orders": 1}, slog.New(slog.NewTextHandler(io.Discard, nil)), WithPlacement(ownsNothing{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	nc := kerr.NotCoordinator.Code
	if r := c.JoinGroup(ctx, Client{}, joinRequest("g", joinSpec{})); r.ErrorCode != nc {
		t.Fatalf("join %d", r.ErrorCode)
	}
	if r := c.Heartbeat(ctx, &kmsg.HeartbeatRequest{Group: "g"}); r.ErrorCode != nc {
		t.Fatalf("heartbeat %d", r.ErrorCode)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{}}}}
	if r := c.OffsetCommit(ctx, commit); r.Topics[0].Partitions[0].ErrorCode != nc {
		t.Fatalf("commit %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version, fetch.Group = 7, "g"
	if r := c.OffsetFetch(ctx, fetch); r.ErrorCode != nc {
		t.Fatalf("fetch %d", r.ErrorCode)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"min above max", func(c *Config) { c.MinSessionTimeout = c.MaxSessionTimeout + 1 }, false},
		{"negative delay", func(c *Config) { c.InitialRebalanceDelay = -1 }, false},
		{"zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}
