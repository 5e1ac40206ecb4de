package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// MetaLen is the size of a .meta file. NB: never change it.
const MetaLen = 24

// Meta is the LSN range and entry count of a sealed segment, its .meta file:
// min LSN, max LSN, entry count, u64 little endian each.
type Meta struct {
	MinLSN, MaxLSN, Entries uint64
}

// Add widens m by a batch's LSN range and count.
func (m *Meta) Add(minLSN, maxLSN uint64, count uint64) {
	if m.Entries == 0 || minLSN < m.MinLSN {
		m.MinLSN = minLSN
	}
	if m.Entries == 0 || maxLSN > m.MaxLSN {
		m.MaxLSN = maxLSN
	}
	m.Entries += count
}

// Encode returns m's .meta bytes.
func (m Meta) Encode() [MetaLen]byte {
	var b [MetaLen]byte
	binary.LittleEndian.PutUint64(b[0:], m.MinLSN)
	binary.LittleEndian.PutUint64(b[8:], m.MaxLSN)
	binary.LittleEndian.PutUint64(b[16:], m.Entries)
	return b
}

// DecodeMeta parses a .meta file. The one rule: exactly MetaLen bytes; any
// other length is malformed (ok false), and recovery rebuilds it.
func DecodeMeta(b []byte) (m Meta, ok bool) {
	if len(b) != MetaLen {
		return m, false
	}
	m.MinLSN = binary.LittleEndian.Uint64(b[0:])
	m.MaxLSN = binary.LittleEndian.Uint64(b[8:])
	m.Entries = binary.LittleEndian.Uint64(b[16:])
	return m, true
}

// A fence (NNNNNN.log.end) holds the offset where a segment's log ends after
// a failed write could not be rolled back: u64 offset, u32 CRC32C of it.
// NB: never change it.
const FenceLen = 12

// EncodeFence returns the fence bytes for offset off.
func EncodeFence(off int64) [FenceLen]byte {
	var b [FenceLen]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(off))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], Castagnoli))
	return b
}

// DecodeFence parses a fence; ok is false when it is not a valid one.
func DecodeFence(b []byte) (off int64, ok bool) {
	if len(b) != FenceLen || binary.LittleEndian.Uint32(b[8:]) != crc32.Checksum(b[:8], Castagnoli) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b[0:])), true
}

// MetaMismatch is the error of a sealed segment whose scan r disagrees with
// its .meta m (ErrCorrupt): replaying it would hand out other entries than
// were acknowledged.
func MetaMismatch(name string, r Result, m Meta) error {
	return fmt.Errorf("%w: %s: log ends at offset %d (%s) after %d entries, LSN %d..%d; its .meta says %d entries, LSN %d..%d",
		ErrCorrupt, name, r.End, r.Why.Reason(), r.Meta.Entries, r.Meta.MinLSN, r.Meta.MaxLSN, m.Entries, m.MinLSN, m.MaxLSN)
}
