package raftstore

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

	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
	"github.com/hashicorp/raft"
)

// The raftstore crash test: Raft-like workloads (StoreLogs that continue
// the log, prefix deletions after snapshots, conflict suffixes replaced by
// entries of a newer term, deletions of everything and a restart at
// another index, Set and SetUint64, reopens) run once per backend
// operation index k with the power cut at operation k, so every step of
// StoreLogs, of each kind of DeleteRange and of the stable store is a crash
// point. Each crash is reopened from three crash clones of the disk (the
// durable state only, everything written, a random mix) and the store must
// hold exactly the state before the call in flight or after it: no
// acknowledged entry lost, no deleted suffix back, no gap between
// FirstIndex and LastIndex (raft panics at start-up on one), every entry
// as raft wrote it, the stable store old or new. In a set (TestStoreCrash/set)
// the workloads of three groups run interleaved on one set, a reopen
// reopens the set, and every group must hold its state before or after
// its call in flight: a crash in one group's call leaves the others as
// they were.
//
//	go test ./raftstore -run TestStoreCrash -store.seeds 50 -v

var storeSeeds = flag.Int("store.seeds", 12, "TestStoreCrash: workloads to sweep (a third as many of three groups in a set)")

// smodel is what the store must hold.
type smodel struct {
	logs map[uint64]*raft.Log
	kv   map[string]string
}

func (m smodel) clone() smodel {
	return smodel{logs: maps.Clone(m.logs), kv: maps.Clone(m.kv)}
}

func (m smodel) bounds() (uint64, uint64) {
	if len(m.logs) == 0 {
		return 0, 0
	}
	ks := slices.Sorted(maps.Keys(m.logs))
	return ks[0], ks[len(ks)-1]
}

// sstep is one call on the store.
type sstep struct {
	group    uint64 // the set's group it calls (in a set)
	kind     string // "store", "delete", "set", "setu64", "reopen"
	logs     []*raft.Log
	min, max uint64
	key      string
	val      string
}

func (s sstep) String() string {
	if s.kind != "reopen" && s.group != 0 {
		return fmt.Sprintf("group %d: %s", s.group, s.call())
	}
	return s.call()
}

func (s sstep) call() string {
	switch s.kind {
	case "store":
		return fmt.Sprintf("StoreLogs %d..%d term %d", s.logs[0].Index, s.logs[len(s.logs)-1].Index, s.logs[0].Term)
	case "delete":
		return fmt.Sprintf("DeleteRange(%d, %d)", s.min, s.max)
	case "set", "setu64":
		return fmt.Sprintf("%s %q=%q", s.kind, s.key, s.val)
	}
	return s.kind
}

func (s sstep) apply(m smodel) smodel {
	m = m.clone()
	switch s.kind {
	case "store":
		for _, l := range s.logs {
			m.logs[l.Index] = l
		}
	case "delete":
		for i := range m.logs {
			if i >= s.min && i <= s.max {
				delete(m.logs, i)
			}
		}
	case "set", "setu64":
		m.kv[s.key] = s.val
	}
	return m
}

// crashLog is entry idx of term in group (its bytes differ by group).
func crashLog(group, idx, term uint64, rng *rand.Rand) *raft.Log {
	d := make([]byte, rng.IntN(600))
	for i := range d {
		d[i] = byte(idx + term + uint64(i) + 31*group)
	}
	return &raft.Log{Index: idx, Term: term, Type: raft.LogCommand, Data: d, Extensions: []byte{byte(term), byte(group)}}
}

// drawSetWorkload draws the workloads of groups, n calls each, and
// interleaves them at random.
func drawSetWorkload(rng *rand.Rand, groups []uint64, n int) []sstep {
	var each [][]sstep
	for _, g := range groups {
		each = append(each, drawStoreWorkload(rng, g, n))
	}
	var steps []sstep
	for len(each) > 0 {
		i := rng.IntN(len(each))
		steps = append(steps, each[i][0])
		if each[i] = each[i][1:]; len(each[i]) == 0 {
			each = slices.Delete(each, i, i+1)
		}
	}
	return steps
}

// drawStoreWorkload draws calls raft could make on group, in its order.
func drawStoreWorkload(rng *rand.Rand, group uint64, n int) []sstep {
	m := smodel{logs: map[uint64]*raft.Log{}, kv: map[string]string{}}
	term := uint64(1)
	var steps []sstep
	for len(steps) < n {
		first, last := m.bounds()
		var s sstep
		switch r := rng.IntN(12); {
		case r < 5 || last == 0:
			lo := last + 1
			if last == 0 {
				lo = 1 + uint64(rng.IntN(300))
			}
			var ls []*raft.Log
			for i := range 1 + rng.IntN(40) {
				ls = append(ls, crashLog(group, lo+uint64(i), term, rng))
			}
			s = sstep{kind: "store", logs: ls}
		case r < 7: // compaction after a snapshot
			s = sstep{kind: "delete", min: first, max: first + uint64(rng.IntN(int(last-first+1)))}
		case r < 9: // a conflict: the suffix goes, a newer term follows
			term++
			s = sstep{kind: "delete", min: first + uint64(rng.IntN(int(last-first+1))), max: last}
		case r == 9: // a snapshot restore removes everything
			s = sstep{kind: "delete", min: first, max: last}
		case r == 10 || r == 11 && rng.IntN(2) == 0:
			if rng.IntN(2) == 0 {
				s = sstep{kind: "set", key: "LastVoteCand", val: fmt.Sprintf("node-%d", rng.IntN(5))}
			} else {
				s = sstep{kind: "setu64", key: "CurrentTerm", val: fmt.Sprint(term)}
			}
		default:
			s = sstep{kind: "reopen"}
		}
		s.group = group
		steps = append(steps, s)
		m = s.apply(m)
	}
	return steps
}

type storeCut struct {
	at  int64
	ops atomic.Int64
}

func (p *storeCut) MaybeError(op errorfs.Op) error {
	if p.ops.Add(1)-1 >= p.at {
		return &errorfs.Error{Op: op}
	}
	return nil
}

type storeCrashStats struct {
	seeds, points, states, entries, oldState, newState int
	byKind                                             map[string]int
	untouched                                          int // the set's groups beside the call in flight, as they were
	lost, resurrected, gaps, wrong                     int
}

func TestStoreCrash(t *testing.T) { forKinds(t, testStoreCrash) }

// crashGroups are the groups of TestStoreCrash/set.
var crashGroups = []uint64{testGroup, 0, 1 << 40}

func testStoreCrash(t *testing.T, sk storeKind) {
	st := storeCrashStats{byKind: map[string]int{}}
	seeds, n := *storeSeeds, 16
	if sk.set {
		seeds, n = max(1, seeds/3), 8 // three groups: 24 calls a workload
	}
	if testing.Short() {
		seeds = min(seeds, 2)
	}
	for seed := range seeds {
		st.seeds++
		rng := rand.New(rand.NewPCG(uint64(seed), 91))
		steps := drawStoreWorkload(rng, 0, n)
		if sk.set {
			steps = drawSetWorkload(rng, crashGroups, n)
		}
		for k := int64(0); ; k++ {
			st.points++
			if runStoreCrash(t, sk, seed, steps, k, &st) || t.Failed() {
				break
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("store crashes: %d seeds, %d crash points, %d crash states reopened (in flight: %v), %d entries checked; old state %d, new state %d, other groups untouched %d; lost %d, resurrected %d, gaps %d, wrong %d",
		st.seeds, st.points, st.states, st.byKind, st.entries, st.oldState, st.newState, st.untouched, st.lost, st.resurrected, st.gaps, st.wrong)
	if st.lost+st.resurrected+st.gaps+st.wrong > 0 {
		t.Fatal("a crash lost, resurrected or misplaced entries")
	}
}

func storeOpts(fs *memfs.FS, wrap *errorfs.FS) []Option {
	o := []Option{WithSegmentSize(16 << 10), WithCacheSize(8 << 10)}
	if wrap != nil {
		return append(o, WithFS(wrap))
	}
	return append(o, WithFS(fs))
}

// crashStore is the store of a crash run: one from Open, or a set.
type crashStore struct {
	one *Store
	ss  *SetStore
}

func openCrashStore(sk storeKind, opts []Option) (crashStore, error) {
	if sk.set {
		ss, err := OpenSet("crash", opts...)
		return crashStore{ss: ss}, err
	}
	s, err := Open("crash", opts...)
	return crashStore{one: s}, err
}

// group is the store a step of group calls.
func (c crashStore) group(id uint64) *Store {
	if c.ss != nil {
		return c.ss.Group(id)
	}
	return c.one
}

func (c crashStore) close() error {
	if c.ss != nil {
		return c.ss.Close()
	}
	return c.one.Close()
}

// runStoreCrash runs steps with the power cut at operation k and checks
// the crash states; it reports whether the workload ended before k.
func runStoreCrash(t *testing.T, sk storeKind, seed int, steps []sstep, k int64, st *storeCrashStats) bool {
	mem := memfs.New(4096)
	cut := &storeCut{at: k}
	efs := errorfs.New(mem, cut)
	m := map[uint64]smodel{}
	for _, s := range steps {
		m[s.group] = smodel{logs: map[uint64]*raft.Log{}, kv: map[string]string{}}
	}
	var log strings.Builder
	s, err := openCrashStore(sk, storeOpts(mem, efs))
	failed := err != nil
	open := !failed
	var pending sstep
	for i := 0; !failed && i < len(steps); i++ {
		fmt.Fprintf(&log, "  step %d: %v\n", i, steps[i])
		pending = steps[i]
		if err := runStoreStep(sk, &s, &open, steps[i], mem, efs); err != nil {
			fmt.Fprintf(&log, "    -> %v\n", err)
			failed = true
			break
		}
		m[steps[i].group] = steps[i].apply(m[steps[i].group])
	}
	if open {
		s.close()
	}
	if !failed {
		return true
	}
	old, next := m, maps.Clone(m)
	if pending.kind != "" && pending.kind != "reopen" {
		next[pending.group] = pending.apply(m[pending.group])
	}
	kind := pending.kind
	if kind == "delete" {
		first, last := m[pending.group].bounds()
		switch {
		case pending.min <= first && pending.max >= last:
			kind = "delete-all"
		case pending.min <= first:
			kind = "delete-prefix"
		default:
			kind = "delete-suffix"
		}
	} else if kind == "" {
		kind = "open"
	}
	st.byKind[kind]++
	for ci, opt := range []memfs.CrashOption{memfs.DropUnsynced(), memfs.KeepUnsynced(), memfs.Probabilities(0.5, 0.25)} {
		clone := mem.CrashClone(int64(seed)*100000+k*10+int64(ci), opt)
		st.states++
		if why := checkCrashState(sk, clone, old, next, pending.group, st); why != "" {
			t.Errorf("seed %d, power cut at op %d, clone %d: %s\nworkload:\n%s", seed, k, ci, why, log.String())
			return true
		}
	}
	return false
}

func runStoreStep(sk storeKind, cs *crashStore, open *bool, s sstep, mem *memfs.FS, efs *errorfs.FS) error {
	st := cs.group(s.group)
	switch s.kind {
	case "store":
		return st.StoreLogs(s.logs)
	case "delete":
		return st.DeleteRange(s.min, s.max)
	case "set":
		return st.Set([]byte(s.key), []byte(s.val))
	case "setu64":
		var v uint64
		fmt.Sscan(s.val, &v)
		return st.SetUint64([]byte(s.key), v)
	case "reopen":
		err := cs.close()
		*open = false
		if err != nil {
			return err
		}
		*cs, err = openCrashStore(sk, storeOpts(mem, efs))
		*open = err == nil
		return err
	}
	return fmt.Errorf("unknown step %q", s.kind)
}

// checkCrashState opens a crash clone and checks that every group holds
// its state of old or of next ("" when they do).
func checkCrashState(sk storeKind, clone *memfs.FS, old, next map[uint64]smodel, pending uint64, st *storeCrashStats) string {
	cs, err := openCrashStore(sk, storeOpts(clone, nil))
	if err != nil {
		return fmt.Sprintf("Open of the crash state: %v", err)
	}
	defer cs.close()
	for _, g := range slices.Sorted(maps.Keys(old)) {
		if why := checkStoreState(cs.group(g), old[g], next[g], g == pending, st); why != "" {
			if sk.set {
				return fmt.Sprintf("group %d: %s", g, why)
			}
			return why
		}
	}
	return ""
}

// checkStoreState checks that s holds old or next exactly ("" when it
// does); next is old but for the group of the call in flight.
func checkStoreState(s *Store, old, next smodel, inFlight bool, st *storeCrashStats) string {
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	got := map[uint64]*raft.Log{}
	if last > 0 {
		for i := first; i <= last; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				st.gaps++
				return fmt.Sprintf("a gap: GetLog(%d) in %d..%d: %v", i, first, last, err)
			}
			got[i] = &l
		}
	}
	kv := map[string]string{}
	for _, k := range []string{"LastVoteCand"} {
		if v, err := s.Get([]byte(k)); err != nil {
			return fmt.Sprintf("Get(%q): %v", k, err)
		} else if v != nil {
			kv[k] = string(v)
		}
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil {
		return fmt.Sprintf("GetUint64: %v", err)
	} else if v != 0 {
		kv["CurrentTerm"] = fmt.Sprint(v)
	}
	st.entries += len(got)
	match := func(m smodel) bool {
		if len(m.logs) != len(got) || !maps.Equal(m.kv, kv) {
			return false
		}
		for i, l := range m.logs {
			g, ok := got[i]
			if !ok || g.Term != l.Term || !bytes.Equal(g.Data, l.Data) || !bytes.Equal(g.Extensions, l.Extensions) {
				return false
			}
		}
		return true
	}
	switch {
	case !inFlight && match(old):
		st.untouched++
		return ""
	case match(next):
		st.newState++
		return ""
	case match(old):
		st.oldState++
		return ""
	}
	for i, l := range old.logs {
		if n, ok := next.logs[i]; ok && n == l {
			if g, ok := got[i]; !ok || g.Term != l.Term {
				st.lost++
				return fmt.Sprintf("index %d (term %d) was acknowledged and is gone", i, l.Term)
			}
		}
	}
	for i, g := range got {
		if l, ok := next.logs[i]; !ok || l.Term != g.Term {
			if l, ok := old.logs[i]; !ok || l.Term != g.Term {
				st.resurrected++
				return fmt.Sprintf("index %d (term %d) is back though it was deleted", i, g.Term)
			}
		}
	}
	st.wrong++
	return fmt.Sprintf("the store (%d..%d, %v) is neither the state before the call (%d entries, %v) nor after it (%d entries, %v)",
		first, last, kv, len(old.logs), old.kv, len(next.logs), next.kv)
}
