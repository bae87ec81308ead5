// Package s3server runs a real S3 server (versitygw over a temporary posix
// directory) for tests and local harnesses: one process per Server, on a free
// loopback port, with random credentials.
package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region every Server reports.
const Region = "us-east-1"

// startTimeout bounds how long a freshly started versitygw may take to answer.
const startTimeout = 30 * time.Second

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	output *syncBuffer
	client *s3.Client
}

// Start runs versitygw for the test and stops it in t.Cleanup. It fails the
// test if the binary is missing or the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	s, stop, err := StartProcess(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// StartProcess runs versitygw serving buckets from the posix directory dir
// (created if missing). The returned func stops the process; it is safe to
// call more than once.
func StartProcess(dir string) (*Server, func(), error) {
	bin, err := FindBinary()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("s3server: %w", err)
	}
	// Another process can take the port between our probe and versitygw's
	// bind; a couple of retries make that race harmless.
	var lastErr error
	for range 3 {
		s, stop, err := start(bin, dir)
		if err == nil {
			return s, stop, nil
		}
		lastErr = err
	}
	return nil, nil, lastErr
}

func start(bin, dir string) (*Server, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	s := &Server{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		Region:    Region,
		AccessKey: "AK" + strings.ToUpper(randomHex(9)),
		SecretKey: randomHex(20),
		exited:    make(chan struct{}),
		output:    &syncBuffer{},
	}
	s.cmd = exec.Command(bin,
		"--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", s.Region,
		"--port", fmt.Sprintf("127.0.0.1:%d", port),
		"--quiet",
		"posix", dir)
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	if err := s.cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("s3server: start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	var once sync.Once
	stop := func() { once.Do(s.stop) }
	if err := s.waitReady(); err != nil {
		stop()
		return nil, nil, err
	}
	s.client = s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		// As in objstore/s3: no default CRC trailers against versitygw.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return s, stop, nil
}

// waitReady polls until the server answers HTTP at all (an anonymous request
// gets 403, which is enough to know it listens).
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	httpClient := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("s3server: versitygw exited during startup: %s", s.output.String())
		default:
		}
		resp, err := httpClient.Get(s.Endpoint + "/")
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("s3server: versitygw did not answer on %s within %v: %w; output: %s",
				s.Endpoint, startTimeout, err, s.output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// CreateBucket creates a bucket through the S3 API.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("s3server: create bucket %q: %w", name, err)
	}
	return nil
}

// Bucket creates a bucket for the test and returns its name.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.CreateBucket(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// URL returns the s3:// URL that objstoreurl.Open accepts for this server.
// Open takes credentials from the environment: see Env and SetEnv.
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", s.Region)
	q.Set("path-style", "true")
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + strings.TrimPrefix(prefix, "/"), RawQuery: q.Encode()}
	return u.String()
}

// Env returns the environment assignments (KEY=value) that give an AWS SDK
// client this server's credentials, for child processes.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		// Never let a credential or region lookup reach for the EC2
		// metadata address: tests talk to loopback only.
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv applies Env to the test's own environment (t.Setenv: not usable in
// parallel tests).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("s3server: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// syncBuffer collects the process's output for error messages, keeping only
// the last 64 KiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const limit = 64 << 10
	b.buf.Write(p)
	if b.buf.Len() > limit {
		b.buf.Next(b.buf.Len() - limit)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
