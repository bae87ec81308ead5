package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Content types of the Confluent REST API.
const (
	contentTypeV1      = "application/vnd.schemaregistry.v1+json"
	contentTypeDefault = "application/vnd.schemaregistry+json"
	contentTypeJSON    = "application/json"
	maxRequestBytes    = 16 << 20
)

// Config configures a registry server.
type Config struct {
	// DefaultCompatibility is the global compatibility level until one is
	// set with PUT /config; BACKWARD if empty, as in Confluent.
	DefaultCompatibility string `yaml:"default_compatibility"`
}

// Validate fills in defaults and checks the config.
func (c *Config) Validate() error {
	if c.DefaultCompatibility == "" {
		c.DefaultCompatibility = CompatBackward
	}
	level, err := parseCompatibility(c.DefaultCompatibility)
	if err != nil {
		return fmt.Errorf("schema: default compatibility %q: %w", c.DefaultCompatibility, err)
	}
	c.DefaultCompatibility = level
	return nil
}

// Server serves the Confluent Schema Registry REST API from a Store.
type Server struct {
	reg    *registry
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewServer returns a registry server over store. Several servers (in one
// process or many) may share a store.
func NewServer(store Store, cfg Config, logger *slog.Logger) (*Server, error) {
	if store == nil {
		return nil, errors.New("schema: nil store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{reg: newRegistry(store, cfg.DefaultCompatibility, logger), logger: logger, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the REST API.
func (s *Server) Handler() http.Handler { return s.mux }

// apiFunc handles one route; it returns the response body (marshalled to
// JSON) or an error translated to Confluent's error body.
type apiFunc func(r *http.Request) (any, error)

// rawSchema is a response body written verbatim (the .../schema routes).
type rawSchema string

func (s *Server) routes() {
	handle := func(pattern string, f apiFunc) { s.mux.Handle(pattern, s.api(f)) }
	handle("GET /{$}", func(*http.Request) (any, error) { return struct{}{}, nil })
	handle("GET /subjects", s.listSubjects)
	handle("POST /subjects/{subject}", s.lookupSchema)
	handle("DELETE /subjects/{subject}", s.deleteSubject)
	handle("GET /subjects/{subject}/versions", s.listVersions)
	handle("POST /subjects/{subject}/versions", s.register)
	handle("GET /subjects/{subject}/versions/{version}", s.getVersion)
	handle("GET /subjects/{subject}/versions/{version}/schema", s.getVersionSchema)
	handle("GET /subjects/{subject}/versions/{version}/referencedby", s.getReferencedBy)
	handle("DELETE /subjects/{subject}/versions/{version}", s.deleteVersion)
	handle("GET /schemas", s.listSchemas)
	handle("GET /schemas/types", func(*http.Request) (any, error) {
		return []string{TypeJSON, TypeProtobuf, TypeAvro}, nil
	})
	handle("GET /schemas/ids/{id}", s.getSchemaByID)
	handle("GET /schemas/ids/{id}/schema", s.getRawSchemaByID)
	handle("GET /schemas/ids/{id}/versions", s.getVersionsByID)
	handle("GET /schemas/ids/{id}/subjects", s.getSubjectsByID)
	handle("GET /config", s.getConfig)
	handle("PUT /config", s.putConfig)
	handle("DELETE /config", s.deleteConfig)
	handle("GET /config/{subject}", s.getConfig)
	handle("PUT /config/{subject}", s.putConfig)
	handle("DELETE /config/{subject}", s.deleteConfig)
	handle("GET /mode", s.getMode)
	handle("PUT /mode", s.putMode)
	handle("DELETE /mode", s.deleteMode)
	handle("GET /mode/{subject}", s.getMode)
	handle("PUT /mode/{subject}", s.putMode)
	handle("DELETE /mode/{subject}", s.deleteMode)
	handle("POST /compatibility/subjects/{subject}/versions", s.testCompatibility)
	handle("POST /compatibility/subjects/{subject}/versions/{version}", s.testCompatibility)
	handle("GET /contexts", func(*http.Request) (any, error) { return []string{"."}, nil })
	handle("/", func(r *http.Request) (any, error) {
		return nil, &httpError{status: http.StatusNotFound, code: http.StatusNotFound, msg: "HTTP 404 Not Found"}
	})
}

// httpError is an error that already knows its HTTP status and error_code.
type httpError struct {
	status, code int
	msg          string
}

func (e *httpError) Error() string { return e.msg }

type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// errorStatus translates an error to Confluent's HTTP status and error_code.
func errorStatus(err error) (status, code int) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.code
	}
	for _, m := range []struct {
		kind         error
		status, code int
	}{
		{ErrSubjectNotFound, 404, 40401},
		{ErrVersionNotFound, 404, 40402},
		{ErrSchemaNotFound, 404, 40403},
		{ErrSubjectSoftDeleted, 404, 40404},
		{ErrSubjectNotSoftDeleted, 404, 40405},
		{ErrVersionSoftDeleted, 404, 40406},
		{ErrVersionNotSoftDeleted, 404, 40407},
		{ErrSubjectConfigNotFound, 404, 40408},
		{ErrSubjectModeNotFound, 404, 40409},
		// Confluent answered 409/409 up to 8.1 (40901 since); clients key on the status.
		{ErrIncompatible, 409, 409},
		{ErrInvalidSchema, 422, 42201},
		{ErrInvalidVersion, 422, 42202},
		{ErrInvalidCompatibility, 422, 42203},
		{ErrInvalidMode, 422, 42204},
		{ErrOperationNotPermitted, 422, 42205},
		{ErrReferenceExists, 422, 42206},
		{ErrIDMismatch, 422, 42207},
		{ErrInvalidSubject, 422, 42208},
	} {
		if errors.Is(err, m.kind) {
			return m.status, m.code
		}
	}
	return http.StatusInternalServerError, 50001
}

func (s *Server) api(f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := f(r)
		if err != nil {
			status, code := errorStatus(err)
			msg := err.Error()
			if status >= 500 {
				s.logger.Error("schema registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				if errors.Is(err, ErrStore) {
					msg = "Error in the backend metadata store: " + msg
				}
			}
			writeJSON(w, r, status, errorBody{ErrorCode: code, Message: msg})
			return
		}
		if raw, ok := body.(rawSchema); ok {
			w.Header().Set("Content-Type", responseContentType(r))
			_, _ = io.WriteString(w, string(raw))
			return
		}
		writeJSON(w, r, http.StatusOK, body)
	})
}

// responseContentType answers in the registry's media type unless the
// client asked only for plain JSON.
func responseContentType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if accept == "" || strings.Contains(accept, "application/vnd.schemaregistry") || strings.Contains(accept, "*/*") ||
		!strings.Contains(accept, contentTypeJSON) {
		return contentTypeV1
	}
	return contentTypeJSON
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{ErrorCode: 50001, Message: "encoding response: " + err.Error()})
	}
	w.Header().Set("Content-Type", responseContentType(r))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeBody reads a JSON request body in any of the media types Confluent
// accepts.
func decodeBody(r *http.Request, into any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return &httpError{status: http.StatusUnsupportedMediaType, code: http.StatusUnsupportedMediaType, msg: "HTTP 415 Unsupported Media Type"}
		case mt == contentTypeV1, mt == contentTypeDefault, mt == contentTypeJSON, mt == "application/octet-stream":
		default:
			return &httpError{status: http.StatusUnsupportedMediaType, code: http.StatusUnsupportedMediaType, msg: "HTTP 415 Unsupported Media Type"}
		}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBytes))
	if err := dec.Decode(into); err != nil {
		return &httpError{status: http.StatusBadRequest, code: http.StatusBadRequest, msg: "Unrecognized request body: " + err.Error()}
	}
	return nil
}

func queryBool(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

func pathVersion(r *http.Request) (int, error) {
	return parseVersion(r.PathValue("version"))
}

func pathID(r *http.Request) (int, error) {
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil || id < 1 {
		return 0, newError(ErrSchemaNotFound, "Schema %s not found", raw)
	}
	return id, nil
}

// schemaResponse is Confluent's Schema entity: schemaType is omitted for
// AVRO and references when empty, as Confluent's responses do.
type schemaResponse struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func toResponse(sc Schema) schemaResponse {
	resp := schemaResponse{Subject: sc.Subject, Version: sc.Version, ID: sc.ID, References: sc.References, Schema: sc.Schema}
	if sc.Type != TypeAvro {
		resp.SchemaType = sc.Type
	}
	return resp
}

// schemaStringResponse is Confluent's SchemaString entity (GET /schemas/ids/{id}).
type schemaStringResponse struct {
	SchemaType string      `json:"schemaType,omitempty"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
}

func (s *Server) listSubjects(r *http.Request) (any, error) {
	return s.reg.subjects(r.Context(), r.URL.Query().Get("subjectPrefix"), queryBool(r, "deleted"))
}

func (s *Server) listVersions(r *http.Request) (any, error) {
	return s.reg.versions(r.Context(), r.PathValue("subject"), queryBool(r, "deleted"))
}

func (s *Server) register(r *http.Request) (any, error) {
	var req registerRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := detach(r.Context())
	defer cancel()
	id, _, err := s.reg.register(ctx, r.PathValue("subject"), req)
	if err != nil {
		return nil, err
	}
	return struct {
		ID int `json:"id"`
	}{id}, nil
}

func (s *Server) getVersion(r *http.Request) (any, error) {
	version, err := pathVersion(r)
	if err != nil {
		return nil, err
	}
	sc, err := s.reg.schemaAt(r.Context(), r.PathValue("subject"), version, queryBool(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return toResponse(sc), nil
}

func (s *Server) getVersionSchema(r *http.Request) (any, error) {
	version, err := pathVersion(r)
	if err != nil {
		return nil, err
	}
	sc, err := s.reg.schemaAt(r.Context(), r.PathValue("subject"), version, queryBool(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return rawSchema(sc.Schema), nil
}

func (s *Server) getReferencedBy(r *http.Request) (any, error) {
	version, err := pathVersion(r)
	if err != nil {
		return nil, err
	}
	return s.reg.referencedBy(r.Context(), r.PathValue("subject"), version)
}

func (s *Server) deleteVersion(r *http.Request) (any, error) {
	version, err := pathVersion(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel := detach(r.Context())
	defer cancel()
	return s.reg.deleteVersion(ctx, r.PathValue("subject"), version, queryBool(r, "permanent"))
}

func (s *Server) deleteSubject(r *http.Request) (any, error) {
	ctx, cancel := detach(r.Context())
	defer cancel()
	return s.reg.deleteSubject(ctx, r.PathValue("subject"), queryBool(r, "permanent"))
}

func (s *Server) lookupSchema(r *http.Request) (any, error) {
	var req registerRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	sc, err := s.reg.lookup(r.Context(), r.PathValue("subject"), req, queryBool(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return toResponse(sc), nil
}

func (s *Server) listSchemas(r *http.Request) (any, error) {
	q := r.URL.Query()
	schemas, err := s.reg.allSchemas(r.Context(), q.Get("subjectPrefix"), queryBool(r, "deleted"), queryBool(r, "latestOnly"))
	if err != nil {
		return nil, err
	}
	out := make([]schemaResponse, 0, len(schemas))
	for _, sc := range schemas {
		out = append(out, toResponse(sc))
	}
	return out, nil
}

func (s *Server) getSchemaByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	sc, err := s.reg.schemaByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	resp := schemaStringResponse{Schema: sc.Schema, References: sc.References}
	if sc.Type != TypeAvro {
		resp.SchemaType = sc.Type
	}
	return resp, nil
}

func (s *Server) getRawSchemaByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	sc, err := s.reg.schemaByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return rawSchema(sc.Schema), nil
}

func (s *Server) getVersionsByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	return s.reg.versionsByID(r.Context(), id, queryBool(r, "deleted"))
}

func (s *Server) getSubjectsByID(r *http.Request) (any, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	versions, err := s.reg.versionsByID(r.Context(), id, queryBool(r, "deleted"))
	if err != nil {
		return nil, err
	}
	subjects := []string{}
	for _, v := range versions {
		if len(subjects) == 0 || subjects[len(subjects)-1] != v.Subject {
			subjects = append(subjects, v.Subject)
		}
	}
	return subjects, nil
}

// Confluent reads config as {"compatibilityLevel": ...} but takes (and
// echoes) updates as {"compatibility": ...}.
type configResponse struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type configUpdate struct {
	Compatibility string `json:"compatibility"`
}

func (s *Server) getConfig(r *http.Request) (any, error) {
	level, err := s.reg.getConfig(r.Context(), r.PathValue("subject"), queryBool(r, "defaultToGlobal"))
	if err != nil {
		return nil, err
	}
	return configResponse{CompatibilityLevel: level}, nil
}

func (s *Server) putConfig(r *http.Request) (any, error) {
	var req configUpdate
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	level, err := s.reg.setConfig(r.Context(), r.PathValue("subject"), req.Compatibility)
	if err != nil {
		return nil, err
	}
	return configUpdate{Compatibility: level}, nil
}

func (s *Server) deleteConfig(r *http.Request) (any, error) {
	level, err := s.reg.deleteConfig(r.Context(), r.PathValue("subject"))
	if err != nil {
		return nil, err
	}
	return configResponse{CompatibilityLevel: level}, nil
}

type modeBody struct {
	Mode string `json:"mode"`
}

func (s *Server) getMode(r *http.Request) (any, error) {
	mode, err := s.reg.getMode(r.Context(), r.PathValue("subject"), queryBool(r, "defaultToGlobal"))
	if err != nil {
		return nil, err
	}
	return modeBody{Mode: mode}, nil
}

func (s *Server) putMode(r *http.Request) (any, error) {
	var req modeBody
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := detach(r.Context())
	defer cancel()
	mode, err := s.reg.setMode(ctx, r.PathValue("subject"), req.Mode, queryBool(r, "force"))
	if err != nil {
		return nil, err
	}
	return modeBody{Mode: mode}, nil
}

func (s *Server) deleteMode(r *http.Request) (any, error) {
	mode, err := s.reg.deleteMode(r.Context(), r.PathValue("subject"))
	if err != nil {
		return nil, err
	}
	return modeBody{Mode: mode}, nil
}

type compatibilityResponse struct {
	IsCompatible bool `json:"is_compatible"`
}

// verboseCompatibilityResponse always carries messages, [] when compatible.
type verboseCompatibilityResponse struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages"`
}

func (s *Server) testCompatibility(r *http.Request) (any, error) {
	version := 0 // every version, as the level says
	if r.PathValue("version") != "" {
		v, err := pathVersion(r)
		if err != nil {
			return nil, err
		}
		version = v
	}
	var req registerRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	verbose := queryBool(r, "verbose")
	msgs, err := s.reg.testCompatibility(r.Context(), r.PathValue("subject"), version, req)
	if err != nil {
		if verbose && errors.Is(err, ErrInvalidSchema) {
			return verboseCompatibilityResponse{IsCompatible: false, Messages: []string{err.Error()}}, nil
		}
		return nil, err
	}
	if !verbose {
		return compatibilityResponse{IsCompatible: len(msgs) == 0}, nil
	}
	if msgs == nil {
		msgs = []string{}
	}
	return verboseCompatibilityResponse{IsCompatible: len(msgs) == 0, Messages: msgs}, nil
}

// detach keeps ctx's values but not its cancellation: a registration or a
// delete is several store writes, and a client hanging up halfway should not
// leave the work half done.
// mutationTimeout bounds the detached work instead.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), mutationTimeout)
}

const mutationTimeout = 30 * time.Second
