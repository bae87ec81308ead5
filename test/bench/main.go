// Command bench measures floe's produce path against kfake, franz-go's
// in-memory fake Kafka, as a ceiling, with the same franz-go load generator,
// in one run on this machine: 1 KiB records, 16 partitions, acks=all.
// floe runs as a real process on versitygw (a real S3 server). It prints
// MB/s for both and the ratio, produce latency p50/p99 at saturation and at
// a paced half-saturation rate, object PUTs per GiB and broker CPU-seconds
// per GiB (from floe's own /metrics). It lives in its own module so that
// kfake stays out of floe's dependencies.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/loadgen"
	"github.com/floe-io/floe/internal/testutil/s3server"
	"github.com/floe-io/floe/test/bench/benchproc"
)

func main() {
	dur := flag.Duration("duration", 20*time.Second, "length of each saturation run")
	floeBin := flag.String("floe", "../../bin/floe", "floe binary")
	flag.Parse()
	if err := run(*dur, *floeBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const (
	partitions  = 16
	recordBytes = 1024
)

func run(dur time.Duration, floeBin string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "floe-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// kfake ceiling.
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench"))
	if err != nil {
		return err
	}
	fakeRes, err := loadgen.Produce(ctx, loadgen.ProduceConfig{Seeds: fake.ListenAddrs(), Topic: "bench", Duration: dur, RecordBytes: recordBytes})
	fake.Close()
	if err != nil {
		return err
	}
	fmt.Println("kfake:", fakeRes)

	// floe on versitygw.
	s3, stopS3, err := s3server.StartProcess(filepath.Join(dir, "s3"))
	if err != nil {
		return err
	}
	defer stopS3()
	if err := s3.CreateBucket(ctx, "bench"); err != nil {
		return err
	}
	kafkaAddr, adminAddr := benchproc.FreeAddr(), benchproc.FreeAddr()
	cmd := exec.Command(floeBin, "serve", "--data-dir", filepath.Join(dir, "floe"), "--roles", "broker",
		"--kafka-addr", kafkaAddr, "--admin-addr", adminAddr,
		"--etcd-client-url", "http://"+benchproc.FreeAddr(), "--etcd-peer-url", "http://"+benchproc.FreeAddr(),
		"--object-store", s3.URL("bench", "data"), "--log-level", "warn")
	cmd.Env = append(os.Environ(), s3.Env()...)
	logf, _ := os.Create(filepath.Join(dir, "floe.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := benchproc.WaitReady(adminAddr, 60*time.Second); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		return err
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, "bench"); err != nil {
		return err
	}
	cl.Close()

	before, err := scrape(adminAddr)
	if err != nil {
		return err
	}
	floeRes, err := loadgen.Produce(ctx, loadgen.ProduceConfig{Seeds: []string{kafkaAddr}, Topic: "bench", Duration: dur, RecordBytes: recordBytes})
	if err != nil {
		return err
	}
	after, err := scrape(adminAddr)
	if err != nil {
		return err
	}
	fmt.Println("floe: ", floeRes)
	gib := float64(floeRes.Bytes) / (1 << 30)
	puts := after["floe_objstore_operations_total{bucket=\"data\",operation=\"upload\"}"] - before["floe_objstore_operations_total{bucket=\"data\",operation=\"upload\"}"]
	cpu := after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]

	// Metadata after compaction: segment records per GiB ingested (invariant 6).
	segsBefore := after["floe_broker_segment_records"]
	time.Sleep(45 * time.Second) // compaction leaves segments younger than 30 s alone
	compacted, err := scrape(adminAddr)
	if err != nil {
		return err
	}
	segsAfter := compacted["floe_broker_segment_records"]

	// Latency at a paced rate: half of floe's saturation rate.
	rate := int(float64(floeRes.Records) / floeRes.Elapsed.Seconds() / 2)
	paced, err := loadgen.Produce(ctx, loadgen.ProduceConfig{Seeds: []string{kafkaAddr}, Topic: "bench", Duration: dur / 2, RecordBytes: recordBytes, Rate: rate})
	if err != nil {
		return err
	}
	fmt.Printf("floe paced at %d records/s: %v\n", rate, paced)

	fmt.Println()
	fmt.Printf("| measure | floe (versitygw) | kfake |\n|---|---|---|\n")
	fmt.Printf("| produce MB/s (1 KiB, 16 partitions, acks=all) | %.1f | %.1f |\n", floeRes.MBPerSec, fakeRes.MBPerSec)
	fmt.Printf("| ratio floe/kfake | %.2f | |\n", floeRes.MBPerSec/fakeRes.MBPerSec)
	fmt.Printf("| p50 / p99 at saturation | %v / %v | %v / %v |\n", floeRes.P50.Round(time.Millisecond), floeRes.P99.Round(time.Millisecond), fakeRes.P50.Round(time.Millisecond), fakeRes.P99.Round(time.Millisecond))
	fmt.Printf("| p50 / p99 at %d rec/s | %v / %v | |\n", rate, paced.P50.Round(time.Millisecond), paced.P99.Round(time.Millisecond))
	fmt.Printf("| object PUTs per GiB | %.1f | |\n", puts/gib)
	fmt.Printf("| broker CPU-seconds per GiB | %.2f | |\n", cpu/gib)
	fmt.Printf("| segment records per GiB: after the run / after compaction | %.0f / %.0f | |\n", segsBefore/gib, segsAfter/gib)
	return nil
}

// scrape reads the Prometheus text exposition into name{labels} -> value.
func scrape(admin string) (map[string]float64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
