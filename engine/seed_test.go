package engine

// The tests of the Card 1 seed (flush_coordinator.rs), ported: same intent,
// run against every backend. Where a seed test's byte counts come from its
// 5-byte header, the counts here come from our format (span1), as said at
// each such test.

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

func TestSeedCreation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		if c.TotalEntriesFlushed() != 0 || c.TotalBytesWritten() != 0 || c.TotalFlushes() != 0 {
			t.Fatalf("fresh coordinator has counters %d/%d/%d", c.TotalEntriesFlushed(), c.TotalBytesWritten(), c.TotalFlushes())
		}
	})
}

func TestSeedFlushEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		st := mustFlush(t, c, nil, true)
		if st.EntriesFlushed != 0 || st.BytesWritten != 0 || st.SegmentRotated {
			t.Fatalf("empty flush: %+v", st)
		}
		if c.TotalFlushes() != 0 || c.CurrentSegmentID() != 0 {
			t.Fatalf("empty flush wrote something: flushes %d segment %d", c.TotalFlushes(), c.CurrentSegmentID())
		}
	})
}

func TestSeedFlushSingle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		e := NewAsyncEntry(1, []byte("test data"))
		st := mustFlush(t, c, []*PendingEntry{e}, true)
		if st.EntriesFlushed != 1 || st.BytesWritten != len("test data") {
			t.Fatalf("stats %+v", st)
		}
		if c.TotalEntriesFlushed() != 1 {
			t.Fatalf("TotalEntriesFlushed %d", c.TotalEntriesFlushed())
		}
		if st.DiskBytes != int(span1(len("test data"))) {
			t.Fatalf("DiskBytes %d, want %d", st.DiskBytes, span1(len("test data")))
		}
	})
}

func TestSeedFlushMultiple(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		var es []*PendingEntry
		total := 0
		for i := 1; i <= 10; i++ {
			es = append(es, entry(LSN(i), byte(i), 100))
			total += 100
		}
		st := mustFlush(t, c, es, true)
		if st.EntriesFlushed != 10 || st.BytesWritten != total {
			t.Fatalf("stats %+v, want 10 entries %d bytes", st, total)
		}
	})
}

// The seed rotates when header (5) + data reaches segment_size. Here a
// segment holds a header block (4096) plus padded batches (span1), so the
// boundary is set from those.
func TestSeedSegmentRotationBoundary(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		used := 4096 + span1(95) // one batch of 95 bytes
		for _, tc := range []struct {
			segSize int64
			rotate  bool
		}{{used - 1, true}, {used, true}, {used + 1, false}} {
			cfg := b.config(t)
			cfg.SegmentSize = tc.segSize
			c := openT(t, cfg)
			st := mustFlush(t, c, []*PendingEntry{entry(1, 0, 95)}, true)
			if st.SegmentRotated != tc.rotate {
				t.Fatalf("SegmentSize %d, used %d: rotated %v, want %v", tc.segSize, used, st.SegmentRotated, tc.rotate)
			}
			want := uint64(used)
			if tc.rotate {
				want = 0
			}
			if got := c.CurrentSegmentSize(); got != want {
				t.Fatalf("SegmentSize %d: CurrentSegmentSize %d, want %d", tc.segSize, got, want)
			}
			c.Close()
		}
		// Then the next flush after a rotation starts a new segment and does
		// not rotate while below the size.
		cfg := b.config(t)
		cfg.SegmentSize = 4096 + 2*span1(95)
		c := openT(t, cfg)
		if st := mustFlush(t, c, []*PendingEntry{entry(1, 0, 95)}, true); st.SegmentRotated {
			t.Fatal("rotated below the size")
		}
		if st := mustFlush(t, c, []*PendingEntry{entry(2, 0, 94)}, true); !st.SegmentRotated {
			t.Fatal("did not rotate at the size")
		}
		if st := mustFlush(t, c, []*PendingEntry{entry(3, 0, 94)}, true); st.SegmentRotated {
			t.Fatal("rotated the fresh segment below the size")
		}
		if c.CurrentSegmentID() != 2 || c.CurrentSegmentSize() != uint64(4096+span1(94)) {
			t.Fatalf("segment %d size %d", c.CurrentSegmentID(), c.CurrentSegmentSize())
		}
	})
}

func TestSeedCompletionNotification(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		e, h := NewSyncEntry(1, []byte{1, 2, 3})
		if h.IsComplete() {
			t.Fatal("complete before flush")
		}
		mustFlush(t, c, []*PendingEntry{e}, true)
		if !h.IsComplete() {
			t.Fatal("not complete after flush")
		}
		if err := h.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	})
}

func TestSeedFlushSignal(t *testing.T) {
	s := NewFlushSignal()
	if s.Take() {
		t.Fatal("fresh signal has a request")
	}
	s.Request()
	if !s.Take() {
		t.Fatal("request not seen")
	}
	if s.Take() {
		t.Fatal("request not cleared")
	}
}

func TestSeedFlushSignalWaitTimeout(t *testing.T) {
	if NewFlushSignal().Wait(10 * time.Millisecond) {
		t.Fatal("Wait without request returned true")
	}
}

func TestSeedFlushSignalWaitImmediate(t *testing.T) {
	s := NewFlushSignal()
	s.Request()
	start := time.Now()
	if !s.Wait(10 * time.Second) {
		t.Fatal("Wait with request returned false")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Wait with a pending request blocked")
	}
}

func TestFlushSignalWakesWaiter(t *testing.T) {
	s := NewFlushSignal()
	got := make(chan bool)
	go func() { got <- s.Wait(time.Minute) }()
	time.Sleep(10 * time.Millisecond)
	s.Request()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("woken waiter saw no request")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Request did not wake the waiter")
	}
}

// Requests that pile up while one is pending are one request; after Take
// the next Request wakes a waiter again. One timer serves many waits: it
// times out, is woken early, and times out again.
func TestFlushSignalRequestsAfterTakeAndTimerReuse(t *testing.T) {
	s := NewFlushSignal()
	s.Request()
	s.Request()
	if !s.Take() || s.Take() {
		t.Fatal("two requests before a Take are not exactly one")
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	if s.waitTimer(timer, 5*time.Millisecond) {
		t.Fatal("a wait after Take saw a request nobody made")
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		s.Request()
	}()
	start := time.Now()
	if !s.waitTimer(timer, time.Minute) {
		t.Fatal("a Request after Take did not wake the waiter")
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("the waiter slept through the Request")
	}
	s.Take()
	if s.waitTimer(timer, 5*time.Millisecond) {
		t.Fatal("the reused timer's wait saw a request")
	}
}

func TestSeedSegmentFileCreation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("checks the OS directory")
		}
		c := openT(t, b.config(t))
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte("test"))}, true)
		if _, err := os.Stat(c.SegmentPath(c.CurrentSegmentID())); err != nil {
			t.Fatalf("segment file: %v", err)
		}
	})
}

func TestSeedWalHeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("checks the OS directory")
		}
		c := openT(t, b.config(t))
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte("test"))}, true)
		data, err := os.ReadFile(c.SegmentPath(c.CurrentSegmentID()))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 4096 || string(data[:8]) != segment.Magic || data[8] != segment.Version3 { // every segment this build writes
			t.Fatalf("header %q", data[:16])
		}
		h, err := segment.DecodeHeader(data)
		if err != nil || h.ID != c.CurrentSegmentID() || h.Align != 4096 && h.Align < 4096 {
			t.Fatalf("header %+v err %v", h, err)
		}
	})
}

func TestSeedFlushThreadBasic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		var mu sync.Mutex
		pending := []*PendingEntry{NewAsyncEntry(1, []byte("one")), NewAsyncEntry(2, []byte("two"))}
		th := StartFlushThread(c, func() []*PendingEntry {
			mu.Lock()
			defer mu.Unlock()
			p := pending
			pending = nil
			return p
		}, 10*time.Millisecond)
		th.RequestFlush()
		deadline := time.Now().Add(30 * time.Second)
		for c.TotalEntriesFlushed() < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d entries flushed", c.TotalEntriesFlushed())
			}
			time.Sleep(time.Millisecond)
		}
		th.Shutdown()
		got := replayAll(t, c, 0)
		if len(got) != 2 || got[0].data != "one" || got[1].data != "two" {
			t.Fatalf("replayed %v", got)
		}
	})
}

func TestFlushThreadShutdownFlushesRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c := openT(t, b.config(t))
		var mu sync.Mutex
		var pending []*PendingEntry
		// An hour-long interval: only Shutdown's final flush can write these.
		th := StartFlushThread(c, func() []*PendingEntry {
			mu.Lock()
			defer mu.Unlock()
			p := pending
			pending = nil
			return p
		}, time.Hour)
		e, h := NewSyncEntry(7, []byte("last"))
		mu.Lock()
		pending = append(pending, e)
		mu.Unlock()
		th.Shutdown()
		th.Shutdown() // idempotent
		if !h.IsComplete() || h.Wait() != nil {
			t.Fatalf("entry not flushed by Shutdown: complete %v err %v", h.IsComplete(), h.Err())
		}
	})
}

func TestSeedCleanupOldSegments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("checks the OS directory")
		}
		cfg := b.config(t)
		cfg.SegmentSize = 50
		cfg.SegmentsToRetain = 2
		c := openT(t, cfg)
		for i := 1; i <= 10; i++ {
			mustFlush(t, c, []*PendingEntry{entry(LSN(i), byte(i), 100)}, true)
		}
		if got := logIDs(t, cfg.Dir); !equalIDs(got, []uint64{8, 9, 10}) {
			t.Fatalf("segments %v, want [8 9 10]", got)
		}
	})
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSeedSegmentMetadataSerialization(t *testing.T) {
	m := SegmentMetadata{MinLSN: 100, MaxLSN: 200, EntryCount: 50}
	b, err := m.MarshalBinary()
	if err != nil || len(b) != 24 {
		t.Fatalf("%d bytes", len(b))
	}
	want := []byte{100, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(b[:], want) {
		t.Fatalf("encoding %v, want little endian %v", b, want)
	}
	var u SegmentMetadata
	if err := u.UnmarshalBinary(b); err != nil || u != m {
		t.Fatalf("UnmarshalBinary %+v %v", u, err)
	}
	// One rule for every reader of a .meta: exactly 24 bytes.
	for _, n := range []int{0, 23, 25} {
		if err := u.UnmarshalBinary(make([]byte, n)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("UnmarshalBinary of %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
}

func TestSeedSegmentMetadataTooShort(t *testing.T) {
	var m SegmentMetadata
	if err := m.UnmarshalBinary(make([]byte, 23)); err == nil {
		t.Fatal("UnmarshalBinary took 23 bytes")
	}
}

func TestSeedFlushTracksLSNRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 50
		c := openT(t, cfg)
		mustFlush(t, c, []*PendingEntry{entry(10, 1, 20), entry(20, 2, 20), entry(15, 3, 20)}, true)
		mustFlush(t, c, []*PendingEntry{entry(100, 4, 100)}, true)
		segs := c.Segments()
		if len(segs) == 0 {
			t.Fatal("no segments with metadata")
		}
		if m := segs[0].Meta; m.MinLSN != 10 || m.MaxLSN != 20 || m.EntryCount != 3 {
			t.Fatalf("first segment %+v", m)
		}
	})
}

func TestSeedTruncateRemovesOldSegments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 200
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		for s := 0; s < 3; s++ {
			var es []*PendingEntry
			for i := 1; i <= 10; i++ {
				es = append(es, entry(LSN(s*10+i), byte(i), 20))
			}
			mustFlush(t, c, es, true)
		}
		removed, err := c.TruncateToLSN(15)
		if err != nil || removed != 1 {
			t.Fatalf("removed %d err %v, want 1", removed, err)
		}
		ids := segIDs(t, c)
		if equalIDs(ids, []uint64{2, 3}) == false {
			t.Fatalf("segments %v, want [2 3]", ids)
		}
	})
}

// segIDs lists segment files through the backend.
func segIDs(t *testing.T, c *Coordinator) []uint64 {
	t.Helper()
	ids, err := c.segmentIDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestSeedTruncateKeepsNeededSegments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 30
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		for i := 100; i <= 110; i++ {
			mustFlush(t, c, []*PendingEntry{entry(LSN(i), byte(i), 20)}, true)
		}
		mustFlush(t, c, []*PendingEntry{entry(200, 200, 100)}, true)
		removed, err := c.TruncateToLSN(50)
		if err != nil || removed != 0 {
			t.Fatalf("removed %d err %v", removed, err)
		}
		if len(c.Segments()) != 12 {
			t.Fatalf("%d segments", len(c.Segments()))
		}
	})
}

func TestSeedTruncateNeverRemovesActive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte("test"))}, true)
		cur := c.CurrentSegmentID()
		removed, err := c.TruncateToLSN(1000)
		if err != nil || removed != 0 {
			t.Fatalf("removed %d err %v", removed, err)
		}
		if ids := segIDs(t, c); !equalIDs(ids, []uint64{cur}) {
			t.Fatalf("segments %v, want [%d]", ids, cur)
		}
	})
}

// The seed keeps the current segment even when it is sealed.
func TestTruncateNeverRemovesCurrentSealed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 30
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		mustFlush(t, c, []*PendingEntry{entry(1, 1, 10)}, true)
		mustFlush(t, c, []*PendingEntry{entry(2, 1, 10)}, true)
		removed, err := c.TruncateToLSN(1000)
		if err != nil || removed != 1 {
			t.Fatalf("removed %d err %v, want 1", removed, err)
		}
		if ids := segIDs(t, c); !equalIDs(ids, []uint64{2}) {
			t.Fatalf("segments %v, want [2]", ids)
		}
	})
}

func TestSeedGetMinLSN(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 30
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		if _, ok := c.MinLSN(); ok {
			t.Fatal("MinLSN of an empty log")
		}
		for i := 50; i <= 60; i++ {
			mustFlush(t, c, []*PendingEntry{entry(LSN(i), byte(i), 20)}, true)
		}
		mustFlush(t, c, []*PendingEntry{entry(100, 100, 100)}, true)
		if m, ok := c.MinLSN(); !ok || m != 50 {
			t.Fatalf("MinLSN %d %v, want 50", m, ok)
		}
	})
}

func TestSeedCleanupRemovesMetaFiles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 30
		cfg.SegmentsToRetain = 1
		c := openT(t, cfg)
		for i := 1; i <= 50; i++ {
			mustFlush(t, c, []*PendingEntry{entry(LSN(i), byte(i), 30)}, true)
		}
		ents, err := c.fs.List()
		if err != nil {
			t.Fatal(err)
		}
		metas := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), segment.MetaSuffix) {
				metas++
			}
		}
		// Retention keeps the current segment and one before it.
		if metas != 2 {
			t.Fatalf("%d .meta files, want 2", metas)
		}
	})
}

func TestSeedTruncateSafeOnMissingMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 50
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		var es []*PendingEntry
		for i := 1; i <= 10; i++ {
			es = append(es, entry(LSN(i), byte(i), 10))
		}
		mustFlush(t, c, es, true)
		es = nil
		for i := 11; i <= 20; i++ {
			es = append(es, entry(LSN(i), byte(i), 10))
		}
		mustFlush(t, c, es, true)
		if err := c.fs.Remove(segment.MetaName(1)); err != nil {
			t.Fatalf("remove meta: %v", err)
		}
		removed, err := c.TruncateToLSN(100)
		if err != nil || removed != 0 {
			t.Fatalf("removed %d err %v, want 0", removed, err)
		}
		if ids := segIDs(t, c); len(ids) == 0 || ids[0] != 1 {
			t.Fatalf("segment 1 gone: %v", ids)
		}
	})
}

func TestSeedTruncateBoundaryExact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 50
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		var es []*PendingEntry
		for i := 10; i <= 20; i++ {
			es = append(es, entry(LSN(i), byte(i), 20))
		}
		mustFlush(t, c, es, true)
		es = nil
		for i := 21; i <= 30; i++ {
			es = append(es, entry(LSN(i), byte(i), 20))
		}
		mustFlush(t, c, es, true)
		removed, err := c.TruncateToLSN(20)
		if err != nil || removed != 0 {
			t.Fatalf("removed %d err %v, want 0 (segment ends at 20)", removed, err)
		}
		if removed, err = c.TruncateToLSN(21); err != nil || removed != 1 {
			t.Fatalf("TruncateToLSN(21) removed %d err %v, want 1", removed, err)
		}
	})
}

func TestSeedMinLSNMultipleSegments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 30
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		for _, base := range []int{10, 30, 50} {
			var es []*PendingEntry
			for i := base; i <= base+10; i++ {
				es = append(es, entry(LSN(i), byte(i), 20))
			}
			mustFlush(t, c, es, true)
		}
		mustFlush(t, c, []*PendingEntry{entry(100, 100, 100)}, true)
		if m, ok := c.MinLSN(); !ok || m != 10 {
			t.Fatalf("MinLSN %d %v, want 10", m, ok)
		}
	})
}
