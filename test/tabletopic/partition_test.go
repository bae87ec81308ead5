package tabletopic_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/tabletopic"
)

const dayMs = int64(24 * time.Hour / time.Millisecond)

// A topic with table.topic.partition.by becomes a partitioned table: every
// record exactly once, each data file holding only rows of its partition,
// and a filter on the day planning only that day's files.
func TestPartitionedTable(t *testing.T) {
	e := newEnv(t)
	e.startService()
	e.createTopic("clicks", 4, withConfigs(tableOn,
		"table.topic.partition.by", "[day(_kafka_metadata.timestamp), bucket(8, _kafka_key)]"))

	base := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	const n = 3000
	recs := makeRecords(0, n) // distinct keys, every 11th key null
	for i, r := range recs {
		r.Timestamp = base.Add(time.Duration(i%3) * 24 * time.Hour).Add(time.Duration(i) * time.Millisecond)
	}
	want := newProduced()
	cl := e.client(kgo.DefaultProduceTopic("clicks"))
	want.produce(t, cl, recs[:n/2])
	// A second round of commits adds files to partitions already present.
	e.waitRows("default", "clicks", n/2, time.Minute)
	want.produce(t, cl, recs[n/2:])
	cl.Close()
	rows := e.waitRows("default", "clicks", n, time.Minute)
	checkExactlyOnce(t, rows, want, nil)
	st := e.waitStatus("clicks", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	if st.State != tabletopic.StateRunning || st.RowsWritten != n {
		t.Errorf("status after conversion: %+v", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat := e.restCatalog()
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, table.Identifier{"default", "clicks"})
	if err != nil {
		t.Fatal(err)
	}
	spec := tbl.Spec()
	if spec.NumFields() != 2 {
		t.Fatalf("spec %v, want day and bucket fields", spec)
	}
	dayField, bucketField := spec.Field(0), spec.Field(1)
	if dayField.Transform.String() != "day" || bucketField.Transform.String() != "bucket[8]" {
		t.Fatalf("spec %v, want [day, bucket[8]]", spec)
	}
	if col, _ := tbl.Schema().FindColumnName(dayField.SourceID()); col != "_kafka_metadata.timestamp" {
		t.Errorf("day field source column %q", col)
	}

	// Every file's partition record matches every row in it.
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bucket := iceberg.BucketTransform{NumBuckets: 8}
	filesPerDay := map[int32]int{}
	var fileRows int64
	for _, task := range tasks {
		df := task.File
		pv := df.Partition()
		day, ok := dayValue(pv[dayField.FieldID])
		if !ok {
			t.Fatalf("%s: day partition value %T %v", df.FilePath(), pv[dayField.FieldID], pv[dayField.FieldID])
		}
		filesPerDay[day]++
		f, err := fsys.Open(df.FilePath())
		if err != nil {
			t.Fatal(err)
		}
		pr, err := file.NewParquetReader(f)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		at, err := fr.ReadTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := array.NewTableReader(at, 1024)
		for tr.Next() {
			for _, r := range rowsOf(t, tr.RecordBatch()) {
				fileRows++
				wantDay := int32(r.tsMs / dayMs)
				var wantBucket any
				if r.key != nil {
					wantBucket = bucket.Apply(iceberg.Optional[iceberg.Literal]{Valid: true, Val: iceberg.StringLiteral(r.key)}).Val.Any()
				}
				if day != wantDay || fmt.Sprint(pv[bucketField.FieldID]) != fmt.Sprint(wantBucket) {
					t.Fatalf("%s with partition %v holds partition %d offset %d (day %d, bucket %v)",
						df.FilePath(), pv, r.partition, r.offset, wantDay, wantBucket)
				}
			}
		}
		tr.Release()
		at.Release()
		_ = pr.Close()
	}
	if fileRows != n {
		t.Errorf("data files hold %d rows, want %d", fileRows, n)
	}
	if len(filesPerDay) != 3 {
		t.Fatalf("files per day %v, want 3 days", filesPerDay)
	}

	// A filter on one day plans that day's files only.
	day1 := base.Add(24 * time.Hour)
	filter := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference("_kafka_metadata.timestamp"), iceberg.Timestamp(day1.UnixMicro())),
		iceberg.LessThan(iceberg.Reference("_kafka_metadata.timestamp"), iceberg.Timestamp(day1.Add(24*time.Hour).UnixMicro())))
	planned, err := tbl.Scan(table.WithRowFilter(filter)).PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantDay := int32(day1.UnixMilli() / dayMs)
	for _, task := range planned {
		if d, _ := dayValue(task.File.Partition()[dayField.FieldID]); d != wantDay {
			t.Errorf("filter on day %d planned %s of day %v", wantDay, task.File.FilePath(), d)
		}
	}
	if len(planned) != filesPerDay[wantDay] || len(planned) >= len(tasks) {
		t.Errorf("filter on day %d planned %d files, want %d of %d", wantDay, len(planned), filesPerDay[wantDay], len(tasks))
	}
	// And the filtered scan returns exactly that day's records.
	_, it, err := tbl.Scan(table.WithRowFilter(filter)).ToArrowRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rec, err := range it {
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rowsOf(t, rec) {
			if r.tsMs/dayMs != int64(wantDay) {
				t.Errorf("filtered scan returned offset %d of another day", r.offset)
			}
			got++
		}
		rec.Release()
	}
	if got != n/3 {
		t.Errorf("filtered scan returned %d rows, want %d", got, n/3)
	}
}

// A partition.by naming a column the table does not have stops the table
// with a clear error status.
func TestPartitionByUnknownColumn(t *testing.T) {
	e := newEnv(t)
	e.startService()
	e.createTopic("badpart", 1, withConfigs(tableOn, "table.topic.partition.by", "[day(nope)]"))
	st := e.waitStatus("badpart", 30*time.Second, func(st tabletopic.TableStatus) bool { return st.State == tabletopic.StateError })
	if want := `no column "nope"`; !strings.Contains(st.Error, want) {
		t.Errorf("status error %q, want it to mention %s", st.Error, want)
	}
}

// dayValue is a day transform's partition value as days since the epoch.
func dayValue(v any) (int32, bool) {
	switch d := v.(type) {
	case iceberg.Date:
		return int32(d), true
	case int32:
		return d, true
	}
	return 0, false
}
