package convert

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"ex","fields":[
		{"name":"id","type":"int"},
		{"name":"amount","type":"float"},
		{"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"name","type":"string"}]}},
		{"name":"tags","type":{"type":"array","items":"int"}}]}`
	// v2 adds a nested field and a top-level one.
	orderV2 = `{"type":"record","name":"Order","namespace":"ex","fields":[
		{"name":"id","type":"int"},
		{"name":"amount","type":"float"},
		{"name":"customer","type":{"type":"record","name":"Customer","fields":[
			{"name":"name","type":"string"},{"name":"tier","type":["null","string"],"default":null}]}},
		{"name":"tags","type":{"type":"array","items":"int"}},
		{"name":"note","type":["null","string"],"default":null}]}`
	// v3 widens int->long (top-level and list element), float->double,
	// and drops note.
	orderV3 = `{"type":"record","name":"Order","namespace":"ex","fields":[
		{"name":"id","type":"long"},
		{"name":"amount","type":"double"},
		{"name":"customer","type":{"type":"record","name":"Customer","fields":[
			{"name":"name","type":"string"},{"name":"tier","type":["null","string"],"default":null}]}},
		{"name":"tags","type":{"type":"array","items":"long"}}]}`
	// v4 changes id to a string: not an Iceberg evolution.
	orderV4 = `{"type":"record","name":"Order","namespace":"ex","fields":[
		{"name":"id","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"name","type":"string"}]}},
		{"name":"tags","type":{"type":"array","items":"long"}}]}`
)

// TestEvolution walks v1 -> v2 -> v3, committing each proposal through
// iceberg-go's own UpdateSchema.UnionByNameWith (what a pipeline commit
// does), and checks field ids, types, and that older records still convert.
func TestEvolution(t *testing.T) {
	r := newTestRegistry(t)
	v1 := r.register("orders-value", orderV1)
	v2 := r.register("orders-value", orderV2)
	v3 := r.register("orders-value", orderV3)
	v4 := r.register("orders-value", orderV4)
	ctx := context.Background()
	c := mustNew(t, Config{Topic: "orders", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil)

	// The table as a catalog would create it from the initial schema.
	meta, err := table.NewMetadata(c.Schema(), iceberg.UnpartitionedSpec, table.UnsortedSortOrder, "file:///tmp/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	// commit applies the proposal the way the pipeline would, and checks
	// that iceberg-go's union gives exactly the proposed schema.
	commit := func(rec Record) {
		t.Helper()
		err := c.Add(ctx, rec)
		if !errors.Is(err, ErrSchemaChange) {
			t.Fatalf("Add: %v, want ErrSchemaChange", err)
		}
		if c.Rows() != 0 && c.Flush() == nil {
			t.Fatal("Flush lost rows")
		}
		proposed := c.ProposedSchema()
		tbl := table.New(table.Identifier{"db", "orders"}, meta, "", nil, nil)
		tx := tbl.NewTransaction()
		applied, err := tx.UpdateSchema(true, false).UnionByNameWith(proposed).Apply()
		if err != nil {
			t.Fatalf("iceberg-go rejects the proposal: %v\n%s", err, proposed)
		}
		if !applied.Equals(proposed) {
			t.Errorf("iceberg-go's union differs from the proposal:\n%s\nproposed\n%s", applied, proposed)
		}
		b, err := table.MetadataBuilderFromBase(meta, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.AddSchema(applied); err != nil {
			t.Fatal(err)
		}
		if err := b.SetCurrentSchemaID(-1); err != nil {
			t.Fatal(err)
		}
		if meta, err = b.Build(); err != nil {
			t.Fatal(err)
		}
		if err := c.Evolve(meta.CurrentSchema()); err != nil {
			t.Fatal(err)
		}
		if err := c.Add(ctx, rec); err != nil {
			t.Fatalf("Add after Evolve: %v", err)
		}
	}

	commit(Record{Offset: 1, Value: wire(t, v1, orderV1, map[string]any{
		"id": int32(1), "amount": float32(1.5), "customer": map[string]any{"name": "ann"}, "tags": []any{int32(1)}})})
	ids1 := fieldIDs(t, c.Schema())
	// Depth-first, as iceberg-go assigns ids: a field, then what it nests.
	want1 := map[string]int{"id": 10, "amount": 11, "customer": 12, "customer.name": 13, "tags": 14, "tags.element": 15}
	for path, id := range want1 {
		if ids1[path] != id {
			t.Errorf("v1: id of %s = %d, want %d", path, ids1[path], id)
		}
	}

	commit(Record{Offset: 2, Value: wire(t, v2, orderV2, map[string]any{
		"id": int32(2), "amount": float32(2.5), "customer": map[string]any{"name": "bo", "tier": "gold"}, "tags": []any{}, "note": "hi"})})
	ids2 := fieldIDs(t, c.Schema())
	for path, id := range want1 {
		if ids2[path] != id {
			t.Errorf("v2 moved %s from id %d to %d", path, id, ids2[path])
		}
	}
	if ids2["customer.tier"] != 16 || ids2["note"] != 17 {
		t.Errorf("v2 new ids: tier %d, note %d, want 16, 17", ids2["customer.tier"], ids2["note"])
	}

	commit(Record{Offset: 3, Value: wire(t, v3, orderV3, map[string]any{
		"id": int64(1) << 40, "amount": 3.25, "customer": map[string]any{"name": "cy", "tier": nil}, "tags": []any{int64(1) << 33}})})
	ids3 := fieldIDs(t, c.Schema())
	if len(ids3) != len(ids2) {
		t.Errorf("v3 changed the column set: %v", ids3)
	}
	for path, id := range ids2 {
		if ids3[path] != id {
			t.Errorf("v3 moved %s from id %d to %d", path, id, ids3[path])
		}
	}
	s := c.Schema()
	for name, want := range map[string]iceberg.Type{
		"id": iceberg.PrimitiveTypes.Int64, "amount": iceberg.PrimitiveTypes.Float64,
		"tags.element": iceberg.PrimitiveTypes.Int64, "note": iceberg.PrimitiveTypes.String,
	} {
		if got, ok := s.FindTypeByName(name); !ok || !got.Equals(want) {
			t.Errorf("v3: %s is %v, want %s", name, got, want)
		}
	}

	// Older schemas convert into the v3 table with no change: nulls for
	// what they lack, widened values.
	for _, rec := range []Record{
		{Offset: 4, Value: wire(t, v1, orderV1, map[string]any{
			"id": int32(-4), "amount": float32(0.5), "customer": map[string]any{"name": "old"}, "tags": []any{int32(7)}})},
		{Offset: 5, Value: wire(t, v2, orderV2, map[string]any{
			"id": int32(5), "amount": float32(5), "customer": map[string]any{"name": "mid", "tier": "x"}, "tags": []any{}, "note": "n"})},
	} {
		if err := c.Add(ctx, rec); err != nil {
			t.Fatalf("offset %d: %v", rec.Offset, err)
		}
	}
	rows := flushRows(t, c)
	want := []string{
		`{"amount":3.25,"customer":{"name":"cy","tier":null},"id":1099511627776,"note":null,"tags":[8589934592]}`,
		`{"amount":0.5,"customer":{"name":"old","tier":null},"id":-4,"note":null,"tags":[7]}`,
		`{"amount":5,"customer":{"name":"mid","tier":"x"},"id":5,"note":"n","tags":[]}`,
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows", len(rows))
	}
	for i, row := range rows {
		delete(row, ColumnKey)
		delete(row, ColumnHeaders)
		delete(row, ColumnMetadata)
		if got := js(t, row); got != want[i] {
			t.Errorf("row %d: %s\nwant %s", i, got, want[i])
		}
	}

	// v4 narrows id to a string: invalid, with the column named.
	err = c.Add(ctx, Record{Value: wire(t, v4, orderV4, map[string]any{
		"id": "x", "amount": 1.0, "customer": map[string]any{"name": "z"}, "tags": []any{}})})
	wantInvalid(t, err, "id is long in the table, the record has string")
}

// TestEvolveByName: a catalog that assigns its own ids (or a table created
// elsewhere) is adopted by column name; rows carry the table's ids.
func TestEvolveByName(t *testing.T) {
	r := newTestRegistry(t)
	v1 := r.register("orders-value", orderV1)
	c := mustNew(t, Config{Topic: "orders", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil)
	rec := Record{Value: wire(t, v1, orderV1, map[string]any{
		"id": int32(1), "amount": float32(1.5), "customer": map[string]any{"name": "ann"}, "tags": []any{int32(1)}})}
	if err := c.Add(context.Background(), rec); !errors.Is(err, ErrSchemaChange) {
		t.Fatal(err)
	}
	next := 100
	renumbered, err := iceberg.AssignFreshSchemaIDs(c.ProposedSchema(), func() int { next++; return next })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Evolve(renumbered); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	got := c.Flush()
	defer got.Release()
	idField, _ := got.Schema().FieldsByName("id")
	// Ids 101..109 went to the Kafka columns, 110 to id.
	if v, _ := idField[0].Metadata.GetValue("PARQUET:field_id"); v != "110" {
		t.Errorf("id column carries field id %q, want 110", v)
	}
	// A later proposal allocates above the renumbered ids.
	v2 := r.register("orders-value", orderV2)
	err = c.Add(context.Background(), Record{Value: wire(t, v2, orderV2, map[string]any{
		"id": int32(2), "amount": float32(2.5), "customer": map[string]any{"name": "bo", "tier": nil}, "tags": []any{}, "note": nil})})
	if !errors.Is(err, ErrSchemaChange) {
		t.Fatal(err)
	}
	if f, ok := c.ProposedSchema().FindFieldByName("note"); !ok || f.ID <= next {
		t.Errorf("new column id %d not above %d", f.ID, next)
	}
}

// TestExternalRequiredColumns: a table created elsewhere with required
// columns is made optional where records may lack them, and the Kafka
// columns are added.
func TestExternalRequiredColumns(t *testing.T) {
	r := newTestRegistry(t)
	v1 := r.register("orders-value", orderV1)
	ext := iceberg.NewSchema(3,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "legacy", Type: iceberg.PrimitiveTypes.String, Required: true},
	)
	c := mustNew(t, Config{Topic: "orders", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client, LastColumnID: 50}, ext)
	rec := Record{Value: wire(t, v1, orderV1, map[string]any{
		"id": int32(1), "amount": float32(1.5), "customer": map[string]any{"name": "ann"}, "tags": []any{}})}
	if err := c.Add(context.Background(), rec); !errors.Is(err, ErrSchemaChange) {
		t.Fatal(err)
	}
	p := c.ProposedSchema()
	if p.ID != 4 {
		t.Errorf("proposed schema id %d, want 4", p.ID)
	}
	for _, name := range []string{"id", "legacy"} {
		if f, _ := p.FindFieldByName(name); f.Required {
			t.Errorf("%s still required", name)
		}
	}
	if f, _ := p.FindFieldByName("id"); f.ID != 1 || !f.Type.Equals(iceberg.PrimitiveTypes.Int64) {
		t.Errorf("id changed: %v", f)
	}
	if f, ok := p.FindFieldByName(ColumnKey); !ok || f.ID != 51 {
		t.Errorf("key column %v: want id 51 (above last-column-id)", f)
	}
	if f, ok := p.FindFieldByName(ColumnMetadata); !ok || f.Required {
		t.Errorf("metadata column %v: added columns must be optional", f)
	}
	if err := c.Evolve(p); err != nil {
		t.Fatal(err)
	}
	addEvolving(t, c, rec)
	rows := flushRows(t, c)
	if got := js(t, rows[0]["legacy"]); got != "null" {
		t.Errorf("legacy = %s", got)
	}
}
