package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

// backend opens a fresh, empty Store for one test.
type backend struct {
	name string
	open func(t *testing.T) Store
}

// backends returns the in-memory store and the real embedded etcd. The etcd
// is started once per top-level test; each open gets its own key prefix on
// it, so subtests are isolated as if each had its own cluster.
func backends(t *testing.T) []backend {
	var (
		once   sync.Once
		shared *metastore.Store
		n      atomic.Int64
	)
	return []backend{
		{name: "memory", open: func(*testing.T) Store { return newMemStore() }},
		{name: "etcd", open: func(sub *testing.T) Store {
			once.Do(func() { shared = metastoretest.OpenEmbedded(t) })
			return openPrefixed(sub, shared.Endpoints(), fmt.Sprintf("/floe-schema-test-%d/", n.Add(1)))
		}},
	}
}

func openPrefixed(t *testing.T, endpoints []string, prefix string) *metastore.Store {
	t.Helper()
	st, err := metastore.Open(context.Background(), metastore.Config{Endpoints: endpoints, Prefix: prefix}, metastoretest.Logger(t))
	if err != nil {
		t.Fatalf("open metastore %v%s: %v", endpoints, prefix, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close metastore: %v", err)
		}
	})
	return st
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// registryUnderTest is a Server on an httptest listener.
type registryUnderTest struct {
	t      *testing.T
	server *Server
	url    string
}

func startRegistry(t *testing.T, st Store, cfg Config) *registryUnderTest {
	t.Helper()
	srv, err := NewServer(st, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &registryUnderTest{t: t, server: srv, url: hs.URL}
}

// response is a decoded HTTP response.
type response struct {
	status      int
	contentType string
	raw         string
	body        any
}

func (r response) obj() map[string]any {
	m, _ := r.body.(map[string]any)
	return m
}

func (r response) num(key string) int {
	f, _ := r.obj()[key].(float64)
	return int(f)
}

func (r response) str(key string) string {
	s, _ := r.obj()[key].(string)
	return s
}

// ints decodes a JSON array of numbers.
func (r response) ints() []int {
	arr, _ := r.body.([]any)
	out := []int{}
	for _, v := range arr {
		f, _ := v.(float64)
		out = append(out, int(f))
	}
	return out
}

func (r response) strs() []string {
	arr, _ := r.body.([]any)
	out := []string{}
	for _, v := range arr {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// call sends a request with a JSON body (a string is sent verbatim).
func (ru *registryUnderTest) call(method, path string, body any) response {
	ru.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			ru.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, ru.url+path, rd)
	if err != nil {
		ru.t.Fatalf("request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentTypeV1)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ru.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		ru.t.Fatalf("read body: %v", err)
	}
	out := response{status: res.StatusCode, contentType: res.Header.Get("Content-Type"), raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body) // raw-schema routes may return non-JSON (Protobuf)
	return out
}

// expect checks a 200 response.
func (ru *registryUnderTest) expect(method, path string, body any) response {
	ru.t.Helper()
	res := ru.call(method, path, body)
	if res.status != http.StatusOK {
		ru.t.Fatalf("%s %s: HTTP %d: %s", method, path, res.status, res.raw)
	}
	return res
}

// expectError checks Confluent's error body: HTTP status and error_code.
func (ru *registryUnderTest) expectError(method, path string, body any, status, code int) response {
	ru.t.Helper()
	res := ru.call(method, path, body)
	if res.status != status || res.num("error_code") != code || res.str("message") == "" {
		ru.t.Fatalf("%s %s: got HTTP %d %s, want HTTP %d with error_code %d", method, path, res.status, res.raw, status, code)
	}
	return res
}

func (ru *registryUnderTest) register(subject string, req registerRequest) int {
	ru.t.Helper()
	res := ru.expect("POST", "/subjects/"+subject+"/versions", req)
	id := res.num("id")
	if id <= 0 {
		ru.t.Fatalf("register %s: no id in %s", subject, res.raw)
	}
	return id
}

func avroReq(schema string, refs ...Reference) registerRequest {
	return registerRequest{Schema: schema, References: refs}
}

func itoa(i int) string { return strconv.Itoa(i) }
