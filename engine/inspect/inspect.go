// Package inspect is read-only inspection of a dwal log directory (Dir,
// Verify, Dump): the operator's tools, for the dwal command and for
// operators' own programs. It is not part of the log's API (package engine).
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

package inspect

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

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
	// SegmentBroken: it holds an error (see Report.Problems).
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

// IndexState says what a sealed segment's index file (NNNNNN.log.idx)
// holds, against what the scan finds.
type IndexState string

const (
	IndexOK       IndexState = "ok"       // present, whole, and it describes the segment's batches exactly
	IndexMissing  IndexState = "missing"  // none: the first lookup in the segment scans it and writes it
	IndexBad      IndexState = "bad"      // torn, corrupt, another segment's, or wrong: rebuilt the same way
	IndexNotYet   IndexState = "-"        // the active segment: its index is written when it is sealed
	IndexUnneeded IndexState = "unneeded" // the segment is broken or empty: no index applies
)

// Header is the decoded header block of a segment.
type Header struct {
	Version   uint16    `json:"version"`
	Flags     uint16    `json:"flags"`
	Encrypted bool      `json:"encrypted"`
	KeyID     uint32    `json:"key_id"` // an encrypted segment's master key (0 in format 1, which records none)
	Alignment uint32    `json:"alignment"`
	ID        uint64    `json:"id"`
	Salt      uint64    `json:"salt,string"`
	Created   time.Time `json:"created"`
}

// Segment is what Dir found in one segment.
type Segment struct {
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
	Torn    int64        `json:"torn"`
	MinLSN  engine.LSN   `json:"min_lsn"`
	MaxLSN  engine.LSN   `json:"max_lsn"`
	Entries uint64       `json:"entries"`
	Batches uint64       `json:"batches"`
	State   SegmentState `json:"state"`
	Header  *Header      `json:"header"` // nil when the header block is unreadable
	Meta    MetaState    `json:"meta"`
	// Index is the state of the segment's index file; IndexRefs the batches
	// it lists when it is ok.
	Index     IndexState `json:"index"`
	IndexRefs int        `json:"index_refs,omitempty"`
	// Logs is how many logs have entries or records in the segment, as
	// its index lists them (0 when it has none that is ok).
	Logs int `json:"logs,omitempty"`
	// MetaFile is the content of the .meta file when it parses.
	MetaFile *engine.SegmentMetadata `json:"meta_file,omitempty"`
	// Fence is the offset an end-of-log record (NNNNNN.log.end) fixes as the
	// end of the log after a failed write could not be rolled back (0: none).
	Fence int64 `json:"fence,omitempty"`
	// Deleted says what the log-state record deletes of this segment's
	// entries (DeleteBefore, TruncateAfter): "all" (Open removes it),
	// "some" (those below the first LSN or above a cut), or "" (none). The
	// counts above are of what the file holds, deleted entries included.
	Deleted string `json:"deleted,omitempty"`
}

// LogState is the log-state record (log.state): what each log's owner
// deleted with DeleteBefore and TruncateAfter, exact to the entry, as of
// the segments it covers.
type LogState struct {
	// Floor: the next segment the writer starts gets at least this ID.
	Floor uint64 `json:"floor"`
	// Covers: the deletions recorded in segments below it are in the
	// record; those of later segments are in those segments.
	Covers uint64 `json:"covers"`
	Logs   []Log  `json:"logs"`
}

// Log is one log's part of the log-state record.
type Log struct {
	ID uint64 `json:"id"`
	// First: entries with a smaller LSN are deleted (0: none).
	First engine.LSN `json:"first"`
	// Base: entries of batches before it are deleted.
	Base Position `json:"base"`
	// Cuts: entries with LSN > After of batches before Below are deleted.
	Cuts []Cut `json:"cuts"`
	// Moves: entries with LSN <= Through of batches before Below are
	// deleted (a rewrite copied them to Below and after).
	Moves []Move `json:"moves"`
	// UserBytes is the size of the owner's record kept beside it.
	UserBytes int `json:"user_bytes"`
}

// Position is a place in the stream: a batch's segment and offset.
type Position struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

// Cut is one suffix cut of a log.
type Cut struct {
	After engine.LSN `json:"after"`
	Below Position   `json:"below"`
}

// Move is one rewrite of a log's oldest entries forward.
type Move struct {
	Through engine.LSN `json:"through"`
	Below   Position   `json:"below"`
}

// OtherFile is a file of the directory that is not a segment or its .meta.
type OtherFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Note string `json:"note"`
}

// Report is what Dir found in a directory.
type Report struct {
	Dir string `json:"dir"`
	// Alignment is the I/O alignment the files were read with (each
	// segment's header says the one it was written with).
	Alignment int         `json:"alignment"`
	Segments  []Segment   `json:"segments"`
	Other     []OtherFile `json:"other"`
	// State is the log-state record, nil when there is none (nothing was
	// ever deleted by DeleteBefore or TruncateAfter) or it does not decode
	// (a problem says so).
	State *LogState `json:"state,omitempty"`
	// Problems is what Verify returns, sorted by file and offset.
	Problems []Problem `json:"problems"`
}

// Errors and Warnings count the problems of each severity.
func (r *Report) Errors() int   { return r.count(SeverityError) }
func (r *Report) Warnings() int { return r.count(SeverityWarning) }

func (r *Report) count(s Severity) int {
	n := 0
	for _, p := range r.Problems {
		if p.Severity == s {
			n++
		}
	}
	return n
}

// Dir reads every segment of the log directory dir, and every batch in it
// (checking each CRC, as Verify does), and reports one Segment per segment,
// by ID, with the problems found. It takes no lock and modifies nothing. An
// error means the directory could not be read at all; what is wrong inside
// it is in Report.Problems.
func Dir(dir string) (*Report, error) {
	fsys, err := openReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	return examine(dir, fsys)
}

// Verify reads every segment and batch of the log directory dir and checks
// every segment header (magic, CRC, version, ID), every batch (magic, salt,
// sequence, length, CRC, entries inside the header's LSN range), what lies
// past the end of each segment's log, and every .meta against the scan. It
// returns the problems found (none: the directory is clean) naming file,
// offset and what is wrong; see Severity for what is an error and what a
// warning. It takes no lock and modifies nothing. Encrypted segments are
// checked by their CRCs only (their entries are encrypted).
func Verify(dir string) ([]Problem, error) {
	r, err := Dir(dir)
	if err != nil {
		return nil, err
	}
	return r.Problems, nil
}

// DumpOptions say which entries Dump hands out.
type DumpOptions struct {
	// From and To bound the LSNs handed out: From <= LSN <= To. The zero
	// To means no upper bound.
	From, To engine.LSN
	// Logs, when not nil, are the only logs whose entries are handed out
	// (a directory of one log holds log 0's only).
	Logs []uint64
	// Cipher opens the entries of encrypted segments (a keyring holding
	// the keys their headers name); without it, or without a segment's
	// key, those segments fail with ErrDecrypt.
	Cipher engine.Cipher
}

// Dump calls fn for every live data entry in the range of opts (not
// deleted by its log's records: DeleteBefore, TruncateAfter), in write
// order: segment by segment, batch by batch, entry by entry, each segment
// up to the end of its log (never past it). seg is the segment ID, off the
// file offset of the entry (of its header; for an encrypted segment, of
// its batch), log the log it belongs to; data is only valid during the
// call. It takes no lock and modifies nothing.
//
// Dump stops at fn's first error and returns it. A segment it cannot read
// (a bad header; an encrypted one without opts.Cipher: engine.ErrDecrypt)
// or a sealed segment whose .meta disagrees with its log
// (engine.ErrCorrupt) does not stop it: it goes on with the next segment and
// returns those errors, joined, at the end. Sealed segments whose .meta puts
// them wholly outside the range are skipped.
func Dump(dir string, opts DumpOptions, fn func(seg uint64, off int64, log uint64, lsn engine.LSN, data []byte) error) error {
	from, to := uint64(opts.From), uint64(opts.To)
	if opts.To == 0 {
		to = ^uint64(0)
	}
	fsys, err := openReadOnly(dir)
	if err != nil {
		return err
	}
	defer fsys.Close()
	l, err := segment.List(fsys)
	if err != nil {
		return fmt.Errorf("dwal: %w", err)
	}
	keys := keysOf(opts.Cipher)
	rec, err := currentState(fsys, l, keys)
	if err != nil {
		return fmt.Errorf("dwal: %w", err)
	}
	want := func(log uint64) bool { return opts.Logs == nil || slices.Contains(opts.Logs, log) }
	var errs []error
	for _, id := range l.IDs {
		meta, metaOK, _ := segment.ReadMeta(fsys, id)
		fence := fenceOf(fsys, l, id)
		if metaOK && fence == 0 && (meta.MaxLSN < from || meta.MinLSN > to) {
			continue
		}
		err := dumpSegment(fsys, id, fence, keys, func(batch, off int64, e segment.Entry) error {
			if e.Kind != segment.KindData || !want(e.Log) || e.LSN < from || e.LSN > to || rec.Log(e.Log).Dead(segment.Pos{Seg: id, Off: batch}, e.LSN) {
				return nil
			}
			return fn(id, off, e.Log, engine.LSN(e.LSN), e.Data)
		}, func(r segment.Result) error {
			if metaOK && fence == 0 && r.Meta != meta {
				return segment.MetaMismatch(segment.Name(id), r, meta)
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

// keysOf is a segment.Keys over ciph (nil when ciph is nil: encrypted
// segments then fail with ErrDecrypt).
func keysOf(ciph engine.Cipher) segment.Keys {
	var derive func(uint32, []byte) (engine.SegmentCipher, error)
	if ciph != nil {
		derive = ciph.Segment
	}
	return func(h *segment.Header) (segment.Decrypter, error) { return segment.CipherFor(h, derive) }
}

// currentState is what every log's records say as of the end of the log:
// the checkpoint (log.state), then the records of the segments it does not
// cover, from their index files (or a scan, when one is missing or does
// not decode), as the engine's recovery reads them.
func currentState(fsys vfs.FS, l *segment.Listing, keys segment.Keys) (*segment.State, error) {
	rec, _, err := segment.ReadState(fsys)
	if err != nil {
		return nil, err
	}
	for _, id := range l.IDs {
		if id < rec.Covers {
			continue
		}
		x, err := indexOf(fsys, id, keys)
		if err != nil {
			return nil, err
		}
		if x != nil {
			rec.ApplyIndex(id, x)
		}
	}
	return &rec, nil
}

// indexOf returns segment id's index: its index file when it is the
// segment's, else a scan's; nil for a segment of a format without records.
func indexOf(fsys vfs.FS, id uint64, keys segment.Keys) (*segment.Index, error) {
	f, err := fsys.Open(segment.Name(id), true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := segment.ReadHeader(f, fsys.Alignment())
	if err != nil || h.Version < segment.Version3 {
		return nil, nil // a bad header is another problem's
	}
	if x, ok, err := segment.ReadIndex(fsys, id); err == nil && ok && x.Matches(&h, segment.Meta{}, false) == nil {
		return x, nil
	}
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	r, err := segment.Scan(f, fsys.Alignment(), size, segment.ScanOptions{Index: true, Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", segment.Name(id), err)
	}
	return r.Index, nil
}

// callbackErr carries the error of Dump's fn out of the scan unchanged.
type callbackErr struct{ err error }

func (e *callbackErr) Error() string { return e.err.Error() }
func (e *callbackErr) Unwrap() error { return e.err }

// dumpSegment scans segment id, calling fn with each entry, its batch's
// offset and its own (an encrypted segment's entries have none: its
// batch's), then check with the scan's result.
func dumpSegment(fsys vfs.FS, id uint64, fence int64, keys segment.Keys, fn func(batch, off int64, e segment.Entry) error, check func(segment.Result) error) error {
	name := segment.Name(id)
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
	var h segment.Header
	batch, pos := int64(-1), int64(0)
	r, err := segment.Scan(f, fsys.Alignment(), limit, segment.ScanOptions{Keys: keys,
		Batch: func(off int64, bh *segment.BatchHeader) error {
			if batch < 0 {
				if h, err = segment.ReadHeader(f, fsys.Alignment()); err != nil {
					return err
				}
			}
			batch, pos = off, off+segment.BatchHeaderLen
			return nil
		},
		Entry: func(off int64, e segment.Entry) error {
			at := pos
			if h.Encrypted() {
				at = off
			}
			pos += int64(h.Layout().HeaderLen() + len(e.Data))
			if err := fn(off, at, e); err != nil {
				return &callbackErr{err}
			}
			return nil
		}})
	if err != nil {
		var ce *callbackErr
		if errors.As(err, &ce) {
			return ce
		}
		return fmt.Errorf("dwal: dump %s: %w", name, err)
	}
	return check(r)
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
	return fallback.New(dir, vfs.Options{Alignment: align.Default})
}

// fenceOf reads segment id's end-of-log record (0: none or invalid).
func fenceOf(fsys vfs.FS, l *segment.Listing, id uint64) int64 {
	if !l.Fences[id] {
		return 0
	}
	off, err := segment.ReadFence(fsys, id)
	if err != nil {
		return 0
	}
	return off
}

func examine(dir string, fsys vfs.FS) (*Report, error) {
	l, err := segment.List(fsys)
	if err != nil {
		return nil, fmt.Errorf("dwal: %w", err)
	}
	r := &Report{Dir: dir, Alignment: fsys.Alignment(), Other: otherFiles(l), Segments: []Segment{}, Problems: []Problem{}}
	st, ok, err := segment.ReadState(fsys)
	switch {
	case err != nil:
		r.Problems = append(r.Problems, Problem{SeverityError, segment.StateName, -1,
			fmt.Sprintf("%v: no crash explains it (the record is replaced atomically); Open refuses the directory", err)})
	case ok:
		r.State = reportState(&st)
	}
	// What the logs' records say now: the checkpoint and the records it
	// does not cover (those of an encrypted segment only as far as its
	// index file tells, without keys).
	cur, cerr := currentState(fsys, l, nil)
	for i, id := range l.IDs {
		e := &examination{fsys: fsys, l: l, id: id, last: i == len(l.IDs)-1}
		e.run()
		if cerr == nil {
			e.sr.Deleted = deletedOf(cur, &e.sr, e.x)
		}
		r.Segments = append(r.Segments, e.sr)
		r.Problems = append(r.Problems, e.probs...)
	}
	for _, o := range r.Other {
		if id, ok := segment.ParseID(o.Name, segment.FenceSuffix); ok && !l.Has(id) {
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

// reportState is the report's form of the log-state record.
func reportState(st *segment.State) *LogState {
	r := &LogState{Floor: st.Floor, Covers: st.Covers, Logs: []Log{}}
	ids := slices.Sorted(maps.Keys(st.Logs))
	for _, id := range ids {
		l := st.Logs[id]
		rl := Log{ID: id, First: engine.LSN(l.First), Base: Position{l.Base.Seg, l.Base.Off}, Cuts: []Cut{}, Moves: []Move{}, UserBytes: len(l.User)}
		for _, k := range l.Cuts {
			rl.Cuts = append(rl.Cuts, Cut{After: engine.LSN(k.After), Below: Position{k.Below.Seg, k.Below.Off}})
		}
		for _, m := range l.Moves {
			rl.Moves = append(rl.Moves, Move{Through: engine.LSN(m.Through), Below: Position{m.Below.Seg, m.Below.Off}})
		}
		r.Logs = append(r.Logs, rl)
	}
	return r
}

// deletedOf says what the logs' states st delete of segment s ("all",
// "some", ""), from each log's LSN range in it (its index x, when the scan
// built one; else as log 0's).
func deletedOf(st *segment.State, s *Segment, x *segment.Index) string {
	var logs []segment.IndexLog
	if x != nil {
		logs = x.Logs
	} else {
		logs = []segment.IndexLog{{Log: 0, Meta: segment.Meta{MinLSN: uint64(s.MinLSN), MaxLSN: uint64(s.MaxLSN), Entries: s.Entries}}}
	}
	all, some := true, false
	for _, l := range logs {
		if l.Meta.Entries == 0 {
			continue
		}
		switch st.Log(l.Log).Covers(segment.Whole(s.ID), l.Meta, true) {
		case segment.DeletesAll:
			some = true
		case segment.DeletesSome:
			all, some = false, true
		default:
			all = false
		}
	}
	switch {
	case some && all:
		return "all"
	case some:
		return "some"
	}
	return ""
}

// otherFiles describes the listing's files that are not segments or their
// .meta, by name.
func otherFiles(l *segment.Listing) []OtherFile {
	other := []OtherFile{}
	for _, e := range l.Other {
		var size int64
		if info, err := e.Info(); err == nil {
			size = info.Size()
		}
		other = append(other, OtherFile{Name: e.Name(), Size: size, Note: otherNote(e.Name(), l)})
	}
	slices.SortFunc(other, func(a, b OtherFile) int { return strings.Compare(a.Name, b.Name) })
	return other
}

func otherNote(name string, l *segment.Listing) string {
	switch {
	case name == segment.LockName:
		return "the directory's lock (flocked while a process has the log open)"
	case name == segment.StateName:
		return "the log-state record: the entries deleted by DeleteBefore and TruncateAfter (see Report.State), and the owner's record"
	case segment.IsLeftover(name) && (strings.HasPrefix(name, segment.PreparedPrefix) || strings.HasPrefix(name, segment.RecyclePrefix)):
		return "temporary: a prepared or retired segment file, a live writer's or one a Close or crash left; the next Open reuses one such file as its first segment and removes the others"
	case segment.IsLeftover(name):
		return "temporary: a live writer's record being written, or a leftover that Open removes"
	}
	if id, ok := segment.ParseID(name, segment.BrokenSuffix); ok {
		return fmt.Sprintf("bytes that recovery cut off segment %d (a torn tail, or a segment whose header was unreadable), kept for the operator; dwal never reads it", id)
	}
	if id, ok := segment.ParseID(name, segment.MetaSuffix); ok {
		return fmt.Sprintf("orphan .meta: segment %d is gone; Open removes it", id)
	}
	if id, ok := segment.ParseID(name, segment.IndexSuffix); ok {
		return fmt.Sprintf("orphan index: segment %d is gone; Open removes it", id)
	}
	if id, ok := segment.ParseID(name, segment.FenceSuffix); ok {
		if l.Has(id) {
			return fmt.Sprintf("end-of-log record of segment %d: Open cuts the segment there and reseals it", id)
		}
		return fmt.Sprintf("end-of-log record of segment %d, which is gone; Open removes it", id)
	}
	return "not a dwal file; ignored"
}

// examination judges one segment (see Severity), in phases: its .meta and
// end-of-log record, its header, its scan, then what the scan says of the
// end of the log and of the .meta.
type examination struct {
	fsys  vfs.FS
	l     *segment.Listing
	id    uint64
	last  bool // the directory's last segment
	sr    Segment
	probs []Problem

	meta    segment.Meta
	hasMeta bool
	open    bool           // not sealed by its writer: Open will seal it
	x       *segment.Index // what the scan indexed (nil: it could not)
}

func (e *examination) add(sev Severity, file string, off int64, format string, args ...any) {
	e.probs = append(e.probs, Problem{sev, file, off, fmt.Sprintf(format, args...)})
	if sev == SeverityError {
		e.sr.State = SegmentBroken
	}
}

func (e *examination) run() {
	name := segment.Name(e.id)
	e.sr = Segment{ID: e.id, File: name, Meta: MetaMissing, State: SegmentSealed}
	if t, ok := e.l.NotRegular[e.id]; ok {
		e.sr.EndReason = "not a regular file"
		e.add(SeverityError, name, -1, "not a regular file (%s): Open refuses the directory", t)
		return
	}
	e.records()
	// open: the segment was not sealed by its writer, so Open will seal it;
	// a crash may have torn the batches that were being written.
	e.open = e.sr.Fence > 0 || (e.last && !e.hasMeta)
	if e.open && e.sr.State != SegmentBroken {
		e.sr.State = SegmentActive
	}
	f, err := e.fsys.Open(name, true)
	if err != nil {
		e.add(SeverityError, name, -1, "cannot open: %v", err)
		return
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		e.add(SeverityError, name, -1, "cannot stat: %v", err)
		return
	}
	e.sr.FileSize = size
	if !e.header(f) {
		return
	}
	limit := size
	if e.sr.Fence > 0 && e.sr.Fence < size {
		limit = e.sr.Fence
	}
	// NB: an encrypted segment of format 3 names its entries' logs only
	// inside its encrypted batches: without keys, its index and .meta are
	// checked only as far as the batch headers go.
	canIndex := !e.sr.Header.Encrypted || e.sr.Header.Version < segment.Version3
	r, err := segment.Scan(f, e.fsys.Alignment(), limit, segment.ScanOptions{FindTorn: true, Index: canIndex})
	x := r.Index
	e.x = x
	if err != nil {
		e.add(SeverityError, name, -1, "read failed: %v", err)
		e.sr.State = SegmentBroken
		return
	}
	e.sr.Used, e.sr.EndReason = r.End, r.Why.Reason()
	e.sr.Batches, e.sr.Entries = r.Batches, r.Meta.Entries
	e.sr.MinLSN, e.sr.MaxLSN = engine.LSN(r.Meta.MinLSN), engine.LSN(r.Meta.MaxLSN)
	if r.Torn > r.End {
		e.sr.Torn = r.Torn - r.End
	}
	e.judgeEnd(r)
	e.judgeMeta(r)
	e.judgeIndex(x)
}

// judgeIndex checks the segment's index file against the index the scan
// built: a sealed segment's must describe its batches exactly. A missing
// or bad one is a warning (nothing is lost: the first lookup that needs it
// scans the segment and writes it again).
func (e *examination) judgeIndex(scanned *segment.Index) {
	e.sr.Index = IndexNotYet
	if e.open {
		return
	}
	e.sr.Index = IndexUnneeded
	if e.sr.State == SegmentBroken || e.sr.Batches == 0 {
		return
	}
	iname := segment.IndexName(e.id)
	rebuilt := "the first Read, Bounds or deletion that needs it scans the segment and writes it again"
	if !e.l.Indexes[e.id] {
		e.sr.Index = IndexMissing
		e.add(SeverityWarning, iname, -1, "missing (written by a dwal before indexes, or lost in a crash): %s", rebuilt)
		return
	}
	x, _, err := segment.ReadIndex(e.fsys, e.id)
	if err == nil {
		h := segment.Header{ID: e.id, Salt: e.sr.Header.Salt, Align: e.sr.Header.Alignment}
		if scanned != nil {
			err = x.Matches(&h, scanned.Meta(), true)
		} else {
			err = x.Matches(&h, segment.Meta{}, false)
		}
	}
	if err == nil && scanned != nil {
		err = sameIndex(x, scanned)
	}
	if err != nil {
		e.sr.Index = IndexBad
		e.add(SeverityWarning, iname, -1, "%v: %s", err, rebuilt)
		return
	}
	e.sr.Index = IndexOK
	for _, l := range x.Logs {
		e.sr.IndexRefs += l.Refs.Len()
	}
	e.sr.Logs = len(x.Logs)
}

// sameIndex reports how index x differs from the scan's, log by log and
// ref by ref.
func sameIndex(x, scanned *segment.Index) error {
	if len(x.Logs) != len(scanned.Logs) {
		return fmt.Errorf("%w: it lists %d logs, the segment holds %d", segment.ErrCorrupt, len(x.Logs), len(scanned.Logs))
	}
	for i, want := range scanned.Logs {
		got := x.Logs[i]
		if got.Log != want.Log || got.Refs.Len() != want.Refs.Len() || len(got.Records) != len(want.Records) {
			return fmt.Errorf("%w: log %d with %d batches and %d records listed; the segment holds log %d in %d batches with %d records",
				segment.ErrCorrupt, got.Log, got.Refs.Len(), len(got.Records), want.Log, want.Refs.Len(), len(want.Records))
		}
		for j := range got.Refs.Len() {
			if g, w := got.Refs.At(j), want.Refs.At(j); g != w {
				return fmt.Errorf("%w: log %d's batch %d is listed at offset %d (LSN %d..%d); the segment has it at %d (LSN %d..%d)",
					segment.ErrCorrupt, got.Log, j+1, g.Off, g.MinLSN, g.MaxLSN, w.Off, w.MinLSN, w.MaxLSN)
			}
		}
	}
	return nil
}

// records reads the segment's .meta and end-of-log record.
func (e *examination) records() {
	if e.l.Metas[e.id] {
		mname := segment.MetaName(e.id)
		b, err := e.fsys.ReadFile(mname)
		m, ok := segment.DecodeMeta(b)
		switch {
		case err != nil:
			e.add(SeverityError, mname, -1, "cannot read: %v", err)
		case !ok:
			e.sr.Meta = MetaMalformed
			e.add(SeverityWarning, mname, -1, "%d bytes, want %d: Open rebuilds it from the segment", len(b), segment.MetaLen)
		default:
			e.meta, e.hasMeta = m, true
			e.sr.MetaFile = &engine.SegmentMetadata{MinLSN: engine.LSN(m.MinLSN), MaxLSN: engine.LSN(m.MaxLSN), EntryCount: m.Entries}
			e.sr.Meta = MetaOK
		}
	}
	if e.l.Fences[e.id] {
		fname := segment.FenceName(e.id)
		off, err := segment.ReadFence(e.fsys, e.id)
		switch {
		case errors.Is(err, segment.ErrCorrupt):
			e.add(SeverityError, fname, -1, "not a valid end-of-log record: Open fails (ErrCorrupt)")
		case err != nil:
			e.add(SeverityError, fname, -1, "cannot read: %v", err)
		default:
			e.sr.Fence = off
			if e.hasMeta {
				e.sr.Meta = MetaIgnored
			}
			e.add(SeverityWarning, fname, -1,
				"a failed write could not be rolled back: the log of %s ends at offset %d whatever follows; Open cuts it there and reseals the segment", segment.Name(e.id), off)
		}
	}
}

// header reads and judges the segment's header block; false when the scan
// cannot go on.
func (e *examination) header(f vfs.File) bool {
	name := segment.Name(e.id)
	h, err := segment.ReadHeader(f, e.fsys.Alignment())
	if err != nil && !errors.Is(err, segment.ErrUnsupportedFormat) {
		e.sr.EndReason = "bad segment header"
		if errors.Is(err, segment.ErrBadHeader) {
			what := fmt.Sprintf("%v: no crash explains it (a header is synced before its segment is named)", err)
			if e.last {
				what += "; Open renames the segment to " + segment.BrokenName(e.id) + " and its batches are lost"
			} else {
				what += "; Open refuses the directory (ErrCorrupt)"
			}
			e.add(SeverityError, name, 0, "%s", what)
		} else {
			e.add(SeverityError, name, 0, "cannot read the header: %v", err)
		}
		e.sr.State = SegmentBroken
		return false
	}
	e.sr.Header = &Header{Version: h.Version, Flags: h.Flags, Encrypted: h.Encrypted(), KeyID: h.KeyID,
		Alignment: h.Align, ID: h.ID, Salt: h.Salt, Created: time.Unix(0, h.Created).UTC()}
	if err != nil {
		e.sr.EndReason = "newer format"
		e.add(SeverityError, name, 0, "%v: Open refuses the directory; use a newer dwal", err)
		e.sr.State = SegmentBroken
		return false
	}
	if h.ID != e.id {
		e.add(SeverityError, name, 0, "the header names segment %d: Open refuses the directory (ErrCorrupt)", h.ID)
	}
	return true
}

// judgeEnd says whether the log ends where logs normally do.
func (e *examination) judgeEnd(r segment.Result) {
	if r.Why.Clean() && e.sr.Torn == 0 {
		return
	}
	name := segment.Name(e.id)
	what := fmt.Sprintf("batch %d: %s", r.Batches+1, r.Why)
	if e.sr.Torn > 0 {
		what += fmt.Sprintf("; bytes of this segment's batches run on to offset %d", r.Torn)
	}
	if e.open {
		what += fmt.Sprintf("; a torn tail: a crash can tear the batches being written, none of them acknowledged; Open copies these bytes to %s and cuts them off (without a crash it is corruption)", segment.BrokenName(e.id))
		e.add(SeverityWarning, name, r.End, "%s", what)
		return
	}
	what += "; the segment is sealed (synced before its .meta was written), so no crash explains it: the batches from here on cannot be replayed"
	if !e.hasMeta {
		what += " and Open would rebuild the missing .meta without them"
	}
	e.add(SeverityError, name, r.End, "%s", what)
}

// judgeMeta checks the .meta against the scan.
func (e *examination) judgeMeta(r segment.Result) {
	name := segment.Name(e.id)
	switch {
	case e.hasMeta && e.sr.Fence == 0 && !r.Approx && e.meta != r.Meta:
		e.sr.Meta = MetaMismatch
		m := e.meta
		e.add(SeverityError, segment.MetaName(e.id), -1,
			"says %d entries, LSN %d..%d; %s holds %d entries, LSN %d..%d (its log ends at offset %d: %s): Replay fails with ErrCorrupt",
			m.Entries, m.MinLSN, m.MaxLSN, name, r.Meta.Entries, r.Meta.MinLSN, r.Meta.MaxLSN, r.End, r.Why.Reason())
	case !e.hasMeta && !e.open && e.sr.Meta != MetaMalformed:
		e.add(SeverityWarning, name, -1, "sealed (a newer segment follows) but has no .meta: Open rebuilds it from the scan")
	}
	if r.Batches == 0 && !e.open {
		e.add(SeverityWarning, name, -1, "sealed without any batch: Open removes it")
	}
}
