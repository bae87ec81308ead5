package maintain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
)

// Loader loads tables; a REST catalog client is one. Commits go through the
// catalog the loaded table came from.
type Loader interface {
	LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error)
}

// Target is one table to maintain.
type Target struct {
	Loader Loader
	Ident  table.Identifier
	// Lock, when set, is held around each catalog commit, so that commits
	// this process makes to the table (the data commits of its
	// coordinator) do not race maintenance commits needlessly. Rewriting
	// files happens outside it.
	Lock sync.Locker
}

// Name is the table's dotted name, the label of its metrics.
func (t Target) Name() string { return strings.Join(t.Ident, ".") }

// ErrNotFound is returned by a resolver (see Handler) for a name that is
// no table.
var ErrNotFound = errors.New("maintain: unknown table")

// Config configures a Maintainer.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Maintainer runs maintenance. One per process: it serializes maintenance
// of each table, so an on-demand run waits for a background one.
type Maintainer struct {
	logger *slog.Logger
	m      *metrics

	mu    sync.Mutex
	busy  map[string]chan struct{} // per table, a one-slot semaphore
	users map[string]int
}

// New builds a Maintainer, registering its metrics.
func New(cfg Config) *Maintainer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	return &Maintainer{logger: cfg.Logger, m: newMetrics(cfg.Registerer), busy: map[string]chan struct{}{}, users: map[string]int{}}
}

// acquire waits until no other maintenance of the table runs here.
func (m *Maintainer) acquire(ctx context.Context, name string) (release func(), err error) {
	m.mu.Lock()
	sem, ok := m.busy[name]
	if !ok {
		sem = make(chan struct{}, 1)
		m.busy[name] = sem
	}
	m.users[name]++
	m.mu.Unlock()
	done := func() {
		m.mu.Lock()
		if m.users[name]--; m.users[name] == 0 {
			delete(m.users, name)
			delete(m.busy, name)
		}
		m.mu.Unlock()
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem; done() }, nil
	case <-ctx.Done():
		done()
		return nil, fmt.Errorf("waiting for other maintenance of %s: %w", name, ctx.Err())
	}
}

// lockedCommit commits tx, holding the target's lock if it has one.
func lockedCommit(ctx context.Context, tg Target, tx *table.Transaction) (*table.Table, error) {
	if tg.Lock != nil {
		tg.Lock.Lock()
		defer tg.Lock.Unlock()
	}
	return tx.Commit(ctx)
}
