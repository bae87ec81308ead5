package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedBytes bounds what one batch's records section may
// decompress to. Kafka's own producers cap a batch at max.request.size
// (1 MiB by default) before compression, so 64 MiB leaves room for generous
// settings while keeping a hostile or corrupt batch (a zip bomb) from taking
// the process's memory.
const MaxDecompressedBytes = 64 << 20

// Errors returned by Records, besides the header errors above.
var (
	// ErrTooLarge means the records section decompresses past MaxDecompressedBytes.
	ErrTooLarge = errors.New("kbatch: batch decompresses past the size limit")
	// ErrDecompress means the compressed payload is corrupt.
	ErrDecompress = errors.New("kbatch: cannot decompress batch")
)

// Records decodes one stored batch (as Iterate yields them) and calls f with
// every record, its absolute offset (base offset + offset delta) and its
// timestamp in milliseconds: the batch's MaxTimestamp when the batch carries
// log-append time, else FirstTimestamp + the record's timestamp delta, as
// Kafka consumers compute it.
//
// The batch's length and CRC are checked; the records section is
// decompressed (gzip, snappy — raw or in the xerial framing the Java client
// writes —, lz4 frame, zstd), bounded by MaxDecompressedBytes. Control
// batches (transaction markers) are skipped: f is not called for them.
// Records does not drop aborted transactional data; the caller reads up to
// the last stable offset and filters aborted producer ranges itself.
//
// Offset deltas must increase strictly and stay within the batch's last
// offset delta; gaps are allowed, as compacted batches have them.
//
// The Record's slices alias a buffer that Records reuses once it returns:
// copy what must outlive f. An error from f stops the walk and is returned
// unchanged; any other error wraps one of this package's sentinels.
func Records(batch []byte, f func(offset, timestampMs int64, r Record) error) error {
	h, err := ParseHeader(batch)
	if err != nil {
		return err
	}
	if h.Size() != len(batch) {
		return fmt.Errorf("%w: header says %d bytes, got %d", ErrLength, h.Size(), len(batch))
	}
	if got := crc32.Checksum(batch[crcCoveredFrom:], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: computed %08x, batch says %08x", ErrCRC, got, h.CRC)
	}
	if h.Control() {
		return nil
	}
	if h.NumRecords < 0 || h.LastOffsetDelta < 0 {
		return fmt.Errorf("%w: %d records, last offset delta %d", ErrRecordCount, h.NumRecords, h.LastOffsetDelta)
	}
	payload := batch[HeaderSize:]
	if c := h.Compression(); c != 0 {
		buf := getBuffer()
		defer putBuffer(buf)
		out, err := decompress(c, payload, buf.b[:0])
		if err != nil {
			return err
		}
		buf.b = out
		payload = out
	}
	return walkRecords(&h, payload, f)
}

// walkRecords decodes the records of an uncompressed records section.
func walkRecords(h *Header, b []byte, f func(offset, timestampMs int64, r Record) error) error {
	lastDelta := int32(-1)
	for i := int32(0); i < h.NumRecords; i++ {
		length, k := binary.Varint(b)
		if k <= 0 || length < 0 || int64(len(b)-k) < length {
			return fmt.Errorf("%w: record %d: bad length", ErrRecords, i)
		}
		r, err := readRecord(b[k : k+int(length)])
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrRecords, i, err)
		}
		b = b[k+int(length):]
		if r.OffsetDelta <= lastDelta || r.OffsetDelta > h.LastOffsetDelta {
			return fmt.Errorf("%w: record %d has offset delta %d (previous %d, last %d)",
				ErrRecords, i, r.OffsetDelta, lastDelta, h.LastOffsetDelta)
		}
		lastDelta = r.OffsetDelta
		ts := h.FirstTimestamp + r.TimestampDelta
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		if err := f(h.BaseOffset+int64(r.OffsetDelta), ts, r); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after %d records", ErrRecords, len(b), h.NumRecords)
	}
	return nil
}

// Decompress returns the decompressed form of a records section compressed
// with codec (1 gzip, 2 snappy, 3 lz4, 4 zstd; 0 returns src), appended to
// dst, bounded by MaxDecompressedBytes.
func Decompress(codec int, src, dst []byte) ([]byte, error) {
	if codec == 0 {
		return append(dst, src...), nil
	}
	return decompress(codec, src, dst)
}

func decompress(codec int, src, dst []byte) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch codec {
	case 1:
		out, err = gunzip(src, dst)
	case 2:
		out, err = unsnappy(src, dst)
	case 3:
		out, err = unlz4(src, dst)
	case 4:
		out, err = unzstd(src, dst)
	default:
		return nil, fmt.Errorf("%w: %d", ErrCompression, codec)
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w (%s): %v", ErrDecompress, codecName(codec), err)
	}
	return out, nil
}

func codecName(c int) string {
	return [...]string{"none", "gzip", "snappy", "lz4", "zstd"}[c]
}

// tooLarge reports the limit in one place so every codec says the same.
func tooLarge(codec int) error {
	return fmt.Errorf("%w (%s): more than %d bytes", ErrTooLarge, codecName(codec), MaxDecompressedBytes)
}

// readBounded appends everything r yields to dst, failing past the limit.
func readBounded(codec int, r io.Reader, dst []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(r, MaxDecompressedBytes+1-int64(len(dst))))
	if err != nil {
		return nil, err
	}
	if int64(len(dst))+n > MaxDecompressedBytes {
		return nil, tooLarge(codec)
	}
	return buf.Bytes(), nil
}

var gzipReaders sync.Pool // *gzip.Reader

func gunzip(src, dst []byte) ([]byte, error) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	defer gzipReaders.Put(zr)
	if err := zr.Reset(bytes.NewReader(src)); err != nil {
		return nil, err
	}
	return readBounded(1, zr, dst)
}

var lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

func unlz4(src, dst []byte) ([]byte, error) {
	zr := lz4Readers.Get().(*lz4.Reader)
	defer lz4Readers.Put(zr)
	zr.Reset(bytes.NewReader(src))
	return readBounded(3, zr, dst)
}

// zstd decoders are costly to build; the pool keeps a few. A nil entry
// records that building one failed, which cannot happen with these options.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(MaxDecompressedBytes),
	)
	if err != nil {
		return nil
	}
	return d
}}

func unzstd(src, dst []byte) ([]byte, error) {
	d, _ := zstdDecoders.Get().(*zstd.Decoder)
	if d == nil {
		return nil, errors.New("cannot create zstd decoder")
	}
	defer zstdDecoders.Put(d)
	out, err := d.DecodeAll(src, dst)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > MaxDecompressedBytes {
		return nil, tooLarge(4)
	}
	return out, err
}

// xerialMagic starts snappy data framed by snappy-java's SnappyOutputStream,
// which the Java Kafka client used for years: the magic, two big-endian
// int32 versions, then blocks of a big-endian int32 length and a raw snappy
// block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

func unsnappy(src, dst []byte) ([]byte, error) {
	if len(src) >= xerialHeaderSize && bytes.HasPrefix(src, xerialMagic) {
		return unxerial(src[xerialHeaderSize:], dst)
	}
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressedBytes-len(dst) {
		return nil, tooLarge(2)
	}
	return decodeSnappyBlock(src, dst, n)
}

// decodeSnappyBlock appends the decoding of one raw snappy block of decoded
// length n to dst.
func decodeSnappyBlock(src, dst []byte, n int) ([]byte, error) {
	at := len(dst)
	dst = grow(dst, n)
	got, err := s2.Decode(dst[at:at+n], src)
	if err != nil {
		return nil, err
	}
	if len(got) != n {
		return nil, fmt.Errorf("snappy block decoded to %d bytes, header said %d", len(got), n)
	}
	return dst[:at+n], nil
}

func unxerial(src, dst []byte) ([]byte, error) {
	// Sum the blocks' claimed sizes first, so that the limit is checked
	// before anything is allocated and dst grows once.
	total := len(dst)
	for rem := src; len(rem) > 0; {
		if len(rem) < 4 {
			return nil, errors.New("xerial: truncated block length")
		}
		size := binary.BigEndian.Uint32(rem)
		rem = rem[4:]
		if uint64(size) > uint64(len(rem)) {
			return nil, fmt.Errorf("xerial: block of %d bytes, %d remain", size, len(rem))
		}
		n, err := s2.DecodedLen(rem[:size])
		if err != nil {
			return nil, err
		}
		if n > MaxDecompressedBytes-total {
			return nil, tooLarge(2)
		}
		total += n
		rem = rem[size:]
	}
	dst = grow(dst, total-len(dst))
	for len(src) > 0 {
		size := binary.BigEndian.Uint32(src)
		block := src[4 : 4+size]
		src = src[4+size:]
		n, _ := s2.DecodedLen(block) // checked above
		var err error
		if dst, err = decodeSnappyBlock(block, dst, n); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// grow returns dst with room for n more bytes past its length.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// decompressed buffers are reused across Records calls; ones that grew past
// maxPooledBuffer are dropped so that one huge batch does not pin memory.
const maxPooledBuffer = 4 << 20

type buffer struct{ b []byte }

var buffers = sync.Pool{New: func() any { return new(buffer) }}

func getBuffer() *buffer { return buffers.Get().(*buffer) }

func putBuffer(b *buffer) {
	if cap(b.b) > maxPooledBuffer {
		b.b = nil
	}
	buffers.Put(b)
}
