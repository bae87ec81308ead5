// Package streamobj defines floe's stream object format: the layout of one
// object in object storage holding Kafka record batches of one or many
// partitions. A broker's flush writes one such object for all partitions it
// leads; compaction writes them per partition.
//
// Layout (all integers big endian):
//
//	[chunk 0][chunk 1]...[chunk n-1]   record batches, as produced, grouped by partition
//	[footer]                           n index entries (see Entry), each entryLen bytes
//	[trailer]                          footer length u32, footer CRC-32C u32, entry count u32, version u16, magic "FLOE"
//
// The metadata store holds the same index, so readers normally never read the
// footer; it makes every object self-describing for recovery, compaction and
// debugging tools.
package streamobj

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const (
	magic      = "FLOE"
	version    = 1
	entryLen   = 16 + 4 + 8 + 8 + 8 + 8 + 8 + 4
	TrailerLen = 4 + 4 + 4 + 2 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt means the bytes are not a well-formed stream object.
var ErrCorrupt = errors.New("streamobj: corrupt object")

// Entry locates one partition's chunk inside an object.
type Entry struct {
	TopicID      [16]byte
	Partition    int32
	BaseOffset   int64 // first offset in the chunk
	LastOffset   int64 // last offset in the chunk (inclusive)
	Pos          int64 // byte position of the chunk in the object
	Len          int64 // byte length of the chunk
	MaxTimestamp int64 // max batch timestamp in the chunk
	Records      int32 // number of records in the chunk
}

// Builder assembles an object in memory. Chunks are appended in the order
// given; an object is at most a flush's worth of bytes.
type Builder struct {
	buf     []byte
	entries []Entry
}

// NewBuilder returns a builder with room for sizeHint bytes of batches.
func NewBuilder(sizeHint int) *Builder { return &Builder{buf: make([]byte, 0, sizeHint+4096)} }

// AddChunk appends one partition's batches and records its index entry,
// whose Pos and Len are filled in. It returns the completed entry.
func (b *Builder) AddChunk(e Entry, batches [][]byte) Entry {
	e.Pos = int64(len(b.buf))
	for _, bt := range batches {
		b.buf = append(b.buf, bt...)
	}
	e.Len = int64(len(b.buf)) - e.Pos
	b.entries = append(b.entries, e)
	return e
}

// Entries returns the entries added so far.
func (b *Builder) Entries() []Entry { return b.entries }

// Finish appends footer and trailer and returns the object's bytes.
func (b *Builder) Finish() []byte {
	footerStart := len(b.buf)
	for _, e := range b.entries {
		b.buf = appendEntry(b.buf, e)
	}
	footer := b.buf[footerStart:]
	crc := crc32.Checksum(footer, castagnoli)
	be := binary.BigEndian
	b.buf = be.AppendUint32(b.buf, uint32(len(footer)))
	b.buf = be.AppendUint32(b.buf, crc)
	b.buf = be.AppendUint32(b.buf, uint32(len(b.entries)))
	b.buf = be.AppendUint16(b.buf, version)
	b.buf = append(b.buf, magic...)
	return b.buf
}

func appendEntry(dst []byte, e Entry) []byte {
	be := binary.BigEndian
	dst = append(dst, e.TopicID[:]...)
	dst = be.AppendUint32(dst, uint32(e.Partition))
	dst = be.AppendUint64(dst, uint64(e.BaseOffset))
	dst = be.AppendUint64(dst, uint64(e.LastOffset))
	dst = be.AppendUint64(dst, uint64(e.Pos))
	dst = be.AppendUint64(dst, uint64(e.Len))
	dst = be.AppendUint64(dst, uint64(e.MaxTimestamp))
	dst = be.AppendUint32(dst, uint32(e.Records))
	return dst
}

// ParseTrailer decodes the fixed trailer at the end of an object of size
// objSize and returns where the footer starts and how long it is.
func ParseTrailer(trailer []byte, objSize int64) (footerPos, footerLen int64, err error) {
	if len(trailer) != TrailerLen || string(trailer[TrailerLen-4:]) != magic {
		return 0, 0, fmt.Errorf("%w: bad trailer", ErrCorrupt)
	}
	be := binary.BigEndian
	if v := be.Uint16(trailer[12:]); v != version {
		return 0, 0, fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	footerLen = int64(be.Uint32(trailer[0:]))
	n := int64(be.Uint32(trailer[8:]))
	if footerLen != n*entryLen || footerLen > objSize-TrailerLen {
		return 0, 0, fmt.Errorf("%w: footer length %d for %d entries", ErrCorrupt, footerLen, n)
	}
	return objSize - TrailerLen - footerLen, footerLen, nil
}

// Parse decodes the whole object's index from its bytes (footer and
// trailer included) and checks every entry lies inside the data section.
func Parse(obj []byte) ([]Entry, error) {
	if len(obj) < TrailerLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(obj))
	}
	trailer := obj[len(obj)-TrailerLen:]
	pos, n, err := ParseTrailer(trailer, int64(len(obj)))
	if err != nil {
		return nil, err
	}
	footer := obj[pos : pos+n]
	if crc32.Checksum(footer, castagnoli) != binary.BigEndian.Uint32(trailer[4:]) {
		return nil, fmt.Errorf("%w: footer CRC mismatch", ErrCorrupt)
	}
	entries := make([]Entry, 0, n/entryLen)
	be := binary.BigEndian
	for off := int64(0); off < n; off += entryLen {
		f := footer[off : off+entryLen]
		var e Entry
		copy(e.TopicID[:], f[:16])
		e.Partition = int32(be.Uint32(f[16:]))
		e.BaseOffset = int64(be.Uint64(f[20:]))
		e.LastOffset = int64(be.Uint64(f[28:]))
		e.Pos = int64(be.Uint64(f[36:]))
		e.Len = int64(be.Uint64(f[44:]))
		e.MaxTimestamp = int64(be.Uint64(f[52:]))
		e.Records = int32(be.Uint32(f[60:]))
		if e.Pos < 0 || e.Len < 0 || e.Pos > pos || e.Len > pos-e.Pos || e.LastOffset < e.BaseOffset {
			return nil, fmt.Errorf("%w: entry %d out of range", ErrCorrupt, len(entries))
		}
		entries = append(entries, e)
	}
	return entries, nil
}
