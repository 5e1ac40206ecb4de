package engine

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Read-only inspection of a WAL directory (Inspect, Verify, Dump), for the
// dwal command and for operators' own tools.
//
// These functions take no LOCK and change no file: they open the segments
// read-only through the fallback backend and judge them with the same scan
// that Open and Replay use, so "where the log ends" means the same thing
// everywhere. They may run beside a live writer; what they report about its
// active segment is then a snapshot that may already be stale.
//
// They read at the default alignment (4 KiB, the least any segment is
// written with), so they create not even the probe file that alignment
// discovery needs.
//
// Severity: a problem is an error when no crash explains it (a sealed
// segment is fully synced before its .meta is written, a header is synced
// before its segment gets its name), so acknowledged data is damaged or Open
// or Replay will fail. It is a warning when a crash explains it and Open
// repairs it without losing an acknowledged batch: a torn tail of the last,
// unsealed segment (at most the batches that were being written), a missing
// or malformed .meta, an end-of-log record (NNNNNN.log.end).

// Severity grades a Problem.
type Severity string

const (
	// SeverityWarning: a crash explains it and Open repairs it; no
	// acknowledged batch is lost.
	SeverityWarning Severity = "warning"
	// SeverityError: no crash explains it (media corruption, an outside
	// write, a newer format): acknowledged data is damaged, or Open or Replay
	// fails.
	SeverityError Severity = "error"
)

// Problem is one thing Verify found wrong, at a file and offset.
type Problem struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`   // base name in the directory
	Offset   int64    `json:"offset"` // byte offset in File; -1 when the problem is the file as a whole
	What     string   `json:"what"`
}

func (p Problem) String() string {
	if p.Offset < 0 {
		return fmt.Sprintf("%s: %s: %s", p.Severity, p.File, p.What)
	}
	return fmt.Sprintf("%s: %s at offset %d: %s", p.Severity, p.File, p.Offset, p.What)
}

// SegmentState says where a segment is in its life.
type SegmentState string

const (
	// SegmentSealed: the writer finished it (it has a .meta, or a newer
	// segment follows it).
	SegmentSealed SegmentState = "sealed"
	// SegmentActive: the last segment, not sealed: being written by a live
	// process, or left by Close or a crash (the next Open seals it).
	SegmentActive SegmentState = "active"
	// SegmentBroken: it holds an error (see DirReport.Problems).
	SegmentBroken SegmentState = "broken"
)

// MetaState says what a segment's .meta file holds.
type MetaState string

const (
	MetaOK        MetaState = "ok"        // present, 24 bytes, agrees with the scan
	MetaMissing   MetaState = "missing"   // no .meta (normal for the active segment)
	MetaMismatch  MetaState = "mismatch"  // disagrees with the scan
	MetaMalformed MetaState = "malformed" // not 24 bytes
	MetaIgnored   MetaState = "ignored"   // an end-of-log record overrides it: Open reseals the segment
)

// SegmentHeader is the decoded header block of a segment.
type SegmentHeader struct {
	Version   uint16    `json:"version"`
	Flags     uint16    `json:"flags"`
	Encrypted bool      `json:"encrypted"`
	Alignment uint32    `json:"alignment"`
	ID        uint64    `json:"id"`
	Salt      uint64    `json:"salt,string"`
	Created   time.Time `json:"created"`
}

// SegmentReport is what Inspect found in one segment.
type SegmentReport struct {
	ID       uint64 `json:"id"`
	File     string `json:"file"`
	FileSize int64  `json:"file_size"`
	// Used is the end of the log: the offset after the last valid batch
	// (the header block included). Bytes past it are never replayed.
	Used int64 `json:"used"`
	// EndReason says why the log ends at Used: "end of file", or what the
	// next aligned block holds instead of a batch that continues the log.
	EndReason string `json:"end_reason"`
	// Torn counts the bytes from Used to the end of the last batch past it
	// whose header carries this segment's salt: a torn or cut-off tail, what
	// Open would copy to NNNNNN.log.broken (0: none).
	Torn    int64          `json:"torn"`
	MinLSN  LSN            `json:"min_lsn"`
	MaxLSN  LSN            `json:"max_lsn"`
	Entries uint64         `json:"entries"`
	Batches uint64         `json:"batches"`
	State   SegmentState   `json:"state"`
	Header  *SegmentHeader `json:"header"` // nil when the header block is unreadable
	Meta    MetaState      `json:"meta"`
	// MetaFile is the content of the .meta file when it parses.
	MetaFile *SegmentMetadata `json:"meta_file,omitempty"`
	// Fence is the offset an end-of-log record (NNNNNN.log.end) fixes as the
	// end of the log after a failed write could not be rolled back (0: none).
	Fence int64 `json:"fence,omitempty"`
}

// OtherFile is a file of the directory that is not a segment or its .meta.
type OtherFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Note string `json:"note"`
}

// DirReport is what Inspect found in a directory.
type DirReport struct {
	Dir string `json:"dir"`
	// Alignment is the I/O alignment the files were read with (each
	// segment's header says the one it was written with).
	Alignment int             `json:"alignment"`
	Segments  []SegmentReport `json:"segments"`
	Other     []OtherFile     `json:"other"`
	// Problems is what Verify returns, sorted by file and offset.
	Problems []Problem `json:"problems"`
}

// Errors and Warnings count the problems of each severity.
func (r *DirReport) Errors() int   { return r.count(SeverityError) }
func (r *DirReport) Warnings() int { return r.count(SeverityWarning) }

func (r *DirReport) count(s Severity) int {
	n := 0
	for _, p := range r.Problems {
		if p.Severity == s {
			n++
		}
	}
	return n
}

// Inspect reads every segment of the WAL directory dir, and every batch in
// it (checking each CRC, as Verify does), and reports one SegmentReport per
// segment, by ID, with the problems found. It takes no lock and modifies
// nothing. An error means the directory could not be read at all; what is
// wrong inside it is in DirReport.Problems.
func Inspect(dir string) (*DirReport, error) {
	fsys, err := openReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	return examine(dir, fsys)
}

// Verify reads every segment and batch of the WAL directory dir and checks
// every segment header (magic, CRC, version, ID), every batch (magic, salt,
// sequence, length, CRC, entries inside the header's LSN range), what lies
// past the end of each segment's log, and every .meta against the scan. It
// returns the problems found (none: the directory is clean) naming file,
// offset and what is wrong; see Severity for what is an error and what a
// warning. It takes no lock and modifies nothing. Encrypted segments are
// checked by their CRCs only (their entries are sealed).
func Verify(dir string) ([]Problem, error) {
	r, err := Inspect(dir)
	if err != nil {
		return nil, err
	}
	return r.Problems, nil
}

// Dump calls fn for every entry with from <= LSN <= to (pass ^LSN(0) for no
// upper bound), in write order: segment by segment, batch by batch, entry by
// entry, each segment up to the end of its log (never past it). seg is the
// segment ID, off the file offset of the entry (of its header: length, LSN,
// then data); data is only valid during the call. It takes no lock and
// modifies nothing.
//
// Dump stops at fn's first error and returns it. A segment it cannot read
// (a bad header; an encrypted one, which needs DumpWith and its Cipher:
// ErrDecrypt) or a sealed segment whose .meta disagrees with its log
// (ErrCorrupt) does not stop it: it goes on with the next segment and
// returns those errors, joined, at the end. Sealed segments whose .meta puts
// them wholly outside [from, to] are skipped.
func Dump(dir string, from, to LSN, fn func(seg uint64, off int64, lsn LSN, data []byte) error) error {
	return DumpWith(dir, DumpOptions{From: from, To: to}, fn)
}

// DumpOptions are DumpWith's options.
type DumpOptions struct {
	From, To LSN // entries with From <= LSN <= To
	// Cipher opens the entries of encrypted segments (the key they were
	// written with); without it those segments fail with ErrDecrypt.
	Cipher Cipher
}

// DumpWith is Dump with options: an LSN range and the Cipher of encrypted
// segments.
func DumpWith(dir string, opts DumpOptions, fn func(seg uint64, off int64, lsn LSN, data []byte) error) error {
	from, to := opts.From, opts.To
	fsys, err := openReadOnly(dir)
	if err != nil {
		return err
	}
	defer fsys.Close()
	d, err := listDir(fsys)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range d.segs {
		meta, metaOK := d.meta(fsys, id)
		fence := d.fence(fsys, id)
		if metaOK && fence == 0 && (meta.MaxLSN < from || meta.MinLSN > to) {
			continue
		}
		err := dumpSegment(fsys, id, fence, opts.Cipher, func(off int64, lsn LSN, b []byte) error {
			if lsn < from || lsn > to {
				return nil
			}
			return fn(id, off, lsn, b)
		}, func(sc scan) error {
			if metaOK && fence == 0 && sc.meta != meta {
				return fmt.Errorf("%w: %s: log ends at offset %d (%s) after %d entries, LSN %d..%d; its .meta says %d entries, LSN %d..%d",
					ErrCorrupt, segName(id), sc.end, endReason(sc.why), sc.meta.EntryCount, sc.meta.MinLSN, sc.meta.MaxLSN,
					meta.EntryCount, meta.MinLSN, meta.MaxLSN)
			}
			return nil
		})
		var ce *callbackErr
		if errors.As(err, &ce) {
			return ce.err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// callbackErr carries the error of Dump's fn out of the scan unchanged.
type callbackErr struct{ err error }

func (e *callbackErr) Error() string { return e.err.Error() }
func (e *callbackErr) Unwrap() error { return e.err }

// dumpSegment scans segment id, calling fn with each entry's file offset,
// then check with the scan's result.
func dumpSegment(fsys vfs.FS, id uint64, fence int64, ciph Cipher, fn func(int64, LSN, []byte) error, check func(scan) error) error {
	name := segName(id)
	f, err := fsys.Open(name, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by a live writer since the listing
		}
		return fmt.Errorf("dwal: dump %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("dwal: dump %s: %w", name, err)
	}
	limit := size
	if fence > 0 && fence < size {
		limit = fence
	}
	a := fsys.Alignment()
	h, err := readSegHeader(f, a)
	if err != nil {
		return fmt.Errorf("dwal: dump %s: %w", name, err)
	}
	cur := &batchCursor{f: f, a: a, sa: int64(h.align), salt: h.salt, next: int64(h.align), sealed: h.flags&segFlagEncrypted != 0}
	sc, err := scanSegmentWith(f, a, limit, false, ciph, func(lsn LSN, b []byte) error {
		off, err := cur.entry(len(b))
		if err != nil {
			return err
		}
		if err := fn(off, lsn, b); err != nil {
			return &callbackErr{err}
		}
		return nil
	})
	if err != nil {
		var ce *callbackErr
		if errors.As(err, &ce) {
			return ce
		}
		return fmt.Errorf("dwal: dump %s: %w", name, err)
	}
	return check(sc)
}

// batchCursor follows the batches of a segment while scanSegment hands out
// their entries (in order, and only from batches it checked), to name each
// entry's file offset. It reads only headers the scan already accepted.
type batchCursor struct {
	f      vfs.File
	a      int   // read alignment
	sa     int64 // the segment's alignment
	salt   uint64
	sealed bool
	buf    []byte
	seq    uint64 // sequence number of the current batch
	cur    int64  // offset of the current batch
	next   int64  // offset of the next batch
	left   uint32 // entries of the current batch not yet handed out
	pos    int64  // offset of the next entry of the current batch
}

// entry returns the offset of the next entry, whose data is n bytes. For an
// encrypted segment it is the offset of the entry's batch: its entries are
// sealed together and have no offset of their own.
func (c *batchCursor) entry(n int) (int64, error) {
	for c.left == 0 {
		start := c.next &^ int64(c.a-1)
		if c.buf == nil {
			c.buf = align.Alloc(2*c.a, c.a)
		}
		got, err := c.f.ReadAt(c.buf, start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		s := int(c.next - start)
		if got < s+batchHeaderLen {
			return 0, fmt.Errorf("dwal: batch header at offset %d: short read", c.next)
		}
		h, why := decodeBatchHeader(c.buf[s:got], c.salt, c.seq+1)
		if why != batchOK {
			return 0, fmt.Errorf("dwal: batch header at offset %d: %s", c.next, why)
		}
		c.seq++
		c.cur, c.left, c.pos = c.next, h.count, c.next+batchHeaderLen
		c.next += h.span(int(c.sa))
	}
	c.left--
	if c.sealed {
		return c.cur, nil
	}
	off := c.pos
	c.pos += int64(entryHeaderLen + n)
	return off, nil
}

// openReadOnly opens dir through the fallback backend, refusing (unlike
// fallback.New) to create it.
func openReadOnly(dir string) (vfs.FS, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("dwal: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dwal: %s is not a directory", dir)
	}
	// NB: the default alignment, not a discovered one: discovery creates
	// a probe file. Segments are written with at least it (their headers
	// say which), so reads at it see every batch.
	f, err := fallback.New(dir, vfs.Options{Alignment: align.Default})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// dirListing sorts a directory's names by role.
type dirListing struct {
	segs   []uint64          // segment IDs, ascending
	notReg map[uint64]string // segments that are not regular files: their type
	metas  map[uint64]bool
	fences map[uint64]bool
	other  []OtherFile
}

func listDir(fsys vfs.FS) (*dirListing, error) {
	ents, err := fsys.List()
	if err != nil {
		return nil, fmt.Errorf("dwal: list: %w", err)
	}
	d := &dirListing{notReg: map[uint64]string{}, metas: map[uint64]bool{}, fences: map[uint64]bool{}}
	for _, e := range ents {
		name := e.Name()
		if id, ok := parseID(name, segSuffix); ok {
			d.segs = append(d.segs, id)
			if !e.Type().IsRegular() {
				d.notReg[id] = e.Type().String()
			}
			continue
		}
		if id, ok := parseID(name, metaSuffix); ok {
			d.metas[id] = true
			continue
		}
		if id, ok := parseID(name, fenceSuffix); ok {
			d.fences[id] = true
		}
	}
	slices.Sort(d.segs)
	for _, e := range ents {
		name := e.Name()
		if _, ok := parseID(name, segSuffix); ok {
			continue
		}
		if id, ok := parseID(name, metaSuffix); ok && slices.Contains(d.segs, id) {
			continue
		}
		var size int64
		if info, err := e.Info(); err == nil {
			size = info.Size()
		}
		d.other = append(d.other, OtherFile{Name: name, Size: size, Note: otherNote(name, d)})
	}
	slices.SortFunc(d.other, func(a, b OtherFile) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

func otherNote(name string, d *dirListing) string {
	switch {
	case name == lockName:
		return "the directory's lock (flocked while a process has the log open)"
	case isLeftover(name):
		return "temporary: a live writer's prepared or recycled segment, or a leftover that Open removes"
	}
	if id, ok := parseID(name, brokenSuffix); ok {
		return fmt.Sprintf("bytes that recovery cut off segment %d (a torn tail, or a segment whose header was unreadable), kept for the operator; dwal never reads it", id)
	}
	if id, ok := parseID(name, metaSuffix); ok {
		return fmt.Sprintf("orphan .meta: segment %d is gone; ignored", id)
	}
	if id, ok := parseID(name, fenceSuffix); ok {
		if slices.Contains(d.segs, id) {
			return fmt.Sprintf("end-of-log record of segment %d: Open cuts the segment there and reseals it", id)
		}
		return fmt.Sprintf("end-of-log record of segment %d, which is gone; Open removes it", id)
	}
	return "not a dwal file; ignored"
}

// meta reads segment id's .meta; ok is false when it is missing or malformed.
func (d *dirListing) meta(fsys vfs.FS, id uint64) (SegmentMetadata, bool) {
	if !d.metas[id] {
		return SegmentMetadata{}, false
	}
	b, err := fsys.ReadFile(metaName(id))
	if err != nil || len(b) != metaLen {
		return SegmentMetadata{}, false
	}
	return ParseSegmentMetadata(b)
}

// fence reads segment id's end-of-log record (0: none or invalid).
func (d *dirListing) fence(fsys vfs.FS, id uint64) int64 {
	if !d.fences[id] {
		return 0
	}
	b, err := fsys.ReadFile(fenceName(id))
	if err != nil {
		return 0
	}
	off, ok := decodeFence(b)
	if !ok {
		return 0
	}
	return off
}

// endReason names why a scan stopped, for people.
func endReason(why batchProblem) string {
	if why == batchOK {
		return "end of file"
	}
	return string(why)
}

// cleanEnd reports whether a log that ends for this reason ended as logs
// normally do: at the end of the file, at never-written blocks, or at stale
// bytes of a recycled file.
func cleanEnd(why batchProblem) bool {
	return why == batchOK || why == batchNoMagic || why == batchSalt
}

func examine(dir string, fsys vfs.FS) (*DirReport, error) {
	d, err := listDir(fsys)
	if err != nil {
		return nil, err
	}
	r := &DirReport{Dir: dir, Alignment: fsys.Alignment(), Other: d.other, Segments: []SegmentReport{}, Problems: []Problem{}}
	for i, id := range d.segs {
		sr, probs := examineSegment(fsys, d, id, i == len(d.segs)-1)
		r.Segments = append(r.Segments, sr)
		r.Problems = append(r.Problems, probs...)
	}
	for _, o := range d.other {
		if id, ok := parseID(o.Name, fenceSuffix); ok && !slices.Contains(d.segs, id) {
			r.Problems = append(r.Problems, Problem{SeverityWarning, o.Name, -1,
				fmt.Sprintf("end-of-log record of segment %d, which is gone; Open removes it", id)})
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	return r, nil
}

// examineSegment scans segment id and judges what it finds (see Severity).
func examineSegment(fsys vfs.FS, d *dirListing, id uint64, last bool) (SegmentReport, []Problem) {
	name := segName(id)
	sr := SegmentReport{ID: id, File: name, Meta: MetaMissing, State: SegmentSealed}
	var probs []Problem
	add := func(sev Severity, file string, off int64, format string, args ...any) {
		probs = append(probs, Problem{sev, file, off, fmt.Sprintf(format, args...)})
		if sev == SeverityError {
			sr.State = SegmentBroken
		}
	}
	if t, ok := d.notReg[id]; ok {
		sr.State = SegmentBroken
		sr.EndReason = "not a regular file"
		add(SeverityError, name, -1, "not a regular file (%s): Open refuses the directory", t)
		return sr, probs
	}

	// The .meta and the end-of-log record.
	var meta SegmentMetadata
	hasMeta := false
	if d.metas[id] {
		b, err := fsys.ReadFile(metaName(id))
		switch {
		case err != nil:
			add(SeverityError, metaName(id), -1, "cannot read: %v", err)
		case len(b) != metaLen:
			sr.Meta = MetaMalformed
			add(SeverityWarning, metaName(id), -1, "%d bytes, want %d: Open rebuilds it from the segment", len(b), metaLen)
		default:
			meta, hasMeta = ParseSegmentMetadata(b)
			m := meta
			sr.MetaFile = &m
			sr.Meta = MetaOK
		}
	}
	if d.fences[id] {
		b, err := fsys.ReadFile(fenceName(id))
		off, ok := decodeFence(b)
		switch {
		case err != nil:
			add(SeverityError, fenceName(id), -1, "cannot read: %v", err)
		case !ok:
			add(SeverityError, fenceName(id), -1, "not a valid end-of-log record: Open fails (ErrCorrupt)")
		default:
			sr.Fence = off
			if hasMeta {
				sr.Meta = MetaIgnored
			}
			add(SeverityWarning, fenceName(id), -1,
				"a failed write could not be rolled back: the log of %s ends at offset %d whatever follows; Open cuts it there and reseals the segment", name, off)
		}
	}
	// open: the segment was not sealed by its writer, so Open will seal it;
	// a crash may have torn the batches that were being written.
	open := sr.Fence > 0 || (last && !hasMeta)
	if open && sr.State != SegmentBroken {
		sr.State = SegmentActive
	}

	f, err := fsys.Open(name, true)
	if err != nil {
		add(SeverityError, name, -1, "cannot open: %v", err)
		return sr, probs
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		add(SeverityError, name, -1, "cannot stat: %v", err)
		return sr, probs
	}
	sr.FileSize = size
	a := fsys.Alignment()

	h, err := readSegHeader(f, a)
	if err != nil && !errors.Is(err, ErrUnsupportedFormat) {
		sr.EndReason = "bad segment header"
		if errors.Is(err, errBadSegHeader) {
			what := fmt.Sprintf("%v: no crash explains it (a header is synced before its segment is named)", err)
			if last {
				what += "; Open renames the segment to " + brokenName(id) + " and its batches are lost"
			} else {
				what += "; Open refuses the directory (ErrCorrupt)"
			}
			add(SeverityError, name, 0, "%s", what)
		} else {
			add(SeverityError, name, 0, "cannot read the header: %v", err)
		}
		sr.State = SegmentBroken
		return sr, probs
	}
	sr.Header = &SegmentHeader{Version: h.version, Flags: h.flags, Encrypted: h.flags&segFlagEncrypted != 0,
		Alignment: h.align, ID: h.id, Salt: h.salt, Created: time.Unix(0, h.created).UTC()}
	if err != nil {
		sr.EndReason = "newer format"
		add(SeverityError, name, 0, "%v: Open refuses the directory; use a newer dwal", err)
		sr.State = SegmentBroken
		return sr, probs
	}
	if h.id != id {
		add(SeverityError, name, 0, "the header names segment %d: Open refuses the directory (ErrCorrupt)", h.id)
	}

	limit := size
	if sr.Fence > 0 && sr.Fence < size {
		limit = sr.Fence
	}
	sc, err := scanSegment(f, a, limit, true, nil)
	if err != nil {
		add(SeverityError, name, -1, "read failed: %v", err)
		sr.State = SegmentBroken
		return sr, probs
	}
	sr.Used, sr.EndReason = sc.end, endReason(sc.why)
	sr.Batches, sr.Entries, sr.MinLSN, sr.MaxLSN = sc.batches, sc.meta.EntryCount, sc.meta.MinLSN, sc.meta.MaxLSN
	if sc.torn > sc.end {
		sr.Torn = sc.torn - sc.end
	}

	// Where the log ends.
	if !cleanEnd(sc.why) || sr.Torn > 0 {
		what := fmt.Sprintf("batch %d: %s", sc.batches+1, sc.why)
		if sr.Torn > 0 {
			what += fmt.Sprintf("; bytes of this segment's batches run on to offset %d", sc.torn)
		}
		if open {
			what += fmt.Sprintf("; a torn tail: a crash can tear the batches being written, none of them acknowledged; Open copies these bytes to %s and cuts them off (without a crash it is corruption)", brokenName(id))
			add(SeverityWarning, name, sc.end, "%s", what)
		} else {
			what += "; the segment is sealed (synced before its .meta was written), so no crash explains it: the batches from here on cannot be replayed"
			if !hasMeta {
				what += " and Open would rebuild the missing .meta without them"
			}
			add(SeverityError, name, sc.end, "%s", what)
		}
	}

	// The .meta against the scan.
	switch {
	case hasMeta && sr.Fence == 0 && meta != sc.meta:
		sr.Meta = MetaMismatch
		add(SeverityError, metaName(id), -1,
			"says %d entries, LSN %d..%d; %s holds %d entries, LSN %d..%d (its log ends at offset %d: %s): Replay fails with ErrCorrupt",
			meta.EntryCount, meta.MinLSN, meta.MaxLSN, name, sc.meta.EntryCount, sc.meta.MinLSN, sc.meta.MaxLSN, sc.end, endReason(sc.why))
	case !hasMeta && !open && sr.Meta != MetaMalformed:
		add(SeverityWarning, name, -1, "sealed (a newer segment follows) but has no .meta: Open rebuilds it from the scan")
	}
	if sc.batches == 0 && !open {
		add(SeverityWarning, name, -1, "sealed without any batch: Open removes it")
	}
	return sr, probs
}
