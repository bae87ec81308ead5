package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// startGroupsBroker runs a broker on the given metadata store and bucket,
// listening on kafkaAddr, until the returned stop function (or the test's
// end).
func startGroupsBroker(t *testing.T, ms *metastore.Store, bucket objstore.Bucket, kafkaAddr string) (addr string, stop func()) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.KafkaAddr = kafkaAddr
	b, err := broker.New(context.Background(), cfg, ms, bucket, prometheus.NewRegistry(), metastoretest.Logger(t))
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := b.Close(); err != nil {
				t.Errorf("close broker: %v", err)
			}
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return b.Addr(), stop
}

func groupsAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createGroupsTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resps, err := adm.CreateTopics(ctx, partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			t.Fatalf("create topic %s: %v", r.Topic, r.Err)
		}
	}
}

// consumedSet records every (partition, offset) any consumer saw.
type consumedSet struct {
	mu   sync.Mutex
	seen map[int32]map[int64]bool
	n    int
}

func (s *consumedSet) add(r *kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[r.Partition] == nil {
		s.seen[r.Partition] = make(map[int64]bool)
	}
	if !s.seen[r.Partition][r.Offset] {
		s.seen[r.Partition][r.Offset] = true
		s.n++
	}
}

func (s *consumedSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *consumedSet) missing(produced map[int32][]int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	miss := 0
	for p, offs := range produced {
		for _, o := range offs {
			if !s.seen[p][o] {
				miss++
			}
		}
	}
	return miss
}

// groupConsumer is one kgo group member polling in the background.
type groupConsumer struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startGroupConsumer(t *testing.T, addr, group, topic string, balancer kgo.GroupBalancer, set *consumedSet) *groupConsumer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(250*time.Millisecond),
		kgo.RebalanceTimeout(15*time.Second),
		kgo.AutoCommitInterval(300*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gc := &groupConsumer{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(gc.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(set.add)
		}
	}()
	return gc
}

// leave stops polling, then closes the client, which commits what it
// consumed and leaves the group.
func (gc *groupConsumer) leave() {
	gc.cancel()
	<-gc.done
	gc.cl.Close()
}

// produceUntil produces keyed records to every partition until stop is
// closed, and returns the offsets it got acknowledged, per partition.
func produceGroupsUntil(t *testing.T, addr, topic string, stop <-chan struct{}) <-chan map[int32][]int64 {
	out := make(chan map[int32][]int64, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer cl.Close()
		produced := make(map[int32][]int64)
		for i := 0; ; i++ {
			select {
			case <-stop:
				out <- produced
				return
			default:
			}
			var batch []*kgo.Record
			for j := range 40 {
				k := strconv.Itoa(i*40 + j)
				batch = append(batch, &kgo.Record{Key: []byte(k), Value: []byte("v" + k)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			res := cl.ProduceSync(ctx, batch...)
			cancel()
			for _, r := range res {
				if r.Err != nil {
					t.Errorf("produce: %v", r.Err)
					continue
				}
				produced[r.Record.Partition] = append(produced[r.Record.Partition], r.Record.Offset)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return out
}

func waitGroupsUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// committedEqualsEnd compares a group's committed offsets with the topic's
// checkDrainedAndCommitted waits until every produced record was consumed
// and the group's commits reached the end offsets, and checks the end
// offsets are exactly what was produced. It returns the end offsets and the
// number of records produced.
func checkDrainedAndCommitted(ctx context.Context, t *testing.T, adm *kadm.Client, set *consumedSet, produced map[int32][]int64, group, topic string, partitions int32) (map[int32]int64, int) {
	t.Helper()
	total := 0
	for _, offs := range produced {
		total += len(offs)
	}
	waitGroupsUntil(t, 60*time.Second, "every produced record to be consumed", func() bool { return set.missing(produced) == 0 })
	var ends map[int32]int64
	var diff string
	waitGroupsUntil(t, 60*time.Second, "commits to reach the end offsets", func() bool {
		ends, diff = committedEqualsEnd(ctx, adm, group, topic, partitions)
		return diff == ""
	})
	sum := int64(0)
	for p, end := range ends {
		sum += end
		if int64(len(produced[p])) != end {
			t.Fatalf("partition %d: %d records produced, end offset %d", p, len(produced[p]), end)
		}
	}
	if sum != int64(total) {
		t.Fatalf("end offsets sum to %d, produced %d", sum, total)
	}
	return ends, total
}

// end offsets and describes the first difference.
func committedEqualsEnd(ctx context.Context, adm *kadm.Client, group, topic string, partitions int32) (map[int32]int64, string) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err.Error()
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err.Error()
	}
	endMap := make(map[int32]int64)
	for p := int32(0); p < partitions; p++ {
		e, ok := ends.Lookup(topic, p)
		if !ok || e.Err != nil {
			return nil, fmt.Sprintf("no end offset for partition %d", p)
		}
		c, ok := committed.Lookup(topic, p)
		if !ok || c.Err != nil {
			return nil, fmt.Sprintf("partition %d: nothing committed (end %d)", p, e.Offset)
		}
		if c.At != e.Offset {
			return nil, fmt.Sprintf("partition %d: committed %d, end %d", p, c.At, e.Offset)
		}
		endMap[p] = e.Offset
	}
	return endMap, ""
}

// TestConsumerGroupsWithKgo runs three-plus consumers of one group, with
// eager and with cooperative-sticky assignment, over an 8-partition topic
// while a producer runs; members join and leave mid-stream. Every produced
// record must be consumed and the final commits must equal the end
// offsets — also after the broker restarts on the same metadata and bucket.
func TestConsumerGroupsWithKgo(t *testing.T) {
	ms := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	addr, stop := startGroupsBroker(t, ms, bucket, "127.0.0.1:0")
	adm := groupsAdmin(t, addr)
	const partitions = 8

	modes := []struct {
		name     string
		balancer kgo.GroupBalancer
		protocol string
	}{
		{"eager", kgo.RangeBalancer(), "range"},
		{"cooperative", kgo.CooperativeStickyBalancer(), "cooperative-sticky"},
	}
	want := make(map[string]map[int32]int64) // group -> partition -> end offset
	for _, mode := range modes {
		topic, group := "cg-"+mode.name, "group-"+mode.name
		t.Run(mode.name, func(t *testing.T) {
			createGroupsTopic(t, adm, topic, partitions)
			set := &consumedSet{seen: make(map[int32]map[int64]bool)}
			stopProducing := make(chan struct{})
			producedCh := produceGroupsUntil(t, addr, topic, stopProducing)

			grow := func(by int, what string) {
				t.Helper()
				target := set.count() + by
				waitGroupsUntil(t, 60*time.Second, what, func() bool { return set.count() >= target })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// stable waits for the rebalance after a join or leave to finish
			// with n members, all on the mode's protocol.
			stable := func(n int, what string) {
				t.Helper()
				waitGroupsUntil(t, 60*time.Second, what, func() bool {
					described, err := adm.DescribeGroups(ctx, group)
					if err != nil {
						return false
					}
					dg := described[group]
					return dg.Err == nil && dg.State == "Stable" && dg.Protocol == mode.protocol && len(dg.Members) == n
				})
			}
			c1 := startGroupConsumer(t, addr, group, topic, mode.balancer, set)
			c2 := startGroupConsumer(t, addr, group, topic, mode.balancer, set)
			stable(2, "two members")
			grow(400, "two consumers to consume")
			c3 := startGroupConsumer(t, addr, group, topic, mode.balancer, set)
			stable(3, "a third member")
			grow(400, "three consumers to consume")
			c1.leave()
			stable(2, "the rebalance after a member left")
			grow(400, "consumption after a member left")
			c4 := startGroupConsumer(t, addr, group, topic, mode.balancer, set)
			stable(3, "the rebalance after another member joined")
			grow(400, "consumption after another member joined")

			close(stopProducing)
			produced := <-producedCh
			ends, total := checkDrainedAndCommitted(ctx, t, adm, set, produced, group, topic, partitions)
			for _, c := range []*groupConsumer{c2, c3, c4} {
				c.leave()
			}
			if _, diff := committedEqualsEnd(ctx, adm, group, topic, partitions); diff != "" {
				t.Fatalf("after the consumers left: %s", diff)
			}
			groups, err := adm.ListGroups(ctx, "Empty")
			if _, listed := groups[group]; err != nil || !listed {
				t.Fatalf("group %s not listed as Empty after everyone left: %v %v", group, groups.Groups(), err)
			}
			want[group] = ends
			t.Logf("%s: %d records, committed %v", mode.name, total, ends)
		})
	}
	if t.Failed() {
		return
	}

	stop()
	addr, _ = startGroupsBroker(t, ms, bucket, "127.0.0.1:0")
	adm = groupsAdmin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for group, ends := range want {
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets of %s after restart: %v", group, err)
		}
		topic := "cg-" + strings.TrimPrefix(group, "group-")
		for p, end := range ends {
			c, ok := committed.Lookup(topic, p)
			if !ok || c.Err != nil || c.At != end {
				t.Fatalf("%s partition %d after restart: %+v (ok %v), want %d", group, p, c, ok, end)
			}
		}
	}
}

// TestKcatBalancedConsumer consumes a topic with librdkafka's balanced
// consumer (kcat -G) until end of partitions and checks it exits cleanly
// having read every record and committed to the end.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is required for this test (install it, e.g. apt-get install kcat): %v", err)
	}
	ms := metastoretest.OpenEmbedded(t)
	addr, _ := startGroupsBroker(t, ms, memory.New(), "127.0.0.1:0")
	adm := groupsAdmin(t, addr)
	const topic, group, partitions, records = "kcat-topic", "kcat-group", 3, 90
	createGroupsTopic(t, adm, topic, partitions)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var batch []*kgo.Record
	for i := range records {
		batch = append(batch, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("rec-%03d", i))})
	}
	if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, kcat, "-b", addr, "-G", group, "-e", "-q",
		"-X", "auto.offset.reset=earliest", "-f", "%s\n", topic)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat -G: %v\nstderr:\n%s", err, stderr.String())
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		got[line] = true
	}
	for i := range records {
		if !got[fmt.Sprintf("rec-%03d", i)] {
			t.Fatalf("kcat did not print rec-%03d; printed %d distinct lines\nstderr:\n%s", i, len(got), stderr.String())
		}
	}
	if _, diff := committedEqualsEnd(ctx, adm, group, topic, partitions); diff != "" {
		t.Fatalf("kcat's commits: %s", diff)
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil || described[group].State != "Empty" {
		t.Fatalf("group after kcat exited: %+v %v", described[group], err)
	}
}

// TestConsumerGroupSurvivesBrokerRestart restarts the broker (same address,
// metadata store and bucket) under a running group member: the group comes
// back Stable from the metadata store, the member carries on, and nothing
// is lost or left uncommitted.
func TestConsumerGroupSurvivesBrokerRestart(t *testing.T) {
	ms := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	addr, stop := startGroupsBroker(t, ms, bucket, "127.0.0.1:0")
	adm := groupsAdmin(t, addr)
	const topic, group, partitions = "restart-topic", "restart-group", 4
	createGroupsTopic(t, adm, topic, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	set := &consumedSet{seen: make(map[int32]map[int64]bool)}
	c := startGroupConsumer(t, addr, group, topic, kgo.CooperativeStickyBalancer(), set)
	defer c.leave()
	produce := func(from int) map[int32][]int64 {
		t.Helper()
		pc, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		var batch []*kgo.Record
		for i := from; i < from+200; i++ {
			batch = append(batch, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v")})
		}
		produced := make(map[int32][]int64)
		for _, r := range pc.ProduceSync(ctx, batch...) {
			if r.Err != nil {
				t.Fatalf("produce: %v", r.Err)
			}
			produced[r.Record.Partition] = append(produced[r.Record.Partition], r.Record.Offset)
		}
		return produced
	}
	first := produce(0)
	waitGroupsUntil(t, 60*time.Second, "the first records to be consumed", func() bool { return set.missing(first) == 0 })
	waitGroupsUntil(t, 60*time.Second, "commits to reach the end", func() bool {
		_, diff := committedEqualsEnd(ctx, adm, group, topic, partitions)
		return diff == ""
	})

	stop()
	addr, _ = startGroupsBroker(t, ms, bucket, addr)
	adm = groupsAdmin(t, addr)
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil || described[group].State != "Stable" || len(described[group].Members) != 1 {
		t.Fatalf("group after restart: %+v %v", described[group], err)
	}
	second := produce(200)
	waitGroupsUntil(t, 60*time.Second, "records produced after the restart to be consumed", func() bool { return set.missing(second) == 0 })
	waitGroupsUntil(t, 60*time.Second, "commits to reach the new end", func() bool {
		_, diff := committedEqualsEnd(ctx, adm, group, topic, partitions)
		return diff == ""
	})
}
