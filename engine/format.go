package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/dwal-project/dwal/engine/align"
)

// On-disk format constants. NB: never change these: directories written by
// an older build must keep opening. A new layout gets a new formatVersion.
const (
	segMagic         = "DWALSEG\x00" // first 8 bytes of every segment
	formatVersion    = 1             // the newest segment format this build reads and writes
	segHeaderLen     = 44            // encoded segment header, CRC included
	batchMagic       = 0x31425744    // "DWB1" little endian
	batchHeaderLen   = 48
	entryHeaderLen   = 12        // u32 length + u64 LSN
	maxBatchPayload  = 1<<31 - 1 // bytes of entries in one batch (u32 length field, kept signed-safe)
	maxEntrySizeCap  = 1 << 30   // the largest Config.MaxEntrySize accepted
	segFlagEncrypted = 1 << 0    // segment header flag: entry bytes are sealed by Config.Cipher
	metaLen          = 24        // .meta file: SegmentMetadata encoding
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segHeader is the first aligned block of a segment.
type segHeader struct {
	version uint16
	flags   uint16
	align   uint32
	id      uint64
	salt    uint64
	created int64 // unix nanoseconds, informational
}

// errBadSegHeader marks a header block that is not a dwal segment header
// (wrong magic or CRC). One written by a newer dwal gives
// ErrUnsupportedFormat instead.
var errBadSegHeader = errors.New("bad segment header")

func (h *segHeader) encode(b []byte) {
	clear(b[:segHeaderLen])
	copy(b[0:8], segMagic)
	binary.LittleEndian.PutUint16(b[8:], h.version)
	binary.LittleEndian.PutUint16(b[10:], h.flags)
	binary.LittleEndian.PutUint32(b[12:], h.align)
	binary.LittleEndian.PutUint64(b[16:], h.id)
	binary.LittleEndian.PutUint64(b[24:], h.salt)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.created))
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[:40], castagnoli))
}

// decodeSegHeader parses and checks a segment header block. A header with a
// valid CRC and a version above formatVersion gives ErrUnsupportedFormat.
func decodeSegHeader(b []byte) (segHeader, error) {
	var h segHeader
	if len(b) < segHeaderLen {
		return h, fmt.Errorf("%w: %d bytes, want %d", errBadSegHeader, len(b), segHeaderLen)
	}
	if string(b[0:8]) != segMagic {
		return h, fmt.Errorf("%w: bad magic", errBadSegHeader)
	}
	if got, want := binary.LittleEndian.Uint32(b[40:]), crc32.Checksum(b[:40], castagnoli); got != want {
		return h, fmt.Errorf("%w: crc %08x, want %08x", errBadSegHeader, got, want)
	}
	h.version = binary.LittleEndian.Uint16(b[8:])
	h.flags = binary.LittleEndian.Uint16(b[10:])
	h.align = binary.LittleEndian.Uint32(b[12:])
	h.id = binary.LittleEndian.Uint64(b[16:])
	h.salt = binary.LittleEndian.Uint64(b[24:])
	h.created = int64(binary.LittleEndian.Uint64(b[32:]))
	if h.version > formatVersion || h.version == 0 {
		return h, fmt.Errorf("%w: segment format version %d, this build reads up to %d", ErrUnsupportedFormat, h.version, formatVersion)
	}
	if h.align < 512 || h.align&(h.align-1) != 0 || h.align > 1<<20 {
		return h, fmt.Errorf("%w: alignment %d", errBadSegHeader, h.align)
	}
	return h, nil
}

// batchHeader starts every batch, at an aligned offset of its segment.
type batchHeader struct {
	crc    uint32
	length uint32 // bytes of entries after the header
	count  uint32
	seq    uint64 // 1 for the first batch of a segment, then +1
	minLSN LSN
	maxLSN LSN
	salt   uint64
	sealed bool // not encoded: the segment is encrypted, the entries are sealed
}

// span is the aligned size a batch with this header occupies.
func (h *batchHeader) span(a int) int64 {
	return align.Up64(int64(batchHeaderLen)+int64(h.length), a)
}

// seedCRC derives the CRC32C seed from the segment salt, so a batch copied
// from another segment (or a recycled file's stale bytes) fails its CRC.
func seedCRC(salt uint64) uint32 { return uint32(salt) ^ uint32(salt>>32) }

// batchSpan is the aligned size of a batch whose entries take n bytes.
func batchSpan(n int, a int) int { return align.Up(batchHeaderLen+n, a) }

// encodeBatchHeader writes the header into b[:batchHeaderLen] and the CRC
// over b[8:batchHeaderLen+length] (so the entries must already be in b).
func encodeBatchHeader(b []byte, h *batchHeader) {
	binary.LittleEndian.PutUint32(b[0:], batchMagic)
	binary.LittleEndian.PutUint32(b[8:], h.length)
	binary.LittleEndian.PutUint32(b[12:], h.count)
	binary.LittleEndian.PutUint64(b[16:], h.seq)
	binary.LittleEndian.PutUint64(b[24:], uint64(h.minLSN))
	binary.LittleEndian.PutUint64(b[32:], uint64(h.maxLSN))
	binary.LittleEndian.PutUint64(b[40:], h.salt)
	h.crc = crc32.Update(seedCRC(h.salt), castagnoli, b[8:batchHeaderLen+int(h.length)])
	binary.LittleEndian.PutUint32(b[4:], h.crc)
}

// encodeEntries writes n entries (got through at) into b as a batch body
// (length, LSN, bytes each) and returns their LSN range and the bytes used.
func encodeEntries(b []byte, n int, at func(int) (LSN, []byte)) (minLSN, maxLSN LSN, used int) {
	for i := range n {
		lsn, d := at(i)
		if i == 0 || lsn < minLSN {
			minLSN = lsn
		}
		if i == 0 || lsn > maxLSN {
			maxLSN = lsn
		}
		binary.LittleEndian.PutUint32(b[used:], uint32(len(d)))
		binary.LittleEndian.PutUint64(b[used+4:], uint64(lsn))
		copy(b[used+entryHeaderLen:], d)
		used += entryHeaderLen + len(d)
	}
	return minLSN, maxLSN, used
}

// batchProblem says why a batch header does not continue the log.
type batchProblem string

const (
	batchOK       batchProblem = ""
	batchNoMagic  batchProblem = "no batch magic (end of written data)"
	batchSalt     batchProblem = "salt of another segment (stale bytes)"
	batchSeq      batchProblem = "unexpected sequence number"
	batchLength   batchProblem = "length runs past the end of the file"
	batchCRC      batchProblem = "CRC mismatch"
	batchEntries  batchProblem = "entries do not fill the batch exactly"
	batchLSNRange batchProblem = "entry LSN outside the header's range"
)

// decodeBatchHeader reads the fixed header fields of b (at least
// batchHeaderLen bytes) and checks magic, salt and sequence. The CRC and the
// entries are checked by checkBatch once the whole batch is in memory.
func decodeBatchHeader(b []byte, salt, seq uint64) (batchHeader, batchProblem) {
	var h batchHeader
	if binary.LittleEndian.Uint32(b[0:]) != batchMagic {
		return h, batchNoMagic
	}
	h.crc = binary.LittleEndian.Uint32(b[4:])
	h.length = binary.LittleEndian.Uint32(b[8:])
	h.count = binary.LittleEndian.Uint32(b[12:])
	h.seq = binary.LittleEndian.Uint64(b[16:])
	h.minLSN = LSN(binary.LittleEndian.Uint64(b[24:]))
	h.maxLSN = LSN(binary.LittleEndian.Uint64(b[32:]))
	h.salt = binary.LittleEndian.Uint64(b[40:])
	if h.salt != salt {
		return h, batchSalt
	}
	if h.seq != seq {
		return h, batchSeq
	}
	if h.length > maxBatchPayload {
		return h, batchLength
	}
	return h, batchOK
}

// checkBatch verifies the CRC of a whole batch b (header + entries, at least
// batchHeaderLen+h.length bytes) and that its entries fill it exactly, with
// LSNs inside the header's range. It calls nothing: a batch is handed out
// whole (walkBatch) only once it is known good.
func checkBatch(b []byte, h *batchHeader) batchProblem {
	if crc32.Update(seedCRC(h.salt), castagnoli, b[8:batchHeaderLen+int(h.length)]) != h.crc {
		return batchCRC
	}
	if h.sealed {
		return batchOK // the entries are walked once opened
	}
	// The CRC matched, so the entries are what the writer put there; still,
	// never trust lengths blindly (a hostile file can carry a valid CRC).
	why, _ := walkBatch(b, h, nil)
	return why
}

// walkBatch walks the entries of batch b, calling fn (if not nil) for each.
// fn's data aliases b.
func walkBatch(b []byte, h *batchHeader, fn func(LSN, []byte) error) (batchProblem, error) {
	body := b[batchHeaderLen : batchHeaderLen+int(h.length)]
	var n uint32
	for len(body) > 0 {
		if len(body) < entryHeaderLen {
			return batchEntries, nil
		}
		l := binary.LittleEndian.Uint32(body[0:])
		lsn := LSN(binary.LittleEndian.Uint64(body[4:]))
		if uint64(l) > uint64(len(body)-entryHeaderLen) {
			return batchEntries, nil
		}
		if lsn < h.minLSN || lsn > h.maxLSN {
			return batchLSNRange, nil
		}
		n++
		if fn != nil {
			if err := fn(lsn, body[entryHeaderLen:entryHeaderLen+int(l)]); err != nil {
				return batchOK, err
			}
		}
		body = body[entryHeaderLen+int(l):]
	}
	if n != h.count {
		return batchEntries, nil
	}
	return batchOK, nil
}

// A fence file (NNNNNN.log.end) holds the offset where a segment's log ends
// after a failed write could not be rolled back: u64 offset, u32 CRC32C of it.
const fenceLen = 12

func encodeFence(off int64) [fenceLen]byte {
	var b [fenceLen]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(off))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	return b
}

func decodeFence(b []byte) (int64, bool) {
	if len(b) != fenceLen || binary.LittleEndian.Uint32(b[8:]) != crc32.Checksum(b[:8], castagnoli) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b[0:])), true
}

// SegmentMetadata is the LSN range and entry count of a sealed segment, kept
// in its NNNNNN.log.meta file (24 bytes, little endian: min, max, count).
type SegmentMetadata struct {
	MinLSN     LSN
	MaxLSN     LSN
	EntryCount uint64
}

// MarshalBinary encodes m as 24 bytes, little endian.
func (m SegmentMetadata) MarshalBinary() ([]byte, error) {
	b := m.Bytes()
	return b[:], nil
}

// Bytes encodes m as 24 bytes, little endian.
func (m SegmentMetadata) Bytes() [metaLen]byte {
	var b [metaLen]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(m.MinLSN))
	binary.LittleEndian.PutUint64(b[8:], uint64(m.MaxLSN))
	binary.LittleEndian.PutUint64(b[16:], m.EntryCount)
	return b
}

// ParseSegmentMetadata decodes the first 24 bytes of b; ok is false when b
// is shorter than 24 bytes.
func ParseSegmentMetadata(b []byte) (m SegmentMetadata, ok bool) {
	if len(b) < metaLen {
		return m, false
	}
	m.MinLSN = LSN(binary.LittleEndian.Uint64(b[0:]))
	m.MaxLSN = LSN(binary.LittleEndian.Uint64(b[8:]))
	m.EntryCount = binary.LittleEndian.Uint64(b[16:])
	return m, true
}

// UnmarshalBinary decodes m from 24 bytes.
func (m *SegmentMetadata) UnmarshalBinary(b []byte) error {
	v, ok := ParseSegmentMetadata(b)
	if !ok {
		return fmt.Errorf("dwal: segment metadata is %d bytes, want %d", len(b), metaLen)
	}
	*m = v
	return nil
}
