package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// The logs' states: what each log's records say is deleted, and its user
// record (segment.LogState). A record is an entry of the stream, written
// and synced in a batch like any entry (group-committed with other logs'
// entries), and applied when its batch settles, under pipeline.mu, so a
// deletion is durable before it is visible or returns, and ordered with
// the log's entries: a cut (TruncateAfter) deletes what the batches
// before its own hold, never what later ones do.
//
// The checkpoint. Records live in the segments that hold them; before a
// segment holding records may go, what they said is carried forward into
// log.state, every log's state as of the end of a segment: it is written
// when a segment holding records (or following ones not yet checkpointed)
// is sealed, and covers the records of every segment up to it. Open reads
// it, then the records of the segments it does not cover (their index
// files, or a scan of the segment). Invariants:
//
//   - a deletion is durable before it is visible: its record's batch is
//     synced, and the record is applied as the batch settles;
//   - a segment holding records goes only once a checkpoint that covers it
//     is durable (covered below);
//   - no byte of a segment is rewritten to delete: records only add;
//   - segment IDs only grow across a restart: the next segment is numbered
//     at the checkpoint's floor or above, even when every segment was
//     removed.
type logStates struct {
	mu   sync.RWMutex // guards logs (the map; each view's state is its own)
	logs map[uint64]*logView

	// Under pipeline.mu:
	dirty   bool   // a record settled or was read at recovery since the last checkpoint written
	floor   uint64 // the checkpoint's floor, as last loaded or written
	covered uint64 // a durable checkpoint covers the records of segments below it
	pending uint64 // the last checkpoint written covers up to here; durable at the next directory sync
}

// logView is one log's state.
type logView struct {
	id uint64
	st atomic.Pointer[segment.LogState] // never nil; never changed in place
	// rec orders the writers of the log's records that need the log's
	// settled state to decide what to write (TruncateAfter, a rewrite).
	rec sync.Mutex
	// gate: a set's writes of the log's data hold it shared until their
	// batch settles; a rewrite of the log holds it alone (rewrite.go).
	// Taken after rec.
	gate sync.RWMutex
}

func (s *logStates) init() { s.logs = map[uint64]*logView{} }

// view returns log id's view, made when missing.
func (s *logStates) view(id uint64) *logView {
	s.mu.RLock()
	v := s.logs[id]
	s.mu.RUnlock()
	if v != nil {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v = s.logs[id]; v == nil {
		v = &logView{id: id}
		v.st.Store(&segment.LogState{})
		s.logs[id] = v
	}
	return v
}

// noState is the state of a log never seen: nothing deleted. Shared:
// states are never changed in place.
var noState = &segment.LogState{}

// of returns log id's state (noState for a log never seen).
func (s *logStates) of(id uint64) *segment.LogState {
	s.mu.RLock()
	v := s.logs[id]
	s.mu.RUnlock()
	if v == nil {
		return noState
	}
	return v.st.Load()
}

// ids returns the logs with a state, sorted.
func (s *logStates) ids() []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]uint64, 0, len(s.logs))
	for id := range s.logs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// record is the checkpoint of every log's state, covering the segments
// below covers, with the floor floor (under pipeline.mu).
func (s *logStates) record(floor, covers uint64) *segment.State {
	rec := &segment.State{Floor: floor, Covers: covers, Logs: map[uint64]*segment.LogState{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id, v := range s.logs {
		if st := v.st.Load(); !st.Empty() {
			rec.Logs[id] = st
		}
	}
	return rec
}

// checkState asserts what every state keeps (Prune's result): cuts by
// strictly ascending Below, each deleting more than the ones after it
// (a smaller After); moves likewise (a larger Through).
func checkState(id uint64, st *segment.LogState) {
	for i, k := range st.Cuts {
		if i > 0 {
			p := st.Cuts[i-1]
			assertf(p.Below.Before(k.Below) && p.After < k.After, "log %d: cuts %+v then %+v", id, p, k)
		}
	}
	for i, m := range st.Moves {
		if i > 0 {
			p := st.Moves[i-1]
			assertf(p.Below.Before(m.Below) && p.Through > m.Through, "log %d: moves %+v then %+v", id, p, m)
		}
	}
}

// applyRecords applies the records of settled batch f to their logs'
// states and the index, and removes the segments they leave with no live
// entry (under pipeline.mu).
func (c *Coordinator) applyRecords(f *flight) {
	if len(f.recs) == 0 {
		return
	}
	at := segment.Pos{Seg: f.a.id, Off: f.off}
	deleted := false
	for _, e := range f.recs {
		deleted = c.applyRecord(at, e) || deleted
	}
	c.state.dirty = true
	if deleted {
		c.removeDeadLocked()
		c.pokeRewriter()
	}
}

// applyRecord applies record e of the batch at at to its log, and reports
// whether it deletes anything.
func (c *Coordinator) applyRecord(at segment.Pos, e segment.Entry) bool {
	v := c.state.view(e.Log)
	st := v.st.Load().Apply(at, e)
	if invariants {
		checkState(e.Log, st)
	}
	v.st.Store(st)
	if e.Kind == segment.KindUser {
		return false
	}
	c.idx.relive(e.Log, st)
	return true
}

// loadState reads the checkpoint at recovery (before any segment is
// written) into the logs' states and returns the lowest ID the next
// segment may take.
func (c *Coordinator) loadState() (uint64, error) {
	f, ok, err := segment.ReadState(c.fs)
	if err != nil || !ok {
		return 0, err
	}
	for id, st := range f.Logs {
		c.state.view(id).st.Store(st)
	}
	c.state.floor, c.state.covered = f.Floor, f.Covers
	return f.Floor, nil
}

// writeCheckpoint writes log.state with every log's state as of the end
// of segment through (sealed, under pipeline.mu). It is durable with the
// next directory sync (syncDir then advances covered); a failure is
// logged and tried again at the next seal: until then the segments it
// would cover keep their records and stay. NB: it is written at every
// seal, records or not, so that Open reads the records (the index files)
// of the last segments only, not of every segment.
func (c *Coordinator) writeCheckpoint(through uint64) {
	s := &c.state
	rec := s.record(max(s.floor, through+1), through+1)
	if err := c.writeState(rec); err != nil {
		c.log.Error("dwal: cannot write the log-state checkpoint; the segments it would cover keep their records", "err", err)
		return
	}
	s.dirty, s.floor, s.pending = false, rec.Floor, rec.Covers
	c.pipe.dirDirty = true
}

// writeState replaces log.state with rec, through its temporary name
// (written and synced, then renamed). The rename is durable with the next
// directory sync.
func (c *Coordinator) writeState(rec *segment.State) error {
	b, err := rec.Encode()
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
	return nil
}

// removable reports whether segment id may be removed as far as its
// records go: it holds none, or a durable checkpoint covers it.
func (c *Coordinator) removable(id uint64) bool {
	return !c.idx.hasRecords(id) || id < c.state.covered
}

// removeDead removes, at recovery, the sealed segments whose entries are
// all deleted (a crash between a deletion and its removals leaves them),
// and returns the segments kept.
func (c *Coordinator) removeDead(segs []*segFile) ([]*segFile, error) {
	kept := segs[:0]
	removed := false
	for _, s := range segs {
		if c.segmentDead(s.id) && c.removable(s.id) {
			if err := c.retire(s.id); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove %s: %w", segment.Name(s.id), err)
			}
			c.repaired("removed %s: all its entries are deleted", segment.Name(s.id))
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

// segmentDead reports whether no log has a live entry in segment id, as
// far as the index and the logs' states can tell.
func (c *Coordinator) segmentDead(id uint64) bool {
	return c.idx.dead(id, &c.state)
}

// removeDeadLocked removes the sealed segments (never the active one) in
// which no log has a live entry, under mu; a segment holding records waits
// for a durable checkpoint covering it. A failure leaves them for the next
// deletion or Open: they are deleted already, durably, by the records.
func (c *Coordinator) removeDeadLocked() {
	var act uint64
	if a := c.pipe.act; a != nil {
		act = a.id
	}
	removed := false
	for _, id := range c.idx.deadIDs(&c.state, act) {
		if !c.removable(id) {
			continue
		}
		if err := c.retire(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Error("dwal: remove deleted segment", "segment", id, "err", err)
		}
		removed = true
	}
	if removed {
		if err := c.syncDir(); err != nil {
			c.log.Error("dwal: sync dir after removing deleted segments", "err", err)
		}
	}
}

// writeRecord writes record kind of log with argument lsn (and data for a
// user record) through group commit, and returns once it is durable and
// applied.
func (c *Coordinator) writeRecord(log uint64, kind segment.Kind, lsn LSN, data []byte) error {
	return c.appendEntry(context.Background(), segment.Entry{Kind: kind, Log: log, LSN: uint64(lsn), Data: data})
}

// deleteBefore is DeleteBefore of log.
func (c *Coordinator) deleteBefore(log uint64, lsn LSN) error {
	if uint64(lsn) <= c.state.of(log).First {
		return c.writable()
	}
	if err := c.writeRecord(log, segment.KindDeleteBefore, lsn, nil); err != nil {
		return fmt.Errorf("dwal: log %d: delete before LSN %d: %w", log, lsn, err)
	}
	return nil
}

// setUserRecord is SetUserRecord of log.
func (c *Coordinator) setUserRecord(log uint64, b []byte) error {
	if len(b) > segment.MaxStateUser {
		return fmt.Errorf("%w: user record of %d bytes, limit %d", ErrEntryTooLarge, len(b), segment.MaxStateUser)
	}
	if err := c.writeRecord(log, segment.KindUser, 0, b); err != nil {
		return fmt.Errorf("dwal: log %d: set user record: %w", log, err)
	}
	return nil
}

// writable is nil when the log takes writes.
func (c *Coordinator) writable() error {
	c.pipe.mu.Lock()
	defer c.pipe.mu.Unlock()
	return c.pipe.writable()
}

// DeleteBefore deletes every entry with LSN < lsn, exact to the entry:
// Replay, Read, Bounds, recovery and the inspect tools no longer see them,
// and sealed segments that hold nothing else are removed (once a
// checkpoint covers the record, at a later seal). It is durable when it
// returns nil: the deletion is a record written to the log and synced. A
// later write with an LSN below lsn is deleted too, unless TruncateAfter
// empties the log first. An lsn at or below the current first LSN deletes
// nothing. It may run while other goroutines write.
func (c *Coordinator) DeleteBefore(lsn LSN) error { return c.deleteBefore(0, lsn) }

// SetUserRecord durably replaces the caller's record (at most 1 MiB;
// raftstore keeps Raft's stable store there): a record written to the log
// and synced, so it survives a crash at any point whole, old or new, and
// is durable when it returns nil.
func (c *Coordinator) SetUserRecord(b []byte) error { return c.setUserRecord(0, b) }

// UserRecord returns a copy of the caller's record (nil when none was set).
func (c *Coordinator) UserRecord() []byte { return slices.Clone(c.state.of(0).User) }
