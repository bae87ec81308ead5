package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/memory"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func TestFaultsAcceptanceWithZeroRates(t *testing.T) {
	f := objstore.NewFaults(1)
	for _, op := range objstore.Ops {
		f.Set(op, objstore.FaultRule{ErrorRate: 0, Latency: time.Microsecond})
	}
	objstoretest.AcceptanceTest(t, objstore.WrapWithFaults(memory.New(), f))
	for _, op := range objstore.Ops {
		if n := f.Injected(op); n != 0 {
			t.Errorf("Injected(%s) = %d with a zero rate", op, n)
		}
	}
}

// uploadMany uploads n objects through a bucket failing rate of uploads and
// returns the indexes of the failed ones, checking that each failed upload
// stored nothing and each successful one stored its object.
func uploadMany(t *testing.T, seed uint64, rate float64, n int) []int {
	t.Helper()
	ctx := t.Context()
	inner := memory.New()
	f := objstore.NewFaults(seed)
	f.SetErrorRate(objstore.OpUpload, rate)
	b := objstore.WrapWithFaults(inner, f)
	var failed []int
	for i := range n {
		name := fmt.Sprintf("obj-%04d", i)
		err := objstore.UploadBytes(ctx, b, name, []byte(name))
		_, attrErr := inner.Attributes(ctx, name)
		switch {
		case err == nil:
			if attrErr != nil {
				t.Fatalf("upload %d succeeded but the object is missing: %v", i, attrErr)
			}
		case errors.Is(err, objstore.ErrInjected):
			failed = append(failed, i)
			if !objstore.IsNotFound(attrErr) {
				t.Fatalf("upload %d failed by injection but the object was stored (%v)", i, attrErr)
			}
		default:
			t.Fatalf("upload %d: unexpected error %v", i, err)
		}
	}
	if got := f.Injected(objstore.OpUpload); got != len(failed) {
		t.Fatalf("Injected(upload) = %d, want %d", got, len(failed))
	}
	return failed
}

func TestFaultsUploadErrorRate(t *testing.T) {
	const n, rate = 1000, 0.2
	failed := uploadMany(t, 42, rate, n)
	// Binomial(1000, 0.2): mean 200, standard deviation ~12.6; the seed is
	// fixed, so the bound only guards against a broken draw.
	if len(failed) < 150 || len(failed) > 250 {
		t.Fatalf("%d of %d uploads failed at rate %.1f, want about %d", len(failed), n, rate, int(n*rate))
	}
	if again := uploadMany(t, 42, rate, n); !slices.Equal(again, failed) {
		t.Fatal("the same seed gave a different failure sequence")
	}
	if other := uploadMany(t, 43, rate, n); slices.Equal(other, failed) {
		t.Fatal("a different seed gave the same failure sequence")
	}
}

func TestFaultsErrorRateExtremes(t *testing.T) {
	if failed := uploadMany(t, 1, 0, 200); len(failed) != 0 {
		t.Fatalf("rate 0: %d failures", len(failed))
	}
	if failed := uploadMany(t, 1, 1, 200); len(failed) != 200 {
		t.Fatalf("rate 1: %d failures, want 200", len(failed))
	}
}

func TestFaultsApplyThenFail(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	f := objstore.NewFaults(1)
	b := objstore.WrapWithFaults(inner, f)
	f.Set(objstore.OpUpload, objstore.FaultRule{ErrorRate: 1, ApplyThenFail: true})
	if err := objstore.UploadBytes(ctx, b, "lost-response", []byte("stored")); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("Upload = %v, want ErrInjected", err)
	}
	got, err := objstore.ReadAll(ctx, inner, "lost-response")
	if err != nil || string(got) != "stored" {
		t.Fatalf("object after a lost response = %q, %v; want it stored", got, err)
	}
	f.Set(objstore.OpDelete, objstore.FaultRule{ErrorRate: 1, ApplyThenFail: true})
	if err := b.Delete(ctx, "lost-response"); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("Delete = %v, want ErrInjected", err)
	}
	if _, err := inner.Attributes(ctx, "lost-response"); !objstore.IsNotFound(err) {
		t.Fatalf("object after an applied Delete: %v, want not found", err)
	}
	// Without ApplyThenFail, a failed Delete leaves the object alone.
	if err := objstore.UploadBytes(ctx, inner, "kept", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.Set(objstore.OpDelete, objstore.FaultRule{ErrorRate: 1})
	if err := b.Delete(ctx, "kept"); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("Delete = %v, want ErrInjected", err)
	}
	if _, err := inner.Attributes(ctx, "kept"); err != nil {
		t.Fatalf("a failed Delete removed the object: %v", err)
	}
}

func TestFaultsPerOperation(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	if err := objstore.UploadBytes(ctx, inner, "obj", []byte("data")); err != nil {
		t.Fatal(err)
	}
	calls := map[objstore.Op]func(b objstore.Bucket) error{
		objstore.OpUpload: func(b objstore.Bucket) error { return objstore.UploadBytes(ctx, b, "obj", []byte("data")) },
		objstore.OpGet: func(b objstore.Bucket) error {
			rc, err := b.Get(ctx, "obj")
			if err == nil {
				_ = rc.Close()
			}
			return err
		},
		objstore.OpGetRange: func(b objstore.Bucket) error {
			rc, err := b.GetRange(ctx, "obj", 1, 2)
			if err == nil {
				_ = rc.Close()
			}
			return err
		},
		objstore.OpAttributes: func(b objstore.Bucket) error { _, err := b.Attributes(ctx, "obj"); return err },
		objstore.OpDelete:     func(b objstore.Bucket) error { return b.Delete(ctx, "other") },
		objstore.OpIter:       func(b objstore.Bucket) error { return b.Iter(ctx, "", func(string) error { return nil }) },
	}
	for _, failing := range objstore.Ops {
		t.Run(string(failing), func(t *testing.T) {
			f := objstore.NewFaults(1)
			f.SetErrorRate(failing, 1)
			b := objstore.WrapWithFaults(inner, f)
			for _, op := range objstore.Ops {
				err := calls[op](b)
				if op == failing && !errors.Is(err, objstore.ErrInjected) {
					t.Errorf("%s = %v, want ErrInjected", op, err)
				}
				if op != failing && err != nil {
					t.Errorf("%s = %v, want success", op, err)
				}
			}
		})
	}
}

func TestFaultsAdjustAtRuntime(t *testing.T) {
	ctx := t.Context()
	f := objstore.NewFaults(1)
	b := objstore.WrapWithFaults(memory.New(), f)
	f.SetErrorRate(objstore.OpAttributes, 1)
	if _, err := b.Attributes(ctx, "x"); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("Attributes = %v, want ErrInjected", err)
	}
	f.Clear()
	if _, err := b.Attributes(ctx, "x"); !objstore.IsNotFound(err) {
		t.Fatalf("after Clear, Attributes = %v, want the real not found", err)
	}
	if got := f.Rule(objstore.OpAttributes); got != (objstore.FaultRule{}) {
		t.Fatalf("Rule after Clear = %+v", got)
	}
	if f.Injected(objstore.OpAttributes) != 1 {
		t.Fatalf("Injected = %d, want 1", f.Injected(objstore.OpAttributes))
	}
}

func TestFaultsLatency(t *testing.T) {
	f := objstore.NewFaults(1)
	b := objstore.WrapWithFaults(memory.New(), f)
	const latency = 50 * time.Millisecond
	f.SetLatency(objstore.OpAttributes, latency)
	start := time.Now()
	_, err := b.Attributes(t.Context(), "x")
	if !objstore.IsNotFound(err) {
		t.Fatalf("Attributes = %v, want not found", err)
	}
	if elapsed := time.Since(start); elapsed < latency {
		t.Fatalf("Attributes returned after %v, want at least %v", elapsed, latency)
	}
	// Other operations are not slowed.
	start = time.Now()
	if err := b.Delete(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed >= latency {
		t.Fatalf("Delete took %v with no latency rule", elapsed)
	}
}

func TestFaultsLatencyHonoursCancellation(t *testing.T) {
	inner := memory.New()
	f := objstore.NewFaults(1)
	f.SetLatency(objstore.OpUpload, time.Hour)
	b := objstore.WrapWithFaults(inner, f)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- objstore.UploadBytes(ctx, b, "slow", []byte("x")) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Upload = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Upload ignored its context during injected latency")
	}
	if _, err := inner.Attributes(t.Context(), "slow"); !objstore.IsNotFound(err) {
		t.Fatalf("a canceled Upload stored the object: %v", err)
	}
}

// TestFaultsConcurrentUse adjusts rules while operations run; -race checks it.
func TestFaultsConcurrentUse(t *testing.T) {
	ctx := t.Context()
	f := objstore.NewFaults(9)
	b := objstore.WrapWithFaults(memory.New(), f)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				name := fmt.Sprintf("w%d/%d", w, i)
				err := b.Upload(ctx, name, bytes.NewReader([]byte("x")), 1)
				if err != nil && !errors.Is(err, objstore.ErrInjected) {
					t.Errorf("Upload: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			f.SetErrorRate(objstore.OpUpload, float64(i%2)*0.5)
			f.SetLatency(objstore.OpUpload, time.Duration(i%3)*time.Microsecond)
		}
	})
	wg.Wait()
}
