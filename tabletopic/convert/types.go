package convert

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
)

// maxDecimalPrecision is Iceberg's (and Arrow's decimal128) limit.
const maxDecimalPrecision = 38

// Names of the struct a non-nullable Avro union becomes, as Iceberg's Java
// Avro reader names them: "tag" holds the index of the branch the datum
// took (counting non-null branches only) and "field<i>" its value.
const unionTagName = "tag"

func unionFieldName(i int) string { return "field" + strconv.Itoa(i) }

// deref follows a reference to a named type.
func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

// fullName names a named Avro type, or returns "".
func fullName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return ""
}

// avroTyper converts a writer schema to the Iceberg type its data takes in a
// table. Field ids are left 0; the merge assigns them. A nil type means the
// schema carries no data (null, a record with no data fields, ...): such
// fields get no column. Every field, element and map value is optional (see
// the package doc).
type avroTyper struct {
	onPath map[string]bool // named types being converted, to reject recursion
}

func icebergTypeOf(s avro.Schema) (iceberg.Type, error) {
	t := avroTyper{onPath: map[string]bool{}}
	return t.convert(s)
}

func (a *avroTyper) convert(s avro.Schema) (iceberg.Type, error) {
	s = deref(s)
	if name := fullName(s); name != "" {
		if a.onPath[name] {
			return nil, fmt.Errorf("recursive type %s cannot be a table column", name)
		}
		a.onPath[name] = true
		defer delete(a.onPath, name)
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		return nil, nil
	case *avro.PrimitiveSchema:
		return primitiveType(s)
	case *avro.EnumSchema:
		return iceberg.PrimitiveTypes.String, nil
	case *avro.FixedSchema:
		if l := s.Logical(); l != nil && l.Type() == avro.Decimal {
			return decimalType(l)
		}
		return iceberg.FixedTypeOf(s.Size()), nil
	case *avro.RecordSchema:
		st := &iceberg.StructType{}
		for _, f := range s.Fields() {
			ft, err := a.convert(f.Type())
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name(), err)
			}
			if ft == nil {
				continue
			}
			st.FieldList = append(st.FieldList, iceberg.NestedField{Name: f.Name(), Type: ft, Doc: f.Doc()})
		}
		if len(st.FieldList) == 0 {
			return nil, nil // Parquet has no empty groups
		}
		return st, nil
	case *avro.ArraySchema:
		et, err := a.convert(s.Items())
		if err != nil || et == nil {
			return nil, err
		}
		return &iceberg.ListType{Element: et}, nil
	case *avro.MapSchema:
		vt, err := a.convert(s.Values())
		if err != nil || vt == nil {
			return nil, err
		}
		return &iceberg.MapType{KeyType: iceberg.PrimitiveTypes.String, ValueType: vt}, nil
	case *avro.UnionSchema:
		branches, err := a.unionBranches(s)
		if err != nil {
			return nil, err
		}
		return unionType(s, branches), nil
	}
	return nil, fmt.Errorf("unsupported Avro type %s", s.Type())
}

// unionBranches converts every branch; the null branch (and branches with
// no data) come back nil.
func (a *avroTyper) unionBranches(s *avro.UnionSchema) ([]iceberg.Type, error) {
	out := make([]iceberg.Type, len(s.Types()))
	for i, b := range s.Types() {
		t, err := a.convert(b)
		if err != nil {
			return nil, fmt.Errorf("union branch %d: %w", i, err)
		}
		out[i] = t
	}
	return out, nil
}

// unionMembers maps each branch of a union to its member number: -1 for
// the null branch, else its position among the non-null branches.
func unionMembers(s *avro.UnionSchema) []int {
	out := make([]int, len(s.Types()))
	k := 0
	for i, b := range s.Types() {
		if _, isNull := deref(b).(*avro.NullSchema); isNull {
			out[i] = -1
			continue
		}
		out[i] = k
		k++
	}
	return out
}

// isComplexUnion reports whether a union has more than one branch with
// data, so that its column is the tag struct rather than the branch type.
func isComplexUnion(branches []iceberg.Type) bool {
	n := 0
	for _, b := range branches {
		if b != nil {
			n++
		}
	}
	return n > 1
}

// unionType is a union's column type: its one data branch (the usual
// ["null", T] optional field), or, with several data branches, a struct of
// the tag and one optional field per non-null branch with data.
func unionType(s *avro.UnionSchema, branches []iceberg.Type) iceberg.Type {
	if !isComplexUnion(branches) {
		for _, b := range branches {
			if b != nil {
				return b
			}
		}
		return nil
	}
	st := &iceberg.StructType{FieldList: []iceberg.NestedField{{Name: unionTagName, Type: iceberg.PrimitiveTypes.Int32}}}
	for i, k := range unionMembers(s) {
		if k < 0 || branches[i] == nil {
			continue // a data-less record branch: the tag still tells it
		}
		st.FieldList = append(st.FieldList, iceberg.NestedField{Name: unionFieldName(k), Type: branches[i]})
	}
	return st
}

func primitiveType(s *avro.PrimitiveSchema) (iceberg.Type, error) {
	if l := s.Logical(); l != nil {
		switch l.Type() {
		case avro.Decimal:
			return decimalType(l)
		case avro.UUID:
			return iceberg.PrimitiveTypes.UUID, nil
		case avro.Date:
			return iceberg.PrimitiveTypes.Date, nil
		case avro.TimeMillis, avro.TimeMicros:
			return iceberg.PrimitiveTypes.Time, nil
		case avro.TimestampMillis, avro.TimestampMicros:
			return iceberg.PrimitiveTypes.TimestampTz, nil
		case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			return iceberg.PrimitiveTypes.Timestamp, nil
		}
	}
	switch s.Type() {
	case avro.Boolean:
		return iceberg.PrimitiveTypes.Bool, nil
	case avro.Int:
		return iceberg.PrimitiveTypes.Int32, nil
	case avro.Long:
		return iceberg.PrimitiveTypes.Int64, nil
	case avro.Float:
		return iceberg.PrimitiveTypes.Float32, nil
	case avro.Double:
		return iceberg.PrimitiveTypes.Float64, nil
	case avro.String:
		return iceberg.PrimitiveTypes.String, nil
	case avro.Bytes:
		return iceberg.PrimitiveTypes.Binary, nil
	case avro.Null:
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported Avro type %s", s.Type())
}

func decimalType(l avro.LogicalSchema) (iceberg.Type, error) {
	d, ok := l.(*avro.DecimalLogicalSchema)
	if !ok {
		return nil, fmt.Errorf("malformed decimal logical type")
	}
	if d.Precision() < 1 || d.Precision() > maxDecimalPrecision || d.Scale() < 0 || d.Scale() > d.Precision() {
		return nil, fmt.Errorf("decimal(%d, %d) does not fit Iceberg's decimal (precision 1..%d)", d.Precision(), d.Scale(), maxDecimalPrecision)
	}
	return iceberg.DecimalTypeOf(d.Precision(), d.Scale()), nil
}

// errIncompatible marks a merge failure: the data cannot be written into the
// table's existing column under Iceberg's evolution rules.
var errIncompatible = errors.New("incompatible with the table's column")

// merger folds the type a record needs into the table schema under
// Iceberg's rules: new fields become optional columns with fresh ids,
// int->long, float->double and decimal precision widen, required columns
// the data may lack become optional, anything else that differs is an
// error. Ids of existing columns never change.
type merger struct {
	nextID   int // last assigned field id
	changed  bool
	newTable bool // creating the table: required base columns stay required
	// required are top-level columns that stay required whatever a
	// record's schema says (Config.RequiredColumns).
	required []string
}

func (m *merger) allocID() int {
	m.nextID++
	return m.nextID
}

// fresh assigns ids to a new field and its nested fields, in the order
// iceberg-go's AssignFreshSchemaIDs uses (so a table created from our schema
// by a catalog that re-assigns ids gets the same ones).
func (m *merger) fresh(f iceberg.NestedField, topLevelOptional bool) iceberg.NestedField {
	f.ID = m.allocID()
	if topLevelOptional {
		f.Required = false
	}
	f.Type = m.freshType(f.Type)
	return f
}

func (m *merger) freshType(t iceberg.Type) iceberg.Type {
	switch t := t.(type) {
	case *iceberg.StructType:
		out := &iceberg.StructType{FieldList: make([]iceberg.NestedField, len(t.FieldList))}
		for i, f := range t.FieldList {
			out.FieldList[i] = m.fresh(f, false)
		}
		return out
	case *iceberg.ListType:
		id := m.allocID()
		return &iceberg.ListType{ElementID: id, Element: m.freshType(t.Element), ElementRequired: t.ElementRequired}
	case *iceberg.MapType:
		kid, vid := m.allocID(), m.allocID()
		return &iceberg.MapType{KeyID: kid, KeyType: m.freshType(t.KeyType), ValueID: vid, ValueType: m.freshType(t.ValueType), ValueRequired: t.ValueRequired}
	}
	return t
}

// mergeFields merges the fields a record needs (src, ids unset) into the
// table's fields at path. Table fields src lacks stay, optional.
func (m *merger) mergeFields(table, src []iceberg.NestedField, path string) ([]iceberg.NestedField, error) {
	out := make([]iceberg.NestedField, 0, len(table)+len(src))
	byName := make(map[string]int, len(src))
	for i, f := range src {
		byName[f.Name] = i
	}
	for _, tf := range table {
		i, ok := byName[tf.Name]
		keep := path == "" && slices.Contains(m.required, tf.Name)
		if !ok {
			if tf.Required && !keep {
				tf.Required = false
				m.changed = true
			}
			out = append(out, tf)
			continue
		}
		sf := src[i]
		if tf.Required && !sf.Required && !keep {
			tf.Required = false
			m.changed = true
		}
		t, err := m.mergeType(tf.Type, sf.Type, join(path, tf.Name))
		if err != nil {
			return nil, err
		}
		tf.Type = t
		out = append(out, tf)
	}
	seen := make(map[string]bool, len(table))
	for _, tf := range table {
		seen[tf.Name] = true
	}
	for _, sf := range src {
		if !seen[sf.Name] {
			out = append(out, m.fresh(sf, !m.newTable))
			m.changed = true
		}
	}
	return out, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (m *merger) mergeType(t, s iceberg.Type, path string) (iceberg.Type, error) {
	switch tt := t.(type) {
	case *iceberg.StructType:
		ss, ok := s.(*iceberg.StructType)
		if !ok {
			return nil, incompatible(path, s, t)
		}
		fields, err := m.mergeFields(tt.FieldList, ss.FieldList, path)
		if err != nil {
			return nil, err
		}
		return &iceberg.StructType{FieldList: fields}, nil
	case *iceberg.ListType:
		sl, ok := s.(*iceberg.ListType)
		if !ok {
			return nil, incompatible(path, s, t)
		}
		out := *tt
		if out.ElementRequired && !sl.ElementRequired {
			out.ElementRequired = false
			m.changed = true
		}
		et, err := m.mergeType(tt.Element, sl.Element, path+".element")
		if err != nil {
			return nil, err
		}
		out.Element = et
		return &out, nil
	case *iceberg.MapType:
		sm, ok := s.(*iceberg.MapType)
		if !ok {
			return nil, incompatible(path, s, t)
		}
		if !tt.KeyType.Equals(sm.KeyType) {
			return nil, incompatible(path+".key", sm.KeyType, tt.KeyType)
		}
		out := *tt
		if out.ValueRequired && !sm.ValueRequired {
			out.ValueRequired = false
			m.changed = true
		}
		vt, err := m.mergeType(tt.ValueType, sm.ValueType, path+".value")
		if err != nil {
			return nil, err
		}
		out.ValueType = vt
		return &out, nil
	case iceberg.PrimitiveType:
		sp, ok := s.(iceberg.PrimitiveType)
		if !ok {
			return nil, incompatible(path, s, t)
		}
		wider, widened, ok := writable(tt, sp)
		if !ok {
			return nil, incompatible(path, s, t)
		}
		if widened {
			m.changed = true
		}
		return wider, nil
	}
	return nil, incompatible(path, s, t)
}

// writable reports whether data of type s can go into a column of type t,
// possibly after widening the column (Iceberg's type promotions).
func writable(t, s iceberg.PrimitiveType) (out iceberg.PrimitiveType, widened, ok bool) {
	if t.Equals(s) {
		return t, false, true
	}
	switch tt := t.(type) {
	case iceberg.Int32Type:
		if _, ok := s.(iceberg.Int64Type); ok {
			return s, true, true
		}
	case iceberg.Int64Type:
		if _, ok := s.(iceberg.Int32Type); ok {
			return t, false, true
		}
	case iceberg.Float32Type:
		if _, ok := s.(iceberg.Float64Type); ok {
			return s, true, true
		}
	case iceberg.Float64Type:
		if _, ok := s.(iceberg.Float32Type); ok {
			return t, false, true
		}
	case iceberg.DecimalType:
		if sd, ok := s.(iceberg.DecimalType); ok && sd.Scale() == tt.Scale() {
			if sd.Precision() > tt.Precision() {
				return s, true, true
			}
			return t, false, true
		}
	case iceberg.BinaryType:
		if _, ok := s.(iceberg.FixedType); ok {
			return t, false, true
		}
	case iceberg.StringType:
		if _, ok := s.(iceberg.UUIDType); ok {
			return t, false, true
		}
	}
	return nil, false, false
}

func incompatible(path string, src, table iceberg.Type) error {
	return fmt.Errorf("%w: %s is %s in the table, the record has %s", errIncompatible, path, table, src)
}
