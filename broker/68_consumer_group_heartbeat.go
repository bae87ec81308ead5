package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ConsumerGroupHeartbeat v0-v1 (KIP-848): members of "consumer" groups
// join, heartbeat, reconcile their server-assigned partitions and leave
// through this one call. v0 members get their id from the coordinator, v1
// members bring their own and may subscribe by regular expression. The
// coordinator writes what a heartbeat changed to the metadata store in the
// future, before answering; the read loop never waits.
func init() { register(kmsg.ConsumerGroupHeartbeat, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	client := c.groupClient() // read on the read loop, which owns clientID
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.ConsumerGroupHeartbeat(ctx, client, req)
	}, nil
}
