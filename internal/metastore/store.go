// Package metastore is floe's metadata store: every durable piece of metadata
// (partition leader epochs, the object index, high watermarks, consumer offsets,
// schema registry entries) lives in etcd, either embedded in the process
// (single node, the laptop default) or an external cluster.
//
// The broker fences stale partition leaders with compare-and-swap, so the API
// is built around revisions: Create, CAS, Update and Txn fail with ErrConflict
// (a *ConflictError naming the keys whose condition failed) instead of
// overwriting a newer value. Every key is stored under Config.Prefix through
// clientv3/namespace; callers always use keys relative to it.
//
// The embedded etcd is started with the limits floe needs: 100000 operations
// per transaction, 64 MiB requests, an 8 GiB backend quota and periodic
// auto-compaction keeping 5 minutes of history. An external cluster must be
// configured likewise, for example:
//
//	etcd --max-txn-ops=100000 --max-request-bytes=67108864 \
//	     --quota-backend-bytes=8589934592 \
//	     --auto-compaction-mode=periodic --auto-compaction-retention=5m
//
// With etcd's default --max-txn-ops=128 a flush that touches more than about a
// hundred partitions fails: floe writes one transaction per flush with a few
// operations per partition.
package metastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Sentinel errors; returned wrapped, test with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("metastore: key not found")
	// ErrConflict: a compare-and-swap condition did not hold; nothing was written.
	ErrConflict = errors.New("metastore: conflict")
	// ErrAbort may be returned by an Update function to stop without writing.
	ErrAbort = errors.New("metastore: update aborted")
	// ErrClosed: the Store has been closed.
	ErrClosed = errors.New("metastore: store closed")
)

const (
	// maxTxnOps and maxRequestBytes are the embedded etcd's limits; external
	// clusters must be configured with at least these (see package doc).
	maxTxnOps       = 100000
	maxRequestBytes = 64 << 20
	// grpcOverhead matches the slack etcd adds to its gRPC receive limit.
	grpcOverhead      = 512 << 10
	quotaBackendBytes = 8 << 30
	compactRetention  = "5m"
	// pageSize is the number of keys fetched per range request by List.
	pageSize = 1000
)

// KV is one key with its value and etcd revisions.
type KV struct {
	Key   string
	Value []byte
	// ModRevision is the store revision of the last write of this key: the
	// value to pass to CAS or Txn.IfModRevision.
	ModRevision int64
	// CreateRevision is the store revision at which the key was (last) created.
	CreateRevision int64
	// Version counts writes since creation (1 after create).
	Version int64
}

func fromPB(kv *mvccpb.KeyValue) KV {
	return KV{
		Key:            string(kv.Key),
		Value:          kv.Value,
		ModRevision:    kv.ModRevision,
		CreateRevision: kv.CreateRevision,
		Version:        kv.Version,
	}
}

// Store is a connection to floe's metadata in etcd. It is safe for concurrent use.
type Store struct {
	cfg       Config
	logger    *slog.Logger
	etcd      *embed.Etcd // nil in external mode
	cli       *clientv3.Client
	rawKV     clientv3.KV // not namespaced; for revision probes only
	endpoints []string

	// ctx is cancelled on Close; background work (lease keep-alives) derives from it.
	ctx       context.Context
	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// bg counts watch loops and lease keep-alives; they end when ctx is
	// cancelled, and Close waits for them before closing the client (the
	// client must not be closed while a watch is being set up). bgMu orders
	// registrations in bg against Close's Wait.
	bgMu sync.Mutex
	bg   sync.WaitGroup
	// embeddedDone is closed when the embedded server has stopped.
	embeddedDone chan struct{}
}

// goBackground runs f in a goroutine that Close waits for; it reports false
// (and does not run f) once the Store is closing.
func (s *Store) goBackground(f func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// Open connects to the metadata store described by cfg, first starting an
// embedded etcd if cfg has no Endpoints. It returns once etcd answers a
// linearizable read, so a returned Store is usable.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "metastore")
	s := &Store{cfg: cfg, logger: logger, endpoints: cfg.Endpoints}
	zl := newZapLogger(logger.Handler(), zapcore.WarnLevel, &s.closed) // quiet while closing
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Embedded() {
		e, err := startEmbedded(ctx, cfg, zl)
		if err != nil {
			s.cancel()
			return nil, err
		}
		s.etcd = e
		s.endpoints = []string{cfg.ClientURL}
		s.embeddedDone = make(chan struct{})
		go s.watchEmbedded()
	}

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            s.endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		// Pinging without an open stream makes etcd (whose enforcement policy
		// forbids it) answer GOAWAY "too_many_pings"; leases and watches hold
		// streams open whenever keepalive matters.
		PermitWithoutStream: false,
		// Let large transactions through on the client side; the server's
		// --max-request-bytes is the effective limit.
		MaxCallSendMsgSize: maxRequestBytes + grpcOverhead,
		// The client warns on every failed RPC attempt (a revoke of an
		// expired lease, a cancelled context); those errors reach the
		// caller anyway, so only its errors are logged.
		Logger: newZapLogger(logger.Handler(), zapcore.ErrorLevel, &s.closed),
	})
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("metastore: connect to %v: %w", s.endpoints, err)
	}
	s.rawKV = cli.KV
	cli.KV = namespace.NewKV(cli.KV, cfg.Prefix)
	cli.Watcher = namespace.NewWatcher(cli.Watcher, cfg.Prefix)
	cli.Lease = namespace.NewLease(cli.Lease, cfg.Prefix)
	s.cli = cli

	// clientv3.New does not block on the connection; probe so that a wrong
	// endpoint fails here, within DialTimeout, rather than at first use.
	probeCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	_, err = s.rawKV.Get(probeCtx, cfg.Prefix, clientv3.WithCountOnly())
	cancel()
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("metastore: etcd at %v not reachable within %s: %w", s.endpoints, cfg.DialTimeout, err)
	}
	logger.Info("metadata store open", "embedded", cfg.Embedded(), "endpoints", s.endpoints, "prefix", cfg.Prefix)
	return s, nil
}

func startEmbedded(ctx context.Context, cfg Config, zl *zap.Logger) (*embed.Etcd, error) {
	cu, err := parseListenURL(cfg.ClientURL)
	if err != nil {
		return nil, err
	}
	pu, err := parseListenURL(cfg.PeerURL)
	if err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = "floe"
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{*cu}
	ec.AdvertiseClientUrls = []url.URL{*cu}
	ec.ListenPeerUrls = []url.URL{*pu}
	ec.AdvertisePeerUrls = []url.URL{*pu}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.MaxTxnOps = maxTxnOps
	ec.MaxRequestBytes = maxRequestBytes
	ec.QuotaBackendBytes = quotaBackendBytes
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = compactRetention
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	// Only the gRPC API is used; the JSON gateway would be one more surface.
	ec.EnableGRPCGateway = false
	ec.Logger = "zap"
	ec.LogLevel = "warn"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zl)

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("metastore: start embedded etcd in %s: %w", cfg.DataDir, err)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("metastore: embedded etcd failed to start: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("metastore: embedded etcd not ready after %s", cfg.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("metastore: waiting for embedded etcd: %w", ctx.Err())
	}
}

// watchEmbedded logs errors the embedded server reports while running (the
// channel is closed when the server stops).
func (s *Store) watchEmbedded() {
	defer close(s.embeddedDone)
	for err := range s.etcd.Err() {
		if err != nil && !s.closed.Load() {
			s.logger.Error("embedded etcd error", "err", err)
		}
	}
}

// Close stops lease keep-alives, closes the client and stops the embedded etcd.
// Leases are not revoked: keys attached to them expire after their TTL (call
// Lease.Revoke first for a prompt hand-over). Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.bgMu.Lock()
		s.closed.Store(true)
		s.bgMu.Unlock()
		s.cancel()
		s.bg.Wait()
		var errs []error
		if s.cli != nil {
			if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("metastore: close client: %w", err))
			}
		}
		if s.etcd != nil {
			s.etcd.Close()
			<-s.embeddedDone
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Client returns the underlying etcd client for transactions the Store API
// does not cover. Its KV, Watcher and Lease are namespaced: keys are relative
// to Config.Prefix, exactly as in the Store API.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Endpoints returns the etcd client URLs the Store is connected to; for an
// embedded etcd, its client URL. Other Stores (for example other brokers in a
// test) can share the same etcd by opening with these endpoints.
func (s *Store) Endpoints() []string { return append([]string(nil), s.endpoints...) }

// Prefix returns the key prefix of this Store.
func (s *Store) Prefix() string { return s.cfg.Prefix }

func (s *Store) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Get returns the key's current value, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (KV, error) {
	if err := s.check(); err != nil {
		return KV{}, err
	}
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return KV{}, fmt.Errorf("metastore: get %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, fmt.Errorf("metastore: get %q: %w", key, ErrNotFound)
	}
	return fromPB(resp.Kvs[0]), nil
}

// List returns every key starting with prefix, sorted by key. It reads in
// pages of 1000 keys, all at one store revision, so the result is a
// consistent snapshot however many keys there are.
func (s *Store) List(ctx context.Context, prefix string) ([]KV, error) {
	kvs, _, err := s.ListRev(ctx, prefix)
	return kvs, err
}

// ListRev is List that also returns the store revision the snapshot was read
// at. To follow a prefix without missing or repeating a change, list with
// ListRev and then Watch from rev+1.
func (s *Store) ListRev(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := s.check(); err != nil {
		return nil, 0, err
	}
	for {
		kvs, rev, err := s.listAt(ctx, prefix)
		if errors.Is(err, rpctypes.ErrCompacted) && ctx.Err() == nil {
			// Compaction passed the revision between two pages: start over.
			continue
		}
		return kvs, rev, err
	}
}

func (s *Store) listAt(ctx context.Context, prefix string) ([]KV, int64, error) {
	start := prefix
	var rev int64
	var out []KV
	for {
		opts := []clientv3.OpOption{rangeTo(start, prefix), clientv3.WithLimit(pageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, start, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("metastore: list %q: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			out = append(out, fromPB(kv))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// rangeTo is the option for a range from start to the end of prefix.
// WithPrefix when start is the prefix itself: the namespaced KV only accepts
// an empty key (the whole namespace) with WithPrefix.
func rangeTo(start, prefix string) clientv3.OpOption {
	if start == prefix {
		return clientv3.WithPrefix()
	}
	return clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))
}

// ListPage returns up to limit keys starting with prefix and sorting after
// startAfter ("" starts at the beginning), in key order. Pass the last key of
// a page as startAfter to get the next one; an empty page is the end.
// limit <= 0 means 1000. Unlike List, successive pages are separate reads.
func (s *Store) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]KV, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = pageSize
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	start := prefix
	if next := startAfter + "\x00"; startAfter != "" && next > start {
		start = next
	}
	if end != "\x00" && start >= end {
		return nil, nil
	}
	resp, err := s.cli.Get(ctx, start, rangeTo(start, prefix), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("metastore: list page %q after %q: %w", prefix, startAfter, err)
	}
	out := make([]KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, fromPB(kv))
	}
	return out, nil
}

// Put writes the key unconditionally and returns the new store revision.
func (s *Store) Put(ctx context.Context, key string, value []byte) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	resp, err := s.cli.Put(ctx, key, string(value))
	if err != nil {
		return 0, fmt.Errorf("metastore: put %q: %w", key, err)
	}
	return resp.Header.Revision, nil
}

// Create writes the key only if it does not exist; otherwise it returns a
// *ConflictError wrapping ErrConflict.
func (s *Store) Create(ctx context.Context, key string, value []byte) (int64, error) {
	return s.Txn().IfModRevision(key, 0).Put(key, value).Commit(ctx)
}

// CAS writes the key only if its ModRevision equals expectModRev (0: the key
// must not exist), and returns the new revision. On mismatch it returns a
// *ConflictError wrapping ErrConflict and writes nothing.
func (s *Store) CAS(ctx context.Context, key string, expectModRev int64, value []byte) (int64, error) {
	return s.Txn().IfModRevision(key, expectModRev).Put(key, value).Commit(ctx)
}

// Delete removes the key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(); err != nil {
		return err
	}
	if _, err := s.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("metastore: delete %q: %w", key, err)
	}
	return nil
}

// DeletePrefix removes every key starting with prefix (the empty prefix: every
// key under this Store's Config.Prefix) and returns how many were deleted.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	resp, err := s.cli.Delete(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("metastore: delete prefix %q: %w", prefix, err)
	}
	return resp.Deleted, nil
}

// Update applies fn to the key's current value and writes the result if the
// key has not changed meanwhile, retrying with the fresh value until the write
// succeeds or ctx is done. fn gets the current value and whether the key
// exists; it must be free of side effects since it may run several times.
// If fn returns an error (ErrAbort by convention for "leave it as it is"),
// Update writes nothing and returns the KV as last read with that error
// wrapped. On success it returns the KV as written.
func (s *Store) Update(ctx context.Context, key string, fn func(cur []byte, exists bool) ([]byte, error)) (KV, error) {
	if err := s.check(); err != nil {
		return KV{}, err
	}
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return KV{}, fmt.Errorf("metastore: update %q: %w", key, err)
	}
	cur, exists := KV{Key: key}, false
	if len(resp.Kvs) > 0 {
		cur, exists = fromPB(resp.Kvs[0]), true
	}
	for {
		if err := ctx.Err(); err != nil {
			return KV{}, fmt.Errorf("metastore: update %q: %w", key, err)
		}
		next, err := fn(cur.Value, exists)
		if err != nil {
			return cur, fmt.Errorf("metastore: update %q: %w", key, err)
		}
		// The Else branch returns the competing value, saving a round trip per retry.
		tr, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.ModRevision)).
			Then(clientv3.OpPut(key, string(next))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return KV{}, fmt.Errorf("metastore: update %q: %w", key, err)
		}
		if tr.Succeeded {
			rev := tr.Header.Revision
			created := cur.CreateRevision
			if !exists {
				created = rev
			}
			return KV{Key: key, Value: next, ModRevision: rev, CreateRevision: created, Version: cur.Version + 1}, nil
		}
		rr := tr.Responses[0].GetResponseRange()
		cur, exists = KV{Key: key}, false
		if len(rr.Kvs) > 0 {
			cur, exists = fromPB(rr.Kvs[0]), true
		}
	}
}

// NextID increments the counter at counterKey and returns the new value: 1 for
// a new counter, then 2, 3, ... Every caller anywhere in the cluster gets a
// distinct id, and ids handed out later are larger.
func (s *Store) NextID(ctx context.Context, counterKey string) (int64, error) {
	var id int64
	_, err := s.Update(ctx, counterKey, func(cur []byte, exists bool) ([]byte, error) {
		id = 1
		if exists {
			n, err := strconv.ParseInt(string(cur), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("counter value %q is not an integer: %w", cur, err)
			}
			id = n + 1
		}
		return strconv.AppendInt(nil, id, 10), nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}
