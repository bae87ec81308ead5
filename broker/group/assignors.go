package group

import (
	"bytes"
	"slices"
	"sort"
)

// topicID is a topic's 16-byte id; KIP-848 assignments name topics by id.
type topicID = [16]byte

// partSet is a set of partitions keyed by topic id. Every slice is sorted
// and free of duplicates, and no topic maps to an empty slice, so two equal
// sets compare equal with equal.
type partSet map[topicID][]int32

func (s partSet) has(id topicID, p int32) bool {
	_, ok := slices.BinarySearch(s[id], p)
	return ok
}

func (s partSet) add(id topicID, p int32) {
	ps := s[id]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		s[id] = slices.Insert(ps, i, p)
	}
}

func (s partSet) count() int {
	n := 0
	for _, ps := range s {
		n += len(ps)
	}
	return n
}

func (s partSet) clone() partSet {
	out := make(partSet, len(s))
	for id, ps := range s {
		out[id] = slices.Clone(ps)
	}
	return out
}

func (s partSet) equal(o partSet) bool {
	if len(s) != len(o) {
		return false
	}
	for id, ps := range s {
		if !slices.Equal(ps, o[id]) {
			return false
		}
	}
	return true
}

// subsetOf reports whether every partition of s is in o.
func (s partSet) subsetOf(o partSet) bool {
	for id, ps := range s {
		for _, p := range ps {
			if !o.has(id, p) {
				return false
			}
		}
	}
	return true
}

// intersects reports whether s and o share a partition.
func (s partSet) intersects(o partSet) bool {
	for id, ps := range s {
		for _, p := range ps {
			if o.has(id, p) {
				return true
			}
		}
	}
	return false
}

// ids returns the topic ids in byte order, for deterministic output.
func (s partSet) ids() []topicID {
	ids := make([]topicID, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	return ids
}

// partSetOf builds a set from (topic id, partitions) pairs, dropping
// duplicates and negative partitions a client may send.
func partSetOf(n int, each func(i int) (topicID, []int32)) partSet {
	s := make(partSet, n)
	for i := range n {
		id, ps := each(i)
		for _, p := range ps {
			if p >= 0 {
				s.add(id, p)
			}
		}
	}
	return s
}

// Server-side assignors (group.consumer.assignors): "uniform", the default,
// balances partitions over members sticking to the previous target as far
// as balance allows; "range" gives each member contiguous ranges of every
// topic it subscribes to, co-partitioned when subscriptions and partition
// counts agree. Neither looks at racks.
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

// assignors lists the supported assignors, default first.
var assignors = []string{assignorUniform, assignorRange}

// assignTopic is one subscribed topic as the assignors see it.
type assignTopic struct {
	name       string
	id         topicID
	partitions int32
}

// assignMember is one member as the assignors see it.
type assignMember struct {
	id         string
	instanceID *string
	subscribed map[topicID]bool
	previous   partSet // the member's current target
}

// assignSpec is an assignor's input: topics sorted by name, members sorted
// by id.
type assignSpec struct {
	topics  []assignTopic
	members []assignMember
}

// assign runs the named assignor and returns every member's new target.
func assign(name string, spec assignSpec) map[string]partSet {
	if name == assignorRange {
		return assignRange(spec)
	}
	return assignUniform(spec)
}

type topicPartition struct {
	id topicID
	p  int32
}

// assignUniform keeps each member's previous target partitions that are
// still valid, hands out the rest to the least-loaded eligible member, and
// then moves partitions from members holding more than one above the least
// loaded member that could take them, until no such move is left. With
// identical subscriptions this ends with every member holding floor(P/M) or
// ceil(P/M) partitions; otherwise it is balanced within each partition's
// eligible members, which is what Kafka's heterogeneous uniform assignor
// aims for too.
func assignUniform(spec assignSpec) map[string]partSet {
	out := make(map[string]partSet, len(spec.members))
	if len(spec.members) == 0 {
		return out
	}
	count := make([]int, len(spec.members))
	owner := make(map[topicPartition]int)
	var all []topicPartition
	for _, t := range spec.topics {
		for p := range t.partitions {
			all = append(all, topicPartition{t.id, p})
		}
	}
	exists := make(map[topicID]int32, len(spec.topics))
	for _, t := range spec.topics {
		exists[t.id] = t.partitions
	}
	for i, m := range spec.members {
		for _, id := range m.previous.ids() {
			n, ok := exists[id]
			if !ok || !m.subscribed[id] {
				continue
			}
			for _, p := range m.previous[id] {
				tp := topicPartition{id, p}
				if _, taken := owner[tp]; p < n && !taken {
					owner[tp] = i
					count[i]++
				}
			}
		}
	}
	leastLoaded := func(id topicID) int {
		best := -1
		for i, m := range spec.members {
			if m.subscribed[id] && (best < 0 || count[i] < count[best]) {
				best = i
			}
		}
		return best
	}
	for _, tp := range all {
		if _, ok := owner[tp]; ok {
			continue
		}
		if i := leastLoaded(tp.id); i >= 0 {
			owner[tp] = i
			count[i]++
		}
	}
	// Balance. Each move lowers the sum of squared loads, so this ends; the
	// pass bound is a guard, never reached in practice.
	for pass := 0; pass <= len(all); pass++ {
		moved := false
		for k := len(all) - 1; k >= 0; k-- { // shed the highest partitions first
			tp := all[k]
			from, ok := owner[tp]
			if !ok {
				continue
			}
			to := leastLoaded(tp.id)
			if to >= 0 && count[from] > count[to]+1 {
				owner[tp] = to
				count[from]--
				count[to]++
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	for _, m := range spec.members {
		out[m.id] = partSet{}
	}
	for _, tp := range all {
		if i, ok := owner[tp]; ok {
			out[spec.members[i].id].add(tp.id, tp.p)
		}
	}
	return out
}

// assignRange gives, per topic, its subscribed members contiguous ranges of
// partitions: floor(P/M) each, the first P mod M members one more. Members
// are ordered static first (by instance id), then dynamic (by member id),
// as Kafka's server-side range assignor does, so static members keep their
// ranges across restarts.
func assignRange(spec assignSpec) map[string]partSet {
	out := make(map[string]partSet, len(spec.members))
	members := slices.Clone(spec.members)
	sort.SliceStable(members, func(i, j int) bool {
		a, b := members[i], members[j]
		switch {
		case a.instanceID != nil && b.instanceID != nil:
			return *a.instanceID < *b.instanceID
		case a.instanceID != nil:
			return true
		case b.instanceID != nil:
			return false
		}
		return a.id < b.id
	})
	for _, m := range members {
		out[m.id] = partSet{}
	}
	for _, t := range spec.topics {
		var subs []string
		for _, m := range members {
			if m.subscribed[t.id] {
				subs = append(subs, m.id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		quota, extra := int(t.partitions)/len(subs), int(t.partitions)%len(subs)
		next := int32(0)
		for i, id := range subs {
			n := quota
			if i < extra {
				n++
			}
			for range n {
				out[id].add(t.id, next)
				next++
			}
		}
	}
	return out
}
