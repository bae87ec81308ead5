package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
)

var testSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.String})

// call sends a JSON request and decodes a JSON answer into out (if not nil).
func call(t *testing.T, method, u, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(buf))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, u, raw, err)
		}
	}
	return resp.StatusCode
}

func mustCreateNamespace(t *testing.T, cat icebergcatalog.Catalog, ns ...string) {
	t.Helper()
	if err := cat.CreateNamespace(context.Background(), ns, nil); err != nil {
		t.Fatalf("create namespace %v: %v", ns, err)
	}
}

func TestPrefixAndPlainRoutes(t *testing.T) {
	ts := newTestServer(t)
	mustCreateNamespace(t, ts.restClient(t, nil), "p")
	for _, base := range []string{ts.URL + "/v1", ts.URL + "/v1/" + Prefix} {
		var got struct {
			Namespaces [][]string `json:"namespaces"`
		}
		if st := call(t, "GET", base+"/namespaces", "", nil, &got); st != 200 {
			t.Fatalf("GET %s/namespaces: %d", base, st)
		}
		if !slices.EqualFunc(got.Namespaces, [][]string{{"p"}}, slices.Equal) {
			t.Errorf("GET %s/namespaces = %v", base, got.Namespaces)
		}
		if st := call(t, "HEAD", base+"/namespaces/p", "", nil, nil); st != 204 {
			t.Errorf("HEAD %s/namespaces/p: %d, want 204", base, st)
		}
		if st := call(t, "HEAD", base+"/namespaces/q", "", nil, nil); st != 404 {
			t.Errorf("HEAD %s/namespaces/q: %d, want 404", base, st)
		}
	}
}

func TestNamespaceListingAndPaging(t *testing.T) {
	ts := newTestServer(t)
	cat := ts.restClient(t, nil)
	for _, ns := range [][]string{{"a"}, {"a", "b"}, {"a", "b", "c"}, {"a", "d"}, {"e"}, {"f"}, {"g"}, {"h"}} {
		mustCreateNamespace(t, cat, ns...)
	}
	// x.y exists only through its table: x must still be listed.
	mustCreateNamespace(t, cat, "x", "y")

	list := func(parent string, pageSize int) ([][]string, int) {
		var all [][]string
		token, pages := "", 0
		for {
			q := url.Values{}
			if parent != "" {
				q.Set("parent", parent)
			}
			if pageSize > 0 {
				q.Set("pageSize", fmt.Sprint(pageSize))
			}
			if token != "" {
				q.Set("pageToken", token)
			}
			var got struct {
				Namespaces [][]string `json:"namespaces"`
				Next       string     `json:"next-page-token"`
			}
			if st := call(t, "GET", ts.URL+"/v1/namespaces?"+q.Encode(), "", nil, &got); st != 200 {
				t.Fatalf("list parent=%q: %d", parent, st)
			}
			pages++
			all = append(all, got.Namespaces...)
			if got.Next == "" {
				return all, pages
			}
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			token = got.Next
		}
	}
	top, pages := list("", 2)
	wantTop := [][]string{{"a"}, {"e"}, {"f"}, {"g"}, {"h"}, {"x"}}
	if !slices.EqualFunc(top, wantTop, slices.Equal) || pages != 3 {
		t.Errorf("top level in pages of 2 = %v in %d pages, want %v in 3", top, pages, wantTop)
	}
	if all, _ := list("", 0); !slices.EqualFunc(all, wantTop, slices.Equal) {
		t.Errorf("top level unpaged = %v", all)
	}
	if got, _ := list("a", 1); !slices.EqualFunc(got, [][]string{{"a", "b"}, {"a", "d"}}, slices.Equal) {
		t.Errorf("children of a = %v", got)
	}
	if got, _ := list("a\x1fb", 0); !slices.EqualFunc(got, [][]string{{"a", "b", "c"}}, slices.Equal) {
		t.Errorf("children of a.b = %v", got)
	}
	var em errorModel
	if st := call(t, "GET", ts.URL+"/v1/namespaces?parent=zzz", "", nil, &em); st != 404 || em.Error.Type != "NoSuchNamespaceException" {
		t.Errorf("list under a missing parent: %d %+v", st, em)
	}

	// The REST client pages too.
	ctx := cat.SetPageSize(context.Background(), 2)
	got, err := cat.ListNamespaces(ctx, table.Identifier{"a"})
	if err != nil || len(got) != 2 {
		t.Errorf("client ListNamespaces(a) with page size 2 = %v, %v", got, err)
	}

	// A namespace with children is not empty.
	if err := cat.DropNamespace(context.Background(), table.Identifier{"a", "b"}); !errors.Is(err, icebergcatalog.ErrNamespaceNotEmpty) {
		t.Errorf("drop a.b with child a.b.c: %v, want ErrNamespaceNotEmpty", err)
	}
}

func TestTablePaging(t *testing.T) {
	ts := newTestServer(t)
	cat := ts.restClient(t, nil)
	ctx := context.Background()
	mustCreateNamespace(t, cat, "ns")
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("t%d", i)
		want = append(want, name)
		if _, err := cat.CreateTable(ctx, table.Identifier{"ns", name}, testSchema); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for ident, err := range cat.ListTables(cat.SetPageSize(ctx, 3), table.Identifier{"ns"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ident[1])
	}
	if !slices.Equal(got, want) {
		t.Errorf("tables paged by 3 = %v, want %v", got, want)
	}
	var page struct {
		Identifiers []identifier `json:"identifiers"`
		Next        string       `json:"next-page-token"`
	}
	call(t, "GET", ts.URL+"/v1/namespaces/ns/tables?pageSize=3", "", nil, &page)
	if len(page.Identifiers) != 3 || page.Next == "" {
		t.Errorf("first page = %+v", page)
	}
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t, withAuth("engine", "s3cr3t"))
	token := func(form url.Values, basic bool) (int, map[string]any) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/oauth/tokens", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth("engine", "s3cr3t")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	st, out := token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"engine"}, "client_secret": {"wrong"}}, false)
	if st != 401 || out["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", st, out)
	}
	st, out = token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"engine"}, "client_secret": {"s3cr3t"}, "scope": {"catalog"}}, false)
	if st != 200 || out["token_type"] != "bearer" || out["access_token"] == "" {
		t.Fatalf("good credentials: %d %v", st, out)
	}
	good := out["access_token"].(string)
	if st, out = token(url.Values{"grant_type": {"client_credentials"}}, true); st != 200 {
		t.Errorf("basic auth credentials: %d %v", st, out)
	}
	if st, out = token(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {good}}, false); st != 200 {
		t.Errorf("token refresh by exchange: %d %v", st, out)
	}

	var em errorModel
	if st := call(t, "GET", ts.URL+"/v1/config", "", nil, &em); st != 401 || em.Error.Type != "NotAuthorizedException" {
		t.Errorf("no token: %d %+v", st, em)
	}
	if st := call(t, "GET", ts.URL+"/v1/namespaces", good+"x", nil, nil); st != 401 {
		t.Errorf("tampered token: %d", st)
	}
	other := newAuthenticator("engine", "another-secret").issue()
	if st := call(t, "GET", ts.URL+"/v1/floe/namespaces", other, nil, nil); st != 401 {
		t.Errorf("token signed with another secret: %d", st)
	}
	expired := newAuthenticator("engine", "s3cr3t")
	expired.now = func() time.Time { return time.Now().Add(-2 * tokenTTL) }
	if st := call(t, "GET", ts.URL+"/v1/namespaces", expired.issue(), nil, nil); st != 401 {
		t.Errorf("expired token: %d", st)
	}
	if st := call(t, "GET", ts.URL+"/v1/namespaces", good, nil, nil); st != 200 {
		t.Errorf("good token: %d", st)
	}

	// A REST client with wrong credentials cannot even start.
	_, err := rest.NewCatalog(context.Background(), "floe", ts.URL, rest.WithCredential("engine:nope"))
	if err == nil {
		t.Error("rest client with a wrong secret connected")
	}
}

func TestStagedCreate(t *testing.T) {
	ts := newTestServer(t)
	cat := ts.restClient(t, nil)
	ctx := context.Background()
	mustCreateNamespace(t, cat, "ns")

	// The raw first half: metadata without a location, and no table yet.
	var staged struct {
		MetadataLocation *string         `json:"metadata-location"`
		Metadata         json.RawMessage `json:"metadata"`
	}
	body := map[string]any{"name": "raw", "schema": testSchema, "stage-create": true}
	if st := call(t, "POST", ts.URL+"/v1/namespaces/ns/tables", "", body, &staged); st != 200 {
		t.Fatalf("staged create: %d", st)
	}
	if staged.MetadataLocation != nil || len(staged.Metadata) == 0 {
		t.Errorf("staged create answered metadata-location %v, metadata %d bytes", staged.MetadataLocation, len(staged.Metadata))
	}
	if ok, _ := cat.CheckTableExists(ctx, table.Identifier{"ns", "raw"}); ok {
		t.Error("a staged table exists before its commit")
	}

	// The whole flow through iceberg-go: staged create, then a commit that
	// asserts the table does not exist and carries the staged updates.
	ident := table.Identifier{"ns", "staged"}
	tbl, err := cat.CreateTable(ctx, ident, testSchema,
		icebergcatalog.WithStagedUpdates(table.NewSetPropertiesUpdate(iceberg.Properties{"stage": "done"})))
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Properties()["stage"] != "done" {
		t.Errorf("staged table properties = %v", tbl.Properties())
	}
	loaded, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Metadata().TableUUID() != tbl.Metadata().TableUUID() || !strings.HasPrefix(loaded.Location(), ts.warehouse+"/ns.db/staged") {
		t.Errorf("loaded staged table: uuid %v location %s", loaded.Metadata().TableUUID(), loaded.Location())
	}
	if !strings.HasSuffix(tbl.MetadataLocation(), ".metadata.json") || !strings.Contains(tbl.MetadataLocation(), "/metadata/00000-") {
		t.Errorf("first metadata file of a staged table = %s", tbl.MetadataLocation())
	}
}

func TestRenameRegisterDropPurge(t *testing.T) {
	ts := newTestServer(t)
	cat := ts.restClient(t, nil)
	ctx := context.Background()
	mustCreateNamespace(t, cat, "ns")
	mustCreateNamespace(t, cat, "other")
	tbl, err := cat.CreateTable(ctx, table.Identifier{"ns", "a"}, testSchema)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := cat.RenameTable(ctx, table.Identifier{"ns", "a"}, table.Identifier{"other", "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.LoadTable(ctx, table.Identifier{"ns", "a"}); !errors.Is(err, icebergcatalog.ErrNoSuchTable) {
		t.Errorf("old name after rename: %v", err)
	}
	if _, err := cat.RenameTable(ctx, table.Identifier{"other", "b"}, table.Identifier{"missing", "b"}); err == nil {
		t.Error("rename into a missing namespace succeeded")
	}

	// Drop without purge keeps the files, so the table can be registered
	// again from its metadata file.
	if err := cat.DropTable(ctx, table.Identifier{"other", "b"}); err != nil {
		t.Fatal(err)
	}
	reg, err := cat.RegisterTable(ctx, table.Identifier{"ns", "back"}, tbl.MetadataLocation())
	if err != nil {
		t.Fatal(err)
	}
	if reg.Metadata().TableUUID() != tbl.Metadata().TableUUID() {
		t.Errorf("registered table has uuid %v, want %v", reg.Metadata().TableUUID(), tbl.Metadata().TableUUID())
	}
	if _, err := cat.RegisterTable(ctx, table.Identifier{"ns", "back"}, tbl.MetadataLocation()); !errors.Is(err, icebergcatalog.ErrTableAlreadyExists) {
		t.Errorf("register over an existing table: %v", err)
	}
	// A registered table takes commits like any other.
	tx := reg.NewTransaction()
	if err := tx.SetProperties(iceberg.Properties{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	committed, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Purge deletes the table's files.
	metaFile := strings.TrimPrefix(committed.MetadataLocation(), "file://")
	if _, err := os.Stat(metaFile); err != nil {
		t.Fatal(err)
	}
	if err := cat.PurgeTable(ctx, table.Identifier{"ns", "back"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(metaFile); !os.IsNotExist(err) {
		t.Errorf("metadata file %s survived a purge: %v", metaFile, err)
	}
	if err := cat.DropTable(ctx, table.Identifier{"ns", "back"}); !errors.Is(err, icebergcatalog.ErrNoSuchTable) {
		t.Errorf("drop of a purged table: %v", err)
	}
}

// TestTransactionAtomic checks that a multi-table commit applies to every
// table or to none.
func TestTransactionAtomic(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var opts []serverOption
			if backend == "postgres" {
				opts = append(opts, withPostgres(t))
			}
			testTransactionAtomic(t, newTestServer(t, opts...))
		})
	}
}

func testTransactionAtomic(t *testing.T, ts *testServer) {
	cat := ts.restClient(t, nil)
	ctx := context.Background()
	mustCreateNamespace(t, cat, "ns")
	one, two := table.Identifier{"ns", "one"}, table.Identifier{"ns", "two"}
	t1, err := cat.CreateTable(ctx, one, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := cat.CreateTable(ctx, two, testSchema)
	if err != nil {
		t.Fatal(err)
	}

	change := func(ident table.Identifier, uuid string, kv string) map[string]any {
		return map[string]any{
			"identifier":   toIdentifier(ident),
			"requirements": []any{map[string]any{"type": "assert-table-uuid", "uuid": uuid}},
			"updates":      []any{map[string]any{"action": "set-properties", "updates": map[string]string{"k": kv}}},
		}
	}
	// The second table's requirement fails: nothing may change.
	body := map[string]any{"table-changes": []any{
		change(one, t1.Metadata().TableUUID().String(), "x"),
		change(two, "00000000-0000-0000-0000-000000000002", "x"),
	}}
	var em errorModel
	if st := call(t, "POST", ts.URL+"/v1/transactions/commit", "", body, &em); st != 409 || em.Error.Type != "CommitFailedException" {
		t.Fatalf("transaction with a failing requirement: %d %+v", st, em)
	}
	for _, ident := range []table.Identifier{one, two} {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tbl.Properties()["k"]; ok {
			t.Errorf("%v changed by a failed transaction", ident)
		}
	}

	// Through iceberg-go's multi-table transaction: both change.
	mtx, err := icebergcatalog.NewMultiTableTransaction(cat)
	if err != nil {
		t.Fatal(err)
	}
	for i, tbl := range []*table.Table{t1, t2} {
		tx := tbl.NewTransaction()
		if err := tx.SetProperties(iceberg.Properties{"k": fmt.Sprint("v", i)}); err != nil {
			t.Fatal(err)
		}
		if err := mtx.AddTransaction(tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := mtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i, ident := range []table.Identifier{one, two} {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatal(err)
		}
		if got := tbl.Properties()["k"]; got != fmt.Sprint("v", i) {
			t.Errorf("%v: k = %q after the transaction", ident, got)
		}
	}

	// Someone evolves two's schema; a transaction that evolves both schemas
	// from the state read before must lose as a whole: one's schema stays.
	fresh2, err := cat.LoadTable(ctx, two)
	if err != nil {
		t.Fatal(err)
	}
	tx := fresh2.NewTransaction()
	if err := tx.UpdateSchema(true, false).AddColumn([]string{"z"}, iceberg.PrimitiveTypes.Int32, "", false, nil).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	stale, err := icebergcatalog.NewMultiTableTransaction(cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []*table.Table{t1, t2} {
		tx := tbl.NewTransaction()
		if err := tx.UpdateSchema(true, false).AddColumn([]string{"stale"}, iceberg.PrimitiveTypes.Int32, "", false, nil).Commit(); err != nil {
			t.Fatal(err)
		}
		if err := stale.AddTransaction(tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := stale.Commit(ctx); !errors.Is(err, table.ErrCommitFailed) {
		t.Fatalf("stale transaction: %v, want a commit conflict", err)
	}
	for _, ident := range []table.Identifier{one, two} {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tbl.Schema().FindFieldByName("stale"); ok {
			t.Errorf("%v got the column of a failed transaction", ident)
		}
	}
}

func TestConcurrentCreateSameTable(t *testing.T) {
	ts := newTestServer(t)
	mustCreateNamespace(t, ts.restClient(t, nil), "ns")
	const racers = 8
	var wg sync.WaitGroup
	statuses := make(chan int, racers)
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- call(t, "POST", ts.URL+"/v1/namespaces/ns/tables", "",
				map[string]any{"name": "dup", "schema": testSchema}, nil)
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[200] != 1 || counts[409] != racers-1 {
		t.Errorf("statuses of %d concurrent creates: %v, want one 200 and the rest 409", racers, counts)
	}
}

// TestDottedNamespaceCommits exercises a namespace level holding a dot, which
// the SQL catalog stores under an encoded key that our own commit statements
// must address identically.
func TestDottedNamespaceCommits(t *testing.T) {
	ts := newTestServer(t)
	cat := ts.restClient(t, nil)
	ctx := context.Background()
	ident := table.Identifier{"team.a", "t"}
	mustCreateNamespace(t, cat, "team.a")
	tbl, err := cat.CreateTable(ctx, ident, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction()
	if err := tx.SetProperties(iceberg.Properties{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	loaded, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Properties()["k"] != "v" {
		t.Errorf("commit to %v did not stick: %v", ident, loaded.Properties())
	}
	var got []table.Identifier
	for id, err := range cat.ListTables(ctx, table.Identifier{"team.a"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if len(got) != 1 || !slices.Equal(got[0], ident) {
		t.Errorf("tables of [team.a] = %v", got)
	}
}

func TestNoOpCommitAndMetrics(t *testing.T) {
	ts := newTestServer(t)
	cat := ts.restClient(t, nil)
	ctx := context.Background()
	mustCreateNamespace(t, cat, "ns")
	tbl, err := cat.CreateTable(ctx, table.Identifier{"ns", "t"}, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		MetadataLocation string `json:"metadata-location"`
	}
	body := map[string]any{"requirements": []any{}, "updates": []any{}}
	if st := call(t, "POST", ts.URL+"/v1/namespaces/ns/tables/t", "", body, &res); st != 200 {
		t.Fatalf("empty commit: %d", st)
	}
	if res.MetadataLocation != tbl.MetadataLocation() {
		t.Errorf("empty commit moved metadata from %s to %s", tbl.MetadataLocation(), res.MetadataLocation)
	}
	report := map[string]any{"report-type": "scan-report", "table-name": "ns.t", "snapshot-id": 1}
	if st := call(t, "POST", ts.URL+"/v1/floe/namespaces/ns/tables/t/metrics", "", report, nil); st != 204 {
		t.Errorf("metrics report: %d, want 204", st)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	db := dir + "/c.db"
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no warehouse", Config{DBDSN: db}},
		{"warehouse without scheme", Config{DBDSN: db, Warehouse: "relative/path"}},
		{"s3 warehouse without bucket", Config{DBDSN: db, Warehouse: "s3:///lake"}},
		{"no dsn", Config{Warehouse: "file:///tmp/wh"}},
		{"in-memory sqlite", Config{DBDSN: ":memory:", Warehouse: "file:///tmp/wh"}},
		{"unknown driver", Config{DBDriver: "oracle", DBDSN: "x", Warehouse: "file:///tmp/wh"}},
		{"client id without secret", Config{DBDSN: db, Warehouse: "file:///tmp/wh", ClientID: "a"}},
		{"unreachable postgres", Config{DBDriver: "postgres", DBDSN: "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", Warehouse: "file:///tmp/wh"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv, err := New(ctx, tc.cfg, nil)
			if err == nil {
				_ = srv.Close()
				t.Fatalf("New(%+v) succeeded", tc.cfg)
			}
		})
	}
}
