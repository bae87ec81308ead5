package objstoreurl_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/filesystem"
	"github.com/floe-io/floe/internal/objstore/memory"
	"github.com/floe-io/floe/internal/objstore/objstoreurl"
	"github.com/floe-io/floe/internal/objstore/s3"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

func TestS3Config(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
	t.Setenv("AWS_SESSION_TOKEN", "TOKEN")
	tests := []struct {
		url  string
		want s3.Config
	}{
		{"s3://bucket", s3.Config{Bucket: "bucket"}},
		{"s3://bucket/", s3.Config{Bucket: "bucket"}},
		{"s3://bucket/a/b/", s3.Config{Bucket: "bucket", Prefix: "a/b"}},
		{"s3://bucket/p?region=eu-west-1", s3.Config{Bucket: "bucket", Prefix: "p", Region: "eu-west-1"}},
		{
			"s3://bucket/p?endpoint=http://127.0.0.1:7070&region=us-east-1",
			s3.Config{Bucket: "bucket", Prefix: "p", Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", PathStyle: true},
		},
		{
			"s3://bucket?endpoint=https://s3.example.com&path-style=false",
			s3.Config{Bucket: "bucket", Endpoint: "https://s3.example.com"},
		},
		{"s3://bucket?path-style=true", s3.Config{Bucket: "bucket", PathStyle: true}},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := objstoreurl.S3Config(u)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.AccessKey, tc.want.SecretKey, tc.want.SessionToken = "AKID", "SECRET", "TOKEN"
			if got != tc.want {
				t.Fatalf("S3Config(%q) =\n%+v, want\n%+v", tc.url, got, tc.want)
			}
		})
	}
}

func TestS3ConfigWithoutEnvCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "stray")
	u, _ := url.Parse("s3://bucket")
	got, err := objstoreurl.S3Config(u)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKey != "" || got.SecretKey != "" || got.SessionToken != "" {
		t.Fatalf("credentials = %q/%q/%q, want none (default chain)", got.AccessKey, got.SecretKey, got.SessionToken)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, raw := range []string{
		"", "/just/a/path", "ftp://host/x", "file://relative/dir", "file:relative", "file:///dir?x=1",
		"mem://name", "s3://", "s3:///prefix", "s3://b?unknown=1", "s3://b?path-style=maybe",
		"s3://b?endpoint=127.0.0.1:9000", "s3://b?region=a&region=b", "s3://key:secret@bucket/p",
	} {
		t.Run(raw, func(t *testing.T) {
			b, err := objstoreurl.Open(t.Context(), raw)
			if err == nil {
				_ = b.Close()
				t.Fatalf("Open(%q) succeeded, want an error", raw)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the URL's secret: %v", err)
			}
		})
	}
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "objects")
	b, err := objstoreurl.Open(t.Context(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	fb, ok := b.(*filesystem.Bucket)
	if !ok || fb.Root() != dir {
		t.Fatalf("Open = %T rooted at %v, want a filesystem bucket at %s", b, fb, dir)
	}
	roundTrip(t, b)
}

func TestOpenMem(t *testing.T) {
	for _, raw := range []string{"mem://", "mem:///"} {
		b, err := objstoreurl.Open(t.Context(), raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.(*memory.Bucket); !ok {
			t.Fatalf("Open(%q) = %T, want *memory.Bucket", raw, b)
		}
		roundTrip(t, b)
	}
}

func TestOpenS3(t *testing.T) {
	srv := s3server.Start(t)
	srv.SetEnv(t)
	bucket := srv.Bucket(t, "open-test")
	b, err := objstoreurl.Open(t.Context(), srv.URL(bucket, "some/prefix"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if _, ok := b.(*s3.Bucket); !ok {
		t.Fatalf("Open = %T, want *s3.Bucket", b)
	}
	roundTrip(t, b)
	// The object landed under the URL's prefix.
	whole, err := objstoreurl.Open(t.Context(), srv.URL(bucket, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = whole.Close() }()
	if _, err := whole.Attributes(t.Context(), "some/prefix/round-trip"); err != nil {
		t.Fatalf("object not under the prefix: %v", err)
	}
}

func roundTrip(t *testing.T, b objstore.Bucket) {
	t.Helper()
	if err := objstore.UploadBytes(t.Context(), b, "round-trip", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	got, err := objstore.ReadAll(t.Context(), b, "round-trip")
	if err != nil || string(got) != "ok" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
}
