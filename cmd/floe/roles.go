package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/schema"
)

// startHTTPRoles starts the catalog and registry roles when enabled.
// It returns the in-process registry client when the registry runs here.
func startHTTPRoles(ctx context.Context, cfg *serveConfig, dataDir, storeURL string, meta *metastore.Store, ready *readiness, logger *slog.Logger, errc chan<- error, closers *[]func()) (schema.Client, error) {
	var registry schema.Client
	if cfg.hasRole("registry") && cfg.RegistryURL == "" {
		srv, err := schema.NewServer(meta, schema.Config{}, logger.With("component", "registry"))
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		if err := serveHTTP("registry", cfg.RegistryAddr, srv.Handler(), ready, logger, errc, closers); err != nil {
			return nil, err
		}
		registry = srv.LocalClient()
	}
	if cfg.hasRole("catalog") && cfg.CatalogURI == "" {
		if err := startCatalog(ctx, cfg, dataDir, storeURL, ready, logger, errc, closers); err != nil {
			return nil, err
		}
	}
	return registry, nil
}

// serveHTTP listens on addr and serves h until shutdown; the role is ready
// once its listener is bound.
func serveHTTP(role, addr string, h http.Handler, ready *readiness, logger *slog.Logger, errc chan<- error, closers *[]func()) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s listener: %w", role, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s: %w", role, err)
		}
	}()
	*closers = append(*closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	ready.add(role, func() error { return nil })
	logger.Info(role+" listener ready", "addr", ln.Addr().String())
	return nil
}
