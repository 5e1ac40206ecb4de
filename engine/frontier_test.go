package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// No commit lands in blocks that were never initialised, on a backend that
// wants them initialised: not right after Open (the first segment), not
// after a restart, not in a segment taken from the preparer before it
// finished, not in a recycled one. memfs WithExtents records every synced
// write of data into unwritten blocks.
func TestCommitsLandInInitialisedBlocks(t *testing.T) {
	mem := memfs.New(4096, memfs.WithExtents())
	cfg := DefaultConfig("mem")
	cfg.FS = mem
	cfg.SegmentSize = 3 << 20 // several rotations, some before the preparer is done
	cfg.SegmentsToRetain = 1  // retired segments come back for reuse
	var next LSN = 1
	for round := range 3 { // fresh, after Close, after a crash-free restart again
		c := openT(t, cfg)
		// Serial synced Flushes, then 8 goroutines appending: single-entry
		// batches and group-commit batches.
		for range 600 {
			mustFlush(t, c, []*PendingEntry{entry(next, byte(next), 2000)}, true)
			next++
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 150 {
					mu.Lock()
					lsn := next
					next++
					mu.Unlock()
					if err := c.Append(context.Background(), lsn, make([]byte, 3000)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		// Zeros never landed on a batch: what is retained replays whole,
		// each LSN once, up to the last one written.
		got := replayAll(t, c, 0)
		seen := map[LSN]bool{}
		for _, r := range got {
			seen[r.lsn] = true
		}
		first := c.Segments()[0].Meta.MinLSN
		for l := first; l < next; l++ {
			if !seen[l] {
				t.Fatalf("round %d: LSN %d not replayed (%d entries from %d)", round, l, len(got), first)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if cold := coldLogWrites(mem, 0); len(cold) > 0 {
		t.Fatalf("%d commits landed in never-written blocks, first %s", len(cold), cold[0])
	}
}

// The FlushThread keeps several batches in flight: while the first drained
// batch's write is held, the next drained batch is reserved and written
// (it reaches the disk before the first is released), and both settle in
// drain order.
func TestFlushThreadPipelines(t *testing.T) {
	held := make(chan struct{})
	release := make(chan struct{})
	var once, released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	var writes atomic.Int32
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpWrite && op.Offset >= 4096 && strings.HasPrefix(op.Name, segment.PreparedPrefix) {
			if writes.Add(1) == 1 {
				once.Do(func() { close(held) })
				<-release // the first batch's write waits here
			}
		}
		return nil
	})
	cfg := DefaultConfig("mem")
	cfg.FS = errorfs.New(memfs.New(4096), inj)
	c := openT(t, cfg)
	t.Cleanup(unblock) // before Close (cleanups run last first)
	var q entryQueue
	ft := StartFlushThread(c, q.drain, time.Hour)
	enqueue := func(lsn LSN) *Completion {
		e, done := NewSyncEntry(lsn, []byte{byte(lsn)})
		q.push(e)
		ft.RequestFlush()
		return done
	}
	first := enqueue(1)
	<-held
	second := enqueue(2)
	deadline := time.Now().Add(10 * time.Second)
	for writes.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if writes.Load() < 2 {
		t.Fatal("the second batch was not written while the first one's write was in flight")
	}
	if second.IsComplete() {
		t.Fatal("the second batch settled before the first")
	}
	unblock()
	if err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Fatal(err)
	}
	ft.Shutdown()
	if got := replayAll(t, c, 0); len(got) != 2 || got[0].lsn != 1 || got[1].lsn != 2 {
		t.Fatalf("replayed %v, want LSN 1 then 2", got)
	}
}

// Segments filled by large batches are recycled too: they are initialised
// up to their last batch, and only the tail they never reached stays
// fallocated. A recycled segment is then written into initialised blocks
// except for its tail, so a bulk writer pays extent conversion about once
// per segment instead of once per batch.
func TestBulkSegmentsRecycled(t *testing.T) {
	mem, cfg := extentLog(3<<20, 1)
	c := openT(t, cfg)
	const batch = 300 << 10 // >= aheadBulkSpan: claims its blocks
	coldBatches := func() int { return len(coldLogWrites(mem, batch)) }
	var lsn LSN
	write := func(n int) { flushN(t, c, &lsn, n, batch) }
	write(60) // six segments: the first ones are new files
	cold0, seg0 := coldBatches(), c.CurrentSegmentID()
	write(100)
	st := c.Stats()
	segs := int(c.CurrentSegmentID() - seg0)
	if st.SegmentsRecycled == 0 {
		t.Fatalf("no segment recycled after %d bulk-written segments (retention 1)", c.CurrentSegmentID())
	}
	if cold := coldBatches() - cold0; cold > segs+1 {
		t.Errorf("%d of the last 100 bulk batches landed in never-written blocks over %d segments (%d recycled in all); want about one per segment",
			cold, segs, st.SegmentsRecycled)
	}
	// Small commits into the recycled files: their never-written tails must
	// be initialised ahead of them (a file taken as initialised further
	// than it was would put these commits into fallocated blocks).
	flushN(t, c, &lsn, 3000, 2000)
	if n := len(coldLogWrites(mem, 0)) - len(coldLogWrites(mem, batch)); n > 0 {
		t.Fatalf("%d small commits landed in never-written blocks: %v", n, coldLogWrites(mem, 0))
	}
	if c.Stats().SegmentsRecycled <= st.SegmentsRecycled {
		t.Fatal("no recycled segment took the small commits")
	}
	replayEndsAt(t, c, lsn)
}

// After a restart, segments that an earlier process wrote are recycled
// too, as far as the file system's extent map shows them written: the
// first rotations after a reopen reuse retired files instead of
// fallocating new ones.
func TestRecycleAfterRestart(t *testing.T) {
	mem, cfg := extentLog(1<<20, 4)
	var lsn LSN
	write := func(c *Coordinator, n int) { flushN(t, c, &lsn, n, 3000) }
	c := openT(t, cfg)
	write(c, 2000) // about eight segments
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, cfg)
	first := c.CurrentSegmentID()
	write(c, 1500) // about six rotations: the first retire segments of the first run
	st := c.Stats()
	if st.SegmentsRecycled == 0 {
		t.Fatalf("no segment recycled in the %d rotations after a reopen", c.CurrentSegmentID()-first)
	}
	if cold := coldLogWrites(mem, 0); len(cold) > 0 {
		t.Fatalf("a commit landed in never-written blocks: %s", cold[0])
	}
	replayEndsAt(t, c, lsn)
}

// A prepared or retired segment file left by Close (or a crash) is reused
// by the next Open for its first segment, as far as the file system's
// extent map shows it written: a leftover holding another segment's stale
// batches and written only part way is taken into use without replaying
// them and without a commit landing in its unwritten blocks; a leftover too
// small to be a segment is removed.
func TestLeftoversReusedAtOpen(t *testing.T) {
	mem, cfg := extentLog(1<<20, 0)
	var lsn LSN
	write := func(c *Coordinator, n int) { flushN(t, c, &lsn, n, 3000) }
	noCold := func(what string) {
		t.Helper()
		if cold := coldLogWrites(mem, 0); len(cold) > 0 {
			t.Fatalf("%s: a commit landed in never-written blocks: %s", what, cold[0])
		}
	}
	c := openT(t, cfg)
	write(c, 600) // a few segments; Close leaves the next one prepared
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, n := range mem.Names() {
		if strings.HasPrefix(n, segment.PreparedPrefix) {
			kept = append(kept, n)
		}
	}
	if len(kept) == 0 {
		t.Fatalf("Close left no prepared segment to reuse: %v", mem.Names())
	}
	c = openT(t, cfg)
	if got := c.Stats().SegmentsRecycled; got != 1 {
		t.Fatalf("Open reused %d files for its first segment, want 1 (left: %v)", got, kept)
	}
	write(c, 300)
	noCold("after a clean reopen")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash's leftovers: a retired file holding segment 1's batches,
	// written only for its first two chunks; a prepared file cut short.
	for _, n := range mem.Names() {
		if segment.IsLeftover(n) {
			if err := mem.Remove(n); err != nil {
				t.Fatal(err)
			}
		}
	}
	old, err := mem.ReadFile(segment.Name(1))
	if err != nil {
		t.Fatal(err)
	}
	f, err := mem.Create(segment.RecycleName(99), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	chunk := c.aheadChunk()
	b := align.Alloc(int(2*chunk), 4096)
	copy(b, old)
	if err := f.WriteAt(b, 0, vfs.Fdatasync); err != nil {
		t.Fatal(err)
	}
	f.Close()
	short, err := mem.Create(segment.PreparedName(98), 4096)
	if err != nil {
		t.Fatal(err)
	}
	short.Close()
	if err := mem.SyncDir(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, cfg)
	if got := c.Stats().SegmentsRecycled; got != 1 {
		t.Fatalf("Open reused %d files, want the retired one", got)
	}
	if !slices.Contains(c.Recovery().Repairs, "removed leftover "+segment.PreparedName(98)) {
		t.Errorf("the short leftover was not removed: repairs %v", c.Recovery().Repairs)
	}
	write(c, 300) // past the two written chunks
	noCold("after reusing a part-written leftover")
	got := replayAll(t, c, 0)
	for i, r := range got {
		if r.lsn != LSN(i+1) {
			t.Fatalf("replay[%d] is LSN %d: the leftover's stale batches came back, or entries were lost", i, r.lsn)
		}
	}
	if len(got) != int(lsn) {
		t.Fatalf("replayed %d entries, want %d", len(got), lsn)
	}
}

// With every pipeline slot busy, entries drained meanwhile wait for a slot
// and then go as one batch: the FlushThread forms a batch when its write
// can start, not before (a batch formed early would hold only the entries
// drained by then, and those behind it would make another batch and sync).
func TestFlushThreadBatchesWhatQueuedWhilePipelineFull(t *testing.T) {
	release := make(chan struct{})
	var released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	var writes atomic.Int32
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpWrite && op.Offset >= 4096 && strings.HasPrefix(op.Name, segment.PreparedPrefix) {
			if writes.Add(1) <= 2 {
				<-release // both slots' writes wait here
			}
		}
		return nil
	})
	cfg := DefaultConfig("mem")
	cfg.FS = errorfs.New(memfs.New(4096), inj)
	cfg.GroupCommitDepth = 2
	c := openT(t, cfg)
	t.Cleanup(unblock)
	var q entryQueue
	ft := StartFlushThread(c, q.drain, time.Hour)
	var dones []*Completion
	enqueue := func(lsn LSN) {
		e, done := NewSyncEntry(lsn, []byte{byte(lsn)})
		q.push(e)
		ft.RequestFlush()
		dones = append(dones, done)
	}
	waitWrites := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for writes.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if writes.Load() < n {
			t.Fatalf("%d batch writes issued, want %d", writes.Load(), n)
		}
	}
	enqueue(1)
	waitWrites(1)
	enqueue(2)
	waitWrites(2) // both slots busy
	for lsn := LSN(3); lsn <= 10; lsn++ {
		enqueue(lsn)
		time.Sleep(2 * time.Millisecond) // the FlushThread sees each request
	}
	unblock()
	for _, d := range dones {
		if err := d.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	ft.Shutdown()
	if n := c.TotalFlushes(); n != 3 {
		t.Fatalf("%d batches for 10 entries, want 3 (1, 2, then 3..10 together)", n)
	}
	if got := replayAll(t, c, 0); len(got) != 10 {
		t.Fatalf("replayed %d entries, want 10", len(got))
	}
}

// coldLogWrites describes the synced writes of at least minLen bytes that
// mem saw land in never-written blocks of a file named as a segment (.log).
func coldLogWrites(mem *memfs.FS, minLen int) []string {
	var out []string
	for _, w := range mem.ColdWrites() {
		if w.Len >= minLen && slices.ContainsFunc(w.Names, func(n string) bool { return strings.HasSuffix(n, ".log") }) {
			out = append(out, fmt.Sprintf("%v at %d (%d bytes)", w.Names, w.Off, w.Len))
		}
	}
	return out
}

// extentLog is the recycling tests' directory: a memfs that models
// unwritten extents, and a config on it (segments of segSize, retention
// as given, 0 for the default).
func extentLog(segSize int64, retain int) (*memfs.FS, Config) {
	mem := memfs.New(4096, memfs.WithExtents())
	cfg := DefaultConfig("mem")
	cfg.FS = mem
	cfg.SegmentSize = segSize
	cfg.SegmentsToRetain = retain
	return mem, cfg
}

// flushN flushes n synced batches of one entry of size bytes, at the LSNs
// after *lsn (which it advances).
func flushN(t *testing.T, c *Coordinator, lsn *LSN, n, size int) {
	t.Helper()
	for range n {
		*lsn++
		mustFlush(t, c, []*PendingEntry{entry(*lsn, byte(*lsn), size)}, true)
	}
}

// replayEndsAt checks that c replays and its last entry is LSN last.
func replayEndsAt(t *testing.T, c *Coordinator, last LSN) {
	t.Helper()
	got := replayAll(t, c, 0)
	if len(got) == 0 || got[len(got)-1].lsn != last {
		t.Fatalf("replay ends at %v, want LSN %d", got[len(got)-1:], last)
	}
}
