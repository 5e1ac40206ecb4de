package engine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// The write pipeline: a batch is reserved (its segment, offset and
// sequence number fixed, under mu), encoded and written (outside mu, so
// several batches' write+sync chains are in flight at once), then settled
// strictly in reservation order: a batch is told success only once every
// batch before it succeeded.
//
// # Locks
//
// The Coordinator's locks, in the order they are taken (holding one, a
// goroutine takes only locks below it):
//
//  1. logState.write (state.go): orders the writers of the log-state
//     record (DeleteBefore, TruncateAfter, SetUserRecord).
//  2. pipeline.mu (here): the write state below, the directory changes
//     and their syncs, rotation, retention, Close. Held for reservation,
//     settlement and the metadata I/O of rotation; never during a
//     batch's own write.
//  3. lsnIndex.mu (index.go): the index's batch refs.
//  4. readers.mu, then a readHandle's mu (readers.go).
//
// Leaf locks, under which no other lock is taken: recycler.mu,
// preparer.mu, frontier.mu, batchCache.mu, groupCommit.mu. The log state
// itself is read without a lock (an atomic pointer to a record never
// changed in place).
//
// # Conditions
//
// Two, both on mu, each for one named event:
//
//   - ioDone: a batch's I/O finished (ioPending fell). Waited for by
//     reserve (room in flight; no unsynced write under a synced one) and
//     by the settlement of a failed batch (no write in flight).
//   - settled: the head batch settled (head moved on; failErr cleared
//     once nothing is in flight). Waited for by finish (its batch is the
//     head), reserve (a failure settled; nothing in flight before a
//     rotation), TruncateAfter and Close (nothing in flight).
//
// # Invariants
//
// Checked by pipeline.check where they must hold (compiled in under the
// race detector and the dwal_invariants build tag, see invariants_on.go):
//
//   - head..tail lists the batches reserved and not settled, in
//     reservation order, all in one segment, each starting where the one
//     before it ends with the next sequence number;
//   - ioPending counts those whose I/O has not finished, unsyncedIO the
//     unsynced ones among them; at most maxInFlight are in flight;
//   - with no failure being settled, the head starts where the active
//     segment's settled log ends, and the tail ends at the reservation
//     cursor (act.off);
//   - nothing in flight means no failure is being settled.
//
// And, by construction:
//
//   - a batch's bytes are never rewritten; the next batch starts at the
//     next aligned offset;
//   - a synced batch is acknowledged only after its own write+sync and
//     every earlier batch's succeeded, so everything replay needs to
//     reach it is durable; a synced batch is not submitted while an
//     unsynced one's write is still in flight (its sync would not cover
//     it);
//   - when a batch fails, no batch after it is reserved until the failure
//     is settled; every batch after it fails too; the segment is cut back
//     to where the failed batch began only once no write is in flight;
//   - a segment is sealed only when all its batches have settled; a new
//     one is started only when nothing is in flight.
type pipeline struct {
	mu      sync.Mutex
	ioDone  sync.Cond // on mu: a batch's I/O finished
	settled sync.Cond // on mu: the head batch settled

	act        *active // the segment being written; nil between rotation and the next flush
	head, tail *flight // batches reserved and not yet settled, in reservation order
	ioPending  int     // batches whose I/O has not finished
	unsyncedIO int     // of them, the unsynced ones
	failErr    error   // set while a failed batch and those after it settle
	syncNext   bool    // the next batch must be synced (first write on a fresh segment after a failure)
	roErr      error   // sticky ErrReadOnly, set once
	closed     bool
	dirDirty   bool // directory changes not yet synced (see syncDir)

	// Written under mu, read without it.
	curID   atomic.Uint64 // the active segment, or the last one sealed
	curSize atomic.Uint64 // bytes used in the active segment; 0 right after a rotation
}

func (p *pipeline) init() {
	p.ioDone.L = &p.mu
	p.settled.L = &p.mu
}

// writable is nil when the log takes writes (under mu).
func (p *pipeline) writable() error {
	if p.closed {
		return ErrClosed
	}
	return p.roErr
}

// drain waits, under mu, until no batch is in flight.
func (p *pipeline) drain() {
	for p.head != nil {
		p.settled.Wait()
	}
}

// check asserts the pipeline's invariants (under mu). Only called when
// invariants is true.
func (p *pipeline) check() {
	assertf(p.head == nil == (p.tail == nil), "head %p, tail %p", p.head, p.tail)
	assertf(p.head != nil || p.ioPending == 0 && p.failErr == nil,
		"nothing in flight but ioPending %d, failErr %v", p.ioPending, p.failErr)
	n, io, unsynced := 0, 0, 0
	for f := p.head; f != nil; f = f.next {
		n++
		if !f.ioDone {
			io++
			if f.mode == vfs.NoSync {
				unsynced++
			}
		}
		if g := f.next; g != nil {
			assertf(g.a == f.a, "batches in flight in segments %d and %d", f.a.id, g.a.id)
			assertf(g.off == f.off+int64(f.span) && g.seq == f.seq+1,
				"batch at %d (seq %d) follows one at %d+%d (seq %d)", g.off, g.seq, f.off, f.span, f.seq)
		} else {
			assertf(f == p.tail, "the list ends at %p, tail is %p", f, p.tail)
		}
	}
	assertf(io == p.ioPending && unsynced == p.unsyncedIO && io <= maxInFlight,
		"%d batches in flight: %d with I/O pending (counted %d), %d unsynced (counted %d)",
		n, io, p.ioPending, unsynced, p.unsyncedIO)
	if a := p.act; a != nil && p.head != nil && p.failErr == nil {
		assertf(p.head.a == a, "the head batch is in segment %d, the active one is %d", p.head.a.id, a.id)
		assertf(p.head.off == a.settled, "the head batch starts at %d, the settled log ends at %d", p.head.off, a.settled)
		assertf(p.tail.off+int64(p.tail.span) == a.off, "the tail batch ends at %d, the cursor is at %d",
			p.tail.off+int64(p.tail.span), a.off)
	}
	if a := p.act; a != nil {
		assertf(a.settled <= a.off, "segment %d settled to %d past its cursor %d", a.id, a.settled, a.off)
	}
}

// maxInFlight bounds the batches reserved and not settled.
const maxInFlight = 16

// active is the segment being written.
type active struct {
	id        uint64
	f         vfs.File
	salt      uint64
	size      int64 // preallocated file size
	off       int64 // where the next batch goes (reserved, maybe not yet written)
	seq       uint64
	full      bool  // a reserved batch takes it to SegmentSize: no more batches go here
	settled   int64 // end of the last batch that settled successfully: what Replay reads
	unsynced  bool  // an unsynced batch settled here: sync before sealing or closing
	encrypter SegmentCipher
	meta      segment.Meta
	init      *frontier // initialises blocks ahead of off (nil: none needed)
}

// stopInit stops a's initialiser, if any, and waits for its write in
// flight: before a's file is synced, truncated or closed.
func (a *active) stopInit() {
	if a.init != nil {
		a.init.halt()
	}
}

// flight is one batch between its reservation and its outcome.
type flight struct {
	a      *active
	off    int64
	span   int
	seq    uint64
	mode   vfs.SyncMode
	fills  bool // it takes the segment to SegmentSize: the segment seals when it settles
	ioDone bool // its I/O finished (under mu)
	buf    *[]byte
	n      int
	bytes  int
	minLSN LSN
	maxLSN LSN
	logs   segment.BatchLogs // its data entries, by log
	recs   []segment.Entry   // its records
	dur    time.Duration     // of its I/O
	err    error             // of its I/O
	next   *flight
	ad     [segment.ADLen]byte // associated data of an encrypted batch (here, not on the stack: it would escape into the Cipher call)
}

// reset clears f for the pool, keeping what it allocated.
func (f *flight) reset() {
	logs, recs := f.logs, f.recs
	logs.Reset()
	clear(recs)
	*f = flight{logs: logs, recs: recs[:0]}
}

// flightPool recycles flights: with one writer every entry is a batch, and
// the steady state allocates nothing per entry.
var flightPool = sync.Pool{New: func() any { return new(flight) }}

// reserve waits, under mu, until the batch may go (no failure being
// settled, room in flight, no unsynced write under a synced one), rotates
// when the batch does not fit the active segment, then fixes the batch's
// segment, offset and sequence number and queues it for settlement.
func (c *Coordinator) reserve(n int, sz batchSize, sync bool, st *FlushStats) (*flight, error) {
	p := &c.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	synced, err := c.awaitRoom(sync, sz, st)
	if err != nil {
		return nil, err
	}
	a := p.act
	f := flightPool.Get().(*flight)
	logs, recs := f.logs, f.recs
	*f = flight{a: a, off: a.off, span: sz.span, seq: a.seq, n: n, bytes: st.BytesWritten, mode: vfs.NoSync, logs: logs, recs: recs}
	if synced {
		f.mode = vfs.DSync
		if c.cfg.SyncMethod == SyncFdatasync {
			f.mode = vfs.Fdatasync
		}
	}
	a.off += int64(sz.span)
	if a.init != nil {
		a.init.reserved(a.off, sz.span)
	}
	a.seq++
	if a.off >= c.cfg.SegmentSize {
		a.full, f.fills = true, true
	}
	p.syncNext = false
	if p.tail == nil {
		p.head = f
	} else {
		p.tail.next = f
	}
	p.tail = f
	p.ioPending++
	if !synced {
		p.unsyncedIO++
	}
	if invariants {
		p.check()
	}
	return f, nil
}

// awaitRoom is reserve's wait (under mu): it returns once an active
// segment has room for the batch and the batch may be submitted, and
// whether it is synced.
func (c *Coordinator) awaitRoom(sync bool, sz batchSize, st *FlushStats) (bool, error) {
	p := &c.pipe
	hdr := int64(c.align)
	for {
		if err := p.writable(); err != nil {
			return false, err
		}
		synced := (sync && c.cfg.SyncOnFlush) || p.syncNext
		switch {
		case p.failErr != nil:
			p.settled.Wait()
			continue
		case p.ioPending >= maxInFlight || synced && p.unsyncedIO > 0:
			p.ioDone.Wait()
			continue
		}
		if a := p.act; a != nil && (a.full || a.off > hdr && a.off+int64(sz.span) > a.size) {
			// Full, or the batch does not fit the preallocated space: seal
			// (once its batches have settled) and start the next one, so no
			// write extends a segment file (an extending write costs a
			// metadata commit per sync) and a huge entry gets a segment of
			// its own.
			if p.head != nil {
				p.settled.Wait()
				continue
			}
			c.rotate()
			st.SegmentRotated = true
			continue
		}
		if p.act == nil {
			if p.head != nil {
				p.settled.Wait()
				continue
			}
			if err := c.startSegment(); err != nil {
				return false, err
			}
		}
		return synced, nil
	}
}

// finish writes a reserved batch and settles it in order.
func (c *Coordinator) finish(f *flight, st FlushStats) (FlushStats, error) {
	t0 := time.Now()
	err := f.err // an encryption failure: nothing to write
	if err == nil {
		if fr := f.a.init; fr != nil {
			fr.await(f.off, f.off+int64(f.span))
		}
		err = f.a.f.WriteAt((*f.buf)[:f.span], f.off, f.mode)
	}
	f.dur = time.Since(t0)
	c.pool.Put(f.buf)
	f.buf = nil

	p := &c.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	f.err, f.ioDone = err, true
	p.ioPending--
	if f.mode == vfs.NoSync {
		p.unsyncedIO--
	}
	p.ioDone.Broadcast()
	for p.head != f {
		p.settled.Wait()
	}
	err = c.settle(f, &st)
	p.head = f.next
	if p.head == nil {
		p.tail = nil
		p.failErr = nil
	}
	p.settled.Broadcast()
	if invariants {
		p.check()
	}
	f.reset()
	flightPool.Put(f)
	return st, err
}

// settle decides the outcome of f, the oldest batch in flight (under mu).
func (c *Coordinator) settle(f *flight, st *FlushStats) error {
	p := &c.pipe
	if p.failErr != nil {
		return fmt.Errorf("dwal: batch of LSN %d..%d discarded: an earlier batch failed: %w", f.minLSN, f.maxLSN, p.failErr)
	}
	a := f.a
	if f.err != nil {
		// Hold new batches back and let the later ones' writes land before
		// cutting the file.
		p.failErr = f.err
		for p.ioPending > 0 {
			p.ioDone.Wait()
		}
		err := c.failBatch(f)
		p.failErr = err
		return err
	}
	if invariants {
		assertf(f.off == a.settled, "batch at %d of segment %d settles after the log settled to %d", f.off, a.id, a.settled)
	}
	c.observe(f)
	a.settled = f.off + int64(f.span)
	c.idx.add(f, &c.state)
	if f.mode == vfs.NoSync {
		a.unsynced = true
	}
	if data := f.n - len(f.recs); data > 0 {
		a.meta.Add(uint64(f.minLSN), uint64(f.maxLSN), uint64(data))
	}
	c.applyRecords(f)
	p.curSize.Store(uint64(a.settled))
	c.ctr.written(f)
	st.EntriesFlushed = f.n - len(f.recs)
	st.DiskBytes = f.span
	if f.fills && p.act == a {
		c.rotate()
		st.SegmentRotated = true
	}
	return nil
}

// observe records the latency of settled batch f.
func (c *Coordinator) observe(f *flight) {
	c.ctr.batchLat.observe(f.dur)
	if f.mode == vfs.NoSync {
		return
	}
	c.ctr.syncLat.observe(f.dur)
	if f.dur > c.cfg.SlowSyncThreshold {
		c.log.Warn("dwal: slow sync", "segment", f.a.id, "duration", f.dur, "bytes", f.span)
	}
}

// failBatch applies the sync-failure rule to f, whose write or sync failed,
// once no write is in flight: cut the segment back to where f began and
// make that durable, seal it, and go on with a fresh segment whose first
// write is synced; where that cannot be trusted (buffered I/O, or the
// rollback failed) turn read-only. Returns f's error.
func (c *Coordinator) failBatch(f *flight) error {
	p := &c.pipe
	a := f.a
	c.ctr.syncErrors.Add(1)
	if errors.Is(f.err, align.ErrMisaligned) {
		// Nothing reached the disk: a bug, not an I/O failure.
		p.roErr = fmt.Errorf("%w: internal error: %w", ErrReadOnly, f.err)
		return p.roErr
	}
	batchErr := fmt.Errorf("dwal: write of LSN %d..%d to segment %d failed: %w", f.minLSN, f.maxLSN, a.id, f.err)
	a.stopInit()
	a.off, a.settled = f.off, f.off
	rbErr := a.f.Truncate(f.off)
	if rbErr == nil {
		// NB: this is not a retry of the failed sync: it makes the truncation
		// durable. If it fails too, nothing written since the last good
		// sync can be trusted.
		rbErr = a.f.Sync()
	}
	if rbErr != nil || pageCache(c.fs) {
		c.turnReadOnly(f, rbErr)
		return batchErr
	}
	a.unsynced = false // the rollback's sync covered everything before f
	c.log.Warn("dwal: write failed; segment rolled back and sealed", "segment", a.id, "offset", f.off, "err", f.err)
	c.rotate()
	p.syncNext = true
	return batchErr
}

// turnReadOnly makes the log read-only after f failed and its rollback
// failed (rbErr) or cannot be trusted (a buffered backend). Where the
// rollback failed, the failed batch may still be in the file, whole: a
// fence records where the log really ends, so recovery cuts it off
// rather than replay a batch whose caller was told it failed.
func (c *Coordinator) turnReadOnly(f *flight, rbErr error) {
	why := "buffered backend: the page cache may hold the failed batch's state"
	if rbErr != nil {
		why = "rollback failed: " + rbErr.Error()
	}
	c.pipe.roErr = fmt.Errorf("%w: %w (%s); fate of LSN %d..%d unknown", ErrReadOnly, f.err, why, f.minLSN, f.maxLSN)
	c.log.Error("dwal: turned read-only", "err", c.pipe.roErr)
	if rbErr == nil {
		return
	}
	if err := c.writeFence(f.a.id, f.off); err != nil {
		c.log.Error("dwal: cannot record the end of the log; recovery may replay the failed batch",
			"segment", f.a.id, "offset", f.off, "err", err)
	}
}
