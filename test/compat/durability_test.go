package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/floeproc"
)

// Durability (DESIGN invariants 1, 2 and 4): a producer runs on while floe
// is SIGKILLed and restarted, then (external etcd) killed with its data
// directory deleted. Afterwards every acknowledged record must be readable
// at its acknowledged offset with its value, and every partition's offsets
// must be dense from 0. Records that landed without an acknowledgement
// (the ack was lost in the crash) are allowed.
func TestDurability(t *testing.T) {
	t.Run("kill-restart", func(t *testing.T) {
		f := floeproc.Start(t, floeproc.Options{})
		runDurability(t, f, []disruption{killRestart, killRestart, killRestart})
	})
	t.Run("wipe-data-dir", func(t *testing.T) {
		f := floeproc.Start(t, floeproc.Options{ExternalEtcd: true})
		runDurability(t, f, []disruption{killWipeRestart, killWipeRestart})
	})
}

type disruption struct {
	name string
	do   func(f *floeproc.Floe)
}

var (
	killRestart     = disruption{"SIGKILL, restart", func(f *floeproc.Floe) { f.Kill(); f.Restart() }}
	killWipeRestart = disruption{"SIGKILL, delete data dir, restart", func(f *floeproc.Floe) { f.Kill(); f.WipeDataDir(); f.Restart() }}
)

const (
	durableTopic = "durable"
	// durableRate bounds the producer (records per second) so a run's
	// data stays small enough to verify in seconds.
	durableRate = 4000
	// steadyPhase is how long the producer runs between disruptions.
	steadyPhase = 3 * time.Second
)

// durableValue is the value of the seq'th record produced: it names its
// seq, so any record read back can be checked on its own.
func durableValue(seq int) []byte {
	v := recordValue(seq)
	return append([]byte("d-"+strconv.Itoa(seq)+"|"), v[:len(v)%300]...)
}

func parseDurableValue(v []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(v, []byte("d-"))
	if !ok {
		return 0, false
	}
	num, _, ok := bytes.Cut(rest, []byte("|"))
	if !ok {
		return 0, false
	}
	seq, err := strconv.Atoi(string(num))
	if err != nil || !bytes.Equal(v, durableValue(seq)) {
		return 0, false
	}
	return seq, true
}

// ack is one acknowledged record.
type ack struct {
	partition int32
	offset    int64
	seq       int
}

// ackLog collects a producer's acknowledgements and failures.
type ackLog struct {
	mu     sync.Mutex
	acks   []ack
	errs   map[string]int // failure message -> count
	failed int
}

func (l *ackLog) record(r *kgo.Record, seq int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		l.errs[err.Error()]++
		return
	}
	l.acks = append(l.acks, ack{r.Partition, r.Offset, seq})
}

func (l *ackLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

func (l *ackLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for msg, n := range l.errs {
		parts = append(parts, fmt.Sprintf("%dx %s", n, msg))
	}
	return fmt.Sprintf("%d acknowledged, %d failed [%s]", len(l.acks), l.failed, strings.Join(parts, "; "))
}

func runDurability(t *testing.T, f *floeproc.Floe, disruptions []disruption) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(f.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if resp, err := adm.CreateTopic(ctx, numPartitions, 1, nil, durableTopic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(f.KafkaAddr()),
		kgo.DefaultProduceTopic(durableTopic),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(4*durableRate),
		// Give up on a record after a while: it counts as unacknowledged
		// (it may still have landed), and the producer goes on.
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	acks := &ackLog{errs: map[string]int{}}
	stop := make(chan struct{})
	produced := make(chan int, 1)
	go func() {
		seq := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				produced <- seq
				return
			case <-tick.C:
			}
			for range durableRate / 100 {
				s := seq
				rec := &kgo.Record{Key: recordKey(s), Value: durableValue(s)}
				prod.Produce(ctx, rec, func(r *kgo.Record, err error) { acks.record(r, s, err) })
				seq++
			}
		}
	}()

	// waitProgress waits for acknowledgements beyond n: the producer is
	// making progress against the current process.
	waitProgress := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for acks.count() <= n+durableRate/10 {
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("no acknowledgements for 30s %s: %s", what, acks.summary())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	time.Sleep(steadyPhase)
	waitProgress("before the first disruption", 0)
	for i, d := range disruptions {
		before := acks.count()
		start := time.Now()
		d.do(f)
		t.Logf("disruption %d (%s) took %v; %d acknowledged before it", i+1, d.name, time.Since(start).Round(time.Millisecond), before)
		waitProgress(fmt.Sprintf("after disruption %d (%s)", i+1, d.name), acks.count())
		time.Sleep(steadyPhase)
	}
	close(stop)
	total := <-produced
	flushCtx, flushCancel := context.WithTimeout(ctx, 60*time.Second)
	defer flushCancel()
	if err := prod.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v (%s)", err, acks.summary())
	}
	t.Logf("producer: %d records sent, %s", total, acks.summary())

	logRecs := readAll(t, f.KafkaAddr(), durableTopic, numPartitions)
	landed, err := checkDurable(acks.acks, logRecs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("log: %d records, all %d acknowledged ones at their offsets, offsets dense", landed, len(acks.acks))
}

// checkDurable checks the log against the acknowledgements: dense offsets,
// only records we produced, and every acknowledged one at its offset.
func checkDurable(acks []ack, logRecs map[int32][]*kgo.Record) (landed int, err error) {
	var p problems
	for part, recs := range logRecs {
		for i, r := range recs {
			if r.Offset != int64(i) {
				p.addf("partition %d: record #%d has offset %d: offsets are not dense", part, i, r.Offset)
				break
			}
			seq, ok := parseDurableValue(r.Value)
			if !ok || !bytes.Equal(r.Key, recordKey(seq)) {
				p.addf("partition %d offset %d: a record we never produced: key %q, value %.40q", part, r.Offset, r.Key, r.Value)
			}
			landed++
		}
	}
	seen := map[[2]int64]int{}
	for _, a := range acks {
		k := [2]int64{int64(a.partition), a.offset}
		if prev, dup := seen[k]; dup {
			p.addf("partition %d offset %d acknowledged twice: records %d and %d", a.partition, a.offset, prev, a.seq)
			continue
		}
		seen[k] = a.seq
		recs := logRecs[a.partition]
		if a.offset < 0 || a.offset >= int64(len(recs)) {
			p.addf("record %d acknowledged at partition %d offset %d, but the partition ends at %d: lost", a.seq, a.partition, a.offset, len(recs))
			continue
		}
		r := recs[a.offset]
		if !bytes.Equal(r.Value, durableValue(a.seq)) {
			p.addf("record %d acknowledged at partition %d offset %d, which holds %.40q", a.seq, a.partition, a.offset, r.Value)
		}
	}
	if err := p.err(fmt.Sprintf("%d acknowledged records, %d in the log", len(acks), landed)); err != nil {
		return landed, err
	}
	if len(acks) == 0 {
		return landed, errors.New("nothing was acknowledged")
	}
	return landed, nil
}

// readAll reads every partition of topic from offset 0 to its end offset
// (as listed when it starts) with franz-go, and returns the records by
// partition in the order read.
func readAll(t *testing.T, addr, topic string, partitions int) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), consumeTimeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	cl.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	offsets := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	remaining := 0
	for p := range int32(partitions) {
		e, ok := ends.Lookup(topic, p)
		if !ok {
			t.Fatalf("no end offset for partition %d", p)
		}
		want[p] = e.Offset
		if e.Offset > 0 {
			offsets[p] = kgo.NewOffset().At(0)
			remaining++
		}
	}
	out := map[int32][]*kgo.Record{}
	if remaining == 0 {
		return out
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxPartitionBytes(8<<20),
		// A partition whose fetch failed (KAFKA_STORAGE_ERROR) waits for a
		// metadata refresh, by default at most every 5s: too slow for a
		// test that makes reads fail on purpose.
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for remaining > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s back: %v; read so far per partition: %v of %v", topic, ctx.Err(), lens(out), want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v (retrying)", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(out[r.Partition])) >= want[r.Partition] {
				return // produced after we listed the end
			}
			out[r.Partition] = append(out[r.Partition], r)
			if int64(len(out[r.Partition])) == want[r.Partition] {
				remaining--
			}
		})
	}
	return out
}

func lens(m map[int32][]*kgo.Record) map[int32]int {
	out := map[int32]int{}
	for p, recs := range m {
		out[p] = len(recs)
	}
	return out
}
