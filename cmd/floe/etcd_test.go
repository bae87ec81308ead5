package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// envRunMain makes the test binary act as the floe command, so the tests
// below run `floe etcd` as real processes built from this very source.
const envRunMain = "FLOE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Args = append([]string{"floe"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// etcdMember is one `floe etcd` process.
type etcdMember struct {
	name, clientURL, peerURL, dataDir string
	args                              []string
	cmd                               *exec.Cmd
	done                              chan struct{}
	log                               *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (m *etcdMember) start(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(self, append([]string{"etcd"}, m.args...)...)
	m.cmd.Env = append(os.Environ(), envRunMain+"=1")
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.done = make(chan struct{})
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
}

func (m *etcdMember) kill() {
	_ = m.cmd.Process.Kill()
	<-m.done
}

func (m *etcdMember) stop(t *testing.T) {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		if !m.cmd.ProcessState.Success() {
			t.Errorf("member %s exited with %v after SIGTERM:\n%s", m.name, m.cmd.ProcessState, m.log.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("member %s ignored SIGTERM for 20s", m.name)
		m.kill()
	}
}

// startCluster starts n members of one new cluster on free loopback ports.
func startCluster(t *testing.T, n int) []*etcdMember {
	t.Helper()
	members := make([]*etcdMember, n)
	var initial []string
	for i := range members {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			dataDir:   filepath.Join(t.TempDir(), "etcd"),
			log:       &lockedBuffer{},
		}
		members[i] = m
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range members {
		m.args = []string{
			"--name", m.name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
		}
		m.start(t)
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.stop(t)
		}
		if t.Failed() {
			for _, m := range members {
				t.Logf("--- member %s log:\n%s", m.name, m.log.String())
			}
		}
	})
	return members
}

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// eventually retries f until it succeeds or a minute has passed (members
// elect a leader after they start, and again after one is killed).
func eventually(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getValue(ctx context.Context, cli *clientv3.Client, key string) (string, error) {
	resp, err := cli.Get(ctx, key) // linearizable: needs a quorum
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) != 1 {
		return "", fmt.Errorf("%s: %d keys", key, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value), nil
}

// TestEtcdThreeMembers: three `floe etcd` processes form one cluster; a
// write through one member is read through another; with one member
// SIGKILLed the other two still serve writes and linearizable reads; the
// killed member restarted on its data directory catches up.
func TestEtcdThreeMembers(t *testing.T) {
	members := startCluster(t, 3)
	c0 := client(t, members[0].clientURL)
	c1 := client(t, members[1].clientURL)
	c2 := client(t, members[2].clientURL)

	eventually(t, "put through member 0", func(ctx context.Context) error {
		_, err := c0.Put(ctx, "/floe/test/a", "1")
		return err
	})
	eventually(t, "read through member 2", func(ctx context.Context) error {
		v, err := getValue(ctx, c2, "/floe/test/a")
		if err == nil && v != "1" {
			return fmt.Errorf("got %q, want 1", v)
		}
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ml, err := c1.MemberList(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("member list has %d members, want 3: %v", len(ml.Members), ml.Members)
	}
	// The limits floe needs are on: a transaction of 200 operations (etcd's
	// stock limit is 128).
	eventually(t, "a 200-operation transaction", func(ctx context.Context) error {
		ops := make([]clientv3.Op, 200)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprintf("/floe/test/txn/%03d", i), "x")
		}
		_, err := c0.Txn(ctx).Then(ops...).Commit()
		return err
	})

	members[0].kill()
	eventually(t, "put through member 1 with member 0 dead", func(ctx context.Context) error {
		_, err := c1.Put(ctx, "/floe/test/b", "2")
		return err
	})
	eventually(t, "read through member 2 with member 0 dead", func(ctx context.Context) error {
		v, err := getValue(ctx, c2, "/floe/test/b")
		if err == nil && v != "2" {
			return fmt.Errorf("got %q, want 2", v)
		}
		return err
	})

	members[0].start(t)
	eventually(t, "restarted member 0 serves the write it missed", func(ctx context.Context) error {
		v, err := getValue(ctx, c0, "/floe/test/b")
		if err == nil && v != "2" {
			return fmt.Errorf("got %q, want 2", v)
		}
		return err
	})
}

// TestEtcdFlagErrors: bad flags are refused with a message naming the flag.
func TestEtcdFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no port", []string{"--listen-client-urls", "http://127.0.0.1"}, "--listen-client-urls"},
		{"bad scheme", []string{"--listen-peer-urls", "unix://x:1"}, "scheme"},
		{"wildcard advertised", []string{"--listen-client-urls", "http://0.0.0.0:2379"}, "advertised URL"},
		{"bad state", []string{"--initial-cluster-state", "old"}, "want new or existing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c etcdConfig
			fs := newEtcdFlagSet(&c)
			if err := fs.Parse(append(tc.args, "--data-dir", t.TempDir())); err != nil {
				t.Fatal(err)
			}
			_, err := c.embedConfig()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
