package engine

import (
	"fmt"
	"slices"
	"sync"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// The LSN index: where each batch is, by LSN. It is batch-level: one
// batchRef per batch (its segment, offset, span and live LSN range), built
// by one ScanBatches pass over the segments at the first call that needs it
// (Read, Bounds, DeleteBefore, TruncateAfter), then kept while writing (a
// batch is added when it settles). Reading a batch it names is readers.go's
// job. Invariants:
//
//   - refs are in write order; a ref is added only once its batch settled
//     successfully, so a read never sees a failed batch nor one in flight;
//   - a ref's [min, max] holds every live entry of its batch (deletions
//     narrow it; loose marks a narrowed range that may be wider than the
//     live entries, made exact when it bounds the log);
//   - ordered holds when every ref's min is above the previous ref's max:
//     then a lookup is a binary search, else a scan of every ref, newest
//     first (the first live entry found wins).
//
// Memory: 40 bytes per batch (so 40 MB per million entries written one per
// batch, under 1 MB per million when raft's StoreLogs or group commit
// batches 64 at once).

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

// lsnIndex is the Coordinator's index. Its mu (see pipeline.go for the
// lock order) is never held during I/O.
type lsnIndex struct {
	mu      sync.RWMutex
	built   bool
	refs    []batchRef
	ordered bool
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
	c.pipe.mu.Lock()
	defer c.pipe.mu.Unlock()
	return c.ensureIndexLocked()
}

// ensureIndexLocked is ensureIndex under mu.
func (c *Coordinator) ensureIndexLocked() error {
	if c.pipe.closed {
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
	st := c.state.load()
	var refs []batchRef
	for _, id := range ids {
		if st.Covers(id, segment.Meta{}, false) == segment.DeletesAll {
			continue
		}
		if refs, err = c.indexSegment(id, refs, st); err != nil {
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
	if a := c.pipe.act; a != nil && a.id == id {
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
	if !ref.clip(c.state.load()) {
		return
	}
	n := len(ix.refs)
	if invariants && n > 0 {
		last := ix.refs[n-1]
		assertf(last.seg < ref.seg || last.seg == ref.seg && last.off < ref.off,
			"batch %d@%d indexed after %d@%d", ref.seg, ref.off, last.seg, last.off)
	}
	if n > 0 && ref.min <= ix.refs[n-1].max {
		ix.ordered = false
	}
	ix.refs = append(ix.refs, ref)
}

// narrow applies st, a record just written, to the refs: those it deletes
// whole go, the others are clipped.
func (ix *lsnIndex) narrow(st *segment.State) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.refs = slices.DeleteFunc(ix.refs, func(r batchRef) bool { return !r.clip(st) })
	for i := range ix.refs {
		ix.refs[i].clip(st)
	}
	ix.reorder()
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
		ix.mu.RUnlock()
		st := c.state.load()
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
