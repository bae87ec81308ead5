// Package schema is floe's Confluent-compatible Schema Registry: the REST
// server (stored in the metadata store, so any number of registry instances
// can share one etcd), Avro compatibility checking with Confluent's
// semantics, and clients (HTTP and in-process) that table topics use to
// fetch the schema behind a Confluent wire-format schema id.
//
// Decisions worth knowing:
//   - Avro compatibility follows Apache Avro's schema-resolution rules as
//     Confluent applies them (messages in Confluent's format). JSON Schema and
//     Protobuf schemas are syntax-checked, stored and referenceable, but their
//     compatibility is not checked yet: any change of the same type passes.
//     A change of schema type fails every level but NONE, as in Confluent.
//   - Schema identity (id reuse) is by type, references and a normalized text:
//     layout and, for JSON, key order do not matter; Protobuf comments and
//     layout do not matter. Stored Avro and JSON text is the compact form.
//   - An incompatible registration answers HTTP 409 with error_code 409, as
//     Confluent did through 8.1 (it uses 40901 since); clients key on 409.
//   - Modes are READWRITE, READONLY and IMPORT; Confluent's FORWARD and
//     READONLY_OVERRIDE (leader-forwarding features) are not offered.
package schema

import (
	"errors"
	"fmt"
	"strings"
)

// Schema types, as Confluent spells them in "schemaType".
const (
	TypeAvro     = "AVRO"
	TypeJSON     = "JSON"
	TypeProtobuf = "PROTOBUF"
)

// Schema is one registered schema. Subject and Version are set when the schema
// was fetched through a subject (LatestSchema, a subject version); a lookup by
// id alone leaves them empty, as Confluent's GET /schemas/ids/{id} does.
type Schema struct {
	ID         int
	Subject    string
	Version    int
	Type       string // TypeAvro, TypeJSON or TypeProtobuf
	Schema     string
	References []Reference
}

// Reference names another registered schema that a schema imports: for Avro
// the full name of the referenced named type, for Protobuf the import path, for
// JSON Schema the $ref URL.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Sentinel errors. The HTTP layer maps each to Confluent's HTTP status and
// error_code; callers of the in-process API check them with errors.Is.
var (
	ErrSubjectNotFound         = errors.New("subject not found")                             // 40401
	ErrVersionNotFound         = errors.New("version not found")                             // 40402
	ErrSchemaNotFound          = errors.New("schema not found")                              // 40403
	ErrSubjectSoftDeleted      = errors.New("subject soft deleted")                          // 40404
	ErrSubjectNotSoftDeleted   = errors.New("subject not soft deleted")                      // 40405
	ErrVersionSoftDeleted      = errors.New("schema version soft deleted")                   // 40406
	ErrVersionNotSoftDeleted   = errors.New("schema version not soft deleted")               // 40407
	ErrSubjectConfigNotFound   = errors.New("subject-level compatibility not configured")    // 40408
	ErrSubjectModeNotFound     = errors.New("subject-level mode not configured")             // 40409
	ErrIncompatible            = errors.New("incompatible schema")                           // 409
	ErrInvalidSchema           = errors.New("invalid schema")                                // 42201
	ErrInvalidVersion          = errors.New("invalid version")                               // 42202
	ErrInvalidCompatibility    = errors.New("invalid compatibility level")                   // 42203
	ErrInvalidMode             = errors.New("invalid mode")                                  // 42204
	ErrOperationNotPermitted   = errors.New("operation not permitted")                       // 42205
	ErrReferenceExists         = errors.New("schema is referenced")                          // 42206
	ErrIDMismatch              = errors.New("schema id does not match")                      // 42207
	ErrInvalidSubject          = errors.New("invalid subject")                               // 42208
	ErrStore                   = errors.New("schema registry store error")                   // 50001
	errRetry                   = errors.New("schema registry: concurrent update, retry")     // internal
	errUnexpectedStoreContents = errors.New("schema registry: unexpected metadata contents") // -> 50001
)

// registryError carries Confluent's exact message for a sentinel: Error()
// returns the message clients see, errors.Is matches the sentinel.
type registryError struct {
	kind error
	msg  string
}

func (e *registryError) Error() string { return e.msg }
func (e *registryError) Unwrap() error { return e.kind }

func newError(kind error, format string, args ...any) error {
	return &registryError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// IncompatibleError is returned when a schema breaks the subject's
// compatibility level; Messages are Confluent-style explanations.
type IncompatibleError struct {
	Subject  string
	Messages []string
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]",
		e.Subject, strings.Join(e.Messages, ", "))
}

func (e *IncompatibleError) Unwrap() error { return ErrIncompatible }

// storeError wraps a metadata-store failure so that it maps to 50001 while
// keeping the cause for errors.Is (context cancellation, for instance).
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	var re *registryError
	if errors.As(err, &re) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrStore, op, err)
}
