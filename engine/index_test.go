package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// indexData is entry lsn's bytes: its length and content both depend on
// the LSN, so a read that returns another entry's bytes is caught.
func indexData(lsn LSN) []byte {
	n := 1 + int(lsn*7919%300)
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(uint64(lsn)*31 + uint64(i))
	}
	return d
}

// flushRange writes LSN lo..hi in batches of per entries.
func flushRange(t *testing.T, c *Coordinator, lo, hi LSN, per int) {
	t.Helper()
	for l := lo; l <= hi; {
		var es []*PendingEntry
		for i := 0; i < per && l <= hi; i++ {
			es = append(es, NewAsyncEntry(l, indexData(l)))
			l++
		}
		mustFlush(t, c, es, true)
	}
}

// checkReads reads every LSN of lo..hi (each must hold indexData) and the
// LSNs just outside (each must give ErrNotFound).
func checkReads(t *testing.T, c *Coordinator, lo, hi LSN) {
	t.Helper()
	var buf []byte
	for l := lo; l <= hi; l++ {
		got, err := c.Read(l, buf[:0])
		if err != nil {
			t.Fatalf("Read(%d): %v", l, err)
		}
		if !bytes.Equal(got, indexData(l)) {
			t.Fatalf("Read(%d): %d bytes, not the entry written", l, len(got))
		}
		buf = got
	}
	for _, l := range []LSN{lo - 1, hi + 1, hi + 1000} {
		if l == 0 && lo == 0 {
			continue
		}
		if _, err := c.Read(l, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Read(%d) outside %d..%d: %v, want ErrNotFound", l, lo, hi, err)
		}
	}
	first, last, ok, err := c.Bounds()
	if err != nil || !ok || first != lo || last != hi {
		t.Fatalf("Bounds = %d, %d, %v, %v; want %d, %d", first, last, ok, err, lo, hi)
	}
}

// Every entry reads back by LSN, across batches of several sizes and many
// segments, with and without the cache and a cipher, before and after a
// reopen (where the index is rebuilt by the scan); a missing LSN gives
// ErrNotFound.
func TestReadByLSN(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cache  int
		cipher bool
	}{{"plain", 0, false}, {"cache", 64 << 10, false}, {"cipher", 0, true}, {"cipher+cache", 64 << 10, true}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memfs.New(4096)
			cfg := Config{FS: mem, SegmentSize: 64 << 10, SegmentsToRetain: RetainAll, ReadCacheBytes: tc.cache}
			if tc.cipher {
				ciph, err := NewAESGCM(make([]byte, 32))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Cipher = ciph
			}
			c := openT(t, cfg)
			if _, _, ok, err := c.Bounds(); ok || err != nil {
				t.Fatalf("empty log: Bounds ok=%v err=%v", ok, err)
			}
			if _, err := c.Read(1, nil); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Read of an empty log: %v, want ErrNotFound", err)
			}
			flushRange(t, c, 1, 300, 1)
			flushRange(t, c, 301, 700, 64)
			flushRange(t, c, 701, 1000, 7)
			checkReads(t, c, 1, 1000)
			if n := len(c.Segments()); n < 3 {
				t.Fatalf("only %d sealed segments: the test should span several", n)
			}
			c.Close()
			c = openT(t, cfg)
			checkReads(t, c, 1, 1000)
			flushRange(t, c, 1001, 1100, 3)
			checkReads(t, c, 1, 1100)
		})
	}
}

// The cache serves what was just written: a read of the latest batch
// costs no read from the segment file.
func TestReadCacheServesRecentBatches(t *testing.T) {
	mem := memfs.New(4096)
	c := openT(t, Config{FS: mem, ReadCacheBytes: 1 << 20})
	if _, _, _, err := c.Bounds(); err != nil {
		t.Fatal(err)
	}
	flushRange(t, c, 1, 64, 64)
	for l := LSN(1); l <= 64; l++ {
		if _, err := c.Read(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.rd.mu.Lock()
	opened := len(c.rd.m)
	c.rd.mu.Unlock()
	if opened != 0 {
		t.Fatalf("%d read handles opened: the cached batch was read from disk", opened)
	}
	c2 := openT(t, Config{FS: memfs.New(4096)})
	flushRange(t, c2, 1, 64, 64)
	if _, err := c2.Read(5, nil); err != nil {
		t.Fatal(err)
	}
	c2.rd.mu.Lock()
	opened = len(c2.rd.m)
	c2.rd.mu.Unlock()
	if opened != 1 {
		t.Fatalf("without a cache %d read handles opened, want 1", opened)
	}
}

// LSNs that do not increase across batches still read back (the index
// falls back to a scan of every batch, newest first).
func TestReadUnorderedLSNs(t *testing.T) {
	c := openT(t, Config{FS: memfs.New(4096), SegmentSize: 32 << 10, SegmentsToRetain: RetainAll})
	rng := rand.New(rand.NewPCG(7, 7))
	perm := rng.Perm(500)
	for i := 0; i < len(perm); i += 5 {
		var es []*PendingEntry
		for _, p := range perm[i : i+5] {
			es = append(es, NewAsyncEntry(LSN(p+1), indexData(LSN(p+1))))
		}
		mustFlush(t, c, es, true)
	}
	checkReads(t, c, 1, 500)
	c.idx.mu.RLock()
	ordered := c.idx.logs[0].ordered
	c.idx.mu.RUnlock()
	if ordered {
		t.Fatal("shuffled LSNs left the index ordered")
	}
}

// Reads run concurrently with Appends (as Raft's replication goroutines
// read while its main loop appends) and always see every acknowledged
// entry with its own bytes.
func TestReadConcurrentWithAppend(t *testing.T) {
	c := openT(t, Config{FS: memfs.New(4096), SegmentSize: 128 << 10, SegmentsToRetain: RetainAll, ReadCacheBytes: 32 << 10})
	if _, _, _, err := c.Bounds(); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var acked atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for l := LSN(1); l <= n; l++ {
			if err := c.Append(context.Background(), l, indexData(l)); err != nil {
				t.Error(err)
				return
			}
			acked.Store(uint64(l))
		}
	}()
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			var buf []byte
			for acked.Load() < n {
				top := acked.Load()
				if top == 0 {
					continue
				}
				l := LSN(1 + rng.Uint64N(top))
				got, err := c.Read(l, buf[:0])
				if err != nil || !bytes.Equal(got, indexData(l)) {
					errs <- fmt.Errorf("Read(%d) with %d acknowledged: %v (%d bytes)", l, top, err, len(got))
					return
				}
				buf = got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkReads(t, c, 1, n)
}

// A segment removed by retention is gone for Read too.
func TestReadAfterRetention(t *testing.T) {
	c := openT(t, Config{FS: memfs.New(4096), SegmentSize: 50, SegmentsToRetain: 2})
	if _, _, _, err := c.Bounds(); err != nil {
		t.Fatal(err)
	}
	flushRange(t, c, 1, 10, 1) // one segment per entry
	for l := LSN(1); l <= 7; l++ {
		if _, err := c.Read(l, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Read(%d) of a retired segment: %v, want ErrNotFound", l, err)
		}
	}
	checkReads(t, c, 8, 10)
}

// With the index built and the cache on, Append still allocates nothing
// per entry.
func TestAppendIndexedAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this test again without it)")
	}
	cfg := DefaultConfig(t.TempDir())
	cfg.Backend = BackendFallback
	cfg.SyncOnFlush = false
	cfg.ReadCacheBytes = 1 << 20
	c := openT(t, cfg)
	if _, _, _, err := c.Bounds(); err != nil {
		t.Fatal(err)
	}
	allocs, last := appendAllocs(t, c)
	if allocs > 0.1 {
		t.Fatalf("%.2f allocations per Append with the index and cache", allocs)
	}
	if _, err := c.Read(last, nil); err != nil {
		t.Fatal(err)
	}
}

// Read works on every real backend this machine runs (O_DIRECT reads
// through io_uring where it runs), before and after a reopen, and a
// closed log answers ErrClosed.
func TestReadByLSNBackends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 64 << 10
		cfg.SegmentsToRetain = RetainAll
		c := openT(t, cfg)
		flushRange(t, c, 1, 400, 13)
		checkReads(t, c, 1, 400)
		if err := c.TruncateAfter(350); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteBefore(20); err != nil {
			t.Fatal(err)
		}
		flushRange(t, c, 351, 420, 5)
		checkReads(t, c, 20, 420)
		c.Close()
		if _, err := c.Read(30, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after Close: %v, want ErrClosed", err)
		}
		c = openT(t, cfg)
		checkReads(t, c, 20, 420)
	})
}

// A batch read from disk is cached too: reading its entries one after
// another (a follower catching up on old entries, after a reopen here, so
// nothing was cached by the writes) reads the device once per batch.
func TestReadCacheKeepsBatchesRead(t *testing.T) {
	var reads atomic.Int32
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpRead && op.Offset > 0 && strings.HasSuffix(op.Name, segment.Suffix) {
			reads.Add(1) // a batch read (offset 0 is the header)
		}
		return nil
	})
	mem := memfs.New(4096)
	cfg := Config{FS: errorfs.New(mem, inj), ReadCacheBytes: 1 << 20}
	c := openT(t, cfg)
	flushRange(t, c, 1, 256, 64) // 4 batches of 64
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openT(t, cfg)
	if _, _, _, err := c.Bounds(); err != nil { // builds the index (its own scan)
		t.Fatal(err)
	}
	before := reads.Load()
	for l := LSN(1); l <= 256; l++ {
		if _, err := c.Read(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := reads.Load() - before; got != 4 {
		t.Fatalf("%d batch reads for 256 entries in 4 batches, want 4", got)
	}
}
