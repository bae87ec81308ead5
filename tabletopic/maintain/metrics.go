package maintain

import "github.com/prometheus/client_golang/prometheus"

// Run outcomes, the result label of floe_tabletopic_maintenance_runs_total.
const (
	resultOK       = "ok"
	resultNothing  = "nothing_to_do"
	resultConflict = "conflict"
	resultError    = "error"
)

// metrics are the maintenance series, labelled by table (namespace.table).
type metrics struct {
	runs           *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	filesRewritten *prometheus.CounterVec
	filesWritten   *prometheus.CounterVec
	bytesRewritten *prometheus.CounterVec
	bytesWritten   *prometheus.CounterVec
	deletesRemoved *prometheus.CounterVec
	expired        *prometheus.CounterVec
	orphanFiles    *prometheus.CounterVec
	orphanBytes    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "floe_tabletopic_"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + name, Help: help}, append([]string{"table"}, labels...))
	}
	m := &metrics{
		runs: counter("maintenance_runs_total",
			"Maintenance runs by operation (compact, expire, orphans) and result (ok, nothing_to_do, conflict, error).", "op", "result"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    ns + "maintenance_duration_seconds",
			Help:    "Duration of maintenance runs that did something, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 18),
		}, []string{"table", "op"}),
		filesRewritten: counter("compaction_files_rewritten_total", "Data files replaced by compaction."),
		filesWritten:   counter("compaction_files_written_total", "Data files written by compaction."),
		bytesRewritten: counter("compaction_bytes_rewritten_total", "Bytes of data files replaced by compaction."),
		bytesWritten:   counter("compaction_bytes_written_total", "Bytes of data files written by compaction."),
		deletesRemoved: counter("compaction_delete_files_removed_total", "Delete files made dead and removed by compaction."),
		expired:        counter("snapshots_expired_total", "Snapshots removed by snapshot expiry."),
		orphanFiles:    counter("orphan_files_removed_total", "Unreferenced files deleted by orphan cleanup."),
		orphanBytes:    counter("orphan_bytes_removed_total", "Bytes of unreferenced files deleted by orphan cleanup."),
	}
	reg.MustRegister(m.runs, m.duration, m.filesRewritten, m.filesWritten, m.bytesRewritten, m.bytesWritten,
		m.deletesRemoved, m.expired, m.orphanFiles, m.orphanBytes)
	return m
}
