package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeGroups v0-v6: state, protocol and members (with metadata and
// assignments while Stable); unknown groups are Dead, and from v6
// GROUP_ID_NOT_FOUND. Authorized operations are all group operations, as
// floe has no ACLs yet.
func init() { register(kmsg.DescribeGroups, 0, 6, handleDescribeGroups) }

func handleDescribeGroups(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.DescribeGroups(ctx, req)
	}, nil
}
