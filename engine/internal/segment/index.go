package segment

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"

	"github.com/dwal-project/dwal/engine/vfs"
)

// The segment index, NNNNNN.log.idx: where a sealed segment's batches are,
// by log and LSN, so that reading an entry of a sealed segment costs one
// read of the index and one of the batch instead of a scan of the
// segment. It is written when the segment is sealed (temp file, fsync,
// rename; durable with the next directory sync) and trusted only as far as
// the segment agrees: it must name the segment's ID, salt and alignment,
// agree with its .meta, and every batch read through it is checked as a
// scan checks it. A missing, torn, stale or lying index only costs a scan
// of that segment, which writes it again.
//
// Its unit is the batch: one ref per batch per log with entries in it (the
// batch's aligned offset and span, and that log's LSN range in it). A batch
// takes at least one aligned block, so the index holds at most one ref per
// few KiB of segment: sparse by construction.
//
// Its layout is drawn in the package doc. NB: never change
// it; a new layout gets a new IndexVersion.
const (
	IndexSuffix  = ".log.idx" // NNNNNN.log.idx: a sealed segment's index
	IndexMagic   = "DWALIDX\x00"
	IndexVersion = 1

	indexHeaderLen = 52 // magic, version, flags, align, seg ID, salt, end, batches, logs
	indexLogLen    = 40 // log ID, min, max, entries, refs, records
	indexRecLen    = 20 // kind, block, LSN, data length (then the data)
	indexCRCLen    = 4
	// RefLen is the size of one encoded ref: min LSN u64, max LSN u64,
	// first block u32, blocks u32.
	RefLen = 24
	// MaxIndexLen bounds an index file: a segment of 4 GiB of one-block
	// batches, with room for a log table.
	MaxIndexLen = 1 << 30
)

// IndexName is segment id's index file name.
func IndexName(id uint64) string { return fmt.Sprintf("%06d%s", id, IndexSuffix) }

// Ref locates one batch of a segment and one log's entries in it.
type Ref struct {
	MinLSN, MaxLSN uint64 // of the log's entries in the batch
	Off            int64  // aligned offset of the batch in its segment
	Span           int64  // aligned bytes of the batch
}

// Refs is a list of refs in their encoded form (RefLen bytes each), the
// form they take in the index file and in memory: a lookup decodes only
// the refs it looks at. Appending never changes the bytes of refs already
// there, so a copy of the slice taken before an append stays valid.
type Refs struct {
	b     []byte
	align int64
}

// NewRefs returns an empty list for a segment of alignment a.
func NewRefs(a int) Refs { return Refs{align: int64(a)} }

// Len is the number of refs.
func (r Refs) Len() int { return len(r.b) / RefLen }

// Bytes is the memory the refs take.
func (r Refs) Bytes() int { return cap(r.b) }

// At decodes ref i.
func (r Refs) At(i int) Ref {
	p := r.b[i*RefLen:]
	return Ref{
		MinLSN: binary.LittleEndian.Uint64(p[0:]),
		MaxLSN: binary.LittleEndian.Uint64(p[8:]),
		Off:    int64(binary.LittleEndian.Uint32(p[16:])) * r.align,
		Span:   int64(binary.LittleEndian.Uint32(p[20:])) * r.align,
	}
}

// Append adds ref x (its offset and span multiples of the alignment).
func (r *Refs) Append(x Ref) {
	r.b = binary.LittleEndian.AppendUint64(r.b, x.MinLSN)
	r.b = binary.LittleEndian.AppendUint64(r.b, x.MaxLSN)
	r.b = binary.LittleEndian.AppendUint32(r.b, uint32(x.Off/r.align))
	r.b = binary.LittleEndian.AppendUint32(r.b, uint32(x.Span/r.align))
}

// Ordered reports whether the refs' LSN ranges ascend without overlap:
// then Find is a binary search.
func (r Refs) Ordered() bool {
	for i := 1; i < r.Len(); i++ {
		if r.At(i).MinLSN <= r.At(i-1).MaxLSN {
			return false
		}
	}
	return true
}

// Find appends to out the indexes of the refs whose range holds lsn,
// newest first: one at most when ordered (Ordered's answer, which the
// caller keeps), else a scan from the end.
func (r Refs) Find(lsn uint64, ordered bool, out []int) []int {
	n := r.Len()
	if ordered {
		lo, hi := 0, n
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if r.At(m).MaxLSN < lsn {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < n && r.At(lo).MinLSN <= lsn {
			out = append(out, lo)
		}
		return out
	}
	for i := n - 1; i >= 0; i-- {
		if x := r.At(i); x.MinLSN <= lsn && lsn <= x.MaxLSN {
			out = append(out, i)
		}
	}
	return out
}

// IndexLog is one log's part of a segment index.
type IndexLog struct {
	Log     uint64
	Meta    Meta // its data entries' LSN range and count in the segment
	Refs    Refs
	Records []Record // its records in the segment, in write order
}

// Record is one record of a log (an entry of a kind other than data): what
// the log's owner deleted, or its user record, at the batch at Off.
type Record struct {
	Off  int64
	Kind Kind
	LSN  uint64
	Data []byte
}

// BatchLogs sums one batch's data entries up by log, for its refs.
type BatchLogs struct {
	logs []LogRange
	pos  map[uint64]int // logs' positions, once a batch holds many
}

// batchLogsScan: up to this many logs a batch's logs are found by a scan.
const batchLogsScan = 16

// add counts data entry e of r's log.
func (r *LogRange) add(e Entry) {
	r.MinLSN, r.MaxLSN = min(r.MinLSN, e.LSN), max(r.MaxLSN, e.LSN)
	r.Count++
	r.Bytes += uint64(EntryHeaderLen2 + len(e.Data))
}

// LogRange is one log's data entries in a batch.
type LogRange struct {
	Log            uint64
	MinLSN, MaxLSN uint64
	Count          uint64
	Bytes          uint64 // the entries' encoded bytes (headers and data; not in the index file)
}

// Reset empties b for the next batch.
func (b *BatchLogs) Reset() {
	b.logs = b.logs[:0]
	clear(b.pos)
}

// Add counts data entry e: a scan finds its log's sum while the batch
// holds few logs, a map once it holds more.
func (b *BatchLogs) Add(e Entry) {
	i := b.find(e.Log)
	if i < 0 {
		i = len(b.logs)
		b.logs = append(b.logs, LogRange{Log: e.Log, MinLSN: e.LSN, MaxLSN: e.LSN})
		if len(b.pos) > 0 {
			b.pos[e.Log] = i
		}
	}
	b.logs[i].add(e)
}

// find returns the position of log's sum, or -1.
func (b *BatchLogs) find(log uint64) int {
	n := len(b.logs)
	if n > 0 && b.logs[n-1].Log == log {
		return n - 1
	}
	if n < batchLogsScan {
		for i := range b.logs {
			if b.logs[i].Log == log {
				return i
			}
		}
		return -1
	}
	if len(b.pos) == 0 {
		if b.pos == nil {
			b.pos = map[uint64]int{}
		}
		for i, r := range b.logs {
			b.pos[r.Log] = i
		}
	}
	if i, ok := b.pos[log]; ok {
		return i
	}
	return -1
}

// Logs returns the logs counted, in the order first seen.
func (b *BatchLogs) Logs() []LogRange { return b.logs }

// Index is a segment's index.
type Index struct {
	SegID, Salt uint64
	Align       int
	End         int64  // where the segment's log ends
	Batches     uint64 // batches in the segment
	Logs        []IndexLog
	pos         map[uint64]int // Logs' positions by log ID (built at first lookup)
}

// NewIndex starts the index of segment h, empty.
func NewIndex(h *Header) *Index {
	return &Index{SegID: h.ID, Salt: h.Salt, Align: int(h.Align), End: int64(h.Align)}
}

// Add records a batch at off of span bytes holding count entries of log
// with LSNs minLSN..maxLSN. Batches are added in write order.
func (x *Index) Add(log uint64, off, span int64, minLSN, maxLSN, count uint64) {
	l := x.logOf(log)
	l.Meta.Add(minLSN, maxLSN, count)
	l.Refs.Append(Ref{MinLSN: minLSN, MaxLSN: maxLSN, Off: off, Span: span})
	x.End = max(x.End, off+span)
}

// AddBatch counts one batch (after Add for each of its logs).
func (x *Index) AddBatch() { x.Batches++ }

// AddLogs records the batch at off of span bytes whose data entries sum
// says, one ref per log, and counts it.
func (x *Index) AddLogs(off, span int64, sum *BatchLogs) {
	for _, r := range sum.logs {
		x.Add(r.Log, off, span, r.MinLSN, r.MaxLSN, r.Count)
	}
	x.End = max(x.End, off+span)
	x.AddBatch()
}

// AddRecord records e, a record of log in the batch at off.
func (x *Index) AddRecord(log uint64, off int64, e Entry) {
	l := x.logOf(log)
	l.Records = append(l.Records, Record{Off: off, Kind: e.Kind, LSN: e.LSN, Data: slices.Clone(e.Data)})
}

// logOf returns log's part, added in ID order when missing.
func (x *Index) logOf(log uint64) *IndexLog {
	x.indexLogs()
	if l, ok := x.Log(log); ok {
		return l
	}
	i, _ := slices.BinarySearchFunc(x.Logs, log, func(l IndexLog, id uint64) int { return cmp.Compare(l.Log, id) })
	x.Logs = slices.Insert(x.Logs, i, IndexLog{Log: log, Refs: NewRefs(x.Align)})
	for k := i; k < len(x.Logs); k++ {
		x.pos[x.Logs[k].Log] = k
	}
	return &x.Logs[i]
}

// indexLogs builds pos when it does not match Logs.
func (x *Index) indexLogs() {
	if x.pos != nil && len(x.pos) == len(x.Logs) {
		return
	}
	x.pos = make(map[uint64]int, len(x.Logs))
	for i := range x.Logs {
		x.pos[x.Logs[i].Log] = i
	}
}

// Log returns log's part; ok is false when the segment holds none of it.
// It changes nothing (readers share a sealed segment's index).
func (x *Index) Log(log uint64) (*IndexLog, bool) {
	if x.pos != nil && len(x.pos) == len(x.Logs) {
		if i, ok := x.pos[log]; ok {
			return &x.Logs[i], true
		}
		return nil, false
	}
	for i := range x.Logs {
		if x.Logs[i].Log == log {
			return &x.Logs[i], true
		}
	}
	return nil, false
}

// Meta is the LSN range and count of all the segment's entries (what its
// .meta holds).
func (x *Index) Meta() Meta {
	var m Meta
	for _, l := range x.Logs {
		if l.Meta.Entries > 0 {
			m.Add(l.Meta.MinLSN, l.Meta.MaxLSN, l.Meta.Entries)
		}
	}
	return m
}

// Encode returns the index file's bytes.
func (x *Index) Encode() []byte {
	refs := 0
	for _, l := range x.Logs {
		refs += len(l.Refs.b)
		for _, r := range l.Records {
			refs += indexRecLen + len(r.Data)
		}
	}
	b := make([]byte, indexHeaderLen, indexHeaderLen+len(x.Logs)*indexLogLen+2*indexCRCLen+refs)
	copy(b, IndexMagic)
	binary.LittleEndian.PutUint16(b[8:], IndexVersion)
	binary.LittleEndian.PutUint32(b[12:], uint32(x.Align))
	binary.LittleEndian.PutUint64(b[16:], x.SegID)
	binary.LittleEndian.PutUint64(b[24:], x.Salt)
	binary.LittleEndian.PutUint64(b[32:], uint64(x.End))
	binary.LittleEndian.PutUint64(b[40:], x.Batches)
	binary.LittleEndian.PutUint32(b[48:], uint32(len(x.Logs)))
	for _, l := range x.Logs {
		b = binary.LittleEndian.AppendUint64(b, l.Log)
		b = binary.LittleEndian.AppendUint64(b, l.Meta.MinLSN)
		b = binary.LittleEndian.AppendUint64(b, l.Meta.MaxLSN)
		b = binary.LittleEndian.AppendUint64(b, l.Meta.Entries)
		b = binary.LittleEndian.AppendUint32(b, uint32(l.Refs.Len()))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Records)))
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, Castagnoli))
	start := len(b)
	for _, l := range x.Logs {
		b = append(b, l.Refs.b...)
	}
	for _, l := range x.Logs {
		for _, r := range l.Records {
			b = binary.LittleEndian.AppendUint32(b, uint32(r.Kind))
			b = binary.LittleEndian.AppendUint32(b, uint32(r.Off/int64(x.Align)))
			b = binary.LittleEndian.AppendUint64(b, r.LSN)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Data)))
			b = append(b, r.Data...)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], Castagnoli))
}

// errIndex is the error of an index file that is not a whole, consistent
// one; it wraps ErrCorrupt.
func errIndex(format string, args ...any) error {
	return fmt.Errorf("%w: index: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// DecodeIndex parses an index file and checks that it is whole and
// consistent in itself: CRCs, counts that fill it exactly, refs in write
// order inside the segment's log, each log's range and count agreeing with
// its refs. Whether it is this segment's is Matches's question. Its refs
// alias b.
func DecodeIndex(b []byte) (*Index, error) {
	if len(b) < indexHeaderLen+2*indexCRCLen || string(b[:8]) != IndexMagic {
		return nil, errIndex("not an index file (%d bytes)", len(b))
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != IndexVersion {
		return nil, errIndex("version %d, this build reads %d", v, IndexVersion)
	}
	x := &Index{
		Align:   int(binary.LittleEndian.Uint32(b[12:])),
		SegID:   binary.LittleEndian.Uint64(b[16:]),
		Salt:    binary.LittleEndian.Uint64(b[24:]),
		End:     int64(binary.LittleEndian.Uint64(b[32:])),
		Batches: binary.LittleEndian.Uint64(b[40:]),
	}
	logs := int(binary.LittleEndian.Uint32(b[48:]))
	if x.Align < 512 || x.Align&(x.Align-1) != 0 || x.Align > 1<<20 || logs > (len(b)-indexHeaderLen)/indexLogLen {
		return nil, errIndex("alignment %d, %d logs in %d bytes", x.Align, logs, len(b))
	}
	tableEnd := indexHeaderLen + logs*indexLogLen
	if len(b) < tableEnd+2*indexCRCLen {
		return nil, errIndex("%d logs in %d bytes", logs, len(b))
	}
	if binary.LittleEndian.Uint32(b[tableEnd:]) != crc32.Checksum(b[:tableEnd], Castagnoli) {
		return nil, errIndex("header CRC mismatch")
	}
	counts, err := x.decodeLogs(b[indexHeaderLen:tableEnd], logs)
	if err != nil {
		return nil, err
	}
	refs := 0
	for _, n := range counts {
		refs += n.refs
	}
	body := b[tableEnd+indexCRCLen:]
	if len(body) < refs*RefLen+indexCRCLen {
		return nil, errIndex("%d refs in %d bytes", refs, len(body))
	}
	body, sum := body[:len(body)-indexCRCLen], binary.LittleEndian.Uint32(body[len(body)-indexCRCLen:])
	if sum != crc32.Checksum(body, Castagnoli) {
		return nil, errIndex("refs CRC mismatch")
	}
	for i, n := range counts {
		l := &x.Logs[i]
		l.Refs = Refs{b: body[: n.refs*RefLen : n.refs*RefLen], align: int64(x.Align)}
		body = body[n.refs*RefLen:]
	}
	for i, n := range counts {
		if body, err = x.decodeRecords(&x.Logs[i], n.records, body); err != nil {
			return nil, err
		}
		if err := x.checkLog(&x.Logs[i]); err != nil {
			return nil, err
		}
	}
	if len(body) != 0 {
		return nil, errIndex("%d bytes after the last record", len(body))
	}
	x.indexLogs()
	return x, nil
}

// decodeRecords reads n records of log l from the start of p and returns
// what follows them.
func (x *Index) decodeRecords(l *IndexLog, n int, p []byte) ([]byte, error) {
	for range n {
		if len(p) < indexRecLen {
			return nil, errIndex("log %d: a record runs past the end", l.Log)
		}
		r := Record{Kind: Kind(binary.LittleEndian.Uint32(p)), Off: int64(binary.LittleEndian.Uint32(p[4:])) * int64(x.Align),
			LSN: binary.LittleEndian.Uint64(p[8:])}
		dl := int(binary.LittleEndian.Uint32(p[16:]))
		p = p[indexRecLen:]
		if r.Kind == KindData || r.Kind > maxKind || dl > len(p) || dl > MaxStateUser {
			return nil, errIndex("log %d: record of kind %d with %d bytes", l.Log, r.Kind, dl)
		}
		r.Data = p[:dl:dl]
		p = p[dl:]
		l.Records = append(l.Records, r)
	}
	return p, nil
}

// logCounts is how many refs and records a log of the table has.
type logCounts struct{ refs, records int }

// decodeLogs reads the log table into x.Logs (without their refs and
// records) and returns each log's counts.
func (x *Index) decodeLogs(t []byte, logs int) ([]logCounts, error) {
	counts := make([]logCounts, 0, logs)
	for i := range logs {
		p := t[i*indexLogLen:]
		l := IndexLog{Log: binary.LittleEndian.Uint64(p[0:])}
		l.Meta = Meta{MinLSN: binary.LittleEndian.Uint64(p[8:]), MaxLSN: binary.LittleEndian.Uint64(p[16:]),
			Entries: binary.LittleEndian.Uint64(p[24:])}
		n := int(binary.LittleEndian.Uint32(p[32:]))
		rec := int(binary.LittleEndian.Uint32(p[36:]))
		if i > 0 && l.Log <= x.Logs[i-1].Log {
			return nil, errIndex("log %d listed after log %d", l.Log, x.Logs[i-1].Log)
		}
		if n == 0 && (l.Meta != Meta{} || rec == 0) || uint64(n) > l.Meta.Entries || n > MaxIndexLen/RefLen || rec > MaxIndexLen/indexRecLen {
			return nil, errIndex("log %d: %d refs and %d records for %d entries", l.Log, n, rec, l.Meta.Entries)
		}
		x.Logs = append(x.Logs, l)
		counts = append(counts, logCounts{n, rec})
	}
	return counts, nil
}

// checkLog checks one log's refs against each other, the log's range and
// the segment's end.
func (x *Index) checkLog(l *IndexLog) error {
	var m Meta
	prevEnd := int64(x.Align) // the header block
	for i := range l.Refs.Len() {
		r := l.Refs.At(i)
		if r.MinLSN > r.MaxLSN || r.Span <= 0 || r.Off < prevEnd || r.Off+r.Span > x.End {
			return errIndex("log %d ref %d: LSN %d..%d, offset %d+%d (log ends at %d)", l.Log, i, r.MinLSN, r.MaxLSN, r.Off, r.Span, x.End)
		}
		prevEnd = r.Off + r.Span
		m.Add(r.MinLSN, r.MaxLSN, 1)
	}
	if m.MinLSN != l.Meta.MinLSN || m.MaxLSN != l.Meta.MaxLSN {
		return errIndex("log %d: refs span LSN %d..%d, the log table says %d..%d", l.Log, m.MinLSN, m.MaxLSN, l.Meta.MinLSN, l.Meta.MaxLSN)
	}
	prevRec := int64(0)
	for i, r := range l.Records {
		if r.Off < int64(x.Align) || r.Off >= x.End || r.Off < prevRec {
			return errIndex("log %d record %d at offset %d (log ends at %d)", l.Log, i, r.Off, x.End)
		}
		prevRec = r.Off
	}
	return nil
}

// Matches checks that x is the index of segment h whose .meta is m (ok
// false: none): same ID, salt and alignment, the same entries.
func (x *Index) Matches(h *Header, m Meta, ok bool) error {
	if x.SegID != h.ID || x.Salt != h.Salt || x.Align != int(h.Align) {
		return errIndex("of segment %d (salt %x, alignment %d), not of segment %d (salt %x, alignment %d)",
			x.SegID, x.Salt, x.Align, h.ID, h.Salt, h.Align)
	}
	if ok && x.Meta() != m {
		xm := x.Meta()
		return errIndex("%d entries, LSN %d..%d; the .meta says %d entries, LSN %d..%d",
			xm.Entries, xm.MinLSN, xm.MaxLSN, m.Entries, m.MinLSN, m.MaxLSN)
	}
	return nil
}

// ReadIndex reads and decodes segment id's index; ok is false when there is
// none. A file that does not decode gives an error wrapping ErrCorrupt.
func ReadIndex(fsys vfs.FS, id uint64) (x *Index, ok bool, err error) {
	b, err := fsys.ReadFile(IndexName(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", IndexName(id), err)
	}
	if len(b) > MaxIndexLen {
		return nil, false, errIndex("%s is %d bytes", IndexName(id), len(b))
	}
	x, err = DecodeIndex(b)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", IndexName(id), err)
	}
	return x, true, nil
}
