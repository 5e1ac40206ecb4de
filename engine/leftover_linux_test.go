package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// A leftover segment file is reused only when it is the directory's own:
// a regular file (a symlinked one would have Open write into whatever it
// points to) and not still a segment under its other name (a crash in the
// middle of a rename can leave both names on one file, on a file system
// without a journal). Either is removed instead, and the log stays sound.
func TestLeftoverReusedOnlyWhenItsOwn(t *testing.T) {
	dir := t.TempDir()
	if err := probeUring(dir); err != nil {
		t.Skipf("io_uring backend does not run here: %v", err)
	}
	cfg := Config{Dir: dir, Backend: BackendUring, SegmentSize: 1 << 20}
	c := openT(t, cfg)
	mustFlush(t, c, []*PendingEntry{entry(1, 1, 100)}, true)
	last := c.CurrentSegmentID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if segment.IsLeftover(e.Name()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	// A symlink named as a prepared segment, to a file outside the log.
	outside := filepath.Join(t.TempDir(), "precious")
	want := bytes.Repeat([]byte("keep me "), 256<<10) // 2 MiB
	if err := os.WriteFile(outside, want, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, segment.PreparedName(last+1))); err != nil {
		t.Fatal(err)
	}
	// A second name of the last segment, as a retired file would have.
	if err := os.Link(filepath.Join(dir, segment.Name(last)), filepath.Join(dir, segment.RecycleName(last))); err != nil {
		t.Fatal(err)
	}
	c = openT(t, cfg)
	if got := c.Stats().SegmentsRecycled; got != 0 {
		t.Errorf("Open reused %d leftover files, want none", got)
	}
	mustFlush(t, c, []*PendingEntry{entry(2, 2, 100)}, true)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(outside); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the symlink's target was written to (%v)", err)
	}
	c = openT(t, cfg)
	if got := replayAll(t, c, 0); len(got) != 2 || got[0].lsn != 1 || got[1].lsn != 2 {
		t.Fatalf("replayed %v, want LSN 1 and 2", got)
	}
}
