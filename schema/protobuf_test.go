package schema

import (
	"strings"
	"testing"
)

func TestParseProtobuf(t *testing.T) {
	valid := map[string]string{
		"proto3 with everything": `
syntax = "proto3";
package acme.orders.v1;
option go_package = "example.com/orders;orders";
option java_multiple_files = true;
import "google/protobuf/timestamp.proto";
import public "other.proto";

/* An order. */
message Order {
  option deprecated = false;
  int64 id = 1; // the id
  repeated string items = 2 [packed = true, (acme.rules).min_len = 1];
  map<string, Money> totals = 3;
  google.protobuf.Timestamp at = 4;
  .acme.orders.v1.Status status = 5;
  oneof payment {
    string card = 6;
    Wire wire = 7 [deprecated = true];
  }
  message Money { string currency = 1; int64 units = 2; }
  enum Kind { option allow_alias = true; KIND_UNSPECIFIED = 0; KIND_A = 1; KIND_B = 1 [deprecated = true]; }
  reserved 8, 9 to 11, 100 to max;
  reserved "old", "older";
  optional string note = 12;
  bytes blob = 13 [(acme.meta) = { key: "a" values: [1, 2] }];
  ;
}
enum Status { STATUS_UNSPECIFIED = 0; NEG = -1; }
service Orders {
  option (acme.api) = "v1";
  rpc Get(GetRequest) returns (Order);
  rpc Watch(stream GetRequest) returns (stream Order) { option idempotency_level = NO_SIDE_EFFECTS; }
}
`,
		"proto2 with groups and extensions": `
syntax = "proto2";
message Legacy {
  required int32 a = 1;
  optional string b = 2 [default = "x"];
  repeated group Result = 3 { required string url = 4; }
  extensions 100 to 199;
}
extend Legacy { optional int32 c = 100; }
`,
		"no syntax, keywords as names": `message message { string option = 1; int32 package = 2; string reserved = 3; }`,
		"editions":                     `edition = "2023"; message A { string s = 1 [features.field_presence = IMPLICIT]; }`,
		"float and hex constants":      `option (x) = -inf; option (y) = 0x1F; option (z) = 1.5e-3; message A {}`,
	}
	for name, src := range valid {
		t.Run(name, func(t *testing.T) {
			if _, err := parseProtobuf(src); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}

	invalid := map[string]string{
		"empty":                    "  // nothing\n",
		"missing field number":     `message A { int32 a = ; }`,
		"missing semicolon":        `message A { int32 a = 1 }`,
		"unterminated message":     `message A { int32 a = 1;`,
		"unbalanced brace":         `message A { int32 a = 1; }}`,
		"duplicate field number":   `message A { int32 a = 1; string b = 1; }`,
		"field number zero":        `message A { int32 a = 0; }`,
		"field number too large":   `message A { int32 a = 536870912; }`,
		"unknown syntax":           `syntax = "proto4";`,
		"json instead of proto":    `{"type":"record"}`,
		"empty enum":               `enum E {}`,
		"bad rpc":                  `service S { rpc M(A) (B); }`,
		"unterminated string":      `syntax = "proto3;`,
		"unterminated comment":     `message A {} /* no end`,
		"stray token at top level": `int32 a = 1;`,
		"bad map":                  `message A { map<string> m = 1; }`,
		"bad character":            `message A { int32 a = 1; } #`,
	}
	for name, src := range invalid {
		t.Run(name, func(t *testing.T) {
			if _, err := parseProtobuf(src); err == nil {
				t.Fatalf("accepted: %s", src)
			}
		})
	}
}

func TestProtobufImports(t *testing.T) {
	p, err := parseProtobuf(`import "a.proto"; import weak "google/protobuf/any.proto"; message M { a.B b = 1; }`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.imports, ",") != "a.proto,google/protobuf/any.proto" {
		t.Errorf("imports: %v", p.imports)
	}
	if err := checkProtobufImports(p.imports, nil); err == nil {
		t.Error("an import outside the references was accepted")
	}
	if err := checkProtobufImports(p.imports, []Reference{{Name: "a.proto", Subject: "a", Version: 1}}); err != nil {
		t.Errorf("import in references: %v", err)
	}
}

// FuzzParseSchema: schema text comes from the network; no input may panic
// the parsers, and accepted text must canonicalize stably.
func FuzzParseSchema(f *testing.F) {
	for _, s := range []string{userV1, userV2, addressSchema, `"int"`, `{"type":"object"}`, `[1]`,
		"syntax = \"proto3\"; message A { int32 a = 1; map<string,int32> m = 2; oneof o { string s = 3; } }",
		`{"type":"enum","name":"E","symbols":["A"],"default":"A"}`, `{"type":"fixed","name":"F","size":4}`,
		`message A { repeated group G = 1 { } }`, `option (a) = { x: [1, {y: 2}] };`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, typ := range []string{TypeAvro, TypeJSON, TypeProtobuf} {
			cs, err := parseSchema(typ, text, nil, nil)
			if err != nil {
				continue
			}
			again, err := parseSchema(typ, cs.text, nil, nil)
			if err != nil {
				t.Fatalf("%s: canonical text %q does not parse: %v", typ, cs.text, err)
			}
			if again.fingerprint != cs.fingerprint {
				t.Fatalf("%s: fingerprint changed when re-parsing %q", typ, cs.text)
			}
			// A schema is always compatible with itself.
			if typ == TypeAvro {
				if msgs := checkCompatibility(CompatFull, cs.parsed, []previousSchema{{1, cs.text, again.parsed}}); len(msgs) > 0 {
					t.Fatalf("%q is not FULL compatible with itself: %q", cs.text, msgs)
				}
			}
		}
	})
}
