package main

// floectl cluster provisions whole floe clusters, in the manner of a cloud
// console's cluster wizard: create, list, describe, env, scale, delete.
//
// Each cluster is a directory under --dir (default ~/.floe/clusters) holding
// cluster.json, the state this command reads and writes. The local target
// runs the cluster as detached processes on this machine (cluster_local.go):
// one etcd member (`floe etcd`), versitygw as the S3 server unless
// --object-store names one, one `floe serve --roles catalog,registry`
// process, and K `floe serve --roles broker` processes sharing the etcd and
// the bucket. The kubernetes and compose targets render manifests from
// deploy/ into the directory and print the command that applies them
// (cluster_render.go).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

const (
	targetLocal      = "local"
	targetKubernetes = "kubernetes"
	targetCompose    = "compose"

	catalogEmbedded = "embedded"

	stateFileName = "cluster.json"
	// envClustersDir overrides the default --dir.
	envClustersDir = "FLOE_CLUSTERS_DIR"
)

// clusterState is cluster.json. It is written before anything starts, so a
// create that dies halfway leaves enough behind to recover or delete.
type clusterState struct {
	Name        string    `json:"name"`
	Target      string    `json:"target"`
	Brokers     int       `json:"brokers"`
	Catalog     string    `json:"catalog"`      // "embedded" or an external REST catalog URI
	ObjectStore string    `json:"object_store"` // the s3:// URL floe writes to
	Created     time.Time `json:"created"`
	// ReadySeconds is how long the last create took to become ready.
	ReadySeconds float64 `json:"ready_seconds,omitempty"`
	// S3 is set when the local target runs its own versitygw.
	S3 *ownS3 `json:"s3,omitempty"`
	// Processes of the local target, in start order.
	Processes []*process `json:"processes,omitempty"`

	dir string // the cluster directory (not stored: the file lives in it)
}

// ownS3 is the versitygw a local cluster runs when --object-store is not
// given. The credentials are generated per cluster; cluster.json is 0600.
type ownS3 struct {
	Endpoint  string `json:"endpoint"`
	Region    string `json:"region"`
	Bucket    string `json:"bucket"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

var clusterNameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$`)

func clusterCmd(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errors.New("cluster: want create, list, describe, env, scale or delete")
	}
	switch args[0] {
	case "create":
		return clusterCreate(ctx, args[1:])
	case "list", "ls":
		return clusterList(args[1:])
	case "describe":
		return clusterDescribe(args[1:])
	case "env":
		return clusterEnv(args[1:])
	case "scale":
		return clusterScale(ctx, args[1:])
	case "delete", "terminate":
		return clusterDelete(ctx, args[1:])
	}
	return fmt.Errorf("cluster: unknown command %q (want create, list, describe, env, scale or delete)", args[0])
}

func defaultClustersDir() string {
	if d := os.Getenv(envClustersDir); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".floe/clusters"
	}
	return filepath.Join(home, ".floe", "clusters")
}

func registerDir(fs *flag.FlagSet, dir *string) {
	fs.StringVar(dir, "dir", defaultClustersDir(), "directory holding one subdirectory per cluster (env "+envClustersDir+")")
}

// clusterDir resolves a cluster's directory; the name must be valid (it
// becomes a directory, a Kubernetes namespace and a compose project name).
func clusterDir(root, name string) (string, error) {
	if name == "" {
		return "", errors.New("name the cluster (--name)")
	}
	if !clusterNameRE.MatchString(name) {
		return "", fmt.Errorf("cluster name %q: use 1-32 lowercase letters, digits and dashes, starting with a letter", name)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

var errNoCluster = errors.New("no such cluster")

func loadState(dir string) (*clusterState, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat(dir); statErr == nil {
			return nil, fmt.Errorf("%s exists but holds no %s: not a floe cluster directory (remove it or pick another name)", dir, stateFileName)
		}
		return nil, fmt.Errorf("%s: %w", filepath.Base(dir), errNoCluster)
	}
	if err != nil {
		return nil, err
	}
	var st clusterState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFileName), err)
	}
	st.dir = dir
	return &st, nil
}

// save writes cluster.json atomically (temp file + rename).
func (st *clusterState) save() error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(st.dir, stateFileName+".tmp")
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(st.dir, stateFileName))
}

// positional parses flags around one positional argument, the cluster name,
// which --name may give instead.
func positionalName(fs *flag.FlagSet, args []string, name *string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1 && *name == "":
		*name = pos[0]
	case len(pos) == 1 && *name != pos[0]:
		return fmt.Errorf("two names given: %q and --name %q", pos[0], *name)
	case len(pos) > 1:
		return fmt.Errorf("unexpected arguments: %v", pos[1:])
	}
	return nil
}

func clusterCreate(ctx context.Context, args []string) error {
	var (
		name, objectStore, catalogOpt, target, root string
		brokers                                     int
		timeout                                     time.Duration
		keep                                        bool
	)
	fs := flag.NewFlagSet("floectl cluster create", flag.ContinueOnError)
	fs.StringVar(&name, "name", "", "cluster name")
	fs.IntVar(&brokers, "brokers", 1, "number of brokers")
	fs.StringVar(&objectStore, "object-store", "", "s3://bucket/prefix?endpoint=URL&region=R (default: a versitygw started with a local cluster; MinIO for compose; required for kubernetes)")
	fs.StringVar(&catalogOpt, "catalog", catalogEmbedded, "embedded (floe's Iceberg REST catalog) or the URI of an external REST catalog")
	fs.StringVar(&target, "target", targetLocal, "local (processes on this machine), kubernetes or compose (render manifests)")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "how long the local target may take to become ready")
	fs.BoolVar(&keep, "keep-on-failure", false, "leave processes and files of a failed create for inspection")
	registerDir(fs, &root)
	if err := positionalName(fs, args, &name); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	dir, err := clusterDir(root, name)
	if err != nil {
		return err
	}
	if brokers < 1 || brokers > 64 {
		return fmt.Errorf("--brokers %d: want 1 to 64", brokers)
	}
	switch target {
	case targetLocal, targetKubernetes, targetCompose:
	default:
		return fmt.Errorf("--target %q: want local, kubernetes or compose", target)
	}
	if catalogOpt != catalogEmbedded {
		u, err := url.Parse(catalogOpt)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--catalog %q: want embedded or an http(s) URI of an Iceberg REST catalog", catalogOpt)
		}
	}
	if objectStore != "" {
		u, err := url.Parse(objectStore)
		if err != nil || u.Scheme != "s3" || u.Host == "" {
			return fmt.Errorf("--object-store %q: want s3://bucket/prefix?endpoint=URL&region=R", objectStore)
		}
	}
	if target == targetKubernetes && objectStore == "" {
		return errors.New("--target kubernetes needs --object-store s3://... (the bucket the brokers share)")
	}

	st, err := loadState(dir)
	switch {
	case err == nil:
		// Idempotent: the same create again reports or repairs the cluster.
		var diffs []string
		if st.Target != target {
			diffs = append(diffs, fmt.Sprintf("target %s", st.Target))
		}
		if set["brokers"] && st.Brokers != brokers {
			diffs = append(diffs, fmt.Sprintf("%s (change it with `floectl cluster scale %s --brokers %d`)", plural(st.Brokers, "broker"), name, brokers))
		}
		if set["catalog"] && st.Catalog != catalogOpt {
			diffs = append(diffs, "catalog "+st.Catalog)
		}
		if set["object-store"] && st.ObjectStore != objectStore {
			diffs = append(diffs, "object store "+st.ObjectStore)
		}
		if len(diffs) > 0 {
			return fmt.Errorf("cluster %q already exists with %s; delete it first to recreate it differently", name, strings.Join(diffs, ", "))
		}
		if st.Target == targetLocal {
			return recoverLocal(ctx, st, timeout, os.Stdout)
		}
		return renderCluster(st, os.Stdout)
	case !errors.Is(err, errNoCluster):
		return err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st = &clusterState{
		Name: name, Target: target, Brokers: brokers, Catalog: catalogOpt,
		ObjectStore: objectStore, Created: time.Now().UTC().Truncate(time.Second), dir: dir,
	}
	if target != targetLocal {
		if err := st.save(); err != nil {
			return err
		}
		if err := renderCluster(st, os.Stdout); err != nil {
			_ = os.RemoveAll(dir)
			return err
		}
		return nil
	}
	return createLocal(ctx, st, timeout, keep, os.Stdout)
}

func clusterList(args []string) error {
	var root string
	fs := flag.NewFlagSet("floectl cluster list", flag.ContinueOnError)
	registerDir(fs, &root)
	if err := fs.Parse(args); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tTARGET\tBROKERS\tSTATUS\tBOOTSTRAP SERVERS\tCREATED")
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := loadState(filepath.Join(root, e.Name()))
		if err != nil {
			continue // not a cluster directory
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", st.Name, st.Target, st.Brokers, st.status(),
			orDash(st.bootstrap()), st.Created.Local().Format(time.DateTime))
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func loadNamed(name, root string) (*clusterState, error) {
	dir, err := clusterDir(root, name)
	if err != nil {
		return nil, err
	}
	return loadState(dir)
}

func clusterDescribe(args []string) error {
	var name, root string
	fs := flag.NewFlagSet("floectl cluster describe", flag.ContinueOnError)
	fs.StringVar(&name, "name", "", "cluster name")
	registerDir(fs, &root)
	if err := positionalName(fs, args, &name); err != nil {
		return err
	}
	st, err := loadNamed(name, root)
	if err != nil {
		return err
	}
	return st.describe(os.Stdout)
}

// clusterEnv prints shell assignments for the cluster's endpoints, read by
// floectl (FLOE_BROKERS, FLOE_ADMIN), the DuckDB example (FLOE_CATALOG_URI,
// AWS_*), query-examples/spark/spark-sql.sh (S3_ENDPOINT) and kcat users:
//
//	eval "$(floectl cluster env demo)"
func clusterEnv(args []string) error {
	var name, root string
	fs := flag.NewFlagSet("floectl cluster env", flag.ContinueOnError)
	fs.StringVar(&name, "name", "", "cluster name")
	registerDir(fs, &root)
	if err := positionalName(fs, args, &name); err != nil {
		return err
	}
	st, err := loadNamed(name, root)
	if err != nil {
		return err
	}
	for _, kv := range st.envVars() {
		fmt.Printf("export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return nil
}

func (st *clusterState) envVars() [][2]string {
	vars := [][2]string{
		{"FLOE_BROKERS", st.bootstrap()},
		{"FLOE_ADMIN", st.adminAddr()},
		{"FLOE_CATALOG_URI", st.catalogURI()},
		{"FLOE_REGISTRY_URL", st.registryURL()},
	}
	if ep := st.s3Endpoint(); ep != "" {
		vars = append(vars, [2]string{"S3_ENDPOINT", ep})
	}
	if st.S3 != nil {
		vars = append(vars,
			[2]string{"AWS_ACCESS_KEY_ID", st.S3.AccessKey},
			[2]string{"AWS_SECRET_ACCESS_KEY", st.S3.SecretKey},
			[2]string{"AWS_REGION", st.S3.Region})
	}
	out := vars[:0]
	for _, kv := range vars {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func clusterScale(ctx context.Context, args []string) error {
	var (
		name, root string
		brokers    int
		timeout    time.Duration
	)
	fs := flag.NewFlagSet("floectl cluster scale", flag.ContinueOnError)
	fs.StringVar(&name, "name", "", "cluster name")
	fs.IntVar(&brokers, "brokers", 0, "the number of brokers wanted")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "how long new brokers may take to become ready")
	registerDir(fs, &root)
	if err := positionalName(fs, args, &name); err != nil {
		return err
	}
	if brokers < 1 || brokers > 64 {
		return fmt.Errorf("--brokers %d: want 1 to 64", brokers)
	}
	st, err := loadNamed(name, root)
	if err != nil {
		return err
	}
	if st.Target == targetLocal {
		return scaleLocal(ctx, st, brokers, timeout, os.Stdout)
	}
	st.Brokers = brokers
	if err := st.save(); err != nil {
		return err
	}
	return renderCluster(st, os.Stdout)
}

func clusterDelete(ctx context.Context, args []string) error {
	var name, root string
	fs := flag.NewFlagSet("floectl cluster delete", flag.ContinueOnError)
	fs.StringVar(&name, "name", "", "cluster name")
	registerDir(fs, &root)
	if err := positionalName(fs, args, &name); err != nil {
		return err
	}
	st, err := loadNamed(name, root)
	if errors.Is(err, errNoCluster) {
		// Idempotent: a second delete (or one after a failed create that
		// cleaned up) has nothing left to do.
		fmt.Printf("cluster %q does not exist: nothing to delete\n", name)
		return nil
	}
	if err != nil {
		return err
	}
	if st.Target == targetLocal {
		return deleteLocal(ctx, st, os.Stdout)
	}
	fmt.Printf("cluster %q (%s): forgetting %s\n", st.Name, st.Target, st.dir)
	fmt.Printf("to remove what was applied, run:\n  %s\n", st.teardownCommand())
	return os.RemoveAll(st.dir)
}

// ---- endpoints ---------------------------------------------------------

func (st *clusterState) procs(kind string) []*process {
	var out []*process
	for _, p := range st.Processes {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

func (st *clusterState) proc(kind string) *process {
	if ps := st.procs(kind); len(ps) > 0 {
		return ps[0]
	}
	return nil
}

func (st *clusterState) bootstrap() string {
	switch st.Target {
	case targetLocal:
		var addrs []string
		for _, p := range st.procs(kindBroker) {
			addrs = append(addrs, p.addr("kafka"))
		}
		return strings.Join(addrs, ",")
	case targetCompose:
		var addrs []string
		for i := range st.Brokers {
			addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", composeKafkaPort+i))
		}
		return strings.Join(addrs, ",")
	case targetKubernetes:
		return "floe-broker." + st.namespace() + ".svc:9092"
	}
	return ""
}

func (st *clusterState) adminAddr() string {
	switch st.Target {
	case targetLocal:
		if p := st.proc(kindBroker); p != nil {
			return p.addr("admin")
		}
	case targetCompose:
		return fmt.Sprintf("127.0.0.1:%d", composeAdminPort)
	}
	return ""
}

func (st *clusterState) catalogURI() string {
	if st.Catalog != catalogEmbedded {
		return st.Catalog
	}
	switch st.Target {
	case targetLocal:
		if p := st.proc(kindCatalog); p != nil {
			return "http://" + p.addr("catalog")
		}
	case targetCompose:
		return "http://127.0.0.1:8181"
	case targetKubernetes:
		return "http://floe-catalog." + st.namespace() + ".svc:8181"
	}
	return ""
}

func (st *clusterState) registryURL() string {
	switch st.Target {
	case targetLocal:
		if p := st.proc(kindCatalog); p != nil {
			return "http://" + p.addr("registry")
		}
	case targetCompose:
		return "http://127.0.0.1:8081"
	case targetKubernetes:
		return "http://floe-catalog." + st.namespace() + ".svc:8081"
	}
	return ""
}

// objectStoreParams returns the S3 endpoint and region of the object store.
func (st *clusterState) objectStoreParams() (endpoint, region string) {
	if st.S3 != nil {
		return st.S3.Endpoint, st.S3.Region
	}
	if st.Target == targetCompose && st.ObjectStore == "" {
		return "http://127.0.0.1:9000", "us-east-1"
	}
	u, err := url.Parse(st.ObjectStore)
	if err != nil {
		return "", ""
	}
	return u.Query().Get("endpoint"), u.Query().Get("region")
}

func (st *clusterState) s3Endpoint() string {
	ep, _ := st.objectStoreParams()
	return ep
}

func (st *clusterState) namespace() string { return "floe-" + st.Name }

// status is the cluster's state in a console's words.
func (st *clusterState) status() string {
	if st.Target != targetLocal {
		return "RENDERED"
	}
	up, total := 0, 0
	for _, p := range st.Processes {
		total++
		if p.alive(st.dir) {
			up++
		}
	}
	switch {
	case total == 0:
		return "STARTING"
	case up == total:
		return "RUNNING"
	case up == 0:
		return "STOPPED"
	}
	return fmt.Sprintf("DEGRADED (%d/%d processes up)", up, total)
}

func (st *clusterState) describe(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Cluster:\t%s\n", st.Name)
	fmt.Fprintf(tw, "Status:\t%s\n", st.status())
	fmt.Fprintf(tw, "Target:\t%s\n", st.Target)
	fmt.Fprintf(tw, "Brokers:\t%d\n", st.Brokers)
	fmt.Fprintf(tw, "Created:\t%s\n", st.Created.Local().Format(time.DateTime))
	if st.ReadySeconds > 0 {
		fmt.Fprintf(tw, "Time to ready:\t%.1fs\n", st.ReadySeconds)
	}
	fmt.Fprintf(tw, "Directory:\t%s\n", st.dir)
	fmt.Fprintf(tw, "Bootstrap servers:\t%s\n", st.bootstrap())
	fmt.Fprintf(tw, "Catalog URI:\t%s\n", st.catalogURI())
	fmt.Fprintf(tw, "Registry URL:\t%s\n", st.registryURL())
	if a := st.adminAddr(); a != "" {
		fmt.Fprintf(tw, "Admin (broker 0):\thttp://%s  (/readyz, /metrics, /v1/tables)\n", a)
	}
	if p := st.proc(kindEtcd); p != nil {
		fmt.Fprintf(tw, "etcd endpoints:\thttp://%s\n", p.addr("client"))
	}
	objectStore := st.ObjectStore
	if st.S3 != nil {
		objectStore += "  (versitygw run by this cluster; credentials from `floectl cluster env`)"
	}
	if objectStore != "" {
		fmt.Fprintf(tw, "Object store:\t%s\n", objectStore)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Target == targetLocal && len(st.Processes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tLISTENS ON\tLOG")
		for _, p := range st.Processes {
			state := "running"
			if !p.alive(st.dir) {
				state = "DOWN"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Name, p.Pid, state, p.listens(), filepath.Join(st.dir, p.Name+".log"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if st.Target != targetLocal {
		fmt.Fprintf(w, "\nApply with:\n  %s\n", st.applyCommand())
	}

	fmt.Fprintf(w, "\nShell environment for floectl, kcat, the DuckDB example and spark-sql.sh:\n  eval \"$(floectl cluster env %s)\"\n", st.Name)
	fmt.Fprintf(w, "\nkcat:\n  kcat -b %s -L\n", st.bootstrap())
	fmt.Fprintf(w, "\nTrino catalog file etc/catalog/floe.properties (query-examples/trino/floe.properties):\n")
	for _, line := range st.trinoProperties() {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "\nspark-sql (query-examples/spark/spark-sql.sh does the same from the environment):\n  %s\n", st.sparkSQLCommand())
	return nil
}

// trinoProperties is query-examples/trino/floe.properties (the properties
// without their comments) with this cluster's endpoints.
func (st *clusterState) trinoProperties() []string {
	endpoint, region := st.objectStoreParams()
	set := map[string]string{
		"iceberg.rest-catalog.uri": st.catalogURI(),
		"s3.endpoint":              endpoint,
		"s3.region":                region,
	}
	var out []string
	for _, line := range queryExampleLines("trino/floe.properties", fallbackTrinoProperties) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if v, ok := set[k]; ok {
			if v == "" {
				continue
			}
			line = k + "=" + v
		}
		out = append(out, line)
	}
	return out
}

// fallbackTrinoProperties is used when floectl runs outside a checkout; it
// is the property part of query-examples/trino/floe.properties, whose
// comments cite Trino's documentation for each one.
var fallbackTrinoProperties = []string{
	"connector.name=iceberg",
	"iceberg.catalog.type=rest",
	"iceberg.rest-catalog.uri=http://127.0.0.1:8181",
	"iceberg.security=read_only",
	"fs.native-s3.enabled=true",
	"s3.endpoint=http://127.0.0.1:9000",
	"s3.region=us-east-1",
	"s3.path-style-access=true",
	"s3.aws-access-key=${ENV:AWS_ACCESS_KEY_ID}",
	"s3.aws-secret-key=${ENV:AWS_SECRET_ACCESS_KEY}",
}

// sparkSQLCommand is the command line query-examples/spark/spark-sql.sh
// runs, spelled out for this cluster (same packages and --conf keys).
func (st *clusterState) sparkSQLCommand() string {
	endpoint, region := st.objectStoreParams()
	if region == "" {
		region = "us-east-1"
	}
	const icebergVersion, sparkVersion = "1.10.0", "3.5_2.12"
	parts := []string{
		"spark-sql",
		"--packages org.apache.iceberg:iceberg-spark-runtime-" + sparkVersion + ":" + icebergVersion + ",org.apache.iceberg:iceberg-aws-bundle:" + icebergVersion,
		"--conf spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
		"--conf spark.sql.catalog.floe=org.apache.iceberg.spark.SparkCatalog",
		"--conf spark.sql.catalog.floe.type=rest",
		"--conf spark.sql.catalog.floe.uri=" + st.catalogURI(),
	}
	if endpoint != "" {
		parts = append(parts,
			"--conf spark.sql.catalog.floe.io-impl=org.apache.iceberg.aws.s3.S3FileIO",
			"--conf spark.sql.catalog.floe.s3.endpoint="+endpoint,
			"--conf spark.sql.catalog.floe.s3.path-style-access=true",
			"--conf spark.sql.catalog.floe.client.region="+region,
			`--conf spark.sql.catalog.floe.s3.access-key-id="$AWS_ACCESS_KEY_ID"`,
			`--conf spark.sql.catalog.floe.s3.secret-access-key="$AWS_SECRET_ACCESS_KEY"`,
		)
	}
	return strings.Join(parts, " \\\n      ")
}

// repoRoot finds the floe checkout floectl belongs to, for deploy/ and
// query-examples/: $FLOE_REPO_ROOT, else the parent of the directory of the
// floectl binary (bin/floectl), else the working directory or a parent.
func repoRoot() (string, bool) {
	isRoot := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "deploy", "compose", "compose.yaml"))
		return err == nil
	}
	if d := os.Getenv("FLOE_REPO_ROOT"); d != "" && isRoot(d) {
		return d, true
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if d := filepath.Dir(filepath.Dir(exe)); isRoot(d) {
				return d, true
			}
		}
	}
	if d, err := os.Getwd(); err == nil {
		for {
			if isRoot(d) {
				return d, true
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", false
}

func queryExampleLines(rel string, fallback []string) []string {
	root, ok := repoRoot()
	if !ok {
		return fallback
	}
	raw, err := os.ReadFile(filepath.Join(root, "query-examples", filepath.FromSlash(rel)))
	if err != nil {
		return fallback
	}
	return strings.Split(string(raw), "\n")
}
