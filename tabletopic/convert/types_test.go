package convert

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
)

const allTypes = `{"type":"record","name":"All","namespace":"ex","fields":[
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"s","type":"string"},
	{"name":"by","type":"bytes"},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
	{"name":"dt","type":{"type":"int","logicalType":"date"}},
	{"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
	{"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
	{"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"ltsm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
	{"name":"ltsu","type":{"type":"long","logicalType":"local-timestamp-micros"}},
	{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
	{"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":18,"scale":3}},
	{"name":"u","type":{"type":"string","logicalType":"uuid"}},
	{"name":"arr","type":{"type":"array","items":"int"}},
	{"name":"m","type":{"type":"map","values":["null","string"]}},
	{"name":"nested","type":{"type":"record","name":"Inner","fields":[
		{"name":"x","type":"int"},{"name":"color","type":"Color"}]}},
	{"name":"opt","type":["null","Inner"]},
	{"name":"cu","type":["null","int","string","Inner"]},
	{"name":"nul","type":"null"},
	{"name":"recs","type":{"type":"array","items":"Inner"}}]}`

// TestAvroTypes converts every Avro type under flatten and checks the
// column types, the field ids and the values.
func TestAvroTypes(t *testing.T) {
	r := newTestRegistry(t)
	id := r.register("all-value", allTypes)
	c := mustNew(t, Config{Topic: "all", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil)

	ts := time.Date(2024, 2, 29, 12, 30, 45, 123456000, time.UTC)
	inner := map[string]any{"x": int32(5), "color": "GREEN"}
	full := map[string]any{
		"b": true, "i": int32(-3), "l": int64(1) << 40, "f": float32(1.5), "d": 2.25,
		"s": "ünï", "by": []byte{0, 1, 2}, "e": "GREEN", "fx": [4]byte{9, 8, 7, 6},
		"dt": ts, "tm": 12*time.Hour + 30*time.Minute + 45123*time.Millisecond,
		"tu":  12*time.Hour + 30*time.Minute + 45123456*time.Microsecond,
		"tsm": ts, "tsu": ts, "ltsm": ts, "ltsu": ts,
		"dec":    big.NewRat(-12345, 100), // -123.45
		"decf":   big.NewRat(9876543210123, 1000),
		"u":      "0f8fad5b-d9cb-469f-a165-70867728950e",
		"arr":    []any{int32(1), int32(2), int32(3)},
		"m":      map[string]any{"k": "v"},
		"nested": inner, "opt": nil, "cu": map[string]any{"int": int32(77)},
		"nul": nil, "recs": []any{inner, map[string]any{"x": int32(6), "color": "RED"}},
	}
	other := map[string]any{
		"b": false, "i": int32(0), "l": int64(0), "f": float32(0), "d": 0.0, "s": "", "by": []byte{},
		"e": "RED", "fx": [4]byte{}, "dt": time.Unix(0, 0).UTC(), "tm": time.Duration(0), "tu": time.Duration(0),
		"tsm": time.Unix(0, 0).UTC(), "tsu": time.Unix(0, 0).UTC(), "ltsm": time.Unix(0, 0).UTC(), "ltsu": time.Unix(0, 0).UTC(),
		"dec": big.NewRat(0, 1), "decf": big.NewRat(-1, 1000), "u": "00000000-0000-0000-0000-000000000000",
		"arr": []any{}, "m": map[string]any{"n": nil}, "nested": inner,
		"opt": map[string]any{"ex.Inner": inner}, "cu": map[string]any{"ex.Inner": inner},
		"nul": nil, "recs": []any{},
	}
	third := map[string]any{}
	for k, v := range other {
		third[k] = v
	}
	third["cu"] = map[string]any{"string": "s"}
	fourth := map[string]any{}
	for k, v := range other {
		fourth[k] = v
	}
	fourth["cu"] = nil

	for i, v := range []map[string]any{full, other, third, fourth} {
		addEvolving(t, c, Record{Offset: int64(i), Value: wire(t, id, allTypes, v)})
	}

	wantSchema := `table {
	1: _kafka_key: optional string
	2: _kafka_headers: optional list<struct<4: key: required string, 5: value: optional binary>>
	6: _kafka_metadata: required struct<7: partition: required int, 8: offset: required long, 9: timestamp: required timestamptz>
	10: b: optional boolean
	11: i: optional int
	12: l: optional long
	13: f: optional float
	14: d: optional double
	15: s: optional string
	16: by: optional binary
	17: e: optional string
	18: fx: optional fixed[4]
	19: dt: optional date
	20: tm: optional time
	21: tu: optional time
	22: tsm: optional timestamptz
	23: tsu: optional timestamptz
	24: ltsm: optional timestamp
	25: ltsu: optional timestamp
	26: dec: optional decimal(10, 2)
	27: decf: optional decimal(18, 3)
	28: u: optional uuid
	29: arr: optional list<int>
	31: m: optional map<string, string>
	34: nested: optional struct<35: x: optional int, 36: color: optional string>
	37: opt: optional struct<38: x: optional int, 39: color: optional string>
	40: cu: optional struct<41: tag: optional int, 42: field0: optional int, 43: field1: optional string, 44: field2: optional struct<45: x: optional int, 46: color: optional string>>
	47: recs: optional list<struct<49: x: optional int, 50: color: optional string>>
}`
	if got := c.Schema().String(); got != wantSchema {
		t.Errorf("schema:\n%s\nwant\n%s", got, wantSchema)
	}
	ids := fieldIDs(t, c.Schema())
	for path, want := range map[string]int{"arr.element": 30, "m.key": 32, "m.value": 33, "recs.element": 48} {
		if ids[path] != want {
			t.Errorf("id of %s = %d, want %d", path, ids[path], want)
		}
	}

	rows := flushRows(t, c)
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, row := range rows {
		delete(row, ColumnMetadata)
		delete(row, ColumnHeaders)
		delete(row, ColumnKey)
	}
	want := []string{
		`{"arr":[1,2,3],"b":true,"by":"AAEC","cu":{"field0":77,"field1":null,"field2":null,"tag":0},"d":2.25,` +
			`"dec":"-123.45","decf":"9876543210.123","dt":"2024-02-29","e":"GREEN","f":1.5,"fx":"CQgHBg==","i":-3,` +
			`"l":1099511627776,"ltsm":"2024-02-29T12:30:45.123","ltsu":"2024-02-29T12:30:45.123456",` +
			`"m":[{"key":"k","value":"v"}],"nested":{"color":"GREEN","x":5},"opt":null,"recs":[{"color":"GREEN","x":5},{"color":"RED","x":6}],` +
			`"s":"ünï","tm":"12:30:45.123","tsm":"2024-02-29T12:30:45.123Z","tsu":"2024-02-29T12:30:45.123456Z",` +
			`"tu":"12:30:45.123456","u":"0f8fad5b-d9cb-469f-a165-70867728950e"}`,
		`{"arr":[],"b":false,"by":"","cu":{"field0":null,"field1":null,"field2":{"color":"GREEN","x":5},"tag":2},"d":0,` +
			`"dec":"0","decf":"-0.001","dt":"1970-01-01","e":"RED","f":0,"fx":"AAAAAA==","i":0,"l":0,` +
			`"ltsm":"1970-01-01T00:00:00","ltsu":"1970-01-01T00:00:00","m":[{"key":"n","value":null}],` +
			`"nested":{"color":"GREEN","x":5},"opt":{"color":"GREEN","x":5},"recs":[],"s":"","tm":"00:00:00",` +
			`"tsm":"1970-01-01T00:00:00Z","tsu":"1970-01-01T00:00:00Z","tu":"00:00:00","u":"00000000-0000-0000-0000-000000000000"}`,
	}
	for i, w := range want {
		if got := js(t, rows[i]); got != w {
			t.Errorf("row %d:\n%s\nwant\n%s", i, got, w)
		}
	}
	if got := js(t, rows[2]["cu"]); got != `{"field0":null,"field1":"s","field2":null,"tag":1}` {
		t.Errorf("union string branch: %s", got)
	}
	if got := js(t, rows[3]["cu"]); got != `null` {
		t.Errorf("union null branch: %s", got)
	}
}

// TestAvroEdgeCases covers values the encoder above cannot produce.
func TestAvroEdgeCases(t *testing.T) {
	r := newTestRegistry(t)
	ctx := t.Context()
	cases := []struct {
		name    string
		schema  string
		payload []byte
		want    string // the value column as JSON, or an error substring prefixed "!"
	}{
		{"decimal too wide for precision", `{"type":"bytes","logicalType":"decimal","precision":3,"scale":0}`,
			[]byte{4, 0x03, 0xe8}, "!does not fit precision 3"}, // 1000
		{"decimal fits", `{"type":"bytes","logicalType":"decimal","precision":3,"scale":0}`,
			[]byte{4, 0x03, 0xe7}, `"999"`},
		{"decimal sign-extended past 16 bytes", `{"type":"bytes","logicalType":"decimal","precision":38,"scale":0}`,
			append([]byte{36}, append(repeat(0xff, 17), 0xfe)...), `"-2"`},
		{"decimal 17 significant bytes", `{"type":"bytes","logicalType":"decimal","precision":38,"scale":0}`,
			append([]byte{34}, append([]byte{1}, repeat(0, 16)...)...), "!does not fit"},
		{"bad uuid", `{"type":"string","logicalType":"uuid"}`, append([]byte{6}, "abc"...), "!not a UUID"},
		{"bad boolean", `"boolean"`, []byte{2}, "!boolean byte 2"},
		{"int out of range", `"int"`, []byte{0x80, 0x80, 0x80, 0x80, 0x10}, "!out of 32-bit range"},
		{"varint overflow", `"long"`, repeat(0xff, 11), "!overflows"},
		{"enum index", `{"type":"enum","name":"E","symbols":["A"]}`, []byte{2}, "!enum index 1"},
		{"timestamp-millis overflow", `{"type":"long","logicalType":"timestamp-millis"}`,
			[]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "!overflows"},
		{"array of nulls bomb", `{"type":"array","items":{"type":"record","name":"R","fields":[{"name":"n","type":"null"},{"name":"x","type":["null","int"]}]}}`,
			[]byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, "!larger than the payload"},
		{"negative block count", `{"type":"array","items":"int"}`, []byte{1, 2, 4, 0}, `[2]`},
		{"recursive type", `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`,
			[]byte{2, 0}, "!recursive type Node"},
		{"decimal precision too large", `{"type":"bytes","logicalType":"decimal","precision":40,"scale":0}`,
			[]byte{2, 1}, "!does not fit Iceberg's decimal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subject := strings.ReplaceAll(tc.name, " ", "-")
			id := r.register(subject, tc.schema)
			c := mustNew(t, Config{Topic: subject, ValueType: TypeBySchemaID, Registry: r.client}, nil)
			rec := Record{Value: append(wireHeader(id), tc.payload...)}
			err := c.Add(ctx, rec)
			if errors.Is(err, ErrSchemaChange) {
				if err := c.Evolve(c.ProposedSchema()); err != nil {
					t.Fatal(err)
				}
				err = c.Add(ctx, rec)
			}
			if strings.HasPrefix(tc.want, "!") {
				wantInvalid(t, err, tc.want[1:])
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := js(t, flushRows(t, c)[0][ColumnValue]); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// TestWritable pins the type promotions the merge accepts.
func TestWritable(t *testing.T) {
	p := iceberg.PrimitiveTypes
	cases := []struct {
		table, src iceberg.PrimitiveType
		out        iceberg.PrimitiveType
		widened    bool
		ok         bool
	}{
		{p.Int32, p.Int32, p.Int32, false, true},
		{p.Int32, p.Int64, p.Int64, true, true},
		{p.Int64, p.Int32, p.Int64, false, true},
		{p.Float32, p.Float64, p.Float64, true, true},
		{p.Float64, p.Float32, p.Float64, false, true},
		{iceberg.DecimalTypeOf(9, 2), iceberg.DecimalTypeOf(12, 2), iceberg.DecimalTypeOf(12, 2), true, true},
		{iceberg.DecimalTypeOf(12, 2), iceberg.DecimalTypeOf(9, 2), iceberg.DecimalTypeOf(12, 2), false, true},
		{iceberg.DecimalTypeOf(12, 2), iceberg.DecimalTypeOf(12, 3), nil, false, false},
		{p.Binary, iceberg.FixedTypeOf(4), p.Binary, false, true},
		{iceberg.FixedTypeOf(4), p.Binary, nil, false, false},
		{iceberg.FixedTypeOf(4), iceberg.FixedTypeOf(8), nil, false, false},
		{p.String, p.UUID, p.String, false, true},
		{p.UUID, p.String, nil, false, false},
		{p.Int32, p.String, nil, false, false},
		{p.String, p.Int32, nil, false, false},
		{p.TimestampTz, p.Timestamp, nil, false, false},
		{p.Int64, p.Float64, nil, false, false},
	}
	for _, tc := range cases {
		out, widened, ok := writable(tc.table, tc.src)
		if ok != tc.ok || widened != tc.widened || (ok && !out.Equals(tc.out)) {
			t.Errorf("writable(%s, %s) = %v, %v, %v", tc.table, tc.src, out, widened, ok)
		}
	}
}
