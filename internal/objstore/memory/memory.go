// Package memory is an in-memory objstore.Bucket for unit tests: goroutine-safe,
// with the same semantics as the real backends and nothing durable.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/objstore"
)

type object struct {
	data     []byte
	modified time.Time
}

// Bucket keeps objects in a map guarded by a mutex. Stored slices are never
// mutated after insertion, so readers can share them without copying.
type Bucket struct {
	mu      sync.RWMutex
	objects map[string]object
}

var _ objstore.Bucket = (*Bucket)(nil)

// New returns an empty bucket.
func New() *Bucket {
	return &Bucket{objects: make(map[string]object)}
}

// Upload implements objstore.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("memory: upload: empty name: %w", objstore.ErrInvalidName)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("memory: upload %q: %w", name, err)
	}
	if size >= 0 && int64(len(data)) != size {
		return fmt.Errorf("memory: upload %q: read %d bytes, expected %d", name, len(data), size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	b.objects[name] = object{data: data, modified: time.Now()}
	b.mu.Unlock()
	return nil
}

func (b *Bucket) lookup(ctx context.Context, name string) (object, error) {
	if err := ctx.Err(); err != nil {
		return object{}, err
	}
	b.mu.RLock()
	obj, ok := b.objects[name]
	b.mu.RUnlock()
	if !ok {
		return object{}, fmt.Errorf("memory: %q: %w", name, objstore.ErrNotFound)
	}
	return obj, nil
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	obj, err := b.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(obj.data)), nil
}

// GetRange implements objstore.Bucket.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("memory: get range %q: invalid range off=%d length=%d", name, off, length)
	}
	obj, err := b.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	size := int64(len(obj.data))
	start := min(off, size)
	end := size
	if length >= 0 && start+length < size {
		end = start + length
	}
	return io.NopCloser(bytes.NewReader(obj.data[start:end])), nil
}

// Attributes implements objstore.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	obj, err := b.lookup(ctx, name)
	if err != nil {
		return objstore.ObjectAttributes{}, err
	}
	return objstore.ObjectAttributes{Size: int64(len(obj.data)), LastModified: obj.modified}, nil
}

// Delete implements objstore.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objects, name)
	b.mu.Unlock()
	return nil
}

// Iter implements objstore.Bucket. Names are snapshotted first so f may
// modify the bucket without deadlocking.
func (b *Bucket) Iter(ctx context.Context, prefix string, f func(name string) error) error {
	b.mu.RLock()
	names := make([]string, 0, len(b.objects))
	for name := range b.objects {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	b.mu.RUnlock()
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

// Close implements objstore.Bucket; the contents stay readable.
func (b *Bucket) Close() error { return nil }
