package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers v0: the idempotent producers a partition remembers,
// with their epoch, last sequence and last write time.
func init() { register(kmsg.DescribeProducers, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	resp.SetVersion(req.Version)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		t := c.b.topics.get(rt.Topic)
		for _, pid := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = pid
			var p *partition
			if t != nil {
				p = t.partition(pid)
			}
			if p == nil {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p.mu.RLock()
			producers, leader := p.producers, p.leader
			p.mu.RUnlock()
			if !leader {
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			}
			for id, e := range producers {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = id, int32(e.Epoch)
				ap.LastSequence, ap.LastTimestamp = e.nextSeq()-1, e.LastWrite
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}
