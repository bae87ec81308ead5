package catalog

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apache/iceberg-go/table"
)

const (
	// namespaceSeparator joins namespace levels in a path segment or the
	// parent query parameter; the spec's default, which we advertise.
	namespaceSeparator = "\x1f"
	// maxNameBytes bounds one namespace level or table name.
	maxNameBytes = 255
	// maxNamespaceDepth bounds namespace nesting.
	maxNamespaceDepth = 16
	// sqlNamespaceMarker is the prefix iceberg-go's SQL catalog gives the keys
	// of namespaces whose levels contain dots. A level holding it could make two
	// namespaces share a key, so it is refused.
	sqlNamespaceMarker = "__iceberg_namespace_v1__:"
)

// validateName checks one namespace level or table name. Names become path
// elements of table locations in the warehouse, so anything that could climb
// out of the namespace directory or be read differently by a path or URL
// parser is refused: separators, dot names, control characters and the URL
// metacharacters % ? #.
func validateName(kind, name string) error {
	switch {
	case name == "":
		return badRequestf("%s must not be empty", kind)
	case len(name) > maxNameBytes:
		return badRequestf("%s is longer than %d bytes", kind, maxNameBytes)
	case !utf8.ValidString(name):
		return badRequestf("%s is not valid UTF-8", kind)
	case name == "." || name == "..":
		return badRequestf("%s %q is not allowed", kind, name)
	case strings.Contains(name, sqlNamespaceMarker):
		return badRequestf("%s must not contain %q", kind, sqlNamespaceMarker)
	case strings.TrimSpace(name) != name:
		return badRequestf("%s %q has leading or trailing white space", kind, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return badRequestf("%s %q contains a control character", kind, name)
		}
		if strings.ContainsRune(`/\%?#`, r) {
			return badRequestf("%s %q must not contain %q", kind, name, r)
		}
	}
	return nil
}

func validateNamespace(ns table.Identifier) error {
	if len(ns) == 0 {
		return badRequestf("namespace must have at least one level")
	}
	if len(ns) > maxNamespaceDepth {
		return badRequestf("namespace is deeper than %d levels", maxNamespaceDepth)
	}
	for _, level := range ns {
		if err := validateName("namespace level", level); err != nil {
			return err
		}
	}
	return nil
}

// validateTableIdent checks a full table identifier (namespace + name).
func validateTableIdent(ident table.Identifier) error {
	if len(ident) < 2 {
		return badRequestf("table identifier needs a namespace and a name")
	}
	if err := validateNamespace(ident[:len(ident)-1]); err != nil {
		return err
	}
	return validateName("table name", ident[len(ident)-1])
}

// parseNamespace decodes a namespace as it appears in a path segment or the
// parent query parameter: levels joined by the unit separator.
func parseNamespace(raw string) (table.Identifier, error) {
	if raw == "" {
		return nil, badRequestf("namespace must not be empty")
	}
	ns := table.Identifier(strings.Split(raw, namespaceSeparator))
	if err := validateNamespace(ns); err != nil {
		return nil, err
	}
	return ns, nil
}

// identifier is the REST spec's TableIdentifier.
type identifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

func (id identifier) tableIdent() (table.Identifier, error) {
	if id.Namespace == nil {
		return nil, badRequestf("table identifier is missing its namespace")
	}
	ident := append(slices.Clone(id.Namespace), id.Name)
	if err := validateTableIdent(ident); err != nil {
		return nil, err
	}
	return ident, nil
}

func toIdentifier(ident table.Identifier) identifier {
	return identifier{Namespace: slices.Clone(ident[:len(ident)-1]), Name: ident[len(ident)-1]}
}

// namespaceKey is the string iceberg-go's SQL catalog stores for a namespace
// (its unexported namespaceToString): levels joined by dots, or a marked JSON
// array when a level itself holds a dot. Our own SQL (the commit swap, table
// registration) must address rows exactly as the SQL catalog wrote them.
// validateName refuses the marker inside levels, so the SQL catalog's legacy
// fallback key never comes into play.
func namespaceKey(ns table.Identifier) string {
	if !slices.ContainsFunc(ns, func(level string) bool { return strings.Contains(level, ".") }) {
		return strings.Join(ns, ".")
	}
	encoded, err := json.Marshal([]string(ns))
	if err != nil {
		panic(err) // a []string always marshals
	}
	return sqlNamespaceMarker + string(encoded)
}

// identKey is a sortable, unambiguous key for a namespace or table
// identifier, used for paging and lock striping.
func identKey(ident table.Identifier) string {
	return strings.Join(ident, namespaceSeparator)
}

// warehouseRoot is the normalised warehouse location every table, namespace
// location and metadata file must live under.
type warehouseRoot struct {
	scheme string
	host   string
	path   string // cleaned, without a trailing slash
	raw    string // as given, for building default locations
}

func parseWarehouse(raw string) (warehouseRoot, error) {
	if raw == "" {
		return warehouseRoot{}, fmt.Errorf("warehouse location is required")
	}
	if strings.HasPrefix(raw, "/") {
		raw = "file://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return warehouseRoot{}, fmt.Errorf("warehouse %q: %v", raw, err)
	}
	if u.Scheme == "" {
		return warehouseRoot{}, fmt.Errorf("warehouse %q needs a scheme such as file:// or s3://", raw)
	}
	if u.Scheme != "file" && u.Host == "" {
		return warehouseRoot{}, fmt.Errorf("warehouse %q names no bucket", raw)
	}
	p := strings.TrimSuffix(path.Clean("/"+u.Path), "/")
	return warehouseRoot{
		scheme: u.Scheme, host: u.Host, path: p,
		raw: strings.TrimSuffix(raw, "/"),
	}, nil
}

// contains reports whether loc lies strictly inside the warehouse. A location
// with dot segments is refused outright rather than cleaned: what a storage
// backend does with "a/../b" is its own business.
func (w warehouseRoot) contains(loc string) bool {
	if strings.HasPrefix(loc, "/") && w.scheme == "file" {
		loc = "file://" + loc
	}
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != w.scheme || u.Host != w.host || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if unicode.IsControl(r) {
				return false
			}
		}
	}
	p := strings.TrimSuffix(u.Path, "/")
	return strings.HasPrefix(p, w.path+"/") && len(p) > len(w.path)+1
}

// checkLocation refuses a location outside the warehouse. The server writes
// metadata files there with its own storage credentials, so a client-chosen
// location must not reach other buckets or directories.
func (w warehouseRoot) checkLocation(what, loc string) error {
	if !w.contains(loc) {
		return badRequestf("%s %q is not inside the warehouse %s", what, loc, w.raw)
	}
	return nil
}

// defaultTableLocation mirrors iceberg-go's SQL catalog: the namespace's
// location property if set, else <warehouse>/<namespace key>.db/<table>.
func (w warehouseRoot) defaultTableLocation(nsLocation string, ns table.Identifier, name string) (string, error) {
	if nsLocation != "" {
		return url.JoinPath(nsLocation, name)
	}
	return url.JoinPath(w.raw, namespaceKey(ns)+".db", name)
}

// ioPropertyPrefixes are property prefixes that configure FileIO. A table or
// namespace property with one of them would redirect the server's (and every
// client's) storage access for that table, e.g. s3.endpoint pointing at a
// host that collects signed requests, so they are refused as properties.
var ioPropertyPrefixes = []string{"s3.", "client.", "gcs.", "adls.", "oss.", "azure.", "hadoop.", "io."}

func checkProperties(what string, props map[string]string) error {
	for k := range props {
		for _, p := range ioPropertyPrefixes {
			if strings.HasPrefix(k, p) {
				return badRequestf("%s property %q is not allowed: storage settings belong to the catalog server", what, k)
			}
		}
		if !utf8.ValidString(k) || !utf8.ValidString(props[k]) {
			return badRequestf("%s property %q is not valid UTF-8", what, k)
		}
	}
	return nil
}
