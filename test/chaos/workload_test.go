package chaos

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// valueSize is the size of every produced value; the id comes first, then
// '|' and padding.
const valueSize = 100

// recordID is "<producer>-<partition>-<seq>": unique across the run, and
// per producer and partition increasing in production order.
func recordID(prod int, part int32, seq int64) string {
	return fmt.Sprintf("%d-%d-%d", prod, part, seq)
}

func makeValue(id string) []byte {
	v := make([]byte, valueSize)
	n := copy(v, id)
	v[n] = '|'
	for i := n + 1; i < len(v); i++ {
		v[i] = 'x'
	}
	return v
}

// idOf returns the id of a produced value ("" and false for anything else).
func idOf(v []byte) (string, bool) {
	s := string(v)
	i := strings.IndexByte(s, '|')
	if i < 0 {
		return "", false
	}
	return s[:i], true
}

// parseID splits an id into producer, partition and sequence.
func parseID(id string) (prod int, part int32, seq int64, ok bool) {
	f := strings.Split(id, "-")
	if len(f) != 3 {
		return 0, 0, 0, false
	}
	pr, err1 := strconv.Atoi(f[0])
	pa, err2 := strconv.ParseInt(f[1], 10, 32)
	sq, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return pr, int32(pa), sq, true
}

// second is what happened in one second of the run.
type second struct {
	attempted   int           // records handed to a producer
	acked       int           // success acks that arrived in this second
	failed      int           // error callbacks that arrived in this second
	okByAttempt int           // records attempted in this second that were acked
	fast        int           // ... and acked within fastAck
	maxLatency  time.Duration // slowest ack of a record attempted in this second
	consumed    int           // records group consumers received
	reqErrs     int           // produce requests that failed on the connection (timeouts, resets); the client retries
	lag         int64         // the group's committed lag, sampled (-1: none)
	events      []string      // faults that started in this second
}

// fastAck is the latency under which an ack counts as "available" in the
// timeline.
const fastAck = time.Second

// gap is a time a partition (or the whole cluster, partition -1) went
// without any successful ack while the load ran.
type gap struct {
	partition int32
	from, to  time.Time
}

func (g gap) length() time.Duration { return g.to.Sub(g.from) }

// recorder keeps everything the producers were told and the consumers saw.
type recorder struct {
	start time.Time

	mu         sync.Mutex
	secs       []second
	acked      map[int32]map[int64]string // partition -> offset -> id
	ackOrder   map[[2]int32][]ackEntry    // (producer, partition) -> (seq, offset) of its acks
	ackedTwice []string
	failures   map[string]int // produce error text -> count
	failed     int
	lastAck    map[int32]time.Time
	lastAny    time.Time
	gaps       []gap // per-partition gaps longer than gapReport
	anyGap     gap   // longest cluster-wide gap

	seen       map[int32]map[int64]string // what group consumers received
	seenBad    []string                   // one offset received with two values
	consumed   atomic.Int64
	fetchErrs  map[string]int
	reqErrText map[string]int // produce request connection errors by text
	rewinds    atomic.Int64   // a consumer saw an offset at or below one it saw before, outside a rebalance
	loadEnded  time.Time
}

type ackEntry struct {
	seq    int64
	offset int64
}

// gapReport is the shortest per-partition gap kept for the report.
const gapReport = time.Second

func newRecorder(start time.Time) *recorder {
	return &recorder{
		start:      start,
		acked:      map[int32]map[int64]string{},
		ackOrder:   map[[2]int32][]ackEntry{},
		failures:   map[string]int{},
		lastAck:    map[int32]time.Time{},
		lastAny:    start,
		seen:       map[int32]map[int64]string{},
		fetchErrs:  map[string]int{},
		reqErrText: map[string]int{},
	}
}

// sec returns the bucket of t; mu must be held.
func (r *recorder) sec(t time.Time) *second {
	i := int(t.Sub(r.start) / time.Second)
	if i < 0 {
		i = 0
	}
	for len(r.secs) <= i {
		r.secs = append(r.secs, second{lag: -1})
	}
	return &r.secs[i]
}

func (r *recorder) attempt(t time.Time) {
	r.mu.Lock()
	r.sec(t).attempted++
	r.mu.Unlock()
}

func (r *recorder) event(format string, args ...any) {
	r.mu.Lock()
	s := r.sec(time.Now())
	s.events = append(s.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) sampleLag(lag int64) {
	r.mu.Lock()
	r.sec(time.Now()).lag = lag
	r.mu.Unlock()
}

// ack records a produce callback for a record attempted at sent.
func (r *recorder) ack(prod int, seq int64, rec *kgo.Record, sent time.Time, err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed++
		r.sec(now).failed++
		r.failures[err.Error()]++
		return
	}
	id, _ := idOf(rec.Value)
	p := rec.Partition
	r.sec(now).acked++
	at := r.sec(sent)
	at.okByAttempt++
	lat := now.Sub(sent)
	if lat < fastAck {
		at.fast++
	}
	at.maxLatency = max(at.maxLatency, lat)
	if r.acked[p] == nil {
		r.acked[p] = map[int64]string{}
	}
	if prev, dup := r.acked[p][rec.Offset]; dup {
		r.ackedTwice = append(r.ackedTwice, fmt.Sprintf("offset %d/%d acknowledged for %s and %s", p, rec.Offset, prev, id))
	}
	r.acked[p][rec.Offset] = id
	k := [2]int32{int32(prod), p}
	r.ackOrder[k] = append(r.ackOrder[k], ackEntry{seq, rec.Offset})
	last, ok := r.lastAck[p]
	if !ok {
		last = r.start
	}
	if now.Sub(last) > gapReport {
		r.gaps = append(r.gaps, gap{p, last, now})
	}
	r.lastAck[p] = now
	if g := (gap{-1, r.lastAny, now}); g.length() > r.anyGap.length() {
		r.anyGap = g
	}
	r.lastAny = now
}

// consumedRecord records what a group consumer received.
func (r *recorder) consumedRecord(rec *kgo.Record) {
	r.consumed.Add(1)
	id, _ := idOf(rec.Value)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sec(time.Now()).consumed++
	m := r.seen[rec.Partition]
	if m == nil {
		m = map[int64]string{}
		r.seen[rec.Partition] = m
	}
	if prev, ok := m[rec.Offset]; ok && prev != id {
		r.seenBad = append(r.seenBad, fmt.Sprintf("offset %d/%d received as %s and later as %s", rec.Partition, rec.Offset, prev, id))
	}
	m[rec.Offset] = id
}

var ephemeralPort = regexp.MustCompile(`(127\.0\.0\.1):\d+`)

// OnBrokerRead implements kgo.HookBrokerRead: it counts produce requests
// whose response never came (the client's timeout, a reset connection).
// franz-go retries them, on the same connection's successor or a new
// leader, with the same producer sequence numbers.
func (r *recorder) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil || key != 0 { // 0: Produce
		return
	}
	msg := ephemeralPort.ReplaceAllString(err.Error(), "${1}:*") // one line per kind, not per connection
	r.mu.Lock()
	r.sec(time.Now()).reqErrs++
	r.reqErrText[fmt.Sprintf("broker %d: %s", meta.NodeID, msg)]++
	r.mu.Unlock()
}

func (r *recorder) fetchError(err error) {
	r.mu.Lock()
	r.fetchErrs[err.Error()]++
	r.mu.Unlock()
}

func (r *recorder) ackCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.acked {
		n += len(m)
	}
	return n
}

// producer produces to every partition of the topic at a fixed rate with an
// idempotent acks=all franz-go client.
type producer struct {
	id    int
	cl    *kgo.Client
	rec   *recorder
	parts int32
	rate  int // records per second
	stop  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
	seq   []int64 // per partition
	err   error   // why the producer stopped early (Produce refused)
}

func startProducer(t *testing.T, id int, seeds []string, topic string, parts int32, rate int, rec *recorder) *producer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(fmt.Sprintf("chaos-producer-%d", id)),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
		// Long enough to ride out any single fault; a record that still
		// fails is reported, never counted as acknowledged.
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.MaxBufferedRecords(200_000),
		// Give up on a silent broker (SIGSTOPped, or stalled on etcd) after
		// 3s and retry, instead of franz-go's 20s (Kafka's request.timeout.ms
		// is 30s): the availability report then shows floe's failover, not
		// the client's patience, and the retries of batches that may have
		// been written exercise idempotent deduplication.
		kgo.ProduceRequestTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(time.Second),
		kgo.WithHooks(rec),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	p := &producer{id: id, cl: cl, rec: rec, parts: parts, rate: rate,
		stop: make(chan struct{}), done: make(chan struct{}), seq: make([]int64, parts)}
	go p.run()
	return p
}

func (p *producer) run() {
	defer close(p.done)
	const tick = 20 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	part := int32(p.id) // producers start on different partitions
	owed := 0.0
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		owed += float64(p.rate) * tick.Seconds()
		for ; owed >= 1; owed-- {
			pt := part % p.parts
			part++
			seq := p.seq[pt]
			p.seq[pt]++
			id := recordID(p.id, pt, seq)
			sent := time.Now()
			p.rec.attempt(sent)
			p.wg.Add(1)
			p.cl.Produce(context.Background(), &kgo.Record{Partition: pt, Value: makeValue(id)}, func(r *kgo.Record, err error) {
				defer p.wg.Done()
				p.rec.ack(p.id, seq, r, sent, err)
			})
		}
	}
}

// finish stops producing and waits (bounded) until every record has its
// callback, then closes the client.
func (p *producer) finish(timeout time.Duration) error {
	close(p.stop)
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := p.cl.Flush(ctx)
	if err != nil {
		// Unflushed records fail with a context error in their callbacks.
		p.cl.PurgeTopicsFromClient()
	}
	p.wg.Wait()
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("producer %d: records still unacknowledged after %v: %w", p.id, timeout, err)
	}
	return nil
}

// consumer is a member of the consumer group, reading continuously and
// committing offsets (autocommit, every second).
type consumer struct {
	id     int
	cl     *kgo.Client
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	last map[int32]int64 // last offset received per partition since it was assigned
}

func startConsumer(t *testing.T, id int, seeds []string, topic, group string, rec *recorder) *consumer {
	t.Helper()
	c := &consumer{id: id, rec: rec, done: make(chan struct{}), last: map[int32]int64{}}
	reset := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		c.mu.Lock()
		for _, ps := range m {
			for _, p := range ps {
				delete(c.last, p)
			}
		}
		c.mu.Unlock()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(fmt.Sprintf("chaos-consumer-%d", id)),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(250*time.Millisecond),
		// A partition (re)assigned starts over from the committed offset.
		// Revocation keeps franz-go's default (a blocking commit).
		kgo.OnPartitionsAssigned(reset),
		kgo.OnPartitionsLost(reset),
	)
	if err != nil {
		t.Fatal(err)
	}
	c.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c
}

func (c *consumer) run(ctx context.Context) {
	defer close(c.done)
	for {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.rec.fetchError(err)
			}
		})
		c.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if last, ok := c.last[r.Partition]; ok && r.Offset <= last {
				c.rec.rewinds.Add(1)
			}
			c.last[r.Partition] = r.Offset
			c.rec.consumedRecord(r)
		})
		c.mu.Unlock()
	}
}

// close stops polling, commits what was polled and leaves the group.
func (c *consumer) close() {
	c.cancel()
	<-c.done
	c.cl.Close()
}
