// Package catalog is floe's Iceberg REST catalog server. It serves the Apache
// Iceberg REST catalog API (namespaces, tables, multi-table transactions,
// optional OAuth2 client credentials) over iceberg-go's SQL catalog, with
// SQLite embedded by default and PostgreSQL for shared deployments, and
// writes table metadata files to the warehouse on the object store.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers the s3:// FileIO
)

// DefaultAddr is the address the catalog listens on unless configured.
const DefaultAddr = "127.0.0.1:8181"

// Prefix is the {prefix} path segment the server advertises in /v1/config.
// Every route is served both with and without it.
const Prefix = "floe"

// maxBodyBytes bounds a request body; larger ones get 413.
const maxBodyBytes = 8 << 20

// metadataCacheBytes bounds the parsed-metadata cache (by JSON size).
const metadataCacheBytes = 64 << 20

// Config configures a catalog server.
type Config struct {
	Addr      string // listen address, default DefaultAddr (used by the caller only)
	DBDriver  string // "sqlite" (default) or "postgres"
	DBDSN     string // sqlite file path or postgres DSN
	Warehouse string // e.g. file:///data/warehouse or s3://bucket/warehouse
	// IOProps are iceberg-go FileIO properties for the warehouse: s3.endpoint,
	// s3.region, s3.access-key-id, s3.secret-access-key, s3.path-style-access...
	IOProps map[string]string
	// ClientID and ClientSecret turn on OAuth2 client-credentials auth: when
	// set, every route but /v1/oauth/tokens requires a bearer token issued to
	// these credentials.
	ClientID, ClientSecret string
}

// Server is an Iceberg REST catalog. Create it with New, serve Handler, and
// Close it when done.
type Server struct {
	log       *slog.Logger
	store     *store
	cat       *sqlcat.Catalog
	warehouse warehouseRoot
	// ioProps is what the server's own FileIO uses: the warehouse plus
	// Config.IOProps, never anything a client sent.
	ioProps iceberg.Properties
	// storageProps are the non-secret storage settings engines need
	// (endpoint, region, addressing style), handed out in /v1/config.
	storageProps map[string]string
	auth         *authenticator // nil: auth is off
	locks        *tableLocks
	metadata     *metadataCache

	ioMu    sync.Mutex
	ios     map[string]icebergio.IO // by scheme://bucket; see fileIO
	handler http.Handler

	closeOnce sync.Once
	closeErr  error
}

// New opens the catalog database (creating its tables if needed) and builds
// the server. It does not listen; serve Handler.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wh, err := parseWarehouse(cfg.Warehouse)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if (cfg.ClientID == "") != (cfg.ClientSecret == "") {
		return nil, errors.New("catalog: ClientID and ClientSecret must be set together")
	}
	st, dialect, err := openDB(cfg.DBDriver, cfg.DBDSN)
	if err != nil {
		return nil, err
	}
	if err := st.db.PingContext(ctx); err != nil {
		_ = st.db.Close()
		return nil, fmt.Errorf("catalog: connect to %s database: %w", dialect, err)
	}

	ioProps := iceberg.Properties{}
	maps.Copy(ioProps, cfg.IOProps)
	ioProps["warehouse"] = wh.raw
	storage := storageProperties(cfg.IOProps)
	// iceberg-go's S3 FileIO reads the addressing style from
	// s3.force-virtual-addressing; accept the Java name too.
	if v, ok := storage["s3.force-virtual-addressing"]; ok {
		ioProps["s3.force-virtual-addressing"] = v
	}

	catProps := maps.Clone(ioProps)
	// Always run the current table layout (with iceberg_type), migrating a
	// legacy JDBC catalog database if pointed at one: our own statements rely
	// on it.
	catProps[sqlcat.SchemaVersionKey] = sqlcat.SchemaVersionV1
	cat, err := sqlcat.NewCatalog(catalogName, st.db, dialect, catProps)
	if err != nil {
		_ = st.db.Close()
		return nil, fmt.Errorf("catalog: init %s catalog database: %w", dialect, err)
	}

	s := &Server{
		log:          logger,
		store:        st,
		cat:          cat,
		warehouse:    wh,
		ioProps:      ioProps,
		storageProps: storage,
		locks:        newTableLocks(),
		metadata:     newMetadataCache(metadataCacheBytes),
		ios:          map[string]icebergio.IO{},
	}
	if cfg.ClientID != "" {
		s.auth = newAuthenticator(cfg.ClientID, cfg.ClientSecret)
	}
	s.handler = s.routes()
	logger.InfoContext(ctx, "iceberg rest catalog ready", "db", string(dialect),
		"warehouse", wh.raw, "auth", s.auth != nil)
	return s, nil
}

// Handler returns the HTTP handler serving the REST API.
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the database. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		errs := []error{s.cat.Close(), s.store.db.Close()}
		s.ioMu.Lock()
		for _, fs := range s.ios {
			if c, ok := fs.(io.Closer); ok {
				errs = append(errs, c.Close())
			}
		}
		s.ios = map[string]icebergio.IO{}
		s.ioMu.Unlock()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// routes builds the API. Patterns are written without {prefix}; stripPrefix
// maps /v1/floe/... onto them.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.apiHandler(h))
	}
	handle("GET /v1/config", s.getConfig)
	mux.HandleFunc("POST /v1/oauth/tokens", s.issueToken)

	handle("GET /v1/namespaces", s.listNamespaces)
	handle("POST /v1/namespaces", s.createNamespace)
	handle("GET /v1/namespaces/{namespace}", s.loadNamespace)
	handle("HEAD /v1/namespaces/{namespace}", s.namespaceExists)
	handle("DELETE /v1/namespaces/{namespace}", s.dropNamespace)
	handle("POST /v1/namespaces/{namespace}/properties", s.updateNamespaceProperties)

	handle("GET /v1/namespaces/{namespace}/tables", s.listTables)
	handle("POST /v1/namespaces/{namespace}/tables", s.createTable)
	handle("POST /v1/namespaces/{namespace}/register", s.registerTable)
	handle("GET /v1/namespaces/{namespace}/tables/{table}", s.loadTable)
	handle("HEAD /v1/namespaces/{namespace}/tables/{table}", s.tableExists)
	handle("POST /v1/namespaces/{namespace}/tables/{table}", s.commitTable)
	handle("DELETE /v1/namespaces/{namespace}/tables/{table}", s.dropTable)
	handle("POST /v1/namespaces/{namespace}/tables/{table}/metrics", s.reportMetrics)
	handle("POST /v1/tables/rename", s.renameTable)
	handle("POST /v1/transactions/commit", s.commitTransaction)

	var h http.Handler = s.jsonFallback(mux)
	h = s.requireAuth(h)
	h = s.stripPrefix(h)
	h = s.guard(h)
	return h
}

// apiHandler adapts a handler that returns an error to http.Handler.
func (s *Server) apiHandler(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// guard is the outermost layer: it bounds the body, refuses paths with dot
// segments or empty segments (which ServeMux would answer with a redirect),
// and turns a panic into a 500 instead of a dropped connection.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "catalog handler panicked", "method", r.Method,
					"path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeErrorStatus(w, r, http.StatusInternalServerError, "ServiceFailureException", "internal error")
			}
		}()
		if r.ContentLength > maxBodyBytes {
			writeErrorStatus(w, r, http.StatusRequestEntityTooLarge, "BadRequestException",
				fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		raw := r.URL.EscapedPath()
		if !strings.HasPrefix(raw, "/") {
			writeErrorStatus(w, r, http.StatusBadRequest, "BadRequestException", "malformed request path")
			return
		}
		for _, seg := range strings.Split(raw[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				writeErrorStatus(w, r, http.StatusBadRequest, "BadRequestException",
					fmt.Sprintf("request path %q has an empty or dot segment", raw))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// stripPrefix serves /v1/{prefix}/... on the same routes as /v1/....
func (s *Server) stripPrefix(next http.Handler) http.Handler {
	withPrefix := "/v1/" + Prefix + "/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.URL.EscapedPath()
		if !strings.HasPrefix(raw, withPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		u := *r.URL
		u.Path = "/v1/" + strings.TrimPrefix(r.URL.Path, withPrefix)
		if r.URL.RawPath != "" {
			u.RawPath = "/v1/" + strings.TrimPrefix(r.URL.RawPath, withPrefix)
		}
		r2.URL = &u
		next.ServeHTTP(w, r2)
	})
}

// decodeBody reads a JSON request body into dst: exactly one JSON value,
// within the size limit.
func decodeBody(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return &httpError{status: http.StatusRequestEntityTooLarge, typ: "BadRequestException",
				msg: fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}
		case errors.Is(err, io.EOF):
			return badRequestf("request body is empty; a JSON object is required")
		default:
			return badRequestf("malformed request body: %v", err)
		}
	}
	if dec.More() {
		return badRequestf("malformed request body: more than one JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return badRequestf("malformed request body: trailing data after the JSON object")
	}
	return nil
}

// jsonFallback answers unknown routes and wrong methods with an ErrorModel
// instead of ServeMux's plain-text 404 and 405.
func (s *Server) jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Handler only finds the route; ServeHTTP matches again and fills
		// in the path values.
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeErrorStatus(w, r, http.StatusMethodNotAllowed, "MethodNotAllowedException",
				fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
		writeErrorStatus(w, r, http.StatusNotFound, "NoSuchEndpointException",
			fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

// statusRecorder captures what ServeMux's fallback handlers would send.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }
