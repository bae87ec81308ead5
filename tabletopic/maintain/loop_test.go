package maintain

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		configs map[string]string
		check   func(t *testing.T, p Policy)
		wantErr string
	}{
		{name: "defaults", configs: nil, check: func(t *testing.T, p Policy) {
			if p != DefaultPolicy() {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "all set", configs: map[string]string{
			ConfigCompact: "false", ConfigTargetFileBytes: "1048576", ConfigMinInputFiles: "3",
			ConfigExpire: "false", ConfigExpireHours: "0", ConfigRetainLast: "4",
			ConfigOrphans: "false", ConfigOrphanHours: "72",
		}, check: func(t *testing.T, p Policy) {
			want := Policy{TargetFileBytes: 1 << 20, MinInputFiles: 3, RetainLast: 4, OrphanOlderThan: 72 * time.Hour, CheckInterval: 5 * time.Minute}
			if p != want {
				t.Errorf("got %+v, want %+v", p, want)
			}
		}},
		{name: "automq prefix", configs: map[string]string{"automq." + ConfigRetainLast: "9"}, check: func(t *testing.T, p Policy) {
			if p.RetainLast != 9 {
				t.Errorf("retain last %d", p.RetainLast)
			}
		}},
		{name: "bad values", configs: map[string]string{ConfigCompact: "yes", ConfigMinInputFiles: "1", ConfigOrphanHours: "0"},
			wantErr: ConfigOrphanHours},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(tt.configs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ConfigCompact) || !strings.Contains(err.Error(), ConfigMinInputFiles) {
					t.Fatalf("err %v, want every bad config named", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("true", "134217728", "8", "1", "24")
	f.Add("x", "-1", "99999999999999999999", "", "0")
	f.Fuzz(func(t *testing.T, compact, target, minFiles, retain, orphanHours string) {
		p, err := ParsePolicy(map[string]string{ConfigCompact: compact, ConfigTargetFileBytes: target,
			ConfigMinInputFiles: minFiles, ConfigRetainLast: retain, ConfigOrphanHours: orphanHours})
		if err != nil {
			return
		}
		if p.TargetFileBytes < 1 || p.MinInputFiles < 2 || p.RetainLast < 1 || p.OrphanOlderThan < time.Hour {
			t.Fatalf("accepted an out-of-range policy %+v", p)
		}
	})
}

func TestRunCompactsInTheBackground(t *testing.T) {
	e := newEnv(t)
	e.createTable("orders", true)
	e.createTable("orders_dlq", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 3; i++ {
		p.commit([]int32{0, 1}, 10)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	pol := DefaultPolicy()
	pol.MinInputFiles = 4
	pol.CheckInterval = 20 * time.Millisecond
	pol.ExpireOlderThan, pol.RetainLast = 0, 2
	go func() {
		defer close(done)
		e.m.Run(ctx, []Target{e.target("orders"), e.target("orders_dlq")}, pol)
	}()
	defer func() { cancel(); <-done }()
	// Three files a partition: under the threshold, nothing happens.
	time.Sleep(10 * pol.CheckInterval)
	if n := len(liveDataFiles(t, e.load("orders"))); n != 6 {
		t.Fatalf("%d live files, want the 6 written (under the threshold)", n)
	}
	// A fourth commit crosses it; the pipeline keeps committing meanwhile.
	p.commit([]int32{0, 1}, 10)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.commit([]int32{2}, 1)
		tbl := e.load("orders")
		files := liveDataFiles(t, tbl)
		perPart := map[any]int{}
		for _, f := range files {
			perPart[f.Partition()[1000]]++
		}
		if perPart[int32(0)] == 1 && perPart[int32(1)] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background compaction: %d files per partition %v", len(files), perPart)
		}
		time.Sleep(pol.CheckInterval)
	}
	cancel()
	<-done
	tbl := e.load("orders")
	sameRows(t, "after background maintenance", scanRows(t, tbl), p.expectedRows())
	if n := len(tbl.Metadata().Snapshots()); n > 3 {
		// Expiry ran too (retain 2, plus at most one commit since).
		t.Errorf("%d snapshots left, expiry did not run", n)
	}
}

func TestHandler(t *testing.T) {
	e := newEnv(t)
	e.createTable("orders", false)
	p := newPipeline(e, "orders")
	for i := 0; i < 5; i++ {
		p.commit([]int32{0}, 10)
	}
	resolve := func(_ context.Context, name string) ([]Target, Policy, error) {
		if name != "orders" {
			return nil, Policy{}, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		// The dead-letter table does not exist yet: skipped, not an error.
		return []Target{e.target("orders"), {Loader: e.cat, Ident: table.Identifier{"default", "orders_dlq"}}}, DefaultPolicy(), nil
	}
	srv := httptest.NewServer(e.m.Handler(resolve))
	defer srv.Close()
	post := func(path string) (*http.Response, []Line) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []Line
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var l Line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, l)
		}
		return resp, lines
	}

	resp, lines := post("/v1/tables/orders/compact")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) < 2 {
		t.Fatalf("compact: %s %s, %d lines", resp.Status, resp.Header.Get("Content-Type"), len(lines))
	}
	if lines[0].Progress == nil || lines[0].Progress.Phase != "planned" || lines[0].Progress.Files != 5 {
		t.Fatalf("first line %+v", lines[0])
	}
	last := lines[len(lines)-1]
	raw, _ := json.Marshal(last.Result)
	var cr CompactResponse
	if err := json.Unmarshal(raw, &cr); err != nil || last.Error != "" || len(cr.Tables) != 2 {
		t.Fatalf("last line %s (%v)", raw, last.Error)
	}
	if cr.Tables[0].FilesRewritten != 5 || cr.Tables[0].DataFilesAfter != 1 || cr.Tables[1].Skipped != "table does not exist" {
		t.Fatalf("compact result %s", raw)
	}

	resp, lines = post("/v1/tables/orders/expire?older_than=0s&retain_last=1&orphan_older_than=48h")
	if resp.StatusCode != http.StatusOK || len(lines) != 1 || lines[0].Error != "" {
		t.Fatalf("expire: %s %+v", resp.Status, lines)
	}
	raw, _ = json.Marshal(lines[0].Result)
	var er ExpireResponse
	if err := json.Unmarshal(raw, &er); err != nil || len(er.Snapshots) != 2 || er.Snapshots[0].Expired != 5 || len(er.Orphans) != 2 {
		t.Fatalf("expire result %s", raw)
	}

	// A grace period under MinOrphanAge fails after the expiry, in-band.
	_, lines = post("/v1/tables/orders/expire?orphan_older_than=1m")
	if len(lines) != 1 || !strings.Contains(lines[0].Error, "older-than") {
		t.Fatalf("short grace: %+v", lines)
	}
	for path, code := range map[string]int{
		"/v1/tables/nope/compact":                             http.StatusNotFound,
		"/v1/tables/orders/compact?min_input_files=1":         http.StatusBadRequest,
		"/v1/tables/orders/expire?older_than=forever":         http.StatusBadRequest,
		"/v1/tables/orders/expire?retain_last=0":              http.StatusBadRequest,
		"/v1/tables/orders/compact?target_file_size_bytes=12": http.StatusBadRequest,
	} {
		if resp, _ := http.Post(srv.URL+path, "", nil); resp.StatusCode != code {
			t.Errorf("POST %s: %s, want %d", path, resp.Status, code)
		}
	}
}
