package tabletopic

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/floe-io/floe/tabletopic/maintain"
)

// Table maintenance (compaction, snapshot expiry, orphan cleanup) lives in
// package maintain; this file wires it to the runners: the coordinator
// that leads partition 0 of a topic maintains its tables in the background,
// and the admin API runs maintenance on demand.

// maintenanceTargets are the table and its dead-letter table. Maintenance
// commits take catMu, so they never race this node's data commits.
func (r *tableRunner) maintenanceTargets(cat maintain.Loader) []maintain.Target {
	return []maintain.Target{
		{Loader: cat, Ident: r.ident, Lock: &r.catMu},
		{Loader: cat, Ident: r.dlqID, Lock: &r.catMu},
	}
}

// maintenancePolicy is the topic's maintenance configs. Small files pile up
// with each commit, so the loop looks ten commit intervals apart (1 s to
// 5 min). Orphan cleanup never touches files younger than ten commit
// intervals, whatever the config says.
func (r *tableRunner) maintenancePolicy() (maintain.Policy, error) {
	p, err := maintain.ParsePolicy(r.topic.Configs)
	if err != nil {
		return p, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	interval := max(r.cfg.commitInterval, minCommitInterval)
	p.CheckInterval = min(max(10*interval, time.Second), 5*time.Minute)
	p.OrphanOlderThan = max(p.OrphanOlderThan, 10*interval, maintain.MinOrphanAge)
	return p, nil
}

// startMaintenance runs background maintenance for the session if this
// node coordinates the table (it leads partition 0: one owner per table);
// the returned func stops it.
func (r *tableRunner) startMaintenance(ctx context.Context) (stop func()) {
	if !slices.Contains(r.parts, 0) || r.svc.maint == nil {
		return func() {}
	}
	p, err := r.maintenancePolicy()
	if err != nil {
		r.svc.cfg.Logger.Warn("table maintenance off: bad config", "table", r.name, "err", err)
		return func() {}
	}
	cat, err := r.svc.catalog(ctx)
	if err != nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.svc.maint.Run(ctx, r.maintenanceTargets(cat), p)
	}()
	return func() { cancel(); <-done }
}

// resolveMaintenance serves the admin API's on-demand maintenance.
func (s *Service) resolveMaintenance(ctx context.Context, name string) ([]maintain.Target, maintain.Policy, error) {
	r := s.lookup(name)
	if r == nil {
		return nil, maintain.Policy{}, fmt.Errorf("%w: %s", maintain.ErrNotFound, name)
	}
	p, err := r.maintenancePolicy()
	if err != nil {
		return nil, p, err
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, p, err
	}
	return r.maintenanceTargets(cat), p, nil
}
