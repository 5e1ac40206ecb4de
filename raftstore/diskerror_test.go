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

// failNextSync fails the next linked sync of a batch write (past a
// segment's header block) once armed.
type failNextSync struct{ armed atomic.Bool }

func (f *failNextSync) MaybeError(op errorfs.Op) error {
	if op.Kind == errorfs.OpWriteSync && op.Offset > 0 && f.armed.CompareAndSwap(true, false) {
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
// fails with engine.ErrReadOnly, reads go on) until a reopen.
func TestStoreLogsDiskError(t *testing.T) {
	for _, direct := range []bool{true, false} {
		name := map[bool]string{true: "direct", false: "buffered"}[direct]
		t.Run(name, func(t *testing.T) {
			mem := memfs.New(4096)
			inj := &failNextSync{}
			var fsys vfs.FS = errorfs.New(mem, inj)
			if !direct {
				fsys = buffered{fsys}
			}
			s, err := Open("diskerror", WithFS(fsys), WithSegmentSize(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.StoreLogs(logs(1, 10)); err != nil {
				t.Fatal(err)
			}
			inj.armed.Store(true)
			if err := s.StoreLogs(logs(11, 20)); err == nil {
				t.Fatal("StoreLogs succeeded through a failed sync")
			}
			checkLog(t, s, 1, 10, nil)
			err = s.StoreLogs(logs(11, 20))
			if direct {
				if err != nil {
					t.Fatalf("after the rollback StoreLogs at the same index: %v", err)
				}
				checkLog(t, s, 1, 20, nil)
			} else {
				if !errors.Is(err, engine.ErrReadOnly) {
					t.Fatalf("StoreLogs after a failed sync through a page cache: %v, want ErrReadOnly", err)
				}
				var l raft.Log
				if err := s.GetLog(5, &l); err != nil {
					t.Fatalf("a read-only store does not read: %v", err)
				}
			}
			s.Close()
			s, err = Open("diskerror", WithFS(mem), WithSegmentSize(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			if direct {
				checkLog(t, s, 1, 20, nil)
			} else {
				checkLog(t, s, 1, 10, nil) // the failed batch never comes back
				if err := s.StoreLogs(logs(11, 12)); err != nil {
					t.Fatalf("after a reopen: %v", err)
				}
			}
		})
	}
}
