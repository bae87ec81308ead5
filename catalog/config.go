package catalog

import (
	"net/http"
	"strconv"
)

// endpoints lists every route the server implements, in the spec's
// "METHOD /v1/{prefix}/..." form. Clients gate their calls on it, so it must
// name exactly what we serve: views, scan planning and credential refresh are
// absent on purpose.
var endpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"POST /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"DELETE /v1/{prefix}/namespaces/{namespace}",
	"POST /v1/{prefix}/namespaces/{namespace}/properties",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"POST /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/register",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
	"POST /v1/{prefix}/tables/rename",
	"POST /v1/{prefix}/transactions/commit",
}

// catalogConfig is the spec's CatalogConfig.
type catalogConfig struct {
	Defaults  map[string]string `json:"defaults"`
	Overrides map[string]string `json:"overrides"`
	Endpoints []string          `json:"endpoints"`
}

// getConfig serves GET /v1/config. Defaults carry the storage settings an
// engine needs to read the warehouse (endpoint, region, addressing style; no
// secrets); overrides carry the prefix, which the server decides.
func (s *Server) getConfig(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, catalogConfig{
		Defaults: s.storageProps,
		Overrides: map[string]string{
			"prefix":              Prefix,
			"namespace-separator": "%1F",
		},
		Endpoints: endpoints,
	})
	return nil
}

// storageProperties picks the non-secret storage settings out of the
// server's FileIO properties, under both the Java names (s3.path-style-access)
// and iceberg-go's (s3.force-virtual-addressing), so engines of either family
// reach the same endpoint the same way.
func storageProperties(io map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"s3.endpoint", "s3.region", "client.region"} {
		if v := io[k]; v != "" {
			out[k] = v
		}
	}
	if out["client.region"] == "" && out["s3.region"] != "" {
		out["client.region"] = out["s3.region"]
	}
	if out["s3.region"] == "" && out["client.region"] != "" {
		out["s3.region"] = out["client.region"]
	}

	pathStyle, known := false, false
	if v, err := strconv.ParseBool(io["s3.path-style-access"]); err == nil {
		pathStyle, known = v, true
	} else if v, err := strconv.ParseBool(io["s3.force-virtual-addressing"]); err == nil {
		pathStyle, known = !v, true
	} else if out["s3.endpoint"] != "" {
		// A custom endpoint (MinIO, versitygw...) almost always wants
		// path-style; iceberg-go defaults to it in this case too.
		pathStyle, known = true, true
	}
	if known {
		out["s3.path-style-access"] = strconv.FormatBool(pathStyle)
		out["s3.force-virtual-addressing"] = strconv.FormatBool(!pathStyle)
	}
	return out
}
