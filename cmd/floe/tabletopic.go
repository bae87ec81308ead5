package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/schema"
	"github.com/floe-io/floe/tabletopic"
)

// tableLog adapts the broker to the narrow log interface table-topic
// workers read through (DESIGN §3: the broker never imports iceberg-go).
type tableLog struct{ *broker.Broker }

func (l tableLog) Topics() []tabletopic.TopicInfo {
	ts := l.Broker.Topics()
	out := make([]tabletopic.TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = tabletopic.TopicInfo(t)
	}
	return out
}

// startTableTopics runs the table-topic workers and commit coordinators for
// the partitions this broker leads, against the catalog (embedded or
// --catalog-uri) and the registry (embedded or --registry-url).
func startTableTopics(ctx context.Context, cfg *serveConfig, b *broker.Broker, ioProps map[string]string, registry schema.Client, mux *http.ServeMux, reg prometheus.Registerer, logger *slog.Logger, closers *[]func()) error {
	catalogURI := cfg.CatalogURI
	if catalogURI == "" {
		catalogURI = "http://" + cfg.CatalogAddr
	}
	if registry == nil {
		registryURL := cfg.RegistryURL
		if registryURL == "" {
			registryURL = "http://" + cfg.RegistryAddr
		}
		registry = schema.NewHTTPClient(registryURL, nil)
	}
	tt, err := tabletopic.New(tabletopic.Config{
		CatalogURI: catalogURI,
		IOProps:    ioProps,
		Registry:   registry,
		NodeID:     int32(cfg.NodeID),
		Brokers:    []string{b.Addr()}, // dead-letter topics are produced through the cluster
		Logger:     logger.With("component", "tabletopic"),
		Registerer: reg,
	}, tableLog{b})
	if err != nil {
		return err
	}
	if err := tt.Start(ctx); err != nil {
		return err
	}
	*closers = append(*closers, func() { _ = tt.Close() })
	mux.Handle("/v1/tables", tt.Handler())
	mux.Handle("/v1/tables/", tt.Handler())
	return nil
}
