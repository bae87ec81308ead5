package chaos

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore/metastoretest"
	"github.com/floe-io/floe/internal/testutil/floeproc"
)

// etcdReadyTimeout bounds how long a member takes to answer /health once
// started (a new cluster needs a quorum of members up first).
const etcdReadyTimeout = 60 * time.Second

// etcdCluster is a real etcd cluster of `floe etcd` processes, one per
// member, each with its own data directory, ports and log file. Members
// can be SIGKILLed and restarted on the same data directory.
type etcdCluster struct {
	t       *testing.T
	bin     string
	members []*etcdMember
}

type etcdMember struct {
	name      string
	dataDir   string
	clientURL string
	peerURL   string
	logPath   string
	args      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// startEtcdCluster starts n members bootstrapping one new cluster and
// waits until every member reports itself healthy. A cluster whose member
// lost a free port to someone else is started over on new ports.
func startEtcdCluster(t *testing.T, n int) *etcdCluster {
	t.Helper()
	bin, err := floeproc.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := &etcdCluster{t: t, bin: bin}
	// Registered before any broker starts, so it runs after the brokers'
	// cleanups: brokers stop before their etcd does.
	t.Cleanup(c.cleanup)
	for attempt := 1; ; attempt++ {
		err := c.bootstrap(n)
		if err == nil {
			break
		}
		c.stopAll()
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			c.printLogs()
			t.Fatalf("etcd cluster: %v", err)
		}
		t.Logf("etcd cluster: a port was taken, starting over: %v", err)
	}
	t.Logf("etcd cluster of %d members ready: %s", n, strings.Join(c.endpoints(), ","))
	return c
}

func (c *etcdCluster) bootstrap(n int) error {
	dir := c.t.TempDir()
	for _, m := range c.members { // a failed attempt's
		_ = m.log.Close()
	}
	c.members = nil
	var initial []string
	for i := range n {
		m := &etcdMember{
			name:      fmt.Sprintf("etcd%d", i),
			dataDir:   filepath.Join(dir, fmt.Sprintf("etcd%d", i)),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", metastoretest.FreePort(c.t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", metastoretest.FreePort(c.t)),
			logPath:   filepath.Join(dir, fmt.Sprintf("etcd%d.log", i)),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = []string{"etcd",
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			// A restarted member has a data directory and ignores this.
			"--initial-cluster-state", "new",
			"--log-level", "warn",
		}
		if err := c.launch(m); err != nil {
			return err
		}
	}
	for _, m := range c.members {
		if err := c.waitHealthy(m); err != nil {
			return err
		}
	}
	return nil
}

func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.clientURL)
	}
	return out
}

func (c *etcdCluster) launch(m *etcdMember) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.log == nil {
		f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		m.log = f
	}
	fmt.Fprintf(m.log, "%s === chaos: start %s %s\n", time.Now().Format("15:04:05.000"), c.bin, strings.Join(m.args, " "))
	cmd := exec.Command(c.bin, m.args...)
	cmd.Stdout = m.log
	cmd.Stderr = m.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// waitHealthy polls the member's /health until it reports a leader.
func (c *etcdCluster) waitHealthy(m *etcdMember) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(etcdReadyTimeout)
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	var last string
	for {
		select {
		case <-done:
			return fmt.Errorf("etcd member %s exited during startup; log:\n%s", m.name, tailFile(m.logPath, 4<<10))
		default:
		}
		resp, err := client.Get(m.clientURL + "/health")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				return nil
			}
			last = fmt.Sprintf("%s %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd member %s not healthy within %v: last /health: %s", m.name, etcdReadyTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill SIGKILLs member i and waits for it to exit.
func (c *etcdCluster) kill(i int) {
	c.t.Helper()
	m := c.members[i]
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	fmt.Fprintf(m.log, "%s === chaos: SIGKILL\n", time.Now().Format("15:04:05.000"))
	m.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// restart starts member i again on its data directory and waits until it
// is healthy.
func (c *etcdCluster) restart(i int) {
	c.t.Helper()
	m := c.members[i]
	if err := c.launch(m); err != nil {
		c.t.Fatal(err)
	}
	if err := c.waitHealthy(m); err != nil {
		c.t.Fatal(err)
	}
}

// running reports whether member i's process is alive.
func (m *etcdMember) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// stopAll stops every member: SIGTERM, then SIGKILL after 10s.
func (c *etcdCluster) stopAll() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		m.mu.Lock()
		cmd, done := m.cmd, m.done
		m.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}()
	}
	wg.Wait()
}

func (c *etcdCluster) cleanup() {
	c.stopAll()
	if c.t.Failed() {
		c.printLogs()
	}
	for _, m := range c.members {
		if m.log != nil {
			_ = m.log.Close()
		}
	}
}

func (c *etcdCluster) printLogs() {
	for _, m := range c.members {
		c.t.Logf("tail of etcd member %s log %s:\n%s", m.name, m.logPath, tailFile(m.logPath, 16<<10))
	}
}

// tailFile returns the last n bytes of a file, from a line start.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log)"
		}
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	if i := strings.IndexByte(string(b), '\n'); i >= 0 {
		b = b[i+1:]
	}
	return "...\n" + string(b)
}
