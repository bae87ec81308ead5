package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// TestDeleteRecordsAndRetention: DeleteRecords and retention.bytes move the
// log start; ListOffsets earliest follows; fetching below it is out of
// range; objects no partition references are garbage collected.
func TestDeleteRecordsAndRetention(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	b, _ := startBroker(t, store, bucket, func(c *broker.Config) {
		c.RetentionInterval = 100 * time.Millisecond
		c.GCInterval = 100 * time.Millisecond
		c.GCGrace = time.Second // outlasts an in-flight flush's upload-to-commit
	})
	ctx := context.Background()
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ret"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	createTopic(t, cl, "ret", 2, nil)
	for i := 0; i < 10; i++ { // ten flushes, ten segments per partition
		for p := int32(0); p < 2; p++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value(i), Partition: p}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	countObjects := func() int {
		n := 0
		_ = bucket.Iter(ctx, "", func(string) error { n++; return nil })
		return n
	}
	before := countObjects()

	res, err := adm.DeleteRecords(ctx, kadm.Offsets{"ret": {0: {Topic: "ret", Partition: 0, At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("ret", 0); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "ret")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("ret", 0); o.Offset != 4 {
		t.Fatalf("earliest after DeleteRecords: %d", o.Offset)
	}
	// Retention by bytes on partition 1 only keeps what fits: set tiny.
	one := "1"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: &one}}, "ret"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		starts, err = adm.ListStartOffsets(ctx, "ret")
		if err != nil {
			t.Fatal(err)
		}
		o0, _ := starts.Lookup("ret", 0)
		o1, _ := starts.Lookup("ret", 1)
		if o0.Offset == 10 && o1.Offset == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not move log starts: %d %d", o0.Offset, o1.Offset)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for countObjects() >= before {
		if time.Now().After(deadline) {
			t.Fatalf("no object collected: %d objects, %d before", countObjects(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := countObjects(); n != 0 {
		// Every segment is below the log start, so every object goes.
		time.Sleep(500 * time.Millisecond)
		if n = countObjects(); n != 0 {
			t.Fatalf("%d objects left", n)
		}
	}
	// New data still flows after everything was deleted.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, _ := adm.ListEndOffsets(ctx, "ret")
	if o, _ := ends.Lookup("ret", 0); o.Offset != 11 {
		t.Fatalf("end offset %d, want 11", o.Offset)
	}
}
