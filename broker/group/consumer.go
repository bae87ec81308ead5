package group

// KIP-848 consumer groups (group type "consumer"): the coordinator, not a
// group leader, assigns partitions, and members converge on the assignment
// through ConsumerGroupHeartbeat alone.
//
// Every membership or subscription change, and every change of the
// subscribed topics' partitions (checked on each heartbeat), bumps the group
// epoch; a bump recomputes the target assignment at once with the group's
// server-side assignor. Each member then reconciles towards its target
// (Kafka's CurrentAssignmentBuilder): partitions it must give up are revoked
// first and it keeps its epoch until a heartbeat no longer reports them; a
// partition is handed to its new owner only once no member holds it (the
// partition epochs below say who does); the member epoch advances to the
// target's epoch as it converges. Members that stop heartbeating for the
// session timeout, or do not revoke within their rebalance timeout, are
// fenced: removed, their partitions freed, the group epoch bumped.
//
// A group id is either a classic group or a consumer group. An empty one
// (offsets only) changes type on the first join of the other protocol;
// otherwise a ConsumerGroupHeartbeat to a classic group answers
// GROUP_ID_NOT_FOUND and a JoinGroup to a consumer group
// INCONSISTENT_GROUP_PROTOCOL, as Kafka does with migration disabled.
//
// The group's state lives in the same group struct as a classic group's
// (offsets, locks, timer, deletion are shared); g.consumer is non-nil while
// the group is a consumer group, and the classic state machine stays Empty.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Member epochs with a meaning of their own.
const (
	leaveEpoch       int32 = -1 // the member leaves
	staticLeaveEpoch int32 = -2 // a static member leaves for now and keeps its partitions
)

// consumerGroupType is the group type ListGroups reports for KIP-848
// groups; their protocol type is "consumer" too.
const consumerGroupType = "consumer"

// regexRefresh bounds how often a group re-matches its members' regular
// expressions against the topic list; new subscriptions match at once.
const regexRefresh = time.Second

// TopicImage is what consumer groups need to know of the broker's topics.
// Calls happen under a group's lock, so implementations must not call back
// into the coordinator.
type TopicImage interface {
	// TopicMeta returns a topic's id and partition count; ok is false if
	// the topic does not exist.
	TopicMeta(name string) (id [16]byte, partitions int32, ok bool)
	// TopicName returns the name of the topic with the given id.
	TopicName(id [16]byte) (string, bool)
	// TopicNames lists every topic, internal ones included (Kafka matches
	// subscription regexes against them too).
	TopicNames() []string
}

// WithTopicImage shows consumer groups the broker's topics. Without it the
// coordinator uses its Topics if that implements TopicImage, and otherwise
// sees no topics at all.
func WithTopicImage(img TopicImage) Option { return func(c *Coordinator) { c.image = img } }

type noTopics struct{}

func (noTopics) TopicMeta(string) ([16]byte, int32, bool) { return [16]byte{}, 0, false }
func (noTopics) TopicName([16]byte) (string, bool)        { return "", false }
func (noTopics) TopicNames() []string                     { return nil }

func (c *Coordinator) topicImage() TopicImage {
	if c.image != nil {
		return c.image
	}
	if img, ok := c.topics.(TopicImage); ok {
		return img
	}
	return noTopics{}
}

// consumerState is a consumer group's state, named as Kafka reports it.
type consumerState int8

const (
	consumerEmpty consumerState = iota
	consumerAssigning
	consumerReconciling
	consumerStable
)

func (s consumerState) String() string {
	switch s {
	case consumerEmpty:
		return "Empty"
	case consumerAssigning:
		return "Assigning"
	case consumerReconciling:
		return "Reconciling"
	case consumerStable:
		return "Stable"
	}
	return "Unknown"
}

// memberState is where a member is in its reconciliation.
type memberState int8

const (
	// memberStable: the member has all of its assignment at its epoch.
	memberStable memberState = iota
	// memberUnrevoked: the member must stop owning partitionsPendingRevocation
	// before it moves on; its epoch stays put meanwhile.
	memberUnrevoked
	// memberUnreleased: the member is at the target epoch but waits for
	// partitions other members still own.
	memberUnreleased
)

func (s memberState) String() string {
	switch s {
	case memberUnrevoked:
		return "unrevoked_partitions"
	case memberUnreleased:
		return "unreleased_partitions"
	}
	return "stable"
}

func parseMemberState(s string) memberState {
	switch s {
	case "unrevoked_partitions":
		return memberUnrevoked
	case "unreleased_partitions":
		return memberUnreleased
	}
	return memberStable
}

// consumerMember is one member of a consumer group.
type consumerMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string

	rebalanceTimeout time.Duration
	serverAssignor   string
	topics           []string // subscribed topic names, sorted
	regex            string   // subscribed regular expression; "" for none

	epoch     int32
	prevEpoch int32
	state     memberState
	// assigned are the partitions the member owns or is being given;
	// pendingRevocation those it was told to give up and may still own.
	assigned          partSet
	pendingRevocation partSet
	target            partSet
	// assignedAt is the member epoch at which each partition of assigned
	// and pendingRevocation was given to it (KIP-1251): commits with an
	// older epoch than the member's are accepted for those partitions.
	assignedAt map[topicID]map[int32]int32

	lastHeartbeat time.Time
	// revokeBy is when a member in memberUnrevoked at revokeEpoch is fenced
	// for not revoking (its rebalance timeout); zero otherwise.
	revokeBy    time.Time
	revokeEpoch int32
}

func (m *consumerMember) reconciledTo(epoch int32) bool {
	return m.state == memberStable && m.epoch == epoch
}

// subscribedTopic is one entry of the subscription metadata: a subscribed
// topic that exists, with its id and partition count.
type subscribedTopic struct {
	id         topicID
	partitions int32
}

// consumerGroup is the KIP-848 state of a group, guarded by the group's mu.
type consumerGroup struct {
	epoch           int32 // group epoch
	assignmentEpoch int32 // epoch of the target assignment
	assignor        string
	members         map[string]*consumerMember
	static          map[string]string // instance id -> member id

	// subscribed is the subscription metadata: every topic some member
	// subscribes to (by name or regex) that exists. A change bumps the
	// group epoch.
	subscribed map[string]subscribedTopic
	// regexMatches caches, per regex, the topics it matched at
	// regexCheckedAt; compiled caches compiled expressions.
	regexMatches   map[string][]string
	regexCheckedAt time.Time
	compiled       map[string]*regexp.Regexp

	// partitionEpochs records, per partition, the epoch of the member that
	// owns it (assigned or pending revocation). A partition is free, and
	// may be handed to another member, only when it has no entry.
	partitionEpochs map[topicID]map[int32]int32

	// What the next flush writes: the group record, the members (a
	// member no longer in members is deleted), and whether the classic
	// record of the group this one replaced must go.
	metaDirty    bool
	dirtyMembers map[string]bool
	dropClassic  bool
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		assignor:        assignorUniform,
		members:         make(map[string]*consumerMember),
		static:          make(map[string]string),
		subscribed:      make(map[string]subscribedTopic),
		regexMatches:    make(map[string][]string),
		compiled:        make(map[string]*regexp.Regexp),
		partitionEpochs: make(map[topicID]map[int32]int32),
		dirtyMembers:    make(map[string]bool),
	}
}

func (cg *consumerGroup) state() consumerState {
	switch {
	case len(cg.members) == 0:
		return consumerEmpty
	case cg.epoch > cg.assignmentEpoch:
		return consumerAssigning
	}
	for _, m := range cg.members {
		if !m.reconciledTo(cg.assignmentEpoch) {
			return consumerReconciling
		}
	}
	return consumerStable
}

func (cg *consumerGroup) dirty() bool {
	return cg.metaDirty || cg.dropClassic || len(cg.dirtyMembers) > 0
}

func (cg *consumerGroup) touch(m *consumerMember) { cg.dirtyMembers[m.id] = true }

func (cg *consumerGroup) sortedMembers() []*consumerMember {
	ms := make([]*consumerMember, 0, len(cg.members))
	for _, m := range cg.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}

// partitionEpoch is the epoch of the partition's owner, or -1 if free.
func (cg *consumerGroup) partitionEpoch(id topicID, p int32) int32 {
	if e, ok := cg.partitionEpochs[id][p]; ok {
		return e
	}
	return -1
}

func (cg *consumerGroup) addEpochs(s partSet, epoch int32) {
	for id, ps := range s {
		pe := cg.partitionEpochs[id]
		if pe == nil {
			pe = make(map[int32]int32, len(ps))
			cg.partitionEpochs[id] = pe
		}
		for _, p := range ps {
			pe[p] = epoch
		}
	}
}

// removeEpochs frees the partitions the member at epoch owned; an entry
// with another epoch belongs to someone else and stays.
func (cg *consumerGroup) removeEpochs(s partSet, epoch int32) {
	for id, ps := range s {
		pe := cg.partitionEpochs[id]
		for _, p := range ps {
			if e, ok := pe[p]; ok && e == epoch {
				delete(pe, p)
			}
		}
		if len(pe) == 0 {
			delete(cg.partitionEpochs, id)
		}
	}
}

// setAssignment moves a member to a new epoch, state and assignment,
// keeping the partition epochs and assignment epochs in step.
func (cg *consumerGroup) setAssignment(m *consumerMember, epoch int32, state memberState, assigned, pending partSet) {
	cg.removeEpochs(m.assigned, m.epoch)
	cg.removeEpochs(m.pendingRevocation, m.epoch)
	if epoch != m.epoch {
		m.prevEpoch = m.epoch
	}
	at := make(map[topicID]map[int32]int32, len(assigned)+len(pending))
	for _, s := range []partSet{assigned, pending} {
		for id, ps := range s {
			for _, p := range ps {
				e, ok := m.assignedAt[id][p]
				if !ok {
					e = epoch
				}
				if at[id] == nil {
					at[id] = make(map[int32]int32)
				}
				at[id][p] = e
			}
		}
	}
	m.epoch, m.state, m.assigned, m.pendingRevocation, m.assignedAt = epoch, state, assigned, pending, at
	cg.addEpochs(m.assigned, m.epoch)
	cg.addEpochs(m.pendingRevocation, m.epoch)
	cg.touch(m)
}

// resetMember forgets what a member owns: it rejoined with epoch 0, which
// a client does only after abandoning all its partitions.
func (cg *consumerGroup) resetMember(m *consumerMember) {
	cg.setAssignment(m, 0, memberStable, partSet{}, partSet{})
	m.prevEpoch = 0
	m.assignedAt = map[topicID]map[int32]int32{}
	m.revokeBy = time.Time{}
}

// ConsumerGroupHeartbeat v0-v1: joins (member epoch 0), heartbeats, and
// leaves (-1, or -2 for a static member that comes back) of KIP-848
// members. In v0 the coordinator names a joining member; from v1 the
// member names itself. Whatever the heartbeat changed is written to the
// metadata store before the answer, so a member is told of an assignment
// only once it survives a restart.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, client Client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.SetVersion(req.Version)
	if e, msg := c.checkConsumerHeartbeat(req); e != nil {
		return heartbeatError(resp, e, msg)
	}
	if !c.placement.Owns(req.Group) {
		return heartbeatError(resp, kerr.NotCoordinator, "")
	}
	join := req.MemberEpoch == 0
	for {
		g, err := c.lookup(ctx, req.Group, join)
		if err != nil {
			return heartbeatError(resp, groupErr(err), "")
		}
		if g == nil {
			return heartbeatError(resp, kerr.GroupIDNotFound, fmt.Sprintf("Consumer group %s not found.", req.Group))
		}
		g.mu.Lock()
		if g.state == Dead {
			g.mu.Unlock()
			if join {
				continue // deleted meanwhile: join the group created in its place
			}
			return heartbeatError(resp, kerr.GroupIDNotFound, fmt.Sprintf("Consumer group %s not found.", req.Group))
		}
		if c.closed.Load() {
			g.mu.Unlock()
			return heartbeatError(resp, kerr.NotCoordinator, "")
		}
		now := c.clock.Now()
		out := g.consumerHeartbeat(client, req, now)
		g.arm(now)
		write := g.consumer != nil && g.consumer.dirty()
		vacant := g.vacant()
		g.mu.Unlock()
		if write {
			if err := g.flushConsumer(ctx); err != nil {
				c.log.Warn("persisting consumer group failed", "group", g.name, "err", err)
				if out.ErrorCode == 0 {
					// Not durable: the member retries, and the retry
					// writes again before anyone is told.
					resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
					return resp
				}
			}
		}
		if vacant {
			c.dropIfVacant(g)
		}
		return out
	}
}

func heartbeatError(resp *kmsg.ConsumerGroupHeartbeatResponse, e *kerr.Error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
	resp.ErrorCode = e.Code
	if msg != "" {
		resp.ErrorMessage = &msg
	}
	return resp
}

// checkConsumerHeartbeat applies Kafka's request validation.
func (c *Coordinator) checkConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*kerr.Error, string) {
	empty := func(s *string) bool { return s != nil && *s == "" }
	switch {
	case req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch > 0 || req.MemberEpoch == leaveEpoch):
		return kerr.InvalidRequest, "MemberId can't be empty."
	case req.Group == "":
		return kerr.InvalidRequest, "GroupId can't be empty."
	case empty(req.InstanceID):
		return kerr.InvalidRequest, "InstanceId can't be empty."
	case empty(req.RackID):
		return kerr.InvalidRequest, "RackId can't be empty."
	case req.MemberEpoch < staticLeaveEpoch:
		return kerr.InvalidRequest, "MemberEpoch is invalid."
	case req.MemberEpoch == staticLeaveEpoch && req.MemberID == "":
		return kerr.InvalidRequest, "MemberId can't be empty."
	}
	if req.MemberEpoch == 0 {
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request."
		case req.Topics == nil || len(req.Topics) > 0:
			return kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining."
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return kerr.InvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileSubscription(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression, "SubscribedTopicRegex is not a valid regular expression: " + err.Error()
		}
	}
	if req.ServerAssignor != nil && !slices.Contains(assignors, *req.ServerAssignor) {
		return kerr.UnsupportedAssignor, fmt.Sprintf("ServerAssignor %s is not supported. Supported assignors: uniform, range.", *req.ServerAssignor)
	}
	return nil, ""
}

// compileSubscription compiles a subscription regex, which Kafka matches
// against whole topic names (RE2 syntax, as Kafka's RE2/J).
func compileSubscription(expr string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expr + ")$")
}

func newConsumerMemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// consumerHeartbeat handles a heartbeat under g.mu.
func (g *group) consumerHeartbeat(client Client, req *kmsg.ConsumerGroupHeartbeatRequest, now time.Time) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.SetVersion(req.Version)
	if g.consumer == nil {
		// A classic group: an empty one (offsets at most) becomes a
		// consumer group on a join; Kafka refuses anything else.
		if req.MemberEpoch != 0 || len(g.members) > 0 || g.state != Empty {
			return heartbeatError(resp, kerr.GroupIDNotFound, fmt.Sprintf("Group %s is not a consumer group.", g.name))
		}
		g.becomeConsumerGroup()
	}
	if req.MemberEpoch == leaveEpoch || req.MemberEpoch == staticLeaveEpoch {
		return g.consumerLeave(req, resp, now)
	}
	cg := g.consumer
	join := req.MemberEpoch == 0

	memberID := req.MemberID
	if memberID == "" {
		memberID = newConsumerMemberID() // v0: the coordinator names new members
	}
	if limit := g.c.cfg.MaxSize; limit > 0 && len(cg.members) >= limit && cg.members[memberID] == nil {
		return heartbeatError(resp, kerr.GroupMaxSizeReached, fmt.Sprintf("The consumer group has reached its maximum capacity of %d members.", limit))
	}
	var owned partSet
	if req.Topics != nil {
		owned = partSetOf(len(req.Topics), func(i int) (topicID, []int32) { return req.Topics[i].TopicID, req.Topics[i].Partitions })
	}
	m, isNew, e, msg := g.consumerMemberFor(req, memberID, owned)
	if e != nil {
		return heartbeatError(resp, e, msg)
	}
	before := m.assigned

	// Take the request's changes; nil fields mean "unchanged".
	subscriptionChanged := isNew
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		r := *req.RackID
		m.rackID = &r
		cg.touch(m)
	}
	if req.InstanceID != nil && m.instanceID == nil {
		inst := *req.InstanceID
		m.instanceID = &inst
		if !isNew {
			cg.static[inst] = m.id
		}
		cg.touch(m)
	}
	if req.RebalanceTimeoutMillis > 0 {
		if d := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond; d != m.rebalanceTimeout {
			m.rebalanceTimeout = d
			cg.touch(m)
		}
	}
	if m.rebalanceTimeout <= 0 {
		m.rebalanceTimeout = g.c.cfg.ConsumerSessionTimeout
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.serverAssignor {
		m.serverAssignor = *req.ServerAssignor
		cg.touch(m)
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics = names
			subscriptionChanged = true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex = *req.SubscribedTopicRegex
		subscriptionChanged = true
	}
	if client.ID != m.clientID || client.Host != m.clientHost {
		m.clientID, m.clientHost = client.ID, client.Host
		cg.touch(m)
	}
	if subscriptionChanged {
		cg.touch(m)
	}
	if isNew {
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		g.c.log.Info("consumer group member joined", "group", g.name, "member", m.id, "instance", strOrEmpty(m.instanceID))
	}
	m.lastHeartbeat = now

	// Bump the group epoch on a membership or subscription change, or when
	// the subscribed topics changed; a bump recomputes the target.
	bump := subscriptionChanged || cg.epoch == 0
	if g.refreshSubscriptions(now, subscriptionChanged) {
		bump = true
	}
	if bump {
		g.bumpConsumerEpoch()
	}
	g.reconcile(m, owned, now)

	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.c.cfg.ConsumerHeartbeatInterval.Milliseconds())
	// The assignment goes out on joins, on full requests (what a member
	// sends after an error, to be told everything again) and when it
	// changed.
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if join || full || !before.equal(m.assigned) {
		resp.Assignment = heartbeatAssignment(m.assigned)
	}
	return resp
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func heartbeatAssignment(s partSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, id := range s.ids() {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID = id
		t.Partitions = slices.Clone(s[id])
		a.Topics = append(a.Topics, t)
	}
	return &a
}

// becomeConsumerGroup turns an empty classic group (offsets at most) into
// a consumer group; the first flush deletes its classic record.
func (g *group) becomeConsumerGroup() {
	g.consumer = newConsumerGroup()
	g.consumer.dropClassic = true
	g.record = nil
	g.protocolType, g.protocol, g.leader = "", "", ""
	clear(g.pending)
	g.c.log.Info("group now uses the consumer protocol", "group", g.name)
}

// consumerMemberFor finds (or makes) the member a heartbeat is for, with
// Kafka's fencing rules for member ids, static instance ids and epochs.
// Two leniencies, as franz-go's kfake has them: a known member that joins
// again with epoch 0 is taken back in place with nothing owned (the client
// abandoned its partitions) instead of being fenced, and so is a static
// member whose instance is still held by its own member id.
func (g *group) consumerMemberFor(req *kmsg.ConsumerGroupHeartbeatRequest, memberID string, owned partSet) (m *consumerMember, isNew bool, e *kerr.Error, msg string) {
	cg := g.consumer
	join := req.MemberEpoch == 0
	fresh := func() *consumerMember {
		return &consumerMember{
			id:                memberID,
			assigned:          partSet{},
			pendingRevocation: partSet{},
			target:            partSet{},
			assignedAt:        map[topicID]map[int32]int32{},
		}
	}
	if req.InstanceID == nil {
		m = cg.members[memberID]
		switch {
		case m == nil && !join:
			return nil, false, kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", memberID, g.name)
		case m == nil:
			return fresh(), true, nil, ""
		case join:
			cg.resetMember(m)
			return m, false, nil, ""
		}
		if e, msg := checkMemberEpoch(m, req.MemberEpoch, owned); e != nil {
			return nil, false, e, msg
		}
		return m, false, nil, ""
	}

	inst := *req.InstanceID
	cur := cg.members[cg.static[inst]]
	if !join {
		switch {
		case cur == nil:
			return nil, false, kerr.UnknownMemberID, fmt.Sprintf("Instance id %s is unknown.", inst)
		case cur.id != memberID:
			return nil, false, kerr.FencedInstanceID, fmt.Sprintf("Static member %s with instance id %s was fenced by member %s.", memberID, inst, cur.id)
		}
		if e, msg := checkMemberEpoch(cur, req.MemberEpoch, owned); e != nil {
			return nil, false, e, msg
		}
		return cur, false, nil, ""
	}
	switch {
	case cur == nil:
		if m = cg.members[memberID]; m != nil {
			cg.resetMember(m) // a dynamic member rejoining as a static one
			return m, false, nil, ""
		}
		return fresh(), true, nil, ""
	case cur.id == memberID && cur.epoch == staticLeaveEpoch:
		// Back under the same id: it takes its partitions back.
		cg.setAssignment(cur, 0, memberStable, cur.assigned, partSet{})
		cur.prevEpoch = 0
		return cur, false, nil, ""
	case cur.id == memberID:
		cg.resetMember(cur)
		return cur, false, nil, ""
	case cur.epoch != staticLeaveEpoch:
		return nil, false, kerr.UnreleasedInstanceID, fmt.Sprintf("Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", memberID, inst, cur.id)
	}
	// A restarted static instance replaces the member that left with -2
	// and takes over its subscription, target and partitions.
	m = &consumerMember{
		id:                memberID,
		instanceID:        cur.instanceID,
		rackID:            cur.rackID,
		rebalanceTimeout:  cur.rebalanceTimeout,
		serverAssignor:    cur.serverAssignor,
		topics:            cur.topics,
		regex:             cur.regex,
		assigned:          partSet{},
		pendingRevocation: partSet{},
		target:            cur.target,
		assignedAt:        cur.assignedAt,
	}
	assigned := cur.assigned
	cg.removeEpochs(cur.assigned, cur.epoch)
	delete(cg.members, cur.id)
	cg.touch(cur)
	cg.members[m.id] = m
	cg.static[inst] = m.id
	cg.setAssignment(m, 0, memberStable, assigned, partSet{})
	m.prevEpoch = 0
	g.c.log.Info("static consumer group member replaced", "group", g.name, "instance", inst, "old", cur.id, "new", m.id)
	return m, false, nil, ""
}

// checkMemberEpoch fences a heartbeat whose epoch is not the member's,
// except the previous epoch with owned partitions the member still has
// (the response that bumped the epoch may have been lost).
func checkMemberEpoch(m *consumerMember, received int32, owned partSet) (*kerr.Error, string) {
	switch {
	case received > m.epoch:
		return kerr.FencedMemberEpoch, fmt.Sprintf("The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", received, m.epoch)
	case received < m.epoch && (received != m.prevEpoch || owned == nil || !owned.subsetOf(m.assigned)):
		return kerr.FencedMemberEpoch, fmt.Sprintf("The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", received, m.epoch)
	}
	return nil, ""
}

// refreshSubscriptions recomputes the subscription metadata and reports
// whether it changed. Regexes are matched again when force is set, when a
// regex is new, or after regexRefresh.
func (g *group) refreshSubscriptions(now time.Time, force bool) bool {
	cg := g.consumer
	img := g.c.topicImage()
	names := make(map[string]bool)
	regexes := make(map[string]bool)
	for _, m := range cg.members {
		for _, t := range m.topics {
			names[t] = true
		}
		if m.regex != "" {
			regexes[m.regex] = true
		}
	}
	rematch := force || now.Sub(cg.regexCheckedAt) >= regexRefresh
	for re := range regexes {
		if _, ok := cg.regexMatches[re]; !ok {
			rematch = true
		}
	}
	if rematch {
		cg.regexCheckedAt = now
		matches := make(map[string][]string, len(regexes))
		var all []string
		if len(regexes) > 0 {
			all = img.TopicNames()
		}
		for re := range regexes {
			cre := cg.compiled[re]
			if cre == nil {
				var err error
				if cre, err = compileSubscription(re); err != nil {
					continue // validated on the way in; cannot happen
				}
				cg.compiled[re] = cre
			}
			matched := []string{}
			for _, t := range all {
				if cre.MatchString(t) {
					matched = append(matched, t)
				}
			}
			matches[re] = matched
		}
		cg.regexMatches = matches
		for re := range cg.compiled {
			if !regexes[re] {
				delete(cg.compiled, re)
			}
		}
	}
	for re := range regexes {
		for _, t := range cg.regexMatches[re] {
			names[t] = true
		}
	}
	subscribed := make(map[string]subscribedTopic, len(names))
	for name := range names {
		if id, n, ok := img.TopicMeta(name); ok && n > 0 {
			subscribed[name] = subscribedTopic{id: id, partitions: n}
		}
	}
	if mapsEqual(subscribed, cg.subscribed) {
		return false
	}
	cg.subscribed = subscribed
	cg.metaDirty = true
	return true
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// memberTopics is the set of subscribed topic ids of a member.
func (cg *consumerGroup) memberTopics(m *consumerMember) map[topicID]bool {
	subs := make(map[topicID]bool)
	for _, t := range m.topics {
		if st, ok := cg.subscribed[t]; ok {
			subs[st.id] = true
		}
	}
	if m.regex != "" {
		for _, t := range cg.regexMatches[m.regex] {
			if st, ok := cg.subscribed[t]; ok {
				subs[st.id] = true
			}
		}
	}
	return subs
}

// preferredAssignor is the assignor most members ask for (ties go to the
// first in the list of supported assignors), the default if none asks.
func (cg *consumerGroup) preferredAssignor() string {
	votes := make(map[string]int)
	for _, m := range cg.members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	best := assignorUniform
	for _, a := range assignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// bumpConsumerEpoch starts a new group epoch and computes its target
// assignment at once.
func (g *group) bumpConsumerEpoch() {
	cg := g.consumer
	cg.epoch++
	cg.metaDirty = true
	cg.assignor = cg.preferredAssignor()
	spec := assignSpec{}
	for name, st := range cg.subscribed {
		spec.topics = append(spec.topics, assignTopic{name: name, id: st.id, partitions: st.partitions})
	}
	sort.Slice(spec.topics, func(i, j int) bool { return spec.topics[i].name < spec.topics[j].name })
	for _, m := range cg.sortedMembers() {
		spec.members = append(spec.members, assignMember{id: m.id, instanceID: m.instanceID, subscribed: cg.memberTopics(m), previous: m.target})
	}
	targets := assign(cg.assignor, spec)
	for _, m := range cg.members {
		t := targets[m.id]
		if t == nil {
			t = partSet{}
		}
		if !t.equal(m.target) {
			m.target = t
			cg.touch(m)
		}
	}
	cg.assignmentEpoch = cg.epoch
	g.c.log.Info("consumer group epoch bumped", "group", g.name, "epoch", cg.epoch,
		"assignor", cg.assignor, "members", len(cg.members), "topics", len(spec.topics))
}

// reconcile moves a member towards its target (Kafka's
// CurrentAssignmentBuilder); owned is what the heartbeat says the member
// owns, nil if it did not say.
func (g *group) reconcile(m *consumerMember, owned partSet, now time.Time) {
	cg := g.consumer
	if m.reconciledTo(cg.assignmentEpoch) {
		return
	}
	ownsAny := func(s partSet) bool { return owned == nil || owned.intersects(s) }
	switch m.state {
	case memberStable:
		g.nextAssignment(m, m.epoch, ownsAny)
	case memberUnrevoked:
		if ownsAny(m.pendingRevocation) {
			return
		}
		// Revocation acknowledged: on to the next epoch.
		g.nextAssignment(m, m.epoch+1, ownsAny)
	case memberUnreleased:
		g.nextAssignment(m, m.epoch, ownsAny)
	}
	switch {
	case m.state != memberUnrevoked:
		m.revokeBy = time.Time{}
	case m.revokeBy.IsZero() || m.revokeEpoch != m.epoch:
		m.revokeBy, m.revokeEpoch = now.Add(m.rebalanceTimeout), m.epoch
	}
}

// nextAssignment computes the member's next step towards its target:
// revoke what the target no longer has (staying at epoch while the member
// still owns any of it), else take the target's free partitions at the
// target epoch, waiting (memberUnreleased) for those others still own.
func (g *group) nextAssignment(m *consumerMember, epoch int32, ownsAny func(partSet) bool) {
	cg := g.consumer
	keep, revoke, give := partSet{}, partSet{}, partSet{}
	unreleased := false
	for id, ps := range m.assigned {
		for _, p := range ps {
			if m.target.has(id, p) {
				keep.add(id, p)
			} else {
				revoke.add(id, p)
			}
		}
	}
	for id, ps := range m.target {
		for _, p := range ps {
			switch {
			case keep.has(id, p):
			case cg.partitionEpoch(id, p) != -1:
				unreleased = true
			default:
				give.add(id, p)
			}
		}
	}
	switch {
	case len(revoke) > 0 && ownsAny(revoke):
		cg.setAssignment(m, epoch, memberUnrevoked, keep, revoke)
	case len(give) > 0:
		for id, ps := range give {
			for _, p := range ps {
				keep.add(id, p)
			}
		}
		state := memberStable
		if unreleased {
			state = memberUnreleased
		}
		cg.setAssignment(m, cg.assignmentEpoch, state, keep, partSet{})
	case unreleased:
		cg.setAssignment(m, cg.assignmentEpoch, memberUnreleased, keep, partSet{})
	default:
		cg.setAssignment(m, cg.assignmentEpoch, memberStable, keep, partSet{})
	}
}

// consumerLeave handles member epochs -1 and -2. A static member leaving
// with -2 keeps its place and partitions until its session times out, so a
// restart under the same instance id takes them back without a rebalance.
// Kafka requires the instance id with -2; franz-go leaves with the member
// id alone, so a -2 is looked up by member id too, and a dynamic member
// sending it simply leaves.
func (g *group) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, now time.Time) *kmsg.ConsumerGroupHeartbeatResponse {
	cg := g.consumer
	var m *consumerMember
	if req.InstanceID != nil {
		m = cg.members[cg.static[*req.InstanceID]]
		switch {
		case m == nil:
			return heartbeatError(resp, kerr.UnknownMemberID, fmt.Sprintf("Instance id %s is unknown.", *req.InstanceID))
		case m.id != req.MemberID:
			return heartbeatError(resp, kerr.FencedInstanceID, fmt.Sprintf("Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, m.id))
		}
	} else if m = cg.members[req.MemberID]; m == nil {
		return heartbeatError(resp, kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", req.MemberID, g.name))
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == staticLeaveEpoch && m.instanceID != nil {
		g.c.log.Info("static consumer group member left for now", "group", g.name, "member", m.id, "instance", *m.instanceID)
		cg.setAssignment(m, staticLeaveEpoch, m.state, m.assigned, partSet{})
		m.revokeBy = time.Time{}
		return resp
	}
	g.c.log.Info("consumer group member left", "group", g.name, "member", m.id)
	g.fenceConsumerMembers(now, m)
	return resp
}

// fenceConsumerMembers removes members, frees their partitions and bumps
// the group epoch once for all of them.
func (g *group) fenceConsumerMembers(now time.Time, ms ...*consumerMember) {
	cg := g.consumer
	for _, m := range ms {
		cg.removeEpochs(m.assigned, m.epoch)
		cg.removeEpochs(m.pendingRevocation, m.epoch)
		delete(cg.members, m.id)
		if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
			delete(cg.static, *m.instanceID)
		}
		cg.touch(m)
	}
	g.refreshSubscriptions(now, true)
	g.bumpConsumerEpoch()
}

// expireConsumer fences members whose session timed out and members that
// did not revoke partitions within their rebalance timeout.
func (g *group) expireConsumer(now time.Time) {
	cg := g.consumer
	var gone []*consumerMember
	for _, m := range cg.sortedMembers() {
		switch {
		case !now.Before(m.lastHeartbeat.Add(g.c.cfg.ConsumerSessionTimeout)):
			g.c.log.Info("consumer group member session expired", "group", g.name, "member", m.id)
		case !m.revokeBy.IsZero() && !now.Before(m.revokeBy) && m.state == memberUnrevoked && m.epoch == m.revokeEpoch:
			g.c.log.Info("consumer group member fenced: partitions not revoked within the rebalance timeout",
				"group", g.name, "member", m.id, "epoch", m.epoch)
		default:
			continue
		}
		gone = append(gone, m)
	}
	if len(gone) > 0 {
		g.fenceConsumerMembers(now, gone...)
	}
}

// consumerDeadline is the earliest session or revocation deadline.
func (g *group) consumerDeadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, m := range g.consumer.members {
		consider(m.lastHeartbeat.Add(g.c.cfg.ConsumerSessionTimeout))
		consider(m.revokeBy)
	}
	return next
}

// validateConsumerCommit applies a consumer group's OffsetCommit rules: a
// commit without a member epoch is accepted only while the group has no
// members; a member must use OffsetCommit v9+ and may not claim an epoch
// above its own. A commit with its current epoch is accepted as a whole;
// one with an older epoch (a heartbeat bumped it meanwhile) is accepted
// for the partitions the member was given at or before that epoch and
// still has (KIP-1251), and stale answers the rest, per partition.
func (g *group) validateConsumerCommit(req *kmsg.OffsetCommitRequest) (stale func(topic string, partition int32) bool, e *kerr.Error) {
	cg := g.consumer
	if req.Generation < 0 && len(cg.members) == 0 {
		return nil, nil
	}
	m := cg.members[req.MemberID]
	switch {
	case m == nil:
		return nil, kerr.UnknownMemberID
	case req.Version < 9:
		return nil, kerr.UnsupportedVersion
	case req.Generation > m.epoch:
		return nil, kerr.StaleMemberEpoch
	case req.Generation == m.epoch:
		return nil, nil
	}
	img := g.c.topicImage()
	return func(topic string, partition int32) bool {
		id, _, ok := img.TopicMeta(topic)
		if !ok {
			return true
		}
		at, ok := m.assignedAt[id][partition]
		return !ok || at > req.Generation
	}, nil
}

// validateConsumerFetch applies a consumer group's OffsetFetch rules (v9+):
// a request naming a member must name a current member at its current
// epoch; one naming none (admin tools) is always served.
func (g *group) validateConsumerFetch(rg kmsg.OffsetFetchRequestGroup) *kerr.Error {
	if g.consumer == nil || g.state == Dead || (rg.MemberID == nil && rg.MemberEpoch < 0) {
		return nil
	}
	var m *consumerMember
	if rg.MemberID != nil {
		m = g.consumer.members[*rg.MemberID]
	}
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case rg.MemberEpoch != m.epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// subscribedTo reports whether a member of the consumer group subscribes
// to a topic (OffsetDelete refuses to delete offsets in use).
func (cg *consumerGroup) subscribedTo(topic string) bool {
	if _, ok := cg.subscribed[topic]; ok {
		return true
	}
	for _, m := range cg.members {
		if slices.Contains(m.topics, topic) {
			return true
		}
	}
	return false
}

// ConsumerGroupDescribe v0-v1: state, epochs, assignor, and per member its
// subscription, current and target assignment. Groups that do not exist,
// or are classic groups, answer GROUP_ID_NOT_FOUND.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.SetVersion(req.Version)
	for _, name := range req.Groups {
		sg := kmsg.NewConsumerGroupDescribeResponseGroup()
		sg.Group = name
		sg.AuthorizedOperations = math.MinInt32 // "not requested", as Kafka answers
		if req.IncludeAuthorizedOperations {
			sg.AuthorizedOperations = groupOperations
		}
		notFound := func(msg string) {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = &msg
		}
		if !c.placement.Owns(name) {
			sg.ErrorCode = kerr.NotCoordinator.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		g, err := c.lookup(ctx, name, false)
		switch {
		case err != nil:
			sg.ErrorCode = groupErr(err).Code
		case g == nil:
			notFound(fmt.Sprintf("Group %s not found.", name))
		default:
			g.mu.Lock()
			if g.state == Dead || g.consumer == nil {
				notFound(fmt.Sprintf("Group %s is not a consumer group.", name))
			} else {
				g.describeConsumer(&sg, req.Version)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (g *group) describeConsumer(sg *kmsg.ConsumerGroupDescribeResponseGroup, version int16) {
	cg := g.consumer
	img := g.c.topicImage()
	names := make(map[topicID]string, len(cg.subscribed))
	for name, st := range cg.subscribed {
		names[st.id] = name
	}
	assignment := func(s partSet) kmsg.Assignment {
		var a kmsg.Assignment
		a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
		for _, id := range s.ids() {
			tp := kmsg.NewAssignmentTopicPartition()
			tp.TopicID = id
			name, ok := names[id]
			if !ok {
				name, _ = img.TopicName(id)
			}
			tp.Topic = name
			tp.Partitions = slices.Clone(s[id])
			a.TopicPartitions = append(a.TopicPartitions, tp)
		}
		return a
	}
	sg.State = cg.state().String()
	sg.Epoch = cg.epoch
	sg.AssignmentEpoch = cg.assignmentEpoch
	sg.AssignorName = cg.assignor
	for _, m := range cg.sortedMembers() {
		sm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		sm.MemberID = m.id
		sm.InstanceID = m.instanceID
		sm.RackID = m.rackID
		sm.MemberEpoch = m.epoch
		sm.ClientID = m.clientID
		sm.ClientHost = m.clientHost
		sm.SubscribedTopics = append([]string{}, m.topics...)
		if m.regex != "" {
			re := m.regex
			sm.SubscribedTopicRegex = &re
		}
		sm.Assignment = assignment(m.assigned)
		sm.TargetAssignment = assignment(m.target)
		if version >= 1 {
			sm.MemberType = 1 // a consumer-protocol member (0 would be classic)
		}
		sg.Members = append(sg.Members, sm)
	}
}
