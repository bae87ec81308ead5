package compat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The data every client test produces: numRecords records with key
// "k-<n>" and a deterministic value of 0..maxValueLen bytes, spread over
// numPartitions partitions by the Java client's murmur2 key hash (the
// default or configured partitioner of every client tested), so each
// record's partition and offset are known in advance.
const (
	numRecords    = 100_000
	numPartitions = 8
	maxValueLen   = 2000
)

// codecs are the record batch compression codecs, by the names the
// clients use; codecType is each one's batch attribute value.
var (
	codecs    = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	codecType = map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
)

func recordKey(n int) []byte { return []byte("k-" + strconv.Itoa(n)) }

// recordValue returns record n's value: runs of 1..8 copies of
// pseudo-random bytes (every byte value occurs, and the codecs have
// something to compress), derived from n alone.
func recordValue(n int) []byte {
	state := uint64(n)*0x9e3779b97f4a7c15 + 0x5eed
	next := func() uint64 { // splitmix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	length := int(next() % (maxValueLen + 1))
	v := make([]byte, 0, length)
	for len(v) < length {
		r := next()
		for run := int(r>>8)%8 + 1; run > 0 && len(v) < length; run-- {
			v = append(v, byte(r))
		}
	}
	return v
}

// murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils),
// which the Java client's default partitioner, librdkafka's
// murmur2_random, kafkajs's DefaultPartitioner and franz-go's
// StickyKeyPartitioner(nil) apply to keys.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func partitionFor(key []byte, partitions int) int32 {
	return int32(int64(murmur2(key)&0x7fffffff) % int64(partitions))
}

// dataset is the records of one test run and where they must land.
type dataset struct {
	keys, values [][]byte
	partition    []int32 // record n's partition
	offset       []int64 // record n's offset in its partition
	byPartition  [][]int // record numbers per partition, in offset order
	totalBytes   int
}

var (
	fullDatasetOnce sync.Once
	fullDataset     *dataset
)

// theDataset returns the numRecords-record dataset, built once per process.
func theDataset() *dataset {
	fullDatasetOnce.Do(func() { fullDataset = newDataset(numRecords, numPartitions) })
	return fullDataset
}

func newDataset(count, partitions int) *dataset {
	ds := &dataset{
		keys:        make([][]byte, count),
		values:      make([][]byte, count),
		partition:   make([]int32, count),
		offset:      make([]int64, count),
		byPartition: make([][]int, partitions),
	}
	for n := range count {
		k, v := recordKey(n), recordValue(n)
		p := partitionFor(k, partitions)
		ds.keys[n], ds.values[n], ds.partition[n] = k, v, p
		ds.offset[n] = int64(len(ds.byPartition[p]))
		ds.byPartition[p] = append(ds.byPartition[p], n)
		ds.totalBytes += len(k) + len(v)
	}
	return ds
}

// writeInputFile writes the dataset in the format the Python and
// JavaScript clients read: per record, a big-endian int32 key length, the
// key, an int32 value length and the value.
func (ds *dataset) writeInputFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [4]byte
	for n := range ds.keys {
		for _, b := range [][]byte{ds.keys[n], ds.values[n]} {
			binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
			w.Write(hdr[:])
			w.Write(b)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// consumedRecord is one record as a consumer saw it.
type consumedRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	KeyNull   bool // the record's key was null (length -1)
	ValueNull bool
}

// readOutputFile parses what the Python and JavaScript consumers write:
// per record, a big-endian int32 partition, int64 offset, int32 key
// length (-1: null), key, int32 value length (-1: null) and value.
func readOutputFile(path string) ([]consumedRecord, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(raw)
	var recs []consumedRecord
	for r.Len() > 0 {
		var hdr struct {
			Partition int32
			Offset    int64
		}
		if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
			return nil, fmt.Errorf("%s: record %d header: %w", path, len(recs), err)
		}
		rec := consumedRecord{Partition: hdr.Partition, Offset: hdr.Offset}
		for _, field := range []struct {
			b    *[]byte
			null *bool
		}{{&rec.Key, &rec.KeyNull}, {&rec.Value, &rec.ValueNull}} {
			var n int32
			if err := binary.Read(r, binary.BigEndian, &n); err != nil {
				return nil, fmt.Errorf("%s: record %d length: %w", path, len(recs), err)
			}
			if n < 0 {
				*field.null = true
				continue
			}
			*field.b = make([]byte, n)
			if _, err := io.ReadFull(r, *field.b); err != nil {
				return nil, fmt.Errorf("%s: record %d: %w", path, len(recs), err)
			}
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// readAcksFile parses the produce acknowledgements the Python and
// JavaScript producers write: per input record, in input order, a
// big-endian int32 partition and int64 offset.
func readAcksFile(path string) ([]consumedRecord, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw)%12 != 0 {
		return nil, fmt.Errorf("%s: %d bytes, not a multiple of 12", path, len(raw))
	}
	acks := make([]consumedRecord, len(raw)/12)
	for i := range acks {
		acks[i].Partition = int32(binary.BigEndian.Uint32(raw[i*12:]))
		acks[i].Offset = int64(binary.BigEndian.Uint64(raw[i*12+4:]))
	}
	return acks, nil
}

// problems collects the first few mismatches of a check and counts the rest.
type problems struct {
	list  []string
	total int
}

func (p *problems) addf(format string, args ...any) {
	p.total++
	if len(p.list) < 12 {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

func (p *problems) err(what string) error {
	if p.total == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d problems, the first:\n  %s", what, p.total, strings.Join(p.list, "\n  "))
}

// checkAcks checks that producing record n was acknowledged with the
// partition and offset it must have (acks in input order).
func (ds *dataset) checkAcks(acks []consumedRecord) error {
	var p problems
	if len(acks) != len(ds.keys) {
		p.addf("%d acknowledgements, want %d", len(acks), len(ds.keys))
	}
	for n := range min(len(acks), len(ds.keys)) {
		if a := acks[n]; a.Partition != ds.partition[n] || a.Offset != ds.offset[n] {
			p.addf("record %d acknowledged at %d/%d, want %d/%d", n, a.Partition, a.Offset, ds.partition[n], ds.offset[n])
		}
	}
	return p.err("produce acknowledgements")
}

// check verifies that recs, in the order a consumer delivered them, hold
// every record of the dataset exactly once, byte for byte, each in its
// partition at its offset, each partition in offset order from 0.
// nullIsEmpty says the client cannot tell an empty value from a null one.
func (ds *dataset) check(recs []consumedRecord, nullIsEmpty bool) error {
	var p problems
	next := make([]int, len(ds.byPartition)) // next expected index per partition
	for i, r := range recs {
		if r.Partition < 0 || int(r.Partition) >= len(ds.byPartition) {
			p.addf("record #%d: partition %d out of range", i, r.Partition)
			continue
		}
		want := ds.byPartition[r.Partition]
		idx := next[r.Partition]
		next[r.Partition]++
		if r.Offset != int64(idx) {
			p.addf("partition %d: record #%d delivered has offset %d, want %d (key %q)", r.Partition, idx, r.Offset, idx, r.Key)
			if r.Offset >= 0 && r.Offset < int64(len(want)) {
				idx = int(r.Offset) // compare the content at the offset it claims
			} else {
				continue
			}
		}
		if idx >= len(want) {
			p.addf("partition %d: extra record at offset %d (key %q)", r.Partition, r.Offset, r.Key)
			continue
		}
		n := want[idx]
		switch {
		case r.KeyNull:
			p.addf("partition %d offset %d: null key, want %q", r.Partition, r.Offset, ds.keys[n])
		case !bytes.Equal(r.Key, ds.keys[n]):
			p.addf("partition %d offset %d: key %q, want %q", r.Partition, r.Offset, r.Key, ds.keys[n])
		case r.ValueNull && !(nullIsEmpty && len(ds.values[n]) == 0):
			p.addf("partition %d offset %d (%s): null value, want %d bytes", r.Partition, r.Offset, ds.keys[n], len(ds.values[n]))
		case !bytes.Equal(r.Value, ds.values[n]):
			p.addf("partition %d offset %d (%s): value of %d bytes differs from the %d produced (first difference at byte %d)",
				r.Partition, r.Offset, ds.keys[n], len(r.Value), len(ds.values[n]), firstDiff(r.Value, ds.values[n]))
		}
	}
	for part, want := range ds.byPartition {
		if next[part] < len(want) {
			p.addf("partition %d: %d records consumed, want %d", part, next[part], len(want))
		}
	}
	return p.err(fmt.Sprintf("%d records consumed, %d produced", len(recs), len(ds.keys)))
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestDataset pins the generator and the partitioner: the other tests
// take their expectations from them, so a change here must be deliberate.
func TestDataset(t *testing.T) {
	// Kafka's own test vectors for murmur2 (Java client UtilsTest).
	for _, tc := range []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got := murmur2([]byte(tc.in)); got != tc.want {
			t.Errorf("murmur2(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if !bytes.Equal(recordValue(7), recordValue(7)) {
		t.Fatal("recordValue is not deterministic")
	}
	ds := newDataset(10_000, numPartitions)
	var empty, full int
	seen := map[byte]bool{}
	for n, v := range ds.values {
		if len(v) > maxValueLen {
			t.Fatalf("value %d has %d bytes", n, len(v))
		}
		empty += btoi(len(v) == 0)
		full += btoi(len(v) == maxValueLen)
		for _, b := range v {
			seen[b] = true
		}
	}
	if empty == 0 || full == 0 || len(seen) != 256 {
		t.Fatalf("values: %d empty, %d of the maximum length, %d distinct bytes; want some of each and all 256", empty, full, len(seen))
	}
	for p, recs := range ds.byPartition {
		if len(recs) < 10_000/numPartitions/2 {
			t.Errorf("partition %d gets %d of 10000 records: the key spread is off", p, len(recs))
		}
	}
	// The checker itself must catch what it is there to catch.
	good := make([]consumedRecord, 0, len(ds.keys))
	for p, ns := range ds.byPartition {
		for off, n := range ns {
			good = append(good, consumedRecord{Partition: int32(p), Offset: int64(off), Key: ds.keys[n], Value: ds.values[n]})
		}
	}
	if err := ds.check(good, false); err != nil {
		t.Fatalf("check rejects the dataset itself: %v", err)
	}
	mutations := map[string]func([]consumedRecord) []consumedRecord{
		"missing":   func(r []consumedRecord) []consumedRecord { return r[:len(r)-1] },
		"duplicate": func(r []consumedRecord) []consumedRecord { return append(r, r[len(r)-1]) },
		"flipped byte": func(r []consumedRecord) []consumedRecord {
			i := slices.IndexFunc(r, func(c consumedRecord) bool { return len(c.Value) > 0 })
			v := bytes.Clone(r[i].Value)
			v[len(v)/2] ^= 1
			r[i].Value = v
			return r
		},
		"swapped": func(r []consumedRecord) []consumedRecord { r[0], r[1] = r[1], r[0]; return r },
		"null value": func(r []consumedRecord) []consumedRecord {
			i := slices.IndexFunc(r, func(c consumedRecord) bool { return len(c.Value) > 0 })
			r[i].Value, r[i].ValueNull = nil, true
			return r
		},
	}
	for name, mutate := range mutations {
		recs := mutate(append([]consumedRecord(nil), good...))
		if err := ds.check(recs, true); err == nil {
			t.Errorf("check accepts a %s record", name)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
