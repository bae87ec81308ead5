package schema

import (
	"strings"
	"testing"
)

// record builds a record schema "ns.User" from field JSON snippets.
func record(name string, fields ...string) string {
	return `{"type":"record","name":"` + name + `","namespace":"ns","fields":[` + strings.Join(fields, ",") + `]}`
}

func mustParseAvro(t *testing.T, text string) parsedSchema {
	t.Helper()
	cs, err := parseSchema(TypeAvro, text, nil, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return cs.parsed
}

const (
	fieldID         = `{"name":"id","type":"int"}`
	fieldIDLong     = `{"name":"id","type":"long"}`
	fieldIDString   = `{"name":"id","type":"string"}`
	fieldName       = `{"name":"name","type":"string"}`
	fieldNameDef    = `{"name":"name","type":"string","default":"anon"}`
	fieldFullName   = `{"name":"full_name","type":"string","aliases":["name"]}`
	fieldFullNoAli  = `{"name":"full_name","type":"string"}`
	enumAB          = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}}`
	enumABC         = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}}`
	enumABDefault   = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"],"default":"RED"}}`
	enumADefault    = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED"],"default":"RED"}}`
	enumA           = `{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED"]}}`
	fieldTag        = `{"name":"tag","type":"string"}`
	fieldTagNull    = `{"name":"tag","type":["null","string"],"default":null}`
	fieldTagNSI     = `{"name":"tag","type":["null","string","int"],"default":null}`
	addressV1       = `{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}}`
	addressZipDef   = `{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string","default":""}]}}`
	addressZipNoDef = `{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string"}]}}`
	scoresInt       = `{"name":"scores","type":{"type":"array","items":"int"}}`
	scoresLong      = `{"name":"scores","type":{"type":"array","items":"long"}}`
	attrsInt        = `{"name":"attrs","type":{"type":"map","values":"int"}}`
	attrsString     = `{"name":"attrs","type":{"type":"map","values":"string"}}`
	hash16          = `{"name":"hash","type":{"type":"fixed","name":"Hash","size":16}}`
	hash32          = `{"name":"hash","type":{"type":"fixed","name":"Hash","size":32}}`
	payloadString   = `{"name":"payload","type":"string"}`
	payloadBytes    = `{"name":"payload","type":"bytes"}`
)

// TestAvroCompatibilityTwoVersions checks each change against Confluent's
// documented outcomes ("Schema Evolution and Compatibility": BACKWARD allows
// deleting fields and adding fields with defaults, FORWARD allows adding
// fields and deleting fields with defaults, FULL allows only the changes both
// allow) plus Avro's schema-resolution rules for promotions, aliases, enums,
// unions, nested records, arrays, maps and fixed. With two versions, each
// transitive level must agree with its non-transitive one.
func TestAvroCompatibilityTwoVersions(t *testing.T) {
	cases := []struct {
		name                    string
		old, new                string
		backward, forward, full bool
	}{
		{"add field with default", record("User", fieldID), record("User", fieldID, fieldNameDef), true, true, true},
		{"add field without default", record("User", fieldID), record("User", fieldID, fieldName), false, true, false},
		{"remove field with default", record("User", fieldID, fieldNameDef), record("User", fieldID), true, true, true},
		{"remove field without default", record("User", fieldID, fieldName), record("User", fieldID), true, false, false},
		{"change type incompatibly int to string", record("User", fieldID), record("User", fieldIDString), false, false, false},
		{"promote int to long", record("User", fieldID), record("User", fieldIDLong), true, false, false},
		{"narrow long to int", record("User", fieldIDLong), record("User", fieldID), false, true, false},
		{"string to bytes", record("User", payloadString), record("User", payloadBytes), true, true, true},
		{"rename field with alias", record("User", fieldID, fieldName), record("User", fieldID, fieldFullName), true, false, false},
		{"rename field without alias", record("User", fieldID, fieldName), record("User", fieldID, fieldFullNoAli), false, false, false},
		{"rename record with alias", record("User", fieldID),
			`{"type":"record","name":"Person","namespace":"ns","aliases":["User"],"fields":[` + fieldID + `]}`, true, false, false},
		{"rename record without alias", record("User", fieldID), record("Person", fieldID), false, false, false},
		{"enum symbol added", record("User", enumAB), record("User", enumABC), true, false, false},
		{"enum symbol added, old reader has enum default", record("User", enumABDefault), record("User", enumABC), true, true, true},
		{"enum symbol removed", record("User", enumAB), record("User", enumA), false, true, false},
		{"enum symbol removed, new reader has enum default", record("User", enumAB), record("User", enumADefault), true, true, true},
		{"union widened from string", record("User", fieldTag), record("User", fieldTagNull), true, false, false},
		{"union widened", record("User", fieldTagNull), record("User", fieldTagNSI), true, false, false},
		{"union narrowed", record("User", fieldTagNSI), record("User", fieldTagNull), false, true, false},
		{"union narrowed to string", record("User", fieldTagNull), record("User", fieldTag), false, true, false},
		{"nested record field added with default", record("User", addressV1), record("User", addressZipDef), true, true, true},
		{"nested record field added without default", record("User", addressV1), record("User", addressZipNoDef), false, true, false},
		{"array items promoted", record("User", scoresInt), record("User", scoresLong), true, false, false},
		{"map values changed incompatibly", record("User", attrsInt), record("User", attrsString), false, false, false},
		{"fixed size changed", record("User", hash16), record("User", hash32), false, false, false},
		{"identical", record("User", fieldID, fieldName), record("User", fieldID, fieldName), true, true, true},
		{"primitive promoted", `"int"`, `"double"`, true, false, false},
		{"record replaced by string", record("User", fieldID), `"string"`, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, next := mustParseAvro(t, tc.old), mustParseAvro(t, tc.new)
			prev := []previousSchema{{version: 1, text: tc.old, parsed: old}}
			for _, lv := range []struct {
				level string
				want  bool
			}{
				{CompatNone, true},
				{CompatBackward, tc.backward},
				{CompatBackwardTransitive, tc.backward},
				{CompatForward, tc.forward},
				{CompatForwardTransitive, tc.forward},
				{CompatFull, tc.full},
				{CompatFullTransitive, tc.full},
			} {
				msgs := checkCompatibility(lv.level, next, prev)
				if got := len(msgs) == 0; got != lv.want {
					t.Errorf("%s: compatible = %v, want %v; messages: %q", lv.level, got, lv.want, msgs)
				}
				if len(msgs) > 0 && !strings.Contains(msgs[len(msgs)-1], "compatibility: '"+lv.level+"'") {
					t.Errorf("%s: last message %q does not name the level", lv.level, msgs[len(msgs)-1])
				}
			}
		})
	}
}

// TestAvroCompatibilityTransitive uses three versions where the newest is
// compatible with its predecessor but not with the first: the transitive
// levels must refuse it, the plain ones accept it.
func TestAvroCompatibilityTransitive(t *testing.T) {
	cases := []struct {
		name       string
		versions   [3]string
		level      string
		transitive string
	}{
		{
			name:       "backward: default dropped after the field was added",
			versions:   [3]string{record("User", fieldID), record("User", fieldID, fieldNameDef), record("User", fieldID, fieldName)},
			level:      CompatBackward,
			transitive: CompatBackwardTransitive,
		},
		{
			name:       "forward: field removed after it gained a default",
			versions:   [3]string{record("User", fieldID, fieldName), record("User", fieldID, fieldNameDef), record("User", fieldID)},
			level:      CompatForward,
			transitive: CompatForwardTransitive,
		},
		{
			name:       "full: default dropped after the field was added",
			versions:   [3]string{record("User", fieldID), record("User", fieldID, fieldNameDef), record("User", fieldID, fieldName)},
			level:      CompatFull,
			transitive: CompatFullTransitive,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v1, v2, v3 := mustParseAvro(t, tc.versions[0]), mustParseAvro(t, tc.versions[1]), mustParseAvro(t, tc.versions[2])
			// v2 must itself have been acceptable at both levels.
			for _, level := range []string{tc.level, tc.transitive} {
				if msgs := checkCompatibility(level, v2, []previousSchema{{1, tc.versions[0], v1}}); len(msgs) > 0 {
					t.Fatalf("v2 refused at %s: %q", level, msgs)
				}
			}
			prev := []previousSchema{{1, tc.versions[0], v1}, {2, tc.versions[1], v2}}
			if msgs := checkCompatibility(tc.level, v3, prev); len(msgs) > 0 {
				t.Errorf("%s refused v3 (only v2 counts): %q", tc.level, msgs)
			}
			msgs := checkCompatibility(tc.transitive, v3, prev)
			if len(msgs) == 0 {
				t.Fatalf("%s accepted v3, which cannot be reconciled with v1", tc.transitive)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), "{oldSchemaVersion: 1}") {
				t.Errorf("%s messages do not blame version 1: %q", tc.transitive, msgs)
			}
			if msgs := checkCompatibility(CompatNone, v3, prev); len(msgs) > 0 {
				t.Errorf("NONE refused v3: %q", msgs)
			}
		})
	}
}

// TestAvroCompatibilityMessages pins the Confluent message format that
// clients and operators see.
func TestAvroCompatibilityMessages(t *testing.T) {
	old := record("User", fieldID)
	next := record("User", fieldID, fieldName)
	msgs := checkCompatibility(CompatBackward, mustParseAvro(t, next), []previousSchema{{3, old, mustParseAvro(t, old)}})
	want := []string{
		"{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'name' at path '/fields/1' in the new schema has no default value and is missing in the old schema', additionalInfo:'name'}",
		"{oldSchemaVersion: 3}",
		"{oldSchema: '" + old + "'}",
		"{validateFields: 'false', compatibility: 'BACKWARD'}",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}

	msgs = checkCompatibility(CompatForward, mustParseAvro(t, record("User", enumABC)),
		[]previousSchema{{1, "x", mustParseAvro(t, record("User", enumAB))}})
	if len(msgs) == 0 || !strings.Contains(msgs[0], "MISSING_ENUM_SYMBOLS") || !strings.Contains(msgs[0], "'[BLUE]'") ||
		!strings.Contains(msgs[0], "/fields/0/type/symbols") || !strings.Contains(msgs[0], "The old schema is missing enum symbols") {
		t.Errorf("enum message: %q", msgs)
	}
}

// TestAvroRecursiveSchemas: memoization must terminate on recursive types
// and still find incompatibilities inside them.
func TestAvroRecursiveSchemas(t *testing.T) {
	list := func(extra string) string {
		return `{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},` +
			`{"name":"next","type":["null","Node"],"default":null}` + extra + `]}`
	}
	v1 := mustParseAvro(t, list(""))
	v2 := mustParseAvro(t, list(`,{"name":"label","type":"string","default":""}`))
	v3 := mustParseAvro(t, list(`,{"name":"label","type":"string"}`))
	if msgs := checkCompatibility(CompatFull, v2, []previousSchema{{1, "", v1}}); len(msgs) > 0 {
		t.Errorf("v2: %q", msgs)
	}
	if msgs := checkCompatibility(CompatBackward, v3, []previousSchema{{1, "", v1}}); len(msgs) == 0 {
		t.Error("v3 accepted though label has no default")
	}
}

func TestAvroDifferentSchemaTypes(t *testing.T) {
	avroOld := mustParseAvro(t, `"string"`)
	msgs := checkCompatibility(CompatBackward, jsonSchema{}, []previousSchema{{1, `"string"`, avroOld}})
	if len(msgs) == 0 || msgs[0] != "Incompatible because of different schema type" {
		t.Errorf("messages: %q", msgs)
	}
	if msgs := checkCompatibility(CompatNone, jsonSchema{}, []previousSchema{{1, `"string"`, avroOld}}); msgs != nil {
		t.Errorf("NONE: %q", msgs)
	}
}
