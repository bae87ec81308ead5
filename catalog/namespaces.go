package catalog

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	icebergcatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

func pathNamespace(r *http.Request) (table.Identifier, error) {
	return parseNamespace(r.PathValue("namespace"))
}

// namespaceResponse is the spec's GetNamespaceResponse and
// CreateNamespaceResponse.
type namespaceResponse struct {
	Namespace  []string          `json:"namespace"`
	Properties map[string]string `json:"properties"`
}

// listNamespaces serves GET /v1/namespaces: the namespaces one level below
// parent (top-level ones without it), including levels that exist only
// because something deeper does.
func (s *Server) listNamespaces(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePageRequest(q)
	if err != nil {
		return err
	}
	var parent table.Identifier
	if raw := q.Get("parent"); raw != "" {
		if parent, err = parseNamespace(raw); err != nil {
			return err
		}
	}
	all, err := s.cat.ListNamespaces(r.Context(), parent)
	if err != nil {
		return err
	}
	children := map[string]table.Identifier{}
	for _, ns := range all {
		if len(ns) <= len(parent) || !slices.Equal(ns[:len(parent)], parent) {
			continue
		}
		child := slices.Clone(ns[:len(parent)+1])
		children[identKey(child)] = child
	}
	list := make([]table.Identifier, 0, len(children))
	for _, c := range children {
		list = append(list, c)
	}
	list, next := paginate(list, identKey, page)
	out := make([][]string, len(list))
	for i, ns := range list {
		out[i] = ns
	}
	writeJSON(w, http.StatusOK, struct {
		Namespaces    [][]string `json:"namespaces"`
		NextPageToken string     `json:"next-page-token,omitempty"`
	}{out, next})
	return nil
}

// createNamespace serves POST /v1/namespaces.
func (s *Server) createNamespace(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Namespace  []string          `json:"namespace"`
		Properties map[string]string `json:"properties"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	ns := table.Identifier(req.Namespace)
	if err := validateNamespace(ns); err != nil {
		return err
	}
	if err := s.checkNamespaceProperties(req.Properties); err != nil {
		return err
	}
	if err := s.cat.CreateNamespace(r.Context(), ns, req.Properties); err != nil {
		return err
	}
	props := req.Properties
	if props == nil {
		props = map[string]string{}
	}
	writeJSON(w, http.StatusOK, namespaceResponse{Namespace: ns, Properties: props})
	return nil
}

func (s *Server) checkNamespaceProperties(props map[string]string) error {
	if err := checkProperties("namespace", props); err != nil {
		return err
	}
	if loc, ok := props["location"]; ok {
		return s.warehouse.checkLocation("namespace location", loc)
	}
	return nil
}

// loadNamespace serves GET /v1/namespaces/{namespace}.
func (s *Server) loadNamespace(w http.ResponseWriter, r *http.Request) error {
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	props, err := s.cat.LoadNamespaceProperties(r.Context(), ns)
	if err != nil {
		return err
	}
	if props == nil {
		props = map[string]string{}
	}
	writeJSON(w, http.StatusOK, namespaceResponse{Namespace: ns, Properties: props})
	return nil
}

// namespaceExists serves HEAD /v1/namespaces/{namespace}.
func (s *Server) namespaceExists(w http.ResponseWriter, r *http.Request) error {
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	ok, err := s.cat.CheckNamespaceExists(r.Context(), ns)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", icebergcatalog.ErrNoSuchNamespace, strings.Join(ns, "."))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dropNamespace serves DELETE /v1/namespaces/{namespace}. A namespace that
// holds tables or child namespaces is not empty.
func (s *Server) dropNamespace(w http.ResponseWriter, r *http.Request) error {
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	descendants, err := s.cat.ListNamespaces(r.Context(), ns)
	if err != nil {
		return err
	}
	for _, d := range descendants {
		if len(d) > len(ns) {
			return fmt.Errorf("%w: %s has child namespace %s", icebergcatalog.ErrNamespaceNotEmpty,
				strings.Join(ns, "."), strings.Join(d, "."))
		}
	}
	if err := s.cat.DropNamespace(r.Context(), ns); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateNamespaceProperties serves POST /v1/namespaces/{namespace}/properties.
func (s *Server) updateNamespaceProperties(w http.ResponseWriter, r *http.Request) error {
	ns, err := pathNamespace(r)
	if err != nil {
		return err
	}
	var req struct {
		Removals []string          `json:"removals"`
		Updates  map[string]string `json:"updates"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	for _, k := range req.Removals {
		if _, ok := req.Updates[k]; ok {
			return fmt.Errorf("%w: property %q is both updated and removed", ErrUnprocessable, k)
		}
	}
	if err := s.checkNamespaceProperties(req.Updates); err != nil {
		return err
	}
	summary, err := s.cat.UpdateNamespaceProperties(r.Context(), ns, req.Removals, req.Updates)
	if err != nil {
		return err
	}
	nonNil := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	writeJSON(w, http.StatusOK, struct {
		Updated []string `json:"updated"`
		Removed []string `json:"removed"`
		Missing []string `json:"missing,omitempty"`
	}{nonNil(summary.Updated), nonNil(summary.Removed), summary.Missing})
	return nil
}
