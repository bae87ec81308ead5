package broker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/memory"
)

// start848Consumer runs one kgo member of a KIP-848 ("consumer" protocol)
// group, polling in the background. ServerSideBalancer is franz-go's opt-in;
// the balancer picks the server-side assignor (sticky: "uniform", range:
// "range").
func start848Consumer(t *testing.T, addr, group, topic string, balancer kgo.GroupBalancer, set *consumedSet, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RebalanceTimeout(20 * time.Second),
		kgo.AutoCommitInterval(300 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, opts...)...)
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

// stable848 waits until a consumer group is Stable with n members that
// together own every partition of the topic, each exactly once.
func stable848(t *testing.T, ctx context.Context, adm *kadm.Client, group, topic string, n int, partitions int32, what string) kadm.DescribedConsumerGroup {
	t.Helper()
	var last kadm.DescribedConsumerGroup
	waitGroupsUntil(t, 90*time.Second, what, func() bool {
		described, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false
		}
		last = described[group]
		if last.Err != nil || last.State != "Stable" || len(last.Members) != n {
			return false
		}
		owned := map[int32]int{}
		for _, m := range last.Members {
			if m.MemberType != 1 || m.MemberEpoch != last.Epoch {
				return false
			}
			for p := range m.Assignment[topic] {
				owned[p]++
			}
		}
		for p := range partitions {
			if owned[p] != 1 {
				return false
			}
		}
		return len(owned) == int(partitions)
	})
	return last
}

// TestKIP848ConsumerGroupWithKgo runs franz-go members of a KIP-848 group,
// with each server-side assignor, over an 8-partition topic while a
// producer runs; members join and leave mid-stream. Every produced record
// must be consumed, the final commits must equal the end offsets, and after
// a broker restart the group and its offsets are still there.
func TestKIP848ConsumerGroupWithKgo(t *testing.T) {
	ms := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	addr, stop := startGroupsBroker(t, ms, bucket, "127.0.0.1:0")
	adm := groupsAdmin(t, addr)
	const partitions = 8

	modes := []struct {
		name     string
		balancer kgo.GroupBalancer
		assignor string
	}{
		{"uniform", kgo.StickyBalancer(), "uniform"},
		{"range", kgo.RangeBalancer(), "range"},
	}
	type result struct {
		group, topic string
		ends         map[int32]int64
		epoch        int32
	}
	var results []result
	for _, mode := range modes {
		topic, group := "cg848-"+mode.name, "group848-"+mode.name
		t.Run(mode.name, func(t *testing.T) {
			createGroupsTopic(t, adm, topic, partitions)
			set := &consumedSet{seen: make(map[int32]map[int64]bool)}
			stopProducing := make(chan struct{})
			producedCh := produceGroupsUntil(t, addr, topic, stopProducing)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			grow := func(by int, what string) {
				t.Helper()
				target := set.count() + by
				waitGroupsUntil(t, 60*time.Second, what, func() bool { return set.count() >= target })
			}
			stable := func(n int, what string) {
				t.Helper()
				d := stable848(t, ctx, adm, group, topic, n, partitions, what)
				if d.AssignorName != mode.assignor {
					t.Fatalf("assignor %q, want %q", d.AssignorName, mode.assignor)
				}
			}

			c1 := start848Consumer(t, addr, group, topic, mode.balancer, set)
			c2 := start848Consumer(t, addr, group, topic, mode.balancer, set)
			stable(2, "two members")
			grow(400, "two consumers to consume")
			c3 := start848Consumer(t, addr, group, topic, mode.balancer, set)
			stable(3, "a third member")
			grow(400, "three consumers to consume")
			c1.leave()
			stable(2, "the rebalance after a member left")
			grow(400, "consumption after a member left")
			c4 := start848Consumer(t, addr, group, topic, mode.balancer, set)
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
			listed, err := adm.ListGroupsByType(ctx, []string{"consumer"}, "Empty")
			if _, ok := listed[group]; err != nil || !ok {
				t.Fatalf("group %s not listed as an Empty consumer group: %v %v", group, listed, err)
			}
			described, err := adm.DescribeConsumerGroups(ctx, group)
			if err != nil || described[group].State != "Empty" {
				t.Fatalf("group after everyone left: %+v %v", described[group], err)
			}
			results = append(results, result{group, topic, ends, described[group].Epoch})
			t.Logf("%s: %d records, committed %v, group epoch %d", mode.name, total, ends, described[group].Epoch)
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
	for _, r := range results {
		described, err := adm.DescribeConsumerGroups(ctx, r.group)
		if err != nil || described[r.group].Err != nil || described[r.group].State != "Empty" || described[r.group].Epoch != r.epoch {
			t.Fatalf("%s after restart: %+v %v (want Empty at epoch %d)", r.group, described[r.group], err, r.epoch)
		}
		committed, err := adm.FetchOffsets(ctx, r.group)
		if err != nil {
			t.Fatalf("fetch offsets of %s after restart: %v", r.group, err)
		}
		for p, end := range r.ends {
			c, ok := committed.Lookup(r.topic, p)
			if !ok || c.Err != nil || c.At != end {
				t.Fatalf("%s partition %d after restart: %+v (ok %v), want %d", r.group, p, c, ok, end)
			}
		}
	}
}

// TestKIP848GroupSurvivesBrokerRestart restarts the broker (same address,
// metadata store and bucket) under running KIP-848 members: the group comes
// back from the metadata store with the same members and epochs, the
// members carry on heartbeating without rejoining, and records produced
// after the restart are consumed and committed.
func TestKIP848GroupSurvivesBrokerRestart(t *testing.T) {
	ms := metastoretest.OpenEmbedded(t)
	bucket := memory.New()
	addr, stop := startGroupsBroker(t, ms, bucket, "127.0.0.1:0")
	adm := groupsAdmin(t, addr)
	const topic, group, partitions = "restart848-topic", "restart848-group", 4
	createGroupsTopic(t, adm, topic, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	set := &consumedSet{seen: make(map[int32]map[int64]bool)}
	c1 := start848Consumer(t, addr, group, topic, kgo.StickyBalancer(), set)
	defer c1.leave()
	c2 := start848Consumer(t, addr, group, topic, kgo.StickyBalancer(), set, kgo.InstanceID("static-2"))
	defer c2.leave()
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
	before := stable848(t, ctx, adm, group, topic, 2, partitions, "two members")
	first := produce(0)
	waitGroupsUntil(t, 60*time.Second, "the first records to be consumed", func() bool { return set.missing(first) == 0 })
	waitGroupsUntil(t, 60*time.Second, "commits to reach the end", func() bool {
		_, diff := committedEqualsEnd(ctx, adm, group, topic, partitions)
		return diff == ""
	})

	stop()
	addr, _ = startGroupsBroker(t, ms, bucket, addr)
	adm = groupsAdmin(t, addr)
	described, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil || described[group].State != "Stable" || described[group].Epoch != before.Epoch || len(described[group].Members) != 2 {
		t.Fatalf("group after restart: %+v %v (before: %+v)", described[group], err, before)
	}
	second := produce(200)
	waitGroupsUntil(t, 60*time.Second, "records produced after the restart to be consumed", func() bool { return set.missing(second) == 0 })
	waitGroupsUntil(t, 60*time.Second, "commits to reach the new end", func() bool {
		_, diff := committedEqualsEnd(ctx, adm, group, topic, partitions)
		return diff == ""
	})
	after := stable848(t, ctx, adm, group, topic, 2, partitions, "the group after the restart")
	if after.Epoch != before.Epoch {
		t.Fatalf("group epoch moved from %d to %d across the restart: members rejoined", before.Epoch, after.Epoch)
	}
	for i := range before.Members {
		if after.Members[i].MemberID != before.Members[i].MemberID {
			t.Fatalf("member %d changed from %s to %s across the restart", i, before.Members[i].MemberID, after.Members[i].MemberID)
		}
	}
}
