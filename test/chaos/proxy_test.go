package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// s3Proxy is a reverse proxy in front of the S3 server that the brokers'
// --object-store endpoint points at. Outside fault windows it forwards
// every request untouched; in a window it delays requests and fails a
// share of PUTs and GETs with S3 5xx errors, the way a real object store
// misbehaves under load. SigV4 signs the Host header, so the proxy keeps
// the client's Host when forwarding.
type s3Proxy struct {
	srv *httptest.Server
	rp  *httputil.ReverseProxy

	mu  sync.Mutex
	rng *rand.Rand
	cfg proxyFaults

	requests     atomic.Int64
	delayed      atomic.Int64
	failedBefore atomic.Int64 // rejected without reaching S3
	failedAfter  atomic.Int64 // applied by S3, then answered with an error
}

// proxyFaults is the proxy's current fault window; the zero value is none.
type proxyFaults struct {
	// ErrorRate is the probability a PUT or GET fails with a 5xx.
	ErrorRate float64
	// AfterShare is the share of those failures that happen after S3 has
	// applied the request (the response is lost): a PUT that succeeded but
	// reported 500, which a client must treat as unknown.
	AfterShare float64
	// LatencyMin..LatencyMax is added to every request.
	LatencyMin, LatencyMax time.Duration
}

func (f proxyFaults) String() string {
	if f == (proxyFaults{}) {
		return "none"
	}
	s := ""
	if f.ErrorRate > 0 {
		s += fmt.Sprintf("%.0f%% PUT/GET 5xx (%.0f%% after apply)", f.ErrorRate*100, f.AfterShare*100)
	}
	if f.LatencyMax > 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("+%v..%v latency", f.LatencyMin, f.LatencyMax)
	}
	return s
}

// errInjectedAfter marks a response the proxy drops after S3 applied the
// request.
var errInjectedAfter = errors.New("chaos: response dropped after S3 applied the request")

type failAfterKey struct{}

func startS3Proxy(t *testing.T, target string, seed uint64) *s3Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &s3Proxy{rng: rand.New(rand.NewPCG(seed, 0x53)), cfg: proxyFaults{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the host the client signed
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Context().Value(failAfterKey{}) != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return errInjectedAfter
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errInjectedAfter) {
				writeS3Error(w, http.StatusInternalServerError, "InternalError", err.Error())
				return
			}
			writeS3Error(w, http.StatusBadGateway, "BadGateway", "chaos proxy: "+err.Error())
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the endpoint the brokers use.
func (p *s3Proxy) URL() string { return p.srv.URL }

// set replaces the fault window (proxyFaults{} ends it).
func (p *s3Proxy) set(f proxyFaults) {
	p.mu.Lock()
	p.cfg = f
	p.mu.Unlock()
}

// decide draws this request's fate.
func (p *s3Proxy) decide(method string) (delay time.Duration, failBefore, failAfter bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.cfg
	if f.LatencyMax > 0 {
		delay = f.LatencyMin + time.Duration(p.rng.Int64N(int64(f.LatencyMax-f.LatencyMin)+1))
	}
	if (method == http.MethodPut || method == http.MethodGet) && f.ErrorRate > 0 && p.rng.Float64() < f.ErrorRate {
		if p.rng.Float64() < f.AfterShare {
			failAfter = true
		} else {
			failBefore = true
		}
	}
	return delay, failBefore, failAfter
}

func (p *s3Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	delay, failBefore, failAfter := p.decide(r.Method)
	if delay > 0 {
		p.delayed.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if failBefore {
		p.failedBefore.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // keep the connection reusable
		code, name := http.StatusServiceUnavailable, "SlowDown"
		if p.requests.Load()%2 == 0 {
			code, name = http.StatusInternalServerError, "InternalError"
		}
		writeS3Error(w, code, name, "chaos proxy: injected error")
		return
	}
	if failAfter {
		p.failedAfter.Add(1)
		r = r.WithContext(context.WithValue(r.Context(), failAfterKey{}, true))
	}
	p.rp.ServeHTTP(w, r)
}

func (p *s3Proxy) stats() string {
	return fmt.Sprintf("%d requests, %d delayed, %d failed before S3, %d failed after S3 applied them",
		p.requests.Load(), p.delayed.Load(), p.failedBefore.Load(), p.failedAfter.Load())
}

// writeS3Error answers like S3 does, so the SDK classifies (and retries)
// the error as it would a real one.
func writeS3Error(w http.ResponseWriter, code int, name, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(code)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>chaos</RequestId></Error>`, name, msg)
}
