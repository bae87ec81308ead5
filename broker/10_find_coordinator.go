package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// FindCoordinator v0-v5: one key (v0-v3) or a batch (v4+). Group keys
// (type 0) and transactional ids (type 1) are answered with the broker the
// placement names — this one while floe runs a single broker. Transaction
// coordinators come later, but clients probe for one at start-up and give
// up on COORDINATOR_NOT_AVAILABLE, so they are pointed here too. v6 only
// adds share-group keys, which floe does not serve.
func init() { register(kmsg.FindCoordinator, 0, 5, handleFindCoordinator) }

func handleFindCoordinator(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	resp.SetVersion(req.Version)
	keyType := req.CoordinatorType // v0 has none: 0, a group
	if req.Version < 4 {
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = c.b.groups.findCoordinator(keyType, req.CoordinatorKey)
		return immediate(resp), nil
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.NodeID, rc.Host, rc.Port, rc.ErrorCode = c.b.groups.findCoordinator(keyType, key)
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return immediate(resp), nil
}
