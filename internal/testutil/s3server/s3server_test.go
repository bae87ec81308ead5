package s3server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/s3server"
)

func TestStartAndBucket(t *testing.T) {
	srv := s3server.Start(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") || srv.Region != "us-east-1" {
		t.Fatalf("Endpoint %q, Region %q", srv.Endpoint, srv.Region)
	}
	if srv.AccessKey == "" || srv.SecretKey == "" {
		t.Fatal("empty credentials")
	}
	if got := srv.Bucket(t, "made-here"); got != "made-here" {
		t.Fatalf("Bucket = %q", got)
	}
	// Creating the same bucket twice is an error from the real server.
	if err := srv.CreateBucket(t.Context(), "made-here"); err == nil {
		t.Fatal("second CreateBucket succeeded")
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := s3server.Start(t), s3server.Start(t)
	if a.Endpoint == b.Endpoint || a.AccessKey == b.AccessKey {
		t.Fatalf("servers share endpoint or credentials: %q %q", a.Endpoint, b.Endpoint)
	}
	a.Bucket(t, "same-name")
	b.Bucket(t, "same-name")
}

func TestStartProcessStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "root")
	srv, stop, err := s3server.StartProcess(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv.Bucket(t, "on-disk")
	if fi, err := os.Stat(filepath.Join(dir, "on-disk")); err != nil || !fi.IsDir() {
		t.Fatalf("bucket directory not in the posix root: %v", err)
	}
	stop()
	stop() // idempotent
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(srv.Endpoint); err == nil {
		_ = resp.Body.Close()
		t.Fatal("server still answers after stop")
	}
}

func TestURL(t *testing.T) {
	srv := &s3server.Server{Endpoint: "http://127.0.0.1:1234", Region: "us-east-1"}
	got := srv.URL("bkt", "a/b")
	want := "s3://bkt/a/b?endpoint=http%3A%2F%2F127.0.0.1%3A1234&path-style=true&region=us-east-1"
	if got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}

func TestMissingBinaryIsAClearError(t *testing.T) {
	t.Setenv(s3server.EnvBinary, filepath.Join(t.TempDir(), "no-such-versitygw"))
	_, _, err := s3server.StartProcess(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "versitygw not found: run `make deps`") {
		t.Fatalf("StartProcess = %v, want the make deps hint", err)
	}
	if _, err := s3server.FindBinary(); err == nil {
		t.Fatal("FindBinary succeeded with a bogus FLOE_VERSITYGW")
	}
}
