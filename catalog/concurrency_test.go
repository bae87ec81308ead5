package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
)

// TestConcurrentAppends has 8 writers, each with its own REST client (as
// separate engines would), append 50 single-row batches to one table. Losers
// of a race get CommitFailed, reload and try again. At the end every append
// must be in the table exactly once: one snapshot and one row each.
func TestConcurrentAppends(t *testing.T) {
	backends := []struct {
		name string
		opts func(t *testing.T) []serverOption
	}{
		{"sqlite_file", func(*testing.T) []serverOption { return nil }},
		// The point here is the database's commit atomicity; S3 only adds
		// latency (TestRESTClientS3 covers the object store path).
		{"postgres_file", func(t *testing.T) []serverOption { return []serverOption{withPostgres(t)} }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			testConcurrentAppends(t, newTestServer(t, b.opts(t)...))
		})
	}
}

func testConcurrentAppends(t *testing.T, ts *testServer) {
	const writers, appends = 8, 50
	// Generous: under the race detector on a busy machine a run takes
	// minutes (metadata grows with every one of the 400 snapshots).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	clientProps := iceberg.Properties{}

	setup := ts.restClient(t, clientProps)
	ident := table.Identifier{"load", "events"}
	if err := setup.CreateNamespace(ctx, ident[:1], nil); err != nil {
		t.Fatal(err)
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "writer", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: "seq", Type: iceberg.PrimitiveTypes.Int32, Required: true},
	)
	// iceberg-go's own refresh-and-replay retry resolves most races cheaply
	// (data files are written once); appendLoop retries what is left.
	retryProps := iceberg.Properties{
		table.CommitNumRetriesKey:     "10",
		table.CommitMinRetryWaitMsKey: "20",
		table.CommitMaxRetryWaitMsKey: "500",
	}
	if _, err := setup.CreateTable(ctx, ident, schema, icebergcatalog.WithProperties(retryProps)); err != nil {
		t.Fatal(err)
	}
	arrowSchema := arrow.NewSchema([]arrow.Field{
		{Name: "writer", Type: arrow.PrimitiveTypes.Int32},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int32},
	}, nil)

	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	// Writers load tables in snapshots=refs mode, as a streaming writer
	// should: they need the branch head, not the whole history.
	writerProps := maps.Clone(clientProps)
	writerProps["snapshot-loading-mode"] = "refs"
	for w := range writers {
		cat := ts.restClient(t, writerProps)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := appendLoop(ctx, cat, ident, arrowSchema, int32(w), appends, &conflicts); err != nil {
				errs <- fmt.Errorf("writer %d: %w", w, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d appends committed; %d conflicts outlasted iceberg-go's own retries and were retried from a reload",
		writers*appends, conflicts.Load())

	tbl, err := setup.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tbl.Metadata().Snapshots()); n != writers*appends {
		t.Errorf("table has %d snapshots, want %d", n, writers*appends)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	seen := map[[2]int32]int{}
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		ws := rec.Column(0).(*array.Int32)
		ss := rec.Column(1).(*array.Int32)
		for i := 0; i < int(rec.NumRows()); i++ {
			seen[[2]int32{ws.Value(i), ss.Value(i)}]++
		}
	}
	if at.NumRows() != writers*appends {
		t.Errorf("table has %d rows, want %d", at.NumRows(), writers*appends)
	}
	for w := range int32(writers) {
		for s := range int32(appends) {
			if n := seen[[2]int32{w, s}]; n != 1 {
				t.Errorf("append (writer %d, seq %d) is in the table %d times, want once", w, s, n)
			}
		}
	}
}

// appendLoop appends rows (writer, 0..n-1) one commit each, retrying a
// commit that lost a race from freshly loaded table state.
func appendLoop(ctx context.Context, cat *rest.Catalog, ident table.Identifier, sc *arrow.Schema,
	writer int32, n int, conflicts *atomic.Int64,
) error {
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	for seq := range int32(n) {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		b.Field(0).(*array.Int32Builder).Append(writer)
		b.Field(1).(*array.Int32Builder).Append(seq)
		rec := b.NewRecordBatch()
		b.Release()
		data := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
		rec.Release()
		for attempt := 0; ; attempt++ {
			next, err := tbl.AppendTable(ctx, data, 1024, nil)
			if err == nil {
				tbl = next
				break
			}
			if !errors.Is(err, table.ErrCommitFailed) || attempt == 100 {
				data.Release()
				return fmt.Errorf("append seq %d (attempt %d): %w", seq, attempt, err)
			}
			conflicts.Add(1)
			// Jittered backoff so a slow writer is not starved by faster ones.
			time.Sleep(time.Duration(rand.IntN(10*(attempt+1))) * time.Millisecond)
			if tbl, err = cat.LoadTable(ctx, ident); err != nil {
				data.Release()
				return err
			}
		}
		data.Release()
	}
	return nil
}
