// Package kbatch reads and checks Kafka record batches (message format v2)
// as producers send them. floe stores batches byte for byte as they arrive;
// the only fields it rewrites are the base offset and the partition leader
// epoch, which the batch CRC does not cover, so compressed payloads are never
// touched on the write path.
package kbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Offsets of the v2 batch header fields.
const (
	offBaseOffset       = 0
	offBatchLength      = 8
	offLeaderEpoch      = 12
	offMagic            = 16
	offCRC              = 17
	offAttributes       = 21
	offLastOffsetDelta  = 23
	offFirstTimestamp   = 27
	offMaxTimestamp     = 35
	offProducerID       = 43
	offProducerEpoch    = 51
	offBaseSequence     = 53
	offNumRecords       = 57
	HeaderSize          = 61
	lengthFieldEnd      = 12 // batchLength counts the bytes after this
	crcCoveredFrom      = offAttributes
	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors returned by Validate; all of them mean the producer sent a corrupt
// or unsupported batch (Kafka's CORRUPT_MESSAGE / INVALID_RECORD).
var (
	ErrShort        = errors.New("kbatch: batch shorter than its header")
	ErrMagic        = errors.New("kbatch: unsupported message format (magic != 2)")
	ErrLength       = errors.New("kbatch: batch length does not match the bytes sent")
	ErrCRC          = errors.New("kbatch: CRC mismatch")
	ErrCompression  = errors.New("kbatch: unknown compression codec")
	ErrRecordCount  = errors.New("kbatch: record count does not match last offset delta")
	ErrRecords      = errors.New("kbatch: malformed records")
	ErrEmptyRecords = errors.New("kbatch: no record batch in produce request")
)

// Header is the decoded fixed part of a v2 record batch.
type Header struct {
	BaseOffset      int64
	BatchLength     int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Compression returns the codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *Header) Compression() int { return int(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether the batch's timestamps are log-append times.
func (h *Header) LogAppendTime() bool { return h.Attributes&attrTimestampType != 0 }

// Transactional reports whether the batch is part of a transaction.
func (h *Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch is a control batch (transaction markers).
func (h *Header) Control() bool { return h.Attributes&attrControl != 0 }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size is the batch's total size in bytes.
func (h *Header) Size() int { return int(h.BatchLength) + lengthFieldEnd }

// ParseHeader decodes the header of the batch at the start of b without
// checking the CRC. It needs only HeaderSize bytes.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShort
	}
	be := binary.BigEndian
	h := Header{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:     int32(be.Uint32(b[offBatchLength:])),
		LeaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:  int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:      int32(be.Uint32(b[offNumRecords:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrMagic, h.Magic)
	}
	if h.BatchLength < HeaderSize-lengthFieldEnd {
		return h, fmt.Errorf("%w: batch length %d", ErrLength, h.BatchLength)
	}
	return h, nil
}

// Validate checks one complete batch, exactly as a producer must send it:
// header sane, length equal to len(b), CRC-32C correct, codec known, record
// count consistent, and, for uncompressed batches, every record well formed.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: header says %d bytes, got %d", ErrLength, h.Size(), len(b))
	}
	if got := crc32.Checksum(b[crcCoveredFrom:], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: computed %08x, batch says %08x", ErrCRC, got, h.CRC)
	}
	if h.Compression() > 4 {
		return h, fmt.Errorf("%w: %d", ErrCompression, h.Compression())
	}
	if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: %d records, last offset delta %d", ErrRecordCount, h.NumRecords, h.LastOffsetDelta)
	}
	if h.Compression() == 0 {
		if err := checkRecords(b[HeaderSize:], int(h.NumRecords)); err != nil {
			return h, err
		}
	}
	return h, nil
}

// Split validates a produce request's record set, which may hold several
// batches back to back, and returns each batch's header and bytes.
func Split(records []byte) ([]Header, [][]byte, error) {
	if len(records) == 0 {
		return nil, nil, ErrEmptyRecords
	}
	var (
		hdrs    []Header
		batches [][]byte
	)
	for len(records) > 0 {
		h, err := ParseHeader(records)
		if err != nil {
			return nil, nil, err
		}
		if h.Size() > len(records) {
			return nil, nil, fmt.Errorf("%w: header says %d bytes, %d remain", ErrLength, h.Size(), len(records))
		}
		one := records[:h.Size()]
		if _, err := Validate(one); err != nil {
			return nil, nil, err
		}
		hdrs = append(hdrs, h)
		batches = append(batches, one)
		records = records[h.Size():]
	}
	return hdrs, batches, nil
}

// SetBaseOffset rewrites the batch's base offset in place. Not covered by the CRC.
func SetBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }

// SetLeaderEpoch rewrites the partition leader epoch in place. Not covered by the CRC.
func SetLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch as carrying log-append time ts and
// recomputes its CRC, as a Kafka broker does for topics with
// message.timestamp.type=LogAppendTime.
func SetLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | attrTimestampType
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[crcCoveredFrom:], castagnoli))
}

// Iterate walks the batches stored back to back in b (as floe keeps them in
// objects) and calls f with each header and batch; a torn tail is reported
// as an error, not ignored.
func Iterate(b []byte, f func(h Header, batch []byte) bool) error {
	for len(b) > 0 {
		h, err := ParseHeader(b)
		if err != nil {
			return err
		}
		if h.Size() > len(b) {
			return fmt.Errorf("%w: header says %d bytes, %d remain", ErrLength, h.Size(), len(b))
		}
		if !f(h, b[:h.Size()]) {
			return nil
		}
		b = b[h.Size():]
	}
	return nil
}
