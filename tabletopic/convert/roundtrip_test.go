package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/apache/iceberg-go"
)

// writeParquet writes rec as the pipeline does and returns the file.
func writeParquet(t testing.TB, rec arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(rec.Schema(), &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readParquet reads a file back into rows, and the field ids of its
// columns by dotted path.
func readParquet(t testing.TB, data []byte) ([]map[string]any, map[string]int) {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	ids := map[string]int{}
	var walk func(n pqschema.Node, path string)
	walk = func(n pqschema.Node, path string) {
		ids[path] = int(n.FieldID())
		if g, ok := n.(*pqschema.GroupNode); ok {
			for i := range g.NumFields() {
				walk(g.Field(i), path+"/"+g.Field(i).Name())
			}
		}
	}
	root := pf.MetaData().Schema.Root()
	for i := range root.NumFields() {
		walk(root.Field(i), root.Field(i).Name())
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, tbl.NumRows())
	defer tr.Release()
	var rows []map[string]any
	for tr.Next() {
		rows = append(rows, rowsOf(t, tr.RecordBatch())...)
	}
	return rows, ids
}

// TestParquetRoundTrip writes Flush's output with pqarrow, reads it back,
// and checks every value and that every Parquet field carries the Iceberg
// field id (which Iceberg readers resolve columns by).
func TestParquetRoundTrip(t *testing.T) {
	r := newTestRegistry(t)
	id := r.register("all-value", allTypes)
	c := mustNew(t, Config{Topic: "all", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil)
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	inner := map[string]any{"x": int32(5), "color": "GREEN"}
	for i := range 50 {
		v := map[string]any{
			"b": i%2 == 0, "i": int32(i), "l": int64(i) << 35, "f": float32(i) / 4, "d": float64(i) / 8,
			"s": strings.Repeat("é", i%5), "by": []byte{byte(i)}, "e": []string{"RED", "GREEN"}[i%2],
			"fx": [4]byte{byte(i)}, "dt": ts, "tm": time.Duration(i) * time.Millisecond, "tu": time.Duration(i) * time.Microsecond,
			"tsm": ts, "tsu": ts, "ltsm": ts, "ltsu": ts,
			"dec": big.NewRat(int64(i)*101, 100), "decf": big.NewRat(-int64(i), 1000),
			"u": fmt.Sprintf("00000000-0000-0000-0000-%012d", i), "arr": []any{int32(i), int32(-i)},
			"m":      map[string]any{"k": nil},
			"nested": inner, "opt": nil, "cu": map[string]any{"string": "s"}, "nul": nil, "recs": []any{inner},
		}
		if i%3 == 0 {
			v["opt"] = map[string]any{"ex.Inner": inner}
			v["cu"] = nil
		}
		addEvolving(t, c, Record{Partition: 1, Offset: int64(i), TimestampMs: int64(i) * 1000, Key: []byte(fmt.Sprint(i)),
			Headers: []Header{{Key: "h", Value: []byte{byte(i)}}}, Value: wire(t, id, allTypes, v)})
	}
	rec := c.Flush()
	defer rec.Release()
	want := rowsOf(t, rec)
	got, ids := readParquet(t, writeParquet(t, rec))
	if len(got) != len(want) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(want))
	}
	for i := range want {
		if g, w := js(t, got[i]), js(t, want[i]); g != w {
			t.Fatalf("row %d differs after Parquet:\n%s\nwant\n%s", i, g, w)
		}
	}
	// Every column, nested ones included, has its Iceberg id.
	byName := fieldIDs(t, c.Schema())
	checked := 0
	for path, pid := range ids {
		name := icebergPath(path)
		if name == "" {
			continue // list/map wrapper groups carry no id
		}
		if want, ok := byName[name]; !ok || want != pid {
			t.Errorf("parquet %s has field id %d, Iceberg %s has %d", path, pid, name, want)
		}
		checked++
	}
	distinct := map[int]bool{}
	for _, id := range byName {
		distinct[id] = true // IndexByName also lists short names of list element fields
	}
	if checked != len(distinct) {
		t.Errorf("checked %d field ids, the schema has %d", checked, len(distinct))
	}
}

// icebergPath maps a Parquet path to Iceberg's column name: the standard
// list and map layouts have a repeated wrapper group (list, key_value)
// without an id, and name the element "element" and the entries key/value.
func icebergPath(p string) string {
	parts := strings.Split(p, "/")
	var out []string
	for _, part := range parts {
		switch part {
		case "list", "key_value":
			continue
		}
		out = append(out, part)
	}
	last := parts[len(parts)-1]
	if last == "list" || last == "key_value" {
		return ""
	}
	return strings.Join(out, ".")
}

func TestDeadLetter(t *testing.T) {
	d, err := NewDeadLetter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	want := `table {
	1: _kafka_key: optional binary
	2: _kafka_value: optional binary
	3: _kafka_headers: optional list<struct<5: key: required string, 6: value: optional binary>>
	7: _kafka_metadata: required struct<8: partition: required int, 9: offset: required long, 10: timestamp: required timestamptz>
	11: _error: required string
}`
	if got := d.Schema().String(); got != want {
		t.Errorf("schema:\n%s\nwant\n%s", got, want)
	}
	cause := fmt.Errorf("%w: value: truncated Avro data", ErrInvalidRecord)
	d.Add(Record{Partition: 2, Offset: 9, TimestampMs: 5, Key: []byte{0xff}, Value: []byte{0, 0, 0, 0, 1},
		Headers: []Header{{Key: "bad\xff", Value: nil}, {Key: "ok", Value: []byte("v")}}}, cause)
	d.Add(Record{Offset: 10}, errors.New(strings.Repeat("x", 10000)))
	if d.Rows() != 2 || d.EstimatedBytes() <= 0 {
		t.Fatalf("rows %d bytes %d", d.Rows(), d.EstimatedBytes())
	}
	rec := d.Flush()
	defer rec.Release()
	rows, _ := readParquet(t, writeParquet(t, rec))
	if got := js(t, rows[0]); got != `{"_error":"convert: invalid record: value: truncated Avro data",`+
		"\"_kafka_headers\":[{\"key\":\"bad\ufffd\",\"value\":null},"+`{"key":"ok","value":"dg=="}],"_kafka_key":"/w==",`+
		`"_kafka_metadata":{"offset":9,"partition":2,"timestamp":"1970-01-01T00:00:00.005Z"},"_kafka_value":"AAAAAAE="}` {
		t.Errorf("row 0: %s", got)
	}
	if e, _ := rows[1]["_error"].(string); len(e) != maxErrorText || rows[1]["_kafka_key"] != nil {
		t.Errorf("row 1: error of %d bytes, key %v", len(e), rows[1]["_kafka_key"])
	}

	// A table with other ids, or a column of the wrong type.
	next := 40
	renumbered, _ := iceberg.AssignFreshSchemaIDs(DeadLetterSchema(), func() int { next++; return next })
	if d2, err := NewDeadLetter(renumbered, memory.DefaultAllocator); err != nil {
		t.Errorf("renumbered dead-letter table: %v", err)
	} else {
		d2.Release()
	}
	bad := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: ColumnKey, Type: iceberg.PrimitiveTypes.String})
	if _, err := NewDeadLetter(bad, nil); err == nil {
		t.Error("a dead-letter table with a string key was accepted")
	}
}
