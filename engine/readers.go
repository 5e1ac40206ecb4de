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
// aligned pooled buffer, vfs.File.ReadAt: O_DIRECT on io_uring), checks it
// as the scan does (salt, CRC, entries; decrypts it in an encrypted
// segment) and copies the entry out. Invariants:
//
//   - the bytes a read returns come from a batch that passed the same checks
//     as Replay's, in the segment the ref names: a segment removed or
//     recycled since the lookup fails them (its salt differs) and the read
//     says ErrNotFound, never another batch's bytes;
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
	if c.state.load().Dead(ref.seg, uint64(lsn)) {
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
