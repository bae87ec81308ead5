package provision

// Docker and Kubernetes are not on floe's CI machines, so the compose file
// and the manifests are checked by reading them: every service, port,
// volume, mounted file and floe flag must agree with the others and with
// floe's real flags (parsed from cmd/floe's source). deploy/kubernetes's own
// module decodes the manifests strictly into the Kubernetes API types.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// floeFlags returns the flags `floe serve` and `floe etcd` define, read from
// the source (fs.StringVar(&c.X, "name", ...)).
func floeFlags(t *testing.T, root string) (serve, etcd map[string]bool) {
	t.Helper()
	re := regexp.MustCompile(`fs\.\w*Var\(&[\w.]+,\s*"([a-z0-9-]+)"`)
	read := func(file string) map[string]bool {
		raw, err := os.ReadFile(filepath.Join(root, "cmd", "floe", file))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
			out[m[1]] = true
		}
		if len(out) < 5 {
			t.Fatalf("found only %d flags in cmd/floe/%s", len(out), file)
		}
		return out
	}
	return read("config.go"), read("etcd.go")
}

// composeServiceKeys are the Compose specification's service attributes
// this project may use; anything else is a typo.
var composeServiceKeys = []string{
	"image", "build", "pull_policy", "restart", "environment", "command", "entrypoint", "ports", "expose",
	"volumes", "depends_on", "healthcheck", "container_name", "working_dir", "user", "labels", "networks",
}

type composeFile struct {
	path     string
	doc      map[string]any
	services map[string]map[string]any
}

func loadCompose(t *testing.T, path string) *composeFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cf := &composeFile{path: path, doc: doc, services: map[string]map[string]any{}}
	svcs, ok := doc["services"].(map[string]any)
	if !ok || len(svcs) == 0 {
		t.Fatalf("%s: no services", path)
	}
	for name, v := range svcs {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: service %s is not a mapping", path, name)
		}
		cf.services[name] = m
	}
	return cf
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// containerPorts are the ports a service listens on: published container
// ports, expose, and floe's listener flags.
func containerPorts(svc map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, p := range strList(svc["ports"]) {
		parts := strings.Split(p, ":")
		out[parts[len(parts)-1]] = true
	}
	for _, p := range strList(svc["expose"]) {
		out[p] = true
	}
	cmd := strList(svc["command"])
	for i := 0; i+1 < len(cmd); i++ {
		if strings.HasSuffix(cmd[i], "-addr") || strings.HasPrefix(cmd[i], "--listen-") {
			if _, port, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cmd[i+1], "http://"), "0.0.0.0"), ":"); ok {
				out[port] = true
			}
		}
	}
	return out
}

// checkCompose validates a compose file; it returns the host ports.
func checkCompose(t *testing.T, cf *composeFile, root string) map[string]string {
	t.Helper()
	serveFlags, etcdFlags := floeFlags(t, root)
	dir := filepath.Dir(cf.path)
	for k := range cf.doc {
		if !slices.Contains([]string{"name", "services", "volumes", "networks"}, k) && !strings.HasPrefix(k, "x-") {
			t.Errorf("top-level key %q is not one of the Compose specification's", k)
		}
	}
	volumes, _ := cf.doc["volumes"].(map[string]any)
	hostPorts := map[string]string{}
	refRE := regexp.MustCompile(`(?:http://)?([a-z][a-z0-9-]*):([0-9]+)`)
	for name, svc := range cf.services {
		for k := range svc {
			if !slices.Contains(composeServiceKeys, k) {
				t.Errorf("service %s: unknown key %q", name, k)
			}
		}
		image, _ := svc["image"].(string)
		if image == "" {
			t.Errorf("service %s has no image", name)
		}
		if b, ok := svc["build"].(map[string]any); ok {
			ctx := fmt.Sprint(b["context"])
			if !filepath.IsAbs(ctx) {
				ctx = filepath.Join(dir, ctx)
			}
			if _, err := os.Stat(filepath.Join(ctx, fmt.Sprint(b["dockerfile"]))); err != nil {
				t.Errorf("service %s: build: %v", name, err)
			}
		}
		for _, p := range strList(svc["ports"]) {
			parts := strings.Split(p, ":")
			if len(parts) != 2 {
				t.Errorf("service %s: port %q: want HOST:CONTAINER", name, p)
				continue
			}
			if other, dup := hostPorts[parts[0]]; dup {
				t.Errorf("host port %s published by %s and %s", parts[0], other, name)
			}
			hostPorts[parts[0]] = name
		}
		for _, v := range strList(svc["volumes"]) {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				p := src
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				if _, err := os.Stat(p); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := volumes[src]; !ok {
				t.Errorf("service %s uses volume %q, not declared under volumes:", name, src)
			}
		}
		deps, _ := svc["depends_on"].(map[string]any)
		for dep, c := range deps {
			target, ok := cf.services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
				continue
			}
			cond, _ := c.(map[string]any)["condition"].(string)
			switch cond {
			case "service_started", "service_completed_successfully":
			case "service_healthy":
				if target["healthcheck"] == nil {
					t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			default:
				t.Errorf("service %s: depends_on %s: condition %q", name, dep, cond)
			}
		}
		// References name a service and a port it listens on.
		var texts []string
		texts = append(texts, strList(svc["command"])...)
		texts = append(texts, strList(svc["entrypoint"])...)
		env, _ := svc["environment"].(map[string]any)
		for k, v := range env {
			texts = append(texts, fmt.Sprint(v))
			if flag, ok := strings.CutPrefix(k, "FLOE_"); ok && image == "floe:dev" {
				if f := strings.ToLower(strings.ReplaceAll(flag, "_", "-")); !serveFlags[f] {
					t.Errorf("service %s: %s is no floe serve flag (--%s)", name, k, f)
				}
			}
		}
		for _, text := range texts {
			for _, m := range refRE.FindAllStringSubmatch(text, -1) {
				target, ok := cf.services[m[1]]
				if !ok {
					continue
				}
				if !containerPorts(target)[m[2]] {
					t.Errorf("service %s refers to %s:%s, but %s does not listen on %s", name, m[1], m[2], m[1], m[2])
				}
			}
		}
		if image == "floe:dev" {
			cmd := strList(svc["command"])
			if len(cmd) == 0 {
				t.Errorf("service %s: no command", name)
				continue
			}
			flags := map[string]map[string]bool{"serve": serveFlags, "etcd": etcdFlags}[cmd[0]]
			if flags == nil {
				t.Errorf("service %s: floe command %q, want serve or etcd", name, cmd[0])
				continue
			}
			for _, a := range cmd[1:] {
				if f, ok := strings.CutPrefix(a, "--"); ok && !flags[strings.SplitN(f, "=", 2)[0]] {
					t.Errorf("service %s: floe %s has no flag %s", name, cmd[0], a)
				}
			}
		}
	}
	return hostPorts
}

// checkEngineConfigs: the compose Trino and Spark files set only what
// query-examples/ sets (and documents).
func checkEngineConfigs(t *testing.T, root, dir string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(root, "query-examples", "trino", "floe.properties"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "trino", "floe.properties"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if !regexp.MustCompile(`(?m)^#?` + regexp.QuoteMeta(k) + `=`).Match(doc) {
			t.Errorf("compose trino/floe.properties sets %s, which query-examples/trino/floe.properties does not", k)
		}
		n++
	}
	if n < 5 {
		t.Errorf("compose trino/floe.properties sets only %d properties", n)
	}
	script, err := os.ReadFile(filepath.Join(root, "query-examples", "spark", "spark-sql.sh"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(dir, "spark", "spark-defaults.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || !strings.HasPrefix(f[0], "spark.sql.") {
			continue
		}
		if !strings.Contains(string(script), f[0]+"=") {
			t.Errorf("compose spark-defaults.conf sets %s, which query-examples/spark/spark-sql.sh does not", f[0])
		}
	}
}

// TestComposeFile checks deploy/compose/compose.yaml.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	path := filepath.Join(root, "deploy", "compose", "compose.yaml")
	cf := loadCompose(t, path)
	for _, want := range []string{"minio", "etcd", "floe-catalog", "floe-broker-0", "trino", "spark"} {
		if cf.services[want] == nil {
			t.Errorf("compose.yaml has no %s service", want)
		}
	}
	ports := checkCompose(t, cf, root)
	for _, p := range []string{"9092", "8181", "8081", "9000", "8080"} {
		if ports[p] == "" {
			t.Errorf("host port %s is not published", p)
		}
	}
	checkEngineConfigs(t, root, filepath.Dir(path))
}

// TestRenderTargets: create --target compose and --target kubernetes render
// K brokers into the cluster directory and print the apply command; delete
// forgets them.
func TestRenderTargets(t *testing.T) {
	const brokers = 3
	e := newEnv(t)
	out := e.provision("create", "--name", "cmp", "--target", "compose", "--brokers", strconv.Itoa(brokers))
	composePath := filepath.Join(e.clustersDir, "cmp", "compose", "compose.yaml")
	if !strings.Contains(out, "docker compose -f "+composePath+" up -d") {
		t.Fatalf("create --target compose printed no docker compose command:\n%s", out)
	}
	cf := loadCompose(t, composePath)
	if got := cf.doc["name"]; got != "floe-cmp" {
		t.Errorf("project name %v, want floe-cmp", got)
	}
	ports := checkCompose(t, cf, e.root)
	checkEngineConfigs(t, e.root, filepath.Dir(composePath))
	for i := range brokers {
		name := fmt.Sprintf("floe-broker-%d", i)
		svc := cf.services[name]
		if svc == nil {
			t.Fatalf("rendered compose has no %s", name)
		}
		host := strconv.Itoa(9092 + i)
		if ports[host] != name {
			t.Errorf("host port %s is published by %q, want %s", host, ports[host], name)
		}
		cmd := strings.Join(strList(svc["command"]), " ")
		if !strings.Contains(cmd, "--node-id "+strconv.Itoa(i)+" ") || !strings.Contains(cmd, "--advertised-kafka-addr 127.0.0.1:"+host) {
			t.Errorf("%s command: %s", name, cmd)
		}
	}
	desc := e.provision("describe", "cmp")
	if got := field(t, desc, "Bootstrap servers"); got != "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094" {
		t.Errorf("compose bootstrap servers %q", got)
	}

	const store = "s3://lake/floe?endpoint=https://s3.eu-west-1.amazonaws.com&region=eu-west-1"
	out = e.provision("create", "--name", "k8s", "--target", "kubernetes", "--brokers", strconv.Itoa(brokers), "--object-store", store)
	kdir := filepath.Join(e.clustersDir, "k8s", "kubernetes")
	if !strings.Contains(out, "kubectl apply -k "+kdir) {
		t.Fatalf("create --target kubernetes printed no kubectl command:\n%s", out)
	}
	src, err := filepath.Glob(filepath.Join(e.root, "deploy", "kubernetes", "*.yaml"))
	if err != nil || len(src) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	for _, f := range src {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(kdir, "base", filepath.Base(f)))
		if err != nil || string(got) != string(want) {
			t.Errorf("base/%s is not a copy of deploy/kubernetes/%s (%v)", filepath.Base(f), filepath.Base(f), err)
		}
	}
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
		Replicas  []struct {
			Name  string `yaml:"name"`
			Count int    `yaml:"count"`
		} `yaml:"replicas"`
		Patches []struct {
			Patch string `yaml:"patch"`
		} `yaml:"patches"`
	}
	raw, err := os.ReadFile(filepath.Join(kdir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &kust); err != nil {
		t.Fatal(err)
	}
	if kust.Namespace != "floe-k8s" || len(kust.Replicas) != 1 || kust.Replicas[0].Name != "floe-broker" || kust.Replicas[0].Count != brokers {
		t.Errorf("kustomization: %+v", kust)
	}
	if !strings.Contains(string(raw), store) || !strings.Contains(string(raw), "value: "+strconv.Itoa(brokers)) {
		t.Errorf("kustomization does not set the object store and the autoscaler's floor:\n%s", raw)
	}
	// The patch targets exist in the base.
	base, _ := os.ReadFile(filepath.Join(e.root, "deploy", "kubernetes", "broker.yaml"))
	for _, want := range []string{"kind: HorizontalPodAutoscaler", "name: floe-broker"} {
		if !strings.Contains(string(base), want) {
			t.Errorf("deploy/kubernetes/broker.yaml lacks %q, which the overlay patches", want)
		}
	}

	out = e.provision("scale", "k8s", "--brokers", "5")
	raw, _ = os.ReadFile(filepath.Join(kdir, "kustomization.yaml"))
	if !strings.Contains(string(raw), "count: 5") {
		t.Errorf("scale did not re-render the broker count:\n%s\n%s", out, raw)
	}
	for _, name := range []string{"cmp", "k8s"} {
		out := e.provision("delete", name)
		if !strings.Contains(out, "to remove what was applied, run:") {
			t.Errorf("delete %s printed no teardown command:\n%s", name, out)
		}
		if _, err := os.Stat(filepath.Join(e.clustersDir, name)); !os.IsNotExist(err) {
			t.Errorf("delete %s left its directory", name)
		}
	}
}
