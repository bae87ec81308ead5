package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// LeaveGroup v0-v5: one member (v0-v2) or a batch by member or static
// instance id (v3+); the rest of the group rebalances.
func init() { register(kmsg.LeaveGroup, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.LeaveGroup(ctx, req)
	}, nil
}
