package catalog

import (
	"testing"

	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/catalogtest"
)

// TestConformance runs iceberg-go's catalog conformance suite against the
// server over HTTP through iceberg-go's REST client: on SQLite with auth off
// and on PostgreSQL with OAuth2 client credentials on.
func TestConformance(t *testing.T) {
	backends := []struct {
		name string
		opts func(t *testing.T) []serverOption
	}{
		{"sqlite", func(*testing.T) []serverOption { return nil }},
		{"postgres_auth", func(t *testing.T) []serverOption {
			return []serverOption{withPostgres(t), withAuth("engine", "s3cr3t")}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.opts(t)...)
			catalogtest.RunCatalogTests(t, catalogtest.Config{
				NewCatalog: func(t *testing.T) icebergcatalog.Catalog {
					return ts.restClient(t, nil)
				},
				SupportsNamespaceProperties: true,
			})
		})
	}
}
