// Package group is floe's coordinator for classic Kafka consumer groups: the
// JoinGroup/SyncGroup rebalance protocol (states Empty, PreparingRebalance,
// CompletingRebalance, Stable and Dead), heartbeats and session timeouts,
// static membership, and every group's committed offsets. KIP-848 consumer
// groups, assigned by the coordinator through ConsumerGroupHeartbeat, share
// the groups' offsets, locks and storage (consumer.go).
//
// Group metadata (generation, protocol, leader, members with their
// subscriptions and assignments) and committed offsets live in the metadata
// store under groups/<group>/, so a restarted broker — or, once coordinators
// are spread over brokers, another one — resumes exactly where the last one
// stopped. Heartbeats never write to the store: only the end of a rebalance,
// a static member's replacement, a group emptying, offset commits and
// deletions do.
//
// The coordinator is protocol-agnostic: it never looks inside assignments,
// so eager and cooperative (incremental) consumers both work as long as the
// rounds run correctly. It speaks in kmsg requests and responses; the broker's
// handlers only decode, route and encode.
package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Config holds the broker-wide group settings, named after Kafka's.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min/max.session.timeout.ms).
	MinSessionTimeout time.Duration `yaml:"group_min_session_timeout"`
	MaxSessionTimeout time.Duration `yaml:"group_max_session_timeout"`
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (group.initial.rebalance.delay.ms), so a
	// fleet of consumers starting together rebalances once, not once each.
	InitialRebalanceDelay time.Duration `yaml:"group_initial_rebalance_delay"`
	// MaxSize caps the members of a group (group.max.size); 0 is no cap.
	MaxSize int `yaml:"group_max_size"`
	// MaxOffsetMetadataBytes caps the metadata string of a committed offset
	// (offset.metadata.max.bytes).
	MaxOffsetMetadataBytes int `yaml:"offset_metadata_max_bytes"`
	// NewMemberJoinTimeout bounds how long a member joining for the first
	// time may wait in a rebalance without heartbeating; it reclaims members
	// whose client went away while its JoinGroup was parked (KIP-394).
	NewMemberJoinTimeout time.Duration `yaml:"group_new_member_join_timeout"`
	// WriteTimeout bounds each metadata-store write.
	WriteTimeout time.Duration `yaml:"group_write_timeout"`

	// KIP-848 consumer groups (consumer.go). MaxSize caps them too.
	//
	// ConsumerHeartbeatInterval is the interval members are told to
	// heartbeat at (group.consumer.heartbeat.interval.ms).
	ConsumerHeartbeatInterval time.Duration `yaml:"group_consumer_heartbeat_interval"`
	// ConsumerSessionTimeout fences a member that has not heartbeaten for
	// that long (group.consumer.session.timeout.ms).
	ConsumerSessionTimeout time.Duration `yaml:"group_consumer_session_timeout"`
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      30 * time.Minute,
		InitialRebalanceDelay:  3 * time.Second,
		MaxOffsetMetadataBytes: 4096,
		NewMemberJoinTimeout:   5 * time.Minute,
		WriteTimeout:           10 * time.Second,

		ConsumerHeartbeatInterval: 5 * time.Second,
		ConsumerSessionTimeout:    45 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.MinSessionTimeout <= 0 || c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group: session timeout bounds [%s, %s] are invalid", c.MinSessionTimeout, c.MaxSessionTimeout)
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("group: initial rebalance delay %s is negative", c.InitialRebalanceDelay)
	case c.MaxSize < 0:
		return fmt.Errorf("group: max size %d is negative", c.MaxSize)
	case c.MaxOffsetMetadataBytes < 0:
		return fmt.Errorf("group: offset metadata max bytes %d is negative", c.MaxOffsetMetadataBytes)
	case c.NewMemberJoinTimeout <= 0:
		return fmt.Errorf("group: new member join timeout %s must be positive", c.NewMemberJoinTimeout)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("group: write timeout %s must be positive", c.WriteTimeout)
	case c.ConsumerHeartbeatInterval <= 0 || c.ConsumerSessionTimeout <= c.ConsumerHeartbeatInterval:
		return fmt.Errorf("group: consumer heartbeat interval %s must be positive and below the consumer session timeout %s",
			c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout)
	}
	return nil
}

// Topics tells the coordinator which partitions exist: commits and offset
// deletions for unknown partitions are refused, as in Kafka.
type Topics interface {
	PartitionExists(topic string, partition int32) bool
}

// Placement tells the coordinator which groups it coordinates. Requests
// for other groups get NOT_COORDINATOR so the client looks again.
type Placement interface {
	Owns(group string) bool
}

// ownsAll is the placement of a single broker.
type ownsAll struct{}

func (ownsAll) Owns(string) bool { return true }

// Client identifies the connection a request came from; DescribeGroups
// reports it per member.
type Client struct {
	ID   string
	Host string
}

// ErrClosed is returned once the coordinator has been closed.
var ErrClosed = errors.New("group: coordinator closed")

// Option configures a Coordinator.
type Option func(*Coordinator)

// WithClock replaces the wall clock (tests use a fake one).
func WithClock(clk Clock) Option { return func(c *Coordinator) { c.clock = clk } }

// WithPlacement limits the groups this coordinator owns.
func WithPlacement(p Placement) Option { return func(c *Coordinator) { c.placement = p } }

// Coordinator coordinates the groups this broker owns. Its methods are safe
// for concurrent use; JoinGroup and SyncGroup block until the rebalance
// round they take part in answers, so callers run them off any loop that
// must keep moving.
type Coordinator struct {
	cfg       Config
	store     Store
	topics    Topics
	placement Placement
	clock     Clock
	log       *slog.Logger
	image     TopicImage // consumer groups' view of topics (consumer.go)

	mu     sync.Mutex // guards groups, each group's deleting, and bg.Add
	groups map[string]*group
	closed atomic.Bool
	bg     sync.WaitGroup // timer callbacks in flight; Close waits for them
}

// New returns a coordinator; call Start to load the persisted groups.
func New(cfg Config, store Store, topics Topics, logger *slog.Logger, opts ...Option) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:       cfg,
		store:     store,
		topics:    topics,
		placement: ownsAll{},
		clock:     SystemClock{},
		log:       logger,
		groups:    make(map[string]*group),
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Start loads every group's metadata and committed offsets from the store.
// A group persisted with members comes back Stable at its generation, so
// members that keep heartbeating carry on without a rebalance; those that
// do not expire after their session timeout.
func (c *Coordinator) Start(ctx context.Context) error {
	loaded, err := load(ctx, c.store)
	if err != nil {
		return err
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, st := range loaded {
		c.restoreLocked(name, st, now)
	}
	c.log.Info("loaded consumer groups", "groups", len(loaded))
	return nil
}

// Resync follows a change of placement: groups owns no longer claims are
// dropped (parked requests answered NOT_COORDINATOR, timers stopped), and
// groups it newly claims are loaded from the store, where their previous
// coordinator left them. Groups owned before and after stay as they are.
// The caller keeps Owns false for groups in transit until Resync returns.
func (c *Coordinator) Resync(ctx context.Context, owns func(group string) bool) error {
	loaded, err := load(ctx, c.store)
	if err != nil {
		return err
	}
	now := c.clock.Now()
	var drop []*group
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return ErrClosed
	}
	for name, g := range c.groups {
		if g.deleting == nil && !owns(name) {
			drop = append(drop, g)
			delete(c.groups, name)
		}
	}
	added := 0
	for name, st := range loaded {
		if !owns(name) || c.groups[name] != nil {
			continue
		}
		c.restoreLocked(name, st, now)
		added++
	}
	c.mu.Unlock()
	for _, g := range drop {
		g.mu.Lock()
		g.shutdown()
		g.state = Dead
		g.mu.Unlock()
	}
	if len(drop) > 0 || added > 0 {
		c.log.Info("group placement changed", "loaded", added, "dropped", len(drop))
	}
	return nil
}

// restoreLocked brings a persisted group back under c.mu, with its timers
// armed from now.
func (c *Coordinator) restoreLocked(name string, st *loadedGroup, now time.Time) {
	g := newGroup(c, name)
	g.restore(st, now)
	c.groups[name] = g
	g.mu.Lock()
	g.arm(now)
	g.mu.Unlock()
}

// Close stops every timer and answers every parked JoinGroup and SyncGroup
// with NOT_COORDINATOR, so clients go and find the coordinator again, then
// waits for timer work in flight (a metadata write at most). Later calls
// answer NOT_COORDINATOR too. Close is idempotent.
func (c *Coordinator) Close() {
	defer c.bg.Wait()
	c.mu.Lock()
	if c.closed.Swap(true) {
		c.mu.Unlock()
		return
	}
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdown()
		g.mu.Unlock()
	}
}

// lookup returns the named group, creating an Empty one if create is set.
// It waits out a deletion in progress, so a group being deleted is never
// handed out and never revived by a concurrent request.
func (c *Coordinator) lookup(ctx context.Context, name string, create bool) (*group, error) {
	for {
		c.mu.Lock()
		if c.closed.Load() {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		g := c.groups[name]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil, nil
			}
			g = newGroup(c, name)
			c.groups[name] = g
			c.mu.Unlock()
			return g, nil
		}
		wait := g.deleting
		c.mu.Unlock()
		if wait == nil {
			return g, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// enterBackground registers a timer callback; false once closed.
func (c *Coordinator) enterBackground() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.bg.Add(1)
	return true
}

// dropIfVacant forgets a group that holds nothing worth keeping: created by
// a request that never led anywhere (a MEMBER_ID_REQUIRED join whose member
// never came back) and never persisted.
func (c *Coordinator) dropIfVacant(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.groups[g.name] == g && g.deleting == nil && g.vacant() {
		g.state = Dead
		g.stopTimer()
		delete(c.groups, g.name)
	}
}

// snapshot lists the groups this coordinator owns, sorted by name.
func (c *Coordinator) snapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for name, g := range c.groups {
		if g.deleting == nil && c.placement.Owns(name) {
			gs = append(gs, g)
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].name < gs[j].name })
	return gs
}

// groupErr is the Kafka error for a failed lookup.
func groupErr(err error) *kerr.Error {
	if errors.Is(err, ErrClosed) {
		return kerr.NotCoordinator
	}
	return kerr.CoordinatorNotAvailable
}

// writeCtx bounds a store write by the configured timeout.
func (c *Coordinator) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.WriteTimeout)
}
