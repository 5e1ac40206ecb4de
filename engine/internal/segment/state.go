package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"slices"

	"github.com/dwal-project/dwal/engine/vfs"
)

// The log-state record, file log.state: every log's deletions (exact to
// the entry, without rewriting a byte of any segment) and user record, as
// of a point of the stream. It is replaced atomically (temp file, fsync,
// rename, directory fsync), so a crash leaves the old record or the new
// one whole. Version 1 (written by dwal before logs shared a stream) holds
// one log's state, whose positions are segment IDs; version 2 holds every
// log's, and the records of the segments below Covers: the records of the
// segments at or above it are in those segments. Its layout is drawn in
// the package doc. NB: never change a layout; a new one gets a new
// StateVersion.
const (
	StateName    = "log.state"
	StateMagic   = "DWALSTAT"
	StateVersion = 2 // the newest this build reads, and the one it writes
	StateTmpName = StateName + TmpSuffix

	stateV1FixedLen = 44
	stateV1CutLen   = 16
	stateFixedLen   = 32 // v2: magic, version, flags, logs, floor, covers
	stateLogLen     = 48 // v2 per log: ID, first, base (seg, off), cuts, moves, user length, zero
	stateCutLen     = 24 // v2 per cut: after, below (seg, off); per move: through, below (seg, off)
	stateCRCLen     = 4

	MaxStateCuts   = 1 << 16 // per log, and as many moves
	MaxStateUser   = 1 << 20 // per log
	MaxStateLogs   = 1 << 24
	stateMaxLength = 1 << 30
)

// Pos is a place in the stream: the segment and aligned offset of a batch.
// Positions order the stream: a batch written after another has a greater
// one.
type Pos struct {
	Seg uint64
	Off int64
}

// Before reports whether p comes before q in the stream.
func (p Pos) Before(q Pos) bool { return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off }

// Compare orders positions: -1 when p is before q, 1 after, 0 equal.
func (p Pos) Compare(q Pos) int {
	switch {
	case p.Before(q):
		return -1
	case q.Before(p):
		return 1
	}
	return 0
}

// RewriteDataLen is the size of a rewrite record's data: the position of
// its rewrite's first batch (absent in that first batch itself).
const RewriteDataLen = 16

// EncodePos returns p as a rewrite record's data.
func EncodePos(p Pos) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, RewriteDataLen), p.Seg)
	return binary.LittleEndian.AppendUint64(b, uint64(p.Off))
}

// DecodePos reads a position written by EncodePos.
func DecodePos(b []byte) Pos {
	return Pos{Seg: binary.LittleEndian.Uint64(b), Off: int64(binary.LittleEndian.Uint64(b[8:]))}
}

// SegmentStart is the position before every batch of segment id.
func SegmentStart(id uint64) Pos { return Pos{Seg: id} }

// Span is where a range of entries lies: from the position of the batch
// of the first to that of the last (both included).
type Span struct{ From, To Pos }

// At is the span of one batch at p.
func At(p Pos) Span { return Span{p, p} }

// Whole is the span of every batch segment id may hold.
func Whole(id uint64) Span {
	return Span{SegmentStart(id), Pos{Seg: id, Off: math.MaxInt64}}
}

// LogState is what one log's records say: what is deleted, and the
// owner's record (engine.Log.SetUserRecord).
type LogState struct {
	First uint64 // entries with a smaller LSN are deleted (0: none)
	Base  Pos    // entries of batches before it are deleted (TruncateAfter of everything)
	Cuts  []Cut  // by ascending Below
	Moves []Move // by ascending Below
	User  []byte
}

// Cut deletes the entries with LSN > After of the batches before Below
// (TruncateAfter).
type Cut struct {
	After uint64
	Below Pos
}

// Move deletes the entries with LSN <= Through of the batches before
// Below: a rewrite copied the live ones into the batches from Below on.
type Move struct {
	Through uint64
	Below   Pos
}

// Empty reports whether s deletes nothing and holds no user record.
func (s *LogState) Empty() bool {
	return s.First == 0 && s.Base == (Pos{}) && len(s.Cuts) == 0 && len(s.Moves) == 0 && len(s.User) == 0
}

// State is the log-state record.
type State struct {
	Floor  uint64               // the next segment started gets an ID of at least this
	Covers uint64               // the records of segments below it are in this record
	Logs   map[uint64]*LogState // by log ID; an empty state may be left out
}

// Log returns log id's state (an empty one when the record has none).
func (s *State) Log(id uint64) *LogState {
	if l := s.Logs[id]; l != nil {
		return l
	}
	return &LogState{}
}

// Encode returns the record's bytes (version 2).
func (s *State) Encode() ([]byte, error) {
	ids := make([]uint64, 0, len(s.Logs))
	for id, l := range s.Logs {
		if len(l.Cuts) > MaxStateCuts || len(l.Moves) > MaxStateCuts || len(l.User) > MaxStateUser {
			return nil, fmt.Errorf("log %d: state of %d cuts, %d moves and %d user bytes exceeds %d, %d and %d",
				id, len(l.Cuts), len(l.Moves), len(l.User), MaxStateCuts, MaxStateCuts, MaxStateUser)
		}
		if !l.Empty() {
			ids = append(ids, id)
		}
	}
	if len(ids) > MaxStateLogs {
		return nil, fmt.Errorf("log state of %d logs exceeds %d", len(ids), MaxStateLogs)
	}
	slices.Sort(ids)
	b := make([]byte, stateFixedLen, stateFixedLen+len(ids)*stateLogLen+stateCRCLen)
	copy(b, StateMagic)
	binary.LittleEndian.PutUint16(b[8:], StateVersion)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(ids)))
	binary.LittleEndian.PutUint64(b[16:], s.Floor)
	binary.LittleEndian.PutUint64(b[24:], s.Covers)
	for _, id := range ids {
		l := s.Logs[id]
		b = binary.LittleEndian.AppendUint64(b, id)
		b = binary.LittleEndian.AppendUint64(b, l.First)
		b = binary.LittleEndian.AppendUint64(b, l.Base.Seg)
		b = binary.LittleEndian.AppendUint64(b, uint64(l.Base.Off))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Cuts)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l.Moves)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l.User)))
		b = binary.LittleEndian.AppendUint32(b, 0)
		for _, k := range l.Cuts {
			b = binary.LittleEndian.AppendUint64(b, k.After)
			b = binary.LittleEndian.AppendUint64(b, k.Below.Seg)
			b = binary.LittleEndian.AppendUint64(b, uint64(k.Below.Off))
		}
		for _, m := range l.Moves {
			b = binary.LittleEndian.AppendUint64(b, m.Through)
			b = binary.LittleEndian.AppendUint64(b, m.Below.Seg)
			b = binary.LittleEndian.AppendUint64(b, uint64(m.Below.Off))
		}
		b = append(b, l.User...)
	}
	if len(b)+stateCRCLen > stateMaxLength {
		return nil, fmt.Errorf("log state of %d bytes exceeds %d", len(b), stateMaxLength)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, Castagnoli)), nil
}

// DecodeState parses a log-state record of either version. A record
// written by a newer dwal gives ErrUnsupportedFormat; any other record that
// is not one whole gives ErrCorrupt (it is replaced atomically: no crash
// leaves it torn).
func DecodeState(b []byte) (State, error) {
	if len(b) < stateFixedLen+stateCRCLen || string(b[:8]) != StateMagic {
		return State{}, fmt.Errorf("%w: %s is not a log-state record", ErrCorrupt, StateName)
	}
	body := b[:len(b)-stateCRCLen]
	if binary.LittleEndian.Uint32(b[len(body):]) != crc32.Checksum(body, Castagnoli) {
		return State{}, fmt.Errorf("%w: %s: CRC mismatch", ErrCorrupt, StateName)
	}
	switch v := binary.LittleEndian.Uint16(b[8:]); v {
	case 1:
		return decodeStateV1(body)
	case 2:
		return decodeStateV2(body)
	default:
		return State{}, fmt.Errorf("%w: %s version %d, this build reads up to %d", ErrUnsupportedFormat, StateName, v, StateVersion)
	}
}

func errState(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, StateName, fmt.Sprintf(format, args...))
}

// decodeStateV1 reads a version 1 record: one log's (log 0's) state, its
// cuts and base segment IDs, which are segment starts. It covers no
// segment (Covers 0): the segments its writer wrote (formats 1 and 2) hold
// no records, and those written since do.
//
//	| magic | version u16 | flags u16 | cuts u32 | first u64 | base u64 | floor u64 | user length u32 |
//	| cuts × (after u64, below u64) | user bytes | CRC32C u32 |
func decodeStateV1(body []byte) (State, error) {
	if len(body) < stateV1FixedLen {
		return State{}, errState("%d bytes", len(body))
	}
	n := int(binary.LittleEndian.Uint32(body[12:]))
	l := &LogState{First: binary.LittleEndian.Uint64(body[16:]), Base: SegmentStart(binary.LittleEndian.Uint64(body[24:]))}
	s := State{Floor: binary.LittleEndian.Uint64(body[32:]), Logs: map[uint64]*LogState{0: l}}
	u := int(binary.LittleEndian.Uint32(body[40:]))
	if n > MaxStateCuts || u > MaxStateUser || stateV1FixedLen+n*stateV1CutLen+u != len(body) {
		return State{}, errState("%d cuts and %d user bytes do not fill its %d bytes", n, u, len(body)+stateCRCLen)
	}
	p := body[stateV1FixedLen:]
	for range n {
		l.Cuts = append(l.Cuts, Cut{After: binary.LittleEndian.Uint64(p), Below: SegmentStart(binary.LittleEndian.Uint64(p[8:]))})
		p = p[stateV1CutLen:]
	}
	if u > 0 {
		l.User = slices.Clone(p[:u])
	}
	return s, nil
}

// decodeStateV2 reads a version 2 record.
func decodeStateV2(body []byte) (State, error) {
	n := int(binary.LittleEndian.Uint32(body[12:]))
	s := State{Floor: binary.LittleEndian.Uint64(body[16:]), Covers: binary.LittleEndian.Uint64(body[24:]), Logs: map[uint64]*LogState{}}
	if n > MaxStateLogs {
		return State{}, errState("%d logs", n)
	}
	p := body[stateFixedLen:]
	prev := uint64(0)
	for i := range n {
		if len(p) < stateLogLen {
			return State{}, errState("log %d of %d runs past the end", i, n)
		}
		id := binary.LittleEndian.Uint64(p)
		l := &LogState{First: binary.LittleEndian.Uint64(p[8:]),
			Base: Pos{Seg: binary.LittleEndian.Uint64(p[16:]), Off: int64(binary.LittleEndian.Uint64(p[24:]))}}
		cuts, moves := int(binary.LittleEndian.Uint32(p[32:])), int(binary.LittleEndian.Uint32(p[36:]))
		u := int(binary.LittleEndian.Uint32(p[40:]))
		p = p[stateLogLen:]
		if i > 0 && id <= prev || cuts > MaxStateCuts || moves > MaxStateCuts || u > MaxStateUser || (cuts+moves)*stateCutLen+u > len(p) {
			return State{}, errState("log %d: %d cuts, %d moves and %d user bytes in the %d bytes left", id, cuts, moves, u, len(p))
		}
		for range cuts {
			l.Cuts = append(l.Cuts, Cut{After: binary.LittleEndian.Uint64(p),
				Below: Pos{Seg: binary.LittleEndian.Uint64(p[8:]), Off: int64(binary.LittleEndian.Uint64(p[16:]))}})
			p = p[stateCutLen:]
		}
		for range moves {
			l.Moves = append(l.Moves, Move{Through: binary.LittleEndian.Uint64(p),
				Below: Pos{Seg: binary.LittleEndian.Uint64(p[8:]), Off: int64(binary.LittleEndian.Uint64(p[16:]))}})
			p = p[stateCutLen:]
		}
		if u > 0 {
			l.User = slices.Clone(p[:u])
			p = p[u:]
		}
		s.Logs[id], prev = l, id
	}
	if len(p) != 0 {
		return State{}, errState("%d bytes after the last log", len(p))
	}
	return s, nil
}

// ReadState reads fsys's log-state record; ok is false when there is none.
func ReadState(fsys vfs.FS) (s State, ok bool, err error) {
	b, err := fsys.ReadFile(StateName)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read %s: %w", StateName, err)
	}
	if len(b) > stateMaxLength {
		return s, false, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, StateName, len(b))
	}
	s, err = DecodeState(b)
	return s, err == nil, err
}

// The deletion rule: the one place that decides what a log's records
// delete. Every reader of the log (the engine's Read, Replay, Bounds and
// recovery; the inspection tools) asks these methods, never the fields.

// Dead reports whether the state deletes the entry with LSN lsn of the
// batch at p.
func (s *LogState) Dead(p Pos, lsn uint64) bool {
	if p.Before(s.Base) || lsn < s.First {
		return true
	}
	for _, k := range s.Cuts {
		if p.Before(k.Below) && lsn > k.After {
			return true
		}
	}
	for _, m := range s.Moves {
		if p.Before(m.Below) && lsn <= m.Through {
			return true
		}
	}
	return false
}

// Floor is the largest LSN the moves that reach every batch of span
// delete up to; ok is false when none does.
func (s *LogState) Floor(span Span) (f uint64, ok bool) {
	for _, m := range s.Moves {
		if span.To.Before(m.Below) && (!ok || m.Through > f) {
			f, ok = m.Through, true
		}
	}
	return f, ok
}

// Ceiling is the largest LSN the cuts that reach every batch of span
// leave live; ok is false when none does.
func (s *LogState) Ceiling(span Span) (c uint64, ok bool) {
	for _, k := range s.Cuts {
		if span.To.Before(k.Below) && (!ok || k.After < c) {
			c, ok = k.After, true
		}
	}
	return c, ok
}

// Clip narrows [lo, hi], the LSN range of entries lying in span, to the
// part that may be live; ok is false when none may be. What it returns
// bounds the live entries, not more: an entry inside it may be missing,
// and a cut or base that reaches only some of span's batches narrows
// nothing (the batches it does not reach may hold any LSN of the range).
func (s *LogState) Clip(span Span, lo, hi uint64) (uint64, uint64, bool) {
	if span.To.Before(s.Base) {
		return 0, 0, false
	}
	lo = max(lo, s.First)
	if f, ok := s.Floor(span); ok {
		if f == math.MaxUint64 {
			return 0, 0, false
		}
		lo = max(lo, f+1)
	}
	if c, ok := s.Ceiling(span); ok {
		hi = min(hi, c)
	}
	return lo, hi, lo <= hi
}

// PartlyCut reports whether the base or a cut reaches some of span's
// batches but not all: Clip then bounds the live entries loosely (its
// range's ends may be deleted).
func (s *LogState) PartlyCut(span Span) bool {
	if span.From.Before(s.Base) && !span.To.Before(s.Base) {
		return true
	}
	for _, k := range s.Cuts {
		if span.From.Before(k.Below) && !span.To.Before(k.Below) {
			return true
		}
	}
	for _, m := range s.Moves {
		if span.From.Before(m.Below) && !span.To.Before(m.Below) {
			return true
		}
	}
	return false
}

// Coverage is how much of a segment a record deletes.
type Coverage int

const (
	DeletesNone Coverage = iota
	DeletesSome          // some entries may be deleted, some live
	DeletesAll           // every entry is deleted: the segment may go
)

// Covers says how much of the log's entries in span, whose range and
// count are m (ok false: not known), the state deletes. Without m only a
// span wholly before the base is known to be deleted whole; a span with no
// entries is not deleted (it is kept or removed for other reasons).
func (s *LogState) Covers(span Span, m Meta, ok bool) Coverage {
	if span.To.Before(s.Base) {
		return DeletesAll
	}
	if !ok || m.Entries == 0 {
		return DeletesNone
	}
	lo, hi, live := s.Clip(span, m.MinLSN, m.MaxLSN)
	switch {
	case !live:
		return DeletesAll
	case lo != m.MinLSN || hi != m.MaxLSN || span.From.Before(s.Base):
		return DeletesSome
	}
	for _, k := range s.Cuts {
		// a cut that reaches only the first batches of the span
		if span.From.Before(k.Below) && !span.To.Before(k.Below) && hi > k.After {
			return DeletesSome
		}
	}
	for _, m := range s.Moves {
		if span.From.Before(m.Below) && !span.To.Before(m.Below) && lo <= m.Through {
			return DeletesSome
		}
	}
	return DeletesNone
}

// Prune drops the cuts that reach no batch at or after lowest (the first
// position present), and the cuts a later one makes redundant (a later cut
// reaches every batch an earlier one does, its Below being later, so an
// earlier cut whose After is at or above a later one's deletes nothing the
// later one keeps). What Dead says of every batch at or after lowest is
// unchanged.
func (s *LogState) Prune(lowest Pos) {
	s.Cuts = slices.DeleteFunc(s.Cuts, func(k Cut) bool { return !lowest.Before(k.Below) || !s.Base.Before(k.Below) })
	for i := len(s.Cuts) - 1; i > 0; i-- {
		if s.Cuts[i-1].After >= s.Cuts[i].After {
			s.Cuts = slices.Delete(s.Cuts, i-1, i)
		}
	}
	// Moves likewise, mirrored: a later move whose Through is at or above
	// an earlier one's deletes all the earlier one does; and one whose
	// Through is below First deletes nothing First does not.
	s.Moves = slices.DeleteFunc(s.Moves, func(m Move) bool {
		return !lowest.Before(m.Below) || !s.Base.Before(m.Below) || s.First > 0 && m.Through < s.First
	})
	for i := len(s.Moves) - 1; i > 0; i-- {
		if s.Moves[i-1].Through <= s.Moves[i].Through {
			s.Moves = slices.Delete(s.Moves, i-1, i)
		}
	}
}

// Apply returns the state after record e (of a kind other than data) of
// the batch at p; s is not changed. A record of an unknown kind changes
// nothing.
func (s *LogState) Apply(p Pos, e Entry) *LogState {
	n := s.Clone()
	switch e.Kind {
	case KindDeleteBefore:
		n.First = max(n.First, e.LSN)
	case KindTruncate:
		n.Cuts = append(n.Cuts, Cut{After: e.LSN, Below: p})
	case KindTruncateAll:
		n = &LogState{Base: p, User: n.User}
	case KindUser:
		n.User = slices.Clone(e.Data)
	case KindRewrite:
		below := p
		if len(e.Data) == RewriteDataLen {
			below = DecodePos(e.Data)
		}
		if !p.Before(below) {
			n.Moves = append(n.Moves, Move{Through: e.LSN, Below: below})
			slices.SortStableFunc(n.Moves, func(a, b Move) int { return a.Below.Compare(b.Below) })
		}
	}
	n.Prune(n.Base)
	return n
}

// Clone returns a copy of s that shares no slice with it.
func (s *LogState) Clone() *LogState {
	c := *s
	c.Cuts = slices.Clone(s.Cuts)
	c.Moves = slices.Clone(s.Moves)
	c.User = slices.Clone(s.User)
	return &c
}

// ApplyIndex applies the records of segment id (its index x) to the
// record's logs, in the order written: what a checkpoint that does not
// cover id lacks of it. It reports whether any record was applied.
func (s *State) ApplyIndex(id uint64, x *Index) bool {
	applied := false
	for _, l := range x.Logs {
		for _, r := range l.Records {
			if s.Logs == nil {
				s.Logs = map[uint64]*LogState{}
			}
			s.Logs[l.Log] = s.Log(l.Log).Apply(Pos{Seg: id, Off: r.Off}, Entry{Kind: r.Kind, Log: l.Log, LSN: r.LSN, Data: r.Data})
			applied = true
		}
	}
	return applied
}
