package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pgBinDir is where Debian's postgresql-15 package installs its programs.
// FLOE_PG_BINDIR overrides it.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// testPostgres is one PostgreSQL server shared by the tests of this package:
// started on first use, stopped by TestMain. Each test gets its own database.
var testPostgres struct {
	once sync.Once
	srv  *pgServer
	err  error
}

// postgresDSN returns the DSN of a fresh, empty database on the shared test
// server, starting the server if needed. A missing PostgreSQL installation
// fails the test: `make deps` installs postgresql-15.
func postgresDSN(t *testing.T) string {
	t.Helper()
	testPostgres.once.Do(func() {
		testPostgres.srv, testPostgres.err = startPostgres()
	})
	if testPostgres.err != nil {
		t.Fatalf("postgres: %v", testPostgres.err)
	}
	return testPostgres.srv.newDatabase(t)
}

func stopTestPostgres() {
	if testPostgres.srv != nil {
		testPostgres.srv.stop()
	}
}

type pgServer struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File

	mu  sync.Mutex
	seq int
}

func pgBin(name string) (string, error) {
	dir := pgBinDir
	if d := os.Getenv("FLOE_PG_BINDIR"); d != "" {
		dir = d
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found (install postgresql-15, e.g. `make deps` or `apt-get install -y postgresql-15`): %w", p, err)
	}
	return p, nil
}

// asPostgresUser runs PostgreSQL programs as the postgres user when the
// tests run as root, which initdb and postgres refuse.
func asPostgresUser(name string, args ...string) (*exec.Cmd, error) {
	if os.Geteuid() != 0 {
		return exec.Command(name, args...), nil
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return nil, fmt.Errorf("running as root needs runuser to drop to the postgres user: %w", err)
	}
	return exec.Command(runuser, append([]string{"-u", "postgres", "--", name}, args...)...), nil
}

func startPostgres() (*pgServer, error) {
	initdb, err := pgBin("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := pgBin("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "floe-catalog-pg-")
	if err != nil {
		return nil, err
	}
	s := &pgServer{dir: dir, exited: make(chan struct{})}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	cmd, err := asPostgresUser(initdb, "-D", data, "-U", "floe", "--auth=trust", "-E", "UTF8", "--no-sync")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}

	for attempt := 0; ; attempt++ {
		err := s.run(postgres, data)
		if err == nil {
			return s, nil
		}
		if attempt == 2 {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// run starts postgres on a free port and waits until it accepts
// connections; a port lost to a race between probe and bind is retried by
// the caller.
func (s *pgServer) run(postgres, data string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	logPath := filepath.Join(s.dir, "postgres.log")
	s.log, err = os.Create(logPath)
	if err != nil {
		return err
	}
	cmd, err := asPostgresUser(postgres, "-D", data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Own process group: a Ctrl-C to `go test` must not race our shutdown.
	// Pdeathsig: if the test binary dies without TestMain's cleanup (a test
	// timeout panics), postgres is told to shut down rather than linger.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open("pgx", s.dsn("postgres"))
		if err == nil {
			err = db.Ping()
			_ = db.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited during startup: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within a minute: %v: %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://floe@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// newDatabase creates an empty database and returns its DSN.
func (s *pgServer) newDatabase(t *testing.T) string {
	t.Helper()
	s.mu.Lock()
	s.seq++
	name := fmt.Sprintf("catalog_test_%d", s.seq)
	s.mu.Unlock()
	db, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.dsn(name)
}

// stop shuts postgres down (SIGINT: fast shutdown) and removes its files.
func (s *pgServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		// runuser forwards the signal; make sure the whole group goes.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	if s.log != nil {
		_ = s.log.Close()
	}
	if !strings.HasPrefix(s.dir, os.TempDir()) {
		return // never remove anything we did not create
	}
	_ = os.RemoveAll(s.dir)
}
