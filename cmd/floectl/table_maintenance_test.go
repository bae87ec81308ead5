package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadMaintenanceLines(t *testing.T) {
	answer := `{"progress":{"table":"default.orders","phase":"planned","groups":2,"files":40,"bytes":4194304}}
{"progress":{"table":"default.orders","phase":"rewriting","groups_done":1,"groups":2,"files_done":20,"files":40,"bytes_done":2097152,"bytes":4194304}}
{"result":{"tables":[{"table":"default.orders","data_files_before":40,"data_files_after":2,"bytes_before":4194304,"bytes_after":1048576,"files_rewritten":40,"files_written":2,"bytes_rewritten":4194304,"bytes_written":1048576,"commit_attempts":1,"duration_ns":1500000000},{"table":"default.orders_dlq","skipped":"table does not exist"}]}}
`
	var out, progress bytes.Buffer
	last, err := readMaintenanceLines(strings.NewReader(answer), &out, &progress, false)
	if err != nil || last.Error != "" {
		t.Fatalf("read: %v %+v", err, last)
	}
	if got := progress.String(); !strings.Contains(got, "default.orders: rewriting, 1/2 groups, 20/40 files, 2.0 MiB/4.0 MiB") {
		t.Fatalf("progress:\n%s", got)
	}
	if err := printMaintenanceResult(&out, "compact", last.Result); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"40 files, 4.0 MiB", "2 files, 1.0 MiB", "1.5s", "table does not exist"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	expire := `{"result":{"snapshots":[{"table":"default.orders","snapshots_before":9,"snapshots_after":2,"expired":7,"retained_for_offsets":1}],"orphans":[{"table":"default.orders","orphans":1,"bytes":30,"deleted":1,"files":["/w/orders/data/x.parquet"]}]},"error":"orphan cleanup of default.orders_dlq: boom"}
`
	out.Reset()
	last, err = readMaintenanceLines(strings.NewReader(expire), &out, &progress, false)
	if err != nil || last.Error == "" {
		t.Fatalf("read: %v %+v", err, last)
	}
	if err := printMaintenanceResult(&out, "expire", last.Result); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kept 1 more to keep the committed offsets", "/w/orders/data/x.parquet", "30 B"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	for _, bad := range []string{"", "not json\n", `{"progress":{"table":"x"}}` + "\n"} {
		if _, err := readMaintenanceLines(strings.NewReader(bad), &out, &progress, false); err == nil {
			t.Errorf("answer %q accepted", bad)
		}
	}
}

func FuzzReadMaintenanceLines(f *testing.F) {
	f.Add(`{"result":{"tables":[]}}` + "\n")
	f.Add(`{"progress":{"table":"t","phase":"planned"}}` + "\n" + `{"error":"x"}`)
	f.Fuzz(func(t *testing.T, answer string) {
		var out, progress bytes.Buffer
		last, err := readMaintenanceLines(strings.NewReader(answer), &out, &progress, false)
		if err != nil || last.Result == nil {
			return
		}
		for _, op := range []string{"compact", "expire"} {
			_ = printMaintenanceResult(&out, op, last.Result) // must not panic
		}
	})
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 40: "5.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
