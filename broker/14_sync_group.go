package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// SyncGroup v0-v5: followers park in their future until the leader's
// assignment is persisted and handed out.
func init() { register(kmsg.SyncGroup, 0, 5, handleSyncGroup) }

func handleSyncGroup(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.SyncGroup(ctx, req)
	}, nil
}
