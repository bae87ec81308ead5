package metastoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/metastore"
)

// Run is the conformance suite of metastore.Store. open must return a Store
// whose key space is empty (a fresh etcd, or a Prefix no one else uses),
// closed when the test ends; it is called once per subtest, and the suite
// opens further Stores on the same etcd through Store.Endpoints.
//
// The suite stays within etcd's stock limits (at most 128 operations per
// transaction, small values), so it also runs against an untuned external
// cluster.
func Run(t *testing.T, open func(t *testing.T) *metastore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *metastore.Store)
	}{
		{"GetPut", testGetPut},
		{"Create", testCreate},
		{"CAS", testCAS},
		{"Txn", testTxn},
		{"ListPaging", testListPaging},
		{"DeletePrefix", testDeletePrefix},
		{"NextIDConcurrent", testNextIDConcurrent},
		{"UpdateContention", testUpdateContention},
		{"UpdateAbort", testUpdateAbort},
		{"LeaseRevoke", testLeaseRevoke},
		{"LeaseKeepAlive", testLeaseKeepAlive},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseLost", testLeaseLost},
		{"Watch", testWatch},
		{"WatchCompaction", testWatchCompaction},
		{"PrefixIsolation", testPrefixIsolation},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			tt.fn(t, s)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openPeer opens another Store on the same etcd as s, with the given prefix.
func openPeer(t *testing.T, s *metastore.Store, prefix string) *metastore.Store {
	t.Helper()
	p, err := metastore.Open(testCtx(t), metastore.Config{Endpoints: s.Endpoints(), Prefix: prefix}, Logger(t))
	if err != nil {
		t.Fatalf("open peer store on %v with prefix %q: %v", s.Endpoints(), prefix, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func mustPut(t *testing.T, s *metastore.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(testCtx(t), key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func mustGet(t *testing.T, s *metastore.Store, key string) metastore.KV {
	t.Helper()
	kv, err := s.Get(testCtx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func wantNotFound(t *testing.T, s *metastore.Store, key string) {
	t.Helper()
	if kv, err := s.Get(testCtx(t), key); !errors.Is(err, metastore.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

func wantValue(t *testing.T, s *metastore.Store, key, value string) metastore.KV {
	t.Helper()
	kv := mustGet(t, s, key)
	if string(kv.Value) != value {
		t.Fatalf("Get(%q) value = %q, want %q", key, kv.Value, value)
	}
	return kv
}

// wantConflict checks err is a conflict on exactly keys.
func wantConflict(t *testing.T, err error, keys ...string) {
	t.Helper()
	if !errors.Is(err, metastore.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	var ce *metastore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want a *ConflictError", err, err)
	}
	if !slices.Equal(ce.Keys, keys) {
		t.Fatalf("conflict keys = %q, want %q (err: %v)", ce.Keys, keys, err)
	}
}

func testGetPut(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	wantNotFound(t, s, "gp/a")

	rev1 := mustPut(t, s, "gp/a", "v1")
	if rev1 <= 0 {
		t.Fatalf("Put revision = %d, want > 0", rev1)
	}
	kv := wantValue(t, s, "gp/a", "v1")
	if kv.Key != "gp/a" || kv.ModRevision != rev1 || kv.CreateRevision != rev1 || kv.Version != 1 {
		t.Fatalf("after first put: %+v, want key gp/a, mod=create=%d, version 1", kv, rev1)
	}

	rev2 := mustPut(t, s, "gp/a", "v2")
	if rev2 <= rev1 {
		t.Fatalf("second Put revision %d not after %d", rev2, rev1)
	}
	kv = wantValue(t, s, "gp/a", "v2")
	if kv.ModRevision != rev2 || kv.CreateRevision != rev1 || kv.Version != 2 {
		t.Fatalf("after second put: %+v, want mod %d, create %d, version 2", kv, rev2, rev1)
	}

	// Binary values, empty values and unusual keys survive unchanged.
	values := map[string][]byte{
		"gp/binary":        {0, 1, 2, 0xff, 0, 0xfe},
		"gp/empty":         {},
		"gp/ünïcode/ключ":  []byte("x"),
		"gp/with space/\t": []byte("tab"),
	}
	for key, value := range values {
		if _, err := s.Put(ctx, key, value); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	for key, value := range values {
		if kv := mustGet(t, s, key); !bytes.Equal(kv.Value, value) || kv.Key != key {
			t.Fatalf("Get(%q) = %q %v, want %v", key, kv.Key, kv.Value, value)
		}
	}

	if err := s.Delete(ctx, "gp/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, "gp/a")
	if err := s.Delete(ctx, "gp/a"); err != nil {
		t.Fatalf("Delete of a missing key: %v, want nil", err)
	}
}

func testCreate(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	rev, err := s.Create(ctx, "cr/k", []byte("first"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if kv := wantValue(t, s, "cr/k", "first"); kv.CreateRevision != rev {
		t.Fatalf("CreateRevision %d, want %d", kv.CreateRevision, rev)
	}
	_, err = s.Create(ctx, "cr/k", []byte("second"))
	wantConflict(t, err, "cr/k")
	wantValue(t, s, "cr/k", "first")

	if err := s.Delete(ctx, "cr/k"); err != nil {
		t.Fatal(err)
	}
	rev2, err := s.Create(ctx, "cr/k", []byte("again"))
	if err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if kv := wantValue(t, s, "cr/k", "again"); kv.CreateRevision != rev2 || kv.Version != 1 {
		t.Fatalf("re-created key %+v, want create revision %d, version 1", kv, rev2)
	}
}

func testCAS(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	const key = "cas/epoch"

	// Each step runs against the state the previous steps left.
	var last int64 // ModRevision of key, 0 while missing
	steps := []struct {
		name   string
		expect func() int64
		value  string
		ok     bool
	}{
		{"create with 0", func() int64 { return 0 }, "1", true},
		{"0 when it exists", func() int64 { return 0 }, "x", false},
		{"current revision", func() int64 { return last }, "2", true},
		{"stale revision", func() int64 { return last - 1 }, "x", false},
		{"future revision", func() int64 { return last + 1000 }, "x", false},
		{"current again", func() int64 { return last }, "3", true},
	}
	want := ""
	for _, st := range steps {
		rev, err := s.CAS(ctx, key, st.expect(), []byte(st.value))
		if st.ok {
			if err != nil {
				t.Fatalf("%s: CAS: %v", st.name, err)
			}
			if rev <= last {
				t.Fatalf("%s: CAS revision %d not after %d", st.name, rev, last)
			}
			last, want = rev, st.value
		} else {
			wantConflict(t, err, key)
		}
		if kv := wantValue(t, s, key, want); kv.ModRevision != last {
			t.Fatalf("%s: ModRevision %d, want %d", st.name, kv.ModRevision, last)
		}
	}

	// A deleted key does not match its old revision, only 0.
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, err := s.CAS(ctx, key, last, []byte("x"))
	wantConflict(t, err, key)
	wantNotFound(t, s, key)
	if _, err := s.CAS(ctx, key, 0, []byte("reborn")); err != nil {
		t.Fatalf("CAS(0) after delete: %v", err)
	}
	wantValue(t, s, key, "reborn")
}

func testTxn(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	epochRev := mustPut(t, s, "txn/epoch", "7")
	mustPut(t, s, "txn/old", "gone soon")

	rev, err := s.Txn().
		IfModRevision("txn/epoch", epochRev).
		IfValue("txn/epoch", []byte("7")).
		IfModRevision("txn/new", 0).
		Put("txn/new", []byte("n")).
		Put("txn/other", []byte("o")).
		Delete("txn/old").
		Commit(ctx)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for _, key := range []string{"txn/new", "txn/other"} {
		if kv := mustGet(t, s, key); kv.ModRevision != rev {
			t.Fatalf("%s ModRevision %d, want the txn revision %d: writes must be atomic", key, kv.ModRevision, rev)
		}
	}
	wantNotFound(t, s, "txn/old")

	// The epoch moves on (a new leader); the stale leader's txn must not apply.
	mustPut(t, s, "txn/epoch", "8")
	tests := []struct {
		name     string
		txn      func() *metastore.Txn
		conflict []string
	}{
		{
			name: "stale mod revision",
			txn: func() *metastore.Txn {
				return s.Txn().IfModRevision("txn/epoch", epochRev).Put("txn/fenced", []byte("x"))
			},
			conflict: []string{"txn/epoch"},
		},
		{
			name: "stale value",
			txn: func() *metastore.Txn {
				return s.Txn().IfValue("txn/epoch", []byte("7")).Put("txn/fenced", []byte("x"))
			},
			conflict: []string{"txn/epoch"},
		},
		{
			name: "value of a missing key",
			txn: func() *metastore.Txn {
				return s.Txn().IfValue("txn/missing", []byte("")).Put("txn/fenced", []byte("x"))
			},
			conflict: []string{"txn/missing"},
		},
		{
			name: "must not exist",
			txn: func() *metastore.Txn {
				return s.Txn().IfModRevision("txn/new", 0).Put("txn/fenced", []byte("x"))
			},
			conflict: []string{"txn/new"},
		},
		{
			name: "only the failing conditions are reported",
			txn: func() *metastore.Txn {
				return s.Txn().
					IfValue("txn/epoch", []byte("8")).
					IfModRevision("txn/new", 0).
					IfValue("txn/other", []byte("o")).
					IfModRevision("txn/absent", 0).
					IfValue("txn/epoch", []byte("7")).
					Put("txn/fenced", []byte("x")).
					Delete("txn/other")
			},
			conflict: []string{"txn/new", "txn/epoch"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.txn().Commit(ctx)
			wantConflict(t, err, tt.conflict...)
			wantNotFound(t, s, "txn/fenced")
			wantValue(t, s, "txn/other", "o")
		})
	}

	t.Run("nil lease", func(t *testing.T) {
		_, err := s.Txn().PutWithLease("txn/leased", []byte("x"), nil).Commit(ctx)
		if err == nil || errors.Is(err, metastore.ErrConflict) {
			t.Fatalf("Commit with a nil lease: %v, want a non-conflict error", err)
		}
		wantNotFound(t, s, "txn/leased")
	})

	t.Run("empty", func(t *testing.T) {
		rev, err := s.Txn().Commit(ctx)
		if err != nil || rev <= 0 {
			t.Fatalf("empty Commit = %d, %v; want the current revision", rev, err)
		}
	})

	t.Run("100 ops", func(t *testing.T) {
		txn := s.Txn()
		for i := range 100 {
			txn.IfModRevision(fmt.Sprintf("txn/many/%03d", i), 0).Put(fmt.Sprintf("txn/many/%03d", i), []byte{byte(i)})
		}
		rev, err := txn.Commit(ctx)
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		kvs, err := s.List(ctx, "txn/many/")
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != 100 {
			t.Fatalf("listed %d keys, want 100", len(kvs))
		}
		for i, kv := range kvs {
			if kv.ModRevision != rev || !bytes.Equal(kv.Value, []byte{byte(i)}) {
				t.Fatalf("key %s: %+v, want revision %d value %d", kv.Key, kv, rev, i)
			}
		}
	})
}

func testListPaging(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	const n = 2600
	// Unpadded numbers so that key order differs from insertion and numeric order.
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "list/" + strconv.Itoa(i)
	}
	shuffled := slices.Clone(keys)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var lastRev int64
	for chunk := range slices.Chunk(shuffled, 100) {
		txn := s.Txn()
		for _, k := range chunk {
			txn.Put(k, []byte("v:"+k))
		}
		rev, err := txn.Commit(ctx)
		if err != nil {
			t.Fatalf("write keys: %v", err)
		}
		lastRev = rev
	}
	// Neighbours just outside the prefix on both sides.
	for _, k := range []string{"list", "lis", "list0", "lisu", "list.", "a"} {
		lastRev = mustPut(t, s, k, "outside")
	}
	slices.Sort(keys)

	check := func(t *testing.T, got []metastore.KV, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %d keys, want %d", len(got), len(want))
		}
		for i, kv := range got {
			if kv.Key != want[i] || string(kv.Value) != "v:"+want[i] {
				t.Fatalf("entry %d = %q=%q, want %q", i, kv.Key, kv.Value, want[i])
			}
		}
	}

	t.Run("List", func(t *testing.T) {
		got, rev, err := s.ListRev(ctx, "list/")
		if err != nil {
			t.Fatal(err)
		}
		check(t, got, keys)
		if rev != lastRev {
			t.Fatalf("ListRev revision %d, want %d (the last write)", rev, lastRev)
		}
		got, err = s.List(ctx, "list/")
		if err != nil {
			t.Fatal(err)
		}
		check(t, got, keys)
	})

	t.Run("ListPage", func(t *testing.T) {
		var got []metastore.KV
		after := ""
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatal("ListPage does not terminate")
			}
			page, err := s.ListPage(ctx, "list/", after, 777)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 777 {
				t.Fatalf("page of %d keys, limit 777", len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Key
		}
		check(t, got, keys)
	})

	t.Run("ListPage bounds", func(t *testing.T) {
		tests := []struct {
			name       string
			startAfter string
			limit      int
			want       []string
		}{
			{"default limit", "", 0, keys[:1000]},
			{"start after a key before the prefix", "a", 3, keys[:3]},
			{"start after the first key", keys[0], 2, keys[1:3]},
			{"start after a non-existent key", keys[10] + "x", 1, []string{keys[11]}},
			{"start after the last key", keys[n-1], 5, nil},
			{"start after the prefix end", "list0", 5, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				page, err := s.ListPage(ctx, "list/", tt.startAfter, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				check(t, page, tt.want)
			})
		}
	})

	t.Run("missing prefix", func(t *testing.T) {
		got, err := s.List(ctx, "nothing/here/")
		if err != nil || len(got) != 0 {
			t.Fatalf("List of a missing prefix = %d keys, %v; want none", len(got), err)
		}
	})

	t.Run("whole namespace", func(t *testing.T) {
		got, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n+6 {
			t.Fatalf("List(\"\") = %d keys, want %d", len(got), n+6)
		}
		if !slices.IsSortedFunc(got, func(a, b metastore.KV) int { return strings.Compare(a.Key, b.Key) }) {
			t.Fatal("List(\"\") not sorted by key")
		}
	})
}

func testDeletePrefix(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	for first := 0; first < 300; first += 100 {
		txn := s.Txn()
		for i := first; i < first+100; i++ {
			txn.Put(fmt.Sprintf("del/a/%d", i), []byte("x"))
		}
		if _, err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"del/a", "del/b/1", "del/ab", "del/b/2"} {
		mustPut(t, s, k, "keep")
	}

	n, err := s.DeletePrefix(ctx, "del/a/")
	if err != nil || n != 300 {
		t.Fatalf("DeletePrefix = %d, %v; want 300", n, err)
	}
	rest, err := s.List(ctx, "del/")
	if err != nil {
		t.Fatal(err)
	}
	var restKeys []string
	for _, kv := range rest {
		restKeys = append(restKeys, kv.Key)
	}
	if want := []string{"del/a", "del/ab", "del/b/1", "del/b/2"}; !slices.Equal(restKeys, want) {
		t.Fatalf("left %q, want %q", restKeys, want)
	}
	if n, err := s.DeletePrefix(ctx, "del/a/"); err != nil || n != 0 {
		t.Fatalf("second DeletePrefix = %d, %v; want 0", n, err)
	}
}

func testNextIDConcurrent(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	const workers, perWorker = 8, 25
	ids := make([][]int64, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range perWorker {
				id, err := s.NextID(ctx, "ids/producer")
				if err != nil {
					errs <- err
					return
				}
				ids[w] = append(ids[w], id)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("NextID: %v", err)
	}
	var all []int64
	for w, seq := range ids {
		if !slices.IsSorted(seq) {
			t.Fatalf("worker %d got ids out of order: %v", w, seq)
		}
		all = append(all, seq...)
	}
	slices.Sort(all)
	for i, id := range all {
		if id != int64(i+1) {
			t.Fatalf("ids are not exactly 1..%d: position %d holds %d (duplicates or gaps)", workers*perWorker, i, id)
		}
	}
	if id, err := s.NextID(ctx, "ids/other"); err != nil || id != 1 {
		t.Fatalf("NextID of a new counter = %d, %v; want 1", id, err)
	}
	if id, err := s.NextID(ctx, "ids/producer"); err != nil || id != workers*perWorker+1 {
		t.Fatalf("NextID after the race = %d, %v; want %d", id, err, workers*perWorker+1)
	}
}

func testUpdateContention(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	const workers, perWorker = 8, 20
	const key = "upd/members"
	// Every worker appends its own entries to a comma-separated list: a lost
	// update would drop an entry.
	var creations atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				entry := fmt.Sprintf("w%d-%d", w, i)
				kv, err := s.Update(ctx, key, func(cur []byte, exists bool) ([]byte, error) {
					if !exists {
						return []byte(entry), nil
					}
					return []byte(string(cur) + "," + entry), nil
				})
				if err != nil {
					errs <- err
					return
				}
				if !strings.HasSuffix(string(kv.Value), entry) || kv.Key != key {
					errs <- fmt.Errorf("Update returned %q=%q, want a value ending in %q", kv.Key, kv.Value, entry)
					return
				}
				if kv.Version == 1 {
					creations.Add(1)
					if kv.CreateRevision != kv.ModRevision {
						errs <- fmt.Errorf("created key has create revision %d != mod revision %d", kv.CreateRevision, kv.ModRevision)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Update: %v", err)
	}
	kv := mustGet(t, s, key)
	entries := strings.Split(string(kv.Value), ",")
	if len(entries) != workers*perWorker {
		t.Fatalf("%d entries after %d updates: lost updates", len(entries), workers*perWorker)
	}
	if kv.Version != workers*perWorker {
		t.Fatalf("version %d, want %d", kv.Version, workers*perWorker)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e] {
			t.Fatalf("entry %q applied twice", e)
		}
		seen[e] = true
	}
	// Each worker's entries appear in its own order.
	for w := range workers {
		next := 0
		for _, e := range entries {
			if strings.HasPrefix(e, fmt.Sprintf("w%d-", w)) {
				if e != fmt.Sprintf("w%d-%d", w, next) {
					t.Fatalf("worker %d entries out of order at %q", w, e)
				}
				next++
			}
		}
	}
	if n := creations.Load(); n != 1 {
		t.Fatalf("key created %d times", n)
	}
}

func testUpdateAbort(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	rev := mustPut(t, s, "upd/abort", "keep")
	calls := 0
	kv, err := s.Update(ctx, "upd/abort", func(cur []byte, exists bool) ([]byte, error) {
		calls++
		if !exists || string(cur) != "keep" {
			t.Errorf("fn got %q, %v; want \"keep\", true", cur, exists)
		}
		return nil, metastore.ErrAbort
	})
	if !errors.Is(err, metastore.ErrAbort) {
		t.Fatalf("Update err = %v, want ErrAbort", err)
	}
	if calls != 1 || string(kv.Value) != "keep" || kv.ModRevision != rev {
		t.Fatalf("aborted Update: %d calls, kv %+v; want 1 call and the current value at revision %d", calls, kv, rev)
	}
	if got := wantValue(t, s, "upd/abort", "keep"); got.ModRevision != rev {
		t.Fatal("aborted Update wrote")
	}

	errCustom := errors.New("custom")
	_, err = s.Update(ctx, "upd/missing", func(cur []byte, exists bool) ([]byte, error) {
		if exists {
			t.Errorf("fn saw a missing key as existing")
		}
		return nil, errCustom
	})
	if !errors.Is(err, errCustom) {
		t.Fatalf("Update err = %v, want the fn's error", err)
	}
	wantNotFound(t, s, "upd/missing")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Update(cancelled, "upd/abort", func([]byte, bool) ([]byte, error) { return []byte("x"), nil }); err == nil {
		t.Fatal("Update with a cancelled context succeeded")
	}
	wantValue(t, s, "upd/abort", "keep")
}

func waitClosed(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("%s not closed within %s", what, within)
	}
}

func putLeased(t *testing.T, s *metastore.Store, key string, l *metastore.Lease) {
	t.Helper()
	if _, err := s.Txn().IfModRevision(key, 0).PutWithLease(key, []byte("alive"), l).Commit(testCtx(t)); err != nil {
		t.Fatalf("leased put of %q: %v", key, err)
	}
}

func waitGone(t *testing.T, s *metastore.Store, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := s.Get(testCtx(t), key)
		if errors.Is(err, metastore.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("leased key %q still present after %s", key, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testLeaseRevoke(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	if _, err := s.GrantLease(ctx, 0); err == nil {
		t.Fatal("GrantLease(0) succeeded")
	}
	l, err := s.GrantLease(ctx, 2*time.Second)
	if err != nil {
		t.Fatalf("GrantLease: %v", err)
	}
	if l.ID() == 0 || l.TTL() < 2*time.Second {
		t.Fatalf("lease id %x ttl %s, want a non-zero id and ttl >= 2s", l.ID(), l.TTL())
	}
	putLeased(t, s, "lease/broker-1", l)
	wantValue(t, s, "lease/broker-1", "alive")
	// A second registration under the same key is refused while the first lives.
	_, err = s.Txn().IfModRevision("lease/broker-1", 0).PutWithLease("lease/broker-1", []byte("other"), l).Commit(ctx)
	wantConflict(t, err, "lease/broker-1")

	if err := l.Revoke(ctx); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	select {
	case <-l.Done():
	default:
		t.Fatal("Done still open after Revoke returned")
	}
	wantNotFound(t, s, "lease/broker-1")
	if err := l.Revoke(ctx); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if _, err := s.Txn().PutWithLease("lease/late", []byte("x"), l).Commit(ctx); err == nil {
		t.Fatal("put with a revoked lease succeeded")
	}
}

func testLeaseKeepAlive(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	l, err := s.GrantLease(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	putLeased(t, s, "lease/kept", l)
	// Well past the TTL, the keep-alive must have held the lease.
	select {
	case <-l.Done():
		t.Fatal("lease lost while being kept alive")
	case <-time.After(2*l.TTL() + time.Second):
	}
	wantValue(t, s, "lease/kept", "alive")
	if err := l.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
}

// testLeaseExpiry: the holder dies (its Store closes without revoking); the
// lease expires on its own and etcd removes the keys.
func testLeaseExpiry(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	holder := openPeer(t, s, s.Prefix())
	l, err := holder.GrantLease(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	putLeased(t, holder, "lease/dying", l)
	rev := wantValue(t, s, "lease/dying", "alive").ModRevision

	events := s.Watch(ctx, "lease/", rev+1)
	if err := holder.Close(); err != nil {
		t.Fatalf("close holder: %v", err)
	}
	waitClosed(t, l.Done(), 5*time.Second, "Done after the holder's Store closed")
	waitGone(t, s, "lease/dying", l.TTL()+10*time.Second)

	select {
	case ev := <-events:
		if ev.Type != metastore.EventDelete || ev.Key != "lease/dying" {
			t.Fatalf("watch saw %v %q, want the expiry's delete of lease/dying", ev.Type, ev.Key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch saw no delete when the lease expired")
	}
}

// testLeaseLost: the lease disappears from under its holder (here revoked by
// another client, which is what the holder sees after an expiry too); Done
// must close so the holder gives up what the lease guarded.
func testLeaseLost(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	l, err := s.GrantLease(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	putLeased(t, s, "lease/lost", l)
	other := openPeer(t, s, s.Prefix())
	if _, err := other.Client().Revoke(ctx, clientv3.LeaseID(l.ID())); err != nil {
		t.Fatalf("revoke from another client: %v", err)
	}
	waitClosed(t, l.Done(), l.TTL()+5*time.Second, "Done after the lease was revoked elsewhere")
	wantNotFound(t, s, "lease/lost")
}

func nextEvent(t *testing.T, ch <-chan metastore.WatchEvent) metastore.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	panic("unreachable")
}

func wantEvent(t *testing.T, ch <-chan metastore.WatchEvent, typ metastore.EventType, key, value string, rev int64) {
	t.Helper()
	ev := nextEvent(t, ch)
	if ev.Type != typ || ev.Key != key || string(ev.Value) != value || (rev != 0 && ev.Revision != rev) {
		t.Fatalf("event %v %q=%q @%d, want %v %q=%q @%d", ev.Type, ev.Key, ev.Value, ev.Revision, typ, key, value, rev)
	}
}

func wantNoEvent(t *testing.T, ch <-chan metastore.WatchEvent) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %v %q", ev.Type, ev.Key)
	case <-time.After(300 * time.Millisecond):
	}
}

func waitChanClosed(t *testing.T, ch <-chan metastore.WatchEvent) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed within 10s")
		}
	}
}

func testWatch(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	rev1 := mustPut(t, s, "w/a", "1")

	wctx, cancel := context.WithCancel(ctx)
	fromRev := s.Watch(wctx, "w/", rev1)
	wantEvent(t, fromRev, metastore.EventPut, "w/a", "1", rev1)

	rev2 := mustPut(t, s, "w/b", "2")
	mustPut(t, s, "wx", "outside")
	mustPut(t, s, "w", "outside")
	if err := s.Delete(ctx, "w/a"); err != nil {
		t.Fatal(err)
	}
	txnRev, err := s.Txn().Put("w/c", []byte("3")).Delete("w/b").Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, fromRev, metastore.EventPut, "w/b", "2", rev2)
	delA := nextEvent(t, fromRev)
	if delA.Type != metastore.EventDelete || delA.Key != "w/a" || delA.Revision <= rev2 || delA.Revision >= txnRev {
		t.Fatalf("event %v %q @%d, want the delete of w/a between %d and %d", delA.Type, delA.Key, delA.Revision, rev2, txnRev)
	}
	wantEvent(t, fromRev, metastore.EventPut, "w/c", "3", txnRev)
	wantEvent(t, fromRev, metastore.EventDelete, "w/b", "", txnRev)
	wantNoEvent(t, fromRev)

	// fromRev 0: only what happens after Watch returns.
	fromNow := s.Watch(wctx, "w/", 0)
	rev := mustPut(t, s, "w/d", "4")
	wantEvent(t, fromNow, metastore.EventPut, "w/d", "4", rev)
	wantEvent(t, fromRev, metastore.EventPut, "w/d", "4", rev)

	cancel()
	waitChanClosed(t, fromRev)
	waitChanClosed(t, fromNow)
}

// testWatchCompaction: a watch that starts (or resumes) behind the compacted
// revision delivers an EventReset holding the current state, then continues.
func testWatchCompaction(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	mustPut(t, s, "wc/1", "one")
	start := mustPut(t, s, "wc/2", "two")
	if err := s.Delete(ctx, "wc/1"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "wc/3", "three")
	cur := mustPut(t, s, "other", "x")
	if _, err := s.Client().Compact(ctx, cur, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}

	events := s.Watch(ctx, "wc/", start)
	ev := nextEvent(t, events)
	if ev.Type != metastore.EventReset {
		t.Fatalf("first event %v %q, want a reset after compaction", ev.Type, ev.Key)
	}
	if ev.Revision < cur {
		t.Fatalf("reset snapshot at revision %d, want >= %d", ev.Revision, cur)
	}
	var got []string
	for _, kv := range ev.Snapshot {
		got = append(got, kv.Key+"="+string(kv.Value))
	}
	if want := []string{"wc/2=two", "wc/3=three"}; !slices.Equal(got, want) {
		t.Fatalf("reset snapshot %q, want %q", got, want)
	}
	rev := mustPut(t, s, "wc/4", "four")
	wantEvent(t, events, metastore.EventPut, "wc/4", "four", rev)
}

func testPrefixIsolation(t *testing.T, a *metastore.Store) {
	ctx := testCtx(t)
	// A sibling prefix: "/x/" and "/x-iso/" share the characters "/x" but
	// neither is inside the other.
	b := openPeer(t, a, strings.TrimSuffix(a.Prefix(), "/")+"-iso/")

	mustPut(t, a, "shared", "from a")
	mustPut(t, b, "shared", "from b")
	mustPut(t, b, "only-b", "b")
	wantValue(t, a, "shared", "from a")
	wantValue(t, b, "shared", "from b")
	wantNotFound(t, a, "only-b")

	for _, tc := range []struct {
		s    *metastore.Store
		want []string
	}{{a, []string{"shared"}}, {b, []string{"only-b", "shared"}}} {
		kvs, err := tc.s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, kv := range kvs {
			keys = append(keys, kv.Key)
		}
		if !slices.Equal(keys, tc.want) {
			t.Fatalf("store with prefix %q lists %q, want %q", tc.s.Prefix(), keys, tc.want)
		}
	}

	if id, err := a.NextID(ctx, "ctr"); err != nil || id != 1 {
		t.Fatalf("a.NextID = %d, %v", id, err)
	}
	if id, err := b.NextID(ctx, "ctr"); err != nil || id != 1 {
		t.Fatalf("b.NextID = %d, %v; counters must be per prefix", id, err)
	}

	events := a.Watch(ctx, "", 0)
	mustPut(t, b, "shared", "b again")
	rev := mustPut(t, a, "shared", "a again")
	wantEvent(t, events, metastore.EventPut, "shared", "a again", rev)

	n, err := b.DeletePrefix(ctx, "")
	if err != nil || n != 3 {
		t.Fatalf("b.DeletePrefix(\"\") = %d, %v; want 3", n, err)
	}
	wantValue(t, a, "shared", "a again")
	if kvs, err := a.List(ctx, ""); err != nil || len(kvs) != 2 {
		t.Fatalf("a lists %d keys, %v after b was emptied; want 2", len(kvs), err)
	}
}

func testClose(t *testing.T, s *metastore.Store) {
	ctx := testCtx(t)
	p := openPeer(t, s, s.Prefix())
	mustPut(t, p, "close/k", "v")
	events := p.Watch(ctx, "close/", 0)
	l, err := p.GrantLease(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitChanClosed(t, events)
	waitClosed(t, l.Done(), 5*time.Second, "lease Done after Close")

	if _, err := p.Get(ctx, "close/k"); !errors.Is(err, metastore.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := p.Put(ctx, "close/k", nil); !errors.Is(err, metastore.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := p.Txn().Put("close/k", nil).Commit(ctx); !errors.Is(err, metastore.ErrClosed) {
		t.Fatalf("Commit after Close: %v, want ErrClosed", err)
	}
	if _, err := p.GrantLease(ctx, time.Second); !errors.Is(err, metastore.ErrClosed) {
		t.Fatalf("GrantLease after Close: %v, want ErrClosed", err)
	}
	waitChanClosed(t, p.Watch(ctx, "close/", 0))
	// The other Store on the same etcd is unaffected.
	wantValue(t, s, "close/k", "v")
}
