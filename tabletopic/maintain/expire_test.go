package maintain

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// parquetOnDisk lists the table's Parquet files (data and deletes).
func parquetOnDisk(t *testing.T, e *env, name string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(e.tableDir(name), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".parquet") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestExpireKeepsCurrentAndOffsetsReadable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createTable("orders", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 8; i++ {
		p.commit([]int32{0, 1}, 10)
	}
	offsets := readOffsets(t, e.load("orders"))
	// Another engine appends on top: its snapshot has no floe.offsets.
	e.appendForeign("orders", []testRow{{part: 7, off: 1, key: "x"}})
	want := p.expectedRows()
	want[[2]int64{7, 1}] = 1

	res, err := e.m.ExpireSnapshots(ctx, e.target("orders"), ExpireOptions{OlderThan: 0, RetainLast: 1})
	if err != nil {
		t.Fatalf("expire: %v", err)
	}
	t.Logf("result: %+v", res)
	// retain-last 1 would keep only the foreign snapshot; the last data
	// commit stays so the offsets do.
	if res.SnapshotsBefore != 9 || res.SnapshotsAfter != 2 || res.Expired != 7 || res.RetainedForOffsets != 1 {
		t.Fatalf("expiry: %+v", res)
	}
	tbl := e.load("orders")
	if got := readOffsets(t, tbl); !maps.Equal(got, offsets) {
		t.Fatalf("offsets after expiry %v, want %v", got, offsets)
	}
	sameRows(t, "after expiry", scanRows(t, tbl), want)

	// Compaction then expiry down to one snapshot: the replace snapshot
	// carries the offsets, and the rewritten files are deleted.
	if _, err := e.m.Compact(ctx, e.target("orders"), CompactOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(parquetOnDisk(t, e, "orders")); n != 10 {
		t.Fatalf("%d parquet files before the second expiry, want 9 + 1 compacted", n)
	}
	res, err = e.m.ExpireSnapshots(ctx, e.target("orders"), ExpireOptions{OlderThan: 0, RetainLast: 1})
	if err != nil || res.SnapshotsAfter != 1 || res.RetainedForOffsets != 0 {
		t.Fatalf("second expiry: %+v, %v", res, err)
	}
	tbl = e.load("orders")
	if got := readOffsets(t, tbl); !maps.Equal(got, offsets) {
		t.Fatalf("offsets after compaction and expiry %v, want %v", got, offsets)
	}
	sameRows(t, "after compaction and expiry", scanRows(t, tbl), want)
	if got, live := parquetOnDisk(t, e, "orders"), filePaths(liveDataFiles(t, tbl)); !slices.Equal(got, live) {
		t.Fatalf("parquet files on disk %v, want only the live %v", got, live)
	}
	if got := testutil.ToFloat64(e.m.m.expired.WithLabelValues("default.orders")); got != 9 {
		t.Errorf("snapshots expired metric %v, want 9", got)
	}

	// Young snapshots stay.
	p.commit([]int32{0}, 3)
	res, err = e.m.ExpireSnapshots(ctx, e.target("orders"), ExpireOptions{OlderThan: time.Hour, RetainLast: 1})
	if err != nil || res.Expired != 0 || res.SnapshotsAfter != 2 {
		t.Fatalf("expiry of young snapshots: %+v, %v", res, err)
	}
}

func TestExpireConflictLeavesTable(t *testing.T) {
	e := newEnv(t)
	e.createTable("orders", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 4; i++ {
		p.commit([]int32{0}, 5)
	}
	tg := e.target("orders")
	tg.Lock = &racingLock{fn: func() { p.commit([]int32{0}, 5) }}
	_, err := e.m.ExpireSnapshots(context.Background(), tg, ExpireOptions{RetainLast: 1})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("expiry over a concurrent commit: %v, want ErrConflict", err)
	}
	tbl := e.load("orders")
	if n := len(tbl.Metadata().Snapshots()); n != 5 {
		t.Fatalf("%d snapshots, want all 5", n)
	}
	sameRows(t, "after", scanRows(t, tbl), p.expectedRows())
}

func TestRemoveOrphans(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createTable("orders", true)
	e.createTable("orders_dlq", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 4; i++ {
		p.commit([]int32{0, 1}, 10)
	}
	newPipeline(e, "orders_dlq").commit([]int32{0}, 3)
	tableDir := e.tableDir("orders")
	// Leftovers of failed commits: a data file and a manifest, old, and a
	// data file of a commit still in flight, young.
	oldData := filepath.Join(tableDir, "data", "part=0", "00000-00000000000000000099-dead.parquet")
	oldManifest := filepath.Join(tableDir, "metadata", "abandoned-m0.avro")
	young := filepath.Join(tableDir, "data", "part=1", "00001-00000000000000000200-inflight.parquet")
	for _, f := range []string{oldData, oldManifest, young} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("PAR1 not really"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Everything but the young file is two days old, referenced files too.
	past := time.Now().Add(-48 * time.Hour)
	for _, dir := range []string{tableDir, e.tableDir("orders_dlq")} {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && path != young {
				err = os.Chtimes(path, past, past)
			}
			return err
		})
	}
	dlqBefore := parquetOnDisk(t, e, "orders_dlq")

	if _, err := e.m.RemoveOrphans(ctx, e.target("orders"), OrphanOptions{OlderThan: 10 * time.Minute}); err == nil {
		t.Fatal("orphan cleanup with a grace period under MinOrphanAge was accepted")
	}
	dry, err := e.m.RemoveOrphans(ctx, e.target("orders"), OrphanOptions{OlderThan: 24 * time.Hour, DryRun: true})
	if err != nil || dry.Orphans != 2 || dry.Deleted != 0 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	res, err := e.m.RemoveOrphans(ctx, e.target("orders"), OrphanOptions{OlderThan: 24 * time.Hour})
	if err != nil {
		t.Fatalf("remove orphans: %v", err)
	}
	t.Logf("result: %+v", res)
	if res.Orphans != 2 || res.Deleted != 2 {
		t.Fatalf("removed %d of %d orphans, want the 2 old ones: %v", res.Deleted, res.Orphans, res.Files)
	}
	for _, f := range []string{oldData, oldManifest} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("orphan %s still there (%v)", f, err)
		}
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young file removed: %v", err)
	}
	tbl := e.load("orders")
	sameRows(t, "after orphan cleanup", scanRows(t, tbl), p.expectedRows())
	live := filePaths(liveDataFiles(t, tbl))
	onDisk := parquetOnDisk(t, e, "orders")
	if len(onDisk) != len(live)+1 { // + the young file
		t.Fatalf("%d parquet files on disk, want the %d live ones and the young one", len(onDisk), len(live))
	}
	if got := parquetOnDisk(t, e, "orders_dlq"); !slices.Equal(got, dlqBefore) {
		t.Fatalf("the neighbouring table lost files: %v, had %v", got, dlqBefore)
	}
	if got := testutil.ToFloat64(e.m.m.orphanFiles.WithLabelValues("default.orders")); got != 2 {
		t.Errorf("orphan files metric %v, want 2", got)
	}
}
