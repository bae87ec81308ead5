// Package objstore is floe's view of object storage: a small Bucket interface,
// backends (S3, filesystem, in-memory) and decorators (metrics, fault injection).
// Everything durable that floe writes goes through a Bucket.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) by every backend when an object does not exist.
var ErrNotFound = errors.New("objstore: object not found")

// ObjectAttributes describes a stored object.
type ObjectAttributes struct {
	Size         int64
	LastModified time.Time
}

// Bucket is the contract every backend meets. Names are slash-separated keys
// relative to the bucket's root (a backend may add its own prefix).
// Upload is atomic: a reader sees the whole object or none of it.
type Bucket interface {
	// Upload stores the object, replacing any previous one. The reader is
	// consumed fully; size is its exact length (-1 if unknown).
	Upload(ctx context.Context, name string, r io.Reader, size int64) error
	// Get returns the whole object. The caller closes the reader.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// GetRange returns length bytes from off (length -1 = to the end).
	GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	// Attributes returns the object's size and modification time.
	Attributes(ctx context.Context, name string) (ObjectAttributes, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// Iter calls f for every object name under prefix, in lexical order,
	// recursively. Returning an error from f stops the iteration with it.
	Iter(ctx context.Context, prefix string, f func(name string) error) error
	// Close releases the backend's resources.
	Close() error
}

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
