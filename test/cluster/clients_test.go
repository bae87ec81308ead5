package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/tool"
)

// TestThreeBrokersClients: franz-go, kcat and confluent-kafka-python each
// produce through one broker and consume through another; partitions are
// spread over the three brokers.
func TestThreeBrokersClients(t *testing.T) {
	kcat := tool.Look(t, "kcat")
	// Debian's interpreter has python3-confluent-kafka (make deps); a
	// pyenv or venv python on PATH usually does not.
	python := tool.Look(t, "/usr/bin/python3")
	c := startCluster(t, 3)
	adm := c.admin(t)
	const topic, parts = "spread", 6
	createTopic(t, adm, topic, parts)
	per := map[int32]int{}
	for _, l := range leaders(t, adm, topic) {
		per[l]++
	}
	if len(per) != 3 {
		t.Fatalf("6 partitions led by %v, want all 3 brokers", per)
	}
	md, err := adm.BrokerMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 || md.Controller < 0 {
		t.Fatalf("metadata: brokers %v controller %d", md.Brokers, md.Controller)
	}

	want := map[string]bool{}
	// franz-go through broker 0.
	cl := c.client(t, c.brokers[0].KafkaAddr(), kgo.DefaultProduceTopic(topic))
	for i := range 300 {
		v := fmt.Sprintf("franz-%d", i)
		want[v] = true
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("franz-go produce: %v", err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// kcat through broker 1.
	var in bytes.Buffer
	for i := range 300 {
		v := fmt.Sprintf("kcat-%d", i)
		want[v] = true
		fmt.Fprintf(&in, "%s:%s\n", v, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", c.brokers[1].KafkaAddr(), "-t", topic, "-K", ":", "-X", "acks=all")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	// confluent-kafka-python through broker 2.
	script := `
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all"})
errs = []
def cb(err, msg):
    if err is not None:
        errs.append(err)
for i in range(300):
    v = "python-%d" % i
    p.produce(sys.argv[2], key=v, value=v, on_delivery=cb)
p.flush(60)
if errs:
    sys.exit("delivery errors: %s" % errs[:3])
`
	for i := range 300 {
		want[fmt.Sprintf("python-%d", i)] = true
	}
	if out, err := exec.CommandContext(ctx, python, "-c", script, c.brokers[2].KafkaAddr(), topic).CombinedOutput(); err != nil {
		t.Fatalf("python produce: %v\n%s", err, out)
	}

	// kcat consumes through broker 2, python through broker 0, franz-go through broker 1.
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", c.brokers[2].KafkaAddr(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	checkValues(t, "kcat", strings.Fields(string(out)), want)
	consume := `
import sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "py-cluster", "auto.offset.reset": "earliest", "enable.partition.eof": True})
c.subscribe([sys.argv[2]])
want, eof, seen = int(sys.argv[3]), set(), 0
while True:
    m = c.poll(30)
    if m is None:
        sys.exit("timeout after %d records" % seen)
    if m.error():
        if m.error().code() == -191:  # _PARTITION_EOF
            eof.add(m.partition())
            if seen >= want:
                break
            continue
        sys.exit(str(m.error()))
    print(m.value().decode())
    seen += 1
c.close()
`
	out, err = exec.CommandContext(ctx, python, "-c", consume, c.brokers[0].KafkaAddr(), topic, "900").Output()
	if err != nil {
		t.Fatalf("python consume: %v\n%s", err, out)
	}
	checkValues(t, "python", strings.Fields(string(out)), want)
	fc := c.client(t, c.brokers[1].KafkaAddr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		fs := fc.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	checkValues(t, "franz-go", got, want)
}

func checkValues(t *testing.T, who string, got []string, want map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, v := range got {
		if !want[v] {
			t.Fatalf("%s read unexpected value %q", who, v)
		}
		if seen[v] {
			t.Fatalf("%s read %q twice", who, v)
		}
		seen[v] = true
	}
	if len(seen) != len(want) {
		var missing []string
		for v := range want {
			if !seen[v] {
				missing = append(missing, v)
			}
		}
		sort.Strings(missing)
		t.Fatalf("%s read %d of %d values; missing e.g. %v", who, len(seen), len(want), missing[:min(5, len(missing))])
	}
}
