package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// RecoveryReport says what Open found and what it repaired.
type RecoveryReport struct {
	Segments int      // segments present after recovery
	Repairs  []string // one line per repair, in the order done
}

// segFile is one segment found in the directory.
type segFile struct {
	id      uint64
	hdr     segment.Header
	meta    segment.Meta
	hasMeta bool
	badHdr  error // the header block is unreadable
	fence   int64 // from NNNNNN.log.end: the log ends here whatever follows (0: none)
}

// recover brings the directory to a state the writer can continue from:
//
//   - leftovers of interrupted work (prepared-*.tmp, *.meta.tmp) are removed,
//     but for one prepared or retired segment file that is kept for reuse
//     (pickReusable);
//   - every segment header is read first, before anything is changed, so a
//     segment of a newer format (or a corrupt sealed one) fails Open with the
//     directory untouched;
//   - the last segment, unless sealed, is synced (a crashed process may have
//     left writes in the page cache), scanned to the end of its log, its torn
//     tail copied to NNNNNN.log.broken and cut off, and it is sealed; a last
//     segment without any batch is removed; one with an unreadable header is
//     renamed to .broken;
//   - sealed segments missing a (whole) .meta get it rebuilt by a scan.
//
// The next flush starts a new segment after the highest ID.
func (c *Coordinator) recover() error {
	l, err := segment.List(c.fs)
	if err != nil {
		return err
	}
	if len(l.NotRegular) > 0 {
		for _, id := range l.IDs {
			if t, ok := l.NotRegular[id]; ok {
				return fmt.Errorf("%w: %s is not a regular file (%v)", ErrCorrupt, segment.Name(id), t)
			}
		}
	}
	segs := make([]*segFile, len(l.IDs))
	for i, id := range l.IDs {
		segs[i] = &segFile{id: id}
	}
	if err := c.readSegments(l, segs); err != nil {
		return err
	}
	// Read with the segments, before anything is changed: a record that
	// does not decode fails Open with the directory untouched.
	floor, err := c.loadState()
	if err != nil {
		return err
	}
	kept, err := c.repair(l, segs)
	if err != nil {
		return err
	}
	if err := c.checkKeys(kept); err != nil {
		return err
	}
	if kept, err = c.removeDead(kept); err != nil {
		return err
	}
	c.rep.Segments = len(kept)
	var maxID uint64
	if len(segs) > 0 {
		// The highest ID stays taken even when its segment was removed or set
		// aside, so IDs only grow.
		maxID = segs[len(segs)-1].id
	}
	if floor > 0 {
		// and past the log-state record's floor, so no cut reaches a
		// segment written after it
		maxID = max(maxID, floor-1)
	}
	c.curID.Store(maxID)
	for _, r := range c.rep.Repairs {
		c.log.Warn("dwal: recovery", "action", r)
	}
	return nil
}

// readSegments is recovery's read-only pass: every header, .meta and fence.
// It changes nothing, so a directory it refuses stays as it was.
func (c *Coordinator) readSegments(l *segment.Listing, segs []*segFile) error {
	for i, s := range segs {
		last := i == len(segs)-1
		if err := c.readHeader(s); err != nil {
			if !errors.Is(err, segment.ErrBadHeader) { // ErrUnsupportedFormat too
				return fmt.Errorf("%s: %w", segment.Name(s.id), err)
			}
			if !last {
				return fmt.Errorf("%w: %s: %w", ErrCorrupt, segment.Name(s.id), err)
			}
			s.badHdr = err
		}
		if s.badHdr == nil && s.hdr.ID != s.id {
			return fmt.Errorf("%w: %s holds segment %d", ErrCorrupt, segment.Name(s.id), s.hdr.ID)
		}
		m, ok, err := segment.ReadMeta(c.fs, s.id)
		if err != nil {
			return err
		}
		s.meta, s.hasMeta = m, ok
		if l.Fences[s.id] {
			if s.fence, err = segment.ReadFence(c.fs, s.id); err != nil {
				return err
			}
			s.hasMeta = false // a fenced segment is resealed from its fenced scan
		}
	}
	return nil
}

// repair removes leftovers, sets aside a last segment whose header is
// unreadable, reseals the segments without a (whole) .meta, honours and
// then removes the fences, and syncs the directory. It returns the segments
// kept.
func (c *Coordinator) repair(l *segment.Listing, segs []*segFile) ([]*segFile, error) {
	dirty := false
	// A .meta whose segment is gone: a crash between retiring a segment and
	// removing its .meta.
	leftovers := l.Leftovers
	for _, id := range l.OrphanMetas() {
		leftovers = append(leftovers, segment.MetaName(id))
	}
	c.leftover = c.pickReusable(l, leftovers)
	if c.leftover.name != "" {
		// NB: its name must be durable before a new header goes into it:
		// a crash could otherwise bring back the segment it was retired
		// from holding another segment's header.
		dirty = true
	}
	for _, name := range leftovers {
		if name == c.leftover.name {
			continue
		}
		if err := c.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove leftover %s: %w", name, err)
		}
		c.repaired("removed leftover %s", name)
		dirty = true
	}
	var kept []*segFile
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s.badHdr != nil:
			if err := c.fs.Rename(segment.Name(s.id), segment.BrokenName(s.id)); err != nil {
				return nil, fmt.Errorf("set aside %s: %w", segment.Name(s.id), err)
			}
			c.fs.Remove(segment.MetaName(s.id))
			c.repaired("%s has no valid header (%v); renamed to %s", segment.Name(s.id), s.badHdr, segment.BrokenName(s.id))
			dirty = true
			continue
		case !s.hasMeta:
			// The last segment (or one whose end a fence records) was left
			// open by its writer: its tail is cut. An earlier one was sealed
			// and only lost its .meta.
			keep, err := c.reseal(s, last || s.fence > 0)
			if err != nil {
				return nil, err
			}
			dirty = true
			if !keep {
				continue
			}
		}
		kept = append(kept, s)
	}
	if err := c.dropFences(l, dirty); err != nil {
		return nil, err
	}
	if dirty || len(l.Fences) > 0 {
		c.dirDirty = true
	}
	if err := c.syncDir(); err != nil { // also covers the .meta files reseal wrote
		return nil, fmt.Errorf("sync dir: %w", err)
	}
	return kept, nil
}

// dropFences removes the end-of-log records once what honoured them is
// durable.
func (c *Coordinator) dropFences(l *segment.Listing, dirty bool) error {
	if len(l.Fences) == 0 {
		return nil
	}
	if dirty {
		// NB: what honoured a fence (a segment cut and synced, or removed
		// when it held nothing) must be durable before the fence goes: a
		// directory that does not order its operations could otherwise
		// bring back a removed segment, with its failed batch, and no fence.
		c.dirDirty = true
		if err := c.syncDir(); err != nil {
			return fmt.Errorf("sync dir: %w", err)
		}
	}
	for id := range l.Fences {
		// Honoured (or its segment is gone): the seal that used it is
		// durable, so the record can go.
		if err := c.fs.Remove(segment.FenceName(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", segment.FenceName(id), err)
		}
	}
	return nil
}

// pickReusable returns, among leftover files, the prepared or retired
// segment file (prepared-N.tmp, recycle-N.tmp: one a Close left, or a
// crash) that is best reused as the next segment: full-sized, with the
// longest prefix the file system's extent map shows written. Its stale
// bytes are harmless (the next header's salt ends the log before them),
// and how far it is written only decides where its frontier starts, so no
// record of ours is trusted. None with a backend that may cache pages
// (nothing is recycled there), or when the extent map cannot be read.
//
// NB: only a regular file is the directory's own (a symlink would have
// the next segment written into whatever it points to), and only one
// whose segment ID has no .log of its own: a crash in the middle of the
// rename that made it (NNNNNN.log to recycle-N.tmp, prepared-N.tmp to
// NNNNNN.log) can leave both names on one file where the directory is not
// journaled, and a new header must not go into a live segment.
func (c *Coordinator) pickReusable(l *segment.Listing, leftovers []string) retiredFile {
	var best retiredFile
	if pageCache(c.fs) {
		return best
	}
	regular := map[string]bool{}
	for _, e := range l.Other {
		regular[e.Name()] = e.Type().IsRegular()
	}
	for _, name := range leftovers {
		id, ok := segment.ParseTempID(name)
		if !ok || !regular[name] || l.Has(id) {
			continue
		}
		if inited, ok := c.reusable(name); ok && (best.name == "" || inited > best.inited) {
			best = retiredFile{name: name, inited: inited}
		}
	}
	return best
}

func (c *Coordinator) repaired(format string, args ...any) {
	c.rep.Repairs = append(c.rep.Repairs, fmt.Sprintf(format, args...))
}

func (c *Coordinator) readHeader(s *segFile) error {
	f, err := c.fs.Open(segment.Name(s.id), true)
	if err != nil {
		return err
	}
	defer f.Close()
	s.hdr, err = segment.ReadHeader(f, c.align)
	return err
}

// reseal scans segment s and writes its .meta, or removes it when it holds
// no batch; it reports whether the segment is kept. With open (the segment a
// previous process left open) it first syncs what that process may have
// left in the page cache (what we replay must not vanish in a later power
// loss), honours a fence, keeps a torn tail as .broken, and cuts the file at
// the end of the log so nothing past it can ever be read as part of it.
func (c *Coordinator) reseal(s *segFile, open bool) (bool, error) {
	name := segment.Name(s.id)
	f, err := c.fs.Open(name, !open)
	if err != nil {
		return false, err
	}
	sc, err := c.resealScan(f, s, open)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if sc.Meta.Entries == 0 {
		if err := c.fs.Remove(name); err != nil {
			return false, fmt.Errorf("remove empty %s: %w", name, err)
		}
		c.repaired("removed %s: it holds no batch", name)
		return false, nil
	}
	if err := c.writeMeta(s.id, sc.Meta); err != nil {
		return false, fmt.Errorf("write %s: %w", segment.MetaName(s.id), err)
	}
	s.meta, s.hasMeta = sc.Meta, true
	verb := "rebuilt the .meta of"
	if open {
		verb = "sealed"
	}
	c.repaired("%s %s: %d entries, LSN %d..%d, %d bytes", verb, name, sc.Meta.Entries, sc.Meta.MinLSN, sc.Meta.MaxLSN, sc.End)
	return true, nil
}

// resealScan is reseal's work on the open file.
func (c *Coordinator) resealScan(f vfs.File, s *segFile, open bool) (segment.Result, error) {
	name := segment.Name(s.id)
	if open {
		if err := f.Sync(); err != nil {
			return segment.Result{}, fmt.Errorf("sync %s: %w", name, err)
		}
	}
	size, err := f.Size()
	if err != nil {
		return segment.Result{}, err
	}
	limit := size
	if open && s.fence > 0 && s.fence < size {
		limit = s.fence
		c.repaired("%s: log ends at offset %d as %s records (a failed write could not be rolled back)",
			name, s.fence, segment.FenceName(s.id))
	}
	sc, err := segment.Scan(f, c.align, limit, open, nil, nil)
	if err != nil {
		return sc, fmt.Errorf("scan %s: %w", name, err)
	}
	if !open {
		return sc, nil
	}
	if sc.Torn > sc.End {
		if err := c.saveBroken(f, s.id, sc.End, sc.Torn); err != nil {
			return sc, err
		}
		c.repaired("%s: log ends at offset %d (%s); %d bytes after it copied to %s",
			name, sc.End, sc.Why, sc.Torn-sc.End, segment.BrokenName(s.id))
	}
	if sc.Meta.Entries > 0 && sc.End < size {
		if err := f.Truncate(sc.End); err != nil {
			return sc, fmt.Errorf("truncate %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return sc, fmt.Errorf("sync %s: %w", name, err)
		}
	}
	return sc, nil
}

// saveBroken copies bytes [from, to) of segment id to NNNNNN.log.broken.
func (c *Coordinator) saveBroken(f vfs.File, id uint64, from, to int64) error {
	start := from &^ int64(c.align-1)
	n := align.Up64(to-start, c.align)
	if n > 1<<30 {
		n = 1 << 30
	}
	b := align.Alloc(int(n), c.align)
	got, err := f.ReadAt(b, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read torn tail of %s: %w", segment.Name(id), err)
	}
	lo := min(int(from-start), got)
	hi := min(int(to-start), got)
	if err := c.fs.WriteFile(segment.BrokenName(id), b[lo:hi]); err != nil {
		return fmt.Errorf("write %s: %w", segment.BrokenName(id), err)
	}
	return nil
}
