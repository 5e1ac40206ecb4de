package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

func TestAppendConcurrentWritersAllDurableAndReplayed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 64 << 10 // several rotations
		cfg.SegmentsToRetain = 1000
		c := openT(t, cfg)
		const writers, each = 8, 60
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					lsn := LSN(w*each + i + 1)
					if err := c.Append(context.Background(), lsn, []byte(fmt.Sprintf("w%d-%d", w, i))); err != nil {
						errs <- err
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Append: %v", err)
		}
		if c.TotalEntriesFlushed() != writers*each {
			t.Fatalf("flushed %d", c.TotalEntriesFlushed())
		}
		if c.TotalFlushes() >= writers*each {
			t.Logf("no batching happened: %d flushes for %d entries", c.TotalFlushes(), writers*each)
		}
		c.Close()
		c2 := openT(t, cfg)
		got := replayAll(t, c2, 0)
		if len(got) != writers*each {
			t.Fatalf("replayed %d, want %d", len(got), writers*each)
		}
		// Each writer's entries replay in the order it appended them.
		last := map[byte]int{}
		for _, r := range got {
			var w, i int
			fmt.Sscanf(r.data, "w%d-%d", &w, &i)
			if p, ok := last[byte(w)]; ok && i != p+1 {
				t.Fatalf("writer %d: entry %d after %d", w, i, p)
			}
			last[byte(w)] = i
		}
	})
}

func TestAppendContextAndClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Append(ctx, 1, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Append with a cancelled ctx: %v", err)
		}
		if err := c.Append(context.Background(), 2, make([]byte, c.cfg.MaxEntrySize+1)); !errors.Is(err, ErrEntryTooLarge) {
			t.Fatalf("oversized Append: %v", err)
		}
		if err := c.Append(context.Background(), 3, []byte("ok")); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := c.Append(context.Background(), 4, []byte("late")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}
		if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(5, nil)}, true); !errors.Is(err, ErrClosed) {
			t.Fatalf("Flush after Close: %v", err)
		}
		if err := c.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestEntryTooLargeFailsWholeBatchWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.MaxEntrySize = 1000
		c := openT(t, cfg)
		e1, h1 := NewSyncEntry(1, make([]byte, 10))
		e2, h2 := NewSyncEntry(2, make([]byte, 1001))
		_, err := c.Flush([]*PendingEntry{e1, e2}, true)
		if !errors.Is(err, ErrEntryTooLarge) {
			t.Fatalf("Flush: %v", err)
		}
		for _, h := range []*Completion{h1, h2} {
			if !errors.Is(h.Wait(), ErrEntryTooLarge) {
				t.Fatalf("completion: %v", h.Err())
			}
		}
		if c.TotalFlushes() != 0 || c.CurrentSegmentID() != 0 || len(segIDs(t, c)) != 0 {
			t.Fatal("something was written")
		}
		// An entry of exactly MaxEntrySize is fine, and so is one larger than
		// the segment: it gets a segment of its own.
		cfg2 := b.config(t)
		cfg2.SegmentSize = 8192
		c2 := openT(t, cfg2)
		mustFlush(t, c2, []*PendingEntry{entry(1, 1, 10)}, false)
		big := entry(2, 2, 100<<10)
		if st := mustFlush(t, c2, []*PendingEntry{big}, true); !st.SegmentRotated {
			t.Fatal("huge entry did not rotate")
		}
		if c2.CurrentSegmentID() != 2 {
			t.Fatalf("huge entry in segment %d", c2.CurrentSegmentID())
		}
		if got := replayAll(t, c2, 2); len(got) != 1 || len(got[0].data) != 100<<10 {
			t.Fatal("huge entry not replayed")
		}
	})
}

func TestDroppedPendingEntryTellsItsCompletion(t *testing.T) {
	_, h := NewSyncEntry(1, []byte("never flushed"))
	deadline := time.Now().Add(20 * time.Second)
	for !h.IsComplete() {
		if time.Now().After(deadline) {
			t.Fatal("dropped entry's completion never told")
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(h.Wait(), ErrDropped) {
		t.Fatalf("dropped entry: %v", h.Err())
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		c := openT(t, cfg)
		if _, err := Open(cfg); !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open: %v, want ErrLocked", err)
		}
		c.Close()
		c2, err := Open(cfg)
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		c2.Close()
	})
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x"), 0o600)
	for name, cfg := range map[string]Config{
		"empty dir":         {},
		"negative size":     {Dir: dir, SegmentSize: -1},
		"negative retain":   {Dir: dir, SegmentsToRetain: -1},
		"negative interval": {Dir: dir, FlushInterval: -time.Second},
		"negative max":      {Dir: dir, MaxEntrySize: -1},
		"huge max":          {Dir: dir, MaxEntrySize: 2 << 30},
		"unknown backend":   {Dir: dir, Backend: 9},
		"unknown sync":      {Dir: dir, SyncMethod: 9},
	} {
		if _, err := Open(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
	if _, err := Open(Config{Dir: notDir, Backend: BackendFallback}); err == nil {
		t.Error("Open of a regular file as Dir succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("bad configs left files: %v", ents)
	}
}

func TestZeroConfigIsDurableAndDefault(t *testing.T) {
	cfg, err := Config{Dir: "x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.SyncOnFlush || cfg.SegmentSize != 64<<20 || cfg.SegmentsToRetain != 10 ||
		cfg.FlushInterval != 10*time.Millisecond || cfg.MaxEntrySize != 64<<20 || cfg.Backend != BackendAuto {
		t.Fatalf("zero Config gave %+v", cfg)
	}
	d := DefaultConfig("x")
	d.SyncOnFlush = false
	if cfg, _ := d.withDefaults(); cfg.SyncOnFlush {
		t.Fatal("DefaultConfig with SyncOnFlush=false still syncs")
	}
	// A literal cannot say "off": its zero SyncOnFlush is the default.
	if cfg, _ := (Config{Dir: "x", SyncOnFlush: false}).withDefaults(); !cfg.SyncOnFlush {
		t.Fatal("a Config literal turned syncing off")
	}
}

func TestUnorderedLSNsAndReplayOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		mustFlush(t, c, []*PendingEntry{entry(30, 1, 1), entry(10, 2, 1), entry(20, 3, 1)}, true)
		mustFlush(t, c, []*PendingEntry{entry(5, 4, 1)}, false)
		var got []LSN
		c.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil })
		if !slices.Equal(got, []LSN{30, 10, 20, 5}) {
			t.Fatalf("replay order %v, want write order", got)
		}
		stop := errors.New("stop")
		n := 0
		if err := c.Replay(0, func(LSN, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Fatalf("Replay did not stop on fn's error: %v after %d", err, n)
		}
	})
}

func TestFilePermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("checks OS modes")
		}
		cfg := b.config(t)
		cfg.Dir = filepath.Join(cfg.Dir, "wal")
		cfg.SegmentSize = 1
		c := openT(t, cfg)
		mustFlush(t, c, []*PendingEntry{entry(1, 1, 1)}, true)
		st, _ := os.Stat(cfg.Dir)
		if st.Mode().Perm() != 0o700 {
			t.Fatalf("dir mode %v", st.Mode())
		}
		for _, n := range []string{segment.Name(1), segment.MetaName(1), segment.LockName} {
			st, err := os.Stat(filepath.Join(cfg.Dir, n))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v %v", n, st.Mode(), err)
			}
		}
	})
}

func TestWaitPreparedReadiesTheFirstSegment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.WaitPrepared(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.Stats().SegmentsPrepared; got != 1 {
			t.Fatalf("%d segments prepared after WaitPrepared, want 1", got)
		}
		mustFlush(t, c, []*PendingEntry{entry(1, 1, 10)}, true)
		if c.CurrentSegmentID() != 1 {
			t.Fatalf("wrote to segment %d", c.CurrentSegmentID())
		}
	})
}

// GroupCommitDepth bounds the synced batches Append has in flight: with 1,
// never two at once; with 4, several under 16 writers. A bad value is
// refused.
func TestGroupCommitDepth(t *testing.T) {
	for _, depth := range []int{1, 4} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			var cur, peak atomic.Int32
			efs := errorfs.New(memfs.New(4096), errorfs.InjectorFunc(func(op errorfs.Op) error {
				// Batch writes only (synced with the default SyncDSync; the
				// preparer's header writes are at 0).
				if op.Kind == errorfs.OpWrite && op.Mode == vfs.DSync && op.Offset > 0 {
					n := cur.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					time.Sleep(2 * time.Millisecond) // the write is slow: batches pile up
					cur.Add(-1)
				}
				return nil
			}))
			cfg := DefaultConfig("depth")
			cfg.FS = efs
			cfg.GroupCommitDepth = depth
			c := openT(t, cfg)
			var wg sync.WaitGroup
			var lsn atomic.Uint64
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						if err := c.Append(context.Background(), LSN(lsn.Add(1)), []byte("entry")); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if got := int(peak.Load()); depth == 1 && got != 1 || depth > 1 && got < 2 || got > depth {
				t.Errorf("GroupCommitDepth %d: %d synced batches in flight at most", depth, got)
			}
			if got := replayAll(t, c, 0); len(got) != 16*20 {
				t.Errorf("replayed %d entries, want %d", len(got), 16*20)
			}
		})
	}
	for _, bad := range []int{-1, maxInFlight + 1} {
		if _, err := Open(Config{Dir: t.TempDir(), GroupCommitDepth: bad}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("GroupCommitDepth %d: Open = %v, want ErrBadConfig", bad, err)
		}
	}
}

// A synced batch is written with the sync method's mode: RWF_DSYNC by
// default (the zero SyncMethod), a linked fdatasync with SyncFdatasync; an
// unsynced one with neither.
func TestSyncMethodModes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method SyncMethod
		want   vfs.SyncMode
	}{{"default", 0, vfs.DSync}, {"fdatasync", SyncFdatasync, vfs.Fdatasync}, {"dsync", SyncDSync, vfs.DSync}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			modes := map[vfs.SyncMode]int{}
			efs := errorfs.New(memfs.New(4096), errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind == errorfs.OpWrite && op.Offset > 0 { // batches, not headers
					mu.Lock()
					modes[op.Mode]++
					mu.Unlock()
				}
				return nil
			}))
			cfg := DefaultConfig("modes")
			cfg.FS = efs
			cfg.SyncMethod = tc.method
			c := openT(t, cfg)
			mustFlush(t, c, []*PendingEntry{entry(1, 1, 10)}, true)
			mustFlush(t, c, []*PendingEntry{entry(2, 2, 10)}, false)
			if err := c.Append(context.Background(), 3, []byte("x")); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if modes[tc.want] != 2 || modes[vfs.NoSync] != 1 || len(modes) != 2 {
				t.Errorf("batch writes by mode %v, want 2 with %v and 1 unsynced", modes, tc.want)
			}
		})
	}
}
