// Command cluster measures produce throughput of floe clusters of 1, 2 and
// 3 broker processes on this machine (issue 6's scaling figure): one
// `floe etcd`, one versitygw, N `floe serve --roles broker`, the same
// franz-go load generator as the single-broker benchmark, seeded with every
// broker. Run by scripts/bench.sh; prints figures, asserts nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/loadgen"
	"github.com/floe-io/floe/internal/testutil/s3server"
	"github.com/floe-io/floe/test/bench/benchproc"
)

const (
	partitions  = 16
	recordBytes = 1024
)

func main() {
	dur := flag.Duration("duration", 20*time.Second, "length of each run")
	floeBin := flag.String("floe", "../../bin/floe", "floe binary")
	maxBrokers := flag.Int("brokers", 3, "measure clusters of 1..N brokers")
	flag.Parse()
	var rows []string
	for n := 1; n <= *maxBrokers; n++ {
		res, err := run(n, *dur, *floeBin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster bench:", err)
			os.Exit(1)
		}
		fmt.Printf("%d broker(s): %v\n", n, res)
		rows = append(rows, fmt.Sprintf("| %d | %.1f | %v / %v |", n, res.MBPerSec, res.P50.Round(time.Millisecond), res.P99.Round(time.Millisecond)))
	}
	fmt.Println()
	fmt.Println("| brokers | produce MB/s (1 KiB, 16 partitions, acks=all) | p50 / p99 |")
	fmt.Println("|---|---|---|")
	fmt.Println(strings.Join(rows, "\n"))
}

type proc struct{ cmd *exec.Cmd }

func (p proc) stop() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }

func start(dir, name, bin string, env []string, args ...string) (proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return proc{}, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	return proc{cmd}, cmd.Start()
}

func run(n int, dur time.Duration, floeBin string) (loadgen.ProduceResult, error) {
	var zero loadgen.ProduceResult
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "floe-cluster-bench-")
	if err != nil {
		return zero, err
	}
	defer os.RemoveAll(dir)
	s3, stopS3, err := s3server.StartProcess(filepath.Join(dir, "s3"))
	if err != nil {
		return zero, err
	}
	defer stopS3()
	if err := s3.CreateBucket(ctx, "bench"); err != nil {
		return zero, err
	}
	client, peer := benchproc.FreeAddr(), benchproc.FreeAddr()
	etcd, err := start(dir, "etcd", floeBin, nil, "etcd", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+client, "--listen-peer-urls", "http://"+peer)
	if err != nil {
		return zero, err
	}
	defer etcd.stop()
	var seeds []string
	for i := range n {
		kafka, admin := benchproc.FreeAddr(), benchproc.FreeAddr()
		b, err := start(dir, "broker-"+strconv.Itoa(i), floeBin, s3.Env(), "serve", "--roles", "broker",
			"--data-dir", filepath.Join(dir, "b"+strconv.Itoa(i)), "--node-id", strconv.Itoa(i),
			"--kafka-addr", kafka, "--admin-addr", admin, "--etcd-endpoints", "http://"+client,
			"--object-store", s3.URL("bench", "data"), "--log-level", "warn", "--balance-max-moves", "0")
		if err != nil {
			return zero, err
		}
		defer b.stop()
		if err := benchproc.WaitReady(admin, 60*time.Second); err != nil {
			return zero, fmt.Errorf("broker %d: %w", i, err)
		}
		seeds = append(seeds, kafka)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return zero, err
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, "bench"); err != nil {
		return zero, err
	}
	cl.Close()
	return loadgen.Produce(ctx, loadgen.ProduceConfig{Seeds: seeds, Topic: "bench", Duration: dur, RecordBytes: recordBytes})
}
