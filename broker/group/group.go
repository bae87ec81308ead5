package group

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka reports it.
type State int8

// The states of a classic group.
const (
	// Empty: no members; the group may still hold committed offsets.
	Empty State = iota
	// PreparingRebalance: members are (re)joining; the round ends when all
	// have joined or the rebalance timeout passes.
	PreparingRebalance
	// CompletingRebalance: join responses are out; waiting for the
	// leader's assignment in SyncGroup.
	CompletingRebalance
	// Stable: the leader's assignment is in force.
	Stable
	// Dead: the group was deleted.
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "Unknown"
}

// member is one member of a group.
type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string
	seq        uint64 // join order; the leader and member lists follow it

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	lastHeartbeat    time.Time

	// joinWaits and syncWaits are the parked JoinGroup and SyncGroup
	// requests of this member (more than one only if a client resent).
	joinWaits []joinWait
	syncWaits []syncWait
	// isNew marks a member that has never had a join response: its parked
	// join is bounded by NewMemberJoinTimeout, not kept alive forever.
	isNew bool
	// pendingSync marks a member sent a join response in this generation
	// that has not sent SyncGroup yet.
	pendingSync bool
}

type joinWait struct {
	ch      chan *kmsg.JoinGroupResponse
	version int16
}

type syncWait struct {
	ch      chan *kmsg.SyncGroupResponse
	version int16
}

func (m *member) awaitingJoin() bool { return len(m.joinWaits) > 0 }
func (m *member) awaitingSync() bool { return len(m.syncWaits) > 0 }

// sameProtocols reports whether a rejoin changes nothing the leader uses.
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].Name || !bytes.Equal(ps[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// committed is one committed offset and the store revision that wrote it.
type committed struct {
	offsetRecord
	rev int64
}

// group is one group's state. mu guards everything but io and deleting;
// io orders the group's store writes (see flush); deleting is guarded by
// the coordinator's mu.
type group struct {
	c    *Coordinator
	name string

	io sync.RWMutex
	mu sync.Mutex

	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id -> member id
	pending      map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED -> expiry
	offsets      map[string]map[int32]committed
	seq          uint64

	joinDeadline time.Time // PreparingRebalance: when members that have not rejoined are dropped
	delayUntil   time.Time // the initial rebalance delay of a group that was empty
	delayLimit   time.Time // how far joins may stretch that delay
	syncDeadline time.Time // members still pendingSync then are dropped
	assigning    bool      // the leader's assignment is being written

	// record is the newest metadata record not yet written; recordVersion
	// counts records; stored says the group has anything in the store.
	record        *groupRecord
	recordVersion uint64
	stored        bool

	timer    Timer
	timerAt  time.Time
	deleting chan struct{}

	// consumer is the KIP-848 state while the group is a consumer group
	// (consumer.go); the classic state machine then stays Empty.
	consumer *consumerGroup
}

func newGroup(c *Coordinator, name string) *group {
	return &group{
		c:       c,
		name:    name,
		members: make(map[string]*member),
		static:  make(map[string]string),
		pending: make(map[string]time.Time),
		offsets: make(map[string]map[int32]committed),
	}
}

// restore rebuilds a group from the store.
func (g *group) restore(lg *loadedGroup, now time.Time) {
	g.offsets = lg.offsets
	g.stored = true
	if lg.consumer != nil {
		g.restoreConsumer(lg.consumer, now)
		return
	}
	if lg.meta == nil {
		return
	}
	rec := lg.meta
	g.protocolType, g.protocol, g.generation, g.leader = rec.ProtocolType, rec.Protocol, rec.Generation, rec.Leader
	for _, mr := range rec.Members {
		g.seq++
		m := &member{
			id:               mr.ID,
			instanceID:       mr.InstanceID,
			clientID:         mr.ClientID,
			clientHost:       mr.ClientHost,
			seq:              g.seq,
			sessionTimeout:   time.Duration(mr.SessionTimeoutMs) * time.Millisecond,
			rebalanceTimeout: time.Duration(mr.RebalanceTimeoutMs) * time.Millisecond,
			assignment:       mr.Assignment,
			lastHeartbeat:    now,
		}
		for _, p := range mr.Protocols {
			m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: p.Metadata})
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if len(g.members) > 0 {
		g.state = Stable
		if g.members[g.leader] == nil {
			g.leader = g.sortedMembers()[0].id
		}
	}
}

// vacant reports whether the group holds nothing: no members, no offsets,
// nothing stored.
func (g *group) vacant() bool {
	return g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && !g.stored && g.record == nil &&
		g.consumer == nil
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].seq < ms[j].seq })
	return ms
}

func newMemberID(clientID string, instanceID *string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	u := hex.EncodeToString(b[:])
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	return prefix + "-" + u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
}

// maxRebalanceTimeout is the longest rebalance timeout of the members: a
// round waits that long for everyone to rejoin.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// addMember adds a member that has just joined and now waits for the round.
func (g *group) addMember(m *member, protocolType string, now time.Time) {
	if len(g.members) == 0 {
		g.protocolType = protocolType
	}
	g.seq++
	m.seq = g.seq
	m.isNew = true
	m.lastHeartbeat = now
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	switch g.state {
	case PreparingRebalance:
		if !g.delayUntil.IsZero() {
			// A new member during the initial delay: wait a little more
			// for others, within the rebalance timeout.
			g.delayUntil = minTime(now.Add(g.c.cfg.InitialRebalanceDelay), g.delayLimit)
		}
		g.maybeCompleteJoin(now)
	default:
		g.prepareRebalance(now)
	}
}

// removeMember drops a member, answering its parked requests with code,
// and moves the group along: a stable group rebalances, a round in
// progress may now be complete.
func (g *group) removeMember(m *member, code int16, now time.Time) {
	g.dropMember(m, code)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now)
	case PreparingRebalance:
		g.maybeCompleteJoin(now)
	}
}

// dropMember removes the member without moving the group.
func (g *group) dropMember(m *member, code int16) {
	for _, w := range m.joinWaits {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.SetVersion(w.version)
		resp.ErrorCode = code
		w.ch <- resp
	}
	m.joinWaits = nil
	g.answerSync(m, code)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// answerSync answers the member's parked SyncGroups with an error, or with
// its assignment when code is 0.
func (g *group) answerSync(m *member, code int16) {
	for _, w := range m.syncWaits {
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.SetVersion(w.version)
		resp.ErrorCode = code
		if code == 0 {
			pt, p := g.protocolType, g.protocol
			resp.ProtocolType, resp.Protocol = &pt, &p
			resp.MemberAssignment = m.assignment
		}
		w.ch <- resp
	}
	m.syncWaits = nil
}

// prepareRebalance starts a new round: every member must rejoin.
func (g *group) prepareRebalance(now time.Time) {
	if g.state == CompletingRebalance {
		// The assignment being collected is for a membership that no
		// longer holds.
		for _, m := range g.members {
			m.assignment = nil
			g.answerSync(m, kerr.RebalanceInProgress.Code)
		}
	}
	for _, m := range g.members {
		m.pendingSync = false
	}
	g.assigning = false
	g.syncDeadline = time.Time{}
	timeout := g.maxRebalanceTimeout()
	if g.state == Empty && g.c.cfg.InitialRebalanceDelay > 0 {
		g.delayUntil = now.Add(min(g.c.cfg.InitialRebalanceDelay, timeout))
		g.delayLimit = now.Add(timeout)
	}
	g.state = PreparingRebalance
	g.joinDeadline = now.Add(timeout)
	g.maybeCompleteJoin(now)
}

// maybeCompleteJoin ends the join phase once everyone has rejoined (and
// no member id handed out is still on its way back), or once the deadline
// or the initial delay has passed.
func (g *group) maybeCompleteJoin(now time.Time) {
	if g.state != PreparingRebalance {
		return
	}
	if !g.delayUntil.IsZero() {
		if now.Before(g.delayUntil) {
			return
		}
		g.delayUntil, g.delayLimit = time.Time{}, time.Time{}
		g.completeJoin(now)
		return
	}
	all := len(g.pending) == 0
	for _, m := range g.members {
		if !m.awaitingJoin() {
			all = false
			break
		}
	}
	if all || !now.Before(g.joinDeadline) {
		g.completeJoin(now)
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are dropped (static ones keep their place, as in Kafka), the generation
// advances, a protocol and a leader are chosen, and every parked join is
// answered — the leader's with the member list to assign.
func (g *group) completeJoin(now time.Time) {
	for _, m := range g.sortedMembers() {
		if !m.awaitingJoin() && m.instanceID == nil {
			g.dropMember(m, kerr.UnknownMemberID.Code)
		}
	}
	joined := 0
	for _, m := range g.members {
		if m.awaitingJoin() {
			joined++
		}
	}
	if len(g.members) > 0 && joined == 0 {
		// Only static members that have not rejoined: nobody could lead.
		// Give them another round.
		g.joinDeadline = now.Add(g.maxRebalanceTimeout())
		return
	}
	g.generation++
	g.joinDeadline = time.Time{}
	if len(g.members) == 0 {
		g.state = Empty
		g.protocol = ""
		g.leader = ""
		g.queueRecord(nil)
		return
	}
	g.protocol = g.selectProtocol()
	if l := g.members[g.leader]; l == nil || !l.awaitingJoin() {
		g.leader = ""
		for _, m := range g.sortedMembers() {
			if m.awaitingJoin() {
				g.leader = m.id
				break
			}
		}
	}
	g.state = CompletingRebalance
	g.assigning = false
	g.syncDeadline = now.Add(g.maxRebalanceTimeout())
	g.c.log.Info("group join phase complete", "group", g.name, "generation", g.generation,
		"protocol", g.protocol, "leader", g.leader, "members", len(g.members))
	for _, m := range g.sortedMembers() {
		m.pendingSync = false
		if !m.awaitingJoin() {
			continue
		}
		for _, w := range m.joinWaits {
			w.ch <- g.joinResponse(w.version, m, m.id == g.leader)
		}
		m.joinWaits = nil
		m.isNew = false
		m.pendingSync = true
		m.lastHeartbeat = now
	}
}

// joinResponse is the successful JoinGroup answer for the current
// generation; the leader's carries every member's metadata.
func (g *group) joinResponse(version int16, m *member, withMembers bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.SetVersion(version)
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.Generation = g.generation
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if withMembers {
		for _, o := range g.sortedMembers() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			rm.InstanceID = o.instanceID
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// candidates are the protocols every member supports, in the order of the
// earliest member's preference.
func (g *group) candidates() []string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return nil
	}
	var out []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !m.hasProtocol(p.Name) {
				all = false
				break
			}
		}
		if all {
			out = append(out, p.Name)
		}
	}
	return out
}

func (m *member) hasProtocol(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol with the most votes, each member
// voting for its most preferred protocol among those all support.
func (g *group) selectProtocol() string {
	cands := g.candidates()
	if len(cands) == 0 {
		return ""
	}
	votes := make(map[string]int, len(cands))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(cands, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// supports reports whether a (re)joining member is compatible with the
// group: same protocol type and at least one protocol every member has.
func (g *group) supports(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidates()
	for _, p := range ps {
		if contains(cands, p.Name) {
			return true
		}
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// queueRecord captures the group's metadata as the record to persist
// next. Called where Kafka writes group metadata: a rebalance completing
// (Stable) or ending empty, and a static member's replacement. assign, if
// not nil, replaces the members' assignments (the leader's, not applied
// until written).
func (g *group) queueRecord(assign map[string][]byte) {
	rec := &groupRecord{
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Generation:   g.generation,
		Leader:       g.leader,
	}
	for _, m := range g.sortedMembers() {
		a := m.assignment
		if assign != nil {
			a = assign[m.id]
		}
		rec.Members = append(rec.Members, g.memberRecord(m, a))
	}
	g.record = rec
	g.recordVersion++
}

func (g *group) memberRecord(m *member, assignment []byte) memberRecord {
	mr := memberRecord{
		ID:                 m.id,
		InstanceID:         m.instanceID,
		ClientID:           m.clientID,
		ClientHost:         m.clientHost,
		SessionTimeoutMs:   m.sessionTimeout.Milliseconds(),
		RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
		Assignment:         assignment,
	}
	for _, p := range m.protocols {
		mr.Protocols = append(mr.Protocols, protocolRecord{Name: p.Name, Metadata: p.Metadata})
	}
	return mr
}

// expire applies every deadline that has passed.
func (g *group) expire(now time.Time) {
	if g.consumer != nil {
		g.expireConsumer(now) // KIP-848 sessions and revocations (consumer.go)
	}
	for id, exp := range g.pending {
		if !now.Before(exp) {
			delete(g.pending, id)
		}
	}
	var gone []*member
	for _, m := range g.sortedMembers() {
		switch {
		case m.awaitingJoin():
			// A parked join keeps a known member alive; a new member's
			// only for a while (its client may be gone).
			if m.isNew && !now.Before(m.lastHeartbeat.Add(g.c.cfg.NewMemberJoinTimeout)) {
				gone = append(gone, m)
			}
		case m.awaitingSync():
		default:
			if !now.Before(m.lastHeartbeat.Add(m.sessionTimeout)) {
				gone = append(gone, m)
			}
		}
	}
	for _, m := range gone {
		if g.members[m.id] == m {
			g.c.log.Info("group member expired", "group", g.name, "member", m.id)
			g.removeMember(m, kerr.UnknownMemberID.Code, now)
		}
	}
	if (g.state == CompletingRebalance || g.state == Stable) && !g.syncDeadline.IsZero() && !now.Before(g.syncDeadline) {
		g.syncDeadline = time.Time{}
		for _, m := range g.sortedMembers() {
			if m.pendingSync && g.members[m.id] == m {
				g.c.log.Info("group member did not sync in time", "group", g.name, "member", m.id)
				g.removeMember(m, kerr.UnknownMemberID.Code, now)
			}
		}
	}
	g.maybeCompleteJoin(now)
}

// nextDeadline is the earliest time expire has something to do.
func (g *group) nextDeadline() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, exp := range g.pending {
		consider(exp)
	}
	for _, m := range g.members {
		switch {
		case m.awaitingJoin():
			if m.isNew {
				consider(m.lastHeartbeat.Add(g.c.cfg.NewMemberJoinTimeout))
			}
		case m.awaitingSync():
		default:
			consider(m.lastHeartbeat.Add(m.sessionTimeout))
		}
	}
	if g.state == PreparingRebalance {
		if !g.delayUntil.IsZero() {
			consider(g.delayUntil)
		} else {
			consider(g.joinDeadline)
		}
	}
	if g.state == CompletingRebalance || g.state == Stable {
		consider(g.syncDeadline)
	}
	if g.consumer != nil {
		consider(g.consumerDeadline())
	}
	return next
}

// arm sets the group's one timer to its next deadline. Heartbeats only push
// deadlines later, so they do not re-arm: the timer fires early, finds
// nothing due and re-arms.
func (g *group) arm(now time.Time) {
	if g.state == Dead || g.c.closed.Load() {
		g.stopTimer()
		return
	}
	next := g.nextDeadline()
	if next.IsZero() {
		g.stopTimer()
		return
	}
	if g.timer != nil && !g.timerAt.After(next) {
		return
	}
	g.stopTimer()
	g.timerAt = next
	g.timer = g.c.clock.AfterFunc(next.Sub(now), g.onTimer)
}

func (g *group) stopTimer() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
		g.timerAt = time.Time{}
	}
}

func (g *group) onTimer() {
	if !g.c.enterBackground() {
		return
	}
	defer g.c.bg.Done()
	g.mu.Lock()
	if g.state == Dead || g.c.closed.Load() {
		g.mu.Unlock()
		return
	}
	now := g.c.clock.Now()
	if g.timer != nil && !now.Before(g.timerAt) {
		g.timer = nil
		g.timerAt = time.Time{}
	}
	g.expire(now)
	g.arm(now)
	write := g.record != nil
	writeConsumer := g.consumer != nil && g.consumer.dirty()
	vacant := g.vacant()
	g.mu.Unlock()
	if write {
		g.flushLogged()
	}
	if writeConsumer {
		g.flushConsumerLogged()
	}
	if vacant {
		g.c.dropIfVacant(g)
	}
}

// shutdown answers everything parked with NOT_COORDINATOR and stops the
// timer; the coordinator is closing.
func (g *group) shutdown() {
	g.stopTimer()
	for _, m := range g.members {
		for _, w := range m.joinWaits {
			resp := kmsg.NewPtrJoinGroupResponse()
			resp.SetVersion(w.version)
			resp.ErrorCode = kerr.NotCoordinator.Code
			w.ch <- resp
		}
		m.joinWaits = nil
		g.answerSync(m, kerr.NotCoordinator.Code)
	}
}
