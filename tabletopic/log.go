package tabletopic

import "context"

// Log is what the pipeline needs from the broker: the topics with their
// configs, partition leadership, committed batches and a wake-up on new
// data. cmd/floe adapts *broker.Broker to it (this package never imports
// the broker, and the broker never imports iceberg-go).
type Log interface {
	// Topics lists every topic; Configs holds every table.topic.* key
	// with its effective value.
	Topics() []TopicInfo
	// Leads reports whether this node leads the partition now.
	Leads(topic string, partition int32) bool
	// ReadCommitted returns whole stored record batches starting with the
	// one holding offset (about maxBytes, at least one batch), plus the
	// high watermark and log start offset, also with an error when known
	// (-1 otherwise): offset == hw returns no batches, and an offset past
	// the high watermark (math.MaxInt64 probes) is out of range but still
	// reports both.
	ReadCommitted(ctx context.Context, topic string, partition int32, offset int64, maxBytes int) (batches []byte, hw, logStart int64, err error)
	// DataNotify returns a channel closed at the next commit of new data.
	DataNotify() <-chan struct{}
}

// TopicInfo describes one topic. It has the same fields as
// broker.TopicInfo, so the adapter is a plain conversion.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
	Configs    map[string]string
}
