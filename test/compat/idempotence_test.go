package compat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/floeproc"
)

// idemRecords is how many records each idempotent producer sends.
const idemRecords = 20_000

// idemValue is record n's value in the idempotence tests: unique per
// prefix and n, 0..299 bytes of padding. py/idempotent_producer.py
// builds the same values.
func idemValue(prefix string, n int) []byte {
	const pad = "abcdefghij"
	v := prefix + strconv.Itoa(n) + "|"
	return []byte(v + strings.Repeat(pad, 30)[:(n*7919)%300])
}

// TestIdempotentProducerThroughCuts produces 20,000 records with an
// idempotent producer through a TCP proxy that breaks its connections at
// random moments: in the middle of a request, in the middle of a
// response, or by swallowing a produce response whole after floe has
// written the batch (the case deduplication is for). floe advertises the
// proxy's address, so every connection of the clients goes through it.
// The clients retry; afterwards the log must hold every acknowledged
// record exactly once, at its acknowledged offset, and no value twice.
func TestIdempotentProducerThroughCuts(t *testing.T) {
	proxy := startCutProxy(t, 20260522)
	f := floeproc.Start(t, floeproc.Options{Args: []string{"--advertised-kafka-addr", proxy.addr()}})
	proxy.setTarget(f.KafkaAddr())
	admin, err := kgo.NewClient(kgo.SeedBrokers(proxy.addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	c := &cluster{floe: f, adm: kadm.NewClient(admin)}

	t.Run("franz-go", func(t *testing.T) {
		topic, prefix := "idempotent-franz", "franz-"
		c.createTopic(t, topic)
		proxy.arm(true)
		landed, failed := produceIdempotentFranz(t, c, proxy.addr(), topic, prefix, 0, nil)
		proxy.arm(false)
		checkIdempotentLog(t, proxy, topic, prefix, landed, failed)
	})
	// The same while floe is SIGKILLed and restarted, then restarted
	// cleanly: the producer state that deduplicates retries is stored
	// with the partition and must survive both.
	t.Run("franz-go-across-restarts", func(t *testing.T) {
		topic, prefix := "idempotent-franz-restarts", "restarts-"
		c.createTopic(t, topic)
		proxy.arm(true)
		landed, failed := produceIdempotentFranz(t, c, proxy.addr(), topic, prefix, 4*time.Second, func() {
			time.Sleep(1300 * time.Millisecond)
			f.Kill()
			f.Restart()
			time.Sleep(time.Second)
			f.Restart()
		})
		proxy.arm(false)
		checkIdempotentLog(t, proxy, topic, prefix, landed, failed)
	})
	t.Run("librdkafka", func(t *testing.T) {
		if out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
			t.Fatalf("%s cannot import confluent_kafka (%v: %s): run `make deps` (python3-confluent-kafka)", python, err, out)
		}
		script, err := filepath.Abs(filepath.Join("py", "idempotent_producer.py"))
		if err != nil {
			t.Fatal(err)
		}
		topic, prefix := "idempotent-librdkafka", "rdkafka-"
		c.createTopic(t, topic)
		acksFile := filepath.Join(t.TempDir(), "acks.bin")
		proxy.arm(true)
		runTool(t, c.ctx(t, 3*time.Minute), "", python, script, "produce", proxy.addr(), topic,
			strconv.Itoa(idemRecords), prefix, acksFile)
		proxy.arm(false)
		acks, err := readAcksFile(acksFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(acks) != idemRecords {
			t.Fatalf("%d acknowledgements for %d records", len(acks), idemRecords)
		}
		landed := map[int]partOffset{}
		var failed []int
		for n, a := range acks {
			if a.Partition < 0 {
				failed = append(failed, n)
				continue
			}
			landed[n] = partOffset{a.Partition, a.Offset}
		}
		checkIdempotentLog(t, proxy, topic, prefix, landed, failed)
	})
}

// produceIdempotentFranz produces the records with franz-go's default,
// idempotent producer, spread over the duration over (0: as fast as it
// goes) while disrupt (if not nil) runs, and returns where each
// acknowledged record landed and which failed.
func produceIdempotentFranz(t *testing.T, c *cluster, addr, topic, prefix string, over time.Duration, disrupt func()) (map[int]partOffset, []int) {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		// Small batches, so that requests fit between the proxy's cuts.
		kgo.ProducerBatchMaxBytes(16<<10),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		// A broken connection makes franz-go refresh its metadata, by
		// default at most every 5 s.
		kgo.MetadataMinAge(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := c.ctx(t, 2*time.Minute)
	var (
		mu     sync.Mutex
		landed = map[int]partOffset{}
		failed []int
		errs   = map[string]int{}
	)
	disrupted := make(chan struct{})
	go func() {
		defer close(disrupted)
		if disrupt != nil {
			disrupt()
		}
	}()
	start := time.Now()
	for n := range idemRecords {
		if over > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(int64(over) * int64(n) / idemRecords))))
		}
		rec := &kgo.Record{Key: []byte("k-" + strconv.Itoa(n)), Value: idemValue(prefix, n)}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, n)
				errs[err.Error()]++
				return
			}
			landed[n] = partOffset{r.Partition, r.Offset}
		})
	}
	<-disrupted
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("franz-go: %d acknowledged, %d failed %v, in %v", len(landed), len(failed), errs, time.Since(start).Round(time.Millisecond))
	return landed, failed
}

// checkIdempotentLog reads topic back (through the disarmed proxy) and
// checks it against the acknowledgements (record number -> where it
// landed): no value twice, only values produced, every acknowledged
// record at its offset, and every record acknowledged.
func checkIdempotentLog(t *testing.T, proxy *cutProxy, topic, prefix string, landed map[int]partOffset, failed []int) {
	t.Helper()
	t.Logf("proxy: %s", proxy.stats())
	logRecs := readAll(t, proxy.addr(), topic, numPartitions)
	var p problems
	where := map[string]partOffset{} // value -> first place seen
	total, dups := 0, 0
	for part, recs := range logRecs {
		for i, r := range recs {
			total++
			if r.Offset != int64(i) {
				p.addf("partition %d: record #%d has offset %d: offsets are not dense", part, i, r.Offset)
			}
			v := string(r.Value)
			if prev, ok := where[v]; ok {
				dups++
				p.addf("value %.40q is in the log twice: at %d/%d and %d/%d", v, prev.p, prev.o, part, r.Offset)
				continue
			}
			where[v] = partOffset{part, r.Offset}
			num, _, _ := strings.Cut(strings.TrimPrefix(v, prefix), "|")
			n, err := strconv.Atoi(num)
			if err != nil || !strings.HasPrefix(v, prefix) || n < 0 || n >= idemRecords || !bytes.Equal(r.Value, idemValue(prefix, n)) {
				p.addf("partition %d offset %d: a value never produced: %.40q", part, r.Offset, v)
			}
		}
	}
	acked := map[partOffset]int{}
	for n, po := range landed {
		if prev, ok := acked[po]; ok {
			p.addf("records %d and %d both acknowledged at %d/%d", prev, n, po.p, po.o)
		}
		acked[po] = n
		got, ok := where[string(idemValue(prefix, n))]
		switch {
		case !ok:
			p.addf("record %d acknowledged at %d/%d is not in the log", n, po.p, po.o)
		case got != po:
			p.addf("record %d acknowledged at %d/%d is in the log at %d/%d", n, po.p, po.o, got.p, got.o)
		}
	}
	if len(failed) > 0 {
		sample := failed[:min(len(failed), 10)]
		p.addf("%d records were not acknowledged (the producer gave up on them), e.g. %v", len(failed), sample)
	}
	t.Logf("log: %d records, %d distinct values, %d duplicate values; %d acknowledged, %d failed",
		total, len(where), dups, len(landed), len(failed))
	if err := p.err(topic); err != nil {
		t.Fatal(err)
	}
	if total != idemRecords {
		t.Fatalf("the log holds %d records, want %d", total, idemRecords)
	}
	if err := proxy.meaningful(); err != nil {
		t.Fatalf("the proxy did not disturb the producer enough to test anything: %v (%s)", err, proxy.stats())
	}
}

// cutProxy forwards TCP connections to a Kafka listener. While armed,
// each new connection is broken at a random moment, one of:
//
//   - cutRequest: after a random number of bytes towards the broker, most
//     likely in the middle of a (produce) request, which the broker then
//     never sees whole;
//   - cutResponse: after a random number of bytes towards the client,
//     most likely in the middle of a response;
//   - dropProduceResponse: the k-th produce response is swallowed whole
//     and the connection closed, after the broker wrote the batch: the
//     client must retry a batch that is already in the log.
//
// Connections accepted while disarmed are never broken.
type cutProxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
	armed  atomic.Bool

	mu   sync.Mutex
	rng  *rand.Rand
	open map[net.Conn]struct{}
	wg   sync.WaitGroup

	armedConns, requestCuts, responseCuts, producesLost, produceCutsMidRequest atomic.Int64
}

type cutMode int

const (
	cutNever cutMode = iota
	cutRequest
	cutResponse
	dropProduceResponse
)

func startCutProxy(t *testing.T, seed uint64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, rng: rand.New(rand.NewPCG(seed, seed)), open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string            { return p.ln.Addr().String() }
func (p *cutProxy) setTarget(target string) { p.target.Store(&target) }

// arm starts (and resets the counts of) or stops breaking new connections.
func (p *cutProxy) arm(on bool) {
	if on {
		for _, n := range []*atomic.Int64{&p.armedConns, &p.requestCuts, &p.responseCuts, &p.producesLost, &p.produceCutsMidRequest} {
			n.Store(0)
		}
	}
	p.armed.Store(on)
}

func (p *cutProxy) stats() string {
	return fmt.Sprintf("%d connections armed: %d cut mid-request (%d of them in a produce request), %d cut mid-response, %d produce responses swallowed",
		p.armedConns.Load(), p.requestCuts.Load(), p.produceCutsMidRequest.Load(), p.responseCuts.Load(), p.producesLost.Load())
}

// meaningful says whether the proxy broke enough connections in each way.
func (p *cutProxy) meaningful() error {
	var errs []error
	if n := p.producesLost.Load(); n < 3 {
		errs = append(errs, fmt.Errorf("only %d produce responses swallowed", n))
	}
	if n := p.produceCutsMidRequest.Load(); n < 3 {
		errs = append(errs, fmt.Errorf("only %d produce requests cut", n))
	}
	if n := p.responseCuts.Load(); n < 3 {
		errs = append(errs, fmt.Errorf("only %d responses cut", n))
	}
	return errors.Join(errs...)
}

func (p *cutProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.open = nil // serve closes connections it can no longer track
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.open, c)
		return true
	}
	if p.open == nil {
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// plan picks how a new connection will be broken.
func (p *cutProxy) plan() (mode cutMode, budget int64, k int) {
	if !p.armed.Load() {
		return cutNever, 0, 0
	}
	// The ways take turns, so each gets its share of connections.
	nth := p.armedConns.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch nth % 3 {
	case 0:
		return cutRequest, 512 + p.rng.Int64N(64<<10), 0
	case 1:
		return cutResponse, 16 + p.rng.Int64N(2<<10), 0
	default:
		return dropProduceResponse, 0, 1 + p.rng.IntN(3)
	}
}

func (p *cutProxy) serve(client net.Conn) {
	defer p.wg.Done()
	target := p.target.Load()
	if target == nil {
		_ = client.Close()
		return
	}
	broker, err := net.Dial("tcp", *target)
	if err != nil {
		_ = client.Close()
		return
	}
	for _, c := range []net.Conn{client, broker} {
		defer c.Close()
		if !p.track(c, true) {
			return
		}
		defer p.track(c, false)
	}
	mode, budget, k := p.plan()
	var (
		once   sync.Once
		reqMu  sync.Mutex
		apiKey = map[int32]int16{} // correlation id -> api key of requests in flight
	)
	cut := func() {
		once.Do(func() {
			_ = client.Close()
			_ = broker.Close()
		})
	}
	done := make(chan struct{})
	// Client to broker: frame by frame, noting each request's api key.
	go func() {
		defer close(done)
		defer cut()
		var sent int64
		for {
			frame, err := readFrame(client)
			if err != nil {
				return
			}
			key, corr := int16(-1), int32(-1)
			if len(frame) >= 12 {
				key = int16(binary.BigEndian.Uint16(frame[4:]))
				corr = int32(binary.BigEndian.Uint32(frame[8:]))
			}
			reqMu.Lock()
			apiKey[corr] = key
			reqMu.Unlock()
			if mode == cutRequest && sent+int64(len(frame)) > budget {
				_, _ = broker.Write(frame[:budget-sent])
				p.requestCuts.Add(1)
				if key == 0 {
					p.produceCutsMidRequest.Add(1)
				}
				return
			}
			if _, err := broker.Write(frame); err != nil {
				return
			}
			sent += int64(len(frame))
		}
	}()
	// Broker to client.
	var sent int64
	produces := 0
	for {
		frame, err := readFrame(broker)
		if err != nil {
			break
		}
		corr := int32(-1)
		if len(frame) >= 8 {
			corr = int32(binary.BigEndian.Uint32(frame[4:]))
		}
		reqMu.Lock()
		key, ok := apiKey[corr]
		delete(apiKey, corr)
		reqMu.Unlock()
		if ok && key == 0 {
			produces++
			if mode == dropProduceResponse && produces == k {
				p.producesLost.Add(1)
				break
			}
		}
		if mode == cutResponse && sent+int64(len(frame)) > budget {
			_, _ = client.Write(frame[:budget-sent])
			p.responseCuts.Add(1)
			break
		}
		if _, err := client.Write(frame); err != nil {
			break
		}
		sent += int64(len(frame))
	}
	cut()
	<-done
}

// readFrame reads one size-prefixed Kafka frame, size included.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 256<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	if _, err := io.ReadFull(r, frame[4:]); err != nil {
		return nil, err
	}
	return frame, nil
}
