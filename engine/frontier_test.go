package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

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
	var cold []string
	for _, w := range mem.ColdWrites() {
		for _, n := range w.Names {
			if strings.HasSuffix(n, ".log") {
				cold = append(cold, fmt.Sprintf("%v at %d (%d bytes)", w.Names, w.Off, w.Len))
			}
		}
	}
	if len(cold) > 0 {
		t.Fatalf("%d commits landed in never-written blocks, first %s", len(cold), cold[0])
	}
}
