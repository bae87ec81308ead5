package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DeleteGroups v0-v3: empty groups go with their committed offsets;
// NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND if unknown.
func init() { register(kmsg.DeleteGroups, 0, 3, handleDeleteGroups) }

func handleDeleteGroups(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.DeleteGroups(ctx, req)
	}, nil
}
