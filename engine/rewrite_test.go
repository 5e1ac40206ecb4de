package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
	}
}

// TestPinsNameTheLaggingLogs: Pins says which logs keep the sealed
// segments, and the rewriter leaves (and Pins names) a log whose LSNs do
// not ascend as written, which no rewrite could move keeping its order.
func TestPinsNameTheLaggingLogs(t *testing.T) {
	cfg := Config{FS: memfs.New(4096), SegmentSize: 32 << 10, RewriteDeadFraction: 0.3}
	s := openSetT(t, cfg)
	ctx := context.Background()
	unordered, busy := s.Log(5), s.Log(6)
	for lsn := LSN(1); lsn <= 600; lsn++ {
		if lsn%10 == 0 {
			// LSNs 1000, 1, 1001, 2, ...: every batch's range overlaps another's.
			u := LSN(lsn / 10)
			if u%2 == 0 {
				u += 1000
			}
			if err := unordered.Append(ctx, u, []byte(lagData(u))); err != nil {
				t.Fatal(err)
			}
		}
		if err := busy.Append(ctx, lsn, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if lsn%20 == 0 {
			if err := busy.DeleteBefore(lsn - 10); err != nil {
				t.Fatal(err)
			}
		}
	}
	var pins []Pin
	waitFor(t, "the unordered log is not named as not rewritable", func() bool {
		pins = s.Pins()
		return len(pins) > 0 && pins[0].NotRewritable != ""
	})
	p := pins[0]
	if p.Log != 5 || p.Segments < 10 || p.SoleSegments < p.Segments-2 || p.LiveEntries < 55 || p.LiveEntries > 60 {
		t.Fatalf("Pins()[0] = %+v, want log 5 alone in many segments, its sealed entries live", p)
	}
	if d := s.DeadFraction(); d < 0.5 {
		t.Fatalf("dead fraction %.2f, want most of the sealed bytes dead", d)
	}
	if s.Stats().Rewrites != 0 {
		t.Fatalf("%d rewrites of a log that cannot be rewritten", s.Stats().Rewrites)
	}
	t.Logf("pins %+v; dead fraction %.2f", pins, s.DeadFraction())
}

// TestSpaceBoundedWithALaggingLog: one log stops deleting (it only
// appends, one entry per ten of the other's) while another deletes as it
// goes. Without rewrites every segment keeps one entry of the lagging log
// and the disk grows with what was written; with them the segments in use
// stay bounded, and the lagging log reads the same throughout.
func TestSpaceBoundedWithALaggingLog(t *testing.T) {
	run := func(t *testing.T, fraction float64) (maxSegs, segs int, st Stats) {
		cfg := Config{FS: memfs.New(4096), SegmentSize: 32 << 10, RewriteDeadFraction: fraction}
		s := openSetT(t, cfg)
		ctx := context.Background()
		lag, busy := s.Log(1), s.Log(2)
		m := &lmodel{next: 1}
		rng := rand.New(rand.NewPCG(1, 1))
		for lsn := LSN(1); lsn <= 4000; lsn++ {
			if lsn%10 == 0 {
				d := lagData(m.next)
				if err := lag.Append(ctx, m.next, []byte(d)); err != nil {
					t.Fatal(err)
				}
				m.write(m.next, []string{d})
			}
			if err := busy.Append(ctx, lsn, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			if lsn%20 == 0 {
				if err := busy.DeleteBefore(lsn - 10); err != nil {
					t.Fatal(err)
				}
			}
			if lsn%100 == 0 {
				maxSegs = max(maxSegs, len(s.c.idx.ids()))
				if testing.Verbose() && fraction < 1 {
					t.Logf("at %d: %d segments, dead %.2f, %d rewrites", lsn, len(s.c.idx.ids()), s.DeadFraction(), s.Stats().Rewrites)
				}
				checkLog(t, rng, fmt.Sprintf("lagging log at %d, %d rewrites", lsn, s.Stats().Rewrites), lag, m)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		st = s.Stats()
		s = openSetT(t, cfg)
		checkLog(t, rng, "lagging log after a reopen", s.Log(1), m)
		return maxSegs, len(s.c.idx.ids()), st
	}
	noneMax, none, _ := run(t, 1)
	withMax, with, st := run(t, 0)
	t.Logf("segments in use (32 KiB each) while 4000 x 1000 B + 400 x 230 B are written: at most %d without rewrites (%d at the end), at most %d with them (%d at the end); %d rewrites copied %d entries",
		noneMax, none, withMax, with, st.Rewrites, st.RewrittenEntries)
	if st.Rewrites == 0 || none < 100 {
		t.Fatalf("the workload did not pin the disk: %d segments without rewrites, %d rewrites", none, st.Rewrites)
	}
	if withMax > none/4 || with > 30 {
		t.Fatalf("with rewrites the disk still grew: at most %d segments, %d without rewrites", withMax, none)
	}
}

// TestRewriteUnderReaders: readers Read, Replay and Bound the lagging log
// without pause while rewrites move it and its old segments go: every
// acknowledged entry is found every time (a lookup's snapshot must never
// see the originals deleted before it can see their copies, nor miss an
// entry whose segment went under it).
func TestRewriteUnderReaders(t *testing.T) {
	cfg := Config{FS: memfs.New(4096), SegmentSize: 32 << 10}
	s := openSetT(t, cfg)
	ctx := context.Background()
	lag, busy := s.Log(1), s.Log(2)
	var mu sync.Mutex
	last := LSN(0) // the lagging log holds 1..last
	stop := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := last
				mu.Unlock()
				if n == 0 {
					continue
				}
				var err error
				switch r {
				case 0:
					lsn := 1 + LSN(rng.Uint64N(uint64(n)))
					var b []byte
					if b, err = lag.Read(lsn, nil); err == nil && string(b) != lagData(lsn) {
						err = fmt.Errorf("Read(%d) = %q", lsn, b)
					}
				case 1:
					next := LSN(1)
					err = lag.Replay(1, func(l LSN, b []byte) error {
						if l != next || string(b) != lagData(l) {
							return fmt.Errorf("Replay gave %d %q, want %d", l, b, next)
						}
						next++
						return nil
					})
					if err == nil && next <= n {
						err = fmt.Errorf("Replay ended at %d, want at least %d", next-1, n)
					}
				case 2:
					first, l, ok, e := lag.Bounds()
					if err = e; err == nil && (!ok || first != 1 || l < n) {
						err = fmt.Errorf("Bounds %d..%d %v, want 1..>=%d", first, l, ok, n)
					}
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		}()
	}
	for lsn := LSN(1); lsn <= 3000 && len(errs) == 0; lsn++ {
		if lsn%10 == 0 {
			mu.Lock()
			l := last + 1
			mu.Unlock()
			if err := lag.Append(ctx, l, []byte(lagData(l))); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			last = l
			mu.Unlock()
		}
		if err := busy.Append(ctx, lsn, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if lsn%20 == 0 {
			if err := busy.DeleteBefore(lsn - 10); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.Stats().Rewrites < 3 {
		t.Fatalf("%d rewrites: the readers never raced one", s.Stats().Rewrites)
	}
	t.Logf("%d rewrites, %d entries copied", s.Stats().Rewrites, s.Stats().RewrittenEntries)
}

func lagData(l LSN) string { return fmt.Sprintf("lag %d %s", l, strings.Repeat("l", 200)) }
