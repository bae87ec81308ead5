package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch v0-v4 (KIP-101/320): for a leader epoch, the end
// offset of that epoch — the first offset written under a later epoch, or
// the high watermark for the current one — and the largest epoch <= the one
// asked. Clients use it to detect truncation after a leader change; floe
// never truncates, so the answer only confirms what they have.
func init() { register(kmsg.OffsetForLeaderEpoch, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.SetVersion(req.Version)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := c.b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			_, ps, perr := ledPartition(t, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case perr != nil:
				sp.ErrorCode = perr.Code
			default:
				sp.LeaderEpoch, sp.EndOffset = endOffsetForEpoch(ps, rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}

// endOffsetForEpoch answers OffsetForLeaderEpoch from segment epochs.
func endOffsetForEpoch(ps partStatus, epoch int32) (int32, int64) {
	if epoch >= ps.epoch {
		return ps.epoch, ps.hw
	}
	best := int32(-1)
	for _, s := range ps.segs {
		if s.Epoch > epoch {
			if best < 0 {
				// No epoch at or below the one asked survives: undefined, as Kafka answers.
				return -1, -1
			}
			return best, s.Base
		}
		best = s.Epoch
	}
	if best < 0 {
		return epoch, ps.hw
	}
	return best, ps.hw
}
