package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/s3"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

const (
	faultRecords = 20_000
	faultTopic   = "faults"
	// uploadFaultRate is the share of uploads that fail.
	uploadFaultRate = 0.2
	// readFaultRate is the share of reads that fail in the cold-read
	// phase. Lower than the upload rate: floe fails a partition's whole
	// fetch when any one of the objects it spans fails to read (see
	// TestObjectStoreFaults), so at 20% a catch-up read converges only
	// through the block cache, in minutes.
	readFaultRate = 0.05
)

// TestObjectStoreFaults runs a broker in-process over versitygw with a
// fault-injecting bucket: 20% of uploads fail. Every produce must either
// be acknowledged or fail with a retriable error, and afterwards every
// acknowledged record must be readable at its offset with its value, with
// dense offsets and nothing written twice. Then a second broker with a
// cold cache serves the same data while 20% of its reads fail; a consumer
// that retries must still read everything.
func TestObjectStoreFaults(t *testing.T) {
	srv := s3server.Start(t)
	bucketName := srv.Bucket(t, "faults")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	raw, err := s3.New(ctx, s3.Config{
		Bucket: bucketName, Prefix: "floe", Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	faults := objstore.NewFaults(20260101)
	bucket := objstore.WrapWithFaults(raw, faults)
	store := metastoretest.OpenEmbedded(t)

	// Phase 1: produce through failing uploads.
	faults.SetErrorRate(objstore.OpUpload, uploadFaultRate)
	b1 := startBroker(t, store, bucket)
	ds := newDataset(faultRecords, numPartitions)
	createTopicAt(t, b1.Addr(), faultTopic)
	acks, failed := produceThroughFaults(t, b1.Addr(), ds)
	injected := faults.Injected(objstore.OpUpload)
	t.Logf("upload faults injected: %d; produce: %d acknowledged, %d failed with retriable errors", injected, len(acks), failed)
	if injected == 0 {
		t.Fatal("no upload failed: the fault injection did not take")
	}
	if len(acks) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	faults.Clear()
	logRecs := readAll(t, b1.Addr(), faultTopic, numPartitions)
	if err := checkFaultLog(ds, acks, logRecs); err != nil {
		t.Fatalf("after upload faults: %v", err)
	}
	if err := b1.Close(); err != nil {
		t.Fatalf("close broker: %v", err)
	}

	// Phase 2: a new broker (empty caches: every read is a ranged GET)
	// whose reads fail at the same rate.
	for _, op := range []objstore.Op{objstore.OpGet, objstore.OpGetRange} {
		faults.SetErrorRate(op, readFaultRate)
	}
	b2 := startBroker(t, store, bucket)
	coldRecs := readAll(t, b2.Addr(), faultTopic, numPartitions)
	readFaults := faults.Injected(objstore.OpGet) + faults.Injected(objstore.OpGetRange)
	t.Logf("read faults injected: %d", readFaults)
	if readFaults == 0 {
		t.Fatal("no read failed: the cold broker did not read from the object store")
	}
	if err := checkFaultLog(ds, acks, coldRecs); err != nil {
		t.Fatalf("cold reads through read faults: %v", err)
	}
}

func startBroker(t *testing.T, store *metastore.Store, bucket objstore.Bucket) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := broker.DefaultConfig()
	cfg.KafkaAddr = "127.0.0.1:0"
	// Flush often: more flushes, more chances for an upload to fail.
	cfg.FlushInterval = 5 * time.Millisecond
	b, err := broker.New(ctx, cfg, store, bucket, prometheus.NewRegistry(), metastoretest.Logger(t))
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve() }()
	t.Cleanup(func() {
		_ = b.Close()
		if err := <-served; err != nil {
			t.Errorf("broker.Serve: %v", err)
		}
	})
	return b
}

func createTopicAt(t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, numPartitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produceThroughFaults produces ds once, without client retries, so each
// failure reaches us: it returns the acknowledgements (seq = record
// number) and how many records failed, failing the test on any error that
// is not retriable.
func produceThroughFaults(t *testing.T, addr string, ds *dataset) ([]ack, int) {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(faultTopic),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.RecordRetries(0),
		kgo.MaxProduceRequestsInflightPerBroker(1),
		// Small requests: many flushes.
		kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(200),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), produceTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		acks   []ack
		failed int
		bad    []string
	)
	for n := range ds.keys {
		cl.Produce(ctx, &kgo.Record{Key: ds.keys[n], Value: ds.values[n]}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				acks = append(acks, ack{r.Partition, r.Offset, n})
				return
			}
			failed++
			var ke *kerr.Error
			if !errors.As(err, &ke) || !ke.Retriable {
				bad = append(bad, fmt.Sprintf("record %d: %v", n, err))
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if len(bad) > 0 {
		t.Fatalf("%d produce failures were not retriable Kafka errors; first: %v", len(bad), bad[:min(len(bad), 5)])
	}
	return acks, failed
}

// checkFaultLog checks the log after faults: dense offsets, every record
// one we produced and present at most once (the client never retried, so
// a duplicate was written twice by the broker), every acknowledged record
// at its acknowledged offset.
func checkFaultLog(ds *dataset, acks []ack, logRecs map[int32][]*kgo.Record) error {
	var p problems
	where := map[int][2]int64{} // record number -> partition, offset in the log
	for part, recs := range logRecs {
		for i, r := range recs {
			if r.Offset != int64(i) {
				p.addf("partition %d: record #%d has offset %d: offsets are not dense", part, i, r.Offset)
				break
			}
			n, ok := recordNumber(ds, r.Key)
			if !ok || !bytes.Equal(r.Value, ds.values[n]) {
				p.addf("partition %d offset %d: key %q with a value of %d bytes is not a record we produced", part, r.Offset, r.Key, len(r.Value))
				continue
			}
			if prev, dup := where[n]; dup {
				p.addf("record %d written twice: partition %d offsets %d and %d", n, part, prev[1], r.Offset)
			}
			where[n] = [2]int64{int64(part), r.Offset}
		}
	}
	for _, a := range acks {
		got, ok := where[a.seq]
		switch {
		case !ok:
			p.addf("record %d acknowledged at %d/%d is not in the log: lost", a.seq, a.partition, a.offset)
		case got != [2]int64{int64(a.partition), a.offset}:
			p.addf("record %d acknowledged at %d/%d is at %d/%d", a.seq, a.partition, a.offset, got[0], got[1])
		}
	}
	return p.err(fmt.Sprintf("%d acknowledged, %d in the log", len(acks), len(where)))
}

// recordNumber parses "k-<n>" back to n.
func recordNumber(ds *dataset, key []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(key, []byte("k-"))
	if !ok {
		return 0, false
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(rest) > 0 && n < len(ds.keys) && bytes.Equal(key, ds.keys[n])
}
