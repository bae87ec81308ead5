package maintain

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/catalog"
)

// testWriter sends logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// env is floe's REST catalog (SQLite, file:// warehouse) behind a real
// HTTP listener, and a REST client to it, as the table-topic pipeline
// uses.
type env struct {
	t         testing.TB
	dir       string
	warehouse string
	cat       *rest.Catalog
	reg       *prometheus.Registry
	m         *Maintainer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.warehouse = filepath.Join(e.dir, "warehouse")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := catalog.New(ctx, catalog.Config{
		DBDriver:  "sqlite",
		DBDSN:     filepath.Join(e.dir, "catalog.db"),
		Warehouse: "file://" + e.warehouse,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("catalog.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("catalog close: %v", err)
		}
	})
	if e.cat, err = rest.NewCatalog(ctx, "floe", hs.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.cat.Close() })
	if err := e.cat.CreateNamespace(ctx, table.Identifier{"default"}, nil); err != nil {
		t.Fatal(err)
	}
	e.reg = prometheus.NewRegistry()
	e.m = New(Config{Logger: testLogger(t), Registerer: e.reg})
	return e
}

// Columns of the test tables: what a raw-mode table topic holds, reduced.
var testSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "part", Type: iceberg.PrimitiveTypes.Int32, Required: true},
	iceberg.NestedField{ID: 2, Name: "off", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 3, Name: "key", Type: iceberg.PrimitiveTypes.String, Required: true},
	iceberg.NestedField{ID: 4, Name: "val", Type: iceberg.PrimitiveTypes.String},
)

// createTable makes a v2 table like the pipeline's; partitioned by
// identity(part) when partitioned, with position deletes written
// merge-on-read.
func (e *env) createTable(name string, partitioned bool) *table.Table {
	e.t.Helper()
	opts := []icecatalog.CreateTableOpt{icecatalog.WithProperties(iceberg.Properties{
		table.PropertyFormatVersion:       "2",
		"write.parquet.compression-codec": "zstd",
		table.ManifestMergeEnabledKey:     "true",
		table.WriteDeleteModeKey:          table.WriteModeMergeOnRead,
		"floe.topic":                      name,
	})}
	if partitioned {
		spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "part", Transform: iceberg.IdentityTransform{}})
		opts = append(opts, icecatalog.WithPartitionSpec(&spec))
	}
	tbl, err := e.cat.CreateTable(context.Background(), table.Identifier{"default", name}, testSchema, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return tbl
}

func (e *env) load(name string) *table.Table {
	e.t.Helper()
	tbl, err := e.cat.LoadTable(context.Background(), table.Identifier{"default", name})
	if err != nil {
		e.t.Fatal(err)
	}
	return tbl
}

// tableDir is the table's location on disk.
func (e *env) tableDir(name string) string {
	return strings.TrimPrefix(e.load(name).Location(), "file://")
}

func (e *env) target(name string) Target {
	return Target{Loader: e.cat, Ident: table.Identifier{"default", name}}
}

type testRow struct {
	part int32
	off  int64
	key  string
	val  string
}

var arrowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "part", Type: arrow.PrimitiveTypes.Int32},
	{Name: "off", Type: arrow.PrimitiveTypes.Int64},
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "val", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func arrowTable(rows []testRow) arrow.Table {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int32Builder).Append(r.part)
		b.Field(1).(*array.Int64Builder).Append(r.off)
		b.Field(2).(*array.StringBuilder).Append(r.key)
		b.Field(3).(*array.StringBuilder).Append(r.val)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(arrowSchema, []arrow.RecordBatch{rec})
}

// pipeline imitates the table-topic coordinator: each commit appends the
// rows of every partition and moves floe.offsets, conditional on the
// snapshot it read.
type pipeline struct {
	e       *env
	name    string
	next    map[int32]int64
	commits int
	mu      sync.Mutex
}

func newPipeline(e *env, name string) *pipeline {
	return &pipeline{e: e, name: name, next: map[int32]int64{}}
}

// commit appends n rows to each of parts, one data file per partition
// with a partitioned table, and commits them with the moved offsets.
func (p *pipeline) commit(parts []int32, n int) {
	p.e.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var rows []testRow
	ends := map[int32]int64{}
	for _, part := range parts {
		for i := 0; i < n; i++ {
			off := p.next[part] + int64(i)
			rows = append(rows, testRow{part: part, off: off, key: fmt.Sprintf("k-%d-%d", part, off), val: strings.Repeat("v", 64) + strconv.FormatInt(off, 10)})
		}
		ends[part] = p.next[part] + int64(n)
	}
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		tbl := p.e.load(p.name)
		offsets := readOffsets(p.e.t, tbl)
		for part, end := range ends {
			offsets[strconv.Itoa(int(part))] = end
		}
		enc, _ := json.Marshal(offsets)
		tx := tbl.NewTransaction()
		if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
			p.e.t.Fatal(err)
		}
		at := arrowTable(rows)
		err := tx.AppendTable(ctx, at, int64(len(rows)), iceberg.Properties{
			summaryOffsets:   string(enc),
			summaryTopicID:   "00112233445566778899aabbccddeeff",
			"floe.commit-id": randomID(),
		})
		at.Release()
		if err != nil {
			p.e.t.Fatal(err)
		}
		if _, err = tx.Commit(ctx); err == nil {
			break
		}
		if attempt > 10 {
			p.e.t.Fatalf("pipeline commit: %v", err)
		}
	}
	for part, end := range ends {
		p.next[part] = end
	}
	p.commits++
}

// appendForeign appends rows as another engine would: no floe.offsets.
func (e *env) appendForeign(name string, rows []testRow) {
	e.t.Helper()
	tx := e.load(name).NewTransaction()
	at := arrowTable(rows)
	defer at.Release()
	if err := tx.AppendTable(context.Background(), at, int64(len(rows)), nil); err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Commit(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// expectedRows is every (part, off) the pipeline committed.
func (p *pipeline) expectedRows() map[[2]int64]int {
	out := map[[2]int64]int{}
	for part, end := range p.next {
		for off := int64(0); off < end; off++ {
			out[[2]int64{int64(part), off}] = 1
		}
	}
	return out
}

// readOffsets is tabletopic.committedOffsets' lookup: floe.offsets of the
// newest snapshot, walking back from the current one, that has them.
func readOffsets(t testing.TB, tbl *table.Table) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	meta := tbl.Metadata()
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			if raw, ok := s.Summary.Properties[summaryOffsets]; ok {
				if err := json.Unmarshal([]byte(raw), &out); err != nil {
					t.Fatalf("floe.offsets of snapshot %d: %v", s.SnapshotID, err)
				}
				return out
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return out
}

// scanRows counts each (part, off) the table's current snapshot holds.
func scanRows(t testing.TB, tbl *table.Table) map[[2]int64]int {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	defer at.Release()
	out := map[[2]int64]int{}
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	pi := at.Schema().FieldIndices("part")[0]
	oi := at.Schema().FieldIndices("off")[0]
	for tr.Next() {
		rec := tr.RecordBatch()
		parts := rec.Column(pi).(*array.Int32)
		offs := rec.Column(oi).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			out[[2]int64{int64(parts.Value(i)), offs.Value(i)}]++
		}
	}
	return out
}

// sameRows fails unless got holds exactly want, each once.
func sameRows(t testing.TB, what string, got, want map[[2]int64]int) {
	t.Helper()
	var missing, extra, dup int
	for k := range want {
		if got[k] == 0 {
			missing++
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			extra++
		}
		if n > 1 {
			dup++
		}
	}
	if missing+extra+dup > 0 || len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d: %d missing, %d unexpected, %d duplicated", what, len(got), len(want), missing, extra, dup)
	}
}

// liveDataFiles returns the data files of the current snapshot.
func liveDataFiles(t testing.TB, tbl *table.Table) []iceberg.DataFile {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]iceberg.DataFile, 0, len(tasks))
	for _, task := range tasks {
		out = append(out, task.File)
	}
	return out
}

func filePaths(files []iceberg.DataFile) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, strings.TrimPrefix(f.FilePath(), "file://"))
	}
	slices.Sort(out)
	return out
}
