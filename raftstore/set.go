package raftstore

import (
	"fmt"
	"sync"

	"github.com/dwal-project/dwal/engine"
)

// SetStore is many raft groups in one directory (multi-raft): each group
// is one log of an engine.Set and has a Store of its own (Group), a full
// LogStore, StableStore and MonotonicLogStore that keeps every guarantee
// of a Store from Open. The groups share the set's one stream: the
// StoreLogs of groups running at once ride in one group commit and one
// sync, and one segment holds batches of any groups. A segment goes once
// no group has a live entry in it: raft deletes a group's log up to its
// trailing logs after each snapshot, and the trailing logs of a group that
// stops taking snapshots (an idle one: SnapshotThreshold counts new
// entries) are rewritten forward by the set once the old segments are
// mostly dead (engine.Config.RewriteDeadFraction; WithConfig sets it), so
// an idle group does not keep the disk.
//
// A SetStore's methods, and its groups', are safe for concurrent use.
type SetStore struct {
	set *engine.Set
	dir string

	mu     sync.RWMutex
	groups map[uint64]*Store // the open groups' stores
	closed bool
}

// OpenSet opens (creating it when missing) the set of raft groups in dir,
// with the options of Open. It takes the directory's lock as Open does (a
// second Open or OpenSet fails wrapping engine.ErrLocked), recovers what a
// previous process left, and reads the bounds and the stable store of
// every group that holds any, so that a corrupt segment or stable store
// fails it as it fails Open.
//
// A directory written by Open opens as a set whose group 0 is the store
// Open kept there; this is one-way: once the set has written, Open refuses
// the directory.
func OpenSet(dir string, opts ...Option) (*SetStore, error) {
	set, err := engine.OpenSet(config(dir, opts))
	if err != nil {
		return nil, fmt.Errorf("raftstore: open set %s: %w", dir, err)
	}
	ss := &SetStore{set: set, dir: dir, groups: map[uint64]*Store{}}
	for _, id := range set.Logs() {
		g, err := ss.open(id)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("raftstore: open set %s: group %d: %w", dir, id, err)
		}
		ss.groups[id] = g
	}
	return ss, nil
}

// open is a new Store of group id.
func (ss *SetStore) open(id uint64) (*Store, error) {
	var g *Store
	detach := func() error {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.groups[id] == g {
			delete(ss.groups, id)
		}
		return nil
	}
	var err error
	g, err = newStore(ss.set.Log(id), ss.set.Stats, detach)
	return g, err
}

// Group returns the store of raft group id (any uint64): a group never
// written is empty, and is created by its first write. Calls with one ID
// return the same Store until that Store is closed (Store.Close detaches
// the group; the next Group returns a new Store over the same log). Once
// the SetStore is closed, Group returns a Store whose calls fail wrapping
// engine.ErrClosed; when the group's log cannot be read (a disk error),
// one whose calls fail with that error, and the next Group tries again.
func (ss *SetStore) Group(id uint64) *Store {
	ss.mu.RLock()
	g := ss.groups[id]
	ss.mu.RUnlock()
	if g != nil && g.failed() == nil {
		return g
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if g := ss.groups[id]; g != nil && g.failed() == nil {
		return g // (a closed one is detaching: a new one replaces it)
	}
	if ss.closed {
		return downStore(errClosed, ss.set.Stats)
	}
	g, err := ss.open(id)
	if err != nil {
		return downStore(fmt.Errorf("raftstore: set %s: group %d: %w", ss.dir, id, err), ss.set.Stats)
	}
	ss.groups[id] = g
	return g
}

// downStore is a Store whose every call fails with err.
func downStore(err error, stats func() engine.Stats) *Store {
	s := &Store{stats: stats, release: func() error { return nil }}
	s.down.Store(&err)
	return s
}

// Groups returns the IDs of the groups that hold a log entry or a stable
// store key, ascending (nil once the SetStore is closed): the groups to
// start raft on after a restart. It asks the engine for the bounds of
// every group (engine.Set.Logs), so it is for start-up and operators, not
// for every request.
func (ss *SetStore) Groups() []uint64 {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	if ss.closed {
		return nil
	}
	return ss.set.Logs()
}

// Stats returns the counters of the set's stream (every group's batches).
func (ss *SetStore) Stats() engine.Stats { return ss.set.Stats() }

// Close closes every group's store (waiting for their writes in flight;
// later calls on them fail wrapping engine.ErrClosed), then the set, and
// releases the directory. A second Close returns engine.ErrClosed.
func (ss *SetStore) Close() error {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return errClosed
	}
	ss.closed = true
	groups := ss.groups
	ss.groups = map[uint64]*Store{}
	ss.mu.Unlock()
	for _, g := range groups {
		g.shut(errClosed)
	}
	if err := ss.set.Close(); err != nil {
		return fmt.Errorf("raftstore: close set %s: %w", ss.dir, err)
	}
	return nil
}
