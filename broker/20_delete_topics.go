package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics v0-v6 (by name, or by id from v6). The topic's metadata goes
// at once; its bytes in shared flush objects are reclaimed by garbage
// collection once no live partition references them.
func init() { register(kmsg.DeleteTopics, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	resp.SetVersion(req.Version)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type ask struct {
		name *string
		id   [16]byte
	}
	var asks []ask
	if req.Version >= 6 {
		for _, rt := range req.Topics {
			asks = append(asks, ask{rt.Topic, rt.TopicID})
		}
	} else {
		for i := range req.TopicNames {
			asks = append(asks, ask{name: &req.TopicNames[i]})
		}
	}
	for _, a := range asks {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = a.name, a.id
		var t *topic
		if a.name != nil {
			t = c.b.topics.get(*a.name)
		} else {
			t = c.b.topics.getByID(a.id)
		}
		switch {
		case t == nil && a.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case t == nil:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case isInternalTopic(t.name):
			st.ErrorCode = kerr.InvalidTopicException.Code
			msg := "internal topics cannot be deleted"
			st.ErrorMessage = &msg
		default:
			name := t.name
			st.Topic, st.TopicID = &name, t.id
			if err := c.b.topics.remove(ctx, t); err != nil {
				st.ErrorCode = kerr.UnknownServerError.Code
				msg := err.Error()
				st.ErrorMessage = &msg
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}
