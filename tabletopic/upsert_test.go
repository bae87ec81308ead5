package tabletopic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"

	"github.com/floe-io/floe/catalog"
	"github.com/floe-io/floe/tabletopic/convert"
)

func TestParseKeyedConfig(t *testing.T) {
	tests := []struct {
		name    string
		configs map[string]string
		ids     []string
		cdc     string
		wantErr string
	}{
		{name: "upsert", configs: map[string]string{"table.topic.upsert.enable": "true", "table.topic.id.columns": "[id, region]"}, ids: []string{"id", "region"}},
		{name: "bare list", configs: map[string]string{"table.topic.upsert.enable": "true", "table.topic.id.columns": "id"}, ids: []string{"id"}},
		{name: "cdc without upsert", configs: map[string]string{"table.topic.cdc.field": "op", "table.topic.id.columns": "[id]"}, ids: []string{"id"}, cdc: "op"},
		{name: "debezium op by default", configs: map[string]string{
			"table.topic.id.columns": "[id]", "table.topic.upsert.enable": "true",
			"table.topic.convert.value.type": "by_schema_id", "table.topic.transform.value.type": "flatten_debezium",
		}, ids: []string{"id"}, cdc: convert.ColumnCDCOp},
		{name: "upsert without ids", configs: map[string]string{"table.topic.upsert.enable": "true"}, wantErr: "needs table.topic.id.columns"},
		{name: "cdc without ids", configs: map[string]string{"table.topic.cdc.field": "op"}, wantErr: "needs table.topic.id.columns"},
		{name: "ids alone", configs: map[string]string{"table.topic.id.columns": "[id]"}, wantErr: "needs table.topic.upsert.enable"},
		{name: "nested id", configs: map[string]string{"table.topic.upsert.enable": "true", "table.topic.id.columns": "[a.b]"}, wantErr: "top-level"},
		{name: "debezium key", configs: map[string]string{"table.topic.upsert.enable": "true", "table.topic.id.columns": "[_from_debezium_key_]"}, wantErr: "not supported"},
		{name: "twice", configs: map[string]string{"table.topic.upsert.enable": "true", "table.topic.id.columns": "[id,id]"}, wantErr: "twice"},
		{name: "unbalanced", configs: map[string]string{"table.topic.upsert.enable": "true", "table.topic.id.columns": "[id"}, wantErr: "unbalanced"},
		{name: "cdc is an id", configs: map[string]string{"table.topic.cdc.field": "id", "table.topic.id.columns": "[id]"}, wantErr: "cannot be an id column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseTableConfig(TopicInfo{Name: "t", Configs: tt.configs})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.idColumns, tt.ids) || c.cdcField != tt.cdc || !c.keyed() {
				t.Errorf("ids %v cdc %q, want %v %q", c.idColumns, c.cdcField, tt.ids, tt.cdc)
			}
		})
	}
}

func TestCDCOp(t *testing.T) {
	for op, want := range map[string]bool{"D": true, "d": true, "I": false, "U": false, "c": false, "u": false, "r": false} {
		del, ok := convert.CDCOp(op)
		if !ok || del != want {
			t.Errorf("CDCOp(%q) = %v %v", op, del, ok)
		}
	}
	for _, op := range []string{"", "x", "DD", "delete"} {
		if _, ok := convert.CDCOp(op); ok {
			t.Errorf("CDCOp(%q) accepted", op)
		}
	}
}

// keyedTable creates a v2 table (id long required identifier, v long, op
// string) in a real catalog (floe's, over SQLite, through REST).
func keyedTable(t *testing.T, spec iceberg.PartitionSpec) (*rest.Catalog, *table.Table) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := catalog.New(ctx, catalog.Config{
		DBDriver: "sqlite", DBDSN: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse"),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	cat, err := rest.NewCatalog(ctx, "floe", hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{"ns"}, nil); err != nil {
		t.Fatal(err)
	}
	sc := iceberg.NewSchemaWithIdentifiers(0, []int{1},
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 3, Name: "op", Type: iceberg.PrimitiveTypes.String},
	)
	tbl, err := cat.CreateTable(ctx, table.Identifier{"ns", "t"}, sc,
		icecatalog.WithProperties(iceberg.Properties{table.PropertyFormatVersion: "2"}), icecatalog.WithPartitionSpec(&spec))
	if err != nil {
		t.Fatal(err)
	}
	return cat, tbl
}

type change struct {
	id, v int64
	op    string
}

// The upsert writer's files, committed as row deltas, leave exactly each
// key's latest row: within a batch (dedupe), across flushes of a round
// (position deletes) and across rounds (equality deletes), deletes and
// re-inserts included, partitioned or not.
func TestUpsertWriterRowDeltas(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec iceberg.PartitionSpec
	}{
		{"unpartitioned", *iceberg.UnpartitionedSpec},
		{"bucket", iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "id_bucket", Transform: iceberg.BucketTransform{NumBuckets: 4}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cat, tbl := keyedTable(t, tc.spec)
			sink, err := newFileSink(ctx, tbl)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tableConfig{targetFileBytes: 1 << 20, idColumns: []string{"id"}, cdcField: "op"}
			u := newUpsertWriter(sink, tbl.Spec(), &cfg, 3)
			asc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int64]int64{}
			var seq int64
			batch := func(changes ...change) {
				t.Helper()
				b := array.NewRecordBuilder(memory.DefaultAllocator, asc)
				defer b.Release()
				for _, c := range changes {
					b.Field(0).(*array.Int64Builder).Append(c.id)
					b.Field(1).(*array.Int64Builder).Append(c.v)
					b.Field(2).(*array.StringBuilder).Append(c.op)
					if c.op == "D" || c.op == "d" {
						delete(want, c.id)
					} else {
						want[c.id] = c.v
					}
				}
				rec := b.NewRecordBatch()
				defer rec.Release()
				if err := u.write(rec, tbl.Schema(), seq); err != nil {
					t.Fatal(err)
				}
				seq += int64(len(changes))
			}
			commitRound := func() {
				t.Helper()
				if err := u.endRound(); err != nil {
					t.Fatal(err)
				}
				files := u.take()
				tx := tbl.NewTransaction()
				if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
					t.Fatal(err)
				}
				if err := rowDelta(ctx, tx, tbl, files, iceberg.Properties{summaryOffsets: fmt.Sprintf(`{"3":%d}`, seq)}); err != nil {
					t.Fatal(err)
				}
				if tbl, err = tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				checkLatest(t, tbl, want)
			}
			span := func(from, to int64, v int64, op string) []change {
				var out []change
				for id := from; id < to; id++ {
					out = append(out, change{id, v, op})
				}
				return out
			}

			// Round 1: inserts; one key twice in a batch; a second flush
			// updates half of them (position deletes).
			batch(append(span(0, 100, 1, "I"), change{7, 2, "U"})...)
			batch(span(0, 50, 3, "U")...)
			commitRound()
			// Round 2: deletes and updates of rows of round 1 (equality
			// deletes); a key deleted then re-inserted, another updated
			// then deleted, across flushes.
			batch(append(span(0, 10, 0, "D"), span(10, 20, 4, "u")...)...)
			batch(change{5, 5, "c"}, change{15, 0, "d"}, change{200, 0, "D"})
			u.closeCurrent() // a schema change closes files mid-round
			batch(change{16, 6, "r"}, change{16, 7, "U"})
			commitRound()
			// Round 3: only deletes.
			batch(change{60, 0, "D"}, change{5, 0, "D"})
			commitRound()

			// The delete files are spec-shaped: equality deletes keyed on
			// the id field, position deletes with file_path and pos.
			var eq, pos int
			fs, err := tbl.FS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, snap := range tbl.Metadata().Snapshots() {
				mans, err := snap.Manifests(fs)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range mans {
					if m.ManifestContent() != iceberg.ManifestContentDeletes || m.SnapshotID() != snap.SnapshotID {
						continue
					}
					entries, err := m.FetchEntries(fs, true)
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range entries {
						df := e.DataFile()
						switch df.ContentType() {
						case iceberg.EntryContentEqDeletes:
							eq++
							if !slices.Equal(df.EqualityFieldIDs(), []int{1}) {
								t.Errorf("equality ids %v", df.EqualityFieldIDs())
							}
						case iceberg.EntryContentPosDeletes:
							pos++
						}
						if !tc.spec.IsUnpartitioned() && len(df.Partition()) != 1 {
							t.Errorf("delete file %s has partition %v", df.FilePath(), df.Partition())
						}
					}
				}
			}
			if eq == 0 || pos == 0 {
				t.Errorf("%d equality and %d position delete files; want both", eq, pos)
			}
			if tbl.Schema().IdentifierFieldIDs[0] != 1 {
				t.Errorf("identifier fields %v", tbl.Schema().IdentifierFieldIDs)
			}
			_ = cat
		})
	}
}

// checkLatest scans tbl with iceberg-go (which applies delete files) and
// compares with want.
func checkLatest(t *testing.T, tbl *table.Table, want map[int64]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, it, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]int64{}
	for rec, err := range it {
		if err != nil {
			t.Fatal(err)
		}
		ids, vs := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Int64)
		for i := range int(rec.NumRows()) {
			if _, dup := got[ids.Value(i)]; dup {
				t.Errorf("key %d has two live rows", ids.Value(i))
			}
			got[ids.Value(i)] = vs.Value(i)
		}
		rec.Release()
	}
	if len(got) != len(want) {
		t.Errorf("%d live keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %d = %d, want %d", k, got[k], v)
		}
	}
}

// A keyed table's converter rejects a record without its id or with an
// unknown operation, keeps the rest, and never flushes a rejected row.
func TestConverterRequiredColumns(t *testing.T) {
	ctx := context.Background()
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: convert.ColumnKey, Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: convert.ColumnHeaders, Type: &iceberg.ListType{ElementID: 3, ElementRequired: true, Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 4, Name: "key", Type: iceberg.PrimitiveTypes.String, Required: true},
			{ID: 5, Name: "value", Type: iceberg.PrimitiveTypes.Binary},
		}}}},
		iceberg.NestedField{ID: 6, Name: convert.ColumnMetadata, Required: true, Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 7, Name: "partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
			{ID: 8, Name: "offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
			{ID: 9, Name: "timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		}}},
		iceberg.NestedField{ID: 10, Name: convert.ColumnValue, Type: iceberg.PrimitiveTypes.String},
	)
	c, err := convert.New(ctx, convert.Config{ValueType: "string", KeyType: "string", RequiredColumns: []string{convert.ColumnKey}, CDCColumn: convert.ColumnValue}, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	recs := []struct {
		key, value []byte
		ok         bool
	}{
		{[]byte("a"), []byte("I"), true},
		{nil, []byte("I"), false},         // no key
		{[]byte("b"), []byte("X"), false}, // unknown op
		{[]byte("c"), nil, false},         // null op
		{[]byte("d"), []byte("d"), true},  // Debezium delete
		{[]byte("e"), []byte("U"), true},
	}
	for i, r := range recs {
		err := c.Add(ctx, convert.Record{Offset: int64(i), Key: r.key, Value: r.value})
		if r.ok != (err == nil) || (err != nil && !errors.Is(err, convert.ErrInvalidRecord)) {
			t.Errorf("record %d: %v", i, err)
		}
	}
	if c.Rows() != 3 {
		t.Errorf("%d rows pending, want 3", c.Rows())
	}
	rec := c.Flush()
	if rec == nil || rec.NumRows() != 3 {
		t.Fatalf("flushed %v", rec)
	}
	defer rec.Release()
	keys := rec.Column(0).(*array.String)
	if keys.Value(0) != "a" || keys.Value(1) != "d" || keys.Value(2) != "e" || keys.NullN() != 0 {
		t.Errorf("flushed keys %v", keys)
	}
	var _ arrow.RecordBatch = rec
	// Only rejected rows: nothing to flush, and the builders start afresh.
	_ = c.Add(ctx, convert.Record{Offset: 9, Value: []byte("I")})
	if r := c.Flush(); r != nil {
		t.Errorf("flushed %d rejected rows", r.NumRows())
	}
}

func FuzzParseIDColumns(f *testing.F) {
	for _, s := range []string{"[id]", "[a, b]", "a,b", "[]", "", "[a.b]", "[id", "[,]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cols, err := parseIDColumns(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range cols {
			if c == "" || strings.ContainsAny(c, ".,[] \t") || seen[c] {
				t.Fatalf("parseIDColumns(%q) = %q", s, cols)
			}
			seen[c] = true
		}
	})
}
