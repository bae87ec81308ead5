// Command freshness measures how soon a table topic's records can be
// queried: from a record's timestamp (set by the producer) to the moment a
// reader polling the Iceberg REST catalog first sees a snapshot holding it.
// floe runs as a real process (broker, catalog and registry roles) on
// versitygw; a franz-go producer sends a fixed rate of records to a table
// topic for a while; a poller loads the table every -poll and notes when
// each new snapshot is first seen. Afterwards every snapshot is read back
// with iceberg-go and each record's latency is the time its snapshot was
// first seen minus its _kafka_metadata.timestamp, as stored in the table.
// It prints p50/p99/max and the target of issue 5 (p99 <= interval + 2 s);
// the figures are measured, never asserted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers the s3:// FileIO
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/s3server"
	"github.com/floe-io/floe/test/bench/benchproc"
)

type config struct {
	floeBin     string
	duration    time.Duration
	rate        int
	interval    time.Duration
	partitions  int
	recordBytes int
	poll        time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.floeBin, "floe", "../../bin/floe", "floe binary")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long to produce")
	flag.IntVar(&cfg.rate, "rate", 10_000, "records per second")
	flag.DurationVar(&cfg.interval, "interval", 10*time.Second, "table.topic.commit.interval.ms")
	flag.IntVar(&cfg.partitions, "partitions", 8, "partitions of the table topic")
	flag.IntVar(&cfg.recordBytes, "record-bytes", 1024, "value size")
	flag.DurationVar(&cfg.poll, "poll", 100*time.Millisecond, "how often the reader polls the catalog")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "freshness:", err)
		os.Exit(1)
	}
}

const topic = "fresh"

func run(cfg config) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "floe-freshness-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	s3, stopS3, err := s3server.StartProcess(filepath.Join(dir, "s3"))
	if err != nil {
		return err
	}
	defer stopS3()
	if err := s3.CreateBucket(ctx, "fresh"); err != nil {
		return err
	}
	kafkaAddr, adminAddr, catAddr, regAddr := benchproc.FreeAddr(), benchproc.FreeAddr(), benchproc.FreeAddr(), benchproc.FreeAddr()
	cmd := exec.Command(cfg.floeBin, "serve", "--data-dir", filepath.Join(dir, "floe"), "--roles", "broker,catalog,registry",
		"--kafka-addr", kafkaAddr, "--admin-addr", adminAddr, "--catalog-addr", catAddr, "--registry-addr", regAddr,
		"--etcd-client-url", "http://"+benchproc.FreeAddr(), "--etcd-peer-url", "http://"+benchproc.FreeAddr(),
		"--object-store", s3.URL("fresh", "floe"), "--log-level", "warn")
	cmd.Env = append(os.Environ(), s3.Env()...)
	logPath := filepath.Join(dir, "floe.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// On failure, floe's log says why.
	fail := func(err error) error {
		b, _ := os.ReadFile(logPath)
		if len(b) > 8<<10 {
			b = b[len(b)-8<<10:]
		}
		return fmt.Errorf("%w\nfloe log (tail):\n%s", err, b)
	}
	if err := benchproc.WaitReady(adminAddr, 60*time.Second); err != nil {
		return fail(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	configs := map[string]*string{}
	for k, v := range map[string]string{
		"table.topic.enable":             "true",
		"table.topic.commit.interval.ms": fmt.Sprint(cfg.interval.Milliseconds()),
		// Every snapshot of the run is read back afterwards.
		"table.topic.expire.snapshot.enabled": "false",
	} {
		configs[k] = &v
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(cfg.partitions), 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}

	ioProps := iceberg.Properties{
		"s3.endpoint":          s3.Endpoint,
		"s3.region":            s3.Region,
		"s3.access-key-id":     s3.AccessKey,
		"s3.secret-access-key": s3.SecretKey,
		"s3.path-style-access": "true",
	}
	cat, err := rest.NewCatalog(ctx, "floe", "http://"+catAddr, rest.WithAdditionalProps(maps.Clone(ioProps)))
	if err != nil {
		return err
	}
	ident := table.Identifier{"default", topic}

	// The poller notes when each snapshot is first seen.
	pollCtx, stopPolling := context.WithCancel(ctx)
	seen := newSnapshotLog()
	pollDone := make(chan error, 1)
	go func() { pollDone <- seen.poll(pollCtx, cat, ident, cfg.poll) }()

	fmt.Printf("producing %d records/s of %d bytes to %d partitions for %v; commit interval %v; polling every %v\n",
		cfg.rate, cfg.recordBytes, cfg.partitions, cfg.duration, cfg.interval, cfg.poll)
	prod, err := produce(ctx, cl, cfg)
	if err != nil {
		stopPolling()
		return fail(err)
	}
	fmt.Printf("produced %d records in %v (%.0f records/s)\n", prod.acked, prod.elapsed.Round(time.Millisecond), float64(prod.acked)/prod.elapsed.Seconds())

	// Wait until the table holds everything, then stop polling.
	if err := waitCommitted(adminAddr, prod.ends, 3*cfg.interval+time.Minute); err != nil {
		stopPolling()
		return fail(err)
	}
	time.Sleep(2 * cfg.poll)
	stopPolling()
	if err := <-pollDone; err != nil {
		return fail(err)
	}

	// Read every snapshot back: a record's latency is from its timestamp to
	// the first sighting of the first snapshot that holds it.
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	var (
		latencies []time.Duration
		visible   = map[[2]int64]bool{}
		filesPer  []int
		seenLag   []time.Duration // snapshot timestamp-ms -> first seen
	)
	for _, s := range seen.inOrder() {
		snap := tbl.Metadata().SnapshotByID(s.id)
		if snap == nil {
			return fmt.Errorf("snapshot %d is gone from the table's metadata", s.id)
		}
		seenLag = append(seenLag, s.at.Sub(time.UnixMilli(snap.TimestampMs)))
		if snap.Summary != nil {
			var files int
			fmt.Sscan(snap.Summary.Properties["added-data-files"], &files)
			filesPer = append(filesPer, files)
		}
		_, it, err := tbl.Scan(table.WithSnapshotID(s.id), table.WithSelectedFields("_kafka_metadata")).ToArrowRecords(ctx)
		if err != nil {
			return fmt.Errorf("scan snapshot %d: %w", s.id, err)
		}
		for rec, err := range it {
			if err != nil {
				return fmt.Errorf("scan snapshot %d: %w", s.id, err)
			}
			meta := rec.Column(rec.Schema().FieldIndices("_kafka_metadata")[0]).(*array.Struct)
			parts, offs, ts := meta.Field(0).(*array.Int32), meta.Field(1).(*array.Int64), meta.Field(2).(*array.Timestamp)
			unit := meta.DataType().(*arrow.StructType).Field(2).Type.(*arrow.TimestampType).Unit
			for i := range int(rec.NumRows()) {
				k := [2]int64{int64(parts.Value(i)), offs.Value(i)}
				if visible[k] {
					continue
				}
				visible[k] = true
				latencies = append(latencies, s.at.Sub(ts.Value(i).ToTime(unit)))
			}
			rec.Release()
		}
	}
	if int64(len(visible)) != prod.acked {
		return fmt.Errorf("the table holds %d distinct records, %d were acknowledged", len(visible), prod.acked)
	}

	slices.Sort(latencies)
	slices.Sort(seenLag)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	target := cfg.interval + 2*time.Second
	fmt.Println()
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| records, rate | %d at %.0f records/s, %d B values, %d partitions |\n", len(latencies), float64(prod.acked)/prod.elapsed.Seconds(), cfg.recordBytes, cfg.partitions)
	fmt.Printf("| commit interval, catalog poll | %v, %v |\n", cfg.interval, cfg.poll)
	fmt.Printf("| snapshots with data | %d (data files per snapshot: %v) |\n", len(filesPer), filesPer)
	fmt.Printf("| freshness p50 / p99 / max (record timestamp -> seen in a snapshot) | %v / %v / %v |\n",
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	fmt.Printf("| snapshot timestamp -> first seen by the poller, median / max | %v / %v |\n",
		seenLag[len(seenLag)/2].Round(time.Millisecond), seenLag[len(seenLag)-1].Round(time.Millisecond))
	verdict := "met"
	if pct(0.99) > target {
		verdict = "NOT met"
	}
	fmt.Printf("| target p99 <= interval + 2 s = %v | %s |\n", target, verdict)
	return nil
}

// sighting is when the poller first saw a snapshot.
type sighting struct {
	id int64
	at time.Time
}

type snapshotLog struct {
	mu    sync.Mutex
	seen  map[int64]bool
	order []sighting
}

func newSnapshotLog() *snapshotLog { return &snapshotLog{seen: map[int64]bool{}} }

// poll loads the table every interval until ctx ends, noting every new
// snapshot (the current one and any parents it has not seen, so none is
// missed between two polls).
func (l *snapshotLog) poll(ctx context.Context, cat *rest.Catalog, ident table.Identifier, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		tbl, err := cat.LoadTable(lctx, ident)
		cancel()
		now := time.Now()
		if errors.Is(err, icecatalog.ErrNoSuchTable) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: load table: %w", err)
		}
		var fresh []sighting
		l.mu.Lock()
		for s := tbl.CurrentSnapshot(); s != nil && !l.seen[s.SnapshotID]; {
			l.seen[s.SnapshotID] = true
			fresh = append(fresh, sighting{s.SnapshotID, now})
			if s.ParentSnapshotID == nil {
				break
			}
			s = tbl.Metadata().SnapshotByID(*s.ParentSnapshotID)
		}
		slices.Reverse(fresh)
		l.order = append(l.order, fresh...)
		l.mu.Unlock()
	}
}

func (l *snapshotLog) inOrder() []sighting {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order)
}

type produceResult struct {
	acked   int64
	elapsed time.Duration
	ends    map[int32]int64
}

// produce sends cfg.rate records a second for cfg.duration, paced in 10 ms
// steps; the client stamps each record's timestamp when it is produced.
func produce(ctx context.Context, cl *kgo.Client, cfg config) (produceResult, error) {
	const step = 10 * time.Millisecond
	perStep := cfg.rate * int(step) / int(time.Second)
	value := []byte(strings.Repeat("x", cfg.recordBytes))
	var (
		mu       sync.Mutex
		res      = produceResult{ends: map[int32]int64{}}
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	tick := time.NewTicker(step)
	defer tick.Stop()
	for seq := 0; time.Since(start) < cfg.duration; {
		<-tick.C
		// Catch up after a stall, as a fixed-rate source would.
		due := int(time.Since(start)/step) * perStep
		for ; seq < due; seq++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "%d", seq), Value: value}, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					firstErr = cmpErr(firstErr, err)
					return
				}
				res.acked++
				res.ends[r.Partition] = max(res.ends[r.Partition], r.Offset+1)
			})
		}
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if firstErr != nil {
		return res, fmt.Errorf("produce: %w", firstErr)
	}
	return res, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// waitCommitted polls the admin API until the table's committed offsets
// reach ends.
func waitCommitted(admin string, ends map[int32]int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/v1/tables/" + topic)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(body)
			var st struct {
				CommittedOffsets map[int32]int64 `json:"committed_offsets"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &st) == nil {
				done := true
				for p, end := range ends {
					done = done && st.CommittedOffsets[p] >= end
				}
				if done {
					return nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the table did not commit up to %v within %v; last status %s", ends, timeout, last)
}
