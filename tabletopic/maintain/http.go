package maintain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Resolver maps a table name of the admin API to what it stands for: the
// table and its dead-letter table, and the table's policy. An unknown name
// is an error wrapping ErrNotFound.
type Resolver func(ctx context.Context, name string) ([]Target, Policy, error)

// CompactResponse is the result of POST .../compact.
type CompactResponse struct {
	Tables []CompactResult `json:"tables"`
}

// ExpireResponse is the result of POST .../expire.
type ExpireResponse struct {
	Snapshots []ExpireResult `json:"snapshots"`
	Orphans   []OrphanResult `json:"orphans,omitempty"`
}

// Line is one line of a maintenance response: progress while the run
// goes, then a last line with the result, the error, or both (the result
// of the steps done before the one that failed).
type Line struct {
	Progress *Progress `json:"progress,omitempty"`
	Result   any       `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Handler serves on-demand maintenance for the admin API:
//
//	POST /v1/tables/{name}/compact  [?target_file_size_bytes=N&min_input_files=N]
//	POST /v1/tables/{name}/expire   [?older_than=1h&retain_last=N&orphans=true&orphan_older_than=24h&dry_run=true]
//
// Defaults come from the table's policy (min_input_files: 2). The answer is
// application/x-ndjson, one Line per line, flushed as the run goes, so a
// client shows progress of a long compaction. Mount it on both patterns.
func (m *Maintainer) Handler(resolve Resolver) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/tables/{name}/compact", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var opts CompactOptions
		var err error
		if opts.TargetFileBytes, err = intParam(q.Get("target_file_size_bytes"), 1<<20); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("target_file_size_bytes: %w", err))
			return
		}
		minFiles, err := intParam(q.Get("min_input_files"), 2)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("min_input_files: %w", err))
			return
		}
		opts.MinInputFiles = int(min(minFiles, 1<<20))
		targets, policy, ok := resolveOrFail(w, r, resolve)
		if !ok {
			return
		}
		if opts.TargetFileBytes == 0 {
			opts.TargetFileBytes = policy.TargetFileBytes
		}
		out := newLineWriter(w)
		var resp CompactResponse
		for _, tg := range targets {
			res, err := m.Compact(r.Context(), tg, opts, func(p Progress) { out.write(Line{Progress: &p}) })
			if err != nil {
				out.write(Line{Result: resp, Error: err.Error()})
				return
			}
			resp.Tables = append(resp.Tables, res)
		}
		out.write(Line{Result: resp})
	})
	mux.HandleFunc("POST /v1/tables/{name}/expire", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		olderThan, err1 := durationParam(q.Get("older_than"))
		retain, err2 := intParam(q.Get("retain_last"), 1)
		orphanAge, err3 := durationParam(q.Get("orphan_older_than"))
		orphans, err4 := boolParam(q.Get("orphans"), true)
		dryRun, err5 := boolParam(q.Get("dry_run"), false)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
		targets, policy, ok := resolveOrFail(w, r, resolve)
		if !ok {
			return
		}
		if q.Get("older_than") == "" {
			olderThan = policy.ExpireOlderThan
		}
		if retain == 0 {
			retain = int64(policy.RetainLast)
		}
		if orphanAge == 0 {
			orphanAge = policy.OrphanOlderThan
		}
		out := newLineWriter(w)
		var resp ExpireResponse
		fail := func(err error) { out.write(Line{Result: resp, Error: err.Error()}) }
		for _, tg := range targets {
			if dryRun {
				break
			}
			res, err := m.ExpireSnapshots(r.Context(), tg, ExpireOptions{OlderThan: olderThan, RetainLast: int(min(retain, 1<<20))})
			if err != nil {
				fail(err)
				return
			}
			resp.Snapshots = append(resp.Snapshots, res)
		}
		if orphans {
			for _, tg := range targets {
				res, err := m.RemoveOrphans(r.Context(), tg, OrphanOptions{OlderThan: orphanAge, DryRun: dryRun})
				if err != nil {
					fail(err)
					return
				}
				resp.Orphans = append(resp.Orphans, res)
			}
		}
		out.write(Line{Result: resp})
	})
	return mux
}

func resolveOrFail(w http.ResponseWriter, r *http.Request, resolve Resolver) ([]Target, Policy, bool) {
	targets, policy, err := resolve(r.Context(), r.PathValue("name"))
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotFound) {
			code = http.StatusNotFound
		}
		httpError(w, code, err)
		return nil, Policy{}, false
	}
	return targets, policy, true
}

// lineWriter streams Lines, flushing each.
type lineWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func newLineWriter(w http.ResponseWriter) *lineWriter {
	return &lineWriter{w: w, rc: http.NewResponseController(w)}
}

func (l *lineWriter) write(line Line) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-ndjson")
		l.w.WriteHeader(http.StatusOK)
		// A long compaction outlives the server's write timeout otherwise.
		_ = l.rc.SetWriteDeadline(time.Time{})
	}
	b, _ := json.Marshal(line) // plain structs: cannot fail
	_, _ = l.w.Write(append(b, '\n'))
	_ = l.rc.Flush()
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func intParam(s string, minimum int64) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < minimum {
		return 0, fmt.Errorf("%q: want an integer >= %d", s, minimum)
	}
	return n, nil
}

func durationParam(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 24h", s)
	}
	return d, nil
}

func boolParam(s string, def bool) (bool, error) {
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q: want true or false", s)
	}
	return b, nil
}
