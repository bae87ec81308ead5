package tabletopic

import "github.com/prometheus/client_golang/prometheus"

// metrics are the pipeline's Prometheus series, labelled by table
// (namespace.table).
type metrics struct {
	lagRecords      *prometheus.GaugeVec
	lagSeconds      *prometheus.GaugeVec
	commitDuration  *prometheus.HistogramVec
	commits         *prometheus.CounterVec
	commitFailures  *prometheus.CounterVec
	rows            *prometheus.CounterVec
	files           *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	dlqRows         *prometheus.CounterVec
	dlqTopicRecords *prometheus.CounterVec
	running         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "floe_tabletopic_"
	m := &metrics{
		lagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ns + "lag_records",
			Help: "Records committed to the log but not yet to the table, over the partitions this node converts.",
		}, []string{"table"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ns + "lag_seconds",
			Help: "Age of the oldest record not yet committed to the table.",
		}, []string{"table"}),
		commitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    ns + "commit_duration_seconds",
			Help:    "Duration of a commit round (dead-letter and data table commits).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"table"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "commits_total",
			Help: "Successful data table commits.",
		}, []string{"table"}),
		commitFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "commit_failures_total",
			Help: "Failed commit rounds; each is followed by recovery from the table's snapshot summary.",
		}, []string{"table"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "rows_written_total",
			Help: "Rows committed to the table.",
		}, []string{"table"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "files_written_total",
			Help: "Data files committed to the table.",
		}, []string{"table"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "bytes_written_total",
			Help: "Bytes of data files committed to the table.",
		}, []string{"table"}),
		dlqRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "dlq_rows_total",
			Help: "Rows committed to the table's dead-letter table.",
		}, []string{"table"}),
		dlqTopicRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "dlq_topic_records_total",
			Help: "Records produced to the table's dead-letter topic (at least once).",
		}, []string{"table"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ns + "table_running",
			Help: "1 while the table converts, 0 when stopped or in error.",
		}, []string{"table"}),
	}
	reg.MustRegister(m.lagRecords, m.lagSeconds, m.commitDuration, m.commits, m.commitFailures,
		m.rows, m.files, m.bytes, m.dlqRows, m.dlqTopicRecords, m.running)
	return m
}

// forget drops a table's series once it no longer runs here.
func (m *metrics) forget(table string) {
	for _, v := range []*prometheus.GaugeVec{m.lagRecords, m.lagSeconds, m.running} {
		v.DeleteLabelValues(table)
	}
}
