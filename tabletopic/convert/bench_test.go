package convert

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// A 20-field record of about 1 KiB: ids, counters, amounts, a flag, an
// event time, and strings of a few lengths, one of them optional.
const bench20 = `{"type":"record","name":"Event","namespace":"bench","fields":[
	{"name":"event_id","type":"long"},{"name":"user_id","type":"long"},{"name":"session_id","type":"long"},{"name":"seq","type":"long"},
	{"name":"shard","type":"int"},{"name":"region_id","type":"int"},{"name":"status","type":"int"},{"name":"attempt","type":"int"},
	{"name":"amount","type":"double"},{"name":"score","type":"double"},{"name":"active","type":"boolean"},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"country","type":"string"},{"name":"device","type":"string"},{"name":"os","type":"string"},{"name":"browser","type":"string"},
	{"name":"url","type":"string"},{"name":"referrer","type":"string"},{"name":"user_agent","type":"string"},
	{"name":"note","type":["null","string"],"default":null}]}`

type benchRow struct {
	longs   [4]int64
	ints    [4]int32
	doubles [2]float64
	active  bool
	tsMs    int64
	strs    [7]string
	note    *string
}

func benchRows(n int) []benchRow {
	rows := make([]benchRow, n)
	for i := range rows {
		r := &rows[i]
		r.longs = [4]int64{int64(i) * 7919, int64(i % 100000), int64(i / 10), int64(i)}
		r.ints = [4]int32{int32(i % 64), int32(i % 20), 200, 1}
		r.doubles = [2]float64{float64(i) * 1.25, float64(i%1000) / 1000}
		r.active = i%3 == 0
		r.tsMs = 1_700_000_000_000 + int64(i)
		r.strs = [7]string{
			"DE", "mobile-" + fmt.Sprint(i%7), "android 14", "chrome 126",
			"https://shop.example.com/products/" + strings.Repeat("p", 200) + fmt.Sprint(i),
			"https://search.example.org/?q=" + strings.Repeat("q", 180),
			"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) " + strings.Repeat("x", 280),
		}
		if i%2 == 0 {
			note := "note " + strings.Repeat("n", 40)
			r.note = &note
		}
	}
	return rows
}

func (r *benchRow) avroValue() map[string]any {
	v := map[string]any{
		"event_id": r.longs[0], "user_id": r.longs[1], "session_id": r.longs[2], "seq": r.longs[3],
		"shard": r.ints[0], "region_id": r.ints[1], "status": r.ints[2], "attempt": r.ints[3],
		"amount": r.doubles[0], "score": r.doubles[1], "active": r.active, "ts": time.UnixMilli(r.tsMs).UTC(),
		"country": r.strs[0], "device": r.strs[1], "os": r.strs[2], "browser": r.strs[3],
		"url": r.strs[4], "referrer": r.strs[5], "user_agent": r.strs[6], "note": nil,
	}
	if r.note != nil {
		v["note"] = *r.note
	}
	return v
}

const benchBatchRows = 8192

// benchSetup returns a settled converter and the wire-format records.
func benchSetup(b *testing.B) (*Converter, []Record, []benchRow) {
	r := newTestRegistry(b)
	id := r.register("bench-value", bench20)
	c := mustNew(b, Config{Topic: "bench", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil)
	rows := benchRows(1024)
	recs := make([]Record, len(rows))
	for i := range rows {
		recs[i] = Record{Partition: 0, Offset: int64(i), TimestampMs: rows[i].tsMs,
			Key: []byte(fmt.Sprint(rows[i].longs[1])), Value: wire(b, id, bench20, rows[i].avroValue())}
	}
	addEvolving(b, c, recs[0])
	if rec := c.Flush(); rec != nil {
		rec.Release()
	}
	return c, recs, rows
}

func avgSize(recs []Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Value)
	}
	return n / len(recs)
}

// writeBatch writes one record batch as a Parquet file, as the pipeline does.
func writeBatch(b *testing.B, rec arrow.RecordBatch) {
	w, err := pqarrow.NewFileWriter(rec.Schema(), io.Discard,
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd)), pqarrow.DefaultWriterProps())
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConvertAvro20Fields converts ~1 KiB, 20-field Avro records
// (Confluent wire format, flatten) into Arrow rows; "parquet" also writes
// every 8192 rows with pqarrow (zstd), like the pipeline.
func BenchmarkConvertAvro20Fields(b *testing.B) {
	for _, withParquet := range []bool{false, true} {
		name := "convert"
		if withParquet {
			name = "convert+parquet"
		}
		b.Run(name, func(b *testing.B) {
			c, recs, _ := benchSetup(b)
			ctx := context.Background()
			b.SetBytes(int64(avgSize(recs)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Add(ctx, recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
				if c.Rows() == benchBatchRows || i == b.N-1 {
					rec := c.Flush()
					if withParquet {
						writeBatch(b, rec)
					}
					rec.Release()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkBareArrow appends the same rows, already decoded into Go
// values, straight into Arrow builders of the same schema: the floor the
// converter's decoding and bookkeeping add to.
func BenchmarkBareArrow(b *testing.B) {
	for _, withParquet := range []bool{false, true} {
		name := "append"
		if withParquet {
			name = "append+parquet"
		}
		b.Run(name, func(b *testing.B) {
			c, recs, rows := benchSetup(b)
			rb := array.NewRecordBuilder(memory.DefaultAllocator, c.ArrowSchema())
			defer rb.Release()
			ap := newBareAppender(b, rb)
			b.SetBytes(int64(avgSize(recs)))
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for i := 0; i < b.N; i++ {
				ap.append(&recs[i%len(recs)], &rows[i%len(rows)])
				n++
				if n == benchBatchRows || i == b.N-1 {
					rec := rb.NewRecordBatch()
					if withParquet {
						writeBatch(b, rec)
					}
					rec.Release()
					n = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// bareAppender writes a benchRow with typed builders and no checks.
type bareAppender struct {
	key     *array.StringBuilder
	hdrs    *array.ListBuilder
	meta    *array.StructBuilder
	part    *array.Int32Builder
	off     *array.Int64Builder
	mts, ts *array.TimestampBuilder
	longs   [4]*array.Int64Builder
	ints    [4]*array.Int32Builder
	doubles [2]*array.Float64Builder
	active  *array.BooleanBuilder
	strs    [7]*array.StringBuilder
	note    *array.StringBuilder
}

func newBareAppender(b *testing.B, rb *array.RecordBuilder) *bareAppender {
	col := func(name string) array.Builder {
		idx := rb.Schema().FieldIndices(name)
		if len(idx) != 1 {
			b.Fatalf("no column %s", name)
		}
		return rb.Field(idx[0])
	}
	a := &bareAppender{
		key:  col(ColumnKey).(*array.StringBuilder),
		hdrs: col(ColumnHeaders).(*array.ListBuilder),
		meta: col(ColumnMetadata).(*array.StructBuilder),
		ts:   col("ts").(*array.TimestampBuilder),
		note: col("note").(*array.StringBuilder),
	}
	a.part = a.meta.FieldBuilder(0).(*array.Int32Builder)
	a.off = a.meta.FieldBuilder(1).(*array.Int64Builder)
	a.mts = a.meta.FieldBuilder(2).(*array.TimestampBuilder)
	for i, n := range []string{"event_id", "user_id", "session_id", "seq"} {
		a.longs[i] = col(n).(*array.Int64Builder)
	}
	for i, n := range []string{"shard", "region_id", "status", "attempt"} {
		a.ints[i] = col(n).(*array.Int32Builder)
	}
	a.doubles[0], a.doubles[1] = col("amount").(*array.Float64Builder), col("score").(*array.Float64Builder)
	a.active = col("active").(*array.BooleanBuilder)
	for i, n := range []string{"country", "device", "os", "browser", "url", "referrer", "user_agent"} {
		a.strs[i] = col(n).(*array.StringBuilder)
	}
	return a
}

func (a *bareAppender) append(rec *Record, r *benchRow) {
	a.key.BinaryBuilder.Append(rec.Key)
	a.hdrs.Append(true)
	a.meta.Append(true)
	a.part.Append(rec.Partition)
	a.off.Append(rec.Offset)
	a.mts.Append(arrow.Timestamp(rec.TimestampMs * 1000))
	for i, v := range r.longs {
		a.longs[i].Append(v)
	}
	for i, v := range r.ints {
		a.ints[i].Append(v)
	}
	a.doubles[0].Append(r.doubles[0])
	a.doubles[1].Append(r.doubles[1])
	a.active.Append(r.active)
	a.ts.Append(arrow.Timestamp(r.tsMs * 1000))
	for i, v := range r.strs {
		a.strs[i].Append(v)
	}
	if r.note != nil {
		a.note.Append(*r.note)
	} else {
		a.note.AppendNull()
	}
}
