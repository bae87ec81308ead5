package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrInjected is wrapped by every error WrapWithFaults makes up.
var ErrInjected = errors.New("objstore: injected fault")

// FaultRule is what Faults does to one operation.
type FaultRule struct {
	// ErrorRate is the probability, in [0, 1], that a call fails with
	// ErrInjected.
	ErrorRate float64
	// Latency is added before every call; a done context cuts it short.
	Latency time.Duration
	// ApplyThenFail, for Upload and Delete, performs the operation before
	// returning the injected error: the request succeeded but its response
	// was lost. Otherwise a failed call changes nothing.
	ApplyThenFail bool
}

// Faults is a goroutine-safe, runtime-adjustable set of fault rules, with a
// seeded random source so a test's failures are reproducible (for a given
// order of calls). The zero rule injects nothing.
type Faults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	rules    map[Op]FaultRule
	injected map[Op]int
}

// NewFaults returns Faults with no rules, drawing from a source seeded with seed.
func NewFaults(seed uint64) *Faults {
	return &Faults{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rules:    make(map[Op]FaultRule),
		injected: make(map[Op]int),
	}
}

// Set replaces the rule for op.
func (f *Faults) Set(op Op, rule FaultRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules[op] = rule
}

// Rule returns the rule for op.
func (f *Faults) Rule(op Op) FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rules[op]
}

// SetErrorRate changes only the error rate of op's rule.
func (f *Faults) SetErrorRate(op Op, p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[op]
	r.ErrorRate = p
	f.rules[op] = r
}

// SetLatency changes only the added latency of op's rule.
func (f *Faults) SetLatency(op Op, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[op]
	r.Latency = d
	f.rules[op] = r
}

// Clear removes every rule; the injected counts are kept.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.rules)
}

// Injected returns how many failures have been injected into op so far.
func (f *Faults) Injected(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected[op]
}

// decide draws the fate of one call.
func (f *Faults) decide(op Op) (rule FaultRule, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rule = f.rules[op]
	if rule.ErrorRate > 0 && f.rng.Float64() < rule.ErrorRate {
		f.injected[op]++
		fail = true
	}
	return rule, fail
}

type faultBucket struct {
	b Bucket
	f *Faults
}

// WrapWithFaults returns b with the faults f describes injected in front of
// every operation. f may be changed while the bucket is in use.
func WrapWithFaults(b Bucket, f *Faults) Bucket {
	return &faultBucket{b: b, f: f}
}

// before applies op's latency and reports whether the call must fail, and
// whether it must still be applied first.
func (w *faultBucket) before(ctx context.Context, op Op, name string) (injected error, apply bool, err error) {
	rule, fail := w.f.decide(op)
	if rule.Latency > 0 {
		timer := time.NewTimer(rule.Latency)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, false, ctx.Err()
		case <-timer.C:
		}
	}
	if !fail {
		return nil, true, nil
	}
	return fmt.Errorf("objstore: %s %q: %w", op, name, ErrInjected), rule.ApplyThenFail, nil
}

func (w *faultBucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	injected, apply, err := w.before(ctx, OpUpload, name)
	if err != nil {
		return err
	}
	if apply {
		if err := w.b.Upload(ctx, name, r, size); err != nil {
			return err
		}
	}
	return injected
}

func (w *faultBucket) Delete(ctx context.Context, name string) error {
	injected, apply, err := w.before(ctx, OpDelete, name)
	if err != nil {
		return err
	}
	if apply {
		if err := w.b.Delete(ctx, name); err != nil {
			return err
		}
	}
	return injected
}

// check is before for read-only operations, where ApplyThenFail means nothing.
func (w *faultBucket) check(ctx context.Context, op Op, name string) error {
	injected, _, err := w.before(ctx, op, name)
	if err != nil {
		return err
	}
	return injected
}

func (w *faultBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := w.check(ctx, OpGet, name); err != nil {
		return nil, err
	}
	return w.b.Get(ctx, name)
}

func (w *faultBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := w.check(ctx, OpGetRange, name); err != nil {
		return nil, err
	}
	return w.b.GetRange(ctx, name, off, length)
}

func (w *faultBucket) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	if err := w.check(ctx, OpAttributes, name); err != nil {
		return ObjectAttributes{}, err
	}
	return w.b.Attributes(ctx, name)
}

func (w *faultBucket) Iter(ctx context.Context, prefix string, f func(name string) error) error {
	if err := w.check(ctx, OpIter, prefix); err != nil {
		return err
	}
	return w.b.Iter(ctx, prefix, f)
}

func (w *faultBucket) Close() error { return w.b.Close() }
