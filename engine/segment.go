package engine

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
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

// reader reads a file through aligned windows and hands out contiguous
// byte ranges of it. It reads ahead: while the caller parses one window the
// next is already being read into a second buffer, so the disk never waits
// for the CPU. Each buffer has headroom before its window, where the tail of
// the previous window is copied when a batch straddles the two.
type reader struct {
	f    vfs.File
	a    int   // I/O alignment of the FS
	size int64 // bytes of the file that may be read
	win  int   // window size

	cur    []byte // the current window's bytes (a slice of curBuf)
	off    int64  // file offset of cur[0]
	curBuf []byte // the whole buffer cur lies in
	spare  []byte // the other whole buffer, when no read-ahead holds it
	ahead  *readAhead
}

// readAhead is one window being read in the background.
type readAhead struct {
	buf  []byte // the whole buffer; the window starts at headroom
	off  int64  // file offset of the window
	n    int
	err  error
	done chan struct{}
}

const readWindow = 4 << 20

func newReader(f vfs.File, a int, size int64) *reader {
	// A small file gets a window of its size: the buffers are allocated
	// (and zeroed) whole.
	win := int(min(int64(align.Up(readWindow, a)), max(align.Up64(size, a), int64(a))))
	return &reader{f: f, a: a, size: size, win: win}
}

// close waits for a read-ahead in flight: the buffer must not be reused
// while the kernel writes into it.
func (r *reader) close() {
	if r.ahead != nil {
		<-r.ahead.done
		r.spare = r.ahead.buf // free again: reused by the next read
		r.ahead = nil
	}
}

// at returns the n bytes at off, or fewer (possibly none) where the file
// ends. The bytes stay valid until the next call.
func (r *reader) at(off int64, n int) ([]byte, error) {
	if off >= r.size {
		return nil, nil
	}
	if rem := r.size - off; int64(n) > rem {
		n = int(rem)
	}
	if off >= r.off && off+int64(n) <= r.off+int64(len(r.cur)) {
		s := off - r.off
		return r.cur[s : s+int64(n)], nil
	}
	if b, ok, err := r.fromAhead(off, n); ok || err != nil {
		return b, err
	}
	// Cold start, a seek, or a range larger than a window: read it here.
	r.close()
	start := off &^ int64(r.a-1)
	want := max(r.win, align.Up(int(off-start)+n, r.a))
	want = int(min(int64(want), align.Up64(r.size-start, r.a)))
	buf := r.buffer(&r.spare, want)
	r.spare = nil
	got, err := r.f.ReadAt(buf[:want], start)
	if err != nil && !errors.Is(err, io.EOF) {
		r.spare = buf
		return nil, err
	}
	r.swap(buf[:got], start, buf)
	return r.slice(off, n), nil
}

// fromAhead serves [off, off+n) from the read-ahead window, stitching the
// current window's tail in front of it when the range straddles the two.
func (r *reader) fromAhead(off int64, n int) ([]byte, bool, error) {
	ra := r.ahead
	if ra == nil || off < r.off || off+int64(n) > ra.off+int64(r.win) {
		return nil, false, nil
	}
	tail := ra.off - off // bytes of the range still in the current window
	if tail > int64(r.win) {
		return nil, false, nil
	}
	<-ra.done
	r.ahead = nil
	if ra.err != nil && !errors.Is(ra.err, io.EOF) {
		r.spare = ra.buf
		return nil, true, ra.err
	}
	start, at := r.win, ra.off
	if tail > 0 {
		start, at = r.win-int(tail), off
		copy(ra.buf[start:r.win], r.cur[off-r.off:])
	}
	r.swap(ra.buf[start:r.win+ra.n], at, ra.buf)
	return r.slice(off, n), true, nil
}

// buffer returns *b, or a new buffer when *b cannot hold a window of
// headroom and n bytes, aligned.
func (r *reader) buffer(b *[]byte, n int) []byte {
	if cap(*b) < r.win+max(n, r.win) {
		*b = align.Alloc(r.win+max(n, r.win), r.a)
	}
	return (*b)[:cap(*b)]
}

// swap makes window, in the whole buffer full, the current one; the
// buffer it replaces becomes the spare (reused, never reallocated: a
// read-ahead of a 4 MiB window would otherwise wait for 8 MiB to be
// allocated and zeroed first).
func (r *reader) swap(window []byte, off int64, full []byte) {
	old := r.curBuf
	r.cur, r.off, r.curBuf = window, off, full
	if cap(old) > 0 {
		r.spare = old
	}
	r.prefetch()
}

func (r *reader) slice(off int64, n int) []byte {
	s := off - r.off
	if s >= int64(len(r.cur)) {
		return nil
	}
	return r.cur[s:min(s+int64(n), int64(len(r.cur)))]
}

// prefetch starts reading the window after the current one.
func (r *reader) prefetch() {
	next := r.off + int64(len(r.cur))
	if r.ahead != nil || next >= r.size || next%int64(r.a) != 0 {
		return
	}
	// cur lies in curBuf; spare is the other buffer (or empty).
	full := r.buffer(&r.spare, r.win)
	r.spare = nil
	want := int(min(int64(r.win), align.Up64(r.size-next, r.a)))
	ra := &readAhead{buf: full, off: next, done: make(chan struct{})}
	r.ahead = ra
	go func() {
		defer close(ra.done)
		ra.n, ra.err = r.f.ReadAt(full[r.win:r.win+want], next)
	}()
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
	return scanSegmentWith(f, a, limit, findTorn, nil, fn)
}

// scanSegmentWith is scanSegment with the cipher that opens an encrypted
// segment's batches (needed only when fn is not nil).
func scanSegmentWith(f vfs.File, a int, limit int64, findTorn bool, ciph Cipher, fn func(LSN, []byte) error) (scan, error) {
	var s scan
	h, err := readSegHeader(f, a)
	if err != nil {
		return s, err
	}
	s.hdr = h
	sealed := h.flags&segFlagEncrypted != 0
	if sealed && fn != nil && ciph == nil {
		return s, fmt.Errorf("%w: segment %d is encrypted and no Config.Cipher is set", ErrDecrypt, h.id)
	}
	var plain, ad []byte
	if sealed {
		ad = make([]byte, adLen)
	}
	r := newReader(f, a, limit)
	defer r.close()
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
		bh.sealed = sealed
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
		if fn != nil && sealed {
			// Open the whole batch and check its entries before handing any
			// out. The CRC held, so a failure here is a wrong key or bytes
			// altered on purpose, never a torn write: an error, not an end.
			plain = append(plain[:0], b[:batchHeaderLen]...)
			plain, err = ciph.Open(plain, b[batchHeaderLen:batchHeaderLen+int(bh.length)], batchAD(ad, h.id, h.salt, &bh))
			if err != nil {
				return s, fmt.Errorf("%w: segment %d batch %d at offset %d: %w", ErrDecrypt, h.id, bh.seq, off, err)
			}
			ph := bh
			ph.length, ph.sealed = uint32(len(plain)-batchHeaderLen), false
			if why, _ := walkBatch(plain, &ph, nil); why != batchOK {
				return s, fmt.Errorf("%w: segment %d batch %d at offset %d: %s after decryption", ErrCorrupt, h.id, bh.seq, off, why)
			}
			if _, err := walkBatch(plain, &ph, fn); err != nil {
				return s, err
			}
		} else if fn != nil {
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
