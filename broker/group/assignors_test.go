package group

import (
	"fmt"
	"slices"
	"testing"
)

func specOf(topics map[string]int32, members []string, subs map[string][]string, previous map[string]partSet) assignSpec {
	var spec assignSpec
	var names []string
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		spec.topics = append(spec.topics, assignTopic{name: name, id: fakeTopicID(name), partitions: topics[name]})
	}
	for _, id := range members {
		m := assignMember{id: id, subscribed: map[topicID]bool{}, previous: previous[id]}
		for _, t := range subs[id] {
			m.subscribed[fakeTopicID(t)] = true
		}
		spec.members = append(spec.members, m)
	}
	return spec
}

func counts(out map[string]partSet, members []string) []int {
	var cs []int
	for _, id := range members {
		cs = append(cs, out[id].count())
	}
	return cs
}

// checkExclusive fails if a partition went to two members, or a member got
// a partition of a topic it does not subscribe to.
func checkExclusive(t *testing.T, spec assignSpec, out map[string]partSet) int {
	t.Helper()
	seen := map[topicPartition]string{}
	subscribed := map[string]map[topicID]bool{}
	for _, m := range spec.members {
		subscribed[m.id] = m.subscribed
	}
	for id, s := range out {
		for tid, ps := range s {
			if !subscribed[id][tid] {
				t.Fatalf("%s got a topic it does not subscribe to", id)
			}
			for _, p := range ps {
				if o, ok := seen[topicPartition{tid, p}]; ok {
					t.Fatalf("partition %d given to %s and %s", p, o, id)
				}
				seen[topicPartition{tid, p}] = id
			}
		}
	}
	return len(seen)
}

func TestUniformAssignorBalancedAndSticky(t *testing.T) {
	topics := map[string]int32{"a": 5, "b": 3}
	members := []string{"m1", "m2", "m3"}
	subs := map[string][]string{"m1": {"a", "b"}, "m2": {"a", "b"}, "m3": {"a", "b"}, "m4": {"a", "b"}}
	spec := specOf(topics, members, subs, nil)
	first := assignUniform(spec)
	if n := checkExclusive(t, spec, first); n != 8 {
		t.Fatalf("%d partitions assigned, want 8", n)
	}
	if cs := counts(first, members); slices.Max(cs)-slices.Min(cs) > 1 {
		t.Fatalf("unbalanced: %v", cs)
	}
	// Same input, same output.
	if again := assignUniform(specOf(topics, members, subs, nil)); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatal("not deterministic")
	}
	// A fourth member: only the partitions it gets move.
	members4 := append(slices.Clone(members), "m4")
	spec = specOf(topics, members4, subs, first)
	second := assignUniform(spec)
	checkExclusive(t, spec, second)
	if cs := counts(second, members4); slices.Max(cs) != 2 || slices.Min(cs) != 2 {
		t.Fatalf("with four members: %v", cs)
	}
	moved := 0
	for _, id := range members {
		for tid, ps := range first[id] {
			for _, p := range ps {
				if !second[id].has(tid, p) {
					moved++
				}
			}
		}
	}
	if moved != 2 {
		t.Fatalf("%d partitions moved, want the 2 the new member takes", moved)
	}
	// A member leaves: the others keep theirs and split its partitions.
	spec = specOf(topics, []string{"m1", "m2", "m4"}, subs, second)
	third := assignUniform(spec)
	for _, id := range []string{"m1", "m2", "m4"} {
		if !second[id].subsetOf(third[id]) {
			t.Fatalf("%s lost partitions when m3 left: %v -> %v", id, second[id], third[id])
		}
	}
}

func TestUniformAssignorHeterogeneous(t *testing.T) {
	topics := map[string]int32{"a": 4, "b": 4}
	members := []string{"m1", "m2"}
	subs := map[string][]string{"m1": {"a"}, "m2": {"a", "b"}}
	spec := specOf(topics, members, subs, nil)
	out := assignUniform(spec)
	if n := checkExclusive(t, spec, out); n != 8 {
		t.Fatalf("%d assigned", n)
	}
	if out["m1"].count() != 4 || out["m2"].count() != 4 || len(out["m2"][fakeTopicID("b")]) != 4 {
		t.Fatalf("heterogeneous assignment: %v", out)
	}
	// Nobody subscribes to a topic: it stays unassigned.
	out = assignUniform(specOf(map[string]int32{"a": 2, "c": 3}, members, subs, nil))
	if out["m1"].count()+out["m2"].count() != 2 {
		t.Fatalf("unsubscribed topic assigned: %v", out)
	}
}

func TestRangeAssignor(t *testing.T) {
	topics := map[string]int32{"a": 5, "b": 5}
	subs := map[string][]string{"m1": {"a", "b"}, "m2": {"a", "b"}, "s1": {"a"}}
	inst := "instance"
	spec := specOf(topics, []string{"m1", "m2", "s1"}, subs, nil)
	spec.members[2].instanceID = &inst // static members go first
	out := assignRange(spec)
	checkExclusive(t, spec, out)
	a, b := fakeTopicID("a"), fakeTopicID("b")
	for _, tc := range []struct {
		member string
		a, b   []int32
	}{
		{"s1", []int32{0, 1}, nil},
		{"m1", []int32{2, 3}, []int32{0, 1, 2}},
		{"m2", []int32{4}, []int32{3, 4}},
	} {
		if !slices.Equal(out[tc.member][a], tc.a) || !slices.Equal(out[tc.member][b], tc.b) {
			t.Fatalf("%s: a %v b %v, want a %v b %v", tc.member, out[tc.member][a], out[tc.member][b], tc.a, tc.b)
		}
	}
}

func TestPartSet(t *testing.T) {
	id := fakeTopicID("a")
	s := partSetOf(2, func(i int) (topicID, []int32) { return id, [][]int32{{3, 1, 3}, {2, -1}}[i] })
	if !slices.Equal(s[id], []int32{1, 2, 3}) {
		t.Fatalf("partSetOf: %v", s[id])
	}
	sub := partSet{id: {1, 3}}
	if !sub.subsetOf(s) || s.subsetOf(sub) || !sub.intersects(s) || sub.intersects(partSet{id: {2}}) {
		t.Fatal("set relations")
	}
	if !s.clone().equal(s) || s.equal(sub) || s.count() != 3 {
		t.Fatal("clone/equal/count")
	}
}
