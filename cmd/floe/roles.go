package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
)

// startHTTPRoles starts the catalog and registry roles when enabled.
func startHTTPRoles(ctx context.Context, cfg *serveConfig, dataDir, storeURL string, meta *metastore.Store, reg prometheus.Registerer, ready *readiness, logger *slog.Logger, errc chan<- error, closers *[]func()) error {
	return nil
}
