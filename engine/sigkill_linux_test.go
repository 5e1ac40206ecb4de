package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/uring"
)

// The SIGKILL loop: a child process (this test binary, re-executed) opens a
// directory on the real disk and appends durably, printing each
// acknowledged LSN on a pipe once the call returned; the parent kills it
// with SIGKILL at a random moment, reopens the directory and checks that
// every acknowledged LSN replays with its bytes and that the log is
// contiguous from LSN 1. The child continues from what it recovered, so
// every round also runs recovery after a kill (and some kills land inside
// it). Run for each real backend.

const (
	sigkillEnvDir     = "DWAL_TEST_SIGKILL_DIR"
	sigkillEnvBackend = "DWAL_TEST_SIGKILL_BACKEND"
	sigkillEnvSeed    = "DWAL_TEST_SIGKILL_SEED"
	sigkillRounds     = 30 // kills per backend
)

// sigkillSize is the payload size of LSN lsn: mostly small, some over a
// 4 KiB block, a few bigger than the child's 64 KiB segments.
func sigkillSize(lsn LSN) int {
	switch h := uint64(lsn) * 0x9e3779b97f4a7c15 >> 40; {
	case h%50 == 0:
		return 70<<10 + int(h%(10<<10))
	case h%5 == 0:
		return 4000 + int(h%6000)
	default:
		return int(h % 400)
	}
}

func sigkillConfig(dir, backend string) Config {
	cfg := DefaultConfig(dir)
	cfg.Backend = BackendFallback
	if backend == "io_uring" {
		cfg.Backend = BackendUring
	}
	cfg.SegmentSize = 64 << 10 // rotations
	cfg.SegmentsToRetain = 1 << 20
	return cfg
}

func TestSIGKILL(t *testing.T) {
	if dir := os.Getenv(sigkillEnvDir); dir != "" {
		sigkillChild(dir, os.Getenv(sigkillEnvBackend), os.Getenv(sigkillEnvSeed))
		return
	}
	if testing.Short() {
		t.Skip("kills child processes on the real disk")
	}
	backends := []string{"fallback"}
	if err := uring.Probe(t.TempDir()); err == nil {
		backends = append(backends, "io_uring")
	} else {
		t.Logf("io_uring backend not tested here: %v", err)
	}
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { sigkillLoop(t, b) })
	}
}

// sigkillChild is the child's side: open, continue after the highest LSN
// recovered, append forever (the parent kills it), printing "start" before
// Open, "open N" after it (N: the first LSN it will write) and "ack N" for
// every LSN acknowledged as durable.
func sigkillChild(dir, backend, seedStr string) {
	seed, _ := strconv.ParseUint(seedStr, 10, 64)
	rng := rand.New(rand.NewPCG(seed, 0x5191))
	say := func(format string, args ...any) {
		// One write(2) per line: the parent sees each ack once it is made.
		os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "CHILD-FAIL: "+format+"\n", args...)
		os.Exit(2)
	}
	say("start")
	c, err := Open(sigkillConfig(dir, backend))
	if err != nil {
		fail("Open: %v", err)
	}
	next := LSN(1)
	for _, s := range c.Segments() {
		next = max(next, s.Meta.MaxLSN+1)
	}
	say("open %d", next)
	deadline := time.Now().Add(30 * time.Second) // the parent kills long before
	for time.Now().Before(deadline) {
		switch u := rng.IntN(10); {
		case u < 5:
			if err := c.Append(context.Background(), next, crashData(next, sigkillSize(next))); err != nil {
				fail("Append(%d): %v", next, err)
			}
			say("ack %d", next)
			next++
		default:
			// A batch, synced or not: unsynced ones are not acknowledged,
			// but the log must stay contiguous through them.
			n := 1 + rng.IntN(8)
			sync := u < 8
			es := make([]*PendingEntry, n)
			for i := range es {
				l := next + LSN(i)
				es[i] = NewAsyncEntry(l, crashData(l, sigkillSize(l)))
			}
			if _, err := c.Flush(es, sync); err != nil {
				fail("Flush(%d..%d): %v", next, next+LSN(n)-1, err)
			}
			if sync {
				for i := range n {
					say("ack %d", next+LSN(i))
				}
			}
			next += LSN(n)
		}
	}
	fail("not killed within 30s")
}

func sigkillLoop(t *testing.T, backend string) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	var maxAcked LSN
	acks, inOpen := 0, 0
	start := time.Now()
	for round := range sigkillRounds {
		seed := rng.Uint64()
		cmd := exec.Command(self, "-test.run=^TestSIGKILL$", "-test.count=1")
		cmd.Env = append(os.Environ(), sigkillEnvDir+"="+dir, sigkillEnvBackend+"="+backend,
			sigkillEnvSeed+"="+strconv.FormatUint(seed, 10))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started, opened := make(chan struct{}), make(chan struct{})
		type result struct {
			acked   []LSN
			opened  bool
			first   LSN
			badLine string
		}
		done := make(chan result, 1)
		go func() {
			var r result
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "start":
					close(started)
				case strings.HasPrefix(line, "open "):
					n, _ := strconv.ParseUint(line[5:], 10, 64)
					r.opened, r.first = true, LSN(n)
					close(opened)
				case strings.HasPrefix(line, "ack "):
					n, err := strconv.ParseUint(line[4:], 10, 64)
					if err != nil && r.badLine == "" {
						r.badLine = line
					}
					r.acked = append(r.acked, LSN(n))
				}
			}
			done <- r
		}()
		// One kill in four is timed from the child's start, to land in its
		// Open (recovery) now and then; the others from the end of its Open.
		from := opened
		if rng.IntN(4) == 0 {
			from = started
		}
		select {
		case <-from:
		case r := <-done:
			cmd.Wait()
			t.Fatalf("round %d: child ended before it was killed (%d acks):\n%s", round, len(r.acked), stderr.String())
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start: %s", round, stderr.String())
		}
		delay := time.Duration(5+rng.IntN(46)) * time.Millisecond
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		r := <-done
		werr := cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v), not by SIGKILL:\n%s", round, werr, stderr.String())
		}
		if r.badLine != "" {
			t.Fatalf("round %d: bad ack line %q", round, r.badLine)
		}
		if !r.opened {
			inOpen++
		} else if r.first != maxAcked+1 {
			t.Fatalf("round %d: child continued at LSN %d, but the log ended at LSN %d", round, r.first, maxAcked)
		}
		for _, l := range r.acked {
			maxAcked = max(maxAcked, l)
		}
		acks += len(r.acked)

		// Reopen in the parent: every acknowledged LSN replays with its
		// bytes, and the log is LSN 1, 2, 3, ... without a gap.
		c, err := Open(sigkillConfig(dir, backend))
		if err != nil {
			t.Fatalf("round %d (killed after %v): Open: %v", round, delay, err)
		}
		want := LSN(1)
		err = c.Replay(0, func(l LSN, b []byte) error {
			if l != want {
				return fmt.Errorf("replayed LSN %d where LSN %d was due", l, want)
			}
			if !bytes.Equal(b, crashData(l, sigkillSize(l))) {
				return fmt.Errorf("LSN %d replayed with the wrong %d bytes", l, len(b))
			}
			want++
			return nil
		})
		repairs := c.Recovery().Repairs
		c.Close()
		if err != nil {
			t.Fatalf("round %d (killed after %v, recovery %q): %v", round, delay, repairs, err)
		}
		if last := want - 1; last < maxAcked {
			t.Fatalf("round %d (killed after %v, recovery %q): log ends at LSN %d, but LSN %d was acknowledged",
				round, delay, repairs, last, maxAcked)
		}
		// The next child continues after what replays (it may hold
		// unacknowledged LSNs beyond maxAcked): count them as taken.
		maxAcked = max(maxAcked, want-1)
	}
	t.Logf("%s: %d SIGKILLs (%d during the child's Open), %d acknowledged LSNs, log of %d LSNs, in %v",
		backend, sigkillRounds, inOpen, acks, maxAcked, time.Since(start).Round(time.Millisecond))
}
