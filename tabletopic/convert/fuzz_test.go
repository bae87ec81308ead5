package convert

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"
)

// FuzzConvertAvro feeds arbitrary bytes after a valid wire-format header to
// converters for a schema with every Avro type (flatten and none) and for
// a Debezium envelope. Add must never panic, must append a whole row or
// nothing, and whatever it accepts must flush into a valid Arrow record.
func FuzzConvertAvro(f *testing.F) {
	r := newTestRegistry(f)
	allID := r.register("all-value", allTypes)
	envID := r.register("env-value", debeziumEnvelope)
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	inner := map[string]any{"x": int32(5), "color": "GREEN"}
	sample := map[string]any{
		"b": true, "i": int32(-3), "l": int64(99), "f": float32(1.5), "d": 2.25, "s": "s", "by": []byte{1},
		"e": "RED", "fx": [4]byte{1, 2, 3, 4}, "dt": ts, "tm": time.Second, "tu": time.Second,
		"tsm": ts, "tsu": ts, "ltsm": ts, "ltsu": ts, "dec": big.NewRat(1, 100), "decf": big.NewRat(5, 1),
		"u": "0f8fad5b-d9cb-469f-a165-70867728950e", "arr": []any{int32(1)}, "m": map[string]any{"k": "v"},
		"nested": inner, "opt": map[string]any{"ex.Inner": inner}, "cu": map[string]any{"string": "x"},
		"nul": nil, "recs": []any{inner},
	}
	allPayload := avroBytes(f, allTypes, sample)
	envPayload := avroBytes(f, debeziumEnvelope, map[string]any{
		"before": nil, "after": map[string]any{"dbserver1.inventory.customers.Value": map[string]any{"id": int32(1), "email": "e"}},
		"source": map[string]any{"connector": "c", "ts_ms": int64(1), "snapshot": nil}, "op": "c", "ts_ms": nil, "transaction": nil})

	type target struct {
		c  *Converter
		id int
	}
	targets := []target{
		{mustNew(f, Config{Topic: "all", ValueType: TypeBySchemaID, Transform: TransformFlatten, Registry: r.client}, nil), allID},
		{mustNew(f, Config{Topic: "all", ValueType: TypeBySchemaID, Registry: r.client}, nil), allID},
		{mustNew(f, Config{Topic: "env", ValueType: TypeBySchemaID, Transform: TransformFlattenDebezium, Registry: r.client}, nil), envID},
	}
	// Settle the table schemas first, so the fuzzer exercises decoding.
	for _, tg := range targets {
		payload := allPayload
		if tg.id == envID {
			payload = envPayload
		}
		addEvolving(f, tg.c, Record{Value: append(wireHeader(tg.id), payload...)})
	}
	f.Add(byte(0), allPayload)
	f.Add(byte(1), allPayload)
	f.Add(byte(2), envPayload)
	f.Add(byte(0), allPayload[:len(allPayload)/2])
	f.Add(byte(2), []byte{2, 0xff, 0xff})

	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, which byte, payload []byte) {
		mu.Lock()
		defer mu.Unlock()
		tg := targets[int(which)%len(targets)]
		before := tg.c.Rows()
		err := tg.c.Add(context.Background(), Record{Value: append(wireHeader(tg.id), payload...)})
		switch {
		case err == nil:
			if tg.c.Rows() != before+1 {
				t.Fatalf("accepted record made %d rows from %d", tg.c.Rows(), before)
			}
		case errors.Is(err, ErrInvalidRecord):
			if tg.c.Rows() != before {
				t.Fatalf("rejected record changed the rows from %d to %d", before, tg.c.Rows())
			}
		default:
			t.Fatalf("unexpected error: %v", err)
		}
		if tg.c.Rows() >= 16 || (err == nil && tg.c.EstimatedBytes() > 1<<20) {
			rec := tg.c.Flush()
			defer rec.Release()
			if err := validateRecord(rec); err != nil {
				t.Fatal(err)
			}
			rowsOf(t, rec) // walks every value
		}
	})
}
