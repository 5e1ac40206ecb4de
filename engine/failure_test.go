package engine

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// faultCase is one way a batch's write or sync can fail, with the state the
// sync-failure rule requires afterwards.
type faultCase struct {
	name   string
	inject errorfs.Injector
	// readOnly: the Coordinator must refuse later writes even on a direct
	// (no page cache) backend, because the rollback itself failed.
	readOnly bool
	errIs    error
}

// segWrites fires on every op of kind. (Segment files are created under
// their prepared-N.tmp name, which is the name errorfs knows their handles
// by.)
func segWrites(kind errorfs.OpKind) errorfs.Injector {
	return errorfs.ByKind(errorfs.Always(), kind)
}

func faultCases() []faultCase {
	return []faultCase{
		{name: "write error", inject: errorfs.Fault{}.On(segWrites(errorfs.OpWrite)), errIs: syscall.EIO},
		{name: "short write", inject: errorfs.Fault{Write: errorfs.WriteShort, Sectors: 3}.On(segWrites(errorfs.OpWrite)), errIs: vfs.ErrShortWrite},
		{name: "cancelled sync", inject: errorfs.Fault{Write: errorfs.WriteShort}.On(segWrites(errorfs.OpWrite)), errIs: syscall.ECANCELED},
		{name: "torn write", inject: errorfs.Fault{Write: errorfs.WriteTorn, Sectors: 5}.On(segWrites(errorfs.OpWrite)), errIs: syscall.EIO},
		{name: "sync error", inject: errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)), errIs: syscall.EIO},
		{name: "no space mid-write", inject: errorfs.Fault{Errno: syscall.ENOSPC}.On(segWrites(errorfs.OpWrite)), errIs: ErrNoSpace},
		{name: "sync error then truncate error", readOnly: true, errIs: syscall.EIO,
			inject: errorfs.Any(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)), errorfs.Fault{}.On(segWrites(errorfs.OpTruncate)))},
		{name: "sync error then rollback sync error", readOnly: true, errIs: syscall.EIO,
			inject: errorfs.Any(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)), errorfs.Fault{}.On(segWrites(errorfs.OpSync)))},
	}
}

// opLog records the ops an errorfs sees (for "was it synced" checks).
type opLog struct {
	mu  sync.Mutex
	ops []errorfs.Op
}

func (l *opLog) MaybeError(op errorfs.Op) error {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
	return nil
}

func (l *opLog) writesTo(name string) []errorfs.Op {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []errorfs.Op
	for _, op := range l.ops {
		if op.Kind == errorfs.OpWrite && op.Name == name && op.Offset == 4096 {
			// the first batch only: not the header block at 0, nor the
			// writes initialising the file's blocks (1 MiB, from 0)
			out = append(out, op)
		}
	}
	return out
}

// TestSyncFailureRule runs every fault against a direct backend (memfs: no
// page cache, like io_uring + O_DIRECT) and a buffered one (fallback) and
// checks the exact state afterwards: which completions failed, what
// replays, read-only or not, and that a crash at any point after it never
// brings the failed batch back.
func TestSyncFailureRule(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		for _, fc := range faultCases() {
			name := fc.name + "/direct"
			if buffered {
				name = fc.name + "/buffered"
			}
			t.Run(name, func(t *testing.T) {
				var inner vfs.FS
				mem := memfs.New(4096)
				inner = mem
				if buffered {
					fb, err := fallback.New(t.TempDir(), vfs.Options{})
					if err != nil {
						t.Fatal(err)
					}
					inner = fb
				}
				efs := errorfs.New(inner, nil)
				cfg := DefaultConfig("faults")
				cfg.FS = efs
				c := openT(t, cfg)

				a1, ha1 := NewSyncEntry(1, []byte("acknowledged-1"))
				a2 := NewAsyncEntry(2, []byte("acknowledged-2"))
				mustFlush(t, c, []*PendingEntry{a1, a2}, true)
				if ha1.Wait() != nil {
					t.Fatal("first batch not acknowledged")
				}
				sizeBefore := c.CurrentSegmentSize()

				efs.SetInjector(fc.inject)
				b3, hb3 := NewSyncEntry(3, []byte("failed-3"))
				b4, hb4 := NewSyncEntry(4, []byte("failed-4"))
				_, err := c.Flush([]*PendingEntry{b3, b4}, true)
				efs.SetInjector(nil)
				if err == nil || !errors.Is(err, fc.errIs) {
					t.Fatalf("Flush: %v, want %v", err, fc.errIs)
				}
				if !strings.Contains(err.Error(), "LSN 3..4") {
					t.Fatalf("error does not name the batch's LSNs: %v", err)
				}
				for _, h := range []*Completion{hb3, hb4} {
					if !h.IsComplete() || h.Err() == nil {
						t.Fatal("a failed batch's completion was told success")
					}
				}
				// The segment was rolled back to where the batch started.
				if f, err := efs.Unwrap().Open(segment.Name(1), true); err == nil {
					size, _ := f.Size()
					f.Close()
					if !fc.readOnly && size != int64(sizeBefore) {
						t.Fatalf("segment is %d bytes after the rollback, want %d", size, sizeBefore)
					}
				}

				wantRO := fc.readOnly || buffered
				log := &opLog{}
				efs.SetInjector(log)
				c5, hc5 := NewSyncEntry(5, []byte("after-5"))
				_, err = c.Flush([]*PendingEntry{c5}, false)
				efs.SetInjector(nil)
				if wantRO {
					if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "LSN 3..4") {
						t.Fatalf("Flush after an unrecoverable failure: %v, want ErrReadOnly naming LSN 3..4", err)
					}
					if !errors.Is(hc5.Wait(), ErrReadOnly) {
						t.Fatal("completion after read-only not told ErrReadOnly")
					}
					if _, err := c.TruncateToLSN(100); !errors.Is(err, ErrReadOnly) {
						t.Fatalf("TruncateToLSN when read-only: %v", err)
					}
				} else {
					if err != nil {
						t.Fatalf("Flush after a rolled-back failure: %v", err)
					}
					if c.CurrentSegmentID() != 2 {
						t.Fatalf("resumed in segment %d, want a fresh one", c.CurrentSegmentID())
					}
					ws := log.writesTo(segment.PreparedPrefix + "2" + segment.TmpSuffix)
					if len(ws) != 1 || ws[0].Mode == vfs.NoSync {
						t.Fatalf("first batch on the fresh segment not synced: %+v", ws)
					}
					if m, ok := c.ReadSegmentMetadata(1); !ok || m.EntryCount != 2 || m.MaxLSN != 2 {
						t.Fatalf("rolled-back segment sealed as %+v %v", m, ok)
					}
				}
				want := []LSN{1, 2}
				if !wantRO {
					want = append(want, 5)
				}
				var got []LSN
				if err := c.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil }); err != nil {
					t.Fatalf("Replay (reads must work even read-only): %v", err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("replayed %v, want %v", got, want)
				}
				c.Close()

				// Reopen: the failed batch never comes back.
				c2 := openT(t, cfg)
				got = got[:0]
				c2.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil })
				if !slices.Equal(got, want) {
					t.Fatalf("after reopen replayed %v, want %v", got, want)
				}
				c2.Close()
				if buffered {
					return
				}
				// Nor after a crash, whatever the volatile cache kept.
				for seed := int64(0); seed < 20; seed++ {
					cl := mem.CrashClone(seed)
					cc := DefaultConfig("crash")
					cc.FS = cl
					c3, err := Open(cc)
					if err != nil {
						t.Fatalf("seed %d: Open after crash: %v", seed, err)
					}
					got = got[:0]
					c3.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil })
					c3.Close()
					if !slices.Equal(got, want) {
						t.Fatalf("seed %d: after a crash replayed %v, want %v\n%s", seed, got, want, cl.CrashReport())
					}
				}
			})
		}
	}
}

// The seed's test_phantom_commit_prevention: after a failed sync the
// segment file is no larger than before the failed flush.
func TestSeedPhantomCommitPrevention(t *testing.T) {
	fb, err := fallback.New(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	efs := errorfs.New(fb, nil)
	cfg := DefaultConfig(fb.Dir())
	cfg.FS = efs
	c := openT(t, cfg)
	mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte("valid_data"))}, true)
	path := c.SegmentPath(c.CurrentSegmentID())
	// The segment is preallocated; what counts is the end of the valid
	// data: the file must be cut back to it, never keep the phantom batch.
	valid := int64(c.CurrentSegmentSize())
	efs.SetInjector(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)))
	if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(2, []byte("phantom_data"))}, true); err == nil {
		t.Fatal("flush with a failing sync succeeded")
	}
	if got := fileSize(t, path); got != valid {
		t.Fatalf("segment is %d bytes after the failed sync, want %d", got, valid)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "phantom_data") {
		t.Fatal("phantom batch still in the file")
	}
}

// The seed's test_sync_logic_correctness: sync=false never syncs, so a
// broken sync does not fail it; sync=true does, with an error about syncing.
func TestSeedSyncLogicCorrectness(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		efs := wrapErrorFS(t, &cfg)
		c := openT(t, cfg)
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte{1})}, true) // opens the segment
		efs.SetInjector(errorfs.Fault{}.On(errorfs.ByKind(errorfs.Always(), errorfs.OpWriteSync, errorfs.OpSync)))
		if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(2, []byte{1, 2, 3})}, false); err != nil {
			t.Fatalf("flush(sync=false) synced: %v", err)
		}
		_, err := c.Flush([]*PendingEntry{NewAsyncEntry(3, []byte{4, 5, 6})}, true)
		if err == nil || !strings.Contains(err.Error(), "sync") {
			t.Fatalf("flush(sync=true) with a broken sync: %v, want a sync error", err)
		}
	})
}

// wrapErrorFS puts an errorfs around the backend cfg would open.
func wrapErrorFS(t *testing.T, cfg *Config) *errorfs.FS {
	t.Helper()
	inner := cfg.FS
	if inner == nil {
		fsys, _, _, err := openBackend(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fsys.Close() })
		inner = fsys
	}
	efs := errorfs.New(inner, nil)
	cfg.FS = efs
	return efs
}

func TestNoSpaceWhenPreparingSegmentIsRetryable(t *testing.T) {
	mem := memfs.New(4096, memfs.WithCapacity(64<<10))
	cfg := DefaultConfig("full")
	cfg.FS = mem
	cfg.SegmentSize = 32 << 10
	cfg.SegmentsToRetain = 100
	c := openT(t, cfg)
	var acked []LSN
	var err error
	for lsn := LSN(1); lsn < 100; lsn++ {
		if _, err = c.Flush([]*PendingEntry{entry(lsn, 1, 3000)}, true); err != nil {
			break
		}
		acked = append(acked, lsn)
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("filling the disk: %v, want ErrNoSpace", err)
	}
	if len(acked) == 0 {
		t.Fatal("nothing fit")
	}
	// Nothing of the failed batch was written, and the engine is writable
	// once there is room again.
	if _, err := c.Flush([]*PendingEntry{entry(1000, 1, 10)}, true); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("still full: %v", err)
	}
	mem.SetCapacity(1 << 20)
	next := LSN(len(acked) + 1)
	mustFlush(t, c, []*PendingEntry{entry(next, 1, 10)}, true)
	var got []LSN
	c.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil })
	if want := append(slices.Clone(acked), next); !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
}

func ExampleCoordinator_Flush() {
	dir, _ := os.MkdirTemp("", "dwal-example-*")
	defer os.RemoveAll(dir)
	c, err := Open(DefaultConfig(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	e, done := NewSyncEntry(1, []byte("hello"))
	if _, err := c.Flush([]*PendingEntry{e, NewAsyncEntry(2, []byte("world"))}, true); err != nil {
		fmt.Println(err)
	}
	fmt.Println("durable:", done.Wait() == nil)
	c.Replay(0, func(lsn LSN, b []byte) error {
		fmt.Println(lsn, string(b))
		return nil
	})
	// Output:
	// durable: true
	// 1 hello
	// 2 world
}
