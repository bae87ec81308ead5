package chaos

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxListed bounds how many instances of one kind of problem are listed.
const maxListed = 10

// logData is the whole topic as a fresh consumer read it at the end.
type logData struct {
	starts, ends map[int32]int64
	at           map[int32]map[int64]string // partition -> offset -> id ("?" for a foreign value)
	records      int
	readProblems []string
	readTime     time.Duration
}

// readLog reads every partition from its start offset to its end offset
// with a plain (non-group) consumer, checking that offsets arrive in
// increasing order.
func readLog(t *testing.T, seeds []string) *logData {
	t.Helper()
	start := time.Now()
	adm := newAdmin(t, seeds)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := &logData{starts: map[int32]int64{}, ends: map[int32]int64{}, at: map[int32]map[int64]string{}}
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error), into map[int32]int64, what string) {
		lo, err := f(ctx, topic)
		if err != nil {
			t.Fatalf("list %s offsets: %v", what, err)
		}
		lo.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				t.Fatalf("list %s offset of %d: %v", what, o.Partition, o.Err)
			}
			into[o.Partition] = o.Offset
		})
	}
	list(adm.ListStartOffsets, d.starts, "start")
	list(adm.ListEndOffsets, d.ends, "end")

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	last := map[int32]int64{}
	remaining := func() []string {
		var out []string
		for p := range int32(numParts) {
			l, ok := last[p]
			if !ok {
				l = d.starts[p] - 1
			}
			if l < d.ends[p]-1 {
				out = append(out, fmt.Sprintf("%d at %d of %d", p, l+1, d.ends[p]))
			}
		}
		return out
	}
	fetchErrs := map[string]int{}
	for len(remaining()) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			d.readProblems = append(d.readProblems, fmt.Sprintf("reading the log back did not reach the end offsets in 3m: partitions %s; fetch errors %v",
				strings.Join(remaining(), ", "), fetchErrs))
			break
		}
		fs.EachError(func(_ string, _ int32, err error) { fetchErrs[err.Error()]++ })
		fs.EachRecord(func(r *kgo.Record) {
			if l, ok := last[r.Partition]; ok && r.Offset <= l {
				d.readProblems = append(d.readProblems, fmt.Sprintf("partition %d: offset %d read after offset %d (out of order)", r.Partition, r.Offset, l))
			}
			last[r.Partition] = r.Offset
			m := d.at[r.Partition]
			if m == nil {
				m = map[int64]string{}
				d.at[r.Partition] = m
			}
			id, ok := idOf(r.Value)
			if !ok {
				id = "?" + string(r.Value)
			}
			if prev, dup := m[r.Offset]; dup && prev != id {
				d.readProblems = append(d.readProblems, fmt.Sprintf("partition %d: offset %d read as %s and as %s", r.Partition, r.Offset, prev, id))
			}
			m[r.Offset] = id
			d.records++
		})
	}
	d.readTime = time.Since(start)
	return d
}

// check compares the log with what the producers were acknowledged and
// what the group consumers received, and returns every problem found.
func check(d *logData, rec *recorder) []string {
	var problems []string
	add := func(kind string, list []string) {
		if len(list) == 0 {
			return
		}
		shown := list[:min(len(list), maxListed)]
		more := ""
		if len(list) > maxListed {
			more = fmt.Sprintf(" (and %d more)", len(list)-maxListed)
		}
		problems = append(problems, fmt.Sprintf("%s: %d: %s%s", kind, len(list), strings.Join(shown, "; "), more))
	}
	add("reading the log", d.readProblems)

	// Dense offsets from 0, nothing past the end offset, every value ours.
	var gaps, foreign, beyond, startMoved []string
	where := map[string][]string{} // id -> positions
	for p := range int32(numParts) {
		if d.starts[p] != 0 {
			startMoved = append(startMoved, fmt.Sprintf("partition %d starts at %d", p, d.starts[p]))
		}
		m := d.at[p]
		for off := d.starts[p]; off < d.ends[p]; off++ {
			id, ok := m[off]
			if !ok {
				gaps = append(gaps, fmt.Sprintf("%d/%d", p, off))
				continue
			}
			if strings.HasPrefix(id, "?") {
				foreign = append(foreign, fmt.Sprintf("%d/%d: %.40q", p, off, id[1:]))
				continue
			}
			where[id] = append(where[id], fmt.Sprintf("%d/%d", p, off))
			if _, part, _, ok := parseID(id); !ok || part != p {
				foreign = append(foreign, fmt.Sprintf("%d/%d: %s produced to another partition", p, off, id))
			}
		}
		for off := range m {
			if off >= d.ends[p] {
				beyond = append(beyond, fmt.Sprintf("%d/%d (end offset %d)", p, off, d.ends[p]))
			}
		}
	}
	slices.Sort(beyond)
	add("log start offset moved (no retention is configured)", startMoved)
	add("offsets missing (not dense)", gaps)
	add("records beyond the end offset", beyond)
	add("values the producers never sent", foreign)

	// No value twice: the producers are idempotent, so even a retried
	// batch must not be written again.
	var dups []string
	for id, ws := range where {
		if len(ws) > 1 {
			dups = append(dups, fmt.Sprintf("%s at %s", id, strings.Join(ws, " and ")))
		}
	}
	slices.Sort(dups)
	add("duplicated records", dups)

	// Per producer and partition, records are in the log in the order
	// they were produced (idempotence keeps order across retries).
	var reordered []string
	for p := range int32(numParts) {
		lastSeq := map[int]int64{}
		lastOff := map[int]int64{}
		for off := d.starts[p]; off < d.ends[p]; off++ {
			prod, _, seq, ok := parseID(d.at[p][off])
			if !ok {
				continue
			}
			if l, seen := lastSeq[prod]; seen && seq <= l {
				reordered = append(reordered, fmt.Sprintf("partition %d: producer %d's seq %d at offset %d after seq %d at offset %d", p, prod, seq, off, l, lastOff[prod]))
			}
			lastSeq[prod], lastOff[prod] = seq, off
		}
	}
	add("records out of production order", reordered)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	add("offsets acknowledged twice", rec.ackedTwice)

	// Every acknowledged record is in the log at the offset it was acked at.
	var lost []string
	for p, m := range rec.acked {
		for off, id := range m {
			if got := d.at[p][off]; got != id {
				found := "nowhere in the log"
				if ws := where[id]; len(ws) > 0 {
					found = "at " + strings.Join(ws, ",")
				}
				lost = append(lost, fmt.Sprintf("%s acked at %d/%d, log has %q there, the record is %s", id, p, off, got, found))
			}
		}
	}
	slices.Sort(lost)
	add("ACKNOWLEDGED RECORDS LOST", lost)

	// Acked offsets per producer and partition grow with the sequence.
	var ackOrder []string
	for k, es := range rec.ackOrder {
		es = slices.Clone(es)
		sort.Slice(es, func(i, j int) bool { return es[i].seq < es[j].seq })
		for i := 1; i < len(es); i++ {
			if es[i].offset <= es[i-1].offset {
				ackOrder = append(ackOrder, fmt.Sprintf("producer %d partition %d: seq %d acked at %d, seq %d at %d",
					k[0], k[1], es[i-1].seq, es[i-1].offset, es[i].seq, es[i].offset))
			}
		}
	}
	add("acknowledged offsets out of production order", ackOrder)

	// What the group consumers received is what the log holds: a consumer
	// never read a record that a fenced leader wrote and lost.
	var phantom []string
	for p, m := range rec.seen {
		for off, id := range m {
			if got, ok := d.at[p][off]; !ok || got != id {
				phantom = append(phantom, fmt.Sprintf("consumer received %s at %d/%d, log has %q", id, p, off, got))
			}
		}
	}
	slices.Sort(phantom)
	add("group consumers received records the log does not hold", phantom)
	add("group consumers received one offset with two values", rec.seenBad)
	return problems
}

// checkGroup waits until the group's committed offsets reach the end
// offsets (the load has stopped, the consumers still run); a group that
// does not get there within groupCatchUp is stuck.
func checkGroup(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	start := time.Now()
	deadline := start.Add(groupCatchUp)
	var behind []string
	for {
		behind = behind[:0]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := adm.ListEndOffsets(ctx, topic)
		var committed kadm.OffsetResponses
		if err == nil {
			committed, err = adm.FetchOffsets(ctx, group)
		}
		cancel()
		if err != nil {
			behind = append(behind, err.Error())
		} else {
			for p := range int32(numParts) {
				end, ok := ends.Lookup(topic, p)
				c, cok := committed.Lookup(topic, p)
				switch {
				case !ok || end.Err != nil:
					behind = append(behind, fmt.Sprintf("%d: end offset unknown (%v)", p, end.Err))
				case !cok || c.Err != nil:
					behind = append(behind, fmt.Sprintf("%d: nothing committed (end %d)", p, end.Offset))
				case c.At != end.Offset:
					behind = append(behind, fmt.Sprintf("%d: committed %d, end %d", p, c.At, end.Offset))
				}
			}
		}
		if len(behind) == 0 {
			t.Logf("chaos: consumer group committed the end offsets %v after the load stopped", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			desc, derr := adm.DescribeGroups(ctx, group)
			cancel()
			state := fmt.Sprint(derr)
			if g, ok := desc[group]; ok {
				state = fmt.Sprintf("state %s, %d members, coordinator %d", g.State, len(g.Members), g.Coordinator.NodeID)
			}
			return []string{fmt.Sprintf("CONSUMER GROUP STUCK: %v after the load stopped, committed offsets still behind (%s): %s",
				groupCatchUp, state, strings.Join(behind, "; "))}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// buildReport renders the run: the fault log, a per-second availability
// timeline, the longest unavailability gaps and the checker's verdict.
func buildReport(rec *recorder, d *logData, ch *chaos, proxy *s3Proxy, seed uint64, faultsStart, faultsEnd time.Time, problems []string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	rel := func(t time.Time) string { return fmt.Sprintf("+%.1fs", t.Sub(rec.start).Seconds()) }

	w("=== floe chaos report (seed %d) ===", seed)
	w("times are seconds since the load started at %s (wall clock, as in the process logs)", rec.start.Format("15:04:05.000"))
	w("faults from %s to %s (%v); load from +0s to %s", rel(faultsStart), rel(faultsEnd),
		faultsEnd.Sub(faultsStart).Round(time.Second), rel(rec.loadEnded))
	w("")
	// Each fault with the longest per-partition gap in acks that overlaps
	// it (from its start to a few seconds after the process was back):
	// roughly, how long its partitions were unavailable.
	w("faults (gap: the longest time a partition went without an ack, overlapping the fault):")
	ch.mu.Lock()
	faults := slices.Clone(ch.faults)
	ch.mu.Unlock()
	sort.Slice(faults, func(i, j int) bool { return faults[i].start.Before(faults[j].start) })
	counts := map[string]int{}
	for _, f := range faults {
		counts[f.kind]++
		var worst gap
		for _, g := range rec.gaps {
			if g.to.After(f.start) && g.from.Before(f.end.Add(5*time.Second)) && g.length() > worst.length() {
				worst = g
			}
		}
		gapS := "gap <" + gapReport.String()
		if worst.length() > 0 {
			gapS = fmt.Sprintf("gap %v (p%d)", worst.length().Round(100*time.Millisecond), worst.partition)
		}
		whole := ""
		if !f.whole.IsZero() {
			whole = fmt.Sprintf(", cluster whole %v later", f.whole.Sub(f.end).Round(100*time.Millisecond))
		}
		w("  %8s  %-19s %-38s %7v  %-15s%s%s", rel(f.start), f.kind, f.target, f.end.Sub(f.start).Round(100*time.Millisecond), gapS, f.note, whole)
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%d x %s", n, k))
	}
	slices.Sort(kinds)
	w("  totals: %s", strings.Join(kinds, ", "))
	w("  object store proxy: %s", proxy.stats())
	w("")

	// Totals.
	attempted, acked := 0, 0
	for _, s := range rec.secs {
		attempted += s.attempted
		acked += s.okByAttempt
	}
	w("records: %d attempted, %d acknowledged, %d failed; log holds %d (read back in %v); group consumers received %d (%d rewinds outside a rebalance)",
		attempted, acked, rec.failed, d.records, d.readTime.Round(time.Millisecond), rec.consumed.Load(), rec.rewinds.Load())
	if len(rec.failures) > 0 {
		w("produce errors:")
		for _, e := range sortedCounts(rec.failures) {
			w("  %s", e)
		}
	}
	if len(rec.reqErrText) > 0 {
		w("produce requests lost on the connection (timed out or reset; the client retried them):")
		for i, e := range sortedCounts(rec.reqErrText) {
			if i == maxListed {
				w("  ...")
				break
			}
			w("  %s", e)
		}
	}
	if len(rec.fetchErrs) > 0 {
		w("group consumer fetch errors (retried by the client):")
		for i, e := range sortedCounts(rec.fetchErrs) {
			if i == maxListed {
				w("  ...")
				break
			}
			w("  %s", e)
		}
	}
	w("")

	// Per-second availability strip: for the records attempted in each
	// second, the share acknowledged within fastAck.
	w("availability per second (records attempted that second acked within %v):", fastAck)
	w("  '#' >=99%%  '+' >=90%%  '-' >=50%%  '.' >0%%  '_' 0%%  ' ' nothing attempted;  markers below: K kill, S stop, T term, E etcd kill, O object-store window")
	const perRow = 60
	for row := 0; row < len(rec.secs); row += perRow {
		var strip, marks strings.Builder
		for i := row; i < min(row+perRow, len(rec.secs)); i++ {
			s := rec.secs[i]
			strip.WriteByte(availChar(s))
			marks.WriteByte(eventChar(s.events))
		}
		w("  %4ds |%s|", row, strip.String())
		w("        %s", marks.String())
	}
	w("")

	// Ten-second table.
	w("timeline (10s windows):")
	w("  %-9s %9s %9s %7s %8s %9s %7s %9s %8s  %s", "window", "attempted", "acked", "failed", "ok<1s", "max-lat", "req-err", "consumed", "lag", "events")
	for row := 0; row < len(rec.secs); row += 10 {
		var att, ack, fail, fast, cons, reqErrs int
		var maxLat time.Duration
		lag := int64(-1)
		var evs []string
		for i := row; i < min(row+10, len(rec.secs)); i++ {
			s := rec.secs[i]
			att += s.attempted
			ack += s.acked
			fail += s.failed
			fast += s.fast
			cons += s.consumed
			reqErrs += s.reqErrs
			maxLat = max(maxLat, s.maxLatency)
			if s.lag >= 0 {
				lag = s.lag
			}
			evs = append(evs, s.events...)
		}
		pct := "-"
		if att > 0 {
			pct = fmt.Sprintf("%.1f%%", 100*float64(fast)/float64(att))
		}
		lagS := "-"
		if lag >= 0 {
			lagS = fmt.Sprint(lag)
		}
		w("  %-9s %9d %9d %7d %8s %9v %7d %9d %8s  %s", fmt.Sprintf("%d-%ds", row, row+10), att, ack, fail, pct, maxLat.Round(time.Millisecond), reqErrs, cons, lagS, strings.Join(evs, ", "))
	}
	w("")

	// Unavailability.
	w("longest time without any acknowledged record (whole cluster): %v (%s to %s)",
		rec.anyGap.length().Round(time.Millisecond), rel(rec.anyGap.from), rel(rec.anyGap.to))
	gaps := slices.Clone(rec.gaps)
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].length() > gaps[j].length() })
	w("longest per-partition unavailability (no ack on the partition; %d gaps over %v):", len(gaps), gapReport)
	for i, g := range gaps {
		if i == maxListed {
			break
		}
		w("  partition %2d: %7v  %s to %s", g.partition, g.length().Round(time.Millisecond), rel(g.from), rel(g.to))
	}
	w("")
	if len(problems) == 0 {
		w("VERDICT: ok: no acknowledged record lost, no duplicate, offsets dense and in order, consumer group caught up")
	} else {
		w("VERDICT: %d problems:", len(problems))
		for _, p := range problems {
			w("  - %s", p)
		}
	}
	return b.String()
}

func availChar(s second) byte {
	if s.attempted == 0 {
		return ' '
	}
	f := float64(s.fast) / float64(s.attempted)
	switch {
	case f >= 0.99:
		return '#'
	case f >= 0.90:
		return '+'
	case f >= 0.50:
		return '-'
	case f > 0:
		return '.'
	default:
		return '_'
	}
}

func eventChar(evs []string) byte {
	if len(evs) == 0 {
		return ' '
	}
	switch e := evs[0]; {
	case strings.HasPrefix(e, "kill etcd"):
		return 'E'
	case strings.HasPrefix(e, "kill"):
		return 'K'
	case strings.HasPrefix(e, "stop"):
		return 'S'
	case strings.HasPrefix(e, "term"):
		return 'T'
	case strings.HasPrefix(e, "s3"):
		return 'O'
	default:
		return '|'
	}
}

// sortedCounts renders "count x text", most frequent first.
func sortedCounts(m map[string]int) []string {
	type kv struct {
		k string
		n int
	}
	var kvs []kv
	for k, n := range m {
		kvs = append(kvs, kv{k, n})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].n > kvs[j].n || (kvs[i].n == kvs[j].n && kvs[i].k < kvs[j].k) })
	out := make([]string, len(kvs))
	for i, e := range kvs {
		out[i] = fmt.Sprintf("%6d x %s", e.n, e.k)
	}
	return out
}
