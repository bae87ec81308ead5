package catalog

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icebergcatalog "github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/klauspost/compress/zstd"
)

// commitTimeout bounds the write-and-swap phase of a commit, which no longer
// follows the request's context.
const commitTimeout = 2 * time.Minute

// tableChange is one table's part of a commit: the requirements the client
// read the table under and the updates it wants applied.
type tableChange struct {
	ident   table.Identifier
	reqs    []table.Requirement
	updates []table.Update
}

// stagedChange is a validated change with its new metadata, not yet written.
type stagedChange struct {
	ident   table.Identifier
	prevLoc string // "" for a table the commit creates
	next    *tableState
	changed bool
}

// commit applies changes to one or more tables atomically: either every
// table's metadata pointer moves or none does.
//
// Concurrency: commits that touch the same table are serialised inside this
// process (lock stripes), so local writers queue instead of failing each
// other. Across processes sharing the database, the pointer swap is a
// conditional UPDATE on the metadata location the requirements were checked
// against, in one transaction for all tables, so a commit validated against
// a stale pointer fails with ErrCommitConflict and changes nothing. (iceberg-
// go's own SQL catalog CommitTable uses the same conditional UPDATE, but one
// table at a time, so multi-table commits cannot go through it.)
func (s *Server) commit(ctx context.Context, changes []tableChange) ([]*tableState, error) {
	keys := make([]string, len(changes))
	for i, ch := range changes {
		keys[i] = identKey(ch.ident)
	}
	unlock, err := s.locks.lock(ctx, keys)
	if err != nil {
		return nil, err
	}
	defer unlock()

	staged := make([]stagedChange, len(changes))
	for i, ch := range changes {
		if staged[i], err = s.stageChange(ctx, ch); err != nil {
			return nil, err
		}
	}

	// From here on the commit runs to completion even if the client goes
	// away: stopping between the metadata write and the pointer swap would
	// only turn a clean outcome into an unknown one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()

	var written []string
	keepWritten := false
	defer func() {
		if keepWritten {
			return
		}
		for _, loc := range written {
			s.removeFile(ctx, loc)
		}
	}()
	swaps := make([]pointerSwap, 0, len(staged))
	for _, st := range staged {
		if st.changed {
			if err := s.writeMetadata(ctx, st.next.location, st.next.raw); err != nil {
				return nil, fmt.Errorf("write metadata of %s: %w", strings.Join(st.ident, "."), err)
			}
			written = append(written, st.next.location)
		}
		// A single unchanged table needs no database round trip: its
		// requirements held on the state just read. In a multi-table commit
		// it is asserted in the transaction so the whole commit sees one state.
		if st.changed || len(staged) > 1 {
			swaps = append(swaps, pointerSwap{ident: st.ident, prevLocation: st.prevLoc, newLocation: st.next.location})
		}
	}
	if len(swaps) > 0 {
		unknown, err := s.store.swapPointers(ctx, swaps)
		if err != nil {
			keepWritten = unknown
			return nil, err
		}
	}
	keepWritten = true

	out := make([]*tableState, len(staged))
	for i, st := range staged {
		out[i] = st.next
		if st.changed {
			s.metadata.put(st.next)
			s.log.DebugContext(ctx, "table committed", "table", strings.Join(st.ident, "."),
				"metadata_location", st.next.location)
		}
	}
	return out, nil
}

// stageChange loads a table's current state, checks the requirements against
// it and applies the updates in memory.
func (s *Server) stageChange(ctx context.Context, ch tableChange) (stagedChange, error) {
	st := stagedChange{ident: ch.ident}
	ns := ch.ident[:len(ch.ident)-1]

	cur, err := s.loadTableState(ctx, ch.ident)
	exists := err == nil
	if err != nil && !errors.Is(err, icebergcatalog.ErrNoSuchTable) {
		return st, err
	}

	var base table.Metadata
	updates := ch.updates
	if !exists {
		if !slices.ContainsFunc(ch.reqs, func(r table.Requirement) bool { return r.GetType() == "assert-create" }) {
			if ok, err := s.cat.CheckNamespaceExists(ctx, ns); err == nil && !ok {
				return st, fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchNamespace, strings.Join(ns, "."))
			}
			return st, fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchTable, strings.Join(ch.ident, "."))
		}
		// Creating through a commit (the second half of a staged create):
		// start from empty metadata, as iceberg-go's catalogs do, and give
		// the table the default location if the client set none.
		if base, err = table.NewMetadata(iceberg.NewSchema(0), nil, table.UnsortedSortOrder, "", nil); err != nil {
			return st, err
		}
		if !slices.ContainsFunc(updates, func(u table.Update) bool { return u.Action() == table.UpdateSetLocation }) {
			loc, err := s.defaultLocation(ctx, ns, ch.ident[len(ch.ident)-1])
			if err != nil {
				return st, err
			}
			updates = append([]table.Update{table.NewSetLocationUpdate(loc)}, updates...)
		}
	} else {
		base = cur.meta
		st.prevLoc = cur.location
	}

	var baseMeta table.Metadata // nil for a table that does not exist
	if exists {
		baseMeta = base
	}
	for _, r := range ch.reqs {
		if err := r.Validate(baseMeta); err != nil {
			return st, fmt.Errorf("%w: %s: %w", ErrCommitConflict, strings.Join(ch.ident, "."), err)
		}
	}

	if exists && len(updates) == 0 {
		// Nothing to write; applying no updates would still grow the
		// metadata log.
		st.next = cur
		return st, nil
	}
	updated, err := table.UpdateTableMetadata(base, updates, st.prevLoc)
	if err != nil {
		return st, badRequestf("cannot apply updates to %s: %v", strings.Join(ch.ident, "."), err)
	}
	// A commit that adds a snapshot always changes the table; skip the deep
	// comparison, which costs as much as the metadata is long.
	addsSnapshot := slices.ContainsFunc(updates, func(u table.Update) bool { return u.Action() == table.UpdateAddSnapshot })
	if exists && !addsSnapshot && updated.Equals(cur.meta) {
		st.next = cur
		return st, nil
	}
	if err := s.checkCommittedMetadata(base, updated); err != nil {
		return st, err
	}

	version := 0
	if exists {
		version = nextMetadataVersion(st.prevLoc, updated)
	}
	provider, err := table.LoadLocationProvider(updated.Location(), updated.Properties())
	if err != nil {
		return st, badRequestf("table %s: %v", strings.Join(ch.ident, "."), err)
	}
	newLoc, err := provider.NewTableMetadataFileLocation(version)
	if err != nil {
		return st, badRequestf("table %s: %v", strings.Join(ch.ident, "."), err)
	}
	if err := s.warehouse.checkLocation("metadata location", newLoc); err != nil {
		return st, err
	}
	raw, err := json.Marshal(updated)
	if err != nil {
		return st, fmt.Errorf("encode metadata of %s: %w", strings.Join(ch.ident, "."), err)
	}
	st.next, st.changed = newTableState(newLoc, updated, raw), true
	return st, nil
}

// checkCommittedMetadata applies the server's policy to the outcome of the
// updates: the table stays inside the warehouse and gains no property that
// would redirect storage access.
func (s *Server) checkCommittedMetadata(base, updated table.Metadata) error {
	if err := s.warehouse.checkLocation("table location", updated.Location()); err != nil {
		return err
	}
	added := map[string]string{}
	for k, v := range updated.Properties() {
		if old, ok := base.Properties()[k]; !ok || old != v {
			added[k] = v
		}
	}
	return checkProperties("table", added)
}

func (s *Server) defaultLocation(ctx context.Context, ns table.Identifier, name string) (string, error) {
	props, err := s.cat.LoadNamespaceProperties(ctx, ns)
	if err != nil {
		return "", err
	}
	return s.warehouse.defaultTableLocation(props["location"], ns, name)
}

var metadataFileVersion = regexp.MustCompile(`^v?(\d+)(?:-[\w-]{36})?(?:\.\w+)?\.metadata\.json$`)

// nextMetadataVersion numbers the next metadata file after the current one.
// Registered tables may carry file names of any shape; those fall back to the
// length of the metadata log, which only grows.
func nextMetadataVersion(currentLoc string, updated table.Metadata) int {
	if m := metadataFileVersion.FindStringSubmatch(path.Base(currentLoc)); m != nil {
		if v, err := strconv.Atoi(m[1]); err == nil && v < 1<<30 {
			return v + 1
		}
	}
	n := 0
	for range updated.PreviousFiles() {
		n++
	}
	return n + 1
}

// writeMetadata writes a metadata file with the codec its name announces.
func (s *Server) writeMetadata(ctx context.Context, loc string, raw []byte) (err error) {
	fs, err := s.fileIO(ctx, loc)
	if err != nil {
		return err
	}
	wfs, ok := fs.(icebergio.WriteFileIO)
	if !ok {
		return fmt.Errorf("storage for %s cannot be written", loc)
	}
	out, err := wfs.Create(loc)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	var w io.Writer = out
	switch {
	case strings.HasSuffix(loc, ".gz.metadata.json"):
		gz := gzip.NewWriter(out)
		defer func() {
			if cerr := gz.Close(); err == nil {
				err = cerr
			}
		}()
		w = gz
	case strings.HasSuffix(loc, ".zstd.metadata.json"):
		enc, zerr := zstd.NewWriter(out)
		if zerr != nil {
			return zerr
		}
		defer func() {
			if cerr := enc.Close(); err == nil {
				err = cerr
			}
		}()
		w = enc
	}
	_, err = w.Write(raw)
	return err
}

// fileIO returns the server's FileIO for a location, one per scheme and
// bucket: iceberg-go builds a new storage client (and connection pool) per
// LoadFS call, which would cost every commit a fresh connection.
func (s *Server) fileIO(ctx context.Context, loc string) (icebergio.IO, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	key := u.Scheme + "://" + u.Host
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	if fs, ok := s.ios[key]; ok {
		return fs, nil
	}
	fs, err := icebergio.LoadFS(context.WithoutCancel(ctx), maps.Clone(s.ioProps), loc)
	if err != nil {
		return nil, err
	}
	s.ios[key] = fs
	return fs, nil
}

func (s *Server) fsFunc(loc string) table.FSysF {
	return func(ctx context.Context) (icebergio.IO, error) { return s.fileIO(ctx, loc) }
}

func (s *Server) removeFile(ctx context.Context, loc string) {
	fs, err := s.fileIO(context.WithoutCancel(ctx), loc)
	if err == nil {
		err = fs.Remove(loc)
	}
	if err != nil {
		s.log.WarnContext(ctx, "could not remove uncommitted metadata file", "location", loc, "err", err)
	}
}

// tableLocks serialises commits per table inside this process. Tables map to
// a fixed set of stripes, so memory stays bounded however many tables exist;
// an unlucky pair of tables sharing a stripe only queues, it never conflicts.
type tableLocks struct {
	stripes [256]chan struct{}
}

func newTableLocks() *tableLocks {
	l := &tableLocks{}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// lock takes the stripes of every key in ascending order (so two multi-table
// commits cannot deadlock) and gives up when ctx ends.
func (l *tableLocks) lock(ctx context.Context, keys []string) (func(), error) {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		idx = append(idx, int(h.Sum32()%uint32(len(l.stripes))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	taken := 0
	unlock := func() {
		for _, i := range idx[:taken] {
			<-l.stripes[i]
		}
	}
	for _, i := range idx {
		select {
		case l.stripes[i] <- struct{}{}:
			taken++
		case <-ctx.Done():
			unlock()
			return nil, context.Cause(ctx)
		}
	}
	return unlock, nil
}
