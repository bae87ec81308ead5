package metastore

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventType says what a WatchEvent reports.
type EventType int

// Watch event types.
const (
	// EventPut: a key was created or updated; KV holds the new value.
	EventPut EventType = iota + 1
	// EventDelete: a key was deleted (or its lease ended); KV holds the key and,
	// as ModRevision, the revision of the deletion.
	EventDelete
	// EventReset: the watch could not resume where it was because etcd had
	// compacted the history in between, so changes (deletions included) may
	// have been missed. Snapshot holds the whole prefix as of Revision;
	// callers that mirror the prefix replace their state with it. Events after
	// a reset continue from Revision+1.
	EventReset
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventReset:
		return "reset"
	default:
		return "unknown"
	}
}

// WatchEvent is one change under a watched prefix.
type WatchEvent struct {
	Type EventType
	// KV is the key as written (EventPut) or the deleted key (EventDelete);
	// zero for EventReset.
	KV
	// Revision is the store revision of the change, or of the Snapshot.
	Revision int64
	// Snapshot is set for EventReset only: every key under the prefix, sorted.
	Snapshot []KV
}

const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
)

// Watch streams changes to keys starting with prefix, in revision order,
// from revision fromRev on (inclusive); fromRev <= 0 means changes after the
// current revision when Watch is called. The channel is closed when ctx is
// done or the Store is closed; the caller must keep reading until then.
//
// Watch survives connection trouble by resuming from the revision after the
// last event it delivered. If etcd has compacted that revision away (the
// embedded store keeps 5 minutes of history), Watch lists the prefix afresh
// and delivers an EventReset carrying the snapshot, then continues from the
// snapshot's revision. Callers keeping a mirror of a prefix therefore follow
// this pattern, which never misses nor repeats a change:
//
//	kvs, rev, err := s.ListRev(ctx, prefix) // initial state
//	for ev := range s.Watch(ctx, prefix, rev+1) {
//		switch ev.Type {
//		case metastore.EventPut:    // mirror[ev.Key] = ev.Value
//		case metastore.EventDelete: // delete(mirror, ev.Key)
//		case metastore.EventReset:  // mirror = ev.Snapshot
//		}
//	}
func (s *Store) Watch(ctx context.Context, prefix string, fromRev int64) <-chan WatchEvent {
	out := make(chan WatchEvent, 16)
	if s.check() != nil {
		close(out)
		return out
	}
	if fromRev <= 0 {
		// Pin "now" before returning, so a change made after Watch returns is
		// always seen. On error (0) the loop resolves it later.
		fromRev = 0
		if cur := s.currentRevision(ctx); cur > 0 {
			fromRev = cur + 1
		}
	}
	if !s.goBackground(func() { s.watchLoop(ctx, prefix, fromRev, out) }) {
		close(out)
	}
	return out
}

// currentRevision returns the store's revision, 0 on error.
func (s *Store) currentRevision(ctx context.Context) int64 {
	// A count-only read of one key: cheap, and its header carries the revision.
	resp, err := s.rawKV.Get(ctx, s.cfg.Prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0
	}
	return resp.Header.Revision
}

func (s *Store) watchLoop(ctx context.Context, prefix string, rev int64, out chan<- WatchEvent) {
	defer close(out)
	// End with the Store as well as with ctx: Close waits for this loop
	// before it closes the client.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	backoff := watchMinBackoff
	for {
		var compacted bool
		var err error
		if rev <= 0 {
			if cur := s.currentRevision(ctx); cur > 0 {
				rev = cur + 1
				continue
			}
			err = errors.New("cannot read the current revision")
		} else {
			started := time.Now()
			compacted, err = s.watchFrom(ctx, prefix, &rev, out)
			if time.Since(started) > watchMaxBackoff {
				backoff = watchMinBackoff // it was working; this is a fresh failure
			}
		}
		if ctx.Err() != nil || s.ctx.Err() != nil {
			return
		}
		if compacted {
			kvs, srev, lerr := s.ListRev(ctx, prefix)
			if lerr == nil {
				s.logger.Info("watch resumed from a fresh list after compaction", "prefix", prefix, "revision", srev)
				if !s.send(ctx, out, WatchEvent{Type: EventReset, Revision: srev, Snapshot: kvs}) {
					return
				}
				rev = srev + 1
				backoff = watchMinBackoff
				continue
			}
			err = lerr
		}
		if err != nil {
			s.logger.Warn("watch interrupted, retrying", "prefix", prefix, "revision", rev, "err", err, "backoff", backoff)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
		backoff = min(backoff*2, watchMaxBackoff)
	}
}

// watchFrom runs one etcd watch from *rev, delivering events and advancing
// *rev past them, until the watch ends. It reports whether it ended because
// *rev had been compacted.
func (s *Store) watchFrom(ctx context.Context, prefix string, rev *int64, out chan<- WatchEvent) (compacted bool, err error) {
	// WithRequireLeader ends the watch if this member is cut off from the
	// leader, instead of silently delivering nothing; we then resume elsewhere.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithRev(*rev))
	for wresp := range wch {
		if wresp.CompactRevision != 0 {
			return true, nil
		}
		if err := wresp.Err(); err != nil {
			return false, err
		}
		if wresp.IsProgressNotify() {
			// Everything up to the header revision has been delivered.
			*rev = max(*rev, wresp.Header.Revision+1)
			continue
		}
		for _, ev := range wresp.Events {
			we := WatchEvent{Type: EventPut, KV: fromPB(ev.Kv), Revision: ev.Kv.ModRevision}
			if ev.Type == mvccpb.DELETE {
				we.Type = EventDelete
			}
			if !s.send(ctx, out, we) {
				return false, ctx.Err()
			}
			*rev = ev.Kv.ModRevision + 1
		}
	}
	return false, nil
}

func (s *Store) send(ctx context.Context, out chan<- WatchEvent, ev WatchEvent) bool {
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}
