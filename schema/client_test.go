package schema

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hamba/avro/v2"
)

// TestClients runs the same checks through the HTTP client (against our own
// server over HTTP) and the in-process client.
func TestClients(t *testing.T) {
	srv, err := NewServer(newMemStore(), Config{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	r := &registryUnderTest{t: t, server: srv, url: hs.URL}

	addrID := r.register("address", avroReq(addressSchema))
	ref := Reference{Name: "ex.Address", Subject: "address", Version: 1}
	custID := r.register("customer-value", avroReq(customerWithAddr, ref))
	jsonID := r.register("json-value", registerRequest{Schema: `{"type":"object"}`, SchemaType: "JSON"})

	clients := []struct {
		name string
		c    Client
	}{
		{"http", NewHTTPClient(hs.URL+"/", nil)},
		{"local", srv.LocalClient()},
	}
	ctx := context.Background()
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := tc.c.SchemaByID(ctx, custID)
			if err != nil {
				t.Fatal(err)
			}
			if sc.ID != custID || sc.Type != TypeAvro || sc.Schema != customerWithAddr || len(sc.References) != 1 || sc.References[0] != ref {
				t.Errorf("SchemaByID: %+v", sc)
			}
			before := requests.Load()
			if again, err := tc.c.SchemaByID(ctx, custID); err != nil || again.Schema != sc.Schema {
				t.Errorf("cached SchemaByID: %+v, %v", again, err)
			}
			if requests.Load() != before {
				t.Errorf("SchemaByID was not served from the cache")
			}
			if js, err := tc.c.SchemaByID(ctx, jsonID); err != nil || js.Type != TypeJSON {
				t.Errorf("json schema: %+v, %v", js, err)
			}

			latest, err := tc.c.LatestSchema(ctx, "address")
			if err != nil {
				t.Fatal(err)
			}
			if latest.ID != addrID || latest.Subject != "address" || latest.Version != 1 || latest.Schema != addressSchema {
				t.Errorf("LatestSchema: %+v", latest)
			}

			if _, err := tc.c.SchemaByID(ctx, 4242); !errors.Is(err, ErrSchemaNotFound) {
				t.Errorf("unknown id: %v", err)
			}
			if _, err := tc.c.LatestSchema(ctx, "nobody"); !errors.Is(err, ErrSubjectNotFound) {
				t.Errorf("unknown subject: %v", err)
			}
			if _, err := tc.c.(VersionClient).SchemaByVersion(ctx, "address", 3); !errors.Is(err, ErrVersionNotFound) {
				t.Errorf("unknown version: %v", err)
			}

			// ParseAvro resolves the reference and yields a usable schema.
			parsed, err := ParseAvro(ctx, tc.c, sc)
			if err != nil {
				t.Fatalf("ParseAvro: %v", err)
			}
			type address struct {
				City string `avro:"city"`
			}
			type customer struct {
				ID      int64   `avro:"id"`
				Address address `avro:"address"`
			}
			in := customer{ID: 7, Address: address{City: "Lyon"}}
			b, err := avro.Marshal(parsed, in)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var out customer
			if err := avro.Unmarshal(parsed, b, &out); err != nil || out != in {
				t.Errorf("round trip: %+v, %v", out, err)
			}
			if _, err := ParseAvro(ctx, tc.c, Schema{ID: jsonID, Type: TypeJSON}); err == nil {
				t.Error("ParseAvro accepted a JSON schema")
			}
		})
	}

	// A client without SchemaByVersion cannot resolve references.
	if _, err := ParseAvro(ctx, onlyClient{clients[1].c}, Schema{ID: custID, Type: TypeAvro, Schema: customerWithAddr, References: []Reference{ref}}); err == nil {
		t.Error("ParseAvro resolved references without a VersionClient")
	}
	// Without references any Client will do.
	if _, err := ParseAvro(ctx, onlyClient{clients[1].c}, Schema{ID: addrID, Type: TypeAvro, Schema: addressSchema}); err != nil {
		t.Errorf("ParseAvro without references: %v", err)
	}
}

// onlyClient hides everything but the Client methods.
type onlyClient struct{ Client }

func TestHTTPClientErrors(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/schemas/ids/1":
			http.Error(w, "gateway exploded", http.StatusBadGateway)
		case "/schemas/ids/2":
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("{not json"))
		default:
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"error_code":42201,"message":"bad"}`))
		}
	}))
	defer hs.Close()
	c := NewHTTPClient(hs.URL, hs.Client())
	ctx := context.Background()
	if _, err := c.SchemaByID(ctx, 1); err == nil || errors.Is(err, ErrSchemaNotFound) {
		t.Errorf("502: %v", err)
	}
	if _, err := c.SchemaByID(ctx, 2); err == nil {
		t.Error("malformed body accepted")
	}
	if _, err := c.SchemaByID(ctx, 3); !errors.Is(err, ErrInvalidSchema) {
		t.Errorf("42201: %v", err)
	}
}
