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
