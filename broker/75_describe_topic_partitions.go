package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTopicPartitions v0 (KIP-966): topics and partitions with paging by
// a (topic, partition) cursor and a response partition limit.
func init() { register(kmsg.DescribeTopicPartitions, 0, 0, handleDescribeTopicPartitions) }

func handleDescribeTopicPartitions(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	resp.SetVersion(req.Version)
	b := c.b
	limit := int(req.ResponsePartitionLimit)
	if limit <= 0 || limit > 2000 {
		limit = 2000
	}
	var topics []*topic
	var missing []string
	if len(req.Topics) == 0 {
		topics = b.topics.all()
	} else {
		for _, rt := range req.Topics {
			if t := b.topics.get(rt.Topic); t != nil {
				topics = append(topics, t)
			} else {
				missing = append(missing, rt.Topic)
			}
		}
	}
	count := 0
	for _, t := range topics {
		if req.Cursor != nil && t.name < req.Cursor.Topic {
			continue
		}
		mt := b.topicMetadata(t)
		dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		dt.Topic, dt.TopicID, dt.AuthorizedOperations = mt.Topic, mt.TopicID, -2147483648
		for _, mp := range mt.Partitions {
			if req.Cursor != nil && t.name == req.Cursor.Topic && mp.Partition < req.Cursor.Partition {
				continue
			}
			if count == limit {
				cur := kmsg.NewDescribeTopicPartitionsResponseNextCursor()
				cur.Topic, cur.Partition = t.name, mp.Partition
				resp.NextCursor = &cur
				break
			}
			dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
			dp.ErrorCode, dp.Partition, dp.LeaderID, dp.LeaderEpoch = mp.ErrorCode, mp.Partition, mp.Leader, mp.LeaderEpoch
			dp.Replicas, dp.ISR = mp.Replicas, mp.ISR
			dt.Partitions = append(dt.Partitions, dp)
			count++
		}
		resp.Topics = append(resp.Topics, dt)
		if resp.NextCursor != nil {
			break
		}
	}
	for _, name := range missing {
		dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		n := name
		dt.Topic, dt.ErrorCode = &n, kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, dt)
	}
	return immediate(resp), nil
}
