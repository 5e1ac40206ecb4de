package engine

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// The set crash test: TestDeletionCrash for the logs of a Set. Each seed
// draws a workload over six logs of one set (IDs 0, small ones and huge
// ones) in small segments, so that batches of several logs share
// segments, segments are sealed and checkpointed, and segments whose
// entries are all deleted are removed: synced Flush batches of one log,
// Appends to several logs at once (group-committed: one batch holds
// several logs' entries), DeleteBefore and TruncateAfter per log (into the
// log, past its end, ones that empty it, after which the same LSNs are
// written again with other bytes), user records, Close and OpenSet. The
// workload runs once per operation index k of the backend, the power cut
// at operation k (every write, sync, rename, removal and directory sync,
// the final Close's included), until it finishes before the cut. Each
// crash is then reopened from several crash clones of the disk, and every
// log must read as its model before the step in flight or after it:
// no acknowledged entry lost, no deleted entry (or overwritten version)
// back, no entry in another log (an entry's bytes name its log, LSN and
// version), Replay, Read and Bounds agreeing, the user record old or new.
// The reopened set must then take a write, and read the same once closed
// and opened again (what recovery repaired and removed holds). The
// appends steps and the segment preparer run concurrently: the op at index
// k may differ between two runs of a seed.
//
//	go test ./engine -run TestSetCrash -setcrash.seeds 50 -v
//	go test ./engine -run TestSetCrash -setcrash.seed 7 -v   # one seed
//	go test ./engine -run TestSetCrash -setcrash.steps 40 -v # longer workloads

var (
	setCrashSeeds = flag.Int("setcrash.seeds", 5, "TestSetCrash: workloads to sweep")
	setCrashSeed  = flag.Int("setcrash.seed", -1, "TestSetCrash: sweep this seed only")
	setCrashSteps = flag.Int("setcrash.steps", 0, "TestSetCrash: steps a workload draws at least (0: 15, 10 with -short)")
)

// setCrashLogs are the logs of the workload.
var setCrashLogs = []uint64{0, 1, 2, 9, 1 << 40, math.MaxUint64}

const setCrashSegment = 16 << 10

func setCrashConfig(fs *memfs.FS) Config {
	// NB: the background rewriter off (RewriteDeadFraction 1): the rewrite
	// steps run it, so that every run of a workload does the same ops.
	return Config{FS: fs, SegmentSize: setCrashSegment, RewriteDeadFraction: 1}
}

// setStepKind is what a step of the workload does.
type setStepKind int

const (
	setFlush         setStepKind = iota // synced Flush batches of one log
	setAppends                          // Appends to several logs at once
	setDeleteBefore                     // DeleteBefore of one log
	setTruncateAfter                    // TruncateAfter of one log
	setUser                             // SetUserRecord of one log
	setReopen                           // Close, then OpenSet
	setRewrite                          // a rewrite of a lagging log forward, run now
	numSetStepKinds
)

var setStepNames = [numSetStepKinds]string{
	setFlush: "flush", setAppends: "appends", setDeleteBefore: "delete-before", setTruncateAfter: "truncate-after",
	setUser: "user", setReopen: "reopen", setRewrite: "rewrite",
}

// setStepWeights is how often the draw picks each kind; a kind of weight 0
// is never drawn.
//
// A rewrite copies a lagging log's live entries in sealed segments forward
// into the stream and records the move. It changes no log's contents, so
// sstep.apply leaves the models as they are and every crash point inside
// it must leave every log exactly as it was (the check needs nothing
// more).
var setStepWeights = [numSetStepKinds]int{
	setFlush: 30, setAppends: 20, setDeleteBefore: 20, setTruncateAfter: 14, setUser: 7, setReopen: 9,
	setRewrite: 10,
}

// appendRun is one log's part of an appends step: n Appends from LSN lo,
// one after the other.
type appendRun struct {
	log uint64
	lo  LSN
	n   int
}

// sstep is one step of a set's workload.
type sstep struct {
	kind setStepKind
	log  uint64      // the log of a flush, delete-before, truncate-after, user or rewrite
	lo   LSN         // flush: the first LSN; delete-before, truncate-after: the argument
	n    int         // flush: entries
	per  int         // flush: entries a batch
	runs []appendRun // appends: each log's run
	ver  int         // flush, appends: the version of the bytes written
	user string      // user: the record
}

func (s sstep) String() string {
	switch s.kind {
	case setFlush:
		return fmt.Sprintf("flush log %d: %d..%d v%d (%d a batch)", s.log, s.lo, s.lo+LSN(s.n)-1, s.ver, s.per)
	case setAppends:
		var b strings.Builder
		fmt.Fprintf(&b, "appends v%d:", s.ver)
		for _, r := range s.runs {
			fmt.Fprintf(&b, " log %d %d..%d", r.log, r.lo, r.lo+LSN(r.n)-1)
		}
		return b.String()
	case setDeleteBefore, setTruncateAfter:
		return fmt.Sprintf("%s log %d: %d", setStepNames[s.kind], s.log, s.lo)
	case setUser:
		return fmt.Sprintf("user log %d: %q", s.log, s.user)
	case setRewrite:
		return fmt.Sprintf("rewrite log %d", s.log)
	}
	return setStepNames[s.kind]
}

// setEntry is the bytes of LSN lsn of log id in version ver: they name all
// three, and their length varies (up to ~650 bytes).
func setEntry(id uint64, lsn LSN, ver int) string {
	h := (id*0x9e3779b97f4a7c15 ^ uint64(lsn)*0xbf58476d1ce4e5b9 ^ uint64(ver)*0x94d049bb133111eb) >> 7
	return fmt.Sprintf("log %d lsn %d v%d ", id, lsn, ver) + strings.Repeat(string(rune('a'+h%26)), int(h%600))
}

// parseSetEntry reads back what setEntry put in b.
func parseSetEntry(b string) (id uint64, lsn LSN, ver int, ok bool) {
	f := strings.SplitN(b, " ", 6)
	if len(f) < 6 || f[0] != "log" || f[2] != "lsn" || !strings.HasPrefix(f[4], "v") {
		return 0, 0, 0, false
	}
	id, err1 := strconv.ParseUint(f[1], 10, 64)
	l, err2 := strconv.ParseUint(f[3], 10, 64)
	ver, err3 := strconv.Atoi(f[4][1:])
	return id, LSN(l), ver, err1 == nil && err2 == nil && err3 == nil
}

func setEntries(id uint64, lo LSN, n, ver int) []string {
	d := make([]string, n)
	for i := range d {
		d[i] = setEntry(id, lo+LSN(i), ver)
	}
	return d
}

func (m *lmodel) clone() *lmodel {
	c := *m
	c.ents, c.user = slices.Clone(m.ents), slices.Clone(m.user)
	return &c
}

type setModels map[uint64]*lmodel

func newSetModels() setModels {
	ms := setModels{}
	for _, id := range setCrashLogs {
		ms[id] = &lmodel{}
	}
	return ms
}

// apply changes ms as s does once it has returned nil.
func (s sstep) apply(ms setModels) {
	switch s.kind {
	case setFlush:
		ms[s.log].write(s.lo, setEntries(s.log, s.lo, s.n, s.ver))
	case setAppends:
		for _, r := range s.runs {
			ms[r.log].write(r.lo, setEntries(r.log, r.lo, r.n, s.ver))
		}
	case setDeleteBefore:
		ms[s.log].deleteBefore(s.lo)
	case setTruncateAfter:
		ms[s.log].truncateAfter(s.lo)
	case setUser:
		ms[s.log].user = []byte(s.user)
	}
}

// setPlan is a drawn workload.
type setPlan struct {
	steps []sstep
	ever  map[uint64][]LSN // every LSN a step writes, by log, ascending
}

// drawSetWorkload draws n steps. Each log's LSNs ascend in the order
// written, as a Raft log's do: a write continues the log, after a
// TruncateAfter from the cut (the same LSNs in new bytes), and a log's
// first write starts anywhere.
func drawSetWorkload(rng *rand.Rand, n int) setPlan {
	ms := newSetModels()
	for _, id := range setCrashLogs {
		switch id {
		case 0:
			ms[id].next = 1
		case math.MaxUint64:
			ms[id].next = 1<<62 + LSN(rng.IntN(1000))
		default:
			ms[id].next = 1 + LSN(rng.IntN(300))
		}
	}
	total := 0
	for _, w := range setStepWeights {
		total += w
	}
	ever := map[uint64]map[LSN]bool{}
	wrote := func(id uint64, lo LSN, n int) {
		if ever[id] == nil {
			ever[id] = map[LSN]bool{}
		}
		for i := range n {
			ever[id][lo+LSN(i)] = true
		}
	}
	// Some logs are busier than others: a few take most of the steps (and
	// delete what they wrote, so the segments they fill go), the others
	// write now and then and pin the segments they wrote in.
	busy := map[uint64]int{}
	for i, j := range rng.Perm(len(setCrashLogs)) {
		busy[setCrashLogs[j]] = []int{8, 5, 2, 1, 1, 1}[min(i, 5)]
	}
	pick := func(among []uint64) uint64 {
		sum := 0
		for _, l := range among {
			sum += busy[l]
		}
		r := rng.IntN(sum)
		for _, l := range among {
			if r -= busy[l]; r < 0 {
				return l
			}
		}
		panic("unreachable")
	}
	var steps []sstep
	for len(steps) < n {
		v := len(steps) + 1
		kind := setStepKind(0)
		for r := rng.IntN(total); r >= setStepWeights[kind]; kind++ {
			r -= setStepWeights[kind]
		}
		id := pick(setCrashLogs)
		if kind == setDeleteBefore || kind == setTruncateAfter {
			// mostly a log that has something to delete
			var live []uint64
			for _, l := range setCrashLogs {
				if len(ms[l].ents) > 0 {
					live = append(live, l)
				}
			}
			if len(live) > 0 && rng.IntN(5) > 0 {
				id = pick(live)
			}
		}
		if kind == setRewrite {
			// a lagging log: the least busy of those holding entries
			for _, l := range setCrashLogs {
				if len(ms[l].ents) > 0 && (len(ms[id].ents) == 0 || busy[l] < busy[id]) {
					id = l
				}
			}
		}
		m := ms[id]
		var first, last LSN
		live := len(m.ents) > 0
		if live {
			first, last = m.ents[0].lsn, m.ents[len(m.ents)-1].lsn
		}
		s := sstep{kind: kind, log: id}
		switch kind {
		case setFlush:
			s.lo, s.n, s.per, s.ver = m.next, 1+rng.IntN(20), 1+rng.IntN(5), v
			wrote(id, s.lo, s.n)
		case setAppends:
			s.ver = v
			for _, i := range rng.Perm(len(setCrashLogs))[:2+rng.IntN(3)] {
				l := setCrashLogs[i]
				r := appendRun{log: l, lo: ms[l].next, n: 1 + rng.IntN(4)}
				s.runs = append(s.runs, r)
				wrote(l, r.lo, r.n)
			}
		case setDeleteBefore:
			switch r := rng.IntN(5); {
			case !live || r == 0:
				s.lo = m.next + LSN(rng.IntN(4)) // past the end: the next writes below it are dead
			case r < 3:
				lo := max(first, last-min(last, 2))
				s.lo = lo + LSN(rng.IntN(int(last-lo)+2)) // all or most of it
			default:
				s.lo = first + LSN(rng.IntN(int(last-first)+2))
			}
		case setTruncateAfter:
			switch r := rng.IntN(8); {
			case !live || r == 0:
				s.lo = m.next + LSN(rng.IntN(3)) // nothing above: changes nothing
			case r < 4:
				s.lo = first - 1 - LSN(rng.IntN(int(min(first, 5)))) // empties the log: it is new
			default:
				s.lo = first + LSN(rng.IntN(int(last-first)+1))
			}
		case setUser:
			if rng.IntN(4) > 0 {
				s.user = fmt.Sprintf("user %d of log %d", v, id)
			}
		}
		s.apply(ms)
		steps = append(steps, s)
	}
	p := setPlan{steps: steps, ever: map[uint64][]LSN{}}
	for id, e := range ever {
		p.ever[id] = slices.Sorted(maps.Keys(e))
	}
	return p
}

// setCut is powerCut, counting what the ops that ran did.
type setCut struct {
	powerCut
	checkpoints atomic.Int64 // log.state written
	removals    atomic.Int64 // segments removed or renamed for reuse
	segWrites   atomic.Int64 // writes to a segment under its name (batches, mostly)
}

func (p *setCut) MaybeError(op errorfs.Op) error {
	if err := p.powerCut.MaybeError(op); err != nil {
		return err
	}
	_, seg := segment.ParseID(op.Name, segment.Suffix)
	switch {
	case op.Kind == errorfs.OpWriteFile && op.Name == segment.StateTmpName:
		p.checkpoints.Add(1)
	case seg && (op.Kind == errorfs.OpRemove || op.Kind == errorfs.OpRename):
		p.removals.Add(1)
	case seg && op.Kind == errorfs.OpWrite:
		p.segWrites.Add(1)
	}
	return nil
}

// fired reports whether the cut failed an op.
func (p *setCut) fired() bool { return p.ops.Load() > p.at }

// setCrashStats is what TestSetCrash reports.
type setCrashStats struct {
	seeds, runs, states, entries, reads int
	oldState, newState                  int // logs the step in flight changes, read as before it, after it
	lost, resurrected, misplaced, other int
	// in the runs that finished (one a seed)
	seals, checkpoints, removals int
	appendSteps, sharedSteps     int // appends steps; of them, ones with fewer segment writes than Appends
	rewrites, copied             int // rewrite steps, and the entries they copied
}

func TestSetCrash(t *testing.T) {
	var st setCrashStats
	// minPoints: the crash points a seed must reach on average (about half
	// of what the workloads give)
	seeds, steps, minPoints := *setCrashSeeds, 15, 250
	if testing.Short() || raceEnabled && !flagSet("setcrash.seeds") {
		// make test runs the package under the race detector, which costs
		// the sweep 5-6 times its time: two shorter workloads there.
		seeds, steps, minPoints = min(seeds, 2), 10, 100
	}
	if *setCrashSteps > 0 {
		steps = *setCrashSteps
	}
	first := 0
	if *setCrashSeed >= 0 {
		first, seeds = *setCrashSeed, 1
	}
	for seed := first; seed < first+seeds; seed++ {
		st.seeds++
		rng := rand.New(rand.NewPCG(uint64(seed), 0x5e7))
		plan := drawSetWorkload(rng, steps+rng.IntN(steps*2/3+1))
		for k := int64(0); ; k++ {
			done := runSetCrash(t, seed, plan, k, &st)
			st.runs++
			if done || t.Failed() {
				break
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("set crashes: %d seeds, %d crash points, %d crash states reopened, %d entries checked, %d reads; the logs of the step in flight: old state %d, new state %d; lost %d, resurrected %d, misplaced %d, other mismatches %d; finished runs: %d seals, %d checkpoints, %d segments removed, %d of %d appends steps shared a batch, %d rewrites copied %d entries",
		st.seeds, st.runs, st.states, st.entries, st.reads, st.oldState, st.newState, st.lost, st.resurrected, st.misplaced, st.other,
		st.seals, st.checkpoints, st.removals, st.sharedSteps, st.appendSteps, st.rewrites, st.copied)
	if st.lost+st.resurrected+st.misplaced+st.other > 0 {
		t.Fatal("a crash lost, resurrected or misplaced entries")
	}
	if *setCrashSeed >= 0 {
		return // one seed: what it covers is what it draws
	}
	if st.states < 3*st.seeds*minPoints {
		t.Errorf("%d crash states for %d seeds: too few (want %d a seed)", st.states, st.seeds, 3*minPoints)
	}
	if st.seals == 0 || st.checkpoints == 0 || st.removals == 0 {
		t.Error("the workloads never sealed, checkpointed or removed a segment: those crash points went untested")
	}
	if st.appendSteps > 0 && st.sharedSteps == 0 {
		t.Error("no appends step shared a batch between logs")
	}
	if st.copied == 0 {
		t.Error("no rewrite copied an entry: the rewrite crash points went untested")
	}
}

// flagSet reports whether the command line set flag name.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// setRunner runs a workload against a set, keeping the models of what is
// acknowledged and of the step in flight.
type setRunner struct {
	cfg      Config
	cut      *setCut
	s        *Set // nil once a Close or OpenSet failed
	models   setModels
	inflight setModels // a log's model if the step in flight lands: only the logs it changes
	seals    uint64
	shared   int // appends steps that shared a batch between logs
	rewrites int // rewrite steps run
	copied   int // entries they copied
}

// runSetCrash runs plan with the power cut at operation k and checks the
// crash states; it reports whether the workload finished before the cut.
func runSetCrash(t *testing.T, seed int, plan setPlan, k int64, st *setCrashStats) bool {
	mem := memfs.New(4096)
	r := &setRunner{cut: &setCut{powerCut: powerCut{at: k}}, models: newSetModels(), inflight: setModels{}}
	r.cfg = setCrashConfig(nil)
	r.cfg.FS = errorfs.New(mem, r.cut)
	var log strings.Builder
	s, err := OpenSet(r.cfg)
	failed := err != nil
	if failed {
		fmt.Fprintf(&log, "  OpenSet -> %v\n", err)
	}
	r.s = s
	var appendSteps int
	for i := 0; !failed && i < len(plan.steps); i++ {
		step := plan.steps[i]
		fmt.Fprintf(&log, "  step %d: %v\n", i, step)
		if step.kind == setAppends {
			appendSteps++
		}
		clear(r.inflight)
		if err := r.runStep(step); err != nil {
			fmt.Fprintf(&log, "    -> %v\n", err)
			failed = true
		}
	}
	if !failed && r.s != nil {
		// The final Close is crash points too.
		clear(r.inflight)
		fmt.Fprintf(&log, "  close\n")
		r.seals += r.s.Stats().Rotations
		err := r.s.Close()
		r.s = nil
		if err != nil {
			fmt.Fprintf(&log, "    -> %v\n", err)
			failed = true
		}
	}
	if r.s != nil {
		r.s.Close()
	}
	if failed && !r.cut.fired() {
		t.Errorf("seed %d, power cut at op %d: a step failed with no fault injected\nworkload:\n%s", seed, k, log.String())
		return true
	}
	if !failed {
		st.seals += int(r.seals)
		st.checkpoints += int(r.cut.checkpoints.Load())
		st.removals += int(r.cut.removals.Load())
		st.appendSteps += appendSteps
		st.sharedSteps += r.shared
		st.rewrites += r.rewrites
		st.copied += r.copied
		return true
	}
	for ci, opt := range []memfs.CrashOption{memfs.DropUnsynced(), memfs.KeepUnsynced(), memfs.Probabilities(0.5, 0.25)} {
		clone := mem.CrashClone(int64(seed)*100000+k*10+int64(ci), opt)
		st.states++
		if why := checkSetState(clone, r, plan, k, st); why != "" {
			t.Errorf("seed %d, power cut at op %d, clone %d: %s\nworkload:\n%s", seed, k, ci, why, log.String())
			return true
		}
	}
	return false
}

// runStep runs one step. The parts of it acknowledged go into r.models as
// they are; what is in flight when it fails is in r.inflight.
func (r *setRunner) runStep(s sstep) error {
	switch s.kind {
	case setFlush:
		for lo, hi := s.lo, s.lo+LSN(s.n); lo < hi; {
			n := min(s.per, int(hi-lo))
			data := setEntries(s.log, lo, n, s.ver)
			es := make([]*PendingEntry, n)
			for i, d := range data {
				es[i] = NewAsyncEntry(lo+LSN(i), []byte(d))
			}
			next := r.models[s.log].clone()
			next.write(lo, data)
			r.inflight[s.log] = next
			if _, err := r.s.Log(s.log).Flush(es, true); err != nil {
				return err
			}
			r.models[s.log] = next
			delete(r.inflight, s.log)
			lo += LSN(n)
		}
		return nil
	case setAppends:
		return r.runAppends(s)
	case setDeleteBefore, setTruncateAfter, setUser:
		next := setModels{s.log: r.models[s.log].clone()}
		s.apply(next)
		r.inflight[s.log] = next[s.log]
		l := r.s.Log(s.log)
		var err error
		switch s.kind {
		case setDeleteBefore:
			err = l.DeleteBefore(s.lo)
		case setTruncateAfter:
			err = l.TruncateAfter(s.lo)
		default:
			err = l.SetUserRecord([]byte(s.user))
		}
		if err != nil {
			return err
		}
		r.models[s.log] = next[s.log]
		delete(r.inflight, s.log)
		return nil
	case setReopen:
		r.seals += r.s.Stats().Rotations
		err := r.s.Close()
		r.s = nil
		if err != nil {
			return err
		}
		r.s, err = OpenSet(r.cfg)
		return err
	case setRewrite:
		r.rewrites++
		n, err := r.s.c.rewriteLog(s.log)
		if errors.Is(err, errNotRewritable) {
			return nil
		}
		r.copied += n
		return err
	}
	return fmt.Errorf("unknown step kind %d", s.kind)
}

// runAppends runs every log's run of s at once, each log's Appends one after
// the other: each log has at most one entry in flight.
func (r *setRunner) runAppends(s sstep) error {
	acked := make([]int, len(s.runs))
	errs := make([]error, len(s.runs))
	before := r.cut.segWrites.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, run := range s.runs {
		wg.Go(func() {
			<-start
			l := r.s.Log(run.log)
			for j := range run.n {
				lsn := run.lo + LSN(j)
				if err := l.Append(context.Background(), lsn, []byte(setEntry(run.log, lsn, s.ver))); err != nil {
					errs[i] = err
					return
				}
				acked[i]++
			}
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i, run := range s.runs {
		m := r.models[run.log]
		m.write(run.lo, setEntries(run.log, run.lo, acked[i], s.ver))
		if errs[i] != nil {
			next := m.clone()
			next.write(run.lo+LSN(acked[i]), setEntries(run.log, run.lo+LSN(acked[i]), 1, s.ver))
			r.inflight[run.log] = next
		}
		total += acked[i]
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Each log has one Append in flight at a time: fewer writes than
	// Appends means a batch held several logs' entries.
	if r.cut.segWrites.Load()-before < int64(total) {
		r.shared++
	}
	return nil
}

// checkSetState opens a crash clone and checks every log against its
// models (before and after the step in flight); then the set must take a
// write. It returns what is wrong ("" when nothing).
func checkSetState(clone *memfs.FS, r *setRunner, plan setPlan, k int64, st *setCrashStats) string {
	s, err := OpenSet(setCrashConfig(clone))
	if err != nil {
		return fmt.Sprintf("OpenSet of the crash state: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	matched := setModels{}
	var holding []uint64
	for _, id := range setCrashLogs {
		cands := []*lmodel{r.models[id]}
		if m := r.inflight[id]; m != nil {
			cands = append(cands, m)
		}
		m, why := checkSetLog(s.Log(id), id, cands, plan.ever[id], st)
		if why != "" {
			if len(cands) > 1 {
				why += " (the step in flight changes it)"
			}
			return fmt.Sprintf("log %d: %s", id, why)
		}
		matched[id] = m
		if len(m.ents) > 0 || len(m.user) > 0 {
			holding = append(holding, id)
		}
	}
	if got := s.Logs(); !slices.Equal(got, holding) {
		return fmt.Sprintf("Logs() = %v, want %v", got, holding)
	}
	// The set takes a write: to a log above every LSN it ever had, and
	// above its DeleteBefore (either model's, when the one in flight was a
	// DeleteBefore that left the entries as they were).
	wid := setCrashLogs[int(k)%len(setCrashLogs)]
	lsn := LSN(1)
	if e := plan.ever[wid]; len(e) > 0 {
		lsn = e[len(e)-1] + 1
	}
	lsn = max(lsn, r.models[wid].floor)
	if m := r.inflight[wid]; m != nil {
		lsn = max(lsn, m.floor)
	}
	d := setEntry(wid, lsn, 0)
	l := s.Log(wid)
	if err := l.Append(context.Background(), lsn, []byte(d)); err != nil {
		return fmt.Sprintf("log %d: Append(%d) after the crash: %v", wid, lsn, err)
	}
	if b, err := l.Read(lsn, nil); err != nil || string(b) != d {
		return fmt.Sprintf("log %d: Read(%d) of the write after the crash: %v", wid, lsn, err)
	}
	if _, last, ok, err := l.Bounds(); err != nil || !ok || last != lsn {
		return fmt.Sprintf("log %d: Bounds after the write after the crash: last %d, %v, %v; want %d", wid, last, ok, err, lsn)
	}
	closed = true
	if err := s.Close(); err != nil {
		return fmt.Sprintf("Close after the write after the crash: %v", err)
	}
	// What recovery repaired, removed and checkpointed holds at the next
	// Open: every log reads as the model it matched, with the write.
	matched[wid] = matched[wid].clone()
	matched[wid].write(lsn, []string{d})
	if s, err = OpenSet(setCrashConfig(clone)); err != nil {
		return fmt.Sprintf("OpenSet after the write after the crash: %v", err)
	}
	defer s.Close()
	for _, id := range setCrashLogs {
		var ever []LSN // every third LSN of the log's, for Reads
		for i, l := range plan.ever[id] {
			if i%3 == int(k%3) {
				ever = append(ever, l)
			}
		}
		if id == wid {
			ever = append(ever, lsn)
		}
		if _, why := checkSetLog(s.Log(id), id, []*lmodel{matched[id]}, ever, st); why != "" {
			return fmt.Sprintf("after the write and a reopen: log %d: %s", id, why)
		}
	}
	return ""
}

// checkSetLog checks log id of a crash state against its candidate models
// (the state before the step in flight, and after it when the step changes
// this log): what Replay gives must be one of them exactly, user record
// included, and Bounds, a Replay from inside the log and a Read of every
// LSN the workload writes to the log must agree with it. It returns the
// model matched, or what is wrong.
func checkSetLog(l *Log, id uint64, cands []*lmodel, ever []LSN, st *setCrashStats) (*lmodel, string) {
	var got []replayed
	if err := l.Replay(0, func(lsn LSN, b []byte) error {
		got = append(got, replayed{lsn, string(b)})
		return nil
	}); err != nil {
		return nil, fmt.Sprintf("Replay: %v", err)
	}
	st.entries += len(got)
	for _, g := range got {
		if gid, glsn, _, ok := parseSetEntry(g.data); !ok || gid != id || glsn != g.lsn {
			st.misplaced++
			return nil, fmt.Sprintf("Replay gave LSN %d with the bytes %.40q", g.lsn, g.data)
		}
	}
	user := l.UserRecord()
	var m *lmodel
	for i, c := range cands {
		if slices.Equal(got, c.ents) && bytes.Equal(user, c.user) {
			m = c
			if len(cands) > 1 {
				if i == 0 {
					st.oldState++
				} else {
					st.newState++
				}
			}
			break
		}
	}
	if m == nil {
		return nil, diagnoseSetLog(got, user, cands, st)
	}
	first, last, ok, err := l.Bounds()
	if err != nil {
		return nil, fmt.Sprintf("Bounds: %v", err)
	}
	if ok != (len(got) > 0) || ok && (first != got[0].lsn || last != got[len(got)-1].lsn) {
		st.other++
		return nil, fmt.Sprintf("Bounds %d..%d (ok %v), Replay gave %d entries", first, last, ok, len(got))
	}
	if len(got) > 1 {
		from := got[len(got)/2].lsn
		var tail []replayed
		if err := l.Replay(from, func(lsn LSN, b []byte) error {
			tail = append(tail, replayed{lsn, string(b)})
			return nil
		}); err != nil {
			return nil, fmt.Sprintf("Replay(%d): %v", from, err)
		}
		if !slices.Equal(tail, got[len(got)/2:]) {
			st.other++
			return nil, fmt.Sprintf("Replay(%d) gave %d entries, not the last %d of Replay(0)", from, len(tail), len(got)-len(got)/2)
		}
	}
	live := map[LSN]string{}
	for _, g := range got {
		live[g.lsn] = g.data
	}
	for _, lsn := range ever {
		st.reads++
		b, err := l.Read(lsn, nil)
		d, isLive := live[lsn]
		switch {
		case isLive && err != nil:
			st.lost++
			return nil, fmt.Sprintf("Read(%d) of a live entry: %v", lsn, err)
		case isLive && string(b) != d:
			st.other++
			return nil, fmt.Sprintf("Read(%d) = %.40q, Replay gave %.40q", lsn, b, d)
		case !isLive && err == nil:
			if gid, _, _, _ := parseSetEntry(string(b)); gid != id {
				st.misplaced++
			} else {
				st.resurrected++
			}
			return nil, fmt.Sprintf("Read(%d) of a dead LSN = %.40q", lsn, b)
		case !isLive && !errors.Is(err, ErrNotFound):
			st.other++
			return nil, fmt.Sprintf("Read(%d) of a dead LSN: %v, want ErrNotFound", lsn, err)
		}
	}
	return m, ""
}

// diagnoseSetLog says how a log's entries match none of its candidate
// models, and counts it.
func diagnoseSetLog(got []replayed, user []byte, cands []*lmodel, st *setCrashStats) string {
	in := func(r replayed, ents []replayed) bool { return slices.Contains(ents, r) }
	for _, r := range cands[0].ents {
		kept := true
		for _, c := range cands[1:] {
			kept = kept && in(r, c.ents)
		}
		if kept && !in(r, got) {
			st.lost++
			_, _, v, _ := parseSetEntry(r.data)
			return fmt.Sprintf("LSN %d (v%d) was acknowledged and is gone (Replay gave %d entries)", r.lsn, v, len(got))
		}
	}
	for _, r := range got {
		if !slices.ContainsFunc(cands, func(c *lmodel) bool { return in(r, c.ents) }) {
			st.resurrected++
			_, _, v, _ := parseSetEntry(r.data)
			return fmt.Sprintf("LSN %d (v%d) is back though it was deleted or written over", r.lsn, v)
		}
	}
	st.other++
	var users []string
	for _, c := range cands {
		users = append(users, fmt.Sprintf("%d entries, user %q", len(c.ents), c.user))
	}
	return fmt.Sprintf("the log (%d entries, user %q) is none of its models (%s): a batch in part, or out of order",
		len(got), user, strings.Join(users, "; "))
}
