// Package metastoretest holds test helpers for code that uses the metadata
// store: OpenEmbedded gives each test its own embedded etcd, StartEtcd starts a
// stand-alone etcd to use in external mode, and Run is the conformance suite
// every metastore.Store configuration must pass.
package metastoretest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/floe-io/floe/internal/metastore"
)

// startAttempts bounds retries when a free port is taken between picking and
// binding it (other tests on the machine pick ports too).
const startAttempts = 5

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("metastoretest: pick a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("metastoretest: release port %d: %v", port, err)
	}
	return port
}

// EmbeddedConfig returns the config of an embedded store in a fresh temporary
// directory on free loopback ports, with fsync off to keep tests fast.
func EmbeddedConfig(t testing.TB) metastore.Config {
	t.Helper()
	return metastore.Config{
		DataDir:       filepath.Join(t.TempDir(), "etcd"), // etcd creates it 0700
		ClientURL:     fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
		PeerURL:       fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
		UnsafeNoFsync: true,
	}
}

// OpenEmbedded opens a Store on its own embedded etcd (temporary directory,
// free ports), closed when the test ends. Other Stores can share its etcd by
// opening with Endpoints: s.Endpoints().
func OpenEmbedded(t testing.TB) *metastore.Store {
	t.Helper()
	logger := Logger(t)
	var lastErr error
	for range startAttempts {
		cfg := EmbeddedConfig(t)
		s, err := metastore.Open(context.Background(), cfg, logger)
		if err == nil {
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("metastoretest: close store: %v", err)
				}
			})
			return s
		}
		lastErr = err
		if !isAddrInUse(err) {
			break
		}
	}
	t.Fatalf("metastoretest: open embedded store: %v", lastErr)
	return nil
}

// StartEtcd starts a stand-alone single-node etcd with etcd's stock settings
// (as an operator would run an external cluster before tuning it: 128 ops per
// transaction, 1.5 MiB requests) and returns its client endpoints. It stops
// when the test ends.
func StartEtcd(t testing.TB) []string {
	t.Helper()
	var lastErr error
	for range startAttempts {
		endpoints, stop, err := startEtcd(t.TempDir(), FreePort(t), FreePort(t))
		if err == nil {
			t.Cleanup(stop)
			return endpoints
		}
		lastErr = err
		if !isAddrInUse(err) {
			break
		}
	}
	t.Fatalf("metastoretest: start etcd: %v", lastErr)
	return nil
}

func startEtcd(dir string, clientPort, peerPort int) ([]string, func(), error) {
	cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg := embed.NewConfig()
	cfg.Name = "external"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, nil, fmt.Errorf("etcd failed to start: %w", err)
	case <-time.After(metastore.DefaultStartTimeout):
		e.Close()
		return nil, nil, fmt.Errorf("etcd not ready after %s", metastore.DefaultStartTimeout)
	}
	return []string{cu.String()}, e.Close, nil
}

func isAddrInUse(err error) bool {
	return strings.Contains(err.Error(), "address already in use")
}

// Logger returns a logger writing to the test log, silent once the test ends
// (etcd goroutines may log while shutting down).
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
