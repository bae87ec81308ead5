package tabletopic

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Handler serves the table-topic admin API, for the admin listener:
//
//	GET  /v1/tables               every table topic's TableStatus
//	GET  /v1/tables/{name}        one, by topic, namespace.table or table name
//	POST /v1/tables/{name}/retry  restart a table stopped by an error
//	POST /v1/tables/{name}/compact  compact small files now (maintain.Handler)
//	POST /v1/tables/{name}/expire   expire snapshots, remove orphan files now
//
// Mount it at /v1/tables and /v1/tables/.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tables", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"tables": s.Status()})
	})
	mux.HandleFunc("GET /v1/tables/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.TableStatus(r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /v1/tables/{name}/retry", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Retry(r.PathValue("name")); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "retrying"})
	})
	maint := s.maint.Handler(s.resolveMaintenance)
	mux.Handle("POST /v1/tables/{name}/compact", maint)
	mux.Handle("POST /v1/tables/{name}/expire", maint)
	return mux
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrUnknownTable) {
		code = http.StatusNotFound
	}
	writeJSON(w, code, map[string]string{"error": strings.TrimPrefix(err.Error(), "tabletopic: ")})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
