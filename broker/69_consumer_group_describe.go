package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ConsumerGroupDescribe v0-v1 (KIP-848): a consumer group's state, group
// and assignment epochs, assignor, and each member's subscription, current
// and target assignment (v1 adds the member type). Classic and unknown
// groups answer GROUP_ID_NOT_FOUND. Authorized operations are all group
// operations when asked for, as floe has no ACLs yet.
func init() { register(kmsg.ConsumerGroupDescribe, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	return func() kmsg.Response {
		ctx, cancel := c.groupContext()
		defer cancel()
		return c.b.groups.coord.ConsumerGroupDescribe(ctx, req)
	}, nil
}
