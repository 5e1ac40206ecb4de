package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// logState holds the log-state record (segment.State, the file log.state)
// as last written: what is deleted, and the caller's record. Readers (the
// index, Read, Replay, recovery) load it without a lock; a writer makes a
// new record from a clone, writes it durably, then stores it (under
// pipeline.mu, so no batch settles between the store and the index's
// narrowing). A stored record is never changed in place.
type logState struct {
	write sync.Mutex                    // orders the record's writers; taken before pipeline.mu
	cur   atomic.Pointer[segment.State] // never nil once init ran
}

func (s *logState) init() { s.cur.Store(&segment.State{}) }

// load returns the record as last written; the caller must not change it.
func (s *logState) load() *segment.State { return s.cur.Load() }

// log0 returns log 0's state in the record (the Coordinator's log).
func (s *logState) log0() *segment.LogState { return s.load().Log(0) }

// with0 returns a copy of the record with l as log 0's state.
func (s *logState) with0(l *segment.LogState) segment.State {
	cur := s.load()
	st := segment.State{Floor: cur.Floor, Covers: math.MaxUint64, Logs: map[uint64]*segment.LogState{0: l}}
	return st
}

// checkState asserts what every record the engine writes keeps: cuts by
// strictly ascending Below, each deleting more than the ones after it
// (Prune's result), none reaching a segment at or above the floor.
func checkState(st *segment.State) {
	for id, l := range st.Logs {
		for i, k := range l.Cuts {
			assertf(!segment.SegmentStart(st.Floor).Before(k.Below), "log %d: cut %+v reaches past the floor %d", id, k, st.Floor)
			if i > 0 {
				p := l.Cuts[i-1]
				assertf(p.Below.Before(k.Below) && p.After < k.After, "log %d: cuts %+v then %+v", id, p, k)
			}
		}
	}
}

// The deletions. Invariants:
//
//   - a deletion is durable before it is visible or returns: the log-state
//     record is replaced atomically (temp file, fsync, rename, directory
//     fsync), then applied in memory (index, Replay, Read); a segment is
//     removed only once a durable record says all of it is deleted;
//   - no byte of a segment is rewritten: a suffix is cut by the record
//     alone ("entries with LSN > x in segments below R"), and the writes
//     after it go to segment R or later: before the record is written the
//     active segment is sealed with nothing in flight, and mu is held until
//     it is applied, so no batch lands in a segment the cut reaches;
//   - segment IDs only grow across the record: recovery starts numbering
//     at its floor or above, even when every segment was removed;
//   - logState.write orders the record's writers (DeleteBefore, TruncateAfter,
//     SetUserRecord); each starts from the last record written.

// loadState reads the log-state record at recovery (before any segment is
// written) and returns the lowest ID the next segment may take.
func (c *Coordinator) loadState() (uint64, error) {
	f, ok, err := segment.ReadState(c.fs)
	if err != nil || !ok {
		return 0, err
	}
	c.state.cur.Store(&f)
	return f.Floor, nil
}

// removeDead removes, at recovery, the sealed segments whose entries are
// all deleted (a crash between a deletion's record and its removals
// leaves them), and returns the segments kept.
func (c *Coordinator) removeDead(segs []*segFile) ([]*segFile, error) {
	st := c.state.log0()
	kept := segs[:0]
	removed := false
	for _, s := range segs {
		if st.Covers(segment.Whole(s.id), s.meta, s.hasMeta) == segment.DeletesAll {
			if err := c.retire(s.id); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove %s: %w", segment.Name(s.id), err)
			}
			c.repaired("removed %s: all its entries are deleted (%s)", segment.Name(s.id), segment.StateName)
			removed = true
			continue
		}
		kept = append(kept, s)
	}
	if removed {
		if err := c.syncDir(); err != nil {
			return nil, fmt.Errorf("sync dir: %w", err)
		}
	}
	return kept, nil
}

// errStateUnknown marks a record whose rename happened but whose directory
// sync failed: a crash may keep the old record or the new one.
var errStateUnknown = errors.New("dwal: log state: directory sync failed after the rename; a crash may keep the old record or the new one")

// writeState replaces the log-state record with st, durably. An error
// wrapping errStateUnknown means the new record may or may not survive a
// crash; any other error means the old record stands.
func (c *Coordinator) writeState(st *segment.State) error {
	b, err := st.Encode()
	if err != nil {
		return fmt.Errorf("dwal: log state: %w", err)
	}
	if err := c.fs.WriteFile(segment.StateTmpName, b); err != nil {
		c.fs.Remove(segment.StateTmpName)
		return fmt.Errorf("dwal: write %s: %w", segment.StateTmpName, err)
	}
	if err := c.fs.Rename(segment.StateTmpName, segment.StateName); err != nil {
		c.fs.Remove(segment.StateTmpName)
		return fmt.Errorf("dwal: rename %s: %w", segment.StateTmpName, err)
	}
	if err := c.fs.SyncDir(); err != nil {
		return fmt.Errorf("%w: %w", errStateUnknown, err)
	}
	return nil
}

// applyState makes st, just written, the record the index, Read and
// Replay honour, and narrows the index by it (under mu).
func (c *Coordinator) applyState(st *segment.State) {
	if invariants {
		checkState(st)
	}
	c.state.cur.Store(st)
	c.idx.relive(st.Log(0))
}

// removeDeadLocked removes the sealed segments (never the active one)
// whose entries are all deleted, under mu, and syncs the directory. A
// failure leaves them for the next deletion or Open: they are deleted
// already, durably, by the record.
func (c *Coordinator) removeDeadLocked() {
	ids, err := c.segmentIDs()
	if err != nil {
		c.log.Error("dwal: list segments to remove deleted ones", "err", err)
		return
	}
	st := c.state.log0()
	for _, id := range ids {
		if a := c.pipe.act; a != nil && a.id == id {
			continue
		}
		m, ok := c.ReadSegmentMetadata(id)
		if !ok || st.Covers(segment.Whole(id), m.format(), true) != segment.DeletesAll {
			continue
		}
		if err := c.retire(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Error("dwal: remove deleted segment", "segment", id, "err", err)
		}
	}
	if err := c.syncDir(); err != nil {
		c.log.Error("dwal: sync dir after removing deleted segments", "err", err)
	}
}

// lowestSegment is the smallest segment ID present (under mu); the next
// one's when there is none.
func (c *Coordinator) lowestSegment() uint64 {
	ids, err := c.segmentIDs()
	if err != nil || len(ids) == 0 {
		return c.pipe.curID.Load() + 1
	}
	return ids[0]
}

// DeleteBefore deletes every entry with LSN < lsn, exact to the entry:
// Replay, Read, Bounds, recovery and the inspect tools no longer see them,
// and sealed segments that hold nothing else are removed (the active one
// once sealed, at a later deletion or Open). It is durable when it
// returns nil. A later write with an LSN below lsn is deleted too, unless
// TruncateAfter empties the log first. An lsn at or below the current
// first LSN deletes nothing. It may run while other goroutines write.
func (c *Coordinator) DeleteBefore(lsn LSN) error {
	_, err := c.editState(func(st *segment.LogState) bool {
		if uint64(lsn) <= st.First {
			return false
		}
		st.First = uint64(lsn)
		st.Prune(segment.SegmentStart(c.lowestSegment()))
		return true
	}, c.removeDeadLocked)
	if err != nil {
		return fmt.Errorf("dwal: delete before LSN %d: %w", lsn, err)
	}
	return nil
}

// SetUserRecord durably replaces the caller's record kept in the
// log-state record (at most 1 MiB; raftstore keeps Raft's stable store
// there): it survives a crash at any point whole, old or new, and is
// durable when it returns nil.
func (c *Coordinator) SetUserRecord(b []byte) error {
	if len(b) > segment.MaxStateUser {
		return fmt.Errorf("%w: user record of %d bytes, limit %d", ErrEntryTooLarge, len(b), segment.MaxStateUser)
	}
	_, err := c.editState(func(st *segment.LogState) bool {
		st.User = slices.Clone(b)
		return true
	}, nil)
	return err
}

// editState replaces the log-state record with edit's change of it, for a
// writer that does not touch where batches go (DeleteBefore,
// SetUserRecord): edit runs under mu on a clone and reports whether it
// changed anything; the record is then written outside mu, so writers go
// on meanwhile (their batches are indexed under the old record and
// narrowed when the new one is applied), and applied under mu, followed by
// after (if not nil). It reports whether the record changed.
func (c *Coordinator) editState(edit func(st *segment.LogState) bool, after func()) (bool, error) {
	c.state.write.Lock()
	defer c.state.write.Unlock()
	p := &c.pipe
	p.mu.Lock()
	if err := p.writable(); err != nil {
		p.mu.Unlock()
		return false, err
	}
	st := c.state.with0(c.state.log0().Clone())
	if !edit(st.Logs[0]) {
		p.mu.Unlock()
		return false, nil
	}
	st.Floor = max(st.Floor, p.curID.Load()+1)
	p.mu.Unlock()
	if err := c.writeState(&st); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c.applyState(&st)
	if after != nil {
		after()
	}
	return true, nil
}

// UserRecord returns a copy of the caller's record (nil when none was set).
func (c *Coordinator) UserRecord() []byte {
	return slices.Clone(c.state.log0().User)
}
