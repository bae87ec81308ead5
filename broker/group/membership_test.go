package group

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFirstJoinByVersion(t *testing.T) {
	tests := []struct {
		name     string
		version  int16
		instance string
		wantCode int16 // of the first response
	}{
		{name: "v3 joins at once", version: 3},
		{name: "v4 needs a member id", version: 4, wantCode: kerr.MemberIDRequired.Code},
		{name: "v9 needs a member id", version: 9, wantCode: kerr.MemberIDRequired.Code},
		{name: "v5 static member joins at once", version: 5, instance: "i-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			ch := h.joinAsync("g", joinSpec{version: tt.version, instance: tt.instance})
			if tt.wantCode != 0 {
				resp := recv(t, ch)
				if resp.ErrorCode != tt.wantCode || resp.MemberID == "" || resp.Generation != -1 {
					t.Fatalf("got error %d member %q generation %d", resp.ErrorCode, resp.MemberID, resp.Generation)
				}
				if st := h.state("g"); st != "Empty" {
					t.Fatalf("a member id handed out must not start a rebalance; state %s", st)
				}
				return
			}
			h.waitParked("g", 1)
			noRecv(t, ch)
			h.clk.Advance(h.cfg.InitialRebalanceDelay)
			resp := recv(t, ch)
			if resp.ErrorCode != 0 || resp.Generation != 1 || resp.LeaderID != resp.MemberID || len(resp.Members) != 1 {
				t.Fatalf("join: %+v", resp)
			}
			if tt.instance != "" && (resp.Members[0].InstanceID == nil || *resp.Members[0].InstanceID != tt.instance) {
				t.Fatalf("leader's member list lacks the instance id: %+v", resp.Members[0])
			}
		})
	}
}

func TestInitialDelayAndProtocolSelection(t *testing.T) {
	tests := []struct {
		name      string
		protocols [][]string
		want      string
	}{
		{name: "only common protocol", protocols: [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin"}}, want: "roundrobin"},
		{name: "majority preference", protocols: [][]string{{"range", "roundrobin"}, {"range", "roundrobin"}, {"roundrobin", "range"}}, want: "range"},
		{name: "cooperative upgrade", protocols: [][]string{{"cooperative-sticky", "range"}, {"cooperative-sticky", "range"}, {"range"}}, want: "range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			var chs []<-chan *kmsg.JoinGroupResponse
			for i, ps := range tt.protocols {
				chs = append(chs, h.newMember("g", joinSpec{protocols: ps}))
				h.waitParked("g", i+1)
			}
			h.clk.Advance(h.cfg.InitialRebalanceDelay - time.Millisecond)
			for _, ch := range chs {
				noRecv(t, ch)
			}
			h.clk.Advance(time.Millisecond)
			leaders := 0
			for _, ch := range chs {
				r := recv(t, ch)
				if r.ErrorCode != 0 || r.Generation != 1 || *r.Protocol != tt.want || *r.ProtocolType != "consumer" {
					t.Fatalf("join: error %d generation %d protocol %q", r.ErrorCode, r.Generation, *r.Protocol)
				}
				if r.LeaderID == r.MemberID {
					leaders++
					if len(r.Members) != len(tt.protocols) {
						t.Fatalf("leader got %d members, want %d", len(r.Members), len(tt.protocols))
					}
				} else if len(r.Members) != 0 {
					t.Fatalf("follower got the member list")
				}
			}
			if leaders != 1 {
				t.Fatalf("%d leaders", leaders)
			}
		})
	}
}

func TestInitialDelayStretchesForNewJoiners(t *testing.T) {
	h := newHarness(t, testConfig())
	a := h.newMember("g", joinSpec{})
	h.waitParked("g", 1)
	h.clk.Advance(2 * time.Second)
	b := h.newMember("g", joinSpec{})
	h.waitParked("g", 2)
	h.clk.Advance(2 * time.Second) // 4s after the first join, 2s after the second
	noRecv(t, a)
	h.clk.Advance(time.Second)
	if ra, rb := recv(t, a), recv(t, b); ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("generations %d and %d", ra.Generation, rb.Generation)
	}
}

func TestJoinRejected(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup("g", 2)
	tests := []struct {
		name  string
		group string
		spec  joinSpec
		want  *kerr.Error
	}{
		{name: "empty group id", group: "", spec: joinSpec{}, want: kerr.InvalidGroupID},
		{name: "session too short", group: "g", spec: joinSpec{sessionDur: time.Second}, want: kerr.InvalidSessionTimeout},
		{name: "session too long", group: "g", spec: joinSpec{sessionDur: time.Hour}, want: kerr.InvalidSessionTimeout},
		{name: "other protocol type", group: "g", spec: joinSpec{protoType: "connect"}, want: kerr.InconsistentGroupProtocol},
		{name: "no common protocol", group: "g", spec: joinSpec{protocols: []string{"sticky"}}, want: kerr.InconsistentGroupProtocol},
		{name: "no protocols", group: "g", spec: joinSpec{protocols: []string{}}, want: kerr.InconsistentGroupProtocol},
		{name: "unknown member", group: "g", spec: joinSpec{member: "nobody"}, want: kerr.UnknownMemberID},
		{name: "unknown member of unknown group", group: "other", spec: joinSpec{member: "nobody"}, want: kerr.UnknownMemberID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := recv(t, h.joinAsync(tt.group, tt.spec)); r.ErrorCode != tt.want.Code {
				t.Fatalf("error %d, want %s", r.ErrorCode, tt.want.Message)
			}
		})
	}
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("rejected joins disturbed the group: %s", st)
	}
}

func TestSyncHandsOutAndPersistsAssignments(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 3)
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s", st)
	}
	// A late SyncGroup in Stable gets the member's assignment.
	r := recv(t, h.syncAsync("g", ids[2], gen, nil))
	if r.ErrorCode != 0 || string(r.MemberAssignment) != "assignment-of-"+ids[2] || *r.Protocol != "range" {
		t.Fatalf("sync in Stable: %+v", r)
	}
	kvs, _ := h.store.List(context.Background(), metaKey("g"))
	if len(kvs) != 1 {
		t.Fatalf("no metadata record")
	}
	var rec groupRecord
	if err := json.Unmarshal(kvs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Generation != gen || rec.Leader != ids[0] || rec.Protocol != "range" || len(rec.Members) != 3 {
		t.Fatalf("record %+v", rec)
	}
	for _, m := range rec.Members {
		if string(m.Assignment) != "assignment-of-"+m.ID {
			t.Fatalf("member %s persisted with assignment %q", m.ID, m.Assignment)
		}
	}
}

func TestNewMemberTriggersRejoin(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	c := h.newMember("g", joinSpec{})
	h.waitParked("g", 1)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	for _, id := range ids {
		if code := h.heartbeat("g", id, gen); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat: %d, want REBALANCE_IN_PROGRESS", code)
		}
	}
	a := h.joinAsync("g", joinSpec{member: ids[0]})
	h.waitParked("g", 2)
	noRecv(t, c)
	b := h.joinAsync("g", joinSpec{member: ids[1]})
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{a, b, c} {
		r := recv(t, ch)
		if r.ErrorCode != 0 || r.Generation != gen+1 || r.LeaderID != ids[0] {
			t.Fatalf("rejoin: error %d generation %d leader %s", r.ErrorCode, r.Generation, r.LeaderID)
		}
	}
	// Members of the old generation are fenced.
	if code := h.heartbeat("g", ids[1], gen); code != kerr.IllegalGeneration.Code {
		t.Fatalf("old-generation heartbeat: %d", code)
	}
	if code := h.heartbeat("g", ids[1], gen+1); code != 0 {
		t.Fatalf("heartbeat while completing: %d", code)
	}
}

func TestRebalanceTimeoutDropsMembersThatDoNotRejoin(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	a := h.joinAsync("g", joinSpec{member: ids[0]}) // the leader rejoining starts a round
	h.waitParked("g", 1)
	// ids[1] keeps heartbeating but never rejoins (stuck between polls).
	for elapsed := 5 * time.Second; elapsed < rebalance; elapsed += 5 * time.Second {
		if code := h.heartbeat("g", ids[1], gen); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat: %d", code)
		}
		h.clk.Advance(5 * time.Second)
	}
	noRecv(t, a)
	h.clk.Advance(5 * time.Second)
	r := recv(t, a)
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("join after the rebalance timeout: error %d generation %d members %d", r.ErrorCode, r.Generation, len(r.Members))
	}
	if code := h.heartbeat("g", ids[1], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("dropped member's heartbeat: %d", code)
	}
}

func TestSessionTimeoutExpiresMember(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	writes := h.store.writeCount()
	for range 2 {
		h.clk.Advance(4 * time.Second)
		if code := h.heartbeat("g", ids[0], gen); code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
	}
	if h.store.writeCount() != writes {
		t.Fatal("heartbeats wrote to the store")
	}
	h.clk.Advance(4 * time.Second)
	// ids[1] has been silent for 12s > 10s session.
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("survivor's heartbeat: %d, want REBALANCE_IN_PROGRESS", code)
	}
	r := recv(t, h.joinAsync("g", joinSpec{member: ids[0]}))
	if r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin: generation %d members %d", r.Generation, len(r.Members))
	}
	if code := h.heartbeat("g", ids[1], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d", code)
	}
}

func TestMemberThatNeverSyncsIsDropped(t *testing.T) {
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
	if r := recv(t, h.syncAsync("g", leader.MemberID, leader.Generation, map[string]string{leader.MemberID: "x", follower.MemberID: "y"})); r.ErrorCode != 0 {
		t.Fatalf("leader sync: %d", r.ErrorCode)
	}
	// The follower heartbeats but never syncs: after the rebalance timeout
	// it is dropped, as its assignment was never taken up.
	for elapsed := time.Duration(0); elapsed < rebalance; elapsed += 5 * time.Second {
		h.heartbeat("g", follower.MemberID, follower.Generation)
		h.heartbeat("g", leader.MemberID, leader.Generation)
		h.clk.Advance(5 * time.Second)
	}
	if code := h.heartbeat("g", follower.MemberID, follower.Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("follower heartbeat: %d, want UNKNOWN_MEMBER_ID", code)
	}
	if code := h.heartbeat("g", leader.MemberID, leader.Generation); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("leader heartbeat: %d, want REBALANCE_IN_PROGRESS", code)
	}
}

func TestFencing(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	wrongProto := func() *kmsg.SyncGroupRequest {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 5, "g", ids[1], gen
		p := "roundrobin"
		req.Protocol = &p
		return req
	}
	tests := []struct {
		name string
		call func() int16
		want *kerr.Error
	}{
		{"heartbeat old generation", func() int16 { return h.heartbeat("g", ids[1], gen-1) }, kerr.IllegalGeneration},
		{"heartbeat unknown member", func() int16 { return h.heartbeat("g", "ghost", gen) }, kerr.UnknownMemberID},
		{"heartbeat unknown group", func() int16 { return h.heartbeat("nope", ids[1], gen) }, kerr.UnknownMemberID},
		{"heartbeat empty group id", func() int16 { return h.heartbeat("", ids[1], gen) }, kerr.InvalidGroupID},
		{"sync old generation", func() int16 { return recv(t, h.syncAsync("g", ids[1], gen+1, nil)).ErrorCode }, kerr.IllegalGeneration},
		{"sync unknown member", func() int16 { return recv(t, h.syncAsync("g", "ghost", gen, nil)).ErrorCode }, kerr.UnknownMemberID},
		{"sync other protocol", func() int16 { return h.c.SyncGroup(context.Background(), wrongProto()).ErrorCode }, kerr.InconsistentGroupProtocol},
		{"commit old generation", func() int16 { return h.commit("g", ids[1], gen-1, "orders", 0, 5)[0] }, kerr.IllegalGeneration},
		{"commit unknown member", func() int16 { return h.commit("g", "ghost", gen, "orders", 0, 5)[0] }, kerr.UnknownMemberID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.call(); got != tt.want.Code {
				t.Fatalf("error %d, want %s", got, tt.want.Message)
			}
		})
	}
}

func TestStaticMembership(t *testing.T) {
	h := newHarness(t, testConfig())
	// Two static members form the group without MEMBER_ID_REQUIRED.
	both := []string{"range", "roundrobin"}
	a := h.joinAsync("g", joinSpec{instance: "i-a", protocols: both})
	h.waitParked("g", 1)
	b := h.joinAsync("g", joinSpec{instance: "i-b", protocols: both})
	h.waitParked("g", 2)
	h.clk.Advance(h.cfg.InitialRebalanceDelay)
	ra, rb := recv(t, a), recv(t, b)
	if ra.LeaderID != ra.MemberID {
		t.Fatalf("first static member should lead")
	}
	gen := ra.Generation
	sb := h.syncAsync("g", rb.MemberID, gen, nil)
	h.waitSyncParked("g", 1)
	if r := recv(t, h.syncAsync("g", ra.MemberID, gen, map[string]string{ra.MemberID: "A", rb.MemberID: "B"})); r.ErrorCode != 0 {
		t.Fatalf("leader sync %d", r.ErrorCode)
	}
	recv(t, sb)

	// i-b restarts: it rejoins without its member id and takes its place
	// without a rebalance, getting its assignment back.
	writes := h.store.writeCount()
	nb := recv(t, h.joinAsync("g", joinSpec{instance: "i-b", protocols: both}))
	if nb.ErrorCode != 0 || nb.MemberID == rb.MemberID || nb.Generation != gen || nb.SkipAssignment || len(nb.Members) != 0 {
		t.Fatalf("static rejoin: %+v", nb)
	}
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("static rejoin caused a rebalance: %s", st)
	}
	if h.store.writeCount() != writes+1 {
		t.Fatalf("the new member id was not persisted")
	}
	if r := recv(t, h.syncAsync("g", nb.MemberID, gen, nil)); string(r.MemberAssignment) != "B" {
		t.Fatalf("replacement got assignment %q", r.MemberAssignment)
	}
	// The old incarnation is fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation = 4, "g", rb.MemberID, gen
	inst := "i-b"
	hb.InstanceID = &inst
	if code := h.c.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("zombie heartbeat: %d, want FENCED_INSTANCE_ID", code)
	}
	if code := h.commitAs("g", rb.MemberID, &inst, gen); code != kerr.FencedInstanceID.Code {
		t.Fatalf("zombie commit: %d, want FENCED_INSTANCE_ID", code)
	}

	// The static leader restarting is told to skip assignment (KIP-814).
	na := recv(t, h.joinAsync("g", joinSpec{instance: "i-a", protocols: both}))
	if na.ErrorCode != 0 || !na.SkipAssignment || na.LeaderID != na.MemberID || len(na.Members) != 2 {
		t.Fatalf("static leader rejoin: %+v", na)
	}

	// i-b restarts with protocols that change the group's choice: that
	// takes a rebalance. i-a, static, heartbeats but does not rejoin: it
	// keeps its place through the round instead of being dropped.
	nb2 := h.joinAsync("g", joinSpec{instance: "i-b", protocols: []string{"roundrobin"}})
	h.waitParked("g", 1)
	instA := "i-a"
	for elapsed := time.Duration(0); elapsed < rebalance; elapsed += 5 * time.Second {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version, hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = 4, "g", na.MemberID, gen, &instA
		if code := h.c.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.RebalanceInProgress.Code {
			t.Fatalf("i-a heartbeat during the round: %d", code)
		}
		h.clk.Advance(5 * time.Second)
	}
	r1 := recv(t, nb2)
	if r1.ErrorCode != 0 || r1.Generation != gen+1 || *r1.Protocol != "roundrobin" || r1.LeaderID != r1.MemberID || len(r1.Members) != 2 {
		t.Fatalf("after the protocol change: %+v", r1)
	}

	// Leaving by instance id only (an operator removing an instance).
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group = 5, "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}}
	resp := h.c.LeaveGroup(context.Background(), req)
	if resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance: %+v", resp)
	}
	if r := recv(t, h.joinAsync("g", joinSpec{member: r1.MemberID, instance: "i-b"})); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("removed instance rejoining with its old id: %d", r.ErrorCode)
	}
}

func TestRejoinWithoutChange(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)

	// A follower rejoining with unchanged metadata gets the current
	// generation back at once; nothing rebalances.
	r := recv(t, h.joinAsync("g", joinSpec{member: ids[1]}))
	if r.ErrorCode != 0 || r.Generation != gen || len(r.Members) != 0 || h.state("g") != "Stable" {
		t.Fatalf("unchanged follower rejoin: %+v, state %s", r, h.state("g"))
	}

	// A changed subscription is a reason to rebalance.
	changed := h.joinAsync("g", joinSpec{member: ids[1], topics: []string{"orders", "clicks"}})
	h.waitParked("g", 1)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("changed subscription: state %s", st)
	}
	leader := h.joinAsync("g", joinSpec{member: ids[0]})
	rl, rc := recv(t, leader), recv(t, changed)
	if rl.Generation != gen+1 || rc.Generation != gen+1 || len(rl.Members) != 2 {
		t.Fatalf("after the change: %+v %+v", rl, rc)
	}

	// Between join and sync, repeating a join (its response was lost)
	// repeats the response, the leader's with the member list.
	again := recv(t, h.joinAsync("g", joinSpec{member: ids[0]}))
	if again.ErrorCode != 0 || again.Generation != gen+1 || again.LeaderID != ids[0] || len(again.Members) != 2 {
		t.Fatalf("repeated leader join: %+v", again)
	}
	if st := h.state("g"); st != "CompletingRebalance" {
		t.Fatalf("state %s", st)
	}
}
