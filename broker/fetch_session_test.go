package broker_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// TestFetchSessions walks KIP-227 by hand: a full fetch opens a session,
// incremental fetches carry epochs 1, 2, ... and see only partitions with
// news; a wrong epoch or unknown id is refused.
func TestFetchSessions(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	b, _ := startBroker(t, store, memory.New())
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("fs"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "fs", 2, nil)
	ctx := context.Background()
	td, err := kadm.NewClient(cl).ListTopics(ctx, "fs")
	if err != nil {
		t.Fatal(err)
	}
	topicID := td["fs"].ID
	fetch := func(id, epoch int32, parts ...int32) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 10
		req.MaxBytes = 1 << 20
		req.SessionID, req.SessionEpoch = id, epoch
		if len(parts) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "fs", topicID // v13+ carries only the id
			for _, p := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	full := fetch(0, 0, 0, 1)
	if full.ErrorCode != 0 || full.SessionID == 0 || len(full.Topics[0].Partitions) != 2 || full.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("full fetch: %+v", full)
	}
	id := full.SessionID
	if r := fetch(id, 1); r.ErrorCode != 0 || len(r.Topics) != 0 {
		t.Fatalf("incremental with no news: code %v, %d topics: %+v", kerr.ErrorForCode(r.ErrorCode), len(r.Topics), r.Topics)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := fetch(id, 2)
	if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("incremental after produce: %+v", r)
	}
	if r := fetch(id, 7); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := fetch(id+1000, 1); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
