package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ListGroups v0-v5 with the state (v4+) and type (v5+, always "classic")
// filters.
func init() { register(kmsg.ListGroups, 0, 5, handleListGroups) }

func handleListGroups(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.ListGroups(ctx, req)
	}, nil
}
