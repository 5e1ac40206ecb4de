package engine

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// Replay calls fn for every live entry (not deleted by DeleteBefore or
// TruncateAfter) with LSN >= from, in write order: segment by segment,
// batch by batch, entry by entry. It reads what was written when it starts
// (later writes are not seen) and stops at the end of each segment's log;
// it returns fn's first error, or an error wrapping ErrCorrupt when a
// sealed segment holds fewer or more entries than its .meta says. The
// bytes given to fn are only valid during the call.
func (c *Coordinator) Replay(from LSN, fn func(LSN, []byte) error) error {
	return c.replay(0, from, fn)
}

// replay is Replay of log: it reads the segments that hold its data
// entries through, in ID order.
func (c *Coordinator) replay(log uint64, from LSN, fn func(LSN, []byte) error) error {
	p := &c.pipe
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	views := c.idx.views(log)
	actID, actOff := uint64(0), int64(0)
	if p.act != nil {
		actID, actOff = p.act.id, p.act.settled
	}
	p.mu.Unlock()
	for _, v := range views {
		st := c.state.of(log) // what is deleted is not replayed
		if v.meta.MaxLSN < uint64(from) || st.Covers(segment.Whole(v.id), v.meta, true) == segment.DeletesAll {
			continue
		}
		live := func(off int64, e segment.Entry) error {
			if e.Kind != segment.KindData || e.Log != log || e.LSN < uint64(from) || st.Dead(segment.Pos{Seg: v.id, Off: off}, e.LSN) {
				return nil
			}
			return fn(LSN(e.LSN), e.Data)
		}
		if err := c.replaySegment(v, v.id == actID, actOff, live); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment scans segment v up to the end of its log (actOff for the
// active one), handing its entries to fn, and checks a sealed one against
// its .meta.
func (c *Coordinator) replaySegment(v segView, isActive bool, actOff int64, fn func(int64, segment.Entry) error) error {
	name := segment.Name(v.id)
	f, err := c.fs.Open(name, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by retention or a deletion since the lookup
		}
		return fmt.Errorf("dwal: replay %s: %w", name, err)
	}
	defer f.Close()
	limit := actOff
	if !isActive {
		if limit, err = f.Size(); err != nil {
			return fmt.Errorf("dwal: replay %s: %w", name, err)
		}
	}
	sc, err := segment.Scan(f, c.align, limit, segment.ScanOptions{Keys: c.keys, Entry: fn})
	if err != nil {
		return err
	}
	if sc.Header.Salt != v.hdr.Salt {
		return nil // retired and reused since the lookup
	}
	if !isActive && sc.Meta != v.segMeta {
		return segment.MetaMismatch(name, sc, v.segMeta)
	}
	return nil
}

// replayLog is Replay of a set's log: it reads the log's own batches
// through the index, never another log's. The batches go in stream
// order, as written; those of a log a rewrite moved go in LSN order (it
// wrote ascending LSNs, and its copied oldest entries come first, where
// they were written). Like Replay, it sees what was written when it
// starts.
func (c *Coordinator) replayLog(log uint64, from LSN, fn func(LSN, []byte) error) error {
	p := &c.pipe
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	st := c.state.of(log) // what is deleted is not replayed; NB: before the views (see read)
	views, _ := c.idx.liveViews(log)
	p.mu.Unlock()
	r := logReplay{c: c, log: log, from: uint64(from), st: st, fn: fn}
	for {
		err := r.run(views)
		r.above, r.rerun = r.lastLSN, r.done // a run after this one replays above it (byLSN)
		if errors.Is(err, errStale) {
			// A batch's segment went, because the log's state changed
			// since the replay began (a rewrite moved the entries, whose
			// copies the views predate): on from the state now.
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				return ErrClosed
			}
			r.st = c.state.of(log)
			views, _ = c.idx.liveViews(log)
			p.mu.Unlock()
			continue
		}
		// A sealed segment's index file led to a batch it does not
		// describe: rebuilt from the segment, and the replay goes on after
		// the last batch replayed.
		if lied, err := c.repairLie(err); !lied || err != nil {
			return err
		}
	}
}

// logReplay is one replayLog.
type logReplay struct {
	c       *Coordinator
	log     uint64
	from    uint64
	st      *segment.LogState
	fn      func(LSN, []byte) error
	done    bool      // a batch was replayed: resume after last
	byLSN   bool      // the order of the last run: by LSN, not stream position
	last    replayRef // the last batch replayed
	lastLSN uint64    // the largest LSN replayed (byLSN: or passed as dead)
	above   uint64    // byLSN, in a run after one that replayed: only LSNs above it are replayed
	rerun   bool      // above holds
	body    []byte    // scratch: a batch's entries, copied out of the read buffers
}

// replayRef is one batch of the log to replay, with its live LSN range.
type replayRef struct {
	v      int // in the views
	ref    segment.Ref
	at     segment.Pos
	lo, hi uint64
}

func (r *logReplay) less(a, b *replayRef) int {
	if r.byLSN {
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
	}
	return a.at.Compare(b.at)
}

// run replays the batches of views after the last one replayed.
func (r *logReplay) run(views []segView) error {
	var refs []replayRef
	for i := range views {
		v := &views[i]
		rs, _, err := r.c.refsOf(*v)
		if err != nil {
			return err
		}
		for k := range rs.Len() {
			ref := rs.At(k)
			at := segment.Pos{Seg: v.id, Off: ref.Off}
			lo, hi, ok := r.st.Clip(segment.At(at), ref.MinLSN, ref.MaxLSN)
			if ok && hi >= r.from {
				refs = append(refs, replayRef{v: i, ref: ref, at: at, lo: lo, hi: hi})
			}
		}
	}
	// A log a rewrite moved wrote ascending LSNs (else it is not
	// rewritten): its write order is its LSN order, the copies of its
	// oldest entries first. Any other log goes in stream order, as written.
	// A run that finds a rewrite since the last one resumes above the
	// largest LSN replayed: the log wrote ascending LSNs up to it.
	r.byLSN = len(r.st.Moves) > 0
	slices.SortFunc(refs, func(a, b replayRef) int { return r.less(&a, &b) })
	for i := range refs {
		x := &refs[i]
		if r.byLSN && r.rerun && x.hi <= r.above || !r.byLSN && r.done && r.less(x, &r.last) <= 0 {
			continue
		}
		if err := r.batch(&views[x.v], x); err != nil {
			return err
		}
		r.done, r.last = true, *x
		if r.byLSN {
			r.lastLSN = max(r.lastLSN, x.hi) // NB: its dead entries above the last replayed too
		}
	}
	return nil
}

// batch replays the log's live entries of one batch.
func (r *logReplay) batch(v *segView, x *replayRef) error {
	r.body = r.body[:0]
	read := false
	err := r.c.withBatch(*v, x.ref, func(body []byte) {
		// NB: copied out, so that fn runs with no read handle held (fn may
		// write, and a write may retire a segment).
		r.body = append(r.body, body...)
		read = true
	})
	if err != nil {
		return err
	}
	if !read && r.c.state.of(r.log) != r.st {
		return errStale
	}
	var ferr error
	segment.EachEntry(r.body, v.hdr.Layout(), func(e segment.Entry) {
		if ferr != nil || e.Kind != segment.KindData || e.Log != r.log || e.LSN < r.from || r.st.Dead(x.at, e.LSN) ||
			r.byLSN && r.rerun && e.LSN <= r.above {
			return
		}
		ferr = r.fn(LSN(e.LSN), e.Data)
		r.lastLSN = max(r.lastLSN, e.LSN)
	})
	return ferr
}

// errStale: a lookup's batch went with its segment because the log's
// state changed since the lookup took its snapshot; it looks again.
var errStale = errors.New("dwal: the log changed under the lookup")
