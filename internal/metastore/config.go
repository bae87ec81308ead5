package metastore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults for Config fields left empty.
const (
	DefaultClientURL    = "http://127.0.0.1:2379"
	DefaultPeerURL      = "http://127.0.0.1:2380"
	DefaultPrefix       = "/floe/"
	DefaultDialTimeout  = 5 * time.Second
	DefaultStartTimeout = 60 * time.Second
)

// Config selects and configures the etcd cluster that holds floe's metadata.
//
// With no Endpoints, Open runs a single-node etcd inside the process, storing
// its data in DataDir. With Endpoints, Open connects to an external cluster;
// that cluster must be started with limits raised for floe (see the package
// documentation): --max-txn-ops (floe commits one transaction per flush with a
// few operations per partition, far above etcd's default of 128),
// --max-request-bytes, and --auto-compaction-mode/--auto-compaction-retention.
type Config struct {
	// Endpoints of an external etcd cluster; empty runs an embedded etcd.
	Endpoints []string `yaml:"endpoints"`
	// DataDir holds the embedded etcd's data (required when embedded, ignored otherwise).
	DataDir string `yaml:"data_dir"`
	// ClientURL is the embedded etcd's client listen (and advertise) URL.
	// The port must be explicit: etcd cannot listen on port 0.
	ClientURL string `yaml:"client_url"`
	// PeerURL is the embedded etcd's peer listen (and advertise) URL.
	PeerURL string `yaml:"peer_url"`
	// Prefix is prepended to every key; it must end with "/" so that two
	// deployments sharing a cluster ("/floe/" and "/floe2/") never overlap.
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds the initial connection to etcd.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// StartTimeout bounds how long Open waits for an embedded etcd to become ready.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// UnsafeNoFsync disables fsync in the embedded etcd. Data survives a clean
	// Close but not a machine crash: for tests only.
	UnsafeNoFsync bool `yaml:"-"`
}

// Embedded reports whether the config describes an embedded etcd.
func (c *Config) Embedded() bool { return len(c.Endpoints) == 0 }

// Validate fills in defaults for empty fields and checks the result.
// Open calls it on its own copy, so calling it beforehand is optional.
func (c *Config) Validate() error {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		return fmt.Errorf("metastore: prefix %q must end with \"/\"", c.Prefix)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("metastore: dial timeout %s is negative", c.DialTimeout)
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("metastore: start timeout %s is negative", c.StartTimeout)
	}
	if !c.Embedded() {
		for _, ep := range c.Endpoints {
			if strings.TrimSpace(ep) == "" {
				return errors.New("metastore: empty etcd endpoint")
			}
		}
		return nil
	}
	if c.DataDir == "" {
		return errors.New("metastore: data dir is required for the embedded etcd")
	}
	if c.ClientURL == "" {
		c.ClientURL = DefaultClientURL
	}
	if c.PeerURL == "" {
		c.PeerURL = DefaultPeerURL
	}
	if _, err := parseListenURL(c.ClientURL); err != nil {
		return fmt.Errorf("metastore: client url: %w", err)
	}
	if _, err := parseListenURL(c.PeerURL); err != nil {
		return fmt.Errorf("metastore: peer url: %w", err)
	}
	if c.ClientURL == c.PeerURL {
		return fmt.Errorf("metastore: client and peer url are both %q", c.ClientURL)
	}
	return nil
}

// parseListenURL accepts http://host:port with an explicit, non-zero port.
// TLS is not offered for the embedded etcd: it listens on loopback.
func parseListenURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%q: scheme must be http", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%q: unexpected path", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", raw, err)
	}
	if host == "" {
		return nil, fmt.Errorf("%q: host is required", raw)
	}
	if port == "" || port == "0" {
		return nil, fmt.Errorf("%q: an explicit non-zero port is required (etcd cannot listen on port 0)", raw)
	}
	return u, nil
}
