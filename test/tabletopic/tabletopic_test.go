package tabletopic_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/tabletopic"
)

var tableOn = map[string]string{
	"table.topic.enable":             "true",
	"table.topic.commit.interval.ms": "1000",
}

func withConfigs(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// A topic created with table mode on becomes a table holding every record
// exactly once, byte for byte, whatever codec the producer used.
func TestTopicBecomesTable(t *testing.T) {
	e := newEnv(t)
	e.startService()
	e.createTopic("orders", 8, withConfigs(tableOn, "table.topic.convert.key.type", "raw"))
	want := newProduced()
	const n = 4000
	for i, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression(), kgo.SnappyCompression(), kgo.Lz4Compression()} {
		cl := e.client(kgo.DefaultProduceTopic("orders"), kgo.ProducerBatchCompression(codec))
		want.produce(t, cl, makeRecords(i*n/4, n/4))
		cl.Close()
	}
	rows := e.waitRows("default", "orders", n, time.Minute)
	checkExactlyOnce(t, rows, want, nil)

	st := e.waitStatus("orders", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	if st.State != tabletopic.StateRunning || st.RowsWritten != n || st.Table != "default.orders" || len(st.Partitions) != 8 {
		t.Errorf("status after conversion: %+v", st)
	}
	var committed int64
	for _, o := range st.CommittedOffsets {
		committed += o
	}
	if committed != n {
		t.Errorf("committed offsets %v sum to %d, want %d", st.CommittedOffsets, committed, n)
	}

	// Commits are conditional on the snapshot they were built on.
	e.proxy.mu.Lock()
	body := e.proxy.lastCommit["orders"]
	e.proxy.mu.Unlock()
	var commit struct {
		Requirements []struct {
			Type       string `json:"type"`
			Ref        string `json:"ref"`
			SnapshotID *int64 `json:"snapshot-id"`
		} `json:"requirements"`
	}
	if err := json.Unmarshal(body, &commit); err != nil {
		t.Fatalf("commit body %s: %v", body, err)
	}
	asserted := false
	for _, r := range commit.Requirements {
		asserted = asserted || (r.Type == "assert-ref-snapshot-id" && r.Ref == "main")
	}
	if !asserted {
		t.Errorf("commit without assert-ref-snapshot-id on main: %s", body)
	}

	// The admin API serves the same status.
	hs := httptest.NewServer(e.svc.Handler())
	defer hs.Close()
	var list struct {
		Tables []tabletopic.TableStatus `json:"tables"`
	}
	getJSON(t, hs.URL+"/v1/tables", http.StatusOK, &list)
	if len(list.Tables) != 1 || list.Tables[0].Topic != "orders" || list.Tables[0].RowsWritten != n {
		t.Errorf("GET /v1/tables = %+v", list)
	}
	var one tabletopic.TableStatus
	getJSON(t, hs.URL+"/v1/tables/default.orders", http.StatusOK, &one)
	if one.Topic != "orders" || one.CommittedOffsets[3] != st.CommittedOffsets[3] {
		t.Errorf("GET /v1/tables/default.orders = %+v", one)
	}
	getJSON(t, hs.URL+"/v1/tables/nope", http.StatusNotFound, nil)

	// floectl table status reads it.
	out := floectl(t, "table", "status", "--admin", hs.URL)
	if !strings.Contains(out, "default.orders") || !strings.Contains(out, "running") || !strings.Contains(out, fmt.Sprint(n)) {
		t.Errorf("floectl table status:\n%s", out)
	}
	t.Logf("floectl table status:\n%s", out)
	out = floectl(t, "table", "status", "--admin", strings.TrimPrefix(hs.URL, "http://"), "orders")
	t.Logf("floectl table status orders:\n%s", out)
	if !strings.Contains(out, "state:") || !strings.Contains(out, "committed offsets") || !strings.Contains(out, "default.orders_dlq") {
		t.Errorf("floectl table status orders:\n%s", out)
	}

	// Metrics carry the same counts.
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() != nil {
				found[mf.GetName()] += m.GetCounter().GetValue()
			}
			if m.GetGauge() != nil {
				found[mf.GetName()] += m.GetGauge().GetValue()
			}
		}
	}
	if found["floe_tabletopic_rows_written_total"] != n || found["floe_tabletopic_lag_records"] != 0 || found["floe_tabletopic_files_written_total"] < 8 {
		t.Errorf("metrics: %v", found)
	}
}

// floectl builds and runs the operator CLI.
func floectl(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "floectl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/floe-io/floe/cmd/floectl").CombinedOutput(); err != nil {
		t.Fatalf("build floectl: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("floectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func getJSON(t *testing.T, url string, code int, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, code)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
}

// Turning table mode on for a topic with data backfills from the log
// start; turning it off stops conversion and leaves the table.
func TestEnableLaterBackfillsAndDisableStops(t *testing.T) {
	e := newEnv(t)
	e.startService()
	e.createTopic("clicks", 8, map[string]string{"table.topic.commit.interval.ms": "1000", "table.topic.namespace": "web"})
	cl := e.client(kgo.DefaultProduceTopic("clicks"))
	want := newProduced()
	want.produce(t, cl, makeRecords(0, 1500))
	time.Sleep(500 * time.Millisecond)
	if rows := e.scan("web", "clicks"); rows != nil {
		t.Fatalf("table exists before table mode is on: %d rows", len(rows))
	}

	e.alterTopic("clicks", map[string]string{"table.topic.enable": "true", "table.topic.convert.key.type": "raw"})
	rows := e.waitRows("web", "clicks", 1500, time.Minute)
	checkExactlyOnce(t, rows, want, nil)

	want.produce(t, cl, makeRecords(1500, 500))
	rows = e.waitRows("web", "clicks", 2000, time.Minute)
	checkExactlyOnce(t, rows, want, nil)

	e.alterTopic("clicks", map[string]string{"table.topic.enable": "false"})
	e.waitStatus("clicks", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.State == tabletopic.StateStopped })
	want.produce(t, cl, makeRecords(2000, 300))
	time.Sleep(2500 * time.Millisecond)
	if rows := e.scan("web", "clicks"); len(rows) != 2000 {
		t.Fatalf("table has %d rows after table mode was turned off, want 2000", len(rows))
	}

	// Turned on again, it resumes from the offsets the table holds.
	e.alterTopic("clicks", map[string]string{"table.topic.enable": "true"})
	rows = e.waitRows("web", "clicks", 2300, time.Minute)
	time.Sleep(1500 * time.Millisecond)
	checkExactlyOnce(t, e.scan("web", "clicks"), want, nil)
}

// Every record lands exactly once although the service and the broker
// restart during conversion, commits fail before and after the catalog
// applied them, and the service stops between writing files and
// committing them.
func TestExactlyOnceAcrossRestartsAndFailedCommits(t *testing.T) {
	e := newEnv(t)
	e.createTopic("events", 8, withConfigs(tableOn, "table.topic.convert.key.type", "raw"))
	want := newProduced()
	next := 0
	produce := func(n int) {
		cl := e.client(kgo.DefaultProduceTopic("events"), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
		want.produce(t, cl, makeRecords(next, n))
		next += n
		cl.Close()
	}
	e.startService()

	// 1. A graceful restart mid-conversion.
	produce(800)
	time.Sleep(300 * time.Millisecond)
	e.stopService()
	e.startService()

	// 2. A commit applied by the catalog whose answer is lost, then one
	// rejected before it applied: both recovered from the summary.
	e.proxy.fail("events", 1, 0)
	e.proxy.fail("events", 0, 1)
	produce(800)
	deadline := time.Now().Add(30 * time.Second)
	for e.proxy.pendingFaults("events") > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if e.proxy.pendingFaults("events") > 0 {
		t.Fatal("the injected commit faults were never hit")
	}

	// 3. Stop between writing files and committing them: every commit
	// fails (the final one on Close too), so the files written are
	// orphans and the next start recovers from the committed offsets.
	e.proxy.fail("events", 1000, 0)
	produce(800)
	time.Sleep(2500 * time.Millisecond)
	e.stopService()
	e.proxy.clearFaults()

	// 4. The broker restarts too, while the service is down.
	e.stopBroker()
	e.startBroker()
	e.startService()
	produce(800)

	// 5. Crash-like stop while a commit's answer is lost.
	e.proxy.fail("events", 0, 1)
	time.Sleep(1200 * time.Millisecond)
	e.proxy.setDown(true)
	e.stopService()
	e.stopBroker()
	e.proxy.setDown(false)
	e.startBroker()
	e.startService()
	produce(800)

	rows := e.waitRows("default", "events", next, 2*time.Minute)
	// Give a duplicate, if any, time to show up.
	time.Sleep(1500 * time.Millisecond)
	rows = e.scan("default", "events")
	checkExactlyOnce(t, rows, want, nil)
	st, err := e.svc.TableStatus("events")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != tabletopic.StateRunning {
		t.Errorf("final status %+v", st)
	}
	// Uncommitted files were really written (and left for orphan cleanup).
	onDisk, inTable := e.dataFiles("default", "events")
	if onDisk <= inTable {
		t.Errorf("%d parquet files on disk, %d in the table: no uncommitted file was ever written", onDisk, inTable)
	}
}

// With string values, invalid UTF-8 is an invalid record: under
// invalid_data it lands in <table>_dlq (raw bytes, coordinates, error),
// exactly once even when the data commit after the dead-letter commit
// fails; everything else lands in the table.
func TestDeadLetterTable(t *testing.T) {
	e := newEnv(t)
	e.createTopic("logs", 8, withConfigs(tableOn, "table.topic.convert.value.type", "string", "table.topic.dlq.topic", "logs-dlq"))
	e.startService()
	cl := e.client(kgo.DefaultProduceTopic("logs"))
	isBad := func(r *kgo.Record) bool { return bytes.HasPrefix(r.Value, []byte{0xc3, 0x28}) }
	recs := func(from, n int) []*kgo.Record {
		out := make([]*kgo.Record, n)
		for i := range out {
			id := from + i
			out[i] = &kgo.Record{Key: []byte("k" + string(rune('a'+id%26))), Value: []byte("line " + strings.Repeat("é", id%7))}
			if id%50 == 7 {
				out[i].Value = append([]byte{0xc3, 0x28}, out[i].Value...) // invalid UTF-8
			}
		}
		return out
	}
	want := newProduced()
	want.produce(t, cl, recs(0, 1000))
	e.waitRows("default", "logs", 1000-20, time.Minute)

	// The next rounds' dead-letter commits land while their data commits
	// are rejected (three times) or applied with the answer lost (once):
	// recovery re-converts records already dead-lettered, and both tables
	// must stay exact.
	e.proxy.fail("logs", 3, 1)
	want.produce(t, cl, recs(1000, 1000))
	rows := e.waitRows("default", "logs", 2000-40, time.Minute)
	dlq := e.waitRows("default", "logs_dlq", 40, 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
	rows, dlq = e.scan("default", "logs"), e.scan("default", "logs_dlq")

	checkExactlyOnce(t, rows, want, isBad)
	checkExactlyOnce(t, dlq, want, func(r *kgo.Record) bool { return !isBad(r) })
	for _, r := range dlq {
		if !strings.Contains(r.errText, "UTF-8") {
			t.Errorf("dead-letter row at %d/%d has error %q", r.partition, r.offset, r.errText)
			break
		}
	}
	st := e.waitStatus("logs", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.LagRecords == 0 })
	if st.DLQRows < 40 {
		t.Errorf("status counts %d dead-letter rows, want at least 40: %+v", st.DLQRows, st)
	}
	checkDeadLetterTopic(t, e, "logs-dlq", want, isBad)
}

// checkDeadLetterTopic reads the dead-letter topic: every bad record is
// there (at least once: failed rounds produce again) with its bytes and
// the headers naming its origin and error, and nothing else is.
func checkDeadLetterTopic(t *testing.T, e *env, topic string, want *produced, isBad func(*kgo.Record) bool) {
	t.Helper()
	bad := map[string]*kgo.Record{}
	want.mu.Lock()
	defer want.mu.Unlock()
	for _, r := range want.recs {
		if isBad(r) {
			bad[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = r
		}
	}
	cl := e.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]int{}
	for len(seen) < len(bad) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			at := h["floe.dlq.partition"] + "/" + h["floe.dlq.offset"]
			orig, ok := bad[at]
			switch {
			case !ok:
				t.Errorf("dead-letter topic holds %s, which is not a bad record", at)
			case !bytes.Equal(r.Value, orig.Value) || !bytes.Equal(r.Key, orig.Key):
				t.Errorf("dead-letter topic record for %s differs from the original", at)
			case h["floe.dlq.topic"] != "logs" || !strings.Contains(h["floe.dlq.error"], "UTF-8"):
				t.Errorf("dead-letter topic record for %s has headers %v", at, h)
			}
			seen[at]++
		})
	}
	if len(seen) != len(bad) {
		t.Fatalf("dead-letter topic holds %d of %d bad records", len(seen), len(bad))
	}
	t.Logf("dead-letter topic: all %d bad records, with origin and error headers", len(bad))
}

// Under errors.tolerance=none a bad record stops the table with a clear
// status after committing what precedes it; changing the tolerance
// resumes it.
func TestToleranceNoneStopsThenResumes(t *testing.T) {
	e := newEnv(t)
	e.createTopic("strict", 1, withConfigs(tableOn, "table.topic.convert.value.type", "string", "table.topic.errors.tolerance", "none"))
	e.startService()
	cl := e.client(kgo.DefaultProduceTopic("strict"))
	want := newProduced()
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Value: []byte("ok " + string(rune('a'+i%26)))})
	}
	recs[60].Value = []byte{0xff, 0xfe}
	for _, r := range recs {
		want.produce(t, cl, []*kgo.Record{r})
	}
	// Stopped, it still reports its lag: the 40 records from the bad one on.
	st := e.waitStatus("strict", 30*time.Second, func(st tabletopic.TableStatus) bool {
		return st.State == tabletopic.StateError && st.LagRecords == 40
	})
	if !strings.Contains(st.Error, "offset 60") || !strings.Contains(st.Error, "tolerance=none") {
		t.Errorf("error status does not say what stopped it: %q", st.Error)
	}
	if st.CommittedOffsets[0] != 60 {
		t.Errorf("committed offsets %v, want partition 0 at 60", st.CommittedOffsets)
	}
	if rows := e.scan("default", "strict"); len(rows) != 60 {
		t.Errorf("table has %d rows, want the 60 before the bad record", len(rows))
	}

	// A retry hits the same record again.
	if err := e.svc.Retry("strict"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	st = e.waitStatus("strict", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.State == tabletopic.StateError })
	if st.CommittedOffsets[0] != 60 {
		t.Errorf("after retry: %+v", st)
	}

	e.alterTopic("strict", map[string]string{"table.topic.errors.tolerance": "invalid_data"})
	rows := e.waitRows("default", "strict", 99, 30*time.Second)
	isBad := func(r *kgo.Record) bool { return r.Offset == 60 }
	checkExactlyOnce(t, rows, want, isBad)
	dlq := e.waitRows("default", "strict_dlq", 1, 30*time.Second)
	checkExactlyOnce(t, dlq, want, func(r *kgo.Record) bool { return !isBad(r) })
	e.waitStatus("strict", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.State == tabletopic.StateRunning })
}

// A node whose partition was committed by another writer meanwhile (a
// zombie leader's view) does not commit over it: its commit is fenced,
// it recovers, and resumes from the other writer's offsets.
func TestCommitFencedByAnotherWriter(t *testing.T) {
	e := newEnv(t)
	e.createTopic("fenced", 1, withConfigs(tableOn, "table.topic.convert.key.type", "raw"))
	e.startService()
	cl := e.client(kgo.DefaultProduceTopic("fenced"))
	want := newProduced()
	want.produce(t, cl, makeRecords(0, 500))
	e.waitRows("default", "fenced", 500, time.Minute)
	e.waitStatus("fenced", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.CommittedOffsets[0] == 500 })

	// This node's next commit is parked after it checked the offsets;
	// meanwhile another writer claims offsets up to 600 (committing no
	// files: say it wrote them somewhere else).
	held, release := e.proxy.holdCommits("fenced")
	want.produce(t, cl, makeRecords(500, 200))
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no commit arrived")
	}
	var topicID [16]byte
	for _, ti := range e.broker.Topics() {
		if ti.Name == "fenced" {
			topicID = ti.ID
		}
	}
	cat := e.restCatalog()
	defer cat.Close()
	ctx := context.Background()
	tbl, err := cat.LoadTable(ctx, table.Identifier{"default", "fenced"})
	if err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction()
	if err := tx.AddFiles(ctx, nil, iceberg.Properties{
		"floe.offsets":  `{"0":600}`,
		"floe.topic-id": hex.EncodeToString(topicID[:]),
	}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	release()

	rows := e.waitRows("default", "fenced", 600, time.Minute)
	time.Sleep(1500 * time.Millisecond)
	rows = e.scan("default", "fenced")
	claimed := func(r *kgo.Record) bool { return r.Offset >= 500 && r.Offset < 600 }
	checkExactlyOnce(t, rows, want, claimed)
	st := e.waitStatus("fenced", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.CommittedOffsets[0] == 700 })
	if st.CommitFailures == 0 {
		t.Errorf("the fenced commit was not counted as failed: %+v", st)
	}
}

// Records deleted (DeleteRecords, retention) before they were converted are
// skipped and counted; nothing before the log start is expected.
func TestRecordsDeletedBeforeConversion(t *testing.T) {
	e := newEnv(t)
	e.createTopic("short", 1, withConfigs(tableOn, "table.topic.convert.key.type", "raw"))
	e.startService()
	cl := e.client(kgo.DefaultProduceTopic("short"))
	want := newProduced()
	want.produce(t, cl, makeRecords(0, 100))
	e.waitRows("default", "short", 100, time.Minute)

	e.alterTopic("short", map[string]string{"table.topic.enable": "false"})
	e.waitStatus("short", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.State == tabletopic.StateStopped })
	want.produce(t, cl, makeRecords(100, 100))
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "short", Partition: 0, At: 150})
	resp, err := kadm.NewClient(cl).DeleteRecords(context.Background(), offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}

	e.alterTopic("short", map[string]string{"table.topic.enable": "true"})
	e.waitRows("default", "short", 150, time.Minute)
	time.Sleep(1500 * time.Millisecond)
	lost := func(r *kgo.Record) bool { return r.Offset >= 100 && r.Offset < 150 }
	checkExactlyOnce(t, e.scan("default", "short"), want, lost)
	st := e.waitStatus("short", 10*time.Second, func(st tabletopic.TableStatus) bool { return st.CommittedOffsets[0] == 200 })
	if st.SkippedRecords != 50 {
		t.Errorf("skipped records %d, want 50: %+v", st.SkippedRecords, st)
	}
}
