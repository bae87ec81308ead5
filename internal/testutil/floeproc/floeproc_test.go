package floeproc

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// roundTrip produces one record and checks that every record produced so
// far (want) reads back in order from offset 0.
func roundTrip(t *testing.T, f *Floe, want []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "harness"
	value := "v" + string(rune('0'+len(want)))
	prod, err := kgo.NewClient(kgo.SeedBrokers(f.KafkaAddr()), kgo.DisableIdempotentWrite(),
		kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want = append(want, value)

	cons, err := kgo.NewClient(kgo.SeedBrokers(f.KafkaAddr()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < len(want) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %q, want %q: %v", got, want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("consumed %q, want %q", got, want)
	}
	return want
}

func TestStartKillRestart(t *testing.T) {
	f := Start(t, Options{})
	resp, err := http.Get("http://" + f.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s", resp.Status)
	}
	want := roundTrip(t, f, nil)

	f.Kill()
	if f.Running() {
		t.Fatal("running after Kill")
	}
	f.Restart()
	want = roundTrip(t, f, want)

	f.Restart() // SIGTERM while running, then start
	roundTrip(t, f, want)
	if n := strings.Count(f.ReadLog(), "=== floeproc: start #"); n != 3 {
		t.Fatalf("log shows %d starts, want 3", n)
	}
}

func TestExternalEtcdWipeDataDir(t *testing.T) {
	f := Start(t, Options{ExternalEtcd: true})
	if len(f.EtcdEndpoints()) == 0 {
		t.Fatal("no external etcd endpoints")
	}
	want := roundTrip(t, f, nil)
	f.Kill()
	f.WipeDataDir()
	if _, err := os.Stat(f.DataDir()); !os.IsNotExist(err) {
		t.Fatalf("data dir still there: %v", err)
	}
	f.Restart()
	roundTrip(t, f, want)
}

// errorRecorder is a testing.TB whose Errorf is recorded, not failed.
type errorRecorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *errorRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestUnexpectedExitFailsTheTest(t *testing.T) {
	rec := &errorRecorder{TB: t}
	f := Start(rec, Options{})
	f.Kill() // expected: no error
	f.Restart()
	// A signal from outside the harness, as a stray pkill would send.
	if err := syscall.Kill(f.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Crashed():
	case <-time.After(30 * time.Second):
		t.Fatal("Crashed not closed 30s after floe was signalled")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "exited unexpectedly") {
		t.Fatalf("errors reported: %q, want one about the unexpected exit", rec.errors)
	}
}

func TestFindBinaryMissing(t *testing.T) {
	t.Setenv(EnvBinary, "")
	t.Setenv("FLOE_REPO_ROOT", t.TempDir())
	_, err := FindBinary()
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("FindBinary with no binary: %v, want an error telling to run make build", err)
	}
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "nope"))
	if _, err := FindBinary(); err == nil {
		t.Fatal("FindBinary with a missing $FLOE_BINARY: no error")
	}
}
