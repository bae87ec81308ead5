package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v0-v10. The coordinator checks the member and generation
// (generation -1 without a member is a simple commit, allowed while the
// group has no members) and writes the request's offsets to the metadata
// store in one transaction before answering. v10 names topics by id; ids
// this broker does not know answer UNKNOWN_TOPIC_ID.
func init() { register(kmsg.OffsetCommit, 0, 10, handleOffsetCommit) }

func handleOffsetCommit(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		coord := c.b.groups.coord
		if req.Version < 10 {
			return coord.OffsetCommit(ctx, req)
		}
		named := *req
		named.Topics = nil
		known := make([]bool, len(req.Topics))
		for i, rt := range req.Topics {
			if t := c.b.topics.getByID(rt.TopicID); t != nil {
				rt.Topic = t.name
				named.Topics = append(named.Topics, rt)
				known[i] = true
			}
		}
		inner := coord.OffsetCommit(ctx, &named)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.SetVersion(req.Version)
		next := 0
		for i, rt := range req.Topics {
			if known[i] {
				resp.Topics = append(resp.Topics, inner.Topics[next])
				next++
				continue
			}
			st := kmsg.NewOffsetCommitResponseTopic()
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.UnknownTopicID.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}, nil
}
