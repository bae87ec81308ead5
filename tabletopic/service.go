package tabletopic

import (
	"context"
	"errors"
	"fmt"
	"github.com/twmb/franz-go/pkg/kgo"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"

	"github.com/floe-io/floe/tabletopic/maintain"
)

// catalogClient is the part of the REST catalog client the pipeline uses.
type catalogClient interface {
	LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error)
	CreateTable(ctx context.Context, ident table.Identifier, sc *iceberg.Schema, opts ...icecatalog.CreateTableOpt) (*table.Table, error)
	CheckNamespaceExists(ctx context.Context, ns table.Identifier) (bool, error)
	CreateNamespace(ctx context.Context, ns table.Identifier, props iceberg.Properties) error
}

var _ catalogClient = (*rest.Catalog)(nil)

// ErrUnknownTable is returned for a name that is neither a table topic nor
// a table known to this node.
var ErrUnknownTable = errors.New("tabletopic: unknown table")

// Service runs the table-topic pipeline of one node.
type Service struct {
	cfg Config
	log Log
	m   *metrics
	// maint runs table maintenance (package maintain), in the background
	// for the tables this node coordinates and on demand.
	maint *maintain.Maintainer

	catMu sync.Mutex
	cat   *rest.Catalog

	dlqMu     sync.Mutex
	dlqClient *kgo.Client // dead-letter topics' producer, on first use

	mu      sync.Mutex
	runners map[string]*tableRunner // by topic name
	retry   map[string]bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	closed  bool
}

// New builds a Service over the log; Start starts it.
func New(cfg Config, log Log) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("tabletopic: a log is required")
	}
	return &Service{
		cfg:     cfg,
		log:     log,
		m:       newMetrics(cfg.Registerer),
		maint:   maintain.New(maintain.Config{Logger: cfg.Logger, Registerer: cfg.Registerer}),
		runners: map[string]*tableRunner{},
		retry:   map[string]bool{},
	}, nil
}

// Start begins watching the log's topics and returns at once; the service
// runs until Close (ctx only carries values). The catalog need not be up
// yet: tables retry until it is.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.done != nil {
		return errors.New("tabletopic: already started or closed")
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	go s.watch()
	return nil
}

// Close stops every table after a final commit of what was converted
// (bounded by Config.ShutdownTimeout). It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	done, cancel := s.done, s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	s.mu.Lock()
	runners := slices.Collect(maps.Values(s.runners))
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(r.stop)
	}
	wg.Wait()
	s.dlqMu.Lock()
	if s.dlqClient != nil {
		s.dlqClient.Close()
	}
	s.dlqMu.Unlock()
	s.catMu.Lock()
	defer s.catMu.Unlock()
	if s.cat != nil {
		return s.cat.Close()
	}
	return nil
}

// watch re-reads topics and leadership every PollInterval.
func (s *Service) watch() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.reconcile()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile starts, restarts and stops table runners to match the log.
func (s *Service) reconcile() {
	topics := s.log.Topics()
	slices.SortFunc(topics, func(a, b TopicInfo) int { return strings.Compare(a.Name, b.Name) })
	seen := map[string]bool{}
	tables := map[string]string{} // table name -> topic
	for _, t := range topics {
		seen[t.Name] = true
		cfg, cfgErr := parseTableConfig(t)
		s.mu.Lock()
		cur := s.runners[t.Name]
		retry := s.retry[t.Name]
		delete(s.retry, t.Name)
		s.mu.Unlock()
		if !cfg.enabled {
			if cur != nil && cur.key != "" {
				// Table mode turned off: stop converting, keep the table.
				cur.stop()
				stopped := newTableRunner(s, t, cfg, nil, "")
				stopped.st = cur.status()
				stopped.st.State, stopped.st.Error = StateStopped, ""
				stopped.st.LagRecords, stopped.st.LagSeconds = 0, 0
				close(stopped.done)
				s.m.forget(cur.name)
				s.setRunner(t.Name, stopped)
			}
			continue
		}
		if other, dup := tables[cfg.tableName()]; dup && cfgErr == nil {
			cfgErr = fmt.Errorf("%w: topic %s already converts into table %s", ErrConfig, other, cfg.tableName())
		}
		tables[cfg.tableName()] = t.Name
		var parts []int32
		for p := int32(0); p < t.Partitions; p++ {
			if s.log.Leads(t.Name, p) {
				parts = append(parts, p)
			}
		}
		key := cfg.fingerprint + "|" + partitionsKey(parts)
		if cfgErr != nil {
			key = "error|" + cfgErr.Error()
		}
		if cur != nil && cur.key == key && !retry {
			continue
		}
		if cur != nil {
			cur.stop()
			s.m.forget(cur.name)
		}
		if len(parts) == 0 && cfgErr == nil {
			s.setRunner(t.Name, nil)
			continue
		}
		r := newTableRunner(s, t, cfg, parts, key)
		if cur != nil {
			r.inherit(cur)
		}
		if cfgErr != nil {
			s.cfg.Logger.Error("table topic config invalid", "topic", t.Name, "err", cfgErr)
			s.setRunner(t.Name, r.failed(cfgErr))
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.runners[t.Name] = r
		r.start(s.ctx)
		s.mu.Unlock()
	}
	// Deleted topics: stop converting, keep the table.
	s.mu.Lock()
	var gone []*tableRunner
	for name, r := range s.runners {
		if !seen[name] {
			gone = append(gone, r)
			delete(s.runners, name)
		}
	}
	s.mu.Unlock()
	for _, r := range gone {
		r.stop()
		s.m.forget(r.name)
	}
}

func (s *Service) setRunner(topic string, r *tableRunner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == nil {
		delete(s.runners, topic)
		return
	}
	s.runners[topic] = r
}

// inherit carries cumulative counters over a restart of the table.
func (r *tableRunner) inherit(prev *tableRunner) {
	st := prev.status()
	if st.Table != r.name {
		return
	}
	r.st.Commits, r.st.CommitFailures = st.Commits, st.CommitFailures
	r.st.RowsWritten, r.st.FilesWritten, r.st.BytesWritten = st.RowsWritten, st.FilesWritten, st.BytesWritten
	r.st.DLQRows, r.st.SkippedRecords, r.st.LastCommit = st.DLQRows, st.SkippedRecords, st.LastCommit
}

func partitionsKey(parts []int32) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

// catalog returns the REST catalog client, connecting on first use.
func (s *Service) catalog(ctx context.Context) (catalogClient, error) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	if s.cat != nil {
		return s.cat, nil
	}
	opts := append(slices.Clone(s.cfg.CatalogOptions), rest.WithAdditionalProps(iceberg.Properties(maps.Clone(s.cfg.IOProps))))
	cat, err := rest.NewCatalog(ctx, "floe", s.cfg.CatalogURI, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to catalog %s: %w", s.cfg.CatalogURI, err)
	}
	s.cat = cat
	return cat, nil
}

// Status returns every table topic known to this node, sorted by table.
func (s *Service) Status() []TableStatus {
	s.mu.Lock()
	runners := slices.Collect(maps.Values(s.runners))
	s.mu.Unlock()
	out := make([]TableStatus, 0, len(runners))
	for _, r := range runners {
		out = append(out, r.status())
	}
	slices.SortFunc(out, func(a, b TableStatus) int { return strings.Compare(a.Table, b.Table) })
	return out
}

// TableStatus returns one table's status, by topic name, table name
// (namespace.table) or bare table name.
func (s *Service) TableStatus(name string) (TableStatus, error) {
	r := s.lookup(name)
	if r == nil {
		return TableStatus{}, fmt.Errorf("%w: %s", ErrUnknownTable, name)
	}
	return r.status(), nil
}

func (s *Service) lookup(name string) *tableRunner {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runners[name]; ok {
		return r
	}
	for _, r := range s.runners {
		if r.name == name || r.cfg.table == name {
			return r
		}
	}
	return nil
}

// Retry restarts a table stopped by an error (a bad record under
// errors.tolerance=none, say) at the next poll.
func (s *Service) Retry(name string) error {
	r := s.lookup(name)
	if r == nil {
		return fmt.Errorf("%w: %s", ErrUnknownTable, name)
	}
	s.mu.Lock()
	s.retry[r.topic.Name] = true
	s.mu.Unlock()
	return nil
}
