package group

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit commits offset for one or more (topic, partition) pairs given as
// topic, partition, offset triples after the group fields, and returns
// the partitions' error codes in order.
func (h *harness) commit(group, member string, gen int32, tpo ...any) []int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = group, member, gen
	for i := 0; i < len(tpo); i += 3 {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = tpo[i].(string)
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = int32(tpo[i+1].(int))
		rp.Offset = int64(tpo[i+2].(int))
		rp.LeaderEpoch = 7
		md := "md-" + rt.Topic
		rp.Metadata = &md
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := h.c.OffsetCommit(context.Background(), req)
	var codes []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}

func (h *harness) commitAs(group, member string, instance *string, gen int32) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.InstanceID, req.Generation = group, member, instance, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "orders"
	rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{kmsg.NewOffsetCommitRequestTopicPartition()}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode
}

// fetch fetches with OffsetFetch v8 and returns offsets keyed "topic/p".
func (h *harness) fetch(group string) map[string]int64 {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
	resp := h.c.OffsetFetch(context.Background(), req)
	out := map[string]int64{}
	for _, t := range resp.Groups[0].Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"/"+string(rune('0'+p.Partition))] = p.Offset
		}
	}
	return out
}

func TestOffsetCommitRules(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("managed", 2)
	long := strings.Repeat("x", h.cfg.MaxOffsetMetadataBytes+1)
	tests := []struct {
		name   string
		group  string
		member string
		gen    int32
		tpo    []any
		want   []*kerr.Error
	}{
		{name: "simple commit creates a group", group: "standalone", gen: -1, tpo: []any{"orders", 0, 10}, want: []*kerr.Error{nil}},
		{name: "simple commit to that empty group", group: "standalone", gen: -1, tpo: []any{"orders", 1, 11}, want: []*kerr.Error{nil}},
		{name: "member commit to an unknown group", group: "ghost", member: "m", gen: 3, tpo: []any{"orders", 0, 1}, want: []*kerr.Error{kerr.IllegalGeneration}},
		{name: "member commit to an empty group", group: "standalone", member: "m", gen: 3, tpo: []any{"orders", 0, 1}, want: []*kerr.Error{kerr.UnknownMemberID}},
		{name: "simple commit to a managed group", group: "managed", gen: -1, tpo: []any{"orders", 0, 1}, want: []*kerr.Error{kerr.UnknownMemberID}},
		{name: "member commit", group: "managed", member: ids[1], gen: gen, tpo: []any{"orders", 2, 20, "clicks", 1, 21}, want: []*kerr.Error{nil, nil}},
		{name: "unknown partitions alongside good ones", group: "managed", member: ids[0], gen: gen, tpo: []any{"orders", 9, 1, "nope", 0, 1, "orders", 3, 30}, want: []*kerr.Error{kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.commit(tt.group, tt.member, tt.gen, tt.tpo...)
			if len(got) != len(tt.want) {
				t.Fatalf("%d results, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				want := int16(0)
				if w != nil {
					want = w.Code
				}
				if got[i] != want {
					t.Fatalf("partition %d: error %d, want %d", i, got[i], want)
				}
			}
		})
	}
	t.Run("metadata too large", func(t *testing.T) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group = 9, "standalone"
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Metadata = &long
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if code := h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetMetadataTooLarge.Code {
			t.Fatalf("error %d", code)
		}
	})
	t.Run("v0 commit is simple", func(t *testing.T) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group = 0, "v0group"
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "clicks"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 99
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if code := h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("error %d", code)
		}
	})
	t.Run("store failure", func(t *testing.T) {
		h.store.failNext(errInjected)
		if got := h.commit("standalone", "", -1, "orders", 0, 12); got[0] != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("error %d", got[0])
		}
	})
	got := h.fetch("standalone")
	if got["orders/0"] != 10 || got["orders/1"] != 11 || len(got) != 2 {
		t.Fatalf("standalone offsets %v", got)
	}
	got = h.fetch("managed")
	if got["orders/2"] != 20 || got["clicks/1"] != 21 || got["orders/3"] != 30 || len(got) != 3 {
		t.Fatalf("managed offsets %v", got)
	}
	// Commits that fail validation create nothing.
	h.commit("never", "", -1, "nope", 0, 1)
	if g, _ := h.c.lookup(context.Background(), "never", false); g != nil {
		t.Fatal("a commit of unknown partitions created a group")
	}
}

func TestOffsetCommitDuringCompletingRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	a := h.newMember("g", joinSpec{})
	h.waitParked("g", 1)
	h.clk.Advance(h.cfg.InitialRebalanceDelay)
	r := recv(t, a)
	if got := h.commit("g", r.MemberID, r.Generation, "orders", 0, 1); got[0] != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit between join and sync: %d", got[0])
	}
	recv(t, h.syncAsync("g", r.MemberID, r.Generation, map[string]string{r.MemberID: "a"}))
	if got := h.commit("g", r.MemberID, r.Generation, "orders", 0, 1); got[0] != 0 {
		t.Fatalf("commit once stable: %d", got[0])
	}
	// During the next join phase, the current generation may still commit
	// (eager consumers commit as they revoke).
	h.newMember("g", joinSpec{})
	h.waitParked("g", 1)
	if got := h.commit("g", r.MemberID, r.Generation, "orders", 0, 2); got[0] != 0 {
		t.Fatalf("commit while preparing: %d", got[0])
	}
}

func TestOffsetFetch(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit("g", "", -1, "orders", 1, 100, "clicks", 0, 50)
	t.Run("v1 requested partitions", func(t *testing.T) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = 1, "g"
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
		resp := h.c.OffsetFetch(context.Background(), req)
		ps := resp.Topics[0].Partitions
		if ps[0].Offset != -1 || ps[1].Offset != 100 || *ps[1].Metadata != "md-orders" || *ps[0].Metadata != "" {
			t.Fatalf("%+v", ps)
		}
	})
	t.Run("v7 all topics", func(t *testing.T) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = 7, "g", true
		resp := h.c.OffsetFetch(context.Background(), req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 2 || resp.Topics[0].Topic != "clicks" || resp.Topics[1].Partitions[0].Offset != 100 || resp.Topics[1].Partitions[0].LeaderEpoch != 7 {
			t.Fatalf("%+v", resp)
		}
	})
	t.Run("v8 several groups", func(t *testing.T) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		req.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "clicks", Partitions: []int32{0}}}},
			{Group: "unknown", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "clicks", Partitions: []int32{0}}}},
			{Group: "unknown"},
		}
		resp := h.c.OffsetFetch(context.Background(), req)
		if resp.Groups[0].Topics[0].Partitions[0].Offset != 50 {
			t.Fatalf("g: %+v", resp.Groups[0])
		}
		if g := resp.Groups[1]; g.ErrorCode != 0 || g.Topics[0].Partitions[0].Offset != -1 {
			t.Fatalf("unknown group: %+v", g)
		}
		if g := resp.Groups[2]; g.ErrorCode != 0 || len(g.Topics) != 0 {
			t.Fatalf("unknown group, all topics: %+v", g)
		}
	})
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1) // subscribed to "orders"
	h.commit("g", ids[0], gen, "orders", 0, 5, "clicks", 0, 6, "clicks", 1, 7)
	h.commit("empty", "", -1, "orders", 0, 5)

	del := func(group string, tps ...any) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		for i := 0; i < len(tps); i += 2 {
			req.Topics = append(req.Topics, kmsg.OffsetDeleteRequestTopic{
				Topic:      tps[i].(string),
				Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: int32(tps[i+1].(int))}},
			})
		}
		return h.c.OffsetDelete(context.Background(), req)
	}
	resp := del("g", "orders", 0, "clicks", 0, "nope", 0)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	want := []int16{kerr.GroupSubscribedToTopic.Code, 0, kerr.UnknownTopicOrPartition.Code}
	for i, w := range want {
		if got := resp.Topics[i].Partitions[0].ErrorCode; got != w {
			t.Fatalf("topic %d: error %d, want %d", i, got, w)
		}
	}
	if got := h.fetch("g"); len(got) != 2 || got["orders/0"] != 5 || got["clicks/1"] != 7 {
		t.Fatalf("offsets after delete: %v", got)
	}
	if keys := h.store.keys(offsetKey("g", "clicks", 0)); len(keys) != 0 {
		t.Fatalf("deleted offset still stored: %v", keys)
	}
	if resp := del("empty", "orders", 0); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 || len(h.fetch("empty")) != 0 {
		t.Fatalf("empty group: %+v", resp)
	}
	if resp := del("ghost", "orders", 0); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group: %d", resp.ErrorCode)
	}

	// A non-consumer group with members refuses outright.
	c := h.joinAsync("connect", joinSpec{version: 3, protoType: "connect"})
	h.waitParked("connect", 1)
	h.clk.Advance(h.cfg.InitialRebalanceDelay)
	recv(t, c)
	if resp := del("connect", "orders", 0); resp.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("connect group: %d", resp.ErrorCode)
	}
}

func TestDeleteTopicOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit("a", "", -1, "orders", 0, 5, "clicks", 0, 6)
	h.commit("b", "", -1, "orders", 1, 7)
	if err := h.c.DeleteTopicOffsets(context.Background(), "orders"); err != nil {
		t.Fatal(err)
	}
	if got := h.fetch("a"); len(got) != 1 || got["clicks/0"] != 6 {
		t.Fatalf("a: %v", got)
	}
	if got := h.fetch("b"); len(got) != 0 {
		t.Fatalf("b: %v", got)
	}
	if keys := h.store.keys(groupsPrefix); len(keys) != 1 {
		t.Fatalf("stored keys %v", keys)
	}
}
