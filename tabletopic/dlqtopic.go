package tabletopic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/tabletopic/convert"
)

// The dead-letter topic (table.topic.dlq.topic) receives every record the
// dead-letter table does, for consumers that want to react to bad records
// (alert, repair, replay) rather than query them. Each keeps its key, value
// and headers, plus headers naming where it came from and why it failed.
//
// A round produces its dead records (idempotent, acks=all) before it
// commits the dead-letter table, so a record is in the topic at least once
// before it is in the table: a round whose table commit fails produces
// them again after recovery. Consumers that must see each once dedupe on
// floe.dlq.partition + floe.dlq.offset (with floe.dlq.topic-id).

// Headers added to dead-letter topic records.
const (
	dlqHeaderTopic     = "floe.dlq.topic"
	dlqHeaderTopicID   = "floe.dlq.topic-id"
	dlqHeaderPartition = "floe.dlq.partition"
	dlqHeaderOffset    = "floe.dlq.offset"
	dlqHeaderTimestamp = "floe.dlq.timestamp"
	dlqHeaderError     = "floe.dlq.error"
)

// deadRecord is a rejected record on its way to the dead-letter topic.
type deadRecord struct {
	rec *kgo.Record
}

func newDeadRecord(topic TopicInfo, rec convert.Record, cause error) deadRecord {
	// The record's bytes point into a read buffer the worker reuses.
	r := &kgo.Record{Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value), Timestamp: time.UnixMilli(rec.TimestampMs)}
	for _, h := range rec.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	r.Headers = append(r.Headers,
		kgo.RecordHeader{Key: dlqHeaderTopic, Value: []byte(topic.Name)},
		kgo.RecordHeader{Key: dlqHeaderTopicID, Value: fmt.Appendf(nil, "%x", topic.ID)},
		kgo.RecordHeader{Key: dlqHeaderPartition, Value: []byte(strconv.Itoa(int(rec.Partition)))},
		kgo.RecordHeader{Key: dlqHeaderOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		kgo.RecordHeader{Key: dlqHeaderTimestamp, Value: []byte(strconv.FormatInt(rec.TimestampMs, 10))},
		kgo.RecordHeader{Key: dlqHeaderError, Value: []byte(cause.Error())},
	)
	return deadRecord{rec: r}
}

// dlqProducer returns the service's producer for dead-letter topics,
// created on first use against Config.Brokers.
func (s *Service) dlqProducer() (*kgo.Client, error) {
	s.dlqMu.Lock()
	defer s.dlqMu.Unlock()
	if s.dlqClient != nil {
		return s.dlqClient, nil
	}
	if len(s.cfg.Brokers) == 0 {
		return nil, errors.New("a dead-letter topic is configured but the table-topic service has no Kafka bootstrap address")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...), kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return nil, err
	}
	s.dlqClient = cl
	return cl, nil
}

// produceDeadRecords sends a round's dead records to the table's
// dead-letter topic and waits for every acknowledgement.
func (r *tableRunner) produceDeadRecords(ctx context.Context, recs []deadRecord) error {
	if len(recs) == 0 {
		return nil
	}
	cl, err := r.svc.dlqProducer()
	if err != nil {
		return err
	}
	krecs := make([]*kgo.Record, len(recs))
	for i, d := range recs {
		d.rec.Topic = r.cfg.dlqTopic
		krecs[i] = d.rec
	}
	if err := cl.ProduceSync(ctx, krecs...).FirstErr(); err != nil {
		return fmt.Errorf("dead-letter topic %s: %w", r.cfg.dlqTopic, err)
	}
	r.svc.m.dlqTopicRecords.WithLabelValues(r.name).Add(float64(len(recs)))
	return nil
}
