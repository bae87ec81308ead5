package filesystem_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/filesystem"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func TestAcceptance(t *testing.T) {
	b, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	objstoretest.AcceptanceTest(t, b)
}

func TestNewCreatesRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	b, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	if b.Root() != dir {
		t.Fatalf("Root() = %q, want %q", b.Root(), dir)
	}
}

func TestRejectsNamesOutsideRoot(t *testing.T) {
	parent := t.TempDir()
	b, err := filesystem.New(filepath.Join(parent, "root"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	names := []string{
		"", "..", "../escape", "a/../../escape", "a/..", "./a", "a/./b", "/etc/passwd",
		"a//b", "a/", "nul\x00byte", ".floe-tmp-123", "dir/.floe-tmp-x",
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			err := b.Upload(ctx, name, strings.NewReader("x"), 1)
			if !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("Upload(%q) = %v, want ErrInvalidName", name, err)
			}
			if _, err := b.Get(ctx, name); !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("Get(%q) = %v, want ErrInvalidName", name, err)
			}
			if _, err := b.GetRange(ctx, name, 0, 1); !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("GetRange(%q) = %v, want ErrInvalidName", name, err)
			}
			if _, err := b.Attributes(ctx, name); !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("Attributes(%q) = %v, want ErrInvalidName", name, err)
			}
			if err := b.Delete(ctx, name); !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidName", name, err)
			}
		})
	}
	for _, prefix := range []string{"../", "a/../../", "/etc/"} {
		if err := b.Iter(ctx, prefix, func(string) error { return nil }); !errors.Is(err, objstore.ErrInvalidName) {
			t.Errorf("Iter(%q) = %v, want ErrInvalidName", prefix, err)
		}
	}
	// Nothing may have been written next to the root.
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "root" {
		t.Fatalf("files appeared outside the root: %v", entries)
	}
}

func TestTempFilesAreInvisible(t *testing.T) {
	dir := t.TempDir()
	b, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// A leftover from a crashed upload.
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p", ".floe-tmp-42"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := objstore.UploadBytes(ctx, b, "p/object", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := b.Iter(ctx, "", func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"p/object"}) {
		t.Fatalf("Iter = %q, want only p/object", names)
	}
}

func TestFailedUploadLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	b, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	errRead := errors.New("reader broke")
	r := io.MultiReader(bytes.NewReader([]byte("some bytes")), errReader{errRead})
	if err := b.Upload(t.Context(), "d/object", r, -1); !errors.Is(err, errRead) {
		t.Fatalf("Upload = %v, want the reader's error", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("files left after a failed upload: %v", entries)
	}
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	dir := t.TempDir()
	b, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, name := range []string{"x/y/z/object", "x/keep"} {
		if err := objstore.UploadBytes(ctx, b, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "x/y/z/object"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x", "y")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty directory x/y still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x", "keep")); err != nil {
		t.Fatalf("sibling object gone: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

func TestObjectPersistsAcrossInstances(t *testing.T) {
	dir := t.TempDir()
	b1, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := objstore.UploadBytes(t.Context(), b1, "a/b", []byte("durable")); err != nil {
		t.Fatal(err)
	}
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := filesystem.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := objstore.ReadAll(t.Context(), b2, "a/b")
	if err != nil || string(got) != "durable" {
		t.Fatalf("ReadAll from a new instance = %q, %v", got, err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestUploadRacesDirectoryCleanup interleaves uploads into a directory with
// deletes that empty it: Delete removes empty directories, and Upload must
// recreate them rather than fail.
func TestUploadRacesDirectoryCleanup(t *testing.T) {
	b, err := filesystem.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	errs := make(chan error, 400)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			name := "racy/dir/" + string(rune('a'+i%26))
			if err := objstore.UploadBytes(ctx, b, name, []byte("x")); err != nil {
				errs <- err
			}
		}
	}()
	for range 200 {
		for c := 'a'; c <= 'z'; c++ {
			if err := b.Delete(ctx, "racy/dir/"+string(c)); err != nil {
				errs <- err
			}
		}
	}
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
