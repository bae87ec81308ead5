package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrInvalidName is returned (wrapped) when an object name cannot be stored,
// for example because it would escape a filesystem bucket's root.
var ErrInvalidName = errors.New("objstore: invalid object name")

// ReadAll returns the whole content of the named object.
func ReadAll(ctx context.Context, b Bucket, name string) ([]byte, error) {
	rc, err := b.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("objstore: read %q: %w", name, err)
	}
	return data, nil
}

// UploadBytes stores data as the named object.
func UploadBytes(ctx context.Context, b Bucket, name string, data []byte) error {
	return b.Upload(ctx, name, bytes.NewReader(data), int64(len(data)))
}
