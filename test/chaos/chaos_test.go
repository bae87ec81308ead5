// Package chaos runs floe's broker cluster under a bounded, seeded schedule
// of faults and checks what clients were promised (DESIGN §6, issue 6 item
// 7): three `floe serve` processes on a real three-member etcd cluster
// (`floe etcd` processes) and versitygw behind a fault-injecting proxy;
// idempotent acks=all producers and a consumer group run throughout while
// brokers are SIGKILLed, SIGSTOPped past their lease and SIGTERMed, an etcd
// member is killed, and the object store fails and slows down. At the end
// a checker reads the whole log and reports acknowledged records lost,
// duplicates, offsets out of order or not dense, a stuck consumer group,
// and availability over time. See README.md.
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/floeproc"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

const (
	// leaseTTL is short so that a SIGSTOPped broker loses its partitions
	// within seconds (production uses 6s).
	leaseTTL = 2 * time.Second

	topic     = "chaos"
	numParts  = 12
	group     = "chaos-group"
	producers = 2
	consumers = 3

	defaultDuration = 3 * time.Minute
	defaultRate     = 250 // records per second per producer

	// warmup is load without faults before the first fault.
	warmup = 5 * time.Second
	// calm is load without faults after the last one: the cluster must be
	// serving every partition again by its end.
	calm = 15 * time.Second
	// calmAck is how recently every partition must have acknowledged a
	// record at the end of the calm period.
	calmAck = 10 * time.Second
	// flushTimeout bounds waiting for the producers' last acks.
	flushTimeout = 2 * time.Minute
	// groupCatchUp bounds how long after the load stops the group's
	// committed offsets may take to reach the end offsets.
	groupCatchUp = 60 * time.Second
	// reserve is the test time kept for everything but the faults (setup,
	// recovery, draining the producers, checks).
	reserve = 5 * time.Minute
)

// Environment knobs (all optional).
const (
	envDuration = "FLOE_CHAOS_DURATION" // e.g. 30m: how long faults run
	envSeed     = "FLOE_CHAOS_SEED"     // replay a run's schedule
	envRate     = "FLOE_CHAOS_RATE"     // records/s per producer
	envReport   = "FLOE_CHAOS_REPORT"   // also write the report to this file
	envFaults   = "FLOE_CHAOS_FAULTS"   // comma-separated subset of kill,stop,term,etcd,s3
	envLogs     = "FLOE_CHAOS_LOGS"     // copy every broker and etcd log into this directory
)

func TestChaos(t *testing.T) {
	duration := envDurationOr(t, envDuration, defaultDuration)
	if dl, ok := t.Deadline(); ok {
		if avail := time.Until(dl) - reserve; avail < duration {
			if avail < 30*time.Second {
				t.Fatalf("go test -timeout leaves %v; the chaos run needs %v of faults plus about %v; raise -timeout",
					time.Until(dl).Round(time.Second), duration, reserve)
			}
			t.Logf("chaos: -timeout leaves room for %v of faults, not %v; raise -timeout for a longer run", avail.Round(time.Second), duration)
			duration = avail
		}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(envSeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSeed, s, err)
		}
		seed = v
	}
	rate := defaultRate
	if s := os.Getenv(envRate); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("%s=%q: want a positive integer", envRate, s)
		}
		rate = v
	}
	kinds, s3Windows := faultKinds(t)
	t.Logf("chaos: seed %d (replay the schedule with %s=%d), %v of faults, %d producers x %d records/s, %d consumers",
		seed, envSeed, seed, duration, producers, rate, consumers)

	// The cluster: etcd first so it stops last, then S3 and its proxy,
	// then the brokers.
	etcd := startEtcdCluster(t, 3)
	s3 := s3server.Start(t)
	bucket := s3.Bucket(t, "floe-chaos")
	proxy := startS3Proxy(t, s3.Endpoint, seed)
	var brokers []*floeproc.Floe
	for id := range 3 {
		brokers = append(brokers, floeproc.Start(t, floeproc.Options{
			EtcdEndpoints:       etcd.endpoints(),
			S3:                  s3,
			Bucket:              bucket,
			ObjectStoreEndpoint: proxy.URL(),
			Args: []string{
				"--node-id=" + strconv.Itoa(id),
				"--broker-lease-ttl=" + leaseTTL.String(),
				"--wal-flush-interval=50ms",
				"--drain-timeout=10s",
			},
		}))
	}
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.KafkaAddr())
	}
	if dir := os.Getenv(envLogs); dir != "" {
		// Registered after the processes start, so it runs before they
		// stop (and before their temporary directories go).
		t.Cleanup(func() { copyLogs(t, dir, brokers, etcd) })
	}
	adm := newAdmin(t, seeds)
	createTopic(t, adm)

	rec := newRecorder(time.Now())
	var cons []*consumer
	for i := range consumers {
		cons = append(cons, startConsumer(t, i, seeds, topic, group, rec))
	}
	var prods []*producer
	for i := range producers {
		prods = append(prods, startProducer(t, i, seeds, topic, numParts, rate, rec))
	}
	// Stop the load if the test ends early (a Fatal mid-run); the normal
	// path stops it explicitly before checking.
	t.Cleanup(func() {
		for _, p := range prods {
			select {
			case <-p.stop:
			default:
				_ = p.finish(5 * time.Second)
			}
		}
		for _, c := range cons {
			select {
			case <-c.done:
			default:
				c.close()
			}
		}
	})
	stopLag := sampleLag(adm, rec)
	defer stopLag()

	rng := rand.New(rand.NewPCG(seed, 1))
	ch := &chaos{t: t, rng: rng, etcd: etcd, brokers: brokers, proxy: proxy, rec: rec, kinds: kinds, paused: -1}
	t.Cleanup(ch.resumePaused)
	time.Sleep(warmup)
	faultsStart := time.Now()
	until := faultsStart.Add(duration)
	stopS3 := make(chan struct{})
	s3Done := make(chan struct{})
	go func() {
		defer close(s3Done)
		if s3Windows {
			ch.runObjectStoreWindows(rand.New(rand.NewPCG(seed, 2)), stopS3)
		}
	}()
	s3Stopped := false
	stopS3Faults := func() {
		if !s3Stopped {
			s3Stopped = true
			close(stopS3)
			<-s3Done
		}
	}
	defer stopS3Faults()
	ch.runProcessFaults(until)
	if wait := time.Until(until); wait > 0 {
		time.Sleep(wait)
	}
	stopS3Faults()
	faultsEnd := time.Now()
	rec.event("faults end")
	t.Logf("chaos: faults over after %v; object store proxy: %s", faultsEnd.Sub(faultsStart).Round(time.Second), proxy.stats())

	// Recovery: the cluster is whole, and by the end of a calm period
	// every partition acknowledges records again.
	ch.waitBrokersLive(60 * time.Second)
	time.Sleep(calm)
	var problems []string
	now := time.Now()
	rec.mu.Lock()
	for p := range int32(numParts) {
		last, ok := rec.lastAck[p]
		if !ok || now.Sub(last) > calmAck {
			problems = append(problems, fmt.Sprintf("partition %d: not serving: no acknowledged record in the last %v of a %v calm period after the faults (last ack %s)",
				p, calmAck, calm, last.Format("15:04:05.000")))
		}
	}
	rec.mu.Unlock()

	// Stop the load and drain the producers.
	for _, p := range prods {
		if err := p.finish(flushTimeout); err != nil {
			problems = append(problems, err.Error())
		}
	}
	rec.loadEnded = time.Now()
	stopLag()
	t.Logf("chaos: load stopped: %d records acknowledged, %d produce errors; group consumers received %d",
		rec.ackCount(), rec.failed, rec.consumed.Load())

	// The group must catch up with the log it was reading.
	problems = append(problems, checkGroup(t, adm)...)
	for _, c := range cons {
		c.close()
	}

	// Read everything back and compare with what clients were told.
	log := readLog(t, seeds)
	problems = append(problems, check(log, rec)...)

	report := buildReport(rec, log, ch, proxy, seed, faultsStart, faultsEnd, problems)
	t.Log("\n" + report)
	if p := os.Getenv(envReport); p != "" {
		if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	if len(problems) > 0 {
		t.Errorf("chaos run (seed %d) found %d problems:\n  %s", seed, len(problems), strings.Join(problems, "\n  "))
	}
}

// faultKinds reads FLOE_CHAOS_FAULTS: the process faults to run and
// whether object-store windows run (default: everything).
func faultKinds(t *testing.T) ([]brokerFault, bool) {
	t.Helper()
	s := os.Getenv(envFaults)
	if s == "" {
		var all []brokerFault
		for f := range numFaults {
			all = append(all, f)
		}
		return all, true
	}
	var kinds []brokerFault
	s3 := false
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "s3" {
			s3 = true
			continue
		}
		f, ok := faultNames[name]
		if !ok {
			t.Fatalf("%s=%q: unknown fault %q; want a comma-separated subset of kill,stop,term,etcd,s3", envFaults, s, name)
		}
		kinds = append(kinds, f)
	}
	t.Logf("chaos: faults limited to %s by %s", s, envFaults)
	return kinds, s3
}

// copyLogs copies every process's log into dir, to read after the run.
func copyLogs(t *testing.T, dir string, brokers []*floeproc.Floe, etcd *etcdCluster) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("copy logs: %v", err)
		return
	}
	cp := func(from, name string) {
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			t.Errorf("copy log %s: %v", from, err)
		}
	}
	for i, b := range brokers {
		cp(b.LogPath(), fmt.Sprintf("broker%d.log", i))
	}
	for _, m := range etcd.members {
		cp(m.logPath, m.name+".log")
	}
	t.Logf("chaos: logs copied to %s", dir)
}

func envDurationOr(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 10m", name, s)
	}
	return d
}

// newAdmin is an admin client whose metadata is never cached for long.
func newAdmin(t *testing.T, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates the topic and waits until every partition has a
// leader.
func createTopic(t *testing.T, adm *kadm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, numParts, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		led := 0
		if err == nil {
			for _, pd := range md.Topics[topic].Partitions {
				if pd.Err == nil && pd.Leader >= 0 {
					led++
				}
			}
		}
		if led == numParts {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %d of %d partitions have a leader after 30s (%v)", topic, led, numParts, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sampleLag records the group's committed lag every two seconds, for the
// timeline; the returned func stops it (and may be called twice).
func sampleLag(adm *kadm.Client, rec *recorder) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			lags, err := adm.Lag(ctx, group)
			cancel()
			if err != nil {
				continue
			}
			if l, ok := lags[group]; ok && l.Error() == nil {
				rec.sampleLag(l.Lag.Total())
			}
		}
	}()
	stopped := false
	return func() {
		if !stopped {
			stopped = true
			close(stop)
			<-done
		}
	}
}
