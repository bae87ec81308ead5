package broker

import (
	"context"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/broker/group"
)

// groupService is the broker's side of group coordination: the coordinator
// (package group) and the placement that says which broker coordinates
// which key. With one broker, everything is coordinated here; placing
// coordinators over many brokers replaces only the placement.
type groupService struct {
	coord *group.Coordinator
	place coordinatorPlacement
}

// coordinatorPlacement decides where coordinators live. Owns (from
// group.Placement) makes the coordinator answer NOT_COORDINATOR for keys
// it does not own; coordinatorFor answers FindCoordinator.
type coordinatorPlacement interface {
	group.Placement
	coordinatorFor(keyType int8, key string) (nodeID int32, host string, port int32)
}

// Coordinator key types of FindCoordinator.
const (
	coordinatorKeyGroup       int8 = 0
	coordinatorKeyTransaction int8 = 1
)

// singleNode places every coordinator on this broker.
type singleNode struct{ b *Broker }

func (singleNode) Owns(string) bool { return true }

func (s singleNode) coordinatorFor(int8, string) (int32, string, int32) {
	return s.b.cfg.NodeID, s.b.advHost, s.b.advPort
}

// startGroups loads the persisted groups and starts their coordinator.
func (b *Broker) startGroups(ctx context.Context) error {
	place := singleNode{b}
	coord, err := group.New(group.DefaultConfig(), group.MetaStore(b.meta), brokerTopics{b}, b.log.With("component", "groups"),
		group.WithPlacement(place), group.WithTopicImage(brokerTopics{b}))
	if err != nil {
		return fmt.Errorf("broker: group coordinator: %w", err)
	}
	if err := coord.Start(ctx); err != nil {
		return fmt.Errorf("broker: group coordinator: %w", err)
	}
	b.groups = &groupService{coord: coord, place: place}
	return nil
}

// stopGroups answers every parked JoinGroup/SyncGroup (NOT_COORDINATOR) so
// that connection write loops can finish, and stops the group timers.
func (b *Broker) stopGroups() {
	if b.groups != nil {
		b.groups.coord.Close()
	}
}

// findCoordinator answers one FindCoordinator key.
func (g *groupService) findCoordinator(keyType int8, key string) (nodeID int32, host string, port int32, code int16) {
	switch keyType {
	case coordinatorKeyGroup, coordinatorKeyTransaction:
		// Transactions come later, but clients probe for a transaction
		// coordinator at start-up; pointing them here keeps them going.
		nodeID, host, port = g.place.coordinatorFor(keyType, key)
		return nodeID, host, port, 0
	default:
		return -1, "", -1, kerr.InvalidRequest.Code
	}
}

// brokerTopics shows the coordinator the broker's topics.
type brokerTopics struct{ b *Broker }

func (t brokerTopics) PartitionExists(topic string, partition int32) bool {
	tp := t.b.topics.get(topic)
	if tp == nil {
		return false
	}
	p := tp.partition(partition)
	return p != nil && !p.status().deleted
}

var _ group.TopicImage = brokerTopics{}

// TopicMeta shows KIP-848 consumer groups a topic's id and partition count.
func (t brokerTopics) TopicMeta(name string) ([16]byte, int32, bool) {
	tp := t.b.topics.get(name)
	if tp == nil {
		return [16]byte{}, 0, false
	}
	return tp.id, int32(len(tp.partitions())), true
}

// TopicName names a topic by id for ConsumerGroupDescribe.
func (t brokerTopics) TopicName(id [16]byte) (string, bool) {
	tp := t.b.topics.getByID(id)
	if tp == nil {
		return "", false
	}
	return tp.name, true
}

// TopicNames lists every topic for regex subscriptions.
func (t brokerTopics) TopicNames() []string {
	all := t.b.topics.all()
	names := make([]string, len(all))
	for i, tp := range all {
		names[i] = tp.name
	}
	return names
}

// groupContext is the context of a group request's future: cancelled when
// the connection or the broker closes, so a parked JoinGroup or SyncGroup
// never outlives them.
func (c *conn) groupContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	go func() {
		select {
		case <-c.closed:
		case <-c.b.closing:
		case <-stop:
		}
		cancel()
	}()
	return ctx, func() {
		close(stop)
		cancel()
	}
}

// groupClient identifies the connection to the coordinator. Kafka reports
// client hosts as "/address".
func (c *conn) groupClient() group.Client {
	host := c.nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return group.Client{ID: c.clientID, Host: "/" + host}
}
