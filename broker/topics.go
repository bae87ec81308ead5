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
	"sync"

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

// load reads every topic and takes leadership of its partitions.
func (tt *topicTable) load(ctx context.Context) error {
	kvs, err := tt.b.meta.List(ctx, "topics/")
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var m topicMeta
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return fmt.Errorf("topic record %s: %w", kv.Key, err)
		}
		t, err := tt.open(ctx, m)
		if err != nil {
			return err
		}
		tt.add(t)
	}
	return nil
}

func (tt *topicTable) add(t *topic) {
	tt.mu.Lock()
	tt.byName[t.name] = t
	tt.byID[t.id] = t
	tt.mu.Unlock()
}

// open builds a topic from its record and leads its partitions.
func (tt *topicTable) open(ctx context.Context, m topicMeta) (*topic, error) {
	idb, err := hex.DecodeString(m.ID)
	if err != nil || len(idb) != 16 {
		return nil, fmt.Errorf("topic %s: bad id %q", m.Name, m.ID)
	}
	t := &topic{name: m.Name, configs: m.Configs}
	copy(t.id[:], idb)
	if t.configs == nil {
		t.configs = map[string]string{}
	}
	for p := int32(0); p < m.Partitions; p++ {
		part := newPartition(tt.b, t, p)
		if err := part.takeLeadership(ctx); err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", m.Name, p, err)
		}
		t.parts = append(t.parts, part)
	}
	return t, nil
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
			return nil, fmt.Errorf("%w: %s", errTopicExists, name)
		}
		return nil, err
	}
	t, err := tt.open(ctx, m)
	if err != nil {
		return nil, err
	}
	tt.add(t)
	tt.b.log.Info("topic created", "topic", name, "partitions", partitions, "id", m.ID)
	return t, nil
}

// remove deletes a topic's records. Its objects are left to garbage
// collection: other partitions share them.
func (tt *topicTable) remove(ctx context.Context, t *topic) error {
	if err := tt.b.meta.Delete(ctx, topicKey(t.name)); err != nil {
		return err
	}
	tt.mu.Lock()
	delete(tt.byName, t.name)
	delete(tt.byID, t.id)
	tt.mu.Unlock()
	for _, p := range t.partitions() {
		p.markDeleted()
	}
	idh := hex.EncodeToString(t.id[:])
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
	defer t.mu.Unlock()
	for p := int32(len(t.parts)); p < total; p++ {
		part := newPartition(tt.b, t, p)
		if err := part.takeLeadership(ctx); err != nil {
			return err
		}
		t.parts = append(t.parts, part)
	}
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
