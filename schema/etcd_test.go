package schema

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

// TestConcurrentRegistration races registrations through two registry
// instances sharing one store: the same schema must end with one id and one
// version, and different schemas must get distinct versions.
func TestConcurrentRegistration(t *testing.T) {
	pairs := []struct {
		name string
		open func(t *testing.T) (Store, Store)
	}{
		{"memory", func(*testing.T) (Store, Store) { m := newMemStore(); return m, m }},
		{"etcd", func(t *testing.T) (Store, Store) {
			// Two clients of one etcd, as two floe processes would be.
			a := metastoretest.OpenEmbedded(t)
			return a, openPrefixed(t, a.Endpoints(), a.Prefix())
		}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			stA, stB := p.open(t)
			regs := []*registryUnderTest{startRegistry(t, stA, Config{}), startRegistry(t, stB, Config{})}
			const workers = 8

			race := func(f func(w int, r *registryUnderTest) int) []int {
				var wg sync.WaitGroup
				start := make(chan struct{})
				ids := make([]int, workers)
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						ids[w] = f(w, regs[w%2])
					}()
				}
				close(start)
				wg.Wait()
				return ids
			}
			// A fatal call in a goroutine is not allowed; report via the result.
			registerOrZero := func(r *registryUnderTest, subject string, req registerRequest) int {
				res := r.call("POST", "/subjects/"+subject+"/versions", req)
				if res.status != 200 {
					t.Errorf("register %s: HTTP %d %s", subject, res.status, res.raw)
					return 0
				}
				return res.num("id")
			}

			ids := race(func(_ int, r *registryUnderTest) int { return registerOrZero(r, "same", avroReq(userV1)) })
			if !allEqual(ids) || ids[0] == 0 {
				t.Errorf("one schema, one subject: ids %v", ids)
			}
			if got := regs[0].expect("GET", "/subjects/same/versions", nil).ints(); !slices.Equal(got, []int{1}) {
				t.Errorf("one schema raced into versions %v", got)
			}

			ids2 := race(func(w int, r *registryUnderTest) int {
				return registerOrZero(r, fmt.Sprintf("subject-%d", w), avroReq(userV2))
			})
			if !allEqual(ids2) || ids2[0] == 0 || ids2[0] == ids[0] {
				t.Errorf("one schema, many subjects: ids %v (first schema %d)", ids2, ids[0])
			}

			regs[0].expect("PUT", "/config/many", configUpdate{Compatibility: CompatNone})
			ids3 := race(func(w int, r *registryUnderTest) int {
				return registerOrZero(r, "many", avroReq(fmt.Sprintf(`{"type":"enum","name":"E%d","symbols":["A"]}`, w)))
			})
			if got := regs[1].expect("GET", "/subjects/many/versions", nil).ints(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
				t.Errorf("many schemas raced into versions %v", got)
			}
			seen := map[int]bool{}
			for _, id := range ids3 {
				if seen[id] || id == 0 {
					t.Errorf("many schemas: ids %v are not distinct", ids3)
					break
				}
				seen[id] = true
			}
			// Every id maps back to the schema registered with it.
			for w, id := range ids3 {
				res := regs[w%2].expect("GET", "/schemas/ids/"+itoa(id), nil)
				if want := fmt.Sprintf(`{"type":"enum","name":"E%d","symbols":["A"]}`, w); res.str("schema") != want {
					t.Errorf("id %d: schema %s, want %s", id, res.str("schema"), want)
				}
			}
		})
	}
}

func allEqual(ids []int) bool {
	for _, id := range ids {
		if id != ids[0] {
			return false
		}
	}
	return true
}

// TestPersistence closes the registry and its embedded etcd and opens them
// again on the same data directory: everything must still be there, and new
// ids must not reuse old ones.
func TestPersistence(t *testing.T) {
	cfg := metastoretest.EmbeddedConfig(t)
	cfg.UnsafeNoFsync = false
	open := func() *metastore.Store {
		st, err := metastore.Open(context.Background(), cfg, metastoretest.Logger(t))
		if err != nil {
			t.Fatalf("open metastore: %v", err)
		}
		return st
	}

	st := open()
	r := startRegistry(t, st, Config{DefaultCompatibility: "forward"})
	id1 := r.register("users-value", avroReq(userV1))
	id2 := r.register("users-value", avroReq(userV2))
	addrID := r.register("address", avroReq(addressSchema))
	custID := r.register("customer", avroReq(customerWithAddr, Reference{Name: "ex.Address", Subject: "address", Version: 1}))
	r.expect("PUT", "/config/users-value", configUpdate{Compatibility: CompatFull})
	r.expect("PUT", "/mode/address", modeBody{Mode: ModeReadOnly})
	r.expect("DELETE", "/subjects/users-value/versions/1", nil)
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	st = open()
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	r = startRegistry(t, st, Config{DefaultCompatibility: "forward"})
	if res := r.expect("GET", "/subjects/users-value/versions/2", nil); res.num("id") != id2 || res.str("schema") != userV2 {
		t.Errorf("v2 after reopen: %s", res.raw)
	}
	r.expectError("GET", "/subjects/users-value/versions/1", nil, 404, 40402)
	if res := r.expect("GET", "/subjects/users-value/versions/1?deleted=true", nil); res.num("id") != id1 {
		t.Errorf("soft-deleted v1 after reopen: %s", res.raw)
	}
	if res := r.expect("GET", "/schemas/ids/"+itoa(custID), nil); res.str("schema") != customerWithAddr || len(res.obj()["references"].([]any)) != 1 {
		t.Errorf("customer after reopen: %s", res.raw)
	}
	if res := r.expect("GET", "/config/users-value", nil); res.str("compatibilityLevel") != CompatFull {
		t.Errorf("config after reopen: %s", res.raw)
	}
	if res := r.expect("GET", "/config", nil); res.str("compatibilityLevel") != CompatForward {
		t.Errorf("default config: %s", res.raw)
	}
	if res := r.expect("GET", "/mode/address", nil); res.str("mode") != ModeReadOnly {
		t.Errorf("mode after reopen: %s", res.raw)
	}
	if got := r.expect("GET", "/subjects", nil).strs(); !slices.Equal(got, []string{"address", "customer", "users-value"}) {
		t.Errorf("subjects after reopen: %v", got)
	}
	if again := r.register("x", avroReq(addressSchema)); again != addrID {
		t.Errorf("id of a known schema after reopen: %d, want %d", again, addrID)
	}
	if fresh := r.register("x", avroReq(`{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string","default":""}]}`)); fresh <= custID {
		t.Errorf("new id %d after reopen reuses the id range (last was %d)", fresh, custID)
	}
}
