package maintain

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCompactKeepsRowsAndOffsets(t *testing.T) {
	for _, partitioned := range []bool{false, true} {
		name := "unpartitioned"
		if partitioned {
			name = "partitioned"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.createTable("orders", partitioned)
			p := newPipeline(e, "orders")
			for i := 0; i < 12; i++ {
				p.commit([]int32{0, 1, 2}, 50+i)
			}
			before := e.load("orders")
			filesBefore := liveDataFiles(t, before)
			wantFiles := 12
			if partitioned {
				wantFiles = 36
			}
			if len(filesBefore) != wantFiles {
				t.Fatalf("%d data files before compaction, want %d", len(filesBefore), wantFiles)
			}
			offsetsBefore := readOffsets(t, before)
			sameRows(t, "before", scanRows(t, before), p.expectedRows())

			var progress []Progress
			res, err := e.m.Compact(context.Background(), e.target("orders"), CompactOptions{}, func(pr Progress) { progress = append(progress, pr) })
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			t.Logf("result: %+v", res)
			after := e.load("orders")
			filesAfter := liveDataFiles(t, after)
			wantAfter := 1
			if partitioned {
				wantAfter = 3 // one per Iceberg partition
			}
			if len(filesAfter) != wantAfter || res.DataFilesAfter != wantAfter || res.DataFilesBefore != wantFiles ||
				res.FilesRewritten != wantFiles || res.FilesWritten != wantAfter || res.Groups != wantAfter {
				t.Fatalf("after compaction: %d live files; result %+v", len(filesAfter), res)
			}
			sameRows(t, "after", scanRows(t, after), p.expectedRows())

			// The replace snapshot carries the offsets itself, so they
			// survive the expiry of everything before it.
			snap := after.CurrentSnapshot()
			if snap.Summary.Operation != table.OpReplace || snap.SnapshotID != res.SnapshotAfter {
				t.Fatalf("current snapshot %d is %s, want the compaction's replace %d", snap.SnapshotID, snap.Summary.Operation, res.SnapshotAfter)
			}
			if snap.Summary.Properties[summaryOffsets] == "" || snap.Summary.Properties[summaryTopicID] == "" {
				t.Fatalf("replace snapshot summary lacks the offsets: %v", snap.Summary.Properties)
			}
			if got := readOffsets(t, after); !maps.Equal(got, offsetsBefore) {
				t.Fatalf("offsets after compaction %v, want %v", got, offsetsBefore)
			}
			if n := len(progress); n < 3 || progress[0].Phase != "planned" || progress[n-1].Phase != "committing" ||
				progress[n-2].GroupsDone != progress[n-2].Groups || progress[n-2].FilesDone != wantFiles {
				t.Fatalf("progress: %+v", progress)
			}

			// The pipeline keeps committing on top, conditionally.
			p.commit([]int32{0, 1, 2}, 7)
			sameRows(t, "after a later commit", scanRows(t, e.load("orders")), p.expectedRows())

			// Nothing left to do: every partition holds one file.
			res, err = e.m.Compact(context.Background(), e.target("orders"), CompactOptions{MinInputFiles: 3}, nil)
			if err != nil || res.Skipped == "" {
				t.Fatalf("second compaction: %+v, %v", res, err)
			}
			if got := testutil.ToFloat64(e.m.m.filesRewritten.WithLabelValues("default.orders")); got != float64(wantFiles) {
				t.Errorf("files rewritten metric %v, want %d", got, wantFiles)
			}
			if got := testutil.ToFloat64(e.m.m.runs.WithLabelValues("default.orders", "compact", resultNothing)); got != 1 {
				t.Errorf("nothing-to-do runs %v, want 1", got)
			}
		})
	}
}

// racingLock runs fn once, the first time a maintenance commit takes the
// lock: a data commit that lands between planning and committing.
type racingLock struct {
	sync.Mutex
	once sync.Once
	fn   func()
}

func (l *racingLock) Lock() {
	l.once.Do(l.fn)
	l.Mutex.Lock()
}

func TestCompactRestagesOverConcurrentAppend(t *testing.T) {
	e := newEnv(t)
	e.createTable("orders", true)
	p := newPipeline(e, "orders")
	for i := 0; i < 6; i++ {
		p.commit([]int32{0, 1}, 40)
	}
	tg := e.target("orders")
	tg.Lock = &racingLock{fn: func() { p.commit([]int32{0, 1, 2}, 5) }}
	res, err := e.m.Compact(context.Background(), tg, CompactOptions{}, nil)
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if res.CommitAttempts != 2 {
		t.Fatalf("commit attempts %d, want 2 (one conflict with the append, then re-staged)", res.CommitAttempts)
	}
	tbl := e.load("orders")
	sameRows(t, "after", scanRows(t, tbl), p.expectedRows())
	// The compaction carried the offsets of the head it committed on: the
	// concurrent append's, not the ones it planned with.
	if got, want := tbl.CurrentSnapshot().Summary.Properties[summaryOffsets], `{"0":245,"1":245,"2":5}`; got != want {
		t.Fatalf("offsets in the compaction snapshot %s, want %s", got, want)
	}
	// 2 compacted files plus the 3 appended concurrently.
	if n := len(liveDataFiles(t, tbl)); n != 5 {
		t.Fatalf("%d live files, want 5", n)
	}
}

func TestCompactAbortsOnConcurrentDelete(t *testing.T) {
	e := newEnv(t)
	e.createTable("orders", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 5; i++ {
		p.commit([]int32{0}, 20)
	}
	filesOnDisk := func() []string {
		var out []string
		_ = filepath.WalkDir(e.warehouse, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".parquet") {
				out = append(out, path)
			}
			return nil
		})
		return out
	}
	tg := e.target("orders")
	var onDiskBeforeCommit []string
	tg.Lock = &racingLock{fn: func() {
		onDiskBeforeCommit = filesOnDisk()
		// Another writer deletes rows (merge-on-read: a position delete
		// file) while the compaction rewrote them.
		tbl := e.load("orders")
		tx := tbl.NewTransaction()
		if err := tx.Delete(context.Background(), iceberg.LessThan(iceberg.Reference("off"), int64(10)), nil); err != nil {
			t.Error(err)
			return
		}
		if _, err := tx.Commit(context.Background()); err != nil {
			t.Error(err)
		}
	}}
	res, err := e.m.Compact(context.Background(), tg, CompactOptions{}, nil)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("compact over a concurrent delete: %+v, %v; want ErrConflict", res, err)
	}
	t.Logf("aborted: %v", err)
	want := p.expectedRows()
	for k := range want {
		if k[1] < 10 {
			delete(want, k)
		}
	}
	tbl := e.load("orders")
	sameRows(t, "after the aborted compaction", scanRows(t, tbl), want)
	if tbl.CurrentSnapshot().Summary.Properties[summaryMaintenance] != "" {
		t.Fatal("the aborted compaction committed")
	}
	// The compaction's output was removed: what is on disk now is what
	// was there before it committed, less its one output, plus the delete
	// file.
	now := filesOnDisk()
	if len(onDiskBeforeCommit) != 6 || len(now) != 6 {
		t.Fatalf("parquet files on disk: %d while committing (5 data + 1 compacted), %d after the abort (5 data + 1 position delete)",
			len(onDiskBeforeCommit), len(now))
	}
	if got := testutil.ToFloat64(e.m.m.runs.WithLabelValues("default.orders", "compact", resultConflict)); got != 1 {
		t.Errorf("conflict runs %v, want 1", got)
	}
	// The next cycle plans again and succeeds, applying the deletes.
	res, err = e.m.Compact(context.Background(), e.target("orders"), CompactOptions{}, nil)
	if err != nil || res.FilesRewritten != 5 || res.DeleteFilesApplied == 0 || res.DeleteFilesRemoved != 1 {
		t.Fatalf("compaction after the abort: %+v, %v", res, err)
	}
	sameRows(t, "after compacting the deleted rows away", scanRows(t, e.load("orders")), want)
}

// TestCompactWithDeleteFiles compacts a table carrying equality and
// position deletes, as upsert tables do: the rewrite must drop exactly the
// deleted rows, remove only dead delete files, and keep the data sequence
// number of its base so equality deletes committed after it still apply.
func TestCompactWithDeleteFiles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createTable("users", false)
	p := newPipeline(e, "users")
	for i := 0; i < 6; i++ {
		p.commit([]int32{0, 1}, 30)
	}
	want := p.expectedRows()
	eqDelete := func(keys ...string) {
		t.Helper()
		sc := arrow.NewSchema([]arrow.Field{{Name: "key", Type: arrow.BinaryTypes.String}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		defer b.Release()
		for _, k := range keys {
			b.Field(0).(*array.StringBuilder).Append(k)
		}
		rec := b.NewRecordBatch()
		tx := e.load("users").NewTransaction()
		err := tx.CommitEqualityDeletes(ctx, []int{3}, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Equality deletes of keys in the first and last commits' files.
	eqDelete("k-0-3", "k-1-200", "k-0-17")
	delete(want, [2]int64{0, 3})
	delete(want, [2]int64{1, 200})
	delete(want, [2]int64{0, 17})
	// Position deletes (merge-on-read) of partition 1's offsets 50..59.
	tx := e.load("users").NewTransaction()
	filter := iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("part"), int32(1)),
		iceberg.NewAnd(iceberg.GreaterThanEqual(iceberg.Reference("off"), int64(50)), iceberg.LessThan(iceberg.Reference("off"), int64(60))))
	if err := tx.Delete(ctx, filter, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for off := int64(50); off < 60; off++ {
		delete(want, [2]int64{1, off})
	}
	// A later append whose row has a deleted key: the equality delete came
	// before it, so it must not apply to it.
	e.appendForeign("users", []testRow{{part: 9, off: 3, key: "k-0-3"}})
	want[[2]int64{9, 3}] = 1
	p.commit([]int32{2}, 1)
	want[[2]int64{2, 0}] = 1
	before := e.load("users")
	sameRows(t, "before compaction", scanRows(t, before), want)
	deleteFilesBefore := countDeleteFiles(t, before)
	if deleteFilesBefore < 2 {
		t.Fatalf("%d delete files before compaction, want equality and position deletes", deleteFilesBefore)
	}

	res, err := e.m.Compact(ctx, e.target("users"), CompactOptions{}, nil)
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	t.Logf("result: %+v", res)
	after := e.load("users")
	sameRows(t, "after compaction", scanRows(t, after), want)
	if res.DeleteFilesApplied == 0 || res.DeleteFilesRemoved == 0 {
		t.Fatalf("compaction applied %d and removed %d delete files, want some of each", res.DeleteFilesApplied, res.DeleteFilesRemoved)
	}
	if got := countDeleteFiles(t, after); got != deleteFilesBefore-res.DeleteFilesRemoved {
		t.Fatalf("%d delete files after, want %d", got, deleteFilesBefore-res.DeleteFilesRemoved)
	}
	// The new file keeps its base's data sequence number.
	if seq := minDataSequence(t, after); seq != before.CurrentSnapshot().SequenceNumber {
		t.Fatalf("compacted file has data sequence number %d, want its base's %d", seq, before.CurrentSnapshot().SequenceNumber)
	}

	// An equality delete after the compaction applies to the rewritten rows.
	eqDelete("k-0-100", "k-1-5")
	delete(want, [2]int64{0, 100})
	delete(want, [2]int64{1, 5})
	sameRows(t, "after a later equality delete", scanRows(t, e.load("users")), want)
	// And compacting again (the delete applies to the compacted file and
	// one pipeline file) keeps it all exact.
	res, err = e.m.Compact(ctx, e.target("users"), CompactOptions{}, nil)
	if err != nil {
		t.Fatalf("second compaction: %v", err)
	}
	sameRows(t, "after the second compaction", scanRows(t, e.load("users")), want)
	if readOffsets(t, e.load("users"))["2"] != 1 {
		t.Fatalf("offsets lost: %v", readOffsets(t, e.load("users")))
	}
}

func countDeleteFiles(t *testing.T, tbl *table.Table) int {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		for _, list := range [][]iceberg.DataFile{task.DeleteFiles, task.EqualityDeleteFiles, task.DeletionVectorFiles} {
			for _, f := range list {
				seen[f.FilePath()] = true
			}
		}
	}
	// Delete files no task needs any more are still live in the snapshot.
	fs, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mans, err := tbl.CurrentSnapshot().Manifests(fs)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mans {
		if m.ManifestContent() != iceberg.ManifestContentDeletes {
			continue
		}
		for entry, err := range m.Entries(fs, true) {
			if err != nil {
				t.Fatal(err)
			}
			seen[entry.DataFile().FilePath()] = true
		}
	}
	return len(seen)
}

// minDataSequence is the lowest data sequence number of a live data file.
func minDataSequence(t *testing.T, tbl *table.Table) int64 {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	low := int64(1 << 62)
	for _, task := range tasks {
		if task.DataSequenceNumber != nil {
			low = min(low, *task.DataSequenceNumber)
		}
	}
	return low
}

// With HoldLock, this process's commits wait for the compaction instead of
// making it give way: the one that wanted to land first goes before the
// planning, and the compaction commits at its first attempt.
func TestCompactHoldLock(t *testing.T) {
	e := newEnv(t)
	e.createTable("orders", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 4; i++ {
		p.commit([]int32{0}, 10)
	}
	tg := e.target("orders")
	lock := &racingLock{fn: func() { p.commit([]int32{0, 1}, 3) }}
	tg.Lock = lock
	res, err := e.m.Compact(context.Background(), tg, CompactOptions{HoldLock: true}, nil)
	if err != nil || res.CommitAttempts != 1 || res.FilesRewritten != 5 {
		t.Fatalf("compact holding the lock: %+v, %v", res, err)
	}
	if !lock.TryLock() {
		t.Fatal("the lock is still held after the compaction")
	}
	lock.Unlock()
	sameRows(t, "after", scanRows(t, e.load("orders")), p.expectedRows())
}
