package broker_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// TestCompactionBoundsMetadata: many small flushes leave many segment
// records; compaction merges them into stream objects, the record count
// drops, every record still reads back byte for byte (also after a
// restart), and garbage collection removes the merged-away flush objects.
func TestCompactionBoundsMetadata(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	cfgf := func(c *broker.Config) {
		c.CompactionInterval = 200 * time.Millisecond
		c.CompactionMinAge = 0
		c.GCInterval = 200 * time.Millisecond
		// The grace period covers an upload whose commit is in flight
		// (flushes, compaction); it must outlast that, even in a busy CI.
		c.GCGrace = 2 * time.Second
	}
	b, stop := startBroker(t, store, bucket, func(c *broker.Config) {
		cfgf(c)
		c.CompactionInterval = time.Hour
	})
	ctx := context.Background()
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("cmp"))
	createTopic(t, cl, "cmp", 1, nil)
	const n = 40
	for i := 0; i < n; i++ { // one flush per record
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value(i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	segKeys := func() int {
		kvs, err := store.List(ctx, "segments/")
		if err != nil {
			t.Fatal(err)
		}
		return len(kvs)
	}
	if k := segKeys(); k != n {
		t.Fatalf("%d segment records before compaction, want %d", k, n)
	}
	cl.Close()
	stop()

	b2, _ := startBroker(t, store, bucket, cfgf)
	deadline := time.Now().Add(60 * time.Second)
	for segKeys() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("compaction left %d segment records", segKeys())
		}
		time.Sleep(100 * time.Millisecond)
	}
	recs := consumeAll(t, b2.Addr(), "cmp", n)
	for i, r := range recs {
		if r.Offset != int64(i) || !bytes.Equal(r.Value, value(i)) {
			t.Fatalf("record %d wrong after compaction (offset %d)", i, r.Offset)
		}
	}
	wal := func() int {
		c := 0
		_ = bucket.Iter(ctx, "", func(name string) error {
			if strings.Contains(name, "/wal/") {
				c++
			}
			return nil
		})
		return c
	}
	for wal() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flush objects left after compaction and GC", wal())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
