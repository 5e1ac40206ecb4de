package engine

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// The LSN index: where each batch is, by LSN, in two levels.
//
//   - Segments: every segment present, its header (what its batches are
//     checked against) and what it holds (its .meta: LSN range, entries),
//     known from Open on without reading a segment body: recovery reads the
//     headers and the .meta files anyway. O(segments) memory.
//   - Batches: one ref per batch (offset, span, LSN range; 24 bytes,
//     segment.Refs). The active segment's refs are kept as its batches
//     settle; a sealed segment's come from its index file (NNNNNN.log.idx,
//     written when it was sealed), read at the first lookup that needs them
//     into a cache bounded by Config.IndexCacheBytes. A missing or bad
//     index file costs one scan of that segment, which writes it again.
//
// So Open reads no segment body, the first Read of any LSN reads at most
// one index file and one batch, and the memory for reading does not grow
// with the log. Invariants:
//
//   - segs lists the segments present in ID order, the active one (if any)
//     last; a batch is added only once it settled successfully, so a read
//     never sees a failed batch nor one in flight;
//   - refs and .meta hold what was written, not what is live: deletions
//     are applied at lookup (segment.State), so no index ever needs
//     rewriting when something is deleted;
//   - a segment's live range is its .meta range clipped by the log state
//     (segment.State.Clip), kept up to date as batches settle and records
//     are written: it bounds the segment's live entries, so a lookup skips
//     segments whose live range misses the LSN;
//   - ordered holds when every segment's live range is above the previous
//     one's: then a lookup finds its one segment by binary search, else it
//     tries every segment whose live range holds the LSN, newest first
//     (the first live entry found wins). Inside a segment the same holds
//     of its refs' ranges as written.
type lsnIndex struct {
	mu      sync.RWMutex
	segs    []*segIndex // every segment, by ID
	live    []*segIndex // of them, those with live entries, by ID
	ordered bool
	cache   refCache
	write   sync.Mutex // orders the writers of index files (a leaf lock)
}

// segIndex is what the index knows of one segment.
type segIndex struct {
	id     uint64
	hdr    segment.Header
	meta   segment.Meta // what it holds; grows while it is active
	lo, hi uint64       // its live range, when live
	live   bool
	// The active segment's index, built as its batches settle (nil once it
	// is sealed: its refs then come through the cache).
	active  *segment.Index
	ordered bool // the active segment's refs are ordered
}

// segView is a copy of what a lookup needs of one segment, taken under
// the index's lock.
type segView struct {
	id      uint64
	hdr     segment.Header
	meta    segment.Meta
	refs    segment.Refs // the active segment's (a snapshot), or none
	active  bool
	ordered bool
}

// reset makes the index the segments recovery kept, all sealed, with the
// log state st.
func (ix *lsnIndex) reset(segs []*segFile, st *segment.LogState) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.segs = ix.segs[:0]
	for _, s := range segs {
		ix.segs = append(ix.segs, &segIndex{id: s.id, hdr: s.hdr, meta: s.meta})
	}
	ix.reliveLocked(st)
}

// relive recomputes every segment's live range under st, a log state just
// written (under pipeline.mu).
func (ix *lsnIndex) relive(st *segment.LogState) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.reliveLocked(st)
}

func (ix *lsnIndex) reliveLocked(st *segment.LogState) {
	for _, s := range ix.segs {
		s.clip(st)
	}
	ix.reorder()
}

// clip sets s's live range under st.
func (s *segIndex) clip(st *segment.LogState) {
	s.live = false
	if s.meta.Entries > 0 {
		s.lo, s.hi, s.live = st.Clip(segment.Whole(s.id), s.meta.MinLSN, s.meta.MaxLSN)
	}
}

// reorder recomputes live and ordered (under mu, held for writing).
func (ix *lsnIndex) reorder() {
	ix.ordered = true
	ix.live = ix.live[:0]
	for _, s := range ix.segs {
		if !s.live {
			continue
		}
		if n := len(ix.live); n > 0 && s.lo <= ix.live[n-1].hi {
			ix.ordered = false
		}
		ix.live = append(ix.live, s)
	}
}

// start adds the new active segment (under pipeline.mu).
func (ix *lsnIndex) start(hdr segment.Header) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.segs = append(ix.segs, &segIndex{id: hdr.ID, hdr: hdr, active: segment.NewIndex(&hdr), ordered: true})
}

// add records settled batch f of the active segment, under the log state
// st (under pipeline.mu).
func (ix *lsnIndex) add(f *flight, st *segment.LogState) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := len(ix.segs)
	s := ix.segs[n-1]
	if invariants {
		assertf(s.active != nil && s.id == f.a.id, "batch of segment %d indexed in segment %d", f.a.id, s.id)
		assertf(f.off >= s.active.End, "batch at %d indexed after the log's end %d", f.off, s.active.End)
	}
	lo, hi := uint64(f.minLSN), uint64(f.maxLSN)
	if s.meta.Entries > 0 && lo <= s.meta.MaxLSN {
		s.ordered = false
	}
	s.active.Add(0, f.off, int64(f.span), lo, hi, uint64(f.n))
	s.active.AddBatch()
	s.meta.Add(lo, hi, uint64(f.n))
	s.clip(st)
	if !s.live {
		return
	}
	k := len(ix.live)
	if k > 0 && ix.live[k-1] == s {
		k-- // s is live already: compare with the one before it
	} else {
		ix.live = append(ix.live, s)
	}
	if k > 0 && s.lo <= ix.live[k-1].hi {
		ix.ordered = false
	}
}

// seal turns the active segment id into a sealed one and returns its
// index, to be written beside it and kept in the cache (under
// pipeline.mu). A segment that holds nothing leaves the index.
func (ix *lsnIndex) seal(id uint64) *segment.Index {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := len(ix.segs)
	if n == 0 || ix.segs[n-1].id != id || ix.segs[n-1].active == nil {
		return nil
	}
	s := ix.segs[n-1]
	x := s.active
	s.active = nil
	if s.meta.Entries == 0 {
		ix.segs = ix.segs[:n-1]
		return nil
	}
	ix.cache.put(id, x)
	return x
}

// drop takes segment id out of the index (under pipeline.mu): it is being
// retired.
func (ix *lsnIndex) drop(id uint64) {
	ix.mu.Lock()
	ix.segs = slices.DeleteFunc(ix.segs, func(s *segIndex) bool { return s.id == id })
	ix.reorder()
	ix.mu.Unlock()
	ix.cache.drop(id)
}

// has reports whether segment id, with the header salt, is still indexed.
func (ix *lsnIndex) has(id, salt uint64) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, s := range ix.segs {
		if s.id == id {
			return s.hdr.Salt == salt
		}
	}
	return false
}

// view copies what a lookup needs of s (under mu).
func (s *segIndex) view() segView {
	v := segView{id: s.id, hdr: s.hdr, meta: s.meta}
	if s.active != nil {
		if l, ok := s.active.Log(0); ok {
			v.refs = l.Refs
		}
		v.active, v.ordered = true, s.ordered
	}
	return v
}

// segmentsFor appends to out the views of the segments whose live range
// holds lsn, newest first (one at most while ordered).
func (ix *lsnIndex) segmentsFor(lsn LSN, out []segView) []segView {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	l := uint64(lsn)
	if ix.ordered {
		i, _ := slices.BinarySearchFunc(ix.live, l, func(s *segIndex, l uint64) int {
			if s.hi < l {
				return -1
			}
			return 1
		})
		if i < len(ix.live) && ix.live[i].lo <= l {
			out = append(out, ix.live[i].view())
		}
		return out
	}
	for i := len(ix.live) - 1; i >= 0; i-- {
		if s := ix.live[i]; s.lo <= l && l <= s.hi {
			out = append(out, s.view())
		}
	}
	return out
}

// refsOf returns the refs of segment v and whether they are ordered: the
// active segment's snapshot, or a sealed segment's from the cache (read
// from its index file, or rebuilt by a scan).
func (c *Coordinator) refsOf(v segView) (segment.Refs, bool, error) {
	if v.active {
		return v.refs, v.ordered, nil
	}
	e, err := c.idx.cache.get(v.id, func() (*segment.Index, error) { return c.loadIndex(v, "") })
	if err != nil {
		return segment.Refs{}, false, err
	}
	return e.refs, e.ordered, nil
}

// loadIndex reads segment v's index file and checks it against the
// segment's header and .meta; one that is missing or does not match is
// rebuilt by a scan of the segment and written again (why, when not empty,
// says why an index that matched is not trusted: a read found a batch it
// does not describe).
func (c *Coordinator) loadIndex(v segView, why string) (*segment.Index, error) {
	if why == "" {
		x, ok, err := segment.ReadIndex(c.fs, v.id)
		if err == nil && ok {
			if err = x.Matches(&v.hdr, v.meta, true); err == nil {
				return x, nil
			}
		}
		why = "missing"
		if err != nil {
			why = err.Error()
		}
	}
	c.log.Warn("dwal: segment index rebuilt by a scan", "segment", v.id, "why", why)
	res, x, err := c.scanIndex(v.id, &v.hdr)
	if err != nil {
		return nil, err
	}
	if res.Meta != v.meta {
		// The segment does not hold what its .meta says it holds: media
		// corruption, or bytes changed by hand. Not an index problem.
		return nil, segment.MetaMismatch(segment.Name(v.id), res, v.meta)
	}
	c.ctr.indexRebuilds.Add(1)
	if err := c.writeIndex(x); err != nil {
		c.log.Error("dwal: cannot write a rebuilt segment index; the next use rebuilds it again", "segment", v.id, "err", err)
	} else if !c.idx.has(v.id, v.hdr.Salt) {
		// NB: retired meanwhile. Its retirement removes its index after
		// leaving the index, so one written after that is left behind
		// unless removed here (recovery removes such orphans too).
		c.fs.Remove(segment.IndexName(v.id))
	}
	return x, nil
}

// scanIndex builds segment id's index by reading it through.
func (c *Coordinator) scanIndex(id uint64, hdr *segment.Header) (segment.Result, *segment.Index, error) {
	name := segment.Name(id)
	f, err := c.fs.Open(name, true)
	if err != nil {
		return segment.Result{}, nil, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return segment.Result{}, nil, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	res, x, err := segment.ScanIndex(f, c.align, size, false)
	if err != nil {
		return res, nil, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	if res.Header.Salt != hdr.Salt {
		return res, nil, fmt.Errorf("%w: %s was replaced while it was indexed", ErrCorrupt, name)
	}
	return res, x, nil
}

// writeIndex writes segment x.SegID's index file atomically: temp file,
// fsync, rename. The rename becomes durable with the next directory sync
// (a lost index is rebuilt when next needed).
func (c *Coordinator) writeIndex(x *segment.Index) error {
	c.idx.write.Lock()
	defer c.idx.write.Unlock()
	name := segment.IndexName(x.SegID)
	tmp := name + segment.TmpSuffix
	if err := c.fs.WriteFile(tmp, x.Encode()); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, name); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	return nil
}

// refCache holds sealed segments' refs, loaded on demand, within a byte
// bound: least recently used go first. A segment being loaded is there
// too, so concurrent lookups of it wait for one load. Its mu is a leaf
// lock.
type refCache struct {
	mu    sync.RWMutex // a lookup that hits takes it shared
	limit int          // bytes; one index larger than that is kept alone
	bytes int
	tick  atomic.Uint64
	m     map[uint64]*refEntry
}

// refEntry is one segment's refs in the cache.
type refEntry struct {
	refs    segment.Refs
	ordered bool
	size    int
	used    atomic.Uint64 // the cache's tick at the last use
	ready   chan struct{} // closed once loaded (or failed)
	err     error
}

func (rc *refCache) init(limit int) { rc.limit, rc.m = limit, map[uint64]*refEntry{} }

// get returns segment id's refs, loading them with load on a miss.
func (rc *refCache) get(id uint64, load func() (*segment.Index, error)) (*refEntry, error) {
	rc.mu.RLock()
	e := rc.m[id]
	if e != nil {
		e.used.Store(rc.tick.Add(1))
		rc.mu.RUnlock()
		<-e.ready
		return e, e.err
	}
	rc.mu.RUnlock()
	rc.mu.Lock()
	if e = rc.m[id]; e != nil { // loaded meanwhile
		rc.mu.Unlock()
		<-e.ready
		return e, e.err
	}
	e = &refEntry{ready: make(chan struct{})}
	rc.m[id] = e
	rc.mu.Unlock()
	x, err := load()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		e.err = err
		if rc.m[id] == e {
			delete(rc.m, id) // the next lookup tries again
		}
		close(e.ready)
		return e, err
	}
	rc.fill(id, e, x)
	close(e.ready)
	return e, nil
}

// put caches x, a segment's index just made (seal), replacing any entry.
func (rc *refCache) put(id uint64, x *segment.Index) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if old := rc.m[id]; old != nil {
		rc.bytes -= old.size
	}
	e := &refEntry{ready: make(chan struct{})}
	close(e.ready)
	rc.m[id] = e
	rc.fill(id, e, x)
}

// fill sets e from x, accounts for it and evicts what exceeds the bound
// (under mu).
func (rc *refCache) fill(id uint64, e *refEntry, x *segment.Index) {
	if l, ok := x.Log(0); ok {
		e.refs = l.Refs
	}
	e.ordered = e.refs.Ordered()
	e.size = e.refs.Bytes() + 64
	e.used.Store(rc.tick.Add(1))
	if rc.m[id] != e {
		return // dropped while loading: hand it out once, keep nothing
	}
	rc.bytes += e.size
	for rc.bytes > rc.limit {
		victim, vid := (*refEntry)(nil), uint64(0)
		for k, o := range rc.m {
			if o == e || o.size == 0 {
				continue // the new one, and ones still loading
			}
			if victim == nil || o.used.Load() < victim.used.Load() {
				victim, vid = o, k
			}
		}
		if victim == nil {
			break
		}
		delete(rc.m, vid)
		rc.bytes -= victim.size
	}
	if invariants {
		assertf(rc.bytes <= rc.limit || len(rc.m) == 1 || rc.onlyLoading(e), "index cache holds %d bytes, bound %d", rc.bytes, rc.limit)
	}
}

// onlyLoading reports whether every entry but e is still loading.
func (rc *refCache) onlyLoading(e *refEntry) bool {
	for _, o := range rc.m {
		if o != e && o.size != 0 {
			return false
		}
	}
	return true
}

// drop forgets segment id (retired, or its index found lying).
func (rc *refCache) drop(id uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e := rc.m[id]; e != nil {
		rc.bytes -= e.size
		delete(rc.m, id)
	}
}

// held returns the bytes the cache accounts for.
func (rc *refCache) held() int {
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	return rc.bytes
}

// Bounds returns the smallest and largest LSN of the live entries (ok
// false when there is none): exact, whatever has been deleted. It reads
// no segment body when deletions do not cut into the segments at the
// ends of the log; otherwise it reads those segments' index files (kept in
// the cache) and at most a batch at each end. A sealed segment whose index
// file is missing or bad is scanned once to rebuild it.
func (c *Coordinator) Bounds() (first, last LSN, ok bool, err error) {
	if c.rd.shut.Load() {
		return 0, 0, false, ErrClosed
	}
	return c.bounds()
}

// bounds is Bounds; it takes no pipeline.mu.
func (c *Coordinator) bounds() (first, last LSN, ok bool, err error) {
	err = c.trustingIndexes(func() (err error) {
		first, last, ok, err = c.boundsOnce()
		return err
	})
	return first, last, ok, err
}

// boundsOnce is one try of bounds.
func (c *Coordinator) boundsOnce() (first, last LSN, ok bool, err error) {
	st := c.state.log0()
	views, ordered := c.idx.liveViews()
	lo, okLo, err := c.edge(views, ordered, st, true)
	if err != nil || !okLo {
		return 0, 0, false, err
	}
	hi, okHi, err := c.edge(views, ordered, st, false)
	if err != nil || !okHi {
		return 0, 0, false, err
	}
	return LSN(lo), LSN(hi), true, nil
}

// liveViews returns the views of the segments with live entries, by ID,
// and whether their live ranges are ordered.
func (ix *lsnIndex) liveViews() ([]segView, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]segView, len(ix.live))
	for i, s := range ix.live {
		out[i] = s.view()
	}
	return out, ix.ordered
}

// edge finds the smallest (low) or largest live LSN of the segments
// views. While their ranges are ordered the first segment from that end
// with a live entry has it; else every segment is asked.
func (c *Coordinator) edge(views []segView, ordered bool, st *segment.LogState, low bool) (uint64, bool, error) {
	var best uint64
	found := false
	for k := range views {
		v := views[k]
		if !low {
			v = views[len(views)-1-k]
		}
		l, ok, err := c.segmentEdge(v, st, low)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || low && l < best || !low && l > best) {
			best, found = l, true
		}
		if found && ordered {
			break
		}
	}
	return best, found, nil
}

// segmentEdge finds segment v's smallest (low) or largest live LSN. Its
// .meta range's end is an entry's LSN: when the deletions leave that end
// live it is the answer. Else its refs are asked the same way, and a
// batch whose end the deletions cut is read.
func (c *Coordinator) segmentEdge(v segView, st *segment.LogState, low bool) (uint64, bool, error) {
	lo, hi, ok := st.Clip(segment.Whole(v.id), v.meta.MinLSN, v.meta.MaxLSN)
	switch {
	case !ok:
		return 0, false, nil
	case low && lo == v.meta.MinLSN:
		return lo, true, nil
	case !low && hi == v.meta.MaxLSN:
		return hi, true, nil
	}
	refs, ordered, err := c.refsOf(v)
	if err != nil {
		return 0, false, err
	}
	var best uint64
	found := false
	n := refs.Len()
	for k := range n {
		i := k
		if !low {
			i = n - 1 - k
		}
		l, ok, err := c.refEdge(v, refs.At(i), st, low)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || low && l < best || !low && l > best) {
			best, found = l, true
		}
		if found && ordered {
			break
		}
	}
	return best, found, nil
}

// refEdge finds the smallest (low) or largest live LSN of batch ref of
// segment v: its range's end when the deletions leave it live, else what
// reading the batch finds.
func (c *Coordinator) refEdge(v segView, ref segment.Ref, st *segment.LogState, low bool) (uint64, bool, error) {
	lo, hi, ok := st.Clip(segment.At(segment.Pos{Seg: v.id, Off: ref.Off}), ref.MinLSN, ref.MaxLSN)
	switch {
	case !ok:
		return 0, false, nil
	case low && lo == ref.MinLSN:
		return lo, true, nil
	case !low && hi == ref.MaxLSN:
		return hi, true, nil
	}
	var best uint64
	found := false
	err := c.withBatch(v, ref, func(body []byte) {
		segment.EachEntry(body, func(l uint64, _ []byte) {
			if l < lo || l > hi || st.Dead(segment.Pos{Seg: v.id, Off: ref.Off}, l) {
				return
			}
			if !found || low && l < best || !low && l > best {
				best, found = l, true
			}
		})
	})
	return best, found, err
}
