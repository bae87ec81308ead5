package tabletopic_test

// The acceptance tests of table topics (issue 5) run floe as users run it:
// `floe serve` as a process (internal/testutil/floeproc) with the broker,
// catalog and registry roles, its objects and its Iceberg warehouse on a
// real S3 server (versitygw). What they check is read back through the
// catalog with iceberg-go and, for the mixed-schema test, with DuckDB too.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/testutil/floeproc"
	"github.com/floe-io/floe/tabletopic"
)

// node is one `floe serve` process with every role, on versitygw.
type node struct {
	t           *testing.T
	f           *floeproc.Floe
	catURL      string
	registryURL string
	// ioProps are the iceberg-go FileIO properties that reach the
	// warehouse on versitygw.
	ioProps map[string]string
}

// startNode starts floe with the broker, catalog and registry roles on
// fixed free ports (they stay across Restart); args are extra serve flags.
func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	// Tests talk to loopback only: no credential lookup may reach for the
	// EC2 metadata address.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	catAddr := fmt.Sprintf("127.0.0.1:%d", metastoretest.FreePort(t))
	regAddr := fmt.Sprintf("127.0.0.1:%d", metastoretest.FreePort(t))
	f := floeproc.Start(t, floeproc.Options{
		Roles: "broker,catalog,registry",
		// Later flags win: these replace floeproc's port-0 defaults.
		Args: append([]string{"--catalog-addr", catAddr, "--registry-addr", regAddr}, args...),
	})
	s3 := f.S3()
	return &node{
		t: t, f: f,
		catURL:      "http://" + catAddr,
		registryURL: "http://" + regAddr,
		ioProps: map[string]string{
			"s3.endpoint":          s3.Endpoint,
			"s3.region":            s3.Region,
			"s3.access-key-id":     s3.AccessKey,
			"s3.secret-access-key": s3.SecretKey,
			"s3.path-style-access": "true",
		},
	}
}

func (n *node) client(opts ...kgo.Opt) *kgo.Client {
	n.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.f.KafkaAddr())}, opts...)...)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(cl.Close)
	return cl
}

func (n *node) createTopic(name string, parts int32, configs map[string]string) {
	n.t.Helper()
	cl := n.client()
	defer cl.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, cfg, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		n.t.Fatalf("create topic %s: %v", name, err)
	}
}

// register adds an Avro schema under subject in floe's registry and
// returns its id.
func (n *node) register(subject, avroSchema string) int {
	n.t.Helper()
	body, _ := json.Marshal(map[string]string{"schema": avroSchema})
	resp, err := http.Post(n.registryURL+"/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
		n.t.Fatalf("register %s: HTTP %d %s (%v)", subject, resp.StatusCode, raw, err)
	}
	return out.ID
}

// catalog is a REST catalog client of floe's catalog that reads the
// warehouse on versitygw.
func (n *node) catalog() *rest.Catalog {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A copy: rest.WithAdditionalProps keeps the map and writes into it.
	cat, err := rest.NewCatalog(ctx, "floe", n.catURL, rest.WithAdditionalProps(iceberg.Properties(maps.Clone(n.ioProps))))
	if err != nil {
		n.t.Fatalf("rest.NewCatalog: %v", err)
	}
	n.t.Cleanup(func() { cat.Close() })
	return cat
}

// duckEnv is the environment query.mjs needs for the warehouse: the keys
// (endpoint, region and path style come from the catalog's /v1/config).
func (n *node) duckEnv() []string {
	s3 := n.f.S3()
	return []string{"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey, "AWS_SESSION_TOKEN="}
}

// tableStatus reads GET /v1/tables/{name} on the admin address.
func (n *node) tableStatus(name string) (tabletopic.TableStatus, error) {
	var st tabletopic.TableStatus
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + n.f.AdminAddr() + "/v1/tables/" + name)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/tables/%s: HTTP %d %s", name, resp.StatusCode, bytes.TrimSpace(body))
	}
	return st, json.Unmarshal(body, &st)
}

// waitCommitted waits until the table's committed offsets reach ends (the
// log end offset of every partition): everything produced is converted
// and committed, to the table or its dead-letter table.
func (n *node) waitCommitted(name string, ends map[int32]int64, timeout time.Duration) tabletopic.TableStatus {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := n.tableStatus(name)
		if err == nil && st.State == tabletopic.StateRunning && len(st.CommittedOffsets) >= len(ends) {
			done := true
			for p, end := range ends {
				done = done && st.CommittedOffsets[p] == end
			}
			if done {
				return st
			}
		}
		select {
		case <-n.f.Crashed():
			n.t.Fatalf("floe crashed while waiting for table %s to commit %v", name, ends)
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("table %s did not commit up to %v in %v: status %+v, err %v", name, ends, timeout, st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scanTable calls f with every batch of ns.name's current snapshot, read
// by iceberg-go; it reports false when the table does not exist.
func scanTable(t *testing.T, cat *rest.Catalog, ns, name string, f func(arrow.RecordBatch)) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tbl, err := cat.LoadTable(ctx, table.Identifier{ns, name})
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		return false
	}
	if err != nil {
		t.Fatalf("load %s.%s: %v", ns, name, err)
	}
	_, it, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		t.Fatalf("scan %s.%s: %v", ns, name, err)
	}
	for rec, err := range it {
		if err != nil {
			t.Fatalf("scan %s.%s: %v", ns, name, err)
		}
		f(rec)
		rec.Release()
	}
	return true
}

// Reading schemas: v2 adds a field to the nested record meta and an
// optional nested record location; v3 widens count int->long and temp
// float->double.
const (
	readingV1 = `{"type":"record","name":"Reading","namespace":"floe.acceptance","fields":[
		{"name":"id","type":"long"},
		{"name":"device","type":"string"},
		{"name":"count","type":"int"},
		{"name":"temp","type":"float"},
		{"name":"meta","type":{"type":"record","name":"Meta","fields":[{"name":"source","type":"string"}]}}]}`
	readingV2 = `{"type":"record","name":"Reading","namespace":"floe.acceptance","fields":[
		{"name":"id","type":"long"},
		{"name":"device","type":"string"},
		{"name":"count","type":"int"},
		{"name":"temp","type":"float"},
		{"name":"meta","type":{"type":"record","name":"Meta","fields":[{"name":"source","type":"string"},
			{"name":"batch","type":["null","long"],"default":null}]}},
		{"name":"location","type":["null",{"type":"record","name":"Location","fields":[
			{"name":"site","type":"string"},{"name":"floor","type":"int"}]}],"default":null}]}`
	readingV3 = `{"type":"record","name":"Reading","namespace":"floe.acceptance","fields":[
		{"name":"id","type":"long"},
		{"name":"device","type":"string"},
		{"name":"count","type":"long"},
		{"name":"temp","type":"double"},
		{"name":"meta","type":{"type":"record","name":"Meta","fields":[{"name":"source","type":"string"},
			{"name":"batch","type":["null","long"],"default":null}]}},
		{"name":"location","type":["null",{"type":"record","name":"Location","fields":[
			{"name":"site","type":"string"},{"name":"floor","type":"int"}]}],"default":null}]}`
)

// reading is what record id holds; every field is a function of the id,
// so expectations are computed, not remembered.
type reading struct {
	version  int // 1, 2 or 3; 0: an undecodable record
	badKind  int // for version 0: 0 bad magic byte, 1 unknown schema id, 2 truncated Avro
	id       int64
	device   string
	count    int64
	temp     float64
	source   string
	batch    *int64
	location *struct {
		site  string
		floor int32
	}
}

const (
	acceptRecords = 200_000
	// Records 0..phase2 are v1; then v1 and v2 mix; from phase3 on all
	// three versions mix (producers with older schemas keep sending).
	acceptPhase2 = 60_000
	acceptPhase3 = 130_000
	// Every badEvery-th record is undecodable.
	badEvery = 487
)

func readingOf(id int64) reading {
	r := reading{id: id}
	if id%badEvery == badEvery-1 {
		r.badKind = int(id/badEvery) % 3
		return r
	}
	switch {
	case id < acceptPhase2:
		r.version = 1
	case id < acceptPhase3:
		r.version = 1 + int(id%2)
	default:
		r.version = 1 + int(id%3)
	}
	r.device = fmt.Sprintf("device-%02d", id%50)
	r.source = fmt.Sprintf("src-%d", id%7)
	if r.version == 3 {
		// Beyond int32: the widened column must hold it.
		r.count = 3_000_000_000 + id
		r.temp = float64(id%10007) / 1000 * math.Pi // not a float32
	} else {
		r.count = id*7919%100_000 - 20_000
		r.temp = float64(float32(id%1000) / 8)
	}
	if r.version >= 2 {
		if id%4 != 0 {
			b := id / 100
			r.batch = &b
		}
		if id%3 != 0 {
			r.location = &struct {
				site  string
				floor int32
			}{fmt.Sprintf("site-%d", id%13), int32(id % 20)}
		}
	}
	return r
}

// avroValue is r as hamba/avro marshals it for its schema version.
func (r reading) avroValue() map[string]any {
	meta := map[string]any{"source": r.source}
	v := map[string]any{"id": r.id, "device": r.device, "meta": meta}
	switch r.version {
	case 3:
		v["count"], v["temp"] = r.count, r.temp
	default:
		v["count"], v["temp"] = int32(r.count), float32(r.temp)
	}
	if r.version >= 2 {
		meta["batch"] = nil
		if r.batch != nil {
			meta["batch"] = *r.batch
		}
		v["location"] = nil
		if r.location != nil {
			// hamba/avro takes a union's record branch keyed by its full name.
			v["location"] = map[string]any{"floe.acceptance.Location": map[string]any{"site": r.location.site, "floor": r.location.floor}}
		}
	}
	return v
}

// Issue 5's first acceptance test: 200,000 records over 8 partitions, Avro
// values of three schema versions (a nested field and a nested record
// added, int->long and float->double widened) mixed with undecodable ones
// (bad magic byte, unknown schema id, truncated Avro), produced to `floe
// serve` on versitygw, flattened into columns. iceberg-go and DuckDB read
// the same rows and sums; every (partition, offset) is in the table or the
// dead-letter table, exactly once, and every value is the one produced.
func TestAcceptanceMixedSchemas(t *testing.T) {
	start := time.Now()
	n := startNode(t)
	const topic, parts = "readings", 8
	n.createTopic(topic, parts, map[string]string{
		"table.topic.enable":               "true",
		"table.topic.commit.interval.ms":   "1500",
		"table.topic.convert.value.type":   "by_schema_id",
		"table.topic.transform.value.type": "flatten",
		"table.topic.errors.tolerance":     "invalid_data",
	})
	ids := map[int]int{1: n.register(topic+"-value", readingV1)}
	// Parsed once: parsing per record would make the test's own encoding
	// the slowest part of the run.
	schemas := map[int]avro.Schema{1: avro.MustParse(readingV1), 2: avro.MustParse(readingV2), 3: avro.MustParse(readingV3)}
	encode := func(version int, v any) []byte {
		payload, err := avro.Marshal(schemas[version], v)
		if err != nil {
			t.Fatalf("avro v%d: %v", version, err)
		}
		out := binary.BigEndian.AppendUint32([]byte{0}, uint32(ids[version]))
		return append(out, payload...)
	}

	cl := n.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	want := newProduced()
	const chunk = 10_000
	for from := int64(0); from < acceptRecords; from += chunk {
		if from == acceptPhase2 {
			ids[2] = n.register(topic+"-value", readingV2)
		}
		if from == acceptPhase3-acceptPhase3%chunk {
			ids[3] = n.register(topic+"-value", readingV3)
		}
		recs := make([]*kgo.Record, 0, chunk)
		for id := from; id < from+chunk; id++ {
			r := readingOf(id)
			var value []byte
			if r.version == 0 {
				good := encode(1, readingOf(id-1).withVersion(1).avroValue())
				switch r.badKind {
				case 0:
					value = append([]byte{1}, good[1:]...)
				case 1:
					value = append([]byte{0, 0x7f, 0xff, 0xff, 0x00}, good[5:]...)
				case 2:
					value = good[:len(good)-3]
				}
			} else {
				value = encode(r.version, r.avroValue())
			}
			recs = append(recs, &kgo.Record{Key: []byte(strconv.FormatInt(id, 10)), Value: value})
		}
		want.produce(t, cl, recs)
		// Before each new schema version, the table commits what it has:
		// files of older schemas are in the table when it evolves.
		if next := from + chunk; next == acceptPhase2 || next == acceptPhase3-acceptPhase3%chunk {
			n.waitCommitted(topic, want.ends(), time.Minute)
		}
	}
	produced := time.Since(start)
	if got := want.len(); got != acceptRecords {
		t.Fatalf("%d records acknowledged, want %d", got, acceptRecords)
	}
	ends := want.ends()
	if len(ends) != parts {
		t.Fatalf("records landed in %d partitions, want %d", len(ends), parts)
	}
	st := n.waitCommitted(topic, ends, 3*time.Minute)
	converted := time.Since(start)
	t.Logf("produced %d records in %v; all committed after %v; status: %d commits, %d rows, %d files, %d dead-letter rows",
		acceptRecords, produced.Round(time.Millisecond), converted.Round(time.Millisecond), st.Commits, st.RowsWritten, st.FilesWritten, st.DLQRows)

	idOf := func(r *kgo.Record) int64 {
		id, err := strconv.ParseInt(string(r.Key), 10, 64)
		if err != nil {
			t.Fatalf("key %q: %v", r.Key, err)
		}
		return id
	}
	isGood := func(r *kgo.Record) bool { return readingOf(idOf(r)).version != 0 }
	var good, bad int
	want.mu.Lock()
	for _, r := range want.recs {
		if isGood(r) {
			good++
		} else {
			bad++
		}
	}
	want.mu.Unlock()

	// iceberg-go: every row is a good record with the values produced,
	// once; the widened and added columns read back as written.
	cat := n.catalog()
	seen := map[[2]int64]bool{}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	scanned := scanTable(t, cat, "default", topic, func(rec arrow.RecordBatch) {
		cols := columnsOf(t, rec, "_kafka_metadata", "_kafka_key", "id", "device", "count", "temp", "meta", "location")
		meta := cols["_kafka_metadata"].(*array.Struct)
		partsCol, offs := meta.Field(0).(*array.Int32), meta.Field(1).(*array.Int64)
		keys := cols["_kafka_key"].(*array.String)
		idCol, devices := cols["id"].(*array.Int64), cols["device"].(*array.String)
		counts, temps := cols["count"].(*array.Int64), cols["temp"].(*array.Float64)
		metaCol, locs := cols["meta"].(*array.Struct), cols["location"].(*array.Struct)
		sources := structField(t, metaCol, "source").(*array.String)
		batches := structField(t, metaCol, "batch").(*array.Int64)
		sites := structField(t, locs, "site").(*array.String)
		floors := structField(t, locs, "floor").(*array.Int32)
		for i := range int(rec.NumRows()) {
			k := [2]int64{int64(partsCol.Value(i)), offs.Value(i)}
			if seen[k] {
				problem("partition %d offset %d appears twice", k[0], k[1])
				continue
			}
			seen[k] = true
			want.mu.Lock()
			p := want.recs[k]
			want.mu.Unlock()
			if p == nil {
				problem("row at partition %d offset %d was never produced", k[0], k[1])
				continue
			}
			w := readingOf(idOf(p))
			if w.version == 0 {
				problem("undecodable record %d (partition %d offset %d) is in the table", w.id, k[0], k[1])
				continue
			}
			got := reading{version: w.version, id: idCol.Value(i), device: devices.Value(i), count: counts.Value(i), temp: temps.Value(i), source: sources.Value(i)}
			if !batches.IsNull(i) {
				b := batches.Value(i)
				got.batch = &b
			}
			if !locs.IsNull(i) {
				got.location = &struct {
					site  string
					floor int32
				}{sites.Value(i), floors.Value(i)}
			}
			if keys.Value(i) != string(p.Key) || !sameReading(got, w) {
				problem("partition %d offset %d: got key %s %+v, want key %s %+v", k[0], k[1], keys.Value(i), got, p.Key, w)
			}
		}
	})
	if !scanned {
		t.Fatalf("table default.%s does not exist", topic)
	}
	want.mu.Lock()
	for k, r := range want.recs {
		if isGood(r) && !seen[k] {
			problem("good record %s (partition %d offset %d) is missing from the table", r.Key, k[0], k[1])
		}
	}
	want.mu.Unlock()
	if len(seen) != good {
		problem("the table has %d rows, want %d (the good records)", len(seen), good)
	}

	// The dead-letter table holds exactly the undecodable records, byte for
	// byte, with the reason.
	dlqSeen := map[[2]int64]bool{}
	scanTable(t, cat, "default", topic+"_dlq", func(rec arrow.RecordBatch) {
		for _, r := range rowsOf(t, rec) {
			k := [2]int64{int64(r.partition), r.offset}
			if dlqSeen[k] || seen[k] {
				problem("dead-letter row at partition %d offset %d is a duplicate (in the table too: %v)", k[0], k[1], seen[k])
			}
			dlqSeen[k] = true
			want.mu.Lock()
			p := want.recs[k]
			want.mu.Unlock()
			if p == nil || isGood(p) {
				problem("dead-letter row at partition %d offset %d is not an undecodable record (%v): %s", k[0], k[1], p != nil, r.errText)
				continue
			}
			wantErr := []string{"magic byte 1", "schema id 2147483392 is not registered", "value"}[readingOf(idOf(p)).badKind]
			if !bytes.Equal(r.key, p.Key) || !bytes.Equal(r.value, p.Value) || !strings.Contains(r.errText, wantErr) {
				problem("dead-letter row at partition %d offset %d: key %q, value %x, error %q; want key %q, value %x, an error with %q",
					k[0], k[1], r.key, r.value, r.errText, p.Key, p.Value, wantErr)
			}
		}
	})
	if len(dlqSeen) != bad {
		problem("the dead-letter table has %d rows, want %d (the undecodable records)", len(dlqSeen), bad)
	}
	// Table ∪ dead-letter table is every offset of every partition.
	for p, end := range ends {
		for o := range end {
			k := [2]int64{int64(p), o}
			if !seen[k] && !dlqSeen[k] {
				problem("partition %d offset %d is in neither table", p, o)
			}
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d good and %d bad records produced; problems (first %d):\n%s", good, bad, len(problems), strings.Join(problems, "\n"))
	}

	// DuckDB, over the Parquet files the current snapshot lists: the same
	// count and per-partition sums of count (a widened column) and of the
	// offsets, as produced and as iceberg-go reads them.
	env := n.duckEnv()
	args := []string{"--catalog", n.catURL, "--s3-mode", "download"}
	countOf := func(r *kgo.Record) int64 { return readingOf(idOf(r)).count }
	checkDuckAgainst(t, cat, "default", topic, producedAggOf(want, isGood, countOf), "count", env,
		append(args, "--table", "default."+topic, "--sum", "count")...)
	checkDuckAgainst(t, cat, "default", topic, producedAggOf(want, isGood, nil), "", env, append(args, "--table", "default."+topic)...)
	checkDuckAgainst(t, cat, "default", topic+"_dlq", producedAggOf(want, func(r *kgo.Record) bool { return !isGood(r) }, nil), "", env,
		append(args, "--table", "default."+topic+"_dlq")...)

	// The nested columns through DuckDB: rows of v1 read null where v2
	// added fields.
	var wantLoc struct{ withLocation, floors, withBatch, batches, v3 int64 }
	want.mu.Lock()
	for _, p := range want.recs {
		w := readingOf(idOf(p))
		if w.location != nil {
			wantLoc.withLocation++
			wantLoc.floors += int64(w.location.floor)
		}
		if w.batch != nil {
			wantLoc.withBatch++
			wantLoc.batches += *w.batch
		}
		if w.version == 3 {
			wantLoc.v3++
		}
	}
	want.mu.Unlock()
	out := runDuckDB(t, env, append(args, "--table", "default."+topic, "--sql", `
		SELECT count(location) AS with_location, sum(location.floor) AS floors,
		       count(meta.batch) AS with_batch, sum(meta.batch) AS batches,
		       count(*) FILTER (WHERE "count" >= 3000000000) AS v3
		  FROM `+topic)...)
	var got []struct {
		WithLocation int64 `json:"with_location"`
		Floors       int64 `json:"floors"`
		WithBatch    int64 `json:"with_batch"`
		Batches      int64 `json:"batches"`
		V3           int64 `json:"v3"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
		t.Fatalf("--sql output %s: %v", out, err)
	}
	if g := got[0]; g.WithLocation != wantLoc.withLocation || g.Floors != wantLoc.floors || g.WithBatch != wantLoc.withBatch ||
		g.Batches != wantLoc.batches || g.V3 != wantLoc.v3 {
		t.Errorf("DuckDB nested columns: %+v, want %+v", g, wantLoc)
	}
	t.Logf("%d rows and %d dead-letter rows checked with iceberg-go and DuckDB; %v in all", good, bad, time.Since(start).Round(time.Millisecond))
}

// ends returns each partition's end offset (the last produced + 1).
func (p *produced) ends() map[int32]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	ends := map[int32]int64{}
	for k := range p.recs {
		ends[int32(k[0])] = max(ends[int32(k[0])], k[1]+1)
	}
	return ends
}

// withVersion is r's good fields encoded as another schema version (for
// the undecodable records, built from a decodable one).
func (r reading) withVersion(v int) reading {
	r.version = v
	return r
}

func sameReading(a, b reading) bool {
	if a.id != b.id || a.device != b.device || a.count != b.count || a.temp != b.temp || a.source != b.source {
		return false
	}
	if (a.batch == nil) != (b.batch == nil) || (a.batch != nil && *a.batch != *b.batch) {
		return false
	}
	return (a.location == nil) == (b.location == nil) && (a.location == nil || *a.location == *b.location)
}

// columnsOf returns rec's top-level columns by name, failing when one is
// missing.
func columnsOf(t *testing.T, rec arrow.RecordBatch, names ...string) map[string]arrow.Array {
	t.Helper()
	out := map[string]arrow.Array{}
	for _, name := range names {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			t.Fatalf("no column %s in %s", name, rec.Schema())
		}
		out[name] = rec.Column(idx[0])
	}
	return out
}

// structField returns the child column name of a struct column.
func structField(t *testing.T, s *array.Struct, name string) arrow.Array {
	t.Helper()
	i, ok := s.DataType().(*arrow.StructType).FieldIdx(name)
	if !ok {
		t.Fatalf("struct %s has no field %s", s.DataType(), name)
	}
	return s.Field(i)
}
