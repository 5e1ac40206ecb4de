package engine

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// replayLive replays the whole log and checks each entry's bytes against
// want(lsn); it returns the LSNs in replay order.
func replayLive(t *testing.T, c *Coordinator, want func(LSN) []byte) []LSN {
	t.Helper()
	var out []LSN
	err := c.Replay(0, func(l LSN, b []byte) error {
		if w := want(l); !bytes.Equal(b, w) {
			t.Fatalf("Replay: LSN %d has %d bytes, not the live version (%d bytes)", l, len(b), len(w))
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

// wantRange checks that got is exactly lo..hi in order.
func wantRange(t *testing.T, what string, got []LSN, lo, hi LSN) {
	t.Helper()
	if len(got) != int(hi-lo+1) {
		t.Fatalf("%s: %d entries, want %d..%d (%d)", what, len(got), lo, hi, hi-lo+1)
	}
	for i, l := range got {
		if l != lo+LSN(i) {
			t.Fatalf("%s: entry %d is LSN %d, want %d", what, i, l, lo+LSN(i))
		}
	}
}

// DeleteBefore is exact to the entry for Read, Bounds and Replay, before
// and after a reopen; sealed segments wholly below it are removed; a lower
// or equal LSN deletes nothing more.
func TestDeleteBeforeExact(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentSize: 32 << 10, SegmentsToRetain: RetainAll}
	c := openT(t, cfg)
	flushRange(t, c, 1, 1000, 9)
	before := len(c.Segments())
	if err := c.DeleteBefore(437); err != nil {
		t.Fatal(err)
	}
	check := func(c *Coordinator, what string) {
		t.Helper()
		checkReads(t, c, 437, 1000)
		wantRange(t, what, replayLive(t, c, indexData), 437, 1000)
		for _, s := range c.Segments() {
			if s.Meta.MaxLSN < 437 {
				t.Fatalf("%s: segment %d (LSN %d..%d) lies wholly below 437 and is still there", what, s.ID, s.Meta.MinLSN, s.Meta.MaxLSN)
			}
		}
	}
	check(c, "after DeleteBefore")
	if after := len(c.Segments()); after >= before {
		t.Fatalf("%d sealed segments before, %d after: none removed", before, after)
	}
	if err := c.DeleteBefore(100); err != nil {
		t.Fatal(err)
	}
	check(c, "after a lower DeleteBefore")
	c.Close()
	c = openT(t, cfg)
	check(c, "after reopen")
	flushRange(t, c, 1001, 1010, 1)
	checkReads(t, c, 437, 1010)
}

// DeleteBefore runs while Appends go on, and neither loses an entry above
// the cut nor lets one below it back.
func TestDeleteBeforeConcurrentWrites(t *testing.T) {
	c := openT(t, Config{FS: memfs.New(4096), SegmentSize: 16 << 10, SegmentsToRetain: RetainAll})
	flushRange(t, c, 1, 200, 4)
	done := make(chan error, 1)
	go func() {
		var err error
		for l := LSN(201); l <= 1200 && err == nil; l++ {
			err = c.Append(t.Context(), l, indexData(l))
		}
		done <- err
	}()
	for cutAt := LSN(10); cutAt <= 150; cutAt += 20 {
		if err := c.DeleteBefore(cutAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkReads(t, c, 150, 1200)
	wantRange(t, "replay", replayLive(t, c, indexData), 150, 1200)
}

// The user record survives a reopen and the deletions that rewrite the
// log-state record beside it.
func TestUserRecord(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentsToRetain: RetainAll}
	c := openT(t, cfg)
	if got := c.UserRecord(); got != nil {
		t.Fatalf("fresh log: user record %q", got)
	}
	if err := c.SetUserRecord([]byte("term=3")); err != nil {
		t.Fatal(err)
	}
	flushRange(t, c, 1, 50, 5)
	if err := c.DeleteBefore(20); err != nil {
		t.Fatal(err)
	}
	if got := string(c.UserRecord()); got != "term=3" {
		t.Fatalf("after DeleteBefore: user record %q", got)
	}
	c.Close()
	c = openT(t, cfg)
	if got := string(c.UserRecord()); got != "term=3" {
		t.Fatalf("after reopen: user record %q", got)
	}
	checkReads(t, c, 20, 50)
	if err := c.SetUserRecord(make([]byte, segment.MaxStateUser+1)); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("oversized user record: %v", err)
	}
}

// A log-state record that does not decode fails Open with ErrCorrupt and
// changes nothing in the directory.
func TestCorruptStateRecordFailsOpen(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentsToRetain: RetainAll}
	c := openT(t, cfg)
	flushRange(t, c, 1, 10, 2)
	if err := c.DeleteBefore(4); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b, err := mem.ReadFile(segment.StateName)
	if err != nil {
		t.Fatal(err)
	}
	b[17] ^= 1 // the first LSN
	if err := mem.WriteFile(segment.StateName, b); err != nil {
		t.Fatal(err)
	}
	names := mem.Names()
	if _, err := Open(cfg); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a corrupt %s: %v, want ErrCorrupt", segment.StateName, err)
	}
	if got := mem.Names(); len(got) != len(names) {
		t.Fatalf("a refused Open changed the directory: %v, was %v", got, names)
	}
}

// versioned is entry lsn's bytes in version v: a rewritten LSN must read
// as its new bytes, never the deleted ones.
func versioned(v int) func(LSN) []byte {
	return func(l LSN) []byte {
		d := indexData(l)
		if v > 0 {
			d = append([]byte{byte(v), byte(v >> 8)}, d...)
		}
		return d
	}
}

// flushVersion writes LSN lo..hi in version v, per entries a batch.
func flushVersion(t *testing.T, c *Coordinator, lo, hi LSN, per, v int) {
	t.Helper()
	for l := lo; l <= hi; {
		var es []*PendingEntry
		for i := 0; i < per && l <= hi; i++ {
			es = append(es, NewAsyncEntry(l, versioned(v)(l)))
			l++
		}
		mustFlush(t, c, es, true)
	}
}

// readVersions checks Read of lo..hi against version(lsn) and that the
// LSNs beside the range are not found.
func readVersions(t *testing.T, c *Coordinator, lo, hi LSN, version func(LSN) int) {
	t.Helper()
	for l := lo; l <= hi; l++ {
		got, err := c.Read(l, nil)
		if err != nil || !bytes.Equal(got, versioned(version(l))(l)) {
			t.Fatalf("Read(%d): %v, %d bytes; want version %d", l, err, len(got), version(l))
		}
	}
	if _, err := c.Read(hi+1, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(%d) past the end: %v", hi+1, err)
	}
	if lo > 1 {
		if _, err := c.Read(lo-1, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Read(%d) before the start: %v", lo-1, err)
		}
	}
	first, last, ok, err := c.Bounds()
	if err != nil || !ok || first != lo || last != hi {
		t.Fatalf("Bounds = %d..%d ok=%v err=%v, want %d..%d", first, last, ok, err, lo, hi)
	}
	var n LSN
	err = c.Replay(0, func(l LSN, b []byte) error {
		if l != lo+n {
			t.Fatalf("Replay: entry %d is LSN %d, want %d", n, l, lo+n)
		}
		if !bytes.Equal(b, versioned(version(l))(l)) {
			t.Fatalf("Replay: LSN %d is not version %d", l, version(l))
		}
		n++
		return nil
	})
	if err != nil || n != hi-lo+1 {
		t.Fatalf("Replay: %d entries, %v; want %d", n, err, hi-lo+1)
	}
}

// TruncateAfter cuts a suffix exact to the entry, mid-batch and
// mid-segment, the next writes continue right after it with new bytes,
// cuts stack, and all of it holds after a reopen; no deleted entry comes
// back and no byte of what stays is rewritten.
func TestTruncateAfter(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentSize: 32 << 10, SegmentsToRetain: RetainAll}
	c := openT(t, cfg)
	flushVersion(t, c, 1, 1000, 7, 0)
	sizes := map[string][]byte{} // the sealed segments' bytes before the cuts
	for _, s := range c.Segments() {
		sizes[segment.Name(s.ID)] = fileBytes(t, mem, segment.Name(s.ID))
	}
	if err := c.TruncateAfter(600); err != nil {
		t.Fatal(err)
	}
	v1 := func(l LSN) int { return 0 }
	readVersions(t, c, 1, 600, v1)
	flushVersion(t, c, 601, 700, 3, 1)
	v2 := func(l LSN) int {
		if l > 600 {
			return 1
		}
		return 0
	}
	readVersions(t, c, 1, 700, v2)
	// a second cut, below the first one's new entries, then more
	if err := c.TruncateAfter(650); err != nil {
		t.Fatal(err)
	}
	if err := c.TruncateAfter(800); err != nil { // nothing above 800: no-op
		t.Fatal(err)
	}
	flushVersion(t, c, 651, 900, 50, 2)
	v3 := func(l LSN) int {
		switch {
		case l > 650:
			return 2
		case l > 600:
			return 1
		}
		return 0
	}
	readVersions(t, c, 1, 900, v3)
	kept := 0
	for _, s := range c.Segments() {
		name := segment.Name(s.ID)
		size, ok := sizes[name]
		if !ok {
			continue
		}
		kept++
		if got := fileBytes(t, mem, name); !bytes.Equal(got, size) {
			t.Fatalf("%s changed (%d bytes before the cuts, %d after): a kept segment was rewritten", name, len(size), len(got))
		}
	}
	if kept == 0 || kept == len(sizes) {
		t.Fatalf("%d of %d segments kept: the cut should keep some and remove those above it", kept, len(sizes))
	}
	c.Close()
	c = openT(t, cfg)
	readVersions(t, c, 1, 900, v3)
	if err := c.DeleteBefore(300); err != nil {
		t.Fatal(err)
	}
	readVersions(t, c, 300, 900, v3)
	c.Close()
	c = openT(t, cfg)
	readVersions(t, c, 300, 900, v3)
}

// A TruncateAfter that leaves nothing makes the log new: the next write
// may take any LSN, even one below an earlier DeleteBefore, and the old
// entries never come back, after a reopen either.
func TestTruncateAfterEverything(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentSize: 32 << 10, SegmentsToRetain: RetainAll}
	c := openT(t, cfg)
	flushVersion(t, c, 100, 400, 10, 0)
	if err := c.DeleteBefore(200); err != nil {
		t.Fatal(err)
	}
	if err := c.TruncateAfter(150); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := c.Bounds(); ok || err != nil {
		t.Fatalf("after truncating everything: Bounds ok=%v err=%v", ok, err)
	}
	if n := len(replayLive(t, c, versioned(0))); n != 0 {
		t.Fatalf("after truncating everything %d entries replay", n)
	}
	flushVersion(t, c, 5, 50, 4, 3)
	v := func(LSN) int { return 3 }
	readVersions(t, c, 5, 50, v)
	c.Close()
	c = openT(t, cfg)
	readVersions(t, c, 5, 50, v)
	for _, s := range c.Segments() {
		if s.Meta.MinLSN >= 100 {
			t.Fatalf("segment %d (LSN %d..%d) holds only deleted entries and is still there", s.ID, s.Meta.MinLSN, s.Meta.MaxLSN)
		}
	}
}

func fileBytes(t *testing.T, mem *memfs.FS, name string) []byte {
	t.Helper()
	b, err := mem.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
