package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// hostileRequest is one request a client should never be able to turn into
// a 5xx, a panic or a change of state.
type hostileRequest struct {
	name   string
	method string
	path   string // raw, escaped path and query
	body   string
	header map[string]string
	status int // expected 4xx status
	// errType, when set, is the ErrorModel type the response must carry.
	errType string
}

// TestHostileRequests sends malformed and malicious requests and checks each
// gets the expected 4xx with an ErrorModel body, and that the catalog (its
// namespaces, properties, tables and metadata pointers) and the warehouse
// files are exactly as before.
func TestHostileRequests(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	cat := ts.restClient(t, nil)
	if err := cat.CreateNamespace(ctx, table.Identifier{"ns"}, iceberg.Properties{"owner": "me"}); err != nil {
		t.Fatal(err)
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true})
	tbl, err := cat.CreateTable(ctx, table.Identifier{"ns", "t"}, schema)
	if err != nil {
		t.Fatal(err)
	}
	uuid := tbl.Metadata().TableUUID().String()
	// A directory outside the warehouse that no request may write to.
	outside := "file://" + filepath.Join(t.TempDir(), "outside")

	setProps := `{"action":"set-properties","updates":{"k":"v"}}`
	huge := `{"namespace":["big"],"properties":{"x":"` + strings.Repeat("a", 9<<20) + `"}}`
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)

	cases := []hostileRequest{
		// Bodies that are not the JSON they should be.
		{name: "bad json", method: "POST", path: "/v1/namespaces", body: `{"namespace":`, status: 400, errType: "BadRequestException"},
		{name: "trailing data", method: "POST", path: "/v1/namespaces", body: `{"namespace":["x"]} {"namespace":["y"]}`, status: 400},
		{name: "empty body", method: "POST", path: "/v1/namespaces", body: ``, status: 400},
		{name: "array body", method: "POST", path: "/v1/namespaces", body: `[]`, status: 400},
		{name: "deeply nested json", method: "POST", path: "/v1/namespaces", body: deep, status: 400},
		{name: "wrong field type", method: "POST", path: "/v1/namespaces", body: `{"namespace":"x"}`, status: 400},
		{name: "huge body", method: "POST", path: "/v1/namespaces", body: huge, status: 413},
		{name: "huge body chunked", method: "POST", path: "/v1/namespaces", body: huge, status: 413,
			header: map[string]string{"X-Test-Chunked": "1"}},

		// Names that would escape the warehouse or confuse parsers.
		{name: "traversal namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":["../../etc"]}`, status: 400},
		{name: "dot-dot namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":[".."]}`, status: 400},
		{name: "nul in namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":["a\u0000b"]}`, status: 400},
		{name: "newline in namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":["a\nb"]}`, status: 400},
		{name: "backslash in namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":["a\\..\\b"]}`, status: 400},
		{name: "empty namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":[]}`, status: 400},
		{name: "empty level", method: "POST", path: "/v1/namespaces", body: `{"namespace":["a",""]}`, status: 400},
		{name: "too deep namespace", method: "POST", path: "/v1/namespaces",
			body: `{"namespace":["a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a"]}`, status: 400},
		{name: "too long name", method: "POST", path: "/v1/namespaces", body: `{"namespace":["` + strings.Repeat("n", 300) + `"]}`, status: 400},
		{name: "sql catalog marker", method: "POST", path: "/v1/namespaces", body: `{"namespace":["__iceberg_namespace_v1__:[\"x\"]"]}`, status: 400},
		{name: "namespace exists already", method: "POST", path: "/v1/namespaces", body: `{"namespace":["ns"]}`, status: 409, errType: "AlreadyExistsException"},
		{name: "reserved namespace property", method: "POST", path: "/v1/namespaces", body: `{"namespace":["r"],"properties":{"exists":"false"}}`, status: 400},
		{name: "io property on namespace", method: "POST", path: "/v1/namespaces", body: `{"namespace":["io"],"properties":{"s3.endpoint":"http://evil.example"}}`, status: 400},
		{name: "namespace location outside warehouse", method: "POST", path: "/v1/namespaces", body: `{"namespace":["loc"],"properties":{"location":"` + outside + `"}}`, status: 400},
		{name: "namespace location traversal", method: "POST", path: "/v1/namespaces/ns/properties",
			body: `{"updates":{"location":"` + ts.warehouse + `/../../etc"}}`, status: 400},
		{name: "property set and removed", method: "POST", path: "/v1/namespaces/ns/properties",
			body: `{"updates":{"owner":"x"},"removals":["owner"]}`, status: 422},

		// Paths.
		{name: "encoded dot-dot namespace", method: "GET", path: "/v1/namespaces/%2E%2E", status: 400},
		{name: "raw dot-dot path", method: "GET", path: "/v1/namespaces/../config", status: 400},
		{name: "encoded slash table", method: "GET", path: "/v1/namespaces/ns/tables/..%2F..%2Fx", status: 400},
		{name: "nul in path", method: "GET", path: "/v1/namespaces/ns%00x", status: 400},
		{name: "empty segment", method: "GET", path: "/v1/namespaces//tables", status: 400},
		{name: "unknown prefix", method: "GET", path: "/v1/other/namespaces", status: 404},
		{name: "views are not served", method: "GET", path: "/v1/namespaces/ns/views", status: 404},
		{name: "missing namespace", method: "GET", path: "/v1/namespaces/nope", status: 404, errType: "NoSuchNamespaceException"},
		{name: "missing table", method: "GET", path: "/v1/floe/namespaces/ns/tables/nope", status: 404, errType: "NoSuchTableException"},

		// Wrong methods.
		{name: "PUT namespaces", method: "PUT", path: "/v1/namespaces", body: `{}`, status: 405},
		{name: "PATCH table", method: "PATCH", path: "/v1/namespaces/ns/tables/t", body: `{}`, status: 405},
		{name: "DELETE config", method: "DELETE", path: "/v1/config", status: 405},
		{name: "GET transaction", method: "GET", path: "/v1/transactions/commit", status: 405},
		{name: "GET rename", method: "GET", path: "/v1/floe/tables/rename", status: 405},

		// Tables.
		{name: "traversal table name", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"../../x","schema":{"type":"struct","fields":[]}}`, status: 400},
		{name: "percent in table name", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"a%2e","schema":{"type":"struct","fields":[]}}`, status: 400},
		{name: "no schema", method: "POST", path: "/v1/namespaces/ns/tables", body: `{"name":"x"}`, status: 400},
		{name: "bad schema type", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"x","schema":{"type":"struct","fields":[{"id":1,"name":"c","type":"nope","required":true}]}}`, status: 400},
		{name: "spec on missing column", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"x","schema":{"type":"struct","fields":[{"id":1,"name":"c","type":"int","required":true}]},` +
				`"partition-spec":{"spec-id":0,"fields":[{"source-id":7,"field-id":1000,"name":"p","transform":"identity"}]}}`, status: 400},
		{name: "table location outside warehouse", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"x","location":"` + outside + `/t","schema":{"type":"struct","fields":[]}}`, status: 400},
		{name: "io property on table", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"x","schema":{"type":"struct","fields":[]},"properties":{"s3.endpoint":"http://evil.example"}}`, status: 400},
		{name: "metadata path outside warehouse", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"x","schema":{"type":"struct","fields":[]},"properties":{"write.metadata.path":"` + outside + `/meta"}}`, status: 400},
		{name: "table exists already", method: "POST", path: "/v1/namespaces/ns/tables",
			body: `{"name":"t","schema":{"type":"struct","fields":[]}}`, status: 409},
		{name: "table in missing namespace", method: "POST", path: "/v1/namespaces/nope/tables",
			body: `{"name":"x","schema":{"type":"struct","fields":[]}}`, status: 404},
		{name: "bad snapshots mode", method: "GET", path: "/v1/namespaces/ns/tables/t?snapshots=some", status: 400},
		{name: "bad purge flag", method: "DELETE", path: "/v1/namespaces/ns/tables/t?purgeRequested=maybe", status: 400},
		{name: "bad page size", method: "GET", path: "/v1/namespaces?pageSize=-1", status: 400},
		{name: "non-numeric page size", method: "GET", path: "/v1/namespaces/ns/tables?pageSize=ten", status: 400},
		{name: "forged page token", method: "GET", path: "/v1/namespaces?pageToken=%25%25", status: 400},

		// Commits.
		{name: "unknown update type", status: 400, errType: "BadRequestException",
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"requirements":[],"updates":[{"action":"drop-everything"}]}`},
		{name: "valid update then unknown one", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"requirements":[],"updates":[` + setProps + `,{"action":"nope"}]}`},
		{name: "unknown requirement type", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"requirements":[{"type":"assert-nothing"}],"updates":[` + setProps + `]}`},
		{name: "update missing fields", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"updates":[{"action":"set-current-schema"}]}`},
		{name: "identifier mismatch", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"identifier":{"namespace":["ns"],"name":"other"},"updates":[` + setProps + `]}`},
		{name: "set-location outside warehouse", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"updates":[{"action":"set-location","location":"` + outside + `/stolen"}]}`},
		{name: "io property via commit", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"updates":[{"action":"set-properties","updates":{"s3.endpoint":"http://evil.example"}}]}`},
		{name: "metadata path via commit", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"updates":[{"action":"set-properties","updates":{"write.metadata.path":"` + outside + `/m"}}]}`},
		{name: "impossible format version", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"updates":[{"action":"upgrade-format-version","format-version":99}]}`},
		{name: "current schema to missing id", status: 400,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"updates":[{"action":"set-current-schema","schema-id":42}]}`},
		{name: "stale table uuid", status: 409, errType: "CommitFailedException",
			method: "POST", path: "/v1/namespaces/ns/tables/t",
			body: `{"requirements":[{"type":"assert-table-uuid","uuid":"00000000-0000-0000-0000-000000000001"}],"updates":[` + setProps + `]}`},
		{name: "assert-create on existing table", status: 409,
			method: "POST", path: "/v1/namespaces/ns/tables/t", body: `{"requirements":[{"type":"assert-create"}],"updates":[` + setProps + `]}`},
		{name: "commit to missing table", status: 404, errType: "NoSuchTableException",
			method: "POST", path: "/v1/namespaces/ns/tables/nope", body: `{"updates":[` + setProps + `]}`},

		// Transactions.
		{name: "empty transaction", method: "POST", path: "/v1/transactions/commit", body: `{"table-changes":[]}`, status: 400},
		{name: "transaction without identifier", method: "POST", path: "/v1/transactions/commit",
			body: `{"table-changes":[{"updates":[` + setProps + `]}]}`, status: 400},
		{name: "transaction naming a table twice", method: "POST", path: "/v1/transactions/commit",
			body: `{"table-changes":[{"identifier":{"namespace":["ns"],"name":"t"},"updates":[` + setProps + `]},` +
				`{"identifier":{"namespace":["ns"],"name":"t"},"updates":[` + setProps + `]}]}`, status: 400},
		{name: "transaction with a missing table", method: "POST", path: "/v1/transactions/commit",
			body: `{"table-changes":[{"identifier":{"namespace":["ns"],"name":"t"},"requirements":[{"type":"assert-table-uuid","uuid":"` + uuid + `"}],"updates":[` + setProps + `]},` +
				`{"identifier":{"namespace":["ns"],"name":"ghost"},"updates":[` + setProps + `]}]}`, status: 404},
		{name: "transaction with traversal name", method: "POST", path: "/v1/transactions/commit",
			body: `{"table-changes":[{"identifier":{"namespace":["ns"],"name":".."},"updates":[` + setProps + `]}]}`, status: 400},

		// Rename, register, metrics, tokens.
		{name: "rename to traversal", method: "POST", path: "/v1/tables/rename",
			body: `{"source":{"namespace":["ns"],"name":"t"},"destination":{"namespace":["ns"],"name":"../t"}}`, status: 400},
		{name: "rename without destination", method: "POST", path: "/v1/tables/rename",
			body: `{"source":{"namespace":["ns"],"name":"t"}}`, status: 400},
		{name: "rename missing table", method: "POST", path: "/v1/tables/rename",
			body: `{"source":{"namespace":["ns"],"name":"ghost"},"destination":{"namespace":["ns"],"name":"t2"}}`, status: 404},
		{name: "register outside warehouse", method: "POST", path: "/v1/namespaces/ns/register",
			body: `{"name":"r","metadata-location":"file:///etc/passwd"}`, status: 400},
		{name: "register garbage metadata", method: "POST", path: "/v1/namespaces/ns/register",
			body: `{"name":"r","metadata-location":"` + ts.warehouse + `/ns.db/t/missing.metadata.json"}`, status: 400},
		{name: "register over existing table", method: "POST", path: "/v1/namespaces/ns/register",
			body: `{"name":"t","metadata-location":"` + tbl.MetadataLocation() + `"}`, status: 409},
		{name: "metrics not an object", method: "POST", path: "/v1/namespaces/ns/tables/t/metrics", body: `[1,2]`, status: 400},
		{name: "metrics for missing table", method: "POST", path: "/v1/namespaces/ns/tables/ghost/metrics",
			body: `{"report-type":"scan-report"}`, status: 404},
		{name: "password grant", method: "POST", path: "/v1/oauth/tokens", body: "grant_type=password&username=a&password=b",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 400},
	}

	snapshot := func() string {
		s := catalogSnapshot(t, ts)
		if _, err := os.Stat(strings.TrimPrefix(outside, "file://")); err == nil {
			s += "something was written outside the warehouse\n"
		}
		return s
	}
	before := snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawRequest(t, ts.URL, tc)
			if status != tc.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, status, tc.status, truncate(body))
			}
			if tc.path != "/v1/oauth/tokens" && tc.method != "HEAD" {
				var em errorModel
				if err := json.Unmarshal(body, &em); err != nil || em.Error.Code != status || em.Error.Message == "" || em.Error.Type == "" {
					t.Fatalf("response is not an ErrorModel with code %d: %s", status, truncate(body))
				}
				if tc.errType != "" && em.Error.Type != tc.errType {
					t.Errorf("error type %q, want %q", em.Error.Type, tc.errType)
				}
			}
			if after := snapshot(); after != before {
				t.Fatalf("the request changed the catalog:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// rawRequest sends tc as is (no path cleaning) and returns status and body.
func rawRequest(t *testing.T, base string, tc hostileRequest) (int, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader
	if tc.body != "" {
		body = strings.NewReader(tc.body)
		if tc.header["X-Test-Chunked"] != "" {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequest(tc.method, base, body)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(tc.path, "?")
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: "//" + u.Host + path, RawQuery: query}
	for k, v := range tc.header {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// catalogSnapshot renders everything a request could change: every
// namespace with its properties, every table with its metadata pointer, and
// the warehouse's files.
func catalogSnapshot(t *testing.T, ts *testServer) string {
	t.Helper()
	ctx := context.Background()
	var b bytes.Buffer
	namespaces, err := ts.cat.ListNamespaces(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(namespaces, func(i, j int) bool { return identKey(namespaces[i]) < identKey(namespaces[j]) })
	for _, ns := range namespaces {
		props, err := ts.cat.LoadNamespaceProperties(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range props {
				if !yield(k) {
					return
				}
			}
		})
		fmt.Fprintf(&b, "namespace %q", []string(ns))
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%s", k, props[k])
		}
		b.WriteString("\n")
		for ident, err := range ts.cat.ListTables(ctx, ns) {
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := ts.cat.LoadTable(ctx, ident)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "  table %q -> %s\n", []string(ident), tbl.MetadataLocation())
		}
	}
	root := strings.TrimPrefix(ts.warehouse, "file://")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fmt.Fprintf(&b, "file %s\n", strings.TrimPrefix(p, root))
		}
		return nil
	})
	return b.String()
}

// TestConfigEndpoint checks /v1/config: storage settings engines need, no
// secrets, the prefix, and endpoints that match what is served.
func TestConfigEndpoint(t *testing.T) {
	wh, ioProps := "s3://bucket/lake", map[string]string{
		"s3.endpoint": "http://127.0.0.1:9", "s3.region": "eu-west-1",
		"s3.access-key-id": "AKID", "s3.secret-access-key": "SECRET",
	}
	ts := newTestServer(t, withWarehouse(wh, ioProps))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/config?warehouse=anything", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), "SECRET") || strings.Contains(string(raw), "AKID") {
		t.Fatalf("config leaks storage credentials: %s", raw)
	}
	var cfg catalogConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"s3.endpoint": "http://127.0.0.1:9", "s3.path-style-access": "true", "s3.force-virtual-addressing": "false",
		"client.region": "eu-west-1", "s3.region": "eu-west-1",
	}
	for k, v := range want {
		if cfg.Defaults[k] != v {
			t.Errorf("defaults[%s] = %q, want %q", k, cfg.Defaults[k], v)
		}
	}
	if cfg.Overrides["prefix"] != Prefix {
		t.Errorf("overrides[prefix] = %q, want %q", cfg.Overrides["prefix"], Prefix)
	}
	for _, e := range cfg.Endpoints {
		if strings.Contains(e, "/views") || strings.Contains(e, "/credentials") || strings.Contains(e, "/plan") {
			t.Errorf("endpoint %q is advertised but not served", e)
		}
	}
	for _, e := range []string{"POST /v1/{prefix}/transactions/commit", "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
		"POST /v1/{prefix}/namespaces/{namespace}/register", "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics"} {
		if !slices.Contains(cfg.Endpoints, e) {
			t.Errorf("endpoint %q is served but not advertised", e)
		}
	}
}
