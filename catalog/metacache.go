package catalog

import (
	"container/list"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// tableState is a table's current metadata: where it lives, parsed, and as
// the JSON the API returns. It is immutable once built and shared through the
// cache; refs is derived lazily.
type tableState struct {
	location string
	meta     table.Metadata
	raw      json.RawMessage

	refsOnce sync.Once
	refs     json.RawMessage
	refsErr  error
}

func newTableState(location string, meta table.Metadata, raw json.RawMessage) *tableState {
	return &tableState{location: location, meta: meta, raw: raw}
}

// refsOnly returns the metadata with only the snapshots that a branch or tag
// references (the snapshots=refs load mode). Clients that poll or retry
// commits on long-lived tables then parse a few snapshots instead of the
// whole history.
func (st *tableState) refsOnly() (json.RawMessage, error) {
	st.refsOnce.Do(func() { st.refs, st.refsErr = trimToReferencedSnapshots(st.raw) })
	return st.refs, st.refsErr
}

func trimToReferencedSnapshots(raw json.RawMessage) (json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var refs map[string]struct {
		SnapshotID int64 `json:"snapshot-id"`
	}
	if r, ok := doc["refs"]; ok {
		if err := json.Unmarshal(r, &refs); err != nil {
			return nil, err
		}
	}
	keep := map[int64]bool{}
	for _, r := range refs {
		keep[r.SnapshotID] = true
	}
	if cur, ok := doc["current-snapshot-id"]; ok {
		var id *int64
		if err := json.Unmarshal(cur, &id); err == nil && id != nil {
			keep[*id] = true
		}
	}
	var snapshots []json.RawMessage
	if s, ok := doc["snapshots"]; ok {
		if err := json.Unmarshal(s, &snapshots); err != nil {
			return nil, err
		}
	}
	kept := make([]json.RawMessage, 0, len(keep))
	for _, s := range snapshots {
		var id struct {
			SnapshotID int64 `json:"snapshot-id"`
		}
		if err := json.Unmarshal(s, &id); err != nil {
			return nil, err
		}
		if keep[id.SnapshotID] {
			kept = append(kept, s)
		}
	}
	if len(kept) == len(snapshots) {
		return raw, nil
	}
	trimmed, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	doc["snapshots"] = trimmed
	return json.Marshal(doc)
}

// loadTableState reads a table's metadata pointer from the database and its
// metadata through the cache. Metadata files are immutable once written, so
// a location names one parsed value forever; the cache saves re-reading and
// re-parsing metadata that grows with every snapshot, on every load and
// every commit.
func (s *Server) loadTableState(ctx context.Context, ident table.Identifier) (*tableState, error) {
	ns, name := namespaceKey(ident[:len(ident)-1]), ident[len(ident)-1]
	var loc sql.NullString
	err := s.store.db.QueryRowContext(ctx, s.store.rebind(`SELECT metadata_location FROM iceberg_tables
		WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
		  AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)`), catalogName, ns, name).Scan(&loc)
	switch {
	case errors.Is(err, sql.ErrNoRows), err == nil && !loc.Valid:
		return nil, fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchTable, strings.Join(ident, "."))
	case err != nil:
		return nil, fmt.Errorf("load %s: %w", strings.Join(ident, "."), err)
	}
	if st, ok := s.metadata.get(loc.String); ok {
		return st, nil
	}
	tbl, err := table.NewFromLocation(ctx, ident, loc.String,
		s.fsFunc(loc.String), nil)
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", strings.Join(ident, "."), err)
	}
	raw, err := json.Marshal(tbl.Metadata())
	if err != nil {
		return nil, fmt.Errorf("encode metadata of %s: %w", strings.Join(ident, "."), err)
	}
	st := newTableState(loc.String, tbl.Metadata(), raw)
	s.metadata.put(st)
	return st, nil
}

// metadataCache is a least-recently-used cache of parsed table metadata,
// keyed by metadata file location and bounded by the size of the JSON.
type metadataCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	order    *list.List // front: most recently used; values are *tableState
	byLoc    map[string]*list.Element
}

func newMetadataCache(maxBytes int) *metadataCache {
	return &metadataCache{maxBytes: maxBytes, order: list.New(), byLoc: map[string]*list.Element{}}
}

func (c *metadataCache) get(loc string) (*tableState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byLoc[loc]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*tableState), true
}

func (c *metadataCache) put(st *tableState) {
	if len(st.raw) > c.maxBytes/4 {
		return // one huge table must not flush everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byLoc[st.location]; ok {
		return
	}
	c.byLoc[st.location] = c.order.PushFront(st)
	c.bytes += len(st.raw)
	for c.bytes > c.maxBytes {
		last := c.order.Back()
		old := last.Value.(*tableState)
		c.order.Remove(last)
		delete(c.byLoc, old.location)
		c.bytes -= len(old.raw)
	}
}
