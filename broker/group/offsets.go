package group

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v0-v10 by topic name (the broker resolves v10's topic ids
// before calling). A commit with generation -1 and no member is a "simple"
// commit, accepted while the group has no members (standalone consumers,
// admin tools); any other is checked against the member and generation
// (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID, and
// REBALANCE_IN_PROGRESS while the group is between join and sync). The
// request's offsets are written in one store transaction before the
// response, so an acknowledged commit survives a restart.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.SetVersion(req.Version)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	type commit struct {
		code  *int16
		topic string
		part  int32
		rec   offsetRecord
	}
	now := c.clock.Now()
	var commits []commit
	for ti, rt := range req.Topics {
		for pi, rp := range rt.Partitions {
			code := &resp.Topics[ti].Partitions[pi].ErrorCode
			switch {
			case !c.topics.PartitionExists(rt.Topic, rp.Partition):
				*code = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > c.cfg.MaxOffsetMetadataBytes:
				*code = kerr.OffsetMetadataTooLarge.Code
			default:
				rec := offsetRecord{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, CommitMs: now.UnixMilli()}
				if rp.Metadata != nil {
					rec.Metadata = *rp.Metadata
				}
				commits = append(commits, commit{code: code, topic: rt.Topic, part: rp.Partition, rec: rec})
			}
		}
	}
	setAll := func(e *kerr.Error) *kmsg.OffsetCommitResponse {
		for _, cm := range commits {
			*cm.code = e.Code
		}
		return resp
	}
	if len(commits) == 0 {
		return resp
	}
	if !c.placement.Owns(req.Group) {
		return setAll(kerr.NotCoordinator)
	}
	for {
		// Only a simple commit may bring a group into being; a member's
		// commit to a group that does not exist is from a stale generation.
		g, err := c.lookup(ctx, req.Group, req.Generation < 0)
		if err != nil {
			return setAll(groupErr(err))
		}
		if g == nil {
			return setAll(kerr.IllegalGeneration)
		}
		g.io.RLock()
		g.mu.Lock()
		if g.state == Dead {
			g.mu.Unlock()
			g.io.RUnlock()
			continue
		}
		if c.closed.Load() {
			g.mu.Unlock()
			g.io.RUnlock()
			return setAll(kerr.NotCoordinator)
		}
		var e *kerr.Error
		var stale func(topic string, partition int32) bool
		if g.consumer != nil {
			stale, e = g.validateConsumerCommit(req) // KIP-848 member epochs (consumer.go)
		} else {
			e = g.validateCommit(req, now)
		}
		if e != nil {
			g.mu.Unlock()
			g.io.RUnlock()
			return setAll(e)
		}
		if stale != nil {
			kept := commits[:0]
			for _, cm := range commits {
				if stale(cm.topic, cm.part) {
					*cm.code = kerr.StaleMemberEpoch.Code
				} else {
					kept = append(kept, cm)
				}
			}
			commits = kept
		}
		g.mu.Unlock()
		if len(commits) == 0 {
			g.io.RUnlock()
			return resp
		}

		writes := make([]Write, len(commits))
		for i, cm := range commits {
			val, err := json.Marshal(cm.rec)
			if err != nil {
				g.io.RUnlock()
				return setAll(kerr.UnknownServerError)
			}
			writes[i] = Write{Key: offsetKey(g.name, cm.topic, cm.part), Value: val}
		}
		wctx, cancel := c.writeCtx(ctx)
		rev, err := c.store.Apply(wctx, writes)
		cancel()
		if err != nil {
			g.io.RUnlock()
			c.log.Warn("offset commit failed", "group", g.name, "err", err)
			return setAll(kerr.CoordinatorNotAvailable)
		}
		g.mu.Lock()
		for _, cm := range commits {
			ps := g.offsets[cm.topic]
			if ps == nil {
				ps = make(map[int32]committed)
				g.offsets[cm.topic] = ps
			}
			// Concurrent commits may finish out of order; the store's
			// revision says which one it kept.
			if cur, ok := ps[cm.part]; !ok || cur.rev < rev {
				ps[cm.part] = committed{offsetRecord: cm.rec, rev: rev}
			}
		}
		g.stored = true
		g.mu.Unlock()
		g.io.RUnlock()
		return resp
	}
}

// validateCommit applies Kafka's rules for a classic group's offset commit.
func (g *group) validateCommit(req *kmsg.OffsetCommitRequest, now time.Time) *kerr.Error {
	if req.Generation < 0 && g.state == Empty {
		return nil
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if g.fenced(req.MemberID, req.InstanceID) {
			return kerr.FencedInstanceID
		}
		if req.InstanceID != nil {
			if _, ok := g.static[*req.InstanceID]; !ok {
				return kerr.UnknownMemberID
			}
		}
		m := g.members[req.MemberID]
		if m == nil {
			return kerr.UnknownMemberID
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration
		}
		m.lastHeartbeat = now
	} else if g.state != Empty {
		// A simple commit must not move a managed group's offsets.
		return kerr.UnknownMemberID
	}
	if g.state == CompletingRebalance {
		// The member has the new generation but not its assignment yet.
		return kerr.RebalanceInProgress
	}
	return nil
}

// OffsetFetch v0-v10 by topic name (v10's ids are the broker's business):
// one group (v0-v7) or many (v8+), the requested partitions or, when topics
// is null (v2+), every committed one. Unknown groups and partitions answer
// offset -1. RequireStable (v7+) concerns pending transactional commits,
// which floe does not have yet, so every offset is stable.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.SetVersion(req.Version)
	groups := req.Groups
	if req.Version < 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = req.Group
		if req.Topics != nil {
			rg.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
		}
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = t.Topic, t.Partitions
			rg.Topics = append(rg.Topics, rt)
		}
		groups = []kmsg.OffsetFetchRequestGroup{rg}
	}
	for _, rg := range groups {
		resp.Groups = append(resp.Groups, c.fetchGroup(ctx, rg))
	}
	if req.Version >= 8 {
		return resp
	}
	g0 := resp.Groups[0]
	resp.Groups = nil
	resp.ErrorCode = g0.ErrorCode // v2+; v0-v1 carry it per partition below
	for _, t := range g0.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			if req.Version < 2 && sp.ErrorCode == 0 {
				sp.ErrorCode = g0.ErrorCode
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (c *Coordinator) fetchGroup(ctx context.Context, rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	if !c.placement.Owns(rg.Group) {
		sg.ErrorCode = kerr.NotCoordinator.Code
		return sg
	}
	g, err := c.lookup(ctx, rg.Group, false)
	if err != nil {
		sg.ErrorCode = groupErr(err).Code
		return sg
	}
	partition := func(p int32, cm committed, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		sp.Partition = p
		sp.Offset, sp.LeaderEpoch = -1, -1
		md := ""
		if ok {
			sp.Offset, sp.LeaderEpoch, md = cm.Offset, cm.LeaderEpoch, cm.Metadata
		}
		sp.Metadata = &md
		return sp
	}
	var offsets map[string]map[int32]committed
	lookupOffset := func(topic string, p int32) (committed, bool) {
		cm, ok := offsets[topic][p]
		return cm, ok
	}
	if g != nil {
		g.mu.Lock()
		if e := g.validateConsumerFetch(rg); e != nil { // KIP-848 member epochs (consumer.go)
			g.mu.Unlock()
			sg.ErrorCode = e.Code
			return sg
		}
		if g.state != Dead {
			if rg.Topics == nil {
				offsets = make(map[string]map[int32]committed, len(g.offsets))
				for t, ps := range g.offsets {
					cp := make(map[int32]committed, len(ps))
					for p, cm := range ps {
						cp[p] = cm
					}
					offsets[t] = cp
				}
			} else {
				offsets = make(map[string]map[int32]committed, len(rg.Topics))
				for _, rt := range rg.Topics {
					for _, p := range rt.Partitions {
						if cm, ok := g.offsets[rt.Topic][p]; ok {
							if offsets[rt.Topic] == nil {
								offsets[rt.Topic] = make(map[int32]committed)
							}
							offsets[rt.Topic][p] = cm
						}
					}
				}
			}
		}
		g.mu.Unlock()
	}
	if rg.Topics == nil {
		topics := make([]string, 0, len(offsets))
		for t := range offsets {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			st := kmsg.NewOffsetFetchResponseGroupTopic()
			st.Topic = t
			parts := make([]int32, 0, len(offsets[t]))
			for p := range offsets[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				st.Partitions = append(st.Partitions, partition(p, offsets[t][p], true))
			}
			sg.Topics = append(sg.Topics, st)
		}
		return sg
	}
	for _, rt := range rg.Topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, p := range rt.Partitions {
			cm, ok := lookupOffset(rt.Topic, p)
			st.Partitions = append(st.Partitions, partition(p, cm, ok))
		}
		sg.Topics = append(sg.Topics, st)
	}
	return sg
}

// OffsetDelete v0: deletes committed offsets of an empty group, or of a
// consumer group for topics none of its members subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC otherwise); a non-empty group of another
// protocol type refuses with NON_EMPTY_GROUP.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.SetVersion(req.Version)
	fail := func(e *kerr.Error) *kmsg.OffsetDeleteResponse {
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
		return fail(kerr.GroupIDNotFound)
	}
	g.io.Lock()
	defer g.io.Unlock()
	g.mu.Lock()
	if g.state == Dead {
		g.mu.Unlock()
		return fail(kerr.GroupIDNotFound)
	}
	subscribed := func(string) bool { return false }
	if g.consumer != nil {
		// A KIP-848 group deletes offsets in any state, of topics no
		// member subscribes to (consumer.go).
		subscribed = g.consumer.subscribedTo
	} else if g.state != Empty {
		if g.protocolType != "consumer" {
			g.mu.Unlock()
			return fail(kerr.NonEmptyGroup)
		}
		subscribed = g.subscribedTo()
	}
	type deletion struct {
		topic string
		part  int32
	}
	var dels []deletion
	var writes []Write
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !c.topics.PartitionExists(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed(rt.Topic):
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.offsets[rt.Topic][rp.Partition]; ok {
					dels = append(dels, deletion{rt.Topic, rp.Partition})
					writes = append(writes, Write{Key: offsetKey(g.name, rt.Topic, rp.Partition), Delete: true})
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	g.mu.Unlock()
	if len(writes) == 0 {
		return resp
	}
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	if _, err := c.store.Apply(wctx, writes); err != nil {
		c.log.Warn("offset delete failed", "group", g.name, "err", err)
		resp.Topics = nil
		return fail(kerr.CoordinatorNotAvailable)
	}
	g.mu.Lock()
	for _, d := range dels {
		delete(g.offsets[d.topic], d.part)
		if len(g.offsets[d.topic]) == 0 {
			delete(g.offsets, d.topic)
		}
	}
	g.mu.Unlock()
	return resp
}

// subscribedTo returns whether any member of a consumer group subscribes to
// a topic, read from the members' consumer protocol metadata (for the
// chosen protocol, or for all while none is chosen yet). Metadata that does
// not parse counts as subscribing to everything: deleting offsets in use
// is the mistake to avoid.
func (g *group) subscribedTo() func(string) bool {
	topics := make(map[string]bool)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.protocol != "" && p.Name != g.protocol {
				continue
			}
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(p.Metadata); err != nil {
				return func(string) bool { return true }
			}
			for _, t := range md.Topics {
				topics[t] = true
			}
		}
	}
	return func(t string) bool { return topics[t] }
}

// DeleteTopicOffsets forgets every group's committed offsets for a topic;
// the broker calls it when the topic is deleted, as Kafka does, so a
// re-created topic does not inherit stale positions.
func (c *Coordinator) DeleteTopicOffsets(ctx context.Context, topic string) error {
	c.mu.Lock()
	var gs []*group
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	c.mu.Unlock()
	for _, g := range gs {
		if err := g.deleteTopicOffsets(ctx, topic); err != nil {
			return err
		}
	}
	return nil
}

func (g *group) deleteTopicOffsets(ctx context.Context, topic string) error {
	g.io.Lock()
	defer g.io.Unlock()
	g.mu.Lock()
	_, has := g.offsets[topic]
	dead := g.state == Dead
	g.mu.Unlock()
	if !has || dead {
		return nil
	}
	wctx, cancel := g.c.writeCtx(ctx)
	defer cancel()
	if err := g.c.store.DeletePrefix(wctx, topicOffsetsPrefix(g.name, topic)); err != nil {
		return err
	}
	g.mu.Lock()
	delete(g.offsets, topic)
	g.mu.Unlock()
	return nil
}
