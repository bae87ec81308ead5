package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/metastore"
)

// Store is where group metadata and offsets are kept. MetaStore adapts the
// etcd-backed *metastore.Store; unit tests use an in-memory one.
type Store interface {
	// List returns every key under prefix.
	List(ctx context.Context, prefix string) ([]metastore.KV, error)
	// Apply performs the writes atomically and returns the store revision
	// they were applied at (revisions order all writes).
	Apply(ctx context.Context, writes []Write) (int64, error)
	// DeletePrefix removes every key under prefix at once.
	DeletePrefix(ctx context.Context, prefix string) error
}

// Write is one put, or a delete when Delete is set.
type Write struct {
	Key    string
	Value  []byte
	Delete bool
}

// MetaStore adapts the metadata store to Store.
func MetaStore(s *metastore.Store) Store { return metaStore{s} }

type metaStore struct{ s *metastore.Store }

func (m metaStore) List(ctx context.Context, prefix string) ([]metastore.KV, error) {
	return m.s.List(ctx, prefix)
}

func (m metaStore) Apply(ctx context.Context, writes []Write) (int64, error) {
	txn := m.s.Txn()
	for _, w := range writes {
		if w.Delete {
			txn.Delete(w.Key)
		} else {
			txn.Put(w.Key, w.Value)
		}
	}
	return txn.Commit(ctx)
}

func (m metaStore) DeletePrefix(ctx context.Context, prefix string) error {
	_, err := m.s.DeletePrefix(ctx, prefix)
	return err
}

// Keys. Group ids are arbitrary strings, so they are path-escaped: a "/" in
// a group id must not make one group's keys a prefix of another's. Topic
// names cannot hold "/".
const groupsPrefix = "groups/"

func groupPrefix(group string) string { return groupsPrefix + url.PathEscape(group) + "/" }
func metaKey(group string) string     { return groupPrefix(group) + "meta" }
func offsetsPrefix(group string) string {
	return groupPrefix(group) + "offsets/"
}
func topicOffsetsPrefix(group, topic string) string { return offsetsPrefix(group) + topic + "/" }
func offsetKey(group, topic string, partition int32) string {
	return topicOffsetsPrefix(group, topic) + strconv.Itoa(int(partition))
}

// groupRecord is a group's metadata as persisted at the end of each
// rebalance (Stable with assignments, or Empty).
type groupRecord struct {
	ProtocolType string         `json:"protocol_type,omitempty"`
	Protocol     string         `json:"protocol,omitempty"`
	Generation   int32          `json:"generation"`
	Leader       string         `json:"leader,omitempty"`
	Members      []memberRecord `json:"members,omitempty"`
}

type memberRecord struct {
	ID                 string           `json:"id"`
	InstanceID         *string          `json:"instance_id,omitempty"`
	ClientID           string           `json:"client_id"`
	ClientHost         string           `json:"client_host"`
	SessionTimeoutMs   int64            `json:"session_timeout_ms"`
	RebalanceTimeoutMs int64            `json:"rebalance_timeout_ms"`
	Protocols          []protocolRecord `json:"protocols"`
	Assignment         []byte           `json:"assignment,omitempty"`
}

type protocolRecord struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata,omitempty"`
}

// offsetRecord is one committed offset.
type offsetRecord struct {
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
	CommitMs    int64  `json:"commit_ms"`
}

// loadedGroup is what the store holds for one group.
type loadedGroup struct {
	meta     *groupRecord
	offsets  map[string]map[int32]committed
	consumer *loadedConsumer // KIP-848 state (consumer_persist.go)
}

// load reads every group under groups/.
func load(ctx context.Context, s Store) (map[string]*loadedGroup, error) {
	kvs, err := s.List(ctx, groupsPrefix)
	if err != nil {
		return nil, fmt.Errorf("group: loading groups: %w", err)
	}
	out := make(map[string]*loadedGroup)
	get := func(name string) *loadedGroup {
		lg := out[name]
		if lg == nil {
			lg = &loadedGroup{offsets: make(map[string]map[int32]committed)}
			out[name] = lg
		}
		return lg
	}
	for _, kv := range kvs {
		rest := strings.TrimPrefix(kv.Key, groupsPrefix)
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil, fmt.Errorf("group: unexpected key %q", kv.Key)
		}
		name, err := url.PathUnescape(rest[:i])
		if err != nil {
			return nil, fmt.Errorf("group: key %q: %w", kv.Key, err)
		}
		sub := rest[i+1:]
		switch {
		case sub == "meta":
			var rec groupRecord
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				return nil, fmt.Errorf("group: record %q: %w", kv.Key, err)
			}
			get(name).meta = &rec
		case strings.HasPrefix(sub, "offsets/"):
			tp := strings.TrimPrefix(sub, "offsets/")
			j := strings.LastIndexByte(tp, '/')
			if j < 0 {
				return nil, fmt.Errorf("group: unexpected key %q", kv.Key)
			}
			p, err := strconv.ParseInt(tp[j+1:], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("group: key %q: %w", kv.Key, err)
			}
			var rec offsetRecord
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				return nil, fmt.Errorf("group: offset %q: %w", kv.Key, err)
			}
			lg := get(name)
			topic := tp[:j]
			if lg.offsets[topic] == nil {
				lg.offsets[topic] = make(map[int32]committed)
			}
			lg.offsets[topic][int32(p)] = committed{offsetRecord: rec, rev: kv.ModRevision}
		case isConsumerKey(sub):
			if err := get(name).loadConsumerKey(sub, kv); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("group: unexpected key %q", kv.Key)
		}
	}
	return out, nil
}

// flush writes the group's latest metadata record if it has not been
// written yet. Writers queue on g.io, and each writes the newest record
// when its turn comes, so the store never ends up with an older record than
// one already written.
func (g *group) flush(ctx context.Context) error {
	g.io.Lock()
	defer g.io.Unlock()
	g.mu.Lock()
	rec, version := g.record, g.recordVersion
	if rec == nil || g.state == Dead {
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("group %s: encoding metadata: %w", g.name, err)
	}
	wctx, cancel := g.c.writeCtx(ctx)
	defer cancel()
	if _, err := g.c.store.Apply(wctx, []Write{{Key: metaKey(g.name), Value: val}}); err != nil {
		return fmt.Errorf("group %s: writing metadata: %w", g.name, err)
	}
	g.mu.Lock()
	if g.recordVersion == version {
		g.record = nil
	}
	g.stored = true
	g.mu.Unlock()
	return nil
}

// flushLogged flushes on behalf of a timer or a request that already
// answered; failures are logged and the record stays queued for the next
// flush.
func (g *group) flushLogged() {
	if err := g.flush(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		g.c.log.Warn("persisting group metadata failed", "group", g.name, "err", err)
	}
}
