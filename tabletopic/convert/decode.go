package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
)

// A decoder reads one Avro datum of its writer schema. Add runs check over
// a whole record before anything is appended, then put: so a malformed
// record leaves the builders untouched, and put, which only runs on data
// check accepted, cannot fail half-way through a row.
type decoder interface {
	// check consumes and validates one datum; problems go to r.err.
	check(r *reader)
	// put consumes one datum and appends it to the bound builder.
	put(r *reader)
}

// compiler binds a writer schema to the table's column types and Arrow
// builders. Type mismatches here mean the merge let through something the
// decoders cannot write, a bug reported as an error, not a panic.
type compiler struct{}

func (c compiler) compile(w avro.Schema, t iceberg.Type, b array.Builder, path string) (decoder, error) {
	w = deref(w)
	switch w := w.(type) {
	case *avro.UnionSchema:
		return c.union(w, t, b, path)
	case *avro.RecordSchema:
		tt, ok1 := t.(*iceberg.StructType)
		sb, ok2 := b.(*array.StructBuilder)
		if !ok1 || !ok2 {
			return nil, mismatch(path, w, t)
		}
		return c.record(w, tt, sb, nestedChildren{sb}, path)
	case *avro.ArraySchema:
		tt, ok1 := t.(*iceberg.ListType)
		lb, ok2 := b.(*array.ListBuilder)
		if !ok1 || !ok2 {
			return nil, mismatch(path, w, t)
		}
		item, err := c.compile(w.Items(), tt.Element, lb.ValueBuilder(), path+".element")
		if err != nil {
			return nil, err
		}
		return &arrayDec{lb: lb, item: item}, nil
	case *avro.MapSchema:
		tt, ok1 := t.(*iceberg.MapType)
		mb, ok2 := b.(*array.MapBuilder)
		if !ok1 || !ok2 {
			return nil, mismatch(path, w, t)
		}
		keys, ok := mb.KeyBuilder().(*array.StringBuilder)
		if !ok {
			return nil, mismatch(path+".key", w, tt.KeyType)
		}
		value, err := c.compile(w.Values(), tt.ValueType, mb.ItemBuilder(), path+".value")
		if err != nil {
			return nil, err
		}
		return &mapDec{mb: mb, keys: keys, value: value}, nil
	case *avro.EnumSchema:
		sb, ok := b.(*array.StringBuilder)
		if !ok {
			return nil, mismatch(path, w, t)
		}
		d := &enumDec{b: sb}
		for _, s := range w.Symbols() {
			d.symbols = append(d.symbols, []byte(s))
		}
		return d, nil
	case *avro.FixedSchema:
		if l := w.Logical(); l != nil && l.Type() == avro.Decimal {
			return c.decimal(w.Size(), t, b, path, w)
		}
		switch b := b.(type) {
		case *array.FixedSizeBinaryBuilder:
			if b.Type().(*arrow.FixedSizeBinaryType).ByteWidth != w.Size() {
				return nil, mismatch(path, w, t)
			}
			return &fixedDec{size: w.Size(), fb: b}, nil
		case *array.BinaryBuilder:
			return &fixedDec{size: w.Size(), bb: b}, nil
		}
		return nil, mismatch(path, w, t)
	case *avro.PrimitiveSchema:
		return c.primitive(w, t, b, path)
	}
	return nil, mismatch(path, w, t)
}

func mismatch(path string, w avro.Schema, t iceberg.Type) error {
	return fmt.Errorf("%s: cannot write Avro %s into %v", path, w.Type(), t)
}

// record compiles a record into a struct builder's children. sb is nil for
// a flattened value, whose fields are top-level columns: then parent
// supplies the builders by field name.
func (c compiler) record(w *avro.RecordSchema, t *iceberg.StructType, sb *array.StructBuilder, children childBuilders, path string) (*recordDec, error) {
	d := &recordDec{sb: sb}
	fed := make(map[string]bool, len(w.Fields()))
	for _, f := range w.Fields() {
		ft, err := icebergTypeOf(f.Type())
		if err != nil {
			return nil, err
		}
		if ft == nil {
			d.fields = append(d.fields, skipper{f.Type()})
			continue
		}
		i := fieldIndex(t.FieldList, f.Name())
		if i < 0 {
			return nil, fmt.Errorf("%s: field %s has no column", path, f.Name())
		}
		dec, err := c.compile(f.Type(), t.FieldList[i].Type, children.child(i), join(path, f.Name()))
		if err != nil {
			return nil, err
		}
		d.fields = append(d.fields, dec)
		fed[f.Name()] = true
	}
	for i, tf := range t.FieldList {
		if !fed[tf.Name] {
			d.nulls = append(d.nulls, children.child(i))
		}
	}
	return d, nil
}

// childBuilders gives the builder of a struct's i-th field.
type childBuilders interface{ child(i int) array.Builder }

// nestedChildren are a struct column's children.
type nestedChildren struct{ sb *array.StructBuilder }

func (c nestedChildren) child(i int) array.Builder { return c.sb.FieldBuilder(i) }

// structChildren are top-level columns standing for a flattened value's fields.
type structChildren struct{ b []array.Builder }

func (c *structChildren) child(i int) array.Builder { return c.b[i] }

func fieldIndex(fields []iceberg.NestedField, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func (c compiler) union(w *avro.UnionSchema, t iceberg.Type, b array.Builder, path string) (decoder, error) {
	branchTypes := make([]iceberg.Type, len(w.Types()))
	for i, bs := range w.Types() {
		bt, err := icebergTypeOf(bs)
		if err != nil {
			return nil, err
		}
		branchTypes[i] = bt
	}
	d := &unionDec{null: b, branches: make([]decoder, len(w.Types()))}
	if !isComplexUnion(branchTypes) {
		for i, bs := range w.Types() {
			if branchTypes[i] == nil {
				if _, isNull := deref(bs).(*avro.NullSchema); !isNull {
					d.branches[i] = skipper{bs} // data-less branch: a null value
				}
				continue
			}
			dec, err := c.compile(bs, t, b, path)
			if err != nil {
				return nil, err
			}
			d.branches[i] = dec
		}
		return d, nil
	}
	// Several data branches: the tag struct.
	tt, ok1 := t.(*iceberg.StructType)
	sb, ok2 := b.(*array.StructBuilder)
	if !ok1 || !ok2 {
		return nil, mismatch(path, w, t)
	}
	tagIdx := fieldIndex(tt.FieldList, unionTagName)
	if tagIdx < 0 {
		return nil, fmt.Errorf("%s: union struct has no %s field", path, unionTagName)
	}
	tag, err := intAppender(sb.FieldBuilder(tagIdx))
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", path, unionTagName, err)
	}
	members := unionMembers(w)
	for i, bs := range w.Types() {
		k := members[i]
		if k < 0 {
			continue // null: the whole struct is null
		}
		m := &unionMemberDec{sb: sb, tag: tag, k: int64(k)}
		fi := fieldIndex(tt.FieldList, unionFieldName(k))
		if branchTypes[i] != nil {
			if fi < 0 {
				return nil, fmt.Errorf("%s: union member %s has no column", path, unionFieldName(k))
			}
			dec, err := c.compile(bs, tt.FieldList[fi].Type, sb.FieldBuilder(fi), join(path, unionFieldName(k)))
			if err != nil {
				return nil, err
			}
			m.value = dec
		} else {
			m.value = skipper{bs}
		}
		for j := range tt.FieldList {
			if j != tagIdx && (j != fi || branchTypes[i] == nil) {
				m.nulls = append(m.nulls, sb.FieldBuilder(j))
			}
		}
		d.branches[i] = m
	}
	return d, nil
}

func (c compiler) primitive(w *avro.PrimitiveSchema, t iceberg.Type, b array.Builder, path string) (decoder, error) {
	var logical avro.LogicalType
	if l := w.Logical(); l != nil {
		logical = l.Type()
	}
	switch logical {
	case avro.Decimal:
		return c.decimal(0, t, b, path, w)
	case avro.UUID:
		switch b := b.(type) {
		case *array.StringBuilder:
			return &stringDec{b: b}, nil
		case *extensions.UUIDBuilder:
			return &uuidDec{b: b.ExtensionBuilder.Builder.(*array.FixedSizeBinaryBuilder)}, nil
		case *array.ExtensionBuilder:
			if fb, ok := b.Builder.(*array.FixedSizeBinaryBuilder); ok {
				return &uuidDec{b: fb}, nil
			}
		}
		return nil, mismatch(path, w, t)
	case avro.Date:
		if b, ok := b.(*array.Date32Builder); ok {
			return &dateDec{b: b}, nil
		}
		return nil, mismatch(path, w, t)
	case avro.TimeMillis, avro.TimeMicros:
		if b, ok := b.(*array.Time64Builder); ok {
			return &timeDec{b: b, millis: logical == avro.TimeMillis}, nil
		}
		return nil, mismatch(path, w, t)
	case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		tb, ok := b.(*array.TimestampBuilder)
		if !ok {
			return nil, mismatch(path, w, t)
		}
		tz := tb.Type().(*arrow.TimestampType).TimeZone != ""
		local := logical == avro.LocalTimestampMillis || logical == avro.LocalTimestampMicros
		if tz == local || tb.Type().(*arrow.TimestampType).Unit != arrow.Microsecond {
			return nil, mismatch(path, w, t)
		}
		return &timestampDec{b: tb, millis: logical == avro.TimestampMillis || logical == avro.LocalTimestampMillis}, nil
	}
	switch w.Type() {
	case avro.Boolean:
		if b, ok := b.(*array.BooleanBuilder); ok {
			return &boolDec{b: b}, nil
		}
	case avro.Int:
		switch b := b.(type) {
		case *array.Int32Builder:
			return &intDec{b: b}, nil
		case *array.Int64Builder:
			return &longDec{b: b, int32: true}, nil
		}
	case avro.Long:
		if b, ok := b.(*array.Int64Builder); ok {
			return &longDec{b: b}, nil
		}
	case avro.Float:
		switch b := b.(type) {
		case *array.Float32Builder:
			return &floatDec{b: b}, nil
		case *array.Float64Builder:
			return &doubleDec{b: b, float32: true}, nil
		}
	case avro.Double:
		if b, ok := b.(*array.Float64Builder); ok {
			return &doubleDec{b: b}, nil
		}
	case avro.String:
		if b, ok := b.(*array.StringBuilder); ok {
			return &stringDec{b: b}, nil
		}
	case avro.Bytes:
		if b, ok := b.(*array.BinaryBuilder); ok {
			return &bytesDec{b: b}, nil
		}
	}
	return nil, mismatch(path, w, t)
}

func (c compiler) decimal(fixedSize int, t iceberg.Type, b array.Builder, path string, w avro.Schema) (decoder, error) {
	db, ok := b.(*array.Decimal128Builder)
	if !ok {
		return nil, mismatch(path, w, t)
	}
	return &decimalDec{b: db, size: fixedSize, precision: db.Type().(*arrow.Decimal128Type).Precision}, nil
}

// intAppender returns a function appending an integer to an Int32 or Int64
// builder (a column may have been widened from int to long).
func intAppender(b array.Builder) (func(int64), error) {
	switch b := b.(type) {
	case *array.Int32Builder:
		return func(v int64) { b.Append(int32(v)) }, nil
	case *array.Int64Builder:
		return b.Append, nil
	}
	return nil, fmt.Errorf("integer column has Arrow type %s", b.Type())
}

// skipper consumes a datum of any schema, for fields that have no column.
type skipper struct{ s avro.Schema }

func (d skipper) check(r *reader) { skip(r, d.s) }
func (d skipper) put(r *reader)   { skip(r, d.s) }

func skip(r *reader, s avro.Schema) {
	if r.err != nil {
		return
	}
	switch s := deref(s).(type) {
	case *avro.NullSchema:
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Boolean:
			r.boolean()
		case avro.Int, avro.Long:
			r.long()
		case avro.Float:
			r.fixed(4)
		case avro.Double:
			r.fixed(8)
		case avro.String, avro.Bytes:
			r.bytes()
		}
	case *avro.EnumSchema:
		if i := r.long(); r.err == nil && (i < 0 || i >= int64(len(s.Symbols()))) {
			r.failf("enum index %d out of range", i)
		}
	case *avro.FixedSchema:
		r.fixed(s.Size())
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			skip(r, f.Type())
		}
	case *avro.ArraySchema:
		for n := r.blockCount(); n > 0 && r.err == nil; n = r.blockCount() {
			for range n {
				skip(r, s.Items())
			}
		}
	case *avro.MapSchema:
		for n := r.blockCount(); n > 0 && r.err == nil; n = r.blockCount() {
			for range n {
				r.bytes()
				skip(r, s.Values())
			}
		}
	case *avro.UnionSchema:
		i := r.long()
		if r.err == nil {
			if i < 0 || i >= int64(len(s.Types())) {
				r.failf("union index %d out of range", i)
				return
			}
			skip(r, s.Types()[i])
		}
	default:
		r.failf("cannot skip Avro %s", s.Type())
	}
}

type recordDec struct {
	sb     *array.StructBuilder // nil when the fields are top-level columns
	fields []decoder            // in writer order
	nulls  []array.Builder      // columns no writer field feeds
}

func (d *recordDec) check(r *reader) {
	for _, f := range d.fields {
		if r.err != nil {
			return
		}
		f.check(r)
	}
}

func (d *recordDec) put(r *reader) {
	if d.sb != nil {
		d.sb.Append(true)
	}
	for _, f := range d.fields {
		f.put(r)
	}
	for _, b := range d.nulls {
		b.AppendNull()
	}
}

// unionDec reads the branch index; a nil branch is the null one.
type unionDec struct {
	null     array.Builder
	branches []decoder
}

func (d *unionDec) index(r *reader) int {
	i := r.long()
	if r.err != nil {
		return -1
	}
	if i < 0 || i >= int64(len(d.branches)) {
		r.failf("union index %d out of range", i)
		return -1
	}
	return int(i)
}

func (d *unionDec) check(r *reader) {
	if i := d.index(r); i >= 0 && d.branches[i] != nil {
		d.branches[i].check(r)
	}
}

func (d *unionDec) put(r *reader) {
	i := d.index(r)
	if i < 0 {
		return
	}
	switch br := d.branches[i].(type) {
	case nil:
		d.null.AppendNull()
	case skipper:
		br.put(r)
		d.null.AppendNull()
	default:
		br.put(r)
	}
}

// unionMemberDec writes one branch of a complex union as the tag struct.
type unionMemberDec struct {
	sb    *array.StructBuilder
	tag   func(int64)
	k     int64
	value decoder
	nulls []array.Builder
}

func (d *unionMemberDec) check(r *reader) { d.value.check(r) }

func (d *unionMemberDec) put(r *reader) {
	d.sb.Append(true)
	d.tag(d.k)
	d.value.put(r)
	for _, b := range d.nulls {
		b.AppendNull()
	}
}

type arrayDec struct {
	lb   *array.ListBuilder
	item decoder
}

func (d *arrayDec) check(r *reader) {
	for n := r.blockCount(); n > 0 && r.err == nil; n = r.blockCount() {
		for range n {
			if r.err != nil {
				return
			}
			d.item.check(r)
		}
	}
}

func (d *arrayDec) put(r *reader) {
	d.lb.Append(true)
	for n := r.blockCount(); n > 0; n = r.blockCount() {
		for range n {
			d.item.put(r)
		}
	}
}

type mapDec struct {
	mb    *array.MapBuilder
	keys  *array.StringBuilder
	value decoder
}

func (d *mapDec) check(r *reader) {
	for n := r.blockCount(); n > 0 && r.err == nil; n = r.blockCount() {
		for range n {
			checkString(r)
			if r.err != nil {
				return
			}
			d.value.check(r)
		}
	}
}

func (d *mapDec) put(r *reader) {
	d.mb.Append(true)
	for n := r.blockCount(); n > 0; n = r.blockCount() {
		for range n {
			d.keys.BinaryBuilder.Append(r.bytes())
			d.value.put(r)
		}
	}
}

type boolDec struct{ b *array.BooleanBuilder }

func (d *boolDec) check(r *reader) { r.boolean() }
func (d *boolDec) put(r *reader)   { d.b.Append(r.boolean()) }

type intDec struct{ b *array.Int32Builder }

func (d *intDec) check(r *reader) { r.int() }
func (d *intDec) put(r *reader)   { d.b.Append(r.int()) }

// longDec writes a long, or an int into a column widened to long.
type longDec struct {
	b     *array.Int64Builder
	int32 bool
}

func (d *longDec) check(r *reader) {
	if d.int32 {
		r.int()
	} else {
		r.long()
	}
}
func (d *longDec) put(r *reader) { d.b.Append(r.long()) }

type floatDec struct{ b *array.Float32Builder }

func (d *floatDec) check(r *reader) { r.fixed(4) }
func (d *floatDec) put(r *reader)   { d.b.Append(r.float32()) }

// doubleDec writes a double, or a float into a column widened to double.
type doubleDec struct {
	b       *array.Float64Builder
	float32 bool
}

func (d *doubleDec) check(r *reader) {
	if d.float32 {
		r.fixed(4)
	} else {
		r.fixed(8)
	}
}

func (d *doubleDec) put(r *reader) {
	if d.float32 {
		d.b.Append(float64(r.float32()))
	} else {
		d.b.Append(r.float64())
	}
}

// checkString reads a string and rejects invalid UTF-8: Parquet strings must
// be UTF-8, and engines fail on whole files otherwise.
func checkString(r *reader) {
	if s := r.bytes(); r.err == nil && !utf8.Valid(s) {
		r.failf("string is not valid UTF-8")
	}
}

type stringDec struct{ b *array.StringBuilder }

func (d *stringDec) check(r *reader) { checkString(r) }
func (d *stringDec) put(r *reader)   { d.b.BinaryBuilder.Append(r.bytes()) }

type bytesDec struct{ b *array.BinaryBuilder }

func (d *bytesDec) check(r *reader) { r.bytes() }
func (d *bytesDec) put(r *reader)   { d.b.Append(r.bytes()) }

type enumDec struct {
	b       *array.StringBuilder
	symbols [][]byte
}

func (d *enumDec) check(r *reader) {
	if i := r.long(); r.err == nil && (i < 0 || i >= int64(len(d.symbols))) {
		r.failf("enum index %d out of range", i)
	}
}
func (d *enumDec) put(r *reader) { d.b.BinaryBuilder.Append(d.symbols[r.long()]) }

// fixedDec writes a fixed into a fixed column, or into a binary one.
type fixedDec struct {
	size int
	fb   *array.FixedSizeBinaryBuilder
	bb   *array.BinaryBuilder
}

func (d *fixedDec) check(r *reader) { r.fixed(d.size) }

func (d *fixedDec) put(r *reader) {
	v := r.fixed(d.size)
	if d.fb != nil {
		d.fb.Append(v)
	} else {
		d.bb.Append(v)
	}
}

type dateDec struct{ b *array.Date32Builder }

func (d *dateDec) check(r *reader) { r.int() }
func (d *dateDec) put(r *reader)   { d.b.Append(arrow.Date32(r.int())) }

// timeDec writes time-millis (an int) or time-micros (a long) as micros.
type timeDec struct {
	b      *array.Time64Builder
	millis bool
}

func (d *timeDec) check(r *reader) {
	if d.millis {
		r.int()
	} else {
		r.long()
	}
}

func (d *timeDec) put(r *reader) {
	v := r.long()
	if d.millis {
		v *= 1000
	}
	d.b.Append(arrow.Time64(v))
}

// timestampDec writes timestamp-millis/micros (and the local- ones) as micros.
type timestampDec struct {
	b      *array.TimestampBuilder
	millis bool
}

func (d *timestampDec) check(r *reader) {
	v := r.long()
	if d.millis && r.err == nil && (v > math.MaxInt64/1000 || v < math.MinInt64/1000) {
		r.failf("timestamp-millis %d overflows microseconds", v)
	}
}

func (d *timestampDec) put(r *reader) {
	v := r.long()
	if d.millis {
		v *= 1000
	}
	d.b.Append(arrow.Timestamp(v))
}

// decimalDec reads a decimal's big-endian two's-complement unscaled value,
// from bytes (size 0) or a fixed.
type decimalDec struct {
	b         *array.Decimal128Builder
	size      int
	precision int32
}

func (d *decimalDec) read(r *reader) []byte {
	if d.size > 0 {
		return r.fixed(d.size)
	}
	return r.bytes()
}

func (d *decimalDec) check(r *reader) {
	v := d.read(r)
	if r.err != nil {
		return
	}
	n, ok := decimalFromBytes(v)
	if !ok || !fitsPrecision(n, d.precision) {
		r.failf("decimal value does not fit precision %d", d.precision)
	}
}

func (d *decimalDec) put(r *reader) {
	n, _ := decimalFromBytes(d.read(r))
	d.b.Append(n)
}

// decimalFromBytes decodes a big-endian two's-complement integer; bytes
// beyond 16 must be sign extension.
func decimalFromBytes(v []byte) (decimal128.Num, bool) {
	if len(v) == 0 {
		return decimal128.Num{}, true
	}
	neg := v[0]&0x80 != 0
	ext := byte(0)
	if neg {
		ext = 0xff
	}
	for len(v) > 16 {
		if v[0] != ext {
			return decimal128.Num{}, false
		}
		v = v[1:]
	}
	if len(v) == 16 && (v[0]&0x80 != 0) != neg {
		return decimal128.Num{}, false
	}
	var buf [16]byte
	for i := range 16 - len(v) {
		buf[i] = ext
	}
	copy(buf[16-len(v):], v)
	hi := int64(binary.BigEndian.Uint64(buf[:8]))
	lo := binary.BigEndian.Uint64(buf[8:])
	return decimal128.New(hi, lo), true
}

func fitsPrecision(n decimal128.Num, precision int32) bool {
	if n.Sign() < 0 && n.Negate().Sign() < 0 {
		return false // the minimum value has no positive counterpart
	}
	return n.FitsInPrecision(precision)
}

// uuidDec parses a uuid-typed string (8-4-4-4-12 hex digits) into the
// 16 bytes of an Iceberg uuid.
type uuidDec struct{ b *array.FixedSizeBinaryBuilder }

func (d *uuidDec) check(r *reader) {
	if s := r.bytes(); r.err == nil {
		if _, ok := parseUUID(s); !ok {
			r.failf("%q is not a UUID", truncate(s, 40))
		}
	}
}

func (d *uuidDec) put(r *reader) {
	u, _ := parseUUID(r.bytes())
	d.b.Append(u[:])
}

func parseUUID(s []byte) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
