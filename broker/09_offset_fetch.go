package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch v0-v10: one group (v0-v7) or several (v8+); every committed
// partition when topics is null (v2+); unknown partitions answer offset -1.
// RequireStable (v7+) is honoured trivially: without transactions no
// commit is ever pending. v10 names topics by id: unknown ids answer
// UNKNOWN_TOPIC_ID, and committed offsets of topics that no longer exist
// are left out of an all-topics answer (they have no id to name them by).
func init() { register(kmsg.OffsetFetch, 0, 10, handleOffsetFetch) }

func handleOffsetFetch(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		coord := c.b.groups.coord
		if req.Version < 10 {
			return coord.OffsetFetch(ctx, req)
		}
		named := *req
		named.Groups = make([]kmsg.OffsetFetchRequestGroup, len(req.Groups))
		unknown := make([][]kmsg.OffsetFetchRequestGroupTopic, len(req.Groups))
		for gi, rg := range req.Groups {
			named.Groups[gi] = rg
			if rg.Topics == nil {
				continue
			}
			named.Groups[gi].Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(rg.Topics))
			for _, rt := range rg.Topics {
				if t := c.b.topics.getByID(rt.TopicID); t != nil {
					rt.Topic = t.name
					named.Groups[gi].Topics = append(named.Groups[gi].Topics, rt)
				} else {
					unknown[gi] = append(unknown[gi], rt)
				}
			}
		}
		resp := coord.OffsetFetch(ctx, &named)
		for gi := range resp.Groups {
			sg := &resp.Groups[gi]
			kept := sg.Topics[:0]
			for _, st := range sg.Topics {
				t := c.b.topics.get(st.Topic)
				if t == nil {
					continue
				}
				st.TopicID = t.id
				kept = append(kept, st)
			}
			sg.Topics = kept
			if sg.ErrorCode != 0 {
				continue
			}
			for _, rt := range unknown[gi] {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.TopicID = rt.TopicID
				for _, p := range rt.Partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset = p, -1
					sp.ErrorCode = kerr.UnknownTopicID.Code
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
		}
		return resp
	}, nil
}
