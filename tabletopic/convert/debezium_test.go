package convert

import (
	"context"
	"testing"
)

const debeziumEnvelope = `{"type":"record","name":"Envelope","namespace":"dbserver1.inventory.customers","fields":[
	{"name":"before","type":["null",{"type":"record","name":"Value","fields":[
		{"name":"id","type":"int"},{"name":"email","type":"string"}]}],"default":null},
	{"name":"after","type":["null","Value"],"default":null},
	{"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.mysql","fields":[
		{"name":"connector","type":"string"},{"name":"ts_ms","type":"long"},
		{"name":"snapshot","type":[{"type":"enum","name":"SnapshotRecord","symbols":["true","last","false"]},"null"],"default":"false"}]}},
	{"name":"op","type":"string"},
	{"name":"ts_ms","type":["null","long"],"default":null},
	{"name":"transaction","type":["null",{"type":"record","name":"block","namespace":"event","fields":[
		{"name":"id","type":"string"},{"name":"total_order","type":"long"}]}],"default":null}]}`

func TestFlattenDebezium(t *testing.T) {
	r := newTestRegistry(t)
	id := r.register("dbserver1.inventory.customers-value", debeziumEnvelope)
	c := mustNew(t, Config{Topic: "dbserver1.inventory.customers", ValueType: TypeBySchemaID,
		Transform: TransformFlattenDebezium, Registry: r.client}, nil)
	source := map[string]any{"connector": "mysql", "ts_ms": int64(1), "snapshot": map[string]any{"io.debezium.connector.mysql.SnapshotRecord": "false"}}
	src := map[string]any{"connector": "mysql", "ts_ms": int64(1), "snapshot": nil}
	img := func(id int32, email string) any {
		return map[string]any{"dbserver1.inventory.customers.Value": map[string]any{"id": id, "email": email}}
	}
	env := func(op string, before, after any, s map[string]any) []byte {
		return wire(t, id, debeziumEnvelope, map[string]any{"before": before, "after": after, "source": s, "op": op,
			"ts_ms": map[string]any{"long": int64(2)}, "transaction": nil})
	}
	records := []Record{
		{Offset: 0, Key: []byte("1"), Value: env("r", nil, img(1, "snap@x"), source)},
		{Offset: 1, Key: []byte("2"), Value: env("c", nil, img(2, "a@x"), src)},
		{Offset: 2, Key: []byte("2"), Value: env("u", img(2, "a@x"), img(2, "b@x"), src)},
		{Offset: 3, Key: []byte("2"), Value: env("d", img(2, "b@x"), nil, src)},
		{Offset: 4, Key: []byte("2")}, // the tombstone after a delete: no row
		{Offset: 5, Value: env("t", nil, nil, src)},
	}
	for _, rec := range records {
		addEvolving(t, c, rec)
	}
	var names []string
	for _, f := range c.Schema().Fields() {
		names = append(names, f.Name)
	}
	if got := joinWords(names); got != "_kafka_key _kafka_headers _kafka_metadata _cdc_op id email" {
		t.Errorf("columns %s", got)
	}
	rows := flushRows(t, c)
	want := []string{
		`{"_cdc_op":"r","email":"snap@x","id":1}`,
		`{"_cdc_op":"c","email":"a@x","id":2}`,
		`{"_cdc_op":"u","email":"b@x","id":2}`,
		`{"_cdc_op":"d","email":"b@x","id":2}`,
		`{"_cdc_op":"t","email":null,"id":null}`,
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, row := range rows {
		delete(row, ColumnKey)
		delete(row, ColumnHeaders)
		delete(row, ColumnMetadata)
		if got := js(t, row); got != want[i] {
			t.Errorf("row %d: %s, want %s", i, got, want[i])
		}
	}

	// A value that is not an envelope is invalid.
	plain := r.register("plain-value", userV1)
	err := c.Add(context.Background(), Record{Value: wire(t, plain, userV1, map[string]any{"id": int64(1), "name": "x", "email": nil})})
	wantInvalid(t, err, "not a Debezium envelope")
	// A truncated envelope is invalid, and appends nothing.
	good := env("c", nil, img(3, "c@x"), src)
	wantInvalid(t, c.Add(context.Background(), Record{Value: good[:len(good)-3]}), "truncated")
	if c.Rows() != 0 {
		t.Fatal("rows appended for an invalid envelope")
	}
}
