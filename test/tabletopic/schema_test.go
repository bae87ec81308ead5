package tabletopic_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/tabletopic"
)

const (
	userV1 = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}`
	userV2 = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},
		{"name":"email","type":["null","string"],"default":null}]}`
)

// register adds a schema under subject and returns its id.
func (e *env) register(subject, avroSchema string) int {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"schema": avroSchema})
	resp, err := http.Post(e.registryURL+"/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID int `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("register %s: HTTP %d %v", subject, resp.StatusCode, err)
	}
	return out.ID
}

// wire encodes v in the Confluent wire format with schema id.
func wire(t *testing.T, id int, sc string, v any) []byte {
	t.Helper()
	payload, err := avro.Marshal(avro.MustParse(sc), v)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, payload...)
}

// Avro values decoded by schema id and flattened into columns; a newer
// schema adds a column (the table's schema evolves, older rows read null),
// and a value with an unknown schema id goes to the dead-letter table.
func TestBySchemaIDFlattenEvolvesAndDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.createTopic("users", 4, withConfigs(tableOn,
		"table.topic.convert.value.type", "by_schema_id",
		"table.topic.transform.value.type", "flatten"))
	e.startService()
	v1 := e.register("users-value", userV1)
	cl := e.client(kgo.DefaultProduceTopic("users"))
	want := newProduced()

	type user struct {
		id    int64
		name  string
		email *string
	}
	byOffset := map[[2]int64]user{}
	send := func(from, n int, v2 int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			u := map[string]any{"id": int64(i), "name": fmt.Sprintf("user %d ✓", i)}
			sc, id := userV1, v1
			if v2 > 0 {
				sc, id = userV2, v2
				if i%2 == 0 {
					u["email"] = fmt.Sprintf("u%d@example.com", i)
				} else {
					u["email"] = nil
				}
			}
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: wire(t, id, sc, u)})
		}
		if v2 > 0 {
			// A value whose schema id the registry does not know.
			recs = append(recs, &kgo.Record{Key: []byte("bad"), Value: []byte{0, 0, 0, 0x7f, 0x7f, 2, 3}})
		}
		want.produce(t, cl, recs)
		for _, r := range recs {
			if string(r.Key) == "bad" {
				continue
			}
			var id int64
			fmt.Sscan(string(r.Key), &id)
			u := user{id: id, name: fmt.Sprintf("user %d ✓", id)}
			if v2 > 0 && id%2 == 0 {
				em := fmt.Sprintf("u%d@example.com", id)
				u.email = &em
			}
			byOffset[[2]int64{int64(r.Partition), r.Offset}] = u
		}
	}
	send(0, 300, 0)
	e.waitRows("default", "users", 300, time.Minute)
	v2 := e.register("users-value", userV2)
	send(300, 300, v2)
	e.waitRows("default", "users", 600, time.Minute)
	dlq := e.waitRows("default", "users_dlq", 1, 30*time.Second)
	if len(dlq) != 1 || string(dlq[0].key) != "bad" || !strings.Contains(dlq[0].errText, "schema") {
		t.Errorf("dead-letter rows: %+v", dlq)
	}

	seen := 0
	e.scanRecords("default", "users", func(rec arrow.RecordBatch) {
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Fatalf("no column %s in %s", name, rec.Schema())
			}
			return rec.Column(idx[0])
		}
		meta := col("_kafka_metadata").(*array.Struct)
		ids, names, emails := col("id").(*array.Int64), col("name").(*array.String), col("email").(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := [2]int64{int64(meta.Field(0).(*array.Int32).Value(i)), meta.Field(1).(*array.Int64).Value(i)}
			u, ok := byOffset[k]
			if !ok {
				t.Fatalf("unexpected row at %v", k)
			}
			delete(byOffset, k)
			seen++
			gotEmail := "<null>"
			if !emails.IsNull(i) {
				gotEmail = emails.Value(i)
			}
			wantEmail := "<null>"
			if u.email != nil {
				wantEmail = *u.email
			}
			if ids.Value(i) != u.id || names.Value(i) != u.name || gotEmail != wantEmail {
				t.Errorf("row %v: %d %q %s, want %d %q %s", k, ids.Value(i), names.Value(i), gotEmail, u.id, u.name, wantEmail)
			}
		}
	})
	if seen != 600 || len(byOffset) != 0 {
		t.Fatalf("%d rows read, %d records missing", seen, len(byOffset))
	}
	st := e.waitStatus("users", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	if st.DLQRows != 1 || st.RowsWritten != 600 {
		t.Errorf("status %+v", st)
	}
}
