package tabletopic

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"

	"github.com/floe-io/floe/internal/kbatch"
	"github.com/floe-io/floe/tabletopic/convert"
)

// Errors a converter's Add wraps (see package convert).
var (
	// errInvalidRecord: the record goes to the dead-letter table, or stops
	// the table, per table.topic.errors.tolerance.
	errInvalidRecord = convert.ErrInvalidRecord
	// errSchemaChange: commit ProposedSchema, Evolve to the committed
	// schema, and Add again.
	errSchemaChange = convert.ErrSchemaChange
)

// converter turns records into Arrow rows of the table's schema
// (*convert.Converter). One per partition worker.
type converter interface {
	Schema() *iceberg.Schema
	Add(ctx context.Context, r convert.Record) error
	ProposedSchema() *iceberg.Schema
	Evolve(committed *iceberg.Schema) error
	Rows() int
	EstimatedBytes() int
	// Flush returns the buffered rows (nil if none) and starts afresh.
	Flush() arrow.RecordBatch
	Release()
}

var _ converter = (*convert.Converter)(nil)

// newConverter builds a converter for the table's config; tableSchema is
// nil when the table does not exist yet (Schema() then is the one to
// create it with), and lastColumnID the table's last-column-id.
func (s *Service) newConverter(ctx context.Context, topic string, cfg *tableConfig, tableSchema *iceberg.Schema, lastColumnID int) (converter, error) {
	cc := convert.Config{
		Topic:        topic,
		ValueType:    cfg.valueType,
		KeyType:      cfg.keyType,
		ValueSubject: cfg.valueSubject,
		KeySubject:   cfg.keySubject,
		Transform:    cfg.transform,
		LastColumnID: lastColumnID,
		// An upsert table's rows must carry their key and, with CDC, a
		// known operation: anything else is a bad record.
		RequiredColumns: cfg.idColumns,
		CDCColumn:       cfg.cdcField,
	}
	if s.cfg.Registry != nil {
		cc.Registry = s.cfg.Registry
	}
	// A config the converter refuses is the operator's to fix; anything
	// New fails on after that (the registry being down) is retried.
	if err := cc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := convert.New(ctx, cc, tableSchema)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// toRecord builds the converter's record from a stored one; headers are
// copied into buf, which the caller reuses.
func toRecord(partition int32, offset, ts int64, kr *kbatch.Record, buf []convert.Header) (convert.Record, []convert.Header) {
	buf = buf[:0]
	for _, h := range kr.Headers {
		buf = append(buf, convert.Header{Key: h.Key, Value: h.Value})
	}
	return convert.Record{
		Partition: partition, Offset: offset, TimestampMs: ts,
		Key: kr.Key, Value: kr.Value, Headers: buf,
	}, buf
}
