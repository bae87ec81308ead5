package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets v1-v8: latest (-1, the high watermark), earliest (-2, the log
// start offset), max timestamp (-3), earliest local (-4, the same as
// earliest: every byte is in object storage), and by timestamp (the first
// offset whose timestamp is >= the one asked). Leader epochs are checked
// as in Fetch.
func init() { register(kmsg.ListOffsets, 1, 8, handleListOffsets) }

func handleListOffsets(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.SetVersion(req.Version)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := c.b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			p, ps, perr := ledPartition(t, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case perr != nil:
				sp.ErrorCode = perr.Code
			default:
				sp.LeaderEpoch = ps.epoch
				switch rp.Timestamp {
				case -1:
					sp.Offset = ps.hw
				case -2, -4:
					sp.Offset = ps.logStart
				case -3:
					off, ts, err := p.maxTimestamp(ctx)
					if err != nil {
						sp.ErrorCode = kerr.KafkaStorageError.Code
					}
					sp.Offset, sp.Timestamp = off, ts
				default:
					if rp.Timestamp < 0 {
						sp.ErrorCode = kerr.InvalidRequest.Code
						break
					}
					off, ts, err := p.offsetForTimestamp(ctx, rp.Timestamp)
					if err != nil {
						sp.ErrorCode = kerr.KafkaStorageError.Code
						break
					}
					// No record at or after the timestamp: -1/-1, as Kafka answers v1+.
					sp.Offset, sp.Timestamp = off, ts
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}
