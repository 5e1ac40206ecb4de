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
	// Meta is the LSN range and count of the data entries of the valid
	// batches: from their headers in layout 1; from the entries themselves
	// in layout 2 when they are walked (a plain segment, or keys given),
	// else from the headers, records counted too.
	Meta Meta
	// Approx says Meta counts records too: a layout 2 segment whose
	// entries were not walked (encrypted, no keys given).
	Approx bool
	Torn   int64  // end of the bytes past End that look like batches of this segment (0: none)
	Index  *Index // the segment's index, when ScanOptions.Index asks for it
}

// Decrypter decrypts the entries of an encrypted segment's batches (the
// engine's SegmentCipher is one).
type Decrypter interface {
	Decrypt(dst, ciphertext, ad []byte) ([]byte, error)
}

// Keys returns the Decrypter of the encrypted segment whose header is h,
// or an error (wrapping ErrDecrypt when the key is missing).
type Keys func(h *Header) (Decrypter, error)

// ScanOptions say what Scan does besides finding where the log ends.
type ScanOptions struct {
	// FindTorn looks past the end for bytes that belong to this segment (a
	// torn or cut-off tail), for recovery to keep a copy of them before
	// cutting them off.
	FindTorn bool
	// Keys gives the Decrypter of an encrypted segment, asked once, when
	// its entries are walked (Entry, or Index of a layout 2 segment).
	Keys Keys
	// Batch, when set, is called with the offset and header of every
	// valid batch, in write order.
	Batch func(off int64, h *BatchHeader) error
	// Entry, when set, is called for every entry of every valid batch, in
	// write order, with its batch's offset; a batch is checked whole
	// before any of its entries is handed out, so it is handed out
	// entirely or not at all. e.Data is valid only during the call.
	Entry func(off int64, e Entry) error
	// Index builds Result.Index: every batch's refs, by log, and its
	// records.
	Index bool
}

// Scan reads the batches of segment file f (read at alignment a) from its
// first block up to limit bytes and finds where the log ends.
func Scan(f vfs.File, a int, limit int64, o ScanOptions) (Result, error) {
	var res Result
	h, err := ReadHeader(f, a)
	if err != nil {
		return res, err
	}
	res.Header = h
	layout := h.Layout()
	walk := o.Entry != nil || o.Index && layout == Layout2
	var open Decrypter
	if h.Encrypted() && walk {
		if o.Keys != nil {
			if open, err = o.Keys(&h); err != nil {
				return res, err
			}
		}
		if open == nil {
			return res, fmt.Errorf("%w: segment %d is encrypted and no cipher is set (Config.Cipher)", ErrDecrypt, h.ID)
		}
	}
	if o.Index {
		res.Index = NewIndex(&h)
	}
	// Layout 2's data entries are counted from the entries whenever they
	// can be walked: a plain segment, or one whose key is at hand.
	walk = walk || layout == Layout2 && !h.Encrypted()
	res.Approx = layout == Layout2 && !walk
	s := &scanner{r: newReader(f, a, limit), h: h, sa: int(h.Align), limit: limit, open: open}
	defer s.r.close()
	var sum BatchLogs
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
		if o.Batch != nil {
			if err := o.Batch(off, &bh); err != nil {
				return res, err
			}
		}
		if err := s.batchEntries(b, &bh, off, walk, &sum, &res, o); err != nil {
			return res, err
		}
		res.Batches++
		seq++
		off += bh.Span(s.sa)
	}
	res.End = off
	if o.FindTorn && res.Why != OK {
		res.Torn, err = s.tornEnd(off)
	}
	return res, err
}

// batchEntries counts the checked batch b at off into res (its Meta, its
// Index) and hands its entries to o.Entry, walking them when walk says
// so (else from the header alone).
func (s *scanner) batchEntries(b []byte, bh *BatchHeader, off int64, walk bool, sum *BatchLogs, res *Result, o ScanOptions) error {
	span := bh.Span(s.sa)
	if !walk {
		res.Meta.Add(bh.MinLSN, bh.MaxLSN, uint64(bh.Count))
		if res.Index != nil {
			res.Index.Add(0, off, span, bh.MinLSN, bh.MaxLSN, uint64(bh.Count))
			res.Index.AddBatch()
		}
		return nil
	}
	sum.Reset()
	err := s.emit(b, bh, off, func(e Entry) error {
		if e.Kind == KindData {
			sum.Add(e)
			res.Meta.Add(e.LSN, e.LSN, 1)
		} else if res.Index != nil {
			res.Index.AddRecord(e.Log, off, e)
		}
		if o.Entry != nil {
			return o.Entry(off, e)
		}
		return nil
	})
	if err == nil && res.Index != nil {
		res.Index.AddLogs(off, span, sum)
	}
	return err
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
	bh.Encrypted, bh.Layout = s.h.Encrypted(), s.h.Layout()
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
func (s *scanner) emit(b []byte, bh *BatchHeader, off int64, fn func(Entry) error) error {
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
