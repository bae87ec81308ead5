// Package benchproc holds what the benchmark programs need to run floe
// processes: free loopback addresses and waiting for /readyz.
package benchproc

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitReady polls the admin address's /readyz until it answers 200.
func WaitReady(admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("floe at %s not ready after %v", admin, timeout)
}
