package engine

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// Found by TestCrash (seed 11309 of a 20,000-seed run: "Open after the
// crash: dwal: corrupt segment: 000001.log holds segment 9").
//
// retire renames a retired NNNNNN.log to recycle-N.tmp and offers it to the
// background preparer at once; its caller (TruncateToLSN, retain) syncs the
// directory only after it has retired every segment. A preparer that runs
// in between renames the file again and writes (and syncs) a new segment
// header into it while the rename away from NNNNNN.log is not yet durable.
// A crash then leaves NNNNNN.log holding another segment's header, and Open
// fails with ErrCorrupt until an operator removes the file.
//
// The test replays that interleaving step by step, white-box: the preparer
// is made to run between retire and the directory sync (as its goroutine
// may be scheduled), then the power is cut.
func TestRecycledSegmentRenameDurableBeforeReuse(t *testing.T) {
	mem := memfs.New(4096)
	cfg := DefaultConfig("recycle")
	cfg.FS = mem
	cfg.SegmentSize = 1 // every flush seals its segment
	cfg.SegmentsToRetain = 100
	c := openT(t, cfg)
	var want []replayed
	for l := LSN(1); l <= 3; l++ {
		mustFlush(t, c, []*PendingEntry{entry(l, byte(l), 100)}, true)
		want = append(want, replayed{l, string(slices.Repeat([]byte{byte(l)}, 100))})
	}
	// Segments 1..3 are sealed. As if segment 4 were requested but not yet
	// prepared: the preparer's goroutine has not run yet.
	if s := c.prep.take(4); s != nil {
		s.f.Close()
		c.fs.Remove(s.name)
	}
	c.pipe.mu.Lock()
	// TruncateToLSN(2), up to its directory sync:
	if err := c.retire(1); err != nil {
		c.pipe.mu.Unlock()
		t.Fatalf("retire: %v", err)
	}
	// ... and the preparer runs now.
	c.prep.request(4)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := mem.ReadFile(segment.PreparedPrefix + "4" + segment.TmpSuffix)
		if h, herr := segment.DecodeHeader(b); err == nil && herr == nil && h.ID == 4 {
			break
		}
		if time.Now().After(deadline) {
			c.pipe.mu.Unlock()
			t.Fatalf("segment 4 was not prepared; files %v", mem.Names())
		}
		time.Sleep(time.Millisecond)
	}
	recycled := !slices.Contains(mem.Names(), segment.RecyclePrefix+"1"+segment.TmpSuffix)
	// The power is cut before the directory sync.
	clone := mem.CrashClone(1, memfs.DropUnsynced())
	c.pipe.mu.Unlock()
	if !recycled {
		t.Logf("the preparer did not reuse the retired file (names %v)", mem.Names())
	}
	cc := cfg
	cc.FS = clone
	c2, err := Open(cc)
	if err != nil {
		t.Fatalf("Open after a crash during TruncateToLSN: %v\ndurable names: %v", err, clone.Names())
	}
	defer c2.Close()
	// Segment 1's removal was not durable: it may come back, whole.
	got := replayAll(t, c2, 0)
	if !slices.Equal(got, want) && !slices.Equal(got, want[1:]) {
		t.Fatalf("replayed %v", got)
	}
}

// A rotation costs one directory sync: the sealed segment's .meta, the
// segments retention retires and the next segment's name become durable
// together, before the next segment's first write.
func TestOneDirectorySyncPerRotation(t *testing.T) {
	var dirSyncs atomic.Int64
	cfg := DefaultConfig("rotations")
	cfg.FS = errorfs.New(memfs.New(4096), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpSyncDir {
			dirSyncs.Add(1)
		}
		return nil
	}))
	cfg.SegmentSize = 1 // every flush seals its segment
	cfg.SegmentsToRetain = 2
	c := openT(t, cfg)
	mustFlush(t, c, []*PendingEntry{entry(1, 1, 100)}, true)
	const rotations = 20
	before, rot0 := dirSyncs.Load(), c.Stats().Rotations
	for l := LSN(2); l < 2+rotations; l++ {
		mustFlush(t, c, []*PendingEntry{entry(l, byte(l), 100)}, true)
	}
	syncs, rots := dirSyncs.Load()-before, c.Stats().Rotations-rot0
	if rots != rotations {
		t.Fatalf("%d rotations, want %d", rots, rotations)
	}
	if syncs > rotations {
		t.Errorf("%d directory syncs for %d rotations, want at most one each", syncs, rots)
	}
	if st := c.Stats(); st.SegmentsRecycled == 0 {
		t.Errorf("no retired segment was reused (stats %+v)", st)
	}
	// Close makes the last rotation's retirements durable too.
	dirty := c.pipe.dirDirty
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if dirty && dirSyncs.Load() == before+syncs {
		t.Error("Close left directory changes unsynced")
	}
	c2 := openT(t, cfg)
	if got := replayAll(t, c2, 0); len(got) == 0 || got[len(got)-1].lsn != 1+rotations {
		t.Errorf("replay after reopen ends at %v, want LSN %d", got[len(got)-1:], 1+rotations)
	}
}

// A prepared file left under the name a new segment wants (Close leaves
// its prepared segment on disk; a Flush racing that Close then prepares
// the same ID) is replaced, not an error: it holds nothing acknowledged.
func TestMakeSegmentReplacesLeftPreparedFile(t *testing.T) {
	cfg := DefaultConfig("mem")
	cfg.FS = memfs.New(4096)
	c := openT(t, cfg)
	id := c.pipe.curID.Load() + 50
	first, err := c.makeSegment(id, initNone)
	if err != nil {
		t.Fatal(err)
	}
	first.f.Close() // left on disk, as Close leaves it
	second, err := c.makeSegment(id, initNone)
	if err != nil {
		t.Fatalf("preparing segment %d over the file left under its name: %v", id, err)
	}
	second.f.Close()
	if second.hdr.Salt == first.hdr.Salt {
		t.Error("the second preparation kept the first one's header")
	}
}
