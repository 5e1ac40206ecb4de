package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// Both backends write the same bytes: a directory written through io_uring
// + O_DIRECT opens, replays and continues with the buffered fallback, and
// back again, whichever starts.
func TestCrossBackendReopen(t *testing.T) {
	if err := probeUring(t.TempDir()); err != nil {
		t.Skipf("io_uring backend does not run here: %v", err)
	}
	for _, order := range [][2]BackendKind{{BackendUring, BackendFallback}, {BackendFallback, BackendUring}} {
		t.Run(order[0].String()+"-then-"+order[1].String(), func(t *testing.T) {
			dir := t.TempDir()
			var all []replayed
			lsn := LSN(1)
			// Each phase writes into the directory with one backend and
			// closes it, which seals its active segment (odd phases), or
			// leaves that segment as a crash would, without its .meta
			// (even phases); the next opens it with the other backend and
			// must replay all of it first.
			for phase, kind := range []BackendKind{order[0], order[1], order[0], order[1]} {
				cfg := Config{Dir: dir, Backend: kind, SegmentSize: 64 << 10, SegmentsToRetain: 1000}
				c := openT(t, cfg)
				if got, want := c.Backend().Name, kind.String(); got != want {
					t.Fatalf("phase %d: Backend %q, want %q", phase, got, want)
				}
				if phase > 0 {
					// (A prepared segment io_uring's Close left is a leftover
					// the fallback, which recycles nothing, removes.)
					n := 0
					for _, r := range c.Recovery().Repairs {
						if !strings.HasPrefix(r, "removed leftover ") {
							n++
						}
					}
					if (phase-1)%2 == 0 && n == 0 {
						t.Errorf("phase %d: recovery sealed nothing after a crash-like close", phase)
					} else if (phase-1)%2 == 1 && n != 0 {
						t.Errorf("phase %d: recovery repaired %q after a clean close", phase, c.Recovery().Repairs)
					}
					if got := replayAll(t, c, 0); !slices.Equal(got, all) {
						t.Fatalf("phase %d (%s after %s): replayed %d entries, want %d: %s",
							phase, kind, order[(phase+1)%2], len(got), len(all), firstDiff(got, all))
					}
					checkSealedMeta(t, c, all)
					// Replay from the middle too.
					mid := all[len(all)/2].lsn
					if got := replayAll(t, c, mid); !slices.Equal(got, all[len(all)/2:]) {
						t.Fatalf("phase %d: Replay(%d) gave %d entries, want %d", phase, mid, len(got), len(all)-len(all)/2)
					}
				}
				before := len(logIDs(t, dir))
				all, lsn = writeMixed(t, c, all, lsn, phase)
				if n := len(logIDs(t, dir)) - before; n < 3 {
					t.Fatalf("phase %d wrote %d new segments, want several", phase, n)
				}
				if got := replayAll(t, c, 0); !slices.Equal(got, all) {
					t.Fatalf("phase %d: replay before close: %s", phase, firstDiff(got, all))
				}
				ids := logIDs(t, dir)
				if _, err := os.Stat(filepath.Join(dir, segment.MetaName(ids[len(ids)-1]))); err == nil {
					t.Fatalf("phase %d: the active segment is sealed before Close; the test wants an unsealed one", phase)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("phase %d: Close: %v", phase, err)
				}
				last := ids[len(ids)-1]
				if _, err := os.Stat(filepath.Join(dir, segment.MetaName(last))); err != nil {
					t.Fatalf("phase %d: Close did not seal the active segment: %v", phase, err)
				}
				if phase%2 == 0 {
					unseal(t, cfg, last)
				}
			}
			t.Logf("%d entries in %d segments, through %s and %s twice", len(all), len(logIDs(t, dir)), order[0], order[1])
		})
	}
}

// writeMixed appends to all what it writes through c: synced and unsynced
// flushes of entries from 1 byte to 20 KiB (some batches larger than a
// quarter of the segment), one entry larger than a whole segment, and a few
// group-commit Appends. The last flush leaves the active segment unsealed.
func writeMixed(t *testing.T, c *Coordinator, all []replayed, lsn LSN, phase int) ([]replayed, LSN) {
	t.Helper()
	data := func(l LSN, n int) string {
		p := fmt.Sprintf("p%d-lsn%d-", phase, l)
		return p + strings.Repeat(string(rune('a'+int(l)%26)), max(0, n-len(p)))
	}
	for b := range 40 {
		var es []*PendingEntry
		for i := range 1 + b%4 {
			n := []int{1, 100, 3000, 20000}[(b+i)%4]
			if b == 17 && i == 0 {
				n = 100 << 10 // larger than a segment: a segment of its own
			}
			d := data(lsn, n)
			es = append(es, NewAsyncEntry(lsn, []byte(d)))
			all = append(all, replayed{lsn, d})
			lsn++
		}
		mustFlush(t, c, es, b%3 != 1)
	}
	for range 5 {
		d := data(lsn, 500)
		if err := c.Append(context.Background(), lsn, []byte(d)); err != nil {
			t.Fatalf("Append %d: %v", lsn, err)
		}
		all = append(all, replayed{lsn, d})
		lsn++
	}
	return all, lsn
}

// checkSealedMeta checks that the sealed segments' metadata covers exactly
// the entries of all (right after a reopen every segment is sealed).
func checkSealedMeta(t *testing.T, c *Coordinator, all []replayed) {
	t.Helper()
	var n uint64
	for _, s := range c.Segments() {
		n += s.Meta.EntryCount
	}
	if n != uint64(len(all)) {
		t.Fatalf("sealed segments' .meta count %d entries, want %d", n, len(all))
	}
	if min, ok := c.MinLSN(); !ok || min != all[0].lsn {
		t.Fatalf("MinLSN %d %v, want %d", min, ok, all[0].lsn)
	}
}
