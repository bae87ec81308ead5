package convert

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
)

// metadataType is _kafka_metadata's type; the only required column.
func metadataType() iceberg.Type {
	return &iceberg.StructType{FieldList: []iceberg.NestedField{
		{Name: "partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		{Name: "offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		{Name: "timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
	}}
}

// headersType is _kafka_headers' type.
func headersType() iceberg.Type {
	return &iceberg.ListType{ElementRequired: true, Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
		{Name: "key", Type: iceberg.PrimitiveTypes.String, Required: true},
		{Name: "value", Type: iceberg.PrimitiveTypes.Binary},
	}}}
}

// flattens reports whether a value of this source becomes top-level columns.
func flattens(src *source) bool {
	if src.avro == nil {
		return false
	}
	_, ok := deref(src.avro).(*avro.RecordSchema)
	return ok
}

// wantFields lists the top-level fields (ids unset) that a record with
// these key and value sources needs. flatten_debezium returns one list per
// image type, to be merged in turn.
func (c *Converter) wantFields(ksrc, vsrc *source) ([][]iceberg.NestedField, error) {
	var base []iceberg.NestedField
	if ksrc.typ != nil {
		base = append(base, iceberg.NestedField{Name: ColumnKey, Type: ksrc.typ})
	}
	base = append(base,
		iceberg.NestedField{Name: ColumnHeaders, Type: headersType()},
		iceberg.NestedField{Name: ColumnMetadata, Type: metadataType(), Required: true},
	)
	flat := func(t iceberg.Type) ([]iceberg.NestedField, error) {
		st, _ := t.(*iceberg.StructType)
		if st == nil {
			return nil, nil
		}
		for _, f := range st.FieldList {
			if reserved[f.Name] {
				return nil, invalidf("value field %s collides with a reserved column", f.Name)
			}
		}
		return st.FieldList, nil
	}
	switch c.value.transform {
	case TransformFlattenDebezium:
		base = append(base, iceberg.NestedField{Name: ColumnCDCOp, Type: iceberg.PrimitiveTypes.String})
		env := vsrc.env
		if env == nil {
			return [][]iceberg.NestedField{base}, nil
		}
		var out [][]iceberg.NestedField
		for _, t := range []*iceberg.StructType{env.afterType, env.beforeType} {
			fields, err := flat(t)
			if err != nil {
				return nil, err
			}
			out = append(out, append(base[:len(base):len(base)], fields...))
		}
		return out, nil
	case TransformFlatten:
		if flattens(vsrc) {
			fields, err := flat(vsrc.typ)
			if err != nil {
				return nil, err
			}
			return [][]iceberg.NestedField{append(base, fields...)}, nil
		}
	}
	if vsrc.typ != nil {
		base = append(base, iceberg.NestedField{Name: ColumnValue, Type: vsrc.typ})
	}
	return [][]iceberg.NestedField{base}, nil
}

// maxPlans bounds the plan cache (one per key/value schema pair).
const maxPlans = 1024

// planFor returns the plan for records of these sources, or
// ErrSchemaChange with a proposal, or ErrInvalidRecord when the table
// cannot take them.
func (c *Converter) planFor(ksrc, vsrc *source) (*plan, error) {
	pk := [2]*source{ksrc, vsrc}
	if p, ok := c.plans[pk]; ok {
		return p, nil
	}
	wants, err := c.wantFields(ksrc, vsrc)
	if err != nil {
		return nil, err
	}
	m := merger{nextID: c.lastID, required: c.cfg.RequiredColumns}
	fields := c.table.Fields()
	for _, want := range wants {
		if fields, err = m.mergeFields(fields, want, ""); err != nil {
			return nil, invalidf("%s", describeSources(ksrc, vsrc, err))
		}
	}
	if m.changed {
		c.proposed = iceberg.NewSchemaWithIdentifiers(c.table.ID+1, c.table.IdentifierFieldIDs, fields...)
		return nil, fmt.Errorf("%w: %s", ErrSchemaChange, describeSources(ksrc, vsrc, nil))
	}
	p, err := c.compilePlan(ksrc, vsrc)
	if err != nil {
		// The merge accepted the data, so this is a bug; the record still
		// goes to the dead-letter table rather than stopping the pipeline.
		return nil, invalidf("internal error: %v", err)
	}
	if len(c.plans) >= maxPlans {
		clear(c.plans)
	}
	c.plans[pk] = p
	return p, nil
}

func describeSources(ksrc, vsrc *source, err error) string {
	s := fmt.Sprintf("key schema %s, value schema %s", sourceName(ksrc), sourceName(vsrc))
	if err != nil {
		return s + ": " + err.Error()
	}
	return s + " need new columns or wider types"
}

func sourceName(s *source) string {
	switch s {
	case rawSource:
		return "raw"
	case stringSource:
		return "string"
	case nullSource:
		return "null"
	}
	return fmt.Sprint(s.id)
}

// plan writes the rows of records with one key source and one value source.
type plan struct {
	key, value payloadDecoder
	meta       *metaWriter
	headers    *headersWriter
	nulls      []array.Builder // columns nothing feeds
}

func (c *Converter) compilePlan(ksrc, vsrc *source) (*plan, error) {
	fields := c.table.Fields()
	builders := c.rb.Fields()
	fed := make([]bool, len(fields))
	col := func(name string) int {
		i := fieldIndex(fields, name)
		if i >= 0 {
			fed[i] = true
		}
		return i
	}
	p := &plan{}
	var err error
	if p.key, err = payloadFor(ksrc, ColumnKey, fields, builders, col); err != nil {
		return nil, err
	}
	switch {
	case c.value.transform == TransformFlattenDebezium:
		p.value, err = envelopeFor(vsrc, fields, builders, col)
	case c.value.transform == TransformFlatten && flattens(vsrc):
		var rd *recordDec
		st, children := valueColumns(fields, builders, col)
		rd, err = compiler{}.record(deref(vsrc.avro).(*avro.RecordSchema), st, nil, children, "")
		p.value = avroPayload{rd}
	default:
		p.value, err = payloadFor(vsrc, ColumnValue, fields, builders, col)
	}
	if err != nil {
		return nil, err
	}
	mi, hi := col(ColumnMetadata), col(ColumnHeaders)
	if mi < 0 || hi < 0 {
		return nil, errors.New("table lacks the metadata or headers column")
	}
	if p.meta, err = newMetaWriter(fields[mi].Type, builders[mi]); err != nil {
		return nil, err
	}
	if p.headers, err = newHeadersWriter(fields[hi].Type, builders[hi]); err != nil {
		return nil, err
	}
	for i, f := range fed {
		if !f {
			p.nulls = append(p.nulls, builders[i])
		}
	}
	return p, nil
}

// valueColumns is the struct of the table's top-level columns a flattened
// value may feed (all but the reserved ones), with their builders.
func valueColumns(fields []iceberg.NestedField, builders []array.Builder, col func(string) int) (*iceberg.StructType, *structChildren) {
	st := &iceberg.StructType{}
	children := &structChildren{}
	for i, f := range fields {
		if reserved[f.Name] {
			continue
		}
		col(f.Name)
		st.FieldList = append(st.FieldList, f)
		children.b = append(children.b, builders[i])
	}
	return st, children
}

// payloadFor compiles a key or a non-flattened value into its column.
func payloadFor(src *source, column string, fields []iceberg.NestedField, builders []array.Builder, col func(string) int) (payloadDecoder, error) {
	switch {
	case src == nullSource:
		return nonePayload{}, nil
	case src.avro != nil && src.typ == nil:
		return avroPayload{skipper{src.avro}}, nil // a data-less schema: check the bytes only
	}
	i := col(column)
	if i < 0 {
		return nil, fmt.Errorf("table lacks column %s", column)
	}
	switch src {
	case rawSource:
		if b, ok := builders[i].(*array.BinaryBuilder); ok {
			return rawPayload{b}, nil
		}
		return nil, fmt.Errorf("column %s is %s, not binary", column, fields[i].Type)
	case stringSource:
		if b, ok := builders[i].(*array.StringBuilder); ok {
			return stringPayload{b}, nil
		}
		return nil, fmt.Errorf("column %s is %s, not string", column, fields[i].Type)
	}
	dec, err := compiler{}.compile(src.avro, fields[i].Type, builders[i], column)
	if err != nil {
		return nil, err
	}
	return avroPayload{dec}, nil
}

// payloadDecoder checks a whole key or value, then appends it.
type payloadDecoder interface {
	check(r *reader, data []byte) error
	put(r *reader, data []byte)
}

type nonePayload struct{}

func (nonePayload) check(*reader, []byte) error { return nil }
func (nonePayload) put(*reader, []byte)         {}

type rawPayload struct{ b *array.BinaryBuilder }

func (rawPayload) check(*reader, []byte) error { return nil }

func (p rawPayload) put(_ *reader, data []byte) {
	if data == nil {
		p.b.AppendNull()
	} else {
		p.b.Append(data)
	}
}

type stringPayload struct{ b *array.StringBuilder }

func (stringPayload) check(_ *reader, data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	return nil
}

func (p stringPayload) put(_ *reader, data []byte) {
	if data == nil {
		p.b.AppendNull()
	} else {
		p.b.BinaryBuilder.Append(data)
	}
}

type avroPayload struct{ dec decoder }

func (p avroPayload) check(r *reader, data []byte) error {
	r.reset(data)
	p.dec.check(r)
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d bytes left over after the Avro datum", len(r.b))
	}
	return nil
}

func (p avroPayload) put(r *reader, data []byte) {
	r.reset(data)
	p.dec.put(r)
}

// metaWriter fills _kafka_metadata; children it does not know get nulls.
type metaWriter struct {
	sb                *array.StructBuilder
	partition, offset func(int64)
	timestamp         *array.TimestampBuilder
	nulls             []array.Builder
}

func newMetaWriter(t iceberg.Type, b array.Builder) (*metaWriter, error) {
	st, ok1 := t.(*iceberg.StructType)
	sb, ok2 := b.(*array.StructBuilder)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%s is %s, not a struct", ColumnMetadata, t)
	}
	w := &metaWriter{sb: sb}
	var err error
	for i, f := range st.FieldList {
		fb := sb.FieldBuilder(i)
		switch f.Name {
		case "partition":
			w.partition, err = intAppender(fb)
		case "offset":
			if _, ok := fb.(*array.Int64Builder); !ok {
				return nil, fmt.Errorf("%s.offset is %s, not long", ColumnMetadata, f.Type)
			}
			w.offset, err = intAppender(fb)
		case "timestamp":
			tb, ok := fb.(*array.TimestampBuilder)
			if !ok || tb.Type().(*arrow.TimestampType).Unit != arrow.Microsecond {
				err = fmt.Errorf("%s.timestamp is %s, not timestamptz", ColumnMetadata, f.Type)
			}
			w.timestamp = tb
		default:
			w.nulls = append(w.nulls, fb)
		}
		if err != nil {
			return nil, err
		}
	}
	if w.partition == nil || w.offset == nil || w.timestamp == nil {
		return nil, fmt.Errorf("%s lacks partition, offset or timestamp", ColumnMetadata)
	}
	return w, nil
}

func (w *metaWriter) put(rec *Record) {
	w.sb.Append(true)
	w.partition(int64(rec.Partition))
	w.offset(rec.Offset)
	w.timestamp.Append(arrow.Timestamp(rec.TimestampMs * 1000))
	for _, b := range w.nulls {
		b.AppendNull()
	}
}

// headersWriter fills _kafka_headers.
type headersWriter struct {
	lb    *array.ListBuilder
	sb    *array.StructBuilder
	key   *array.StringBuilder
	value *array.BinaryBuilder
	nulls []array.Builder
}

func newHeadersWriter(t iceberg.Type, b array.Builder) (*headersWriter, error) {
	bad := fmt.Errorf("%s is %s, not list<struct<key: string, value: binary>>", ColumnHeaders, t)
	lt, ok1 := t.(*iceberg.ListType)
	lb, ok2 := b.(*array.ListBuilder)
	if !ok1 || !ok2 {
		return nil, bad
	}
	st, ok1 := lt.Element.(*iceberg.StructType)
	sb, ok2 := lb.ValueBuilder().(*array.StructBuilder)
	if !ok1 || !ok2 {
		return nil, bad
	}
	w := &headersWriter{lb: lb, sb: sb}
	for i, f := range st.FieldList {
		fb := sb.FieldBuilder(i)
		switch f.Name {
		case "key":
			w.key, _ = fb.(*array.StringBuilder)
		case "value":
			w.value, _ = fb.(*array.BinaryBuilder)
		default:
			w.nulls = append(w.nulls, fb)
		}
	}
	if w.key == nil || w.value == nil {
		return nil, bad
	}
	return w, nil
}

func (w *headersWriter) put(hs []Header) {
	w.lb.Append(true)
	for _, h := range hs {
		w.sb.Append(true)
		w.key.Append(h.Key)
		if h.Value == nil {
			w.value.AppendNull()
		} else {
			w.value.Append(h.Value)
		}
		for _, b := range w.nulls {
			b.AppendNull()
		}
	}
}

// envelope locates a Debezium envelope's fields.
type envelope struct {
	rec                   *avro.RecordSchema
	before, after, op     int // field indexes
	beforeRec, afterRec   *avro.RecordSchema
	beforeType, afterType *iceberg.StructType // nil when the image has no data fields
}

func parseEnvelope(s avro.Schema) (*envelope, error) {
	rec, ok := deref(s).(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("flatten_debezium needs a Debezium envelope record, the value is Avro %s", s.Type())
	}
	env := &envelope{rec: rec, before: -1, after: -1, op: -1}
	for i, f := range rec.Fields() {
		switch f.Name() {
		case "before":
			env.before = i
		case "after":
			env.after = i
		case "op":
			env.op = i
		}
	}
	if env.before < 0 || env.after < 0 || env.op < 0 {
		return nil, fmt.Errorf("record %s is not a Debezium envelope (before, after and op fields)", rec.FullName())
	}
	if _, _, err := opBranches(rec.Fields()[env.op].Type()); err != nil {
		return nil, err
	}
	var err error
	for _, im := range []struct {
		idx int
		rec **avro.RecordSchema
		typ **iceberg.StructType
	}{{env.before, &env.beforeRec, &env.beforeType}, {env.after, &env.afterRec, &env.afterType}} {
		f := rec.Fields()[im.idx]
		if *im.rec, _, err = imageBranches(f.Type()); err != nil {
			return nil, fmt.Errorf("envelope field %s: %w", f.Name(), err)
		}
		t, err := icebergTypeOf(*im.rec)
		if err != nil {
			return nil, fmt.Errorf("envelope field %s: %w", f.Name(), err)
		}
		*im.typ, _ = t.(*iceberg.StructType)
	}
	return env, nil
}

// imageBranches accepts a record or a union of null and a record, and
// returns the record and, for a union, the index of its null branch (-1
// for a plain record).
func imageBranches(s avro.Schema) (*avro.RecordSchema, int, error) {
	switch s := deref(s).(type) {
	case *avro.RecordSchema:
		return s, -1, nil
	case *avro.UnionSchema:
		var rec *avro.RecordSchema
		nullIdx := -1
		for i, b := range s.Types() {
			switch b := deref(b).(type) {
			case *avro.NullSchema:
				nullIdx = i
			case *avro.RecordSchema:
				if rec != nil {
					return nil, 0, errors.New("an image union has two record branches")
				}
				rec = b
			default:
				return nil, 0, fmt.Errorf("an image union has a %s branch", b.Type())
			}
		}
		if rec != nil && len(s.Types()) <= 2 {
			return rec, nullIdx, nil
		}
	}
	return nil, 0, fmt.Errorf("an image must be a record or [null, record], not %s", s.Type())
}

// opBranches accepts string or a union of null and string; it returns the
// null branch index (-1 if none) and the string branch index (-1 for a
// plain string).
func opBranches(s avro.Schema) (nullIdx, strIdx int, err error) {
	switch s := deref(s).(type) {
	case *avro.PrimitiveSchema:
		if s.Type() == avro.String {
			return -1, -1, nil
		}
	case *avro.UnionSchema:
		nullIdx, strIdx = -1, -1
		for i, b := range s.Types() {
			switch deref(b).Type() {
			case avro.Null:
				nullIdx = i
			case avro.String:
				strIdx = i
			default:
				strIdx = -2
			}
		}
		if strIdx >= 0 && len(s.Types()) <= 2 {
			return nullIdx, strIdx, nil
		}
	}
	return 0, 0, fmt.Errorf("envelope field op must be a string, not %s", s.Type())
}

func envelopeFor(src *source, fields []iceberg.NestedField, builders []array.Builder, col func(string) int) (payloadDecoder, error) {
	opIdx := col(ColumnCDCOp)
	if src == nullSource || src.env == nil {
		return nonePayload{}, nil // not reached: Add skips tombstones
	}
	if opIdx < 0 {
		return nil, fmt.Errorf("table lacks column %s", ColumnCDCOp)
	}
	op, ok := builders[opIdx].(*array.StringBuilder)
	if !ok {
		return nil, fmt.Errorf("column %s is %s, not string", ColumnCDCOp, fields[opIdx].Type)
	}
	st, children := valueColumns(fields, builders, col)
	env := src.env
	d := &envelopeDec{env: env, op: op, imageCols: children.b}
	d.opNull, d.opStr, _ = opBranches(env.rec.Fields()[env.op].Type())
	_, d.beforeNull, _ = imageBranches(env.rec.Fields()[env.before].Type())
	_, d.afterNull, _ = imageBranches(env.rec.Fields()[env.after].Type())
	var err error
	if env.beforeType != nil {
		if d.before, err = (compiler{}).record(env.beforeRec, st, nil, children, ""); err != nil {
			return nil, err
		}
	}
	if env.afterType != nil {
		if d.after, err = (compiler{}).record(env.afterRec, st, nil, children, ""); err != nil {
			return nil, err
		}
	}
	return avroPayload{d}, nil
}

// envelopeDec decodes a Debezium envelope: check walks it and remembers
// where the images and op are, put writes the after image (the before
// image for a delete) and the op.
type envelopeDec struct {
	env                   *envelope
	op                    *array.StringBuilder
	imageCols             []array.Builder
	before, after         *recordDec // nil: the image has no data fields
	beforeNull, afterNull int        // null branch of the image union, -1 if none
	opNull, opStr         int        // branches of the op union, -1 for a plain string

	// Set by check, read by put.
	hasBefore, hasAfter, hasOp bool
	beforeData, afterData      []byte
	opVal                      []byte
	sub                        reader
}

func (d *envelopeDec) check(r *reader) {
	d.hasBefore, d.hasAfter, d.hasOp = false, false, false
	for i, f := range d.env.rec.Fields() {
		if r.err != nil {
			return
		}
		switch i {
		case d.env.before:
			d.beforeData, d.hasBefore = d.checkImage(r, d.env.beforeRec, d.before, d.beforeNull)
		case d.env.after:
			d.afterData, d.hasAfter = d.checkImage(r, d.env.afterRec, d.after, d.afterNull)
		case d.env.op:
			d.checkOp(r)
		default:
			skip(r, f.Type())
		}
	}
}

// checkImage validates one image and returns its bytes, and false when it
// is null.
func (d *envelopeDec) checkImage(r *reader, rec *avro.RecordSchema, dec *recordDec, nullIdx int) ([]byte, bool) {
	if nullIdx >= 0 {
		i := r.long()
		if r.err != nil {
			return nil, false
		}
		if i < 0 || i > 1 {
			r.failf("image union index %d out of range", i)
			return nil, false
		}
		if int(i) == nullIdx {
			return nil, false
		}
	}
	start := r.b
	if dec != nil {
		dec.check(r)
	} else {
		skip(r, rec)
	}
	if r.err != nil {
		return nil, false
	}
	return start[: len(start)-len(r.b) : len(start)-len(r.b)], true
}

func (d *envelopeDec) checkOp(r *reader) {
	if d.opStr >= 0 {
		i := r.long()
		if r.err != nil {
			return
		}
		if i < 0 || i > 1 {
			r.failf("op union index %d out of range", i)
			return
		}
		if int(i) == d.opNull {
			return
		}
	}
	v := r.bytes()
	if r.err != nil {
		return
	}
	if !utf8.Valid(v) {
		r.failf("op is not valid UTF-8")
		return
	}
	d.opVal, d.hasOp = v, true
}

func (d *envelopeDec) put(*reader) {
	switch {
	case d.hasAfter && d.after != nil:
		d.sub.reset(d.afterData)
		d.after.put(&d.sub)
	case !d.hasAfter && d.hasBefore && d.before != nil:
		d.sub.reset(d.beforeData)
		d.before.put(&d.sub)
	default:
		for _, b := range d.imageCols {
			b.AppendNull()
		}
	}
	if !d.hasOp {
		d.op.AppendNull()
	} else {
		d.op.BinaryBuilder.Append(d.opVal)
	}
}
