package convert

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// maxErrorText bounds the error text kept per dead-letter row.
const maxErrorText = 4 << 10

// DeadLetterSchema is the schema of a table topic's dead-letter table
// (<table>_dlq): the record exactly as produced (key and value as binary,
// whatever the converter types), its headers and metadata as in the main
// table, and why it could not be converted. It never evolves.
func DeadLetterSchema() *iceberg.Schema {
	fields := []iceberg.NestedField{
		{Name: ColumnKey, Type: iceberg.PrimitiveTypes.Binary},
		{Name: ColumnValue, Type: iceberg.PrimitiveTypes.Binary},
		{Name: ColumnHeaders, Type: headersType()},
		{Name: ColumnMetadata, Type: metadataType(), Required: true},
		{Name: ColumnError, Type: iceberg.PrimitiveTypes.String, Required: true},
	}
	m := merger{newTable: true}
	for i := range fields {
		fields[i] = m.fresh(fields[i], false)
	}
	return iceberg.NewSchema(0, fields...)
}

// DeadLetter builds the rows of a dead-letter table. Add never fails: a
// dead-letter row must always be writable. Not safe for concurrent use.
type DeadLetter struct {
	schema     *iceberg.Schema
	arrow      *arrow.Schema
	rb         *array.RecordBuilder
	key, value *array.BinaryBuilder
	errText    *array.StringBuilder
	meta       *metaWriter
	headers    *headersWriter
	nulls      []array.Builder
	rows       int
	bytes      int
}

// NewDeadLetter returns a builder for a dead-letter table whose schema is
// tableSchema (nil: DeadLetterSchema(), for a table to be created). Columns
// are matched by name, so a catalog's own ids are fine; mem nil means
// memory.DefaultAllocator.
func NewDeadLetter(tableSchema *iceberg.Schema, mem memory.Allocator) (*DeadLetter, error) {
	if tableSchema == nil {
		tableSchema = DeadLetterSchema()
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	as, err := table.SchemaToArrowSchema(tableSchema, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("convert: dead-letter schema to Arrow: %w", err)
	}
	d := &DeadLetter{schema: tableSchema, arrow: as, rb: array.NewRecordBuilder(mem, as)}
	fields := tableSchema.Fields()
	for i, f := range fields {
		b := d.rb.Field(i)
		var ok bool
		switch f.Name {
		case ColumnKey:
			d.key, ok = b.(*array.BinaryBuilder)
		case ColumnValue:
			d.value, ok = b.(*array.BinaryBuilder)
		case ColumnError:
			d.errText, ok = b.(*array.StringBuilder)
		case ColumnMetadata:
			d.meta, err = newMetaWriter(f.Type, b)
			ok = err == nil
		case ColumnHeaders:
			d.headers, err = newHeadersWriter(f.Type, b)
			ok = err == nil
		default:
			if f.Required {
				d.rb.Release()
				return nil, fmt.Errorf("convert: dead-letter table has required column %s that floe cannot fill", f.Name)
			}
			d.nulls, ok = append(d.nulls, b), true
		}
		if !ok {
			d.rb.Release()
			return nil, fmt.Errorf("convert: dead-letter column %s has type %s", f.Name, f.Type)
		}
	}
	if d.key == nil || d.value == nil || d.errText == nil || d.meta == nil || d.headers == nil {
		d.rb.Release()
		return nil, errors.New("convert: dead-letter table lacks one of its columns")
	}
	return d, nil
}

// Add appends a record that could not be converted, with the reason.
func (d *DeadLetter) Add(r Record, cause error) {
	appendBytes(d.key, r.Key)
	appendBytes(d.value, r.Value)
	text := "unknown error"
	if cause != nil {
		text = cause.Error()
	}
	if len(text) > maxErrorText {
		text = text[:maxErrorText]
	}
	d.errText.Append(strings.ToValidUTF8(text, "\uFFFD"))
	d.meta.put(&r)
	hs, copied := r.Headers, false
	for i := range hs {
		if k := strings.ToValidUTF8(hs[i].Key, "\uFFFD"); k != hs[i].Key {
			if !copied {
				hs, copied = slices.Clone(hs), true
			}
			hs[i].Key = k
		}
	}
	d.headers.put(hs)
	for _, b := range d.nulls {
		b.AppendNull()
	}
	d.rows++
	d.bytes += rowOverhead + len(r.Key) + len(r.Value) + len(text)
	for _, h := range r.Headers {
		d.bytes += len(h.Key) + len(h.Value) + columnOverhead
	}
}

func appendBytes(b *array.BinaryBuilder, v []byte) {
	if v == nil {
		b.AppendNull()
	} else {
		b.Append(v)
	}
}

// Schema is the dead-letter table's schema rows are built for.
func (d *DeadLetter) Schema() *iceberg.Schema { return d.schema }

// ArrowSchema is the schema of Flush's records, with field ids.
func (d *DeadLetter) ArrowSchema() *arrow.Schema { return d.arrow }

// Rows is the number of pending rows.
func (d *DeadLetter) Rows() int { return d.rows }

// EstimatedBytes approximates the pending rows' memory.
func (d *DeadLetter) EstimatedBytes() int { return d.bytes }

// Flush returns the pending rows and starts a new batch; nil when there are
// none. The caller releases the record.
func (d *DeadLetter) Flush() arrow.RecordBatch {
	if d.rows == 0 {
		return nil
	}
	rec := d.rb.NewRecordBatch()
	d.rows, d.bytes = 0, 0
	return rec
}

// Release frees the builders.
func (d *DeadLetter) Release() { d.rb.Release() }
