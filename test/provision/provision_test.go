// Package provision tests cluster provisioning end to end: deploy/provision
// and `floectl cluster` start real clusters (floe etcd, versitygw, the
// catalog and the brokers as detached processes from bin/), Kafka clients
// (kcat) and the DuckDB query example use them, and delete must leave
// nothing running. It also checks the README walkthrough by running it, and
// the compose and kubernetes renderings.
package provision

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/tool"
)

// brokerCount is how many brokers the lifecycle test provisions: the
// acceptance of issue 7 (`create --name demo --brokers 3`).
const brokerCount = 3

// commandTimeout bounds one provision command (create waits for readiness).
const commandTimeout = 3 * time.Minute

// repoRoot is the checkout holding this package (test/provision).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "provision")); err != nil {
		t.Fatalf("deploy/provision missing: %v", err)
	}
	return root
}

// env is the environment of provision commands: clusters in a temporary
// directory, binaries from bin/ (or $FLOECTL, whose directory then holds
// floe too).
type env struct {
	t           *testing.T
	root        string
	clustersDir string
	vars        []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := repoRoot(t)
	floectl := os.Getenv("FLOECTL")
	if floectl == "" {
		floectl = filepath.Join(root, "bin", "floectl")
	}
	for _, bin := range []string{floectl, filepath.Join(filepath.Dir(floectl), "floe")} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s missing: run `make build` (%v)", bin, err)
		}
	}
	e := &env{t: t, root: root, clustersDir: filepath.Join(t.TempDir(), "clusters")}
	e.vars = append(os.Environ(), "FLOECTL="+floectl, "FLOE_CLUSTERS_DIR="+e.clustersDir, "FLOE_REPO_ROOT="+root)
	if os.Getenv("FLOE_VERSITYGW") == "" {
		e.vars = append(e.vars, "FLOE_VERSITYGW="+filepath.Join(root, "bin", "versitygw"))
	}
	return e
}

// run runs a command in the repository root and returns its combined
// output; it fails the test if the command fails.
func (e *env) run(name string, args ...string) string {
	e.t.Helper()
	out, err := e.try(name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) try(name string, args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.root
	cmd.Env = e.vars
	out, err := cmd.CombinedOutput()
	e.t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	return string(out), err
}

func (e *env) provision(args ...string) string {
	e.t.Helper()
	return e.run("deploy/provision", args...)
}

// deleteOnCleanup makes sure a failing test leaves no cluster running.
func (e *env) deleteOnCleanup(name string) {
	e.t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(e.clustersDir, name)); err == nil {
			_, _ = e.try("deploy/provision", "delete", name)
		}
	})
}

// state is the part of cluster.json the tests look at.
type state struct {
	Brokers   int `json:"brokers"`
	Processes []struct {
		Name  string         `json:"name"`
		Kind  string         `json:"kind"`
		Pid   int            `json:"pid"`
		Ports map[string]int `json:"ports"`
	} `json:"processes"`
}

func (e *env) state(name string) state {
	e.t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.clustersDir, name, "cluster.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// running reports whether pid is a live (non-zombie) process.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// checkNothingLeft: every process of st is gone and its ports are free.
func checkNothingLeft(t *testing.T, st state) {
	t.Helper()
	for _, p := range st.Processes {
		if running(p.Pid) {
			t.Errorf("%s (pid %d) still running after delete", p.Name, p.Pid)
		}
		for what, port := range p.Ports {
			if !portFree(port) {
				t.Errorf("%s's %s port %d still in use after delete", p.Name, what, port)
			}
		}
	}
}

var readyRE = regexp.MustCompile(`RUNNING: ready in ([0-9.]+)s`)

// field returns the value of a "Label:  value" line of describe's output.
func field(t *testing.T, out, label string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), label+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("describe printed no %q line", label)
	return ""
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body
}

// TestProvisionLifecycle is the acceptance path: create, describe, Kafka
// and catalog traffic, create again (idempotent), a crashed broker repaired
// by create, delete, and nothing left running.
func TestProvisionLifecycle(t *testing.T) {
	kcat := tool.Look(t, "kcat")
	e := newEnv(t)
	const name = "demo"
	e.deleteOnCleanup(name)

	out := e.provision("create", "--name", name, "--brokers", strconv.Itoa(brokerCount))
	m := readyRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create printed no time to ready:\n%s", out)
	}
	t.Logf("time to ready with %d broker(s): %ss", brokerCount, m[1])
	fmt.Printf("provision: %d-broker cluster ready in %ss\n", brokerCount, m[1])

	desc := e.provision("describe", name)
	if got := field(t, desc, "Status"); got != "RUNNING" {
		t.Fatalf("status %q, want RUNNING", got)
	}
	bootstrap := field(t, desc, "Bootstrap servers")
	if n := len(strings.Split(bootstrap, ",")); n != brokerCount {
		t.Fatalf("bootstrap servers %q: %d addresses, want %d", bootstrap, n, brokerCount)
	}
	catalogURI := field(t, desc, "Catalog URI")
	registryURL := field(t, desc, "Registry URL")
	checkQueryExampleSettings(t, e.root, desc, catalogURI)

	// Kafka through the printed bootstrap servers.
	const topic = "provision-check"
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf("k%d:value-%d", i%7, i))
	}
	produce := exec.Command(kcat, "-P", "-b", bootstrap, "-t", topic, "-K:", "-X", "acks=all")
	produce.Stdin = strings.NewReader(strings.Join(want, "\n") + "\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	consume := func() []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
			"-f", `%k:%s\n`).CombinedOutput()
		if err != nil {
			t.Fatalf("kcat consume: %v\n%s", err, out)
		}
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}
	if got := consume(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("consumed %d records, want the %d produced, in order:\n%v", len(got), len(want), got)
	}

	// The catalog and the registry answer.
	var cfg struct {
		Defaults map[string]string `json:"defaults"`
	}
	if err := json.Unmarshal(httpGet(t, catalogURI+"/v1/config"), &cfg); err != nil {
		t.Fatalf("catalog /v1/config: %v", err)
	}
	if cfg.Defaults["s3.endpoint"] == "" {
		t.Fatalf("catalog /v1/config advertises no s3.endpoint: %v", cfg.Defaults)
	}
	if got := strings.TrimSpace(string(httpGet(t, registryURL+"/subjects"))); got != "[]" {
		t.Fatalf("registry /subjects = %s, want []", got)
	}

	// create again: reported, not recreated.
	out = e.provision("create", "--name", name, "--brokers", strconv.Itoa(brokerCount))
	if !strings.Contains(out, "already exists and is RUNNING") {
		t.Fatalf("second create did not report the running cluster:\n%s", out)
	}
	if got := e.provision("list"); !regexp.MustCompile(`(?m)^demo\s+local\s+` + strconv.Itoa(brokerCount) + `\s+RUNNING\s`).MatchString(got) {
		t.Fatalf("list does not show demo RUNNING:\n%s", got)
	}

	// A crashed broker: create repairs it, and the data is all there.
	st := e.state(name)
	for _, p := range st.Processes {
		if p.Kind == "broker" {
			if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitGone(t, p.Pid)
			break
		}
	}
	if got := field(t, e.provision("describe", name), "Status"); !strings.HasPrefix(got, "DEGRADED") {
		t.Fatalf("status after a broker crash %q, want DEGRADED", got)
	}
	out = e.provision("create", "--name", name)
	if !strings.Contains(out, "DEGRADED (broker-0 down): restarting") || !strings.Contains(out, "RUNNING: recovered") {
		t.Fatalf("create did not recover the crashed broker:\n%s", out)
	}
	if got := consume(); len(got) != len(want) {
		t.Fatalf("after recovery consumed %d records, want %d", len(got), len(want))
	}

	st = e.state(name) // with the restarted broker's pid
	e.provision("delete", name)
	checkNothingLeft(t, st)
	if _, err := os.Stat(filepath.Join(e.clustersDir, name)); !os.IsNotExist(err) {
		t.Fatalf("cluster directory still there after delete: %v", err)
	}
	if out := e.provision("delete", name); !strings.Contains(out, "nothing to delete") {
		t.Fatalf("second delete: %s", out)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkQueryExampleSettings: describe's Trino properties and spark-sql
// settings are those of query-examples/ (whose comments cite the engines'
// documentation), pointed at this cluster.
func checkQueryExampleSettings(t *testing.T, root, desc, catalogURI string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "query-examples", "trino", "floe.properties"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			documented[k] = true
		}
	}
	_, trino, ok := strings.Cut(desc, "Trino catalog file")
	if !ok {
		t.Fatal("describe printed no Trino catalog file")
	}
	trino, _, _ = strings.Cut(trino, "\n\n")
	var keys []string
	for _, line := range strings.Split(trino, "\n")[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			t.Fatalf("Trino catalog line %q is not key=value", line)
		}
		if !documented[k] {
			t.Errorf("Trino property %s is not in query-examples/trino/floe.properties", k)
		}
		if k == "iceberg.rest-catalog.uri" && v != catalogURI {
			t.Errorf("Trino catalog uri %s, want %s", v, catalogURI)
		}
		keys = append(keys, k)
	}
	if len(keys) < 5 || !strings.Contains(trino, "iceberg.rest-catalog.uri=") {
		t.Fatalf("Trino catalog file incomplete:\n%s", trino)
	}

	script, err := os.ReadFile(filepath.Join(root, "query-examples", "spark", "spark-sql.sh"))
	if err != nil {
		t.Fatal(err)
	}
	_, spark, ok := strings.Cut(desc, "spark-sql (")
	if !ok {
		t.Fatal("describe printed no spark-sql line")
	}
	confs := regexp.MustCompile(`--conf "?([a-z0-9.-]+)=`).FindAllStringSubmatch(spark, -1)
	if len(confs) < 5 {
		t.Fatalf("spark-sql line has %d --conf settings:\n%s", len(confs), spark)
	}
	for _, c := range confs {
		if !bytes.Contains(script, []byte(c[1]+"=")) {
			t.Errorf("spark-sql setting %s is not in query-examples/spark/spark-sql.sh", c[1])
		}
	}
	if !strings.Contains(spark, "spark.sql.catalog.floe.uri="+catalogURI) {
		t.Errorf("spark-sql line does not point at %s:\n%s", catalogURI, spark)
	}
}

// TestProvisionFailureCleansUp: a create whose catalog cannot start stops
// what it had started (etcd, versitygw), frees their ports and removes the
// cluster directory; after the cause is gone, the same create succeeds.
func TestProvisionFailureCleansUp(t *testing.T) {
	e := newEnv(t)
	const name = "broken"
	e.deleteOnCleanup(name)
	floectl := ""
	for _, v := range e.vars {
		if p, ok := strings.CutPrefix(v, "FLOECTL="); ok {
			floectl = p
		}
	}
	realFloe := filepath.Join(filepath.Dir(floectl), "floe")
	versitygw := filepath.Join(e.root, "bin", "versitygw")
	if v := os.Getenv("FLOE_VERSITYGW"); v != "" {
		versitygw = v
	}
	// Wrappers record each process's pid (exec keeps it) and make
	// `floe serve` fail, as a bad flag or a broken build would.
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	failFlag := filepath.Join(dir, "fail-serve")
	if err := os.WriteFile(failFlag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	floeWrapper := filepath.Join(dir, "floe")
	writeScript(t, floeWrapper, fmt.Sprintf(`echo $$ >> %q
if [ "$1" = serve ] && [ -e %q ]; then echo "injected failure: floe serve cannot start" >&2; exit 3; fi
exec %q "$@"
`, pids, failFlag, realFloe))
	vgwWrapper := filepath.Join(dir, "versitygw")
	writeScript(t, vgwWrapper, fmt.Sprintf("echo $$ >> %q\nexec %q \"$@\"\n", pids, versitygw))
	e.vars = append(e.vars, "FLOE_BINARY="+floeWrapper, "FLOE_VERSITYGW="+vgwWrapper)

	out, err := e.try("deploy/provision", "create", "--name", name, "--brokers", strconv.Itoa(brokerCount))
	if err == nil {
		t.Fatalf("create succeeded with a failing floe serve:\n%s", out)
	}
	for _, want := range []string{"injected failure", "TERMINATED_WITH_ERRORS; cleaning up"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q", want)
		}
	}
	raw, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	started := strings.Fields(string(raw))
	if len(started) < 3 { // etcd, versitygw, the failed catalog
		t.Fatalf("wrappers saw %d starts, want etcd, versitygw and floe serve: %v", len(started), started)
	}
	for _, s := range started {
		pid, _ := strconv.Atoi(s)
		if running(pid) {
			t.Errorf("pid %d still running after the failed create", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(e.clustersDir, name)); !os.IsNotExist(err) {
		t.Fatalf("failed create left its directory: %v", err)
	}

	if err := os.Remove(failFlag); err != nil {
		t.Fatal(err)
	}
	out = e.provision("create", "--name", name, "--brokers", strconv.Itoa(brokerCount))
	if !readyRE.MatchString(out) {
		t.Fatalf("create after the fix did not become ready:\n%s", out)
	}
	st := e.state(name)
	e.provision("delete", name)
	checkNothingLeft(t, st)
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeWalkthrough runs the README's walkthrough block with bash, as a
// new user would paste it, and checks the query's answer. Its `make build`
// and `make deps` lines are what `make test` runs before any test, so they
// are left out here; the clusters go to a temporary directory.
func TestReadmeWalkthrough(t *testing.T) {
	tool.Look(t, "kcat")
	tool.Look(t, "node")
	e := newEnv(t)
	e.deleteOnCleanup("demo")
	raw, err := os.ReadFile(filepath.Join(e.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(raw), "<!-- walkthrough:begin -->\n```sh\n")
	if ok {
		block, _, ok = strings.Cut(block, "```\n<!-- walkthrough:end -->")
	}
	if !ok {
		t.Fatal("README.md has no walkthrough block between the walkthrough markers")
	}
	var script []string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "make ") {
			continue
		}
		script = append(script, line)
	}
	out := e.run("bash", "-euo", "pipefail", "-c", strings.Join(script, "\n"))
	if m := readyRE.FindStringSubmatch(out); m != nil {
		t.Logf("walkthrough cluster ready in %ss", m[1])
	} else {
		t.Errorf("walkthrough printed no time to ready")
	}
	want := "page  views\n----  -----\n/p/0  200\n/p/1  200\n/p/2  200\n/p/3  200\n/p/4  200\n(5 rows)\n"
	if !strings.Contains(out, want) {
		t.Fatalf("walkthrough query output lacks\n%s", want)
	}
	if !strings.Contains(string(raw), "The query prints\n\n```\n"+want+"```") {
		t.Errorf("README.md shows a different result than the walkthrough printed")
	}
	if !strings.Contains(out, `Cluster "demo" is TERMINATED`) {
		t.Errorf("walkthrough did not delete its cluster")
	}
}
