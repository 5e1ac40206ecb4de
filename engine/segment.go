package engine

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"dwal/engine/align"
	"dwal/engine/vfs"
)

// File names in a WAL directory.
const (
	segSuffix      = ".log"
	metaSuffix     = ".log.meta"
	brokenSuffix   = ".log.broken"
	fenceSuffix    = ".log.end"
	tmpSuffix      = ".tmp"
	preparedPrefix = "prepared-"
	lockName       = "LOCK"
)

func segName(id uint64) string    { return fmt.Sprintf("%06d%s", id, segSuffix) }
func metaName(id uint64) string   { return fmt.Sprintf("%06d%s", id, metaSuffix) }
func brokenName(id uint64) string { return fmt.Sprintf("%06d%s", id, brokenSuffix) }
func fenceName(id uint64) string  { return fmt.Sprintf("%06d%s", id, fenceSuffix) }

// parseID parses the digits of name before suffix ("000012.log" → 12).
func parseID(name, suffix string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || s == "" {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil
}

// reader reads a file through aligned chunks and hands out byte ranges of it.
type reader struct {
	f     vfs.File
	a     int   // I/O alignment of the FS
	size  int64 // bytes of the file that may be read
	buf   []byte
	off   int64 // file offset of buf[0]
	n     int   // valid bytes in buf
	chunk int
}

const readChunk = 1 << 20

func newReader(f vfs.File, a int, size int64) *reader {
	return &reader{f: f, a: a, size: size, chunk: align.Up(readChunk, a)}
}

// at returns the n bytes at off, or fewer (possibly none) where the file ends.
func (r *reader) at(off int64, n int) ([]byte, error) {
	if off >= r.size {
		return nil, nil
	}
	if rem := r.size - off; int64(n) > rem {
		n = int(rem)
	}
	if off >= r.off && off+int64(n) <= r.off+int64(r.n) {
		s := off - r.off
		return r.buf[s : s+int64(n)], nil
	}
	start := off &^ int64(r.a-1)
	want := max(r.chunk, align.Up(int(off-start)+n, r.a))
	if int64(want) > align.Up64(r.size-start, r.a) {
		want = int(align.Up64(r.size-start, r.a))
	}
	if cap(r.buf) < want {
		r.buf = align.Alloc(want, r.a)
	}
	r.buf = r.buf[:want]
	got, err := r.f.ReadAt(r.buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		r.n = 0
		return nil, err
	}
	r.off, r.n = start, got
	s := off - start
	if s >= int64(got) {
		return nil, nil
	}
	end := min(s+int64(n), int64(got))
	return r.buf[s:end], nil
}

// scan is what scanning one segment found.
type scan struct {
	hdr     segHeader
	end     int64        // offset where the log ends (first batch that does not continue it)
	why     batchProblem // why it ended there ("" when at the end of the readable range)
	batches uint64       // valid batches
	meta    SegmentMetadata
	torn    int64 // end of the bytes past end that look like batches of this segment (0: none)
}

// readSegHeader reads and checks the header block of f.
func readSegHeader(f vfs.File, a int) (segHeader, error) {
	b := align.Alloc(a, a)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return segHeader{}, err
	}
	return decodeSegHeader(b[:n])
}

// scanSegment reads the batches of a segment from its first block up to
// limit bytes, calling fn (if not nil) for every entry of every valid batch
// in write order, and finds where the log ends. With findTorn it also looks
// past the end for bytes that belong to this segment (a torn or cut-off
// tail), to keep a copy of them before they are cut.
func scanSegment(f vfs.File, a int, limit int64, findTorn bool, fn func(LSN, []byte) error) (scan, error) {
	var s scan
	h, err := readSegHeader(f, a)
	if err != nil {
		return s, err
	}
	s.hdr = h
	r := newReader(f, a, limit)
	sa := int(h.align)
	off := int64(sa)
	seq := uint64(1)
	for {
		hb, err := r.at(off, batchHeaderLen)
		if err != nil {
			return s, err
		}
		if len(hb) < batchHeaderLen {
			if len(hb) > 0 {
				s.why = batchLength
			}
			break
		}
		bh, why := decodeBatchHeader(hb, h.salt, seq)
		if why != batchOK {
			s.why = why
			break
		}
		span := bh.span(sa)
		if off+span > limit {
			s.why = batchLength
			break
		}
		b, err := r.at(off, batchHeaderLen+int(bh.length))
		if err != nil {
			return s, err
		}
		if len(b) < batchHeaderLen+int(bh.length) {
			s.why = batchLength
			break
		}
		// Check the whole batch before handing out any of its entries: a
		// batch is replayed entirely or not at all.
		if why := checkBatch(b, &bh); why != batchOK {
			s.why = why
			break
		}
		if fn != nil {
			if _, err := walkBatch(b, &bh, fn); err != nil {
				return s, err
			}
		}
		if s.meta.EntryCount == 0 || bh.minLSN < s.meta.MinLSN {
			s.meta.MinLSN = bh.minLSN
		}
		if s.meta.EntryCount == 0 || bh.maxLSN > s.meta.MaxLSN {
			s.meta.MaxLSN = bh.maxLSN
		}
		s.meta.EntryCount += uint64(bh.count)
		s.batches++
		seq++
		off += span
	}
	s.end = off
	if findTorn && s.why != "" {
		// Anything past the end that carries this segment's salt was written
		// by this segment's writer and never made it whole (or follows a
		// batch that did not): keep it for the operator.
		for o := off; o+batchHeaderLen <= limit; o += int64(sa) {
			hb, err := r.at(o, batchHeaderLen)
			if err != nil {
				return s, err
			}
			if len(hb) < batchHeaderLen {
				break
			}
			bh, why := decodeBatchHeader(hb, h.salt, 0)
			if why == batchOK || why == batchSeq {
				s.torn = min(limit, o+bh.span(sa))
			}
		}
	}
	return s, nil
}
