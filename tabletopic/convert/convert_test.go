package convert

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
)

const userV1 = `{"type":"record","name":"User","namespace":"ex","fields":[
	{"name":"id","type":"long"},
	{"name":"name","type":"string"},
	{"name":"email","type":["null","string"],"default":null}]}`

const userKey = `{"type":"record","name":"UserKey","namespace":"ex","fields":[{"name":"id","type":"long"}]}`

func TestConfigValidate(t *testing.T) {
	reg := newTestRegistry(t).client
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Topic: "t"}, true},
		{"unknown type", Config{Topic: "t", ValueType: "json"}, false},
		{"schema type without registry", Config{Topic: "t", ValueType: TypeBySchemaID}, false},
		{"flatten raw", Config{Topic: "t", Transform: TransformFlatten}, false},
		{"unknown transform", Config{Topic: "t", ValueType: TypeBySchemaID, Registry: reg, Transform: "x"}, false},
		{"latest without topic", Config{ValueType: TypeByLatestSchema, Registry: reg}, false},
		{"latest with subject", Config{ValueType: TypeByLatestSchema, ValueSubject: "s", Registry: reg}, true},
		{"flatten debezium", Config{Topic: "t", ValueType: TypeBySchemaID, Registry: reg, Transform: TransformFlattenDebezium}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestModes converts the same kinds of records under every key/value type
// and transform and checks the rows.
func TestModes(t *testing.T) {
	r := newTestRegistry(t)
	valueID := r.register("users-value", userV1)
	keyID := r.register("users-key", userKey)
	userVal := map[string]any{"id": int64(7), "name": "ann", "email": "a@x"}
	hdrs := []Header{{Key: "trace", Value: []byte("t1")}, {Key: "trace", Value: nil}}

	cases := []struct {
		name    string
		cfg     Config
		rec     Record
		columns string // top-level columns, in order
		want    string // the row without _kafka_metadata and _kafka_headers
	}{
		{
			name:    "raw",
			cfg:     Config{Topic: "users", KeyType: TypeRaw},
			rec:     Record{Key: []byte{0xff, 0}, Value: []byte("v\x00\xff")},
			columns: "_kafka_key _kafka_headers _kafka_metadata _kafka_value",
			want:    `{"_kafka_key":"/wA=","_kafka_value":"dgD/"}`,
		},
		{
			name:    "string",
			cfg:     Config{Topic: "users", ValueType: TypeString},
			rec:     Record{Key: []byte("k"), Value: []byte("héllo")},
			columns: "_kafka_key _kafka_headers _kafka_metadata _kafka_value",
			want:    `{"_kafka_key":"k","_kafka_value":"héllo"}`,
		},
		{
			name:    "null key and value",
			cfg:     Config{Topic: "users", ValueType: TypeString},
			rec:     Record{},
			columns: "_kafka_key _kafka_headers _kafka_metadata _kafka_value",
			want:    `{"_kafka_key":null,"_kafka_value":null}`,
		},
		{
			name:    "by_schema_id none",
			cfg:     Config{Topic: "users", ValueType: TypeBySchemaID, Registry: r.client},
			rec:     Record{Key: []byte("k"), Value: wire(t, valueID, userV1, userVal)},
			columns: "_kafka_key _kafka_headers _kafka_metadata _kafka_value",
			want:    `{"_kafka_key":"k","_kafka_value":{"email":"a@x","id":7,"name":"ann"}}`,
		},
		{
			name:    "by_schema_id flatten with schema key",
			cfg:     Config{Topic: "users", ValueType: TypeBySchemaID, KeyType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client},
			rec:     Record{Key: wire(t, keyID, userKey, map[string]any{"id": int64(7)}), Value: wire(t, valueID, userV1, userVal)},
			columns: "_kafka_headers _kafka_metadata _kafka_key id name email",
			want:    `{"_kafka_key":{"id":7},"email":"a@x","id":7,"name":"ann"}`,
		},
		{
			name:    "flatten tombstone",
			cfg:     Config{Topic: "users", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client},
			rec:     Record{Key: []byte("k")},
			columns: "_kafka_key _kafka_headers _kafka_metadata",
			want:    `{"_kafka_key":"k"}`,
		},
		{
			name:    "by_latest_schema with wire header",
			cfg:     Config{Topic: "users", ValueType: TypeByLatestSchema, Transform: TransformFlatten, Registry: r.client},
			rec:     Record{Key: []byte("k"), Value: wire(t, valueID, userV1, userVal)},
			columns: "_kafka_key _kafka_headers _kafka_metadata id name email",
			want:    `{"_kafka_key":"k","email":"a@x","id":7,"name":"ann"}`,
		},
		{
			name:    "by_latest_schema bare payload",
			cfg:     Config{Topic: "users", ValueType: TypeByLatestSchema, Transform: TransformFlatten, Registry: r.client},
			rec:     Record{Key: []byte("k"), Value: avroBytes(t, userV1, map[string]any{"id": int64(8), "name": "bo", "email": nil})},
			columns: "_kafka_key _kafka_headers _kafka_metadata id name email",
			want:    `{"_kafka_key":"k","email":null,"id":8,"name":"bo"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, tc.cfg, nil)
			rec := tc.rec
			rec.Partition, rec.Offset, rec.TimestampMs, rec.Headers = 3, 42, 1700000000123, hdrs
			addEvolving(t, c, rec)
			var names []string
			for _, f := range c.Schema().Fields() {
				names = append(names, f.Name)
			}
			if got := joinWords(names); got != tc.columns {
				t.Errorf("columns %q, want %q", got, tc.columns)
			}
			if c.Rows() != 1 || c.EstimatedBytes() <= 0 {
				t.Errorf("Rows %d, EstimatedBytes %d", c.Rows(), c.EstimatedBytes())
			}
			rows := flushRows(t, c)
			if len(rows) != 1 {
				t.Fatalf("%d rows", len(rows))
			}
			row := rows[0]
			if got := js(t, row[ColumnMetadata]); got != `{"offset":42,"partition":3,"timestamp":"2023-11-14T22:13:20.123Z"}` {
				t.Errorf("metadata %s", got)
			}
			if got := js(t, row[ColumnHeaders]); got != `[{"key":"trace","value":"dDE="},{"key":"trace","value":null}]` {
				t.Errorf("headers %s", got)
			}
			delete(row, ColumnMetadata)
			delete(row, ColumnHeaders)
			if got := js(t, row); got != tc.want {
				t.Errorf("row %s\nwant %s", got, tc.want)
			}
			if c.Rows() != 0 || c.EstimatedBytes() != 0 || c.Flush() != nil {
				t.Errorf("Flush did not reset")
			}
		})
	}
}

func joinWords(s []string) string {
	out := ""
	for i, w := range s {
		if i > 0 {
			out += " "
		}
		out += w
	}
	return out
}

// TestNewTableSchema checks the schema of a table to be created: the Kafka
// columns with ids 1.., metadata required, and by_latest_schema's columns.
func TestNewTableSchema(t *testing.T) {
	r := newTestRegistry(t)
	c := mustNew(t, Config{Topic: "t"}, nil)
	want := `table {
	1: _kafka_key: optional string
	2: _kafka_headers: optional list<struct<4: key: required string, 5: value: optional binary>>
	6: _kafka_metadata: required struct<7: partition: required int, 8: offset: required long, 9: timestamp: required timestamptz>
	10: _kafka_value: optional binary
}`
	if got := c.Schema().String(); got != want {
		t.Errorf("raw schema:\n%s\nwant\n%s", got, want)
	}
	// The ids match what iceberg-go's catalogs assign on create.
	fresh, err := iceberg.AssignFreshSchemaIDs(c.Schema(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !fresh.Equals(c.Schema()) {
		t.Errorf("fresh ids differ:\n%s", fresh)
	}

	// by_latest_schema: no subject yet -> Kafka columns only; then the
	// subject's columns.
	cfg := Config{Topic: "u", ValueType: TypeByLatestSchema, Transform: TransformFlatten, Registry: r.client}
	if c := mustNew(t, cfg, nil); c.Schema().NumFields() != 3 {
		t.Errorf("no subject: %s", c.Schema())
	}
	r.register("u-value", userV1)
	c = mustNew(t, cfg, nil)
	if _, ok := c.Schema().FindFieldByName("email"); !ok || c.Schema().NumFields() != 6 {
		t.Errorf("latest schema columns missing: %s", c.Schema())
	}
}

func TestInvalidRecords(t *testing.T) {
	r := newTestRegistry(t)
	valueID := r.register("users-value", userV1)
	jsonID := r.register("j-value", `{"type":"object"}`, "JSON")
	good := wire(t, valueID, userV1, map[string]any{"id": int64(1), "name": "x", "email": nil})
	ctx := context.Background()
	base := Config{Topic: "users", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}
	cases := []struct {
		name     string
		cfg      Config
		rec      Record
		contains string
	}{
		{"string value not utf8", Config{Topic: "t", ValueType: TypeString}, Record{Value: []byte{0xff}}, "value: not valid UTF-8"},
		{"string key not utf8", Config{Topic: "t"}, Record{Key: []byte{0xc3}}, "key: not valid UTF-8"},
		{"header key not utf8", Config{Topic: "t"}, Record{Headers: []Header{{Key: "\xff"}}}, "header 0"},
		{"short", base, Record{Value: []byte{0, 0, 1}}, "too short"},
		{"wrong magic", base, Record{Value: append([]byte{1}, good[1:]...)}, "magic byte 1"},
		{"unknown id", base, Record{Value: append(wireHeader(9999), good[5:]...)}, "schema id 9999 is not registered"},
		{"json schema", base, Record{Value: append(wireHeader(jsonID), '{', '}')}, "only Avro"},
		{"truncated", base, Record{Value: good[:len(good)-2]}, "truncated"},
		{"trailing bytes", base, Record{Value: append(good[:len(good):len(good)], 0)}, "left over"},
		{"bad union index", base, Record{Value: append(good[:len(good)-1:len(good)-1], 4)}, "union index 2"},
		{"string field not utf8", base, Record{Value: append(wireHeader(valueID), 2, 2, 0xff, 0)}, "UTF-8"},
		{"negative length", base, Record{Value: append(wireHeader(valueID), 2, 3)}, "negative length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, tc.cfg, nil)
			var err error
			for range 2 { // the second time with the table evolved, if it needed it
				if err = c.Add(ctx, tc.rec); errors.Is(err, ErrSchemaChange) {
					if err := c.Evolve(c.ProposedSchema()); err != nil {
						t.Fatal(err)
					}
					continue
				}
				break
			}
			wantInvalid(t, err, tc.contains)
			if c.Rows() != 0 {
				t.Fatalf("an invalid record left %d rows", c.Rows())
			}
			// The converter still works afterwards.
			if tc.cfg.ValueType == TypeBySchemaID {
				addEvolving(t, c, Record{Value: good})
				if rows := flushRows(t, c); len(rows) != 1 || js(t, rows[0]["name"]) != `"x"` {
					t.Fatalf("good record after a bad one: %v", rows)
				}
			}
		})
	}
}

// TestRegistryUnavailable: a registry error that is not "not found" must
// not send the record to the dead-letter table.
func TestRegistryUnavailable(t *testing.T) {
	r := newTestRegistry(t)
	id := r.register("users-value", userV1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := mustNew(t, Config{Topic: "users", ValueType: TypeBySchemaID, Registry: r.client}, nil)
	err := c.Add(ctx, Record{Value: wire(t, id, userV1, map[string]any{"id": int64(1), "name": "x", "email": nil})})
	if err == nil || errors.Is(err, ErrInvalidRecord) || errors.Is(err, ErrSchemaChange) {
		t.Fatalf("canceled registry call: %v", err)
	}
}

func TestEvolvePendingRows(t *testing.T) {
	c := mustNew(t, Config{Topic: "t"}, nil)
	if err := c.Add(context.Background(), Record{Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Evolve(c.Schema()); !errors.Is(err, ErrPendingRows) {
		t.Fatalf("Evolve with pending rows: %v", err)
	}
}

// TestLatestSchemaRefresh: by_latest_schema asks the registry again after
// the TTL, and keeps its last answer when the registry cannot be read.
func TestLatestSchemaRefresh(t *testing.T) {
	r := newTestRegistry(t)
	r.register("orders-value", orderV1)
	c := mustNew(t, Config{Topic: "orders", ValueType: TypeByLatestSchema, Transform: TransformFlatten, Registry: r.client}, nil)
	now := time.Now() // New read the subject with the real clock
	c.now = func() time.Time { return now }
	v1rec := Record{Value: avroBytes(t, orderV1, map[string]any{
		"id": int32(1), "amount": float32(1), "customer": map[string]any{"name": "a"}, "tags": []any{}})}
	addEvolving(t, c, v1rec)

	r.register("orders-value", orderV2)
	v2rec := Record{Value: avroBytes(t, orderV2, map[string]any{
		"id": int32(2), "amount": float32(2), "customer": map[string]any{"name": "b", "tier": "t"}, "tags": []any{}, "note": "n"})}
	// Within the TTL the v1 schema is still used: v2's bytes do not fit it.
	wantInvalid(t, c.Add(context.Background(), v2rec), "value: ")

	now = now.Add(DefaultLatestSchemaTTL)
	if !addEvolving(t, c, v2rec) {
		t.Fatal("v2 did not evolve the table")
	}
	if _, ok := c.Schema().FindFieldByName("note"); !ok {
		t.Fatalf("note column missing: %s", c.Schema())
	}

	// The registry cannot be read (canceled context): the cached latest
	// schema is used.
	now = now.Add(DefaultLatestSchemaTTL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Add(ctx, v2rec); err != nil {
		t.Fatalf("Add with an unreachable registry and a cached schema: %v", err)
	}
	if rows := flushRows(t, c); len(rows) != 2 || js(t, rows[1]["note"]) != `"n"` {
		t.Fatalf("rows %v", rows)
	}
}

// TestFlattenNonRecord: a flattened value whose schema is not a record
// goes to _kafka_value.
func TestFlattenNonRecord(t *testing.T) {
	r := newTestRegistry(t)
	id := r.register("s-value", `{"type":"array","items":"string"}`)
	c := mustNew(t, Config{Topic: "s", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil)
	addEvolving(t, c, Record{Value: wire(t, id, `{"type":"array","items":"string"}`, []any{"a", "b"})})
	if f, ok := c.Schema().FindFieldByName(ColumnValue); !ok || f.Type.String() != "list<string>" {
		t.Fatalf("value column: %v", f)
	}
	if rows := flushRows(t, c); js(t, rows[0][ColumnValue]) != `["a","b"]` {
		t.Fatalf("rows %v", rows)
	}
}
