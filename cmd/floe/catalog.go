package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/floe-io/floe/catalog"
	"github.com/floe-io/floe/internal/objstore/objstoreurl"
)

// warehouseFor derives the Iceberg warehouse and its FileIO properties: the
// --warehouse flag if given, else a warehouse/ location next to the data:
// DATA-DIR/warehouse for the file store, s3://bucket/prefix/warehouse on S3.
func warehouseFor(cfg *serveConfig, dataDir, storeURL string) (string, map[string]string, error) {
	u, err := url.Parse(storeURL)
	if err != nil {
		return "", nil, fmt.Errorf("object store URL: %w", err)
	}
	props := map[string]string{}
	warehouse := cfg.Warehouse
	if u.Scheme == "s3" {
		s3cfg, err := objstoreurl.S3Config(u)
		if err != nil {
			return "", nil, err
		}
		if s3cfg.Endpoint != "" {
			props["s3.endpoint"] = s3cfg.Endpoint
		}
		if s3cfg.Region != "" {
			props["s3.region"] = s3cfg.Region
		}
		props["s3.path-style-access"] = fmt.Sprint(s3cfg.PathStyle)
		if v := os.Getenv("AWS_ACCESS_KEY_ID"); v != "" {
			props["s3.access-key-id"] = v
			props["s3.secret-access-key"] = os.Getenv("AWS_SECRET_ACCESS_KEY")
			if tok := os.Getenv("AWS_SESSION_TOKEN"); tok != "" {
				props["s3.session-token"] = tok
			}
		}
		if warehouse == "" {
			warehouse = "s3://" + s3cfg.Bucket + "/" + strings.Trim(strings.Trim(s3cfg.Prefix, "/")+"/warehouse", "/")
		}
	}
	if warehouse == "" {
		warehouse = "file://" + filepath.Join(dataDir, "warehouse")
	}
	return warehouse, props, nil
}

// startCatalog runs the embedded Iceberg REST catalog.
func startCatalog(ctx context.Context, cfg *serveConfig, dataDir, storeURL string, ready *readiness, logger *slog.Logger, errc chan<- error, closers *[]func()) error {
	warehouse, props, err := warehouseFor(cfg, dataDir, storeURL)
	if err != nil {
		return err
	}
	dsn := cfg.CatalogDSN
	if dsn == "" && cfg.CatalogDB == "sqlite" {
		dsn = filepath.Join(dataDir, "catalog.db")
	}
	srv, err := catalog.New(ctx, catalog.Config{
		Addr: cfg.CatalogAddr, DBDriver: cfg.CatalogDB, DBDSN: dsn, Warehouse: warehouse, IOProps: props,
	}, logger.With("component", "catalog"))
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	*closers = append(*closers, func() { _ = srv.Close() })
	return serveHTTP("catalog", cfg.CatalogAddr, srv.Handler(), ready, logger, errc, closers)
}
