package engine

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// The deletion crash test. Each seed draws a Raft-like workload (appends
// that continue the log, prefix deletions, suffix cuts, some that empty
// the log and restart it at another LSN, user-record writes, clean
// reopens) and runs it once per operation index k of the backend, the
// power cut at operation k: every write, sync, rename and directory sync
// of every step is a crash point, those of DeleteBefore and TruncateAfter
// included. Each crash is then reopened from several crash clones of the
// disk, and what the log holds must be exactly the state before the step
// in flight or the state after it: no acknowledged entry lost, no deleted
// entry back, no gap between the first and the last LSN, every LSN with
// the bytes of its live version, the user record old or new. A "reindex"
// step drops every segment index file (not a crash point) and reads the
// log by LSN, so the scans that rebuild them and their writes are crash
// points too.
//
//	go test ./engine -run TestDeletionCrash -deletion.seeds 50 -v

var deletionSeeds = flag.Int("deletion.seeds", 6, "TestDeletionCrash: workloads to sweep")

// dmodel is what the log must hold.
type dmodel struct {
	ver  map[LSN]int // live LSN -> version of its bytes
	user string
}

func (m dmodel) clone() dmodel { return dmodel{ver: maps.Clone(m.ver), user: m.user} }

func (m dmodel) bounds() (LSN, LSN, bool) {
	if len(m.ver) == 0 {
		return 0, 0, false
	}
	ks := slices.Sorted(maps.Keys(m.ver))
	return ks[0], ks[len(ks)-1], true
}

// dstep is one step of the workload.
type dstep struct {
	kind   string // "write", "delete-before", "truncate-after", "user", "reopen", "reindex"
	lo, hi LSN    // write: the LSNs; delete-before/truncate-after: lo
	per    int    // write: entries a batch
	ver    int
	user   string
}

func (s dstep) String() string {
	switch s.kind {
	case "write":
		return fmt.Sprintf("write %d..%d v%d (%d a batch)", s.lo, s.hi, s.ver, s.per)
	case "user":
		return fmt.Sprintf("user %q", s.user)
	case "reopen", "reindex":
		return s.kind
	}
	return fmt.Sprintf("%s %d", s.kind, s.lo)
}

// apply returns m after s.
func (s dstep) apply(m dmodel) dmodel {
	m = m.clone()
	switch s.kind {
	case "write":
		for l := s.lo; l <= s.hi; l++ {
			m.ver[l] = s.ver
		}
	case "delete-before":
		for l := range m.ver {
			if l < s.lo {
				delete(m.ver, l)
			}
		}
	case "truncate-after":
		for l := range m.ver {
			if l > s.lo {
				delete(m.ver, l)
			}
		}
	case "user":
		m.user = s.user
	}
	return m
}

// drawDeletionWorkload draws a workload: every step keeps the log
// contiguous, as Raft's is.
func drawDeletionWorkload(rng *rand.Rand, n int) []dstep {
	m := dmodel{ver: map[LSN]int{}}
	var steps []dstep
	for v := 1; len(steps) < n; v++ {
		first, last, ok := m.bounds()
		var s dstep
		switch r := rng.IntN(10); {
		case r < 5 || !ok:
			lo := last + 1
			if !ok {
				lo = LSN(1 + rng.IntN(500))
			}
			k := 1 + rng.IntN(40)
			s = dstep{kind: "write", lo: lo, hi: lo + LSN(k) - 1, per: 1 + rng.IntN(16), ver: v}
		case r < 7:
			s = dstep{kind: "delete-before", lo: first + LSN(rng.IntN(int(last-first+1)))}
		case r < 9:
			// now and then below the first entry: the log empties
			s = dstep{kind: "truncate-after", lo: first - 1 + LSN(rng.IntN(int(last-first+1)))}
		default:
			switch rng.IntN(3) {
			case 0:
				s = dstep{kind: "user", user: fmt.Sprintf("u%d", v)}
			case 1:
				s = dstep{kind: "reopen"}
			default:
				s = dstep{kind: "reindex"}
			}
		}
		steps = append(steps, s)
		m = s.apply(m)
	}
	// Every workload rebuilds indexes at least once (a reindex changes
	// nothing the model holds), so that a short sweep (-short) tests the
	// index crash points too.
	if !slices.ContainsFunc(steps, func(s dstep) bool { return s.kind == "reindex" }) {
		steps = slices.Insert(steps, len(steps)/2, dstep{kind: "reindex"})
	}
	return steps
}

// powerCut fails every operation from index at on: the process is dead
// from there, nothing it does reaches the disk.
type powerCut struct {
	at  int64
	ops atomic.Int64
}

func (p *powerCut) MaybeError(op errorfs.Op) error {
	if p.ops.Add(1)-1 >= p.at {
		return &errorfs.Error{Op: op}
	}
	return nil
}

// deletionStats is what TestDeletionCrash reports.
type deletionStats struct {
	seeds, runs, states, entries, newState, oldState int
	lost, resurrected, gaps, wrongBytes              int
	reindexSteps, rebuilds                           int // reindex steps run; indexes rebuilt in crash states
}

func TestDeletionCrash(t *testing.T) {
	var st deletionStats
	seeds := *deletionSeeds
	if testing.Short() {
		seeds = min(seeds, 2)
	}
	for seed := range seeds {
		st.seeds++
		rng := rand.New(rand.NewPCG(uint64(seed), 77))
		steps := drawDeletionWorkload(rng, 14)
		for k := int64(0); ; k++ {
			done := runDeletionCrash(t, seed, steps, k, &st)
			st.runs++
			if done || t.Failed() {
				break
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("deletion crashes: %d seeds, %d crash points, %d crash states reopened, %d entries checked; old state %d, new state %d; lost %d, resurrected %d, gaps %d, wrong bytes %d; %d reindex steps, %d indexes rebuilt in crash states",
		st.seeds, st.runs, st.states, st.entries, st.oldState, st.newState, st.lost, st.resurrected, st.gaps, st.wrongBytes, st.reindexSteps, st.rebuilds)
	if st.reindexSteps == 0 || st.rebuilds == 0 {
		t.Error("no index was rebuilt: the index crash points went untested")
	}
	if st.lost+st.resurrected+st.gaps+st.wrongBytes > 0 {
		t.Fatal("a crash lost, resurrected or misplaced entries")
	}
}

// runDeletionCrash runs steps with the power cut at operation k and checks
// the crash states; it reports whether the workload finished before k.
func runDeletionCrash(t *testing.T, seed int, steps []dstep, k int64, st *deletionStats) bool {
	mem := memfs.New(4096)
	cut := &powerCut{at: k}
	efs := errorfs.New(mem, cut)
	cfg := Config{FS: efs, SegmentSize: 16 << 10, SegmentsToRetain: RetainAll}
	m := dmodel{ver: map[LSN]int{}}
	var log strings.Builder
	c, err := Open(cfg)
	failed := err != nil // the first Open
	var pending dstep    // what the step in flight would change
	for i := 0; !failed && i < len(steps); i++ {
		s := steps[i]
		fmt.Fprintf(&log, "  step %d: %v\n", i, s)
		if s.kind == "reindex" {
			st.reindexSteps++
		}
		var err error
		pending, err = runDeletionStep(c, &cfg, s, &c, &m)
		if err != nil {
			fmt.Fprintf(&log, "    -> %v\n", err)
			failed = true
			break
		}
		m = s.apply(m)
	}
	if c != nil {
		c.Close()
	}
	if !failed {
		return true // finished before the cut
	}
	old, next := m, m
	if pending.kind != "" {
		next = pending.apply(m)
	}
	for ci, opt := range []memfs.CrashOption{memfs.DropUnsynced(), memfs.KeepUnsynced(), memfs.Probabilities(0.5, 0.25)} {
		clone := mem.CrashClone(int64(seed)*1000+k*10+int64(ci), opt)
		st.states++
		why := checkDeletionState(clone, old, next, st)
		if why != "" {
			t.Errorf("seed %d, power cut at op %d, clone %d: %s\nworkload:\n%s", seed, k, ci, why, log.String())
			return true
		}
	}
	return false
}

// runDeletionStep runs one step against *c (a reopen replaces it). It
// returns what the step would change (for a write, the batch in flight:
// the batches acknowledged before it are applied to *m as they are).
func runDeletionStep(c *Coordinator, cfg *Config, s dstep, cp **Coordinator, m *dmodel) (dstep, error) {
	switch s.kind {
	case "write":
		for l := s.lo; l <= s.hi; {
			var es []*PendingEntry
			b := dstep{kind: "write", lo: l, ver: s.ver}
			for i := 0; i < s.per && l <= s.hi; i++ {
				es = append(es, NewAsyncEntry(l, versioned(s.ver)(l)))
				l++
			}
			b.hi = l - 1
			if _, err := c.Flush(es, true); err != nil {
				return b, err
			}
			*m = b.apply(*m)
		}
		return dstep{}, nil
	case "delete-before":
		return s, c.DeleteBefore(s.lo)
	case "truncate-after":
		return s, c.TruncateAfter(s.lo)
	case "user":
		return s, c.SetUserRecord([]byte(s.user))
	case "reopen":
		if err := c.Close(); err != nil {
			*cp = nil
			return dstep{}, err
		}
		nc, err := Open(*cfg)
		*cp = nc
		return dstep{}, err
	case "reindex":
		return dstep{}, reindex(c, cfg.FS.(*errorfs.FS), *m)
	}
	return dstep{}, fmt.Errorf("unknown step %q", s.kind)
}

// reindex removes every segment index file behind the log's back, drops
// what the log cached of them, and reads every live LSN of m: the sealed
// segments are scanned and their indexes written again.
func reindex(c *Coordinator, efs *errorfs.FS, m dmodel) error {
	inner := efs.Unwrap()
	ents, err := inner.List()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if id, ok := segment.ParseID(e.Name(), segment.IndexSuffix); ok {
			inner.Remove(e.Name())
			c.idx.cache.drop(id)
		}
	}
	for l, v := range m.ver {
		b, err := c.Read(l, nil)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, versioned(v)(l)) {
			return fmt.Errorf("reindex: Read(%d) gave other bytes", l)
		}
	}
	return nil
}

// checkDeletionState opens a crash clone and compares what it holds with
// the state before the step in flight (old) and after it (next): it must
// be one of them exactly. It returns what is wrong ("" when nothing).
func checkDeletionState(clone *memfs.FS, old, next dmodel, st *deletionStats) string {
	c, err := Open(Config{FS: clone, SegmentSize: 16 << 10, SegmentsToRetain: RetainAll})
	if err != nil {
		return fmt.Sprintf("Open of the crash state: %v", err)
	}
	defer c.Close()
	got := map[LSN][]byte{}
	var order []LSN
	err = c.Replay(0, func(l LSN, b []byte) error {
		got[l] = bytes.Clone(b)
		order = append(order, l)
		return nil
	})
	if err != nil {
		return fmt.Sprintf("Replay: %v", err)
	}
	for i := 1; i < len(order); i++ {
		if order[i] != order[i-1]+1 {
			st.gaps++
			return fmt.Sprintf("replay jumps from LSN %d to %d (a gap or a duplicate)", order[i-1], order[i])
		}
	}
	user := string(c.UserRecord())
	match := func(m dmodel) bool {
		if len(m.ver) != len(got) || user != m.user {
			return false
		}
		for l, v := range m.ver {
			if b, ok := got[l]; !ok || !bytes.Equal(b, versioned(v)(l)) {
				return false
			}
		}
		return true
	}
	st.entries += len(got)
	switch {
	case match(next):
		st.newState++
	case match(old):
		st.oldState++
	default:
		for l, v := range old.ver {
			if _, ok := got[l]; !ok && next.ver[l] == v {
				st.lost++
				return fmt.Sprintf("LSN %d (v%d) was acknowledged and is gone", l, v)
			}
		}
		for l := range got {
			if _, ok := old.ver[l]; !ok {
				if _, ok := next.ver[l]; !ok {
					st.resurrected++
					return fmt.Sprintf("LSN %d is back though it was deleted", l)
				}
			}
		}
		st.wrongBytes++
		return fmt.Sprintf("the log (%d entries, user %q) is neither the state before the step (%d entries, user %q) nor after it (%d entries, user %q)",
			len(got), user, len(old.ver), old.user, len(next.ver), next.user)
	}
	// Read and Bounds agree with Replay.
	first, last, ok, err := c.Bounds()
	if err != nil {
		return fmt.Sprintf("Bounds: %v", err)
	}
	if ok != (len(order) > 0) || ok && (first != order[0] || last != order[len(order)-1]) {
		return fmt.Sprintf("Bounds %d..%d (ok %v), Replay %d entries", first, last, ok, len(order))
	}
	for _, l := range order {
		b, err := c.Read(l, nil)
		if err != nil || !bytes.Equal(b, got[l]) {
			return fmt.Sprintf("Read(%d) = %v, not what Replay gave", l, err)
		}
	}
	st.rebuilds += int(c.Stats().IndexRebuilds)
	return ""
}
