package s3

import (
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/floe-io/floe/internal/objstore"
)

// mapErr wraps err, adding objstore.ErrNotFound when S3 said the key does
// not exist.
func mapErr(op, name string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3: %s %q: %w: %w", op, name, objstore.ErrNotFound, err)
	}
	return fmt.Errorf("s3: %s %q: %w", op, name, err)
}

// isNotFound reports a missing key: NoSuchKey (GET), NotFound (HEAD, which
// has no body to carry a code) or a bare 404. A missing bucket is a 404 too,
// but it is a configuration error, never "object not found".
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound
}

// isInvalidRange reports S3's 416 for a range starting past the object's end.
func isInvalidRange(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}
