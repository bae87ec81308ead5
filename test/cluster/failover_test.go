package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// load produces to every partition of topic through the cluster with an
// idempotent acks=all franz-go producer until stop is closed.
type load struct {
	acks *ackLog
	n    atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startLoad(t *testing.T, c *cluster, topic string, parts int32, prefix string) *load {
	t.Helper()
	l := &load{acks: newAckLog(), stop: make(chan struct{}), done: make(chan struct{})}
	cl := mustClient(t, strings.Join(c.seeds(), ","),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100*time.Millisecond))
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				cl.Flush(context.Background())
				wg.Wait()
				return
			default:
			}
			v := fmt.Sprintf("%s-%d", prefix, i)
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Partition: int32(i) % parts, Value: []byte(v)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				l.acks.add(r, err)
				l.n.Add(1)
			})
			if i%50 == 49 {
				time.Sleep(5 * time.Millisecond) // ~10k records/s
			}
		}
	}()
	return l
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	select {
	case <-l.done:
	case <-time.After(90 * time.Second):
		t.Fatal("producer did not finish")
	}
	l.acks.mu.Lock()
	defer l.acks.mu.Unlock()
	if len(l.acks.errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(l.acks.errs), l.acks.errs[0])
	}
}

// probe produces one record to topic/p and returns how long until it was
// acknowledged (the client retries through NOT_LEADER and reconnects).
func probe(t *testing.T, c *cluster, topic string, p int32) time.Duration {
	t.Helper()
	cl := mustClient(t, strings.Join(c.seeds(), ","), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond))
	start := time.Now()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte("probe-" + start.Format(time.RFC3339Nano))}).FirstErr(); err != nil {
		t.Fatalf("probe produce to %s/%d: %v", topic, p, err)
	}
	return time.Since(start)
}

// TestFailoverSIGKILL: the broker leading a partition is SIGKILLed under
// load; another broker serves the partition within the lease TTL, and no
// acknowledged record is lost.
func TestFailoverSIGKILL(t *testing.T) {
	c := startCluster(t, 3)
	adm := c.admin(t)
	const topic, parts = "failover", 6
	createTopic(t, adm, topic, parts)
	l := startLoad(t, c, topic, parts, "v")
	time.Sleep(2 * time.Second)
	victim := leaders(t, adm, topic)[0]
	t.Logf("killing broker %d (leads %s/0) after %d records", victim, topic, l.n.Load())
	kill := time.Now()
	c.brokers[victim].Kill()
	probe(t, c, topic, 0)
	took := time.Since(kill)
	newLeader := waitLeader(t, adm, topic, 0, -1, victim, 30*time.Second)
	t.Logf("FAILOVER: SIGKILL -> first acknowledged produce on %s/0 (now led by %d): %v (lease TTL %s)",
		topic, newLeader, took.Round(time.Millisecond), leaseTTL)
	time.Sleep(time.Second)
	// The killed broker comes back as a fresh incarnation.
	c.brokers[victim].Restart()
	time.Sleep(2 * time.Second)
	l.finish(t)
	t.Logf("acknowledged %d records", l.acks.count())
	verify(t, strings.Join(c.seeds(), ","), topic, parts, l.acks)
}

// TestGracefulShutdown: SIGTERM hands a broker's partitions over before it
// exits; its producers see retriable errors at most, and nothing is lost.
func TestGracefulShutdown(t *testing.T) {
	c := startCluster(t, 3)
	adm := c.admin(t)
	const topic, parts = "drain", 6
	createTopic(t, adm, topic, parts)
	l := startLoad(t, c, topic, parts, "d")
	time.Sleep(2 * time.Second)
	victim := leaders(t, adm, topic)[0]
	start := time.Now()
	c.brokers[victim].Stop()
	t.Logf("SIGTERM of broker %d: exited after %v", victim, time.Since(start))
	// Every partition was handed over before the process exited.
	for p, leader := range leaders(t, kadm.NewClient(mustClient(t, c.seedsExcept(int(victim)), kgo.MetadataMinAge(10*time.Millisecond))), topic) {
		if leader == victim {
			t.Fatalf("partition %d led by %d after the graceful stop of %d", p, leader, victim)
		}
	}
	time.Sleep(time.Second)
	l.finish(t)
	verify(t, c.seedsExcept(int(victim)), topic, parts, l.acks)
}
