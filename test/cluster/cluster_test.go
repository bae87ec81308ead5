// Package cluster tests floe as a cluster of broker processes (DESIGN §6):
// three `floe serve` processes on loopback sharing one external etcd and one
// versitygw bucket. Clients written by others (franz-go, kcat,
// confluent-kafka-python) bootstrap through any broker; the tests kill,
// stop and move brokers and partitions and check that no acknowledged
// record is lost and offsets stay dense.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/testutil/floeproc"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

// leaseTTL is short so failover tests run quickly; production uses 6s.
const leaseTTL = "2s"

type cluster struct {
	t       *testing.T
	etcd    []string
	s3      *s3server.Server
	bucket  string
	brokers []*floeproc.Floe
}

// startCluster starts n brokers (node ids 0..n-1) on one etcd and bucket.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, etcd: metastoretest.StartEtcd(t), s3: s3server.Start(t)}
	c.bucket = c.s3.Bucket(t, "floe-cluster")
	for i := range n {
		c.addBroker(i, extra...)
	}
	return c
}

func (c *cluster) addBroker(id int, extra ...string) *floeproc.Floe {
	c.t.Helper()
	args := append([]string{
		"--node-id=" + strconv.Itoa(id),
		"--broker-lease-ttl=" + leaseTTL,
		"--wal-flush-interval=50ms",
		"--drain-timeout=10s",
	}, extra...)
	f := floeproc.Start(c.t, floeproc.Options{EtcdEndpoints: c.etcd, S3: c.s3, Bucket: c.bucket, Args: args})
	c.brokers = append(c.brokers, f)
	return f
}

func (c *cluster) seeds() []string {
	var out []string
	for _, b := range c.brokers {
		out = append(out, b.KafkaAddr())
	}
	return out
}

// seedsExcept is the bootstrap list without broker i.
func (c *cluster) seedsExcept(i int) string {
	var out []string
	for j, b := range c.brokers {
		if j != i {
			out = append(out, b.KafkaAddr())
		}
	}
	return strings.Join(out, ",")
}

func (c *cluster) client(t *testing.T, bootstrap string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// admin is an admin client whose metadata is never cached for long
// (franz-go otherwise answers Metadata from a cache of recent answers).
func (c *cluster) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(c.client(t, strings.Join(c.seeds(), ","), kgo.MetadataMinAge(10*time.Millisecond)))
}

func createTopic(t *testing.T, adm *kadm.Client, name string, parts int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, parts, 1, nil, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// leaders returns each partition's leader as Metadata reports it, once
// every partition has one (metadata reaches every broker within
// milliseconds of a change, as in Kafka, not at once).
func leaders(t *testing.T, adm *kadm.Client, topic string) map[int32]int32 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := adm.Metadata(ctx, topic)
		cancel()
		out := map[int32]int32{}
		complete := err == nil && len(md.Topics[topic].Partitions) > 0
		if complete {
			for p, pd := range md.Topics[topic].Partitions {
				out[p] = pd.Leader
				complete = complete && pd.Leader >= 0
			}
		}
		if complete {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: partitions without a leader after 15s: %v (err %v)", topic, out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLeader waits until topic/p is led by node (when node >= 0) or by
// anyone but notNode (when node < 0), and returns the leader.
func waitLeader(t *testing.T, adm *kadm.Client, topic string, p, node, notNode int32, timeout time.Duration) int32 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		md, err := adm.Metadata(ctx, topic)
		cancel()
		if err == nil {
			pd := md.Topics[topic].Partitions[p]
			if pd.Err == nil && pd.Leader >= 0 && ((node >= 0 && pd.Leader == node) || (node < 0 && pd.Leader != notNode)) {
				return pd.Leader
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%d: no expected leader after %v", topic, p, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ackLog records what a producer was told.
type ackLog struct {
	mu    sync.Mutex
	acked map[int32]map[int64]string // partition -> offset -> value
	errs  []error
}

func newAckLog() *ackLog { return &ackLog{acked: map[int32]map[int64]string{}} }

func (a *ackLog) add(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, err)
		return
	}
	if a.acked[r.Partition] == nil {
		a.acked[r.Partition] = map[int64]string{}
	}
	if prev, dup := a.acked[r.Partition][r.Offset]; dup {
		a.errs = append(a.errs, fmt.Errorf("offset %d/%d acknowledged twice (%q and %q)", r.Partition, r.Offset, prev, r.Value))
	}
	a.acked[r.Partition][r.Offset] = string(r.Value)
}

func (a *ackLog) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.acked {
		n += len(m)
	}
	return n
}

// verify consumes the whole topic and checks: every acknowledged record is
// at its offset, offsets are dense from 0, and no value appears twice.
func verify(t *testing.T, bootstrap, topic string, parts int32, acks *ackLog) {
	t.Helper()
	adm := kadm.NewClient(mustClient(t, bootstrap))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	cl := mustClient(t, bootstrap, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got := map[int32]map[int64]string{}
	n := int64(0)
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", n, total, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if got[r.Partition] == nil {
				got[r.Partition] = map[int64]string{}
			}
			if _, dup := got[r.Partition][r.Offset]; dup {
				t.Errorf("offset %d/%d consumed twice", r.Partition, r.Offset)
			}
			got[r.Partition][r.Offset] = string(r.Value)
			n++
		})
	}
	seen := map[string]string{}
	for p := range parts {
		m := got[p]
		for off := int64(0); off < int64(len(m)); off++ {
			v, ok := m[off]
			if !ok {
				t.Fatalf("partition %d: offset %d missing (%d records): offsets not dense", p, off, len(m))
			}
			where := fmt.Sprintf("%d/%d", p, off)
			if prev, dup := seen[v]; dup {
				t.Errorf("value %q at %s and %s", v, prev, where)
			}
			seen[v] = where
		}
	}
	acks.mu.Lock()
	defer acks.mu.Unlock()
	lost := 0
	for p, m := range acks.acked {
		for off, v := range m {
			if got[p][off] != v {
				lost++
				if lost < 5 {
					t.Errorf("acknowledged %q at %d/%d, log has %q", v, p, off, got[p][off])
				}
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost or moved", lost)
	}
	t.Logf("verified %d records over %d partitions: dense, no duplicates, every acknowledged record present", total, parts)
}

func mustClient(t *testing.T, bootstrap string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// clusterStatus reads /v1/cluster from a broker's admin API.
func clusterStatus(t *testing.T, f *floeproc.Floe) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + f.AdminAddr() + "/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}
