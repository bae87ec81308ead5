package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata v0-v12: this broker as the only broker and the leader of every
// partition (single-broker mode), topic ids from v10, and auto topic
// creation (auto.create.topics.enable) with the default partition count.
func init() { register(kmsg.Metadata, 0, 12, handleMetadata) }

func handleMetadata(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.SetVersion(req.Version)
	b := c.b
	resp.Brokers = []kmsg.MetadataResponseBroker{b.brokerInfo()}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.cfg.NodeID

	var topics []*topic
	var missing []kmsg.MetadataResponseTopic
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		topics = b.topics.all()
	} else {
		autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
		for _, rt := range req.Topics {
			var t *topic
			switch {
			case rt.Topic != nil:
				t = b.topics.get(*rt.Topic)
				if t == nil && autoCreate {
					t = b.autoCreate(*rt.Topic)
				}
			default:
				t = b.topics.getByID(rt.TopicID)
			}
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if rt.Topic == nil {
					mt.ErrorCode = kerr.UnknownTopicID.Code
				} else if validTopicName(*rt.Topic) != nil {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				missing = append(missing, mt)
				continue
			}
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	resp.Topics = append(resp.Topics, missing...)
	return immediate(resp), nil
}

func (b *Broker) brokerInfo() kmsg.MetadataResponseBroker {
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID = b.cfg.NodeID
	br.Host = b.advHost
	br.Port = b.advPort
	return br
}

func (b *Broker) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = isInternalTopic(t.name)
	mt.AuthorizedOperations = -2147483648
	for _, p := range t.partitions() {
		st := p.status()
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.id
		mp.Leader = b.cfg.NodeID
		mp.LeaderEpoch = st.epoch
		mp.Replicas = []int32{b.cfg.NodeID}
		mp.ISR = []int32{b.cfg.NodeID}
		if !st.leader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			mp.Leader = -1
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// autoCreate creates a topic named by a Metadata request. A concurrent
// creation by someone else is fine: the topic exists either way.
func (b *Broker) autoCreate(name string) *topic {
	if validTopicName(name) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := b.topics.create(ctx, name, b.cfg.DefaultPartitions, nil, false)
	if err != nil {
		if errors.Is(err, errTopicExists) {
			return b.topics.get(name)
		}
		b.log.Warn("auto topic creation failed", "topic", name, "err", err)
		return nil
	}
	return t
}
