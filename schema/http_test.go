package schema

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const (
	userV1 = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"long"}]}`
	// userV1Spaced is userV1 with other layout: the same schema.
	userV1Spaced = "{ \"type\": \"record\",\n  \"name\": \"User\", \"namespace\": \"ex\",\n  \"fields\": [ {\"name\": \"id\", \"type\": \"long\"} ] }"
	// userV1Reordered is userV1 with other key order: the same schema.
	userV1Reordered = `{"fields":[{"type":"long","name":"id"}],"namespace":"ex","name":"User","type":"record"}`
	userV2          = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null}]}`
	// userV2NoDefault reads v2 data but not v1 data (email has no default).
	userV2NoDefault  = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"]}]}`
	userV3           = `{"type":"record","name":"User","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"],"default":null},{"name":"age","type":"int","default":0}]}`
	addressSchema    = `{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"}]}`
	customerWithAddr = `{"type":"record","name":"Customer","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"address","type":"ex.Address"}]}`
)

// TestHTTPAPI runs every route and error code against each backend.
func TestHTTPAPI(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range httpCases {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, startRegistry(t, b.open(t), Config{}))
				})
			}
		})
	}
}

var httpCases = []struct {
	name string
	run  func(t *testing.T, r *registryUnderTest)
}{
	{"register and fetch", testRegisterAndFetch},
	{"ids are reused", testIDReuse},
	{"lookup", testLookup},
	{"soft and hard deletes of versions", testDeleteVersion},
	{"soft and hard deletes of subjects", testDeleteSubject},
	{"config", testConfig},
	{"mode", testMode},
	{"compatibility endpoint", testCompatibilityEndpoint},
	{"incompatible registration", testIncompatibleRegistration},
	{"transitive levels over three versions", testTransitiveRegistration},
	{"references", testReferences},
	{"json and protobuf schemas", testJSONAndProtobuf},
	{"invalid requests", testInvalidRequests},
	{"schemas listing", testSchemasListing},
}

func testRegisterAndFetch(t *testing.T, r *registryUnderTest) {
	r.expect("GET", "/", nil)
	if got := r.expect("GET", "/subjects", nil).strs(); len(got) != 0 {
		t.Fatalf("subjects of an empty registry: %v", got)
	}
	types := r.expect("GET", "/schemas/types", nil).strs()
	slices.Sort(types)
	if !slices.Equal(types, []string{"AVRO", "JSON", "PROTOBUF"}) {
		t.Errorf("schema types: %v", types)
	}

	id1 := r.register("users-value", avroReq(userV1))
	id2 := r.register("users-value", avroReq(userV2))
	if id1 == id2 {
		t.Fatalf("two schemas share id %d", id1)
	}
	if got := r.expect("GET", "/subjects", nil).strs(); !slices.Equal(got, []string{"users-value"}) {
		t.Errorf("subjects: %v", got)
	}
	if got := r.expect("GET", "/subjects/users-value/versions", nil).ints(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("versions: %v", got)
	}
	for _, v := range []string{"2", "latest", "-1"} {
		res := r.expect("GET", "/subjects/users-value/versions/"+v, nil)
		if res.str("subject") != "users-value" || res.num("version") != 2 || res.num("id") != id2 || res.str("schema") != userV2 {
			t.Errorf("version %s: %s", v, res.raw)
		}
		if _, ok := res.obj()["schemaType"]; ok {
			t.Errorf("version %s: AVRO responses omit schemaType, as Confluent's do: %s", v, res.raw)
		}
		if res.contentType != contentTypeV1 {
			t.Errorf("content type %q", res.contentType)
		}
	}
	res := r.expect("GET", "/subjects/users-value/versions/1", nil)
	if res.num("id") != id1 || res.str("schema") != userV1 {
		t.Errorf("version 1: %s", res.raw)
	}
	if raw := r.expect("GET", "/subjects/users-value/versions/1/schema", nil).raw; raw != userV1 {
		t.Errorf("raw schema: %s", raw)
	}
	res = r.expect("GET", "/schemas/ids/"+itoa(id2), nil)
	if res.str("schema") != userV2 || len(res.obj()) != 1 {
		t.Errorf("schema by id: %s", res.raw)
	}
	if raw := r.expect("GET", "/schemas/ids/"+itoa(id1)+"/schema", nil).raw; raw != userV1 {
		t.Errorf("raw schema by id: %s", raw)
	}
	res = r.expect("GET", "/schemas/ids/"+itoa(id1)+"/versions", nil)
	if res.raw != `[{"subject":"users-value","version":1}]` {
		t.Errorf("versions of id: %s", res.raw)
	}
	if got := r.expect("GET", "/schemas/ids/"+itoa(id1)+"/subjects", nil).strs(); !slices.Equal(got, []string{"users-value"}) {
		t.Errorf("subjects of id: %v", got)
	}

	// Plain JSON is accepted, and asked-for plain JSON is answered.
	req, _ := http.NewRequest("GET", r.url+"/subjects", nil)
	req.Header.Set("Accept", "application/json")
	httpRes, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	httpRes.Body.Close()
	if ct := httpRes.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Accept: application/json answered with %q", ct)
	}
	httpReq, _ := http.NewRequest("POST", r.url+"/subjects/plain/versions", strings.NewReader(`{"schema":"\"string\""}`))
	httpReq.Header.Set("Content-Type", "application/json")
	httpRes, err = http.DefaultClient.Do(httpReq)
	if err != nil {
		t.Fatal(err)
	}
	httpRes.Body.Close()
	if httpRes.StatusCode != http.StatusOK {
		t.Errorf("register with application/json: HTTP %d", httpRes.StatusCode)
	}

	r.expectError("GET", "/subjects/nope/versions", nil, 404, 40401)
	r.expectError("GET", "/subjects/nope/versions/1", nil, 404, 40401)
	r.expectError("GET", "/subjects/nope/versions/latest", nil, 404, 40401)
	r.expectError("GET", "/subjects/users-value/versions/7", nil, 404, 40402)
	r.expectError("GET", "/subjects/users-value/versions/7/schema", nil, 404, 40402)
	r.expectError("GET", "/subjects/users-value/versions/abc", nil, 422, 42202)
	r.expectError("GET", "/subjects/users-value/versions/0", nil, 422, 42202)
	r.expectError("GET", "/subjects/users-value/versions/-2", nil, 422, 42202)
	r.expectError("GET", "/schemas/ids/9999", nil, 404, 40403)
	r.expectError("GET", "/schemas/ids/9999/schema", nil, 404, 40403)
	r.expectError("GET", "/schemas/ids/9999/versions", nil, 404, 40403)
	r.expectError("GET", "/schemas/ids/x", nil, 404, 40403)
	r.expectError("GET", "/no/such/route", nil, 404, 404)
}

func testIDReuse(t *testing.T, r *registryUnderTest) {
	id := r.register("a-value", avroReq(userV1))
	if again := r.register("a-value", avroReq(userV1)); again != id {
		t.Errorf("same schema twice: ids %d and %d", id, again)
	}
	if again := r.register("a-value", avroReq(userV1Spaced)); again != id {
		t.Errorf("same schema, other layout: ids %d and %d", id, again)
	}
	if again := r.register("a-value", avroReq(userV1Reordered)); again != id {
		t.Errorf("same schema, other key order: ids %d and %d", id, again)
	}
	if got := r.expect("GET", "/subjects/a-value/versions", nil).ints(); !slices.Equal(got, []int{1}) {
		t.Errorf("re-registration created versions: %v", got)
	}
	if other := r.register("b-value", avroReq(userV1)); other != id {
		t.Errorf("same schema under another subject: ids %d and %d", id, other)
	}
	res := r.expect("GET", "/subjects/b-value/versions/latest", nil)
	if res.num("version") != 1 || res.num("id") != id {
		t.Errorf("b-value: %s", res.raw)
	}
	if got := r.expect("GET", "/schemas/ids/"+itoa(id)+"/subjects", nil).strs(); !slices.Equal(got, []string{"a-value", "b-value"}) {
		t.Errorf("subjects of id: %v", got)
	}
	// {"type":"string"} and "string" are one Avro schema.
	p1 := r.register("prim", avroReq(`"string"`))
	if p2 := r.register("prim", avroReq(`{"type":"string"}`)); p1 != p2 {
		t.Errorf(`"string" and {"type":"string"}: ids %d and %d`, p1, p2)
	}
}

func testLookup(t *testing.T, r *registryUnderTest) {
	id := r.register("users-value", avroReq(userV1))
	r.register("users-value", avroReq(userV2))
	res := r.expect("POST", "/subjects/users-value", avroReq(userV1Spaced))
	if res.str("subject") != "users-value" || res.num("version") != 1 || res.num("id") != id || res.str("schema") != userV1 {
		t.Errorf("lookup: %s", res.raw)
	}
	r.expectError("POST", "/subjects/users-value", avroReq(userV3), 404, 40403)
	r.expectError("POST", "/subjects/nobody", avroReq(userV1), 404, 40401)
	r.expectError("POST", "/subjects/users-value", avroReq(`{"type":"record"`), 422, 42201)

	// A soft-deleted version is found only with deleted=true.
	r.expect("DELETE", "/subjects/users-value/versions/1", nil)
	r.expectError("POST", "/subjects/users-value", avroReq(userV1), 404, 40403)
	if res := r.expect("POST", "/subjects/users-value?deleted=true", avroReq(userV1)); res.num("version") != 1 {
		t.Errorf("lookup deleted: %s", res.raw)
	}
}

func testDeleteVersion(t *testing.T, r *registryUnderTest) {
	id1 := r.register("s", avroReq(userV1))
	id2 := r.register("s", avroReq(userV2))
	r.expectError("DELETE", "/subjects/s/versions/1?permanent=true", nil, 404, 40407)
	if v := r.expect("DELETE", "/subjects/s/versions/1", nil).body; v != float64(1) {
		t.Errorf("soft delete answered %v", v)
	}
	r.expectError("DELETE", "/subjects/s/versions/1", nil, 404, 40406)
	r.expectError("GET", "/subjects/s/versions/1", nil, 404, 40402)
	if res := r.expect("GET", "/subjects/s/versions/1?deleted=true", nil); res.num("id") != id1 {
		t.Errorf("deleted version: %s", res.raw)
	}
	if got := r.expect("GET", "/subjects/s/versions", nil).ints(); !slices.Equal(got, []int{2}) {
		t.Errorf("versions: %v", got)
	}
	if got := r.expect("GET", "/subjects/s/versions?deleted=true", nil).ints(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("versions with deleted: %v", got)
	}
	// A soft-deleted schema still decodes: its id keeps working.
	r.expect("GET", "/schemas/ids/"+itoa(id1), nil)
	if res := r.expect("GET", "/schemas/ids/"+itoa(id1)+"/versions?deleted=true", nil); res.raw != `[{"subject":"s","version":1}]` {
		t.Errorf("versions of id with deleted: %s", res.raw)
	}
	if res := r.expect("GET", "/schemas/ids/"+itoa(id1)+"/versions", nil); res.raw != `[]` {
		t.Errorf("versions of id: %s", res.raw)
	}
	if v := r.expect("DELETE", "/subjects/s/versions/1?permanent=true", nil).body; v != float64(1) {
		t.Errorf("hard delete answered %v", v)
	}
	r.expectError("GET", "/subjects/s/versions/1?deleted=true", nil, 404, 40402)
	r.expectError("DELETE", "/subjects/s/versions/1?permanent=true", nil, 404, 40402)
	r.expectError("GET", "/schemas/ids/"+itoa(id1), nil, 404, 40403)
	r.expectError("DELETE", "/subjects/s/versions/9", nil, 404, 40402)
	r.expectError("DELETE", "/subjects/none/versions/1", nil, 404, 40401)
	r.expectError("DELETE", "/subjects/s/versions/zero", nil, 422, 42202)

	// "latest" deletes the newest live version; numbering continues past
	// deleted versions, and a hard-deleted schema keeps its id.
	if v := r.expect("DELETE", "/subjects/s/versions/latest", nil).body; v != float64(2) {
		t.Errorf("delete latest answered %v", v)
	}
	r.expectError("GET", "/subjects/s/versions", nil, 404, 40401)
	if again := r.register("s", avroReq(userV1)); again != id1 {
		t.Errorf("re-registering a hard-deleted schema: id %d, want %d", again, id1)
	}
	if res := r.expect("GET", "/subjects/s/versions/latest", nil); res.num("version") != 3 {
		t.Errorf("version after deletes: %s", res.raw)
	}
	r.expect("GET", "/schemas/ids/"+itoa(id1), nil)
	// Re-registering the soft-deleted v2 schema drops the soft-deleted v2.
	if again := r.register("s", avroReq(userV2)); again != id2 {
		t.Errorf("re-registering a soft-deleted schema: id %d, want %d", again, id2)
	}
	if got := r.expect("GET", "/subjects/s/versions?deleted=true", nil).ints(); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("versions after re-registration: %v", got)
	}
}

func testDeleteSubject(t *testing.T, r *registryUnderTest) {
	id := r.register("s", avroReq(userV1))
	r.register("s", avroReq(userV2))
	r.expect("PUT", "/config/s", configUpdate{Compatibility: "FULL"})
	r.expectError("DELETE", "/subjects/s?permanent=true", nil, 404, 40405)
	if got := r.expect("DELETE", "/subjects/s", nil).ints(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("soft delete answered %v", got)
	}
	r.expectError("DELETE", "/subjects/s", nil, 404, 40404)
	r.expectError("GET", "/subjects/s/versions", nil, 404, 40401)
	r.expectError("GET", "/subjects/s/versions/latest", nil, 404, 40401)
	if got := r.expect("GET", "/subjects", nil).strs(); len(got) != 0 {
		t.Errorf("subjects: %v", got)
	}
	if got := r.expect("GET", "/subjects?deleted=true", nil).strs(); !slices.Equal(got, []string{"s"}) {
		t.Errorf("subjects with deleted: %v", got)
	}
	// Config survives a soft delete, not a hard one.
	if res := r.expect("GET", "/config/s", nil); res.str("compatibilityLevel") != "FULL" {
		t.Errorf("config after soft delete: %s", res.raw)
	}
	if got := r.expect("DELETE", "/subjects/s?permanent=true", nil).ints(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("hard delete answered %v", got)
	}
	r.expectError("DELETE", "/subjects/s?permanent=true", nil, 404, 40401)
	r.expectError("DELETE", "/subjects/s", nil, 404, 40401)
	if got := r.expect("GET", "/subjects?deleted=true", nil).strs(); len(got) != 0 {
		t.Errorf("subjects with deleted after hard delete: %v", got)
	}
	r.expectError("GET", "/config/s", nil, 404, 40408)
	r.expectError("GET", "/schemas/ids/"+itoa(id), nil, 404, 40403)
	// After a hard delete the subject starts again at version 1, with the old id.
	if again := r.register("s", avroReq(userV1)); again != id {
		t.Errorf("id after hard delete: %d, want %d", again, id)
	}
	if res := r.expect("GET", "/subjects/s/versions/latest", nil); res.num("version") != 1 {
		t.Errorf("after hard delete: %s", res.raw)
	}
}

func testConfig(t *testing.T, r *registryUnderTest) {
	if res := r.expect("GET", "/config", nil); res.raw != `{"compatibilityLevel":"BACKWARD"}` {
		t.Errorf("default config: %s", res.raw)
	}
	if res := r.expect("PUT", "/config", map[string]string{"compatibility": "full_transitive"}); res.raw != `{"compatibility":"FULL_TRANSITIVE"}` {
		t.Errorf("put config: %s", res.raw)
	}
	if res := r.expect("GET", "/config", nil); res.str("compatibilityLevel") != "FULL_TRANSITIVE" {
		t.Errorf("config: %s", res.raw)
	}
	r.expectError("PUT", "/config", map[string]string{"compatibility": "SIDEWAYS"}, 422, 42203)

	r.expectError("GET", "/config/s", nil, 404, 40408)
	if res := r.expect("GET", "/config/s?defaultToGlobal=true", nil); res.str("compatibilityLevel") != "FULL_TRANSITIVE" {
		t.Errorf("config/s defaulting to global: %s", res.raw)
	}
	if res := r.expect("PUT", "/config/s", map[string]string{"compatibility": "NONE"}); res.raw != `{"compatibility":"NONE"}` {
		t.Errorf("put config/s: %s", res.raw)
	}
	if res := r.expect("GET", "/config/s", nil); res.raw != `{"compatibilityLevel":"NONE"}` {
		t.Errorf("config/s: %s", res.raw)
	}
	r.expectError("PUT", "/config/s", map[string]string{"compatibility": "bogus"}, 422, 42203)
	// The subject level governs registration: NONE lets an incompatible change through.
	r.register("s", avroReq(userV1))
	r.register("s", avroReq(`"string"`))
	if res := r.expect("DELETE", "/config/s", nil); res.raw != `{"compatibilityLevel":"NONE"}` {
		t.Errorf("delete config/s: %s", res.raw)
	}
	r.expectError("DELETE", "/config/s", nil, 404, 40401)
	r.expectError("GET", "/config/s", nil, 404, 40408)
	if res := r.expect("DELETE", "/config", nil); res.str("compatibilityLevel") != "FULL_TRANSITIVE" {
		t.Errorf("delete config: %s", res.raw)
	}
	if res := r.expect("GET", "/config", nil); res.str("compatibilityLevel") != "BACKWARD" {
		t.Errorf("config after delete: %s", res.raw)
	}
}

func testMode(t *testing.T, r *registryUnderTest) {
	if res := r.expect("GET", "/mode", nil); res.raw != `{"mode":"READWRITE"}` {
		t.Errorf("default mode: %s", res.raw)
	}
	r.expectError("PUT", "/mode", modeBody{Mode: "SOMETIMES"}, 422, 42204)
	r.expectError("GET", "/mode/s", nil, 404, 40409)
	if res := r.expect("GET", "/mode/s?defaultToGlobal=true", nil); res.str("mode") != "READWRITE" {
		t.Errorf("mode/s defaulting to global: %s", res.raw)
	}

	id := r.register("s", avroReq(userV1))
	if res := r.expect("PUT", "/mode", modeBody{Mode: "READONLY"}); res.raw != `{"mode":"READONLY"}` {
		t.Errorf("put mode: %s", res.raw)
	}
	r.expectError("POST", "/subjects/s/versions", avroReq(userV2), 422, 42205)
	r.expectError("DELETE", "/subjects/s/versions/1", nil, 422, 42205)
	r.expectError("DELETE", "/subjects/s", nil, 422, 42205)
	r.expectError("PUT", "/config/s", configUpdate{Compatibility: "NONE"}, 422, 42205)
	r.expect("GET", "/schemas/ids/"+itoa(id), nil) // reads still work
	// A subject-level mode overrides the global one.
	r.expect("PUT", "/mode/s", modeBody{Mode: "READWRITE"})
	if res := r.expect("GET", "/mode/s", nil); res.str("mode") != "READWRITE" {
		t.Errorf("mode/s: %s", res.raw)
	}
	r.register("s", avroReq(userV2))
	r.expectError("POST", "/subjects/other/versions", avroReq(userV1), 422, 42205)
	if res := r.expect("DELETE", "/mode/s", nil); res.str("mode") != "READWRITE" {
		t.Errorf("delete mode/s: %s", res.raw)
	}
	r.expectError("DELETE", "/mode/s", nil, 404, 40401)
	r.expect("PUT", "/mode", modeBody{Mode: "READWRITE"})

	// IMPORT needs an empty registry (or force), then takes ids and versions
	// from the request and skips compatibility checks.
	r.expectError("PUT", "/mode", modeBody{Mode: "IMPORT"}, 422, 42205)
	r.expect("PUT", "/mode/fresh", modeBody{Mode: "IMPORT"})
	r.expectError("POST", "/subjects/fresh/versions", avroReq(userV1), 422, 42205) // no id
	// Ids 1 and 2 are taken; 3 and 4 are what the id counter hands out next.
	res := r.expect("POST", "/subjects/fresh/versions", registerRequest{Schema: `"int"`, ID: 3, Version: 7})
	if res.num("id") != 3 {
		t.Errorf("import: %s", res.raw)
	}
	res = r.expect("GET", "/subjects/fresh/versions/latest", nil)
	if res.num("id") != 3 || res.num("version") != 7 || res.str("schema") != `"int"` {
		t.Errorf("imported version: %s", res.raw)
	}
	r.expect("POST", "/subjects/fresh/versions", registerRequest{Schema: `"string"`, ID: 4, Version: 8}) // incompatible, imported anyway
	r.expectError("POST", "/subjects/fresh/versions", registerRequest{Schema: `"long"`, ID: 3, Version: 9}, 422, 42207)
	r.expectError("POST", "/subjects/s/versions", registerRequest{Schema: `"long"`, ID: 600}, 422, 42205) // s is not importing
	r.expect("PUT", "/mode?force=true", modeBody{Mode: "IMPORT"})
	r.expect("PUT", "/mode", modeBody{Mode: "READWRITE"})
	r.expect("DELETE", "/mode/fresh", nil)
	// New ids never collide with imported ones.
	if id := r.register("fresh", avroReq(`"bytes"`)); id == 3 || id == 4 {
		t.Errorf("new id %d collides with an imported one", id)
	}
	if res := r.expect("DELETE", "/mode", nil); res.str("mode") != "READWRITE" {
		t.Errorf("delete mode: %s", res.raw)
	}
}

func testCompatibilityEndpoint(t *testing.T, r *registryUnderTest) {
	// Nothing registered: nothing to be incompatible with.
	if res := r.expect("POST", "/compatibility/subjects/s/versions/latest", avroReq(userV1)); res.raw != `{"is_compatible":true}` {
		t.Errorf("empty subject: %s", res.raw)
	}
	r.register("s", avroReq(userV1))
	r.register("s", avroReq(userV2))
	if res := r.expect("POST", "/compatibility/subjects/s/versions/latest", avroReq(userV3)); res.raw != `{"is_compatible":true}` {
		t.Errorf("compatible: %s", res.raw)
	}
	if res := r.expect("POST", "/compatibility/subjects/s/versions/latest?verbose=true", avroReq(userV3)); res.raw != `{"is_compatible":true,"messages":[]}` {
		t.Errorf("compatible, verbose: %s", res.raw)
	}
	res := r.expect("POST", "/compatibility/subjects/s/versions/1", avroReq(userV2NoDefault))
	if res.raw != `{"is_compatible":false}` {
		t.Errorf("incompatible: %s", res.raw)
	}
	res = r.expect("POST", "/compatibility/subjects/s/versions/1?verbose=true", avroReq(userV2NoDefault))
	msgs := res.obj()["messages"]
	if res.obj()["is_compatible"] != false || !strings.Contains(res.raw, "READER_FIELD_MISSING_DEFAULT_VALUE") || msgs == nil {
		t.Errorf("incompatible, verbose: %s", res.raw)
	}
	// Against version 2, which has email: compatible.
	if res := r.expect("POST", "/compatibility/subjects/s/versions/2", avroReq(userV2NoDefault)); res.raw != `{"is_compatible":true}` {
		t.Errorf("against v2: %s", res.raw)
	}
	// Without a version: against the versions the level names (BACKWARD: latest).
	if res := r.expect("POST", "/compatibility/subjects/s/versions", avroReq(userV2NoDefault)); res.raw != `{"is_compatible":true}` {
		t.Errorf("all versions: %s", res.raw)
	}
	r.expect("PUT", "/config/s", configUpdate{Compatibility: "BACKWARD_TRANSITIVE"})
	if res := r.expect("POST", "/compatibility/subjects/s/versions", avroReq(userV2NoDefault)); res.raw != `{"is_compatible":false}` {
		t.Errorf("all versions, transitive: %s", res.raw)
	}
	r.expectError("POST", "/compatibility/subjects/s/versions/9", avroReq(userV1), 404, 40402)
	r.expectError("POST", "/compatibility/subjects/nobody/versions/3", avroReq(userV1), 404, 40402)
	r.expectError("POST", "/compatibility/subjects/s/versions/nine", avroReq(userV1), 422, 42202)
	r.expectError("POST", "/compatibility/subjects/s/versions/latest", avroReq(`{"type":"nonsense"}`), 422, 42201)
	res = r.expect("POST", "/compatibility/subjects/s/versions/latest?verbose=true", avroReq(`{"type":"nonsense"}`))
	if res.obj()["is_compatible"] != false || !strings.Contains(res.raw, "Invalid schema") {
		t.Errorf("invalid schema, verbose: %s", res.raw)
	}
}

func testIncompatibleRegistration(t *testing.T, r *registryUnderTest) {
	r.register("s", avroReq(userV1))
	res := r.expectError("POST", "/subjects/s/versions", avroReq(userV2NoDefault), 409, 409)
	if !strings.Contains(res.str("message"), "READER_FIELD_MISSING_DEFAULT_VALUE") ||
		!strings.Contains(res.str("message"), "incompatible with an earlier schema") {
		t.Errorf("message: %s", res.str("message"))
	}
	if got := r.expect("GET", "/subjects/s/versions", nil).ints(); !slices.Equal(got, []int{1}) {
		t.Errorf("an incompatible schema was stored: %v", got)
	}
	// Another schema type is incompatible unless the level is NONE.
	r.expectError("POST", "/subjects/s/versions", registerRequest{Schema: `{"type":"object"}`, SchemaType: "JSON"}, 409, 409)
	r.expect("PUT", "/config/s", configUpdate{Compatibility: "NONE"})
	r.register("s", registerRequest{Schema: `{"type":"object"}`, SchemaType: "JSON"})
}

func testTransitiveRegistration(t *testing.T, r *registryUnderTest) {
	v1 := record("User", fieldID)
	v2 := record("User", fieldID, fieldNameDef)
	v3 := record("User", fieldID, fieldName)
	for _, level := range []string{CompatBackward, CompatFull} {
		subject := "plain-" + strings.ToLower(level)
		r.expect("PUT", "/config/"+subject, configUpdate{Compatibility: level})
		r.register(subject, avroReq(v1))
		r.register(subject, avroReq(v2))
		r.register(subject, avroReq(v3))

		subject = "transitive-" + strings.ToLower(level)
		r.expect("PUT", "/config/"+subject, configUpdate{Compatibility: level + "_TRANSITIVE"})
		r.register(subject, avroReq(v1))
		r.register(subject, avroReq(v2))
		res := r.expectError("POST", "/subjects/"+subject+"/versions", avroReq(v3), 409, 409)
		if !strings.Contains(res.str("message"), "oldSchemaVersion: 1") {
			t.Errorf("%s: message does not name version 1: %s", level, res.str("message"))
		}
	}
	// FORWARD_TRANSITIVE: a field removed after it gained a default.
	f1, f2, f3 := record("User", fieldID, fieldName), record("User", fieldID, fieldNameDef), record("User", fieldID)
	r.expect("PUT", "/config/fwd", configUpdate{Compatibility: CompatForward})
	r.register("fwd", avroReq(f1))
	r.register("fwd", avroReq(f2))
	r.register("fwd", avroReq(f3))
	r.expect("PUT", "/config/fwdt", configUpdate{Compatibility: CompatForwardTransitive})
	r.register("fwdt", avroReq(f1))
	r.register("fwdt", avroReq(f2))
	r.expectError("POST", "/subjects/fwdt/versions", avroReq(f3), 409, 409)
}

func testReferences(t *testing.T, r *registryUnderTest) {
	addrID := r.register("address", avroReq(addressSchema))
	ref := Reference{Name: "ex.Address", Subject: "address", Version: 1}
	custID := r.register("customer", avroReq(customerWithAddr, ref))
	res := r.expect("GET", "/subjects/customer/versions/1", nil)
	if !strings.Contains(res.raw, `"references":[{"name":"ex.Address","subject":"address","version":1}]`) {
		t.Errorf("references in version: %s", res.raw)
	}
	res = r.expect("GET", "/schemas/ids/"+itoa(custID), nil)
	if !strings.Contains(res.raw, `"references":[{"name":"ex.Address","subject":"address","version":1}]`) {
		t.Errorf("references by id: %s", res.raw)
	}
	if got := r.expect("GET", "/subjects/address/versions/1/referencedby", nil).ints(); !slices.Equal(got, []int{custID}) {
		t.Errorf("referencedby: %v", got)
	}
	if got := r.expect("GET", "/subjects/customer/versions/1/referencedby", nil).ints(); len(got) != 0 {
		t.Errorf("referencedby of an unreferenced schema: %v", got)
	}
	// The same text with the reference is the same schema; without, invalid.
	if again := r.register("customer", avroReq(customerWithAddr, ref)); again != custID {
		t.Errorf("re-registration with references: %d, want %d", again, custID)
	}
	r.expectError("POST", "/subjects/customer2/versions", avroReq(customerWithAddr), 422, 42201)
	r.expectError("POST", "/subjects/customer2/versions",
		avroReq(customerWithAddr, Reference{Name: "ex.Address", Subject: "address", Version: 5}), 422, 42201)
	// Evolving the referencing schema is checked with references resolved.
	custV2 := `{"type":"record","name":"Customer","namespace":"ex","fields":[{"name":"id","type":"long"},{"name":"address","type":"ex.Address"},{"name":"home","type":["null","ex.Address"],"default":null}]}`
	r.register("customer", avroReq(custV2, ref))
	// A referenced schema cannot be deleted.
	r.expectError("DELETE", "/subjects/address/versions/1", nil, 422, 42206)
	r.expectError("DELETE", "/subjects/address", nil, 422, 42206)
	r.expect("GET", "/schemas/ids/"+itoa(addrID), nil)
	// Once the referrers are gone for good, it can be.
	r.expect("DELETE", "/subjects/customer", nil)
	r.expectError("DELETE", "/subjects/address?permanent=true", nil, 404, 40405)
	r.expect("DELETE", "/subjects/address", nil)
	r.expectError("DELETE", "/subjects/address?permanent=true", nil, 422, 42206) // soft-deleted referrers still count
	r.expect("DELETE", "/subjects/customer?permanent=true", nil)
	r.expect("DELETE", "/subjects/address?permanent=true", nil)

	// A two-level chain: a references b references c.
	r.register("c", avroReq(`{"type":"enum","name":"Tier","namespace":"ex","symbols":["GOLD","SILVER"]}`))
	r.register("b", avroReq(`{"type":"record","name":"Plan","namespace":"ex","fields":[{"name":"tier","type":"ex.Tier"}]}`,
		Reference{Name: "ex.Tier", Subject: "c", Version: 1}))
	r.register("a", avroReq(`{"type":"record","name":"Account","namespace":"ex","fields":[{"name":"plan","type":"ex.Plan"},{"name":"tier","type":"ex.Tier"}]}`,
		Reference{Name: "ex.Plan", Subject: "b", Version: 1}))
}

func testJSONAndProtobuf(t *testing.T, r *registryUnderTest) {
	jsonV1 := `{"type":"object","properties":{"id":{"type":"integer"}}}`
	id := r.register("j", registerRequest{Schema: jsonV1, SchemaType: "JSON"})
	res := r.expect("GET", "/schemas/ids/"+itoa(id), nil)
	if res.str("schemaType") != "JSON" || res.str("schema") != jsonV1 {
		t.Errorf("json by id: %s", res.raw)
	}
	if res := r.expect("GET", "/subjects/j/versions/1", nil); res.str("schemaType") != "JSON" {
		t.Errorf("json version: %s", res.raw)
	}
	// Same document, other key order and layout: same id.
	if again := r.register("j", registerRequest{Schema: "{\"properties\": {\"id\": {\"type\": \"integer\"}}, \"type\": \"object\"}", SchemaType: "json"}); again != id {
		t.Errorf("json re-registration: %d, want %d", again, id)
	}
	// JSON Schema compatibility is not checked yet (NONE-like).
	r.register("j", registerRequest{Schema: `{"type":"string"}`, SchemaType: "JSON"})
	r.expectError("POST", "/subjects/j/versions", registerRequest{Schema: `{"type":`, SchemaType: "JSON"}, 422, 42201)
	r.expectError("POST", "/subjects/j/versions", registerRequest{Schema: `[1,2]`, SchemaType: "JSON"}, 422, 42201)
	// A JSON schema may reference another.
	r.register("j-ref", registerRequest{Schema: `{"type":"object","properties":{"x":{"$ref":"other.json"}}}`, SchemaType: "JSON",
		References: []Reference{{Name: "other.json", Subject: "j", Version: 1}}})

	proto := "syntax = \"proto3\";\npackage ex;\n\nmessage Order {\n  int64 id = 1;\n  repeated string items = 2;\n  map<string, int32> counts = 3;\n}\n"
	pid := r.register("p", registerRequest{Schema: proto, SchemaType: "PROTOBUF"})
	res = r.expect("GET", "/subjects/p/versions/latest", nil)
	if res.str("schemaType") != "PROTOBUF" || res.str("schema") != proto {
		t.Errorf("protobuf version: %s", res.raw)
	}
	if raw := r.expect("GET", "/schemas/ids/"+itoa(pid)+"/schema", nil).raw; raw != proto {
		t.Errorf("raw protobuf: %q", raw)
	}
	// Comments and layout do not make another schema.
	if again := r.register("p", registerRequest{Schema: "// orders\n" + strings.ReplaceAll(proto, "\n", " "), SchemaType: "PROTOBUF"}); again != pid {
		t.Errorf("protobuf re-registration: %d, want %d", again, pid)
	}
	r.expectError("POST", "/subjects/p/versions", registerRequest{Schema: "message Order { int64 id = ; }", SchemaType: "PROTOBUF"}, 422, 42201)
	r.expectError("POST", "/subjects/p/versions", registerRequest{Schema: "syntax = \"proto3\";\nimport \"other.proto\";\nmessage A { other.B b = 1; }", SchemaType: "PROTOBUF"}, 422, 42201)
	r.register("p-ref", registerRequest{
		Schema:     "syntax = \"proto3\";\nimport \"order.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Batch { repeated ex.Order orders = 1; google.protobuf.Timestamp at = 2; }",
		SchemaType: "PROTOBUF",
		References: []Reference{{Name: "order.proto", Subject: "p", Version: 1}},
	})
	r.expectError("POST", "/subjects/p/versions", registerRequest{Schema: `"string"`, SchemaType: "XML"}, 422, 42201)
}

func testInvalidRequests(t *testing.T, r *registryUnderTest) {
	r.expectError("POST", "/subjects/s/versions", avroReq(`{"type":"record","name":"X"}`), 422, 42201)
	r.expectError("POST", "/subjects/s/versions", avroReq(`not json`), 422, 42201)
	r.expectError("POST", "/subjects/s/versions", avroReq(``), 422, 42201)
	r.expectError("POST", "/subjects/s/versions", avroReq(`{"type":"record","name":"X","fields":[{"name":"a","type":"NoSuchType"}]}`), 422, 42201)
	r.expectError("POST", "/subjects/s/versions", `{"schema": `, 400, 400)
	r.expectError("POST", "/subjects/%01/versions", avroReq(`"int"`), 422, 42208)
	req, _ := http.NewRequest("POST", r.url+"/subjects/s/versions", strings.NewReader(`{"schema":"\"int\""}`))
	req.Header.Set("Content-Type", "text/plain")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: HTTP %d", res.StatusCode)
	}
	// A failing store is a 50001.
	if ms, ok := r.server.reg.store.(*memStore); ok {
		ms.setFail(errors.New("disk on fire"))
		r.expectError("GET", "/subjects", nil, 500, 50001)
		r.expectError("POST", "/subjects/s/versions", avroReq(`"int"`), 500, 50001)
		r.expectError("GET", "/config", nil, 500, 50001)
		ms.setFail(nil)
	}
	// Subjects with slashes and spaces are path-escaped, and kept apart.
	r.register("a%2Fb", avroReq(`"int"`))
	r.register("a", avroReq(`"long"`))
	r.register("a%20b", avroReq(`"string"`))
	if got := r.expect("GET", "/subjects", nil).strs(); !slices.Equal(got, []string{"a", "a b", "a/b"}) {
		t.Errorf("subjects: %q", got)
	}
	if res := r.expect("GET", "/subjects/a%2Fb/versions/1", nil); res.str("subject") != "a/b" || res.str("schema") != `"int"` {
		t.Errorf("a/b: %s", res.raw)
	}
	if got := r.expect("GET", "/subjects?subjectPrefix=a%20", nil).strs(); !slices.Equal(got, []string{"a b"}) {
		t.Errorf("prefix: %q", got)
	}
}

func testSchemasListing(t *testing.T, r *registryUnderTest) {
	r.register("x", avroReq(userV1))
	r.register("x", avroReq(userV2))
	r.register("y", avroReq(`"int"`))
	res := r.expect("GET", "/schemas", nil)
	if arr, _ := res.body.([]any); len(arr) != 3 {
		t.Errorf("schemas: %s", res.raw)
	}
	res = r.expect("GET", "/schemas?latestOnly=true&subjectPrefix=x", nil)
	if arr, _ := res.body.([]any); len(arr) != 1 || !strings.Contains(res.raw, `"version":2`) {
		t.Errorf("latest of x: %s", res.raw)
	}
	if got := r.expect("GET", "/contexts", nil).strs(); !slices.Equal(got, []string{"."}) {
		t.Errorf("contexts: %v", got)
	}
}
