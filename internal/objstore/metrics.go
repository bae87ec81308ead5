package objstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bucketMetrics are the collectors of one wrapped bucket.
type bucketMetrics struct {
	ops        *prometheus.CounterVec
	failures   *prometheus.CounterVec
	uploaded   prometheus.Counter
	downloaded prometheus.Counter
	duration   *prometheus.HistogramVec
}

type metricsBucket struct {
	b Bucket
	m *bucketMetrics
}

// WrapWithMetrics counts b's operations, failures and bytes, and times them,
// as floe_objstore_* metrics with a constant label bucket=name registered on
// reg (nil: not registered). Wrapping twice with the same reg and name shares
// the collectors instead of panicking.
//
// A "not found" answer and a canceled context are not failures: they say
// nothing about the health of the store. Get and GetRange are timed and
// their bytes counted until the returned reader is closed.
func WrapWithMetrics(b Bucket, reg prometheus.Registerer, name string) Bucket {
	m := &bucketMetrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_objstore_operations_total",
			Help: "Object store operations started, by operation.",
		}, []string{"operation"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_objstore_operation_failures_total",
			Help: "Object store operations that failed, by operation (not found and cancellation excluded).",
		}, []string{"operation"}),
		uploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_objstore_uploaded_bytes_total",
			Help: "Bytes of objects uploaded successfully.",
		}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_objstore_downloaded_bytes_total",
			Help: "Bytes read from objects by Get and GetRange.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "floe_objstore_operation_duration_seconds",
			Help: "Duration of object store operations, by operation; reads until the reader is closed.",
			// 1 ms to ~33 s: local disk at the bottom, slow S3 PUTs at the top.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"operation"}),
	}
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"bucket": name}, reg)
		m.ops = register(reg, m.ops)
		m.failures = register(reg, m.failures)
		m.uploaded = register(reg, m.uploaded)
		m.downloaded = register(reg, m.downloaded)
		m.duration = register(reg, m.duration)
	}
	// Every series exists from the start, so rate() works before the first error.
	for _, op := range Ops {
		m.ops.WithLabelValues(string(op))
		m.failures.WithLabelValues(string(op))
		m.duration.WithLabelValues(string(op))
	}
	return &metricsBucket{b: b, m: m}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Same name with other labels or help: a programming error.
		panic(err)
	}
	return c
}

// start counts the operation and returns the function that records its end.
func (m *bucketMetrics) start(op Op) func(err error) {
	m.ops.WithLabelValues(string(op)).Inc()
	begin := time.Now()
	return func(err error) {
		m.duration.WithLabelValues(string(op)).Observe(time.Since(begin).Seconds())
		if isFailure(err) {
			m.failures.WithLabelValues(string(op)).Inc()
		}
	}
}

func isFailure(err error) bool {
	return err != nil && !IsNotFound(err) && !errors.Is(err, context.Canceled)
}

func (w *metricsBucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	done := w.m.start(OpUpload)
	// Count through a wrapper only when the size is unknown: wrapping hides
	// io.Seeker, which the S3 backend uses to avoid buffering the body.
	var counter *countingReader
	if size < 0 {
		counter = &countingReader{r: r}
		r = counter
	}
	err := w.b.Upload(ctx, name, r, size)
	done(err)
	if err == nil {
		if counter != nil {
			size = counter.n
		}
		w.m.uploaded.Add(float64(size))
	}
	return err
}

func (w *metricsBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return w.read(OpGet, func() (io.ReadCloser, error) { return w.b.Get(ctx, name) })
}

func (w *metricsBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	return w.read(OpGetRange, func() (io.ReadCloser, error) { return w.b.GetRange(ctx, name, off, length) })
}

func (w *metricsBucket) read(op Op, open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	done := w.m.start(op)
	rc, err := open()
	if err != nil {
		done(err)
		return nil, err
	}
	return &timedReader{rc: rc, done: done, downloaded: w.m.downloaded}, nil
}

func (w *metricsBucket) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	done := w.m.start(OpAttributes)
	attrs, err := w.b.Attributes(ctx, name)
	done(err)
	return attrs, err
}

func (w *metricsBucket) Delete(ctx context.Context, name string) error {
	done := w.m.start(OpDelete)
	err := w.b.Delete(ctx, name)
	done(err)
	return err
}

func (w *metricsBucket) Iter(ctx context.Context, prefix string, f func(name string) error) error {
	done := w.m.start(OpIter)
	// An error from f is the caller's, not the store's.
	var callerErr error
	err := w.b.Iter(ctx, prefix, func(name string) error {
		callerErr = f(name)
		return callerErr
	})
	if err != nil && callerErr != nil && errors.Is(err, callerErr) {
		done(nil)
	} else {
		done(err)
	}
	return err
}

func (w *metricsBucket) Close() error { return w.b.Close() }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// timedReader counts bytes read and ends the operation on Close, recording a
// failure if a read failed other than by reaching the end.
type timedReader struct {
	rc         io.ReadCloser
	done       func(error)
	downloaded prometheus.Counter
	readErr    error
	closed     bool
}

func (t *timedReader) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.downloaded.Add(float64(n))
	if err != nil && !errors.Is(err, io.EOF) && t.readErr == nil {
		t.readErr = err
	}
	return n, err
}

func (t *timedReader) Close() error {
	err := t.rc.Close()
	if !t.closed {
		t.closed = true
		if t.readErr != nil {
			t.done(t.readErr)
		} else {
			t.done(err)
		}
	}
	return err
}
