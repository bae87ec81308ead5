package catalog

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/rest"

	"github.com/floe-io/floe/internal/testutil/s3server"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopTestPostgres()
	os.Exit(code)
}

// testServer is a catalog Server behind a real HTTP listener.
type testServer struct {
	*Server
	URL       string
	cfg       Config
	warehouse string
}

type serverOption func(*Config)

func withPostgres(t *testing.T) serverOption {
	dsn := postgresDSN(t)
	return func(c *Config) { c.DBDriver, c.DBDSN = "postgres", dsn }
}

func withAuth(id, secret string) serverOption {
	return func(c *Config) { c.ClientID, c.ClientSecret = id, secret }
}

func withWarehouse(wh string, io map[string]string) serverOption {
	return func(c *Config) { c.Warehouse, c.IOProps = wh, io }
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// newTestServer starts a catalog on SQLite and a file:// warehouse in temp
// directories unless options say otherwise.
func newTestServer(t *testing.T, opts ...serverOption) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		DBDriver:  "sqlite",
		DBDSN:     filepath.Join(dir, "catalog.db"),
		Warehouse: "file://" + filepath.Join(dir, "warehouse"),
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("catalog.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("catalog Close: %v", err)
		}
	})
	return &testServer{Server: srv, URL: hs.URL, cfg: cfg, warehouse: cfg.Warehouse}
}

// restClient connects iceberg-go's REST catalog client to ts, with the
// server's client credentials if it has any.
func (ts *testServer) restClient(t *testing.T, props iceberg.Properties) *rest.Catalog {
	t.Helper()
	opts := []rest.Option{rest.WithAdditionalProps(props)}
	if ts.cfg.ClientID != "" {
		opts = append(opts, rest.WithCredential(ts.cfg.ClientID+":"+ts.cfg.ClientSecret))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat, err := rest.NewCatalog(ctx, "floe", ts.URL, opts...)
	if err != nil {
		t.Fatalf("rest.NewCatalog: %v", err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	return cat
}

// s3Warehouse starts versitygw with a bucket and returns the warehouse URL
// and the FileIO properties that reach it.
func s3Warehouse(t *testing.T) (string, map[string]string) {
	t.Helper()
	s3 := s3server.Start(t)
	bucket := s3.Bucket(t, "warehouse")
	// No default AWS credential chain or IMDS lookups from the tests.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return "s3://" + bucket + "/lake", map[string]string{
		"s3.endpoint":          s3.Endpoint,
		"s3.region":            s3.Region,
		"s3.access-key-id":     s3.AccessKey,
		"s3.secret-access-key": s3.SecretKey,
		"s3.path-style-access": "true",
	}
}
