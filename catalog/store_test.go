package catalog

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/iceberg-go/table"
)

// TestSwapPointersAllOrNothing drives the database half of a commit
// directly: when one table's pointer moved since validation, the pointers of
// the other tables in the same commit must stay where they were.
func TestSwapPointersAllOrNothing(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var opts []serverOption
			if backend == "postgres" {
				opts = append(opts, withPostgres(t))
			}
			ts := newTestServer(t, opts...)
			ctx := context.Background()
			cat := ts.restClient(t, nil)
			mustCreateNamespace(t, cat, "ns")
			idents := []table.Identifier{{"ns", "a"}, {"ns", "b"}}
			locs := make([]string, len(idents))
			for i, ident := range idents {
				tbl, err := cat.CreateTable(ctx, ident, testSchema)
				if err != nil {
					t.Fatal(err)
				}
				locs[i] = tbl.MetadataLocation()
			}

			// b's pointer is not where the commit believes it is.
			_, err := ts.store.swapPointers(ctx, []pointerSwap{
				{ident: idents[0], prevLocation: locs[0], newLocation: locs[0] + ".next"},
				{ident: idents[1], prevLocation: locs[1] + ".stale", newLocation: locs[1] + ".next"},
			})
			if !errors.Is(err, ErrCommitConflict) {
				t.Fatalf("swap with a stale pointer: %v, want ErrCommitConflict", err)
			}
			for i, ident := range idents {
				st, err := ts.loadTableState(ctx, ident)
				if err != nil {
					t.Fatal(err)
				}
				if st.location != locs[i] {
					t.Errorf("%v points at %s after a failed swap, want %s", ident, st.location, locs[i])
				}
			}

			// A create that collides with an existing table fails the same way
			// and leaves the other table alone.
			_, err = ts.store.swapPointers(ctx, []pointerSwap{
				{ident: idents[0], prevLocation: locs[0], newLocation: locs[0] + ".next"},
				{ident: idents[1], prevLocation: "", newLocation: locs[1] + ".new"},
			})
			if !errors.Is(err, ErrCommitConflict) {
				t.Fatalf("swap creating an existing table: %v, want ErrCommitConflict", err)
			}
			if st, err := ts.loadTableState(ctx, idents[0]); err != nil || st.location != locs[0] {
				t.Errorf("%v after a failed create: %v %v", idents[0], st.location, err)
			}

			// And a consistent swap moves both.
			if _, err := ts.store.swapPointers(ctx, []pointerSwap{
				{ident: idents[0], prevLocation: locs[0], newLocation: locs[1]},
				{ident: idents[1], prevLocation: locs[1], newLocation: locs[0]},
			}); err != nil {
				t.Fatal(err)
			}
			for i, ident := range idents {
				st, err := ts.loadTableState(ctx, ident)
				if err != nil {
					t.Fatal(err)
				}
				if want := locs[1-i]; st.location != want {
					t.Errorf("%v points at %s, want %s", ident, st.location, want)
				}
			}
		})
	}
}
