package raftstore

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
	"github.com/hashicorp/raft"
)

// failSyncs fails every linked sync of a write past a segment's header
// block while armed: the batch's, and any zeroing ahead of the write
// cursor that runs beside it (which the engine survives by leaving the
// rest of the segment fallocated), so that the batch's sync is sure to
// fail whichever runs first.
type failSyncs struct{ armed atomic.Bool }

func (f *failSyncs) MaybeError(op errorfs.Op) error {
	if op.Kind == errorfs.OpWriteSync && op.Offset > 0 && f.armed.Load() {
		return &errorfs.Error{Op: op}
	}
	return nil
}

// buffered hides the backend's DirectIO: the engine treats it as writing
// through a page cache, as it does the fallback backend.
type buffered struct{ vfs.FS }

// A failed sync under StoreLogs fails the call, loses nothing that was
// acknowledged, and never brings the failed entries back. With direct I/O
// the log rolls the batch back and the next StoreLogs at the same index
// succeeds; through a page cache the store turns read-only (StoreLogs
// fails with engine.ErrReadOnly, reads go on) until a reopen. In a set
// the other groups are written before and after, and keep what was
// acknowledged: the set's stream rolls back or turns read-only as one.
func TestStoreLogsDiskError(t *testing.T) {
	forKinds(t, func(t *testing.T, k storeKind) {
		for _, direct := range []bool{true, false} {
			name := map[bool]string{true: "direct", false: "buffered"}[direct]
			t.Run(name, func(t *testing.T) { testStoreLogsDiskError(t, k, direct) })
		}
	})
}

// diskStore is a store of kind k on fsys, and its set's neighbours (nil
// alone); they step when written.
type diskStore struct {
	*Store
	ss  *SetStore
	nbs []*neighbour
}

func openDiskStore(t *testing.T, k storeKind, fsys vfs.FS, nbs []*neighbour) diskStore {
	t.Helper()
	opts := []Option{WithFS(fsys), WithSegmentSize(64 << 10)}
	if !k.set {
		s, err := Open("diskerror", opts...)
		if err != nil {
			t.Fatal(err)
		}
		return diskStore{Store: s}
	}
	ss, err := OpenSet("diskerror", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if nbs == nil {
		for i, id := range neighbourIDs {
			nbs = append(nbs, newNeighbour(id, uint64(i)))
		}
	}
	for _, n := range nbs {
		if err := n.check(ss.Group(n.id)); err != nil {
			t.Fatalf("after OpenSet: %v", err)
		}
	}
	return diskStore{Store: ss.Group(testGroup), ss: ss, nbs: nbs}
}

// neighbours runs steps of every neighbour.
func (d diskStore) neighbours(t *testing.T, steps int) {
	t.Helper()
	for range steps {
		for _, n := range d.nbs {
			if err := n.step(d.ss.Group(n.id)); err != nil {
				t.Fatalf("neighbour group %d: %v", n.id, err)
			}
		}
	}
}

func (d diskStore) close() error {
	if d.ss != nil {
		return d.ss.Close()
	}
	return d.Close()
}

func testStoreLogsDiskError(t *testing.T, k storeKind, direct bool) {
	mem := memfs.New(4096)
	inj := &failSyncs{}
	var fsys vfs.FS = errorfs.New(mem, inj)
	if !direct {
		fsys = buffered{fsys}
	}
	s := openDiskStore(t, k, fsys, nil)
	defer s.close()
	s.neighbours(t, 5)
	if err := s.StoreLogs(logs(1, 10)); err != nil {
		t.Fatal(err)
	}
	s.neighbours(t, 5)
	inj.armed.Store(true)
	if err := s.StoreLogs(logs(11, 20)); err == nil {
		t.Fatal("StoreLogs succeeded through a failed sync")
	}
	inj.armed.Store(false)
	checkLog(t, s.Store, 1, 10, nil)
	err := s.StoreLogs(logs(11, 20))
	if direct {
		if err != nil {
			t.Fatalf("after the rollback StoreLogs at the same index: %v", err)
		}
		checkLog(t, s.Store, 1, 20, nil)
		s.neighbours(t, 5)
	} else {
		if !errors.Is(err, engine.ErrReadOnly) {
			t.Fatalf("StoreLogs after a failed sync through a page cache: %v, want ErrReadOnly", err)
		}
		var l raft.Log
		if err := s.GetLog(5, &l); err != nil {
			t.Fatalf("a read-only store does not read: %v", err)
		}
		for _, n := range s.nbs { // the whole set is read-only, and reads
			g := s.ss.Group(n.id)
			if err := g.StoreLogs([]*raft.Log{nbLog(n.id, n.next, n.term)}); !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("StoreLogs of group %d of a read-only set: %v, want ErrReadOnly", n.id, err)
			}
			if err := g.SetUint64([]byte("CurrentTerm"), 99); !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("SetUint64 of group %d of a read-only set: %v, want ErrReadOnly", n.id, err)
			}
			if err := n.check(g); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.close()
	s = openDiskStore(t, k, mem, s.nbs)
	defer s.close()
	if direct {
		checkLog(t, s.Store, 1, 20, nil)
	} else {
		checkLog(t, s.Store, 1, 10, nil) // the failed batch never comes back
		if err := s.StoreLogs(logs(11, 12)); err != nil {
			t.Fatalf("after a reopen: %v", err)
		}
	}
	s.neighbours(t, 5)
}
