package catalog

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIcebergJS runs testdata/js/catalog_test.mjs, which drives the catalog
// with the iceberg-js npm client (create, load, commit, conflict, rename,
// drop) under OAuth2. node is required; iceberg-js is installed from the
// committed lock file when node_modules is missing (`make deps` does it too).
func TestIcebergJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (install Node.js, e.g. `make deps`): %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "iceberg-js", "package.json")); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Fatalf("iceberg-js is not installed in %s and npm is not available: %v", dir, lerr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}

	ts := newTestServer(t, withAuth("node", "js-secret"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "catalog_test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CATALOG_URL="+ts.URL,
		"CATALOG_CLIENT_ID=node",
		"CATALOG_CLIENT_SECRET=js-secret",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node catalog_test.mjs: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "iceberg-js: ok") {
		t.Fatalf("node catalog_test.mjs did not finish:\n%s", out)
	}
}
