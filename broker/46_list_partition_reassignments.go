package broker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListPartitionReassignments v0: partitions whose assigned leader has not
// yet taken over (the partition record still carries an older epoch). A
// move lasts milliseconds, so the list is usually empty.
func init() { register(kmsg.ListPartitionReassignments, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	resp.SetVersion(req.Version)
	b := c.b
	if b.controllerState() == nil {
		resp.ErrorCode = kerr.NotController.Code
		return immediate(resp), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := map[string][]int32{}
	if req.Topics == nil {
		for _, t := range b.topics.all() {
			for _, p := range t.partitions() {
				want[t.name] = append(want[t.name], p.id)
			}
		}
	} else {
		for _, rt := range req.Topics {
			want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
		}
	}
	for name, parts := range want {
		t := b.topics.get(name)
		if t == nil {
			continue
		}
		var rt *kmsg.ListPartitionReassignmentsResponseTopic
		for _, p := range parts {
			a, ok := b.view.assignment(tpKey{t.id, p})
			if !ok {
				continue
			}
			kv, err := b.meta.Get(ctx, partitionKey(t.id, p))
			if err != nil {
				continue
			}
			var st partitionState
			if json.Unmarshal(kv.Value, &st) != nil || st.LeaderEpoch >= a.Epoch {
				continue
			}
			if rt == nil {
				resp.Topics = append(resp.Topics, kmsg.NewListPartitionReassignmentsResponseTopic())
				rt = &resp.Topics[len(resp.Topics)-1]
				rt.Topic = name
			}
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition = p
			rp.Replicas = []int32{a.Leader}
			rp.AddingReplicas = []int32{a.Leader}
			rp.RemovingReplicas = []int32{st.Leader}
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	return immediate(resp), nil
}
