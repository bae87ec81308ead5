package tabletopic_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/tabletopic/maintain"
)

// Table maintenance on a live table topic: the coordinator compacts small
// files in the background while records keep arriving, the admin API
// compacts and expires on demand, and after a restart the pipeline resumes
// from the offsets the maintenance snapshots carried: every record exactly
// once throughout.
func TestMaintenanceOnLiveTable(t *testing.T) {
	e := newEnv(t)
	e.startService()
	e.createTopic("events", 4, withConfigs(tableOn,
		"table.topic.commit.interval.ms", "200",
		"table.topic.compaction.min.input.files", "6"))
	want := newProduced()
	cl := e.client(kgo.DefaultProduceTopic("events"))
	const wave = 200
	var compacted bool
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; !compacted; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no background compaction after %d waves; status %s", i, e.statusJSON())
		}
		want.produce(t, cl, makeRecords(i*wave, wave))
		e.waitRows("default", "events", (i+1)*wave, time.Minute)
		compacted = e.hasCompaction("events")
	}
	_, inTable := e.dataFiles("default", "events")
	st, err := e.svc.TableStatus("events")
	if err != nil {
		t.Fatal(err)
	}
	if int64(inTable) >= st.FilesWritten {
		t.Fatalf("%d live data files after background compaction, %d written: nothing was compacted", inTable, st.FilesWritten)
	}
	checkExactlyOnce(t, e.scan("default", "events"), want, nil)

	// On demand, through the admin API.
	admin := httptest.NewServer(e.svc.Handler())
	defer admin.Close()
	want.produce(t, cl, makeRecords(100000, wave))
	e.waitRows("default", "events", want.len(), time.Minute)
	lines := postLines(t, admin.URL+"/v1/tables/events/compact")
	var cr maintain.CompactResponse
	resultOf(t, lines, &cr)
	if len(cr.Tables) != 2 || cr.Tables[0].Table != "default.events" || cr.Tables[1].Skipped != "table does not exist" {
		t.Fatalf("compact result %+v", cr)
	}
	lines = postLines(t, admin.URL+"/v1/tables/default.events/expire?older_than=0s&retain_last=1")
	var er maintain.ExpireResponse
	resultOf(t, lines, &er)
	if len(er.Snapshots) != 2 || er.Snapshots[0].Expired == 0 || len(er.Orphans) != 2 {
		t.Fatalf("expire result %+v", er)
	}
	checkExactlyOnce(t, e.scan("default", "events"), want, nil)

	// A restart recovers from what the maintained table holds.
	e.stopService()
	e.startService()
	want.produce(t, cl, makeRecords(200000, wave))
	cl.Close()
	rows := e.waitRows("default", "events", want.len(), time.Minute)
	checkExactlyOnce(t, rows, want, nil)
}

// hasCompaction reports whether main's history holds a compaction.
func (e *env) hasCompaction(name string) bool {
	e.t.Helper()
	cat := e.restCatalog()
	defer cat.Close()
	tbl, err := cat.LoadTable(context.Background(), table.Identifier{"default", name})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties["floe.maintenance"] == "compact" {
			if s.Summary.Properties["floe.offsets"] == "" {
				e.t.Fatalf("compaction snapshot %d without floe.offsets", s.SnapshotID)
			}
			return true
		}
	}
	return false
}

func postLines(t *testing.T, url string) []maintain.Line {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
	var lines []maintain.Line
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var l maintain.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func resultOf(t *testing.T, lines []maintain.Line, dst any) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no answer lines")
	}
	last := lines[len(lines)-1]
	if last.Error != "" {
		t.Fatalf("maintenance failed: %s", last.Error)
	}
	raw, _ := json.Marshal(last.Result)
	if err := json.Unmarshal(raw, dst); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
}
