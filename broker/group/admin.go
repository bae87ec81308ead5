package group

import (
	"context"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is the authorized-operations bit field of a group with
// no ACLs in force: READ (3), DELETE (6) and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

// groupType is the type of classic groups; KIP-848 groups are of type
// consumerGroupType.
const groupType = "classic"

// DescribeGroups v0-v6. Member metadata and assignments, and the protocol,
// are reported only while the group is Stable, as Kafka does. An unknown
// group is Dead; from v6 it is GROUP_ID_NOT_FOUND too.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.SetVersion(req.Version)
	for _, name := range req.Groups {
		resp.Groups = append(resp.Groups, c.describe(ctx, name, req.Version, req.IncludeAuthorizedOperations))
	}
	return resp
}

func (c *Coordinator) describe(ctx context.Context, name string, version int16, withOps bool) kmsg.DescribeGroupsResponseGroup {
	sg := kmsg.NewDescribeGroupsResponseGroup()
	sg.Group = name
	if withOps {
		sg.AuthorizedOperations = groupOperations
	}
	if !c.placement.Owns(name) {
		sg.ErrorCode = kerr.NotCoordinator.Code
		return sg
	}
	g, err := c.lookup(ctx, name, false)
	if err != nil {
		sg.ErrorCode = groupErr(err).Code
		return sg
	}
	notFound := func() kmsg.DescribeGroupsResponseGroup {
		sg.State = Dead.String()
		if version >= 6 {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + name + " not found"
			sg.ErrorMessage = &msg
		}
		return sg
	}
	if g == nil {
		return notFound()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Dead {
		return notFound()
	}
	if g.consumer != nil {
		// Kafka describes only classic groups here: a KIP-848 group is
		// Dead, and from v6 GROUP_ID_NOT_FOUND (ConsumerGroupDescribe
		// describes it).
		sg.State = Dead.String()
		if version >= 6 {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + name + " is not a classic group."
			sg.ErrorMessage = &msg
		}
		return sg
	}
	sg.State = g.state.String()
	sg.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		sg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		sm := kmsg.NewDescribeGroupsResponseGroupMember()
		sm.MemberID = m.id
		sm.InstanceID = m.instanceID
		sm.ClientID = m.clientID
		sm.ClientHost = m.clientHost
		if stable {
			sm.ProtocolMetadata = m.metadataFor(g.protocol)
			sm.MemberAssignment = m.assignment
		}
		sg.Members = append(sg.Members, sm)
	}
	return sg
}

// ListGroups v0-v5, filtered by state (v4+) and type (v5+, "classic" or
// "consumer"), both matched case-insensitively as in Kafka.
func (c *Coordinator) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.SetVersion(req.Version)
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range c.snapshot() {
		g.mu.Lock()
		dead := g.state == Dead
		state, protocolType, typ := g.state.String(), g.protocolType, groupType
		if g.consumer != nil { // a KIP-848 group (consumer.go)
			state, protocolType, typ = g.consumer.state().String(), "consumer", consumerGroupType
		}
		g.mu.Unlock()
		if dead || !matches(req.TypesFilter, typ) || !matches(req.StatesFilter, state) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.name
		lg.ProtocolType = protocolType
		lg.GroupState = state
		lg.GroupType = typ
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DeleteGroups v0-v3: deletes empty groups with their offsets
// (NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND if unknown).
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.SetVersion(req.Version)
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		if e := c.deleteGroup(ctx, name); e != nil {
			dg.ErrorCode = e.Code
			if req.Version >= 3 {
				msg := e.Message + ": " + e.Description
				dg.ErrorMessage = &msg
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, name string) *kerr.Error {
	if !c.placement.Owns(name) {
		return kerr.NotCoordinator
	}
	g, err := c.lookup(ctx, name, false)
	if err != nil {
		return groupErr(err)
	}
	if g == nil {
		return kerr.GroupIDNotFound
	}
	// Holding io keeps commits out while the keys go; marking the group
	// Dead under both locks makes everyone else wait for the outcome
	// (lookup waits on deleting) instead of reviving it.
	g.io.Lock()
	defer g.io.Unlock()
	c.mu.Lock()
	g.mu.Lock()
	switch {
	case c.groups[name] != g || g.state == Dead:
		g.mu.Unlock()
		c.mu.Unlock()
		return kerr.GroupIDNotFound
	case g.state != Empty, g.consumer != nil && len(g.consumer.members) > 0:
		g.mu.Unlock()
		c.mu.Unlock()
		return kerr.NonEmptyGroup
	}
	g.state = Dead
	g.stopTimer()
	g.deleting = make(chan struct{})
	g.mu.Unlock()
	c.mu.Unlock()

	wctx, cancel := c.writeCtx(ctx)
	err = c.store.DeletePrefix(wctx, groupPrefix(name))
	cancel()

	c.mu.Lock()
	g.mu.Lock()
	if err != nil {
		g.state = Empty
		g.arm(c.clock.Now())
	} else {
		delete(c.groups, name)
		g.record = nil
		g.pending = map[string]time.Time{}
	}
	close(g.deleting)
	g.deleting = nil
	g.mu.Unlock()
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("deleting group failed", "group", name, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	c.log.Info("group deleted", "group", name)
	return nil
}
