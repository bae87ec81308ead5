package filesystem

import (
	"fmt"
	"strings"

	"github.com/floe-io/floe/internal/objstore"
)

// tmpPrefix marks in-flight uploads. Iter skips such files and names whose
// segments start with it are rejected, so a temp file is never mistaken for
// an object (a crash can leave one behind; it is garbage, never data).
const tmpPrefix = ".floe-tmp-"

// validateName rejects names that cannot map one-to-one onto a path under the
// root: empty, absolute, with empty, "." or ".." segments, NUL bytes, or a
// segment that collides with the temp-file prefix.
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("filesystem: empty name: %w", objstore.ErrInvalidName)
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("filesystem: name %q is absolute: %w", name, objstore.ErrInvalidName)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("filesystem: name %q contains NUL: %w", name, objstore.ErrInvalidName)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if err := validateSegment(name, seg); err != nil {
			return err
		}
	}
	return nil
}

// validatePrefix is validateName for Iter prefixes, which may be empty, end
// with a slash, or stop in the middle of a segment.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if strings.HasPrefix(prefix, "/") || strings.ContainsRune(prefix, 0) {
		return fmt.Errorf("filesystem: invalid prefix %q: %w", prefix, objstore.ErrInvalidName)
	}
	segs := strings.Split(prefix, "/")
	// The last segment is partial ("" when prefix ends with a slash); the
	// earlier ones are whole directory names and must be clean.
	for _, seg := range segs[:len(segs)-1] {
		if err := validateSegment(prefix, seg); err != nil {
			return err
		}
	}
	return nil
}

func validateSegment(name, seg string) error {
	switch {
	case seg == "":
		return fmt.Errorf("filesystem: name %q has an empty path segment: %w", name, objstore.ErrInvalidName)
	case seg == "." || seg == "..":
		return fmt.Errorf("filesystem: name %q has a %q segment and could escape the root: %w", name, seg, objstore.ErrInvalidName)
	case strings.HasPrefix(seg, tmpPrefix):
		return fmt.Errorf("filesystem: name %q uses the reserved prefix %q: %w", name, tmpPrefix, objstore.ErrInvalidName)
	}
	return nil
}
