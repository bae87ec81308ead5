package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// loadTableResult is the spec's LoadTableResult.
type loadTableResult struct {
	MetadataLocation string            `json:"metadata-location,omitempty"`
	Metadata         json.RawMessage   `json:"metadata"`
	Config           map[string]string `json:"config,omitempty"`
}

// tableConfig is the per-table config of a LoadTableResult. When auth is on
// and the client asks for vended credentials, it carries the server's storage
// credentials: a client that proved it may use the catalog may read and
// write its tables. An open catalog never hands out secrets.
func (s *Server) tableConfig(r *http.Request) map[string]string {
	if s.auth == nil || !strings.Contains(r.Header.Get("X-Iceberg-Access-Delegation"), "vended-credentials") {
		return nil
	}
	cfg := maps.Clone(s.storageProps)
	for _, k := range []string{"s3.access-key-id", "s3.secret-access-key", "s3.session-token"} {
		if v := s.ioProps[k]; v != "" {
			cfg[k] = v
		}
	}
	return cfg
}

func pathTable(r *http.Request) (table.Identifier, error) {
	ns, err := pathNamespace(r)
	if err != nil {
		return nil, err
	}
	name := r.PathValue("table")
	if err := validateName("table name", name); err != nil {
		return nil, err
	}
	return append(ns, name), nil
}

// listTables serves GET /v1/namespaces/{namespace}/tables.
func (s *Server) listTables(w http.ResponseWriter, r *http.Request) error {
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	page, err := parsePageRequest(r.URL.Query())
	if err != nil {
		return err
	}
	var idents []table.Identifier
	for ident, err := range s.cat.ListTables(r.Context(), ns) {
		if err != nil {
			return err
		}
		idents = append(idents, ident)
	}
	idents, next := paginate(idents, identKey, page)
	out := make([]identifier, len(idents))
	for i, ident := range idents {
		out[i] = toIdentifier(ident)
	}
	writeJSON(w, http.StatusOK, struct {
		Identifiers   []identifier `json:"identifiers"`
		NextPageToken string       `json:"next-page-token,omitempty"`
	}{out, next})
	return nil
}

// createTableRequest is the spec's CreateTableRequest. The partition spec and
// write order refer to the request schema's field IDs, so they are decoded
// unbound and bound by table.NewMetadata when IDs are reassigned.
type createTableRequest struct {
	Name          string                        `json:"name"`
	Location      string                        `json:"location"`
	Schema        *iceberg.Schema               `json:"schema"`
	PartitionSpec *iceberg.UnboundPartitionSpec `json:"partition-spec"`
	WriteOrder    *table.UnboundSortOrder       `json:"write-order"`
	StageCreate   bool                          `json:"stage-create"`
	Properties    map[string]string             `json:"properties"`
}

// createTable serves POST /v1/namespaces/{namespace}/tables. A staged create
// only returns the metadata the table would start with; the table comes into
// being with the client's commit that asserts it does not exist yet.
func (s *Server) createTable(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	var req createTableRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := validateName("table name", req.Name); err != nil {
		return err
	}
	ident := append(slices.Clone(ns), req.Name)
	if req.Schema == nil {
		return badRequestf("create table %s: schema is required", strings.Join(ident, "."))
	}
	if err := checkProperties("table", req.Properties); err != nil {
		return err
	}
	var spec *iceberg.PartitionSpec
	if req.PartitionSpec != nil {
		spec = &req.PartitionSpec.PartitionSpec
	}
	order := table.UnsortedSortOrder
	if req.WriteOrder != nil {
		order = req.WriteOrder.SortOrder
	}

	nsProps, err := s.cat.LoadNamespaceProperties(ctx, ns)
	if err != nil {
		return err
	}
	loc := strings.TrimRight(req.Location, "/")
	if loc == "" {
		if loc, err = s.warehouse.defaultTableLocation(nsProps["location"], ns, req.Name); err != nil {
			return err
		}
	}
	if err := s.warehouse.checkLocation("table location", loc); err != nil {
		return err
	}
	// Build the metadata here first: a schema, spec or order that does not
	// fit is the client's mistake (400), and the metadata file location must
	// stay in the warehouse even with write.metadata.path set.
	meta, err := table.NewMetadata(req.Schema, spec, order, loc, req.Properties)
	if err != nil {
		return badRequestf("create table %s: %v", strings.Join(ident, "."), err)
	}
	provider, err := table.LoadLocationProvider(loc, meta.Properties())
	if err != nil {
		return badRequestf("create table %s: %v", strings.Join(ident, "."), err)
	}
	metaLoc, err := provider.NewTableMetadataFileLocation(0)
	if err != nil {
		return badRequestf("create table %s: %v", strings.Join(ident, "."), err)
	}
	if err := s.warehouse.checkLocation("metadata location", metaLoc); err != nil {
		return err
	}

	if req.StageCreate {
		exists, err := s.cat.CheckTableExists(ctx, ident)
		if err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("%w: %s", icebergcatalog.ErrTableAlreadyExists, strings.Join(ident, "."))
		}
		raw, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, loadTableResult{Metadata: raw, Config: s.tableConfig(r)})
		return nil
	}

	opts := []icebergcatalog.CreateTableOpt{
		icebergcatalog.WithLocation(loc),
		icebergcatalog.WithSortOrder(order),
		icebergcatalog.WithProperties(req.Properties),
	}
	if spec != nil {
		opts = append(opts, icebergcatalog.WithPartitionSpec(spec))
	}
	tbl, err := s.cat.CreateTable(ctx, ident, req.Schema, opts...)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "table created", "table", strings.Join(ident, "."), "location", tbl.Location())
	raw, err := json.Marshal(tbl.Metadata())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loadTableResult{
		MetadataLocation: tbl.MetadataLocation(), Metadata: raw, Config: s.tableConfig(r),
	})
	return nil
}

// loadTable serves GET /v1/namespaces/{namespace}/tables/{table}.
func (s *Server) loadTable(w http.ResponseWriter, r *http.Request) error {
	ident, err := pathTable(r)
	if err != nil {
		return err
	}
	mode := r.URL.Query().Get("snapshots")
	if mode != "" && mode != "all" && mode != "refs" {
		return badRequestf("snapshots must be all or refs, not %q", mode)
	}
	st, err := s.loadTableState(r.Context(), ident)
	if err != nil {
		return err
	}
	raw := st.raw
	if mode == "refs" {
		if raw, err = st.refsOnly(); err != nil {
			return fmt.Errorf("trim snapshots of %s: %w", strings.Join(ident, "."), err)
		}
	}
	writeJSON(w, http.StatusOK, loadTableResult{
		MetadataLocation: st.location, Metadata: raw, Config: s.tableConfig(r),
	})
	return nil
}

// tableExists serves HEAD /v1/namespaces/{namespace}/tables/{table}.
func (s *Server) tableExists(w http.ResponseWriter, r *http.Request) error {
	ident, err := pathTable(r)
	if err != nil {
		return err
	}
	ok, err := s.cat.CheckTableExists(r.Context(), ident)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchTable, strings.Join(ident, "."))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// commitTableRequest is the spec's CommitTableRequest; in a transaction the
// identifier is required.
type commitTableRequest struct {
	Identifier   *identifier        `json:"identifier"`
	Requirements table.Requirements `json:"requirements"`
	Updates      table.Updates      `json:"updates"`
}

// commitTable serves POST /v1/namespaces/{namespace}/tables/{table}.
func (s *Server) commitTable(w http.ResponseWriter, r *http.Request) error {
	ident, err := pathTable(r)
	if err != nil {
		return err
	}
	var req commitTableRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Identifier != nil {
		bodyIdent, err := req.Identifier.tableIdent()
		if err != nil {
			return err
		}
		if !slices.Equal(bodyIdent, ident) {
			return badRequestf("body identifier %s does not match the path's table %s",
				strings.Join(bodyIdent, "."), strings.Join(ident, "."))
		}
	}
	res, err := s.commit(r.Context(), []tableChange{{ident: ident, reqs: req.Requirements, updates: req.Updates}})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		MetadataLocation string          `json:"metadata-location"`
		Metadata         json.RawMessage `json:"metadata"`
	}{res[0].location, res[0].raw})
	return nil
}

// dropTable serves DELETE /v1/namespaces/{namespace}/tables/{table}. With
// purgeRequested the table's files are deleted after the row is gone.
func (s *Server) dropTable(w http.ResponseWriter, r *http.Request) error {
	ident, err := pathTable(r)
	if err != nil {
		return err
	}
	purge := false
	if raw := r.URL.Query().Get("purgeRequested"); raw != "" {
		if purge, err = strconv.ParseBool(raw); err != nil {
			return badRequestf("purgeRequested %q must be true or false", raw)
		}
	}
	if purge {
		err = s.cat.PurgeTable(r.Context(), ident)
	} else {
		err = s.cat.DropTable(r.Context(), ident)
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "table dropped", "table", strings.Join(ident, "."), "purge", purge)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// renameTable serves POST /v1/tables/rename.
func (s *Server) renameTable(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Source      *identifier `json:"source"`
		Destination *identifier `json:"destination"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Source == nil || req.Destination == nil {
		return badRequestf("rename needs both source and destination")
	}
	from, err := req.Source.tableIdent()
	if err != nil {
		return err
	}
	to, err := req.Destination.tableIdent()
	if err != nil {
		return err
	}
	if _, err := s.cat.RenameTable(r.Context(), from, to); err != nil {
		if errors.Is(err, icebergcatalog.ErrTableAlreadyExists) {
			return fmt.Errorf("%w: %s", err, strings.Join(to, "."))
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// registerTable serves POST /v1/namespaces/{namespace}/register: it adopts an
// existing metadata file (inside the warehouse) as a table.
func (s *Server) registerTable(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	var req struct {
		Name             string `json:"name"`
		MetadataLocation string `json:"metadata-location"`
		Overwrite        bool   `json:"overwrite"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := validateName("table name", req.Name); err != nil {
		return err
	}
	ident := append(slices.Clone(ns), req.Name)
	if err := s.warehouse.checkLocation("metadata-location", req.MetadataLocation); err != nil {
		return err
	}
	tbl, err := table.NewFromLocation(ctx, ident, req.MetadataLocation,
		s.fsFunc(req.MetadataLocation), nil)
	if err != nil {
		return badRequestf("cannot read table metadata at %q: %v", req.MetadataLocation, err)
	}
	if err := s.warehouse.checkLocation("table location", tbl.Location()); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, []string{identKey(ident)})
	if err != nil {
		return err
	}
	err = s.store.registerTable(ctx, ident, req.MetadataLocation, req.Overwrite)
	unlock()
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "table registered", "table", strings.Join(ident, "."), "metadata_location", req.MetadataLocation)
	raw, err := json.Marshal(tbl.Metadata())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loadTableResult{
		MetadataLocation: req.MetadataLocation, Metadata: raw, Config: s.tableConfig(r),
	})
	return nil
}

// reportMetrics serves POST .../tables/{table}/metrics. Reports are accepted
// and logged at debug level; the catalog keeps no metrics store.
func (s *Server) reportMetrics(w http.ResponseWriter, r *http.Request) error {
	ident, err := pathTable(r)
	if err != nil {
		return err
	}
	var report map[string]any
	if err := decodeBody(r, &report); err != nil {
		return err
	}
	if report == nil {
		return badRequestf("metrics report must be a JSON object")
	}
	ok, err := s.cat.CheckTableExists(r.Context(), ident)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchTable, strings.Join(ident, "."))
	}
	s.log.DebugContext(r.Context(), "metrics report", "table", strings.Join(ident, "."),
		"report_type", fmt.Sprint(report["report-type"]))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
