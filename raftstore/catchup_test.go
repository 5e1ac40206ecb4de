package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The two paths a follower takes back after a long absence, which
// raft-wal lists as known issues: a follower cut off while the leader
// compacts its log far past it catches up by a snapshot install; and a
// user snapshot restored on the leader (raft.Restore) while a follower is
// away replicates to it. Each runs on the store as it is and behind
// raft.NewLogCache.

func TestFollowerCatchUpBySnapshot(t *testing.T) {
	t.Run("store", func(t *testing.T) { testCatchUp(t, nil) })
	t.Run("logcache", func(t *testing.T) { testCatchUp(t, logCache) })
}

func testCatchUp(t *testing.T, wrap func(*Store) raft.LogStore) {
	c, leader := newCluster(t, wrap)
	c.apply(leader, 0, 1000, 16)
	leader = c.converge(leader)
	f := c.others(leader)[0]
	c.cut(f)
	_, fLast := storeBounds(t, f)

	// The leader goes on far past the follower and compacts its log.
	c.apply(leader, 1000, 6000, 32)
	leader = c.leader(c.others(f))
	snapshot(t, leader)
	if first, _ := storeBounds(t, leader); first <= fLast+1 {
		t.Fatalf("the leader's log starts at %d, the cut-off follower's ends at %d: no snapshot install needed", first, fLast)
	}
	before := f.fsm.restored()
	c.heal(f)
	c.apply(leader, 7000, 500, 16)
	leader = c.converge(leader)
	if f.fsm.restored() == before {
		t.Fatal("the follower caught up without a snapshot install")
	}
	first, last := storeBounds(t, f)
	if first <= fLast {
		t.Fatalf("the follower's log is %d..%d after the snapshot install: its old entries up to %d should be gone", first, last, fLast)
	}
	checkNoGap(t, f)

	// And it restarts from what it installed.
	c.stop(f)
	c.start(f)
	c.apply(leader, 7500, 500, 16)
	leader = c.converge(leader)
	if _, n := leader.fsm.state(); n != 8000 {
		t.Fatalf("the FSMs applied %d commands, want 8000", n)
	}
}

// TestWrapperHidingIsMonotonic: a wrapper that does not forward
// IsMonotonic makes raft keep trailing logs after a snapshot install and
// store past the gap; the store refuses, and its error says why.
func TestWrapperHidingIsMonotonic(t *testing.T) {
	var w *hidingWrapper
	c, leader := newCluster(t, nil)
	f := c.others(leader)[0]
	c.stop(f)
	c.wrap = func(s *Store) raft.LogStore {
		if s == f.store {
			w = &hidingWrapper{LogStore: s}
			return w
		}
		return s
	}
	c.start(f)
	c.apply(leader, 0, 1500, 16) // past TrailingLogs (512), so the follower keeps some
	leader = c.converge(leader)
	c.cut(f)
	c.apply(leader, 1500, 6000, 32)
	snapshot(t, leader)
	c.heal(f)
	deadline := time.Now().Add(10 * time.Second)
	for w.firstErr() == nil && time.Now().Before(deadline) {
		c.apply(leader, 7500, 10, 1)
		time.Sleep(50 * time.Millisecond)
	}
	err := w.firstErr()
	if !errors.Is(err, ErrNonContiguous) {
		t.Fatalf("StoreLogs on the follower behind the wrapper: %v, want ErrNonContiguous", err)
	}
	if !strings.Contains(err.Error(), "must forward IsMonotonic") {
		t.Fatalf("the error does not say what to do: %v", err)
	}
}

// hidingWrapper is a user's log store wrapper that forgets IsMonotonic.
type hidingWrapper struct {
	raft.LogStore
	mu  sync.Mutex
	err error
}

func (w *hidingWrapper) StoreLogs(logs []*raft.Log) error {
	err := w.LogStore.StoreLogs(logs)
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	return err
}

func (w *hidingWrapper) StoreLog(l *raft.Log) error { return w.StoreLogs([]*raft.Log{l}) }

func (w *hidingWrapper) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func TestUserSnapshotRestore(t *testing.T) {
	t.Run("store", func(t *testing.T) { testRestore(t, nil) })
	t.Run("logcache", func(t *testing.T) { testRestore(t, logCache) })
}

func testRestore(t *testing.T, wrap func(*Store) raft.LogStore) {
	c, leader := newCluster(t, wrap)
	c.apply(leader, 0, 1000, 16)
	leader = c.converge(leader)
	meta, snap, want := userSnapshot(t, 300)

	f := c.others(leader)[0]
	c.cut(f)
	c.apply(leader, 1000, 500, 16)
	leader = c.leader(c.others(f))
	_, lastBefore := storeBounds(t, leader)
	if err := leader.r.Restore(meta, bytes.NewReader(snap), 10*time.Second); err != nil {
		t.Fatalf("Restore on the leader: %v", err)
	}
	if sum, n := leader.fsm.state(); sum != want.sum || n != want.n {
		t.Fatalf("the leader's FSM after Restore holds %d commands, want the snapshot's %d", n, want.n)
	}
	if first, last := storeBounds(t, leader); first != 0 && first <= lastBefore {
		t.Fatalf("the leader's log is %d..%d after Restore: its log up to %d should be gone", first, last, lastBefore)
	}
	c.apply(leader, 1500, 500, 16)
	c.heal(f)
	c.apply(leader, 2000, 500, 16)
	leader = c.converge(leader)
	checkNoGap(t, f)
	sum, n := leader.fsm.state()
	if n != want.n+1000 {
		t.Fatalf("the FSMs applied %d commands, want the snapshot's %d and 1000 after it", n, want.n)
	}

	// Every node restarted from its directory comes back to the same state.
	for _, n := range c.nodes {
		c.stop(n)
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	leader = c.leader(nil)
	leader = c.converge(leader)
	if got, gotN := leader.fsm.state(); got != sum || gotN != n {
		t.Fatalf("after restarting every node the FSMs hold %d commands (same hash: %v), want %d", gotN, got == sum, n)
	}
}

// userSnapshot returns a snapshot, as an operator's backup would hold, of
// a state machine that applied count commands of its own.
func userSnapshot(t *testing.T, count int) (*raft.SnapshotMeta, []byte, *hashSnap) {
	t.Helper()
	src := &hashFSM{}
	for i := range count {
		src.Apply(&raft.Log{Index: uint64(i + 1), Data: fmt.Appendf(nil, "backup-%d", i)})
	}
	fs, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := fs.Persist(sink); err != nil {
		t.Fatal(err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, ID: "backup", Index: uint64(count), Term: 1, Size: int64(sink.Len())}
	return meta, sink.Bytes(), fs.(*hashSnap)
}

// memSink is a raft.SnapshotSink into memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

var _ io.Writer = (*memSink)(nil)

// snapshot takes a snapshot on n (one with nothing new is fine).
func snapshot(t *testing.T, n *node) {
	t.Helper()
	if err := n.r.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		t.Fatalf("%s: snapshot: %v", n.id, err)
	}
}

func storeBounds(t *testing.T, n *node) (uint64, uint64) {
	t.Helper()
	first, err1 := n.store.FirstIndex()
	last, err2 := n.store.LastIndex()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("%s: bounds: %v", n.id, err)
	}
	return first, last
}

// checkNoGap reads every entry of n's log.
func checkNoGap(t *testing.T, n *node) {
	t.Helper()
	first, last := storeBounds(t, n)
	for i := first; first != 0 && i <= last; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			t.Fatalf("%s: GetLog(%d) in %d..%d: %v", n.id, i, first, last, err)
		}
	}
}
