package s3_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
	"github.com/floe-io/floe/internal/objstore/s3"
	"github.com/floe-io/floe/internal/testutil/s3server"
)

func newBucket(t *testing.T, srv *s3server.Server, bucket, prefix string) *s3.Bucket {
	t.Helper()
	b, err := s3.New(t.Context(), s3.Config{
		Bucket:    bucket,
		Prefix:    prefix,
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		PathStyle: true,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestAcceptance(t *testing.T) {
	srv := s3server.Start(t)
	t.Run("no prefix", func(t *testing.T) {
		objstoretest.AcceptanceTest(t, newBucket(t, srv, srv.Bucket(t, "plain"), ""))
	})
	t.Run("with prefix", func(t *testing.T) {
		objstoretest.AcceptanceTest(t, newBucket(t, srv, srv.Bucket(t, "prefixed"), "cluster-1/objects/"))
	})
}

// TestPrefixIsolation checks that a prefixed bucket neither sees nor
// touches keys outside its prefix, and stores its own under it.
func TestPrefixIsolation(t *testing.T) {
	srv := s3server.Start(t)
	name := srv.Bucket(t, "shared")
	whole := newBucket(t, srv, name, "")
	scoped := newBucket(t, srv, name, "/tenant-a/")
	ctx := t.Context()
	for _, key := range []string{"outside", "tenant-b/object", "tenant-ab/object"} {
		if err := objstore.UploadBytes(ctx, whole, key, []byte("not yours")); err != nil {
			t.Fatal(err)
		}
	}
	if err := objstore.UploadBytes(ctx, scoped, "mine", []byte("yours")); err != nil {
		t.Fatal(err)
	}
	var scopedNames []string
	if err := scoped.Iter(ctx, "", func(n string) error { scopedNames = append(scopedNames, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scopedNames, []string{"mine"}) {
		t.Fatalf("scoped Iter = %q, want [mine]", scopedNames)
	}
	got, err := objstore.ReadAll(ctx, whole, "tenant-a/mine")
	if err != nil || string(got) != "yours" {
		t.Fatalf("object not stored under the prefix: %q, %v", got, err)
	}
	if _, err := scoped.Get(ctx, "outside"); !objstore.IsNotFound(err) {
		t.Fatalf("scoped Get(outside) = %v, want not found", err)
	}
}

func TestNewFailsFast(t *testing.T) {
	srv := s3server.Start(t)
	bucket := srv.Bucket(t, "exists")
	tests := []struct {
		name string
		cfg  s3.Config
	}{
		{"missing bucket", s3.Config{Bucket: "does-not-exist", Endpoint: srv.Endpoint, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}},
		{"wrong secret", s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, PathStyle: true, AccessKey: srv.AccessKey, SecretKey: "wrong"}},
		{"no bucket name", s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}},
		{"key without secret", s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, AccessKey: srv.AccessKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s3.New(t.Context(), tc.cfg)
			if err == nil {
				_ = b.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

// TestSeekableBodyFromOffset checks that a ReadSeeker positioned past its
// start uploads only its remaining bytes (the SDK rewinds to the position it
// was given, not to zero, when it retries).
func TestSeekableBodyFromOffset(t *testing.T) {
	srv := s3server.Start(t)
	b := newBucket(t, srv, srv.Bucket(t, "seek"), "")
	ctx := t.Context()
	r := bytes.NewReader([]byte("skip:payload"))
	if _, err := r.Seek(5, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(ctx, "obj", r, 7); err != nil {
		t.Fatal(err)
	}
	got, err := objstore.ReadAll(ctx, b, "obj")
	if err != nil || string(got) != "payload" {
		t.Fatalf("ReadAll = %q, %v; want payload", got, err)
	}
	// A wrong declared size is refused before anything is sent.
	if err := b.Upload(ctx, "bad", bytes.NewReader([]byte("abc")), 5); err == nil {
		t.Fatal("Upload with a wrong size succeeded")
	}
}

// TestMissingBucketIsNotNotFound makes sure a vanished bucket surfaces
// as an error, not as the quiet "object not found".
func TestMissingBucketIsNotNotFound(t *testing.T) {
	srv := s3server.Start(t)
	name := srv.Bucket(t, "doomed")
	b := newBucket(t, srv, name, "")
	if _, err := b.Client().DeleteBucket(context.Background(), &awss3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Get(t.Context(), "object")
	if err == nil || objstore.IsNotFound(err) {
		t.Fatalf("Get in a deleted bucket = %v, want an error that is not ErrNotFound", err)
	}
}
