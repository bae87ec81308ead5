package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup v0-v9. A member joining without an id gets one: from v4 it
// must come back with it (MEMBER_ID_REQUIRED), static members (v5+) get it
// at once. The call blocks until the round it joined completes, ctx ends
// or the coordinator closes.
func (c *Coordinator) JoinGroup(ctx context.Context, client Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.SetVersion(req.Version)
	fail := func(e *kerr.Error) *kmsg.JoinGroupResponse {
		resp.ErrorCode = e.Code
		return resp
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session // v0 has no rebalance timeout of its own
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case !c.placement.Owns(req.Group):
		return fail(kerr.NotCoordinator)
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol)
	}
	for {
		g, err := c.lookup(ctx, req.Group, true)
		if err != nil {
			return fail(groupErr(err))
		}
		g.mu.Lock()
		if g.state == Dead {
			g.mu.Unlock()
			continue // deleted meanwhile: join the group created in its place
		}
		if c.closed.Load() {
			g.mu.Unlock()
			return fail(kerr.NotCoordinator)
		}
		if g.consumer != nil {
			// A KIP-848 group: only an empty one turns classic
			// (consumer_persist.go).
			g.mu.Unlock()
			if e := g.dropEmptyConsumerGroup(ctx); e != nil {
				return fail(e)
			}
			continue
		}
		now := c.clock.Now()
		done, wait := g.join(client, req, session, rebalance, now)
		g.arm(now)
		write := g.record != nil
		g.mu.Unlock()
		if write {
			if err := g.flush(ctx); err != nil {
				c.log.Warn("persisting group metadata failed", "group", g.name, "err", err)
				if done != nil && done.ErrorCode == 0 {
					// The static member's new id is not durable; the
					// member retries and is replaced again.
					return fail(kerr.CoordinatorNotAvailable)
				}
			}
		}
		if done != nil {
			return done
		}
		select {
		case r := <-wait:
			return r
		case <-ctx.Done():
			return fail(kerr.RebalanceInProgress)
		}
	}
}

// join handles a JoinGroup under g.mu: it answers at once (done) or parks
// the request until the round completes (wait).
func (g *group) join(client Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration, now time.Time) (done *kmsg.JoinGroupResponse, wait chan *kmsg.JoinGroupResponse) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.SetVersion(req.Version)
	fail := func(e *kerr.Error) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
		resp.ErrorCode = e.Code
		return resp, nil
	}
	if !g.supports(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	fresh := func(id string) *member {
		m := &member{id: id, instanceID: req.InstanceID}
		g.update(m, client, req, session, rebalance)
		return m
	}

	if req.MemberID == "" {
		if req.InstanceID != nil {
			if old := g.members[g.static[*req.InstanceID]]; old != nil {
				return g.replaceStatic(old, client, req, session, rebalance, now)
			}
		}
		if g.c.cfg.MaxSize > 0 && len(g.members)+len(g.pending) >= g.c.cfg.MaxSize {
			return fail(kerr.GroupMaxSizeReached)
		}
		id := newMemberID(client.ID, req.InstanceID)
		if req.Version >= 4 && req.InstanceID == nil {
			// KIP-394: the member proves it can receive responses before it
			// counts; until it returns, the id only holds a place.
			g.pending[id] = now.Add(session)
			resp.MemberID = id
			return fail(kerr.MemberIDRequired)
		}
		m := fresh(id)
		wait = g.park(m, req.Version)
		g.addMember(m, req.ProtocolType, now)
		return nil, wait
	}

	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		m := fresh(req.MemberID)
		wait = g.park(m, req.Version)
		g.addMember(m, req.ProtocolType, now)
		return nil, wait
	}
	if g.fenced(req.MemberID, req.InstanceID) {
		return fail(kerr.FencedInstanceID)
	}
	m := g.members[req.MemberID]
	if m == nil {
		return fail(kerr.UnknownMemberID)
	}
	m.lastHeartbeat = now
	switch g.state {
	case PreparingRebalance:
		g.update(m, client, req, session, rebalance)
		wait = g.park(m, req.Version)
		g.maybeCompleteJoin(now)
		return nil, wait
	case CompletingRebalance:
		if m.sameProtocols(req.Protocols) {
			// Probably a lost join response: repeat it.
			return g.joinResponse(req.Version, m, m.id == g.leader), nil
		}
	case Stable:
		// The leader rejoining asks for a new assignment (say, topics
		// changed); followers only if their subscription changed.
		if m.id != g.leader && m.sameProtocols(req.Protocols) {
			return g.joinResponse(req.Version, m, false), nil
		}
	default:
		return fail(kerr.UnknownMemberID)
	}
	g.update(m, client, req, session, rebalance)
	wait = g.park(m, req.Version)
	g.prepareRebalance(now)
	return nil, wait
}

// update takes a (re)joining member's request as its current metadata.
func (g *group) update(m *member, client Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) {
	m.clientID, m.clientHost = client.ID, client.Host
	m.sessionTimeout, m.rebalanceTimeout = session, rebalance
	m.protocols = make([]kmsg.JoinGroupRequestProtocol, len(req.Protocols))
	for i, p := range req.Protocols {
		m.protocols[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: append([]byte(nil), p.Metadata...)}
	}
}

// park registers a JoinGroup that waits for the round to complete.
func (g *group) park(m *member, version int16) chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinWaits = append(m.joinWaits, joinWait{ch: ch, version: version})
	return ch
}

// fenced reports whether a request names a static instance now held by
// another member id (KIP-345): the old holder is a zombie.
func (g *group) fenced(memberID string, instanceID *string) bool {
	if instanceID == nil {
		return false
	}
	cur, ok := g.static[*instanceID]
	return ok && cur != memberID
}

// replaceStatic handles a static member rejoining without its member id
// (a restarted instance): it takes the old member's place under a new id,
// fencing the old one. In a stable group whose protocol choice does not
// change, that needs no rebalance; the member gets its old assignment
// back, and a leader is told to skip assigning (KIP-814).
func (g *group) replaceStatic(old *member, client Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration, now time.Time) (*kmsg.JoinGroupResponse, chan *kmsg.JoinGroupResponse) {
	for _, w := range old.joinWaits {
		r := kmsg.NewPtrJoinGroupResponse()
		r.SetVersion(w.version)
		r.ErrorCode = kerr.FencedInstanceID.Code
		w.ch <- r
	}
	old.joinWaits = nil
	g.answerSync(old, kerr.FencedInstanceID.Code)

	m := &member{
		id:          newMemberID(client.ID, req.InstanceID),
		instanceID:  req.InstanceID,
		seq:         old.seq,
		assignment:  old.assignment,
		pendingSync: old.pendingSync,
	}
	g.update(m, client, req, session, rebalance)
	m.lastHeartbeat = now
	delete(g.members, old.id)
	g.members[m.id] = m
	g.static[*req.InstanceID] = m.id
	if g.leader == old.id {
		g.leader = m.id
	}
	g.c.log.Info("static member replaced", "group", g.name, "instance", *req.InstanceID, "old", old.id, "new", m.id)

	switch g.state {
	case Stable:
		if g.selectProtocol() == g.protocol {
			g.queueRecord(nil)
			leader := m.id == g.leader
			resp := g.joinResponse(req.Version, m, leader)
			resp.SkipAssignment = leader
			return resp, nil
		}
		wait := g.park(m, req.Version)
		g.prepareRebalance(now)
		return nil, wait
	case CompletingRebalance:
		// The leader may be assigning to the old id: start over.
		wait := g.park(m, req.Version)
		g.prepareRebalance(now)
		return nil, wait
	default: // PreparingRebalance
		wait := g.park(m, req.Version)
		g.maybeCompleteJoin(now)
		return nil, wait
	}
}

// SyncGroup v0-v5. Followers wait for the leader's assignment; the leader's
// SyncGroup persists the assignment and then releases everyone, so an
// assignment that was handed out survives a restart.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.SetVersion(req.Version)
	fail := func(e *kerr.Error) *kmsg.SyncGroupResponse {
		resp.ErrorCode = e.Code
		return resp
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case !c.placement.Owns(req.Group):
		return fail(kerr.NotCoordinator)
	}
	g, err := c.lookup(ctx, req.Group, false)
	if err != nil {
		return fail(groupErr(err))
	}
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	g.mu.Lock()
	locked := true
	defer func() {
		if locked {
			g.mu.Unlock()
		}
	}()
	if c.closed.Load() {
		return fail(kerr.NotCoordinator)
	}
	if g.fenced(req.MemberID, req.InstanceID) {
		return fail(kerr.FencedInstanceID)
	}
	m := g.members[req.MemberID]
	switch {
	case g.state == Dead || m == nil:
		return fail(kerr.UnknownMemberID)
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol)
	}
	now := c.clock.Now()
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case Stable:
		m.pendingSync = false
		m.lastHeartbeat = now
		pt, p := g.protocolType, g.protocol
		resp.ProtocolType, resp.Protocol = &pt, &p
		resp.MemberAssignment = m.assignment
		return resp
	case CompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID)
	}

	ch := make(chan *kmsg.SyncGroupResponse, 1)
	m.syncWaits = append(m.syncWaits, syncWait{ch: ch, version: req.Version})
	m.pendingSync = false
	m.lastHeartbeat = now
	if m.id == g.leader && !g.assigning {
		assign := make(map[string][]byte, len(g.members))
		for _, a := range req.GroupAssignment {
			if g.members[a.MemberID] != nil {
				assign[a.MemberID] = a.MemberAssignment
			}
		}
		for id := range g.members {
			if assign[id] == nil {
				assign[id] = []byte{} // Kafka hands members the leader skipped an empty assignment
			}
		}
		g.assigning = true
		g.queueRecord(assign)
		version, gen := g.recordVersion, g.generation
		g.arm(now)
		g.mu.Unlock()
		err := g.flush(ctx)
		g.mu.Lock()
		if g.assigning && g.state == CompletingRebalance && g.generation == gen {
			g.assigning = false
			now = c.clock.Now()
			if err != nil {
				c.log.Warn("persisting group assignment failed; rebalancing", "group", g.name, "generation", gen, "err", err)
				if g.recordVersion == version {
					g.record = nil // never applied, so never to be written
				}
				for _, o := range g.members {
					g.answerSync(o, kerr.CoordinatorNotAvailable.Code)
				}
				g.prepareRebalance(now)
			} else {
				g.state = Stable
				for _, o := range g.members {
					o.assignment = assign[o.id]
					g.answerSync(o, 0)
				}
			}
		}
	}
	g.arm(now)
	g.mu.Unlock()
	locked = false
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return fail(kerr.RebalanceInProgress)
	}
}

// Heartbeat v0-v4: keeps a member's session alive and tells it, with
// REBALANCE_IN_PROGRESS, to rejoin. It only touches memory.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.SetVersion(req.Version)
	if e := c.heartbeat(ctx, req); e != nil {
		resp.ErrorCode = e.Code
	}
	return resp
}

func (c *Coordinator) heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kerr.Error {
	switch {
	case req.Group == "":
		return kerr.InvalidGroupID
	case !c.placement.Owns(req.Group):
		return kerr.NotCoordinator
	}
	g, err := c.lookup(ctx, req.Group, false)
	if err != nil {
		return groupErr(err)
	}
	if g == nil {
		return kerr.UnknownMemberID
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.closed.Load() {
		return kerr.NotCoordinator
	}
	if g.fenced(req.MemberID, req.InstanceID) {
		return kerr.FencedInstanceID
	}
	m := g.members[req.MemberID]
	switch {
	case g.state == Dead || m == nil:
		return kerr.UnknownMemberID
	case req.Generation != g.generation:
		return kerr.IllegalGeneration
	}
	m.lastHeartbeat = c.clock.Now()
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// LeaveGroup v0-v5: one member (v0-v2) or a batch (v3+), by member id or by
// static instance id (an operator removing instances, KIP-345). Leaving
// starts a rebalance for the rest; the last member leaving empties the
// group.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	resp.SetVersion(req.Version)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	codes := make([]int16, len(leaving))
	setAll := func(e *kerr.Error) {
		for i := range codes {
			codes[i] = e.Code
		}
	}
	top := int16(0)
	switch {
	case req.Group == "":
		top = kerr.InvalidGroupID.Code
	case !c.placement.Owns(req.Group):
		top = kerr.NotCoordinator.Code
	default:
		g, err := c.lookup(ctx, req.Group, false)
		switch {
		case err != nil:
			top = groupErr(err).Code
		case g == nil:
			setAll(kerr.UnknownMemberID)
		default:
			g.mu.Lock()
			if c.closed.Load() {
				top = kerr.NotCoordinator.Code
			} else {
				now := c.clock.Now()
				for i, l := range leaving {
					codes[i] = g.leave(l.MemberID, l.InstanceID, now)
				}
				g.arm(now)
			}
			write := g.record != nil
			g.mu.Unlock()
			if write {
				if err := g.flush(ctx); err != nil {
					c.log.Warn("persisting group metadata failed", "group", g.name, "err", err)
				}
			}
		}
	}
	if req.Version < 3 {
		resp.ErrorCode = top
		if top == 0 {
			resp.ErrorCode = codes[0]
		}
		return resp
	}
	resp.ErrorCode = top
	if top != 0 {
		return resp
	}
	for i, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = l.MemberID, l.InstanceID, codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (g *group) leave(memberID string, instanceID *string, now time.Time) int16 {
	if g.state == Dead {
		return kerr.UnknownMemberID.Code
	}
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case memberID != "" && cur != memberID:
			return kerr.FencedInstanceID.Code
		}
		memberID = cur
	}
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		g.maybeCompleteJoin(now)
		return 0
	}
	m := g.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	g.c.log.Info("group member left", "group", g.name, "member", memberID)
	g.removeMember(m, kerr.UnknownMemberID.Code, now)
	return 0
}
