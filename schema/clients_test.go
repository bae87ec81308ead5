package schema

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
)

// These tests drive our registry with real third-party clients. The tools
// are installed by `make deps`; a missing tool fails the test (never skips).

// startRealRegistry serves a registry backed by the embedded etcd on a free
// loopback port, as `floe serve` would.
func startRealRegistry(t *testing.T) *registryUnderTest {
	t.Helper()
	return startRegistry(t, metastoretest.OpenEmbedded(t), Config{})
}

func runLogged(t *testing.T, timeout time.Duration, dir, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
}

// TestKafkaJSSchemaRegistryClient registers, encodes and decodes through
// @kafkajs/confluent-schema-registry (npm).
func TestKafkaJSSchemaRegistryClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required (install Node.js, e.g. via `make deps`): %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@kafkajs", "confluent-schema-registry", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("node_modules is missing in %s and npm is not installed: %v", dir, err)
		}
		// npm ci installs exactly the lock file; it needs the npm registry.
		runLogged(t, 5*time.Minute, dir, npm, "ci", "--no-audit", "--no-fund")
	}
	r := startRealRegistry(t)
	runLogged(t, 2*time.Minute, dir, node, "test.mjs", r.url)

	// What the client did is visible through the REST API too.
	if got := r.expect("GET", "/subjects/js-users-value/versions", nil).ints(); len(got) != 2 {
		t.Errorf("js-users-value versions: %v", got)
	}
	if res := r.expect("GET", "/config/js-users-value", nil); res.str("compatibilityLevel") != CompatBackward {
		t.Errorf("the client sets the subject's level on first registration: %s", res.raw)
	}
}

// TestConfluentKafkaPythonSchemaRegistryClient registers and fetches through
// confluent-kafka-python's SchemaRegistryClient (Debian's
// python3-confluent-kafka, run with /usr/bin/python3).
func TestConfluentKafkaPythonSchemaRegistryClient(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is required: %v", python, err)
	}
	probe := exec.Command(python, "-c", "from confluent_kafka.schema_registry import SchemaRegistryClient")
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("confluent-kafka-python's SchemaRegistryClient is required "+
			"(apt-get install -y python3-confluent-kafka python3-requests): %v\n%s", err, out)
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "py"))
	if err != nil {
		t.Fatal(err)
	}
	r := startRealRegistry(t)
	runLogged(t, 2*time.Minute, dir, python, "sr_client.py", r.url)

	if got := r.expect("GET", "/subjects", nil).strs(); strings.Join(got, ",") != "py-address,py-customer-value,py-json-value,py-users-value" {
		t.Errorf("subjects after the python run: %v", got)
	}
}
