package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCheckerFindsProblems feeds the checker a log and client history with
// one of each problem it must report, so a chaos run that passes means the
// problems were absent, not unseen.
func TestCheckerFindsProblems(t *testing.T) {
	start := time.Now()
	rec := newRecorder(start)
	d := &logData{starts: map[int32]int64{}, ends: map[int32]int64{}, at: map[int32]map[int64]string{}}
	for p := range int32(numParts) {
		d.at[p] = map[int64]string{}
	}
	put := func(p int32, off int64, id string) {
		d.at[p][off] = id
		if off+1 > d.ends[p] {
			d.ends[p] = off + 1
		}
	}
	ack := func(prod int, p int32, seq, off int64) {
		v := makeValue(recordID(prod, p, seq))
		rec.ack(prod, seq, &kgo.Record{Partition: p, Offset: off, Value: v}, start, nil)
	}
	// Partition 0 is healthy: producer 0's seq 0..2 at offsets 0..2.
	for i := range int64(3) {
		put(0, i, recordID(0, 0, i))
		ack(0, 0, i, i)
	}
	// Partition 1: offset 1 missing (a gap), seq 2 acked at 2 but the log
	// has seq 3 there (lost), and seq 3 twice (a duplicate).
	put(1, 0, recordID(0, 1, 0))
	put(1, 2, recordID(0, 1, 3))
	put(1, 3, recordID(0, 1, 3))
	ack(0, 1, 2, 2)
	// Partition 2: producer 1's seq 5 before seq 4 (out of order).
	put(2, 0, recordID(1, 2, 5))
	put(2, 1, recordID(1, 2, 4))
	// A group consumer read a value at 0/1 that the log does not hold.
	rec.consumedRecord(&kgo.Record{Partition: 0, Offset: 1, Value: makeValue(recordID(1, 0, 9))})

	problems := strings.Join(check(d, rec), "\n")
	for _, want := range []string{
		"offsets missing (not dense): 1: 1/1",
		"ACKNOWLEDGED RECORDS LOST: 1: 0-1-2 acked at 1/2",
		"duplicated records: 1: 0-1-3 at 1/2 and 1/3",
		"records out of production order",
		"group consumers received records the log does not hold: 1",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("the checker did not report %q; it reported:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, "partition 0") {
		t.Errorf("the healthy partition 0 was reported:\n%s", problems)
	}

	// A clean history passes.
	rec = newRecorder(start)
	d = &logData{starts: map[int32]int64{}, ends: map[int32]int64{}, at: map[int32]map[int64]string{}}
	for p := range int32(numParts) {
		d.at[p] = map[int64]string{}
		for i := range int64(4) {
			put(p, i, recordID(int(i%2), p, i/2))
			ack(int(i%2), p, i/2, i)
		}
	}
	if ps := check(d, rec); len(ps) > 0 {
		t.Errorf("a clean history was reported: %v", ps)
	}
}
