package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Reading by LSN: Read finds the batch through the index (index.go),
// reads it whole (the batch cache first, else through the backend into an
// aligned pooled buffer: a sealed segment through the page cache where the
// backend offers it, vfs.CachedReader; the active one as the backend
// writes, O_DIRECT on io_uring), checks it as the scan does (salt, CRC,
// entries; decrypts it in an encrypted segment) and copies the entry out.
// Invariants:
//
//   - the bytes a read returns come from a batch that passed the same checks
//     as Replay's, in the segment the ref names: a segment removed or
//     recycled since the lookup fails them (its salt differs) and the read
//     says ErrNotFound, never another batch's bytes;
//   - a sealed segment's index is trusted only as far as its batches agree:
//     a ref that leads to no batch of the segment, or to one with other
//     LSNs, while the segment is still there, makes the index rebuilt by a
//     scan and the read tried again once;
//   - what is deleted (below the first LSN, cut off a suffix) is never
//     returned: every entry found is checked against the log state.
//
// Memory: one open read-only handle per segment read (at most
// maxReadHandles).

// maxReadHandles bounds the read-only handles kept open for reads.
const maxReadHandles = 64

// readers are the read-only handles of the segments being read, apart from
// the writer's (a handle may be closed while the writer writes).
type readers struct {
	mu     sync.RWMutex // a read of a segment already open takes it shared
	m      map[uint64]*readHandle
	gone   map[uint64]bool // retired: never reopened
	closed bool
	shut   atomic.Bool // closed, for Read's check without the lock
}

type readHandle struct {
	mu     sync.RWMutex // readers hold it shared during ReadAt; Close takes it
	f      vfs.File
	cached bool              // opened through the page cache (a sealed segment)
	dec    segment.Decrypter // the segment's cipher (nil: it is plain)
}

// ErrNotFound is returned by Read for an LSN the log does not hold (never
// written, deleted, or in a segment removed by retention).
var ErrNotFound = errors.New("dwal: LSN not in the log")

// Read appends the bytes of the entry with LSN lsn to dst and returns the
// extended slice, or ErrNotFound (wrapped, with the LSN) when the log holds
// no live entry with that LSN. It is safe concurrently with writes and
// other reads, and sees every batch that has been acknowledged. It reads
// at most one segment index file (the first read in a sealed segment whose
// index is not cached) and one batch from disk.
//
// LSN order: lookups are binary searches while LSNs increase across
// batches (each batch's smallest LSN above the previous batch's largest, as
// when one writer appends in LSN order; inside a batch any order). Where a
// batch breaks that order, lookups try every segment, and every batch of
// a segment, whose range holds the LSN, newest first; duplicate LSNs then
// read as the newest.
func (c *Coordinator) Read(lsn LSN, dst []byte) ([]byte, error) { return c.readLog(0, lsn, dst) }

// readLog is Read of log.
func (c *Coordinator) readLog(log uint64, lsn LSN, dst []byte) ([]byte, error) {
	if c.rd.shut.Load() {
		return dst, ErrClosed
	}
	var out []byte
	err := c.underState(log, func(err error) bool { return errors.Is(err, ErrNotFound) }, func(st *segment.LogState) (err error) {
		out, err = c.read(log, st, lsn, dst)
		return err
	})
	return out, err
}

// underState runs lookup under log's state, taken before lookup reads the
// index: a state at most as new as the index's batches never deletes an
// entry whose newer copy (a rewrite's) the lookup cannot see yet. When
// again says of its outcome that it may be stale and the log's state
// changed meanwhile, it looks again: a batch it found may have gone with
// its segment, its entries moved. An index that lied is rebuilt
// (trustingIndexes).
func (c *Coordinator) underState(log uint64, again func(error) bool, lookup func(*segment.LogState) error) error {
	for {
		st := c.state.of(log)
		err := c.trustingIndexes(func() error { return lookup(st) })
		if !again(err) || c.state.of(log) == st {
			return err
		}
	}
}

// trustingIndexes runs lookup, and when a sealed segment's index led it
// to a batch the index does not describe, rebuilds that index from the
// segment and runs lookup once more.
func (c *Coordinator) trustingIndexes(lookup func() error) error {
	err := lookup()
	if lied, rerr := c.repairLie(err); !lied || rerr != nil {
		return rerr
	}
	return lookup()
}

// repairLie rebuilds, when err is an *indexLie, the index of the segment
// it names from the segment; it reports whether err was one (else it
// returns err as it is).
func (c *Coordinator) repairLie(err error) (bool, error) {
	var lie *indexLie
	if !errors.As(err, &lie) {
		return false, err
	}
	c.idx.cache.drop(lie.v.id)
	_, err = c.idx.cache.get(lie.v.id, func() (*segment.Index, error) { return c.loadIndex(lie.v, lie.why) })
	return true, err
}

// read is one lookup of readLog.
func (c *Coordinator) read(log uint64, st *segment.LogState, lsn LSN, dst []byte) ([]byte, error) {
	var one [1]segView
	var hits [4]int
	for _, v := range c.idx.segmentsFor(log, lsn, one[:0]) {
		refs, ordered, err := c.refsOf(v)
		if err != nil {
			return dst, err
		}
		for _, i := range refs.Find(uint64(lsn), ordered, hits[:0]) {
			out, ok, err := c.readIn(v, refs.At(i), st, lsn, dst)
			if err != nil || ok {
				return out, err
			}
		}
	}
	return dst, fmt.Errorf("%w: %d", ErrNotFound, lsn)
}

// indexLie is the error of a read whose ref (from segment v's index file)
// led to no batch of v's, or to one with other LSNs, while v is still in
// the log.
type indexLie struct {
	v   segView
	why string
}

func (e *indexLie) Error() string {
	return fmt.Sprintf("dwal: the index of %s does not describe its batches: %s", segment.Name(e.v.id), e.why)
}

// readIn looks for a live entry lsn in the batch ref of segment v.
func (c *Coordinator) readIn(v segView, ref segment.Ref, st *segment.LogState, lsn LSN, dst []byte) ([]byte, bool, error) {
	var data []byte
	var found bool
	err := c.withBatch(v, ref, func(body []byte) {
		data, found = segment.FindEntry(body, v.hdr.Layout(), v.log, uint64(lsn))
		if found {
			dst = append(dst, data...)
		}
	})
	if err != nil || !found {
		return dst, false, err
	}
	if st.Dead(segment.Pos{Seg: v.id, Off: ref.Off}, uint64(lsn)) {
		return dst[:len(dst)-len(data)], false, nil
	}
	return dst, true, nil
}

// withBatch calls fn with the plain entries of batch ref of segment v, from
// the cache or read from the segment. A batch the segment no longer holds
// (removed, recycled) calls nothing and returns nil; one a sealed
// segment's index file names wrongly gives an *indexLie.
func (c *Coordinator) withBatch(v segView, ref segment.Ref, fn func(body []byte)) error {
	if c.cache != nil && c.cache.find(v.id, ref.Off, fn) {
		return nil
	}
	b, dec, release, err := c.readBatch(v, ref)
	if err != nil || b == nil {
		return err
	}
	defer release()
	var scratch *[]byte
	var dst []byte
	if v.hdr.Encrypted() {
		scratch = c.pool.Get(int(ref.Span))
		defer c.pool.Put(scratch)
		dst = (*scratch)[:0]
	}
	plain, bh, why, err := segment.PlainBatch(b, &v.hdr, ref.Off, dec, dst)
	if err != nil {
		return fmt.Errorf("dwal: read %s: %w", segment.Name(v.id), err)
	}
	if why != segment.OK || bh.MinLSN > ref.MinLSN || bh.MaxLSN < ref.MaxLSN {
		// Not the batch indexed there: the segment was replaced, or (a
		// sealed one still in the log) its index file is wrong.
		if !v.active && c.idx.has(v.id, v.hdr.Salt) {
			return &indexLie{v: v, why: fmt.Sprintf("offset %d: %s, LSN %d..%d, indexed as %d..%d",
				ref.Off, why.Reason(), bh.MinLSN, bh.MaxLSN, ref.MinLSN, ref.MaxLSN)}
		}
		return nil
	}
	body := plain[segment.BatchHeaderLen:]
	if c.cache != nil {
		// The next reads are likely its neighbours (a follower catching up
		// reads index after index): one device read per batch, not entry.
		c.cache.put(v.id, ref.Off, body)
	}
	fn(body)
	return nil
}

// readBatch reads the aligned blocks of batch ref of segment v into a
// pooled buffer and returns the batch's bytes (nil when the segment is
// gone or ends before it), the segment's cipher (nil: it is plain) and the
// function that releases them.
func (c *Coordinator) readBatch(v segView, ref segment.Ref) ([]byte, segment.Decrypter, func(), error) {
	h, err := c.rd.get(c, v.id, !v.active, &v.hdr)
	if err != nil || h == nil {
		return nil, nil, nil, err
	}
	start := ref.Off &^ int64(c.align-1)
	bp := c.pool.Get(int(ref.Off-start) + int(ref.Span))
	release := func() { c.pool.Put(bp); h.mu.RUnlock() }
	got, err := h.f.ReadAt(*bp, start)
	if err != nil && !errors.Is(err, io.EOF) {
		release()
		return nil, nil, nil, fmt.Errorf("dwal: read %s at offset %d: %w", segment.Name(v.id), ref.Off, err)
	}
	if int64(got) < ref.Off-start+segment.BatchHeaderLen {
		b := (*bp)[:0]
		if !v.active {
			return b, h.dec, release, nil // too short: PlainBatch says so
		}
		release()
		return nil, nil, nil, nil
	}
	return (*bp)[ref.Off-start : got], h.dec, release, nil
}

// get returns segment id's read handle, its lock held shared (the caller
// releases it), or nil when the segment is gone. A sealed segment's handle
// reads through the page cache where the backend can (vfs.CachedReader).
// A new handle gets the segment's cipher, for the key hdr (its header)
// names: derived once per handle, not per read.
func (r *readers) get(c *Coordinator, id uint64, sealed bool, hdr *segment.Header) (*readHandle, error) {
	cr, cacheable := c.fs.(vfs.CachedReader)
	cached := sealed && cacheable
	r.mu.RLock()
	if h := r.m[id]; h != nil && h.cached == cached && !r.closed {
		// NB: h.mu before r.mu is released: closing h takes r.mu first.
		h.mu.RLock()
		r.mu.RUnlock()
		return h, nil
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if h := r.m[id]; h != nil {
		if h.cached == cached {
			h.mu.RLock()
			return h, nil
		}
		delete(r.m, id) // the active segment's handle, now that it is sealed
		h.close()
	}
	if r.gone[id] {
		return nil, nil
	}
	var f vfs.File
	var err error
	if cached {
		f, err = cr.OpenCached(segment.Name(id))
	} else {
		f, err = c.fs.Open(segment.Name(id), true)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dwal: read %s: %w", segment.Name(id), err)
	}
	dec, err := c.segmentCipher(hdr)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dwal: read %s: %w", segment.Name(id), err)
	}
	if r.m == nil {
		r.m = map[uint64]*readHandle{}
	}
	for old, oh := range r.m {
		if len(r.m) < maxReadHandles {
			break
		}
		delete(r.m, old)
		oh.close()
	}
	h := &readHandle{f: f, cached: cached, dec: dec}
	r.m[id] = h
	h.mu.RLock()
	return h, nil
}

// close closes h once no read holds it.
func (h *readHandle) close() {
	h.mu.Lock()
	h.f.Close()
	h.mu.Unlock()
}

// drop closes segment id's handle, if any, and keeps it from being
// reopened: the segment is being retired.
func (r *readers) drop(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone == nil {
		r.gone = map[uint64]bool{}
	}
	r.gone[id] = true
	if h := r.m[id]; h != nil {
		delete(r.m, id)
		h.close()
	}
}

// closeAll closes every handle; later reads get ErrClosed.
func (r *readers) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.shut.Store(true)
	for id, h := range r.m {
		delete(r.m, id)
		h.close()
	}
}
