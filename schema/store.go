package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/metastore"
)

// Store is the part of the metadata store the registry uses; *metastore.Store
// satisfies it. Keys are relative to the store's prefix.
type Store interface {
	// Get returns a key or an error wrapping metastore.ErrNotFound.
	Get(ctx context.Context, key string) (metastore.KV, error)
	// List returns every key under prefix, sorted, as one consistent snapshot.
	List(ctx context.Context, prefix string) ([]metastore.KV, error)
	Put(ctx context.Context, key string, value []byte) (int64, error)
	// Create writes a key that must not exist (else metastore.ErrConflict).
	Create(ctx context.Context, key string, value []byte) (int64, error)
	// CAS writes a key whose ModRevision is expectModRev (else metastore.ErrConflict).
	CAS(ctx context.Context, key string, expectModRev int64, value []byte) (int64, error)
	Delete(ctx context.Context, key string) error
	// NextID returns a cluster-wide unique, increasing id from a counter key.
	NextID(ctx context.Context, counterKey string) (int64, error)
}

var _ Store = (*metastore.Store)(nil)

// Key layout. Subjects are path-escaped so that no subject is a prefix of
// another's keys ("a" vs "a/b"). Ids and versions are zero-padded so that
// keys sort numerically.
//
//	registry/schemas/<id>                 schemaRecord: the schema text of an id (immutable)
//	registry/fingerprints/<sha256>        the id of a schema (type, references, normalized text)
//	registry/counters/schema-id           NextID counter for ids
//	registry/subjects/<subject>/<version> versionRecord
//	registry/config/global, registry/config/subjects/<subject>
//	registry/mode/global,   registry/mode/subjects/<subject>
const (
	keyRoot            = "registry/"
	keySchemas         = keyRoot + "schemas/"
	keyFingerprints    = keyRoot + "fingerprints/"
	keyIDCounter       = keyRoot + "counters/schema-id"
	keySubjects        = keyRoot + "subjects/"
	keyGlobalConfig    = keyRoot + "config/global"
	keySubjectConfigs  = keyRoot + "config/subjects/"
	keyGlobalMode      = keyRoot + "mode/global"
	keySubjectModes    = keyRoot + "mode/subjects/"
	maxRegisterRetries = 32
)

func schemaKey(id int) string         { return fmt.Sprintf("%s%010d", keySchemas, id) }
func fingerprintKey(fp string) string { return keyFingerprints + fp }
func subjectPrefix(subject string) string {
	return keySubjects + url.PathEscape(subject) + "/"
}

func versionKey(subject string, version int) string {
	return fmt.Sprintf("%s%010d", subjectPrefix(subject), version)
}

func subjectConfigKey(subject string) string { return keySubjectConfigs + url.PathEscape(subject) }
func subjectModeKey(subject string) string   { return keySubjectModes + url.PathEscape(subject) }

// schemaRecord is the text behind a schema id. Only maybeOrphan ever changes.
type schemaRecord struct {
	ID          int         `json:"id"`
	Type        string      `json:"schemaType"`
	Schema      string      `json:"schema"`
	References  []Reference `json:"references,omitempty"`
	Fingerprint string      `json:"fingerprint"`
	// MaybeOrphan is a hint that no subject version may use the id any more
	// (set after hard deletes, and while an id is being registered). Readers
	// that see it confirm by scanning subjects, so a stale hint only costs a
	// scan; Confluent answers 40403 for ids no subject version uses.
	MaybeOrphan bool `json:"maybeOrphan,omitempty"`
}

// versionRecord is one version of a subject. References are copied from the
// schema so that "who references X" is answered by one List of subjects.
type versionRecord struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	Deleted    bool        `json:"deleted,omitempty"`
	References []Reference `json:"references,omitempty"`

	modRevision int64
}

type configRecord struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type modeRecord struct {
	Mode string `json:"mode"`
}

func isNotFound(err error) bool { return errors.Is(err, metastore.ErrNotFound) }
func isConflict(err error) bool { return errors.Is(err, metastore.ErrConflict) }

func decodeVersion(kv metastore.KV) (versionRecord, error) {
	var v versionRecord
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, fmt.Errorf("%w: %s: %w", errUnexpectedStoreContents, kv.Key, err)
	}
	v.modRevision = kv.ModRevision
	return v, nil
}

// listSubjectVersions returns a subject's versions (soft-deleted ones too),
// oldest first.
func listSubjectVersions(ctx context.Context, st Store, subject string) ([]versionRecord, error) {
	kvs, err := st.List(ctx, subjectPrefix(subject))
	if err != nil {
		return nil, storeError("list subject versions", err)
	}
	out := make([]versionRecord, 0, len(kvs))
	for _, kv := range kvs {
		v, err := decodeVersion(kv)
		if err != nil {
			return nil, storeError("decode subject version", err)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// listAllVersions returns every version of every subject, grouped by subject
// in key order, oldest version first.
func listAllVersions(ctx context.Context, st Store) ([]versionRecord, error) {
	kvs, err := st.List(ctx, keySubjects)
	if err != nil {
		return nil, storeError("list subjects", err)
	}
	out := make([]versionRecord, 0, len(kvs))
	for _, kv := range kvs {
		v, err := decodeVersion(kv)
		if err != nil {
			return nil, storeError("decode subject version", err)
		}
		out = append(out, v)
	}
	return out, nil
}

func getSchemaRecord(ctx context.Context, st Store, id int) (schemaRecord, int64, error) {
	kv, err := st.Get(ctx, schemaKey(id))
	if err != nil {
		if isNotFound(err) {
			return schemaRecord{}, 0, newError(ErrSchemaNotFound, "Schema %d not found", id)
		}
		return schemaRecord{}, 0, storeError("get schema", err)
	}
	var rec schemaRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, 0, storeError("decode schema", fmt.Errorf("%w: %s: %w", errUnexpectedStoreContents, kv.Key, err))
	}
	return rec, kv.ModRevision, nil
}

func getFingerprintID(ctx context.Context, st Store, fp string) (int, error) {
	kv, err := st.Get(ctx, fingerprintKey(fp))
	if err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, storeError("get fingerprint", err)
	}
	id, err := strconv.Atoi(string(kv.Value))
	if err != nil {
		return 0, storeError("decode fingerprint", fmt.Errorf("%w: %s: %w", errUnexpectedStoreContents, kv.Key, err))
	}
	return id, nil
}

// getOptional reads a JSON record that may be absent.
func getOptional(ctx context.Context, st Store, key string, into any) (bool, error) {
	kv, err := st.Get(ctx, key)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, storeError("get "+strings.TrimPrefix(key, keyRoot), err)
	}
	if err := json.Unmarshal(kv.Value, into); err != nil {
		return false, storeError("decode", fmt.Errorf("%w: %s: %w", errUnexpectedStoreContents, kv.Key, err))
	}
	return true, nil
}

func putJSON(ctx context.Context, st Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = st.Put(ctx, key, b)
	return storeError("put "+strings.TrimPrefix(key, keyRoot), err)
}
