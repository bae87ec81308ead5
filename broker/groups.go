package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/broker/group"
)

// groupService is the broker's side of group coordination: the coordinator
// (package group) and the placement that says which broker coordinates
// which key. With one broker, everything is coordinated here; placing
// coordinators over many brokers replaces only the placement.
type groupService struct {
	coord *group.Coordinator
	place *clusterPlacement
}

// Coordinator key types of FindCoordinator.
const (
	coordinatorKeyGroup       int8 = 0
	coordinatorKeyTransaction int8 = 1
)

// clusterPlacement places coordinators over the live, non-draining brokers
// by hashing (cluster.go). When membership changes, the groups that move
// here are loaded from the metadata store before this broker answers for
// them, and the groups that move away are dropped: Owns holds only for
// groups owned both before and after a change until the reload is done.
type clusterPlacement struct {
	b         *Broker
	mu        sync.RWMutex
	cur, next map[int32]brokerReg
}

func (p *clusterPlacement) Owns(g string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur == nil {
		return false
	}
	me := p.b.cfg.NodeID
	if r, ok := placeKey(p.cur, g); !ok || r.NodeID != me {
		return false
	}
	r, ok := placeKey(p.next, g)
	return ok && r.NodeID == me
}

func (p *clusterPlacement) coordinatorFor(_ int8, key string) (int32, string, int32, bool) {
	r, ok := p.b.view.coordinatorFor(key)
	if !ok {
		return -1, "", -1, false
	}
	return r.NodeID, r.Host, r.Port, true
}

// members is the part of the view placement depends on.
func placementMembers(brokers []brokerReg) map[int32]brokerReg {
	out := map[int32]brokerReg{}
	for _, r := range brokers {
		out[r.NodeID] = brokerReg{NodeID: r.NodeID, Host: r.Host, Port: r.Port, Draining: r.Draining}
	}
	return out
}

// runGroupPlacement follows membership and moves groups accordingly.
func (b *Broker) runGroupPlacement(ctx context.Context, place *clusterPlacement) {
	var last map[int32]brokerReg
	for {
		ch := b.view.changed()
		members := placementMembers(b.view.live())
		if len(members) > 0 && !maps.EqualFunc(members, last, func(a, c brokerReg) bool { return a == c }) {
			place.mu.Lock()
			place.next = members
			place.mu.Unlock()
			me := b.cfg.NodeID
			err := b.groups.coord.Resync(ctx, func(g string) bool {
				r, ok := placeKey(members, g)
				return ok && r.NodeID == me
			})
			if errors.Is(err, group.ErrClosed) {
				return
			}
			if err != nil {
				b.log.Warn("reloading coordinated groups failed", "err", err)
				select {
				case <-b.closing:
					return
				case <-time.After(time.Second):
				}
				continue
			}
			place.mu.Lock()
			place.cur = members
			place.mu.Unlock()
			last = members
		}
		select {
		case <-b.closing:
			return
		case <-ch:
		}
	}
}

// startGroups loads the persisted groups and starts their coordinator;
// it owns no group until the cluster view places some here.
func (b *Broker) startGroups(ctx context.Context) error {
	place := &clusterPlacement{b: b}
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
		nodeID, host, port, ok := g.place.coordinatorFor(keyType, key)
		if !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code
		}
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
