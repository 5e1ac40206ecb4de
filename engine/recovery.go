package engine

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/dwal-project/dwal/engine/align"
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
	hdr     segHeader
	meta    SegmentMetadata
	hasMeta bool
	badHdr  error // the header block is unreadable
	fence   int64 // from NNNNNN.log.end: the log ends here whatever follows (0: none)
}

// recover brings the directory to a state the writer can continue from:
//
//   - leftovers of interrupted work (prepared-*.tmp, *.meta.tmp) are removed;
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
	ents, err := c.fs.List()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var segs []*segFile
	var leftovers []string
	var fences, metas []uint64
	for _, e := range ents {
		name := e.Name()
		if id, ok := parseID(name, segSuffix); ok {
			if !e.Type().IsRegular() {
				return fmt.Errorf("%w: %s is not a regular file (%v)", ErrCorrupt, name, e.Type())
			}
			segs = append(segs, &segFile{id: id})
			continue
		}
		if id, ok := parseID(name, metaSuffix); ok {
			metas = append(metas, id)
			continue
		}
		if id, ok := parseID(name, fenceSuffix); ok {
			fences = append(fences, id)
			continue
		}
		if isLeftover(name) {
			leftovers = append(leftovers, name)
		}
	}
	slices.SortFunc(segs, func(a, b *segFile) int { return cmp.Compare(a.id, b.id) })
	for _, id := range metas {
		// A .meta whose segment is gone: a crash between retiring a segment
		// and removing its .meta.
		if !slices.ContainsFunc(segs, func(s *segFile) bool { return s.id == id }) {
			leftovers = append(leftovers, metaName(id))
		}
	}

	// Read-only pass.
	for i, s := range segs {
		last := i == len(segs)-1
		if err := c.readHeader(s); err != nil {
			if errors.Is(err, ErrUnsupportedFormat) {
				return fmt.Errorf("%s: %w", segName(s.id), err)
			}
			if !errors.Is(err, errBadSegHeader) {
				return fmt.Errorf("%s: %w", segName(s.id), err)
			}
			if !last {
				return fmt.Errorf("%w: %s: %w", ErrCorrupt, segName(s.id), err)
			}
			s.badHdr = err
		}
		if s.badHdr == nil && s.hdr.id != s.id {
			return fmt.Errorf("%w: %s holds segment %d", ErrCorrupt, segName(s.id), s.hdr.id)
		}
		if b, err := c.fs.ReadFile(metaName(s.id)); err == nil {
			s.meta, s.hasMeta = ParseSegmentMetadata(b)
			if s.hasMeta && len(b) != metaLen {
				s.hasMeta = false
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read %s: %w", metaName(s.id), err)
		}
		if slices.Contains(fences, s.id) {
			b, err := c.fs.ReadFile(fenceName(s.id))
			if err != nil {
				return fmt.Errorf("read %s: %w", fenceName(s.id), err)
			}
			off, ok := decodeFence(b)
			if !ok {
				return fmt.Errorf("%w: %s is not a valid end-of-log record", ErrCorrupt, fenceName(s.id))
			}
			s.fence = off
			s.hasMeta = false // a fenced segment is resealed from its fenced scan
		}
	}

	// Repairs.
	dirty := false
	for _, name := range leftovers {
		if err := c.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove leftover %s: %w", name, err)
		}
		c.repaired("removed leftover %s", name)
		dirty = true
	}
	var kept []*segFile
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s.badHdr != nil:
			if err := c.fs.Rename(segName(s.id), brokenName(s.id)); err != nil {
				return fmt.Errorf("set aside %s: %w", segName(s.id), err)
			}
			c.fs.Remove(metaName(s.id))
			c.repaired("%s has no valid header (%v); renamed to %s", segName(s.id), s.badHdr, brokenName(s.id))
			dirty = true
			continue
		case !s.hasMeta:
			// The last segment (or one whose end a fence records) was left
			// open by its writer: its tail is cut. An earlier one was sealed
			// and only lost its .meta.
			keep, err := c.reseal(s, last || s.fence > 0)
			if err != nil {
				return err
			}
			dirty = true
			if !keep {
				continue
			}
		}
		kept = append(kept, s)
	}
	if len(fences) > 0 && dirty {
		// NB: what honoured a fence (a segment cut and synced, or removed
		// when it held nothing) must be durable before the fence goes: a
		// directory that does not order its operations could otherwise
		// bring back a removed segment, with its failed batch, and no fence.
		c.dirDirty = true
		if err := c.syncDir(); err != nil {
			return fmt.Errorf("sync dir: %w", err)
		}
	}
	for _, id := range fences {
		// Honoured above (or its segment is gone): the seal that used it is
		// durable, so the record can go.
		if err := c.fs.Remove(fenceName(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", fenceName(id), err)
		}
		dirty = true
	}
	if dirty {
		c.dirDirty = true
	}
	if err := c.syncDir(); err != nil { // also covers the .meta files reseal wrote
		return fmt.Errorf("sync dir: %w", err)
	}
	if err := c.checkKey(kept); err != nil {
		return err
	}
	c.rep.Segments = len(kept)
	var maxID uint64
	if len(segs) > 0 {
		// The highest ID stays taken even when its segment was removed or set
		// aside, so IDs only grow.
		maxID = segs[len(segs)-1].id
	}
	c.curID.Store(maxID)
	for _, r := range c.rep.Repairs {
		c.log.Warn("dwal: recovery", "action", r)
	}
	return nil
}

func (c *Coordinator) repaired(format string, args ...any) {
	c.rep.Repairs = append(c.rep.Repairs, fmt.Sprintf(format, args...))
}

func (c *Coordinator) readHeader(s *segFile) error {
	f, err := c.fs.Open(segName(s.id), true)
	if err != nil {
		return err
	}
	defer f.Close()
	s.hdr, err = readSegHeader(f, c.align)
	return err
}

// reseal scans segment s and writes its .meta, or removes it when it holds
// no batch; it reports whether the segment is kept. With open (the segment a
// previous process left open) it first syncs what that process may have
// left in the page cache (what we replay must not vanish in a later power
// loss), honours a fence, keeps a torn tail as .broken, and cuts the file at
// the end of the log so nothing past it can ever be read as part of it.
func (c *Coordinator) reseal(s *segFile, open bool) (bool, error) {
	name := segName(s.id)
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
	if sc.meta.EntryCount == 0 {
		if err := c.fs.Remove(name); err != nil {
			return false, fmt.Errorf("remove empty %s: %w", name, err)
		}
		c.repaired("removed %s: it holds no batch", name)
		return false, nil
	}
	if err := c.writeMeta(s.id, sc.meta); err != nil {
		return false, fmt.Errorf("write %s: %w", metaName(s.id), err)
	}
	s.meta, s.hasMeta = sc.meta, true
	verb := "rebuilt the .meta of"
	if open {
		verb = "sealed"
	}
	c.repaired("%s %s: %d entries, LSN %d..%d, %d bytes", verb, name, sc.meta.EntryCount, sc.meta.MinLSN, sc.meta.MaxLSN, sc.end)
	return true, nil
}

// resealScan is reseal's work on the open file.
func (c *Coordinator) resealScan(f vfs.File, s *segFile, open bool) (scan, error) {
	name := segName(s.id)
	if open {
		if err := f.Sync(); err != nil {
			return scan{}, fmt.Errorf("sync %s: %w", name, err)
		}
	}
	size, err := f.Size()
	if err != nil {
		return scan{}, err
	}
	limit := size
	if open && s.fence > 0 && s.fence < size {
		limit = s.fence
		c.repaired("%s: log ends at offset %d as %s records (a failed write could not be rolled back)",
			name, s.fence, fenceName(s.id))
	}
	sc, err := scanSegment(f, c.align, limit, open, nil)
	if err != nil {
		return sc, fmt.Errorf("scan %s: %w", name, err)
	}
	if !open {
		return sc, nil
	}
	if sc.torn > sc.end {
		if err := c.saveBroken(f, s.id, sc.end, sc.torn); err != nil {
			return sc, err
		}
		c.repaired("%s: log ends at offset %d (%s); %d bytes after it copied to %s",
			name, sc.end, sc.why, sc.torn-sc.end, brokenName(s.id))
	}
	if sc.meta.EntryCount > 0 && sc.end < size {
		if err := f.Truncate(sc.end); err != nil {
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
		return fmt.Errorf("read torn tail of %s: %w", segName(id), err)
	}
	lo := min(int(from-start), got)
	hi := min(int(to-start), got)
	if err := c.fs.WriteFile(brokenName(id), b[lo:hi]); err != nil {
		return fmt.Errorf("write %s: %w", brokenName(id), err)
	}
	return nil
}

// errKeyOK stops the key check's scan after the first entry opened.
var errKeyOK = errors.New("key ok")

// checkKey opens the first batch of the newest encrypted segment, so a
// wrong or missing Config.Cipher fails Open with ErrDecrypt rather than a
// later Replay.
func (c *Coordinator) checkKey(segs []*segFile) error {
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s.hdr.flags&segFlagEncrypted == 0 {
			continue
		}
		f, err := c.fs.Open(segName(s.id), true)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := f.Size()
		if err != nil {
			return err
		}
		_, err = scanSegmentWith(f, c.align, size, false, c.cfg.Cipher, func(LSN, []byte) error { return errKeyOK })
		if err != nil && !errors.Is(err, errKeyOK) {
			return fmt.Errorf("%s: %w", segName(s.id), err)
		}
		return nil
	}
	return nil
}
