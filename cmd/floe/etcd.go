package main

// `floe etcd` runs one member of a standalone etcd cluster from the etcd
// server library floe already embeds, so a deployment needs no second
// binary: `floectl cluster create` runs one member, the Kubernetes
// StatefulSet and the chaos harness run three. Flags keep etcd's own names
// and meanings; the limits floe needs (see internal/metastore's package
// doc) are the defaults here instead of etcd's.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Limits for floe's metadata, the same values the embedded store starts with
// (internal/metastore: one transaction per flush with a few operations per
// partition, large object-index transactions, periodic compaction).
const (
	etcdMaxTxnOps         = 100000
	etcdMaxRequestBytes   = 64 << 20
	etcdQuotaBackendBytes = 8 << 30
	etcdCompactRetention  = "5m"
	etcdStartTimeout      = 60 * time.Second
)

type etcdConfig struct {
	name, dataDir                                     string
	listenClientURLs, advertiseClientURLs             string
	listenPeerURLs, initialAdvertisePeerURLs          string
	initialCluster, initialClusterState, clusterToken string
	maxTxnOps, maxRequestBytes                        uint
	quotaBackendBytes                                 int64
	compactionRetention                               string
	logLevel                                          string
	level                                             zap.AtomicLevel // set by embedConfig
}

func (c *etcdConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "name", "default", "member name, unique in the cluster (the key in --initial-cluster)")
	fs.StringVar(&c.dataDir, "data-dir", "./floe-etcd", "member data directory")
	fs.StringVar(&c.listenClientURLs, "listen-client-urls", "http://127.0.0.1:2379", "comma-separated URLs to serve clients on")
	fs.StringVar(&c.advertiseClientURLs, "advertise-client-urls", "", "comma-separated client URLs given to the cluster (default: --listen-client-urls)")
	fs.StringVar(&c.listenPeerURLs, "listen-peer-urls", "http://127.0.0.1:2380", "comma-separated URLs to serve peers on")
	fs.StringVar(&c.initialAdvertisePeerURLs, "initial-advertise-peer-urls", "", "comma-separated peer URLs given to the cluster (default: --listen-peer-urls)")
	fs.StringVar(&c.initialCluster, "initial-cluster", "", "name=peerURL,... of every bootstrap member (default: this member alone)")
	fs.StringVar(&c.initialClusterState, "initial-cluster-state", embed.ClusterStateFlagNew, "new (bootstrap a cluster) or existing (join one after `etcdctl member add`)")
	fs.StringVar(&c.clusterToken, "initial-cluster-token", "floe-etcd", "token that tells bootstrapping clusters apart")
	fs.UintVar(&c.maxTxnOps, "max-txn-ops", etcdMaxTxnOps, "operations allowed in one transaction (etcd's default 128 is too few for floe)")
	fs.UintVar(&c.maxRequestBytes, "max-request-bytes", etcdMaxRequestBytes, "largest client request")
	fs.Int64Var(&c.quotaBackendBytes, "quota-backend-bytes", etcdQuotaBackendBytes, "backend size at which etcd turns read-only")
	fs.StringVar(&c.compactionRetention, "auto-compaction-retention", etcdCompactRetention, "history kept by periodic compaction")
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
}

func newEtcdFlagSet(c *etcdConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("floe etcd", flag.ContinueOnError)
	c.register(fs)
	return fs
}

// embedConfig turns the flags into etcd's configuration.
func (c *etcdConfig) embedConfig() (*embed.Config, error) {
	ec := embed.NewConfig()
	ec.Name = c.name
	ec.Dir = c.dataDir
	var err error
	if ec.ListenClientUrls, err = parseURLs("listen-client-urls", c.listenClientURLs); err != nil {
		return nil, err
	}
	ec.AdvertiseClientUrls = ec.ListenClientUrls
	if c.advertiseClientURLs != "" {
		if ec.AdvertiseClientUrls, err = parseURLs("advertise-client-urls", c.advertiseClientURLs); err != nil {
			return nil, err
		}
	}
	if ec.ListenPeerUrls, err = parseURLs("listen-peer-urls", c.listenPeerURLs); err != nil {
		return nil, err
	}
	ec.AdvertisePeerUrls = ec.ListenPeerUrls
	if c.initialAdvertisePeerURLs != "" {
		if ec.AdvertisePeerUrls, err = parseURLs("initial-advertise-peer-urls", c.initialAdvertisePeerURLs); err != nil {
			return nil, err
		}
	}
	for _, u := range append(append([]url.URL{}, ec.AdvertiseClientUrls...), ec.AdvertisePeerUrls...) {
		// A wildcard is something to listen on, never an address to hand out.
		if h := u.Hostname(); h == "0.0.0.0" || h == "::" || h == "" {
			return nil, fmt.Errorf("advertised URL %s: give an address others can reach (set --advertise-client-urls / --initial-advertise-peer-urls)", u.String())
		}
	}
	ec.InitialCluster = c.initialCluster
	if ec.InitialCluster == "" {
		ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	}
	if c.initialClusterState != embed.ClusterStateFlagNew && c.initialClusterState != embed.ClusterStateFlagExisting {
		return nil, fmt.Errorf("--initial-cluster-state %q: want new or existing", c.initialClusterState)
	}
	ec.ClusterState = c.initialClusterState
	ec.InitialClusterToken = c.clusterToken
	ec.MaxTxnOps = c.maxTxnOps
	ec.MaxRequestBytes = c.maxRequestBytes
	ec.QuotaBackendBytes = c.quotaBackendBytes
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = c.compactionRetention
	ec.Logger = "zap"
	ec.LogLevel = c.logLevel
	ec.LogOutputs = []string{embed.StdErrLogOutput}
	// etcd's listeners report "use of closed network connection" errors while
	// the member stops on purpose; the level is raised then (see quiet).
	lvl, err := zap.ParseAtomicLevel(c.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	c.level = lvl
	zcfg := zap.NewProductionConfig()
	zcfg.Level = lvl
	zcfg.OutputPaths = []string{"stderr"}
	zcfg.ErrorOutputPaths = []string{"stderr"}
	zcfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zl, err := zcfg.Build()
	if err != nil {
		return nil, err
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zl)
	// Only gRPC is used by floe; /health, /version and /metrics stay on the
	// client URLs for probes.
	ec.EnableGRPCGateway = false
	if err := ec.Validate(); err != nil {
		return nil, err
	}
	return ec, nil
}

func parseURLs(flagName, s string) ([]url.URL, error) {
	var out []url.URL
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("--%s: %q: scheme must be http or https", flagName, raw)
		}
		if u.Port() == "" {
			return nil, fmt.Errorf("--%s: %q: an explicit port is required", flagName, raw)
		}
		out = append(out, *u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: no URL given", flagName)
	}
	return out, nil
}

// runEtcd runs one member until SIGINT/SIGTERM, or until etcd fails.
func runEtcd(args []string) error {
	var c etcdConfig
	fs := newEtcdFlagSet(&c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	ec, err := c.embedConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return fmt.Errorf("start etcd member %s in %s: %w", c.name, c.dataDir, err)
	}
	defer e.Close()
	timer := time.NewTimer(etcdStartTimeout)
	defer timer.Stop()
	// A member of a new multi-member cluster is ready only once a quorum
	// has started, so the wait is long and interruptible.
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "floe etcd: member %s ready: clients %s, peers %s\n",
			c.name, urlList(ec.AdvertiseClientUrls), urlList(ec.AdvertisePeerUrls))
	case err := <-e.Err():
		return fmt.Errorf("etcd member %s: %w", c.name, err)
	case <-timer.C:
		return fmt.Errorf("etcd member %s not ready after %s (is a quorum of --initial-cluster up?)", c.name, etcdStartTimeout)
	case <-ctx.Done():
		return nil
	}
	select {
	case err := <-e.Err():
		return fmt.Errorf("etcd member %s: %w", c.name, err)
	case <-e.Server.StopNotify():
		return fmt.Errorf("etcd member %s stopped (removed from the cluster?)", c.name)
	case <-ctx.Done():
		fmt.Fprintf(os.Stderr, "floe etcd: member %s shutting down\n", c.name)
		c.level.SetLevel(zapcore.FatalLevel)
		return nil
	}
}

func urlList(us []url.URL) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}
