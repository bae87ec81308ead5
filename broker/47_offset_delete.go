package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// OffsetDelete v0: deletes a group's committed offsets for partitions of
// topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise);
// any partition of an empty group.
func init() { register(kmsg.OffsetDelete, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.OffsetDelete(ctx, req)
	}, nil
}
