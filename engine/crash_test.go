package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// The seeded crash test. Each seed draws a workload (mixed entry sizes,
// synced and unsynced Flushes, concurrent Appends, rotations, TruncateToLSN,
// close-and-reopen cycles), sometimes with non-crash faults, runs it on
// errorfs(memfs), and cuts the power at a random operation. Then it reopens
// crash clones of what the disk held and checks what replays against what
// the engine acknowledged.
//
// Replay a failure with the command it prints:
//
//	go test ./engine -run 'TestCrash$' -seed N -v
//
// NB: bursts of concurrent Appends are scheduled by the Go runtime, and
// the engine prepares segments in a background goroutine, so a replayed
// seed draws the same workload, faults and crash index, but the crash
// index may land on another op: add -count 100 to try many interleavings.

var (
	crashSeedFlag  = flag.Int64("seed", -1, "TestCrash: run only this seed and log its workload (replays a failure)")
	crashSeedsFlag = flag.Int("crash.seeds", 2000, "TestCrash: number of seeds to run")
)

// crashStatus is what the engine told the caller about an entry.
type crashStatus uint8

const (
	csInFlight crashStatus = iota // handed to the engine, no answer yet
	csAcked                       // durable: Append or Flush(sync=true) returned nil
	csUnsynced                    // Flush(sync=false) returned nil: may be lost, with everything after it
	csFailed                      // an error returned before the crash: must never replay
	csUnknown                     // an error returned after the crash: fate unknown
)

// crashEntry is one entry of the workload. (step, gor, call, pos) places it
// in happens-before order: steps run one after the other; in a step each
// goroutine makes its calls in order; a call's entries form one batch.
type crashEntry struct {
	lsn    LSN
	data   []byte
	step   int
	gor    int
	call   int
	pos    int
	flush  bool // written by Flush (one batch: replayed whole or not at all)
	status crashStatus
}

// crashCall is one Append or Flush.
type crashCall struct {
	append  bool
	sync    bool
	entries []*crashEntry
}

// crashInjector fails every op from index crashAt on (the power is cut
// there), and before that, when faultP > 0, injects non-crash faults on
// segment files at random.
type crashInjector struct {
	crashAt int64
	ops     atomic.Int64
	crashed atomic.Bool

	faultP  float64
	enabled atomic.Bool // non-crash faults on
	mu      sync.Mutex
	rng     *rand.Rand
	faults  map[string]int // non-crash faults by kind
}

func (ci *crashInjector) MaybeError(op errorfs.Op) error {
	i := ci.ops.Add(1) - 1
	if i >= ci.crashAt || ci.crashed.Load() {
		// The process is dead from here on: nothing it does reaches the
		// disk. A plain failure (WriteFail for writes) changes nothing.
		ci.crashed.Store(true)
		return &errorfs.Error{Op: op}
	}
	if ci.faultP == 0 || !ci.enabled.Load() || !isSegmentFile(op.Name) {
		return nil
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.rng.Float64() >= ci.faultP {
		return nil
	}
	var f errorfs.Fault
	var kind string
	switch op.Kind {
	case errorfs.OpWrite:
		switch ci.rng.IntN(4) {
		case 0:
			kind = "write EIO"
		case 1:
			kind, f.Write, f.Sectors = "short write", errorfs.WriteShort, ci.rng.IntN(8)
		case 2:
			kind, f.Write, f.Sectors = "torn write", errorfs.WriteTorn, ci.rng.IntN(8)
		case 3:
			kind, f.Errno = "write ENOSPC", syscall.ENOSPC
		}
	case errorfs.OpWriteSync:
		kind = "linked sync EIO"
	case errorfs.OpSync:
		kind = "sync EIO"
	case errorfs.OpTruncate:
		kind = "truncate EIO"
	case errorfs.OpCreate:
		kind, f.Errno = "create ENOSPC", syscall.ENOSPC
	default:
		return nil
	}
	ci.faults[kind]++
	return &errorfs.Error{Op: op, Fault: f}
}

// isSegmentFile: non-crash faults go to segment files only (under their
// real name or a temporary one: prepared, recycled). None is injected on a
// .meta or .log.end before the crash: the engine documents that when the
// fence that stands for a failed rollback cannot be written either,
// recovery may replay the failed batch.
func isSegmentFile(name string) bool {
	return name != "" && name != segment.LockName && !strings.Contains(name, segment.MetaSuffix) && !strings.Contains(name, segment.FenceSuffix)
}

// crashRun is one seed.
type crashRun struct {
	seed    int64
	rng     *rand.Rand
	mem     *memfs.FS
	efs     *errorfs.FS
	inj     *crashInjector
	cfg     Config
	c       *Coordinator
	entries []*crashEntry // by LSN-1
	starts  []LSN         // first LSN of each completed step
	// maxTrunc is the largest LSN passed to TruncateToLSN (set before the
	// call, which may be cut by the crash): an entry below it may be gone.
	maxTrunc    LSN
	readOnly    bool
	crashInOpen bool
	log         strings.Builder
	pmu         sync.Mutex
	problems    []string // found during the workload
}

func (r *crashRun) problem(format string, args ...any) {
	r.pmu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.pmu.Unlock()
}

// crashStats is what TestCrash reports at the end.
type crashStats struct {
	mu           sync.Mutex
	seeds        int
	states       int
	crashInOpen  int
	crashAtEnd   int
	faults       map[string]int
	acked        int // acknowledged entries checked (summed over states)
	unsyncedKept int
	unsyncedLost int
	failedGone   int // failed entries checked absent
	truncated    int // entries below a TruncateToLSN point, gone
	lost         int // acknowledged entries missing: must be 0
	replayed     int
	failedSeeds  int
}

func TestCrash(t *testing.T) {
	seeds := int64(*crashSeedsFlag)
	first := int64(0)
	if testing.Short() {
		seeds = min(seeds, 200)
	}
	verbose := false
	if *crashSeedFlag >= 0 {
		first, seeds, verbose = *crashSeedFlag, 1, true
	}
	st := &crashStats{faults: map[string]int{}}
	start := time.Now()
	var next atomic.Int64
	next.Store(first)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed := next.Add(1) - 1
				if seed >= first+seeds {
					return
				}
				st.mu.Lock()
				stop := st.failedSeeds >= 3
				st.mu.Unlock()
				if stop {
					return
				}
				runCrashSeed(t, seed, st, verbose)
			}
		}()
	}
	wg.Wait()
	var fb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(st.faults)) {
		fmt.Fprintf(&fb, " %s=%d", k, st.faults[k])
	}
	t.Logf("TestCrash: %d seeds, %d crash states checked (%d crashes inside Open, %d after the workload) in %v",
		st.seeds, st.states, st.crashInOpen, st.crashAtEnd, time.Since(start).Round(time.Millisecond))
	t.Logf("TestCrash: non-crash faults injected:%s", fb.String())
	t.Logf("TestCrash: entries replayed %d; acknowledged entries checked %d, lost %d; unsynced kept %d, lost %d; failed entries checked absent %d; removed by TruncateToLSN %d",
		st.replayed, st.acked, st.lost, st.unsyncedKept, st.unsyncedLost, st.failedGone, st.truncated)
	if st.lost != 0 {
		t.Errorf("TestCrash: %d acknowledged entries lost", st.lost)
	}
}

// crashOpsPerStep sets the range of the crash index: it is drawn below
// steps*crashOpsPerStep. A step costs ~26 FS ops on average (measured over
// 200 seeds, before segments were prepared in the background), so about
// one seed in five crashes after its workload ends.
const crashOpsPerStep = 22

func runCrashSeed(t *testing.T, seed int64, st *crashStats, verbose bool) {
	watchdog := time.AfterFunc(2*time.Minute, func() {
		debug.SetTraceback("all")
		panic(fmt.Sprintf("TestCrash: seed %d hung (replay: go test ./engine -run 'TestCrash$' -seed %d -v)", seed, seed))
	})
	defer watchdog.Stop()

	rng := rand.New(rand.NewPCG(uint64(seed), 0xc0ffee))
	r := &crashRun{seed: seed, rng: rng}
	sector := memfs.DefaultSectorSize
	if rng.IntN(4) == 0 {
		sector = 4096
	}
	// Half the seeds model unwritten extents, so segments are initialised
	// (the preparer's head, the active segment's frontier) under the crashes.
	extents := rng.IntN(2) == 0
	memOpts := []memfs.Option{memfs.WithSectorSize(sector)}
	if extents {
		memOpts = append(memOpts, memfs.WithExtents())
	}
	r.mem = memfs.New(4096, memOpts...)
	steps := 6 + rng.IntN(12)
	r.inj = &crashInjector{
		crashAt: rng.Int64N(int64(steps*crashOpsPerStep) + 1),
		rng:     rand.New(rand.NewPCG(uint64(seed), 0xfa17)),
		faults:  map[string]int{},
	}
	if rng.IntN(3) == 0 {
		r.inj.faultP = []float64{0.01, 0.03, 0.1}[rng.IntN(3)]
	}
	r.efs = errorfs.New(r.mem, r.inj)
	r.cfg = DefaultConfig("crash")
	r.cfg.FS = r.efs
	// Small segments: rotations (after every flush with 1), entries bigger
	// than a segment, and a memfs that stays cheap to clone.
	r.cfg.SegmentSize = []int64{1, 3 * 4096, 16 << 10, 64 << 10}[rng.IntN(4)]
	r.cfg.SegmentsToRetain = 1 << 20 // retention would drop acknowledged entries on purpose
	if rng.IntN(4) == 0 {
		r.cfg.SyncMethod = SyncFdatasync
	}
	if rng.IntN(4) == 0 {
		r.cfg.Cipher = crashCipher // encrypted segments under the same crashes
	}
	fmt.Fprintf(&r.log, "seed %d: %d steps, crash at op %d, sector %d, segment size %d, fault rate %v, encrypted %v, initialised blocks %v\n",
		seed, steps, r.inj.crashAt, sector, r.cfg.SegmentSize, r.inj.faultP, r.cfg.Cipher != nil, extents)

	r.inj.enabled.Store(true)
	if r.open("initial open") {
		for s := 0; s < steps && !r.inj.crashed.Load(); s++ {
			r.step(s)
		}
	}
	atEnd := !r.inj.crashed.Load()
	r.inj.crashed.Store(true) // the power is cut now, if it was not yet
	if r.c != nil {
		r.c.Close() // every op fails: the dead process changes nothing
		r.c = nil
	}
	fmt.Fprintf(&r.log, "crash after %d ops (at end of workload: %v); %s\n", r.inj.ops.Load(), atEnd, r.efs.Report())

	// NB: the clones are taken now rather than inside the injector at the
	// crash op: an op that passed the injector just before the crash may
	// still be running in another goroutine then, and its success would be
	// acknowledged without being in the clone. Every op since the crash
	// failed without changing the memfs (a failed linked sync leaves its
	// write unsynced, as a crash right after that write would), so the
	// memfs now holds exactly what it held at the crash.
	//
	// Two crash states per seed: the default model (a random share of the
	// unsynced ops kept, some torn), then either only the durable state or
	// everything written (a process crash with the page cache intact).
	opts := [][]memfs.CrashOption{nil, {memfs.DropUnsynced()}}
	if seed%2 == 1 {
		opts[1] = []memfs.CrashOption{memfs.KeepUnsynced()}
	}
	var probs []string
	states := 0
	local := crashStats{}
	for k, o := range opts {
		clone := r.mem.CrashClone(seed*int64(len(opts))+int64(k), o...)
		states++
		if p := r.verifyClone(clone, &local); len(p) > 0 {
			probs = append(probs, fmt.Sprintf("crash clone %d (seed %d, %d problems):\n  %s\ncrash report:\n%s",
				k, seed*int64(len(opts))+int64(k), len(p), strings.Join(p, "\n  "), clone.CrashReport()))
			break
		}
	}
	probs = append(r.problems, probs...)
	st.mu.Lock()
	st.seeds++
	st.states += states
	if r.crashInOpen {
		st.crashInOpen++
	}
	if atEnd {
		st.crashAtEnd++
	}
	r.inj.mu.Lock()
	for k, n := range r.inj.faults {
		st.faults[k] += n
	}
	r.inj.mu.Unlock()
	st.acked += local.acked
	st.unsyncedKept += local.unsyncedKept
	st.unsyncedLost += local.unsyncedLost
	st.failedGone += local.failedGone
	st.truncated += local.truncated
	st.lost += local.lost
	st.replayed += local.replayed
	if len(probs) > 0 {
		st.failedSeeds++
	}
	st.mu.Unlock()
	if verbose {
		t.Logf("workload:\n%s", r.log.String())
	}
	if len(probs) > 0 {
		t.Errorf("TestCrash seed %d failed; replay: go test ./engine -run 'TestCrash$' -seed %d -v (add -count 100: interleavings vary)\n%s\nworkload:\n%s",
			seed, seed, strings.Join(probs, "\n"), r.log.String())
	}
}

// open opens r.c, retrying when a non-crash fault failed Open. It reports
// false when the process crashed (or Open cannot succeed).
func (r *crashRun) open(why string) bool {
	for try := 0; ; try++ {
		c, err := Open(r.cfg)
		if err == nil {
			r.c = c
			r.readOnly = false
			return true
		}
		fmt.Fprintf(&r.log, "  %s: Open: %v\n", why, err)
		if r.inj.crashed.Load() {
			r.crashInOpen = true
			return false
		}
		if try == 2 {
			r.inj.enabled.Store(false)
		}
		if try == 4 {
			r.problem("%s: Open fails without a crash: %v", why, err)
			return false
		}
	}
}

// crashData is the content of the entry with this LSN: its LSN first (so a
// misplaced entry is caught) then a pattern derived from it.
func crashData(lsn LSN, n int) []byte {
	d := make([]byte, n)
	var x [8]byte
	binary.LittleEndian.PutUint64(x[:], uint64(lsn))
	for i := range d {
		if i < 8 {
			d[i] = x[i]
		} else {
			d[i] = byte(uint64(lsn)*131 + uint64(i)*7 + uint64(i>>9))
		}
	}
	return d
}

func (r *crashRun) entrySize() int {
	switch u := r.rng.IntN(100); {
	case u < 10:
		return r.rng.IntN(9) // 0..8 bytes, empty included
	case u < 70:
		return r.rng.IntN(300)
	case u < 95:
		return 300 + r.rng.IntN(4000)
	default:
		return 8<<10 + r.rng.IntN(12<<10) // 8..20 KiB: bigger than a tiny segment
	}
}

func (r *crashRun) newCall(step, gor, call int, isAppend bool) *crashCall {
	cl := &crashCall{append: isAppend, sync: true}
	n := 1
	if !isAppend {
		n = 1 + r.rng.IntN(5)
		cl.sync = r.rng.IntN(3) != 0
	}
	for pos := range n {
		lsn := LSN(len(r.entries) + 1)
		e := &crashEntry{lsn: lsn, data: crashData(lsn, r.entrySize()), step: step, gor: gor, call: call, pos: pos, flush: !isAppend}
		r.entries = append(r.entries, e)
		cl.entries = append(cl.entries, e)
	}
	return cl
}

// step runs one workload step.
func (r *crashRun) step(s int) {
	start := LSN(len(r.entries) + 1)
	defer func() { r.starts = append(r.starts, start) }()
	if r.c == nil || r.readOnly {
		// A read-only Coordinator is reopened: that is how it recovers.
		r.reopen(s)
		return
	}
	switch u := r.rng.IntN(100); {
	case u < 40:
		r.run(s, [][]*crashCall{{r.newCall(s, 0, 0, false)}})
	case u < 75:
		gors := make([][]*crashCall, 2+r.rng.IntN(3))
		for g := range gors {
			for i := range 1 + r.rng.IntN(4) {
				gors[g] = append(gors[g], r.newCall(s, g, i, r.rng.IntN(4) != 0))
			}
		}
		r.run(s, gors)
	case u < 88 && len(r.starts) > 0:
		x := r.starts[r.rng.IntN(len(r.starts))]
		r.maxTrunc = max(r.maxTrunc, x)
		n, err := r.c.TruncateToLSN(x)
		fmt.Fprintf(&r.log, "step %d: TruncateToLSN(%d): removed %d, %v\n", s, x, n, err)
		r.noteErr(err)
	default:
		r.reopen(s)
	}
}

func (r *crashRun) noteErr(err error) {
	if errors.Is(err, ErrReadOnly) {
		r.readOnly = true
	}
}

func (r *crashRun) reopen(s int) {
	var err error
	if r.c != nil {
		err = r.c.Close()
		r.c = nil
	}
	fmt.Fprintf(&r.log, "step %d: close (%v) and reopen\n", s, err)
	r.open(fmt.Sprintf("step %d", s))
}

// run makes the calls of one step, one goroutine per list, and records what
// the engine answered.
func (r *crashRun) run(s int, gors [][]*crashCall) {
	c := r.c
	var wg sync.WaitGroup
	errs := make([][]error, len(gors))
	for g, calls := range gors {
		errs[g] = make([]error, len(calls))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, cl := range calls {
				errs[g][i] = r.call(c, cl)
			}
		}()
	}
	wg.Wait()
	var b strings.Builder
	fmt.Fprintf(&b, "step %d:", s)
	for g, calls := range gors {
		if len(gors) > 1 {
			fmt.Fprintf(&b, " g%d[", g)
		}
		for i, cl := range calls {
			what := "F"
			if cl.append {
				what = "A"
			} else if !cl.sync {
				what = "f"
			}
			lo, hi := cl.entries[0].lsn, cl.entries[len(cl.entries)-1].lsn
			fmt.Fprintf(&b, " %s%d", what, lo)
			if hi != lo {
				fmt.Fprintf(&b, "-%d", hi)
			}
			if err := errs[g][i]; err != nil {
				fmt.Fprintf(&b, "(%s: %v)", statusName(cl.entries[0].status), err)
			}
			r.noteErr(errs[g][i])
		}
		if len(gors) > 1 {
			b.WriteString(" ]")
		}
	}
	b.WriteByte('\n')
	r.log.WriteString(b.String())
}

func statusName(s crashStatus) string {
	return [...]string{"in flight", "acked", "unsynced", "FAILED", "unknown"}[s]
}

// call makes one Append or Flush and records its outcome in its entries.
func (r *crashRun) call(c *Coordinator, cl *crashCall) error {
	var err error
	if cl.append {
		e := cl.entries[0]
		err = c.Append(context.Background(), e.lsn, e.data)
	} else {
		pes := make([]*PendingEntry, len(cl.entries))
		done := make([]*Completion, len(cl.entries))
		for i, e := range cl.entries {
			pes[i], done[i] = NewSyncEntry(e.lsn, e.data)
		}
		_, err = c.Flush(pes, cl.sync)
		for i, d := range done {
			if !d.IsComplete() || (d.Err() == nil) != (err == nil) {
				r.problem("LSN %d: its Completion says %v (complete %v) while Flush said %v",
					cl.entries[i].lsn, d.Err(), d.IsComplete(), err)
			}
		}
	}
	crashed := r.inj.crashed.Load()
	status := csAcked
	switch {
	case err != nil && crashed:
		status = csUnknown
	case err != nil:
		status = csFailed
	case !cl.append && !cl.sync:
		status = csUnsynced
	}
	for _, e := range cl.entries {
		e.status = status
	}
	return err
}

// verifyClone reopens a crash clone three times and checks what replays.
func (r *crashRun) verifyClone(clone *memfs.FS, st *crashStats) []string {
	cfg := r.cfg
	cfg.FS = clone
	c, err := Open(cfg)
	if err != nil {
		return []string{fmt.Sprintf("Open after the crash: %v", err)}
	}
	repairs := c.Recovery().Repairs
	got, err := replayCollect(c)
	c.Close()
	if err != nil {
		return []string{fmt.Sprintf("Replay after the crash: %v (recovery: %q)", err, repairs)}
	}
	probs := r.checkReplay(got, st)
	if len(probs) > 0 {
		return append(probs, fmt.Sprintf("recovery: %q", repairs), "replayed: "+lsnList(got))
	}

	// A second Open finds nothing to repair and replays the same; the log
	// is writable and a third Open replays it with the new batch.
	c, err = Open(cfg)
	if err != nil {
		return []string{fmt.Sprintf("second Open after the crash: %v", err)}
	}
	if rep := c.Recovery().Repairs; len(rep) > 0 {
		probs = append(probs, fmt.Sprintf("second Open repaired again: %q (first: %q)", rep, repairs))
	}
	again, err := replayCollect(c)
	if err != nil || !slices.EqualFunc(again, got, equalReplayed) {
		probs = append(probs, fmt.Sprintf("second Open replays differently (%v): %s, first %s", err, lsnList(again), lsnList(got)))
	}
	next := LSN(len(r.entries) + 1000)
	nd := crashData(next, 100)
	if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(next, nd)}, true); err != nil {
		c.Close()
		return append(probs, fmt.Sprintf("Flush after recovery: %v", err))
	}
	got = append(got, crashReplayed{next, nd})
	c.Close()
	c, err = Open(cfg)
	if err != nil {
		return append(probs, fmt.Sprintf("third Open after the crash: %v", err))
	}
	// Only the new batch's segment is read: the full replay was compared above.
	var third []crashReplayed
	err = c.Replay(next, func(l LSN, b []byte) error {
		third = append(third, crashReplayed{l, slices.Clone(b)})
		return nil
	})
	c.Close()
	if want := got[len(got)-1:]; err != nil || !slices.EqualFunc(third, want, equalReplayed) {
		probs = append(probs, fmt.Sprintf("third Open replays %s from LSN %d (%v), want %s", lsnList(third), next, err, lsnList(want)))
	}
	return probs
}

type crashReplayed struct {
	lsn  LSN
	data []byte
}

func equalReplayed(a, b crashReplayed) bool {
	return a.lsn == b.lsn && string(a.data) == string(b.data)
}

func replayCollect(c *Coordinator) ([]crashReplayed, error) {
	var out []crashReplayed
	err := c.Replay(0, func(l LSN, b []byte) error {
		out = append(out, crashReplayed{l, slices.Clone(b)})
		return nil
	})
	return out, err
}

func lsnList(rs []crashReplayed) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, x.lsn)
	}
	b.WriteByte(']')
	return b.String()
}

// checkReplay checks one replay of a crash state against the workload:
//
//  1. every replayed entry was written, with its exact bytes, once, and was
//     not in a batch reported failed before the crash;
//  2. entries replay in happens-before order (step by step; a goroutine's
//     calls in order; a batch's entries in order and together);
//  3. every acknowledged entry replays, unless a TruncateToLSN may have
//     removed it (its LSN is below one passed to TruncateToLSN);
//  4. nothing replays after a hole: an entry missing (unsynced, or in
//     flight at the crash) has nothing after it in happens-before order
//     replayed; the only holes allowed are batches reported failed, and
//     at the front, whole segments removed by TruncateToLSN.
func (r *crashRun) checkReplay(got []crashReplayed, st *crashStats) []string {
	var probs []string
	bad := func(format string, args ...any) {
		if len(probs) < 20 {
			probs = append(probs, fmt.Sprintf(format, args...))
		}
	}
	n := len(r.entries)
	at := make([]int, n) // index in got + 1; 0: missing
	type gkey struct{ step, gor int }
	lastStep, firstStep := -1, 1<<30
	prevStep := -1
	lastPos := map[gkey][2]int{} // (call, pos) of the last replayed entry of a goroutine
	lastCall := map[gkey]int{}   // highest call replayed per goroutine
	firstCall := map[gkey]int{}  // lowest call replayed per goroutine
	for i, g := range got {
		if g.lsn < 1 || int(g.lsn) > n {
			bad("replayed LSN %d was never written", g.lsn)
			continue
		}
		e := r.entries[g.lsn-1]
		if at[g.lsn-1] != 0 {
			bad("LSN %d replayed twice", g.lsn)
			continue
		}
		at[g.lsn-1] = i + 1
		if string(g.data) != string(e.data) {
			bad("LSN %d replayed %d bytes that differ from the %d written", g.lsn, len(g.data), len(e.data))
		}
		if e.status == csFailed {
			bad("LSN %d replayed, but its batch was reported failed before the crash", g.lsn)
		}
		if e.status == csInFlight {
			bad("LSN %d replayed, but it was never answered (test bug)", g.lsn)
		}
		if e.step < prevStep {
			bad("LSN %d (step %d) replayed after an entry of step %d", g.lsn, e.step, prevStep)
		}
		prevStep = max(prevStep, e.step)
		k := gkey{e.step, e.gor}
		if p, ok := lastPos[k]; ok && (e.call < p[0] || e.call == p[0] && e.pos <= p[1]) {
			bad("LSN %d (step %d goroutine %d call %d) replayed out of the goroutine's order", g.lsn, e.step, e.gor, e.call)
		}
		lastPos[k] = [2]int{e.call, e.pos}
		if c, ok := lastCall[k]; !ok || e.call > c {
			lastCall[k] = e.call
		}
		if c, ok := firstCall[k]; !ok || e.call < c {
			firstCall[k] = e.call
		}
		lastStep = max(lastStep, e.step)
		firstStep = min(firstStep, e.step)
	}
	st.replayed += len(got)
	// A batch replays whole, its entries next to each other.
	for i := 0; i < n; {
		e := r.entries[i]
		j := i + 1
		for j < n && e.flush && r.entries[j].flush && r.entries[j].step == e.step && r.entries[j].gor == e.gor && r.entries[j].call == e.call {
			j++
		}
		if at[i] != 0 {
			for k := i + 1; k < j; k++ {
				if at[k] != at[i]+(k-i) {
					bad("batch LSN %d..%d not replayed whole and in order", e.lsn, r.entries[j-1].lsn)
					break
				}
			}
		}
		i = j
	}
	for i, e := range r.entries {
		present := at[i] != 0
		truncatable := e.lsn < r.maxTrunc
		switch {
		case e.status == csFailed:
			if !present {
				st.failedGone++
			}
		case truncatable && !present:
			st.truncated++
		case e.status == csAcked:
			st.acked++
		case e.status == csUnsynced && present:
			st.unsyncedKept++
		case e.status == csUnsynced:
			st.unsyncedLost++
		}
		if present || e.status == csFailed {
			continue
		}
		k := gkey{e.step, e.gor}
		// Nothing after it replays: the tail a crash may cut (not for an
		// acknowledged entry).
		c, ok := lastCall[k]
		tailOK := e.status != csAcked && e.step >= lastStep && !(ok && c > e.call)
		// Nothing before it replays: the front TruncateToLSN may remove.
		c, ok = firstCall[k]
		frontOK := truncatable && firstStep >= e.step && !(ok && c < e.call)
		switch {
		case tailOK || frontOK:
		case e.status == csAcked && !truncatable:
			st.lost++
			bad("acknowledged LSN %d (step %d) is missing", e.lsn, e.step)
		case truncatable:
			bad("%s LSN %d (step %d, below the truncation point %d) is missing, but entries before and after it replay",
				statusName(e.status), e.lsn, e.step, r.maxTrunc)
		default:
			bad("hole: %s LSN %d (step %d goroutine %d call %d) is missing while entries after it replay (last step %d)",
				statusName(e.status), e.lsn, e.step, e.gor, e.call, lastStep)
		}
	}
	return probs
}

var crashCipher = func() Cipher {
	c, err := NewAESGCM([]byte("crash-test-key-of-32-bytes-long!"))
	if err != nil {
		panic(err)
	}
	return c
}()
