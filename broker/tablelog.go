package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// This file is the broker's narrow read interface for table-topic workers
// (package tabletopic declares the interface it needs; cmd/floe passes the
// Broker). Workers read committed batches as stored, exactly like a fetch.

// TopicInfo describes a topic for table-topic workers.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
	// Configs holds every table.topic.* config with its effective value
	// (defaults filled in) and any other explicitly set topic config.
	Configs map[string]string
}

// ErrUnknownPartition is returned for a topic or partition that does not exist.
var ErrUnknownPartition = errors.New("unknown topic or partition")

// ErrNotLeader is returned when this broker does not lead the partition.
var ErrNotLeader = errors.New("not the partition leader")

// ErrOffsetOutOfRange is returned for an offset below the log start or past the high watermark.
var ErrOffsetOutOfRange = errOffsetOutOfRange

// Topics lists every topic with its configs.
func (b *Broker) Topics() []TopicInfo {
	var out []TopicInfo
	for _, t := range b.topics.all() {
		info := TopicInfo{Name: t.name, ID: t.id, Partitions: int32(len(t.partitions())), Configs: map[string]string{}}
		for name, d := range topicConfigDefs {
			if strings.HasPrefix(name, "table.topic.") {
				info.Configs[name] = d.def
			}
		}
		t.mu.RLock()
		for k, v := range t.configs {
			info.Configs[k] = v
		}
		t.mu.RUnlock()
		out = append(out, info)
	}
	return out
}

// Leads reports whether this broker currently leads the partition.
func (b *Broker) Leads(topic string, partition int32) bool {
	t := b.topics.get(topic)
	if t == nil {
		return false
	}
	p := t.partition(partition)
	return p != nil && p.status().leader
}

// ReadCommitted returns whole record batches of the partition starting
// with the one holding offset, up to about maxBytes (at least one batch),
// with the partition's high watermark and log start offset.
func (b *Broker) ReadCommitted(ctx context.Context, topic string, partition int32, offset int64, maxBytes int) (batches []byte, hw, logStart int64, err error) {
	t := b.topics.get(topic)
	if t == nil {
		return nil, -1, -1, fmt.Errorf("%w: %s", ErrUnknownPartition, topic)
	}
	p := t.partition(partition)
	if p == nil {
		return nil, -1, -1, fmt.Errorf("%w: %s/%d", ErrUnknownPartition, topic, partition)
	}
	st := p.status()
	if !st.leader {
		return nil, st.hw, st.logStart, ErrNotLeader
	}
	data, err := p.read(ctx, st, offset, maxBytes)
	return data, st.hw, st.logStart, err
}

// DataNotify returns a channel closed at the next commit of new data (or
// log start move), so readers can wait instead of polling.
func (b *Broker) DataNotify() <-chan struct{} { return b.notify.wait() }
