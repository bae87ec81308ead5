package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/floeproc"
)

// floectl finds bin/floectl next to the floe binary the tests run.
func floectl(t *testing.T) string {
	t.Helper()
	bin, err := floeproc.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(bin), "floectl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("floectl not built next to %s (make build): %v", bin, err)
	}
	return p
}

// fill produces mib MiB into topic (one partition) with floectl's load
// generator, a non-race binary, so gigabytes take seconds.
func fill(t *testing.T, c *cluster, topic string, mib int) {
	t.Helper()
	const recordBytes = 64 << 10
	records := mib << 20 / recordBytes
	start := time.Now()
	out, err := exec.Command(floectl(t), "bench", "produce", "--brokers", strings.Join(c.seeds(), ","),
		"--topic", topic, "--partitions", "1", "--records", strconv.Itoa(records), "--record-bytes", strconv.Itoa(recordBytes)).CombinedOutput()
	if err != nil {
		t.Fatalf("floectl bench produce: %v\n%s", err, out)
	}
	t.Logf("filled %s with %d MiB in %v: %s", topic, mib, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
}

// TestReassignmentTime moves partitions holding 10 MiB, 100 MiB and
// 1 GiB (FLOE_REASSIGN_BIG_MIB overrides) with Kafka's reassignment API and
// reports how long each took until a produce on the new leader succeeded:
// the time must not depend on the data held (nothing is copied).
func TestReassignmentTime(t *testing.T) {
	c := startCluster(t, 3)
	adm := c.admin(t)
	big := 1024
	if v := os.Getenv("FLOE_REASSIGN_BIG_MIB"); v != "" {
		big, _ = strconv.Atoi(v)
	}
	sizes := []struct {
		topic string
		mib   int
	}{{"small", 10}, {"medium", 100}, {"big", big}}
	for _, s := range sizes {
		createTopic(t, adm, s.topic, 1)
		fill(t, c, s.topic, s.mib)
	}
	for _, s := range sizes {
		ends, err := adm.ListEndOffsets(context.Background(), s.topic)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := ends.Lookup(s.topic, 0)
		from := leaders(t, adm, s.topic)[0]
		to := (from + 1) % 3
		took := moveAndProbe(t, c, adm, s.topic, to)
		t.Logf("REASSIGN %s (%d MiB, %d records): broker %d -> %d, request -> first acknowledged produce on the new leader: %v",
			s.topic, s.mib, before.Offset, from, to, took.Round(time.Millisecond))
		ends, err = adm.ListEndOffsets(context.Background(), s.topic)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := ends.Lookup(s.topic, 0)
		if after.Offset != before.Offset+1 {
			t.Fatalf("%s: end offset %d after the move and one produce, want %d", s.topic, after.Offset, before.Offset+1)
		}
		// The new leader serves the old data too.
		cl := mustClient(t, strings.Join(c.seeds(), ","), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().At(0)}}))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		fs := cl.PollRecords(ctx, 1)
		cancel()
		if recs := fs.Records(); len(recs) == 0 || recs[0].Offset != 0 {
			t.Fatalf("%s: reading offset 0 from the new leader: %v", s.topic, fs.Errors())
		}
	}
}

// moveAndProbe reassigns topic/0 to node and returns the time until a
// produce to it was acknowledged.
func moveAndProbe(t *testing.T, c *cluster, adm *kadm.Client, topic string, node int32) time.Duration {
	t.Helper()
	cl := mustClient(t, strings.Join(c.seeds(), ","), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }), kgo.MetadataMinAge(10*time.Millisecond))
	// Warm the client so the measurement is the move, not the connection.
	if err := cl.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, []int32{node})
	res, err := adm.AlterPartitionAssignments(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Sorted() {
		if r.Err != nil {
			t.Fatalf("reassign %s/%d: %v %s", r.Topic, r.Partition, r.Err, r.ErrMessage)
		}
	}
	waitLeader(t, adm, topic, 0, node, -1, 30*time.Second)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Value: []byte("after-move")}).FirstErr(); err != nil {
		t.Fatalf("produce after move: %v", err)
	}
	return time.Since(start)
}

// TestScaleOut: a broker joining a loaded two-broker cluster gets its share
// of partitions from the balancer, with no record lost.
func TestScaleOut(t *testing.T) {
	c := startCluster(t, 2, "--balance-interval=1s")
	adm := c.admin(t)
	const topic, parts = "scale", 9
	createTopic(t, adm, topic, parts)
	l := startLoad(t, c, topic, parts, "s")
	time.Sleep(2 * time.Second)
	start := time.Now()
	c.addBroker(2, "--balance-interval=1s")
	ready := time.Since(start)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		for _, l := range leaders(t, adm, topic) {
			if l == 2 {
				n++
			}
		}
		if n >= parts/3-1 {
			t.Logf("SCALE-OUT: broker 2 started and ready in %v; leads %d of %d partitions %v after start", ready.Round(time.Millisecond), n, parts, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker 2 leads %d partitions 60s after joining; status %v", n, clusterStatus(t, c.brokers[0]))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	l.finish(t)
	verify(t, strings.Join(c.seeds(), ","), topic, parts, l.acks)
}

// TestFloectlMoveAndBalanceStatus: the operator commands for moving a
// partition and reading the balancer.
func TestFloectlMoveAndBalanceStatus(t *testing.T) {
	c := startCluster(t, 3, "--balance-interval=1s")
	adm := c.admin(t)
	createTopic(t, adm, "ops", 3)
	from := leaders(t, adm, "ops")[1]
	to := (from + 1) % 3
	out, err := exec.Command(floectl(t), "partition", "move", "--brokers", strings.Join(c.seeds(), ","),
		"--topic", "ops", "--partition", "1", "--to", strconv.Itoa(int(to))).CombinedOutput()
	if err != nil {
		t.Fatalf("floectl partition move: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), fmt.Sprintf("broker %d -> %d in", from, to)) {
		t.Fatalf("unexpected output: %s", out)
	}
	if got := leaders(t, adm, "ops")[1]; got != to {
		t.Fatalf("ops/1 led by %d after the move, want %d", got, to)
	}
	time.Sleep(1500 * time.Millisecond) // one balance round
	out, err = exec.Command(floectl(t), "cluster", "balance", "status", "--admin", c.brokers[2].AdminAddr()).CombinedOutput()
	if err != nil {
		t.Fatalf("floectl cluster balance status: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	// The move above may have unbalanced the cluster; the balancer then
	// moves something within a round, which the status lists.
	for _, want := range []string{"3 brokers", "controller", "balance: ", "NODE", "live"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("balance status lacks %q:\n%s", want, out)
		}
	}
}
