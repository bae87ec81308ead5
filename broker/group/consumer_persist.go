package group

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
)

// A consumer group is kept under the same groups/<group>/ prefix as a
// classic one (its offsets are shared):
//
//	groups/<group>/consumer               group epoch, target assignment epoch, assignor, subscription metadata
//	groups/<group>/members/<member id>    one member: subscription, epochs, state, assignment, target
//
// They are written, in one transaction, when a heartbeat (or a timeout)
// changes them: a group epoch bump, a member joining, leaving or changing
// its subscription, a new target, a reconciliation step. A heartbeat that
// changes nothing writes nothing.
const (
	consumerKeyName = "consumer"
	membersDir      = "members/"
)

func consumerKey(group string) string { return groupPrefix(group) + consumerKeyName }
func membersPrefix(group string) string {
	return groupPrefix(group) + membersDir
}

func memberKey(group, member string) string {
	return membersPrefix(group) + url.PathEscape(member)
}

type consumerGroupRecord struct {
	Epoch           int32                            `json:"epoch"`
	AssignmentEpoch int32                            `json:"assignment_epoch"`
	Assignor        string                           `json:"assignor,omitempty"`
	Subscribed      map[string]subscribedTopicRecord `json:"subscribed,omitempty"`
}

type subscribedTopicRecord struct {
	ID         string `json:"id"`
	Partitions int32  `json:"partitions"`
}

type consumerMemberRecord struct {
	ID                 string                     `json:"id"`
	InstanceID         *string                    `json:"instance_id,omitempty"`
	RackID             *string                    `json:"rack_id,omitempty"`
	ClientID           string                     `json:"client_id"`
	ClientHost         string                     `json:"client_host"`
	RebalanceTimeoutMs int64                      `json:"rebalance_timeout_ms"`
	ServerAssignor     string                     `json:"server_assignor,omitempty"`
	Topics             []string                   `json:"topics,omitempty"`
	Regex              string                     `json:"regex,omitempty"`
	Epoch              int32                      `json:"epoch"`
	PrevEpoch          int32                      `json:"previous_epoch"`
	State              string                     `json:"state"`
	Assigned           map[string][]int32         `json:"assigned,omitempty"`
	PendingRevocation  map[string][]int32         `json:"pending_revocation,omitempty"`
	Target             map[string][]int32         `json:"target,omitempty"`
	AssignedAt         map[string]map[int32]int32 `json:"assigned_at,omitempty"`
}

// loadedConsumer is what the store holds for one consumer group.
type loadedConsumer struct {
	group   *consumerGroupRecord
	members []consumerMemberRecord
}

// loadConsumerKey takes one consumer-group key (sub is the key below the
// group's prefix) into lg.
func (lg *loadedGroup) loadConsumerKey(sub string, kv metastore.KV) error {
	if lg.consumer == nil {
		lg.consumer = &loadedConsumer{}
	}
	if sub == consumerKeyName {
		var rec consumerGroupRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("group: consumer group record %q: %w", kv.Key, err)
		}
		lg.consumer.group = &rec
		return nil
	}
	var rec consumerMemberRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return fmt.Errorf("group: consumer group member %q: %w", kv.Key, err)
	}
	lg.consumer.members = append(lg.consumer.members, rec)
	return nil
}

func encodePartSet(s partSet) map[string][]int32 {
	if len(s) == 0 {
		return nil
	}
	out := make(map[string][]int32, len(s))
	for id, ps := range s {
		out[hex.EncodeToString(id[:])] = ps
	}
	return out
}

func decodeTopicID(h string) (topicID, error) {
	var id topicID
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("group: bad topic id %q", h)
	}
	copy(id[:], b)
	return id, nil
}

func decodePartSet(m map[string][]int32) (partSet, error) {
	s := partSet{}
	for h, ps := range m {
		id, err := decodeTopicID(h)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			s.add(id, p)
		}
	}
	return s, nil
}

func (cg *consumerGroup) groupRecord() consumerGroupRecord {
	rec := consumerGroupRecord{Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch, Assignor: cg.assignor}
	if len(cg.subscribed) > 0 {
		rec.Subscribed = make(map[string]subscribedTopicRecord, len(cg.subscribed))
		for name, st := range cg.subscribed {
			rec.Subscribed[name] = subscribedTopicRecord{ID: hex.EncodeToString(st.id[:]), Partitions: st.partitions}
		}
	}
	return rec
}

func memberRecordOf(m *consumerMember) consumerMemberRecord {
	rec := consumerMemberRecord{
		ID:                 m.id,
		InstanceID:         m.instanceID,
		RackID:             m.rackID,
		ClientID:           m.clientID,
		ClientHost:         m.clientHost,
		RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
		ServerAssignor:     m.serverAssignor,
		Topics:             m.topics,
		Regex:              m.regex,
		Epoch:              m.epoch,
		PrevEpoch:          m.prevEpoch,
		State:              m.state.String(),
		Assigned:           encodePartSet(m.assigned),
		PendingRevocation:  encodePartSet(m.pendingRevocation),
		Target:             encodePartSet(m.target),
	}
	if len(m.assignedAt) > 0 {
		rec.AssignedAt = make(map[string]map[int32]int32, len(m.assignedAt))
		for id, ps := range m.assignedAt {
			rec.AssignedAt[hex.EncodeToString(id[:])] = ps
		}
	}
	return rec
}

func memberOfRecord(rec consumerMemberRecord) (*consumerMember, error) {
	m := &consumerMember{
		id:               rec.ID,
		instanceID:       rec.InstanceID,
		rackID:           rec.RackID,
		clientID:         rec.ClientID,
		clientHost:       rec.ClientHost,
		rebalanceTimeout: time.Duration(rec.RebalanceTimeoutMs) * time.Millisecond,
		serverAssignor:   rec.ServerAssignor,
		topics:           rec.Topics,
		regex:            rec.Regex,
		epoch:            rec.Epoch,
		prevEpoch:        rec.PrevEpoch,
		state:            parseMemberState(rec.State),
		assignedAt:       make(map[topicID]map[int32]int32, len(rec.AssignedAt)),
	}
	var err error
	if m.assigned, err = decodePartSet(rec.Assigned); err != nil {
		return nil, err
	}
	if m.pendingRevocation, err = decodePartSet(rec.PendingRevocation); err != nil {
		return nil, err
	}
	if m.target, err = decodePartSet(rec.Target); err != nil {
		return nil, err
	}
	for h, ps := range rec.AssignedAt {
		id, err := decodeTopicID(h)
		if err != nil {
			return nil, err
		}
		m.assignedAt[id] = ps
	}
	return m, nil
}

// restoreConsumer rebuilds a consumer group from the store. Members get a
// fresh session from now, as classic members do; partition epochs follow
// from what each member owns.
func (g *group) restoreConsumer(lc *loadedConsumer, now time.Time) {
	cg := newConsumerGroup()
	if rec := lc.group; rec != nil {
		cg.epoch, cg.assignmentEpoch = rec.Epoch, rec.AssignmentEpoch
		if rec.Assignor != "" {
			cg.assignor = rec.Assignor
		}
		for name, st := range rec.Subscribed {
			id, err := decodeTopicID(st.ID)
			if err != nil {
				g.c.log.Warn("skipping a bad subscribed topic record", "group", g.name, "topic", name, "err", err)
				continue
			}
			cg.subscribed[name] = subscribedTopic{id: id, partitions: st.Partitions}
		}
	}
	for _, rec := range lc.members {
		m, err := memberOfRecord(rec)
		if err != nil {
			g.c.log.Warn("skipping a bad consumer group member record", "group", g.name, "member", rec.ID, "err", err)
			continue
		}
		m.lastHeartbeat = now
		if m.state == memberUnrevoked {
			m.revokeBy, m.revokeEpoch = now.Add(m.rebalanceTimeout), m.epoch
		}
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		cg.addEpochs(m.assigned, m.epoch)
		cg.addEpochs(m.pendingRevocation, m.epoch)
		if m.regex != "" {
			if re, err := compileSubscription(m.regex); err == nil {
				cg.compiled[m.regex] = re
			}
		}
		if lc.group == nil {
			// Members without their group record (an interrupted change of
			// protocol): carry on from the newest epoch they knew.
			cg.epoch = max(cg.epoch, m.epoch)
			cg.assignmentEpoch = cg.epoch
		}
	}
	g.consumer = cg
	g.c.log.Info("loaded consumer group", "group", g.name, "epoch", cg.epoch, "members", len(cg.members))
}

// flushConsumer writes what changed in the consumer group since the last
// flush, in one transaction. Writers queue on g.io like classic flushes,
// and each writes the state current when its turn comes, so the store
// never goes back to an older state. On failure the changes stay queued.
func (g *group) flushConsumer(ctx context.Context) error {
	g.io.Lock()
	defer g.io.Unlock()
	g.mu.Lock()
	cg := g.consumer
	if cg == nil || g.state == Dead || !cg.dirty() {
		g.mu.Unlock()
		return nil
	}
	var writes []Write
	if cg.dropClassic {
		writes = append(writes, Write{Key: metaKey(g.name), Delete: true})
	}
	if cg.metaDirty {
		val, err := json.Marshal(cg.groupRecord())
		if err != nil {
			g.mu.Unlock()
			return fmt.Errorf("group %s: encoding consumer group: %w", g.name, err)
		}
		writes = append(writes, Write{Key: consumerKey(g.name), Value: val})
	}
	for id := range cg.dirtyMembers {
		m := cg.members[id]
		if m == nil {
			writes = append(writes, Write{Key: memberKey(g.name, id), Delete: true})
			continue
		}
		val, err := json.Marshal(memberRecordOf(m))
		if err != nil {
			g.mu.Unlock()
			return fmt.Errorf("group %s: encoding member %s: %w", g.name, id, err)
		}
		writes = append(writes, Write{Key: memberKey(g.name, id), Value: val})
	}
	takenMeta, takenDrop, takenMembers := cg.metaDirty, cg.dropClassic, cg.dirtyMembers
	cg.metaDirty, cg.dropClassic, cg.dirtyMembers = false, false, make(map[string]bool)
	g.mu.Unlock()

	wctx, cancel := g.c.writeCtx(ctx)
	defer cancel()
	_, err := g.c.store.Apply(wctx, writes)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if g.consumer == cg {
			cg.metaDirty = cg.metaDirty || takenMeta
			cg.dropClassic = cg.dropClassic || takenDrop
			for id := range takenMembers {
				cg.dirtyMembers[id] = true
			}
		}
		return fmt.Errorf("group %s: writing consumer group: %w", g.name, err)
	}
	g.stored = true
	return nil
}

// flushConsumerLogged flushes on behalf of a timer; a failure is logged
// and the changes stay queued for the next flush.
func (g *group) flushConsumerLogged() {
	if err := g.flushConsumer(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		g.c.log.Warn("persisting consumer group failed", "group", g.name, "err", err)
	}
}

// dropEmptyConsumerGroup turns an empty consumer group back into a classic
// one (a classic JoinGroup arrived); a group with members refuses with
// INCONSISTENT_GROUP_PROTOCOL, as Kafka does without online migration.
// Offsets stay.
func (g *group) dropEmptyConsumerGroup(ctx context.Context) *kerr.Error {
	g.io.Lock()
	defer g.io.Unlock()
	g.mu.Lock()
	cg := g.consumer
	switch {
	case cg == nil:
		g.mu.Unlock()
		return nil
	case len(cg.members) > 0:
		g.mu.Unlock()
		return kerr.InconsistentGroupProtocol
	}
	g.mu.Unlock()

	wctx, cancel := g.c.writeCtx(ctx)
	defer cancel()
	err := g.c.store.DeletePrefix(wctx, membersPrefix(g.name))
	if err == nil {
		_, err = g.c.store.Apply(wctx, []Write{{Key: consumerKey(g.name), Delete: true}})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.consumer != cg {
		return nil
	}
	if err != nil || len(cg.members) > 0 {
		// Failed, or a member joined meanwhile: the store may have lost
		// some of the group, so everything is written again next time.
		cg.metaDirty = true
		for id := range cg.members {
			cg.dirtyMembers[id] = true
		}
		if err != nil {
			g.c.log.Warn("dropping an empty consumer group failed", "group", g.name, "err", err)
			return kerr.CoordinatorNotAvailable
		}
		return kerr.InconsistentGroupProtocol
	}
	g.consumer = nil
	g.c.log.Info("group now uses the classic protocol", "group", g.name)
	return nil
}

// isConsumerKey reports whether a key below a group's prefix belongs to
// its consumer-group state.
func isConsumerKey(sub string) bool {
	return sub == consumerKeyName || strings.HasPrefix(sub, membersDir)
}
