package maintain

import (
	"context"
	"errors"
	"time"
)

// maxYields is how many background compactions in a row may give way to
// concurrent commits before the next one holds the target's lock.
const maxYields = 2

// Run maintains the targets in the background until ctx ends. Every
// p.CheckInterval it compacts each partition holding p.MinInputFiles or
// more small files; it expires snapshots every min(ExpireOlderThan/4, 1h)
// and removes orphans every min(OrphanOlderThan/2, 6h) (never more often
// than CheckInterval). Failures are logged and retried next time: each
// step is conditional and leaves the table as it was when it fails.
//
// The table's coordinator runs it, so each table has one background owner;
// on-demand runs through the same Maintainer wait for it.
func (m *Maintainer) Run(ctx context.Context, targets []Target, p Policy) {
	if p.CheckInterval <= 0 {
		p.CheckInterval = DefaultPolicy().CheckInterval
	}
	expireEvery := max(min(p.ExpireOlderThan/4, time.Hour), p.CheckInterval)
	orphanEvery := max(min(p.OrphanOlderThan/2, 6*time.Hour), p.CheckInterval)
	// Orphans wait one period after a start, so a restarting node does
	// not list the table location every time.
	lastExpire, lastOrphans := time.Time{}, time.Now()
	// conflicts counts consecutive compactions of a target that gave way
	// to concurrent commits; past maxYields the next one holds the lock.
	conflicts := make([]int, len(targets))
	t := time.NewTicker(p.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, tg := range targets {
			if p.Compact {
				res, err := m.Compact(ctx, tg, CompactOptions{TargetFileBytes: p.TargetFileBytes, MinInputFiles: p.MinInputFiles,
					HoldLock: conflicts[i] >= maxYields}, nil)
				if errors.Is(err, ErrConflict) {
					conflicts[i]++
				} else {
					conflicts[i] = 0
				}
				m.logRun(ctx, "compaction", tg, err, res.Skipped == "",
					"files_rewritten", res.FilesRewritten, "files_written", res.FilesWritten,
					"bytes_rewritten", res.BytesRewritten, "bytes_written", res.BytesWritten,
					"data_files_after", res.DataFilesAfter, "attempts", res.CommitAttempts, "duration", res.Duration)
			}
		}
		if p.Expire && time.Since(lastExpire) >= expireEvery {
			lastExpire = time.Now()
			for _, tg := range targets {
				res, err := m.ExpireSnapshots(ctx, tg, ExpireOptions{OlderThan: p.ExpireOlderThan, RetainLast: p.RetainLast})
				m.logRun(ctx, "snapshot expiry", tg, err, res.Expired > 0, "expired", res.Expired, "snapshots", res.SnapshotsAfter)
			}
		}
		if p.RemoveOrphans && time.Since(lastOrphans) >= orphanEvery {
			lastOrphans = time.Now()
			for _, tg := range targets {
				res, err := m.RemoveOrphans(ctx, tg, OrphanOptions{OlderThan: max(p.OrphanOlderThan, MinOrphanAge)})
				m.logRun(ctx, "orphan cleanup", tg, err, res.Deleted > 0, "deleted", res.Deleted, "bytes", res.Bytes)
			}
		}
	}
}

func (m *Maintainer) logRun(ctx context.Context, what string, tg Target, err error, did bool, attrs ...any) {
	attrs = append([]any{"table", tg.Name()}, attrs...)
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, ErrConflict):
		m.logger.Info(what+" gave way to a concurrent commit; next cycle plans again", append(attrs, "reason", err)...)
	case err != nil:
		m.logger.Warn(what+" failed; next cycle retries", append(attrs, "err", err)...)
	case did:
		m.logger.Info(what+" done", attrs...)
	}
}
