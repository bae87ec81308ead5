package schema

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
)

// Client fetches registered schemas; table topics use it to decode values in
// the Confluent wire format (magic byte, 4-byte schema id, payload).
type Client interface {
	// SchemaByID returns the schema with a global id; Subject and Version
	// are left empty. Results are cached: an id's schema never changes.
	SchemaByID(ctx context.Context, id int) (Schema, error)
	// LatestSchema returns the newest live version of a subject.
	LatestSchema(ctx context.Context, subject string) (Schema, error)
}

// VersionClient is implemented by both of this package's clients; it is what
// ParseAvro needs to resolve schema references.
type VersionClient interface {
	Client
	// SchemaByVersion returns one version of a subject (-1: the latest).
	SchemaByVersion(ctx context.Context, subject string, version int) (Schema, error)
}

var (
	_ VersionClient = (*httpClient)(nil)
	_ VersionClient = (*localClient)(nil)
)

// httpClient talks to any Confluent-compatible registry (floe's, Confluent's,
// Redpanda's, Apicurio's ccompat API) and caches schemas by id.
type httpClient struct {
	baseURL string
	httpc   *http.Client

	mu        sync.Mutex
	byID      map[int]Schema
	byVersion map[subjectVersion]Schema
}

// NewHTTPClient returns a client for the registry at baseURL (for example
// http://127.0.0.1:8081); httpc nil means http.DefaultClient. The client is
// also a VersionClient.
func NewHTTPClient(baseURL string, httpc *http.Client) Client {
	if httpc == nil {
		httpc = http.DefaultClient
	}
	return &httpClient{
		baseURL:   strings.TrimRight(baseURL, "/"),
		httpc:     httpc,
		byID:      make(map[int]Schema),
		byVersion: make(map[subjectVersion]Schema),
	}
}

// SchemaByID implements Client.
func (c *httpClient) SchemaByID(ctx context.Context, id int) (Schema, error) {
	c.mu.Lock()
	sc, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return sc, nil
	}
	var resp schemaStringResponse
	if err := c.get(ctx, "/schemas/ids/"+strconv.Itoa(id), &resp); err != nil {
		return Schema{}, err
	}
	sc = Schema{ID: id, Type: TypeAvro, Schema: resp.Schema, References: resp.References}
	if resp.SchemaType != "" {
		sc.Type = strings.ToUpper(resp.SchemaType)
	}
	c.mu.Lock()
	c.byID[id] = sc
	c.mu.Unlock()
	return sc, nil
}

// LatestSchema implements Client. It is not cached: the latest version moves.
func (c *httpClient) LatestSchema(ctx context.Context, subject string) (Schema, error) {
	return c.fetchVersion(ctx, subject, "latest")
}

// SchemaByVersion implements VersionClient; numbered versions are cached.
func (c *httpClient) SchemaByVersion(ctx context.Context, subject string, version int) (Schema, error) {
	if version == -1 {
		return c.LatestSchema(ctx, subject)
	}
	key := subjectVersion{subject, version}
	c.mu.Lock()
	sc, ok := c.byVersion[key]
	c.mu.Unlock()
	if ok {
		return sc, nil
	}
	sc, err := c.fetchVersion(ctx, subject, strconv.Itoa(version))
	if err != nil {
		return Schema{}, err
	}
	c.mu.Lock()
	c.byVersion[key] = sc
	c.mu.Unlock()
	return sc, nil
}

func (c *httpClient) fetchVersion(ctx context.Context, subject, version string) (Schema, error) {
	var resp schemaResponse
	if err := c.get(ctx, "/subjects/"+url.PathEscape(subject)+"/versions/"+version, &resp); err != nil {
		return Schema{}, err
	}
	sc := Schema{ID: resp.ID, Subject: resp.Subject, Version: resp.Version, Type: TypeAvro, Schema: resp.Schema, References: resp.References}
	if resp.SchemaType != "" {
		sc.Type = strings.ToUpper(resp.SchemaType)
	}
	return sc, nil
}

func (c *httpClient) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", contentTypeV1+", "+contentTypeJSON)
	res, err := c.httpc.Do(req)
	if err != nil {
		return fmt.Errorf("schema registry GET %s: %w", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxRequestBytes))
	if err != nil {
		return fmt.Errorf("schema registry GET %s: %w", path, err)
	}
	if res.StatusCode != http.StatusOK {
		return remoteError(path, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("schema registry GET %s: decoding response: %w", path, err)
	}
	return nil
}

// remoteError turns a registry's error body into this package's sentinels.
func remoteError(path string, status int, body []byte) error {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.ErrorCode == 0 {
		return fmt.Errorf("schema registry GET %s: HTTP %d: %s", path, status, strings.TrimSpace(string(body)))
	}
	kind := map[int]error{
		40401: ErrSubjectNotFound, 40402: ErrVersionNotFound, 40403: ErrSchemaNotFound,
		409: ErrIncompatible, 40901: ErrIncompatible, 42201: ErrInvalidSchema, 42202: ErrInvalidVersion,
	}[eb.ErrorCode]
	if kind == nil {
		return fmt.Errorf("schema registry GET %s: HTTP %d, error_code %d: %s", path, status, eb.ErrorCode, eb.Message)
	}
	return newError(kind, "schema registry GET %s: %s (error_code %d)", path, eb.Message, eb.ErrorCode)
}

// localClient serves a Server's schemas in process, without HTTP.
type localClient struct {
	reg *registry

	mu   sync.Mutex
	byID map[int]Schema
}

// LocalClient returns a client reading this server's store directly, without
// HTTP; like NewHTTPClient's, it caches by id and is also a VersionClient.
func (s *Server) LocalClient() Client {
	return &localClient{reg: s.reg, byID: make(map[int]Schema)}
}

func (c *localClient) SchemaByID(ctx context.Context, id int) (Schema, error) {
	c.mu.Lock()
	sc, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return sc, nil
	}
	sc, err := c.reg.schemaByID(ctx, id)
	if err != nil {
		return Schema{}, err
	}
	c.mu.Lock()
	c.byID[id] = sc
	c.mu.Unlock()
	return sc, nil
}

func (c *localClient) LatestSchema(ctx context.Context, subject string) (Schema, error) {
	return c.reg.schemaAt(ctx, subject, -1, false)
}

func (c *localClient) SchemaByVersion(ctx context.Context, subject string, version int) (Schema, error) {
	return c.reg.schemaAt(ctx, subject, version, true)
}

// ParseAvro parses an Avro schema fetched from a registry, resolving its
// references (transitively) through the client, which must then be a
// VersionClient (both clients of this package are).
func ParseAvro(ctx context.Context, c Client, sc Schema) (avro.Schema, error) {
	if sc.Type != TypeAvro {
		return nil, fmt.Errorf("schema %d is %s, not AVRO", sc.ID, sc.Type)
	}
	var deps []resolvedSchema
	if len(sc.References) > 0 {
		vc, ok := c.(VersionClient)
		if !ok {
			return nil, fmt.Errorf("schema %d has references, and the client cannot fetch subject versions", sc.ID)
		}
		seen := map[subjectVersion]bool{}
		var visit func(refs []Reference, depth int) error
		visit = func(refs []Reference, depth int) error {
			if depth >= maxReferenceDepth {
				return fmt.Errorf("schema %d: references nest deeper than %d", sc.ID, maxReferenceDepth)
			}
			for _, ref := range refs {
				dep, err := vc.SchemaByVersion(ctx, ref.Subject, ref.Version)
				if err != nil {
					return fmt.Errorf("schema %d: reference %q: %w", sc.ID, ref.Name, err)
				}
				key := subjectVersion{dep.Subject, dep.Version}
				if seen[key] {
					continue
				}
				seen[key] = true
				if err := visit(dep.References, depth+1); err != nil {
					return err
				}
				deps = append(deps, resolvedSchema{name: ref.Name, typ: dep.Type, text: dep.Schema})
			}
			return nil
		}
		if err := visit(sc.References, 0); err != nil {
			return nil, err
		}
	}
	parsed, err := parseAvro(sc.Schema, deps)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", sc.ID, err)
	}
	return parsed.schema, nil
}
