package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords v0-v2: moves each partition's log start offset (-1 means
// the high watermark). Segment records below it go at once; objects no
// longer referenced by any partition are deleted by garbage collection.
func init() { register(kmsg.DeleteRecords, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	return func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
		resp.SetVersion(req.Version)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, rt := range req.Topics {
			st := kmsg.NewDeleteRecordsResponseTopic()
			st.Topic = rt.Topic
			t := c.b.topics.get(rt.Topic)
			for _, rp := range rt.Partitions {
				sp := kmsg.NewDeleteRecordsResponseTopicPartition()
				sp.Partition, sp.LowWatermark = rp.Partition, -1
				var p *partition
				if t != nil {
					p = t.partition(rp.Partition)
				}
				if p == nil {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					st.Partitions = append(st.Partitions, sp)
					continue
				}
				off := rp.Offset
				if off == -1 {
					off = p.status().hw
				}
				if off < 0 {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					st.Partitions = append(st.Partitions, sp)
					continue
				}
				low, err := c.b.advanceLogStart(ctx, p, off)
				switch {
				case errors.Is(err, errLogStartRange):
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case errors.Is(err, errFenced):
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				case err != nil:
					sp.ErrorCode = kerr.KafkaStorageError.Code
				default:
					sp.LowWatermark = low
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}, nil
}
