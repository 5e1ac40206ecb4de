package engine

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// The segment files' life, under pipeline.mu: a segment is started (a
// prepared file renamed to NNNNNN.log, the directory synced), written
// through the pipeline, sealed (synced, closed, its .meta written) and, at
// rotation, the next one started while retention retires the oldest. The
// directory changes of a rotation share one directory sync (syncDir).

// startSegment makes the next segment the active one: the one prepared in
// the background when it is ready, else one prepared here. Nothing is
// written to a .log on failure.
func (c *Coordinator) startSegment() error {
	p := &c.pipe
	id := p.curID.Load() + 1
	if invariants {
		assertf(id >= c.state.floor, "segment %d started below the log state's floor %d", id, c.state.floor)
	}
	s := c.prep.take(id)
	if s == nil {
		var err error
		if s, err = c.makeSegment(id, initNone); err != nil {
			return err
		}
	}
	if err := c.fs.Rename(s.name, segment.Name(id)); err != nil {
		s.f.Close()
		c.fs.Remove(s.name)
		return fmt.Errorf("dwal: activate segment %d: %w", id, err)
	}
	p.dirDirty = true
	if err := c.syncDir(); err != nil {
		// The rename may or may not survive a crash; the file is a valid,
		// empty segment either way. Do not write to it: a batch acknowledged
		// in a file whose name is not durable could vanish.
		s.f.Close()
		return fmt.Errorf("dwal: activate segment %d: sync dir: %w", id, err)
	}
	if !c.oneLog {
		// The sync made the last seal's checkpoint durable: the dead
		// segments whose records it covers may go now.
		c.removeDeadLocked()
	}
	hdrLen := int64(c.align)
	p.act = &active{id: id, f: s.f, salt: s.hdr.Salt, size: s.size, off: hdrLen, settled: hdrLen, seq: 1, encrypter: s.encrypter}
	c.idx.start(s.hdr)
	c.startFrontier(p.act, s.inited)
	p.curID.Store(id)
	p.curSize.Store(uint64(hdrLen))
	c.prep.request(id + 1)
	c.log.Debug("dwal: segment started", "segment", id, "size", s.size)
	return nil
}

// rotate seals the active segment and, unless that turned the log
// read-only, applies retention; the next flush starts the next segment.
func (c *Coordinator) rotate() {
	c.seal()
	if c.pipe.roErr == nil {
		c.retain()
	}
	c.pokeRewriter()
}

// seal closes the active segment: syncs what is not yet durable, closes it
// and writes its .meta (or removes it when it holds nothing), and tells the
// recycler how much of the file is initialised. Errors writing the .meta
// are logged, not returned: the batches are durable, and recovery rebuilds
// a missing .meta. A failed sync turns the log read-only.
func (c *Coordinator) seal() {
	p := &c.pipe
	a := p.act
	p.act = nil
	p.curSize.Store(0)
	a.stopInit()
	if a.unsynced {
		if err := a.f.Sync(); err != nil {
			p.roErr = fmt.Errorf("%w: sync at seal of segment %d: %w; fate of its unsynced batches unknown",
				ErrReadOnly, a.id, err)
			c.log.Error("dwal: turned read-only", "err", p.roErr)
			a.f.Close()
			return
		}
	}
	a.f.Close()
	c.rec.sealed(a)
	x := c.idx.seal(a.id)
	if a.settled == int64(c.align) { // it holds no batch
		if err := c.fs.Remove(segment.Name(a.id)); err == nil {
			p.dirDirty = true
		}
		return
	}
	c.writeSealed(a, x)
	c.writeCheckpoint(a.id)
	c.ctr.rotations.Add(1)
	c.log.Debug("dwal: segment sealed", "segment", a.id, "entries", a.meta.Entries)
}

// writeSealed writes sealed segment a's index file and .meta (under mu).
// Errors are logged, not returned: the batches are durable, recovery
// rebuilds a missing .meta and the first lookup that needs it a missing
// index.
func (c *Coordinator) writeSealed(a *active, x *segment.Index) {
	if x != nil {
		if err := c.writeIndex(x); err != nil {
			c.log.Error("dwal: cannot write the segment index; its first use will rebuild it", "segment", a.id, "err", err)
		}
		c.pipe.dirDirty = true
	}
	if err := c.writeMeta(a.id, a.meta); err != nil {
		c.log.Error("dwal: cannot write segment metadata; recovery will rebuild it", "segment", a.id, "err", err)
	}
}

// writeMeta writes id's .meta atomically: temp file, fsync, rename. The
// rename is made durable by the next syncDir (a .meta lost in a crash is
// rebuilt by recovery).
func (c *Coordinator) writeMeta(id uint64, m segment.Meta) error {
	b := m.Encode()
	tmp := segment.MetaName(id) + segment.TmpSuffix
	if err := c.fs.WriteFile(tmp, b[:]); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, segment.MetaName(id)); err != nil {
		return err
	}
	c.pipe.dirDirty = true
	return nil
}

// syncDir makes the directory changes made so far durable, then tells the
// recycler, whose retired files may be reused only once their renames are
// durable. A rotation's changes (the sealed segment's .meta, the segments
// retention retires) share the sync that startSegment needs anyway before
// the next segment's first write: one directory sync per rotation, not
// three. None of them needs to be durable sooner: a lost .meta is rebuilt,
// a retired segment that comes back after a crash holds only older, valid
// batches, and a retired file is not reused before it.
func (c *Coordinator) syncDir() error {
	p := &c.pipe
	if !p.dirDirty {
		return nil
	}
	// NB: after a failed directory sync dirDirty stays set and the next
	// call syncs again. That is not a retried fsync vouching for lost data:
	// nothing acknowledged depends on these entries (a lost .meta is
	// rebuilt, the recycler removes the retired files, and a segment whose
	// name was not made durable is never written to).
	err := c.fs.SyncDir()
	if err == nil {
		p.dirDirty = false
		c.state.covered = max(c.state.covered, c.state.pending)
	}
	c.rec.dirSynced(err == nil)
	return err
}

// writeFence records, in NNNNNN.log.end, that segment id's log ends at off
// whatever lies after it (temp file, fsync, rename, and, unlike a .meta,
// a directory sync at once). Recovery honours it and then removes it.
func (c *Coordinator) writeFence(id uint64, off int64) error {
	b := segment.EncodeFence(off)
	tmp := segment.FenceName(id) + segment.TmpSuffix
	if err := c.fs.WriteFile(tmp, b[:]); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, segment.FenceName(id)); err != nil {
		return err
	}
	return c.fs.SyncDir()
}

// retire takes segment id out of the log (under mu): out of the index and
// the readers, then the file goes to the recycler (kept for reuse or
// removed) with its .meta. Durable after the next syncDir.
func (c *Coordinator) retire(id uint64) error {
	c.idx.drop(id)
	c.rd.drop(id)
	if err := c.rec.retire(id); err != nil {
		return err
	}
	c.pipe.dirDirty = true
	return nil
}

// retain removes segments older than the current one minus
// SegmentsToRetain (under mu).
func (c *Coordinator) retain() {
	cur := c.pipe.curID.Load()
	if !c.oneLog || cur <= uint64(c.cfg.SegmentsToRetain) {
		// A set's segments hold other logs' live entries: they go when
		// dead, never by count.
		return
	}
	from := cur - uint64(c.cfg.SegmentsToRetain)
	ids, err := c.segmentIDs()
	if err != nil {
		c.log.Error("dwal: retention: list", "err", err)
		return
	}
	for _, id := range ids {
		if id >= from {
			break
		}
		if !c.removable(id) {
			continue // its records wait for a durable checkpoint
		}
		if err := c.retire(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Error("dwal: retention: remove", "segment", id, "err", err)
		}
	}
}

// segmentIDs lists the segment IDs present, ascending.
func (c *Coordinator) segmentIDs() ([]uint64, error) {
	l, err := segment.List(c.fs)
	if err != nil {
		return nil, err
	}
	return l.IDs, nil
}

// ReadSegmentMetadata reads id's .meta; ok is false when it is missing or
// malformed (not 24 bytes).
func (c *Coordinator) ReadSegmentMetadata(id uint64) (SegmentMetadata, bool) {
	m, ok, err := segment.ReadMeta(c.fs, id)
	return metadataOf(m), ok && err == nil
}

// Segments lists the segments that have metadata (the sealed ones), by ID.
func (c *Coordinator) Segments() []SegmentInfo {
	ids, err := c.segmentIDs()
	if err != nil {
		return nil
	}
	var out []SegmentInfo
	for _, id := range ids {
		if m, ok := c.ReadSegmentMetadata(id); ok {
			out = append(out, SegmentInfo{ID: id, Meta: m})
		}
	}
	return out
}

// MinLSN is the smallest LSN of the sealed segments; ok is false when there
// are none.
func (c *Coordinator) MinLSN() (LSN, bool) {
	var min LSN
	ok := false
	for _, s := range c.Segments() {
		if s.Meta.EntryCount == 0 {
			continue // records only
		}
		if !ok || s.Meta.MinLSN < min {
			min, ok = s.Meta.MinLSN, true
		}
	}
	return min, ok
}

// TruncateToLSN removes the sealed segments whose MaxLSN < lsn, never the
// current one and never one whose .meta is missing, and returns how many it
// removed. Call it only once everything below lsn is safe elsewhere.
func (c *Coordinator) TruncateToLSN(lsn LSN) (removed int, err error) {
	p := &c.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writable(); err != nil {
		return 0, err
	}
	ids, err := c.segmentIDs()
	if err != nil {
		return 0, err
	}
	cur := p.curID.Load()
	for _, id := range ids {
		if id >= cur {
			break
		}
		m, ok := c.ReadSegmentMetadata(id)
		if !ok || m.MaxLSN >= lsn || !c.removable(id) {
			continue
		}
		if err := c.retire(id); err != nil {
			err = fmt.Errorf("dwal: truncate: remove segment %d: %w", id, err)
			if serr := c.syncDir(); serr != nil {
				err = errors.Join(err, fmt.Errorf("dwal: truncate: sync dir: %w", serr))
			}
			return removed, err
		}
		removed++
	}
	// Unlike retention's, these removals are durable before the call
	// returns: the caller asked for them.
	if err := c.syncDir(); err != nil {
		return removed, fmt.Errorf("dwal: truncate: sync dir: %w", err)
	}
	return removed, nil
}
