package metastore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestEmbedded runs the conformance suite on stores each running their own
// embedded etcd.
func TestEmbedded(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T) *metastore.Store {
		return metastoretest.OpenEmbedded(t)
	})
}

// TestExternal runs the conformance suite in external mode against one
// separately started etcd with stock settings, each subtest under its own prefix.
func TestExternal(t *testing.T) {
	endpoints := metastoretest.StartEtcd(t)
	var n atomic.Int32
	metastoretest.Run(t, func(t *testing.T) *metastore.Store {
		cfg := metastore.Config{Endpoints: endpoints, Prefix: fmt.Sprintf("/floe-ext-%d/", n.Add(1))}
		s, err := metastore.Open(ctxFor(t), cfg, metastoretest.Logger(t))
		if err != nil {
			t.Fatalf("open external store: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// TestEmbeddedReopen: metadata written to an embedded store is there after
// Close and Open on the same data directory.
func TestEmbeddedReopen(t *testing.T) {
	ctx := ctxFor(t)
	cfg := metastoretest.EmbeddedConfig(t)
	cfg.UnsafeNoFsync = false // persistence is the point here
	logger := metastoretest.Logger(t)

	s, err := metastore.Open(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	epochRev, err := s.Create(ctx, "partitions/orders/0/epoch", []byte("3"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if id, err := s.NextID(ctx, "ids/objects"); err != nil || id != int64(i+1) {
			t.Fatalf("NextID = %d, %v", id, err)
		}
	}
	if _, err := s.Put(ctx, "offsets/g1/orders/0", []byte("42")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	// New ports too: a single-node etcd restarts fine with changed URLs.
	reopen := metastoretest.EmbeddedConfig(t)
	cfg.ClientURL, cfg.PeerURL = reopen.ClientURL, reopen.PeerURL
	s, err = metastore.Open(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	kv, err := s.Get(ctx, "partitions/orders/0/epoch")
	if err != nil || string(kv.Value) != "3" || kv.ModRevision != epochRev {
		t.Fatalf("epoch after reopen = %+v, %v; want \"3\" at revision %d", kv, err, epochRev)
	}
	if kv, err := s.Get(ctx, "offsets/g1/orders/0"); err != nil || string(kv.Value) != "42" {
		t.Fatalf("offset after reopen = %+v, %v", kv, err)
	}
	// Revisions carry on, so a CAS against a pre-restart revision still fences.
	if _, err := s.CAS(ctx, "partitions/orders/0/epoch", epochRev, []byte("4")); err != nil {
		t.Fatalf("CAS with the pre-restart revision: %v", err)
	}
	if _, err := s.CAS(ctx, "partitions/orders/0/epoch", epochRev, []byte("5")); !errors.Is(err, metastore.ErrConflict) {
		t.Fatalf("stale CAS after reopen: %v, want ErrConflict", err)
	}
	if id, err := s.NextID(ctx, "ids/objects"); err != nil || id != 4 {
		t.Fatalf("NextID after reopen = %d, %v; want 4", id, err)
	}
}

// TestEmbeddedLimits: the embedded etcd accepts what floe needs beyond etcd's
// defaults (128 ops per txn, 1.5 MiB requests).
func TestEmbeddedLimits(t *testing.T) {
	ctx := ctxFor(t)
	s := metastoretest.OpenEmbedded(t)

	txn := s.Txn()
	const ops = 5000
	for i := range ops {
		key := fmt.Sprintf("flush/p%05d", i)
		txn.IfModRevision(key, 0).Put(key, []byte("range"))
	}
	rev, err := txn.Commit(ctx)
	if err != nil {
		t.Fatalf("txn with %d puts and %d conditions: %v", ops, ops, err)
	}
	kvs, err := s.List(ctx, "flush/")
	if err != nil || len(kvs) != ops {
		t.Fatalf("listed %d keys, %v; want %d", len(kvs), err, ops)
	}
	if kvs[0].ModRevision != rev || kvs[ops-1].ModRevision != rev {
		t.Fatal("large txn not applied at one revision")
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16) // 10 MiB
	if _, err := s.Put(ctx, "big", big); err != nil {
		t.Fatalf("put of a 10 MiB value: %v", err)
	}
	kv, err := s.Get(ctx, "big")
	if err != nil || !bytes.Equal(kv.Value, big) {
		t.Fatalf("get of the 10 MiB value: %d bytes, %v", len(kv.Value), err)
	}
}

// TestExternalStockLimits documents why external clusters need
// --max-txn-ops raised: a stock etcd refuses a transaction with 129 ops.
func TestExternalStockLimits(t *testing.T) {
	ctx := ctxFor(t)
	s, err := metastore.Open(ctx, metastore.Config{Endpoints: metastoretest.StartEtcd(t)}, metastoretest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	txn := s.Txn()
	for i := range 129 {
		txn.Put(fmt.Sprintf("k%d", i), nil)
	}
	_, err = txn.Commit(ctx)
	if err == nil || errors.Is(err, metastore.ErrConflict) || !strings.Contains(err.Error(), "too many operations") {
		t.Fatalf("129-op txn on a stock etcd: %v, want etcd's too-many-operations error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	closedPort := metastoretest.FreePort(t)

	tests := []struct {
		name string
		cfg  func(t *testing.T) metastore.Config
		want string
	}{
		{
			name: "client port in use",
			cfg: func(t *testing.T) metastore.Config {
				cfg := metastoretest.EmbeddedConfig(t)
				cfg.ClientURL = "http://" + busy.Addr().String()
				return cfg
			},
			want: "address already in use",
		},
		{
			name: "nothing listening at the external endpoint",
			cfg: func(*testing.T) metastore.Config {
				return metastore.Config{
					Endpoints:   []string{fmt.Sprintf("http://127.0.0.1:%d", closedPort)},
					DialTimeout: 500 * time.Millisecond,
				}
			},
			want: "not reachable",
		},
		{
			name: "invalid config",
			cfg:  func(*testing.T) metastore.Config { return metastore.Config{} },
			want: "data dir is required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := metastore.Open(ctxFor(t), tt.cfg(t), metastoretest.Logger(t))
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open error %q, want it to mention %q", err, tt.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Fatalf("Open took %s to fail", d)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     metastore.Config
		wantErr string
		check   func(t *testing.T, c metastore.Config)
	}{
		{
			name: "embedded defaults",
			cfg:  metastore.Config{DataDir: "/d"},
			check: func(t *testing.T, c metastore.Config) {
				if c.ClientURL != metastore.DefaultClientURL || c.PeerURL != metastore.DefaultPeerURL ||
					c.Prefix != metastore.DefaultPrefix || c.DialTimeout != metastore.DefaultDialTimeout ||
					c.StartTimeout != metastore.DefaultStartTimeout {
					t.Fatalf("defaults not applied: %+v", c)
				}
				if !c.Embedded() {
					t.Fatal("not embedded")
				}
			},
		},
		{
			name: "external needs no data dir",
			cfg:  metastore.Config{Endpoints: []string{"etcd-0:2379", "http://etcd-1:2379"}},
			check: func(t *testing.T, c metastore.Config) {
				if c.Embedded() || c.ClientURL != "" || c.Prefix != metastore.DefaultPrefix {
					t.Fatalf("unexpected %+v", c)
				}
			},
		},
		{name: "embedded without data dir", cfg: metastore.Config{}, wantErr: "data dir is required"},
		{name: "port 0", cfg: metastore.Config{DataDir: "/d", ClientURL: "http://127.0.0.1:0"}, wantErr: "non-zero port"},
		{name: "no port", cfg: metastore.Config{DataDir: "/d", PeerURL: "http://127.0.0.1"}, wantErr: "peer url"},
		{name: "https", cfg: metastore.Config{DataDir: "/d", ClientURL: "https://127.0.0.1:2379"}, wantErr: "scheme must be http"},
		{name: "same urls", cfg: metastore.Config{DataDir: "/d", ClientURL: "http://127.0.0.1:2380"}, wantErr: "both"},
		{name: "prefix without slash", cfg: metastore.Config{DataDir: "/d", Prefix: "/floe"}, wantErr: "must end with"},
		{name: "empty endpoint", cfg: metastore.Config{Endpoints: []string{" "}}, wantErr: "empty etcd endpoint"},
		{name: "negative timeout", cfg: metastore.Config{DataDir: "/d", DialTimeout: -time.Second}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			err := c.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestMain fails the package if goroutines started by this package (watch
// loops, lease keep-alives, embedded-server monitors) outlive their Stores.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitForLeaks(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of internal/metastore still running after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitForLeaks(within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "floe/internal/metastore.(*") && !strings.Contains(g, "TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
