package tabletopic_test

// DuckDB reads what table topics wrote: the tests below run the query
// example query-examples/duckdb/query.mjs (a Node script: it lists the
// current snapshot's data files from the REST catalog and the Avro
// manifests, then runs SQL over read_parquet in DuckDB) against the
// in-process env, and check its answers against both what was produced and
// what iceberg-go's scan returns. A second engine reading the same snapshot
// is the point: it proves the tables are readable outside floe's own
// Iceberg library.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/catalog"
	"github.com/floe-io/floe/internal/testutil/s3server"
	"github.com/floe-io/floe/tabletopic"
)

// duckdbDir is the query example the tests run (the package directory is
// the working directory of go test).
func duckdbDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "query-examples", "duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "query.mjs")); err != nil {
		t.Fatalf("query example missing: %v", err)
	}
	return dir
}

// ensureDuckDB returns the node binary, installing the example's packages
// from its lock file when node_modules is missing (make deps does it too).
func ensureDuckDB(t *testing.T, dir string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required to run the DuckDB query example (make deps installs it): %v", err)
	}
	for _, pkg := range []string{"@duckdb/node-api", "avsc"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err == nil {
			continue
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("%s is not installed in %s and npm is not available: %v", pkg, dir, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
		break
	}
	return node
}

// runDuckDB runs query.mjs with args (and extra environment) and returns
// its standard output.
func runDuckDB(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	dir := duckdbDir(t)
	node := ensureDuckDB(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "query.mjs")}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node query.mjs %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// duckSummary is what query.mjs prints without --sql.
type duckSummary struct {
	Table           string      `json:"table"`
	SnapshotID      json.Number `json:"snapshot_id"`
	DataFiles       int         `json:"data_files"`
	DeleteFiles     int         `json:"delete_files"`
	ManifestRecords int64       `json:"manifest_records"`
	Rows            int64       `json:"rows"`
	Partitions      []struct {
		Partition int32        `json:"partition"`
		Rows      int64        `json:"rows"`
		OffsetSum *json.Number `json:"offset_sum"`
		Sum       *json.Number `json:"sum"`
	} `json:"partitions"`
}

// partAgg is one partition's row count and sum (of offsets or a column).
type partAgg struct{ rows, sum int64 }

func duckSummaryOf(t *testing.T, env []string, args ...string) (duckSummary, map[int32]partAgg) {
	t.Helper()
	out := runDuckDB(t, env, args...)
	var s duckSummary
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("summary %s: %v", out, err)
	}
	got := map[int32]partAgg{}
	for _, p := range s.Partitions {
		n := p.OffsetSum
		if n == nil {
			n = p.Sum
		}
		if n == nil {
			t.Fatalf("partition %d has no sum in %s", p.Partition, out)
		}
		sum, err := n.Int64()
		if err != nil {
			t.Fatalf("partition %d sum %q: %v", p.Partition, *n, err)
		}
		got[p.Partition] = partAgg{p.Rows, sum}
	}
	return s, got
}

// snapshotOf returns the current snapshot id of ns.name through iceberg-go.
func snapshotOf(t *testing.T, cat *rest.Catalog, ns, name string) int64 {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), table.Identifier{ns, name})
	if err != nil {
		t.Fatalf("load %s.%s: %v", ns, name, err)
	}
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		t.Fatalf("%s.%s has no snapshot", ns, name)
	}
	return snap.SnapshotID
}

// scanAgg aggregates an iceberg-go scan per partition: rows and the sum of
// offsets, or of the int64 column sumCol.
func scanAgg(t *testing.T, cat *rest.Catalog, ns, name, sumCol string) map[int32]partAgg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl, err := cat.LoadTable(ctx, table.Identifier{ns, name})
	if err != nil {
		t.Fatalf("load %s.%s: %v", ns, name, err)
	}
	_, it, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		t.Fatalf("scan %s.%s: %v", ns, name, err)
	}
	out := map[int32]partAgg{}
	for rec, err := range it {
		if err != nil {
			t.Fatalf("scan %s.%s: %v", ns, name, err)
		}
		meta := rec.Column(rec.Schema().FieldIndices("_kafka_metadata")[0]).(*array.Struct)
		parts, offs := meta.Field(0).(*array.Int32), meta.Field(1).(*array.Int64)
		var vals *array.Int64
		if sumCol != "" {
			idx := rec.Schema().FieldIndices(sumCol)
			if len(idx) == 0 {
				t.Fatalf("no column %s in %s", sumCol, rec.Schema())
			}
			vals = rec.Column(idx[0]).(*array.Int64)
		}
		for i := range int(rec.NumRows()) {
			a := out[parts.Value(i)]
			a.rows++
			if vals != nil {
				a.sum += vals.Value(i)
			} else {
				a.sum += offs.Value(i)
			}
			out[parts.Value(i)] = a
		}
		rec.Release()
	}
	return out
}

// producedAgg aggregates what was produced per partition; value gives the
// number summed for a record (nil: its offset).
func producedAgg(p *produced, value func(*kgo.Record) int64) map[int32]partAgg {
	return producedAggOf(p, nil, value)
}

// producedAggOf is producedAgg over the records keep accepts (nil: all).
func producedAggOf(p *produced, keep func(*kgo.Record) bool, value func(*kgo.Record) int64) map[int32]partAgg {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int32]partAgg{}
	for k, r := range p.recs {
		if keep != nil && !keep(r) {
			continue
		}
		a := out[int32(k[0])]
		a.rows++
		if value != nil {
			a.sum += value(r)
		} else {
			a.sum += k[1]
		}
		out[int32(k[0])] = a
	}
	return out
}

func checkAgg(t *testing.T, what string, got, want map[int32]partAgg) {
	t.Helper()
	if !maps.Equal(got, want) {
		keys := slices.Sorted(maps.Keys(want))
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if _, ok := want[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			t.Errorf("%s partition %d: got %+v, want %+v", what, k, got[k], want[k])
		}
		t.Fatalf("%s differs from what was produced", what)
	}
}

// checkDuckAgainst checks DuckDB's summary of ns.name against the produced
// aggregate and iceberg-go's scan of the same snapshot.
func checkDuckAgainst(t *testing.T, cat *rest.Catalog, ns, name string, want map[int32]partAgg, sumCol string, env []string, args ...string) duckSummary {
	t.Helper()
	before := snapshotOf(t, cat, ns, name)
	scanned := scanAgg(t, cat, ns, name, sumCol)
	summary, duck := duckSummaryOf(t, env, args...)
	after := snapshotOf(t, cat, ns, name)
	if before != after {
		t.Fatalf("%s.%s committed during the check (snapshot %d then %d); nothing should be in flight", ns, name, before, after)
	}
	if summary.SnapshotID.String() != strconv.FormatInt(before, 10) {
		t.Errorf("DuckDB read snapshot %s, iceberg-go %d", summary.SnapshotID, before)
	}
	var total int64
	for _, a := range want {
		total += a.rows
	}
	if summary.Rows != total {
		t.Errorf("DuckDB counted %d rows, want %d", summary.Rows, total)
	}
	if summary.DeleteFiles == 0 && summary.ManifestRecords != total {
		t.Errorf("the manifests count %d records, want %d", summary.ManifestRecords, total)
	}
	checkAgg(t, "iceberg-go scan", scanned, want)
	checkAgg(t, "DuckDB", duck, want)
	return summary
}

// A raw table topic (binary values, string keys, headers) read by DuckDB:
// row counts and per-partition offset sums equal what was produced and what
// iceberg-go reads, and the bytes themselves add up.
func TestDuckDBReadsTableTopic(t *testing.T) {
	e := newEnv(t)
	e.startService()
	const topic, n = "duck_raw", 20000
	e.createTopic(topic, 8, withConfigs(tableOn, "table.topic.convert.key.type", "string"))
	want := newProduced()
	cl := e.client(kgo.DefaultProduceTopic(topic))
	recs := makeRecords(0, n)
	// Two batches of produce, so the table is built by several commits.
	want.produce(t, cl, recs[:n/2])
	e.waitRows("default", topic, n/2, time.Minute)
	want.produce(t, cl, recs[n/2:])
	e.waitRows("default", topic, n, 2*time.Minute)
	e.waitStatus(topic, 30*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	if got := want.len(); got != n {
		t.Fatalf("%d records acknowledged, want %d", got, n)
	}

	cat := e.restCatalog()
	defer cat.Close()
	s := checkDuckAgainst(t, cat, "default", topic, producedAgg(want, nil), "", nil, "--catalog", e.catURL, "--table", "default."+topic)
	if len(s.Partitions) != 8 || s.DataFiles < 8 {
		t.Errorf("summary: %d partitions, %d data files; want 8 partitions, at least 8 files", len(s.Partitions), s.DataFiles)
	}

	// The contents, not just the metadata: digests of every key and value,
	// in (partition, offset) order, equal the produced ones; header counts
	// add up.
	var wantHeaders int64
	want.mu.Lock()
	order := slices.SortedFunc(maps.Keys(want.recs), func(a, b [2]int64) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	var keysHex, valuesHex strings.Builder
	for _, k := range order {
		r := want.recs[k]
		if r.Key == nil {
			keysHex.WriteString("-")
		} else {
			keysHex.WriteString(strings.ToUpper(hex.EncodeToString(r.Key)))
		}
		valuesHex.WriteString(strings.ToUpper(hex.EncodeToString(r.Value)))
		wantHeaders += int64(len(r.Headers))
	}
	want.mu.Unlock()
	md5hex := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	out := runDuckDB(t, nil, "--catalog", e.catURL, "--table", "default."+topic, "--sql", `
		SELECT count(*) AS n,
		       md5(string_agg(coalesce(hex(encode(_kafka_key)), '-'), '' ORDER BY _kafka_metadata."partition", _kafka_metadata."offset")) AS keys_md5,
		       md5(string_agg(hex(_kafka_value), '' ORDER BY _kafka_metadata."partition", _kafka_metadata."offset")) AS values_md5,
		       sum(len(_kafka_headers)) AS headers
		  FROM `+topic)
	var got []struct {
		N         int64  `json:"n"`
		KeysMD5   string `json:"keys_md5"`
		ValuesMD5 string `json:"values_md5"`
		Headers   int64  `json:"headers"`
	}
	if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
		t.Fatalf("--sql output %s: %v", out, err)
	}
	g := got[0]
	if g.N != n || g.KeysMD5 != md5hex(keysHex.String()) || g.ValuesMD5 != md5hex(valuesHex.String()) || g.Headers != wantHeaders {
		t.Errorf("DuckDB read %+v; want n=%d keys_md5=%s values_md5=%s headers=%d",
			g, n, md5hex(keysHex.String()), md5hex(valuesHex.String()), wantHeaders)
	}
}

// Another engine deletes rows from a table topic's table, first copy-on-write
// (files rewritten: the manifests carry DELETED entries for the old ones),
// then merge-on-read (position delete files); floe goes on appending. DuckDB
// reads what iceberg-go reads, and what was produced minus what was deleted.
func TestDuckDBAfterAnotherEngineDeletes(t *testing.T) {
	e := newEnv(t)
	e.startService()
	const topic, n = "duck_del", 3000
	e.createTopic(topic, 4, tableOn)
	want := newProduced()
	cl := e.client(kgo.DefaultProduceTopic(topic))
	want.produce(t, cl, makeRecords(0, n))
	e.waitRows("default", topic, n, time.Minute)
	e.waitStatus(topic, 30*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	e.stopService()

	cat := e.restCatalog()
	defer cat.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	del := func(props iceberg.Properties, filter iceberg.BooleanExpression) {
		t.Helper()
		tbl, err := cat.LoadTable(ctx, table.Identifier{"default", topic})
		if err != nil {
			t.Fatal(err)
		}
		tx := tbl.NewTransaction()
		if props != nil {
			if err := tx.SetProperties(props); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Delete(ctx, filter, nil); err != nil {
			t.Fatalf("delete %v: %v", filter, err)
		}
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit delete %v: %v", filter, err)
		}
	}
	// The filters are on the offset, never null: iceberg-go v0.7's
	// copy-on-write rewrite keeps NOT(filter), which also drops rows whose
	// filtered column is null (SQL's three-valued NOT), so a filter on the
	// nullable key would delete keyless records it does not match.
	offset := iceberg.Reference("_kafka_metadata.offset")
	from := func(off int64) func(*kgo.Record) bool {
		return func(r *kgo.Record) bool { return r.Offset >= off }
	}
	del(nil, iceberg.LessThan(offset, int64(200)))
	s := checkDuckAgainst(t, cat, "default", topic, producedAggOf(want, from(200), nil), "", nil,
		"--catalog", e.catURL, "--table", "default."+topic)
	if s.DeleteFiles != 0 {
		t.Errorf("copy-on-write delete left %d delete files", s.DeleteFiles)
	}

	del(iceberg.Properties{table.WriteDeleteModeKey: table.WriteModeMergeOnRead}, iceberg.LessThan(offset, int64(400)))
	s = checkDuckAgainst(t, cat, "default", topic, producedAggOf(want, from(400), nil), "", nil,
		"--catalog", e.catURL, "--table", "default."+topic)
	if s.DeleteFiles == 0 {
		t.Errorf("merge-on-read delete wrote no delete files; the test does not test position deletes")
	}

	// floe appends on top of the other engine's snapshots.
	e.startService()
	want.produce(t, cl, makeRecords(n, 1000))
	wantAgg := producedAggOf(want, from(400), nil)
	var total int
	for _, a := range wantAgg {
		total += int(a.rows)
	}
	e.waitRows("default", topic, total, time.Minute)
	e.waitStatus(topic, 30*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	e.stopService()
	checkDuckAgainst(t, cat, "default", topic, wantAgg, "", nil, "--catalog", e.catURL, "--table", "default."+topic)
}

const paymentV1 = `{"type":"record","name":"Payment","fields":[{"name":"id","type":"long"},{"name":"amount","type":"long"},{"name":"currency","type":"string"}]}`
const paymentV2 = `{"type":"record","name":"Payment","fields":[{"name":"id","type":"long"},{"name":"amount","type":"long"},{"name":"currency","type":"string"},
	{"name":"note","type":["null","string"],"default":null}]}`

// Avro values flattened into columns, with a column added halfway: DuckDB's
// per-partition sums of a numeric column match the produced values and
// iceberg-go, and files written before the column existed read it as null.
func TestDuckDBReadsFlattenedColumns(t *testing.T) {
	e := newEnv(t)
	const topic = "duck_payments"
	e.createTopic(topic, 4, withConfigs(tableOn,
		"table.topic.convert.value.type", "by_schema_id",
		"table.topic.transform.value.type", "flatten"))
	e.startService()
	v1 := e.register(topic+"-value", paymentV1)
	cl := e.client(kgo.DefaultProduceTopic(topic))
	want := newProduced()
	amount := func(id int64) int64 { return id*7919%100000 - 20000 } // negatives too
	send := func(from, n, id int, sc string) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			v := map[string]any{"id": int64(i), "amount": amount(int64(i)), "currency": []string{"EUR", "USD", "JPY"}[i%3]}
			if sc == paymentV2 {
				v["note"] = fmt.Sprintf("note %d", i)
			}
			recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: wire(t, id, sc, v)})
		}
		want.produce(t, cl, recs)
	}
	send(0, 1500, v1, paymentV1)
	e.waitRows("default", topic, 1500, time.Minute)
	v2 := e.register(topic+"-value", paymentV2)
	send(1500, 500, v2, paymentV2)
	e.waitRows("default", topic, 2000, time.Minute)
	e.waitStatus(topic, 30*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })

	cat := e.restCatalog()
	defer cat.Close()
	wantAmounts := producedAgg(want, func(r *kgo.Record) int64 {
		id, _ := strconv.ParseInt(string(r.Key), 10, 64)
		return amount(id)
	})
	checkDuckAgainst(t, cat, "default", topic, wantAmounts, "amount", nil, "--catalog", e.catURL, "--table", "default."+topic, "--sum", "amount")
	checkDuckAgainst(t, cat, "default", topic, producedAgg(want, nil), "", nil, "--catalog", e.catURL, "--table", "default."+topic)

	out := runDuckDB(t, nil, "--catalog", e.catURL, "--table", "default."+topic, "--sql",
		`SELECT currency, count(*) AS n, count(note) AS notes, min(id) AS min_id, max(id) AS max_id
		   FROM `+topic+` GROUP BY currency ORDER BY currency`)
	type cur struct {
		Currency string `json:"currency"`
		N        int64  `json:"n"`
		Notes    int64  `json:"notes"`
		MinID    int64  `json:"min_id"`
		MaxID    int64  `json:"max_id"`
	}
	var got []cur
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("--sql output %s: %v", out, err)
	}
	wantCur := map[string]*cur{}
	for i := range 2000 {
		c := []string{"EUR", "USD", "JPY"}[i%3]
		w := wantCur[c]
		if w == nil {
			w = &cur{Currency: c, MinID: int64(i)}
			wantCur[c] = w
		}
		w.N++
		w.MaxID = int64(i)
		if i >= 1500 {
			w.Notes++
		}
	}
	if len(got) != 3 {
		t.Fatalf("--sql output %s: want 3 currencies", out)
	}
	for _, g := range got {
		if w := wantCur[g.Currency]; w == nil || *w != g {
			t.Errorf("currency %s: DuckDB %+v, want %+v", g.Currency, g, w)
		}
	}
}

// startServiceOn starts the env's table-topic service against another
// catalog (one whose warehouse is on S3), writing with ioProps.
func startServiceOn(e *env, catURL string, ioProps map[string]string, opts ...rest.Option) {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	svc, err := tabletopic.New(tabletopic.Config{
		CatalogURI:      catURL,
		CatalogOptions:  opts,
		IOProps:         ioProps,
		PollInterval:    200 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		MaxRetryBackoff: time.Second,
		Registry:        e.registry.LocalClient(),
		Logger:          testLogger(e.t),
		Registerer:      e.reg,
	}, brokerLog{e.broker})
	if err != nil {
		e.t.Fatalf("tabletopic.New: %v", err)
	}
	if err := svc.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
}

// With the warehouse on S3 (versitygw), the example reads metadata,
// manifests and data files through its own SigV4 client (DuckDB's httpfs
// extension is downloaded at run time, so the test asks for the download
// path): same counts and sums as produced and as iceberg-go. The catalog
// requires OAuth2 client credentials and vends its storage credentials,
// so the example is run both ways: keys from AWS_*, and vended keys only.
func TestDuckDBReadsS3Warehouse(t *testing.T) {
	e := newEnv(t)
	s3 := s3server.Start(t)
	bucket := s3.Bucket(t, "lake")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ioProps := map[string]string{
		"s3.endpoint":          s3.Endpoint,
		"s3.region":            s3.Region,
		"s3.access-key-id":     s3.AccessKey,
		"s3.secret-access-key": s3.SecretKey,
		"s3.path-style-access": "true",
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const credential = "duck-engine:duck-s3cr3t"
	srv, err := catalog.New(ctx, catalog.Config{
		DBDriver:     "sqlite",
		DBDSN:        filepath.Join(t.TempDir(), "catalog.db"),
		Warehouse:    "s3://" + bucket + "/warehouse",
		IOProps:      maps.Clone(ioProps),
		ClientID:     "duck-engine",
		ClientSecret: "duck-s3cr3t",
	}, testLogger(t))
	if err != nil {
		t.Fatalf("catalog.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("catalog close: %v", err)
		}
	})
	// Each user gets its own copy: iceberg-go's rest.WithAdditionalProps
	// keeps the map and writes the catalog's config into it.
	startServiceOn(e, hs.URL, maps.Clone(ioProps), rest.WithCredential(credential))

	const topic, n = "duck_s3", 4000
	e.createTopic(topic, 4, tableOn)
	want := newProduced()
	want.produce(t, e.client(kgo.DefaultProduceTopic(topic)), makeRecords(0, n))
	cat, err := rest.NewCatalog(ctx, "s3", hs.URL, rest.WithCredential(credential), rest.WithAdditionalProps(iceberg.Properties(maps.Clone(ioProps))))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var rows int64
		if _, err := cat.LoadTable(ctx, table.Identifier{"default", topic}); err == nil {
			for _, a := range scanAgg(t, cat, "default", topic, "") {
				rows += a.rows
			}
		} else if !errors.Is(err, icecatalog.ErrNoSuchTable) {
			t.Fatal(err)
		}
		if rows >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("default.%s has %d rows, want %d; status %s", topic, rows, n, e.statusJSON())
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.waitStatus(topic, 30*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })

	// The catalog's /v1/config gives endpoint, region and path style; the
	// keys come from AWS_*...
	noKeys := []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN="}
	env := []string{"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey, "AWS_SESSION_TOKEN="}
	wantAgg := producedAgg(want, nil)
	s := checkDuckAgainst(t, cat, "default", topic, wantAgg, "", env,
		"--catalog", hs.URL, "--credential", credential, "--table", "default."+topic, "--s3-mode", "download")
	if len(s.Partitions) != 4 {
		t.Errorf("summary has %d partitions, want 4", len(s.Partitions))
	}
	// ...or from the catalog, which vends them to an authenticated client.
	checkDuckAgainst(t, cat, "default", topic, wantAgg, "", noKeys,
		"--catalog", hs.URL, "--credential", credential, "--vended-credentials", "--table", "default."+topic, "--s3-mode", "download")

	// Without keys the bucket refuses, and without the credential the
	// catalog does; the example says which.
	dir := duckdbDir(t)
	node := ensureDuckDB(t, dir)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--credential", credential}, "HTTP 403"},
		{nil, "HTTP 401"},
		{[]string{"--credential", "duck-engine:wrong", "--vended-credentials"}, "HTTP 401"},
	} {
		cmd := exec.Command(node, append([]string{filepath.Join(dir, "query.mjs"), "--catalog", hs.URL, "--table", "default." + topic, "--s3-mode", "download"}, c.args...)...)
		cmd.Env = append(os.Environ(), noKeys...)
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte(c.want)) {
			t.Errorf("query.mjs %q: err %v, want an error with %q; output:\n%s", c.args, err, c.want, out)
		}
	}
}
