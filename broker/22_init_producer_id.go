package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-v4 for idempotent producers: a cluster-wide unique
// producer id from the metadata store, epoch 0; a request naming its
// current id and epoch (KIP-360, v3+) gets the epoch bumped, which resets
// its sequences. Transactional ids are not served yet.
func init() { register(kmsg.InitProducerID, 0, 4, handleInitProducerID) }

func handleInitProducerID(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.SetVersion(req.Version)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return immediate(resp), nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < 32766 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return immediate(resp), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := c.b.meta.NextID(ctx, "producers/next-id")
	if err != nil {
		c.b.log.Warn("allocating producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return immediate(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return immediate(resp), nil
}
