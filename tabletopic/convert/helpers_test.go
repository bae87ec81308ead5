package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/schema"
)

// testRegistry is floe's own schema registry over an embedded etcd, with
// compatibility checks off so tests can register any evolution.
type testRegistry struct {
	t      testing.TB
	srv    *schema.Server
	client schema.Client
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	store := metastoretest.OpenEmbedded(t)
	srv, err := schema.NewServer(store, schema.Config{DefaultCompatibility: "NONE"}, metastoretest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return &testRegistry{t: t, srv: srv, client: srv.LocalClient()}
}

// register registers a schema under subject through the REST API and
// returns its id.
func (r *testRegistry) register(subject, text string, schemaType ...string) int {
	r.t.Helper()
	req := map[string]any{"schema": text}
	if len(schemaType) > 0 {
		req["schemaType"] = schemaType[0]
	}
	body, _ := json.Marshal(req)
	hr := httptest.NewRequest(http.MethodPost, "/subjects/"+subject+"/versions", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	rec := httptest.NewRecorder()
	r.srv.Handler().ServeHTTP(rec, hr)
	if rec.Code != http.StatusOK {
		r.t.Fatalf("register %s: HTTP %d: %s", subject, rec.Code, rec.Body)
	}
	var res struct{ ID int }
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		r.t.Fatal(err)
	}
	return res.ID
}

// wire encodes v with the Avro schema text and frames it in the Confluent
// wire format with id.
func wire(t testing.TB, id int, text string, v any) []byte {
	t.Helper()
	return append(wireHeader(id), avroBytes(t, text, v)...)
}

func wireHeader(id int) []byte {
	return binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
}

// avroBytes encodes v with hamba/avro, an encoder independent of ours.
func avroBytes(t testing.TB, text string, v any) []byte {
	t.Helper()
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	b, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return b
}

func mustNew(t testing.TB, cfg Config, s *iceberg.Schema) *Converter {
	t.Helper()
	c, err := New(context.Background(), cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c
}

// addEvolving adds a record, adopting schema proposals the way the pipeline
// does (flush, commit, Evolve, Add again; the rows flushed on the way are
// dropped); it reports whether the schema evolved and fails on any other
// error.
func addEvolving(t testing.TB, c *Converter, rec Record) (evolved bool) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		err := c.Add(ctx, rec)
		if err == nil {
			return evolved
		}
		if !errors.Is(err, ErrSchemaChange) {
			t.Fatalf("Add offset %d: %v", rec.Offset, err)
		}
		if r := c.Flush(); r != nil {
			r.Release()
		}
		if err := c.Evolve(c.ProposedSchema()); err != nil {
			t.Fatal(err)
		}
		evolved = true
	}
	t.Fatalf("Add offset %d: schema never settles", rec.Offset)
	return false
}

// rowsOf turns a record batch into one map per row, column name -> value
// as arrow's JSON rendering gives it, for compact comparisons.
func rowsOf(t testing.TB, rec arrow.RecordBatch) []map[string]any {
	t.Helper()
	if rec == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := array.RecordToJSON(rec, &buf); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	for dec.More() {
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows
}

func flushRows(t testing.TB, c *Converter) []map[string]any {
	t.Helper()
	rec := c.Flush()
	if rec == nil {
		return nil
	}
	defer rec.Release()
	if err := validateRecord(rec); err != nil {
		t.Fatalf("flushed record is invalid: %v", err)
	}
	return rowsOf(t, rec)
}

// validateRecord runs Arrow's full validation on every column.
func validateRecord(rec arrow.RecordBatch) error {
	for i, col := range rec.Columns() {
		if v, ok := col.(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				return errors.New(rec.ColumnName(i) + ": " + err.Error())
			}
		}
		if col.Len() != int(rec.NumRows()) {
			return errors.New(rec.ColumnName(i) + ": wrong length")
		}
	}
	return nil
}

// js renders a value as compact JSON for comparisons.
func js(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fieldIDs maps each column path ("a.b", "l.element", "m.value") to its id.
func fieldIDs(t testing.TB, s *iceberg.Schema) map[string]int {
	t.Helper()
	byName, err := iceberg.IndexByName(s)
	if err != nil {
		t.Fatal(err)
	}
	return byName
}

func wantInvalid(t testing.TB, err error, contains string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("got %v, want ErrInvalidRecord", err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
}
