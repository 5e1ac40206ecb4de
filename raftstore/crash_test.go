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
// as raft wrote it, the stable store old or new.
//
//	go test ./raftstore -run TestStoreCrash -store.seeds 50 -v

var storeSeeds = flag.Int("store.seeds", 12, "TestStoreCrash: workloads to sweep")

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
	kind     string // "store", "delete", "set", "setu64", "reopen"
	logs     []*raft.Log
	min, max uint64
	key      string
	val      string
}

func (s sstep) String() string {
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

func crashLog(idx, term uint64, rng *rand.Rand) *raft.Log {
	d := make([]byte, rng.IntN(600))
	for i := range d {
		d[i] = byte(idx + term + uint64(i))
	}
	return &raft.Log{Index: idx, Term: term, Type: raft.LogCommand, Data: d, Extensions: []byte{byte(term)}}
}

// drawStoreWorkload draws calls raft could make, in its order.
func drawStoreWorkload(rng *rand.Rand, n int) []sstep {
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
				ls = append(ls, crashLog(lo+uint64(i), term, rng))
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
	lost, resurrected, gaps, wrong                     int
}

func TestStoreCrash(t *testing.T) {
	st := storeCrashStats{byKind: map[string]int{}}
	seeds := *storeSeeds
	if testing.Short() {
		seeds = min(seeds, 2)
	}
	for seed := range seeds {
		st.seeds++
		steps := drawStoreWorkload(rand.New(rand.NewPCG(uint64(seed), 91)), 16)
		for k := int64(0); ; k++ {
			st.points++
			if runStoreCrash(t, seed, steps, k, &st) || t.Failed() {
				break
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("store crashes: %d seeds, %d crash points, %d crash states reopened (in flight: %v), %d entries checked; old state %d, new state %d; lost %d, resurrected %d, gaps %d, wrong %d",
		st.seeds, st.points, st.states, st.byKind, st.entries, st.oldState, st.newState, st.lost, st.resurrected, st.gaps, st.wrong)
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

// runStoreCrash runs steps with the power cut at operation k and checks
// the crash states; it reports whether the workload ended before k.
func runStoreCrash(t *testing.T, seed int, steps []sstep, k int64, st *storeCrashStats) bool {
	mem := memfs.New(4096)
	cut := &storeCut{at: k}
	efs := errorfs.New(mem, cut)
	m := smodel{logs: map[uint64]*raft.Log{}, kv: map[string]string{}}
	var log strings.Builder
	s, err := Open("crash", storeOpts(mem, efs)...)
	failed := err != nil
	var pending sstep
	for i := 0; !failed && i < len(steps); i++ {
		fmt.Fprintf(&log, "  step %d: %v\n", i, steps[i])
		pending = steps[i]
		if err := runStoreStep(&s, steps[i], mem, efs); err != nil {
			fmt.Fprintf(&log, "    -> %v\n", err)
			failed = true
			break
		}
		m = steps[i].apply(m)
	}
	if s != nil {
		s.Close()
	}
	if !failed {
		return true
	}
	old, next := m, m
	if pending.kind != "" && pending.kind != "reopen" {
		next = pending.apply(m)
	}
	kind := pending.kind
	if kind == "delete" {
		first, last := m.bounds()
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
		if why := checkStoreState(clone, old, next, st); why != "" {
			t.Errorf("seed %d, power cut at op %d, clone %d: %s\nworkload:\n%s", seed, k, ci, why, log.String())
			return true
		}
	}
	return false
}

func runStoreStep(sp **Store, s sstep, mem *memfs.FS, efs *errorfs.FS) error {
	st := *sp
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
		err := st.Close()
		*sp = nil
		if err != nil {
			return err
		}
		*sp, err = Open("crash", storeOpts(mem, efs)...)
		return err
	}
	return fmt.Errorf("unknown step %q", s.kind)
}

// checkStoreState opens a crash clone and checks that it holds old or next
// exactly ("" when it does).
func checkStoreState(clone *memfs.FS, old, next smodel, st *storeCrashStats) string {
	s, err := Open("crash", storeOpts(clone, nil)...)
	if err != nil {
		return fmt.Sprintf("Open of the crash state: %v", err)
	}
	defer s.Close()
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
