package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics v0-v7. Replication is the object store's business, so any
// replication factor (-1 or >= 1) is accepted and reported as 1. Configs
// are validated with Kafka's names; validateOnly checks without creating.
// v5+ responses carry the effective partition count and configs.
func init() { register(kmsg.CreateTopics, 0, 7, handleCreateTopics) }

func handleCreateTopics(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	resp.SetVersion(req.Version)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := c.b
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		setErr := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			if msg != "" {
				st.ErrorMessage = &msg
			}
		}
		parts := rt.NumPartitions
		if len(rt.ReplicaAssignment) > 0 {
			parts = int32(len(rt.ReplicaAssignment))
		}
		if parts == -1 {
			parts = b.cfg.DefaultPartitions
		}
		configs := map[string]string{}
		for _, cfg := range rt.Configs {
			if cfg.Value != nil {
				configs[cfg.Name] = *cfg.Value
			}
		}
		switch {
		case seen[rt.Topic] > 1:
			setErr(kerr.InvalidRequest, "topic named more than once in the request")
		case rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1:
			setErr(kerr.InvalidReplicationFactor, "replication factor must be -1 or at least 1")
		default:
			t, err := b.topics.create(ctx, rt.Topic, parts, configs, req.ValidateOnly)
			switch {
			case errors.Is(err, errTopicExists):
				setErr(kerr.TopicAlreadyExists, "topic '"+rt.Topic+"' already exists")
			case errors.Is(err, errInvalidTopic):
				setErr(kerr.InvalidTopicException, err.Error())
			case errors.Is(err, errInvalidPartitions):
				setErr(kerr.InvalidPartitions, err.Error())
			case errors.Is(err, errInvalidConfig):
				setErr(kerr.InvalidConfig, err.Error())
			case err != nil:
				setErr(kerr.UnknownServerError, err.Error())
			default:
				st.NumPartitions, st.ReplicationFactor = parts, 1
				if t != nil {
					st.TopicID = t.id
					st.Configs = describeTopicConfigsForCreate(t)
				}
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}

func describeTopicConfigsForCreate(t *topic) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, d := range describeTopic(t, nil) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = d.Name, d.Value, d.ReadOnly, int8(d.Source), d.IsSensitive
		out = append(out, c)
	}
	return out
}
