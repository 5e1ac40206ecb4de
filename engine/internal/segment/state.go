package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"

	"github.com/dwal-project/dwal/engine/vfs"
)

// The log-state record, file log.state: what the caller deleted, exact to
// the entry, without rewriting a byte of any segment. Its layout is drawn
// in the package doc. NB: never change the layout; a new one gets a new
// StateVersion.
const (
	StateName      = "log.state"
	StateMagic     = "DWALSTAT"
	StateVersion   = 1
	stateFixedLen  = 44
	MaxStateCuts   = 1 << 16
	MaxStateUser   = 1 << 20
	stateCutLen    = 16
	stateCRCLen    = 4
	StateTmpName   = StateName + TmpSuffix
	stateMaxLength = stateFixedLen + MaxStateCuts*stateCutLen + MaxStateUser + stateCRCLen
)

// State is the log-state record.
type State struct {
	First, Base, Floor uint64
	Cuts               []Cut // by ascending Below (each cut reaches the segments written before it)
	User               []byte
}

// Cut deletes the entries with LSN > After in segments with ID < Below.
type Cut struct {
	After, Below uint64
}

// Encode returns the record's bytes.
func (s *State) Encode() ([]byte, error) {
	if len(s.Cuts) > MaxStateCuts || len(s.User) > MaxStateUser {
		return nil, fmt.Errorf("log state of %d cuts and %d user bytes exceeds %d and %d", len(s.Cuts), len(s.User), MaxStateCuts, MaxStateUser)
	}
	b := make([]byte, stateFixedLen, stateFixedLen+len(s.Cuts)*stateCutLen+len(s.User)+stateCRCLen)
	copy(b, StateMagic)
	binary.LittleEndian.PutUint16(b[8:], StateVersion)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(s.Cuts)))
	binary.LittleEndian.PutUint64(b[16:], s.First)
	binary.LittleEndian.PutUint64(b[24:], s.Base)
	binary.LittleEndian.PutUint64(b[32:], s.Floor)
	binary.LittleEndian.PutUint32(b[40:], uint32(len(s.User)))
	for _, k := range s.Cuts {
		b = binary.LittleEndian.AppendUint64(b, k.After)
		b = binary.LittleEndian.AppendUint64(b, k.Below)
	}
	b = append(b, s.User...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, Castagnoli)), nil
}

// DecodeState parses a log-state record. A record written by a newer dwal
// gives ErrUnsupportedFormat; any other record that is not one whole gives
// ErrCorrupt (it is replaced atomically: no crash leaves it torn).
func DecodeState(b []byte) (State, error) {
	var s State
	if len(b) < stateFixedLen+stateCRCLen || string(b[:8]) != StateMagic {
		return s, fmt.Errorf("%w: %s is not a log-state record", ErrCorrupt, StateName)
	}
	body := b[:len(b)-stateCRCLen]
	if binary.LittleEndian.Uint32(b[len(body):]) != crc32.Checksum(body, Castagnoli) {
		return s, fmt.Errorf("%w: %s: CRC mismatch", ErrCorrupt, StateName)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != StateVersion {
		return s, fmt.Errorf("%w: %s version %d, this build reads %d", ErrUnsupportedFormat, StateName, v, StateVersion)
	}
	n := int(binary.LittleEndian.Uint32(b[12:]))
	s.First = binary.LittleEndian.Uint64(b[16:])
	s.Base = binary.LittleEndian.Uint64(b[24:])
	s.Floor = binary.LittleEndian.Uint64(b[32:])
	u := int(binary.LittleEndian.Uint32(b[40:]))
	if n > MaxStateCuts || u > MaxStateUser || stateFixedLen+n*stateCutLen+u != len(body) {
		return s, fmt.Errorf("%w: %s: %d cuts and %d user bytes do not fill its %d bytes", ErrCorrupt, StateName, n, u, len(b))
	}
	p := body[stateFixedLen:]
	for range n {
		s.Cuts = append(s.Cuts, Cut{After: binary.LittleEndian.Uint64(p), Below: binary.LittleEndian.Uint64(p[8:])})
		p = p[stateCutLen:]
	}
	if u > 0 {
		s.User = append([]byte(nil), p[:u]...)
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

// The deletion rule: the one place that decides what a record deletes.
// Every reader of the log (the engine's Read, Replay, Bounds and
// recovery; the inspection tools) asks these methods, never the fields.

// Dead reports whether the record deletes entry lsn of segment seg.
func (s *State) Dead(seg, lsn uint64) bool {
	if seg < s.Base || lsn < s.First {
		return true
	}
	c, ok := s.Ceiling(seg)
	return ok && lsn > c
}

// Ceiling is the largest LSN a cut leaves live in segment seg; ok is
// false when no cut reaches it.
func (s *State) Ceiling(seg uint64) (c uint64, ok bool) {
	for _, k := range s.Cuts {
		if seg < k.Below && (!ok || k.After < c) {
			c, ok = k.After, true
		}
	}
	return c, ok
}

// Clip narrows [lo, hi], the LSN range of entries of segment seg, to the
// part that may be live; ok is false when none may be. What it returns
// bounds the live entries, not more: an entry inside it may be missing.
func (s *State) Clip(seg, lo, hi uint64) (uint64, uint64, bool) {
	if seg < s.Base {
		return 0, 0, false
	}
	lo = max(lo, s.First)
	if c, ok := s.Ceiling(seg); ok {
		hi = min(hi, c)
	}
	return lo, hi, lo <= hi
}

// Coverage is how much of a segment a record deletes.
type Coverage int

const (
	DeletesNone Coverage = iota
	DeletesSome          // some entries may be deleted, some live
	DeletesAll           // every entry is deleted: the segment may go
)

// Covers says how much of segment seg, whose .meta is m (ok false: not
// known), the record deletes. Without a .meta only a segment below the
// base is known to be deleted whole; a segment with no entries is not
// deleted (it is kept or removed for other reasons).
func (s *State) Covers(seg uint64, m Meta, ok bool) Coverage {
	if seg < s.Base {
		return DeletesAll
	}
	if !ok || m.Entries == 0 {
		return DeletesNone
	}
	lo, hi, live := s.Clip(seg, m.MinLSN, m.MaxLSN)
	switch {
	case !live:
		return DeletesAll
	case lo != m.MinLSN || hi != m.MaxLSN:
		return DeletesSome
	}
	return DeletesNone
}

// Prune drops the cuts that no segment at or above lowest (the smallest ID
// present) is below, and the cuts a later one makes redundant (a later cut
// reaches every segment an earlier one does, its Below being higher, so
// an earlier cut whose After is at or above a later one's deletes nothing
// the later one keeps). What Dead says of every segment at or above
// lowest is unchanged.
func (s *State) Prune(lowest uint64) {
	s.Cuts = slices.DeleteFunc(s.Cuts, func(k Cut) bool { return k.Below <= lowest || k.Below <= s.Base })
	for i := len(s.Cuts) - 1; i > 0; i-- {
		if s.Cuts[i-1].After >= s.Cuts[i].After {
			s.Cuts = slices.Delete(s.Cuts, i-1, i)
		}
	}
}

// Clone returns a copy of s that shares no slice with it.
func (s State) Clone() State {
	s.Cuts = slices.Clone(s.Cuts)
	s.User = slices.Clone(s.User)
	return s
}
