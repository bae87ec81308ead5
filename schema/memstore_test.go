package schema

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/floe-io/floe/internal/metastore"
)

// memStore is an in-memory Store for unit tests, with etcd's revision
// semantics (one global revision, ModRevision per key, Create/CAS conflicts).
// The HTTP tests run against it and against the real embedded etcd.
type memStore struct {
	mu   sync.Mutex
	rev  int64
	kvs  map[string]metastore.KV
	fail error // when set, every call fails with it
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{kvs: make(map[string]metastore.KV)} }

func (m *memStore) Get(_ context.Context, key string) (metastore.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return metastore.KV{}, m.fail
	}
	kv, ok := m.kvs[key]
	if !ok {
		return metastore.KV{}, fmt.Errorf("memstore: get %q: %w", key, metastore.ErrNotFound)
	}
	kv.Value = append([]byte(nil), kv.Value...)
	return kv, nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]metastore.KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []metastore.KV
	for k, kv := range m.kvs {
		if strings.HasPrefix(k, prefix) {
			kv.Value = append([]byte(nil), kv.Value...)
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *memStore) putLocked(key string, value []byte) int64 {
	m.rev++
	kv, ok := m.kvs[key]
	if !ok {
		kv = metastore.KV{Key: key, CreateRevision: m.rev}
	}
	kv.Value = append([]byte(nil), value...)
	kv.ModRevision = m.rev
	kv.Version++
	m.kvs[key] = kv
	return m.rev
}

func (m *memStore) Put(_ context.Context, key string, value []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	return m.putLocked(key, value), nil
}

func (m *memStore) Create(_ context.Context, key string, value []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	if _, ok := m.kvs[key]; ok {
		return 0, fmt.Errorf("memstore: create %q: %w", key, metastore.ErrConflict)
	}
	return m.putLocked(key, value), nil
}

func (m *memStore) CAS(_ context.Context, key string, expectModRev int64, value []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	if m.kvs[key].ModRevision != expectModRev {
		return 0, fmt.Errorf("memstore: cas %q: %w", key, metastore.ErrConflict)
	}
	return m.putLocked(key, value), nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.kvs[key]; ok {
		m.rev++
		delete(m.kvs, key)
	}
	return nil
}

func (m *memStore) NextID(_ context.Context, counterKey string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	id := int64(1)
	if kv, ok := m.kvs[counterKey]; ok {
		n, err := strconv.ParseInt(string(kv.Value), 10, 64)
		if err != nil {
			return 0, err
		}
		id = n + 1
	}
	m.putLocked(counterKey, []byte(strconv.FormatInt(id, 10)))
	return id, nil
}

func (m *memStore) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}
