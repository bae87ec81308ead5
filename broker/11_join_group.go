package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// JoinGroup v0-v9, including MEMBER_ID_REQUIRED (v4+), static membership
// (v5+) and SkipAssignment for a static leader's rejoin (v9). The request
// parks in its future until the rebalance round completes; the read loop
// never waits.
func init() { register(kmsg.JoinGroup, 0, 9, handleJoinGroup) }

func handleJoinGroup(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	client := c.groupClient() // read on the read loop, which owns clientID
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.JoinGroup(ctx, client, req)
	}, nil
}
