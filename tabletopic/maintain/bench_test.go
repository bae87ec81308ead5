package maintain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// BenchmarkCompaction measures the issue's figure "data files per commit
// and average file size before and after compaction" on a table written
// the way the table-topic pipeline writes it: every commit round adds one
// small file per Kafka partition (8 partitions, unpartitioned Iceberg
// table, as by default). The compaction runs with the default 128 MiB
// target. Reported: files_per_commit (before), avg_file_KiB before and
// after, files_after, and rewrite throughput.
func BenchmarkCompaction(b *testing.B) {
	const (
		partitions    = 8
		commits       = 24
		rowsPerFile   = 1500
		valueHexBytes = 100 // 200 random hex characters a row
	)
	var before, after struct {
		files int
		bytes int64
	}
	var rows int64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newEnv(b)
		e.createTable("bench", false)
		next := map[string]int64{}
		for c := 0; c < commits; c++ {
			tbl := e.load("bench")
			var files []iceberg.DataFile
			for part := int32(0); part < partitions; part++ {
				batch := make([]testRow, rowsPerFile)
				base := next[strconv.Itoa(int(part))]
				for r := range batch {
					v := make([]byte, valueHexBytes)
					_, _ = rand.Read(v)
					batch[r] = testRow{part: part, off: base + int64(r), key: fmt.Sprintf("k-%d-%d", part, base+int64(r)), val: hex.EncodeToString(v)}
				}
				next[strconv.Itoa(int(part))] = base + rowsPerFile
				at := arrowTable(batch)
				rdr := arrowBatches(at)
				for df, err := range table.WriteRecords(context.Background(), tbl, arrowSchema, rdr) {
					if err != nil {
						b.Fatal(err)
					}
					files = append(files, df)
				}
				at.Release()
			}
			enc, _ := json.Marshal(next)
			tx := tbl.NewTransaction()
			if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
				b.Fatal(err)
			}
			if err := tx.AddDataFiles(context.Background(), files, iceberg.Properties{summaryOffsets: string(enc)}); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Commit(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		res, err := e.m.Compact(context.Background(), e.target("bench"), CompactOptions{}, nil)
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		before.files, before.bytes = res.DataFilesBefore, res.BytesBefore
		after.files, after.bytes = res.DataFilesAfter, res.BytesAfter
		rows += int64(partitions * commits * rowsPerFile)
	}
	b.ReportMetric(float64(before.files)/commits, "files_per_commit")
	b.ReportMetric(float64(before.bytes)/float64(before.files)/1024, "avg_file_KiB_before")
	b.ReportMetric(float64(after.files), "files_after")
	b.ReportMetric(float64(after.bytes)/float64(max(after.files, 1))/1024, "avg_file_KiB_after")
	b.ReportMetric(float64(after.files)/commits, "files_per_commit_after")
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows_rewritten/s")
}

// arrowBatches yields the batches of at, retained for WriteRecords,
// which releases what it consumes.
func arrowBatches(at arrow.Table) func(func(arrow.RecordBatch, error) bool) {
	return func(yield func(arrow.RecordBatch, error) bool) {
		tr := newTableReader(at)
		defer tr.Release()
		for tr.Next() {
			rec := tr.RecordBatch()
			rec.Retain()
			if !yield(rec, nil) {
				return
			}
		}
	}
}

func newTableReader(at arrow.Table) *array.TableReader { return array.NewTableReader(at, 4096) }
