package maintain

import (
	"context"
	"errors"
	"fmt"
	"time"

	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// ExpireOptions tune one snapshot expiry.
type ExpireOptions struct {
	// OlderThan: snapshots older than this may go (default 1h).
	OlderThan time.Duration
	// RetainLast snapshots of main are kept whatever their age (default
	// 1). Expiry also keeps every snapshot back to the newest one that
	// carries floe.offsets.
	RetainLast int
}

// ExpireResult is what a snapshot expiry did.
type ExpireResult struct {
	Table           string `json:"table"`
	SnapshotsBefore int    `json:"snapshots_before"`
	SnapshotsAfter  int    `json:"snapshots_after"`
	Expired         int    `json:"expired"`
	// RetainedForOffsets is set when more than RetainLast snapshots were
	// kept so that the newest floe.offsets stay in main's history.
	RetainedForOffsets int           `json:"retained_for_offsets,omitempty"`
	Skipped            string        `json:"skipped,omitempty"`
	Duration           time.Duration `json:"duration_ns"`
}

// ExpireSnapshots removes old snapshots of the table, and the files only
// they referenced, in one commit conditional on main's snapshot.
func (m *Maintainer) ExpireSnapshots(ctx context.Context, tg Target, opts ExpireOptions) (res ExpireResult, err error) {
	if opts.OlderThan < 0 {
		return res, errors.New("expire: older-than must not be negative")
	}
	if opts.RetainLast < 1 {
		opts.RetainLast = 1
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
		m.record(name, "expire", res.Expired == 0, err)
		if err == nil && res.Expired > 0 {
			m.m.expired.WithLabelValues(name).Add(float64(res.Expired))
			m.m.duration.WithLabelValues(name, "expire").Observe(res.Duration.Seconds())
		}
	}()

	tbl, err := tg.Loader.LoadTable(ctx, tg.Ident)
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		res.Skipped = "table does not exist"
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("load %s: %w", name, err)
	}
	res.SnapshotsBefore = len(tbl.Metadata().Snapshots())
	res.SnapshotsAfter = res.SnapshotsBefore
	head := tbl.CurrentSnapshot()
	if head == nil {
		res.Skipped = "table has no snapshot"
		return res, nil
	}
	retain := opts.RetainLast
	if carrier, depth := offsetsCarrier(tbl.Metadata(), head); carrier != nil && depth+1 > retain {
		res.RetainedForOffsets = depth + 1 - retain
		retain = depth + 1
	}
	tx := tbl.NewTransaction()
	// Pinned: if main moves, the commit fails rather than being replayed
	// on a head whose offsets this expiry did not look at.
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return res, err
	}
	if err := tx.ExpireSnapshots(table.WithOlderThan(opts.OlderThan), table.WithRetainLast(retain)); err != nil {
		return res, fmt.Errorf("expire %s: %w", name, err)
	}
	next, err := lockedCommit(ctx, tg, tx)
	if next != nil && err != nil {
		// Landed; deleting the expired snapshots' files failed in part.
		// Orphan cleanup finds what is left.
		m.logger.Warn("snapshot expiry committed but removing files failed", "table", name, "err", err)
		err = nil
	}
	if errors.Is(err, table.ErrCommitFailed) {
		return res, fmt.Errorf("%w: %s: main moved during expiry: %w", ErrConflict, name, err)
	}
	if err != nil {
		return res, fmt.Errorf("commit expiry of %s: %w", name, err)
	}
	res.SnapshotsAfter = len(next.Metadata().Snapshots())
	res.Expired = res.SnapshotsBefore - res.SnapshotsAfter
	if res.Expired == 0 {
		res.Skipped = "no snapshot is old enough"
	}
	return res, nil
}

// OrphanOptions tune one orphan cleanup.
type OrphanOptions struct {
	// OlderThan is the grace period: younger files are kept (default 24h,
	// at least MinOrphanAge).
	OlderThan time.Duration
	// DryRun lists the orphans without deleting them.
	DryRun bool

	minAge time.Duration // tests lower MinOrphanAge
}

const maxListedOrphans = 100

// OrphanResult is what an orphan cleanup did.
type OrphanResult struct {
	Table   string `json:"table"`
	Orphans int    `json:"orphans"`
	Bytes   int64  `json:"bytes"`
	Deleted int    `json:"deleted"`
	// Files lists the first maxListedOrphans orphans.
	Files    []string      `json:"files,omitempty"`
	Skipped  string        `json:"skipped,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// RemoveOrphans deletes files under the table location that no snapshot
// (nor the metadata log) references and that are older than the grace
// period: the leftovers of commits that failed or never came.
func (m *Maintainer) RemoveOrphans(ctx context.Context, tg Target, opts OrphanOptions) (res OrphanResult, err error) {
	if opts.OlderThan == 0 {
		opts.OlderThan = 24 * time.Hour
	}
	floor := MinOrphanAge
	if opts.minAge > 0 {
		floor = opts.minAge
	}
	if opts.OlderThan < floor {
		return res, fmt.Errorf("orphan cleanup: older-than %s is under %s: younger files may belong to a commit in flight", opts.OlderThan, floor)
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
		m.record(name, "orphans", res.Deleted == 0, err)
		if err == nil && res.Deleted > 0 {
			m.m.orphanFiles.WithLabelValues(name).Add(float64(res.Deleted))
			m.m.orphanBytes.WithLabelValues(name).Add(float64(res.Bytes))
			m.m.duration.WithLabelValues(name, "orphans").Observe(res.Duration.Seconds())
		}
	}()

	tbl, err := tg.Loader.LoadTable(ctx, tg.Ident)
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		res.Skipped = "table does not exist"
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("load %s: %w", name, err)
	}
	plan, err := tbl.PlanOrphanFiles(ctx, table.WithFilesOlderThan(opts.OlderThan))
	if err != nil {
		return res, fmt.Errorf("find orphans of %s: %w", name, err)
	}
	files := plan.Files()
	res.Orphans, res.Bytes = len(files), plan.TotalSizeBytes()
	res.Files = files[:min(len(files), maxListedOrphans)]
	if res.Orphans == 0 {
		res.Skipped = "no orphan files"
		return res, nil
	}
	if opts.DryRun {
		res.Skipped = "dry run"
		return res, nil
	}
	out, err := tbl.ExecuteOrphanCleanup(ctx, plan)
	res.Deleted = len(out.DeletedFiles)
	if err != nil {
		return res, fmt.Errorf("delete orphans of %s: %w", name, err)
	}
	m.logger.Info("removed orphan files", "table", name, "files", res.Deleted, "bytes", res.Bytes)
	return res, nil
}
