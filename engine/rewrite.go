package engine

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// The rewriter: a set's segment goes once no log has a live entry in it,
// so one log that never deletes (a raft group that never compacts, a
// partition nobody consumes) would keep every segment it has an entry in.
// Once the dead fraction of the sealed segments passes
// Config.RewriteDeadFraction, the rewriter copies the live entries that
// the logs pinning the oldest pinned segment hold in sealed segments
// forward into the stream, and writes with each copy a rewrite record
// that deletes the originals; the old segments then hold nothing live and
// go. A copying collector: each entry is copied once per pass of the
// stream over it, and what stays live is bounded by what is not deleted.
//
// The rule that keeps it exact: a rewrite of log L through LSN b is a
// sequence of chunks, each one batch holding copies of L's live entries
// and a rewrite record (KindRewrite, LSN t, the position p of the first
// chunk): every entry of L with LSN <= t in a batch before p is deleted
// (segment.Move). The chunks copy L's live batches in LSN order (a log
// whose live batches do not ascend as written is not rewritten), so after chunk
// k every entry of L at or below its t is copied in chunks 1..k; a crash
// between chunks leaves a prefix moved and the rest where it was. While a
// log is rewritten its writes wait (logView.gate) and its TruncateAfter
// too (logView.rec): nothing of L is written between the snapshot the
// chunks copy and the last chunk, so the copies are the newest versions.

// rewriteChunkBytes is what one chunk copies at most (more only when one
// batch alone is larger).
const rewriteChunkBytes = 1 << 20

// rewriteRoundsPerWake bounds the rewrites made for one trigger.
const rewriteRoundsPerWake = 16

// rewriter is the set's background rewriter: one goroutine, woken after a
// seal or a deletion, stopped at Close.
type rewriter struct {
	wake chan struct{}
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	blocked map[uint64]string // logs found not rewritable, and why (for Pins)
}

// startRewriter starts c's rewriter (a set only).
func (c *Coordinator) startRewriter() {
	r := &rewriter{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}), blocked: map[uint64]string{}}
	c.rw = r
	go r.run(c)
	c.pokeRewriter()
}

// pokeRewriter asks the rewriter to look again (never blocks).
func (c *Coordinator) pokeRewriter() {
	if c.rw == nil {
		return
	}
	select {
	case c.rw.wake <- struct{}{}:
	default:
	}
}

// stopRewriter stops the rewriter and waits for it: a chunk being written
// completes first.
func (c *Coordinator) stopRewriter() {
	if c.rw == nil {
		return
	}
	select {
	case <-c.rw.quit:
	default:
		close(c.rw.quit)
	}
	<-c.rw.done
}

func (r *rewriter) stopped() bool {
	select {
	case <-r.quit:
		return true
	default:
		return false
	}
}

func (r *rewriter) run(c *Coordinator) {
	defer close(r.done)
	for {
		select {
		case <-r.quit:
			return
		case <-r.wake:
		}
		for range rewriteRoundsPerWake {
			if r.stopped() || !c.rewriteRound() {
				break
			}
		}
	}
}

// streamUse is what the sealed segments hold: their entries' bytes, an
// estimate of the live ones', and per log pinning them.
type streamUse struct {
	sealed  int
	bytes   float64
	live    float64
	oldest  uint64   // the oldest sealed segment with a live entry
	pinning []uint64 // the logs with a live entry in it
	pins    map[uint64]*Pin
}

// use measures the sealed segments under the logs' states. A log's live
// entries (and bytes) in a segment are estimated from its live LSN range
// against its whole range there (exact for a log of consecutive LSNs).
func (ix *lsnIndex) use() streamUse {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	u := streamUse{pins: map[uint64]*Pin{}}
	for _, s := range ix.segs {
		if s.active != nil {
			continue
		}
		u.sealed++
		alive := 0
		var sole uint64
		live := 0.0
		for _, ls := range s.logs {
			if !ls.live {
				continue
			}
			share := 1.0
			if w := float64(ls.meta.MaxLSN-ls.meta.MinLSN) + 1; w > 1 {
				share = (float64(ls.hi-ls.lo) + 1) / w
			}
			est := share * float64(ls.meta.Entries)
			live += share * float64(ls.bytes)
			p := u.pins[ls.log]
			if p == nil {
				p = &Pin{Log: ls.log, Oldest: s.id}
				u.pins[ls.log] = p
			}
			p.Segments++
			p.LiveEntries += uint64(est + 0.5)
			alive++
			sole = ls.log
			if u.oldest == 0 || u.oldest == s.id {
				u.oldest = s.id
				u.pinning = append(u.pinning, ls.log)
			}
		}
		if alive == 1 {
			u.pins[sole].SoleSegments++
		}
		if alive > 0 {
			// NB: a segment with nothing live goes anyway (once a
			// checkpoint covers its records): no rewrite is owed to it.
			u.bytes += float64(s.bytes)
			u.live += live
		}
	}
	return u
}

// deadFraction is the share of the entry bytes deleted in the sealed
// segments that hold a live entry.
func (u *streamUse) deadFraction() float64 {
	if u.bytes == 0 {
		return 0
	}
	return max(1-u.live/u.bytes, 0)
}

// rewriteRound rewrites the logs pinning the oldest pinned sealed segment
// when the dead fraction calls for it; it reports whether it rewrote any.
func (c *Coordinator) rewriteRound() bool {
	if c.writable() != nil {
		return false
	}
	u := c.idx.use()
	if u.sealed < 2 || u.oldest == 0 || u.deadFraction() < c.cfg.RewriteDeadFraction {
		return false
	}
	moved := false
	for _, id := range u.pinning {
		n, err := c.rewriteLog(id)
		switch {
		case errors.Is(err, errNotRewritable):
			c.rw.mu.Lock()
			c.rw.blocked[id] = err.Error()
			c.rw.mu.Unlock()
		case err != nil:
			c.log.Error("dwal: rewrite of a lagging log failed; its entries stay where they are", "log", id, "err", err)
			return false
		case n > 0:
			c.rw.mu.Lock()
			delete(c.rw.blocked, id)
			c.rw.mu.Unlock()
			moved = true
		}
		if c.rw.stopped() {
			return false
		}
	}
	return moved
}

// errNotRewritable: the log's live batches do not ascend in LSN as
// written, so no copy keeps both the rewrite exact and Replay's order.
var errNotRewritable = errors.New("its live batches' LSNs do not ascend as written")

// rewriteLog copies log id's live entries in sealed segments forward, in
// chunks, each with its rewrite record; it returns the entries copied.
func (c *Coordinator) rewriteLog(id uint64) (int, error) {
	v := c.state.view(id)
	v.rec.Lock()
	defer v.rec.Unlock()
	v.gate.Lock() // the log's writes wait: the copies are the newest versions
	defer v.gate.Unlock()
	var n int
	err := c.trustingIndexes(func() (err error) {
		n, err = c.rewriteOnce(id, v.st.Load())
		return err
	})
	if n > 0 {
		c.ctr.rewrites.Add(1)
		c.ctr.rewritten.Add(uint64(n))
		c.log.Info("dwal: rewrote a lagging log forward", "log", id, "entries", n)
	}
	return n, err
}

// rewriteRef is one live batch of the log to copy.
type rewriteRef struct {
	v      int
	ref    segment.Ref
	at     segment.Pos
	lo, hi uint64
}

// rewriteOnce is one try of rewriteLog under the log's locks.
func (c *Coordinator) rewriteOnce(id uint64, st *segment.LogState) (int, error) {
	views, _ := c.idx.liveViews(id)
	var through uint64
	sealed := false
	for _, v := range views {
		if !v.active {
			if _, hi, ok := st.Clip(segment.Whole(v.id), v.meta.MinLSN, v.meta.MaxLSN); ok {
				through, sealed = max(through, hi), true
			}
		}
	}
	if !sealed {
		return 0, nil
	}
	var refs []rewriteRef
	for i, v := range views {
		rs, _, err := c.refsOf(v)
		if err != nil {
			return 0, err
		}
		for k := range rs.Len() {
			ref := rs.At(k)
			at := segment.Pos{Seg: v.id, Off: ref.Off}
			if lo, hi, ok := st.Clip(segment.At(at), ref.MinLSN, ref.MaxLSN); ok && lo <= through {
				refs = append(refs, rewriteRef{v: i, ref: ref, at: at, lo: lo, hi: hi})
			}
		}
	}
	// The log's write order must be its LSN order (Replay's order after
	// the rewrite): batches ascending as written, or, once moved, disjoint
	// in LSN (the copies of the oldest come first).
	if len(st.Moves) > 0 {
		slices.SortFunc(refs, func(a, b rewriteRef) int { return cmp.Compare(a.lo, b.lo) })
	} else {
		slices.SortFunc(refs, func(a, b rewriteRef) int { return a.at.Compare(b.at) })
	}
	for i := 1; i < len(refs); i++ {
		if refs[i].lo <= refs[i-1].hi {
			return 0, fmt.Errorf("%w: LSN %d..%d in segment %d, then %d..%d in segment %d", errNotRewritable,
				refs[i-1].lo, refs[i-1].hi, refs[i-1].at.Seg, refs[i].lo, refs[i].hi, refs[i].at.Seg)
		}
	}
	w := chunkWriter{c: c, log: id}
	for _, r := range refs {
		var body []byte
		if err := c.withBatch(views[r.v], r.ref, func(b []byte) { body = append(body, b...) }); err != nil {
			return w.copied, err
		}
		segment.EachEntry(body, views[r.v].hdr.Layout(), func(e segment.Entry) {
			if e.Kind == segment.KindData && e.Log == id && e.LSN <= through && !st.Dead(r.at, e.LSN) {
				w.add(e)
			}
		})
		if w.bytes >= rewriteChunkBytes {
			if err := w.flush(); err != nil {
				return w.copied, err
			}
		}
		if c.rw != nil && c.rw.stopped() {
			break // what is copied is exact; the rest stays for the next Open
		}
	}
	return w.copied, w.flush()
}

// chunkWriter writes a rewrite's chunks.
type chunkWriter struct {
	c      *Coordinator
	log    uint64
	ents   []segment.Entry
	bytes  int
	maxLSN uint64
	first  segment.Pos // the first chunk's position, once one is written
	copied int         // the entries of the chunks written
}

// add queues a copy of e (its data copied: e's bytes are a read buffer's).
func (w *chunkWriter) add(e segment.Entry) {
	e.Data = slices.Clone(e.Data)
	w.ents = append(w.ents, e)
	w.bytes += segment.EntryHeaderLen2 + len(e.Data)
	w.maxLSN = max(w.maxLSN, e.LSN)
}

// flush writes the queued copies and their rewrite record as one synced
// batch.
func (w *chunkWriter) flush() error {
	if len(w.ents) == 0 {
		return nil
	}
	rec := segment.Entry{Kind: segment.KindRewrite, Log: w.log, LSN: w.maxLSN}
	if w.copied > 0 {
		rec.Data = segment.EncodePos(w.first)
	}
	ents := append(w.ents, rec)
	pos, err := w.c.writeBatchAt(len(ents), func(i int) segment.Entry { return ents[i] })
	if err != nil {
		return fmt.Errorf("dwal: log %d: rewrite through LSN %d: %w", w.log, w.maxLSN, err)
	}
	if w.copied == 0 {
		w.first = pos
	}
	w.copied += len(w.ents)
	clear(w.ents)
	w.ents, w.bytes = w.ents[:0], 0
	return nil
}

// writeBatchAt writes a synced batch and returns where it went.
func (c *Coordinator) writeBatchAt(n int, at func(int) segment.Entry) (segment.Pos, error) {
	f, st, err := c.begin(n, at, true)
	if err != nil {
		return segment.Pos{}, err
	}
	pos := segment.Pos{Seg: f.a.id, Off: f.off}
	_, err = c.finish(f, st)
	return pos, err
}

// Pin is what one log of a set holds in the sealed segments.
type Pin struct {
	Log          uint64
	Oldest       uint64 // the oldest sealed segment with a live entry of the log
	Segments     int    // sealed segments with a live entry of the log
	SoleSegments int    // of them, those in which no other log has a live entry
	LiveEntries  uint64 // its live entries in them (estimated from LSN ranges)
	// NotRewritable says why the rewriter could not move the log forward
	// (its live batches do not ascend in LSN as written), when it tried.
	NotRewritable string
}

// Pins reports, for every log with a live entry in a sealed segment, what
// it pins, oldest first: the logs that keep the oldest segments are the
// ones the rewriter moves forward.
func (s *Set) Pins() []Pin {
	c := s.c
	u := c.idx.use()
	out := make([]Pin, 0, len(u.pins))
	c.rw.mu.Lock()
	for _, p := range u.pins {
		p.NotRewritable = c.rw.blocked[p.Log]
		out = append(out, *p)
	}
	c.rw.mu.Unlock()
	slices.SortFunc(out, func(a, b Pin) int {
		if a.Oldest != b.Oldest {
			return cmp.Compare(a.Oldest, b.Oldest)
		}
		return cmp.Compare(b.Segments, a.Segments)
	})
	return out
}

// DeadFraction is the share of the sealed segments' entry bytes that are
// deleted (estimated as Pins estimates): the rewriter moves the lagging
// logs forward once it reaches Config.RewriteDeadFraction.
func (s *Set) DeadFraction() float64 {
	u := s.c.idx.use()
	return u.deadFraction()
}
