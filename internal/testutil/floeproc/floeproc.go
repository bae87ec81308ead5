// Package floeproc runs the real floe binary (bin/floe, built by `make
// build`) as a subprocess for integration tests: on free loopback ports,
// backed by a real S3 server (versitygw), with its log captured to a file
// that is printed when the test fails. It can SIGKILL and restart the
// process on the same metadata and bucket, and, with an external etcd,
// delete the broker's data directory between runs.
package floeproc

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

// EnvBinary names the environment variable that overrides the floe binary.
const EnvBinary = "FLOE_BINARY"

const (
	// readyTimeout bounds how long a start may take to answer /readyz.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long SIGTERM gets before SIGKILL.
	stopTimeout = 20 * time.Second
	// logTail is how much of the log a failing test prints.
	logTail = 64 << 10
	// startAttempts retries a first start whose free port was taken by
	// someone else between picking and binding it.
	startAttempts = 3
)

// Options configure Start. The zero value runs the broker role on embedded
// etcd over a fresh versitygw and bucket.
type Options struct {
	// Roles is passed to --roles; default "broker".
	Roles string
	// ExternalEtcd runs etcd outside the floe process
	// (metastoretest.StartEtcd), so that WipeDataDir loses no metadata.
	ExternalEtcd bool
	// S3 is the server to store objects in; nil starts one for the test.
	S3 *s3server.Server
	// Bucket is the bucket to use (it must exist when S3 is given); empty
	// creates a fresh one.
	Bucket string
	// Prefix is the key prefix inside the bucket; default "floe".
	Prefix string
	// EtcdEndpoints points floe at an etcd the test already runs (several
	// floe processes of one cluster share it); it implies ExternalEtcd.
	EtcdEndpoints []string
	// Args are extra `floe serve` flags, e.g. "--wal-flush-interval=20ms".
	Args []string
	// ObjectStoreEndpoint, when set, is the endpoint floe reaches the
	// object store at instead of S3's own: a fault-injecting proxy in front
	// of it (test/chaos). Bucket and credentials stay S3's.
	ObjectStoreEndpoint string
}

// Floe is one floe process (and its successors after Restart), with fixed
// ports, data directory, metadata and bucket across restarts.
type Floe struct {
	t       testing.TB
	bin     string
	dataDir string
	logPath string
	s3      *s3server.Server
	bucket  string
	opts    Options

	kafkaAddr     string
	adminAddr     string
	etcdClientURL string
	etcdPeerURL   string
	etcdEndpoints []string // external etcd, or nil

	mu      sync.Mutex // guards proc, starts, closed and the processes' flags
	proc    *process   // the current (or last) process; nil before the first start
	logFile *os.File
	starts  int
	closed  bool          // the test is over: exits are expected
	crashed chan struct{} // closed when floe exits without being asked to
}

// process is one run of the binary.
type process struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	err      error         // cmd.Wait's result; read only after done is closed
	ready    bool          // it answered /readyz
	stopping bool          // the harness signalled it
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Start runs floe for the test, waits until /readyz answers 200, and stops
// it (SIGTERM, then SIGKILL) when the test ends. When the test has failed,
// the tail of floe's log is printed. Start fails the test if bin/floe is
// missing ("run make build") or floe does not become ready.
func Start(t testing.TB, opts Options) *Floe {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	warnIfStale(t, bin)
	if opts.Roles == "" {
		opts.Roles = "broker"
	}
	if opts.Prefix == "" {
		opts.Prefix = "floe"
	}
	srv := opts.S3
	if srv == nil {
		srv = s3server.Start(t)
	}
	bucket := opts.Bucket
	if bucket == "" {
		bucket = srv.Bucket(t, "floe-"+strings.ToLower(randomSuffix()))
	}
	dir := t.TempDir()
	f := &Floe{
		t:       t,
		bin:     bin,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "floe.log"),
		s3:      srv,
		bucket:  bucket,
		opts:    opts,
		crashed: make(chan struct{}),
	}
	switch {
	case len(opts.EtcdEndpoints) > 0:
		f.etcdEndpoints = opts.EtcdEndpoints
	case opts.ExternalEtcd:
		f.etcdEndpoints = metastoretest.StartEtcd(t)
	}
	logFile, err := os.OpenFile(f.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("floeproc: open log: %v", err)
	}
	f.logFile = logFile
	// Registered after StartEtcd's cleanup so it runs before it: floe stops
	// before its external etcd does.
	t.Cleanup(f.cleanup)

	for attempt := 1; ; attempt++ {
		f.pickPorts(t)
		err := f.start()
		if err == nil {
			break
		}
		if attempt == startAttempts || !errors.Is(err, errAddrInUse) {
			t.Fatalf("floeproc: %v", err)
		}
		t.Logf("floeproc: a port was taken, retrying: %v", err)
		// A failed first start may have left an embedded etcd member
		// bound to the old peer URL; start it over clean.
		if err := os.RemoveAll(f.dataDir); err != nil {
			t.Fatalf("floeproc: %v", err)
		}
	}
	t.Logf("floeproc: floe ready: kafka %s, admin %s, log %s", f.kafkaAddr, f.adminAddr, f.logPath)
	return f
}

// KafkaAddr is the Kafka listener's host:port (the same after Restart).
func (f *Floe) KafkaAddr() string { return f.kafkaAddr }

// AdminAddr is the admin HTTP listener's host:port.
func (f *Floe) AdminAddr() string { return f.adminAddr }

// DataDir is the broker's --data-dir.
func (f *Floe) DataDir() string { return f.dataDir }

// LogPath is the file floe's stdout and stderr go to, across restarts.
func (f *Floe) LogPath() string { return f.logPath }

// S3 is the object store server.
func (f *Floe) S3() *s3server.Server { return f.s3 }

// Bucket is the bucket floe stores objects in.
func (f *Floe) Bucket() string { return f.bucket }

// ObjectStoreURL is the --object-store URL.
func (f *Floe) ObjectStoreURL() string {
	u := f.s3.URL(f.bucket, f.opts.Prefix)
	if f.opts.ObjectStoreEndpoint == "" {
		return u
	}
	parsed, err := url.Parse(u)
	if err != nil {
		panic(fmt.Sprintf("floeproc: s3server made an unparsable URL %q: %v", u, err))
	}
	q := parsed.Query()
	q.Set("endpoint", f.opts.ObjectStoreEndpoint)
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// EtcdEndpoints returns the external etcd's endpoints, or nil when etcd is
// embedded in the floe process.
func (f *Floe) EtcdEndpoints() []string { return f.etcdEndpoints }

// Pid is the current process's id (0 before the first start).
func (f *Floe) Pid() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proc == nil {
		return 0
	}
	return f.proc.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (f *Floe) Running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runningLocked()
}

func (f *Floe) runningLocked() bool { return f.proc != nil && f.proc.running() }

// Kill sends SIGKILL (a crash: nothing is flushed) and waits for the exit.
func (f *Floe) Kill() {
	f.t.Helper()
	f.mu.Lock()
	p := f.proc
	if !f.runningLocked() {
		f.mu.Unlock()
		f.t.Fatal("floeproc: Kill: floe is not running")
	}
	p.stopping = true
	f.mu.Unlock()
	f.logf("=== floeproc: SIGKILL")
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Pause stops the process with SIGSTOP (a hung broker: its lease runs out
// while it holds its partitions); Resume continues it.
func (f *Floe) Pause() { f.signal(syscall.SIGSTOP, "SIGSTOP") }

// Resume sends SIGCONT.
func (f *Floe) Resume() { f.signal(syscall.SIGCONT, "SIGCONT") }

func (f *Floe) signal(sig syscall.Signal, name string) {
	f.t.Helper()
	f.mu.Lock()
	p := f.proc
	running := f.runningLocked()
	f.mu.Unlock()
	if !running {
		f.t.Fatalf("floeproc: %s: floe is not running", name)
	}
	f.logf("=== floeproc: %s", name)
	_ = p.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits for a clean exit, sending SIGKILL after
// 20s. It fails the test if floe exits with an error on SIGTERM.
func (f *Floe) Stop() {
	f.t.Helper()
	if err := f.stop(); err != nil {
		f.t.Fatalf("floeproc: %v", err)
	}
}

func (f *Floe) stop() error {
	f.mu.Lock()
	p := f.proc
	if !f.runningLocked() {
		f.mu.Unlock()
		return nil
	}
	p.stopping = true
	f.mu.Unlock()
	f.logf("=== floeproc: SIGTERM")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("floe exited with %v after SIGTERM (log: %s)", p.err, f.logPath)
		}
		return nil
	case <-time.After(stopTimeout):
		f.logf("=== floeproc: no exit %v after SIGTERM; SIGKILL", stopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("floe did not exit within %v of SIGTERM (log: %s)", stopTimeout, f.logPath)
	}
}

// Restart starts floe again on the same ports, data directory, etcd and
// bucket, stopping it first (SIGTERM) if it runs, and waits for /readyz.
func (f *Floe) Restart() {
	f.t.Helper()
	if err := f.stop(); err != nil {
		f.t.Fatalf("floeproc: %v", err)
	}
	if err := f.start(); err != nil {
		f.t.Fatalf("floeproc: restart: %v", err)
	}
}

// WipeDataDir deletes the broker's --data-dir while floe is stopped: a
// replaced broker disk. It requires ExternalEtcd (the embedded etcd's data
// lives in the data dir, and losing it loses the cluster's metadata).
func (f *Floe) WipeDataDir() {
	f.t.Helper()
	if f.etcdEndpoints == nil {
		f.t.Fatal("floeproc: WipeDataDir needs Options.ExternalEtcd: the embedded etcd lives in the data dir")
	}
	if f.Running() {
		f.t.Fatal("floeproc: WipeDataDir: stop or kill floe first")
	}
	if err := os.RemoveAll(f.dataDir); err != nil {
		f.t.Fatalf("floeproc: wipe data dir: %v", err)
	}
	f.logf("=== floeproc: data dir %s deleted", f.dataDir)
}

// ReadLog returns the whole log so far.
func (f *Floe) ReadLog() string {
	b, err := os.ReadFile(f.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", f.logPath, err)
	}
	return string(b)
}

func (f *Floe) pickPorts(t testing.TB) {
	f.kafkaAddr = fmt.Sprintf("127.0.0.1:%d", metastoretest.FreePort(t))
	f.adminAddr = fmt.Sprintf("127.0.0.1:%d", metastoretest.FreePort(t))
	f.etcdClientURL = fmt.Sprintf("http://127.0.0.1:%d", metastoretest.FreePort(t))
	f.etcdPeerURL = fmt.Sprintf("http://127.0.0.1:%d", metastoretest.FreePort(t))
}

func (f *Floe) args() []string {
	args := []string{
		"serve",
		"--data-dir", f.dataDir,
		"--roles", f.opts.Roles,
		"--kafka-addr", f.kafkaAddr,
		"--admin-addr", f.adminAddr,
		"--object-store", f.ObjectStoreURL(),
		// Keep other roles, if enabled, off the default ports too.
		"--catalog-addr", "127.0.0.1:0",
		"--registry-addr", "127.0.0.1:0",
	}
	if f.etcdEndpoints != nil {
		args = append(args, "--etcd-endpoints", strings.Join(f.etcdEndpoints, ","))
	} else {
		args = append(args, "--etcd-client-url", f.etcdClientURL, "--etcd-peer-url", f.etcdPeerURL)
	}
	return append(args, f.opts.Args...)
}

// env is the test's environment without FLOE_* settings (which floe reads
// as flag values) plus the S3 credentials.
func (f *Floe) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FLOE_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, f.s3.Env()...)
}

var errAddrInUse = errors.New("address already in use")

// start launches the process and waits for readiness.
func (f *Floe) start() error {
	f.mu.Lock()
	f.starts++
	args := f.args()
	f.logf("=== floeproc: start #%d: %s %s", f.starts, f.bin, strings.Join(args, " "))
	logStart, _ := f.logFile.Seek(0, io.SeekEnd)
	cmd := exec.Command(f.bin, args...)
	cmd.Env = f.env()
	cmd.Stdout = f.logFile
	cmd.Stderr = f.logFile
	// Its own process group: a Ctrl-C on `go test` reaches us, and we
	// stop floe ourselves.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("start %s: %w", f.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	f.proc = p
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		f.exited(p)
	}()
	f.mu.Unlock()

	err := f.waitReady(p)
	f.mu.Lock()
	p.ready = err == nil
	p.stopping = err != nil
	f.mu.Unlock()
	if err == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	<-p.done
	since := f.logSince(logStart)
	if strings.Contains(since, "address already in use") {
		return fmt.Errorf("%w: %v; log:\n%s", errAddrInUse, err, since)
	}
	return fmt.Errorf("%v; log:\n%s", err, since)
}

func (f *Floe) waitReady(p *process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + f.adminAddr + "/readyz"
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		select {
		case <-p.done:
			return fmt.Errorf("floe exited during startup: %v", p.err)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("floe not ready within %v: last /readyz: %s", readyTimeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exited reports a process that exited on its own after it was ready:
// a crash, or a signal from outside the test (a stray pkill). The test
// fails, and Crashed is closed so waits on the broker can stop early.
func (f *Floe) exited(p *process) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !p.ready || p.stopping || f.closed {
		return
	}
	f.logf("=== floeproc: floe exited unexpectedly: %v", p.err)
	f.t.Errorf("floeproc: floe (pid %d) exited unexpectedly, not stopped by the test: %v; "+
		"a crash, or a signal from another process (its log says \"shutting down\" after SIGTERM/SIGINT). Log: %s",
		p.cmd.Process.Pid, p.err, f.logPath)
	select {
	case <-f.crashed:
	default:
		close(f.crashed)
	}
}

// Crashed is closed once floe has exited without the test stopping it;
// tests select on it to give up waiting on a broker that is gone.
func (f *Floe) Crashed() <-chan struct{} { return f.crashed }

// logf writes a harness marker into floe's log so a reader sees what the
// test did between floe's lines.
func (f *Floe) logf(format string, args ...any) {
	fmt.Fprintf(f.logFile, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

func (f *Floe) logSince(off int64) string {
	b, err := os.ReadFile(f.logPath)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return tail(string(b[off:]), logTail)
}

func (f *Floe) cleanup() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.stop()
	if err != nil {
		f.t.Errorf("floeproc: %v", err)
	}
	if f.t.Failed() {
		f.t.Logf("floeproc: tail of floe log %s:\n%s", f.logPath, tail(f.ReadLog(), logTail))
	}
	_ = f.logFile.Close()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}

// FindBinary returns the floe binary: $FLOE_BINARY, else bin/floe under the
// repository root ($FLOE_REPO_ROOT, else the nearest directory above the
// working directory holding go.mod).
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("floeproc: %s=%q is not an executable file", EnvBinary, p)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "floe")
	if !isExecutable(p) {
		return "", fmt.Errorf("floeproc: %s not found: run `make build`", p)
	}
	return p, nil
}

// RepoRoot returns $FLOE_REPO_ROOT, else the nearest directory above the
// working directory that holds go.mod.
func RepoRoot() (string, error) {
	if r := os.Getenv("FLOE_REPO_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("floeproc: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("floeproc: no go.mod above the working directory")
		}
		dir = parent
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// warnIfStale logs when a Go source file of the server is newer than the
// binary: a test against an old build is a confusing way to lose an hour.
func warnIfStale(t testing.TB, bin string) {
	t.Helper()
	fi, err := os.Stat(bin)
	if err != nil {
		return
	}
	root := filepath.Dir(filepath.Dir(bin))
	var newer string
	for _, dir := range []string{"cmd", "broker", "internal", "catalog", "schema", "tabletopic"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || newer != "" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(fi.ModTime()) {
				newer = p
			}
			return nil
		})
	}
	if newer != "" {
		t.Logf("floeproc: WARNING: %s is newer than %s; run `make build` to test the current code", newer, bin)
	}
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}
