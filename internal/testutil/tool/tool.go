// Package tool finds the programs written by others that integration tests
// run (kcat, python3, node, ...). A missing one fails the test with how to
// install it, never skips it: `make deps` installs them all.
package tool

import (
	"os/exec"
	"testing"
)

// Look returns the path of name (a command on PATH or a path) or fails t.
func Look(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): run `make deps`", name, err)
	}
	return p
}
