package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// Heartbeat v0-v4: keeps a member's session alive; REBALANCE_IN_PROGRESS
// tells it to rejoin. In memory only: heartbeats never write metadata.
func init() { register(kmsg.Heartbeat, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.Heartbeat(ctx, req)
	}, nil
}
