package engine

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
)

// backend is one way of opening a Coordinator for a test.
type backend struct {
	name string
	// config returns a Config for a fresh directory (or FS).
	config func(t *testing.T) Config
	// realDir reports whether Config.Dir holds the files (os calls work).
	realDir bool
}

// testBackends lists every backend this machine can run.
func testBackends(t *testing.T) []backend {
	t.Helper()
	bs := []backend{{
		name: "fallback",
		config: func(t *testing.T) Config {
			c := DefaultConfig(t.TempDir())
			c.Backend = BackendFallback
			return c
		},
		realDir: true,
	}}
	bs = append(bs, extraBackends(t)...)
	return bs
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range testBackends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func openT(t *testing.T, cfg Config) *Coordinator {
	t.Helper()
	c, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func entry(lsn LSN, b byte, n int) *PendingEntry {
	d := make([]byte, n)
	for i := range d {
		d[i] = b
	}
	return NewAsyncEntry(lsn, d)
}

func mustFlush(t *testing.T, c *Coordinator, es []*PendingEntry, sync bool) FlushStats {
	t.Helper()
	st, err := c.Flush(es, sync)
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return st
}

// logIDs lists the IDs of the .log files in dir (straight from the OS).
func logIDs(t *testing.T, dir string) []uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, e := range ents {
		if id, ok := segment.ParseID(e.Name(), segment.Suffix); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// span is the on-disk size of a one-entry batch of n payload bytes with the
// default alignment: the byte counts of the seed's tests come from its 5-byte
// header, ours from this.
func span1(n int) int64 { return int64(segment.BatchSpan(segment.EntryHeaderLen2+n, align.Default)) }

type replayed struct {
	lsn  LSN
	data string
}

func replayAll(t *testing.T, c *Coordinator, from LSN) []replayed {
	t.Helper()
	var out []replayed
	if err := c.Replay(from, func(l LSN, b []byte) error {
		out = append(out, replayed{l, string(b)})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// entryQueue is a Card 1 producer's queue: entries pushed by many
// goroutines, drained by a FlushThread.
type entryQueue struct {
	mu sync.Mutex
	q  []*PendingEntry
}

func (q *entryQueue) push(e *PendingEntry) {
	q.mu.Lock()
	q.q = append(q.q, e)
	q.mu.Unlock()
}

// drain is the FlushThread's drain function.
func (q *entryQueue) drain() []*PendingEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.q
	q.q = nil
	return out
}

// appendAllocs returns the allocations per Append of 128 bytes on c, after
// 100 Appends that fill the pools, and the last LSN appended.
func appendAllocs(t *testing.T, c *Coordinator) (float64, LSN) {
	t.Helper()
	data := make([]byte, 128)
	ctx := context.Background()
	lsn := LSN(0)
	for range 100 {
		lsn++
		c.Append(ctx, lsn, data)
	}
	allocs := testing.AllocsPerRun(500, func() {
		lsn++
		if err := c.Append(ctx, lsn, data); err != nil {
			t.Fatal(err)
		}
	})
	return allocs, lsn
}
