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
	EntryHeaderLen  = 12        // layout 1: u32 length + u64 LSN
	EntryHeaderLen2 = 24        // layout 2: u32 length, u32 kind, u64 log, u64 LSN
	MaxBatchPayload = 1<<31 - 1 // bytes of entries in one batch (u32 length field, kept signed-safe)
)

// Layout is how a segment's entries are laid out: its header's format
// says which (Header.Layout).
type Layout uint8

const (
	// Layout1 (segment formats 1 and 2): | length u32 | LSN u64 | bytes |,
	// every entry a data entry of log 0.
	Layout1 Layout = 1
	// Layout2 (format 3): | length u32 | kind u32 | log u64 | LSN u64 |
	// bytes |: the entries of many logs, and their records, in one stream.
	Layout2 Layout = 2
)

// HeaderLen is the bytes before an entry's data.
func (l Layout) HeaderLen() int {
	if l == Layout2 {
		return EntryHeaderLen2
	}
	return EntryHeaderLen
}

// Kind is what an entry is: data, or a record of what its log's owner
// did (layout 2 only). A record's LSN is its argument; its data is empty
// but for a user record's.
type Kind uint32

// NB: never change these.
const (
	KindData         Kind = 0 // the log's data entry LSN
	KindDeleteBefore Kind = 1 // the log's entries below LSN are deleted
	KindTruncate     Kind = 2 // the log's entries above LSN in earlier batches are deleted
	KindTruncateAll  Kind = 3 // every entry of the log in earlier batches is deleted, and its deletions forgotten
	KindUser         Kind = 4 // the log's user record is data
	KindRewrite      Kind = 5 // the log's entries with LSN <= LSN in batches before the rewrite's first (Data, or this batch) are deleted: copied forward
	maxKind               = KindRewrite
)

// Entry is one entry of a batch.
type Entry struct {
	Kind Kind
	Log  uint64
	LSN  uint64
	Data []byte
}

// BatchHeader starts every batch, at an aligned offset of its segment.
// Count is the number of entries, records included; MinLSN and MaxLSN
// bound the data entries' LSNs (0 and 0 when there is none).
type BatchHeader struct {
	CRC       uint32
	Length    uint32 // bytes of entries after the header
	Count     uint32
	Seq       uint64 // 1 for the first batch of a segment, then +1
	MinLSN    uint64
	MaxLSN    uint64
	Salt      uint64
	Encrypted bool   // not encoded: the segment is encrypted, and so are the entries
	Layout    Layout // not encoded: the segment's entry layout
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
// in layout l and returns the data entries' LSN range and the bytes used.
// Layout 1 holds data entries of log 0 only.
func EncodeEntries(b []byte, l Layout, n int, at func(int) Entry) (minLSN, maxLSN uint64, used int) {
	data := 0
	for i := range n {
		e := at(i)
		if e.Kind == KindData {
			if data == 0 || e.LSN < minLSN {
				minLSN = e.LSN
			}
			if data == 0 || e.LSN > maxLSN {
				maxLSN = e.LSN
			}
			data++
		}
		binary.LittleEndian.PutUint32(b[used:], uint32(len(e.Data)))
		if l == Layout2 {
			binary.LittleEndian.PutUint32(b[used+4:], uint32(e.Kind))
			binary.LittleEndian.PutUint64(b[used+8:], e.Log)
			binary.LittleEndian.PutUint64(b[used+16:], e.LSN)
		} else {
			binary.LittleEndian.PutUint64(b[used+4:], e.LSN)
		}
		hl := l.HeaderLen()
		copy(b[used+hl:], e.Data)
		used += hl + len(e.Data)
	}
	return minLSN, maxLSN, used
}

// decodeEntry reads the entry at the start of body in layout l; ok is
// false when body does not hold one whole.
func decodeEntry(body []byte, l Layout) (e Entry, n int, ok bool) {
	hl := l.HeaderLen()
	if len(body) < hl {
		return e, 0, false
	}
	dl := binary.LittleEndian.Uint32(body[0:])
	if uint64(dl) > uint64(len(body)-hl) {
		return e, 0, false
	}
	if l == Layout2 {
		e.Kind = Kind(binary.LittleEndian.Uint32(body[4:]))
		e.Log = binary.LittleEndian.Uint64(body[8:])
		e.LSN = binary.LittleEndian.Uint64(body[16:])
	} else {
		e.LSN = binary.LittleEndian.Uint64(body[4:])
	}
	e.Data = body[hl : hl+int(dl)]
	return e, hl + int(dl), true
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

// WalkBatch walks the entries of batch b (in h's layout), calling fn (if
// not nil) for each. fn's data aliases b.
func WalkBatch(b []byte, h *BatchHeader, fn func(Entry) error) (Problem, error) {
	body := b[BatchHeaderLen : BatchHeaderLen+int(h.Length)]
	l := h.Layout
	if l == 0 {
		l = Layout1
	}
	var n uint32
	for len(body) > 0 {
		e, used, ok := decodeEntry(body, l)
		if !ok || e.Kind > maxKind {
			return BadFill, nil
		}
		if e.Kind == KindData && (e.LSN < h.MinLSN || e.LSN > h.MaxLSN) {
			return BadLSN, nil
		}
		n++
		if fn != nil {
			if err := fn(e); err != nil {
				return OK, err
			}
		}
		body = body[used:]
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
