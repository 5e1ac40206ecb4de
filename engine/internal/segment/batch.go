package segment

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/dwal-project/dwal/engine/align"
)

// Batches and entries. NB: never change these.
const (
	BatchMagic      = 0x31425744 // "DWB1" little endian
	BatchHeaderLen  = 48
	EntryHeaderLen  = 12        // u32 length + u64 LSN
	MaxBatchPayload = 1<<31 - 1 // bytes of entries in one batch (u32 length field, kept signed-safe)
)

// BatchHeader starts every batch, at an aligned offset of its segment.
type BatchHeader struct {
	CRC       uint32
	Length    uint32 // bytes of entries after the header
	Count     uint32
	Seq       uint64 // 1 for the first batch of a segment, then +1
	MinLSN    uint64
	MaxLSN    uint64
	Salt      uint64
	Encrypted bool // not encoded: the segment is encrypted, and so are the entries
}

// Span is the aligned size a batch with this header occupies.
func (h *BatchHeader) Span(a int) int64 {
	return align.Up64(int64(BatchHeaderLen)+int64(h.Length), a)
}

// BatchSpan is the aligned size of a batch whose entries take n bytes.
func BatchSpan(n int, a int) int { return align.Up(BatchHeaderLen+n, a) }

// SeedCRC derives the CRC32C seed from the segment salt, so a batch copied
// from another segment (or a recycled file's stale bytes) fails its CRC.
func SeedCRC(salt uint64) uint32 { return uint32(salt) ^ uint32(salt>>32) }

// EncodeBatchHeader writes h into b[:BatchHeaderLen] and the CRC over
// b[8:BatchHeaderLen+h.Length] (so the entries must already be in b).
func EncodeBatchHeader(b []byte, h *BatchHeader) {
	binary.LittleEndian.PutUint32(b[0:], BatchMagic)
	binary.LittleEndian.PutUint32(b[8:], h.Length)
	binary.LittleEndian.PutUint32(b[12:], h.Count)
	binary.LittleEndian.PutUint64(b[16:], h.Seq)
	binary.LittleEndian.PutUint64(b[24:], h.MinLSN)
	binary.LittleEndian.PutUint64(b[32:], h.MaxLSN)
	binary.LittleEndian.PutUint64(b[40:], h.Salt)
	h.CRC = crc32.Update(SeedCRC(h.Salt), Castagnoli, b[8:BatchHeaderLen+int(h.Length)])
	binary.LittleEndian.PutUint32(b[4:], h.CRC)
}

// EncodeEntries writes n entries (got through at) into b as a batch body
// (length, LSN, bytes each) and returns their LSN range and the bytes used.
func EncodeEntries(b []byte, n int, at func(int) (uint64, []byte)) (minLSN, maxLSN uint64, used int) {
	for i := range n {
		lsn, d := at(i)
		if i == 0 || lsn < minLSN {
			minLSN = lsn
		}
		if i == 0 || lsn > maxLSN {
			maxLSN = lsn
		}
		binary.LittleEndian.PutUint32(b[used:], uint32(len(d)))
		binary.LittleEndian.PutUint64(b[used+4:], lsn)
		copy(b[used+EntryHeaderLen:], d)
		used += EntryHeaderLen + len(d)
	}
	return minLSN, maxLSN, used
}

// Problem says why a batch does not continue the log ("" when it does).
type Problem string

const (
	OK        Problem = ""
	NoMagic   Problem = "no batch magic (end of written data)"
	BadSalt   Problem = "salt of another segment (stale bytes)"
	BadSeq    Problem = "unexpected sequence number"
	BadLength Problem = "length runs past the end of the file"
	BadCRC    Problem = "CRC mismatch"
	BadFill   Problem = "entries do not fill the batch exactly"
	BadLSN    Problem = "entry LSN outside the header's range"
)

// Reason names why a scan stopped, for people.
func (p Problem) Reason() string {
	if p == OK {
		return "end of file"
	}
	return string(p)
}

// Clean reports whether a log that ends for this reason ended as logs
// normally do: at the end of the file, at never-written blocks, or at stale
// bytes of a recycled file.
func (p Problem) Clean() bool { return p == OK || p == NoMagic || p == BadSalt }

// DecodeBatchHeader reads the fixed header fields of b (at least
// BatchHeaderLen bytes) and checks magic, salt and sequence. The CRC and the
// entries are checked by CheckBatch once the whole batch is in memory.
func DecodeBatchHeader(b []byte, salt, seq uint64) (BatchHeader, Problem) {
	var h BatchHeader
	if binary.LittleEndian.Uint32(b[0:]) != BatchMagic {
		return h, NoMagic
	}
	h.CRC = binary.LittleEndian.Uint32(b[4:])
	h.Length = binary.LittleEndian.Uint32(b[8:])
	h.Count = binary.LittleEndian.Uint32(b[12:])
	h.Seq = binary.LittleEndian.Uint64(b[16:])
	h.MinLSN = binary.LittleEndian.Uint64(b[24:])
	h.MaxLSN = binary.LittleEndian.Uint64(b[32:])
	h.Salt = binary.LittleEndian.Uint64(b[40:])
	if h.Salt != salt {
		return h, BadSalt
	}
	if h.Seq != seq {
		return h, BadSeq
	}
	if h.Length > MaxBatchPayload {
		return h, BadLength
	}
	return h, OK
}

// CheckBatch verifies the CRC of a whole batch b (header + entries, at least
// BatchHeaderLen+h.Length bytes) and that its entries fill it exactly, with
// LSNs inside the header's range. It calls nothing: a batch is handed out
// whole (WalkBatch) only once it is known good.
func CheckBatch(b []byte, h *BatchHeader) Problem {
	if crc32.Update(SeedCRC(h.Salt), Castagnoli, b[8:BatchHeaderLen+int(h.Length)]) != h.CRC {
		return BadCRC
	}
	if h.Encrypted {
		return OK // the entries are walked once decrypted
	}
	// The CRC matched, so the entries are what the writer put there; still,
	// never trust lengths blindly (a hostile file can carry a valid CRC).
	why, _ := WalkBatch(b, h, nil)
	return why
}

// WalkBatch walks the entries of batch b, calling fn (if not nil) for each.
// fn's data aliases b.
func WalkBatch(b []byte, h *BatchHeader, fn func(lsn uint64, data []byte) error) (Problem, error) {
	body := b[BatchHeaderLen : BatchHeaderLen+int(h.Length)]
	var n uint32
	for len(body) > 0 {
		if len(body) < EntryHeaderLen {
			return BadFill, nil
		}
		l := binary.LittleEndian.Uint32(body[0:])
		lsn := binary.LittleEndian.Uint64(body[4:])
		if uint64(l) > uint64(len(body)-EntryHeaderLen) {
			return BadFill, nil
		}
		if lsn < h.MinLSN || lsn > h.MaxLSN {
			return BadLSN, nil
		}
		n++
		if fn != nil {
			if err := fn(lsn, body[EntryHeaderLen:EntryHeaderLen+int(l)]); err != nil {
				return OK, err
			}
		}
		body = body[EntryHeaderLen+int(l):]
	}
	if n != h.Count {
		return BadFill, nil
	}
	return OK, nil
}

// ADLen is the size of an encrypted batch's associated data.
const ADLen = 8 + 8 + 8 + 4 + 8 + 8

// BatchAD writes the associated data of an encrypted batch into b (ADLen
// bytes): the segment's ID and salt, the batch's sequence number, entry
// count and LSN range, so a batch moved or altered fails to open.
func BatchAD(b []byte, segID, salt uint64, h *BatchHeader) []byte {
	b = b[:ADLen]
	binary.LittleEndian.PutUint64(b[0:], segID)
	binary.LittleEndian.PutUint64(b[8:], salt)
	binary.LittleEndian.PutUint64(b[16:], h.Seq)
	binary.LittleEndian.PutUint32(b[24:], h.Count)
	binary.LittleEndian.PutUint64(b[28:], h.MinLSN)
	binary.LittleEndian.PutUint64(b[36:], h.MaxLSN)
	return b
}
