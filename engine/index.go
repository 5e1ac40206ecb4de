package engine

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// The LSN index: where each log's batches are, by LSN, in two levels.
//
//   - Segments: every segment present, its header (what its batches are
//     checked against), what it holds in all (its .meta) and, per log with
//     data entries in it, that log's LSN range and count: from the
//     segment's .meta when it holds log 0 alone (segment.Header.OneLog),
//     else from its index file's log table. O(segments × logs in each)
//     memory, known from Open on without reading a segment body.
//   - Batches: one ref per batch and log (offset, span, the log's LSN
//     range; 24 bytes, segment.Refs). The active segment's refs are kept
//     as its batches settle; a sealed segment's come from its index file
//     (NNNNNN.log.idx, written when it was sealed), read at the first
//     lookup that needs them into a cache bounded by
//     Config.IndexCacheBytes. A missing or bad index file costs one scan of
//     that segment, which writes it again.
//
// So Open reads no segment body, the first Read of any LSN reads at most
// one index file and one batch, and the memory for reading does not grow
// with the log. Invariants:
//
//   - segs lists the segments present in ID order, the active one (if any)
//     last; a batch is added only once it settled successfully, so a read
//     never sees a failed batch nor one in flight;
//   - refs and metas hold what was written, not what is live: deletions
//     are applied at lookup (segment.LogState), so no index is rewritten
//     when something is deleted;
//   - a log's segment is live when the log's state may leave an entry of
//     it live (its range clipped by the state, segment.LogState.Clip); the
//     log's live segments are kept sorted by that range, and ordered holds
//     when the ranges do not overlap: then a lookup finds its one segment
//     by binary search, else it tries every live segment whose range holds
//     the LSN, newest first (the first live entry found wins). Inside a
//     segment the same holds of the log's refs, as written.
type lsnIndex struct {
	mu    sync.RWMutex
	segs  []*segIndex          // every segment, by ID
	logs  map[uint64]*logIndex // each log's segments
	cache refCache
	write sync.Mutex // orders the writers of index files (a leaf lock)
}

// segIndex is what the index knows of one segment.
type segIndex struct {
	id      uint64
	hdr     segment.Header
	meta    segment.Meta // every log's data entries (its .meta); grows while it is active
	records bool         // it holds records: it may go only once a checkpoint covers it
	bytes   uint64       // its data entries' bytes (estimated for a segment of a past process)
	logs    []*logSeg    // the logs with data entries in it
	// The active segment's index, built as its batches settle (nil once it
	// is sealed: its refs then come through the cache).
	active *segment.Index
}

// logIndex is one log's segments.
type logIndex struct {
	segs    []*logSeg // by segment ID
	live    []*logSeg // of them, the live ones, by live range
	ordered bool      // the live ranges do not overlap
}

// logSeg is one log's part of one segment.
type logSeg struct {
	seg     *segIndex
	log     uint64
	meta    segment.Meta // the log's data entries in the segment
	bytes   uint64       // their bytes (estimated for a segment of a past process)
	lo, hi  uint64       // its live range, when live
	live    bool
	ordered bool // the active segment's refs of the log are ordered
}

// segView is a copy of what a lookup needs of one log's part of one
// segment, taken under the index's lock.
type segView struct {
	id      uint64
	log     uint64
	hdr     segment.Header
	segMeta segment.Meta // the whole segment's
	meta    segment.Meta // the log's
	refs    segment.Refs // the active segment's (a snapshot), or none
	active  bool
	ordered bool
}

func (ix *lsnIndex) init(cacheBytes int) {
	ix.logs = map[uint64]*logIndex{}
	ix.cache.init(cacheBytes)
}

// indexed is what recovery hands the index of one segment: its file, and
// (when recovery read or built it) its index.
type indexed struct {
	f *segFile
	x *segment.Index
}

// reset makes the index the segments recovery kept, all sealed, with the
// logs' states.
func (ix *lsnIndex) reset(segs []indexed, states *logStates) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.segs = ix.segs[:0]
	clear(ix.logs)
	for _, s := range segs {
		si := &segIndex{id: s.f.id, hdr: s.f.hdr, meta: s.f.meta}
		switch {
		case s.x != nil:
			// Bytes per log are not in the index file: each log's share of
			// the segment's bytes by its count of entries.
			per := 0.0
			if s.f.meta.Entries > 0 {
				per = float64(max(s.x.End, 0)) / float64(s.f.meta.Entries)
			}
			si.bytes = uint64(max(s.x.End, 0))
			for _, l := range s.x.Logs {
				si.records = si.records || len(l.Records) > 0
				if l.Meta.Entries > 0 {
					si.logs = append(si.logs, &logSeg{seg: si, log: l.Log, meta: l.Meta, bytes: uint64(per * float64(l.Meta.Entries))})
				}
			}
		case s.f.hdr.OneLog() && s.f.meta.Entries > 0:
			si.logs = append(si.logs, &logSeg{seg: si, log: 0, meta: s.f.meta})
		}
		ix.segs = append(ix.segs, si)
		for _, ls := range si.logs {
			li := ix.logOf(ls.log)
			li.segs = append(li.segs, ls)
		}
	}
	for id, li := range ix.logs {
		li.relive(states.of(id))
	}
}

// logOf returns log id's segments, made when missing (under mu).
func (ix *lsnIndex) logOf(id uint64) *logIndex {
	li := ix.logs[id]
	if li == nil {
		li = &logIndex{}
		ix.logs[id] = li
	}
	return li
}

// relive recomputes log id's live segments under st, its state just
// changed (under pipeline.mu).
func (ix *lsnIndex) relive(id uint64, st *segment.LogState) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if li := ix.logs[id]; li != nil {
		li.relive(st)
	}
}

// relive recomputes li's live ranges under st and sorts them.
func (li *logIndex) relive(st *segment.LogState) {
	for _, ls := range li.segs {
		ls.clip(st)
	}
	li.reorder()
}

// clip sets ls's live range under st.
func (ls *logSeg) clip(st *segment.LogState) {
	ls.live = false
	if ls.meta.Entries > 0 {
		ls.lo, ls.hi, ls.live = st.Clip(segment.Whole(ls.seg.id), ls.meta.MinLSN, ls.meta.MaxLSN)
	}
}

// reorder rebuilds li.live from li.segs and recomputes ordered.
func (li *logIndex) reorder() {
	li.live = li.live[:0]
	for _, ls := range li.segs {
		if ls.live {
			li.live = append(li.live, ls)
		}
	}
	slices.SortStableFunc(li.live, func(a, b *logSeg) int { return cmp.Compare(a.lo, b.lo) })
	li.ordered = true
	for i := 1; i < len(li.live); i++ {
		if li.live[i].lo <= li.live[i-1].hi {
			li.ordered = false
			return
		}
	}
}

// start adds the new active segment (under pipeline.mu).
func (ix *lsnIndex) start(hdr segment.Header) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.segs = append(ix.segs, &segIndex{id: hdr.ID, hdr: hdr, active: segment.NewIndex(&hdr)})
}

// add records settled batch f of the active segment, under the logs'
// states (under pipeline.mu).
func (ix *lsnIndex) add(f *flight, states *logStates) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.segs[len(ix.segs)-1]
	if invariants {
		assertf(s.active != nil && s.id == f.a.id, "batch of segment %d indexed in segment %d", f.a.id, s.id)
		assertf(f.off >= s.active.End, "batch at %d indexed after the log's end %d", f.off, s.active.End)
	}
	for _, e := range f.recs {
		s.active.AddRecord(e.Log, f.off, e)
		s.records = true
	}
	s.active.AddLogs(f.off, int64(f.span), &f.logs)
	for _, r := range f.logs.Logs() {
		s.meta.Add(r.MinLSN, r.MaxLSN, r.Count)
		s.bytes += r.Bytes
		ix.addLog(s, r, states.of(r.Log))
	}
}

// addLog adds log range r of a batch to segment s's part of the log.
func (ix *lsnIndex) addLog(s *segIndex, r segment.LogRange, st *segment.LogState) {
	li := ix.logOf(r.Log)
	var ls *logSeg
	if n := len(li.segs); n > 0 && li.segs[n-1].seg == s {
		ls = li.segs[n-1]
	} else {
		ls = &logSeg{seg: s, log: r.Log, ordered: true}
		li.segs = append(li.segs, ls)
		s.logs = append(s.logs, ls)
	}
	if ls.meta.Entries > 0 && r.MinLSN <= ls.meta.MaxLSN {
		ls.ordered = false
	}
	was, lo := ls.live, ls.lo
	ls.meta.Add(r.MinLSN, r.MaxLSN, r.Count)
	ls.bytes += r.Bytes
	ls.clip(st)
	n := len(li.live)
	switch {
	case !ls.live && !was:
	case was && ls.live && lo == ls.lo && n > 0 && li.live[n-1] == ls:
		// NB: the common case (a log appending in LSN order to the active
		// segment): only its high end grew.
	case !was && ls.live && (n == 0 || li.live[n-1].hi < ls.lo):
		li.live = append(li.live, ls)
	default:
		li.reorder()
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
	if s.meta.Entries == 0 && !s.records {
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
	i := slices.IndexFunc(ix.segs, func(s *segIndex) bool { return s.id == id })
	if i >= 0 {
		s := ix.segs[i]
		ix.segs = slices.Delete(ix.segs, i, i+1)
		for _, ls := range s.logs {
			li := ix.logs[ls.log]
			li.segs = slices.DeleteFunc(li.segs, func(x *logSeg) bool { return x == ls })
			li.reorder()
			if len(li.segs) == 0 {
				delete(ix.logs, ls.log)
			}
		}
	}
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

// ids returns the segments indexed, ascending.
func (ix *lsnIndex) ids() []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]uint64, len(ix.segs))
	for i, s := range ix.segs {
		out[i] = s.id
	}
	return out
}

// hasRecords reports whether segment id holds records.
func (ix *lsnIndex) hasRecords(id uint64) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, s := range ix.segs {
		if s.id == id {
			return s.records
		}
	}
	return false
}

// dead reports whether no log has a live entry in segment id, under the
// logs' states (as their ranges tell: a segment may be kept that holds
// none, never removed while it holds one).
func (ix *lsnIndex) dead(id uint64, states *logStates) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, s := range ix.segs {
		if s.id == id {
			return s.dead(states)
		}
	}
	return false
}

// deadIDs returns the segments but except in which no log has a live
// entry, ascending (one pass; dead asks of one segment).
func (ix *lsnIndex) deadIDs(states *logStates, except uint64) []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []uint64
	for _, s := range ix.segs {
		if s.id != except && s.dead(states) {
			out = append(out, s.id)
		}
	}
	return out
}

// dead reports whether no log has a live entry in s (under ix.mu).
func (s *segIndex) dead(states *logStates) bool {
	for _, ls := range s.logs {
		if states.of(ls.log).Covers(segment.Whole(s.id), ls.meta, true) != segment.DeletesAll {
			return false
		}
	}
	return true
}

// liveLogs returns the logs with a live segment, sorted.
func (ix *lsnIndex) liveLogs() []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []uint64
	for id, li := range ix.logs {
		if len(li.live) > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// view copies what a lookup needs of ls (under mu).
func (ls *logSeg) view() segView {
	s := ls.seg
	v := segView{id: s.id, log: ls.log, hdr: s.hdr, segMeta: s.meta, meta: ls.meta}
	if s.active != nil {
		if l, ok := s.active.Log(ls.log); ok {
			v.refs = l.Refs
		}
		v.active, v.ordered = true, ls.ordered
	}
	return v
}

// segmentsFor appends to out the views of log's segments whose live range
// holds lsn, newest first (one at most while ordered).
func (ix *lsnIndex) segmentsFor(log uint64, lsn LSN, out []segView) []segView {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	li := ix.logs[log]
	if li == nil {
		return out
	}
	l := uint64(lsn)
	if li.ordered {
		i, _ := slices.BinarySearchFunc(li.live, l, func(s *logSeg, l uint64) int {
			if s.hi < l {
				return -1
			}
			return 1
		})
		if i < len(li.live) && li.live[i].lo <= l {
			out = append(out, li.live[i].view())
		}
		return out
	}
	for i := len(li.segs) - 1; i >= 0; i-- {
		if s := li.segs[i]; s.live && s.lo <= l && l <= s.hi {
			out = append(out, s.view())
		}
	}
	return out
}

// refsOf returns the log's refs in segment v and whether they are ordered:
// the active segment's snapshot, or a sealed segment's from the cache
// (read from its index file, or rebuilt by a scan).
func (c *Coordinator) refsOf(v segView) (segment.Refs, bool, error) {
	if v.active {
		return v.refs, v.ordered, nil
	}
	e, err := c.idx.cache.get(v.id, func() (*segment.Index, error) { return c.loadIndex(v, "") })
	if err != nil {
		return segment.Refs{}, false, err
	}
	return e.refsOf(v.log)
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
			if err = x.Matches(&v.hdr, v.segMeta, true); err == nil {
				return x, nil
			}
		}
		why = "missing"
		if err != nil {
			why = err.Error()
		}
	}
	c.log.Warn("dwal: segment index rebuilt by a scan", "segment", v.id, "why", why)
	res, err := c.scanIndex(v.id, &v.hdr)
	if err != nil {
		return nil, err
	}
	if res.Meta != v.segMeta {
		// The segment does not hold what its .meta says it holds: media
		// corruption, or bytes changed by hand. Not an index problem.
		return nil, segment.MetaMismatch(segment.Name(v.id), res, v.segMeta)
	}
	c.ctr.indexRebuilds.Add(1)
	if err := c.writeIndex(res.Index); err != nil {
		c.log.Error("dwal: cannot write a rebuilt segment index; the next use rebuilds it again", "segment", v.id, "err", err)
	} else if !c.idx.has(v.id, v.hdr.Salt) {
		// NB: retired meanwhile. Its retirement removes its index after
		// leaving the index, so one written after that is left behind
		// unless removed here (recovery removes such orphans too).
		c.fs.Remove(segment.IndexName(v.id))
	}
	return res.Index, nil
}

// scanIndex builds segment id's index by reading it through.
func (c *Coordinator) scanIndex(id uint64, hdr *segment.Header) (segment.Result, error) {
	name := segment.Name(id)
	f, err := c.fs.Open(name, true)
	if err != nil {
		return segment.Result{}, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return segment.Result{}, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	res, err := segment.Scan(f, c.align, size, segment.ScanOptions{Index: true, Keys: c.keys})
	if err != nil {
		return res, fmt.Errorf("dwal: index %s: %w", name, err)
	}
	if res.Header.Salt != hdr.Salt {
		return res, fmt.Errorf("%w: %s was replaced while it was indexed", ErrCorrupt, name)
	}
	return res, nil
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

// refEntry is one segment's index in the cache.
type refEntry struct {
	x       *segment.Index
	ordered map[uint64]bool // by log: its refs are ordered
	size    int
	used    atomic.Uint64 // the cache's tick at the last use
	ready   chan struct{} // closed once loaded (or failed)
	err     error
}

// refsOf returns log's refs in the entry's segment and whether they are
// ordered (none when the segment holds none of the log).
func (e *refEntry) refsOf(log uint64) (segment.Refs, bool, error) {
	if l, ok := e.x.Log(log); ok {
		return l.Refs, e.ordered[log], nil
	}
	return segment.Refs{}, false, nil
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
	e.x, e.ordered, e.size = x, map[uint64]bool{}, 64
	for _, l := range x.Logs {
		e.ordered[l.Log] = l.Refs.Ordered()
		e.size += l.Refs.Bytes() + 48
		for _, r := range l.Records {
			e.size += 32 + len(r.Data)
		}
	}
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
func (c *Coordinator) Bounds() (first, last LSN, ok bool, err error) { return c.bounds(0) }

// bounds is Bounds of log; it takes no pipeline.mu.
func (c *Coordinator) bounds(log uint64) (first, last LSN, ok bool, err error) {
	if c.rd.shut.Load() {
		return 0, 0, false, ErrClosed
	}
	err = c.underState(log, func(err error) bool { return err == nil }, func(st *segment.LogState) (err error) {
		first, last, ok, err = c.boundsOnce(log, st)
		return err
	})
	return first, last, ok, err
}

// boundsOnce is one try of bounds under the log's state st.
func (c *Coordinator) boundsOnce(log uint64, st *segment.LogState) (first, last LSN, ok bool, err error) {
	views, ordered := c.idx.liveViews(log)
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

// liveViews returns the views of log's live segments, by live range, and
// whether those ranges are ordered.
func (ix *lsnIndex) liveViews(log uint64) ([]segView, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	li := ix.logs[log]
	if li == nil {
		return nil, true
	}
	out := make([]segView, len(li.live))
	for i, s := range li.live {
		out[i] = s.view()
	}
	return out, li.ordered
}

// edge finds the smallest (low) or largest live LSN of the segments
// views. While their ranges are ordered the first segment from that end
// with a live entry has it; else every segment is asked.
func (c *Coordinator) edge(views []segView, ordered bool, st *segment.LogState, low bool) (uint64, bool, error) {
	return edgeOf(len(views), ordered, low, func(i int) (uint64, bool, error) { return c.segmentEdge(views[i], st, low) })
}

// edgeOf is the smallest (low) or largest of the edges of n parts, in
// order, asked from that end (at(i) is part i's edge, ok false when it has
// no live entry): while the parts are ordered the first with one has it.
func edgeOf(n int, ordered, low bool, at func(i int) (uint64, bool, error)) (uint64, bool, error) {
	var best uint64
	found := false
	for k := range n {
		i := k
		if !low {
			i = n - 1 - k
		}
		l, ok, err := at(i)
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

// segmentEdge finds the smallest (low) or largest live LSN of the log's
// entries in segment v. Its range's end is an entry's LSN: when the
// deletions leave that end live it is the answer. Else its refs are asked
// the same way, and a batch whose end the deletions cut is read.
func (c *Coordinator) segmentEdge(v segView, st *segment.LogState, low bool) (uint64, bool, error) {
	lo, hi, ok := st.Clip(segment.Whole(v.id), v.meta.MinLSN, v.meta.MaxLSN)
	full := !st.PartlyCut(segment.Whole(v.id))
	switch {
	case !ok:
		return 0, false, nil
	case full && low && lo == v.meta.MinLSN:
		return lo, true, nil
	case full && !low && hi == v.meta.MaxLSN:
		return hi, true, nil
	}
	refs, ordered, err := c.refsOf(v)
	if err != nil {
		return 0, false, err
	}
	return edgeOf(refs.Len(), ordered, low, func(i int) (uint64, bool, error) { return c.refEdge(v, refs.At(i), st, low) })
}

// refEdge finds the smallest (low) or largest live LSN of the log's
// entries in batch ref of segment v: its range's end when the deletions
// leave it live, else what reading the batch finds.
func (c *Coordinator) refEdge(v segView, ref segment.Ref, st *segment.LogState, low bool) (uint64, bool, error) {
	at := segment.Pos{Seg: v.id, Off: ref.Off}
	lo, hi, ok := st.Clip(segment.At(at), ref.MinLSN, ref.MaxLSN)
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
		segment.EachEntry(body, v.hdr.Layout(), func(e segment.Entry) {
			l := e.LSN
			if e.Kind != segment.KindData || e.Log != v.log || l < lo || l > hi || st.Dead(at, l) {
				return
			}
			if !found || low && l < best || !low && l > best {
				best, found = l, true
			}
		})
	})
	return best, found, err
}

// views returns the views of log's segments, by ID (under the caller's
// pipeline.mu, so that the active one's settled end goes with them).
func (ix *lsnIndex) views(log uint64) []segView {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	li := ix.logs[log]
	if li == nil {
		return nil
	}
	out := make([]segView, len(li.segs))
	for i, s := range li.segs {
		out[i] = s.view()
	}
	return out
}
