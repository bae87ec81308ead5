package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/objstoreurl"
)

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// readiness collects one check per enabled role for /readyz.
type readiness struct {
	mu     sync.Mutex
	checks map[string]func() error
}

func (r *readiness) add(name string, f func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = f
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var failed []string
	for name, f := range r.checks {
		if err := f(); err != nil {
			failed = append(failed, name+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(failed, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

func serve(args []string) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("floe serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := cfg.load(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger, err := newLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := &readiness{checks: map[string]func() error{}}

	// Admin endpoints come up first so operators can watch the start.
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/readyz", ready)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	starting := true
	var startMu sync.Mutex
	ready.add("start", func() error {
		startMu.Lock()
		defer startMu.Unlock()
		if starting {
			return errors.New("starting")
		}
		return nil
	})
	adminSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = adminSrv.Serve(adminLn) }()
	defer adminSrv.Close()

	var endpoints []string
	if cfg.EtcdEndpoints != "" {
		endpoints = strings.Split(cfg.EtcdEndpoints, ",")
	}
	meta, err := metastore.Open(ctx, metastore.Config{
		Endpoints: endpoints,
		DataDir:   filepath.Join(dataDir, "etcd"),
		ClientURL: cfg.EtcdClientURL,
		PeerURL:   cfg.EtcdPeerURL,
		Prefix:    cfg.EtcdPrefix,
	}, logger.With("component", "metastore"))
	if err != nil {
		return fmt.Errorf("metadata store: %w", err)
	}
	defer meta.Close()

	storeURL := cfg.ObjectStore
	if storeURL == "" {
		storeURL = "file://" + filepath.Join(dataDir, "objects")
	}
	rawBucket, err := objstoreurl.Open(ctx, storeURL)
	if err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	bucket := objstore.WrapWithMetrics(rawBucket, reg, "data")
	defer bucket.Close()

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	errc := make(chan error, 4)

	var b *broker.Broker
	if cfg.hasRole("broker") {
		bcfg := broker.DefaultConfig()
		bcfg.NodeID = int32(cfg.NodeID)
		bcfg.KafkaAddr = cfg.KafkaAddr
		bcfg.AdvertisedAddr = cfg.AdvertisedKafka
		bcfg.FlushInterval = cfg.FlushInterval
		bcfg.FlushBytes = cfg.FlushBytes
		bcfg.FlushMinInterval = cfg.FlushMinInterval
		bcfg.AutoCreateTopics = cfg.AutoCreateTopics
		bcfg.DefaultPartitions = int32(cfg.NumPartitions)
		bcfg.Rack = cfg.Rack
		bcfg.LeaseTTL = cfg.LeaseTTL
		bcfg.BalanceInterval = cfg.BalanceInterval
		bcfg.BalanceBand = cfg.BalanceBand
		bcfg.BalanceMaxMoves = cfg.BalanceMaxMoves
		bcfg.DrainTimeout = cfg.DrainTimeout
		b, err = broker.New(ctx, bcfg, meta, bucket, reg, logger.With("component", "broker"))
		if err != nil {
			return err
		}
		if err := b.Listen(); err != nil {
			return err
		}
		go func() { errc <- b.Serve() }()
		closers = append(closers, func() { b.Close() })
		ready.add("broker", func() error {
			if !b.Ready() {
				return errors.New("not serving")
			}
			return nil
		})
		mux.HandleFunc("/v1/cluster", func(w http.ResponseWriter, r *http.Request) {
			out, err := b.AdminClusterJSON(r.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(append(out, '\n'))
		})
		logger.Info("kafka listener ready", "addr", b.Addr())
	}
	registry, err := startHTTPRoles(ctx, &cfg, dataDir, storeURL, meta, ready, logger, errc, &closers)
	if err != nil {
		return err
	}
	if b != nil {
		// Table topics run where partition leaders run.
		_, ioProps, err := warehouseFor(&cfg, dataDir, storeURL)
		if err != nil {
			return err
		}
		if err := startTableTopics(ctx, &cfg, b, ioProps, registry, mux, reg, logger, &closers); err != nil {
			return fmt.Errorf("table topics: %w", err)
		}
	}

	startMu.Lock()
	starting = false
	startMu.Unlock()
	logger.Info("floe ready", "admin", adminLn.Addr().String(), "roles", cfg.Roles, "data_dir", dataDir)
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	return nil
}
