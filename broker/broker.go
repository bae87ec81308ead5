// Package broker is floe's Kafka protocol front end: the listener, one
// connection loop per client, one file per API key, and the diskless log
// underneath — offsets assigned in memory, batches flushed to object storage
// in one object per flush, and the flush made durable by a metadata
// transaction fenced by each partition's leader epoch.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// Config is the broker's configuration; cmd/floe fills it from flags.
type Config struct {
	NodeID         int32         `yaml:"node_id"`
	KafkaAddr      string        `yaml:"kafka_addr"`
	AdvertisedAddr string        `yaml:"advertised_kafka_addr"`
	FlushInterval  time.Duration `yaml:"wal_flush_interval"`
	// FlushMinInterval is the earliest a flush may follow the previous one
	// when a client waits at its in-flight cap (wal.go); FlushInterval
	// turns early flushes off. 0: a quarter of FlushInterval.
	FlushMinInterval   time.Duration `yaml:"wal_flush_min_interval"`
	FlushBytes         int           `yaml:"wal_flush_bytes"`
	AutoCreateTopics   bool          `yaml:"auto_create_topics"`
	DefaultPartitions  int32         `yaml:"default_partitions"`
	MaxRequestBytes    int32         `yaml:"max_request_bytes"`
	TailCacheBytes     int64         `yaml:"tail_cache_bytes"`
	BlockCacheBytes    int64         `yaml:"block_cache_bytes"`
	MaxFetchSessions   int           `yaml:"max_fetch_sessions"`
	RetentionInterval  time.Duration `yaml:"retention_check_interval"`
	GCInterval         time.Duration `yaml:"gc_interval"`
	GCGrace            time.Duration `yaml:"gc_grace"`
	CompactionInterval time.Duration `yaml:"compaction_interval"`
	// CompactionMinAge leaves segments younger than this alone.
	CompactionMinAge time.Duration `yaml:"compaction_min_age"`

	// Cluster (DESIGN §6).
	Rack string `yaml:"rack"`
	// LeaseTTL bounds how long a dead broker keeps its partitions.
	LeaseTTL time.Duration `yaml:"broker_lease_ttl"`
	// BalanceInterval is how often the controller evens load; at most
	// BalanceMaxMoves partitions move per round, and only while the most
	// and least loaded brokers differ by more than BalanceBand of the mean.
	BalanceInterval    time.Duration `yaml:"balance_interval"`
	BalanceBand        float64       `yaml:"balance_band"`
	BalanceMaxMoves    int           `yaml:"balance_max_moves"`
	LoadReportInterval time.Duration `yaml:"load_report_interval"`
	// DrainTimeout bounds how long a graceful shutdown waits for its
	// partitions to move to other brokers.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// DefaultConfig returns the defaults of DESIGN §4 and §8.
func DefaultConfig() Config {
	return Config{
		NodeID:             0,
		KafkaAddr:          "127.0.0.1:9092",
		FlushInterval:      100 * time.Millisecond,
		FlushBytes:         8 << 20,
		AutoCreateTopics:   true,
		DefaultPartitions:  1,
		MaxRequestBytes:    100 << 20,
		TailCacheBytes:     256 << 20,
		BlockCacheBytes:    256 << 20,
		MaxFetchSessions:   1000,
		RetentionInterval:  30 * time.Second,
		GCInterval:         5 * time.Minute,
		GCGrace:            10 * time.Minute,
		CompactionInterval: 30 * time.Second,
		CompactionMinAge:   defaultCompaction.minAge,
		LeaseTTL:           6 * time.Second,
		BalanceInterval:    10 * time.Second,
		BalanceBand:        0.2,
		BalanceMaxMoves:    4,
		LoadReportInterval: 10 * time.Second,
		DrainTimeout:       15 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.FlushInterval <= 0 {
		return errors.New("broker: wal flush interval must be positive")
	}
	if c.FlushBytes <= 0 {
		return errors.New("broker: wal flush bytes must be positive")
	}
	if c.FlushMinInterval == 0 {
		c.FlushMinInterval = c.FlushInterval / 4
	}
	if c.FlushMinInterval < 0 || c.FlushMinInterval > c.FlushInterval {
		return errors.New("broker: wal flush min interval must be between 0 and the flush interval")
	}
	if c.RetentionInterval <= 0 || c.GCInterval <= 0 || c.GCGrace < 0 || c.CompactionInterval <= 0 {
		return errors.New("broker: retention and gc intervals must be positive")
	}
	if c.LeaseTTL < time.Second {
		return errors.New("broker: lease ttl must be at least 1s")
	}
	if c.BalanceInterval <= 0 || c.LoadReportInterval <= 0 || c.BalanceBand < 0 || c.BalanceMaxMoves < 0 || c.DrainTimeout < 0 {
		return errors.New("broker: balance settings must be positive")
	}
	if c.NodeID < 0 {
		return errors.New("broker: node id must not be negative")
	}
	if c.DefaultPartitions <= 0 {
		return errors.New("broker: default partitions must be positive")
	}
	if _, _, err := net.SplitHostPort(c.KafkaAddr); err != nil {
		return fmt.Errorf("broker: kafka addr %q: %w", c.KafkaAddr, err)
	}
	if c.AdvertisedAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertisedAddr); err != nil {
			return fmt.Errorf("broker: advertised kafka addr %q: %w", c.AdvertisedAddr, err)
		}
	}
	return nil
}

// Broker serves the Kafka protocol for the partitions it leads.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	meta   *metastore.Store
	bucket objstore.Bucket
	m      *metrics

	clusterID string
	advHost   string
	advPort   int32

	topics   *topicTable
	wal      *walWriter
	cache    *readCache
	sessions *fetchSessions
	notify   *notifier
	groups   *groupService

	// Cluster membership and leadership (cluster.go, membership.go,
	// controller.go, leadership.go).
	view           *clusterView
	memberMu       sync.Mutex
	member         *member
	ctlMu          sync.Mutex
	ctl            *controllerState
	leadershipKick chan struct{}
	controllerKick chan struct{}
	watchCancel    context.CancelFunc
	joined         atomic.Bool
	topicsRev      int64

	ln      net.Listener
	connsMu sync.Mutex
	conns   map[*conn]struct{}
	wg      sync.WaitGroup

	closeOnce sync.Once
	closing   chan struct{}
}

// New prepares a broker: it reads the cluster's metadata. Listen then
// joins the cluster and takes the partitions the controller assigns.
func New(ctx context.Context, cfg Config, meta *metastore.Store, bucket objstore.Bucket, reg prometheus.Registerer, logger *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:     cfg,
		log:     logger,
		meta:    meta,
		bucket:  bucket,
		m:       newMetrics(reg),
		conns:   make(map[*conn]struct{}),
		closing: make(chan struct{}),
		notify:  newNotifier(),

		view:           newClusterView(),
		leadershipKick: make(chan struct{}, 1),
		controllerKick: make(chan struct{}, 1),
	}
	b.cache = newReadCache(bucket, cfg.TailCacheBytes, cfg.BlockCacheBytes, b.m)
	b.sessions = newFetchSessions(cfg.MaxFetchSessions)
	id, err := b.loadClusterID(ctx)
	if err != nil {
		return nil, err
	}
	b.clusterID = id
	b.topics = newTopicTable(b)
	b.wal = newWALWriter(b)
	rev, err := b.topics.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: loading topics: %w", err)
	}
	b.topicsRev = rev
	if reg != nil {
		// Invariant 6 made visible: segment records held for the partitions led here.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "floe_broker_segment_records", Help: "Segment records in the metadata store for partitions this broker leads.",
		}, func() float64 {
			n := 0
			for _, t := range b.topics.all() {
				for _, p := range t.partitions() {
					n += len(p.status().segs)
				}
			}
			return float64(n)
		}))
	}
	if err := b.startGroups(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// loadClusterID reads the cluster id, creating it on the first start.
func (b *Broker) loadClusterID(ctx context.Context) (string, error) {
	const key = "cluster/id"
	kv, err := b.meta.Get(ctx, key)
	if err == nil {
		return string(kv.Value), nil
	}
	if !errors.Is(err, metastore.ErrNotFound) {
		return "", fmt.Errorf("broker: reading cluster id: %w", err)
	}
	id := newClusterID()
	if _, err := b.meta.Create(ctx, key, []byte(id)); err != nil && !errors.Is(err, metastore.ErrConflict) {
		return "", fmt.Errorf("broker: creating cluster id: %w", err)
	}
	kv, err = b.meta.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("broker: reading cluster id: %w", err)
	}
	return string(kv.Value), nil
}

// Listen binds the Kafka listener. Separate from Serve so callers learn
// the bound address (port 0 in tests) before serving.
func (b *Broker) Listen() error {
	ln, err := net.Listen("tcp", b.cfg.KafkaAddr)
	if err != nil {
		return fmt.Errorf("broker: listen %s: %w", b.cfg.KafkaAddr, err)
	}
	b.ln = ln
	adv := b.cfg.AdvertisedAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		return fmt.Errorf("broker: advertised addr %q: %w", adv, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("broker: advertised port %q: %w", port, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	b.advHost, b.advPort = host, int32(p)
	if err := b.join(); err != nil {
		ln.Close()
		return err
	}
	return nil
}

// join registers this broker, mirrors the cluster, starts the membership,
// controller and leadership loops, and waits (bounded) until every
// partition has a serving leader, so a broker that reports ready serves
// the partitions it was given.
func (b *Broker) join() error {
	ctx, cancel := context.WithCancel(context.Background())
	b.watchCancel = cancel
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := b.register(rctx, false); err != nil {
		return err
	}
	if err := b.watchCluster(rctx, ctx); err != nil {
		return err
	}
	b.wg.Add(6)
	go func() { defer b.wg.Done(); b.topics.watch(ctx, b.topicsRev+1) }()
	go func() { defer b.wg.Done(); b.runMembership() }()
	go func() { defer b.wg.Done(); b.runController() }()
	go func() { defer b.wg.Done(); b.runLeadership() }()
	go func() { defer b.wg.Done(); b.runLoadReports(b.cfg.LoadReportInterval) }()
	go func() { defer b.wg.Done(); b.runGroupPlacement(ctx, b.groups.place) }()
	if err := b.topics.ensureInternalTopics(rctx); err != nil {
		return fmt.Errorf("broker: internal topics: %w", err)
	}
	// A restarted cluster may wait out a dead broker's lease here.
	if !b.waitView(ctx, 2*b.cfg.LeaseTTL+5*time.Second, b.settled) {
		b.log.Warn("joined the cluster, but some partitions have no serving leader yet")
	}
	b.joined.Store(true)
	return nil
}

// settled reports whether a controller exists, every partition has a
// serving leader, and this broker leads what it was given.
func (b *Broker) settled() bool {
	if b.view.controllerID() < 0 {
		return false
	}
	for _, t := range b.topics.all() {
		for _, p := range t.partitions() {
			if _, _, ok := b.view.leaderOf(tpKey{t.id, p.id}); !ok {
				return false
			}
		}
	}
	return b.ownsAssigned()
}

// Addr is the bound Kafka listener address.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Serve accepts connections until Close.
func (b *Broker) Serve() error {
	b.wg.Add(4)
	go func() { defer b.wg.Done(); b.wal.run() }()
	go func() { defer b.wg.Done(); b.runRetention(b.cfg.RetentionInterval) }()
	go func() { defer b.wg.Done(); b.runGC(b.cfg.GCInterval, b.cfg.GCGrace) }()
	go func() { defer b.wg.Done(); b.runCompaction(b.cfg.CompactionInterval, b.compactionPolicy()) }()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.closing:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("broker: accept: %w", err)
		}
		c := newConn(b, nc)
		b.connsMu.Lock()
		b.conns[c] = struct{}{}
		b.connsMu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.serve()
			b.connsMu.Lock()
			delete(b.conns, c)
			b.connsMu.Unlock()
		}()
	}
}

// Ready reports whether the broker is serving: it has joined the cluster
// and holds its registration.
func (b *Broker) Ready() bool {
	select {
	case <-b.closing:
		return false
	default:
	}
	if b.ln == nil || !b.joined.Load() {
		return false
	}
	m := b.currentMember()
	if m == nil {
		return false
	}
	select {
	case <-m.lease.Done():
		return false
	default:
		return true
	}
}

// othersCanLead reports whether another live broker is not draining: one
// that partitions can be handed to.
func (b *Broker) othersCanLead() bool {
	for _, r := range b.view.live() {
		if r.NodeID != b.cfg.NodeID && !r.Draining {
			return true
		}
	}
	return false
}

// drain hands this broker's partitions and coordinators to the other
// brokers before it stops (SIGTERM, scale-in): it marks its registration
// draining, and the controller moves everything away; producers see at
// most NOT_LEADER_OR_FOLLOWER, which they retry on the new leader.
func (b *Broker) drain() {
	m := b.currentMember()
	if m == nil || b.cfg.DrainTimeout == 0 {
		return
	}
	if !b.othersCanLead() {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.DrainTimeout)
	defer cancel()
	if err := b.setDraining(ctx); err != nil {
		b.log.Warn("drain: marking registration draining failed", "err", err)
		return
	}
	b.clusterChanged()
	done := b.waitView(ctx, b.cfg.DrainTimeout, func() bool {
		// The whole cluster stopping (every broker draining) has nowhere
		// to hand partitions to.
		if !b.othersCanLead() {
			return true
		}
		for _, t := range b.topics.all() {
			for _, p := range t.partitions() {
				if p.status().leader {
					return false
				}
			}
		}
		return true
	})
	b.log.Info("drained before shutdown", "complete", done, "took", time.Since(start).Round(time.Millisecond))
}

// Close stops accepting, flushes what is buffered (so producers waiting on
// an ack get one), closes connections and waits for every goroutine.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.joined.Load() {
			b.drain()
		}
		close(b.closing)
		if b.ln != nil {
			b.ln.Close()
		}
		b.wal.close()
		b.stopGroups()
		b.connsMu.Lock()
		for c := range b.conns {
			c.close()
		}
		b.connsMu.Unlock()
		b.notify.broadcast()
		// Revoking the lease removes the registration (and the controller
		// key if held) at once, rather than after the TTL.
		if m := b.currentMember(); m != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := m.lease.Revoke(ctx); err != nil {
				b.log.Warn("revoking broker lease", "err", err)
			}
			cancel()
		}
		if b.watchCancel != nil {
			b.watchCancel()
		}
	})
	b.wg.Wait()
	return nil
}
