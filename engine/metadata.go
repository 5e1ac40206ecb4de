package engine

import (
	"fmt"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// SegmentMetadata is the LSN range and entry count of a sealed segment, kept
// in its NNNNNN.log.meta file (24 bytes, little endian: min, max, count).
type SegmentMetadata struct {
	MinLSN     LSN
	MaxLSN     LSN
	EntryCount uint64
}

// MarshalBinary encodes m as its .meta file: 24 bytes, little endian.
func (m SegmentMetadata) MarshalBinary() ([]byte, error) {
	b := m.format().Encode()
	return b[:], nil
}

// UnmarshalBinary decodes a .meta file: exactly 24 bytes.
func (m *SegmentMetadata) UnmarshalBinary(b []byte) error {
	v, ok := segment.DecodeMeta(b)
	if !ok {
		return fmt.Errorf("%w: segment metadata is %d bytes, want %d", ErrCorrupt, len(b), segment.MetaLen)
	}
	*m = metadataOf(v)
	return nil
}

func (m SegmentMetadata) format() segment.Meta {
	return segment.Meta{MinLSN: uint64(m.MinLSN), MaxLSN: uint64(m.MaxLSN), Entries: m.EntryCount}
}

func metadataOf(m segment.Meta) SegmentMetadata {
	return SegmentMetadata{MinLSN: LSN(m.MinLSN), MaxLSN: LSN(m.MaxLSN), EntryCount: m.Entries}
}
