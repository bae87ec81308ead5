package objstore_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/memory"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func TestMetricsAcceptance(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	objstoretest.AcceptanceTest(t, objstore.WrapWithMetrics(memory.New(), reg, "acceptance"))
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Fatalf("GatherAndCount = %d, %v", n, err)
	}
}

// TestMetricsOverFaultsAcceptance stacks both decorators, as floe's chaos tests do.
func TestMetricsOverFaultsAcceptance(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	b := objstore.WrapWithMetrics(objstore.WrapWithFaults(memory.New(), objstore.NewFaults(3)), reg, "stacked")
	objstoretest.AcceptanceTest(t, b)
}

func TestMetricsCounts(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewPedanticRegistry()
	faults := objstore.NewFaults(1)
	b := objstore.WrapWithMetrics(objstore.WrapWithFaults(memory.New(), faults), reg, "main")

	if err := objstore.UploadBytes(ctx, b, "a", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(ctx, "b", strings.NewReader("abcde"), -1); err != nil { // size counted while read
		t.Fatal(err)
	}
	if _, err := objstore.ReadAll(ctx, b, "a"); err != nil { // 10 bytes down
		t.Fatal(err)
	}
	rc, err := b.GetRange(ctx, "a", 2, 3) // 3 bytes down
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	_ = rc.Close()
	if _, err := b.Attributes(ctx, "missing"); !objstore.IsNotFound(err) { // not a failure
		t.Fatal(err)
	}
	faults.SetErrorRate(objstore.OpUpload, 1)
	if err := objstore.UploadBytes(ctx, b, "c", []byte("lost")); !errors.Is(err, objstore.ErrInjected) { // a failure, no bytes
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	if err := b.Iter(ctx, "", func(string) error { return errStop }); !errors.Is(err, errStop) { // caller's error: no failure
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP floe_objstore_downloaded_bytes_total Bytes read from objects by Get and GetRange.
# TYPE floe_objstore_downloaded_bytes_total counter
floe_objstore_downloaded_bytes_total{bucket="main"} 13
# HELP floe_objstore_operation_failures_total Object store operations that failed, by operation (not found and cancellation excluded).
# TYPE floe_objstore_operation_failures_total counter
floe_objstore_operation_failures_total{bucket="main",operation="attributes"} 0
floe_objstore_operation_failures_total{bucket="main",operation="delete"} 0
floe_objstore_operation_failures_total{bucket="main",operation="get"} 0
floe_objstore_operation_failures_total{bucket="main",operation="get_range"} 0
floe_objstore_operation_failures_total{bucket="main",operation="iter"} 0
floe_objstore_operation_failures_total{bucket="main",operation="upload"} 1
# HELP floe_objstore_operations_total Object store operations started, by operation.
# TYPE floe_objstore_operations_total counter
floe_objstore_operations_total{bucket="main",operation="attributes"} 1
floe_objstore_operations_total{bucket="main",operation="delete"} 1
floe_objstore_operations_total{bucket="main",operation="get"} 1
floe_objstore_operations_total{bucket="main",operation="get_range"} 1
floe_objstore_operations_total{bucket="main",operation="iter"} 1
floe_objstore_operations_total{bucket="main",operation="upload"} 3
# HELP floe_objstore_uploaded_bytes_total Bytes of objects uploaded successfully.
# TYPE floe_objstore_uploaded_bytes_total counter
floe_objstore_uploaded_bytes_total{bucket="main"} 15
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"floe_objstore_downloaded_bytes_total", "floe_objstore_operation_failures_total",
		"floe_objstore_operations_total", "floe_objstore_uploaded_bytes_total"); err != nil {
		t.Fatal(err)
	}
	if got := histogramCount(t, reg, "upload"); got != 3 {
		t.Fatalf("upload duration observations = %d, want 3", got)
	}
	if got := histogramCount(t, reg, "get"); got != 1 {
		t.Fatalf("get duration observations = %d, want 1 (on Close)", got)
	}
}

func TestMetricsShareCollectorsPerName(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewPedanticRegistry()
	b1 := objstore.WrapWithMetrics(memory.New(), reg, "same")
	b2 := objstore.WrapWithMetrics(memory.New(), reg, "same") // must not panic
	other := objstore.WrapWithMetrics(memory.New(), reg, "other")
	for _, b := range []objstore.Bucket{b1, b2, other} {
		if err := objstore.UploadBytes(ctx, b, "x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP floe_objstore_uploaded_bytes_total Bytes of objects uploaded successfully.
# TYPE floe_objstore_uploaded_bytes_total counter
floe_objstore_uploaded_bytes_total{bucket="other"} 1
floe_objstore_uploaded_bytes_total{bucket="same"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "floe_objstore_uploaded_bytes_total"); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsNilRegisterer(t *testing.T) {
	b := objstore.WrapWithMetrics(memory.New(), nil, "unregistered")
	if err := objstore.UploadBytes(t.Context(), b, "x", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func histogramCount(t *testing.T, reg prometheus.Gatherer, op string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "floe_objstore_operation_duration_seconds" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no duration histogram for %s", op)
	return 0
}
