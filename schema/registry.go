package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// maxReferenceDepth bounds reference chains, which also stops cycles.
const maxReferenceDepth = 32

// registry implements the Schema Registry operations over a Store. All state
// lives in the store, so several registries (processes) may share one; the
// only local state is a cache of immutable schema texts and parses by id.
//
// Registration is race-safe without locks: ids are allocated with NextID and
// bound to a schema by creating its fingerprint key (the first creator wins,
// a loser adopts the winner's id), and a subject version is written with
// Create, so two writers of one version number cannot both succeed; the
// loser re-reads the subject and tries again.
type registry struct {
	store         Store
	defaultCompat string
	logger        *slog.Logger

	mu      sync.Mutex
	records map[int]schemaRecord // immutable texts by id (MaybeOrphan not kept)
	parsed  map[int]parsedSchema
}

func newRegistry(store Store, defaultCompat string, logger *slog.Logger) *registry {
	return &registry{
		store:         store,
		defaultCompat: defaultCompat,
		logger:        logger,
		records:       make(map[int]schemaRecord),
		parsed:        make(map[int]parsedSchema),
	}
}

// registerRequest is the body of POST /subjects/{s}/versions (and of lookups
// and compatibility checks). ID and Version are only honoured in IMPORT mode.
type registerRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	ID         int         `json:"id,omitempty"`
	Version    int         `json:"version,omitempty"`
}

// subjectVersion names one version of a subject.
type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func validateSubject(subject string) error {
	if subject == "" || !utf8.ValidString(subject) || strings.IndexFunc(subject, unicode.IsControl) >= 0 {
		return newError(ErrInvalidSubject, "The specified subject '%s' is not a valid.", subject)
	}
	return nil
}

// parseVersion accepts "latest", -1 (latest) and 1..2^31-1, as Confluent does.
// It returns -1 for latest.
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil || (v < 1 && v != -1) {
		return 0, newError(ErrInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return int(v), nil
}

// --- config and mode ---------------------------------------------------------

func (r *registry) subjectCompat(ctx context.Context, subject string) (string, bool, error) {
	var rec configRecord
	ok, err := getOptional(ctx, r.store, subjectConfigKey(subject), &rec)
	return rec.CompatibilityLevel, ok, err
}

func (r *registry) globalCompat(ctx context.Context) (string, error) {
	var rec configRecord
	ok, err := getOptional(ctx, r.store, keyGlobalConfig, &rec)
	if err != nil || !ok {
		return r.defaultCompat, err
	}
	return rec.CompatibilityLevel, nil
}

func (r *registry) compatInScope(ctx context.Context, subject string) (string, error) {
	if subject != "" {
		level, ok, err := r.subjectCompat(ctx, subject)
		if err != nil || ok {
			return level, err
		}
	}
	return r.globalCompat(ctx)
}

// getConfig serves GET /config and GET /config/{subject}.
func (r *registry) getConfig(ctx context.Context, subject string, defaultToGlobal bool) (string, error) {
	if subject == "" {
		return r.globalCompat(ctx)
	}
	level, ok, err := r.subjectCompat(ctx, subject)
	if err != nil || ok {
		return level, err
	}
	if defaultToGlobal {
		return r.globalCompat(ctx)
	}
	return "", newError(ErrSubjectConfigNotFound, "Subject '%s' does not have subject-level compatibility configured", subject)
}

// setConfig serves PUT /config[/{subject}]; an empty level changes nothing.
func (r *registry) setConfig(ctx context.Context, subject, level string) (string, error) {
	if subject != "" {
		if err := validateSubject(subject); err != nil {
			return "", err
		}
	}
	if err := r.checkNotReadOnly(ctx, subject); err != nil {
		return "", err
	}
	if strings.TrimSpace(level) == "" {
		return r.compatInScope(ctx, subject)
	}
	level, err := parseCompatibility(level)
	if err != nil {
		return "", err
	}
	key := keyGlobalConfig
	if subject != "" {
		key = subjectConfigKey(subject)
	}
	return level, putJSON(ctx, r.store, key, configRecord{CompatibilityLevel: level})
}

// deleteConfig serves DELETE /config[/{subject}] and returns the removed level.
func (r *registry) deleteConfig(ctx context.Context, subject string) (string, error) {
	if err := r.checkNotReadOnly(ctx, subject); err != nil {
		return "", err
	}
	if subject == "" {
		prev, err := r.globalCompat(ctx)
		if err != nil {
			return "", err
		}
		return prev, storeError("delete global config", r.store.Delete(ctx, keyGlobalConfig))
	}
	prev, ok, err := r.subjectCompat(ctx, subject)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	return prev, storeError("delete subject config", r.store.Delete(ctx, subjectConfigKey(subject)))
}

func (r *registry) subjectMode(ctx context.Context, subject string) (string, bool, error) {
	var rec modeRecord
	ok, err := getOptional(ctx, r.store, subjectModeKey(subject), &rec)
	return rec.Mode, ok, err
}

func (r *registry) globalMode(ctx context.Context) (string, error) {
	var rec modeRecord
	ok, err := getOptional(ctx, r.store, keyGlobalMode, &rec)
	if err != nil || !ok {
		return ModeReadWrite, err
	}
	return rec.Mode, nil
}

func (r *registry) modeInScope(ctx context.Context, subject string) (string, error) {
	if subject != "" {
		mode, ok, err := r.subjectMode(ctx, subject)
		if err != nil || ok {
			return mode, err
		}
	}
	return r.globalMode(ctx)
}

func (r *registry) checkNotReadOnly(ctx context.Context, subject string) error {
	mode, err := r.modeInScope(ctx, subject)
	if err != nil {
		return err
	}
	if mode == ModeReadOnly {
		if subject == "" {
			return newError(ErrOperationNotPermitted, "The registry is in read-only mode")
		}
		return newError(ErrOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	return nil
}

// getMode serves GET /mode and GET /mode/{subject}.
func (r *registry) getMode(ctx context.Context, subject string, defaultToGlobal bool) (string, error) {
	if subject == "" {
		return r.globalMode(ctx)
	}
	mode, ok, err := r.subjectMode(ctx, subject)
	if err != nil || ok {
		return mode, err
	}
	if defaultToGlobal {
		return r.globalMode(ctx)
	}
	return "", newError(ErrSubjectModeNotFound, "Subject '%s' does not have subject-level mode configured", subject)
}

// setMode serves PUT /mode[/{subject}]. Entering IMPORT requires that no
// live subject is in scope (unless forced), as Confluent requires, and drops
// soft-deleted versions so imported versions and ids can take their place.
func (r *registry) setMode(ctx context.Context, subject, mode string, force bool) (string, error) {
	if subject != "" {
		if err := validateSubject(subject); err != nil {
			return "", err
		}
	}
	mode, err := parseMode(mode)
	if err != nil {
		return "", err
	}
	if mode == ModeImport && !force {
		cur, err := r.modeInScope(ctx, subject)
		if err != nil {
			return "", err
		}
		if cur != ModeImport {
			if err := r.prepareImport(ctx, subject); err != nil {
				return "", err
			}
		}
	}
	key := keyGlobalMode
	if subject != "" {
		key = subjectModeKey(subject)
	}
	return mode, putJSON(ctx, r.store, key, modeRecord{Mode: mode})
}

func (r *registry) prepareImport(ctx context.Context, subject string) error {
	var versions []versionRecord
	var err error
	if subject == "" {
		versions, err = listAllVersions(ctx, r.store)
	} else {
		versions, err = listSubjectVersions(ctx, r.store, subject)
	}
	if err != nil {
		return err
	}
	for _, v := range versions {
		if !v.Deleted {
			return newError(ErrOperationNotPermitted, "Cannot import since found existing subjects")
		}
	}
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return err
	}
	for _, v := range versions {
		if refs := referencingIDs(all, v.Subject, v.Version, true, ""); len(refs) > 0 {
			return newError(ErrReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}.", v.Subject, v.Version)
		}
	}
	return r.hardDelete(ctx, versions)
}

// deleteMode serves DELETE /mode[/{subject}] and returns the removed mode.
func (r *registry) deleteMode(ctx context.Context, subject string) (string, error) {
	if subject == "" {
		prev, err := r.globalMode(ctx)
		if err != nil {
			return "", err
		}
		return prev, storeError("delete global mode", r.store.Delete(ctx, keyGlobalMode))
	}
	prev, ok, err := r.subjectMode(ctx, subject)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	return prev, storeError("delete subject mode", r.store.Delete(ctx, subjectModeKey(subject)))
}

// --- schema texts and parses -------------------------------------------------

// record returns the (cached) schema text of an id.
func (r *registry) record(ctx context.Context, id int) (schemaRecord, error) {
	r.mu.Lock()
	rec, ok := r.records[id]
	r.mu.Unlock()
	if ok {
		return rec, nil
	}
	rec, _, err := getSchemaRecord(ctx, r.store, id)
	if err != nil {
		return rec, err
	}
	rec.MaybeOrphan = false
	r.mu.Lock()
	r.records[id] = rec
	r.mu.Unlock()
	return rec, nil
}

// parsedByID returns the parse of a stored schema, for compatibility checks.
func (r *registry) parsedByID(ctx context.Context, id int) (parsedSchema, string, error) {
	rec, err := r.record(ctx, id)
	if err != nil {
		return nil, "", err
	}
	r.mu.Lock()
	p, ok := r.parsed[id]
	r.mu.Unlock()
	if ok {
		return p, rec.Schema, nil
	}
	deps, err := r.resolveReferences(ctx, rec.References)
	if err != nil {
		return nil, "", err
	}
	cs, err := parseSchema(rec.Type, rec.Schema, rec.References, deps)
	if err != nil {
		return nil, "", fmt.Errorf("stored schema %d: %w", id, err)
	}
	r.mu.Lock()
	r.parsed[id] = cs.parsed
	r.mu.Unlock()
	return cs.parsed, rec.Schema, nil
}

// resolveReferences fetches the schemas that refs name, transitively, each
// after its own dependencies and each once.
func (r *registry) resolveReferences(ctx context.Context, refs []Reference) ([]resolvedSchema, error) {
	var out []resolvedSchema
	seen := map[subjectVersion]bool{}
	var visit func(refs []Reference, depth int) error
	visit = func(refs []Reference, depth int) error {
		if len(refs) > 0 && depth >= maxReferenceDepth {
			return newError(ErrInvalidSchema, "Invalid schema: references nest deeper than %d (a cycle?)", maxReferenceDepth)
		}
		for _, ref := range refs {
			if ref.Name == "" || ref.Subject == "" {
				return newError(ErrInvalidSchema, "Invalid schema: a reference needs a name and a subject")
			}
			v, err := r.findVersion(ctx, ref.Subject, ref.Version, true)
			if err != nil {
				if errors.Is(err, ErrSubjectNotFound) || errors.Is(err, ErrVersionNotFound) {
					return newError(ErrInvalidSchema, "Invalid schema: reference %q to subject %q version %d not found",
						ref.Name, ref.Subject, ref.Version)
				}
				return err
			}
			key := subjectVersion{v.Subject, v.Version}
			if seen[key] {
				continue
			}
			seen[key] = true
			rec, err := r.record(ctx, v.ID)
			if err != nil {
				return err
			}
			if err := visit(rec.References, depth+1); err != nil {
				return err
			}
			out = append(out, resolvedSchema{name: ref.Name, typ: rec.Type, text: rec.Schema})
		}
		return nil
	}
	return out, visit(refs, 0)
}

// canonicalize parses a request's schema.
func (r *registry) canonicalize(ctx context.Context, req registerRequest) (*canonicalSchema, error) {
	typ, err := normalizeType(req.SchemaType)
	if err != nil {
		return nil, err
	}
	refs := req.References
	if len(refs) == 0 {
		refs = nil
	}
	deps, err := r.resolveReferences(ctx, refs)
	if err != nil {
		return nil, err
	}
	return parseSchema(typ, req.Schema, refs, deps)
}

// --- subjects and versions ---------------------------------------------------

// findVersion returns one version of a subject; version -1 is the latest.
// Soft-deleted versions count only with includeDeleted.
func (r *registry) findVersion(ctx context.Context, subject string, version int, includeDeleted bool) (versionRecord, error) {
	versions, err := listSubjectVersions(ctx, r.store, subject)
	if err != nil {
		return versionRecord{}, err
	}
	var found *versionRecord
	exists := false
	for i := range versions {
		v := &versions[i]
		if v.Deleted && !includeDeleted {
			continue
		}
		exists = true
		if version == -1 || v.Version == version {
			found = v
		}
	}
	if found != nil {
		return *found, nil
	}
	if !exists {
		return versionRecord{}, newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	return versionRecord{}, newError(ErrVersionNotFound, "Version %d not found.", version)
}

// schemaAt returns a subject version with its schema.
func (r *registry) schemaAt(ctx context.Context, subject string, version int, includeDeleted bool) (Schema, error) {
	v, err := r.findVersion(ctx, subject, version, includeDeleted)
	if err != nil {
		return Schema{}, err
	}
	rec, err := r.record(ctx, v.ID)
	if err != nil {
		return Schema{}, err
	}
	return Schema{ID: v.ID, Subject: v.Subject, Version: v.Version, Type: rec.Type, Schema: rec.Schema, References: rec.References}, nil
}

// subjects lists subject names with a live version (or any, includeDeleted).
func (r *registry) subjects(ctx context.Context, prefix string, includeDeleted bool) ([]string, error) {
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, v := range all {
		if (includeDeleted || !v.Deleted) && strings.HasPrefix(v.Subject, prefix) {
			set[v.Subject] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

// versions lists a subject's version numbers.
func (r *registry) versions(ctx context.Context, subject string, includeDeleted bool) ([]int, error) {
	versions, err := listSubjectVersions(ctx, r.store, subject)
	if err != nil {
		return nil, err
	}
	out := []int{}
	for _, v := range versions {
		if includeDeleted || !v.Deleted {
			out = append(out, v.Version)
		}
	}
	if len(out) == 0 {
		return nil, newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	return out, nil
}

// register serves POST /subjects/{s}/versions and returns the schema's id and
// its version under the subject.
func (r *registry) register(ctx context.Context, subject string, req registerRequest) (int, int, error) {
	if err := validateSubject(subject); err != nil {
		return 0, 0, err
	}
	mode, err := r.modeInScope(ctx, subject)
	if err != nil {
		return 0, 0, err
	}
	importing := req.ID > 0
	switch {
	case mode == ModeReadOnly:
		return 0, 0, newError(ErrOperationNotPermitted, "Subject %s is in read-only mode", subject)
	case importing && mode != ModeImport:
		return 0, 0, newError(ErrOperationNotPermitted, "Subject %s is not in import mode", subject)
	case !importing && mode != ModeReadWrite:
		return 0, 0, newError(ErrOperationNotPermitted, "Subject %s is not in read-write mode", subject)
	}
	cs, err := r.canonicalize(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	for range maxRegisterRetries {
		id, version, err := r.tryRegister(ctx, subject, cs, req, importing)
		if errors.Is(err, errRetry) {
			r.logger.Debug("concurrent registration under the subject, retrying", "subject", subject)
			continue
		}
		if err == nil {
			r.logger.Debug("schema registered", "subject", subject, "version", version, "id", id, "type", cs.typ)
		}
		return id, version, err
	}
	return 0, 0, storeError("register", fmt.Errorf("subject %q: gave up after %d concurrent updates", subject, maxRegisterRetries))
}

func (r *registry) tryRegister(ctx context.Context, subject string, cs *canonicalSchema, req registerRequest, importing bool) (int, int, error) {
	versions, err := listSubjectVersions(ctx, r.store, subject)
	if err != nil {
		return 0, 0, err
	}
	existingID, err := getFingerprintID(ctx, r.store, cs.fingerprint)
	if err != nil {
		return 0, 0, err
	}
	maxVersion := 0
	var live []versionRecord
	for _, v := range versions {
		maxVersion = max(maxVersion, v.Version)
		if !v.Deleted {
			live = append(live, v)
		}
	}
	if existingID != 0 && req.Version == 0 && (!importing || req.ID == existingID) {
		for _, v := range live {
			if v.ID == existingID {
				return v.ID, v.Version, nil // already registered under this subject
			}
		}
	}

	if !importing {
		level, err := r.compatInScope(ctx, subject)
		if err != nil {
			return 0, 0, err
		}
		if level != CompatNone {
			previous := make([]previousSchema, 0, len(live))
			for _, v := range live {
				p, text, err := r.parsedByID(ctx, v.ID)
				if err != nil {
					return 0, 0, err
				}
				previous = append(previous, previousSchema{version: v.Version, text: text, parsed: p})
			}
			if msgs := checkCompatibility(level, cs.parsed, previous); len(msgs) > 0 {
				return 0, 0, &IncompatibleError{Subject: subject, Messages: msgs}
			}
		}
	}

	newVersion := maxVersion + 1
	if req.Version > 0 {
		if importing {
			newVersion = req.Version
		} else if req.Version != newVersion {
			return 0, 0, newError(ErrInvalidSchema, "Invalid schema: version %d is not one more than the previous version %d", req.Version, maxVersion)
		}
	}

	var id int
	switch {
	case importing:
		id, err = r.importID(ctx, req.ID, cs)
	case existingID != 0:
		id = existingID
	default:
		id, err = r.allocateID(ctx, cs)
	}
	if err != nil {
		return 0, 0, err
	}

	rec, err := json.Marshal(versionRecord{Subject: subject, Version: newVersion, ID: id, References: cs.refs})
	if err != nil {
		return 0, 0, err
	}
	if importing && req.Version > 0 {
		// IMPORT mode replicates another registry's versions verbatim.
		_, err = r.store.Put(ctx, versionKey(subject, newVersion), rec)
	} else {
		_, err = r.store.Create(ctx, versionKey(subject, newVersion), rec)
	}
	if isConflict(err) {
		return 0, 0, errRetry // someone else took this version number: re-read
	}
	if err != nil {
		return 0, 0, storeError("create subject version", err)
	}
	r.clearOrphanHint(ctx, id)

	// Like Confluent, re-registering a soft-deleted schema drops its older
	// soft-deleted versions under the subject (unless something references them).
	var stale []versionRecord
	var all []versionRecord
	for _, v := range versions {
		if v.Deleted && v.ID == id && v.Version < newVersion {
			if all == nil {
				if all, err = listAllVersions(ctx, r.store); err != nil {
					return id, newVersion, nil // the registration itself succeeded
				}
			}
			if len(referencingIDs(all, v.Subject, v.Version, true, "")) == 0 {
				stale = append(stale, v)
			}
		}
	}
	if len(stale) > 0 {
		if err := r.hardDelete(ctx, stale); err != nil {
			r.logger.Warn("dropping soft-deleted versions of a re-registered schema", "subject", subject, "err", err)
		}
	}
	return id, newVersion, nil
}

// allocateID gives a new schema a cluster-wide unique id and binds its
// fingerprint to it. If another registry instance binds the same schema
// first, its id wins and ours is dropped, so one schema gets one id.
func (r *registry) allocateID(ctx context.Context, cs *canonicalSchema) (int, error) {
	for range 1000 {
		n, err := r.store.NextID(ctx, keyIDCounter)
		if err != nil {
			return 0, storeError("allocate schema id", err)
		}
		id := int(n)
		rec, err := json.Marshal(schemaRecord{ID: id, Type: cs.typ, Schema: cs.text, References: cs.refs,
			Fingerprint: cs.fingerprint, MaybeOrphan: true})
		if err != nil {
			return 0, err
		}
		if _, err := r.store.Create(ctx, schemaKey(id), rec); err != nil {
			if isConflict(err) {
				continue // an imported schema holds this id
			}
			return 0, storeError("create schema", err)
		}
		_, err = r.store.Create(ctx, fingerprintKey(cs.fingerprint), []byte(strconv.Itoa(id)))
		if err == nil {
			return id, nil
		}
		if !isConflict(err) {
			return 0, storeError("create fingerprint", err)
		}
		// Lost the race for this schema: adopt the winner's id, drop ours.
		r.logger.Debug("concurrent registration of the same schema, adopting its id", "unused_id", id)
		if err := r.store.Delete(ctx, schemaKey(id)); err != nil {
			r.logger.Warn("dropping unused schema id", "id", id, "err", err)
		}
		winner, err := getFingerprintID(ctx, r.store, cs.fingerprint)
		if err != nil {
			return 0, err
		}
		if winner == 0 {
			return 0, errRetry
		}
		return winner, nil
	}
	return 0, storeError("allocate schema id", errors.New("no free id found"))
}

// importID binds an id chosen by the caller (IMPORT mode) to a schema.
func (r *registry) importID(ctx context.Context, id int, cs *canonicalSchema) (int, error) {
	rec, _, err := getSchemaRecord(ctx, r.store, id)
	if err == nil {
		if rec.Fingerprint != cs.fingerprint {
			return 0, newError(ErrIDMismatch, "Schema with id %d already exists and differs from the schema being imported", id)
		}
		return id, nil
	}
	if !errors.Is(err, ErrSchemaNotFound) {
		return 0, err
	}
	b, err := json.Marshal(schemaRecord{ID: id, Type: cs.typ, Schema: cs.text, References: cs.refs,
		Fingerprint: cs.fingerprint, MaybeOrphan: true})
	if err != nil {
		return 0, err
	}
	if _, err := r.store.Create(ctx, schemaKey(id), b); err != nil {
		if isConflict(err) {
			return 0, errRetry
		}
		return 0, storeError("create schema", err)
	}
	// The first id of a schema stays the one new registrations reuse.
	if _, err := r.store.Create(ctx, fingerprintKey(cs.fingerprint), []byte(strconv.Itoa(id))); err != nil && !isConflict(err) {
		return 0, storeError("create fingerprint", err)
	}
	return id, nil
}

// clearOrphanHint is best effort: a stale hint only costs readers a scan.
func (r *registry) clearOrphanHint(ctx context.Context, id int) {
	r.setOrphanHint(ctx, id, false)
}

func (r *registry) setOrphanHint(ctx context.Context, id int, orphan bool) {
	rec, rev, err := getSchemaRecord(ctx, r.store, id)
	if err != nil || rec.MaybeOrphan == orphan {
		return
	}
	rec.MaybeOrphan = orphan
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	if _, err := r.store.CAS(ctx, schemaKey(id), rev, b); err != nil && !isConflict(err) {
		r.logger.Warn("updating schema orphan hint", "id", id, "err", err)
	}
}

// lookup serves POST /subjects/{s}: the version under which this exact
// schema is registered.
func (r *registry) lookup(ctx context.Context, subject string, req registerRequest, includeDeleted bool) (Schema, error) {
	cs, err := r.canonicalize(ctx, req)
	if err != nil {
		return Schema{}, err
	}
	versions, err := listSubjectVersions(ctx, r.store, subject)
	if err != nil {
		return Schema{}, err
	}
	id, err := getFingerprintID(ctx, r.store, cs.fingerprint)
	if err != nil {
		return Schema{}, err
	}
	exists := false
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if v.Deleted && !includeDeleted {
			continue
		}
		exists = true
		if id != 0 && v.ID == id {
			return Schema{ID: id, Subject: subject, Version: v.Version, Type: cs.typ, Schema: cs.text, References: cs.refs}, nil
		}
	}
	if !exists {
		return Schema{}, newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	return Schema{}, newError(ErrSchemaNotFound, "Schema not found")
}

// schemaByID serves GET /schemas/ids/{id}.
func (r *registry) schemaByID(ctx context.Context, id int) (Schema, error) {
	rec, _, err := getSchemaRecord(ctx, r.store, id)
	if err != nil {
		return Schema{}, err
	}
	if rec.MaybeOrphan {
		all, err := listAllVersions(ctx, r.store)
		if err != nil {
			return Schema{}, err
		}
		if !slices.ContainsFunc(all, func(v versionRecord) bool { return v.ID == id }) {
			return Schema{}, newError(ErrSchemaNotFound, "Schema %d not found", id)
		}
		r.clearOrphanHint(ctx, id)
	}
	return Schema{ID: id, Type: rec.Type, Schema: rec.Schema, References: rec.References}, nil
}

// versionsByID serves GET /schemas/ids/{id}/versions.
func (r *registry) versionsByID(ctx context.Context, id int, includeDeleted bool) ([]subjectVersion, error) {
	if _, _, err := getSchemaRecord(ctx, r.store, id); err != nil {
		return nil, err
	}
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return nil, err
	}
	out := []subjectVersion{}
	used := false
	for _, v := range all {
		if v.ID != id {
			continue
		}
		used = true
		if includeDeleted || !v.Deleted {
			out = append(out, subjectVersion{Subject: v.Subject, Version: v.Version})
		}
	}
	if !used {
		return nil, newError(ErrSchemaNotFound, "Schema %d not found", id)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Subject != out[j].Subject {
			return out[i].Subject < out[j].Subject
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// referencingIDs returns the ids of versions (live, or any with
// includeDeleted) whose references name subject/version; versions of
// exceptSubject are ignored. A reference to version -1 means the latest.
func referencingIDs(all []versionRecord, subject string, version int, includeDeleted bool, exceptSubject string) []int {
	latest := 0
	for _, v := range all {
		if v.Subject == subject && !v.Deleted {
			latest = max(latest, v.Version)
		}
	}
	var ids []int
	for _, v := range all {
		if (v.Deleted && !includeDeleted) || (exceptSubject != "" && v.Subject == exceptSubject) {
			continue
		}
		for _, ref := range v.References {
			if ref.Subject == subject && (ref.Version == version || (ref.Version == -1 && version == latest)) {
				ids = append(ids, v.ID)
				break
			}
		}
	}
	sort.Ints(ids)
	return slices.Compact(ids)
}

// referencedBy serves GET /subjects/{s}/versions/{v}/referencedby.
func (r *registry) referencedBy(ctx context.Context, subject string, version int) ([]int, error) {
	v, err := r.findVersion(ctx, subject, version, true)
	if err != nil {
		return nil, err
	}
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return nil, err
	}
	ids := referencingIDs(all, v.Subject, v.Version, false, "")
	if ids == nil {
		ids = []int{}
	}
	return ids, nil
}

// deleteSubject serves DELETE /subjects/{s}[?permanent=true]: a soft delete
// marks every live version deleted; a permanent one removes versions that
// were soft-deleted first, then the subject's config and mode.
func (r *registry) deleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	if err := r.checkNotReadOnly(ctx, subject); err != nil {
		return nil, err
	}
	for range maxRegisterRetries {
		deleted, err := r.tryDeleteSubject(ctx, subject, permanent)
		if errors.Is(err, errRetry) {
			continue
		}
		return deleted, err
	}
	return nil, storeError("delete subject", fmt.Errorf("subject %q: gave up after %d concurrent updates", subject, maxRegisterRetries))
}

func (r *registry) tryDeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	versions, err := listSubjectVersions(ctx, r.store, subject)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	var targets []versionRecord
	for _, v := range versions {
		if !v.Deleted {
			if permanent {
				return nil, newError(ErrSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subject)
			}
			targets = append(targets, v)
		} else if permanent {
			targets = append(targets, v)
		}
	}
	if len(targets) == 0 {
		return nil, newError(ErrSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)
	}
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return nil, err
	}
	for _, v := range targets {
		if len(referencingIDs(all, subject, v.Version, permanent, subject)) > 0 {
			return nil, newError(ErrReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}.", subject, v.Version)
		}
	}
	deleted := make([]int, 0, len(targets))
	for _, v := range targets {
		deleted = append(deleted, v.Version)
	}
	if permanent {
		if err := r.hardDelete(ctx, targets); err != nil {
			return nil, err
		}
		return deleted, nil
	}
	for _, v := range targets {
		if err := r.softDelete(ctx, v); err != nil {
			return nil, err
		}
	}
	return deleted, nil
}

func (r *registry) softDelete(ctx context.Context, v versionRecord) error {
	v.Deleted = true
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := r.store.CAS(ctx, versionKey(v.Subject, v.Version), v.modRevision, b); err != nil {
		if isConflict(err) {
			return errRetry
		}
		return storeError("soft delete", err)
	}
	return nil
}

// hardDelete removes versions (newest first, as Confluent does, so that a
// crash midway never leaves a version whose references point at a removed
// older version of the same subject), then the config and mode of subjects
// left without versions, and flags ids no version uses any more.
func (r *registry) hardDelete(ctx context.Context, targets []versionRecord) error {
	ids := map[int]bool{}
	subjects := map[string]bool{}
	for i := len(targets) - 1; i >= 0; i-- {
		v := targets[i]
		if err := r.store.Delete(ctx, versionKey(v.Subject, v.Version)); err != nil {
			return storeError("hard delete", err)
		}
		ids[v.ID] = true
		subjects[v.Subject] = true
	}
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return err
	}
	for _, v := range all {
		delete(ids, v.ID)
		delete(subjects, v.Subject)
	}
	for id := range ids {
		r.setOrphanHint(ctx, id, true)
	}
	for subject := range subjects {
		if err := r.store.Delete(ctx, subjectConfigKey(subject)); err != nil {
			return storeError("delete subject config", err)
		}
		if err := r.store.Delete(ctx, subjectModeKey(subject)); err != nil {
			return storeError("delete subject mode", err)
		}
	}
	return nil
}

// deleteVersion serves DELETE /subjects/{s}/versions/{v}[?permanent=true].
func (r *registry) deleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	if err := r.checkNotReadOnly(ctx, subject); err != nil {
		return 0, err
	}
	for range maxRegisterRetries {
		v, err := r.tryDeleteVersion(ctx, subject, version, permanent)
		if errors.Is(err, errRetry) {
			continue
		}
		return v, err
	}
	return 0, storeError("delete version", fmt.Errorf("subject %q: gave up after %d concurrent updates", subject, maxRegisterRetries))
}

func (r *registry) tryDeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	versions, err := listSubjectVersions(ctx, r.store, subject)
	if err != nil {
		return 0, err
	}
	if len(versions) == 0 {
		return 0, newError(ErrSubjectNotFound, "Subject '%s' not found.", subject)
	}
	var target *versionRecord
	for i := range versions {
		v := &versions[i]
		if version == -1 {
			// "latest" is the newest live version; a permanent delete may
			// also target the newest soft-deleted one.
			if !v.Deleted || permanent {
				target = v
			}
		} else if v.Version == version {
			target = v
		}
	}
	if target == nil {
		return 0, newError(ErrVersionNotFound, "Version %d not found.", version)
	}
	if target.Deleted && !permanent {
		return 0, newError(ErrVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, target.Version)
	}
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return 0, err
	}
	if len(referencingIDs(all, subject, target.Version, permanent, "")) > 0 {
		return 0, newError(ErrReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}.", subject, target.Version)
	}
	if permanent {
		if !target.Deleted {
			return 0, newError(ErrVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, target.Version)
		}
		return target.Version, r.hardDelete(ctx, []versionRecord{*target})
	}
	return target.Version, r.softDelete(ctx, *target)
}

// testCompatibility serves POST /compatibility/subjects/{s}/versions[/{v}]:
// version 0 checks against every live version (per the level), otherwise
// against that one version (-1: latest).
func (r *registry) testCompatibility(ctx context.Context, subject string, version int, req registerRequest) ([]string, error) {
	var targets []versionRecord
	if version == 0 {
		versions, err := listSubjectVersions(ctx, r.store, subject)
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			if !v.Deleted {
				targets = append(targets, v)
			}
		}
	} else {
		v, err := r.findVersion(ctx, subject, version, false)
		switch {
		case err == nil:
			targets = []versionRecord{v}
		case version == -1 && errors.Is(err, ErrSubjectNotFound):
			// Nothing to be incompatible with.
		case errors.Is(err, ErrSubjectNotFound):
			return nil, newError(ErrVersionNotFound, "Version %d not found.", version)
		default:
			return nil, err
		}
	}
	cs, err := r.canonicalize(ctx, req)
	if err != nil {
		return nil, err
	}
	level, err := r.compatInScope(ctx, subject)
	if err != nil {
		return nil, err
	}
	previous := make([]previousSchema, 0, len(targets))
	for _, v := range targets {
		p, text, err := r.parsedByID(ctx, v.ID)
		if err != nil {
			return nil, err
		}
		previous = append(previous, previousSchema{version: v.Version, text: text, parsed: p})
	}
	return checkCompatibility(level, cs.parsed, previous), nil
}

// allSchemas serves GET /schemas: live (or all) versions of subjects with a
// prefix, optionally only each subject's latest.
func (r *registry) allSchemas(ctx context.Context, prefix string, includeDeleted, latestOnly bool) ([]Schema, error) {
	all, err := listAllVersions(ctx, r.store)
	if err != nil {
		return nil, err
	}
	var picked []versionRecord
	for _, v := range all {
		if (v.Deleted && !includeDeleted) || !strings.HasPrefix(v.Subject, prefix) {
			continue
		}
		if latestOnly && len(picked) > 0 && picked[len(picked)-1].Subject == v.Subject {
			picked[len(picked)-1] = v
			continue
		}
		picked = append(picked, v)
	}
	out := make([]Schema, 0, len(picked))
	for _, v := range picked {
		rec, err := r.record(ctx, v.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Schema{ID: v.ID, Subject: v.Subject, Version: v.Version, Type: rec.Type, Schema: rec.Schema, References: rec.References})
	}
	return out, nil
}
