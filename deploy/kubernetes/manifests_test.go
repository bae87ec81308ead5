// Package kubernetes checks floe's Kubernetes manifests without a cluster:
// every document is decoded strictly into its k8s.io/api type (an unknown or
// misspelt field fails), and the references between them (selectors,
// Services, named ports, ConfigMaps and Secrets, the autoscaler's target
// and metric, floe's flags) must resolve. It is its own Go module so that
// floe's main module does not depend on the Kubernetes API packages.
package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded documents, by kind and name.
type manifests struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs         map[string]*policyv1.PodDisruptionBudget
}

// kustomization is the part of kustomization.yaml floe uses; decoded
// strictly too (kustomize's own types are not in k8s.io/api).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
}

func splitDocs(raw []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		// A document of comments only is no document.
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func strict(t *testing.T, where string, doc []byte, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func load(t *testing.T) (*manifests, kustomization) {
	t.Helper()
	var k kustomization
	raw, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strict(t, "kustomization.yaml", raw, &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not listed in kustomization.yaml's resources", f)
		}
	}
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, f := range k.Resources {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", f, err)
		}
		for i, doc := range splitDocs(raw) {
			where := fmt.Sprintf("%s document %d", f, i+1)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var name string
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				var o appsv1.Deployment
				strict(t, where, doc, &o)
				name, m.deployments[o.Name] = o.Name, &o
			case "apps/v1 StatefulSet":
				var o appsv1.StatefulSet
				strict(t, where, doc, &o)
				name, m.statefulSets[o.Name] = o.Name, &o
			case "v1 Service":
				var o corev1.Service
				strict(t, where, doc, &o)
				name, m.services[o.Name] = o.Name, &o
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				strict(t, where, doc, &o)
				name, m.configMaps[o.Name] = o.Name, &o
			case "v1 Secret":
				var o corev1.Secret
				strict(t, where, doc, &o)
				name, m.secrets[o.Name] = o.Name, &o
			case "autoscaling/v2 HorizontalPodAutoscaler":
				var o autoscalingv2.HorizontalPodAutoscaler
				strict(t, where, doc, &o)
				name, m.hpas[o.Name] = o.Name, &o
			case "policy/v1 PodDisruptionBudget":
				var o policyv1.PodDisruptionBudget
				strict(t, where, doc, &o)
				name, m.pdbs[o.Name] = o.Name, &o
			default:
				t.Fatalf("%s: unexpected %s %s (add it to this test)", where, head.APIVersion, head.Kind)
			}
			if name == "" {
				t.Fatalf("%s: no metadata.name", where)
			}
		}
	}
	return m, k
}

// workload is a pod template with the name of what owns it.
type workload struct {
	kind, name string
	selector   map[string]string
	template   corev1.PodTemplateSpec
}

func (m *manifests) workloads() []workload {
	var out []workload
	for n, d := range m.deployments {
		out = append(out, workload{"Deployment", n, d.Spec.Selector.MatchLabels, d.Spec.Template})
	}
	for n, s := range m.statefulSets {
		out = append(out, workload{"StatefulSet", n, s.Spec.Selector.MatchLabels, s.Spec.Template})
	}
	return out
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// floeFlags reads the flags of `floe serve` and `floe etcd` from cmd/floe.
func floeFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`fs\.\w*Var\(&[\w.]+,\s*"([a-z0-9-]+)"`)
	out := map[string]map[string]bool{}
	for cmd, file := range map[string]string{"serve": "config.go", "etcd": "etcd.go"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "cmd", "floe", file))
		if err != nil {
			t.Fatal(err)
		}
		out[cmd] = map[string]bool{}
		for _, mm := range re.FindAllStringSubmatch(string(raw), -1) {
			out[cmd][mm[1]] = true
		}
		if len(out[cmd]) < 5 {
			t.Fatalf("found only %d flags in cmd/floe/%s", len(out[cmd]), file)
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	m, _ := load(t)
	flags := floeFlags(t)

	for _, want := range []string{"floe-broker", "floe-catalog"} {
		if m.deployments[want] == nil {
			t.Errorf("no Deployment %s", want)
		}
	}
	if s := m.statefulSets["floe-etcd"]; s == nil || *s.Spec.Replicas != 3 {
		t.Errorf("etcd must be a StatefulSet of 3 members")
	}

	for _, w := range m.workloads() {
		where := w.kind + " " + w.name
		if !matches(w.selector, w.template.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", where, w.selector, w.template.Labels)
		}
		for _, c := range w.template.Spec.Containers {
			ports := map[string]bool{}
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
			for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if probe != nil && probe.HTTPGet != nil && probe.HTTPGet.Port.Type == intstr.String && !ports[probe.HTTPGet.Port.StrVal] {
					t.Errorf("%s: probe port %q is not a container port", where, probe.HTTPGet.Port.StrVal)
				}
			}
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
					s := m.secrets[r.SecretKeyRef.Name]
					if s == nil {
						t.Errorf("%s: env %s: no Secret %s", where, e.Name, r.SecretKeyRef.Name)
					} else if _, ok := s.StringData[r.SecretKeyRef.Key]; !ok {
						t.Errorf("%s: env %s: Secret %s has no key %s", where, e.Name, s.Name, r.SecretKeyRef.Key)
					}
				}
			}
			var envNames []string
			for _, ef := range c.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					cm := m.configMaps[ef.ConfigMapRef.Name]
					if cm == nil {
						t.Errorf("%s: no ConfigMap %s", where, ef.ConfigMapRef.Name)
						continue
					}
					for k := range cm.Data {
						envNames = append(envNames, k)
					}
				case ef.SecretRef != nil:
					s := m.secrets[ef.SecretRef.Name]
					if s == nil {
						t.Errorf("%s: no Secret %s", where, ef.SecretRef.Name)
						continue
					}
					for k := range s.StringData {
						envNames = append(envNames, k)
					}
				}
			}
			envNames = append(envNames, slices.Collect(func(yield func(string) bool) {
				for k := range env {
					if !yield(k) {
						return
					}
				}
			})...)
			if c.Image != "floe:dev" {
				continue
			}
			// floe's flags, in args or in a shell command line.
			line := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
			sub := "serve"
			if slices.Contains(c.Args, "etcd") {
				sub = "etcd"
			}
			for _, mm := range regexp.MustCompile(`--([a-z][a-z0-9-]*)`).FindAllStringSubmatch(line, -1) {
				if !flags[sub][mm[1]] {
					t.Errorf("%s: floe %s has no flag --%s", where, sub, mm[1])
				}
			}
			for _, name := range envNames {
				if f, ok := strings.CutPrefix(name, "FLOE_"); ok {
					if flag := strings.ToLower(strings.ReplaceAll(f, "_", "-")); !flags["serve"][flag] {
						t.Errorf("%s: %s is no floe serve flag (--%s)", where, name, flag)
					}
				}
			}
		}
	}

	// Services select pods and name their ports.
	for n, s := range m.services {
		var target *workload
		for _, w := range m.workloads() {
			if matches(s.Spec.Selector, w.template.Labels) {
				target = &w
			}
		}
		if target == nil {
			t.Errorf("Service %s selects no pods (%v)", n, s.Spec.Selector)
			continue
		}
		ports := map[string]bool{}
		for _, c := range target.template.Spec.Containers {
			for _, p := range c.Ports {
				ports[p.Name] = true
			}
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type == intstr.String && !ports[p.TargetPort.StrVal] {
				t.Errorf("Service %s: targetPort %q is not a port of %s %s", n, p.TargetPort.StrVal, target.kind, target.name)
			}
		}
	}

	// The brokers: advertised per-pod address, probes, autoscaler, budget.
	b := m.deployments["floe-broker"]
	c := b.Spec.Template.Spec.Containers[0]
	line := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	if !strings.Contains(line, `--advertised-kafka-addr="$POD_IP:9092"`) {
		t.Errorf("broker does not advertise its pod IP: %s", line)
	}
	var podIP bool
	for _, e := range c.Env {
		if e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP" {
			podIP = true
		}
	}
	if !podIP {
		t.Error("broker has no POD_IP from the downward API")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("broker probes: want readiness /readyz and liveness /healthz")
	}
	if c.Resources.Requests.Cpu().IsZero() {
		t.Error("broker has no CPU request: the autoscaler's CPU utilization needs one")
	}
	hpa := m.hpas["floe-broker"]
	if hpa == nil || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || m.deployments[hpa.Spec.ScaleTargetRef.Name] == nil {
		t.Fatal("no HorizontalPodAutoscaler scaling a Deployment")
	}
	var cpu bool
	var podsMetric string
	for _, ms := range hpa.Spec.Metrics {
		switch ms.Type {
		case autoscalingv2.ResourceMetricSourceType:
			cpu = ms.Resource.Name == corev1.ResourceCPU
		case autoscalingv2.PodsMetricSourceType:
			podsMetric = ms.Pods.Metric.Name
		}
	}
	if !cpu || podsMetric == "" {
		t.Fatalf("autoscaler metrics: cpu %v, pods metric %q; want both", cpu, podsMetric)
	}
	checkAdapterRule(t, podsMetric)
	for n, pdb := range m.pdbs {
		found := false
		for _, w := range m.workloads() {
			found = found || matches(pdb.Spec.Selector.MatchLabels, w.template.Labels)
		}
		if !found {
			t.Errorf("PodDisruptionBudget %s selects no pods", n)
		}
	}
	if m.pdbs["floe-broker"] == nil {
		t.Error("no PodDisruptionBudget for the brokers")
	}
}

// checkAdapterRule: prometheus-adapter serves the autoscaler's pods metric
// from a counter the broker really exports (broker/metrics.go).
func checkAdapterRule(t *testing.T, metric string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("prometheus-adapter", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Rules struct {
			Custom []struct {
				SeriesQuery string `json:"seriesQuery"`
				Resources   struct {
					Overrides map[string]struct {
						Resource string `json:"resource"`
					} `json:"overrides"`
				} `json:"resources"`
				Name struct {
					Matches string `json:"matches"`
					As      string `json:"as"`
				} `json:"name"`
				MetricsQuery string `json:"metricsQuery"`
			} `json:"custom"`
		} `json:"rules"`
	}
	strict(t, "prometheus-adapter/rules.yaml", raw, &values)
	src, err := os.ReadFile(filepath.Join("..", "..", "broker", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range values.Rules.Custom {
		if r.Name.As != metric {
			continue
		}
		series := regexp.MustCompile(`^[a-z_]+`).FindString(r.SeriesQuery)
		if !bytes.Contains(src, []byte(`"`+series+`"`)) {
			t.Errorf("adapter rule for %s reads %s, which broker/metrics.go does not export", metric, series)
		}
		if !strings.Contains(r.MetricsQuery, "rate(") || r.Resources.Overrides["pod"].Resource != "pod" {
			t.Errorf("adapter rule for %s must be a per-pod rate", metric)
		}
		return
	}
	t.Errorf("no prometheus-adapter rule serves %s", metric)
}

// TestStrictDecodingCatchesTypos guards the guard: a misspelt field fails.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 3\n")
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(doc, &d); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}
