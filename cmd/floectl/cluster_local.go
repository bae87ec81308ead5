package main

// The local target: a cluster as detached processes on this machine.
//
// Every process runs in its own session (setsid), so it outlives floectl and
// a Ctrl-C in the terminal that created it; its output goes to NAME.log and
// its pid to NAME.pid in the cluster directory, and cluster.json records
// its command line and ports so that a later create restarts exactly what
// died. A pid counts as the process only while /proc/PID/cmdline still
// names the cluster directory, so a recycled pid is never signalled.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	kindEtcd    = "etcd"
	kindS3      = "s3"
	kindCatalog = "catalog"
	kindBroker  = "broker"

	s3Region = "us-east-1"
	s3Bucket = "floe"

	// stopTimeout is how long a process gets between SIGTERM and SIGKILL;
	// a broker flushes and hands over on SIGTERM.
	stopTimeout = 30 * time.Second
	// logTailBytes of a failed process's log are printed.
	logTailBytes = 4 << 10
)

// process is one process of a local cluster, as cluster.json records it.
type process struct {
	Name   string         `json:"name"` // etcd, s3, catalog, broker-0, ...
	Kind   string         `json:"kind"`
	NodeID int            `json:"node_id"`
	Bin    string         `json:"bin"` // floe or versitygw, found again at each start
	Args   []string       `json:"args"`
	Ports  map[string]int `json:"ports"`
	Pid    int            `json:"pid"`
}

func (p *process) addr(port string) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Ports[port]))
}

func (p *process) listens() string {
	var parts []string
	for _, k := range []string{"kafka", "admin", "catalog", "registry", "client", "peer", "s3"} {
		if v, ok := p.Ports[k]; ok {
			parts = append(parts, fmt.Sprintf("%s :%d", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

// alive reports whether the recorded pid is still this cluster's process:
// running (not a zombie) with the cluster directory on its command line.
func (p *process) alive(dir string) bool {
	if p.Pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		if _, statErr := os.Stat("/proc/self/stat"); statErr == nil {
			return false // /proc works: the process is gone
		}
		// No /proc (not Linux): fall back to signal 0.
		return syscall.Kill(p.Pid, 0) == nil
	}
	// The state letter follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		if f := strings.Fields(string(stat[i+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			return false
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// probe answers nil once the process serves: etcd's /health, any HTTP
// answer from versitygw, floe's /readyz.
func (p *process) probe(ctx context.Context) error {
	var u string
	switch p.Kind {
	case kindEtcd:
		u = "http://" + p.addr("client") + "/health"
	case kindS3:
		u = "http://" + p.addr("s3") + "/"
	default:
		u = "http://" + p.addr("admin") + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch p.Kind {
	case kindS3:
		return nil // an anonymous request gets 403: it listens
	case kindEtcd:
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"health":"true"`)) {
			return fmt.Errorf("etcd health: %s %s", resp.Status, bytes.TrimSpace(body))
		}
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// binaries are the executables a local cluster runs.
type binaries struct{ floe, versitygw string }

// findBinary looks for name in $env, next to floectl (bin/ of a checkout),
// then on PATH.
func findBinary(name, env string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found next to floectl, on PATH or in $%s (run `make build`, and `make deps` for versitygw)", name, env)
}

func (b *binaries) path(name string) (string, error) {
	switch name {
	case "floe":
		if b.floe == "" {
			p, err := findBinary("floe", "FLOE_BINARY")
			if err != nil {
				return "", err
			}
			b.floe = p
		}
		return b.floe, nil
	case "versitygw":
		if b.versitygw == "" {
			p, err := findBinary("versitygw", "FLOE_VERSITYGW")
			if err != nil {
				return "", err
			}
			b.versitygw = p
		}
		return b.versitygw, nil
	}
	return "", fmt.Errorf("unknown binary %q", name)
}

// freePorts reserves n distinct loopback ports (all listeners are held open
// together, so no two are the same), then releases them for the processes.
// Ports in taken (planned for processes not started yet, so not bound) are
// never handed out again.
func freePorts(n int, taken map[int]bool) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 100*n {
			return nil, errors.New("pick a free port: no distinct free ports")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, l)
		if port := l.Addr().(*net.TCPAddr).Port; !taken[port] {
			ports = append(ports, port)
		}
	}
	return ports, nil
}

// plannedPorts are the ports of every process of the cluster.
func (st *clusterState) plannedPorts() map[int]bool {
	taken := map[int]bool{}
	for _, p := range st.Processes {
		for _, port := range p.Ports {
			taken[port] = true
		}
	}
	return taken
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// planLocal fills in the processes of a new local cluster.
func (st *clusterState) planLocal() error {
	ports, err := freePorts(2+1+3, st.plannedPorts())
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, s3Port := ports[0], ports[1], ports[2]
	cu := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	pu := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	st.Processes = append(st.Processes, &process{
		Name: "etcd", Kind: kindEtcd, Bin: "floe",
		Ports: map[string]int{"client": etcdClient, "peer": etcdPeer},
		Args: []string{"etcd", "--name", "etcd0", "--data-dir", filepath.Join(st.dir, "etcd"),
			"--listen-client-urls", cu, "--advertise-client-urls", cu,
			"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
			"--initial-cluster", "etcd0=" + pu, "--initial-cluster-token", "floe-" + st.Name},
	})
	if st.ObjectStore == "" {
		st.S3 = &ownS3{
			Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", s3Port),
			Region:    s3Region,
			Bucket:    s3Bucket,
			AccessKey: "FLOE" + strings.ToUpper(randomHex(8)),
			SecretKey: randomHex(20),
		}
		// Written unescaped for people to read; url.Parse accepts it.
		st.ObjectStore = fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&path-style=true", st.S3.Bucket, st.Name, st.S3.Endpoint, st.S3.Region)
		st.Processes = append(st.Processes, &process{
			Name: "s3", Kind: kindS3, Bin: "versitygw",
			Ports: map[string]int{"s3": s3Port},
			// versitygw reads its root credentials from the environment
			// (ROOT_ACCESS_KEY, ROOT_SECRET_KEY), keeping them off ps.
			Args: []string{"--region", st.S3.Region, "--port", fmt.Sprintf("127.0.0.1:%d", s3Port), "--quiet",
				"posix", filepath.Join(st.dir, "s3")},
		})
	}
	roles := "catalog,registry"
	if st.Catalog != catalogEmbedded {
		roles = "registry"
	}
	st.Processes = append(st.Processes, &process{
		Name: "catalog", Kind: kindCatalog, Bin: "floe",
		Ports: map[string]int{"catalog": ports[3], "registry": ports[4], "admin": ports[5]},
		Args: []string{"serve", "--roles", roles, "--data-dir", filepath.Join(st.dir, "catalog"),
			"--etcd-endpoints", cu, "--object-store", st.ObjectStore,
			"--catalog-addr", fmt.Sprintf("127.0.0.1:%d", ports[3]),
			"--registry-addr", fmt.Sprintf("127.0.0.1:%d", ports[4]),
			"--admin-addr", fmt.Sprintf("127.0.0.1:%d", ports[5])},
	})
	return st.addBrokers(st.Brokers)
}

// addBrokers plans brokers until there are n; node ids count from 0.
func (st *clusterState) addBrokers(n int) error {
	have := st.procs(kindBroker)
	if len(have) >= n {
		return nil
	}
	etcd := st.proc(kindEtcd)
	ports, err := freePorts(2*(n-len(have)), st.plannedPorts())
	if err != nil {
		return err
	}
	next := 0
	for _, p := range have {
		next = max(next, p.NodeID+1)
	}
	for i := 0; len(have) < n; i++ {
		kafka, admin := ports[2*i], ports[2*i+1]
		name := fmt.Sprintf("broker-%d", next)
		p := &process{
			Name: name, Kind: kindBroker, NodeID: next, Bin: "floe",
			Ports: map[string]int{"kafka": kafka, "admin": admin},
			Args: []string{"serve", "--roles", "broker", "--node-id", strconv.Itoa(next),
				"--data-dir", filepath.Join(st.dir, name),
				"--kafka-addr", fmt.Sprintf("127.0.0.1:%d", kafka),
				"--admin-addr", fmt.Sprintf("127.0.0.1:%d", admin),
				"--etcd-endpoints", "http://" + etcd.addr("client"),
				"--object-store", st.ObjectStore,
				"--catalog-uri", st.catalogURI(),
				"--registry-url", st.registryURL()},
		}
		st.Processes = append(st.Processes, p)
		have = append(have, p)
		next++
	}
	return nil
}

// childEnv is the environment of the cluster's processes: floectl's own,
// minus FLOE_* (floe serve would read them as flags), plus the credentials
// of the cluster's own versitygw.
func (st *clusterState) childEnv(p *process) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FLOE_") {
			continue
		}
		if st.S3 != nil && (strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "ROOT_")) {
			continue
		}
		env = append(env, kv)
	}
	if st.S3 != nil {
		if p.Kind == kindS3 {
			env = append(env, "ROOT_ACCESS_KEY="+st.S3.AccessKey, "ROOT_SECRET_KEY="+st.S3.SecretKey)
		} else {
			env = append(env, "AWS_ACCESS_KEY_ID="+st.S3.AccessKey, "AWS_SECRET_ACCESS_KEY="+st.S3.SecretKey,
				"AWS_REGION="+st.S3.Region)
		}
	}
	return env
}

// launched is a process started by this floectl run; Wait reaps it, so an
// early exit is seen at once (and never left a zombie while floectl runs).
type launched struct {
	exited chan struct{}
	err    error
}

func (st *clusterState) launch(p *process, bins *binaries) (*launched, error) {
	bin, err := bins.path(p.Bin)
	if err != nil {
		return nil, err
	}
	if p.Kind == kindS3 {
		// versitygw serves buckets from this directory; it must exist.
		if err := os.MkdirAll(filepath.Join(st.dir, "s3"), 0o755); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(st.dir, p.Name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "=== %s floectl: starting %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(p.Args, " "))
	cmd := exec.Command(bin, p.Args...)
	cmd.Dir = st.dir
	cmd.Env = st.childEnv(p)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.Pid = cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(st.dir, p.Name+".pid"), []byte(strconv.Itoa(p.Pid)+"\n"), 0o644); err != nil {
		return nil, err
	}
	l := &launched{exited: make(chan struct{})}
	go func() {
		l.err = cmd.Wait()
		close(l.exited)
	}()
	return l, nil
}

// logTail returns the end of a process's log.
func (st *clusterState) logTail(p *process) string {
	raw, err := os.ReadFile(filepath.Join(st.dir, p.Name+".log"))
	if err != nil {
		return ""
	}
	if len(raw) > logTailBytes {
		raw = raw[len(raw)-logTailBytes:]
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	return string(raw)
}

// waves is the start order: metadata and object store, then the catalog
// and registry the brokers point at, then the brokers.
var waves = []struct {
	kinds []string
	title string
}{
	{[]string{kindEtcd}, "metadata store (floe etcd)"},
	{[]string{kindS3}, "object store (versitygw)"},
	{[]string{kindCatalog}, "catalog and schema registry"},
	{[]string{kindBroker}, "brokers"},
}

// startAll starts every process of st that is not running, wave by wave,
// and waits for each wave to serve. It saves st after each launch so pids
// are on disk before anything waits.
func (st *clusterState) startAll(ctx context.Context, bins *binaries, deadline time.Time, w io.Writer) error {
	var steps []int
	for i, wv := range waves {
		for _, k := range wv.kinds {
			if len(st.procs(k)) > 0 {
				steps = append(steps, i)
				break
			}
		}
	}
	for n, i := range steps {
		var procs []*process
		for _, k := range waves[i].kinds {
			procs = append(procs, st.procs(k)...)
		}
		title := waves[i].title
		if procs[0].Kind == kindCatalog && st.Catalog != catalogEmbedded {
			title = "schema registry"
		}
		if err := st.startWave(ctx, bins, procs, fmt.Sprintf("[%d/%d] %s", n+1, len(steps), title), deadline, w); err != nil {
			return err
		}
		if procs[0].Kind == kindS3 {
			if err := st.ensureBucket(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *clusterState) startWave(ctx context.Context, bins *binaries, procs []*process, title string, deadline time.Time, w io.Writer) error {
	began := time.Now()
	fmt.Fprintf(w, "  %-44s", title)
	started := map[*process]*launched{}
	for _, p := range procs {
		if p.alive(st.dir) {
			continue
		}
		l, err := st.launch(p, bins)
		if err != nil {
			fmt.Fprintln(w, " FAILED")
			return err
		}
		started[p] = l
	}
	if err := st.save(); err != nil {
		fmt.Fprintln(w, " FAILED")
		return err
	}
	ready := map[*process]bool{}
	lastReport, lastCount := time.Now(), -1
	for {
		for _, p := range procs {
			if ready[p] {
				continue
			}
			if l, ok := started[p]; ok {
				select {
				case <-l.exited:
					fmt.Fprintln(w, " FAILED")
					return fmt.Errorf("%s exited while starting (%v); end of %s:\n%s", p.Name, l.err,
						filepath.Join(st.dir, p.Name+".log"), st.logTail(p))
				default:
				}
			} else if !p.alive(st.dir) {
				fmt.Fprintln(w, " FAILED")
				return fmt.Errorf("%s (pid %d) is no longer running; end of its log:\n%s", p.Name, p.Pid, st.logTail(p))
			}
			if p.probe(ctx) == nil {
				ready[p] = true
			}
		}
		if len(procs) > 1 && len(ready) != lastCount {
			fmt.Fprintf(w, " %d/%d", len(ready), len(procs))
			lastCount, lastReport = len(ready), time.Now()
		}
		if len(ready) == len(procs) {
			fmt.Fprintf(w, " ready (%.1fs)\n", time.Since(began).Seconds())
			return nil
		}
		if time.Since(lastReport) >= time.Second {
			fmt.Fprint(w, ".")
			lastReport = time.Now()
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(w, " TIMED OUT")
			var notReady []string
			for _, p := range procs {
				if !ready[p] {
					notReady = append(notReady, fmt.Sprintf("%s (%v)", p.Name, p.probe(ctx)))
				}
			}
			return fmt.Errorf("not ready in time: %s", strings.Join(notReady, ", "))
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w, " INTERRUPTED")
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureBucket creates the cluster's bucket in its own versitygw.
func (st *clusterState) ensureBucket(ctx context.Context) error {
	if st.S3 == nil {
		return nil
	}
	cl := s3.New(s3.Options{
		BaseEndpoint: aws.String(st.S3.Endpoint),
		Region:       st.S3.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(st.S3.AccessKey, st.S3.SecretKey, ""),
		// versitygw does not want the SDK's default CRC trailers.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(st.S3.Bucket)}); err == nil {
		return nil
	}
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(st.S3.Bucket)}); err != nil {
		return fmt.Errorf("create bucket %s in versitygw: %w", st.S3.Bucket, err)
	}
	return nil
}

// stopProcess sends SIGTERM, then SIGKILL after stopTimeout.
func (st *clusterState) stopProcess(p *process) error {
	if !p.alive(st.dir) {
		return nil
	}
	_ = syscall.Kill(p.Pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for p.alive(st.dir) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
			killDeadline := time.Now().Add(10 * time.Second)
			for p.alive(st.dir) {
				if time.Now().After(killDeadline) {
					return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.Pid)
				}
				time.Sleep(50 * time.Millisecond)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// stopAll stops processes in reverse start order, brokers together.
func (st *clusterState) stopAll(w io.Writer) error {
	var errs []error
	for i := len(waves) - 1; i >= 0; i-- {
		var procs []*process
		for _, k := range waves[i].kinds {
			for _, p := range st.procs(k) {
				if p.alive(st.dir) {
					procs = append(procs, p)
				}
			}
		}
		if len(procs) == 0 {
			continue
		}
		began := time.Now()
		fmt.Fprintf(w, "  stopping %-35s", waves[i].title)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(func() {
				if err := st.stopProcess(p); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		fmt.Fprintf(w, " stopped (%.1fs)\n", time.Since(began).Seconds())
	}
	return errors.Join(errs...)
}

func createLocal(ctx context.Context, st *clusterState, timeout time.Duration, keep bool, w io.Writer) error {
	began := time.Now()
	bins := &binaries{}
	// Fail before anything starts if a binary is missing.
	if _, err := bins.path("floe"); err != nil {
		_ = os.RemoveAll(st.dir)
		return err
	}
	if st.ObjectStore == "" {
		if _, err := bins.path("versitygw"); err != nil {
			_ = os.RemoveAll(st.dir)
			return err
		}
	}
	if err := st.planLocal(); err != nil {
		_ = os.RemoveAll(st.dir)
		return err
	}
	if err := st.save(); err != nil {
		_ = os.RemoveAll(st.dir)
		return err
	}
	fmt.Fprintf(w, "Creating cluster %q: %s, target local, catalog %s\n", st.Name, plural(st.Brokers, "broker"), st.Catalog)
	fmt.Fprintf(w, "  cluster directory %s\n", st.dir)
	fmt.Fprintf(w, "Cluster %q is STARTING\n", st.Name)
	err := st.startAll(ctx, bins, began.Add(timeout), w)
	if err != nil {
		if keep {
			fmt.Fprintf(w, "Cluster %q TERMINATED_WITH_ERRORS; kept for inspection in %s (--keep-on-failure)\n", st.Name, st.dir)
			return err
		}
		fmt.Fprintf(w, "Cluster %q TERMINATED_WITH_ERRORS; cleaning up\n", st.Name)
		if stopErr := st.stopAll(w); stopErr != nil {
			return errors.Join(err, fmt.Errorf("cleanup left processes running; see %s: %w", st.dir, stopErr))
		}
		if rmErr := os.RemoveAll(st.dir); rmErr != nil {
			return errors.Join(err, rmErr)
		}
		return err
	}
	st.ReadySeconds = time.Since(began).Seconds()
	if err := st.save(); err != nil {
		return err
	}
	fmt.Fprintf(w, "Cluster %q is RUNNING: ready in %.1fs\n", st.Name, st.ReadySeconds)
	st.printEndpoints(w)
	return nil
}

func (st *clusterState) printEndpoints(w io.Writer) {
	fmt.Fprintf(w, "  bootstrap servers  %s\n", st.bootstrap())
	fmt.Fprintf(w, "  catalog URI        %s\n", st.catalogURI())
	fmt.Fprintf(w, "  registry URL       %s\n", st.registryURL())
	fmt.Fprintf(w, "`floectl cluster describe %s` shows the Trino and Spark settings; `floectl cluster delete %s` stops it.\n", st.Name, st.Name)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// recoverLocal is create on an existing cluster: report it if it runs,
// restart what died if not (same ports, data and bucket).
func recoverLocal(ctx context.Context, st *clusterState, timeout time.Duration, w io.Writer) error {
	began := time.Now()
	var down []string
	for _, p := range st.Processes {
		if !p.alive(st.dir) {
			down = append(down, p.Name)
		}
	}
	if len(st.Processes) == 0 {
		return fmt.Errorf("cluster %q has no processes recorded; delete it and create it again", st.Name)
	}
	if len(down) == 0 {
		var notReady []string
		for _, p := range st.Processes {
			if err := p.probe(ctx); err != nil {
				notReady = append(notReady, fmt.Sprintf("%s: %v", p.Name, err))
			}
		}
		if len(notReady) == 0 {
			fmt.Fprintf(w, "Cluster %q already exists and is RUNNING (%s)\n", st.Name, plural(st.Brokers, "broker"))
			st.printEndpoints(w)
			return nil
		}
		fmt.Fprintf(w, "Cluster %q is running but not ready: %s; waiting\n", st.Name, strings.Join(notReady, "; "))
	} else {
		fmt.Fprintf(w, "Cluster %q is DEGRADED (%s down): restarting\n", st.Name, strings.Join(down, ", "))
	}
	if err := st.startAll(ctx, &binaries{}, began.Add(timeout), w); err != nil {
		fmt.Fprintf(w, "Cluster %q could not be recovered; `floectl cluster delete %s` removes it\n", st.Name, st.Name)
		return err
	}
	fmt.Fprintf(w, "Cluster %q is RUNNING: recovered in %.1fs\n", st.Name, time.Since(began).Seconds())
	st.printEndpoints(w)
	return nil
}

func scaleLocal(ctx context.Context, st *clusterState, brokers int, timeout time.Duration, w io.Writer) error {
	began := time.Now()
	have := st.procs(kindBroker)
	switch {
	case brokers == len(have):
		fmt.Fprintf(w, "Cluster %q already has %s\n", st.Name, plural(brokers, "broker"))
		return nil
	case brokers > len(have):
		fmt.Fprintf(w, "Cluster %q is RESIZING: %d -> %d brokers\n", st.Name, len(have), brokers)
		if err := st.addBrokers(brokers); err != nil {
			return err
		}
		st.Brokers = brokers
		if err := st.save(); err != nil {
			return err
		}
		if err := st.startAll(ctx, &binaries{}, began.Add(timeout), w); err != nil {
			return err
		}
	default:
		fmt.Fprintf(w, "Cluster %q is RESIZING: %d -> %d brokers\n", st.Name, len(have), brokers)
		// The newest brokers go first; SIGTERM lets each hand over.
		for _, p := range have[brokers:] {
			fmt.Fprintf(w, "  stopping %-35s", p.Name)
			if err := st.stopProcess(p); err != nil {
				fmt.Fprintln(w, " FAILED")
				return err
			}
			fmt.Fprintln(w, " stopped")
			var keepProcs []*process
			for _, q := range st.Processes {
				if q != p {
					keepProcs = append(keepProcs, q)
				}
			}
			st.Processes = keepProcs
			st.Brokers = len(st.procs(kindBroker))
			if err := st.save(); err != nil {
				return err
			}
			for _, suffix := range []string{"", ".pid"} {
				_ = os.RemoveAll(filepath.Join(st.dir, p.Name+suffix))
			}
		}
	}
	fmt.Fprintf(w, "Cluster %q is RUNNING with %s (%.1fs)\n", st.Name, plural(brokers, "broker"), time.Since(began).Seconds())
	fmt.Fprintf(w, "  bootstrap servers  %s\n", st.bootstrap())
	return nil
}

func deleteLocal(_ context.Context, st *clusterState, w io.Writer) error {
	began := time.Now()
	fmt.Fprintf(w, "Cluster %q is TERMINATING\n", st.Name)
	if err := st.stopAll(w); err != nil {
		return fmt.Errorf("cluster %q: %w (its directory %s is kept)", st.Name, err, st.dir)
	}
	if err := os.RemoveAll(st.dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "Cluster %q is TERMINATED (%.1fs); %s removed\n", st.Name, time.Since(began).Seconds(), st.dir)
	return nil
}
