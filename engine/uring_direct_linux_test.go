package engine

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
)

// The io_uring backend writes with O_DIRECT: the engine must know that no
// page cache stands between it and the disk. The sync-failure rule depends
// on it (a direct backend rolls back and resumes on a fresh segment, a
// buffered one turns read-only), and so do segment preparation (blocks are
// initialised only for direct backends) and recycling.
func TestUringBackendIsDirect(t *testing.T) {
	f, err := newUring(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Skipf("io_uring backend does not run here: %v", err)
	}
	defer f.Close()
	if pageCache(f) {
		t.Error("pageCache(io_uring FS) is true: the io_uring backend does not declare direct I/O (vfs.DirectIO)")
	}
	if pageCache(errorfs.New(f, nil)) {
		t.Error("pageCache(errorfs(io_uring FS)) is true")
	}
}

// The sync-failure rule on the real io_uring backend: a failed linked
// fdatasync rolls the segment back, seals it, and the next batch goes to a
// fresh segment; the Coordinator must not turn read-only.
func TestUringSyncFailureRollsBack(t *testing.T) {
	if err := probeUring(t.TempDir()); err != nil {
		t.Skipf("io_uring backend does not run here: %v", err)
	}
	cfg := Config{Dir: t.TempDir(), Backend: BackendUring, SegmentSize: 1 << 20}
	efs := wrapErrorFS(t, &cfg)
	c := openT(t, cfg)
	mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte("acknowledged"))}, true)
	efs.SetInjector(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)))
	_, err := c.Flush([]*PendingEntry{NewAsyncEntry(2, []byte("failed"))}, true)
	efs.SetInjector(nil)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Flush with a failing fdatasync: %v, want EIO", err)
	}
	if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(3, []byte("after"))}, true); err != nil {
		t.Fatalf("Flush after a rolled-back sync failure on io_uring + O_DIRECT: %v (want a fresh segment, not read-only)", err)
	}
	if c.CurrentSegmentID() != 2 {
		t.Errorf("resumed in segment %d, want 2", c.CurrentSegmentID())
	}
	var got []LSN
	c.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil })
	if !slices.Equal(got, []LSN{1, 3}) {
		t.Fatalf("replayed %v, want [1 3]", got)
	}
}

// Sealed segments are read through the page cache, and segment files are
// reused: a reused file's old pages, cached while it was an earlier
// segment, must never be read back as the new segment's. The O_DIRECT
// writes of the new segment invalidate them; this reads every segment
// through the page cache before it is retired and reused, many times
// over, and checks every read.
func TestUringCachedReadsAfterReuse(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.Backend = BackendUring
	cfg.SegmentSize = 64 << 10
	cfg.SegmentsToRetain = 2
	c, err := Open(cfg)
	if err != nil {
		t.Skipf("io_uring backend does not run here: %v", err)
	}
	defer c.Close()
	if _, ok := c.fs.(vfs.CachedReader); !ok {
		t.Fatal("the io_uring backend reads sealed segments only through O_DIRECT")
	}
	const per = 4
	lsn := LSN(1)
	for round := 0; round < 60; round++ {
		flushRange(t, c, lsn, lsn+40-1, per)
		lsn += 40
		first, last, ok, err := c.Bounds()
		if err != nil || !ok {
			t.Fatalf("Bounds: %v %v", ok, err)
		}
		for l := first; l <= last; l++ { // the sealed ones through the page cache
			got, err := c.Read(l, nil)
			if err != nil || string(got) != string(indexData(l)) {
				t.Fatalf("round %d: Read(%d) = %d bytes, %v; want the entry written", round, l, len(got), err)
			}
		}
	}
	st := c.Stats()
	if st.SegmentsRecycled < 10 {
		t.Fatalf("%d segment files reused: the test wants many", st.SegmentsRecycled)
	}
	c.rd.mu.Lock()
	cached := 0
	for _, h := range c.rd.m {
		if h.cached {
			cached++
		}
	}
	c.rd.mu.Unlock()
	if cached == 0 {
		t.Fatal("no sealed segment was read through the page cache")
	}
}
