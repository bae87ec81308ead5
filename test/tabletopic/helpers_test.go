package tabletopic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/broker"
	"github.com/floe-io/floe/catalog"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/objstore/filesystem"
	"github.com/floe-io/floe/schema"
	"github.com/floe-io/floe/tabletopic"
)

// brokerLog adapts *broker.Broker to tabletopic.Log, as cmd/floe does.
type brokerLog struct{ *broker.Broker }

func (l brokerLog) Topics() []tabletopic.TopicInfo {
	ts := l.Broker.Topics()
	out := make([]tabletopic.TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = tabletopic.TopicInfo(t)
	}
	return out
}

var _ tabletopic.Log = brokerLog{}

// env is one node's worth of floe in process: metadata store, object
// store, broker, catalog behind a fault-injecting proxy, and the
// table-topic service.
type env struct {
	t       *testing.T
	dir     string
	store   *metastore.Store
	bucket  *filesystem.Bucket
	proxy   *faultProxy
	catURL  string
	broker  *broker.Broker
	brokerC chan error
	svc     *tabletopic.Service
	reg     *prometheus.Registry
	// registry is the schema registry (over the metadata store) and
	// registryURL its REST API.
	registry    *schema.Server
	registryURL string
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), store: metastoretest.OpenEmbedded(t)}
	var err error
	if e.bucket, err = filesystem.New(filepath.Join(e.dir, "objects")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := catalog.New(ctx, catalog.Config{
		DBDriver:  "sqlite",
		DBDSN:     filepath.Join(e.dir, "catalog.db"),
		Warehouse: "file://" + filepath.Join(e.dir, "warehouse"),
	}, testLogger(t))
	if err != nil {
		t.Fatalf("catalog.New: %v", err)
	}
	e.proxy = &faultProxy{next: cat.Handler()}
	hs := httptest.NewServer(e.proxy)
	e.catURL = hs.URL
	t.Cleanup(func() {
		hs.Close()
		if err := cat.Close(); err != nil {
			t.Errorf("catalog close: %v", err)
		}
	})
	if e.registry, err = schema.NewServer(e.store, schema.Config{}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	rs := httptest.NewServer(e.registry.Handler())
	e.registryURL = rs.URL
	t.Cleanup(rs.Close)
	e.startBroker()
	t.Cleanup(func() { e.stopService(); e.stopBroker() })
	return e
}

func (e *env) startBroker() {
	e.t.Helper()
	cfg := broker.DefaultConfig()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.FlushInterval = 20 * time.Millisecond
	b, err := broker.New(context.Background(), cfg, e.store, e.bucket, prometheus.NewRegistry(), testLogger(e.t))
	if err != nil {
		e.t.Fatalf("broker.New: %v", err)
	}
	if err := b.Listen(); err != nil {
		e.t.Fatal(err)
	}
	e.broker, e.brokerC = b, make(chan error, 1)
	go func() { e.brokerC <- b.Serve() }()
}

func (e *env) stopBroker() {
	if e.broker == nil {
		return
	}
	e.broker.Close()
	if err := <-e.brokerC; err != nil {
		e.t.Errorf("broker serve: %v", err)
	}
	e.broker = nil
}

func (e *env) startService() {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	svc, err := tabletopic.New(tabletopic.Config{
		CatalogURI:      e.catURL,
		NodeID:          0,
		PollInterval:    200 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		MaxRetryBackoff: time.Second,
		Registry:        e.registry.LocalClient(),
		Brokers:         []string{e.broker.Addr()},
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

func (e *env) stopService() {
	if e.svc == nil {
		return
	}
	if err := e.svc.Close(); err != nil {
		e.t.Errorf("service close: %v", err)
	}
	e.svc = nil
}

func (e *env) client(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(e.broker.Addr()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(5 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

func (e *env) createTopic(name string, parts int32, configs map[string]string) {
	e.t.Helper()
	cl := e.client()
	defer cl.Close()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), parts, 1, cfg, name)
	if err != nil || resp.Err != nil {
		e.t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

func (e *env) alterTopic(name string, configs map[string]string) {
	e.t.Helper()
	cl := e.client()
	defer cl.Close()
	var alters []kadm.AlterConfig
	for k, v := range configs {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	resps, err := kadm.NewClient(cl).AlterTopicConfigs(context.Background(), alters, name)
	if err == nil {
		err = resps[0].Err
	}
	if err != nil {
		e.t.Fatalf("alter topic %s: %v", name, err)
	}
}

// produced is what a test sent, by partition and offset.
type produced struct {
	mu   sync.Mutex
	recs map[[2]int64]*kgo.Record
}

func newProduced() *produced { return &produced{recs: map[[2]int64]*kgo.Record{}} }

// produce sends records (to the client's default topic) and records
// where they landed.
func (p *produced) produce(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		wg       sync.WaitGroup
		firstErr error
		errMu    sync.Mutex
	)
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errMu.Lock()
				firstErr = cmpErr(firstErr, err)
				errMu.Unlock()
				return
			}
			p.mu.Lock()
			p.recs[[2]int64{int64(r.Partition), r.Offset}] = r
			p.mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (p *produced) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.recs)
}

// makeRecords builds n records with distinct keys, values of varying
// size (binary, not UTF-8), and headers (repeated keys included).
func makeRecords(from, n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range n {
		id := from + i
		val := append([]byte(fmt.Sprintf("v%07d:", id)), bytes.Repeat([]byte{byte(id), 0xff, 0x00}, id%97)...)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("k%07d", id)), Value: val}
		if id%5 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("a")}, {Key: "h", Value: []byte{0xfe}}}
		}
		if id%11 == 0 {
			r.Key = nil
		}
		out[i] = r
	}
	return out
}

// row is one table row as read back.
type row struct {
	partition int32
	offset    int64
	tsMs      int64
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
	errText   string
}

func (e *env) restCatalog() *rest.Catalog {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cat, err := rest.NewCatalog(ctx, "floe", e.catURL, rest.WithHeaders(map[string]string{bypassHeader: "1"}))
	if err != nil {
		e.t.Fatalf("rest.NewCatalog: %v", err)
	}
	return cat
}

// scan reads every row of ns.name with iceberg-go; a missing table is no rows.
func (e *env) scan(ns, name string) []row {
	e.t.Helper()
	var out []row
	e.scanRecords(ns, name, func(rec arrow.RecordBatch) { out = append(out, rowsOf(e.t, rec)...) })
	return out
}

// scanRecords calls f with every batch of ns.name's current snapshot.
func (e *env) scanRecords(ns, name string, f func(arrow.RecordBatch)) {
	e.t.Helper()
	cat := e.restCatalog()
	defer cat.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl, err := cat.LoadTable(ctx, table.Identifier{ns, name})
	if errors.Is(err, icecatalog.ErrNoSuchTable) {
		return
	}
	if err != nil {
		e.t.Fatalf("load %s.%s: %v", ns, name, err)
	}
	_, it, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		e.t.Fatalf("scan %s.%s: %v", ns, name, err)
	}
	for rec, err := range it {
		if err != nil {
			e.t.Fatalf("scan %s.%s: %v", ns, name, err)
		}
		f(rec)
		rec.Release()
	}
}

func bytesAt(a arrow.Array, i int) []byte {
	if a == nil || a.IsNull(i) {
		return nil
	}
	switch c := a.(type) {
	case *array.Binary:
		return bytes.Clone(c.Value(i))
	case *array.LargeBinary:
		return bytes.Clone(c.Value(i))
	case *array.String:
		return []byte(c.Value(i))
	case *array.LargeString:
		return []byte(c.Value(i))
	}
	panic(fmt.Sprintf("unexpected column type %s", a.DataType()))
}

func rowsOf(t *testing.T, rec arrow.RecordBatch) []row {
	t.Helper()
	col := func(name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil
		}
		return rec.Column(idx[0])
	}
	meta, ok := col("_kafka_metadata").(*array.Struct)
	if !ok {
		t.Fatalf("no _kafka_metadata struct column in %s", rec.Schema())
	}
	parts := meta.Field(0).(*array.Int32)
	offs := meta.Field(1).(*array.Int64)
	ts := meta.Field(2).(*array.Timestamp)
	keys, vals, errs := col("_kafka_key"), col("_kafka_value"), col("_error")
	var hdrs *array.List
	if h := col("_kafka_headers"); h != nil {
		hdrs, _ = h.(*array.List)
	}
	out := make([]row, rec.NumRows())
	for i := range out {
		r := row{partition: parts.Value(i), offset: offs.Value(i), tsMs: int64(ts.Value(i)) / 1000, key: bytesAt(keys, i), value: bytesAt(vals, i)}
		if errs != nil {
			r.errText = string(bytesAt(errs, i))
		}
		if hdrs != nil && !hdrs.IsNull(i) {
			st := hdrs.ListValues().(*array.Struct)
			start, end := hdrs.ValueOffsets(i)
			for j := start; j < end; j++ {
				r.headers = append(r.headers, kgo.RecordHeader{
					Key:   string(bytesAt(st.Field(0), int(j))),
					Value: bytesAt(st.Field(1), int(j)),
				})
			}
		}
		out[i] = r
	}
	return out
}

// dataFiles counts the Parquet files under the table's location and the
// data files its current snapshot references.
func (e *env) dataFiles(ns, name string) (onDisk, inTable int) {
	e.t.Helper()
	cat := e.restCatalog()
	defer cat.Close()
	ctx := context.Background()
	tbl, err := cat.LoadTable(ctx, table.Identifier{ns, name})
	if err != nil {
		e.t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	root := strings.TrimPrefix(tbl.Location(), "file://")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".parquet") {
			onDisk++
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return onDisk, len(tasks)
}

// waitRows scans until the table holds at least want rows.
func (e *env) waitRows(ns, name string, want int, timeout time.Duration) []row {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := e.scan(ns, name)
		if len(rows) >= want {
			return rows
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s.%s has %d rows after %v, want %d; status %s", ns, name, len(rows), timeout, want, e.statusJSON())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (e *env) statusJSON() string {
	if e.svc == nil {
		return "(service stopped)"
	}
	b, _ := json.Marshal(e.svc.Status())
	return string(b)
}

// checkExactlyOnce fails unless rows are exactly the produced records,
// each (partition, offset) once, with equal bytes.
func checkExactlyOnce(t *testing.T, rows []row, want *produced, skip func(*kgo.Record) bool) {
	t.Helper()
	want.mu.Lock()
	defer want.mu.Unlock()
	seen := map[[2]int64]int{}
	bad := 0
	for _, r := range rows {
		k := [2]int64{int64(r.partition), r.offset}
		seen[k]++
		if seen[k] > 1 {
			if bad++; bad < 10 {
				t.Errorf("partition %d offset %d appears %d times", r.partition, r.offset, seen[k])
			}
			continue
		}
		p, ok := want.recs[k]
		if !ok || (skip != nil && skip(p)) {
			if bad++; bad < 10 {
				t.Errorf("row at partition %d offset %d was not expected", r.partition, r.offset)
			}
			continue
		}
		if !bytes.Equal(r.key, p.Key) || !bytes.Equal(r.value, p.Value) || r.tsMs != p.Timestamp.UnixMilli() || !sameHeaders(r.headers, p.Headers) {
			if bad++; bad < 10 {
				t.Errorf("partition %d offset %d: got key %q value %q ts %d headers %v, want %q %q %d %v",
					r.partition, r.offset, r.key, r.value, r.tsMs, r.headers, p.Key, p.Value, p.Timestamp.UnixMilli(), p.Headers)
			}
		}
	}
	missing := 0
	for k, p := range want.recs {
		if skip != nil && skip(p) {
			continue
		}
		if seen[k] == 0 {
			if missing++; missing < 10 {
				t.Errorf("partition %d offset %d is missing from the table", k[0], k[1])
			}
		}
	}
	if bad > 0 || missing > 0 {
		t.Fatalf("%d rows, %d produced: %d bad rows, %d missing", len(rows), len(want.recs), bad, missing)
	}
}

func sameHeaders(a []kgo.RecordHeader, b []kgo.RecordHeader) bool {
	return slices.EqualFunc(a, b, func(x, y kgo.RecordHeader) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value)
	})
}

// faultProxy sits between the pipeline and the catalog and fails table
// commits on demand, before or after the catalog applied them.
type faultProxy struct {
	next http.Handler

	mu          sync.Mutex
	down        bool              // every request fails with 503
	failBefore  map[string]int    // table -> commits to reject unapplied
	failAfter   map[string]int    // table -> commits to apply, then report 503
	commitsSeen map[string]int    // table -> commit requests
	lastCommit  map[string][]byte // table -> body of the last commit request
	hold        map[string]*hold  // table -> commits wait for release
}

// hold parks commit requests until released.
type hold struct {
	held    chan struct{} // one send per parked request
	release chan struct{} // closed to let them through
}

// bypassHeader lets a test's own catalog client through the faults.
const bypassHeader = "X-Floe-Test-Bypass"

// isCommit reports whether r commits a table, and which.
func isCommit(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost || strings.HasSuffix(r.URL.Path, "/metrics") {
		return "", false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 4 || parts[len(parts)-2] != "tables" {
		return "", false
	}
	return parts[len(parts)-1], true
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(bypassHeader) != "" {
		p.next.ServeHTTP(w, r)
		return
	}
	tbl, commit := isCommit(r)
	if commit {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		if p.lastCommit == nil {
			p.lastCommit = map[string][]byte{}
		}
		p.lastCommit[tbl] = body
		p.mu.Unlock()
	}
	p.mu.Lock()
	if h := p.hold[tbl]; commit && h != nil {
		p.mu.Unlock()
		h.held <- struct{}{}
		<-h.release
		p.mu.Lock()
	}
	down := p.down
	before, after := false, false
	if commit {
		if p.commitsSeen == nil {
			p.commitsSeen = map[string]int{}
		}
		p.commitsSeen[tbl]++
		if p.failBefore[tbl] > 0 {
			p.failBefore[tbl]--
			before = true
		} else if p.failAfter[tbl] > 0 {
			p.failAfter[tbl]--
			after = true
		}
	}
	p.mu.Unlock()
	switch {
	case down || before:
		http.Error(w, `{"error":{"message":"injected outage","type":"ServiceUnavailableException","code":503}}`, http.StatusServiceUnavailable)
	case after:
		rec := httptest.NewRecorder()
		p.next.ServeHTTP(rec, r)
		_, _ = io.Copy(io.Discard, rec.Body)
		http.Error(w, `{"error":{"message":"injected gateway timeout","type":"GatewayTimeout","code":504}}`, http.StatusGatewayTimeout)
	default:
		p.next.ServeHTTP(w, r)
	}
}

func (p *faultProxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *faultProxy) fail(tbl string, before, after int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failBefore == nil {
		p.failBefore, p.failAfter = map[string]int{}, map[string]int{}
	}
	p.failBefore[tbl] += before
	p.failAfter[tbl] += after
}

// holdCommits parks the next commits of tbl; the returned channel receives
// once per parked request, and release lets them all through.
func (p *faultProxy) holdCommits(tbl string) (held <-chan struct{}, release func()) {
	h := &hold{held: make(chan struct{}, 16), release: make(chan struct{})}
	p.mu.Lock()
	if p.hold == nil {
		p.hold = map[string]*hold{}
	}
	p.hold[tbl] = h
	p.mu.Unlock()
	return h.held, func() {
		p.mu.Lock()
		delete(p.hold, tbl)
		p.mu.Unlock()
		close(h.release)
	}
}

func (p *faultProxy) clearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failBefore, p.failAfter = nil, nil
}

func (p *faultProxy) pendingFaults(tbl string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failBefore[tbl] + p.failAfter[tbl]
}

// waitStatus polls the service until cond holds for the table.
func (e *env) waitStatus(name string, timeout time.Duration, cond func(tabletopic.TableStatus) bool) tabletopic.TableStatus {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.svc.TableStatus(name)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("table %s: condition not met after %v; status %+v (err %v)", name, timeout, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
