package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// The LSN index: reading one entry by its LSN. It is batch-level: one
// batchRef per batch (its segment, offset, span and live LSN range), built
// by one ScanBatches pass over the segments at the first call that needs it
// (Read, Bounds, DeleteBefore, TruncateAfter), then kept while writing (a
// batch is added when it settles). A read finds the batch, reads it whole
// through the backend (an aligned pooled buffer, vfs.File.ReadAt: O_DIRECT
// on io_uring), checks it as the scan does (salt, CRC, entries; opens it
// in an encrypted segment) and copies the entry out. Invariants:
//
//   - refs are in write order; a ref is added only once its batch settled
//     successfully, so a read never sees a failed batch nor one in flight;
//   - a ref's [min, max] holds every live entry of its batch (deletions
//     narrow it; loose marks a narrowed range that may be wider than the
//     live entries, made exact when it bounds the log);
//   - ordered holds when every ref's min is above the previous ref's max:
//     then a lookup is a binary search, else a scan of every ref, newest
//     first (the first live entry found wins);
//   - the bytes a read returns come from a batch that passed the same checks
//     as Replay's, in the segment the ref names: a segment removed or
//     recycled since the lookup fails them (its salt differs) and the read
//     says ErrNotFound, never another batch's bytes;
//   - what is deleted (below the first LSN, cut off a suffix) is never
//     returned: every entry found is checked against the log state.
//
// Memory: 40 bytes per batch (so 40 MB per million entries written one per
// batch, under 1 MB per million when raft's StoreLogs or group commit
// batches 64 at once), plus one open read-only handle per segment read
// (at most maxReadHandles).

// batchRef locates one batch.
type batchRef struct {
	seg      uint64
	off      int64
	min, max LSN
	span     uint32
	loose    bool // min..max was narrowed by a deletion: the live range may be tighter
}

// clip narrows r's range to what st leaves live and reports whether
// anything may be; a narrowed range is marked loose.
func (r *batchRef) clip(st *segment.State) bool {
	lo, hi, ok := st.Clip(r.seg, uint64(r.min), uint64(r.max))
	if !ok {
		return false
	}
	if LSN(lo) != r.min || LSN(hi) != r.max {
		r.min, r.max, r.loose = LSN(lo), LSN(hi), true
	}
	return true
}

// lsnIndex is the Coordinator's index; its own lock, never held during
// I/O. Lock order: Coordinator.mu, then lsnIndex.mu, then readers.mu.
type lsnIndex struct {
	mu      sync.RWMutex
	built   bool
	refs    []batchRef
	ordered bool
	st      segment.State // the durable deletions, as last written
}

// maxReadHandles bounds the read-only handles kept open for reads.
const maxReadHandles = 64

// readers are the read-only handles of the segments being read, apart from
// the writer's (a handle may be closed while the writer writes).
type readers struct {
	mu     sync.Mutex
	m      map[uint64]*readHandle
	gone   map[uint64]bool // retired: never reopened
	closed bool
	shut   atomic.Bool // closed, for Read's check without the lock
}

type readHandle struct {
	mu  sync.RWMutex // readers hold it shared during ReadAt; Close takes it
	f   vfs.File
	hdr segment.Header
	dec segment.Decrypter // the segment's cipher (nil: it is plain)
}

// ErrNotFound is returned by Read for an LSN the log does not hold (never
// written, deleted, or in a segment removed by retention).
var ErrNotFound = errors.New("dwal: LSN not in the log")

// Read appends the bytes of the entry with LSN lsn to dst and returns the
// extended slice, or ErrNotFound (wrapped, with the LSN) when the log holds
// no live entry with that LSN. It is safe concurrently with writes and
// other reads, and sees every batch that has been acknowledged. The first
// call that needs the index builds it (see Bounds).
//
// LSN order: lookups are O(log batches) while LSNs increase across batches
// (each batch's smallest LSN above the previous batch's largest, as when
// one writer appends in LSN order; inside a batch any order). Where a
// batch breaks that order, lookups scan every batch, newest first, until
// a deletion removes the disorder; duplicate LSNs then read as the newest.
func (c *Coordinator) Read(lsn LSN, dst []byte) ([]byte, error) {
	if c.rd.shut.Load() {
		return dst, ErrClosed
	}
	if err := c.ensureIndex(); err != nil {
		return dst, err
	}
	ix := &c.idx
	ix.mu.RLock()
	var one [1]batchRef
	cands := ix.lookup(lsn, one[:0])
	ix.mu.RUnlock()
	for _, ref := range cands {
		out, ok, err := c.readIn(ref, lsn, dst)
		if err != nil || ok {
			return out, err
		}
	}
	return dst, fmt.Errorf("%w: %d", ErrNotFound, lsn)
}

// lookup appends to out the refs whose range holds lsn, newest first (one
// at most while ordered). Under ix.mu.
func (ix *lsnIndex) lookup(lsn LSN, out []batchRef) []batchRef {
	if ix.ordered {
		i, _ := slices.BinarySearchFunc(ix.refs, lsn, func(r batchRef, l LSN) int {
			switch {
			case r.max < l:
				return -1
			case r.min > l:
				return 1
			}
			return 0
		})
		if i < len(ix.refs) && ix.refs[i].min <= lsn && lsn <= ix.refs[i].max {
			out = append(out, ix.refs[i])
		}
		return out
	}
	for i := len(ix.refs) - 1; i >= 0; i-- {
		if r := ix.refs[i]; r.min <= lsn && lsn <= r.max {
			out = append(out, r)
		}
	}
	return out
}

// readIn looks for a live entry lsn in the batch ref names.
func (c *Coordinator) readIn(ref batchRef, lsn LSN, dst []byte) ([]byte, bool, error) {
	var data []byte
	var found bool
	err := c.withBatch(ref, func(body []byte) {
		data, found = segment.FindEntry(body, uint64(lsn))
		if found {
			dst = append(dst, data...)
		}
	})
	if err != nil || !found {
		return dst, false, err
	}
	c.idx.mu.RLock()
	dead := c.idx.st.Dead(ref.seg, uint64(lsn))
	c.idx.mu.RUnlock()
	if dead {
		return dst[:len(dst)-len(data)], false, nil
	}
	return dst, true, nil
}

// withBatch calls fn with the plain entries of the batch ref names, from
// the cache or read from its segment. A batch the segment no longer holds
// (removed, recycled) calls nothing and returns nil.
func (c *Coordinator) withBatch(ref batchRef, fn func(body []byte)) error {
	if c.cache != nil && c.cache.find(ref.seg, ref.off, fn) {
		return nil
	}
	h, err := c.rd.get(c, ref.seg)
	if err != nil || h == nil {
		return err
	}
	defer h.mu.RUnlock()
	start := ref.off &^ int64(c.align-1)
	n := int(ref.off-start) + int(ref.span)
	bp := c.pool.Get(n)
	defer c.pool.Put(bp)
	buf := *bp
	got, err := h.f.ReadAt(buf, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("dwal: read %s at offset %d: %w", segment.Name(ref.seg), ref.off, err)
	}
	if int64(got) < ref.off-start {
		return nil
	}
	b := buf[ref.off-start : got]
	var scratch *[]byte
	if h.hdr.Encrypted() {
		scratch = c.pool.Get(int(ref.span))
		defer c.pool.Put(scratch)
	}
	var dst []byte
	if scratch != nil {
		dst = (*scratch)[:0]
	}
	plain, bh, why, err := segment.PlainBatch(b, &h.hdr, ref.off, h.dec, dst)
	if err != nil {
		return fmt.Errorf("dwal: read %s: %w", segment.Name(ref.seg), err)
	}
	if why != segment.OK || LSN(bh.MinLSN) > ref.min || LSN(bh.MaxLSN) < ref.max {
		return nil // not the batch indexed there: the segment was replaced
	}
	body := plain[segment.BatchHeaderLen:]
	if c.cache != nil {
		// The next reads are likely its neighbours (a follower catching up
		// reads index after index): one device read per batch, not entry.
		c.cache.put(ref.seg, ref.off, body)
	}
	fn(body)
	return nil
}

// get returns segment id's read handle, its lock held shared (the caller
// releases it), or nil when the segment is gone.
func (r *readers) get(c *Coordinator, id uint64) (*readHandle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if h := r.m[id]; h != nil {
		h.mu.RLock()
		return h, nil
	}
	if r.gone[id] {
		return nil, nil
	}
	f, err := c.fs.Open(segment.Name(id), true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dwal: read %s: %w", segment.Name(id), err)
	}
	hdr, err := segment.ReadHeader(f, c.align)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dwal: read %s: %w", segment.Name(id), err)
	}
	dec, err := c.segmentCipher(&hdr)
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
	h := &readHandle{f: f, hdr: hdr, dec: dec}
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

// ensureIndex builds the index if it is not built yet: one ScanBatches
// pass over every segment, under mu, so no batch settles and no segment
// rotates meanwhile (writers wait for it, once).
func (c *Coordinator) ensureIndex() error {
	ix := &c.idx
	ix.mu.RLock()
	built := ix.built
	ix.mu.RUnlock()
	if built {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ensureIndexLocked()
}

// ensureIndexLocked is ensureIndex under mu.
func (c *Coordinator) ensureIndexLocked() error {
	if c.closed {
		return ErrClosed
	}
	ix := &c.idx
	if ix.built {
		return nil
	}
	ids, err := c.segmentIDs()
	if err != nil {
		return fmt.Errorf("dwal: index: %w", err)
	}
	st := ix.st
	var refs []batchRef
	for _, id := range ids {
		if st.Covers(id, segment.Meta{}, false) == segment.DeletesAll {
			continue
		}
		if refs, err = c.indexSegment(id, refs, &st); err != nil {
			return err
		}
	}
	ix.mu.Lock()
	ix.refs, ix.built = refs, true
	ix.reorder()
	ix.mu.Unlock()
	return c.tightenBounds()
}

// indexSegment appends the refs of segment id's live batches to refs.
func (c *Coordinator) indexSegment(id uint64, refs []batchRef, st *segment.State) ([]batchRef, error) {
	name := segment.Name(id)
	f, err := c.fs.Open(name, true)
	if err != nil {
		return refs, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	defer f.Close()
	hdr, err := segment.ReadHeader(f, c.align)
	if err != nil {
		return refs, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	sa := int(hdr.Align)
	limit, isActive := int64(0), false
	if a := c.act; a != nil && a.id == id {
		limit, isActive = a.settled, true
	} else if limit, err = f.Size(); err != nil {
		return refs, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	res, err := segment.ScanBatches(f, c.align, limit, func(off int64, h *segment.BatchHeader) error {
		ref := batchRef{seg: id, off: off, min: LSN(h.MinLSN), max: LSN(h.MaxLSN), span: uint32(h.Span(sa))}
		if ref.clip(st) {
			refs = append(refs, ref)
		}
		return nil
	})
	if err != nil {
		return refs, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	if !isActive {
		if m, ok := c.ReadSegmentMetadata(id); ok && metadataOf(res.Meta) != m {
			return refs, segment.MetaMismatch(name, res, m.format())
		}
	}
	return refs, nil
}

// reorder recomputes ordered (under ix.mu, held for writing).
func (ix *lsnIndex) reorder() {
	ix.ordered = true
	for i := 1; i < len(ix.refs); i++ {
		if ix.refs[i].min <= ix.refs[i-1].max {
			ix.ordered = false
			return
		}
	}
}

// indexBatch adds settled batch f to the index (under mu).
func (c *Coordinator) indexBatch(f *flight) {
	ix := &c.idx
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.built {
		return
	}
	ref := batchRef{seg: f.a.id, off: f.off, min: f.minLSN, max: f.maxLSN, span: uint32(f.span)}
	if !ref.clip(&ix.st) {
		return
	}
	if n := len(ix.refs); n > 0 && ref.min <= ix.refs[n-1].max {
		ix.ordered = false
	}
	ix.refs = append(ix.refs, ref)
}

// unindexSegment drops segment id from the index and closes its read
// handle (under mu): it is being retired.
func (c *Coordinator) unindexSegment(id uint64) {
	ix := &c.idx
	ix.mu.Lock()
	ix.refs = slices.DeleteFunc(ix.refs, func(r batchRef) bool { return r.seg == id })
	if !ix.ordered {
		ix.reorder()
	}
	ix.mu.Unlock()
	c.rd.drop(id)
}

// Bounds returns the smallest and largest LSN of the live entries (ok
// false when there is none): exact, whatever has been deleted. The first
// call that needs the index (this, Read, DeleteBefore, TruncateAfter)
// builds it by reading every segment once, at the disk's sequential speed;
// writes wait for that once. A sealed segment that disagrees with its
// .meta fails it with ErrCorrupt naming the file and offset.
func (c *Coordinator) Bounds() (first, last LSN, ok bool, err error) {
	if err := c.ensureIndex(); err != nil {
		return 0, 0, false, err
	}
	if err := c.tightenBounds(); err != nil {
		return 0, 0, false, err
	}
	ix := &c.idx
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if len(ix.refs) == 0 {
		return 0, 0, false, nil
	}
	if ix.ordered {
		return ix.refs[0].min, ix.refs[len(ix.refs)-1].max, true, nil
	}
	first, last = ix.refs[0].min, ix.refs[0].max
	for _, r := range ix.refs[1:] {
		first, last = min(first, r.min), max(last, r.max)
	}
	return first, last, true, nil
}

// tightenBounds makes exact the ranges of the loose refs that bound the
// log (the first and last while ordered, every loose one otherwise) by
// reading their batches; a ref left with no live entry goes.
func (c *Coordinator) tightenBounds() error {
	ix := &c.idx
	for {
		ix.mu.RLock()
		var ref batchRef
		found := false
		for i, r := range ix.refs {
			if r.loose && (!ix.ordered || i == 0 || i == len(ix.refs)-1) {
				ref, found = r, true
				break
			}
		}
		st := ix.st
		ix.mu.RUnlock()
		if !found {
			return nil
		}
		lo, hi, any := LSN(0), LSN(0), false
		err := c.withBatch(ref, func(body []byte) {
			segment.EachEntry(body, func(l uint64, _ []byte) {
				lsn := LSN(l)
				if lsn < ref.min || lsn > ref.max || st.Dead(ref.seg, l) {
					return
				}
				if !any || lsn < lo {
					lo = lsn
				}
				if !any || lsn > hi {
					hi = lsn
				}
				any = true
			})
		})
		if err != nil {
			return err
		}
		ix.mu.Lock()
		for i, r := range ix.refs {
			if r.seg == ref.seg && r.off == ref.off {
				if any {
					ix.refs[i].min, ix.refs[i].max, ix.refs[i].loose = max(lo, r.min), min(hi, r.max), false
				} else {
					ix.refs = slices.Delete(ix.refs, i, i+1)
				}
				break
			}
		}
		ix.reorder()
		ix.mu.Unlock()
	}
}
