// Package s3 is the objstore.Bucket for S3 and S3-compatible servers (AWS,
// MinIO, versitygw, Ceph RGW...), on aws-sdk-go-v2. Every Upload is a single
// PutObject: floe's flush objects are a few MiB, and a single PUT is atomic.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/floe-io/floe/internal/objstore"
)

// maxPutSize is S3's limit for a single PutObject.
const maxPutSize = 5 << 30

// DefaultRegion is used when neither Config.Region nor the environment names one.
const DefaultRegion = "us-east-1"

// Config says where the bucket is and how to authenticate.
type Config struct {
	// Bucket is the S3 bucket name; it must exist.
	Bucket string `yaml:"bucket"`
	// Prefix is prepended (with a "/") to every object name.
	Prefix string `yaml:"prefix"`
	// Endpoint overrides the service URL, e.g. http://127.0.0.1:7070.
	Endpoint string `yaml:"endpoint"`
	// Region defaults to the environment's (AWS_REGION, profile), else us-east-1.
	Region string `yaml:"region"`
	// PathStyle addresses the bucket as http://host/bucket, which most
	// S3-compatible servers need, instead of http://bucket.host.
	PathStyle bool `yaml:"path_style"`
	// AccessKey and SecretKey (and SessionToken) are static credentials.
	// When AccessKey is empty the SDK's default chain is used (environment,
	// shared config, web identity, instance or container role).
	AccessKey    string `yaml:"access_key"`
	SecretKey    string `yaml:"secret_key"`
	SessionToken string `yaml:"session_token"`
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Bucket == "" {
		return errors.New("s3: bucket name is required")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("s3: access key and secret key must be given together")
	}
	return nil
}

// Bucket stores objects as keys of one S3 bucket under an optional prefix.
type Bucket struct {
	client    *s3.Client
	transport *http.Transport
	bucket    string
	prefix    string // "" or ending with "/"
}

var _ objstore.Bucket = (*Bucket)(nil)

// New builds the client and checks that the bucket is reachable with the
// given credentials, so a misconfiguration fails at startup.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{
		// Since early 2025 the SDK adds CRC checksums (and aws-chunked
		// trailers) to every request and validates them on responses by
		// default. versitygw 1.8 copes, but older versitygw, MinIO, Ceph and
		// GCS interop reject or mangle them; SigV4 already covers integrity
		// of the payload, so only send and check them where an API requires.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	// Take the transport the loader prepared (it applies AWS_CA_BUNDLE and
	// the like) into a client we own, so Close can release idle connections.
	var transport *http.Transport
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		transport = bc.GetTransport()
	} else {
		transport = awshttp.NewBuildableClient().GetTransport()
	}
	awsCfg.HTTPClient = &http.Client{
		Transport: transport,
		// S3 redirects carry no usable Location for a blind follow; the SDK
		// reports them as errors instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	b := &Bucket{client: client, transport: transport, bucket: cfg.Bucket}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		b.prefix = p + "/"
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		transport.CloseIdleConnections()
		return nil, fmt.Errorf("s3: bucket %q at %s is not usable: %w", cfg.Bucket, endpointName(cfg), err)
	}
	return b, nil
}

func endpointName(cfg Config) string {
	if cfg.Endpoint != "" {
		return cfg.Endpoint
	}
	return "AWS"
}

// Client returns the underlying SDK client, for operations the Bucket
// interface does not cover.
func (b *Bucket) Client() *s3.Client { return b.client }

func (b *Bucket) key(name string) *string { return aws.String(b.prefix + name) }

// Upload implements objstore.Bucket with one PutObject. A body that cannot
// seek is read into memory first: the SDK must sign the payload's hash and
// rewind it to retry, and a reader of the wrong length must fail before
// anything is stored.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	if name == "" {
		return fmt.Errorf("s3: upload: empty name: %w", objstore.ErrInvalidName)
	}
	body, n, err := uploadBody(r, size)
	if err != nil {
		return fmt.Errorf("s3: upload %q: %w", name, err)
	}
	_, err = b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           b.key(name),
		Body:          body,
		ContentLength: aws.Int64(n),
	})
	if err != nil {
		return fmt.Errorf("s3: upload %q: %w", name, err)
	}
	return nil
}

// uploadBody returns a seekable body for r and its length, checking the
// length against size when size is known.
func uploadBody(r io.Reader, size int64) (io.ReadSeeker, int64, error) {
	if size > maxPutSize {
		return nil, 0, fmt.Errorf("size %d exceeds the single PUT limit of %d bytes", size, int64(maxPutSize))
	}
	if rs, ok := r.(io.ReadSeeker); ok && size >= 0 {
		cur, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, 0, err
		}
		end, err := rs.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, err
		}
		if _, err := rs.Seek(cur, io.SeekStart); err != nil {
			return nil, 0, err
		}
		if end-cur != size {
			return nil, 0, fmt.Errorf("reader holds %d bytes, expected %d", end-cur, size)
		}
		return rs, size, nil
	}
	if size < 0 {
		data, err := io.ReadAll(io.LimitReader(r, maxPutSize+1))
		if err != nil {
			return nil, 0, err
		}
		if len(data) > maxPutSize {
			return nil, 0, fmt.Errorf("object exceeds the single PUT limit of %d bytes", int64(maxPutSize))
		}
		return bytes.NewReader(data), int64(len(data)), nil
	}
	data := make([]byte, size)
	if n, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("read %d bytes, expected %d", n, size)
		}
		return nil, 0, err
	}
	var extra [1]byte
	if n, _ := io.ReadFull(r, extra[:]); n > 0 {
		return nil, 0, fmt.Errorf("reader holds more than the expected %d bytes", size)
	}
	return bytes.NewReader(data), size, nil
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: b.key(name)})
	if err != nil {
		return nil, mapErr("get", name, err)
	}
	return out.Body, nil
}

// GetRange implements objstore.Bucket. S3 answers 416 for a range that
// starts at or past the end; that is mapped to an empty body, as the other
// backends return.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("s3: get range %q: invalid range off=%d length=%d", name, off, length)
	}
	if length == 0 {
		// No HTTP range can ask for zero bytes; still report a missing object.
		if _, err := b.Attributes(ctx, name); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	rng := fmt.Sprintf("bytes=%d-", off)
	if length > 0 && length <= math.MaxInt64-off {
		rng = fmt.Sprintf("bytes=%d-%d", off, off+length-1)
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    b.key(name),
		Range:  aws.String(rng),
	})
	if err != nil {
		if isInvalidRange(err) {
			if _, aerr := b.Attributes(ctx, name); aerr != nil {
				return nil, aerr
			}
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, mapErr("get range", name, err)
	}
	return out.Body, nil
}

// Attributes implements objstore.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: b.key(name)})
	if err != nil {
		return objstore.ObjectAttributes{}, mapErr("attributes", name, err)
	}
	return objstore.ObjectAttributes{
		Size:         aws.ToInt64(out.ContentLength),
		LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// Delete implements objstore.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: b.key(name)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3: delete %q: %w", name, err)
	}
	return nil
}

// Iter implements objstore.Bucket. ListObjectsV2 already returns keys in
// UTF-8 byte order, which is the order Iter promises.
func (b *Bucket) Iter(ctx context.Context, prefix string, f func(name string) error) error {
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: b.key(prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: iter %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			// Keys ending in "/" are folder markers made by other tools.
			if strings.HasSuffix(key, "/") {
				continue
			}
			if err := f(strings.TrimPrefix(key, b.prefix)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements objstore.Bucket.
func (b *Bucket) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}
