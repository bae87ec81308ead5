package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions v0-v3: grows a topic's partition count; replica
// assignments are accepted and ignored (there are no replicas to place).
func init() { register(kmsg.CreatePartitions, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	resp.SetVersion(req.Version)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		t := c.b.topics.get(rt.Topic)
		if t == nil {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		} else if err := c.b.topics.addPartitions(ctx, t, rt.Count, req.ValidateOnly); err != nil {
			msg := err.Error()
			st.ErrorMessage = &msg
			st.ErrorCode = kerr.UnknownServerError.Code
			if errors.Is(err, errInvalidPartitions) {
				st.ErrorCode = kerr.InvalidPartitions.Code
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}
