package kbatch

import (
	"encoding/binary"
	"fmt"
)

// Record is one decoded record of an uncompressed v2 batch (or of a batch's
// decompressed payload). Slices alias the input.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil for a null key
	Value          []byte // nil for a null value
	Headers        []RecordHeader
}

// RecordHeader is one record header.
type RecordHeader struct {
	Key   string
	Value []byte
}

// checkRecords walks n records and fails on the first malformed one.
func checkRecords(b []byte, n int) error {
	return ReadRecords(b, n, func(int, Record) {})
}

// ReadRecords decodes n records from b (an uncompressed records section) and
// calls f with each. Offset deltas must run 0, 1, 2, ... as producers write them.
func ReadRecords(b []byte, n int, f func(i int, r Record)) error {
	for i := 0; i < n; i++ {
		length, k := binary.Varint(b)
		if k <= 0 || length < 0 || int64(len(b)-k) < length {
			return fmt.Errorf("%w: record %d: bad length", ErrRecords, i)
		}
		body := b[k : k+int(length)]
		b = b[k+int(length):]
		r, err := readRecord(body)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrRecords, i, err)
		}
		if int(r.OffsetDelta) != i {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrRecords, i, r.OffsetDelta)
		}
		f(i, r)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after %d records", ErrRecords, len(b), n)
	}
	return nil
}

type recReader struct {
	b   []byte
	err error
}

func (r *recReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.err = fmt.Errorf("bad varint")
		return 0
	}
	r.b = r.b[k:]
	return v
}

// bytes reads a varint-length-prefixed byte string; -1 is null.
func (r *recReader) bytes() []byte {
	n := r.varint()
	if r.err != nil {
		return nil
	}
	if n < 0 {
		if n != -1 {
			r.err = fmt.Errorf("negative length %d", n)
		}
		return nil
	}
	if int64(len(r.b)) < n {
		r.err = fmt.Errorf("length %d past end", n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func readRecord(body []byte) (Record, error) {
	if len(body) < 1 {
		return Record{}, fmt.Errorf("empty record")
	}
	r := recReader{b: body[1:]}
	rec := Record{Attributes: int8(body[0])}
	rec.TimestampDelta = r.varint()
	rec.OffsetDelta = int32(r.varint())
	rec.Key = r.bytes()
	rec.Value = r.bytes()
	nh := r.varint()
	if r.err == nil && (nh < 0 || nh > int64(len(r.b))) {
		return rec, fmt.Errorf("bad header count %d", nh)
	}
	for j := int64(0); j < nh && r.err == nil; j++ {
		k := r.bytes()
		v := r.bytes()
		rec.Headers = append(rec.Headers, RecordHeader{Key: string(k), Value: v})
	}
	if r.err != nil {
		return rec, r.err
	}
	if len(r.b) != 0 {
		return rec, fmt.Errorf("%d trailing bytes in record", len(r.b))
	}
	return rec, nil
}
