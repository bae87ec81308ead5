package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata v0-v12: the live brokers, the controller, and each partition's
// serving leader and epoch as the controller assigned them (a partition
// whose leader is gone answers LEADER_NOT_AVAILABLE until it is moved);
// topic ids from v10, and auto topic creation (auto.create.topics.enable)
// with the default partition count. Object storage is the replication, so
// replicas and ISR are the leader alone.
func init() { register(kmsg.Metadata, 0, 12, handleMetadata) }

func handleMetadata(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.SetVersion(req.Version)
	b := c.b
	resp.Brokers = b.brokerList()
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.view.controllerID()

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

// brokerList is the live brokers; this one is always listed, so a client
// never sees an empty cluster while the view catches up.
func (b *Broker) brokerList() []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	self := false
	for _, r := range b.view.live() {
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = r.NodeID, r.Host, r.Port
		if r.Rack != "" {
			rack := r.Rack
			br.Rack = &rack
		}
		self = self || r.NodeID == b.cfg.NodeID
		out = append(out, br)
	}
	if !self {
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID, br.Host, br.Port = b.cfg.NodeID, b.advHost, b.advPort
		out = append(out, br)
	}
	return out
}

func (b *Broker) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = isInternalTopic(t.name)
	mt.AuthorizedOperations = -2147483648
	for _, p := range t.partitions() {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.id
		a, _, ok := b.view.leaderOf(tpKey{t.id, p.id})
		if ok {
			mp.Leader = a.Leader
			mp.LeaderEpoch = a.Epoch
			mp.Replicas = []int32{a.Leader}
			mp.ISR = []int32{a.Leader}
		} else {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			mp.Leader = -1
			mp.LeaderEpoch = a.Epoch
			mp.Replicas = []int32{}
			mp.ISR = []int32{}
			if a.Epoch > 0 {
				mp.Replicas = []int32{a.Leader}
			}
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
