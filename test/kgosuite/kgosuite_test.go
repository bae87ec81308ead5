// Package kgosuite runs franz-go's own integration suite (pkg/kgo) against
// a real `floe serve` on versitygw: the Kafka-compatibility bar of issue 3.
// Every test must pass except TestTxnEtl (transactions come later); the
// tests franz-go skips by itself are counted and listed with their reason.
package kgosuite

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/testutil/floeproc"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

var resultLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)

func TestFranzGoSuite(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FLOE_KGO_BROKERS"))
	runSuite(t, startFloe(t, n))
}

// TestFranzGoSuiteCluster runs the same suite against three brokers, so
// partitions and group coordinators live on different processes.
func TestFranzGoSuiteCluster(t *testing.T) {
	runSuite(t, startFloe(t, 3))
}

func runSuite(t *testing.T, seeds string) {
	records := os.Getenv("KGO_TEST_RECORDS")
	if records == "" {
		records = "20000"
	}
	cmd := exec.Command("go", "test", "-count=1", "-timeout=25m", "-v",
		"github.com/twmb/franz-go/pkg/kgo", "-skip", "TestTxnEtl")
	cmd.Env = append(os.Environ(),
		"KGO_SEEDS="+seeds, "KGO_TEST_RF=1", "KGO_TEST_RECORDS="+records)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	counts := map[string]int{}
	var failed, skipped []string
	skipReason := map[string]string{}
	var lastSkipMsg string
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var prev string
	for sc.Scan() {
		line := sc.Text()
		if m := resultLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil && !strings.HasPrefix(line, " ") {
			counts[m[1]]++
			switch m[1] {
			case "FAIL":
				failed = append(failed, m[2])
			case "SKIP":
				skipped = append(skipped, m[2])
				skipReason[m[2]] = lastSkipMsg
			}
		}
		if strings.HasPrefix(strings.TrimSpace(prev), "=== ") || strings.Contains(line, "_test.go:") {
			lastSkipMsg = strings.TrimSpace(line)
		}
		prev = line
	}
	t.Logf("franz-go kgo suite against floe in %v: %d passed, %d failed, %d skipped (top-level tests)",
		time.Since(start).Round(time.Second), counts["PASS"], counts["FAIL"], counts["SKIP"])
	for _, s := range skipped {
		t.Logf("skipped by franz-go: %s (%s)", s, skipReason[s])
	}
	if err != nil || len(failed) > 0 {
		t.Logf("output tail:\n%s", tail(out.String(), 150))
		t.Fatalf("franz-go suite failed (%v): %v", err, failed)
	}
	if counts["PASS"] == 0 {
		t.Fatal("no franz-go test ran")
	}
}

// startFloe starts one `floe serve` (n <= 1), or a cluster of n on one
// external etcd and bucket, and returns the seed list.
func startFloe(t *testing.T, n int) string {
	if n <= 1 {
		return floeproc.Start(t, floeproc.Options{Roles: "broker"}).KafkaAddr()
	}
	etcd := metastoretest.StartEtcd(t)
	srv := s3server.Start(t)
	bucket := srv.Bucket(t, "floe-kgo")
	var seeds []string
	for i := range n {
		f := floeproc.Start(t, floeproc.Options{Roles: "broker", EtcdEndpoints: etcd, S3: srv, Bucket: bucket,
			Args: []string{"--node-id=" + strconv.Itoa(i)}})
		seeds = append(seeds, f.KafkaAddr())
	}
	t.Logf("franz-go suite against a cluster of %d brokers", n)
	return strings.Join(seeds, ",")
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
