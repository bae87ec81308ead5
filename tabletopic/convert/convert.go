// Package convert turns Kafka records of a table topic into Arrow rows of
// the topic's Iceberg table, and evolves the table schema as producers
// evolve theirs. The table-topic pipeline reads records from the log, Adds
// them to a Converter, and writes each Flush with pqarrow into a data file.
//
// # Table layout
//
// Every row has three columns about the Kafka record:
//
//	_kafka_key       binary (key type raw), string (string), or the key
//	                 schema's type (by_schema_id, by_latest_schema): a
//	                 struct for a record key, whatever the transform
//	_kafka_headers   list<struct<key: string, value: binary>>, in record
//	                 order; a list, not a map, because Kafka allows a key
//	                 to repeat and keeps header order
//	_kafka_metadata  struct<partition: int, offset: long, timestamp: timestamptz>
//
// The value goes to _kafka_value (binary for raw, string for string, the
// schema's type for a schema-based value with transform none); with flatten
// a record value's fields become top-level columns instead, and with
// flatten_debezium the fields of the Debezium envelope's "after" image
// ("before" for deletes) do, plus _cdc_op holding the envelope's op
// (c, u, d, r). A flattened value that is not an Avro record goes to
// _kafka_value. A new table's columns come in that order: key, headers,
// metadata, [_cdc_op], then the value's; evolution appends.
//
// # Avro to Iceberg
//
// record -> struct, array -> list, map -> map<string, _>, enum -> string,
// fixed -> fixed[n], bytes -> binary, [null, T] -> optional T, and a union
// of several non-null branches -> struct<tag: int, field0: T0, field1: T1,
// ...> as Iceberg's Java Avro reader maps it (tag counts non-null branches;
// a null datum makes the whole struct null). Logical types: date -> date,
// time-millis/micros -> time, timestamp-millis/micros -> timestamptz,
// local-timestamp-millis/micros -> timestamp, decimal(p, s) -> decimal(p, s)
// (p at most 38), uuid -> uuid (16 bytes; a uuid string that does not parse
// is an invalid record). Null-typed fields and records without data fields
// get no column (Parquet has no empty groups). Recursive types cannot be
// columns: their records are invalid.
//
// Every column derived from a schema is optional, nested fields, list
// elements and map values too: a tombstone, a field a later schema drops,
// or an older schema's record must all be writable. Strings must be valid
// UTF-8 (Avro strings, string keys and values, header keys).
//
// # Schema evolution
//
// The first record whose schema needs columns the table lacks (or a wider
// type) makes Add return ErrSchemaChange; nothing is appended. The pipeline
// then flushes the pending rows (still valid for the current schema),
// commits ProposedSchema to the table, calls Evolve with the schema the
// table now has, and Adds the record again. The proposal follows Iceberg's
// rules: new fields (nested too) are optional with fresh ids above the
// highest id seen; int->long, float->double and decimal precision widen;
// required columns a record may lack become optional; columns a newer
// schema drops stay. Anything else (string to int, a struct to a
// primitive, a decimal scale change) is an ErrInvalidRecord naming the
// column. Ids of existing columns never change. Evolve matches columns by
// name, so a catalog that assigns its own ids (UpdateSchema.UnionByNameWith
// does) is fine. Records of an older schema convert without any change:
// their missing columns get nulls, their narrower values widen.
//
// Several workers (one per partition) may share a table: each proposes
// against the schema it has, so two proposals can pick the same new ids.
// Commit a proposal with iceberg-go's UpdateSchema.UnionByNameWith against
// the table as the catalog has it now (it re-assigns ids to new columns
// and is a no-op for columns another worker already added), then Evolve
// every converter with the result. Changing a convert type of an existing
// table (string key to a schema key, none to flatten) only works where the
// old and new columns are compatible; otherwise its records are invalid.
//
// Only Avro schemas are decoded; a JSON Schema or Protobuf schema id makes
// the record invalid for now (Protobuf message indexes are not read).
//
// # Errors
//
// Add returns nil (the row is pending), an error wrapping ErrInvalidRecord
// (the record belongs in the dead-letter table: wrong magic byte, unknown
// schema id, truncated or malformed Avro, invalid UTF-8, incompatible
// schema), an error wrapping ErrSchemaChange, or another error (the schema
// registry is unreachable, ctx ended): then retry the same record later.
// In every error case nothing was appended.
package convert

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/hamba/avro/v2"

	"github.com/floe-io/floe/schema"
)

// Converter types (table.topic.convert.{value,key}.type).
const (
	TypeRaw            = "raw"
	TypeString         = "string"
	TypeBySchemaID     = "by_schema_id"
	TypeByLatestSchema = "by_latest_schema"
)

// Value transforms (table.topic.transform.value.type).
const (
	TransformNone            = "none"
	TransformFlatten         = "flatten"
	TransformFlattenDebezium = "flatten_debezium"
)

// Column names.
const (
	ColumnKey      = "_kafka_key"
	ColumnValue    = "_kafka_value"
	ColumnHeaders  = "_kafka_headers"
	ColumnMetadata = "_kafka_metadata"
	ColumnCDCOp    = "_cdc_op"
	ColumnError    = "_error" // dead-letter rows only
)

// reserved names cannot be flattened value fields.
var reserved = map[string]bool{ColumnKey: true, ColumnValue: true, ColumnHeaders: true, ColumnMetadata: true, ColumnCDCOp: true}

// DefaultLatestSchemaTTL is how long by_latest_schema trusts the subject's
// latest version before asking the registry again.
const DefaultLatestSchemaTTL = time.Minute

// Sentinel errors of Add; the returned error wraps one and says why.
var (
	// ErrInvalidRecord: the record cannot be converted; it goes to the
	// dead-letter table.
	ErrInvalidRecord = errors.New("convert: invalid record")
	// ErrSchemaChange: the record needs a newer table schema; see
	// ProposedSchema and Evolve.
	ErrSchemaChange = errors.New("convert: record needs a table schema change")
	// ErrPendingRows: Evolve was called with rows not yet flushed.
	ErrPendingRows = errors.New("convert: flush pending rows before evolving the schema")
)

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one Kafka record to convert. Add copies what it keeps, so the
// slices may be reused once Add returns.
type Record struct {
	Partition   int32
	Offset      int64
	TimestampMs int64
	Key, Value  []byte // nil for null
	Headers     []Header
}

// Config says how a topic's records map to rows.
type Config struct {
	// Topic names the default registry subjects: "<Topic>-value" and
	// "<Topic>-key" (Confluent's TopicNameStrategy).
	Topic string
	// ValueType and KeyType are raw, string, by_schema_id or
	// by_latest_schema; empty means raw for the value and string for the
	// key, as in AutoMQ.
	ValueType, KeyType string
	// ValueSubject and KeySubject override the subjects by_latest_schema
	// reads.
	ValueSubject, KeySubject string
	// Transform is none (the default), flatten or flatten_debezium. It
	// applies to the value; flatten needs a schema-based value type.
	Transform string
	// Registry fetches schemas; it may be nil when no schema-based type is
	// configured. Both of the schema package's clients cache by id.
	Registry schema.Client
	// LatestSchemaTTL: see DefaultLatestSchemaTTL (used when 0).
	LatestSchemaTTL time.Duration
	// LastColumnID is the table metadata's last-column-id when known: new
	// field ids start above it (and above the schema's highest id) so that
	// the id of a column dropped outside floe is never reused.
	LastColumnID int
	// Allocator for the Arrow builders; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
	// RequiredColumns are top-level columns every row must have a value
	// for (an upsert table's id columns): a new table's schema makes them
	// required, evolution never makes them optional, and a record whose
	// value for one is null or missing is an ErrInvalidRecord.
	RequiredColumns []string
	// CDCColumn, if set, is a top-level string column holding each row's
	// change operation: a record whose value there is null or not one of
	// CDCOp's is an ErrInvalidRecord.
	CDCColumn string
}

// CDCOp classifies a change operation of the CDC column: I, U, D
// (AutoMQ's cdc.field values) and Debezium's c, u, r, d, in either case.
// ok is false for anything else.
func CDCOp(op string) (isDelete, ok bool) {
	if len(op) != 1 {
		return false, false
	}
	switch op[0] {
	case 'D', 'd':
		return true, true
	case 'I', 'i', 'U', 'u', 'C', 'c', 'R', 'r':
		return false, true
	}
	return false, false
}

// Validate fills in defaults and checks the config.
func (c *Config) Validate() error {
	if c.ValueType == "" {
		c.ValueType = TypeRaw
	}
	if c.KeyType == "" {
		c.KeyType = TypeString
	}
	if c.Transform == "" {
		c.Transform = TransformNone
	}
	for _, t := range []string{c.ValueType, c.KeyType} {
		switch t {
		case TypeRaw, TypeString:
		case TypeBySchemaID, TypeByLatestSchema:
			if c.Registry == nil {
				return fmt.Errorf("convert: type %s needs a schema registry", t)
			}
		default:
			return fmt.Errorf("convert: unknown convert type %q (want raw, string, by_schema_id or by_latest_schema)", t)
		}
	}
	switch c.Transform {
	case TransformNone:
	case TransformFlatten, TransformFlattenDebezium:
		if c.ValueType != TypeBySchemaID && c.ValueType != TypeByLatestSchema {
			return fmt.Errorf("convert: transform %s needs a schema-based value type, not %s", c.Transform, c.ValueType)
		}
	default:
		return fmt.Errorf("convert: unknown transform %q (want none, flatten or flatten_debezium)", c.Transform)
	}
	if c.Topic == "" && ((c.ValueType == TypeByLatestSchema && c.ValueSubject == "") || (c.KeyType == TypeByLatestSchema && c.KeySubject == "")) {
		return errors.New("convert: by_latest_schema needs Topic or an explicit subject")
	}
	if c.ValueSubject == "" {
		c.ValueSubject = c.Topic + "-value"
	}
	if c.KeySubject == "" {
		c.KeySubject = c.Topic + "-key"
	}
	if c.LatestSchemaTTL <= 0 {
		c.LatestSchemaTTL = DefaultLatestSchemaTTL
	}
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	return nil
}

// Converter builds the Arrow rows of one table. It is not safe for
// concurrent use: run one per worker.
type Converter struct {
	cfg        Config
	key, value side
	now        func() time.Time

	table    *iceberg.Schema
	lastID   int // highest field id ever seen
	arrow    *arrow.Schema
	rb       *array.RecordBuilder
	plans    map[[2]*source]*plan
	proposed *iceberg.Schema

	rows, bytes int
	r           reader

	// checked are the builders of RequiredColumns and CDCColumn (nil when
	// the table lacks the column), checked after each row is appended.
	checked []checkedColumn
	// dropped are builder rows Add appended and then rejected; Flush
	// leaves them out (Arrow builders cannot take a row back).
	dropped []int
	built   int // rows in the builders, dropped ones included
}

// checkedColumn is a column every row must fill validly.
type checkedColumn struct {
	name string
	b    array.Builder
	cdc  bool
}

// New returns a converter for a table whose current schema is tableSchema,
// or, with nil, for a table to be created: Schema() then holds the Kafka
// columns (and, for by_latest_schema, the columns of the subject's latest
// schema if it exists). Create the table with Schema(); a catalog that
// re-assigns ids is fine, call Evolve with the created table's schema.
func New(ctx context.Context, cfg Config, tableSchema *iceberg.Schema) (*Converter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Converter{
		cfg:    cfg,
		key:    newSide("key", cfg.KeyType, cfg.KeySubject, TransformNone),
		value:  newSide("value", cfg.ValueType, cfg.ValueSubject, cfg.Transform),
		now:    time.Now,
		lastID: cfg.LastColumnID,
	}
	if tableSchema == nil {
		s, err := c.initialSchema(ctx)
		if err != nil {
			return nil, err
		}
		tableSchema = s
	}
	if err := c.setTable(tableSchema); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Converter) initialSchema(ctx context.Context) (*iceberg.Schema, error) {
	ksrc := c.key.fixedSource()
	if ksrc == nil {
		ksrc = nullSource
	}
	vsrc := c.value.fixedSource()
	if vsrc == nil {
		vsrc = nullSource
		if c.value.typ == TypeByLatestSchema {
			src, err := c.latestSource(ctx, &c.value)
			switch {
			case err == nil && src.err == nil:
				vsrc = src
			case err != nil && !errors.Is(err, ErrInvalidRecord):
				return nil, err // registry unreachable: let the caller retry
			}
		}
	}
	wants, err := c.wantFields(ksrc, vsrc)
	if err != nil {
		return nil, err
	}
	m := merger{nextID: c.lastID, newTable: true, required: c.cfg.RequiredColumns}
	var fields []iceberg.NestedField
	for _, want := range wants {
		if fields, err = m.mergeFields(fields, want, ""); err != nil {
			return nil, err
		}
	}
	for i := range fields {
		if slices.Contains(c.cfg.RequiredColumns, fields[i].Name) {
			fields[i].Required = true
		}
	}
	return iceberg.NewSchema(0, fields...), nil
}

// setTable adopts a table schema: new Arrow schema and builders, no plans.
func (c *Converter) setTable(s *iceberg.Schema) error {
	as, err := table.SchemaToArrowSchema(s, nil, true, false)
	if err != nil {
		return fmt.Errorf("convert: table schema to Arrow: %w", err)
	}
	if c.rb != nil {
		c.rb.Release()
	}
	c.table, c.arrow = s, as
	c.rb = array.NewRecordBuilder(c.cfg.Allocator, as)
	c.built, c.dropped = 0, c.dropped[:0]
	c.plans = make(map[[2]*source]*plan)
	c.proposed = nil
	c.lastID = max(c.lastID, s.HighestFieldID())
	c.checked = c.checked[:0]
	check := func(name string, cdc bool) {
		cc := checkedColumn{name: name, cdc: cdc}
		if i := fieldIndex(s.Fields(), name); i >= 0 {
			cc.b = c.rb.Field(i)
		}
		c.checked = append(c.checked, cc)
	}
	for _, name := range c.cfg.RequiredColumns {
		check(name, false)
	}
	if c.cfg.CDCColumn != "" {
		check(c.cfg.CDCColumn, true)
	}
	return nil
}

// Schema is the Iceberg schema rows are built for.
func (c *Converter) Schema() *iceberg.Schema { return c.table }

// ArrowSchema is the schema of Flush's records: iceberg-go's conversion of
// Schema() with field ids in the fields' metadata (PARQUET:field_id), as
// pqarrow needs them to write Iceberg data files.
func (c *Converter) ArrowSchema() *arrow.Schema { return c.arrow }

// ProposedSchema is, after Add returned ErrSchemaChange, the evolved schema
// to commit to the table (schema id = current + 1); nil otherwise.
func (c *Converter) ProposedSchema() *iceberg.Schema { return c.proposed }

// Evolve adopts the schema the table has after a commit (usually the
// proposal, possibly with other ids). Pending rows must be flushed first.
func (c *Converter) Evolve(committed *iceberg.Schema) error {
	if committed == nil {
		return errors.New("convert: Evolve with a nil schema")
	}
	if c.rows > 0 {
		return fmt.Errorf("%w (%d rows)", ErrPendingRows, c.rows)
	}
	return c.setTable(committed)
}

// Rows is the number of pending rows.
func (c *Converter) Rows() int { return c.rows }

// EstimatedBytes approximates the memory the pending rows take in the Arrow
// builders (payload bytes plus per-value overhead), for sizing files.
func (c *Converter) EstimatedBytes() int { return c.bytes }

// Flush returns the pending rows (schema ArrowSchema()) and starts a new
// batch; nil when there are none. The caller releases the record.
func (c *Converter) Flush() arrow.RecordBatch {
	if c.built == 0 {
		return nil
	}
	rec := c.rb.NewRecordBatch()
	dropped := c.dropped
	c.rows, c.bytes, c.built, c.dropped = 0, 0, 0, c.dropped[:0]
	if len(dropped) > 0 {
		return withoutRows(rec, dropped)
	}
	return rec
}

// withoutRows returns rec minus the rows at the ascending indexes drop
// (nil if none is left), releasing rec.
func withoutRows(rec arrow.RecordBatch, drop []int) arrow.RecordBatch {
	defer rec.Release()
	var parts []arrow.RecordBatch
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	from := 0
	for _, d := range append(drop, int(rec.NumRows())) {
		if d > from {
			parts = append(parts, rec.NewSlice(int64(from), int64(d)))
		}
		from = d + 1
	}
	if len(parts) == 0 {
		return nil
	}
	cols := make([]arrow.Array, rec.NumCols())
	var rows int64
	for _, p := range parts {
		rows += p.NumRows()
	}
	for i := range cols {
		chunks := make([]arrow.Array, len(parts))
		for j, p := range parts {
			chunks[j] = p.Column(i)
		}
		col, err := array.Concatenate(chunks, memory.DefaultAllocator)
		if err != nil {
			// Slices of one record have identical types: cannot happen.
			panic(fmt.Sprintf("convert: concatenating slices of one batch: %v", err))
		}
		defer col.Release()
		cols[i] = col
	}
	return array.NewRecordBatch(rec.Schema(), cols, rows)
}

// Release frees the builders; the converter is unusable afterwards.
func (c *Converter) Release() {
	if c.rb != nil {
		c.rb.Release()
		c.rb = nil
	}
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, args...))
}

// Add converts one record into a pending row. See the package doc for the
// errors; on any error nothing is appended. A Debezium tombstone (a null
// value under flatten_debezium) carries no row: Add returns nil and
// appends nothing.
func (c *Converter) Add(ctx context.Context, rec Record) error {
	if c.rb == nil {
		return errors.New("convert: Add after Release")
	}
	if rec.Value == nil && c.value.transform == TransformFlattenDebezium {
		return nil
	}
	ksrc, kdata, err := c.resolve(ctx, &c.key, rec.Key)
	if err != nil {
		return err
	}
	vsrc, vdata, err := c.resolve(ctx, &c.value, rec.Value)
	if err != nil {
		return err
	}
	p, err := c.planFor(ksrc, vsrc)
	if err != nil {
		return err
	}
	for i := range rec.Headers {
		if !utf8.ValidString(rec.Headers[i].Key) {
			return invalidf("header %d: key is not valid UTF-8", i)
		}
	}
	if err := p.key.check(&c.r, kdata); err != nil {
		return invalidf("key: %v", err)
	}
	if err := p.value.check(&c.r, vdata); err != nil {
		return invalidf("value: %v", err)
	}
	p.key.put(&c.r, kdata)
	p.value.put(&c.r, vdata)
	p.meta.put(&rec)
	p.headers.put(rec.Headers)
	for _, b := range p.nulls {
		b.AppendNull()
	}
	row := c.built
	c.built++
	if err := c.checkRow(row); err != nil {
		c.dropped = append(c.dropped, row)
		return err
	}
	c.rows++
	c.bytes += rowOverhead + len(rec.Key) + len(rec.Value) + c.arrow.NumFields()*columnOverhead
	for _, h := range rec.Headers {
		c.bytes += len(h.Key) + len(h.Value) + columnOverhead
	}
	return nil
}

// checkRow rejects the row just appended if a required column is null
// or the CDC column holds no known operation. The check reads the
// builders after the fact because a value's nullness is only known once
// it is decoded (a union branch, a field the writer schema lacks).
func (c *Converter) checkRow(row int) error {
	for _, cc := range c.checked {
		what := "table.topic.id.columns"
		if cc.cdc {
			what = "table.topic.cdc.field"
		}
		if cc.b == nil {
			return invalidf("the table has no column %s (%s)", cc.name, what)
		}
		if cc.b.IsNull(row) {
			return invalidf("column %s (%s) is null or missing", cc.name, what)
		}
		if cc.cdc {
			sb, ok := cc.b.(*array.StringBuilder)
			if !ok {
				return invalidf("column %s (%s) is %s, not a string", cc.name, what, cc.b.Type())
			}
			if op := sb.Value(row); !validCDCOp(op) {
				return invalidf("column %s (%s) holds %q; want I, U, D or Debezium's c, u, r, d", cc.name, what, truncate([]byte(op), 16))
			}
		}
	}
	return nil
}

func validCDCOp(op string) bool {
	_, ok := CDCOp(op)
	return ok
}

// Rough per-row and per-value costs in Arrow builders: offsets, validity
// bits, the metadata struct's fixed-width values.
const (
	rowOverhead    = 24
	columnOverhead = 5
)

// side is the key or the value: how its payloads decode, and its schemas.
type side struct {
	name      string
	typ       string
	subject   string
	transform string

	byID     map[int]*source
	latest   *source
	latestAt time.Time
}

func newSide(name, typ, subject, transform string) side {
	return side{name: name, typ: typ, subject: subject, transform: transform, byID: map[int]*source{}}
}

// source is what a payload was written with: a registry schema, or one of
// the sentinels below.
type source struct {
	id   int
	avro avro.Schema
	typ  iceberg.Type // the data's column type; nil when it carries none
	err  error        // the schema cannot be converted: its records are invalid
	env  *envelope    // flatten_debezium
}

var (
	rawSource    = &source{id: -1, typ: iceberg.PrimitiveTypes.Binary}
	stringSource = &source{id: -2, typ: iceberg.PrimitiveTypes.String}
	nullSource   = &source{id: -3} // a null payload of a schema-based type
)

func (s *side) fixedSource() *source {
	switch s.typ {
	case TypeRaw:
		return rawSource
	case TypeString:
		return stringSource
	}
	return nil
}

// maxCachedSources bounds the per-side cache, unknown ids included, so that
// garbage payloads naming random ids cannot grow it without end.
const maxCachedSources = 4096

// resolve finds a payload's source and the bytes its decoder reads.
func (c *Converter) resolve(ctx context.Context, s *side, payload []byte) (*source, []byte, error) {
	if src := s.fixedSource(); src != nil {
		return src, payload, nil
	}
	if payload == nil {
		return nullSource, nil, nil
	}
	if s.typ == TypeByLatestSchema {
		src, err := c.latestSource(ctx, s)
		if err != nil {
			return nil, nil, err
		}
		if id, ok := wireID(payload); ok && id == src.id {
			payload = payload[wireHeaderSize:]
		}
		return src, payload, nil
	}
	if len(payload) < wireHeaderSize {
		return nil, nil, invalidf("%s: %d bytes, too short for the schema registry wire format", s.name, len(payload))
	}
	if payload[0] != 0 {
		return nil, nil, invalidf("%s: magic byte %d, want 0 (schema registry wire format)", s.name, payload[0])
	}
	id, _ := wireID(payload)
	src, err := c.sourceByID(ctx, s, id)
	if err != nil {
		return nil, nil, err
	}
	return src, payload[wireHeaderSize:], nil
}

// wireHeaderSize is the Confluent wire format's magic byte and schema id.
// Protobuf payloads add message indexes after it; only Avro is decoded.
const wireHeaderSize = 5

func wireID(p []byte) (int, bool) {
	if len(p) < wireHeaderSize || p[0] != 0 {
		return 0, false
	}
	return int(int32(binary.BigEndian.Uint32(p[1:5]))), true
}

func (c *Converter) sourceByID(ctx context.Context, s *side, id int) (*source, error) {
	if src, ok := s.byID[id]; ok {
		if src.err != nil {
			return nil, src.err
		}
		return src, nil
	}
	sc, err := c.cfg.Registry.SchemaByID(ctx, id)
	if err != nil {
		if errors.Is(err, schema.ErrSchemaNotFound) {
			src := &source{id: id, err: invalidf("%s: schema id %d is not registered", s.name, id)}
			s.cache(src)
			return nil, src.err
		}
		return nil, fmt.Errorf("convert: %s: fetching schema %d: %w", s.name, id, err)
	}
	src, err := c.newSource(ctx, s, sc)
	if err != nil {
		return nil, err
	}
	s.cache(src)
	if src.err != nil {
		return nil, src.err
	}
	return src, nil
}

func (s *side) cache(src *source) {
	if len(s.byID) >= maxCachedSources {
		clear(s.byID)
	}
	s.byID[src.id] = src
}

// latestSource returns the subject's latest schema, asking the registry
// again once LatestSchemaTTL has passed. If the registry fails and a
// previous answer exists, that one is used.
func (c *Converter) latestSource(ctx context.Context, s *side) (*source, error) {
	now := c.now()
	if s.latest != nil && now.Sub(s.latestAt) < c.cfg.LatestSchemaTTL {
		return s.latestOrErr()
	}
	sc, err := c.cfg.Registry.LatestSchema(ctx, s.subject)
	if err != nil {
		if s.latest != nil {
			s.latestAt = now
			return s.latestOrErr()
		}
		if errors.Is(err, schema.ErrSubjectNotFound) {
			return nil, invalidf("%s: subject %q has no schema", s.name, s.subject)
		}
		return nil, fmt.Errorf("convert: %s: latest schema of %q: %w", s.name, s.subject, err)
	}
	src, ok := s.byID[sc.ID]
	if !ok {
		if src, err = c.newSource(ctx, s, sc); err != nil {
			return nil, err
		}
		s.cache(src)
	}
	s.latest, s.latestAt = src, now
	return s.latestOrErr()
}

func (s *side) latestOrErr() (*source, error) {
	if s.latest.err != nil {
		return nil, s.latest.err
	}
	return s.latest, nil
}

// newSource parses a registry schema. A schema floe cannot use makes a
// source whose records are all invalid; an error is returned only when the
// registry could not be read (the caller retries).
func (c *Converter) newSource(ctx context.Context, s *side, sc schema.Schema) (*source, error) {
	src := &source{id: sc.ID}
	if sc.Type != schema.TypeAvro {
		src.err = invalidf("%s: schema %d is %s; only Avro is decoded so far", s.name, sc.ID, sc.Type)
		return src, nil
	}
	as, err := schema.ParseAvro(ctx, c.cfg.Registry, sc)
	if err != nil {
		if len(sc.References) > 0 && !registryPermanent(err) {
			return nil, fmt.Errorf("convert: %s: schema %d: %w", s.name, sc.ID, err)
		}
		src.err = invalidf("%s: schema %d: %v", s.name, sc.ID, err)
		return src, nil
	}
	src.avro = as
	if s.transform == TransformFlattenDebezium {
		env, err := parseEnvelope(as)
		if err != nil {
			src.err = invalidf("%s: schema %d: %v", s.name, sc.ID, err)
			return src, nil
		}
		src.env = env
		return src, nil
	}
	t, err := icebergTypeOf(as)
	if err != nil {
		src.err = invalidf("%s: schema %d: %v", s.name, sc.ID, err)
		return src, nil
	}
	src.typ = t
	return src, nil
}

// registryPermanent reports registry errors that retrying will not fix.
// Resolving references reads the registry, so any other error there may be
// transient; a schema the registry accepted parses, so a parse error of a
// schema with references is not expected.
func registryPermanent(err error) bool {
	for _, e := range []error{schema.ErrSchemaNotFound, schema.ErrSubjectNotFound, schema.ErrVersionNotFound, schema.ErrInvalidSchema} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
