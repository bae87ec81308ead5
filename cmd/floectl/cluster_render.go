package main

// The kubernetes and compose targets: nothing runs here. The manifests of
// deploy/ are rendered into the cluster directory for this cluster's name,
// broker count, object store and catalog, and the command that applies
// them is printed.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

const (
	// Host ports of the compose target: broker i listens on 9092+i.
	composeKafkaPort = 9092
	composeAdminPort = 9644
	// composeBroker is the broker service of deploy/compose/compose.yaml
	// that is repeated once per broker.
	composeBroker = "floe-broker-0"
)

func renderCluster(st *clusterState, w io.Writer) error {
	root, ok := repoRoot()
	if !ok {
		return errors.New("deploy/ not found: run floectl from a floe checkout (bin/floectl) or set FLOE_REPO_ROOT")
	}
	var err error
	switch st.Target {
	case targetKubernetes:
		err = renderKubernetes(st, filepath.Join(root, "deploy", "kubernetes"))
	case targetCompose:
		err = renderCompose(st, root)
	default:
		err = fmt.Errorf("target %q renders nothing", st.Target)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Cluster %q (%s, %s) rendered into %s\n", st.Name, st.Target, plural(st.Brokers, "broker"), st.dir)
	if st.Target == targetKubernetes {
		fmt.Fprintf(w, "Edit %s (S3 keys, PostgreSQL password) first, then apply:\n",
			filepath.Join(st.dir, "kubernetes", "base", "secret.yaml"))
	} else {
		fmt.Fprintln(w, "Start it with (the first run builds the floe image from this checkout):")
	}
	fmt.Fprintf(w, "  %s\n", st.applyCommand())
	fmt.Fprintf(w, "Remove it with:\n  %s\n", st.teardownCommand())
	return nil
}

func (st *clusterState) applyCommand() string {
	switch st.Target {
	case targetKubernetes:
		ns := st.namespace()
		return fmt.Sprintf("kubectl create namespace %s && kubectl apply -k %s", ns, filepath.Join(st.dir, "kubernetes"))
	case targetCompose:
		return fmt.Sprintf("docker compose -f %s up -d", filepath.Join(st.dir, "compose", "compose.yaml"))
	}
	return ""
}

func (st *clusterState) teardownCommand() string {
	switch st.Target {
	case targetKubernetes:
		return "kubectl delete namespace " + st.namespace()
	case targetCompose:
		return "docker compose -p " + st.namespace() + " down -v"
	}
	return ""
}

// renderKubernetes copies deploy/kubernetes to DIR/kubernetes/base and
// writes a kustomization overlay for this cluster.
func renderKubernetes(st *clusterState, src string) error {
	dst := filepath.Join(st.dir, "kubernetes")
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := copyFiles(src, filepath.Join(dst, "base"), func(name string) bool {
		return strings.HasSuffix(name, ".yaml")
	}); err != nil {
		return err
	}
	catalogURI := "http://floe-catalog:8181"
	if st.Catalog != catalogEmbedded {
		catalogURI = st.Catalog
	}
	overlay := fmt.Sprintf(`# Rendered by floectl cluster create --target kubernetes for cluster %[1]q.
# base/ is a copy of deploy/kubernetes; this overlay sets the namespace, the
# broker count (the HorizontalPodAutoscaler's floor) and the object store.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %[2]s
resources:
  - base
replicas:
  - name: floe-broker
    count: %[3]d
patches:
  - target:
      kind: HorizontalPodAutoscaler
      name: floe-broker
    patch: |-
      - op: replace
        path: /spec/minReplicas
        value: %[3]d
      - op: replace
        path: /spec/maxReplicas
        value: %[4]d
  - patch: |-
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: floe-config
      data:
        FLOE_OBJECT_STORE: %[5]q
  - patch: |-
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: floe-broker-config
      data:
        FLOE_CATALOG_URI: %[6]q
`, st.Name, st.namespace(), st.Brokers, max(st.Brokers*4, 12), st.ObjectStore, catalogURI)
	return os.WriteFile(filepath.Join(dst, "kustomization.yaml"), []byte(overlay), 0o644)
}

// renderCompose writes DIR/compose/compose.yaml: deploy/compose/compose.yaml
// with the broker service repeated for each broker (broker i on host ports
// 9092+i and 9644+i, advertised as 127.0.0.1:9092+i so clients on the host
// reach each one), the project named floe-NAME and the build context made
// absolute; the Trino and Spark files it mounts are copied next to it.
func renderCompose(st *clusterState, root string) error {
	src := filepath.Join(root, "deploy", "compose")
	dst := filepath.Join(st.dir, "compose")
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	for _, sub := range []string{"trino", "spark"} {
		if err := copyFiles(filepath.Join(src, sub), filepath.Join(dst, sub), func(string) bool { return true }); err != nil {
			return err
		}
	}
	raw, err := os.ReadFile(filepath.Join(src, "compose.yaml"))
	if err != nil {
		return err
	}
	out, err := renderComposeFile(raw, st, root)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, "compose.yaml"), out, 0o644)
}

func renderComposeFile(raw []byte, st *clusterState, root string) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("deploy/compose/compose.yaml: %w", err)
	}
	doc["name"] = st.namespace()
	services, _ := doc["services"].(map[string]any)
	tmpl, ok := services[composeBroker].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("deploy/compose/compose.yaml has no %s service", composeBroker)
	}
	for _, svc := range services {
		m, ok := svc.(map[string]any)
		if !ok {
			continue
		}
		if b, ok := m["build"].(map[string]any); ok {
			if ctx, ok := b["context"].(string); ok && !filepath.IsAbs(ctx) {
				b["context"] = filepath.Clean(filepath.Join(root, "deploy", "compose", ctx))
			}
		}
		env, _ := m["environment"].(map[string]any)
		if env != nil {
			if _, ok := env["FLOE_OBJECT_STORE"]; ok && st.ObjectStore != "" {
				env["FLOE_OBJECT_STORE"] = st.ObjectStore
			}
			if _, ok := env["FLOE_CATALOG_URI"]; ok && st.Catalog != catalogEmbedded {
				env["FLOE_CATALOG_URI"] = st.Catalog
			}
		}
	}
	delete(services, composeBroker)
	for i := range st.Brokers {
		svc, err := cloneYAML(tmpl)
		if err != nil {
			return nil, err
		}
		if err := rewriteBroker(svc, i); err != nil {
			return nil, err
		}
		services[fmt.Sprintf("floe-broker-%d", i)] = svc
	}
	header := fmt.Sprintf("# Rendered by floectl cluster create --target compose for cluster %q\n# from deploy/compose/compose.yaml (see its comments), with %s.\n",
		st.Name, plural(st.Brokers, "broker"))
	body, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), body...), nil
}

func cloneYAML(v map[string]any) (map[string]any, error) {
	raw, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, yaml.Unmarshal(raw, &out)
}

// rewriteBroker turns a copy of floe-broker-0 into broker i.
func rewriteBroker(svc map[string]any, i int) error {
	cmd, ok := svc["command"].([]any)
	if !ok {
		return fmt.Errorf("%s: command must be a list", composeBroker)
	}
	kafka, admin := composeKafkaPort+i, composeAdminPort+i
	for j := 0; j+1 < len(cmd); j++ {
		switch cmd[j] {
		case "--node-id":
			cmd[j+1] = strconv.Itoa(i)
		case "--advertised-kafka-addr":
			cmd[j+1] = fmt.Sprintf("127.0.0.1:%d", kafka)
		}
	}
	svc["ports"] = []any{fmt.Sprintf("%d:9092", kafka), fmt.Sprintf("%d:9644", admin)}
	if _, ok := svc["container_name"]; ok {
		delete(svc, "container_name")
	}
	return nil
}

func copyFiles(src, dst string, want func(name string) bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || !want(e.Name()) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}
