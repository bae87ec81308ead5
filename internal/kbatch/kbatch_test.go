package kbatch

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// buildBatch encodes an uncompressed v2 batch the way a producer does.
func buildBatch(t testing.TB, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 = int64(i)
		r.Key = []byte("k")
		r.Value = []byte(v)
		r.Headers = []kmsg.Header{{Key: "h", Value: []byte("x")}}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // body size once Length (one byte here) is excluded
		recs = r.AppendTo(recs)
	}
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.LastOffsetDelta = int32(len(values) - 1)
	b.FirstTimestamp = 1000
	b.MaxTimestamp = 1000 + int64(len(values)-1)
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.NumRecords = int32(len(values))
	b.Records = recs
	raw := b.AppendTo(nil)
	// Fix length and CRC the way the client does.
	be := func(off int, v uint32) {
		raw[off], raw[off+1], raw[off+2], raw[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	be(offBatchLength, uint32(len(raw)-lengthFieldEnd))
	be(offCRC, crc32.Checksum(raw[crcCoveredFrom:], castagnoli))
	return raw
}

func TestValidate(t *testing.T) {
	good := buildBatch(t, "a", "bb", "ccc")
	if _, err := Validate(good); err != nil {
		t.Fatalf("valid batch rejected: %v", err)
	}
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"short", func(b []byte) []byte { return b[:20] }, ErrShort},
		{"magic", func(b []byte) []byte { b[offMagic] = 1; return b }, ErrMagic},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrLength},
		{"crc", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, ErrCRC},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(good))
			if _, err := Validate(b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSplitAndRewrite(t *testing.T) {
	a, b := buildBatch(t, "x"), buildBatch(t, "y", "z")
	hdrs, batches, err := Split(append(bytes.Clone(a), b...))
	if err != nil {
		t.Fatal(err)
	}
	if len(hdrs) != 2 || hdrs[1].NumRecords != 2 || !bytes.Equal(batches[0], a) {
		t.Fatalf("split wrong: %+v", hdrs)
	}
	SetBaseOffset(batches[1], 42)
	SetLeaderEpoch(batches[1], 7)
	h, err := Validate(batches[1])
	if err != nil {
		t.Fatalf("rewritten batch no longer valid: %v", err)
	}
	if h.BaseOffset != 42 || h.LeaderEpoch != 7 || h.LastOffset() != 43 {
		t.Fatalf("rewrite lost: %+v", h)
	}
	SetLogAppendTime(batches[1], 99)
	h, err = Validate(batches[1])
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 99 {
		t.Fatalf("log append time: %+v %v", h, err)
	}
	var vals []string
	if err := ReadRecords(batches[1][HeaderSize:], 2, func(_ int, r Record) { vals = append(vals, string(r.Value)) }); err != nil {
		t.Fatal(err)
	}
	if len(vals) != 2 || vals[0] != "y" || vals[1] != "z" {
		t.Fatalf("records: %v", vals)
	}
}

// FuzzValidate feeds arbitrary bytes to the produce-path validator: it must
// never panic, and anything it accepts must re-parse identically.
func FuzzValidate(f *testing.F) {
	f.Add(buildBatch(f, "a", "b"))
	f.Add(append(buildBatch(f, "a"), buildBatch(f, "bc", "d")...))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		hdrs, batches, err := Split(b)
		if err != nil {
			return
		}
		var total int
		for i, bt := range batches {
			h, err := Validate(bt)
			if err != nil || h != hdrs[i] {
				t.Fatalf("accepted batch fails re-validation: %v", err)
			}
			total += len(bt)
		}
		if total != len(b) {
			t.Fatalf("split covered %d of %d bytes", total, len(b))
		}
	})
}
