package compat

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/tool"
)

// partOffset names one record of a topic.
type partOffset struct {
	p int32
	o int64
}

// groupTestPartitions is the partition count of the group tests' topics.
const groupTestPartitions = numPartitions

// producePaced produces count records with franz-go (idempotent, acks=all)
// to topic, record n with key "k-<n>" and value prefix+"<n>", spread evenly
// over the duration over (0: as fast as it goes), and returns where each
// one landed. The values are unique, so a consumer's output can be
// checked record by record.
func producePaced(ctx context.Context, addr, topic, prefix string, count int, over time.Duration) (map[partOffset]string, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		landed   = make(map[partOffset]string, count)
		failed   int
		firstErr error
	)
	start := time.Now()
	for n := range count {
		if over > 0 {
			due := start.Add(time.Duration(int64(over) * int64(n) / int64(count)))
			if d := time.Until(due); d > 5*time.Millisecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
		value := prefix + strconv.Itoa(n)
		rec := &kgo.Record{Key: []byte("k-" + strconv.Itoa(n)), Value: []byte(value)}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("record %q: %w", value, err)
				}
				return
			}
			landed[partOffset{r.Partition, r.Offset}] = value
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d records failed; first: %w", failed, count, firstErr)
	}
	if len(landed) != count {
		return nil, fmt.Errorf("%d records acknowledged at %d distinct offsets", count, len(landed))
	}
	return landed, nil
}

// endOffsets lists topic's end offsets and checks that they are exactly
// what the producer's acknowledgements in landed imply: every partition's
// acknowledged offsets are 0..end-1.
func (c *cluster) endOffsets(t *testing.T, topic string, landed map[partOffset]string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed, err := c.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	perPartition := map[int32]int64{}
	for po := range landed {
		perPartition[po.p]++
	}
	ends := map[int32]int64{}
	var p problems
	for part := range int32(groupTestPartitions) {
		e, ok := listed.Lookup(topic, part)
		if !ok {
			p.addf("partition %d: no end offset", part)
			continue
		}
		ends[part] = e.Offset
		if e.Offset != perPartition[part] {
			p.addf("partition %d: end offset %d, but %d records were acknowledged there", part, e.Offset, perPartition[part])
		}
	}
	for po := range landed {
		if po.o < 0 || po.o >= ends[po.p] {
			p.addf("a record was acknowledged at %d/%d, outside the partition's offsets [0, %d)", po.p, po.o, ends[po.p])
		}
	}
	if err := p.err("end offsets of " + topic); err != nil {
		t.Fatal(err)
	}
	return ends
}

// committedOffsets fetches group's committed offsets of topic with
// kadm.FetchOffsets: partition -> offset, partitions without a commit
// left out.
func (c *cluster) committedOffsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	resps, err := c.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := resps.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for part, r := range resps[topic] {
		if r.At >= 0 {
			out[part] = r.At
		}
	}
	return out, nil
}

func offsetsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if bo, ok := b[p]; !ok || bo != o {
			return false
		}
	}
	return true
}

func formatOffsets(m map[int32]int64) string {
	parts := make([]int32, 0, len(m))
	for p := range m {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", p, m[p])
	}
	b.WriteByte(']')
	return b.String()
}

// checkCommitted fails the test unless group's committed offsets of topic
// are exactly want.
func (c *cluster) checkCommitted(t *testing.T, group, topic string, want map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := c.committedOffsets(ctx, group, topic)
	if err != nil {
		t.Fatalf("fetch committed offsets of group %s: %v", group, err)
	}
	if !offsetsEqual(got, want) {
		t.Fatalf("group %s: committed offsets of %s %s, want %s", group, topic, formatOffsets(got), formatOffsets(want))
	}
}

// TestGroupRebalancePython runs confluent-kafka-python consumers of one
// group (manual synchronous commits after each batch) while a producer
// writes 30,000 records over 20 s: three join staggered, the first leaves
// cleanly midway, a fourth joins, and the third is SIGKILLed between
// processing a batch and committing it (its session times out). When the
// producer is done and the group has committed the end offsets, the
// survivors are stopped and their logs checked: every record consumed,
// with the value produced, and committed by its consumer; within an
// assignment a member reads each partition's offsets in order without
// gaps; no partition is owned by two members at once; committed offsets
// never go back; and a record is consumed again only when no commit
// covering it had succeeded before its new owner got the partition
// (duplicates are counted and logged; the crash must cause some). The
// group's committed offsets must equal the end offsets, also after the
// members have left. It runs with librdkafka's eager default assignors
// and with cooperative-sticky (incremental rebalances).
func TestGroupRebalancePython(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import confluent_kafka (%v: %s): run `make deps` (python3-confluent-kafka)", python, err, out)
	}
	script, err := filepath.Abs(filepath.Join("py", "group_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t)
	for _, tc := range []struct {
		name, strategy string
		incremental    bool
	}{
		{"eager", "range,roundrobin", false},
		{"cooperative-sticky", "cooperative-sticky", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runRebalance(t, c, script, "rebalance-"+tc.name, tc.strategy, tc.incremental)
		})
	}
}

func runRebalance(t *testing.T, c *cluster, script, topic, strategy string, incremental bool) {
	const (
		records = 30_000
		produce = 20 * time.Second
		// processMs is how long a member "processes" a batch between
		// logging and committing it: the window in which a crash
		// leaves consumed records uncommitted.
		processMs = 100
	)
	group := topic
	c.createTopic(t, topic)
	dir := t.TempDir()
	members := map[string]*groupMember{}
	start := func(name string) {
		members[name] = startGroupMember(t, dir, python, script, "consume", c.addr(), topic, group, name, strconv.Itoa(processMs), strategy)
	}

	type produced struct {
		landed map[partOffset]string
		err    error
	}
	done := make(chan produced, 1)
	ctx := c.ctx(t, 3*time.Minute)
	start("c1")
	go func() {
		landed, err := producePaced(ctx, c.addr(), topic, "g-", records, produce)
		done <- produced{landed, err}
	}()
	began := time.Now()
	// The membership changes, at these times after the producer started.
	schedule := []struct {
		at   time.Duration
		what string
		do   func()
	}{
		// After the group's initial rebalance delay (3 s), so that c1
		// gets partitions before c2 joins.
		{4 * time.Second, "c2 joins", func() { start("c2") }},
		{7 * time.Second, "c3 joins", func() { start("c3") }},
		{10 * time.Second, "c1 leaves (SIGTERM, close)", func() { members["c1"].stop(t) }},
		{13 * time.Second, "c4 joins", func() { start("c4") }},
		{15 * time.Second, "c3 crashes (SIGKILL) between processing a batch and committing it", func() { members["c3"].killMidBatch(t) }},
	}
	for _, step := range schedule {
		time.Sleep(time.Until(began.Add(step.at)))
		t.Logf("%v: %s", time.Since(began).Round(time.Millisecond), step.what)
		step.do()
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("producer: %v", res.err)
	}
	t.Logf("%v: producer done: %d records", time.Since(began).Round(time.Millisecond), len(res.landed))
	ends := c.endOffsets(t, topic, res.landed)

	// The survivors drain the topic; wait for the group's commits to
	// reach the end offsets.
	deadline := time.Now().Add(90 * time.Second)
	var (
		committed map[int32]int64
		err       error
	)
	for {
		committed, err = c.committedOffsets(ctx, group, topic)
		if err == nil && offsetsEqual(committed, ends) {
			break
		}
		for name, m := range members {
			if name != "c1" && name != "c3" && m.exited() {
				t.Fatalf("consumer %s exited on its own: %v\n%s", name, m.err, m.stderr.String())
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the group did not commit the end offsets %s within 90s of the producer's end: committed %s (%v)",
				formatOffsets(ends), formatOffsets(committed), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("%v: group committed the end offsets %s", time.Since(began).Round(time.Millisecond), formatOffsets(ends))
	for _, name := range []string{"c2", "c4"} {
		members[name].stop(t)
	}
	c.checkCommitted(t, group, topic, ends)

	logs := map[string][]groupEvent{}
	for name, m := range members {
		evs, err := readGroupLog(m.log, name == "c3")
		if err != nil {
			t.Fatal(err)
		}
		logs[name] = evs
	}
	rep, err := checkGroupLogs(res.landed, logs, map[string]bool{"c3": true}, incremental)
	for _, line := range rep.lines() {
		t.Log(line)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.dupCrash == 0 {
		t.Fatal("c3 was killed with a processed, uncommitted batch, but no record was consumed again")
	}
}

// groupMember is one consumer process of a group test.
type groupMember struct {
	name   string
	log    string
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only after done is closed
	done   chan struct{}
	err    error // cmd.Wait's result, after done
}

func startGroupMember(t *testing.T, dir, bin, script, mode, addr, topic, group, name string, extra ...string) *groupMember {
	t.Helper()
	m := &groupMember{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	m.cmd = exec.Command(bin, append([]string{script, mode, addr, topic, group, name, m.log}, extra...)...)
	m.cmd.Stderr = &m.stderr
	m.cmd.Stdout = &m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start consumer %s: %v", name, err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		if !m.exited() {
			_ = m.cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() && m.stderr.Len() > 0 {
			t.Logf("consumer %s output:\n%s", name, tailString(m.stderr.String(), 4<<10))
		}
	})
	return m
}

func (m *groupMember) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop asks the consumer to close (SIGTERM) and fails the test unless it
// exits cleanly within 30 s.
func (m *groupMember) stop(t *testing.T) {
	t.Helper()
	if m.exited() {
		t.Fatalf("consumer %s exited before it was stopped: %v\n%s", m.name, m.err, m.stderr.String())
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		t.Fatalf("consumer %s did not close within 30s of SIGTERM\n%s", m.name, m.stderr.String())
	}
	if m.err != nil {
		t.Fatalf("consumer %s: %v\n%s", m.name, m.err, m.stderr.String())
	}
}

// killMidBatch crashes the consumer (SIGKILL) as soon as its log ends
// with a processed record, i.e. while it "processes" a batch it has not
// committed yet, so its successor must consume that batch again.
func (m *groupMember) killMidBatch(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m.exited() {
			t.Fatalf("consumer %s exited before it was killed: %v\n%s", m.name, m.err, m.stderr.String())
		}
		raw, err := os.ReadFile(m.log)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(raw); n > 0 && raw[n-1] == '\n' {
			if last := raw[bytes.LastIndexByte(raw[:n-1], '\n')+1:]; bytes.HasPrefix(last, []byte("R ")) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: no uncommitted batch to kill it in within 20s", m.name)
		}
		time.Sleep(2 * time.Millisecond)
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// groupEvent is one line of a group_client.py log.
type groupEvent struct {
	kind       byte  // S A V L R C F E X
	at         int64 // CLOCK_MONOTONIC ns
	partitions []int32
	partition  int32
	offset     int64
	value      string
	text       string
}

// readGroupLog parses a group_client.py log. A killed process may have
// left a partial last line, which is dropped when crashed is set.
func readGroupLog(path string, crashed bool) ([]groupEvent, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if crashed && len(raw) > 0 && raw[len(raw)-1] != '\n' {
		raw = raw[:bytes.LastIndexByte(raw, '\n')+1]
	}
	var evs []groupEvent
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for line := 1; sc.Scan(); line++ {
		bad := func(why string) error { return fmt.Errorf("%s:%d: %s: %q", path, line, why, sc.Text()) }
		f := strings.Fields(sc.Text())
		if len(f) < 2 || len(f[0]) != 1 {
			return nil, bad("malformed")
		}
		ev := groupEvent{kind: f[0][0]}
		if ev.at, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return nil, bad("time")
		}
		args := f[2:]
		nums := func(n int) ([]int64, error) {
			if len(args) < n {
				return nil, bad("too few fields")
			}
			out := make([]int64, n)
			for i := range n {
				if out[i], err = strconv.ParseInt(args[i], 10, 64); err != nil {
					return nil, bad("number")
				}
			}
			return out, nil
		}
		switch ev.kind {
		case 'S', 'X':
		case 'A', 'V', 'L':
			if len(args) != 1 {
				return nil, bad("partition list")
			}
			if args[0] != "-" {
				for _, s := range strings.Split(args[0], ",") {
					p, err := strconv.ParseInt(s, 10, 32)
					if err != nil {
						return nil, bad("partition list")
					}
					ev.partitions = append(ev.partitions, int32(p))
				}
			}
		case 'R':
			n, err := nums(2)
			if err != nil {
				return nil, err
			}
			if len(args) != 3 {
				return nil, bad("record")
			}
			ev.partition, ev.offset, ev.value = int32(n[0]), n[1], args[2]
		case 'C':
			n, err := nums(2)
			if err != nil {
				return nil, err
			}
			ev.partition, ev.offset = int32(n[0]), n[1]
		case 'F', 'E':
			ev.text = strings.Join(args, " ")
		default:
			return nil, bad("unknown event")
		}
		evs = append(evs, ev)
	}
	return evs, sc.Err()
}

// groupReport is what checkGroupLogs found besides errors.
type groupReport struct {
	consumed, distinct int
	perConsumer        map[string]int
	commits, failures  map[string]int
	failureTexts       map[string]int
	// duplicates: consumptions of a record after its first, by why
	// the earlier consumption's commit did not cover it.
	dupCrash, dupUncommitted int
	dupRecords               int
	dupExamples              []string
	timeline                 []string // assignments and revocations
}

func (r *groupReport) lines() []string {
	out := []string{fmt.Sprintf("consumed %d records (%d distinct), per consumer %v; commits per consumer %v, failed commits %v",
		r.consumed, r.distinct, r.perConsumer, r.commits, r.failures)}
	for text, n := range r.failureTexts {
		out = append(out, fmt.Sprintf("  failed commit %dx: %s", n, text))
	}
	out = append(out, fmt.Sprintf("duplicates: %d consumptions of %d records (%d after a crash before the commit, %d after a commit that failed or was not made before a rebalance)",
		r.dupCrash+r.dupUncommitted, r.dupRecords, r.dupCrash, r.dupUncommitted))
	for _, ex := range r.dupExamples {
		out = append(out, "  "+ex)
	}
	return append(out, r.timeline...)
}

// checkGroupLogs checks the consumers' logs against what was produced
// (partition/offset -> value); crashed names the consumers that were
// SIGKILLed.
// With incremental (cooperative) rebalancing, an assignment event lists
// the partitions added, else the whole new assignment.
func checkGroupLogs(produced map[partOffset]string, logs map[string][]groupEvent, crashed map[string]bool, incremental bool) (*groupReport, error) {
	rep := &groupReport{perConsumer: map[string]int{}, commits: map[string]int{}, failures: map[string]int{}, failureTexts: map[string]int{}}
	var p problems

	// ownership is one member's hold on a partition, from its assignment
	// to its revocation (or, for a killed member, its last log line).
	type ownership struct {
		consumer   string
		start, end int64
	}
	owners := map[int32][]ownership{}
	type consumption struct {
		consumer string
		at       int64
		assigned int64 // when the member got the partition this time
	}
	consumptions := map[partOffset][]consumption{}
	// committedBy: records whose consumer later committed past them
	// while still holding the partition.
	committedBy := map[partOffset]bool{}
	type commit struct {
		consumer string
		at       int64
		offset   int64
	}
	commits := map[int32][]commit{}

	names := make([]string, 0, len(logs))
	var t0 int64 = -1
	type timed struct {
		at   int64
		line string
	}
	var timeline []timed
	for name, evs := range logs {
		names = append(names, name)
		for _, ev := range evs {
			if t0 < 0 || ev.at < t0 {
				t0 = ev.at
			}
			if ev.kind == 'A' || ev.kind == 'V' || ev.kind == 'L' || ev.kind == 'X' || ev.kind == 'S' {
				timeline = append(timeline, timed{ev.at, fmt.Sprintf("%s %c %v", name, ev.kind, ev.partitions)})
			}
		}
	}
	sort.Strings(names)
	slices.SortFunc(timeline, func(a, b timed) int { return cmp.Compare(a.at, b.at) })
	for _, tl := range timeline {
		rep.timeline = append(rep.timeline, fmt.Sprintf("  %7.3fs %s", float64(tl.at-t0)/1e9, tl.line))
	}
	for _, name := range names {
		evs := logs[name]
		held := map[int32]int64{}      // partition -> when assigned
		next := map[int32]int64{}      // partition -> next offset expected (-1: any)
		pending := map[int32][]int64{} // partition -> offsets consumed, not yet committed
		release := func(part int32, at int64) {
			if since, ok := held[part]; ok {
				owners[part] = append(owners[part], ownership{name, since, at})
				delete(held, part)
				delete(next, part)
				delete(pending, part)
			}
		}
		var last int64
		for _, ev := range evs {
			last = ev.at
			switch ev.kind {
			case 'A':
				// Eager assignment: the list is the whole new assignment.
				for part := range held {
					if !incremental && !slices.Contains(ev.partitions, part) {
						p.addf("%s: assigned %v while holding partition %d it was not told to revoke", name, ev.partitions, part)
					}
				}
				for _, part := range ev.partitions {
					if _, ok := held[part]; ok {
						if incremental {
							p.addf("%s: assigned partition %d, which it already holds", name, part)
						}
						continue
					}
					held[part] = ev.at
					next[part] = -1
				}
			case 'V', 'L':
				for _, part := range ev.partitions {
					release(part, ev.at)
				}
			case 'R':
				rep.consumed++
				rep.perConsumer[name]++
				po := partOffset{ev.partition, ev.offset}
				since, ok := held[ev.partition]
				if !ok {
					p.addf("%s: record %d/%d consumed while not assigned partition %d", name, ev.partition, ev.offset, ev.partition)
				}
				if want := next[ev.partition]; ok && want >= 0 && ev.offset != want {
					p.addf("%s: partition %d: offset %d follows offset %d within one assignment", name, ev.partition, ev.offset, want-1)
				}
				next[ev.partition] = ev.offset + 1
				if v, ok := produced[po]; !ok {
					p.addf("%s: consumed %d/%d = %q, where nothing was acknowledged", name, po.p, po.o, ev.value)
				} else if v != ev.value {
					p.addf("%s: consumed %d/%d = %q, but %q was acknowledged there", name, po.p, po.o, ev.value, v)
				}
				consumptions[po] = append(consumptions[po], consumption{name, ev.at, since})
				pending[ev.partition] = append(pending[ev.partition], ev.offset)
			case 'C':
				rep.commits[name]++
				commits[ev.partition] = append(commits[ev.partition], commit{name, ev.at, ev.offset})
				if _, ok := held[ev.partition]; !ok {
					p.addf("%s: committed offset %d of partition %d, which it was not assigned", name, ev.offset, ev.partition)
				}
				rest := pending[ev.partition][:0]
				for _, o := range pending[ev.partition] {
					if o < ev.offset {
						committedBy[partOffset{ev.partition, o}] = true
					} else {
						rest = append(rest, o)
					}
				}
				pending[ev.partition] = rest
			case 'F':
				rep.failures[name]++
				rep.failureTexts[ev.text]++
			case 'E':
				p.addf("%s: consume error: %s", name, ev.text)
			}
		}
		if !crashed[name] && (len(evs) == 0 || evs[len(evs)-1].kind != 'X') {
			p.addf("%s: log does not end with a clean exit", name)
		}
		for part := range held {
			if !crashed[name] {
				p.addf("%s: exited still holding partition %d (no revocation)", name, part)
			}
			release(part, last)
		}
	}

	// No partition is held by two members at once. Eager rebalancing
	// revokes everything before rejoining, and a member learns its new
	// assignment only after every member rejoined, so the callbacks of
	// different processes are strictly ordered (one clock, CLOCK_MONOTONIC).
	for part, hs := range owners {
		slices.SortFunc(hs, func(a, b ownership) int { return cmp.Compare(a.start, b.start) })
		for i := 1; i < len(hs); i++ {
			if hs[i].start < hs[i-1].end {
				p.addf("partition %d held by %s and %s at once (%s from %d until %d, %s from %d)", part,
					hs[i-1].consumer, hs[i].consumer, hs[i-1].consumer, hs[i-1].start, hs[i-1].end, hs[i].consumer, hs[i].start)
			}
		}
	}

	// Committed offsets never go back.
	for part, cs := range commits {
		slices.SortFunc(cs, func(a, b commit) int { return cmp.Compare(a.at, b.at) })
		for i := 1; i < len(cs); i++ {
			if cs[i].offset < cs[i-1].offset {
				p.addf("partition %d: %s committed %d after %s had committed %d", part, cs[i].consumer, cs[i].offset, cs[i-1].consumer, cs[i-1].offset)
			}
		}
	}

	// Every record was consumed, and consumed again only when nothing had
	// committed past it before the member got the partition.
	missing, uncommitted := 0, 0
	for po := range produced {
		cs := consumptions[po]
		if len(cs) == 0 {
			missing++
			if missing <= 5 {
				p.addf("record %d/%d (%q) was never consumed", po.p, po.o, produced[po])
			}
			continue
		}
		if !committedBy[po] {
			uncommitted++
			if uncommitted <= 5 {
				p.addf("record %d/%d (%q) was consumed (by %s) but no consumer committed past it", po.p, po.o, produced[po], cs[0].consumer)
			}
		}
		if len(cs) == 1 {
			continue
		}
		rep.dupRecords++
		slices.SortFunc(cs, func(a, b consumption) int { return cmp.Compare(a.at, b.at) })
		for _, again := range cs[1:] {
			first := cs[0]
			for _, cm := range commits[po.p] {
				if cm.offset > po.o && cm.at < again.assigned {
					p.addf("record %d/%d consumed again by %s although %s had committed offset %d before %s was assigned the partition",
						po.p, po.o, again.consumer, cm.consumer, cm.offset, again.consumer)
					break
				}
			}
			if crashed[first.consumer] {
				rep.dupCrash++
			} else {
				rep.dupUncommitted++
			}
			if len(rep.dupExamples) < 5 {
				rep.dupExamples = append(rep.dupExamples, fmt.Sprintf("%d/%d: %s then %s", po.p, po.o, first.consumer, again.consumer))
			}
		}
	}
	if missing > 5 {
		p.addf("... %d records never consumed in all", missing)
	}
	if uncommitted > 5 {
		p.addf("... %d records never committed in all", uncommitted)
	}
	for po := range consumptions {
		if _, ok := produced[po]; ok {
			rep.distinct++
		}
	}
	if rep.consumed == 0 {
		return rep, errors.New("no consumer logged any record")
	}
	return rep, p.err("group consumers' logs")
}

// TestGroupOffsetsSurviveRestart has kcat (librdkafka's balanced
// consumer, `kcat -G`, auto commit) and kafkajs (explicit commits after
// every batch) each consume a topic as a group and commit; floe is then
// restarted, kadm.FetchOffsets must return the same committed offsets,
// and a second run in the same group must read exactly the records
// produced after the first run: none again, none skipped.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	kcat := tool.Look(t, "kcat")
	node := tool.Look(t, "node")
	jsDir, err := filepath.Abs("js")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, jsDir)
	jsScript := filepath.Join(jsDir, "group_client.js")
	const (
		firstRun  = 2000
		secondRun = 1000
	)
	clients := []struct {
		name string
		// consume runs one group member until it has read want records
		// and returns what it read, as "partition offset value" lines.
		consume func(t *testing.T, ctx context.Context, addr, topic, group string, want int) []byte
	}{
		{"kcat", func(t *testing.T, ctx context.Context, addr, topic, group string, want int) []byte {
			// -e: exit once every assigned partition is at its end;
			// closing commits what was consumed (enable.auto.commit).
			return runTool(t, ctx, "", kcat, "-b", addr, "-G", group, "-q", "-e",
				"-f", `%p %o %s\n`, "-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true", topic)
		}},
		{"kafkajs", func(t *testing.T, ctx context.Context, addr, topic, group string, want int) []byte {
			out := filepath.Join(t.TempDir(), "consumed.txt")
			runTool(t, ctx, jsDir, node, jsScript, "consume", addr, topic, group, strconv.Itoa(want), out)
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}},
	}
	c := startCluster(t)
	type state struct {
		topic, group string
		committed    map[int32]int64
	}
	states := make([]state, len(clients))
	for i, cl := range clients {
		t.Run("first-run/"+cl.name, func(t *testing.T) {
			st := state{topic: "restart-" + cl.name, group: "restart-" + cl.name}
			c.createTopic(t, st.topic)
			landed, err := producePaced(c.ctx(t, time.Minute), c.addr(), st.topic, "first-", firstRun, 0)
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			ends := c.endOffsets(t, st.topic, landed)
			out := cl.consume(t, c.ctx(t, 2*time.Minute), c.addr(), st.topic, st.group, firstRun)
			if err := checkConsumedLines(out, landed); err != nil {
				t.Fatalf("%s, first run: %v", cl.name, err)
			}
			c.checkCommitted(t, st.group, st.topic, ends)
			st.committed = ends
			states[i] = st
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	c.floe.Restart()
	for i, cl := range clients {
		st := states[i]
		t.Run("after-restart/"+cl.name, func(t *testing.T) {
			c.checkCommitted(t, st.group, st.topic, st.committed)
			more, err := producePaced(c.ctx(t, time.Minute), c.addr(), st.topic, "second-", secondRun, 0)
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			for po := range more {
				if po.o < st.committed[po.p] {
					t.Fatalf("a record produced after the restart landed at %d/%d, below the end offset %d before it", po.p, po.o, st.committed[po.p])
				}
			}
			out := cl.consume(t, c.ctx(t, 2*time.Minute), c.addr(), st.topic, st.group, secondRun)
			if err := checkConsumedLines(out, more); err != nil {
				t.Fatalf("%s, second run in the same group: %v", cl.name, err)
			}
			ends := map[int32]int64{}
			for p, o := range st.committed {
				ends[p] = o
			}
			for po := range more {
				ends[po.p] = max(ends[po.p], po.o+1)
			}
			c.checkCommitted(t, st.group, st.topic, ends)
		})
	}
}

// checkConsumedLines checks a consumer's "partition offset value" lines
// against want (partition/offset -> value): every record exactly once,
// nothing else.
func checkConsumedLines(out []byte, want map[partOffset]string) error {
	var p problems
	seen := map[partOffset]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	lines := 0
	for sc.Scan() {
		lines++
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			p.addf("malformed line %q", sc.Text())
			continue
		}
		part, err1 := strconv.ParseInt(f[0], 10, 32)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			p.addf("malformed line %q", sc.Text())
			continue
		}
		po := partOffset{int32(part), off}
		seen[po]++
		v, ok := want[po]
		switch {
		case !ok:
			p.addf("consumed %d/%d = %q, which this run should not read", po.p, po.o, f[2])
		case seen[po] > 1:
			p.addf("consumed %d/%d twice", po.p, po.o)
		case v != f[2]:
			p.addf("consumed %d/%d = %q, want %q", po.p, po.o, f[2], v)
		}
	}
	missing := 0
	for po := range want {
		if seen[po] == 0 {
			missing++
		}
	}
	if missing > 0 {
		p.addf("%d of the %d records to read were not consumed", missing, len(want))
	}
	return p.err(fmt.Sprintf("%d records consumed, %d to read", lines, len(want)))
}

// TestGroupLogChecker feeds checkGroupLogs hand-made logs: the ones a
// correct group produces must pass (with the duplicates a crash explains
// counted), and each kind of broken log must be caught.
func TestGroupLogChecker(t *testing.T) {
	produced := map[partOffset]string{}
	for o := range int64(10) {
		produced[partOffset{0, o}] = "a" + strconv.FormatInt(o, 10)
		produced[partOffset{1, o}] = "b" + strconv.FormatInt(o, 10)
	}
	// logBuilder writes one consumer's log with times from a shared clock.
	var clock int64
	type logBuilder struct{ evs []groupEvent }
	ev := func(l *logBuilder, e groupEvent) *logBuilder {
		clock += 10
		e.at = clock
		l.evs = append(l.evs, e)
		return l
	}
	assign := func(l *logBuilder, kind byte, parts ...int32) { ev(l, groupEvent{kind: kind, partitions: parts}) }
	read := func(l *logBuilder, part int32, from, to int64) {
		for o := from; o < to; o++ {
			ev(l, groupEvent{kind: 'R', partition: part, offset: o, value: produced[partOffset{part, o}]})
		}
	}
	commit := func(l *logBuilder, part int32, off int64) { ev(l, groupEvent{kind: 'C', partition: part, offset: off}) }

	// scenario returns the logs of: c1 reads both partitions, commits
	// partition 0 up to 6 and partition 1 up to 5, reads 6..7 of
	// partition 0 and crashes; c2 (assigned after c1's last line) goes on
	// from the commits. mutate may change c2's steps.
	scenario := func(c2Start0 int64, c2AssignEarly bool) (map[string][]groupEvent, map[string]bool) {
		clock = 0
		c1, c2 := &logBuilder{}, &logBuilder{}
		ev(c1, groupEvent{kind: 'S'})
		ev(c2, groupEvent{kind: 'S'})
		assign(c1, 'A', 0, 1)
		if c2AssignEarly {
			assign(c2, 'A', 0, 1)
		}
		read(c1, 0, 0, 6)
		read(c1, 1, 0, 5)
		commit(c1, 0, 6)
		commit(c1, 1, 5)
		read(c1, 0, 6, 8)
		if !c2AssignEarly {
			assign(c2, 'A', 0, 1)
		}
		read(c2, 0, c2Start0, 10)
		read(c2, 1, 5, 10)
		commit(c2, 0, 10)
		commit(c2, 1, 10)
		assign(c2, 'V', 0, 1)
		ev(c2, groupEvent{kind: 'X'})
		return map[string][]groupEvent{"c1": c1.evs, "c2": c2.evs}, map[string]bool{"c1": true}
	}

	logs, crashed := scenario(6, false)
	rep, err := checkGroupLogs(produced, logs, crashed, false)
	if err != nil {
		t.Fatalf("a correct group's logs are rejected: %v", err)
	}
	if rep.dupCrash != 2 || rep.dupUncommitted != 0 || rep.dupRecords != 2 {
		t.Fatalf("duplicates: %d after a crash, %d uncommitted, %d records; want 2, 0, 2", rep.dupCrash, rep.dupUncommitted, rep.dupRecords)
	}

	bad := map[string]func() (map[string][]groupEvent, map[string]bool){
		"consumed again below a commit": func() (map[string][]groupEvent, map[string]bool) { return scenario(4, false) },
		"skipped records":               func() (map[string][]groupEvent, map[string]bool) { return scenario(9, false) },
		"two owners at once":            func() (map[string][]groupEvent, map[string]bool) { return scenario(6, true) },
		"gap within an assignment": func() (map[string][]groupEvent, map[string]bool) {
			logs, crashed := scenario(6, false)
			logs["c1"] = slices.DeleteFunc(logs["c1"], func(e groupEvent) bool { return e.kind == 'R' && e.partition == 1 && e.offset == 2 })
			return logs, crashed
		},
		"wrong value": func() (map[string][]groupEvent, map[string]bool) {
			logs, crashed := scenario(6, false)
			logs["c2"][3].value = "a-not-produced"
			return logs, crashed
		},
		"commit going back": func() (map[string][]groupEvent, map[string]bool) {
			logs, crashed := scenario(6, false)
			for i, e := range logs["c2"] {
				if e.kind == 'C' && e.partition == 1 {
					logs["c2"][i].offset = 4
				}
			}
			return logs, crashed
		},
		"no clean exit": func() (map[string][]groupEvent, map[string]bool) {
			logs, _ := scenario(6, false)
			return logs, map[string]bool{}
		},
	}
	for name, mk := range bad {
		logs, crashed := mk()
		if _, err := checkGroupLogs(produced, logs, crashed, false); err == nil {
			t.Errorf("%s: not caught", name)
		} else {
			t.Logf("%s: %v", name, strings.ReplaceAll(err.Error(), "\n", " | "))
		}
	}
}
