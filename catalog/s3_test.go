package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// row is one record of the test tables; score is nil before the schema
// evolution added it.
type row struct {
	id    int64
	name  string
	score *float64
}

func f64(v float64) *float64 { return &v }

// arrowRows builds an Arrow table for rows, with the score column only when
// withScore is set.
func arrowRows(t *testing.T, rows []row, withScore bool) arrow.Table {
	t.Helper()
	fields := []arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}
	if withScore {
		fields = append(fields, arrow.Field{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	sc := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		b.Field(1).(*array.StringBuilder).Append(r.name)
		if withScore {
			if r.score == nil {
				b.Field(2).(*array.Float64Builder).AppendNull()
			} else {
				b.Field(2).(*array.Float64Builder).Append(*r.score)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tbl := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	t.Cleanup(tbl.Release)
	return tbl
}

// scanRows reads every row of tbl back, sorted by id.
func scanRows(ctx context.Context, t *testing.T, tbl *table.Table) []row {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan %v: %v", tbl.Identifier(), err)
	}
	defer at.Release()
	sc := at.Schema()
	col := func(name string) int {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return -1
		}
		return idx[0]
	}
	idCol, nameCol, scoreCol := col("id"), col("name"), col("score")
	if idCol < 0 || nameCol < 0 {
		t.Fatalf("scan schema lacks id or name: %v", sc)
	}
	var out []row
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		ids := rec.Column(idCol).(*array.Int64)
		names := rec.Column(nameCol).(*array.String)
		var scores *array.Float64
		if scoreCol >= 0 {
			scores = rec.Column(scoreCol).(*array.Float64)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			r := row{id: ids.Value(i), name: names.Value(i)}
			if scores != nil && scores.IsValid(i) {
				r.score = f64(scores.Value(i))
			}
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func formatRows(rows []row) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		score := "null"
		if r.score != nil {
			score = fmt.Sprint(*r.score)
		}
		parts[i] = fmt.Sprintf("(%d,%s,%s)", r.id, r.name, score)
	}
	return strings.Join(parts, " ")
}

// TestRESTClientS3 drives iceberg-go's REST client against the catalog with
// an S3 warehouse on versitygw: create a table, append Arrow data, add a
// column, append again and read everything back. The client holds no S3
// secret of its own: it gets the endpoint from /v1/config and credentials
// vended with the table, so this also checks what engines are handed.
func TestRESTClientS3(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wh, io := s3Warehouse(t)
	// The client must not find credentials anywhere but in the catalog.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	ts := newTestServer(t, withWarehouse(wh, io), withAuth("engine", "s3cr3t"))
	cat := ts.restClient(t, nil)

	ns := table.Identifier{"sales"}
	ident := table.Identifier{"sales", "orders"}
	if err := cat.CreateNamespace(ctx, ns, iceberg.Properties{"owner": "test"}); err != nil {
		t.Fatal(err)
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
	)
	tbl, err := cat.CreateTable(ctx, ident, schema)
	if err != nil {
		t.Fatal(err)
	}
	if want := wh + "/sales.db/orders"; tbl.Location() != want {
		t.Fatalf("table location = %q, want %q", tbl.Location(), want)
	}
	if !strings.HasPrefix(tbl.MetadataLocation(), wh+"/sales.db/orders/metadata/") {
		t.Fatalf("metadata location %q is not under the table location", tbl.MetadataLocation())
	}

	first := []row{{1, "ada", nil}, {2, "brian", nil}, {3, "claude", nil}}
	// The id column is required in Iceberg; Arrow's field is non-nullable too.
	tbl, err = tbl.AppendTable(ctx, arrowRows(t, first, false), 1024, nil)
	if err != nil {
		t.Fatalf("first append: %v", err)
	}

	tx := tbl.NewTransaction()
	if err := tx.UpdateSchema(true, false).AddColumn([]string{"score"}, iceberg.PrimitiveTypes.Float64, "added later", false, nil).Commit(); err != nil {
		t.Fatalf("add column: %v", err)
	}
	if tbl, err = tx.Commit(ctx); err != nil {
		t.Fatalf("commit schema change: %v", err)
	}

	second := []row{{4, "dennis", f64(0.5)}, {5, "edsger", nil}}
	if _, err = tbl.AppendTable(ctx, arrowRows(t, second, true), 1024, nil); err != nil {
		t.Fatalf("second append: %v", err)
	}

	// Read back through a fresh load, as another engine would.
	loaded, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(loaded.Schema().Fields()); got != 3 {
		t.Fatalf("schema has %d fields after evolution, want 3: %v", got, loaded.Schema())
	}
	if n := len(loaded.Metadata().Snapshots()); n != 2 {
		t.Fatalf("table has %d snapshots, want 2 (one per append)", n)
	}
	got := scanRows(ctx, t, loaded)
	want := append(append([]row{}, first...), second...)
	if formatRows(got) != formatRows(want) {
		t.Fatalf("scanned rows\n got %s\nwant %s", formatRows(got), formatRows(want))
	}
}
