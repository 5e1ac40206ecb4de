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

// The record's codec round-trips and rejects every single-byte change.
func TestStateRecordCodec(t *testing.T) {
	s := segment.State{First: 7, Base: 2, Floor: 9, Cuts: []segment.Cut{{After: 40, Below: 5}, {After: 60, Below: 8}}, User: []byte("abc")}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := segment.DecodeState(b)
	if err != nil || got.First != 7 || got.Base != 2 || got.Floor != 9 || len(got.Cuts) != 2 || got.Cuts[1] != s.Cuts[1] || string(got.User) != "abc" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x40
		if _, err := segment.DecodeState(bad); err == nil {
			t.Fatalf("byte %d changed and the record still decodes", i)
		}
	}
	if _, err := segment.DecodeState(b[:len(b)-1]); err == nil {
		t.Fatal("a truncated record decodes")
	}
}
