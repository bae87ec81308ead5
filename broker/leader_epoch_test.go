package broker_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// TestOffsetForLeaderEpoch: records written under epoch 1, then (after a
// restart) under epoch 2; epoch 1 ends where epoch 2 began.
func TestOffsetForLeaderEpoch(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	ctx := context.Background()
	b1, stop := startBroker(t, store, bucket)
	cl := newClient(t, b1.Addr(), kgo.DefaultProduceTopic("ep"))
	createTopic(t, cl, "ep", 1, nil)
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	stop()
	b2, _ := startBroker(t, store, bucket)
	cl2 := newClient(t, b2.Addr(), kgo.DefaultProduceTopic("ep"))
	for i := 0; i < 2; i++ {
		if err := cl2.ProduceSync(ctx, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ask := func(epoch int32) (int32, int64, int16) {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "ep"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, -1, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl2)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		return p.LeaderEpoch, p.EndOffset, p.ErrorCode
	}
	if e, off, code := ask(1); code != 0 || e != 1 || off != 3 {
		t.Fatalf("epoch 1: epoch %d end %d code %d, want 1/3", e, off, code)
	}
	if e, off, code := ask(2); code != 0 || e != 2 || off != 5 {
		t.Fatalf("epoch 2: epoch %d end %d code %d, want 2/5", e, off, code)
	}
}
