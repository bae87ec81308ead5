package tabletopic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/floe-io/floe/tabletopic/convert"
)

var (
	// errFenced: the table's committed offsets for a partition are not
	// the ones this node last committed or read, so another writer (a
	// previous leader) committed it; recovery re-reads the table.
	errFenced = errors.New("table offsets moved under this node")
	// errTableConflict: the table exists but cannot take this topic.
	errTableConflict = errors.New("table cannot hold this topic")
)

// minCommitInterval floors table.topic.commit.interval.ms (which accepts
// 1 ms, as AutoMQ's does): every round is a catalog commit.
const minCommitInterval = 100 * time.Millisecond

// Table states reported by Status.
const (
	StateRunning = "running"
	StateStopped = "stopped"
	StateError   = "error"
)

// TableStatus is the state of one table topic on this node.
type TableStatus struct {
	Topic string `json:"topic"`
	// Table is namespace.table; the dead-letter table is Table + "_dlq".
	Table string `json:"table"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Partitions are the partitions this node converts (those it leads).
	Partitions []int32 `json:"partitions"`
	LagRecords int64   `json:"lag_records"`
	LagSeconds float64 `json:"lag_seconds"`
	// LastCommit is the time of the last successful data commit.
	LastCommit time.Time `json:"last_commit,omitzero"`
	// CommittedOffsets are the next offsets to convert as committed in
	// the table, for this node's partitions.
	CommittedOffsets map[int32]int64 `json:"committed_offsets"`
	Commits          int64           `json:"commits"`
	CommitFailures   int64           `json:"commit_failures"`
	RowsWritten      int64           `json:"rows_written"`
	FilesWritten     int64           `json:"files_written"`
	BytesWritten     int64           `json:"bytes_written"`
	DLQRows          int64           `json:"dlq_rows"`
	// SkippedRecords were deleted by retention before they were converted.
	SkippedRecords int64 `json:"skipped_records"`
}

// tableRunner converts one topic into its table on this node: a worker per
// led partition and the table's commit coordinator.
type tableRunner struct {
	svc   *Service
	topic TopicInfo
	cfg   tableConfig
	name  string
	ident table.Identifier
	dlqID table.Identifier
	parts []int32
	// key identifies what the runner was started for; any change (config,
	// leadership, partition count) restarts it.
	key string

	cancel context.CancelFunc
	done   chan struct{}

	// catMu serializes this node's catalog writes to the table pair, so
	// schema evolutions and data commits never race each other here.
	catMu sync.Mutex

	dlqMu     sync.Mutex
	dlqSink   *fileSink
	dlqSchema *iceberg.Schema

	mu        sync.Mutex // guards the fields below
	st        TableStatus
	permanent bool // waits for a config change or Retry
	unknown   *unknownCommit
}

func newTableRunner(s *Service, t TopicInfo, cfg tableConfig, parts []int32, key string) *tableRunner {
	r := &tableRunner{
		svc:   s,
		topic: t,
		cfg:   cfg,
		name:  cfg.tableName(),
		ident: append(slices.Clone(cfg.namespace), cfg.table),
		dlqID: append(slices.Clone(cfg.namespace), cfg.table+"_dlq"),
		parts: parts,
		key:   key,
		done:  make(chan struct{}),
	}
	r.st = TableStatus{Topic: t.Name, Table: r.name, State: StateRunning, Partitions: parts, CommittedOffsets: map[int32]int64{}}
	return r
}

// failed makes a runner that does not run, for a topic whose config is
// invalid.
func (r *tableRunner) failed(err error) *tableRunner {
	r.st.State, r.st.Error, r.permanent = StateError, err.Error(), true
	close(r.done)
	return r
}

func (r *tableRunner) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	go r.run(ctx)
}

// stop ends the runner after a final commit of what its workers wrote.
func (r *tableRunner) stop() {
	if r.cancel != nil {
		r.cancel()
	}
	<-r.done
}

func (r *tableRunner) status() TableStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.CommittedOffsets = maps.Clone(r.st.CommittedOffsets)
	st.Partitions = slices.Clone(r.st.Partitions)
	return st
}

func (r *tableRunner) setState(state string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.State, r.st.Error = state, ""
	if err != nil {
		r.st.Error = err.Error()
	}
	v := 0.0
	if state == StateRunning {
		v = 1
	}
	r.svc.m.running.WithLabelValues(r.name).Set(v)
}

// noteWorkerError records a transient worker failure for Status.
func (r *tableRunner) noteWorkerError(err error) {
	r.svc.cfg.Logger.Warn("table topic worker retrying", "table", r.name, "err", err)
	r.mu.Lock()
	r.st.Error = err.Error()
	r.mu.Unlock()
}

func (r *tableRunner) run(ctx context.Context) {
	defer close(r.done)
	logger := r.svc.cfg.Logger.With("table", r.name, "topic", r.topic.Name)
	backoff := time.Duration(0)
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			r.setState(StateStopped, nil)
			return
		}
		if errors.Is(err, errBlocked) || errors.Is(err, ErrConfig) || errors.Is(err, errTableConflict) {
			logger.Error("table topic stopped; fix the data or config, then change the topic config or retry", "err", err)
			r.mu.Lock()
			r.permanent = true
			r.mu.Unlock()
			r.setState(StateError, err)
			r.watchStopped(ctx)
			return
		}
		backoff = min(max(2*backoff, time.Second), r.svc.cfg.MaxRetryBackoff)
		logger.Warn("table topic session failed; recovering from the table", "err", err, "retry_in", backoff)
		r.setState(StateError, err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			r.setState(StateStopped, nil)
			return
		}
	}
}

// pendingPartition is what a partition converted since its last commit.
type pendingPartition struct {
	data    []*writtenFile
	dlq     []*writtenFile
	dead    []deadRecord
	end     int64
	firstTS int64
}

// session is one life of the table on this node, from recovery (reading
// the committed offsets) to the first failure. Nothing in it survives a
// failure: the next session starts again from what the table holds.
type session struct {
	workers      []*worker
	committed    offsetMap // data table offsets as last read or committed
	dlqCommitted offsetMap // dead-letter table offsets likewise
	pending      map[int32]*pendingPartition
	lastCommit   time.Time
}

func (r *tableRunner) session(ctx context.Context) (err error) {
	cat, err := r.svc.catalog(ctx)
	if err != nil {
		return err
	}
	tbl, err := r.openTable(ctx, cat)
	if err != nil {
		return err
	}
	r.resolveUnknown(tbl)
	committed, err := committedOffsets(tbl, r.topic.ID)
	if err != nil {
		return err
	}
	dlqCommitted := offsetMap{}
	dlqTbl, err := cat.LoadTable(ctx, r.dlqID)
	switch {
	case err == nil:
		r.resolveUnknown(dlqTbl)
		if dlqCommitted, err = committedOffsets(dlqTbl, r.topic.ID); err != nil {
			return err
		}
		if err := r.useDeadLetterTable(ctx, dlqTbl); err != nil {
			return err
		}
	case errors.Is(err, icecatalog.ErrNoSuchTable):
	default:
		return fmt.Errorf("load %v: %w", r.dlqID, err)
	}
	sink, err := newFileSink(ctx, tbl)
	if err != nil {
		return err
	}

	s := &session{committed: committed, dlqCommitted: dlqCommitted, pending: map[int32]*pendingPartition{}, lastCommit: time.Now()}
	// Workers outlive ctx: when the runner stops, the final round still
	// needs them to close their files.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		wcancel()
		for _, w := range s.workers {
			<-w.done
		}
	}()
	for _, p := range r.parts {
		conv, err := r.svc.newConverter(ctx, r.topic.Name, &r.cfg, tbl.Schema(), tbl.Metadata().LastColumnID())
		if err != nil {
			return err
		}
		next := max(committed.get(p), 0)
		w := newWorker(r, p, next, max(dlqCommitted.get(p), 0), conv, r.dataWriter(wctx, tbl, sink, p))
		w.resumed = committed.get(p) >= 0
		s.workers = append(s.workers, w)
		s.pending[p] = &pendingPartition{end: next}
		go w.run(wctx)
	}
	r.mu.Lock()
	for _, p := range r.parts {
		r.st.CommittedOffsets[p] = committed.get(p)
	}
	r.mu.Unlock()
	r.setState(StateRunning, nil)
	r.svc.cfg.Logger.Info("table topic converting", "table", r.name, "partitions", r.parts, "offsets", committed.encode())
	// Compaction, snapshot expiry and orphan cleanup (maintenance.go) run
	// beside the rounds for as long as the session does.
	defer r.startMaintenance(ctx)()

	commitTick := time.NewTicker(max(r.cfg.commitInterval, minCommitInterval))
	defer commitTick.Stop()
	lagTick := time.NewTicker(r.svc.cfg.PollInterval)
	defer lagTick.Stop()
	anyDone := make(chan *worker, len(s.workers))
	for _, w := range s.workers {
		go func() {
			select {
			case <-w.done:
				anyDone <- w
			case <-wctx.Done():
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.svc.cfg.ShutdownTimeout)
			_, err := r.round(fctx, s)
			cancel()
			if err != nil {
				r.svc.cfg.Logger.Warn("final commit failed; the next start recovers from the table", "table", r.name, "err", err)
			}
			return ctx.Err()
		case w := <-anyDone:
			return fmt.Errorf("partition %d: %w", w.partition, w.exitErr())
		case <-commitTick.C:
			blocked, err := r.round(ctx, s)
			if err != nil {
				return err
			}
			if blocked != nil {
				return blocked
			}
		case <-lagTick.C:
			r.updateLag(s)
		}
	}
}

// dataWriter returns partition p's writer of data files: iceberg-go's
// partitioned fanout writer when the table is partitioned, else floe's
// streaming rolling writer.
func (r *tableRunner) dataWriter(ctx context.Context, tbl *table.Table, sink *fileSink, p int32) dataWriter {
	if r.cfg.keyed() {
		return newUpsertWriter(sink, tbl.Spec(), &r.cfg, p)
	}
	if tbl.Spec().IsUnpartitioned() {
		return &rollingWriter{sink: sink, partition: p, target: r.cfg.targetFileBytes}
	}
	return &partitionedWriter{ctx: ctx, tbl: tbl, target: r.cfg.targetFileBytes}
}

// openTable loads the table, creating its namespace and itself if needed.
func (r *tableRunner) openTable(ctx context.Context, cat catalogClient) (*table.Table, error) {
	if err := ensureNamespace(ctx, cat, r.cfg.namespace); err != nil {
		return nil, err
	}
	tbl, err := cat.LoadTable(ctx, r.ident)
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		conv, cerr := r.svc.newConverter(ctx, r.topic.Name, &r.cfg, nil, 0)
		if cerr != nil {
			return nil, cerr
		}
		sc := conv.Schema()
		conv.Release()
		spec, serr := bindPartitionSpec(r.cfg.partitionBy, sc)
		if serr != nil {
			return nil, serr
		}
		tbl, err = cat.CreateTable(ctx, r.ident, sc, icecatalog.WithProperties(r.tableProperties()), icecatalog.WithPartitionSpec(&spec))
		if errors.Is(err, icecatalog.ErrTableAlreadyExists) {
			tbl, err = cat.LoadTable(ctx, r.ident)
		} else if err == nil {
			r.svc.cfg.Logger.Info("created table", "table", r.name, "location", tbl.Location())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", r.name, err)
	}
	if owner := tbl.Properties()[propTopic]; owner != "" && owner != r.topic.Name {
		return nil, fmt.Errorf("%w: %s holds topic %q (property %s)", errTableConflict, r.name, owner, propTopic)
	}
	// The table must be partitioned as configured: a data file's
	// partition record is computed with the table's spec, and a silent
	// mismatch would produce a table laid out otherwise than asked.
	want, err := bindPartitionSpec(r.cfg.partitionBy, tbl.Schema())
	if err != nil {
		return nil, err
	}
	if spec := tbl.Spec(); !sameLayout(spec, want) {
		return nil, fmt.Errorf("%w: %s is partitioned by %s but table.topic.partition.by asks for %s",
			errTableConflict, r.name, describeSpec(spec, tbl.Schema()), describeSpec(want, tbl.Schema()))
	}
	return r.ensureIdentifier(ctx, tbl)
}

func (r *tableRunner) tableProperties() iceberg.Properties {
	return iceberg.Properties{
		table.PropertyFormatVersion:       "2",
		"write.parquet.compression-codec": "zstd",
		// One manifest per commit adds up; merging keeps planning cheap.
		table.ManifestMergeEnabledKey: "true",
		propTopic:                     r.topic.Name,
		propTopicID:                   hex.EncodeToString(r.topic.ID[:]),
	}
}

func ensureNamespace(ctx context.Context, cat catalogClient, ns []string) error {
	ok, err := cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return fmt.Errorf("check namespace %v: %w", ns, err)
	}
	if ok {
		return nil
	}
	err = cat.CreateNamespace(ctx, ns, nil)
	if err != nil && !errors.Is(err, icecatalog.ErrNamespaceAlreadyExists) {
		return fmt.Errorf("create namespace %v: %w", ns, err)
	}
	return nil
}

// deadLetterSink returns where bad records go, creating the dead-letter
// table on first use.
func (r *tableRunner) deadLetterSink(ctx context.Context) (*fileSink, *iceberg.Schema, error) {
	r.dlqMu.Lock()
	defer r.dlqMu.Unlock()
	if r.dlqSink != nil {
		return r.dlqSink, r.dlqSchema, nil
	}
	cat, err := r.svc.catalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	r.catMu.Lock()
	tbl, err := cat.LoadTable(ctx, r.dlqID)
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		props := r.tableProperties()
		props["floe.dead-letter-of"] = r.name
		tbl, err = cat.CreateTable(ctx, r.dlqID, convert.DeadLetterSchema(), icecatalog.WithProperties(props))
		if errors.Is(err, icecatalog.ErrTableAlreadyExists) {
			tbl, err = cat.LoadTable(ctx, r.dlqID)
		}
	}
	r.catMu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return r.dlqSink, r.dlqSchema, r.useDeadLetterTableLocked(ctx, tbl)
}

func (r *tableRunner) useDeadLetterTable(ctx context.Context, tbl *table.Table) error {
	r.dlqMu.Lock()
	defer r.dlqMu.Unlock()
	return r.useDeadLetterTableLocked(ctx, tbl)
}

func (r *tableRunner) useDeadLetterTableLocked(ctx context.Context, tbl *table.Table) error {
	sink, err := newFileSink(ctx, tbl)
	if err != nil {
		return err
	}
	r.dlqSink, r.dlqSchema = sink, tbl.Schema()
	return nil
}

// evolveSchema commits the union of the table's schema and proposed, and
// returns the table after it.
func (r *tableRunner) evolveSchema(ctx context.Context, proposed *iceberg.Schema) (*table.Table, error) {
	cat, err := r.svc.catalog(ctx)
	if err != nil {
		return nil, err
	}
	r.catMu.Lock()
	defer r.catMu.Unlock()
	for attempt := 0; ; attempt++ {
		tbl, err := cat.LoadTable(ctx, r.ident)
		if err != nil {
			return nil, err
		}
		tx := tbl.NewTransaction()
		if err := tx.UpdateSchema(true, false).UnionByNameWith(proposed).Commit(); err != nil {
			return nil, err
		}
		next, err := tx.Commit(ctx)
		if errors.Is(err, table.ErrCommitFailed) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.svc.cfg.Logger.Info("evolved table schema", "table", r.name, "schema_id", next.Schema().ID)
		// New id columns arrive optional from the union: make them the
		// required identifier fields before any row is written.
		return r.ensureIdentifier(ctx, next)
	}
}

// round is one coordinator round: collect every worker's checkpoint,
// commit the dead-letter rows, then the data files with the offsets. It
// returns the error that blocked a partition (tolerance=none), if any,
// once everything before it is committed.
func (r *tableRunner) round(ctx context.Context, s *session) (blocked error, err error) {
	for _, w := range s.workers {
		cp, err := w.checkpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("checkpoint partition %d: %w", w.partition, err)
		}
		pp := s.pending[cp.partition]
		pp.data = append(pp.data, cp.data...)
		pp.dlq = append(pp.dlq, cp.dlq...)
		pp.dead = append(pp.dead, cp.dead...)
		pp.end = cp.end
		if pp.firstTS == 0 {
			pp.firstTS = cp.firstTimestampMs
		}
		if cp.blocked != nil && blocked == nil {
			blocked = cp.blocked
		}
		if cp.skipped > 0 {
			r.mu.Lock()
			r.st.SkippedRecords += cp.skipped
			r.mu.Unlock()
		}
	}
	var (
		dataFiles, dlqFiles []*writtenFile
		dead                []deadRecord
		ends                = offsetMap{}
		advanced            bool
	)
	for _, p := range r.parts {
		pp := s.pending[p]
		dataFiles = append(dataFiles, pp.data...)
		dlqFiles = append(dlqFiles, pp.dlq...)
		dead = append(dead, pp.dead...)
		ends[p] = pp.end
		if pp.end != max(s.committed.get(p), 0) {
			advanced = true
		}
	}
	if !advanced && len(dataFiles) == 0 && len(dlqFiles) == 0 {
		return blocked, nil
	}
	start := time.Now()
	// The dead-letter topic gets the round's bad records before the
	// dead-letter table commits them (at least once; dlqtopic.go).
	if err := r.produceDeadRecords(ctx, dead); err != nil {
		return nil, err
	}
	for _, p := range r.parts {
		s.pending[p].dead = nil
	}
	if len(dlqFiles) > 0 {
		if err := r.commit(ctx, r.dlqID, s.dlqCommitted, ends, dlqFiles); err != nil {
			r.commitFailed()
			return nil, fmt.Errorf("commit dead-letter table: %w", err)
		}
		for p, o := range ends {
			s.dlqCommitted[p] = o
			s.pending[p].dlq = nil
		}
		r.countCommitted(r.dlqID, dlqFiles)
	}
	if err := r.commit(ctx, r.ident, s.committed, ends, dataFiles); err != nil {
		r.commitFailed()
		return nil, fmt.Errorf("commit: %w", err)
	}
	r.svc.m.commitDuration.WithLabelValues(r.name).Observe(time.Since(start).Seconds())
	s.lastCommit = time.Now()
	r.countCommitted(r.ident, dataFiles)
	r.mu.Lock()
	for p, o := range ends {
		s.committed[p] = o
		r.st.CommittedOffsets[p] = o
		pp := s.pending[p]
		pp.data, pp.firstTS = nil, 0
	}
	r.st.LastCommit = s.lastCommit
	r.st.Error = ""
	r.mu.Unlock()
	r.updateLag(s)
	return blocked, nil
}

// countCommitted adds a landed commit's files to the counters.
func (r *tableRunner) countCommitted(ident table.Identifier, files []*writtenFile) {
	var rows, bytes int64
	for _, f := range files {
		if !f.isDelete() {
			rows += f.rows
		}
		bytes += f.size
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Equal(ident, r.dlqID) {
		r.svc.m.dlqRows.WithLabelValues(r.name).Add(float64(rows))
		r.st.DLQRows += rows
		return
	}
	r.svc.m.commits.WithLabelValues(r.name).Inc()
	r.svc.m.rows.WithLabelValues(r.name).Add(float64(rows))
	r.svc.m.files.WithLabelValues(r.name).Add(float64(len(files)))
	r.svc.m.bytes.WithLabelValues(r.name).Add(float64(bytes))
	r.st.Commits++
	r.st.RowsWritten += rows
	r.st.FilesWritten += int64(len(files))
	r.st.BytesWritten += bytes
}

// unknownCommit is a commit whose outcome the catalog did not report (a
// timeout, a 5xx): the next recovery looks for its commit id.
type unknownCommit struct {
	ident    table.Identifier
	commitID string
	files    []*writtenFile
}

// resolveUnknown tells, from the table's snapshots, whether a commit whose
// answer was lost landed, and counts it if so. Either way recovery is
// correct: it resumes from whatever offsets the table holds.
func (r *tableRunner) resolveUnknown(tbl *table.Table) {
	r.mu.Lock()
	u := r.unknown
	r.mu.Unlock()
	if u == nil || !slices.Equal(u.ident, tbl.Identifier()) {
		return
	}
	r.mu.Lock()
	r.unknown = nil
	r.mu.Unlock()
	for _, snap := range tbl.Metadata().Snapshots() {
		if snap.Summary != nil && snap.Summary.Properties[summaryCommitID] == u.commitID {
			r.svc.cfg.Logger.Info("a commit whose answer was lost had landed", "table", tbl.Identifier(), "commit_id", u.commitID)
			r.countCommitted(u.ident, u.files)
			return
		}
	}
	r.svc.cfg.Logger.Info("a commit whose answer was lost did not land; its files are orphans", "table", tbl.Identifier(), "commit_id", u.commitID)
}

func (r *tableRunner) commitFailed() {
	r.svc.m.commitFailures.WithLabelValues(r.name).Inc()
	r.mu.Lock()
	r.st.CommitFailures++
	r.mu.Unlock()
}

// commit appends files to the table identified by ident and moves this
// node's partitions from expected to ends in the snapshot summary. It is
// exactly-once because (1) the offsets the table holds for our
// partitions must still be the ones we last read or committed (else
// another writer committed them: errFenced), and (2) the commit asserts
// that the branch still points at the snapshot those offsets were read
// from (assert-ref-snapshot-id), so nothing can land in between. A
// conflict on another writer's commit to other partitions is retried
// after re-checking (1).
func (r *tableRunner) commit(ctx context.Context, ident table.Identifier, expected, ends offsetMap, files []*writtenFile) error {
	cat, err := r.svc.catalog(ctx)
	if err != nil {
		return err
	}
	r.catMu.Lock()
	defer r.catMu.Unlock()
	for attempt := 0; ; attempt++ {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			return err
		}
		current, err := committedOffsets(tbl, r.topic.ID)
		if err != nil {
			return err
		}
		for p := range ends {
			if current.get(p) != expected.get(p) {
				return fmt.Errorf("%w: %v partition %d: table has %d, expected %d",
					errFenced, ident, p, current.get(p), expected.get(p))
			}
		}
		merged := current.clone()
		maps.Copy(merged, ends)
		commitID := randomID()
		props := iceberg.Properties{
			summaryOffsets:  merged.encode(),
			summaryTopicID:  hex.EncodeToString(r.topic.ID[:]),
			summaryCommitID: commitID,
			summaryNodeID:   strconv.Itoa(int(r.svc.cfg.NodeID)),
		}
		tx := tbl.NewTransaction()
		if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
			return err
		}
		if slices.ContainsFunc(files, (*writtenFile).isDelete) {
			// Upsert/CDC rounds: data and delete files in one row delta
			// (see upsert.go), under the same pinned requirement.
			if err := rowDelta(ctx, tx, tbl, files, props); err != nil {
				return err
			}
		} else if len(files) > 0 {
			dfs, err := dataFiles(tbl, files)
			if err != nil {
				return err
			}
			err = tx.AddDataFiles(ctx, dfs, props, table.WithoutDuplicateCheck(), table.WithoutAutoNameMapping())
			if err != nil {
				return err
			}
		} else if err := tx.AddFiles(ctx, nil, props, false); err != nil {
			// An empty append still moves the offsets (all records of
			// the round were dead-lettered or were control batches).
			return err
		}
		_, err = tx.Commit(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, table.ErrCommitFailed) && attempt < 10 {
			r.svc.cfg.Logger.Debug("commit conflict; re-checking offsets", "table", ident, "err", err)
			continue
		}
		// Any other failure leaves the outcome unknown: the session ends
		// and recovery reads what the table holds (floe.commit-id tells
		// whether this attempt landed).
		r.mu.Lock()
		r.unknown = &unknownCommit{ident: ident, commitID: commitID, files: files}
		r.mu.Unlock()
		return fmt.Errorf("%v commit %s: %w", ident, commitID, err)
	}
}

// dataFiles builds the manifest entries; v3 tables need row ids assigned
// from the table's next row id.
func dataFiles(tbl *table.Table, files []*writtenFile) ([]iceberg.DataFile, error) {
	var nextRowID *int64
	if tbl.Metadata().Version() >= 3 {
		id := tbl.Metadata().NextRowID()
		nextRowID = &id
	}
	out := make([]iceberg.DataFile, 0, len(files))
	for _, f := range files {
		var first *int64
		if nextRowID != nil {
			v := *nextRowID
			first = &v
			*nextRowID += f.rows
		}
		df, err := f.dataFile(tbl, first)
		if err != nil {
			return nil, fmt.Errorf("data file %s: %w", f.path, err)
		}
		out = append(out, df)
	}
	return out, nil
}

// updateLag refreshes lag in records and seconds for the table.
func (r *tableRunner) updateLag(s *session) {
	var (
		lagRecords int64
		oldest     int64 // ms; 0 unknown
		unknownAge bool
	)
	for _, w := range s.workers {
		hw := w.hw.Load()
		if hw < 0 {
			continue
		}
		c := max(s.committed.get(w.partition), w.logStart.Load(), 0)
		lag := hw - c
		if lag <= 0 {
			continue
		}
		lagRecords += lag
		ts := s.pending[w.partition].firstTS
		if ts == 0 {
			ts = w.firstTSSnapshot()
		}
		if ts == 0 {
			unknownAge = true
			continue
		}
		if oldest == 0 || ts < oldest {
			oldest = ts
		}
	}
	var lagSeconds float64
	if lagRecords > 0 {
		if oldest > 0 {
			lagSeconds = max(0, time.Since(time.UnixMilli(oldest)).Seconds())
		}
		if unknownAge {
			// Not read yet: at least as old as the last commit.
			lagSeconds = max(lagSeconds, time.Since(s.lastCommit).Seconds())
		}
	}
	r.svc.m.lagRecords.WithLabelValues(r.name).Set(float64(lagRecords))
	r.svc.m.lagSeconds.WithLabelValues(r.name).Set(lagSeconds)
	r.mu.Lock()
	r.st.LagRecords, r.st.LagSeconds = lagRecords, lagSeconds
	r.mu.Unlock()
}

// watchStopped keeps lag current while the table waits for a fix, so the
// lag alerts fire for a stopped table too.
func (r *tableRunner) watchStopped(ctx context.Context) {
	t := time.NewTicker(r.svc.cfg.PollInterval)
	defer t.Stop()
	since := time.Now()
	for {
		r.mu.Lock()
		committed := maps.Clone(r.st.CommittedOffsets)
		if !r.st.LastCommit.IsZero() {
			since = r.st.LastCommit
		}
		r.mu.Unlock()
		var lag int64
		for _, p := range r.parts {
			_, hw, logStart, _ := r.svc.log.ReadCommitted(ctx, r.topic.Name, p, math.MaxInt64, 1)
			if hw >= 0 {
				lag += max(0, hw-max(committed[p], logStart, 0))
			}
		}
		var lagSeconds float64
		if lag > 0 {
			lagSeconds = time.Since(since).Seconds()
		}
		r.svc.m.lagRecords.WithLabelValues(r.name).Set(float64(lag))
		r.svc.m.lagSeconds.WithLabelValues(r.name).Set(lagSeconds)
		r.mu.Lock()
		r.st.LagRecords, r.st.LagSeconds = lag, lagSeconds
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
