package segment

import (
	"errors"
	"fmt"
	"io"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Result is what scanning one segment found.
type Result struct {
	Header  Header
	End     int64   // offset where the log ends (first batch that does not continue it)
	Why     Problem // why it ended there (OK when at the end of the readable range)
	Batches uint64  // valid batches
	Meta    Meta    // LSN range and entries of the valid batches
	Torn    int64   // end of the bytes past End that look like batches of this segment (0: none)
}

// Decrypter decrypts the entries of an encrypted segment's batches (the
// engine's SegmentCipher is one).
type Decrypter interface {
	Decrypt(dst, ciphertext, ad []byte) ([]byte, error)
}

// Keys returns the Decrypter of the encrypted segment whose header is h,
// or an error (wrapping ErrDecrypt when the key is missing).
type Keys func(h *Header) (Decrypter, error)

// Scan reads the batches of segment file f (read at alignment a) from its
// first block up to limit bytes and finds where the log ends. fn, if not
// nil, is called for every entry of every valid batch in write order; a
// batch is checked whole before any of its entries is handed out, so it is
// replayed entirely or not at all. fn's data is valid only during the call.
// keys gives the Decrypter of an encrypted segment (asked, once, only when
// fn is not nil). With findTorn Scan also looks past the end for bytes that belong to
// this segment (a torn or cut-off tail), for recovery to keep a copy of
// them before cutting them off.
func Scan(f vfs.File, a int, limit int64, findTorn bool, keys Keys, fn func(lsn uint64, data []byte) error) (Result, error) {
	return scan(f, a, limit, findTorn, keys, fn, nil)
}

// ScanBatches is Scan without the entries: it calls fn with the offset and
// header of every valid batch up to limit, in write order (the engine's
// LSN index is built from it), and finds where the log ends exactly as
// Scan does.
func ScanBatches(f vfs.File, a int, limit int64, fn func(off int64, h *BatchHeader) error) (Result, error) {
	return scan(f, a, limit, false, nil, nil, fn)
}

// ScanIndex is ScanBatches building the segment's index as it goes (every
// batch as log 0's: a segment of one log), up to limit; with findTorn it
// looks past the end as Scan does.
func ScanIndex(f vfs.File, a int, limit int64, findTorn bool) (Result, *Index, error) {
	h, err := ReadHeader(f, a)
	if err != nil {
		return Result{}, nil, err
	}
	x := NewIndex(&h)
	res, err := scan(f, a, limit, findTorn, nil, nil, func(off int64, bh *BatchHeader) error {
		x.Add(0, off, bh.Span(x.Align), bh.MinLSN, bh.MaxLSN, uint64(bh.Count))
		x.AddBatch()
		return nil
	})
	return res, x, err
}

func scan(f vfs.File, a int, limit int64, findTorn bool, keys Keys, fn func(lsn uint64, data []byte) error, onBatch func(int64, *BatchHeader) error) (Result, error) {
	var res Result
	h, err := ReadHeader(f, a)
	if err != nil {
		return res, err
	}
	res.Header = h
	var open Decrypter
	if h.Encrypted() && fn != nil {
		if keys != nil {
			if open, err = keys(&h); err != nil {
				return res, err
			}
		}
		if open == nil {
			return res, fmt.Errorf("%w: segment %d is encrypted and no cipher is set (Config.Cipher)", ErrDecrypt, h.ID)
		}
	}
	s := &scanner{r: newReader(f, a, limit), h: h, sa: int(h.Align), limit: limit, open: open}
	defer s.r.close()
	off, seq := int64(s.sa), uint64(1)
	for {
		b, bh, why, err := s.batch(off, seq)
		if err != nil {
			return res, err
		}
		if why != OK {
			res.Why = why
			break
		}
		if b == nil {
			break // the end of the readable range
		}
		if onBatch != nil {
			if err := onBatch(off, &bh); err != nil {
				return res, err
			}
		}
		if fn != nil {
			if err := s.emit(b, &bh, off, fn); err != nil {
				return res, err
			}
		}
		res.Meta.Add(bh.MinLSN, bh.MaxLSN, uint64(bh.Count))
		res.Batches++
		seq++
		off += bh.Span(s.sa)
	}
	res.End = off
	if findTorn && res.Why != OK {
		res.Torn, err = s.tornEnd(off)
	}
	return res, err
}

// scanner is Scan's state.
type scanner struct {
	r     *reader
	h     Header
	sa    int // the segment's alignment
	limit int64
	open  Decrypter
	plain []byte // a decrypted batch (encrypted segments), reused
	ad    []byte
}

// batch reads the batch at off and checks it whole: its bytes (valid until
// the next read), its header, and why it does not continue the log. b is
// nil with OK at the end of the readable range.
func (s *scanner) batch(off int64, seq uint64) (b []byte, bh BatchHeader, why Problem, err error) {
	hb, err := s.r.at(off, BatchHeaderLen)
	if err != nil {
		return nil, bh, OK, err
	}
	if len(hb) < BatchHeaderLen {
		if len(hb) > 0 {
			return nil, bh, BadLength, nil
		}
		return nil, bh, OK, nil
	}
	bh, why = DecodeBatchHeader(hb, s.h.Salt, seq)
	if why != OK {
		return nil, bh, why, nil
	}
	bh.Encrypted = s.h.Encrypted()
	if off+bh.Span(s.sa) > s.limit {
		return nil, bh, BadLength, nil
	}
	n := BatchHeaderLen + int(bh.Length)
	if b, err = s.r.at(off, n); err != nil {
		return nil, bh, OK, err
	}
	if len(b) < n {
		return nil, bh, BadLength, nil
	}
	return b, bh, CheckBatch(b, &bh), nil
}

// emit hands out the entries of the checked batch b at off. An encrypted
// batch is decrypted and its entries checked before any is handed out: the CRC held,
// so a failure here is a wrong key or bytes altered on purpose, never a
// torn write: an error, not an end of the log.
func (s *scanner) emit(b []byte, bh *BatchHeader, off int64, fn func(uint64, []byte) error) error {
	if !bh.Encrypted {
		_, err := WalkBatch(b, bh, fn)
		return err
	}
	if s.ad == nil {
		s.ad = make([]byte, ADLen)
	}
	var err error
	s.plain = append(s.plain[:0], b[:BatchHeaderLen]...)
	s.plain, err = s.open.Decrypt(s.plain, b[BatchHeaderLen:BatchHeaderLen+int(bh.Length)], BatchAD(s.ad, s.h.ID, s.h.Salt, bh))
	if err != nil {
		return fmt.Errorf("%w: segment %d batch %d at offset %d, encrypted under %s: %w", ErrDecrypt, s.h.ID, bh.Seq, off, s.h.KeyName(), err)
	}
	ph := *bh
	ph.Length, ph.Encrypted = uint32(len(s.plain)-BatchHeaderLen), false
	if why, _ := WalkBatch(s.plain, &ph, nil); why != OK {
		return fmt.Errorf("%w: segment %d batch %d at offset %d: %s after decryption", ErrCorrupt, s.h.ID, bh.Seq, off, why)
	}
	_, err = WalkBatch(s.plain, &ph, fn)
	return err
}

// tornEnd returns the end of the last batch past off whose header carries
// this segment's salt (0: none). Such bytes were written by this segment's
// writer and never made it whole (or follow a batch that did not).
func (s *scanner) tornEnd(off int64) (int64, error) {
	var torn int64
	for o := off; o+BatchHeaderLen <= s.limit; o += int64(s.sa) {
		hb, err := s.r.at(o, BatchHeaderLen)
		if err != nil {
			return torn, err
		}
		if len(hb) < BatchHeaderLen {
			break
		}
		bh, why := DecodeBatchHeader(hb, s.h.Salt, 0)
		if why == OK || why == BadSeq {
			torn = min(s.limit, o+bh.Span(s.sa))
		}
	}
	return torn, nil
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
