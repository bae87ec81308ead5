package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/floeproc"
)

// Time limits for one codec's produce or consume of the full dataset: far
// above what a healthy run takes, so a hang fails instead of running on.
const (
	produceTimeout = 5 * time.Minute
	consumeTimeout = 5 * time.Minute
)

// cluster is one floe process and an admin client for it.
type cluster struct {
	floe *floeproc.Floe
	adm  *kadm.Client
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	f := floeproc.Start(t, floeproc.Options{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{floe: f, adm: kadm.NewClient(cl)}
}

func (c *cluster) addr() string { return c.floe.KafkaAddr() }

// ctx returns a context that ends after timeout, or as soon as floe exits
// without the test stopping it (floeproc has then failed the test), so a
// client does not wait out its timeout on a broker that is gone.
func (c *cluster) ctx(t *testing.T, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	go func() {
		select {
		case <-c.floe.Crashed():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx
}

// createTopic creates topic with the dataset's partition count.
func (c *cluster) createTopic(t *testing.T, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.adm.CreateTopic(ctx, numPartitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s with %d partitions: %v", topic, numPartitions, err)
	}
}

// checkOffsets checks that every partition of topic starts at offset 0
// and ends exactly after the records the dataset puts there: nothing
// missing, nothing extra, whatever a consumer saw.
func (c *cluster) checkOffsets(t *testing.T, topic string, ds *dataset) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	starts, err := c.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	var p problems
	for part, want := range ds.byPartition {
		if s, ok := starts.Lookup(topic, int32(part)); !ok || s.Offset != 0 {
			p.addf("partition %d: start offset %d (listed: %v), want 0", part, s.Offset, ok)
		}
		if e, ok := ends.Lookup(topic, int32(part)); !ok || e.Offset != int64(len(want)) {
			p.addf("partition %d: end offset %d (listed: %v), want %d", part, e.Offset, ok, len(want))
		}
	}
	if err := p.err("offsets of " + topic); err != nil {
		t.Fatal(err)
	}
}

func franzCodec(t *testing.T, codec string) kgo.CompressionCodec {
	t.Helper()
	switch codec {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	t.Fatalf("unknown codec %q", codec)
	return kgo.NoCompression()
}

// produceFranz produces the dataset to topic with franz-go (acks=all, not
// idempotent: floe has no InitProducerID yet) and checks every record is
// acknowledged at the partition and offset it must have.
func produceFranz(t *testing.T, ctx context.Context, addr, topic, codec string, ds *dataset) {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(franzCodec(t, codec)),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2 on keys
		// One request in flight keeps a retried batch from overtaking
		// the next one, so offsets follow the input order exactly.
		kgo.MaxProduceRequestsInflightPerBroker(1),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(20_000),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	acks := make([]consumedRecord, len(ds.keys))
	var (
		mu      sync.Mutex
		failed  int
		firstEr error
	)
	for n := range ds.keys {
		rec := &kgo.Record{Key: ds.keys[n], Value: ds.values[n]}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed++
				if firstEr == nil {
					firstEr = fmt.Errorf("record %s: %w", r.Key, err)
				}
				mu.Unlock()
				return
			}
			acks[n] = consumedRecord{Partition: r.Partition, Offset: r.Offset}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if failed > 0 {
		t.Fatalf("franz-go: %d of %d records failed; first: %v", failed, len(ds.keys), firstEr)
	}
	if err := ds.checkAcks(acks); err != nil {
		t.Fatalf("franz-go: %v", err)
	}
}

// batchCodecs is a franz-go hook that counts the record batches fetched
// per compression codec: it shows floe stored and served each batch with
// the producer's compression untouched.
type batchCodecs struct {
	mu   sync.Mutex
	seen map[uint8]int
}

func (b *batchCodecs) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen[m.CompressionType]++
}

// consumeFranz reads every partition of topic from offset 0 with franz-go
// (direct partition consumption, no group) until want records arrived,
// and returns them with the batch codecs seen. The consumer validates
// every batch's CRC.
func consumeFranz(t *testing.T, ctx context.Context, addr, topic string, want int) ([]consumedRecord, map[uint8]int) {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	for p := range int32(numPartitions) {
		parts[p] = kgo.NewOffset().At(0)
	}
	codecs := &batchCodecs{seen: map[uint8]int{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxPartitionBytes(8<<20),
		kgo.WithHooks(codecs),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]consumedRecord, 0, want)
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("franz-go consumer: %d of %d records: %v", len(recs), want, context.Cause(ctx))
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			fetchErr = errors.Join(fetchErr, fmt.Errorf("%s/%d: %w", topic, p, err))
		})
		if fetchErr != nil {
			t.Fatalf("franz-go consumer: %v", fetchErr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, consumedRecord{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, KeyNull: r.Key == nil})
		})
	}
	codecs.mu.Lock()
	defer codecs.mu.Unlock()
	return recs, codecs.seen
}

// checkFranzConsume consumes topic with franz-go and checks it holds the
// dataset byte for byte (fatal), in batches compressed with codec only
// (an error).
func (c *cluster) checkFranzConsume(t *testing.T, topic, codec string, ds *dataset) {
	t.Helper()
	recs, seen := consumeFranz(t, c.ctx(t, consumeTimeout), c.addr(), topic, len(ds.keys))
	// franz-go hands out an empty value for a null one.
	if err := ds.check(recs, true); err != nil {
		t.Fatalf("franz-go consumer: %v", err)
	}
	want := codecType[codec]
	if len(seen) != 1 || seen[want] == 0 {
		hint := ""
		if want != 0 && len(seen) == 1 && seen[0] > 0 {
			// See the report in test/compat/README.md.
			hint = "; the producer sent its batches uncompressed (librdkafka <= 2.11 does so for gzip, " +
				"snappy and lz4 unless the broker's ApiVersions include Produce v0, and for lz4 also FindCoordinator)"
		}
		// Not fatal: the content checks after this still tell something.
		t.Errorf("fetched batches by codec %v, want only codec %d (%s)%s", seen, want, codec, hint)
	}
}

// runTool runs a client program to completion and returns its stdout,
// failing the test with its output if it fails.
func runTool(t *testing.T, ctx context.Context, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
	}
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s\nstdout (tail):\n%s", commandLine(name, args), err,
			tailString(stderr.String(), 8<<10), tailString(stdout.String(), 4<<10))
	}
	t.Logf("%s: %v", commandLine(name, args), time.Since(start).Round(time.Millisecond))
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("%s stderr:\n%s", name, tailString(s, 4<<10))
	}
	return stdout.Bytes()
}

// commandLine shows a command with paths shortened to their base names.
func commandLine(name string, args []string) string {
	parts := []string{filepath.Base(name)}
	for _, a := range args {
		if filepath.IsAbs(a) {
			a = filepath.Base(a)
		}
		parts = append(parts, strconv.Quote(a))
	}
	return strings.Join(parts, " ")
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
