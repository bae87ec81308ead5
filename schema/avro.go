package schema

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// avroSchema is a parsed Avro schema.
type avroSchema struct {
	schema avro.Schema
}

func (s *avroSchema) schemaType() string { return TypeAvro }

func (s *avroSchema) canRead(writer parsedSchema) []string {
	w, ok := writer.(*avroSchema)
	if !ok {
		return []string{"Incompatible because of different schema type"}
	}
	return avroReaderWriterIncompatibilities(s.schema, w.schema)
}

// parseAvro parses an Avro schema after the schemas it references (already
// ordered so that each comes after its own dependencies). A fresh cache per
// parse matters: hamba's default cache is global, and two subjects may define
// different types under the same name.
func parseAvro(text string, deps []resolvedSchema) (*avroSchema, error) {
	cache := &avro.SchemaCache{}
	for _, dep := range deps {
		if dep.typ != TypeAvro {
			return nil, fmt.Errorf("reference %q is a %s schema, not AVRO", dep.name, dep.typ)
		}
		if _, err := avro.ParseWithCache(dep.text, "", cache); err != nil {
			return nil, fmt.Errorf("referenced schema %q: %w", dep.name, err)
		}
	}
	s, err := avro.ParseWithCache(text, "", cache)
	if err != nil {
		return nil, err
	}
	return &avroSchema{schema: s}, nil
}

// Avro schema-resolution incompatibility types, named as Apache Avro's
// SchemaCompatibility (and therefore Confluent's messages) name them.
const (
	avroNameMismatch              = "NAME_MISMATCH"
	avroFixedSizeMismatch         = "FIXED_SIZE_MISMATCH"
	avroMissingEnumSymbols        = "MISSING_ENUM_SYMBOLS"
	avroReaderFieldMissingDefault = "READER_FIELD_MISSING_DEFAULT_VALUE"
	avroTypeMismatch              = "TYPE_MISMATCH"
	avroMissingUnionBranch        = "MISSING_UNION_BRANCH"
)

type avroIncompatibility struct {
	kind     string
	location string // JSON pointer into the reader schema
	info     string
}

// message renders an incompatibility as Confluent's Difference class does;
// %[reader] and %[writer] are later replaced by "new"/"old".
func (inc avroIncompatibility) message() string {
	var desc string
	switch inc.kind {
	case avroFixedSizeMismatch:
		desc = "The size of FIXED type field at path '" + inc.location + "' in the %[reader] schema does not match with the %[writer] schema"
	case avroTypeMismatch:
		desc = "The type (path '" + inc.location + "') of a field in the %[reader] schema does not match with the %[writer] schema"
	case avroNameMismatch:
		desc = "The name of the schema has changed (path '" + inc.location + "')"
	case avroMissingEnumSymbols:
		desc = "The %[reader] schema is missing enum symbols '" + inc.info + "' at path '" + inc.location + "' in the %[writer] schema"
	case avroMissingUnionBranch:
		desc = "The %[reader] schema is missing a type inside a union field at path '" + inc.location + "' in the %[writer] schema"
	case avroReaderFieldMissingDefault:
		desc = "The field '" + inc.info + "' at path '" + inc.location + "' in the %[reader] schema has no default value and is missing in the %[writer] schema"
	}
	return "{errorType:'" + inc.kind + "', description:'" + desc + "', additionalInfo:'" + inc.info + "'}"
}

// avroReaderWriterIncompatibilities implements Avro's schema-resolution rules
// (the specification's "Schema Resolution" section, as Apache Avro's Java
// SchemaCompatibility applies them): can data written with writer always be
// decoded with reader?
func avroReaderWriterIncompatibilities(reader, writer avro.Schema) []string {
	c := &avroChecker{memo: make(map[[2]avro.Schema]*avroResult)}
	res := c.check(reader, writer, nil)
	msgs := make([]string, 0, len(res.incompatibilities))
	for _, inc := range res.incompatibilities {
		msgs = append(msgs, inc.message())
	}
	return msgs
}

type avroResult struct {
	inProgress        bool
	incompatibilities []avroIncompatibility
}

func (r *avroResult) compatible() bool { return len(r.incompatibilities) == 0 }

type avroChecker struct {
	// memo breaks recursion in recursive schemas: a pair under evaluation is
	// assumed compatible until proven otherwise, as Avro's checker does.
	memo map[[2]avro.Schema]*avroResult
}

func derefAvro(s avro.Schema) avro.Schema {
	for {
		ref, ok := s.(*avro.RefSchema)
		if !ok {
			return s
		}
		s = ref.Schema()
	}
}

// avroKind folds "error" records into records: they resolve identically.
func avroKind(s avro.Schema) avro.Type {
	if t := s.Type(); t != avro.Error {
		return t
	}
	return avro.Record
}

func pointer(location []string) string {
	return "/" + strings.Join(location, "/")
}

func (c *avroChecker) check(reader, writer avro.Schema, location []string) *avroResult {
	reader, writer = derefAvro(reader), derefAvro(writer)
	key := [2]avro.Schema{reader, writer}
	if res, ok := c.memo[key]; ok {
		if res.inProgress {
			return &avroResult{}
		}
		return res
	}
	c.memo[key] = &avroResult{inProgress: true}
	res := &avroResult{incompatibilities: c.calculate(reader, writer, location)}
	c.memo[key] = res
	return res
}

func (c *avroChecker) calculate(reader, writer avro.Schema, location []string) []avroIncompatibility {
	loc := slices.Clone(location)
	at := func(kind, info string, extra ...string) avroIncompatibility {
		return avroIncompatibility{kind: kind, location: pointer(append(slices.Clone(loc), extra...)), info: info}
	}
	typeMismatch := func() []avroIncompatibility {
		return []avroIncompatibility{at(avroTypeMismatch, fmt.Sprintf("reader type: %s not compatible with writer type: %s",
			strings.ToUpper(string(avroKind(reader))), strings.ToUpper(string(avroKind(writer)))))}
	}

	rt, wt := avroKind(reader), avroKind(writer)
	if rt == wt {
		switch rt {
		case avro.Null, avro.Boolean, avro.Int, avro.Long, avro.Float, avro.Double, avro.Bytes, avro.String:
			return nil
		case avro.Array:
			return c.check(reader.(*avro.ArraySchema).Items(), writer.(*avro.ArraySchema).Items(), append(loc, "items")).incompatibilities
		case avro.Map:
			return c.check(reader.(*avro.MapSchema).Values(), writer.(*avro.MapSchema).Values(), append(loc, "values")).incompatibilities
		case avro.Fixed:
			r, w := reader.(*avro.FixedSchema), writer.(*avro.FixedSchema)
			out := checkAvroNames(r, w, at)
			if r.Size() != w.Size() {
				out = append(out, at(avroFixedSizeMismatch, fmt.Sprintf("expected: %d, found: %d", w.Size(), r.Size()), "size"))
			}
			return out
		case avro.Enum:
			r, w := reader.(*avro.EnumSchema), writer.(*avro.EnumSchema)
			out := checkAvroNames(r, w, at)
			var missing []string
			for _, sym := range w.Symbols() {
				if !slices.Contains(r.Symbols(), sym) {
					missing = append(missing, sym)
				}
			}
			// A reader enum default absorbs symbols it does not know (Avro 1.9+).
			if len(missing) > 0 && !(r.HasDefault() && slices.Contains(r.Symbols(), r.Default())) {
				sort.Strings(missing)
				out = append(out, at(avroMissingEnumSymbols, "["+strings.Join(missing, ", ")+"]", "symbols"))
			}
			return out
		case avro.Record:
			r, w := reader.(*avro.RecordSchema), writer.(*avro.RecordSchema)
			out := checkAvroNames(r, w, at)
			return append(out, c.checkRecordFields(r, w, loc)...)
		case avro.Union:
			// Every branch the writer may have used must be readable.
			var out []avroIncompatibility
			for i, wb := range writer.(*avro.UnionSchema).Types() {
				if !c.check(reader, wb, append(slices.Clone(loc), strconv.Itoa(i))).compatible() {
					out = append(out, at(avroMissingUnionBranch,
						"reader union lacking writer type: "+strings.ToUpper(string(avroKind(derefAvro(wb)))), strconv.Itoa(i)))
				}
			}
			return out
		}
		return typeMismatch()
	}

	// Different types. A writer union is readable if each of its branches is.
	if wt == avro.Union {
		var out []avroIncompatibility
		for i, wb := range writer.(*avro.UnionSchema).Types() {
			out = append(out, c.check(reader, wb, append(slices.Clone(loc), strconv.Itoa(i))).incompatibilities...)
		}
		return out
	}
	switch rt {
	case avro.Long:
		if wt == avro.Int {
			return nil
		}
	case avro.Float:
		if wt == avro.Int || wt == avro.Long {
			return nil
		}
	case avro.Double:
		if wt == avro.Int || wt == avro.Long || wt == avro.Float {
			return nil
		}
	case avro.Bytes:
		if wt == avro.String {
			return nil
		}
	case avro.String:
		if wt == avro.Bytes {
			return nil
		}
	case avro.Union:
		// A reader union reads a non-union writer if some branch can.
		for _, rb := range reader.(*avro.UnionSchema).Types() {
			if c.check(rb, writer, loc).compatible() {
				return nil
			}
		}
		return []avroIncompatibility{at(avroMissingUnionBranch, "reader union lacking writer type: "+strings.ToUpper(string(wt)))}
	}
	return typeMismatch()
}

// checkAvroNames matches named types by unqualified name, or by one of the
// reader's (fully qualified) aliases naming the writer.
func checkAvroNames(reader, writer avro.NamedSchema, at func(kind, info string, extra ...string) avroIncompatibility) []avroIncompatibility {
	if reader.Name() == writer.Name() || slices.Contains(reader.Aliases(), writer.FullName()) {
		return nil
	}
	return []avroIncompatibility{at(avroNameMismatch, "expected: "+writer.FullName(), "name")}
}

func (c *avroChecker) checkRecordFields(reader, writer *avro.RecordSchema, location []string) []avroIncompatibility {
	var out []avroIncompatibility
	for pos, rf := range reader.Fields() {
		loc := append(slices.Clone(location), "fields", strconv.Itoa(pos))
		wf := lookupWriterField(writer, rf)
		if wf == nil {
			if !rf.HasDefault() {
				out = append(out, avroIncompatibility{kind: avroReaderFieldMissingDefault, location: pointer(loc), info: rf.Name()})
			}
			continue
		}
		out = append(out, c.check(rf.Type(), wf.Type(), append(loc, "type")).incompatibilities...)
	}
	return out
}

// lookupWriterField finds the writer field a reader field reads: same name,
// else a writer field named by one of the reader field's aliases.
func lookupWriterField(writer *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, wf := range writer.Fields() {
		if wf.Name() == rf.Name() {
			return wf
		}
	}
	for _, alias := range rf.Aliases() {
		for _, wf := range writer.Fields() {
			if wf.Name() == alias {
				return wf
			}
		}
	}
	return nil
}
