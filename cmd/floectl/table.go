package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// tableStatus mirrors tabletopic.TableStatus as the admin API serves it
// (floectl stays free of the Iceberg dependencies).
type tableStatus struct {
	Topic            string           `json:"topic"`
	Table            string           `json:"table"`
	State            string           `json:"state"`
	Error            string           `json:"error"`
	Partitions       []int32          `json:"partitions"`
	LagRecords       int64            `json:"lag_records"`
	LagSeconds       float64          `json:"lag_seconds"`
	LastCommit       time.Time        `json:"last_commit"`
	CommittedOffsets map[string]int64 `json:"committed_offsets"`
	Commits          int64            `json:"commits"`
	CommitFailures   int64            `json:"commit_failures"`
	RowsWritten      int64            `json:"rows_written"`
	FilesWritten     int64            `json:"files_written"`
	BytesWritten     int64            `json:"bytes_written"`
	DLQRows          int64            `json:"dlq_rows"`
	SkippedRecords   int64            `json:"skipped_records"`
}

func tableCmd(ctx context.Context, args []string) error {
	if len(args) >= 1 && (args[0] == "compact" || args[0] == "expire") {
		return tableMaintenanceCmd(ctx, args)
	}
	if len(args) < 1 || (args[0] != "status" && args[0] != "retry") {
		return errors.New("table: want status [name], retry name, compact name or expire name")
	}
	var (
		admin   string
		asJSON  bool
		timeout time.Duration
	)
	fs := flag.NewFlagSet("floectl table "+args[0], flag.ContinueOnError)
	fs.StringVar(&admin, "admin", envOr("FLOE_ADMIN", "127.0.0.1:9644"), "floe admin address (host:port or URL)")
	fs.BoolVar(&asJSON, "json", false, "print the admin API's JSON")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "request timeout")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	base := admin
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/") + "/v1/tables"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if args[0] == "retry" {
		if fs.NArg() != 1 {
			return errors.New("table retry: want one table name")
		}
		if _, err := adminCall(ctx, http.MethodPost, base+"/"+url.PathEscape(fs.Arg(0))+"/retry"); err != nil {
			return err
		}
		fmt.Printf("retrying %s\n", fs.Arg(0))
		return nil
	}

	var tables []tableStatus
	switch fs.NArg() {
	case 0:
		body, err := adminCall(ctx, http.MethodGet, base)
		if err != nil {
			return err
		}
		if asJSON {
			_, err := os.Stdout.Write(body)
			return err
		}
		var list struct {
			Tables []tableStatus `json:"tables"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return fmt.Errorf("decode %s: %w", base, err)
		}
		tables = list.Tables
	case 1:
		body, err := adminCall(ctx, http.MethodGet, base+"/"+url.PathEscape(fs.Arg(0)))
		if err != nil {
			return err
		}
		if asJSON {
			_, err := os.Stdout.Write(body)
			return err
		}
		var st tableStatus
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		return printTableDetail(os.Stdout, st)
	default:
		return errors.New("table status: want at most one table name")
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TABLE\tTOPIC\tSTATE\tLAG(RECORDS)\tLAG(S)\tLAST COMMIT\tROWS\tFILES\tDLQ\tERROR")
	for _, t := range tables {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%.1f\t%s\t%d\t%d\t%d\t%s\n", t.Table, t.Topic, t.State, t.LagRecords,
			t.LagSeconds, ago(t.LastCommit), t.RowsWritten, t.FilesWritten, t.DLQRows, oneLine(t.Error))
	}
	return w.Flush()
}

func printTableDetail(out io.Writer, t tableStatus) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "table:\t%s\n", t.Table)
	fmt.Fprintf(w, "dead-letter table:\t%s_dlq\n", t.Table)
	fmt.Fprintf(w, "topic:\t%s\n", t.Topic)
	fmt.Fprintf(w, "state:\t%s\n", t.State)
	if t.Error != "" {
		fmt.Fprintf(w, "error:\t%s\n", t.Error)
	}
	fmt.Fprintf(w, "lag:\t%d records, %.1f s\n", t.LagRecords, t.LagSeconds)
	fmt.Fprintf(w, "last commit:\t%s\n", ago(t.LastCommit))
	fmt.Fprintf(w, "commits:\t%d (%d failed)\n", t.Commits, t.CommitFailures)
	fmt.Fprintf(w, "written:\t%d rows, %d files, %d bytes\n", t.RowsWritten, t.FilesWritten, t.BytesWritten)
	fmt.Fprintf(w, "dead-lettered:\t%d rows\n", t.DLQRows)
	if t.SkippedRecords > 0 {
		fmt.Fprintf(w, "lost to retention:\t%d records\n", t.SkippedRecords)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "committed offsets (next offset to convert; -1 none yet):")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  PARTITION\tOFFSET")
	parts := make([]string, 0, len(t.CommittedOffsets))
	for p := range t.CommittedOffsets {
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	for _, p := range parts {
		fmt.Fprintf(w, "  %s\t%d\n", p, t.CommittedOffsets[p])
	}
	return w.Flush()
}

func adminCall(ctx context.Context, method, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %s", method, u, e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// The maintenance answers of the admin API (tabletopic/maintain), mirrored
// like tableStatus.
type (
	maintenanceLine struct {
		Progress *maintenanceProgress `json:"progress"`
		Result   json.RawMessage      `json:"result"`
		Error    string               `json:"error"`
	}
	maintenanceProgress struct {
		Table      string `json:"table"`
		Phase      string `json:"phase"`
		GroupsDone int    `json:"groups_done"`
		Groups     int    `json:"groups"`
		FilesDone  int    `json:"files_done"`
		Files      int    `json:"files"`
		BytesDone  int64  `json:"bytes_done"`
		Bytes      int64  `json:"bytes"`
	}
	compactResult struct {
		Table              string        `json:"table"`
		DataFilesBefore    int           `json:"data_files_before"`
		DataFilesAfter     int           `json:"data_files_after"`
		BytesBefore        int64         `json:"bytes_before"`
		BytesAfter         int64         `json:"bytes_after"`
		FilesRewritten     int           `json:"files_rewritten"`
		FilesWritten       int           `json:"files_written"`
		BytesRewritten     int64         `json:"bytes_rewritten"`
		BytesWritten       int64         `json:"bytes_written"`
		DeleteFilesRemoved int           `json:"delete_files_removed"`
		CommitAttempts     int           `json:"commit_attempts"`
		Skipped            string        `json:"skipped"`
		Duration           time.Duration `json:"duration_ns"`
	}
	expireResult struct {
		Table              string        `json:"table"`
		SnapshotsBefore    int           `json:"snapshots_before"`
		SnapshotsAfter     int           `json:"snapshots_after"`
		Expired            int           `json:"expired"`
		RetainedForOffsets int           `json:"retained_for_offsets"`
		Skipped            string        `json:"skipped"`
		Duration           time.Duration `json:"duration_ns"`
	}
	orphanResult struct {
		Table    string        `json:"table"`
		Orphans  int           `json:"orphans"`
		Bytes    int64         `json:"bytes"`
		Deleted  int           `json:"deleted"`
		Files    []string      `json:"files"`
		Skipped  string        `json:"skipped"`
		Duration time.Duration `json:"duration_ns"`
	}
)

// tableMaintenanceCmd runs floectl table compact|expire NAME [flags]: the
// admin API streams progress, printed to stderr, then the result.
func tableMaintenanceCmd(ctx context.Context, args []string) error {
	op := args[0]
	var (
		admin     string
		asJSON    bool
		timeout   time.Duration
		target    int64
		minFiles  int
		olderThan string
		retain    int
		orphans   bool
		orphanAge string
		dryRun    bool
	)
	fs := flag.NewFlagSet("floectl table "+op, flag.ContinueOnError)
	fs.StringVar(&admin, "admin", envOr("FLOE_ADMIN", "127.0.0.1:9644"), "floe admin address (host:port or URL)")
	fs.BoolVar(&asJSON, "json", false, "print the admin API's JSON lines")
	fs.DurationVar(&timeout, "timeout", 2*time.Hour, "give up after this long")
	if op == "compact" {
		fs.Int64Var(&target, "target-file-size", 0, "output file size in bytes (default: the table's table.topic.target.file.size.bytes)")
		fs.IntVar(&minFiles, "min-input-files", 2, "rewrite a partition only if it has this many small files")
	} else {
		fs.StringVar(&olderThan, "older-than", "", "expire snapshots older than this, e.g. 24h (default: table.topic.expire.snapshot.older.than.hours)")
		fs.IntVar(&retain, "retain-last", 0, "keep at least this many snapshots (default: table.topic.expire.snapshot.retain.last)")
		fs.BoolVar(&orphans, "orphans", true, "also delete orphan files (unreferenced, older than --orphan-older-than)")
		fs.StringVar(&orphanAge, "orphan-older-than", "", "grace period of orphan cleanup, at least 1h (default: table.topic.orphan.cleanup.older.than.hours)")
		fs.BoolVar(&dryRun, "dry-run", false, "list orphan files without deleting anything (expires no snapshot)")
	}
	// The table name may come before the flags, as in the usage line.
	rest, name := args[1:], ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if name == "" || fs.NArg() != 0 {
		return fmt.Errorf("table %s: want one table name", op)
	}
	q := url.Values{}
	if op == "compact" {
		if target > 0 {
			q.Set("target_file_size_bytes", fmt.Sprint(target))
		}
		q.Set("min_input_files", fmt.Sprint(minFiles))
	} else {
		for k, v := range map[string]string{"older_than": olderThan, "orphan_older_than": orphanAge} {
			if v != "" {
				if _, err := time.ParseDuration(v); err != nil {
					return fmt.Errorf("table expire: %s: %w", k, err)
				}
				q.Set(k, v)
			}
		}
		if retain > 0 {
			q.Set("retain_last", fmt.Sprint(retain))
		}
		q.Set("orphans", fmt.Sprint(orphans))
		q.Set("dry_run", fmt.Sprint(dryRun))
	}
	base := admin
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := strings.TrimRight(base, "/") + "/v1/tables/" + url.PathEscape(name) + "/" + op + "?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("table %s %s: %s", op, name, e.Error)
		}
		return fmt.Errorf("table %s %s: %s: %s", op, name, resp.Status, strings.TrimSpace(string(body)))
	}
	last, err := readMaintenanceLines(resp.Body, os.Stdout, os.Stderr, asJSON)
	if err != nil {
		return fmt.Errorf("table %s %s: %w", op, name, err)
	}
	if !asJSON && last.Result != nil {
		if err := printMaintenanceResult(os.Stdout, op, last.Result); err != nil {
			return err
		}
	}
	if last.Error != "" {
		return fmt.Errorf("table %s %s: %s", op, name, last.Error)
	}
	return nil
}

// readMaintenanceLines prints progress lines to progress as they arrive
// (or every line to out with asJSON) and returns the last line.
func readMaintenanceLines(r io.Reader, out, progress io.Writer, asJSON bool) (maintenanceLine, error) {
	var last maintenanceLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	seen := false
	for sc.Scan() {
		if asJSON {
			fmt.Fprintln(out, sc.Text())
		}
		var l maintenanceLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return last, fmt.Errorf("bad answer line %q: %w", oneLine(sc.Text()), err)
		}
		if p := l.Progress; p != nil {
			if !asJSON {
				fmt.Fprintf(progress, "%s: %s, %d/%d groups, %d/%d files, %s/%s\n", p.Table, p.Phase,
					p.GroupsDone, p.Groups, p.FilesDone, p.Files, humanBytes(p.BytesDone), humanBytes(p.Bytes))
			}
			continue
		}
		last, seen = l, true
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	if !seen {
		return last, errors.New("the answer ended before a result (the server stopped?)")
	}
	return last, nil
}

func printMaintenanceResult(out io.Writer, op string, raw json.RawMessage) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if op == "compact" {
		var res struct {
			Tables []compactResult `json:"tables"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return fmt.Errorf("decode result: %w", err)
		}
		fmt.Fprintln(w, "TABLE\tFILES BEFORE\tFILES AFTER\tBYTES BEFORE\tBYTES AFTER\tREWRITTEN\tWRITTEN\tDELETE FILES REMOVED\tDURATION\tNOTE")
		for _, t := range res.Tables {
			note := t.Skipped
			if t.CommitAttempts > 1 {
				note = fmt.Sprintf("re-staged over concurrent appends (%d attempts)", t.CommitAttempts)
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%d files, %s\t%d files, %s\t%d\t%s\t%s\n", t.Table,
				t.DataFilesBefore, t.DataFilesAfter, humanBytes(t.BytesBefore), humanBytes(t.BytesAfter),
				t.FilesRewritten, humanBytes(t.BytesRewritten), t.FilesWritten, humanBytes(t.BytesWritten),
				t.DeleteFilesRemoved, t.Duration.Round(time.Millisecond), note)
		}
		return w.Flush()
	}
	var res struct {
		Snapshots []expireResult `json:"snapshots"`
		Orphans   []orphanResult `json:"orphans"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("decode result: %w", err)
	}
	if len(res.Snapshots) > 0 {
		fmt.Fprintln(w, "TABLE\tSNAPSHOTS BEFORE\tSNAPSHOTS AFTER\tEXPIRED\tDURATION\tNOTE")
		for _, t := range res.Snapshots {
			note := t.Skipped
			if t.RetainedForOffsets > 0 {
				note = fmt.Sprintf("kept %d more to keep the committed offsets", t.RetainedForOffsets)
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\n", t.Table, t.SnapshotsBefore, t.SnapshotsAfter, t.Expired,
				t.Duration.Round(time.Millisecond), note)
		}
		fmt.Fprintln(w)
	}
	if len(res.Orphans) > 0 {
		fmt.Fprintln(w, "TABLE\tORPHAN FILES\tBYTES\tDELETED\tDURATION\tNOTE")
		for _, t := range res.Orphans {
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\n", t.Table, t.Orphans, humanBytes(t.Bytes), t.Deleted,
				t.Duration.Round(time.Millisecond), t.Skipped)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, t := range res.Orphans {
		for _, f := range t.Files {
			fmt.Fprintf(out, "  %s: %s\n", t.Table, f)
		}
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
