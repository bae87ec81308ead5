package broker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections       prometheus.Gauge
	requests          *prometheus.CounterVec
	requestSeconds    *prometheus.HistogramVec
	requestBytes      prometheus.Counter
	responseBytes     prometheus.Counter
	producedBytes     prometheus.Counter
	producedRecs      prometheus.Counter
	fetchedBytes      prometheus.Counter
	flushes           prometheus.Counter
	flushBytes        prometheus.Counter
	flushSeconds      prometheus.Histogram
	flushErrors       *prometheus.CounterVec
	cacheHits         *prometheus.CounterVec
	cacheMisses       prometheus.Counter
	gcDeleted         prometheus.Counter
	compactions       prometheus.Counter
	compactedSegments prometheus.Counter

	leaseLost         prometheus.Counter
	controllerChanges prometheus.Counter
	leaderChanges     *prometheus.CounterVec
	takeoverSeconds   prometheus.Histogram
	balanceMoves      prometheus.Counter
	balanceInBand     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "floe_broker_connections", Help: "Open Kafka connections."}),
		requests:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floe_broker_requests_total", Help: "Kafka requests answered, by API."}, []string{"api"}),
		requestSeconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "floe_broker_request_seconds", Help: "Time from request decode to response, by API.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"api"}),
		requestBytes:      prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_broker_request_bytes_total", Help: "Bytes of Kafka requests received."}),
		responseBytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_broker_response_bytes_total", Help: "Bytes of Kafka responses sent."}),
		producedBytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_broker_produced_bytes_total", Help: "Record batch bytes accepted for produce."}),
		producedRecs:      prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_broker_produced_records_total", Help: "Records accepted for produce."}),
		fetchedBytes:      prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_broker_fetched_bytes_total", Help: "Record batch bytes returned by fetches."}),
		flushes:           prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_wal_flushes_total", Help: "Flush objects written and committed."}),
		flushBytes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_wal_flush_bytes_total", Help: "Bytes of committed flush objects."}),
		flushSeconds:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "floe_wal_flush_seconds", Help: "Time to upload and commit one flush.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		flushErrors:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floe_wal_flush_errors_total", Help: "Flush failures by stage."}, []string{"stage"}),
		cacheHits:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floe_read_cache_hits_total", Help: "Segment reads served from memory, by cache."}, []string{"cache"}),
		cacheMisses:       prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_read_cache_misses_total", Help: "Segment reads that needed a ranged GET."}),
		gcDeleted:         prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_gc_deleted_objects_total", Help: "Unreferenced flush objects deleted."}),
		compactions:       prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_compactions_total", Help: "Segment runs merged into stream objects."}),
		compactedSegments: prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_compacted_segments_total", Help: "Segments merged away by compaction."}),

		leaseLost:         prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_broker_lease_lost_total", Help: "Times this broker lost its membership lease and stepped down from everything."}),
		controllerChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_controller_elections_won_total", Help: "Times this broker became the controller."}),
		leaderChanges:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "floe_controller_leader_assignments_total", Help: "Partition leaders assigned by this broker as controller, by reason."}, []string{"reason"}),
		takeoverSeconds:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "floe_broker_takeover_seconds", Help: "Time to take over a set of newly assigned partitions.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		balanceMoves:      prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_balance_moves_total", Help: "Partitions moved by the self-balancer (this broker as controller)."}),
		balanceInBand:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "floe_balance_in_band", Help: "1 when broker loads were within the balance band at the controller's last round."}),
	}
	if reg != nil {
		reg.MustRegister(m.leaseLost, m.controllerChanges, m.leaderChanges, m.takeoverSeconds, m.balanceMoves, m.balanceInBand)
		reg.MustRegister(m.connections, m.requests, m.requestSeconds, m.requestBytes, m.responseBytes,
			m.producedBytes, m.producedRecs, m.fetchedBytes, m.flushes, m.flushBytes, m.flushSeconds,
			m.flushErrors, m.cacheHits, m.cacheMisses, m.gcDeleted, m.compactions, m.compactedSegments)
	}
	return m
}
