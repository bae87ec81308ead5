// Package objstoreurl opens an objstore.Bucket from a URL such as the
// --object-store flag's. It lives apart from package objstore because it
// imports every backend, and the backends import objstore.
package objstoreurl

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/filesystem"
	"github.com/floe-io/floe/internal/objstore/memory"
	"github.com/floe-io/floe/internal/objstore/s3"
)

// Open returns the bucket a URL names:
//
//	file:///abs/dir     a filesystem bucket rooted at /abs/dir
//	mem://              a new, empty in-memory bucket (tests only)
//	s3://bucket/prefix?endpoint=http://host:port&region=R&path-style=true
//
// For s3, every query parameter is optional; path-style defaults to true
// when an endpoint is given (S3-compatible servers) and false otherwise
// (AWS). Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, or else from the SDK's default chain; they are never
// part of the URL, which ends up in logs.
func Open(ctx context.Context, rawURL string) (objstore.Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("objstore: parse URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		dir, err := fileDir(u)
		if err != nil {
			return nil, err
		}
		return filesystem.New(dir)
	case "mem":
		if u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("objstore: %q: mem:// takes no path or parameters", rawURL)
		}
		return memory.New(), nil
	case "s3":
		cfg, err := S3Config(u)
		if err != nil {
			return nil, err
		}
		return s3.New(ctx, cfg)
	default:
		return nil, fmt.Errorf("objstore: %q: unsupported scheme %q (want file, mem or s3)", redact(u), u.Scheme)
	}
}

func fileDir(u *url.URL) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("objstore: %q: a file URL needs an absolute path, as in file:///var/lib/floe/objects", u.String())
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("objstore: %q: file URLs take no parameters", u.String())
	}
	if !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("objstore: %q: a file URL needs an absolute path, as in file:///var/lib/floe/objects", u.String())
	}
	return u.Path, nil
}

// S3Config turns an s3:// URL into an s3.Config, taking credentials from the
// environment. Exposed so callers can log or adjust the config before s3.New.
func S3Config(u *url.URL) (s3.Config, error) {
	if u.Scheme != "s3" {
		return s3.Config{}, fmt.Errorf("objstore: %q is not an s3:// URL", redact(u))
	}
	if u.Host == "" {
		return s3.Config{}, fmt.Errorf("objstore: %q: missing bucket name, as in s3://bucket/prefix", redact(u))
	}
	if u.User != nil {
		return s3.Config{}, fmt.Errorf("objstore: %q: credentials do not belong in the URL; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", redact(u))
	}
	cfg := s3.Config{
		Bucket:       u.Host,
		Prefix:       strings.Trim(u.Path, "/"),
		AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		// Leave both empty so s3.New falls back to the default chain.
		cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = "", "", ""
	}
	q := u.Query()
	pathStyleSet := false
	for key, vals := range q {
		if len(vals) != 1 {
			return s3.Config{}, fmt.Errorf("objstore: %q: parameter %q given %d times", redact(u), key, len(vals))
		}
		v := vals[0]
		switch key {
		case "endpoint":
			ep, err := url.Parse(v)
			if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
				return s3.Config{}, fmt.Errorf("objstore: %q: endpoint %q must be an http:// or https:// URL", redact(u), v)
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path-style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s3.Config{}, fmt.Errorf("objstore: %q: path-style=%q is not a boolean", redact(u), v)
			}
			cfg.PathStyle, pathStyleSet = b, true
		default:
			return s3.Config{}, fmt.Errorf("objstore: %q: unknown parameter %q (want endpoint, region, path-style)", redact(u), key)
		}
	}
	if !pathStyleSet {
		cfg.PathStyle = cfg.Endpoint != ""
	}
	return cfg, nil
}

// redact drops any user info before a URL goes into an error message.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
