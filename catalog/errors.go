package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/apache/iceberg-go"
	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// Sentinel errors of this package. Handlers wrap them with %w; writeError
// turns them into the REST spec's status codes and exception types, so
// nothing below the HTTP boundary knows about statuses.
var (
	// ErrBadRequest marks a request that is malformed or asks for something
	// the catalog refuses (a bad name, an unknown update type, a location
	// outside the warehouse).
	ErrBadRequest = errors.New("bad request")
	// ErrCommitConflict marks a commit whose requirements no longer hold or
	// whose metadata pointer moved underneath it. Nothing was committed and the
	// client should refresh and retry. It wraps table.ErrCommitFailed so Go
	// callers can match either.
	ErrCommitConflict = fmt.Errorf("%w: commit conflict", table.ErrCommitFailed)
	// ErrUnprocessable marks a well-formed request whose content contradicts
	// itself (a namespace property both set and removed).
	ErrUnprocessable = errors.New("unprocessable request")
)

// errorModel is the REST spec's IcebergErrorResponse.
type errorModel struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

// httpError carries an explicit status and exception type for failures that
// are decided at the HTTP layer (auth, routing, body size).
type httpError struct {
	status int
	typ    string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequestf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// classify maps an error to its HTTP status and the REST exception type.
func classify(err error) (status int, typ string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.typ
	case errors.Is(err, icebergcatalog.ErrNoSuchTable):
		return http.StatusNotFound, "NoSuchTableException"
	case errors.Is(err, icebergcatalog.ErrNoSuchNamespace):
		return http.StatusNotFound, "NoSuchNamespaceException"
	case errors.Is(err, icebergcatalog.ErrTableAlreadyExists),
		errors.Is(err, icebergcatalog.ErrNamespaceAlreadyExists),
		errors.Is(err, icebergcatalog.ErrViewAlreadyExists):
		return http.StatusConflict, "AlreadyExistsException"
	case errors.Is(err, icebergcatalog.ErrNamespaceNotEmpty):
		return http.StatusConflict, "NamespaceNotEmptyException"
	case errors.Is(err, ErrCommitConflict):
		return http.StatusConflict, "CommitFailedException"
	case errors.Is(err, ErrUnprocessable):
		return http.StatusUnprocessableEntity, "UnprocessableEntityException"
	case errors.Is(err, ErrBadRequest),
		errors.Is(err, iceberg.ErrInvalidArgument),
		errors.Is(err, icebergcatalog.ErrInvalidIdentifier):
		return http.StatusBadRequest, "BadRequestException"
	default:
		return http.StatusInternalServerError, "ServiceFailureException"
	}
}

// writeError sends err as an ErrorModel. Server-side failures are logged with
// the full error but answered with a generic message: their text can carry
// storage paths and driver details a client has no business seeing.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, typ := classify(err)
	msg := err.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The client went away or the request ran out of time: nothing for
		// an operator to act on, and nobody may be listening for the answer.
		logger.DebugContext(r.Context(), "catalog request abandoned", "method", r.Method, "path", r.URL.Path, "err", err)
		writeErrorStatus(w, r, http.StatusServiceUnavailable, "ServiceUnavailableException", "request cancelled or timed out")
		return
	}
	if status >= 500 {
		logger.ErrorContext(r.Context(), "catalog request failed",
			"method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; see the catalog server log"
	}
	writeErrorStatus(w, r, status, typ, msg)
}

func writeErrorStatus(w http.ResponseWriter, r *http.Request, status int, typ, msg string) {
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, errorModel{Error: errorBody{Message: msg, Type: typ, Code: status}})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	buf, err := json.Marshal(body)
	if err != nil {
		// Only our own response types reach here; they always marshal.
		// Anything else is a programming error worth a clear 500.
		buf, _ = json.Marshal(errorModel{Error: errorBody{
			Message: "encoding response: " + err.Error(), Type: "ServiceFailureException",
			Code: http.StatusInternalServerError,
		}})
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(buf, '\n'))
}
