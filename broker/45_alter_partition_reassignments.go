package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments v0-v1 (Kafka's reassignment tool, kadm): the
// controller moves each partition's leadership to the first broker of its
// new replica list. Object storage holds the data, so a "replica set" is
// one leader; the move is a flush, an epoch bump and a takeover, about a
// second whatever the partition holds. Null replicas cancel a pending
// move, which in floe has already been carried out: NO_REASSIGNMENT_IN_PROGRESS.
func init() { register(kmsg.AlterPartitionAssignments, 0, 1, handleAlterPartitionAssignments) }

func handleAlterPartitionAssignments(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.SetVersion(req.Version)
	b := c.b
	if b.controllerState() == nil {
		resp.ErrorCode = kerr.NotController.Code
		return immediate(resp), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			setErr := func(e *kerr.Error, msg string) {
				sp.ErrorCode = e.Code
				sp.ErrorMessage = &msg
			}
			switch {
			case t == nil || t.partition(rp.Partition) == nil:
				setErr(kerr.UnknownTopicOrPartition, "unknown topic or partition")
			case rp.Replicas == nil:
				setErr(kerr.NoReassignmentInProgress, "no reassignment in progress: floe carries moves out at once")
			case len(rp.Replicas) == 0:
				setErr(kerr.InvalidReplicaAssignment, "empty replica list")
			default:
				if err := b.reassign(ctx, tpKey{t.id, rp.Partition}, rp.Replicas[0], "reassignment"); err != nil {
					if err == errNotController {
						setErr(kerr.NotController, err.Error())
					} else {
						setErr(kerr.InvalidReplicaAssignment, err.Error())
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp), nil
}
