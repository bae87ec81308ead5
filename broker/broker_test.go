package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// startBroker runs a broker on a loopback port until the test ends (or
// until the returned stop is called).
func startBroker(t *testing.T, store *metastore.Store, bucket objstore.Bucket, mut ...func(*broker.Config)) (*broker.Broker, func()) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.FlushInterval = 20 * time.Millisecond
	for _, m := range mut {
		m(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.New(context.Background(), cfg, store, bucket, prometheus.NewRegistry(), logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		b.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return b, stop
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DisableIdempotentWrite()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, cl *kgo.Client, name string, parts int32, configs map[string]*string) {
	t.Helper()
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), parts, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

func value(n int) []byte {
	return []byte(fmt.Sprintf("value-%06d-%s", n, bytes.Repeat([]byte{'x'}, n%300)))
}

// consumeAll reads partitions from the start until want records arrived.
func consumeAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(out), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestProduceConsumeCodecs(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	b, _ := startBroker(t, store, memory.New())
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			admin := newClient(t, b.Addr())
			createTopic(t, admin, topic, 4, nil)
			cl := newClient(t, b.Addr(), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			const n = 2000
			for i := 0; i < n; i++ {
				cl.Produce(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: value(i)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
					}
				})
			}
			if err := cl.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			recs := consumeAll(t, b.Addr(), topic, n)
			seen := map[string]bool{}
			next := map[int32]int64{}
			for _, r := range recs {
				var i int
				fmt.Sscan(string(r.Key), &i)
				if !bytes.Equal(r.Value, value(i)) {
					t.Fatalf("record %d: value mismatch", i)
				}
				if seen[string(r.Key)] {
					t.Fatalf("record %d twice", i)
				}
				seen[string(r.Key)] = true
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
			}
			if len(seen) != n {
				t.Fatalf("got %d distinct records, want %d", len(seen), n)
			}
		})
	}
}

// TestRestartKeepsOffsets stops a broker and starts another on the same
// metadata and objects: everything acknowledged is readable, offsets go on
// densely and the leader epoch moves up.
func TestRestartKeepsOffsets(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	b1, stop1 := startBroker(t, store, bucket)
	cl := newClient(t, b1.Addr(), kgo.DefaultProduceTopic("r"))
	createTopic(t, cl, "r", 1, nil)
	for i := 0; i < 100; i++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: value(i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	stop1()

	b2, _ := startBroker(t, store, bucket)
	cl2 := newClient(t, b2.Addr(), kgo.DefaultProduceTopic("r"))
	res := cl2.ProduceSync(context.Background(), &kgo.Record{Value: value(100)})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	if off := res[0].Record.Offset; off != 100 {
		t.Fatalf("offset after restart %d, want 100", off)
	}
	recs := consumeAll(t, b2.Addr(), "r", 101)
	for i, r := range recs {
		if r.Offset != int64(i) || !bytes.Equal(r.Value, value(i)) {
			t.Fatalf("record %d: offset %d", i, r.Offset)
		}
		if i == 100 && r.LeaderEpoch < 2 {
			t.Fatalf("leader epoch %d after restart, want >= 2", r.LeaderEpoch)
		}
	}
}

// TestStaleLeaderFenced: a partition moved to a second broker (Kafka's
// reassignment API) gets a new epoch; the first broker answers its
// producer NOT_LEADER_OR_FOLLOWER, and no offset is handed out twice.
func TestStaleLeaderFenced(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	b1, _ := startBroker(t, store, bucket)
	cl1 := newClient(t, b1.Addr(), kgo.DefaultProduceTopic("f"), kgo.RecordRetries(0), kgo.RequestRetries(0))
	createTopic(t, cl1, "f", 1, nil)
	if err := cl1.ProduceSync(context.Background(), &kgo.Record{Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b2, _ := startBroker(t, store, bucket, func(c *broker.Config) { c.NodeID = 1 })
	adm := kadm.NewClient(newClient(t, b1.Addr()))
	var req45 kadm.AlterPartitionAssignmentsReq
	req45.Assign("f", 0, []int32{1})
	res45, err := adm.AlterPartitionAssignments(context.Background(), req45)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range res45 {
		for _, r := range ps {
			if r.Err != nil {
				t.Fatalf("reassignment: %v (%s)", r.Err, r.ErrMessage)
			}
		}
	}
	waitLeader(t, adm, "f", 0, 1)
	cl2 := newClient(t, b2.Addr(), kgo.DefaultProduceTopic("f"))
	if err := cl2.ProduceSync(context.Background(), &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Direct request to the stale broker, bypassing client metadata.
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "f"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch(t, []byte("stale"))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl1)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("stale leader answered %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}
	recs := consumeAll(t, b2.Addr(), "f", 2)
	if string(recs[0].Value) != "a" || string(recs[1].Value) != "b" || recs[1].Offset != 1 {
		t.Fatalf("log after fencing: %q@%d %q@%d", recs[0].Value, recs[0].Offset, recs[1].Value, recs[1].Offset)
	}
}

// oneBatch encodes a single-record uncompressed batch with franz-go's own
// encoder, by capturing what a producer sends.
func oneBatch(t *testing.T, v []byte) []byte {
	t.Helper()
	rec := kmsg.NewRecord()
	rec.Value = v
	body := rec.AppendTo(nil)
	rec.Length = int32(len(body) - 1)
	records := rec.AppendTo(nil)
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
	batch.NumRecords = 1
	batch.FirstTimestamp, batch.MaxTimestamp = time.Now().UnixMilli(), time.Now().UnixMilli()
	batch.Records = records
	raw := batch.AppendTo(nil)
	return fixBatch(raw)
}

func TestProduceErrors(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	b, _ := startBroker(t, store, memory.New())
	cl := newClient(t, b.Addr())
	small := "200"
	createTopic(t, cl, "small", 1, map[string]*string{"max.message.bytes": &small})
	produce := func(records []byte) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "small"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(oneBatch(t, []byte("ok"))); code != 0 {
		t.Fatalf("small batch: %v", kerr.ErrorForCode(code))
	}
	if code := produce(oneBatch(t, bytes.Repeat([]byte("x"), 500))); code != kerr.MessageTooLarge.Code {
		t.Fatalf("large batch: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(code))
	}
	bad := oneBatch(t, []byte("corrupt me"))
	bad[len(bad)-2] ^= 0xff
	if code := produce(bad); code != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt batch: %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(code))
	}
	// The connection survives record-level errors: the good batch is still readable.
	recs := consumeAll(t, b.Addr(), "small", 1)
	if string(recs[0].Value) != "ok" {
		t.Fatalf("got %q", recs[0].Value)
	}
}

func TestAdminAndOffsets(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	b, _ := startBroker(t, store, memory.New())
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("adm"))
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	createTopic(t, cl, "adm", 2, nil)
	if resp, _ := adm.CreateTopic(ctx, 1, 1, nil, "adm"); !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", resp.Err)
	}
	if resp, _ := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(resp.Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", resp.Err)
	}
	bogus := "nope"
	if resp, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &bogus}, "cfg"); !errors.Is(resp.Err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", resp.Err)
	}
	// Configs: set, read back, incremental delete.
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1000")}}, "adm")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs)
	}
	dc, err := adm.DescribeTopicConfigs(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := dc.On("adm", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			got = c.MaybeValue()
		}
	}
	if got != "1000" {
		t.Fatalf("retention.ms = %q", got)
	}
	if _, err := adm.CreatePartitions(ctx, 2, "adm"); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "adm")
	if err != nil || len(td["adm"].Partitions) != 4 {
		t.Fatalf("partitions after grow: %v %v", err, td)
	}
	// Offsets by timestamp.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}, Partition: 0, Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("adm")).ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Minute+time.Second).UnixMilli(), "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("adm", 0); o.Offset != 5 {
		t.Fatalf("offset for timestamp: %d, want 5", o.Offset)
	}
	ends, err := adm.ListEndOffsets(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("adm", 0); o.Offset != 10 {
		t.Fatalf("end offset %d", o.Offset)
	}
	if _, err := adm.DeleteTopics(ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	if td, _ := adm.ListTopics(ctx); td.Has("adm") {
		t.Fatal("deleted topic still listed")
	}
}

// waitLeader waits until Metadata names node as the leader of topic/p.
func waitLeader(t *testing.T, adm *kadm.Client, topic string, p, node int32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := adm.Metadata(context.Background(), topic)
		if err == nil {
			if pd, ok := md.Topics[topic].Partitions[p]; ok && pd.Leader == node && pd.Err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition %s/%d: leader is not %d after 20s (err %v)", topic, p, node, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProduceTimeout: a produce request whose flush outlasts its timeout
// is answered REQUEST_TIMED_OUT at the timeout, not when the flush ends;
// the batch still lands, once.
func TestProduceTimeout(t *testing.T) {
	store := metastoretest.OpenEmbedded(t)
	faults := objstore.NewFaults(1)
	b, _ := startBroker(t, store, objstore.WrapWithFaults(memory.New(), faults))
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("slow"))
	createTopic(t, cl, "slow", 1, nil)
	faults.Set(objstore.OpUpload, objstore.FaultRule{Latency: 5 * time.Second})
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 300
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "slow"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneBatch(t, []byte("late"))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Fatalf("slow flush answered %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	if took := time.Since(start); took >= 4*time.Second {
		t.Fatalf("answered after %v, not at the request's timeout", took)
	}
	faults.Set(objstore.OpUpload, objstore.FaultRule{})
	recs := consumeAll(t, b.Addr(), "slow", 1)
	if string(recs[0].Value) != "late" {
		t.Fatalf("log holds %q", recs[0].Value)
	}
}
