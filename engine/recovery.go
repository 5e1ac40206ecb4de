package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

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
	last    bool // the highest segment ID present
	hdr     segment.Header
	hdrErr  error // why its header block is not this segment's header (nil: it is)
	state   headerState
	meta    segment.Meta
	hasMeta bool  // a whole .meta
	fence   int64 // from NNNNNN.log.end: the log ends here whatever follows (0: none)
	// x is the segment's index when recovery built it (resealing it) or
	// read it (the logs of a set's segment; the records of a segment the
	// checkpoint does not cover).
	x *segment.Index
}

// What recovery finds of a segment's header.
type headerState int

const (
	headerOK      headerState = iota
	headerBad                 // not a dwal segment header (torn, zeroed, garbage)
	headerNewer               // a valid header of a newer format
	headerWrongID             // a valid header of another segment
	notRegular                // the name is not a regular file
)

// What recovery does with a segment.
type recoveryAction int

const (
	// keepSealed trusts the segment's .meta: its writer sealed it.
	keepSealed recoveryAction = iota
	// rebuildMeta scans a segment that was sealed but lost its .meta (read
	// only) and writes it again; one that holds no batch is removed.
	rebuildMeta
	// sealOpen seals a segment its writer left open: syncs it (a crashed
	// process may have left writes in the page cache), scans it to the end
	// of its log (or its fence), copies a torn tail to NNNNNN.log.broken,
	// cuts the file there and writes the .meta; one that holds no batch is
	// removed.
	sealOpen
	// setAside renames the segment to NNNNNN.log.broken.
	setAside
	// refuse fails Open with the directory untouched.
	refuse
)

// tri matches a yes/no fact of a segment, or either.
type tri int8

const (
	either tri = iota
	yes
	no
)

func (t tri) matches(b bool) bool { return t == either || (t == yes) == b }

// recoveryCase is one row of recovery's decision table.
type recoveryCase struct {
	header            headerState
	last, meta, fence tri
	action            recoveryAction
	why               string
}

// recoveryTable is what recovery does with each segment, by what it finds:
// the first row that matches decides. (TestRecoveryTable builds every row's
// case and checks its action's effect.)
var recoveryTable = []recoveryCase{
	{notRegular, either, either, either, refuse, "not a regular file: dwal makes none, and no crash does"},
	{headerNewer, either, either, either, refuse, "written by a newer dwal"},
	{headerWrongID, either, either, either, refuse, "holds another segment's header: no crash explains it"},
	{headerBad, no, either, either, refuse, "a segment's header is durable before its name: only the last can lack one"},
	{headerBad, yes, either, either, setAside, "the last segment's header never became durable (a crash while it was created)"},
	{headerOK, either, either, yes, sealOpen, "a failed write could not be rolled back: its log ends where the fence says"},
	{headerOK, either, yes, no, keepSealed, "sealed: its .meta says what it holds"},
	{headerOK, yes, no, no, sealOpen, "left open by its writer (a crash)"},
	{headerOK, no, no, no, rebuildMeta, "sealed, but its .meta was lost (a crash before the directory sync)"},
}

// decide returns the row of recoveryTable for segment s.
func decide(s *segFile) recoveryCase {
	for _, r := range recoveryTable {
		if r.header == s.state && r.last.matches(s.last) && r.meta.matches(s.hasMeta) && r.fence.matches(s.fence > 0) {
			return r
		}
	}
	panic(fmt.Sprintf("dwal: recovery table has no row for %+v", *s))
}

// recover brings the directory to a state the writer can continue from.
// It reads every segment's header, .meta and fence and the log-state
// record before changing anything, so a directory it refuses stays as it
// was; then each segment gets its recoveryTable action, leftovers of
// interrupted work (prepared-*.tmp, *.meta.tmp, orphan .meta files) go but
// for one spare segment file the recycler adopts, honoured fences go, and
// segments whose entries are all deleted are removed. The next flush starts
// a new segment after the highest ID (or the log state's floor).
func (c *Coordinator) recover() error {
	l, err := segment.List(c.fs)
	if err != nil {
		return err
	}
	segs := make([]*segFile, len(l.IDs))
	for i, id := range l.IDs {
		segs[i] = &segFile{id: id, last: i == len(l.IDs)-1}
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
	if err := c.replayRecords(kept); err != nil {
		return err
	}
	ixs := make([]indexed, len(kept))
	for i, s := range kept {
		ixs[i] = indexed{f: s, x: s.x}
	}
	c.idx.reset(ixs, &c.state)
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
	c.pipe.curID.Store(maxID)
	for _, r := range c.rep.Repairs {
		c.log.Warn("dwal: recovery", "action", r)
	}
	return nil
}

// readSegments is recovery's read-only pass: every header, .meta and fence,
// and each segment's action; a segment to refuse fails it here. It changes
// nothing, so a directory it refuses stays as it was.
func (c *Coordinator) readSegments(l *segment.Listing, segs []*segFile) error {
	for _, s := range segs {
		if _, ok := l.NotRegular[s.id]; ok {
			s.state = notRegular
		} else if err := c.readHeader(s); err != nil {
			return fmt.Errorf("%s: %w", segment.Name(s.id), err)
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
		}
		if r := decide(s); r.action == refuse {
			return refusal(l, s, r)
		}
		if c.oneLog && s.state == headerOK && !s.hdr.OneLog() {
			return fmt.Errorf("%w: %s is a segment of a set of logs: open the directory with OpenSet", ErrBadConfig, segment.Name(s.id))
		}
	}
	return nil
}

// replayRecords brings the logs' states from the checkpoint's to the
// end of the log: it reads the indexes of the segments whose records the
// checkpoint does not cover, and of a set's segments (whose logs only
// their index names), and applies the records in the order written.
func (c *Coordinator) replayRecords(segs []*segFile) error {
	for _, s := range segs {
		uncovered := s.hdr.Version >= segment.Version3 && s.id >= c.state.covered
		if s.x == nil && (uncovered || !s.hdr.OneLog()) {
			x, err := c.readSegmentIndex(s)
			if err != nil {
				return err
			}
			s.x = x
		}
		if !uncovered || s.x == nil {
			continue
		}
		rec := c.state.record(c.state.floor, c.state.covered)
		if rec.ApplyIndex(s.id, s.x) {
			for id, st := range rec.Logs {
				c.state.view(id).st.Store(st)
			}
			c.state.dirty = true
		}
	}
	return nil
}

// readSegmentIndex reads sealed segment s's index file at recovery, or
// rebuilds it by a scan (and writes it) when it is missing or does not
// match the segment.
func (c *Coordinator) readSegmentIndex(s *segFile) (*segment.Index, error) {
	x, ok, err := segment.ReadIndex(c.fs, s.id)
	if err == nil && ok {
		if err = x.Matches(&s.hdr, s.meta, true); err == nil {
			return x, nil
		}
	}
	why := "missing"
	if err != nil {
		why = err.Error()
	}
	c.log.Warn("dwal: segment index rebuilt by a scan", "segment", s.id, "why", why)
	res, err := c.scanIndex(s.id, &s.hdr)
	if err != nil {
		return nil, err
	}
	if res.Meta != s.meta {
		return nil, segment.MetaMismatch(segment.Name(s.id), res, s.meta)
	}
	c.ctr.indexRebuilds.Add(1)
	if err := c.writeIndex(res.Index); err != nil {
		c.log.Error("dwal: cannot write a rebuilt segment index; the next Open rebuilds it again", "segment", s.id, "err", err)
	}
	c.repaired("rebuilt the index of %s (%s)", segment.Name(s.id), why)
	return res.Index, nil
}

// readHeader reads s's header and classifies it; only an I/O error is
// returned.
func (c *Coordinator) readHeader(s *segFile) error {
	f, err := c.fs.Open(segment.Name(s.id), true)
	if err != nil {
		return err
	}
	defer f.Close()
	s.hdr, s.hdrErr = segment.ReadHeader(f, c.align)
	switch {
	case errors.Is(s.hdrErr, segment.ErrUnsupportedFormat):
		s.state = headerNewer
	case errors.Is(s.hdrErr, segment.ErrBadHeader):
		s.state = headerBad
	case s.hdrErr != nil:
		return s.hdrErr
	case s.hdr.ID != s.id:
		s.state = headerWrongID
	}
	return nil
}

// refusal is the error Open fails with for segment s.
func refusal(l *segment.Listing, s *segFile, r recoveryCase) error {
	name := segment.Name(s.id)
	switch s.state {
	case headerNewer:
		return fmt.Errorf("%s: %w", name, s.hdrErr)
	case notRegular:
		return fmt.Errorf("%w: %s is not a regular file (%v)", ErrCorrupt, name, l.NotRegular[s.id])
	case headerWrongID:
		return fmt.Errorf("%w: %s holds segment %d", ErrCorrupt, name, s.hdr.ID)
	}
	return fmt.Errorf("%w: %s: %w (%s)", ErrCorrupt, name, s.hdrErr, r.why)
}

// repair removes leftovers, applies each segment's action, honours and
// then removes the fences, and syncs the directory. It returns the
// segments kept.
func (c *Coordinator) repair(l *segment.Listing, segs []*segFile) ([]*segFile, error) {
	dirty, err := c.removeLeftovers(l)
	if err != nil {
		return nil, err
	}
	var kept []*segFile
	for _, s := range segs {
		action := decide(s).action
		keep, err := c.apply(s, action)
		if err != nil {
			return nil, err
		}
		if keep {
			kept = append(kept, s)
		}
		dirty = dirty || action != keepSealed
	}
	if err := c.dropFences(l, dirty); err != nil {
		return nil, err
	}
	if dirty || len(l.Fences) > 0 {
		c.pipe.dirDirty = true
	}
	if err := c.syncDir(); err != nil { // also covers the .meta files reseal wrote
		return nil, fmt.Errorf("sync dir: %w", err)
	}
	return kept, nil
}

// apply carries out action on segment s and reports whether it is kept.
func (c *Coordinator) apply(s *segFile, action recoveryAction) (bool, error) {
	switch action {
	case keepSealed:
		return true, nil
	case rebuildMeta, sealOpen:
		return c.reseal(s, action == sealOpen)
	case setAside:
		if err := c.fs.Rename(segment.Name(s.id), segment.BrokenName(s.id)); err != nil {
			return false, fmt.Errorf("set aside %s: %w", segment.Name(s.id), err)
		}
		c.fs.Remove(segment.MetaName(s.id))
		c.fs.Remove(segment.IndexName(s.id))
		c.repaired("%s has no valid header (%v); renamed to %s", segment.Name(s.id), s.hdrErr, segment.BrokenName(s.id))
		return false, nil
	}
	return false, fmt.Errorf("dwal: recovery: no action %d for %s", action, segment.Name(s.id))
}

// removeLeftovers removes the temporary files of interrupted work and the
// .meta and index files whose segment is gone (a crash between retiring a
// segment and removing them), but for the one segment file the recycler
// adopts.
// It reports whether it changed the directory.
func (c *Coordinator) removeLeftovers(l *segment.Listing) (bool, error) {
	leftovers := append(slices.Clone(l.Leftovers), l.Orphans()...)
	adopted := c.rec.adoptLeftover(l, leftovers)
	dirty := adopted != "" // its name must be durable before it is reused
	for _, name := range leftovers {
		if name == adopted {
			continue
		}
		if err := c.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("remove leftover %s: %w", name, err)
		}
		c.repaired("removed leftover %s", name)
		dirty = true
	}
	return dirty, nil
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
		c.pipe.dirDirty = true
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

func (c *Coordinator) repaired(format string, args ...any) {
	c.rep.Repairs = append(c.rep.Repairs, fmt.Sprintf(format, args...))
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
	sc, x, err := c.resealScan(f, s, open)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if sc.Batches == 0 {
		if err := c.fs.Remove(name); err != nil {
			return false, fmt.Errorf("remove empty %s: %w", name, err)
		}
		c.fs.Remove(segment.IndexName(s.id))
		c.repaired("removed %s: it holds no batch", name)
		return false, nil
	}
	if err := c.writeIndex(x); err != nil {
		return false, fmt.Errorf("write %s: %w", segment.IndexName(s.id), err)
	}
	s.x = x
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

// resealScan is reseal's work on the open file; it returns the scan and
// the segment's index.
func (c *Coordinator) resealScan(f vfs.File, s *segFile, open bool) (segment.Result, *segment.Index, error) {
	name := segment.Name(s.id)
	if open {
		if err := f.Sync(); err != nil {
			return segment.Result{}, nil, fmt.Errorf("sync %s: %w", name, err)
		}
	}
	size, err := f.Size()
	if err != nil {
		return segment.Result{}, nil, err
	}
	limit := size
	if open && s.fence > 0 && s.fence < size {
		limit = s.fence
		c.repaired("%s: log ends at offset %d as %s records (a failed write could not be rolled back)",
			name, s.fence, segment.FenceName(s.id))
	}
	sc, err := segment.Scan(f, c.align, limit, segment.ScanOptions{FindTorn: open, Index: true, Keys: c.keys})
	x := sc.Index
	if err != nil {
		return sc, nil, fmt.Errorf("scan %s: %w", name, err)
	}
	if !open {
		return sc, x, nil
	}
	if sc.Torn > sc.End {
		if err := c.saveBroken(f, s.id, sc.End, sc.Torn); err != nil {
			return sc, nil, err
		}
		c.repaired("%s: log ends at offset %d (%s); %d bytes after it copied to %s",
			name, sc.End, sc.Why, sc.Torn-sc.End, segment.BrokenName(s.id))
	}
	if sc.Meta.Entries > 0 && sc.End < size {
		if err := f.Truncate(sc.End); err != nil {
			return sc, nil, fmt.Errorf("truncate %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return sc, nil, fmt.Errorf("sync %s: %w", name, err)
		}
	}
	return sc, x, nil
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
