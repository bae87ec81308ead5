// Package objstoretest holds the conformance suite every objstore.Bucket
// backend must pass, the real S3 one included, so that code written against
// the in-memory bucket behaves the same on S3 and on disk.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/objstore"
)

// AcceptanceTest runs the conformance suite against b, which must be empty.
// Each subtest deletes what it uploaded, so the bucket is empty afterwards
// unless a subtest failed.
//
// Iter semantics checked here: prefix is a plain string prefix of the name
// (as in S3's ListObjectsV2), not a directory, and names come in byte-wise
// lexical order of the full name.
func AcceptanceTest(t *testing.T, b objstore.Bucket) {
	t.Helper()
	if names := list(t, b, ""); len(names) != 0 {
		t.Fatalf("AcceptanceTest needs an empty bucket, found %d objects, first %q", len(names), names[0])
	}
	t.Run("UploadGet", func(t *testing.T) { testUploadGet(t, b) })
	t.Run("GetRange", func(t *testing.T) { testGetRange(t, b) })
	t.Run("Attributes", func(t *testing.T) { testAttributes(t, b) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, b) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, b) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, b) })
	t.Run("EmptyObject", func(t *testing.T) { testEmptyObject(t, b) })
	t.Run("UnknownSize", func(t *testing.T) { testUnknownSize(t, b) })
	t.Run("SizeMismatch", func(t *testing.T) { testSizeMismatch(t, b) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceledContext(t, b) })
	t.Run("Iter", func(t *testing.T) { testIter(t, b) })
	t.Run("IterStopsOnError", func(t *testing.T) { testIterStopsOnError(t, b) })
	t.Run("LargeObject", func(t *testing.T) { testLargeObject(t, b) })
	t.Run("ConcurrentUploads", func(t *testing.T) { testConcurrentUploads(t, b) })
	t.Run("ConcurrentOverwriteIsAtomic", func(t *testing.T) { testConcurrentOverwrite(t, b) })
	if names := list(t, b, ""); len(names) != 0 && !t.Failed() {
		t.Errorf("bucket not empty after the suite: %q", names)
	}
}

func testUploadGet(t *testing.T, b objstore.Bucket) {
	ctx := t.Context()
	const name = "upload/nested/dir/object.bin"
	content := []byte("hello, floe")
	upload(t, b, name, content)
	if got := read(t, b, name); !bytes.Equal(got, content) {
		t.Fatalf("Get(%q) = %q, want %q", name, got, content)
	}
	got, err := objstore.ReadAll(ctx, b, name)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadAll(%q) = %q, %v; want %q", name, got, err, content)
	}
}

func testGetRange(t *testing.T, b objstore.Bucket) {
	const name = "range/object"
	content := make([]byte, 100)
	for i := range content {
		content[i] = byte(i)
	}
	upload(t, b, name, content)
	tests := []struct {
		name        string
		off, length int64
		want        []byte
	}{
		{"head", 0, 10, content[:10]},
		{"middle", 40, 20, content[40:60]},
		{"last byte", 99, 1, content[99:]},
		{"exact whole", 0, 100, content},
		{"whole with -1", 0, -1, content},
		{"tail with -1", 10, -1, content[10:]},
		{"length past end", 90, 20, content[90:]},
		{"huge length", 1, 1 << 40, content[1:]},
		{"zero length", 5, 0, nil},
		{"offset at end", 100, 10, nil},
		{"offset at end with -1", 100, -1, nil},
		{"offset past end", 150, 10, nil},
		{"offset past end with -1", 150, -1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readRange(t, b, name, tc.off, tc.length)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("GetRange(%d, %d) = %v, want %v", tc.off, tc.length, got, tc.want)
			}
		})
	}
	t.Run("negative offset is an error", func(t *testing.T) {
		rc, err := b.GetRange(t.Context(), name, -1, 10)
		if err == nil {
			_ = rc.Close()
			t.Fatal("GetRange(-1, 10) succeeded, want an error")
		}
		if objstore.IsNotFound(err) {
			t.Fatalf("GetRange(-1, 10) = %v, want an error other than not found", err)
		}
	})
}

func testAttributes(t *testing.T, b objstore.Bucket) {
	const name = "attrs/object"
	// Object stores keep second precision; allow for it and for clock skew
	// between the test and a server on the same machine.
	before := time.Now().Add(-2 * time.Second)
	upload(t, b, name, []byte("12345"))
	after := time.Now().Add(2 * time.Second)
	attrs, err := b.Attributes(t.Context(), name)
	if err != nil {
		t.Fatalf("Attributes: %v", err)
	}
	if attrs.Size != 5 {
		t.Errorf("Size = %d, want 5", attrs.Size)
	}
	if attrs.LastModified.Before(before) || attrs.LastModified.After(after) {
		t.Errorf("LastModified = %v, want within [%v, %v]", attrs.LastModified, before, after)
	}
}

func testOverwrite(t *testing.T, b objstore.Bucket) {
	const name = "overwrite/object"
	upload(t, b, name, []byte("the first, longer version"))
	upload(t, b, name, []byte("second"))
	if got := read(t, b, name); string(got) != "second" {
		t.Fatalf("Get after overwrite = %q, want %q", got, "second")
	}
	attrs, err := b.Attributes(t.Context(), name)
	if err != nil || attrs.Size != int64(len("second")) {
		t.Fatalf("Attributes after overwrite = %+v, %v; want size %d", attrs, err, len("second"))
	}
	if names := list(t, b, "overwrite/"); !slices.Equal(names, []string{name}) {
		t.Fatalf("Iter after overwrite = %q, want [%q]", names, name)
	}
}

func testDelete(t *testing.T, b objstore.Bucket) {
	ctx := t.Context()
	const name = "delete/dir/object"
	upload(t, b, name, []byte("x"))
	upload(t, b, "delete/sibling", []byte("y"))
	if err := b.Delete(ctx, name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Get(ctx, name); !objstore.IsNotFound(err) {
		t.Fatalf("Get after Delete = %v, want not found", err)
	}
	if names := list(t, b, "delete/"); !slices.Equal(names, []string{"delete/sibling"}) {
		t.Fatalf("Iter after Delete = %q, want only the sibling", names)
	}
	if err := b.Delete(ctx, name); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	if err := b.Delete(ctx, "delete/never/existed"); err != nil {
		t.Fatalf("Delete of a missing object = %v, want nil", err)
	}
	// The name can be reused after its delete.
	upload(t, b, name, []byte("again"))
	if got := read(t, b, name); string(got) != "again" {
		t.Fatalf("Get after re-upload = %q", got)
	}
}

func testNotFound(t *testing.T, b objstore.Bucket) {
	// "notfound/dir" is a prefix of a stored object but not an object itself.
	upload(t, b, "notfound/dir/object", []byte("x"))
	for _, name := range []string{"notfound/missing", "notfound/deep/missing/object", "notfound/dir", "notfound/dir/object/below"} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			ops := map[string]func() error{
				"Get": func() error { return closeIfOK(b.Get(ctx, name)) },
				"GetRange(0,10)": func() error {
					return closeIfOK(b.GetRange(ctx, name, 0, 10))
				},
				"GetRange(0,-1)": func() error {
					return closeIfOK(b.GetRange(ctx, name, 0, -1))
				},
				"GetRange(0,0)": func() error {
					return closeIfOK(b.GetRange(ctx, name, 0, 0))
				},
				"GetRange(100,-1)": func() error {
					return closeIfOK(b.GetRange(ctx, name, 100, -1))
				},
				"Attributes": func() error {
					_, err := b.Attributes(ctx, name)
					return err
				},
			}
			for op, call := range ops {
				err := call()
				if !objstore.IsNotFound(err) {
					t.Errorf("%s(%q) = %v, want an error wrapping objstore.ErrNotFound", op, name, err)
				}
			}
		})
	}
}

func testEmptyObject(t *testing.T, b objstore.Bucket) {
	const name = "empty/object"
	upload(t, b, name, nil)
	if got := read(t, b, name); len(got) != 0 {
		t.Fatalf("Get(empty) = %q", got)
	}
	for _, length := range []int64{-1, 0, 10} {
		if got := readRange(t, b, name, 0, length); len(got) != 0 {
			t.Fatalf("GetRange(empty, 0, %d) = %q", length, got)
		}
	}
	attrs, err := b.Attributes(t.Context(), name)
	if err != nil || attrs.Size != 0 {
		t.Fatalf("Attributes(empty) = %+v, %v", attrs, err)
	}
	if names := list(t, b, "empty/"); !slices.Equal(names, []string{name}) {
		t.Fatalf("Iter = %q, want the empty object", names)
	}
}

func testUnknownSize(t *testing.T, b objstore.Bucket) {
	const name = "unknown-size/object"
	content := bytes.Repeat([]byte("floe"), 1000)
	cleanup(t, b, name)
	if err := b.Upload(t.Context(), name, onlyReader{bytes.NewReader(content)}, -1); err != nil {
		t.Fatalf("Upload with size -1: %v", err)
	}
	if got := read(t, b, name); !bytes.Equal(got, content) {
		t.Fatalf("Get = %d bytes, want %d", len(got), len(content))
	}
}

func testSizeMismatch(t *testing.T, b objstore.Bucket) {
	for _, tc := range []struct {
		name     string
		declared int64
	}{{"short reader", 10}, {"long reader", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			name := "mismatch/" + tc.name
			cleanup(t, b, name)
			err := b.Upload(t.Context(), name, onlyReader{bytes.NewReader([]byte("12345"))}, tc.declared)
			if err == nil {
				t.Fatalf("Upload of 5 bytes declared as %d succeeded, want an error", tc.declared)
			}
			if _, err := b.Attributes(t.Context(), name); !objstore.IsNotFound(err) {
				t.Fatalf("after a failed Upload, Attributes = %v, want not found", err)
			}
		})
	}
}

func testCanceledContext(t *testing.T, b objstore.Bucket) {
	const name = "canceled/object"
	cleanup(t, b, name)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Upload(ctx, name, bytes.NewReader([]byte("x")), 1); err == nil {
		t.Fatal("Upload with a canceled context succeeded")
	}
	if _, err := b.Attributes(t.Context(), name); !objstore.IsNotFound(err) {
		t.Fatalf("after a canceled Upload, Attributes = %v, want not found", err)
	}
	if _, err := b.Attributes(ctx, name); err == nil {
		t.Fatal("Attributes with a canceled context succeeded")
	}
}

func testIter(t *testing.T, b objstore.Bucket) {
	// Chosen so that byte order differs from a depth-first directory walk:
	// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), '0' (0x30) after it.
	all := []string{
		"iter/a", "iter/ab", "iter/b-c", "iter/b.d", "iter/b/x",
		"iter/c/d/e", "iter/c/d/f", "iter/c0",
	}
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(len(all)) {
		upload(t, b, all[i], []byte(all[i]))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"iter/", all},
		{"iter", all},
		{"iter/a", []string{"iter/a", "iter/ab"}},
		{"iter/b", []string{"iter/b-c", "iter/b.d", "iter/b/x"}},
		{"iter/b/", []string{"iter/b/x"}},
		{"iter/c", []string{"iter/c/d/e", "iter/c/d/f", "iter/c0"}},
		{"iter/c/", []string{"iter/c/d/e", "iter/c/d/f"}},
		{"iter/c/d/", []string{"iter/c/d/e", "iter/c/d/f"}},
		{"iter/c/d/e", []string{"iter/c/d/e"}},
		{"iter/zzz", nil},
		{"iter/none/", nil},
		{"iter/a/", nil},
		{"nothing-here/", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("prefix=%q", tc.prefix), func(t *testing.T) {
			if got := list(t, b, tc.prefix); !slices.Equal(got, tc.want) {
				t.Fatalf("Iter(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
}

func testIterStopsOnError(t *testing.T, b objstore.Bucket) {
	for _, name := range []string{"stop/1", "stop/2", "stop/3"} {
		upload(t, b, name, []byte("x"))
	}
	errStop := errors.New("stop here")
	var seen []string
	err := b.Iter(t.Context(), "stop/", func(name string) error {
		seen = append(seen, name)
		if len(seen) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Iter = %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"stop/1", "stop/2"}) {
		t.Fatalf("callback saw %q, want the first two names", seen)
	}
}

func testLargeObject(t *testing.T, b objstore.Bucket) {
	const name = "large/object"
	content := make([]byte, 10<<20)
	rng := rand.New(rand.NewPCG(42, 42))
	for i := 0; i < len(content); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			content[i+j] = byte(v >> (8 * j))
		}
	}
	cleanup(t, b, name)
	// onlyReader hides Seek so backends cannot take a shortcut.
	if err := b.Upload(t.Context(), name, onlyReader{bytes.NewReader(content)}, int64(len(content))); err != nil {
		t.Fatalf("Upload 10 MiB: %v", err)
	}
	if got := read(t, b, name); !bytes.Equal(got, content) {
		t.Fatalf("Get 10 MiB: got %d bytes, content differs", len(got))
	}
	off := int64(5<<20 - 100)
	if got := readRange(t, b, name, off, 4096); !bytes.Equal(got, content[off:off+4096]) {
		t.Fatal("GetRange in the middle of 10 MiB differs")
	}
	attrs, err := b.Attributes(t.Context(), name)
	if err != nil || attrs.Size != int64(len(content)) {
		t.Fatalf("Attributes = %+v, %v; want size %d", attrs, err, len(content))
	}
}

func testConcurrentUploads(t *testing.T, b objstore.Bucket) {
	const writers, perWriter = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				name := fmt.Sprintf("concurrent/w%d/obj%d", w, i)
				content := []byte(name)
				if err := b.Upload(t.Context(), name, bytes.NewReader(content), int64(len(content))); err != nil {
					errs <- fmt.Errorf("Upload(%q): %w", name, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	names := list(t, b, "concurrent/")
	t.Cleanup(func() { deleteAll(t, b, "concurrent/") })
	if len(names) != writers*perWriter {
		t.Fatalf("Iter found %d objects, want %d", len(names), writers*perWriter)
	}
	for _, name := range names {
		if got := read(t, b, name); string(got) != name {
			t.Errorf("Get(%q) = %q", name, got)
		}
	}
}

// testConcurrentOverwrite checks that Upload is atomic: readers racing with
// overwriters only ever see one complete version.
func testConcurrentOverwrite(t *testing.T, b objstore.Bucket) {
	const name = "atomic/object"
	const size = 256 << 10
	upload(t, b, name, bytes.Repeat([]byte{'0'}, size))
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			for i := range 3 {
				content := bytes.Repeat([]byte{byte('a' + w*3 + i)}, size)
				if err := b.Upload(ctx, name, bytes.NewReader(content), size); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 10 {
				got, err := objstore.ReadAll(ctx, b, name)
				if err != nil {
					errs <- fmt.Errorf("read during overwrite: %w", err)
					continue
				}
				if len(got) != size || bytes.Count(got, got[:1]) != size {
					errs <- fmt.Errorf("read a torn object: %d bytes, starting %q", len(got), got[:min(len(got), 8)])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// onlyReader hides every method but Read (Seek, WriterTo, Len...).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func closeIfOK(rc io.ReadCloser, err error) error {
	if err == nil {
		_ = rc.Close()
	}
	return err
}

func upload(t *testing.T, b objstore.Bucket, name string, content []byte) {
	t.Helper()
	cleanup(t, b, name)
	if err := objstore.UploadBytes(t.Context(), b, name, content); err != nil {
		t.Fatalf("Upload(%q): %v", name, err)
	}
}

// cleanup deletes name when the test ends, leaving the bucket empty for the
// next subtest. It uses a fresh context: t.Context is canceled by then.
func cleanup(t *testing.T, b objstore.Bucket, name string) {
	t.Cleanup(func() {
		if err := b.Delete(context.Background(), name); err != nil {
			t.Errorf("cleanup Delete(%q): %v", name, err)
		}
	})
}

func deleteAll(t *testing.T, b objstore.Bucket, prefix string) {
	ctx := context.Background()
	err := b.Iter(ctx, prefix, func(name string) error { return b.Delete(ctx, name) })
	if err != nil {
		t.Errorf("cleanup of %q: %v", prefix, err)
	}
}

func read(t *testing.T, b objstore.Bucket, name string) []byte {
	t.Helper()
	rc, err := b.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return readClose(t, rc)
}

func readRange(t *testing.T, b objstore.Bucket, name string, off, length int64) []byte {
	t.Helper()
	rc, err := b.GetRange(t.Context(), name, off, length)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", name, off, length, err)
	}
	return readClose(t, rc)
}

func readClose(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	data, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return data
}

func list(t *testing.T, b objstore.Bucket, prefix string) []string {
	t.Helper()
	var names []string
	if err := b.Iter(t.Context(), prefix, func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatalf("Iter(%q): %v", prefix, err)
	}
	return names
}
