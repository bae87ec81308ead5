package convert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// reader decodes Avro's binary encoding from one payload. It never panics on
// malformed input: the first problem is kept in err, and every later read
// returns a zero value, so decoders need not check after each call.
type reader struct {
	b   []byte
	err error
	// items bounds how many array and map entries one datum may declare:
	// a block count is attacker-controlled, and entries of types that
	// take no bytes (null, an empty record) would otherwise let a 10-byte
	// payload loop for ever or build a huge row.
	items int
}

// extraItems is the slack over the payload length for entries of zero-size
// types; any other entry consumes at least one byte.
const extraItems = 1 << 16

var errTruncated = errors.New("truncated Avro data")

func (r *reader) reset(b []byte) {
	r.b, r.err, r.items = b, nil, len(b)+extraItems
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) failf(format string, args ...any) { r.fail(fmt.Errorf(format, args...)) }

// long reads a zig-zag varint of up to 10 bytes.
func (r *reader) long() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		if n == 0 {
			r.fail(errTruncated)
		} else {
			r.failf("varint overflows 64 bits")
		}
		return 0
	}
	r.b = r.b[n:]
	return int64(v>>1) ^ -int64(v&1)
}

// int reads an Avro int, which must fit 32 bits.
func (r *reader) int() int32 {
	v := r.long()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.failf("int value %d out of 32-bit range", v)
		return 0
	}
	return int32(v)
}

func (r *reader) boolean() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < 1 {
		r.fail(errTruncated)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.failf("boolean byte %d", v)
	}
	return v == 1
}

func (r *reader) fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail(errTruncated)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) float32() float32 {
	b := r.fixed(4)
	if b == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}

func (r *reader) float64() float64 {
	b := r.fixed(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// bytes reads a length-prefixed byte string (bytes and string types).
func (r *reader) bytes() []byte {
	n := r.long()
	if r.err != nil {
		return nil
	}
	if n < 0 {
		r.failf("negative length %d", n)
		return nil
	}
	if n > int64(len(r.b)) {
		r.fail(errTruncated)
		return nil
	}
	return r.fixed(int(n))
}

// blockCount reads the item count of the next array or map block; 0 ends
// the sequence. A negative count is followed by the block's byte size,
// which is read and ignored.
func (r *reader) blockCount() int {
	n := r.long()
	if r.err != nil {
		return 0
	}
	if n < 0 {
		if n == math.MinInt64 {
			r.failf("bad block count")
			return 0
		}
		n = -n
		if size := r.long(); size < 0 {
			r.failf("negative block size %d", size)
		}
	}
	if n > int64(r.items) {
		r.failf("block of %d items is larger than the payload can hold", n)
		return 0
	}
	r.items -= int(n)
	return int(n)
}
