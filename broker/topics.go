package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Metadata-store keys. Topic ids (not names) key partition state and
// segments so that a deleted and re-created topic never sees old data.
func topicKey(name string) string { return "topics/" + name }
func partitionKey(id [16]byte, p int32) string {
	return "partitions/" + hex.EncodeToString(id[:]) + "/" + strconv.Itoa(int(p))
}
func segmentPrefix(id [16]byte, p int32) string {
	return "segments/" + hex.EncodeToString(id[:]) + "/" + strconv.Itoa(int(p)) + "/"
}
func segmentKey(id [16]byte, p int32, base int64) string {
	return fmt.Sprintf("%s%020d", segmentPrefix(id, p), base)
}

// topicMeta is a topic's record in the metadata store.
type topicMeta struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type topic struct {
	name string
	id   [16]byte

	mu      sync.RWMutex
	configs map[string]string // explicitly set configs only
	parts   []*partition
}

func (t *topic) partition(p int32) *partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

func (t *topic) partitions() []*partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.parts
}

// config returns the effective value of a topic config.
func (t *topic) config(name string) string {
	t.mu.RLock()
	v, ok := t.configs[name]
	t.mu.RUnlock()
	if ok {
		return v
	}
	return topicConfigDefs[name].def
}

func (t *topic) configInt(name string) int64 {
	v, _ := strconv.ParseInt(t.config(name), 10, 64)
	return v
}

// topicTable is the broker's view of all topics, loaded from the metadata
// store at start and changed through it.
type topicTable struct {
	b      *Broker
	mu     sync.RWMutex
	byName map[string]*topic
	byID   map[[16]byte]*topic
}

func newTopicTable(b *Broker) *topicTable {
	return &topicTable{b: b, byName: map[string]*topic{}, byID: map[[16]byte]*topic{}}
}

func (tt *topicTable) get(name string) *topic {
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	return tt.byName[name]
}

func (tt *topicTable) getByID(id [16]byte) *topic {
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	return tt.byID[id]
}

func (tt *topicTable) all() []*topic {
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	ts := make([]*topic, 0, len(tt.byName))
	for _, t := range tt.byName {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

// load reads every topic; it returns the revision to watch from.
func (tt *topicTable) load(ctx context.Context) (int64, error) {
	kvs, rev, err := tt.b.meta.ListRev(ctx, "topics/")
	if err != nil {
		return 0, err
	}
	for _, kv := range kvs {
		var m topicMeta
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return 0, fmt.Errorf("topic record %s: %w", kv.Key, err)
		}
		if _, err := tt.ensure(m); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// watch follows topics/ so topics created, grown, reconfigured or deleted
// through any broker appear here.
func (tt *topicTable) watch(ctx context.Context, fromRev int64) {
	for ev := range tt.b.meta.Watch(ctx, "topics/", fromRev) {
		switch ev.Type {
		case metastore.EventPut:
			var m topicMeta
			if err := json.Unmarshal(ev.Value, &m); err != nil {
				tt.b.log.Warn("bad topic record", "key", ev.Key, "err", err)
				continue
			}
			if _, err := tt.ensure(m); err != nil {
				tt.b.log.Warn("topic record", "key", ev.Key, "err", err)
			}
		case metastore.EventDelete:
			if t := tt.get(strings.TrimPrefix(ev.Key, "topics/")); t != nil {
				tt.forget(t)
			}
		case metastore.EventReset:
			seen := map[string]bool{}
			for _, kv := range ev.Snapshot {
				var m topicMeta
				if json.Unmarshal(kv.Value, &m) == nil {
					seen[m.Name] = true
					_, _ = tt.ensure(m)
				}
			}
			for _, t := range tt.all() {
				if !seen[t.name] {
					tt.forget(t)
				}
			}
		}
		tt.b.clusterChanged()
		tt.b.notify.broadcast()
	}
}

// ensure makes the in-memory topic match its record: created if new (or
// re-created under a new id), its partitions grown and configs replaced.
// Leadership is not taken here: the controller assigns it.
func (tt *topicTable) ensure(m topicMeta) (*topic, error) {
	idb, err := hex.DecodeString(m.ID)
	if err != nil || len(idb) != 16 {
		return nil, fmt.Errorf("topic %s: bad id %q", m.Name, m.ID)
	}
	var id [16]byte
	copy(id[:], idb)
	tt.mu.Lock()
	t := tt.byName[m.Name]
	if t != nil && t.id != id {
		// Deleted and created again before we saw the deletion.
		delete(tt.byName, t.name)
		delete(tt.byID, t.id)
		for _, p := range t.partitions() {
			p.markDeleted()
		}
		t = nil
	}
	if t == nil {
		t = &topic{name: m.Name, id: id}
		tt.byName[t.name] = t
		tt.byID[t.id] = t
	}
	tt.mu.Unlock()
	configs := m.Configs
	if configs == nil {
		configs = map[string]string{}
	}
	t.mu.Lock()
	t.configs = configs
	for p := int32(len(t.parts)); p < m.Partitions; p++ {
		t.parts = append(t.parts, newPartition(tt.b, t, p))
	}
	t.mu.Unlock()
	return t, nil
}

// forget drops a deleted topic from memory (its records are gone already).
func (tt *topicTable) forget(t *topic) {
	tt.mu.Lock()
	if tt.byName[t.name] == t {
		delete(tt.byName, t.name)
	}
	if tt.byID[t.id] == t {
		delete(tt.byID, t.id)
	}
	tt.mu.Unlock()
	for _, p := range t.partitions() {
		p.markDeleted()
	}
}

// consumerOffsetsTopic is Kafka's internal topic for group offsets. floe
// keeps offsets in the metadata store, but tools and clients look for the
// topic (regex consumers skip it as internal), so it exists, empty and
// read-only.
const consumerOffsetsTopic = "__consumer_offsets"

func isInternalTopic(name string) bool { return name == consumerOffsetsTopic }

// ensureInternalTopics creates the internal topics on first start.
func (tt *topicTable) ensureInternalTopics(ctx context.Context) error {
	if tt.get(consumerOffsetsTopic) != nil {
		return nil
	}
	if _, err := tt.create(ctx, consumerOffsetsTopic, 1, map[string]string{"cleanup.policy": "compact"}, false); err != nil && !errors.Is(err, errTopicExists) {
		return err
	}
	return nil
}

// Errors of topic administration, mapped to Kafka codes by the handlers.
var (
	errTopicExists       = errors.New("topic already exists")
	errInvalidTopic      = errors.New("invalid topic name")
	errInvalidPartitions = errors.New("invalid number of partitions")
	errInvalidConfig     = errors.New("invalid config")
	errUnknownTopic      = errors.New("unknown topic")
)

// validTopicName applies Kafka's rules for topic names.
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: %q", errInvalidTopic, name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%w: longer than 249 characters", errInvalidTopic)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", errInvalidTopic, name)
		}
	}
	return nil
}

// create makes a new topic durable and leads its partitions. validateOnly
// checks everything without creating.
func (tt *topicTable) create(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (*topic, error) {
	if err := validTopicName(name); err != nil {
		return nil, err
	}
	if partitions <= 0 || partitions > 100000 {
		return nil, fmt.Errorf("%w: %d", errInvalidPartitions, partitions)
	}
	configs, err := canonicalConfigs(configs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
	}
	for k, v := range configs {
		if err := validateTopicConfig(k, v); err != nil {
			return nil, fmt.Errorf("%w: %v", errInvalidConfig, err)
		}
	}
	if tt.get(name) != nil {
		return nil, fmt.Errorf("%w: %s", errTopicExists, name)
	}
	if validateOnly {
		return nil, nil
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	m := topicMeta{Name: name, ID: hex.EncodeToString(id[:]), Partitions: partitions, Configs: configs}
	val, _ := json.Marshal(m)
	txn := tt.b.meta.Txn().IfModRevision(topicKey(name), 0).Put(topicKey(name), val)
	if _, err := txn.Commit(ctx); err != nil {
		if errors.Is(err, metastore.ErrConflict) {
			// Created through another broker; our watch may not have
			// delivered it yet.
			if kv, gerr := tt.b.meta.Get(ctx, topicKey(name)); gerr == nil {
				var other topicMeta
				if json.Unmarshal(kv.Value, &other) == nil {
					_, _ = tt.ensure(other)
				}
			}
			return nil, fmt.Errorf("%w: %s", errTopicExists, name)
		}
		return nil, err
	}
	t, err := tt.ensure(m)
	if err != nil {
		return nil, err
	}
	tt.b.clusterChanged()
	// The controller assigns leaders within milliseconds; answering after
	// that spares clients a round of LEADER_NOT_AVAILABLE.
	if !tt.b.waitLeaders(ctx, t, 5*time.Second) {
		tt.b.log.Warn("topic created but not all partitions have a leader yet", "topic", name)
	}
	tt.b.log.Info("topic created", "topic", name, "partitions", partitions, "id", m.ID)
	return t, nil
}

// remove deletes a topic's records. Its objects are left to garbage
// collection: other partitions share them.
func (tt *topicTable) remove(ctx context.Context, t *topic) error {
	if err := tt.b.meta.Delete(ctx, topicKey(t.name)); err != nil {
		return err
	}
	tt.forget(t)
	idh := hex.EncodeToString(t.id[:])
	if _, err := tt.b.meta.DeletePrefix(ctx, leadersPrefix+idh+"/"); err != nil {
		return err
	}
	if _, err := tt.b.meta.DeletePrefix(ctx, "partitions/"+idh+"/"); err != nil {
		return err
	}
	if _, err := tt.b.meta.DeletePrefix(ctx, "segments/"+idh+"/"); err != nil {
		return err
	}
	if g := tt.b.groups; g != nil {
		// Committed offsets of a deleted topic must not resurface if a
		// topic of the same name is created again.
		if err := g.coord.DeleteTopicOffsets(ctx, t.name); err != nil {
			tt.b.log.Warn("deleting committed offsets of deleted topic", "topic", t.name, "err", err)
		}
	}
	tt.b.notify.broadcast()
	tt.b.log.Info("topic deleted", "topic", t.name)
	return nil
}

// addPartitions grows a topic to total partitions.
func (tt *topicTable) addPartitions(ctx context.Context, t *topic, total int32, validateOnly bool) error {
	cur := int32(len(t.partitions()))
	if total <= cur {
		return fmt.Errorf("%w: topic has %d partitions, asked for %d", errInvalidPartitions, cur, total)
	}
	if total > 100000 {
		return fmt.Errorf("%w: %d", errInvalidPartitions, total)
	}
	if validateOnly {
		return nil
	}
	_, err := tt.b.meta.Update(ctx, topicKey(t.name), func(curv []byte, exists bool) ([]byte, error) {
		if !exists {
			return nil, errUnknownTopic
		}
		var m topicMeta
		if err := json.Unmarshal(curv, &m); err != nil {
			return nil, err
		}
		if m.Partitions >= total {
			return nil, fmt.Errorf("%w: topic has %d partitions", errInvalidPartitions, m.Partitions)
		}
		m.Partitions = total
		return json.Marshal(m)
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	for p := int32(len(t.parts)); p < total; p++ {
		t.parts = append(t.parts, newPartition(tt.b, t, p))
	}
	t.mu.Unlock()
	tt.b.clusterChanged()
	tt.b.waitLeaders(ctx, t, 5*time.Second)
	return nil
}

// setConfigs replaces a topic's explicit configs after validation.
func (tt *topicTable) setConfigs(ctx context.Context, t *topic, configs map[string]string) error {
	configs, err := canonicalConfigs(configs)
	if err != nil {
		return fmt.Errorf("%w: %v", errInvalidConfig, err)
	}
	for k, v := range configs {
		if err := validateTopicConfig(k, v); err != nil {
			return fmt.Errorf("%w: %v", errInvalidConfig, err)
		}
	}
	_, err = tt.b.meta.Update(ctx, topicKey(t.name), func(curv []byte, exists bool) ([]byte, error) {
		if !exists {
			return nil, errUnknownTopic
		}
		var m topicMeta
		if err := json.Unmarshal(curv, &m); err != nil {
			return nil, err
		}
		m.Configs = configs
		return json.Marshal(m)
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.configs = configs
	t.mu.Unlock()
	return nil
}

// newClusterID returns a Kafka-style cluster id: 16 random bytes, base64url.
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
