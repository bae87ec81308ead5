package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// resolvedSchema is one schema a schema depends on through its references,
// fetched from the store.
type resolvedSchema struct {
	name string // the reference name that pulled it in
	typ  string
	text string
}

// jsonSchema is a JSON Schema document. Only its syntax is checked;
// compatibility for JSON Schema is NONE-like for now.
type jsonSchema struct{}

func (jsonSchema) schemaType() string { return TypeJSON }

// canRead: JSON Schema compatibility rules are not implemented yet; every
// JSON schema is accepted as compatible with earlier JSON versions.
func (jsonSchema) canRead(parsedSchema) []string { return nil }

// normalizeType maps the request's schemaType ("" means AVRO) to a type name.
func normalizeType(t string) (string, error) {
	switch strings.ToUpper(strings.TrimSpace(t)) {
	case "", TypeAvro:
		return TypeAvro, nil
	case TypeJSON:
		return TypeJSON, nil
	case TypeProtobuf:
		return TypeProtobuf, nil
	}
	return "", newError(ErrInvalidSchema, "Invalid schema type %s", t)
}

// canonicalSchema is a schema as the registry stores it.
type canonicalSchema struct {
	typ    string
	text   string // what GET returns: compact JSON for Avro and JSON Schema, the file for Protobuf
	refs   []Reference
	parsed parsedSchema
	// fingerprint identifies the schema for id reuse: equal for schemas that
	// differ only in layout (and, for JSON, key order).
	fingerprint string
}

// parseSchema validates text as a schema of type typ whose references have
// been resolved (deps, dependencies first) and returns its canonical form.
func parseSchema(typ, text string, refs []Reference, deps []resolvedSchema) (*canonicalSchema, error) {
	if strings.TrimSpace(text) == "" {
		return nil, newError(ErrInvalidSchema, "Empty schema")
	}
	cs := &canonicalSchema{typ: typ, refs: refs}
	var identity string
	switch typ {
	case TypeAvro:
		compact, normalized, err := canonicalJSON(text, true)
		if err != nil {
			return nil, invalidSchema(typ, err)
		}
		parsed, err := parseAvro(compact, deps)
		if err != nil {
			return nil, invalidSchema(typ, err)
		}
		cs.text, cs.parsed, identity = compact, parsed, normalized
	case TypeJSON:
		compact, normalized, err := canonicalJSON(text, false)
		if err != nil {
			return nil, invalidSchema(typ, err)
		}
		if c := compact[0]; c != '{' && compact != "true" && compact != "false" {
			return nil, invalidSchema(typ, fmt.Errorf("a JSON Schema must be an object or a boolean"))
		}
		cs.text, cs.parsed, identity = compact, jsonSchema{}, normalized
	case TypeProtobuf:
		parsed, err := parseProtobuf(text)
		if err != nil {
			return nil, invalidSchema(typ, err)
		}
		if err := checkProtobufImports(parsed.imports, refs); err != nil {
			return nil, invalidSchema(typ, err)
		}
		cs.text, cs.parsed, identity = text, parsed, strings.Join(parsed.tokens, " ")
	default:
		return nil, newError(ErrInvalidSchema, "Invalid schema type %s", typ)
	}
	h := sha256.New()
	refJSON, _ := json.Marshal(refs) // a []Reference always marshals
	fmt.Fprintf(h, "%s\x00%s\x00%s", typ, refJSON, identity)
	cs.fingerprint = hex.EncodeToString(h.Sum(nil))
	return cs, nil
}

func invalidSchema(typ string, err error) error {
	return newError(ErrInvalidSchema, "Invalid schema of type %s, details: %v", typ, err)
}

// checkProtobufImports requires every import to be a reference or one of the
// well-known files every Protobuf runtime (and Confluent's) ships.
func checkProtobufImports(imports []string, refs []Reference) error {
	for _, imp := range imports {
		if strings.HasPrefix(imp, "google/protobuf/") || strings.HasPrefix(imp, "google/type/") ||
			strings.HasPrefix(imp, "confluent/") {
			continue
		}
		found := false
		for _, r := range refs {
			if r.Name == imp {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("import %q is not among the schema references", imp)
		}
	}
	return nil
}

// canonicalJSON returns text without insignificant whitespace (the stored
// form, key order kept, as Confluent stores its compact rendering) and a
// normalized form with sorted keys for identity. For Avro, {"type":"int"} and
// "int" are the same schema, so such wrappers are unwrapped in the identity.
func canonicalJSON(text string, avroRules bool) (compact, normalized string, err error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", "", err
	}
	if dec.More() {
		return "", "", fmt.Errorf("trailing data after JSON value")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(text)); err != nil {
		return "", "", err
	}
	if avroRules {
		v = unwrapAvroPrimitives(v)
	}
	var norm bytes.Buffer
	enc := json.NewEncoder(&norm)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", "", err
	}
	return buf.String(), strings.TrimSpace(norm.String()), nil
}

func unwrapAvroPrimitives(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if t, ok := x["type"].(string); ok {
				switch t {
				case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
					return t
				}
			}
		}
		for k, e := range x {
			if k == "default" { // a default is data, not schema
				continue
			}
			x[k] = unwrapAvroPrimitives(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = unwrapAvroPrimitives(e)
		}
		return x
	}
	return v
}
