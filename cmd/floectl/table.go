package main

import (
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
	if len(args) < 1 || (args[0] != "status" && args[0] != "retry") {
		return errors.New("table: want status [name] or retry name")
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
