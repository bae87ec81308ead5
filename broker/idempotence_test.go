package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// idemBatch is a one-record batch from producer pid/epoch with sequence seq.
func idemBatch(v string, pid int64, epoch int16, seq int32) []byte {
	rec := kmsg.NewRecord()
	rec.Value = []byte(v)
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = pid, epoch, seq
	batch.NumRecords = 1
	batch.FirstTimestamp, batch.MaxTimestamp = time.Now().UnixMilli(), time.Now().UnixMilli()
	batch.Records = rec.AppendTo(nil)
	return fixBatch(batch.AppendTo(nil))
}

func produceRaw(t *testing.T, cl *kgo.Client, topic string, records []byte) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// TestIdempotentProducer: a retried batch is answered with its original
// offset and not written twice, also after a restart; a sequence gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is refused.
func TestIdempotentProducer(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	b, stop := startBroker(t, store, bucket)
	cl := newClient(t, b.Addr())
	createTopic(t, cl, "idem", 1, nil)

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = 60000
	ir, err := init.RequestWith(context.Background(), cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, ir)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	for seq, want := range []int64{0, 1} {
		code, off := produceRaw(t, cl, "idem", idemBatch("v", pid, epoch, int32(seq)))
		if code != 0 || off != want {
			t.Fatalf("seq %d: code %v offset %d", seq, kerr.ErrorForCode(code), off)
		}
	}
	if code, off := produceRaw(t, cl, "idem", idemBatch("v", pid, epoch, 0)); code != 0 || off != 0 {
		t.Fatalf("duplicate of seq 0: code %v offset %d, want success at 0", kerr.ErrorForCode(code), off)
	}
	if code, _ := produceRaw(t, cl, "idem", idemBatch("v", pid, epoch, 5)); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %v", kerr.ErrorForCode(code))
	}
	cl.Close()
	stop()

	b2, _ := startBroker(t, store, bucket)
	cl2 := newClient(t, b2.Addr())
	if code, off := produceRaw(t, cl2, "idem", idemBatch("v", pid, epoch, 1)); code != 0 || off != 1 {
		t.Fatalf("duplicate after restart: code %v offset %d, want success at 1", kerr.ErrorForCode(code), off)
	}
	if code, off := produceRaw(t, cl2, "idem", idemBatch("v", pid, epoch, 2)); code != 0 || off != 2 {
		t.Fatalf("next after restart: code %v offset %d", kerr.ErrorForCode(code), off)
	}
	if code, _ := produceRaw(t, cl2, "idem", idemBatch("v", pid, epoch-1, 3)); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch: %v", kerr.ErrorForCode(code))
	}
	if recs := consumeAll(t, b2.Addr(), "idem", 3); len(recs) != 3 || recs[2].Offset != 2 {
		t.Fatalf("log holds %d records", len(recs))
	}
	// franz-go's default, idempotent producer works end to end.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(b2.Addr()), kgo.DefaultProduceTopic("idem"))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	for i := 0; i < 500; i++ {
		pcl.Produce(context.Background(), &kgo.Record{Value: []byte("x")}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("idempotent produce: %v", err)
			}
		})
	}
	if err := pcl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs := consumeAll(t, b2.Addr(), "idem", 503); len(recs) != 503 {
		t.Fatalf("log holds %d records, want 503", len(recs))
	}
}
