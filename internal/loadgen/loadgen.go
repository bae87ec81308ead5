// Package loadgen drives a Kafka cluster with a franz-go producer and
// measures what it sees: throughput and per-record acknowledgement latency.
// floectl bench and the benchmark suite share it, so floe and the kfake
// ceiling are measured by exactly the same code.
package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceConfig describes one produce run.
type ProduceConfig struct {
	Seeds       []string
	Topic       string
	Records     int           // total records to produce (0 = until Duration)
	Duration    time.Duration // stop after this long (0 = until Records)
	RecordBytes int
	Compression string // none, gzip, snappy, lz4, zstd
	Linger      time.Duration
	MaxBuffered int
	Rate        int // records per second (0 = as fast as the cluster takes them)
}

// ProduceResult is what a run measured.
type ProduceResult struct {
	Records     int64
	Bytes       int64
	Errors      int64
	Elapsed     time.Duration
	MBPerSec    float64
	P50, P99    time.Duration
	MaxLatency  time.Duration
	FirstErrMsg string
}

func (r ProduceResult) String() string {
	return fmt.Sprintf("%d records, %.1f MiB in %.2fs: %.1f MB/s, p50 %v, p99 %v, max %v, %d errors",
		r.Records, float64(r.Bytes)/(1<<20), r.Elapsed.Seconds(), r.MBPerSec,
		r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.MaxLatency.Round(time.Millisecond), r.Errors)
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown compression %q", name)
}

// Produce runs the load and returns its measurements. acks=all always.
func Produce(ctx context.Context, cfg ProduceConfig) (ProduceResult, error) {
	c, err := codec(cfg.Compression)
	if err != nil {
		return ProduceResult{}, err
	}
	if cfg.MaxBuffered == 0 {
		cfg.MaxBuffered = 100000
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Seeds...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(c),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(cfg.MaxBuffered),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	)
	if err != nil {
		return ProduceResult{}, err
	}
	defer cl.Close()

	// Random but compressible-ish payloads, made once.
	payload := make([]byte, cfg.RecordBytes+4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte('a' + rng.IntN(16))
	}
	var (
		res       ProduceResult
		latMu     sync.Mutex
		lats      = make([]time.Duration, 0, max(cfg.Records, 1024))
		errs      atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
		deadline  time.Time
		startTime = time.Now()
	)
	if cfg.Duration > 0 {
		deadline = startTime.Add(cfg.Duration)
	}
	var pace time.Duration
	if cfg.Rate > 0 {
		pace = time.Second / time.Duration(cfg.Rate)
	}
	for i := 0; cfg.Records == 0 || i < cfg.Records; i++ {
		if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
			break
		}
		if pace > 0 {
			// Open-loop pacing: latency is measured from the intended send time.
			if d := time.Until(startTime.Add(time.Duration(i) * pace)); d > 0 {
				time.Sleep(d)
			}
		}
		off := i % 4096
		r := &kgo.Record{Value: payload[off : off+cfg.RecordBytes]}
		sent := time.Now()
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			d := time.Since(sent)
			latMu.Lock()
			lats = append(lats, d)
			latMu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(startTime)
	res.Errors = errs.Load()
	if v := firstErr.Load(); v != nil {
		res.FirstErrMsg = v.(string)
	}
	res.Records = int64(len(lats))
	res.Bytes = res.Records * int64(cfg.RecordBytes)
	res.MBPerSec = float64(res.Bytes) / 1e6 / res.Elapsed.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if n := len(lats); n > 0 {
		res.P50 = lats[n/2]
		res.P99 = lats[n*99/100]
		res.MaxLatency = lats[n-1]
	}
	return res, nil
}
