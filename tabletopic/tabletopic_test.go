package tabletopic

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/floe-io/floe/tabletopic/convert"
)

func TestOffsetsRoundTrip(t *testing.T) {
	for _, m := range []offsetMap{{}, {0: 0}, {0: 12, 7: 99999999999, 3: 1}} {
		got, err := decodeOffsets(m.encode())
		if err != nil {
			t.Fatalf("decode(%s): %v", m.encode(), err)
		}
		if len(got) != len(m) {
			t.Fatalf("round trip of %v = %v", m, got)
		}
		for p, o := range m {
			if got[p] != o {
				t.Errorf("round trip of %v = %v", m, got)
			}
		}
	}
	for _, bad := range []string{``, `[]`, `{"x":1}`, `{"-1":3}`, `{"0":-5}`, `{"0":"a"}`, `{"99999999999":1}`} {
		if _, err := decodeOffsets(bad); err == nil {
			t.Errorf("decodeOffsets(%q) accepted", bad)
		}
	}
	if (offsetMap{}).get(3) != -1 {
		t.Error("absent partition should read -1")
	}
}

func FuzzDecodeOffsets(f *testing.F) {
	f.Add(`{"0":1,"1":2}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := decodeOffsets(s)
		if err != nil {
			return
		}
		again, err := decodeOffsets(m.encode())
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-decode of %v: %v %v", m, again, err)
		}
	})
}

func TestParseTableConfig(t *testing.T) {
	id := [16]byte{1}
	tests := []struct {
		name    string
		configs map[string]string
		check   func(t *testing.T, c tableConfig)
		wantErr string
	}{
		{
			name:    "defaults",
			configs: map[string]string{"table.topic.enable": "true"},
			check: func(t *testing.T, c tableConfig) {
				if !c.enabled || c.tableName() != "default.my_topic" || c.commitInterval != time.Minute ||
					c.valueType != "raw" || c.keyType != "string" || c.tolerance != toleranceInvalidData ||
					c.targetFileBytes != 128<<20 {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "explicit",
			configs: map[string]string{
				"table.topic.enable": "true", "table.topic.namespace": "a.b", "table.topic.name": "t",
				"table.topic.commit.interval.ms": "1500", "table.topic.errors.tolerance": "none",
				"table.topic.convert.value.type": "by_latest_schema",
			},
			check: func(t *testing.T, c tableConfig) {
				if c.tableName() != "a.b.t" || len(c.namespace) != 2 || c.commitInterval != 1500*time.Millisecond ||
					c.tolerance != toleranceNone || c.valueType != "by_latest_schema" {
					t.Errorf("explicit: %+v", c)
				}
			},
		},
		{
			name:    "automq prefix",
			configs: map[string]string{"automq.table.topic.enable": "true", "automq.table.topic.namespace": "legacy"},
			check: func(t *testing.T, c tableConfig) {
				if !c.enabled || c.tableName() != "legacy.my_topic" {
					t.Errorf("automq prefix: %+v", c)
				}
			},
		},
		{name: "bad tolerance", configs: map[string]string{"table.topic.errors.tolerance": "some"}, wantErr: "errors.tolerance"},
		{name: "bad interval", configs: map[string]string{"table.topic.commit.interval.ms": "0"}, wantErr: "commit.interval.ms"},
		{
			name:    "partitioned",
			configs: map[string]string{"table.topic.partition.by": "[day(_kafka_metadata.timestamp), bucket(8, id), truncate(4, name), region]"},
			check: func(t *testing.T, c tableConfig) {
				var got []string
				for _, p := range c.partitionBy {
					got = append(got, p.String())
				}
				if want := "day(_kafka_metadata.timestamp) bucket[8](id) truncate[4](name) region"; strings.Join(got, " ") != want {
					t.Errorf("partition.by = %q, want %q", strings.Join(got, " "), want)
				}
			},
		},
		{name: "partition unknown transform", configs: map[string]string{"table.topic.partition.by": "[week(ts)]"}, wantErr: `unknown transform "week"`},
		{name: "partition no brackets", configs: map[string]string{"table.topic.partition.by": "day(ts)"}, wantErr: "bracketed list"},
		{name: "partition bad bucket", configs: map[string]string{"table.topic.partition.by": "[bucket(x, id)]"}, wantErr: "positive integer"},
		{name: "partition bucket arity", configs: map[string]string{"table.topic.partition.by": "[bucket(id)]"}, wantErr: "takes (N, column)"},
		{name: "partition unbalanced", configs: map[string]string{"table.topic.partition.by": "[day(ts]"}, wantErr: "unbalanced"},
		{name: "partition twice", configs: map[string]string{"table.topic.partition.by": "[id, id]"}, wantErr: "twice"},
		{name: "upsert", configs: map[string]string{"table.topic.upsert.enable": "true"}, wantErr: "upsert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseTableConfig(TopicInfo{Name: "my.topic", ID: id, Partitions: 3, Configs: tt.configs})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
	a, _ := parseTableConfig(TopicInfo{Name: "x", Configs: map[string]string{"table.topic.enable": "true"}})
	b, _ := parseTableConfig(TopicInfo{Name: "x", Configs: map[string]string{"table.topic.enable": "true", "table.topic.errors.tolerance": "all"}})
	if a.fingerprint == b.fingerprint {
		t.Error("a config change must change the fingerprint")
	}
}

// The pipeline's converters come from package convert; a config it
// refuses is a config error (the table waits for a fix), not a retry.
func TestNewConverterConfig(t *testing.T) {
	s := &Service{}
	ctx := context.Background()
	cfg, err := parseTableConfig(TopicInfo{Name: "t", Configs: map[string]string{"table.topic.convert.value.type": "string"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.newConverter(ctx, "t", &cfg, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for _, col := range []string{convert.ColumnKey, convert.ColumnValue, convert.ColumnHeaders, convert.ColumnMetadata} {
		if _, ok := c.Schema().FindFieldByName(col); !ok {
			t.Errorf("new table schema lacks %s: %s", col, c.Schema())
		}
	}
	if err := c.Add(ctx, convert.Record{Offset: 1, Value: []byte{0xff}}); !errors.Is(err, errInvalidRecord) {
		t.Errorf("invalid UTF-8 in string mode: %v", err)
	}
	cfg, err = parseTableConfig(TopicInfo{Name: "t", Configs: map[string]string{"table.topic.convert.value.type": "by_schema_id"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.newConverter(ctx, "t", &cfg, nil, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("by_schema_id without a registry: %v, want ErrConfig", err)
	}
}

// The rolling writer starts a new file at the target size, so a worker
// never holds more than one open file per table.
func TestRollingWriterRollsOnSize(t *testing.T) {
	dir := t.TempDir()
	loc, err := table.LoadLocationProvider("file://"+dir, iceberg.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &fileSink{fs: iceio.LocalFS{}, loc: loc}
	c, err := convert.New(context.Background(), convert.Config{KeyType: "raw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	rw := &rollingWriter{sink: sink, partition: 1, target: 64 << 10}
	payload := []byte(strings.Repeat("incompressible? no, but big enough ", 100))
	rows := 0
	for batch := range 20 {
		for i := range 100 {
			off := int64(batch*100 + i)
			if err := c.Add(context.Background(), convert.Record{Offset: off, Value: append([]byte(fmt.Sprint(off)), payload...)}); err != nil {
				t.Fatal(err)
			}
			rows++
		}
		rec := c.Flush()
		if err := rw.write(rec, c.Schema(), int64(batch*100)); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := rw.closeCurrent(); err != nil {
		t.Fatal(err)
	}
	files := rw.take()
	if len(files) < 2 {
		t.Fatalf("%d files for %d rows at a 64 KiB target", len(files), rows)
	}
	var total int64
	for _, f := range files {
		total += f.rows
		path := strings.TrimPrefix(f.path, "file://")
		st, err := os.Stat(path)
		if err != nil || st.Size() != f.size {
			t.Fatalf("%s: size %d recorded, stat %v %v", f.path, f.size, st, err)
		}
		rd, err := file.OpenParquetFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		if rd.NumRows() != f.rows || rd.MetaData().Schema.Column(0).Name() != convert.ColumnKey {
			t.Errorf("%s: %d rows, want %d", f.path, rd.NumRows(), f.rows)
		}
		cc, err := rd.MetaData().RowGroup(0).ColumnChunk(1)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Compression().String() != "ZSTD" {
			t.Errorf("%s: column chunk compression %v, want ZSTD", f.path, cc.Compression())
		}
		rd.Close()
		if filepath.Dir(path) != filepath.Join(dir, "data") {
			t.Errorf("file %s outside the table's data directory", path)
		}
	}
	if total != int64(rows) {
		t.Fatalf("files hold %d rows, wrote %d", total, rows)
	}
}

func TestBindPartitionSpec(t *testing.T) {
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "_kafka_metadata", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 4, Name: "timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		}}},
	)
	tests := []struct {
		by      string
		want    string // "sourceID:transform:name ..."
		wantErr string
	}{
		{by: "[]", want: ""},
		{by: "[day(_kafka_metadata.timestamp), bucket(8, id), truncate(3, name), name]",
			want: "4:day:_kafka_metadata_timestamp_day 1:bucket[8]:id_bucket 2:truncate[3]:name_trunc 2:identity:name"},
		{by: "[hour(_kafka_metadata.timestamp)]", want: "4:hour:_kafka_metadata_timestamp_hour"},
		{by: "[day(nope)]", wantErr: `no column "nope"`},
		{by: "[day(name)]", wantErr: "does not take day"},
	}
	for _, tt := range tests {
		t.Run(tt.by, func(t *testing.T) {
			terms, err := parsePartitionBy(tt.by)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := bindPartitionSpec(terms, sc)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range spec.Fields() {
				got = append(got, fmt.Sprintf("%d:%s:%s", f.SourceID(), f.Transform, f.Name))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("spec = %q, want %q", strings.Join(got, " "), tt.want)
			}
			if !sameLayout(spec, spec) {
				t.Error("a spec differs from itself")
			}
		})
	}
}
