package metastore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease is an etcd lease kept alive in the background. Keys written with
// Txn.PutWithLease disappear when the lease ends, which is how a broker's
// registration (and with it its partitions) goes away when the broker dies.
type Lease struct {
	s      *Store
	id     clientv3.LeaseID
	ttl    time.Duration
	cancel context.CancelFunc
	done   chan struct{}
}

// GrantLease creates a lease with at least the given TTL (etcd rounds up to
// whole seconds and to its minimum, about 1.5 election timeouts) and keeps it
// alive until Revoke, Store.Close, or loss of the lease.
func (s *Store) GrantLease(ctx context.Context, ttl time.Duration) (*Lease, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("metastore: lease ttl %s must be positive", ttl)
	}
	g, err := s.cli.Grant(ctx, int64(math.Ceil(ttl.Seconds())))
	if err != nil {
		return nil, fmt.Errorf("metastore: grant lease: %w", err)
	}
	// The keep-alive outlives ctx (which only bounds the grant) and ends with the Store.
	kaCtx, cancel := context.WithCancel(s.ctx)
	ch, err := s.cli.KeepAlive(kaCtx, g.ID)
	if err != nil {
		cancel()
		revokeCtx, rcancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
		_, _ = s.cli.Revoke(revokeCtx, g.ID)
		rcancel()
		return nil, fmt.Errorf("metastore: keep lease %x alive: %w", int64(g.ID), err)
	}
	l := &Lease{s: s, id: g.ID, ttl: time.Duration(g.TTL) * time.Second, cancel: cancel, done: make(chan struct{})}
	if !s.goBackground(func() { l.keepAlive(ch) }) {
		cancel()
		return nil, ErrClosed
	}
	return l, nil
}

// keepAlive drains keep-alive responses. clientv3 closes the channel when the
// lease is gone on the server, when its TTL passes without a successful
// renewal (etcd unreachable), or when the keep-alive is cancelled; in every
// case the holder can no longer count on the lease.
func (l *Lease) keepAlive(ch <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(l.done)
	for range ch {
	}
	if l.s.ctx.Err() == nil {
		l.s.logger.Warn("lease ended", "lease", fmt.Sprintf("%x", int64(l.id)))
	}
}

// ID returns the etcd lease id.
func (l *Lease) ID() int64 { return int64(l.id) }

// TTL returns the TTL etcd granted.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Done is closed when the lease can no longer be relied on: it expired, was
// revoked (here or by anyone else), could not be renewed within its TTL, or
// the Store was closed. Whoever holds a role through the lease must give the
// role up when Done closes.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Revoke ends the lease now, deleting the keys attached to it, and returns
// once Done is closed. Revoking a lease that is already gone is not an error.
func (l *Lease) Revoke(ctx context.Context) error {
	l.cancel()
	if err := l.s.check(); err != nil {
		return err
	}
	if _, err := l.s.cli.Revoke(ctx, l.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("metastore: revoke lease %x: %w", int64(l.id), err)
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("metastore: revoke lease %x: %w", int64(l.id), ctx.Err())
	}
}
