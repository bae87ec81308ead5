package broker_test

import (
	"encoding/binary"
	"hash/crc32"
)

// fixBatch sets a hand-built batch's length and CRC as a producer would.
func fixBatch(raw []byte) []byte {
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
