package maintain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"time"

	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"
)

// ErrConflict: another commit that is not a plain append (a delete, another
// rewrite) landed while a compaction ran; the compaction is abandoned for
// this cycle and its files removed.
var ErrConflict = errors.New("maintain: table changed under the compaction")

// CompactOptions tune one compaction.
type CompactOptions struct {
	// TargetFileBytes is the output file size aimed at (default 128 MiB).
	// Files under 75% of it are rewritten; files over 180% are left alone.
	TargetFileBytes int64
	// MinInputFiles is the fewest small files of one partition worth a
	// rewrite (default 2).
	MinInputFiles int
	// MaxCommitAttempts bounds commits re-staged over concurrent appends
	// (default 8).
	MaxCommitAttempts int
	// DeleteFileThreshold: a file with this many delete files attached is
	// rewritten whatever its size (default 32). Equality deletes (one per
	// upsert commit) only go once every older file of their partition is
	// rewritten, so this bounds how many pile up in front of readers;
	// lower means more rewriting of large files.
	DeleteFileThreshold int
	// HoldLock holds the target's Lock from planning to commit, so that
	// this process's own commits wait instead of making the compaction
	// give way. The background loop uses it after repeated conflicts, so
	// a busy table (upserts commit deletes every round) still compacts.
	HoldLock bool
}

// Progress reports a long compaction as it goes.
type Progress struct {
	Table      string `json:"table"`
	Phase      string `json:"phase"` // planned, rewriting, committing
	GroupsDone int    `json:"groups_done"`
	Groups     int    `json:"groups"`
	FilesDone  int    `json:"files_done"`
	Files      int    `json:"files"`
	BytesDone  int64  `json:"bytes_done"`
	Bytes      int64  `json:"bytes"`
}

// CompactResult is what a compaction did.
type CompactResult struct {
	Table string `json:"table"`
	// SnapshotBefore is the snapshot the compaction planned from;
	// SnapshotAfter the one it committed (0 if it committed nothing).
	SnapshotBefore int64 `json:"snapshot_before"`
	SnapshotAfter  int64 `json:"snapshot_after,omitempty"`
	// Live data files and their bytes at SnapshotBefore, and after the
	// rewrite (not counting files appended concurrently).
	DataFilesBefore int   `json:"data_files_before"`
	DataFilesAfter  int   `json:"data_files_after"`
	BytesBefore     int64 `json:"bytes_before"`
	BytesAfter      int64 `json:"bytes_after"`
	// Groups are the sets of files rewritten together (one partition each).
	Groups         int   `json:"groups"`
	FilesRewritten int   `json:"files_rewritten"`
	FilesWritten   int   `json:"files_written"`
	BytesRewritten int64 `json:"bytes_rewritten"`
	BytesWritten   int64 `json:"bytes_written"`
	// DeleteFilesApplied are the delete files whose deletes the rewrite
	// applied; DeleteFilesRemoved those it proved dead and removed.
	DeleteFilesApplied int `json:"delete_files_applied"`
	DeleteFilesRemoved int `json:"delete_files_removed"`
	// CommitAttempts counts commits tried; more than one means the
	// rewrite was re-staged over concurrent appends.
	CommitAttempts int `json:"commit_attempts"`
	// Skipped says why nothing was rewritten, when nothing was.
	Skipped  string        `json:"skipped,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

func (o *CompactOptions) setDefaults() {
	if o.TargetFileBytes <= 0 {
		o.TargetFileBytes = 128 << 20
	}
	if o.MinInputFiles < 2 {
		o.MinInputFiles = 2
	}
	if o.DeleteFileThreshold <= 0 {
		o.DeleteFileThreshold = 32
	}
	if o.MaxCommitAttempts <= 0 {
		o.MaxCommitAttempts = 8
	}
}

// Compact rewrites the small data files of each partition of the table into
// files close to the target size, in one replace snapshot conditional on
// the snapshot it planned from. progress may be nil.
func (m *Maintainer) Compact(ctx context.Context, tg Target, opts CompactOptions, progress func(Progress)) (res CompactResult, err error) {
	opts.setDefaults()
	if progress == nil {
		progress = func(Progress) {}
	}
	name := tg.Name()
	res.Table = name
	release, err := m.acquire(ctx, name)
	if err != nil {
		return res, err
	}
	defer release()
	start := time.Now()
	defer func() {
		res.Duration = time.Since(start)
		m.record(name, "compact", res.Skipped != "", err)
		if err == nil && res.Skipped == "" {
			m.m.filesRewritten.WithLabelValues(name).Add(float64(res.FilesRewritten))
			m.m.filesWritten.WithLabelValues(name).Add(float64(res.FilesWritten))
			m.m.bytesRewritten.WithLabelValues(name).Add(float64(res.BytesRewritten))
			m.m.bytesWritten.WithLabelValues(name).Add(float64(res.BytesWritten))
			m.m.deletesRemoved.WithLabelValues(name).Add(float64(res.DeleteFilesRemoved))
			m.m.duration.WithLabelValues(name, "compact").Observe(res.Duration.Seconds())
		}
	}()

	if opts.HoldLock && tg.Lock != nil {
		tg.Lock.Lock()
		defer tg.Lock.Unlock()
		tg.Lock = nil // held: lockedCommit must not take it again
	}
	tbl, err := tg.Loader.LoadTable(ctx, tg.Ident)
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		res.Skipped = "table does not exist"
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("load %s: %w", name, err)
	}
	base := tbl.CurrentSnapshot()
	if base == nil {
		res.Skipped = "table has no snapshot"
		return res, nil
	}
	res.SnapshotBefore = base.SnapshotID
	tasks, err := tbl.Scan(table.WithSnapshotID(base.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return res, fmt.Errorf("plan %s: %w", name, err)
	}
	res.DataFilesBefore = len(tasks)
	for _, t := range tasks {
		res.BytesBefore += t.File.FileSizeBytes()
	}
	res.DataFilesAfter, res.BytesAfter = res.DataFilesBefore, res.BytesBefore

	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = opts.TargetFileBytes
	cfg.MinFileSizeBytes = opts.TargetFileBytes * 3 / 4
	cfg.MaxFileSizeBytes = opts.TargetFileBytes * 9 / 5
	cfg.MinInputFiles = uint(opts.MinInputFiles)
	cfg.DeleteFileThreshold = opts.DeleteFileThreshold
	plan, err := cfg.PlanCompaction(tasks)
	if err != nil {
		return res, fmt.Errorf("plan compaction of %s: %w", name, err)
	}
	if len(plan.Groups) == 0 {
		res.Skipped = fmt.Sprintf("no partition has %d or more files under %d bytes", opts.MinInputFiles, cfg.MinFileSizeBytes)
		return res, nil
	}
	p := Progress{Table: name, Phase: "planned", Groups: len(plan.Groups)}
	for _, g := range plan.Groups {
		p.Files += len(g.Tasks)
		p.Bytes += g.TotalSizeBytes
	}
	progress(p)

	fsys, err := tbl.FS(ctx)
	if err != nil {
		return res, fmt.Errorf("file IO of %s: %w", name, err)
	}
	var (
		results   []table.CompactionGroupResult
		rewritten = map[string]struct{}{}
		applied   = map[string]struct{}{} // delete files read with the rewritten files
	)
	// Whatever was written is removed unless a commit holding it landed
	// (or might have: then orphan cleanup collects it if it did not).
	keep := false
	defer func() {
		if !keep {
			removeWritten(fsys, results, m)
		}
	}()
	p.Phase = "rewriting"
	for _, g := range plan.Groups {
		gr, err := table.ExecuteCompactionGroup(ctx, tbl, table.CompactionTaskGroup{
			PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes,
		}, table.WithCompactionTargetFileSize(opts.TargetFileBytes))
		results = append(results, gr) // a failed group's partial output is removed too
		if err != nil {
			return res, fmt.Errorf("rewrite %s: %w", name, err)
		}
		for _, t := range g.Tasks {
			rewritten[t.File.FilePath()] = struct{}{}
		}
		res.Groups++
		res.FilesRewritten += len(gr.OldDataFiles)
		res.FilesWritten += len(gr.NewDataFiles)
		res.BytesRewritten += gr.BytesBefore
		res.BytesWritten += gr.BytesAfter
		for _, t := range g.Tasks {
			for _, list := range [][]iceberg.DataFile{t.DeleteFiles, t.EqualityDeleteFiles, t.DeletionVectorFiles} {
				for _, f := range list {
					applied[f.FilePath()] = struct{}{}
				}
			}
		}
		res.DeleteFilesApplied = len(applied)
		p.GroupsDone++
		p.FilesDone += len(g.Tasks)
		p.BytesDone += g.TotalSizeBytes
		progress(p)
	}

	// Delete files go only when dead for the whole rewrite: every data
	// file they can apply to is among the rewritten ones.
	deadDeletes, err := compaction.CollectDeadPositionDeletes(ctx, fsys, base, rewritten)
	if err != nil {
		return res, fmt.Errorf("dead position deletes of %s: %w", name, err)
	}
	deadEq, err := compaction.CollectDeadEqualityDeletesWithSpecs(ctx, fsys, tbl.Metadata(), base, rewritten)
	if err != nil {
		return res, fmt.Errorf("dead equality deletes of %s: %w", name, err)
	}
	deadDeletes = append(deadDeletes, deadEq...)
	for _, gr := range results {
		deadDeletes = append(deadDeletes, gr.SafeDeletionVectors...) // one per rewritten file
	}

	p.Phase = "committing"
	progress(p)
	maintenanceID := randomID()
	head := tbl
	for attempt := 1; ; attempt++ {
		res.CommitAttempts = attempt
		tx := head.NewTransaction()
		if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
			return res, err
		}
		props := carriedProperties(head.Metadata(), head.CurrentSnapshot())
		props[summaryMaintenance] = "compact"
		props[summaryMaintenanceID] = maintenanceID
		rw := tx.NewRewrite(props)
		for _, gr := range results {
			for _, f := range gr.OldDataFiles {
				rw.DeleteFile(f)
			}
			for _, f := range gr.NewDataFiles {
				rw.AddDataFile(f)
			}
		}
		for _, f := range deadDeletes {
			rw.DeleteFile(f)
		}
		// Iceberg's rewrite semantics: the new files hold rows as of base,
		// so deletes committed after base must still apply to them.
		rw.DataSequenceNumber(base.SequenceNumber)
		if err := rw.Commit(ctx); err != nil {
			return res, fmt.Errorf("stage rewrite of %s: %w", name, err)
		}
		next, err := lockedCommit(ctx, tg, tx)
		if next != nil && err != nil {
			// Landed; a post-commit hook failed.
			m.logger.Warn("compaction committed with a post-commit error", "table", name, "err", err)
			err = nil
		}
		if err == nil {
			keep = true
			res.SnapshotAfter = next.CurrentSnapshot().SnapshotID
			res.DeleteFilesRemoved = len(deadDeletes)
			res.DataFilesAfter = res.DataFilesBefore - res.FilesRewritten + res.FilesWritten
			res.BytesAfter = res.BytesBefore - res.BytesRewritten + res.BytesWritten
			return res, nil
		}
		if !errors.Is(err, table.ErrCommitFailed) {
			// Outcome unknown: look for the commit before giving up.
			if landed, lerr := m.landed(ctx, tg, maintenanceID); lerr == nil && landed != nil {
				keep = true
				res.SnapshotAfter = landed.SnapshotID
				res.DeleteFilesRemoved = len(deadDeletes)
				res.DataFilesAfter = res.DataFilesBefore - res.FilesRewritten + res.FilesWritten
				res.BytesAfter = res.BytesBefore - res.BytesRewritten + res.BytesWritten
				return res, nil
			}
			keep = true // it may still land; orphan cleanup collects the files if not
			return res, fmt.Errorf("commit compaction of %s (outcome unknown): %w", name, err)
		}
		if attempt >= opts.MaxCommitAttempts {
			return res, fmt.Errorf("%w: %s: %d commit attempts conflicted", ErrConflict, name, attempt)
		}
		if head, err = tg.Loader.LoadTable(ctx, tg.Ident); err != nil {
			return res, fmt.Errorf("reload %s: %w", name, err)
		}
		cur := head.CurrentSnapshot()
		if cur == nil {
			return res, fmt.Errorf("%w: %s: main branch is gone", ErrConflict, name)
		}
		if ok, why := onlyAppendsSince(head.Metadata(), base.SnapshotID, cur.SnapshotID); !ok {
			return res, fmt.Errorf("%w: %s: %s", ErrConflict, name, why)
		}
		m.logger.Debug("compaction conflicted with appends; re-staging on the new head", "table", name, "attempt", attempt)
	}
}

// landed returns the snapshot on main's history committed with the given
// maintenance id, if any.
func (m *Maintainer) landed(ctx context.Context, tg Target, maintenanceID string) (*table.Snapshot, error) {
	tbl, err := tg.Loader.LoadTable(ctx, tg.Ident)
	if err != nil {
		return nil, err
	}
	meta := tbl.Metadata()
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil && s.Summary.Properties[summaryMaintenanceID] == maintenanceID {
			return s, nil
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return nil, nil
}

// removeWritten deletes the files of a rewrite that did not land.
func removeWritten(fsys iceio.IO, results []table.CompactionGroupResult, m *Maintainer) {
	for _, gr := range results {
		for _, f := range gr.NewDataFiles {
			if err := fsys.Remove(f.FilePath()); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				m.logger.Warn("could not remove a compaction output that was not committed; orphan cleanup will", "file", f.FilePath(), "err", err)
			}
		}
	}
}

// record counts one run in floe_tabletopic_maintenance_runs_total.
func (m *Maintainer) record(name, op string, nothing bool, err error) {
	result := resultOK
	switch {
	case errors.Is(err, ErrConflict):
		result = resultConflict
	case err != nil:
		result = resultError
	case nothing:
		result = resultNothing
	}
	m.m.runs.WithLabelValues(name, op, result).Inc()
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var _ compaction.PartitionSpecLookup = table.Metadata(nil)
