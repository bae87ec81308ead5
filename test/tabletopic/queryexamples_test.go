package tabletopic_test

// The SQL files of query-examples/sql run, as they are, through DuckDB
// (query-examples/duckdb/query.mjs) over table topics made in process, and
// return what the produced records say they should. Trino and Spark are
// not available here; the files stick to SQL all three engines accept.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/tabletopic"
)

// runExample runs query-examples/sql/file over default.table and decodes
// its rows.
func runExample(t *testing.T, e *env, table, file string, out any) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "query-examples", "sql", file))
	if err != nil {
		t.Fatal(err)
	}
	b := runDuckDB(t, nil, "--catalog", e.catURL, "--table", "default."+table, "--sql-file", path)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v in\n%s", file, err, b)
	}
}

// settle waits until every produced record is in the table and nothing
// is left to commit.
func settle(t *testing.T, e *env, topic string, rows int) {
	t.Helper()
	e.waitRows("default", topic, rows, time.Minute)
	e.waitStatus(topic, 30*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
}

const clickSchema = `{"type":"record","name":"Click","fields":[
	{"name":"user_id","type":"string"},
	{"name":"page","type":"string"},
	{"name":"event_type","type":"string"},
	{"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

func TestQueryExampleClickstream(t *testing.T) {
	e := newEnv(t)
	e.createTopic("clicks", 4, withConfigs(tableOn,
		"table.topic.convert.value.type", "by_schema_id",
		"table.topic.transform.value.type", "flatten"))
	e.startService()
	id := e.register("clicks-value", clickSchema)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	types := []string{"click", "purchase", "view"}
	type key struct {
		minute time.Time
		typ    string
	}
	events := map[key]int64{}
	users := map[key]map[string]bool{}
	var recs []*kgo.Record
	const n = 1200
	for i := range n {
		at := base.Add(time.Duration(i) * 317 * time.Millisecond) // a bit over 6 minutes
		typ := types[i*i%len(types)]
		user := fmt.Sprintf("u%d", i%41)
		k := key{at.Truncate(time.Minute), typ}
		events[k]++
		if users[k] == nil {
			users[k] = map[string]bool{}
		}
		users[k][user] = true
		v := map[string]any{"user_id": user, "page": fmt.Sprintf("/p/%d", i%9), "event_type": typ, "event_time": at}
		recs = append(recs, &kgo.Record{Key: []byte(user), Value: wire(t, id, clickSchema, v)})
	}
	newProduced().produce(t, e.client(kgo.DefaultProduceTopic("clicks")), recs)
	settle(t, e, "clicks", n)

	var got []struct {
		Minute    string `json:"minute"`
		EventType string `json:"event_type"`
		Events    int64  `json:"events"`
		Users     int64  `json:"users"`
	}
	runExample(t, e, "clicks", "clickstream.sql", &got)
	if len(got) != len(events) {
		t.Errorf("%d (minute, type) rows, want %d: %+v", len(got), len(events), got)
	}
	var prev key
	for i, g := range got {
		m, err := time.Parse("2006-01-02 15:04:05-07", g.Minute)
		if err != nil {
			t.Fatalf("minute %q: %v", g.Minute, err)
		}
		k := key{m.UTC(), g.EventType}
		if g.Events != events[k] || g.Users != int64(len(users[k])) {
			t.Errorf("%v %s: %d events, %d users; want %d, %d", k.minute, k.typ, g.Events, g.Users, events[k], len(users[k]))
		}
		if i > 0 && (k.minute.Before(prev.minute) || (k.minute.Equal(prev.minute) && k.typ < prev.typ)) {
			t.Errorf("rows out of order at %d: %+v", i, g)
		}
		prev = k
	}
}

const orderSchema = `{"type":"record","name":"Order","fields":[
	{"name":"order_id","type":"string"},
	{"name":"status","type":"string"},
	{"name":"amount_cents","type":"long"}]}`

func TestQueryExampleOrdersLatestPerKey(t *testing.T) {
	e := newEnv(t)
	e.createTopic("orders", 8, withConfigs(tableOn,
		"table.topic.convert.value.type", "by_schema_id",
		"table.topic.transform.value.type", "flatten"))
	e.startService()
	id := e.register("orders-value", orderSchema)
	cl := e.client(kgo.DefaultProduceTopic("orders"))
	type order struct {
		status string
		amount int64
	}
	latest := map[string]*order{}
	rows := 0
	// Each round is acknowledged before the next is sent, so a key's
	// versions have increasing offsets.
	round := func(status string, pick func(i int) bool, tombstone bool) {
		var recs []*kgo.Record
		for i := range 200 {
			if !pick(i) {
				continue
			}
			oid := fmt.Sprintf("o%04d", i)
			r := &kgo.Record{Key: []byte(oid)}
			if tombstone {
				delete(latest, oid)
			} else {
				o := &order{status, int64(i*100 + len(status))}
				latest[oid] = o
				r.Value = wire(t, id, orderSchema, map[string]any{"order_id": oid, "status": o.status, "amount_cents": o.amount})
			}
			recs = append(recs, r)
		}
		newProduced().produce(t, cl, recs)
		rows += len(recs)
	}
	round("CREATED", func(int) bool { return true }, false)
	round("PAID", func(i int) bool { return i%2 == 0 }, false)
	round("SHIPPED", func(i int) bool { return i%6 == 0 }, false)
	round("", func(i int) bool { return i%10 == 0 }, true) // deleted orders
	round("CREATED", func(i int) bool { return i%20 == 0 }, false)
	settle(t, e, "orders", rows)

	var got []struct {
		OrderKey    string `json:"order_key"`
		OrderID     string `json:"order_id"`
		Status      string `json:"status"`
		AmountCents int64  `json:"amount_cents"`
		UpdatedAt   string `json:"updated_at"`
	}
	runExample(t, e, "orders", "orders_upsert.sql", &got)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range latest {
			if !yield(k) {
				return
			}
		}
	})
	if len(got) != len(keys) {
		t.Fatalf("%d orders, want %d", len(got), len(keys))
	}
	for i, g := range got {
		w := latest[keys[i]]
		if g.OrderKey != keys[i] || g.OrderID != keys[i] || g.Status != w.status || g.AmountCents != w.amount || g.UpdatedAt == "" {
			t.Errorf("row %d: %+v, want %s %s %d", i, g, keys[i], w.status, w.amount)
		}
	}
}

const customerEnvelope = `{"type":"record","name":"Envelope","namespace":"dbserver1.inventory.customers","fields":[
	{"name":"before","type":["null",{"type":"record","name":"Value","fields":[
		{"name":"id","type":"int"},{"name":"email","type":"string"}]}],"default":null},
	{"name":"after","type":["null","Value"],"default":null},
	{"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.mysql","fields":[
		{"name":"connector","type":"string"},{"name":"ts_ms","type":"long"}]}},
	{"name":"op","type":"string"},
	{"name":"ts_ms","type":["null","long"],"default":null}]}`

func TestQueryExampleCDC(t *testing.T) {
	e := newEnv(t)
	const topic = "dbserver1.inventory.customers"
	e.createTopic(topic, 4, withConfigs(tableOn,
		"table.topic.name", "customers",
		"table.topic.convert.value.type", "by_schema_id",
		"table.topic.transform.value.type", "flatten_debezium"))
	e.startService()
	id := e.register(topic+"-value", customerEnvelope)
	cl := e.client(kgo.DefaultProduceTopic(topic))
	type row struct {
		email, op string
	}
	current := map[int]row{}
	rows := 0
	// A union with a record branch is given as {full name: value}.
	image := func(id int, email string) map[string]any {
		return map[string]any{"dbserver1.inventory.customers.Value": map[string]any{"id": int32(id), "email": email}}
	}
	send := func(op string, ids []int, email func(int) string) {
		var recs []*kgo.Record
		for _, i := range ids {
			before, after := any(nil), any(nil)
			old, had := current[i]
			if had {
				before = image(i, old.email)
			}
			if op == "d" {
				delete(current, i)
			} else {
				current[i] = row{email(i), op}
				after = image(i, email(i))
			}
			v := map[string]any{"before": before, "after": after, "op": op,
				"source": map[string]any{"connector": "mysql", "ts_ms": int64(1)}, "ts_ms": nil}
			k := []byte(strconv.Itoa(i))
			recs = append(recs, &kgo.Record{Key: k, Value: wire(t, id, customerEnvelope, v)})
			rows++
			if op == "d" {
				recs = append(recs, &kgo.Record{Key: k}) // Debezium's tombstone: no row
			}
		}
		newProduced().produce(t, cl, recs)
	}
	ids := func(from, to int, keep func(int) bool) []int {
		var out []int
		for i := from; i <= to; i++ {
			if keep(i) {
				out = append(out, i)
			}
		}
		return out
	}
	all := func(int) bool { return true }
	send("r", ids(1, 50, all), func(i int) string { return fmt.Sprintf("c%d@snapshot", i) })
	send("u", ids(1, 50, func(i int) bool { return i%2 == 0 }), func(i int) string { return fmt.Sprintf("c%d@updated", i) })
	send("d", ids(1, 50, func(i int) bool { return i%5 == 0 }), nil)
	send("c", ids(51, 60, all), func(i int) string { return fmt.Sprintf("c%d@new", i) })
	send("c", []int{10}, func(i int) string { return "c10@again" }) // a deleted id comes back
	settle(t, e, "customers", rows)

	var got []struct {
		ID     int    `json:"id"`
		Email  string `json:"email"`
		LastOp string `json:"last_op"`
	}
	runExample(t, e, "customers", "cdc.sql", &got)
	want := slices.Sorted(func(yield func(int) bool) {
		for k := range current {
			if !yield(k) {
				return
			}
		}
	})
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		w := current[want[i]]
		if g.ID != want[i] || g.Email != w.email || g.LastOp != w.op {
			t.Errorf("row %d: %+v, want id %d %s %s", i, g, want[i], w.email, w.op)
		}
	}
}
