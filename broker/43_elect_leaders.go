package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders v0-v2: every partition is led by its assigned broker (there
// are no follower replicas to elect), so a led partition answers
// ELECTION_NOT_NEEDED, as Kafka does when the preferred leader already leads.
func init() { register(kmsg.ElectLeaders, 0, 2, handleElectLeaders) }

func handleElectLeaders(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.SetVersion(req.Version)
	add := func(name string, parts []int32) {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = name
		t := c.b.topics.get(name)
		for _, pid := range parts {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = pid
			var p *partition
			if t != nil {
				p = t.partition(pid)
			}
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !p.status().leader:
				sp.ErrorCode = kerr.LeaderNotAvailable.Code
			default:
				sp.ErrorCode = kerr.ElectionNotNeeded.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Topics == nil { // all partitions
		for _, t := range c.b.topics.all() {
			var ids []int32
			for _, p := range t.partitions() {
				ids = append(ids, p.id)
			}
			add(t.name, ids)
		}
	} else {
		for _, rt := range req.Topics {
			add(rt.Topic, rt.Partitions)
		}
	}
	return immediate(resp), nil
}
