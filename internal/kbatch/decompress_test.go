package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type testRecord struct {
	key, value []byte
	headers    []kmsg.Header
	tsDelta    int64
	offDelta   int32
}

// encodeRecords builds an uncompressed records section as a producer does.
func encodeRecords(recs []testRecord) []byte {
	var out []byte
	for _, tr := range recs {
		r := kmsg.NewRecord()
		r.OffsetDelta = tr.offDelta
		r.TimestampDelta64 = tr.tsDelta
		r.Key = tr.key
		r.Value = tr.value
		r.Headers = tr.headers
		// Length is a varint: encode once to learn the body size, then again.
		body := r.AppendTo(nil)
		_, k := binary.Varint(body)
		r.Length = int32(len(body) - k)
		out = r.AppendTo(out)
	}
	return out
}

// frameBatch wraps a (possibly compressed) records section in a v2 batch
// header with the given attributes and a correct length and CRC.
func frameBatch(base int64, attrs int16, lastDelta, n int32, first, maxTS int64, records []byte) []byte {
	b := kmsg.NewRecordBatch()
	b.FirstOffset = base
	b.Magic = 2
	b.Attributes = attrs
	b.LastOffsetDelta = lastDelta
	b.FirstTimestamp = first
	b.MaxTimestamp = maxTS
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.NumRecords = n
	b.Records = records
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offBatchLength:], uint32(len(raw)-lengthFieldEnd))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[crcCoveredFrom:], castagnoli))
	return raw
}

// xerialFrame frames data as snappy-java's SnappyOutputStream does, with
// blocks of blockSize bytes.
func xerialFrame(data []byte, blockSize int) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(data) > 0 {
		n := min(blockSize, len(data))
		block := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		data = data[n:]
	}
	return out
}

// kgoCompress compresses with franz-go's own producer compressor.
func kgoCompress(t testing.TB, codec kgo.CompressionCodec, src []byte) (int16, []byte) {
	t.Helper()
	c, err := kgo.DefaultCompressor(codec)
	if err != nil || c == nil {
		t.Fatalf("kgo compressor: %v", err)
	}
	out, used := c.Compress(new(bytes.Buffer), src)
	if used <= 0 {
		t.Fatalf("kgo compressor failed: codec %d", used)
	}
	return int16(used), bytes.Clone(out)
}

type gotRecord struct {
	offset, ts int64
	key, value string
	keyNil     bool
	headers    string
}

func collect(batch []byte) ([]gotRecord, error) {
	var got []gotRecord
	err := Records(batch, func(offset, ts int64, r Record) error {
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, h.Key+"="+string(h.Value))
		}
		got = append(got, gotRecord{offset, ts, string(r.Key), string(r.Value), r.Key == nil, strings.Join(hs, ",")})
		return nil
	})
	return got, err
}

func sampleRecords(n int) ([]testRecord, []gotRecord) {
	var recs []testRecord
	var want []gotRecord
	for i := range n {
		tr := testRecord{
			key:      []byte(fmt.Sprintf("key-%d", i)),
			value:    bytes.Repeat([]byte{byte('a' + i%26)}, 100+i*37),
			tsDelta:  int64(i * 3),
			offDelta: int32(i),
			headers:  []kmsg.Header{{Key: "h", Value: []byte(fmt.Sprint(i))}},
		}
		if i == 1 {
			tr.key = nil // a null key must stay null
		}
		recs = append(recs, tr)
		want = append(want, gotRecord{
			offset: 1000 + int64(i), ts: 5000 + int64(i*3), key: string(tr.key), keyNil: tr.key == nil,
			value: string(tr.value), headers: "h=" + fmt.Sprint(i),
		})
	}
	return recs, want
}

func TestRecordsCodecs(t *testing.T) {
	recs, want := sampleRecords(50)
	plain := encodeRecords(recs)
	n := int32(len(recs))
	build := func(codec int16, payload []byte) []byte {
		return frameBatch(1000, codec, n-1, n, 5000, 5000+int64(3*(n-1)), payload)
	}
	cases := []struct {
		name  string
		batch func(t *testing.T) []byte
	}{
		{"none", func(*testing.T) []byte { return build(0, plain) }},
		{"gzip", func(t *testing.T) []byte { return build(kgoCompress(t, kgo.GzipCompression(), plain)) }},
		{"snappy", func(t *testing.T) []byte { return build(kgoCompress(t, kgo.SnappyCompression(), plain)) }},
		{"snappy-xerial", func(*testing.T) []byte { return build(2, xerialFrame(plain, 1024)) }},
		{"lz4", func(t *testing.T) []byte { return build(kgoCompress(t, kgo.Lz4Compression(), plain)) }},
		{"zstd", func(t *testing.T) []byte { return build(kgoCompress(t, kgo.ZstdCompression(), plain)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			batch := tc.batch(t)
			if _, err := Validate(batch); err != nil {
				t.Fatalf("test batch invalid: %v", err)
			}
			got, err := collect(batch)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("record %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestRecordsLogAppendTimeAndGaps(t *testing.T) {
	recs := []testRecord{
		{key: []byte("a"), value: []byte("1"), offDelta: 0, tsDelta: 1},
		{key: []byte("b"), value: []byte("2"), offDelta: 3, tsDelta: 2}, // a compacted batch has gaps
	}
	batch := frameBatch(10, 0, 3, 2, 100, 102, encodeRecords(recs))
	SetLogAppendTime(batch, 777)
	got, err := collect(batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].offset != 10 || got[1].offset != 13 || got[0].ts != 777 || got[1].ts != 777 {
		t.Fatalf("log-append time / gaps: %+v", got)
	}
}

func TestRecordsSkipsControlBatches(t *testing.T) {
	recs := []testRecord{{key: []byte{0, 0, 0, 1}, value: []byte{0, 0, 0, 0, 0, 0}}}
	batch := frameBatch(5, attrControl|attrTransactional, 0, 1, 1, 1, encodeRecords(recs))
	calls := 0
	if err := Records(batch, func(int64, int64, Record) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("control batch: %d calls, %v", calls, err)
	}
}

func TestRecordsStopsOnCallbackError(t *testing.T) {
	recs, _ := sampleRecords(3)
	batch := frameBatch(0, 0, 2, 3, 0, 6, encodeRecords(recs))
	stop := errors.New("stop")
	calls := 0
	err := Records(batch, func(int64, int64, Record) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("got %v after %d calls", err, calls)
	}
}

func TestRecordsErrors(t *testing.T) {
	recs, _ := sampleRecords(3)
	plain := encodeRecords(recs)
	good := frameBatch(0, 0, 2, 3, 0, 6, plain)
	big := make([]byte, MaxDecompressedBytes+1)
	zenc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zbomb := zenc.EncodeAll(big, nil)
	_, gzbomb := kgoCompress(t, kgo.GzipCompression(), big)
	_, lzbomb := kgoCompress(t, kgo.Lz4Compression(), big)
	snapHuge := binary.AppendUvarint(nil, MaxDecompressedBytes+1) // claims a huge block
	xerialHuge := xerialFrame(big[:1<<20], 1<<20)
	xerialHuge = append(xerialHuge, xerialFrame(big, 1<<26)[16:]...)

	cases := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"short", good[:30], ErrShort},
		{"truncated", good[:len(good)-1], ErrLength},
		{"crc", func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), ErrCRC},
		{"codec", frameBatch(0, 5, 2, 3, 0, 6, plain), ErrCompression},
		{"gzip-corrupt", frameBatch(0, 1, 2, 3, 0, 6, []byte("not gzip")), ErrDecompress},
		{"lz4-corrupt", frameBatch(0, 3, 2, 3, 0, 6, []byte("not lz4 at all")), ErrDecompress},
		{"zstd-corrupt", frameBatch(0, 4, 2, 3, 0, 6, []byte("not zstd at all")), ErrDecompress},
		{"snappy-corrupt", frameBatch(0, 2, 2, 3, 0, 6, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ErrDecompress},
		{"xerial-truncated", frameBatch(0, 2, 2, 3, 0, 6, append(xerialFrame(plain, 64), 0, 0)), ErrDecompress},
		{"zstd-bomb", frameBatch(0, 4, 2, 3, 0, 6, zbomb), ErrTooLarge},
		{"gzip-bomb", frameBatch(0, 1, 2, 3, 0, 6, gzbomb), ErrTooLarge},
		{"lz4-bomb", frameBatch(0, 3, 2, 3, 0, 6, lzbomb), ErrTooLarge},
		{"snappy-claims-huge", frameBatch(0, 2, 2, 3, 0, 6, snapHuge), ErrTooLarge},
		{"xerial-bomb", frameBatch(0, 2, 2, 3, 0, 6, xerialHuge), ErrTooLarge},
		{"too-few-records", frameBatch(0, 0, 3, 4, 0, 6, plain), ErrRecords},
		{"trailing", frameBatch(0, 0, 1, 2, 0, 6, plain), ErrRecords},
		{"delta-past-last", frameBatch(0, 0, 1, 3, 0, 6, plain), ErrRecords},
		{"negative-count", frameBatch(0, 0, 2, -1, 0, 6, plain), ErrRecordCount},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collect(tc.batch)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzRecords feeds arbitrary records sections, under every codec and with a
// correct header and CRC so that the fuzzer reaches the decompressors and the
// record decoder, plus the raw input as a whole batch. Records must never
// panic, never yield more than the header's count, and never hand out more
// than MaxDecompressedBytes.
func FuzzRecords(f *testing.F) {
	recs, _ := sampleRecords(4)
	plain := encodeRecords(recs)
	f.Add(byte(0), int32(4), plain)
	for _, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		c, _ := kgo.DefaultCompressor(codec)
		out, used := c.Compress(new(bytes.Buffer), plain)
		f.Add(byte(used), int32(4), bytes.Clone(out))
	}
	f.Add(byte(2), int32(4), xerialFrame(plain, 16))
	f.Add(byte(0), int32(1), frameBatch(0, 0, 3, 4, 0, 9, plain))
	f.Fuzz(func(t *testing.T, codec byte, n int32, payload []byte) {
		check := func(batch []byte) {
			var got int32
			var total int
			err := Records(batch, func(_, _ int64, r Record) error {
				got++
				total += len(r.Key) + len(r.Value)
				return nil
			})
			h, herr := ParseHeader(batch)
			if herr == nil && got > max(h.NumRecords, 0) {
				t.Fatalf("%d records yielded, header says %d", got, h.NumRecords)
			}
			if total > MaxDecompressedBytes {
				t.Fatalf("yielded %d bytes", total)
			}
			_ = err
		}
		check(frameBatch(100, int16(codec&0x3f), max(n-1, 0), n, 0, 0, payload))
		check(payload)
	})
}
