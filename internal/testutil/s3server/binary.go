package s3server

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EnvBinary names the environment variable that points at a versitygw binary.
const EnvBinary = "FLOE_VERSITYGW"

// errNotFound is the message tests fail with when the tool is missing; CI
// installs it with `make deps`, so a missing binary is never a skip.
var errNotFound = errors.New("versitygw not found: run `make deps`")

// FindBinary returns the versitygw to run: $FLOE_VERSITYGW, else
// <repo root>/bin/versitygw (the repo root is the nearest directory above
// the working directory holding go.mod), else versitygw on PATH.
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%q is not an executable file: %w", EnvBinary, p, errNotFound)
		}
		return p, nil
	}
	if root, ok := repoRoot(); ok {
		if p := filepath.Join(root, "bin", "versitygw"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errNotFound
}

func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
