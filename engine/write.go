package engine

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// The write path. A batch is reserved (its segment, offset and sequence
// number fixed, under mu), encoded and written (outside mu, so several
// batches' write+sync chains are in flight at once), then settled strictly
// in reservation order: a batch is told success only once every batch
// before it succeeded. Invariants:
//
//   - a batch's bytes are never rewritten; the next batch starts at the next
//     aligned offset;
//   - a synced batch is acknowledged only after its own write+sync and every
//     earlier batch's succeeded, so everything replay needs to reach it is
//     durable; a synced batch is not submitted while an unsynced one's
//     write is still in flight (its sync would not cover it);
//   - when a batch fails, no batch after it is reserved until the failure is
//     settled; every batch after it fails too; the segment is cut back to
//     where the failed batch began only once no write is in flight;
//   - a segment is sealed only when all its batches have settled; a new one
//     is started only when nothing is in flight, so all batches in flight
//     are in the same segment.

// maxInFlight bounds the batches reserved and not settled.
const maxInFlight = 16

// flight is one batch between its reservation and its outcome.
type flight struct {
	a      *active
	off    int64
	span   int
	seq    uint64
	mode   vfs.SyncMode
	fills  bool // it takes the segment to SegmentSize: the segment seals when it settles
	buf    *[]byte
	n      int
	bytes  int
	minLSN LSN
	maxLSN LSN
	dur    time.Duration // of its I/O
	err    error         // of its I/O
	next   *flight
	ad     [segment.ADLen]byte // associated data of an encrypted batch (here, not on the stack: it would escape into the Cipher call)
}

// writeBatch writes n entries (got through at) as one batch and waits for
// its outcome.
func (c *Coordinator) writeBatch(n int, at func(int) (LSN, []byte), sync bool) (FlushStats, error) {
	f, st, err := c.begin(n, at, sync)
	if err != nil {
		return st, err
	}
	return c.finish(f, st)
}

// begin checks and reserves a batch and encodes it. The returned flight
// must be passed to finish.
func (c *Coordinator) begin(n int, at func(int) (LSN, []byte), sync bool) (*flight, FlushStats, error) {
	var st FlushStats
	sz, err := c.measure(n, at, &st)
	if err != nil {
		return nil, st, err
	}
	f, err := c.reserve(n, sz, sync, &st)
	if err != nil {
		return nil, st, err
	}
	c.encode(f, at, sz)
	return f, st, nil
}

// batchSize is what a batch of entries takes.
type batchSize struct {
	plain   int // bytes of the encoded entries
	payload int // bytes after the header: plain, plus the cipher's overhead
	span    int // aligned bytes of the whole batch
}

// measure checks the entries against MaxEntrySize and the batch limit and
// sizes the batch; it counts their payload bytes into st.
func (c *Coordinator) measure(n int, at func(int) (LSN, []byte), st *FlushStats) (batchSize, error) {
	var sz batchSize
	for i := range n {
		_, d := at(i)
		if len(d) > c.cfg.MaxEntrySize {
			return sz, fmt.Errorf("%w: entry %d is %d bytes, limit %d", ErrEntryTooLarge, i, len(d), c.cfg.MaxEntrySize)
		}
		sz.plain += segment.EntryHeaderLen + len(d)
		st.BytesWritten += len(d)
	}
	sz.payload = sz.plain
	if c.cfg.Cipher != nil {
		sz.payload += c.cfg.Cipher.Overhead()
	}
	if sz.payload > segment.MaxBatchPayload {
		return sz, fmt.Errorf("%w: batch of %d bytes exceeds the %d-byte batch limit", ErrEntryTooLarge, sz.payload, segment.MaxBatchPayload)
	}
	sz.span = segment.BatchSpan(sz.payload, c.align)
	return sz, nil
}

// reserve waits, under mu, until the batch may go (no failure being
// settled, room in flight, no unsynced write under a synced one), seals a
// segment it does not fit and starts the next, then fixes the batch's
// segment, offset and sequence number and queues it for settlement.
func (c *Coordinator) reserve(n int, sz batchSize, sync bool, st *FlushStats) (*flight, error) {
	hdr := int64(c.align)
	c.mu.Lock()
	defer c.mu.Unlock()
	var synced bool
	for {
		if c.closed {
			return nil, ErrClosed
		}
		if c.roErr != nil {
			return nil, c.roErr
		}
		synced = (sync && c.cfg.SyncOnFlush) || c.syncNext
		if c.failErr != nil || c.ioPending >= maxInFlight || synced && c.unsyncedIO > 0 {
			c.cond.Wait()
			continue
		}
		if a := c.act; a != nil && (a.full || a.off > hdr && a.off+int64(sz.span) > a.size) {
			// Full, or the batch does not fit the preallocated space: seal
			// (once its batches have settled) and start the next one, so no
			// write extends a segment file (an extending write costs a
			// metadata commit per sync) and a huge entry gets a segment of
			// its own.
			if c.head != nil {
				c.cond.Wait()
				continue
			}
			if a == c.act {
				c.seal()
				st.SegmentRotated = true
			}
			continue
		}
		if c.act == nil {
			if c.head != nil {
				c.cond.Wait()
				continue
			}
			if err := c.startSegment(); err != nil {
				return nil, err
			}
		}
		break
	}
	a := c.act
	f := flightPool.Get().(*flight)
	*f = flight{a: a, off: a.off, span: sz.span, seq: a.seq, n: n, bytes: st.BytesWritten, mode: vfs.NoSync}
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
	c.syncNext = false
	if c.tail == nil {
		c.head = f
	} else {
		c.tail.next = f
	}
	c.tail = f
	c.ioPending++
	if !synced {
		c.unsyncedIO++
	}
	return f, nil
}

// encode writes the reserved batch f into a pooled buffer, outside mu:
// header, entries (encrypted in an encrypted segment), zeros to its span.
func (c *Coordinator) encode(f *flight, at func(int) (LSN, []byte), sz batchSize) {
	a := f.a
	f.buf = c.pool.Get(sz.span)
	buf := *f.buf
	h := segment.BatchHeader{Length: uint32(sz.payload), Count: uint32(f.n), Seq: f.seq, Salt: a.salt}
	var plainBuf *[]byte
	p := segment.BatchHeaderLen
	if a.encrypter != nil {
		// Encode the entries into a scratch buffer, then encrypt them into
		// place after the header.
		plainBuf = c.pool.Get(sz.plain)
		buf, p = *plainBuf, 0
	}
	var used int
	h.MinLSN, h.MaxLSN, used = segment.EncodeEntries(buf[p:], f.n, func(i int) (uint64, []byte) {
		lsn, d := at(i)
		return uint64(lsn), d
	})
	p += used
	if a.encrypter != nil {
		c.cacheBatch(f, buf[:p])
	} else {
		c.cacheBatch(f, buf[segment.BatchHeaderLen:p])
	}
	if a.encrypter != nil {
		out, err := a.encrypter.Encrypt((*f.buf)[segment.BatchHeaderLen:segment.BatchHeaderLen], buf[:p], segment.BatchAD(f.ad[:], a.id, a.salt, &h))
		c.pool.Put(plainBuf)
		buf = *f.buf
		if err == nil && len(out) != sz.payload-sz.plain+p {
			err = fmt.Errorf("cipher %s encrypted %d bytes into %d, want %d", c.cfg.Cipher.Name(), p, len(out), sz.payload)
		}
		if err != nil {
			// Nothing was written: fail the batch through the normal path,
			// which cuts nothing (no byte reached the file at f.off).
			f.err = fmt.Errorf("dwal: encrypt batch: %w", err)
		}
		p = segment.BatchHeaderLen + sz.payload
	}
	clear(buf[p:sz.span])
	segment.EncodeBatchHeader(buf, &h)
	f.minLSN, f.maxLSN = LSN(h.MinLSN), LSN(h.MaxLSN)
}

// finish writes a reserved batch and settles it in order.
func (c *Coordinator) finish(f *flight, st FlushStats) (FlushStats, error) {
	t0 := time.Now()
	err := f.err // a sealing failure: nothing to write
	if err == nil {
		if fr := f.a.init; fr != nil {
			fr.await(f.off, f.off+int64(f.span))
		}
		err = f.a.f.WriteAt((*f.buf)[:f.span], f.off, f.mode)
	}
	f.dur = time.Since(t0)
	c.pool.Put(f.buf)
	f.buf = nil

	c.mu.Lock()
	defer c.mu.Unlock()
	f.err = err
	c.ioPending--
	if f.mode == vfs.NoSync {
		c.unsyncedIO--
	}
	c.cond.Broadcast()
	for c.head != f {
		c.cond.Wait()
	}
	err = c.settle(f, &st)
	c.head = f.next
	if c.head == nil {
		c.tail = nil
		c.failErr = nil
	}
	c.cond.Broadcast()
	*f = flight{}
	flightPool.Put(f)
	return st, err
}

// flightPool recycles flights: with one writer every entry is a batch, and
// the steady state allocates nothing per entry.
var flightPool = sync.Pool{New: func() any { return new(flight) }}

// settle decides the outcome of f, the oldest batch in flight.
func (c *Coordinator) settle(f *flight, st *FlushStats) error {
	if c.failErr != nil {
		return fmt.Errorf("dwal: batch of LSN %d..%d discarded: an earlier batch failed: %w", f.minLSN, f.maxLSN, c.failErr)
	}
	a := f.a
	if f.err != nil {
		// Hold new batches back and let the later ones' writes land before
		// cutting the file.
		c.failErr = f.err
		for c.ioPending > 0 {
			c.cond.Wait()
		}
		err := c.failBatch(f)
		c.failErr = err
		return err
	}
	c.stats.batchLat.observe(f.dur)
	if f.mode != vfs.NoSync {
		c.stats.syncLat.observe(f.dur)
	}
	if f.mode != vfs.NoSync && f.dur > c.cfg.SlowSyncThreshold {
		c.log.Warn("dwal: slow sync", "segment", a.id, "duration", f.dur, "bytes", f.span)
	}
	a.settled = f.off + int64(f.span)
	c.indexBatch(f)
	if f.mode == vfs.NoSync {
		a.unsynced = true
	}
	a.meta.Add(uint64(f.minLSN), uint64(f.maxLSN), uint64(f.n))
	c.curSize.Store(uint64(a.settled))
	c.entries.Add(uint64(f.n))
	c.bytes.Add(uint64(f.bytes))
	c.diskByte.Add(uint64(f.span))
	c.flushes.Add(1)
	st.EntriesFlushed = f.n
	st.DiskBytes = f.span
	if f.fills && c.act == a {
		c.seal()
		st.SegmentRotated = true
	}
	return nil
}

// failBatch applies the sync-failure rule to f, whose write or sync failed,
// once no write is in flight: cut the segment back to where f began and
// make that durable, seal it, and go on with a fresh segment whose first
// write is synced; where that cannot be trusted (buffered I/O, or the
// rollback failed) turn read-only. Returns f's error.
func (c *Coordinator) failBatch(f *flight) error {
	a := f.a
	c.stats.syncErrors.Add(1)
	if errors.Is(f.err, align.ErrMisaligned) {
		// Nothing reached the disk: a bug, not an I/O failure.
		c.roErr = fmt.Errorf("%w: internal error: %w", ErrReadOnly, f.err)
		return c.roErr
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
		why := "buffered backend: the page cache may hold the failed batch's state"
		if rbErr != nil {
			why = "rollback failed: " + rbErr.Error()
		}
		c.roErr = fmt.Errorf("%w: %w (%s); fate of LSN %d..%d unknown", ErrReadOnly, f.err, why, f.minLSN, f.maxLSN)
		c.log.Error("dwal: turned read-only", "err", c.roErr)
		if rbErr != nil {
			// The failed batch may still be in the file, whole. Record where
			// the log really ends so recovery cuts it off rather than replay
			// a batch whose caller was told it failed.
			if err := c.writeFence(a.id, f.off); err != nil {
				c.log.Error("dwal: cannot record the end of the log; recovery may replay the failed batch",
					"segment", a.id, "offset", f.off, "err", err)
			}
		}
		return batchErr
	}
	a.unsynced = false // the rollback's sync covered everything before f
	c.log.Warn("dwal: write failed; segment rolled back and sealed", "segment", a.id, "offset", f.off, "err", f.err)
	c.seal()
	c.syncNext = true
	return batchErr
}
