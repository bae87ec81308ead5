package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// serveConfig is everything `floe serve` is told, from flags, FLOE_* env
// vars and a YAML file (precedence: flag > env > YAML > default). YAML keys
// are the flag names.
type serveConfig struct {
	ConfigFile       string
	DataDir          string
	Roles            string
	NodeID           int
	KafkaAddr        string
	AdvertisedKafka  string
	CatalogAddr      string
	RegistryAddr     string
	AdminAddr        string
	ObjectStore      string
	EtcdEndpoints    string
	EtcdClientURL    string
	EtcdPeerURL      string
	EtcdPrefix       string
	CatalogURI       string
	RegistryURL      string
	CatalogDB        string
	CatalogDSN       string
	Warehouse        string
	FlushInterval    time.Duration
	FlushBytes       int
	FlushMinInterval time.Duration
	AutoCreateTopics bool
	NumPartitions    int
	LogLevel         string
	LogFormat        string
	Rack             string
	LeaseTTL         time.Duration
	BalanceInterval  time.Duration
	BalanceBand      float64
	BalanceMaxMoves  int
	DrainTimeout     time.Duration
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file with any of these flags as keys")
	fs.StringVar(&c.DataDir, "data-dir", "./floe-data", "directory for embedded etcd, the file object store and the SQLite catalog")
	fs.StringVar(&c.Roles, "roles", "broker,catalog,registry", "comma-separated roles to run: broker, catalog, registry")
	fs.IntVar(&c.NodeID, "node-id", 0, "broker node id, unique in the cluster")
	fs.StringVar(&c.KafkaAddr, "kafka-addr", "127.0.0.1:9092", "Kafka listener address")
	fs.StringVar(&c.AdvertisedKafka, "advertised-kafka-addr", "", "address clients are told to connect to (default: the listener's)")
	fs.StringVar(&c.CatalogAddr, "catalog-addr", "127.0.0.1:8181", "Iceberg REST catalog listener address")
	fs.StringVar(&c.RegistryAddr, "registry-addr", "127.0.0.1:8081", "schema registry listener address")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:9644", "admin HTTP address: /metrics, /healthz, /readyz")
	fs.StringVar(&c.ObjectStore, "object-store", "", "object store URL: file:///dir or s3://bucket/prefix?endpoint=URL&region=R (default file://DATA-DIR/objects)")
	fs.StringVar(&c.EtcdEndpoints, "etcd-endpoints", "", "comma-separated external etcd endpoints (empty: run embedded etcd)")
	fs.StringVar(&c.EtcdClientURL, "etcd-client-url", "http://127.0.0.1:2379", "embedded etcd client URL")
	fs.StringVar(&c.EtcdPeerURL, "etcd-peer-url", "http://127.0.0.1:2380", "embedded etcd peer URL")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", "/floe/", "key prefix for floe's metadata in etcd")
	fs.StringVar(&c.CatalogURI, "catalog-uri", "", "external Iceberg REST catalog URI (empty: the embedded catalog)")
	fs.StringVar(&c.RegistryURL, "registry-url", "", "external schema registry URL (empty: the embedded registry)")
	fs.StringVar(&c.CatalogDB, "catalog-db", "sqlite", "embedded catalog database: sqlite or postgres")
	fs.StringVar(&c.CatalogDSN, "catalog-dsn", "", "catalog database DSN (default DATA-DIR/catalog.db for sqlite)")
	fs.StringVar(&c.Warehouse, "warehouse", "", "Iceberg warehouse location (default: the object store's warehouse/ prefix)")
	fs.DurationVar(&c.FlushInterval, "wal-flush-interval", 100*time.Millisecond, "upload buffered records at least this often")
	fs.DurationVar(&c.FlushMinInterval, "wal-flush-min-interval", 0, "earliest a flush may follow the previous one when a client waits at its in-flight cap (0: a quarter of --wal-flush-interval; equal to it: no early flushes)")
	fs.IntVar(&c.FlushBytes, "wal-flush-bytes", 8<<20, "upload as soon as this many bytes are buffered")
	fs.BoolVar(&c.AutoCreateTopics, "auto-create-topics", true, "create unknown topics on Metadata requests (auto.create.topics.enable)")
	fs.IntVar(&c.NumPartitions, "num-partitions", 1, "partitions of auto-created topics (num.partitions)")
	fs.StringVar(&c.Rack, "rack", "", "rack (availability zone) of this broker, reported in Metadata")
	fs.DurationVar(&c.LeaseTTL, "broker-lease-ttl", 6*time.Second, "membership lease: a dead broker's partitions move after at most this long")
	fs.DurationVar(&c.BalanceInterval, "balance-interval", 10*time.Second, "how often the controller evens load across brokers")
	fs.Float64Var(&c.BalanceBand, "balance-band", 0.2, "brokers within this fraction of the mean load count as balanced")
	fs.IntVar(&c.BalanceMaxMoves, "balance-max-moves", 4, "partitions the balancer may move per round (0 turns self-balancing off)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 15*time.Second, "on SIGTERM, wait at most this long for partitions to move to other brokers")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
}

// load parses args, then fills flags not given on the command line from
// FLOE_<FLAG> env vars, then from the YAML file.
func (c *serveConfig) load(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var yamlVals map[string]any
	cfgFile := c.ConfigFile
	if !set["config"] {
		if v := os.Getenv("FLOE_CONFIG"); v != "" {
			cfgFile = v
		}
	}
	if cfgFile != "" {
		raw, err := os.ReadFile(cfgFile)
		if err != nil {
			return fmt.Errorf("reading config: %w", err)
		}
		if err := yaml.Unmarshal(raw, &yamlVals); err != nil {
			return fmt.Errorf("parsing %s: %w", cfgFile, err)
		}
		for k := range yamlVals {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("%s: unknown key %q (keys are flag names)", cfgFile, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		env := "FLOE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
			return
		}
		if v, ok := yamlVals[f.Name]; ok {
			if e := fs.Set(f.Name, fmt.Sprint(v)); e != nil {
				err = fmt.Errorf("%s: %s: %w", cfgFile, f.Name, e)
			}
		}
	})
	return err
}

func (c *serveConfig) hasRole(r string) bool {
	for _, x := range strings.Split(c.Roles, ",") {
		if strings.TrimSpace(x) == r {
			return true
		}
	}
	return false
}
