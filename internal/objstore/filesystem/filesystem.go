// Package filesystem is an objstore.Bucket over a local directory: the laptop
// default of `floe serve --data-dir`. Uploads are atomic and durable (temp
// file, fsync, rename, fsync of the directory); object names map to paths.
//
// Limits that S3 does not have: a name cannot be both an object and a
// "directory" of other objects ("a" and "a/b"), and names are checked so they
// never resolve outside the root.
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/floe-io/floe/internal/objstore"
)

// Bucket stores each object as a file under root.
type Bucket struct {
	root string
}

var _ objstore.Bucket = (*Bucket)(nil)

// New returns a bucket rooted at dir, creating the directory if needed.
func New(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("filesystem: empty root directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filesystem: resolve %q: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("filesystem: create root: %w", err)
	}
	return &Bucket{root: root}, nil
}

// Root returns the absolute directory the bucket stores objects in.
func (b *Bucket) Root() string { return b.root }

func (b *Bucket) path(name string) (string, error) {
	if err := validateName(name); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

// Upload implements objstore.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	path, err := b.path(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := b.createTemp(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("filesystem: upload %q: %w", name, err)
	}
	// From here on the temp file is removed on every failure path.
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fmt.Errorf("filesystem: upload %q: %w", name, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("filesystem: upload %q: read %d bytes, expected %d", name, n, size)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("filesystem: upload %q: sync: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("filesystem: upload %q: close: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("filesystem: upload %q: rename: %w", name, err)
	}
	committed = true
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("filesystem: upload %q: sync directory: %w", name, err)
	}
	return nil
}

// createTemp creates the temp file next to its final path so the rename is
// atomic. A concurrent Delete may remove the (then empty) directory between
// our mkdir and create, so a vanished directory is retried a few times.
func (b *Bucket) createTemp(dir string) (*os.File, error) {
	var err error
	for range 5 {
		var f *os.File
		if err = b.mkdirAll(dir); err == nil {
			if f, err = os.CreateTemp(dir, tmpPrefix+"*"); err == nil {
				return f, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// mkdirAll creates dir and its missing parents up to the root, syncing each
// parent whose entries changed so the new directories survive a crash.
func (b *Bucket) mkdirAll(dir string) error {
	if dir == b.root {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%q is an object, not a directory", b.rel(dir))
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if err := b.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

func (b *Bucket) rel(path string) string {
	rel, err := filepath.Rel(b.root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// open opens the object's file, mapping "missing" and "is a directory" to
// objstore.ErrNotFound.
func (b *Bucket) open(ctx context.Context, name string) (*os.File, fs.FileInfo, error) {
	path, err := b.path(name)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, b.mapErr(name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("filesystem: stat %q: %w", name, err)
	}
	if fi.IsDir() {
		_ = f.Close()
		return nil, nil, fmt.Errorf("filesystem: %q: %w", name, objstore.ErrNotFound)
	}
	return f, fi, nil
}

func (b *Bucket) mapErr(name string, err error) error {
	// ENOTDIR: a parent segment of name is a file, so name cannot exist.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("filesystem: %q: %w", name, objstore.ErrNotFound)
	}
	return fmt.Errorf("filesystem: %q: %w", name, err)
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	f, _, err := b.open(ctx, name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange implements objstore.Bucket. A range past the end is cut short.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("filesystem: get range %q: invalid range off=%d length=%d", name, off, length)
	}
	f, fi, err := b.open(ctx, name)
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	start := min(off, size)
	n := size - start
	if length >= 0 && length < n {
		n = length
	}
	return sectionReadCloser{SectionReader: io.NewSectionReader(f, start, n), f: f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionReadCloser) Close() error { return s.f.Close() }

// Attributes implements objstore.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	path, err := b.path(name)
	if err != nil {
		return objstore.ObjectAttributes{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.ObjectAttributes{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return objstore.ObjectAttributes{}, b.mapErr(name, err)
	}
	if fi.IsDir() {
		return objstore.ObjectAttributes{}, fmt.Errorf("filesystem: %q: %w", name, objstore.ErrNotFound)
	}
	return objstore.ObjectAttributes{Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

// Delete implements objstore.Bucket. Parent directories left empty are
// removed too, so deleted prefixes do not pile up as empty trees.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	path, err := b.path(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("filesystem: delete %q: %w", name, err)
	}
	if fi.IsDir() {
		return nil // not an object: nothing to delete
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filesystem: delete %q: %w", name, err)
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filesystem: delete %q: sync directory: %w", name, err)
	}
	for dir != b.root && strings.HasPrefix(dir, b.root) {
		// Fails with ENOTEMPTY as soon as a directory still holds something.
		if os.Remove(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}

// Iter implements objstore.Bucket. Names are collected and sorted before f
// is called: a directory walk is not in lexical order of full names ("a-b"
// sorts before "a/b" but lives outside the directory "a").
func (b *Bucket) Iter(ctx context.Context, prefix string, f func(name string) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	start := b.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	var names []string
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			// A directory emptied and removed by a concurrent Delete.
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		name := b.rel(path)
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("filesystem: iter %q: %w", prefix, err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(name); err != nil {
			return err
		}
	}
	return nil
}

// Close implements objstore.Bucket.
func (b *Bucket) Close() error { return nil }

// ctxReader stops a long copy as soon as the context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
