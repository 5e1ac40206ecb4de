package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// logAPI is what a Coordinator and a log of a Set both offer: the set's
// logs are held to the Coordinator's contract by running the same
// operations against both.
type logAPI interface {
	Append(ctx context.Context, lsn LSN, data []byte) error
	Flush(entries []*PendingEntry, sync bool) (FlushStats, error)
	Read(lsn LSN, dst []byte) ([]byte, error)
	Bounds() (first, last LSN, ok bool, err error)
	Replay(from LSN, fn func(LSN, []byte) error) error
	DeleteBefore(lsn LSN) error
	TruncateAfter(lsn LSN) error
	SetUserRecord(b []byte) error
	UserRecord() []byte
}

var (
	_ logAPI = (*Coordinator)(nil)
	_ logAPI = (*Log)(nil)
)

func openSetT(t *testing.T, cfg Config) *Set {
	t.Helper()
	s, err := OpenSet(cfg)
	if err != nil {
		t.Fatalf("OpenSet: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// lmodel is one log as the contract says it must read: its live entries
// in write order (LSNs ascend) and its user record.
type lmodel struct {
	ents  []replayed
	next  LSN
	floor LSN // DeleteBefore's: no entry below it is ever live again
	user  []byte
}

func (m *lmodel) write(lo LSN, data []string) {
	for i, d := range data {
		if lo+LSN(i) >= m.floor {
			m.ents = append(m.ents, replayed{lo + LSN(i), d})
		}
	}
	m.next = lo + LSN(len(data))
}

func (m *lmodel) deleteBefore(x LSN) {
	m.ents = slices.DeleteFunc(m.ents, func(r replayed) bool { return r.lsn < x })
	m.floor = max(m.floor, x)
}

// truncateAfter: nothing above x changes nothing; nothing left at or
// below x leaves the log as new (DeleteBefore's floor goes too).
func (m *lmodel) truncateAfter(x LSN) {
	if len(m.ents) == 0 || m.ents[len(m.ents)-1].lsn <= x {
		return
	}
	if m.ents[0].lsn > x {
		m.floor = 0
	}
	m.ents = slices.DeleteFunc(m.ents, func(r replayed) bool { return r.lsn > x })
	if x < math.MaxUint64 {
		m.next = min(m.next, x+1)
	}
}

// checkLog compares l with m: Bounds, a Replay from a random LSN, Reads of
// live and dead LSNs, the user record.
func checkLog(t *testing.T, rng *rand.Rand, what string, l logAPI, m *lmodel) {
	t.Helper()
	first, last, ok, err := l.Bounds()
	if err != nil {
		t.Fatalf("%s: Bounds: %v", what, err)
	}
	wantOK := len(m.ents) > 0
	if ok != wantOK || (ok && (first != m.ents[0].lsn || last != m.ents[len(m.ents)-1].lsn)) {
		t.Fatalf("%s: Bounds %d..%d %v, want %v of %d entries", what, first, last, ok, wantOK, len(m.ents))
	}
	from := LSN(0)
	if len(m.ents) > 0 {
		from = m.ents[rng.IntN(len(m.ents))].lsn
	}
	var got []replayed
	if err := l.Replay(from, func(lsn LSN, b []byte) error {
		got = append(got, replayed{lsn, string(b)})
		return nil
	}); err != nil {
		t.Fatalf("%s: Replay(%d): %v", what, from, err)
	}
	want := slices.DeleteFunc(slices.Clone(m.ents), func(r replayed) bool { return r.lsn < from })
	if !slices.Equal(got, want) {
		t.Fatalf("%s: Replay(%d) gave %d entries %v..., want %d %v...", what, from, len(got), head(got), len(want), head(want))
	}
	live := map[LSN]string{}
	for _, r := range m.ents {
		live[r.lsn] = r.data
	}
	lo := LSN(0)
	if m.next > 8 {
		lo = m.next - 8
	}
	for lsn := lo; lsn < m.next+3; lsn++ {
		b, err := l.Read(lsn, nil)
		d, isLive := live[lsn]
		switch {
		case isLive && (err != nil || string(b) != d):
			t.Fatalf("%s: Read(%d) = %q, %v; want %q", what, lsn, b, err, d)
		case !isLive && !errors.Is(err, ErrNotFound):
			t.Fatalf("%s: Read(%d) of a dead or unwritten LSN = %q, %v; want ErrNotFound", what, lsn, b, err)
		}
	}
	if !bytes.Equal(l.UserRecord(), m.user) {
		t.Fatalf("%s: user record %q, want %q", what, l.UserRecord(), m.user)
	}
}

func head(r []replayed) []replayed { return r[:min(len(r), 4)] }

// TestSetLogsKeepTheCoordinatorContract runs a random workload over many
// logs of one set (small segments: many seals, deletions cutting into
// shared segments, reopens) and checks every log against its model; the
// operations of one log also run on a Coordinator of its own, which must
// read the same.
func TestSetLogsKeepTheCoordinatorContract(t *testing.T) {
	ids := []uint64{0, 1, 7, 1 << 40, math.MaxUint64}
	const twin = 7
	run := func(t *testing.T, cfg, twinCfg Config, steps int) {
		rng := rand.New(rand.NewPCG(5, 9))
		s := openSetT(t, cfg)
		c := openT(t, twinCfg)
		models := map[uint64]*lmodel{}
		for _, id := range ids {
			models[id] = &lmodel{next: 1}
		}
		ctx := context.Background()
		var seals uint64
		rewrites := 0
		for step := range steps {
			id := ids[rng.IntN(len(ids))]
			m := models[id]
			targets := []logAPI{s.Log(id)}
			if id == twin {
				targets = append(targets, c)
			}
			what := fmt.Sprintf("step %d log %d", step, id)
			switch r := rng.IntN(100); {
			case r < 45:
				n := 1 + rng.IntN(6)
				data := make([]string, n)
				for i := range data {
					data[i] = fmt.Sprintf("%d/%d/%s", id, m.next+LSN(i), strings.Repeat("x", rng.IntN(900)))
				}
				for _, l := range targets {
					es := make([]*PendingEntry, n)
					for i, d := range data {
						es[i] = NewAsyncEntry(m.next+LSN(i), []byte(d))
					}
					if _, err := l.Flush(es, true); err != nil {
						t.Fatalf("%s: Flush: %v", what, err)
					}
				}
				m.write(m.next, data)
			case r < 60:
				d := fmt.Sprintf("%d/%d/append", id, m.next)
				for _, l := range targets {
					if err := l.Append(ctx, m.next, []byte(d)); err != nil {
						t.Fatalf("%s: Append: %v", what, err)
					}
				}
				m.write(m.next, []string{d})
			case r < 72:
				x := m.next + 2 - min(m.next, LSN(rng.IntN(12)))
				for _, l := range targets {
					if err := l.DeleteBefore(x); err != nil {
						t.Fatalf("%s: DeleteBefore(%d): %v", what, x, err)
					}
				}
				m.deleteBefore(x)
			case r < 82:
				x := m.next - min(m.next, LSN(rng.IntN(6))+1)
				for _, l := range targets {
					if err := l.TruncateAfter(x); err != nil {
						t.Fatalf("%s: TruncateAfter(%d): %v", what, x, err)
					}
				}
				m.truncateAfter(x)
			case r < 88:
				u := fmt.Appendf(nil, "user %d of log %d", step, id)
				for _, l := range targets {
					if err := l.SetUserRecord(u); err != nil {
						t.Fatalf("%s: SetUserRecord: %v", what, err)
					}
				}
				m.user = u
			case r < 95:
				// A rewrite of the log now, whatever the dead fraction (and
				// beside the background rewriter, when it is on).
				if _, err := s.c.rewriteLog(id); err != nil && !errors.Is(err, errNotRewritable) {
					t.Fatalf("%s: rewrite: %v", what, err)
				}
				rewrites++
			case r < 97:
				seals += s.Stats().Rotations
				if err := s.Close(); err != nil {
					t.Fatalf("%s: Close: %v", what, err)
				}
				s = openSetT(t, cfg)
			}
			checkLog(t, rng, what, s.Log(id), m)
			if id == twin {
				checkLog(t, rng, what+" (own Coordinator)", c, m)
			}
			if step%25 == 0 {
				var holding []uint64
				for _, id := range ids {
					checkLog(t, rng, fmt.Sprintf("step %d, log %d", step, id), s.Log(id), models[id])
					if len(models[id].ents) > 0 || len(models[id].user) > 0 {
						holding = append(holding, id)
					}
				}
				if got := s.Logs(); !slices.Equal(got, holding) {
					t.Fatalf("step %d: Logs() = %v, want %v", step, got, holding)
				}
			}
		}
		if seals += s.Stats().Rotations; seals < 3 {
			t.Fatalf("only %d seals: the workload hardly sealed a segment", seals)
		}
		t.Logf("%d steps, %d seals, %d rewrites", steps, seals, rewrites)
	}
	t.Run("memfs", func(t *testing.T) {
		cfg := Config{FS: memfs.New(4096), SegmentSize: 32 << 10, RewriteDeadFraction: 1}
		twin := Config{FS: memfs.New(4096), SegmentSize: 32 << 10}
		run(t, cfg, twin, 1500)
	})
	t.Run("memfs, background rewrites", func(t *testing.T) {
		// The rewriter moves logs while the workload reads and writes them.
		cfg := Config{FS: memfs.New(4096), SegmentSize: 32 << 10, RewriteDeadFraction: 0.3}
		twin := Config{FS: memfs.New(4096), SegmentSize: 32 << 10}
		run(t, cfg, twin, 1500)
	})
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg, twin := b.config(t), b.config(t)
		cfg.SegmentSize, twin.SegmentSize = 64<<10, 64<<10
		cfg.RewriteDeadFraction = 1
		run(t, cfg, twin, 300)
	})
}

// TestSetSharesTheSyncs: concurrent writers to many logs commit in
// batches that carry entries of several logs (one sync for them all), and
// every entry is where its log says after a reopen.
func TestSetSharesTheSyncs(t *testing.T) {
	cfg := Config{FS: memfs.New(4096)}
	s := openSetT(t, cfg)
	const logs, per = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, logs)
	for id := range uint64(logs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := s.Log(id)
			for lsn := LSN(1); lsn <= per; lsn++ {
				if err := l.Append(context.Background(), lsn, fmt.Appendf(nil, "%d:%d", id, lsn)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Batches >= logs*per {
		t.Fatalf("%d flushes for %d appends: no batch carried two logs", st.Batches, logs*per)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSetT(t, cfg)
	if got := s.Logs(); len(got) != logs {
		t.Fatalf("Logs() after reopen: %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for id := range uint64(logs) {
		m := &lmodel{next: 1}
		for lsn := LSN(1); lsn <= per; lsn++ {
			m.write(lsn, []string{fmt.Sprintf("%d:%d", id, lsn)})
		}
		checkLog(t, rng, fmt.Sprintf("log %d", id), s.Log(id), m)
	}
	t.Logf("%d appends over %d logs in %d flushes", logs*per, logs, st.Batches)
}

// TestSetFailedBatchFailsEveryLog: a failed write fails the entries of
// every log in the batch, and none of them is read or replayed, before or
// after a reopen; the other logs' acknowledged entries stay.
func TestSetFailedBatchFailsEveryLog(t *testing.T) {
	mem := memfs.New(4096)
	efs := errorfs.New(mem, nil)
	cfg := Config{FS: efs}
	s := openSetT(t, cfg)
	for id := range uint64(4) {
		if _, err := s.Log(id).Flush([]*PendingEntry{NewAsyncEntry(1, []byte("kept"))}, true); err != nil {
			t.Fatal(err)
		}
	}
	efs.SetInjector(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)))
	// Four logs' entries in one group commit: Appends race into one batch.
	var wg sync.WaitGroup
	failed := make([]error, 4)
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed[id] = s.Log(uint64(id)).Append(context.Background(), 2, []byte("failed"))
		}()
	}
	wg.Wait()
	efs.SetInjector(nil)
	for id, err := range failed {
		if err == nil {
			t.Fatalf("log %d: Append acknowledged through a failed sync", id)
		}
	}
	check := func(when string) {
		for id := range uint64(4) {
			m := &lmodel{next: 2, ents: []replayed{{1, "kept"}}}
			checkLog(t, rand.New(rand.NewPCG(id, 0)), fmt.Sprintf("%s, log %d", when, id), s.Log(id), m)
		}
	}
	check("after the failure")
	s.Close()
	cfg.FS = mem.CrashClone(3)
	s = openSetT(t, cfg)
	check("after a crash")
}

// TestSetBadInput: what a set cannot take is refused with a clear error
// and loses nothing.
func TestSetBadInput(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentSize: 64 << 10, MaxEntrySize: 4096}
	s := openSetT(t, cfg)
	l := s.Log(math.MaxUint64)
	if err := l.Append(context.Background(), math.MaxUint64, []byte("last")); err != nil {
		t.Fatalf("Append of LSN MaxUint64 to log MaxUint64: %v", err)
	}
	if err := l.Append(context.Background(), 1, make([]byte, 4097)); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("an entry over MaxEntrySize: %v, want ErrEntryTooLarge", err)
	}
	if err := l.SetUserRecord(make([]byte, 1<<20+1)); err == nil {
		t.Fatal("a user record over 1 MiB was taken")
	}
	if b, err := l.Read(math.MaxUint64, nil); err != nil || string(b) != "last" {
		t.Fatalf("Read after refused input: %q, %v", b, err)
	}
	// A directory holding a set is not a Coordinator's.
	if c, err := Open(cfg); err == nil {
		c.Close()
		t.Fatal("Open took a set's directory")
	} else if !errors.Is(err, ErrLocked) {
		t.Logf("Open while the set is open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := Open(cfg); err == nil {
		c.Close()
		t.Fatal("Open took a set's directory")
	} else if !errors.Is(err, ErrUnsupportedFormat) && !strings.Contains(err.Error(), "set") {
		t.Fatalf("Open of a set's directory: %v, want an error saying it holds a set", err)
	}
	if err := l.Append(context.Background(), 2, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append on a closed set: %v, want ErrClosed", err)
	}
	s = openSetT(t, cfg)
	if b, err := s.Log(math.MaxUint64).Read(math.MaxUint64, nil); err != nil || string(b) != "last" {
		t.Fatalf("after reopen: %q, %v", b, err)
	}
}

// TestSetOpensACoordinatorsDirectory: a directory written by Open is log
// 0 of the set.
func TestSetOpensACoordinatorsDirectory(t *testing.T) {
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentSize: 32 << 10}
	c := openT(t, cfg)
	m := &lmodel{next: 1}
	for i := range 60 {
		d := fmt.Sprintf("one-log %d %s", i, strings.Repeat("y", 700))
		if err := c.Append(context.Background(), m.next, []byte(d)); err != nil {
			t.Fatal(err)
		}
		m.write(m.next, []string{d})
	}
	if err := c.DeleteBefore(10); err != nil {
		t.Fatal(err)
	}
	m.deleteBefore(10)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s := openSetT(t, cfg)
	rng := rand.New(rand.NewPCG(3, 3))
	checkLog(t, rng, "log 0", s.Log(0), m)
	if err := s.Log(9).Append(context.Background(), 1, []byte("another log")); err != nil {
		t.Fatal(err)
	}
	if got := s.Logs(); !slices.Equal(got, []uint64{0, 9}) {
		t.Fatalf("Logs() = %v", got)
	}
	checkLog(t, rng, "log 0 beside log 9", s.Log(0), m)
}
