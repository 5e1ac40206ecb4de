package raftstore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine"
	"github.com/hashicorp/raft"
)

// The store tests run on two kinds of store: alone in its directory
// (Open), and as one group of a set (OpenSet) whose other groups write
// beside it the whole time the set is open: raft-shaped appends,
// compactions, conflict suffixes, deletions of everything and stable
// store writes from a goroutine, each neighbour checked against its model
// whenever the set opens and closes. A reopen of a group's store reopens
// its set.

// storeKind is how a test opens its store.
type storeKind struct {
	name string
	set  bool // a group of a set, with neighbours
}

var storeKinds = []storeKind{{name: "open"}, {name: "set", set: true}}

// forKinds runs f as a subtest per kind of store.
func forKinds(t *testing.T, f func(t *testing.T, k storeKind)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// testGroup is the group of a set the store tests run on; neighbourIDs
// are the set's other groups.
const testGroup = 7

var neighbourIDs = []uint64{0, 2, 1 << 40}

// setRun is the set under a group's store, and its neighbours.
type setRun struct {
	ss   *SetStore
	stop func() // stops and checks the neighbours (once)
}

var (
	runsMu sync.Mutex
	runs   = map[*Store]*setRun{}
	// nbModels holds the neighbours of each set directory across its
	// reopens.
	nbModels = map[string][]*neighbour{}
)

// openStore opens a store of kind k in dir (on the fallback backend unless
// opts say otherwise); it is closed with the test.
func openStore(t *testing.T, k storeKind, dir string, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithBackend(engine.BackendFallback)}, opts...)
	if !k.set {
		s, err := Open(dir, opts...)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ss, err := OpenSet(dir, opts...)
	if err != nil {
		t.Fatalf("OpenSet: %v", err)
	}
	runsMu.Lock()
	nbs := nbModels[dir]
	if nbs == nil {
		for i, id := range neighbourIDs {
			nbs = append(nbs, newNeighbour(id, uint64(i)))
		}
		nbModels[dir] = nbs
	}
	runsMu.Unlock()
	for _, n := range nbs {
		if err := n.check(ss.Group(n.id)); err != nil {
			t.Errorf("after OpenSet: %v", err)
		}
	}
	burst(t, ss, nbs)
	run := &setRun{ss: ss, stop: runNeighbours(t, ss, nbs)}
	s := ss.Group(testGroup)
	runsMu.Lock()
	runs[s] = run
	runsMu.Unlock()
	t.Cleanup(func() {
		runsMu.Lock()
		delete(runs, s)
		runsMu.Unlock()
		run.stop()
		ss.Close()
	})
	return s
}

// closeStore closes s, a store of kind k: a group's set closes with it.
func closeStore(t *testing.T, k storeKind, s *Store) error {
	t.Helper()
	if !k.set {
		return s.Close()
	}
	runsMu.Lock()
	run := runs[s]
	delete(runs, s)
	runsMu.Unlock()
	if run == nil {
		t.Fatal("closeStore of a group that openStore did not open")
	}
	run.stop()
	return run.ss.Close()
}

func reopen(t *testing.T, k storeKind, s *Store, dir string, opts ...Option) *Store {
	t.Helper()
	if err := closeStore(t, k, s); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, k, dir, opts...)
}

// runNeighbours runs nbs on their groups of ss from a goroutine until the
// returned stop, which then checks them.
func runNeighbours(t *testing.T, ss *SetStore, nbs []*neighbour) func() {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			n := nbs[i%len(nbs)]
			if err := n.step(ss.Group(n.id)); err != nil {
				t.Errorf("neighbour group %d: %v", n.id, err)
				return
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			burst(t, ss, nbs)
			for _, n := range nbs {
				if err := n.check(ss.Group(n.id)); err != nil {
					t.Errorf("at Close: %v", err)
				}
			}
		})
	}
}

// burst runs a few steps of every neighbour, so that even a short test
// has the group's batches among others'.
func burst(t *testing.T, ss *SetStore, nbs []*neighbour) {
	for range 2 {
		for _, n := range nbs {
			if err := n.step(ss.Group(n.id)); err != nil {
				t.Errorf("neighbour group %d: %v", n.id, err)
				return
			}
		}
	}
}

// neighbour is one raft-like group beside the one under test, and its
// model: the terms of its live entries, and its stable store's term.
type neighbour struct {
	id    uint64
	rng   *rand.Rand
	terms map[uint64]uint64 // index -> term of the live entries
	first uint64            // 0: empty
	last  uint64
	next  uint64 // where the next append starts
	term  uint64
	saved uint64 // the CurrentTerm stored
	steps int
}

func newNeighbour(id, seed uint64) *neighbour {
	return &neighbour{id: id, rng: rand.New(rand.NewPCG(id, seed)), terms: map[uint64]uint64{}, next: 1 + 10*seed, term: 1}
}

// nbLog is a neighbour's entry: its bytes name the group, the index and
// the term.
func nbLog(id, idx, term uint64) *raft.Log {
	return &raft.Log{Index: idx, Term: term, Type: raft.LogCommand, Data: fmt.Appendf(nil, "nb-%d-%d-%d", id, idx, term)}
}

// step makes one call raft could make on s and updates the model when it
// succeeds.
func (n *neighbour) step(s *Store) error {
	n.steps++
	r := n.rng.IntN(20)
	switch {
	case n.first == 0 || r < 12:
		var ls []*raft.Log
		for i := range 1 + n.rng.IntN(8) {
			ls = append(ls, nbLog(n.id, n.next+uint64(i), n.term))
		}
		if err := s.StoreLogs(ls); err != nil {
			return err
		}
		for _, l := range ls {
			n.terms[l.Index] = l.Term
		}
		if n.first == 0 {
			n.first = ls[0].Index
		}
		n.last = ls[len(ls)-1].Index
		n.next = n.last + 1
	case r < 15: // a compaction, keeping some trailing logs
		if n.last-n.first < 16 {
			return nil
		}
		cut := n.last - 8 - uint64(n.rng.IntN(8))
		if err := s.DeleteRange(n.first, cut); err != nil {
			return err
		}
		for i := n.first; i <= cut; i++ {
			delete(n.terms, i)
		}
		n.first = cut + 1
	case r < 18: // a conflict: the suffix goes, a newer term follows
		from := n.last - uint64(n.rng.IntN(int(min(n.last-n.first+1, 6))))
		if err := s.DeleteRange(from, n.last); err != nil {
			return err
		}
		for i := from; i <= n.last; i++ {
			delete(n.terms, i)
		}
		n.term++
		if from == n.first {
			n.first, n.last = 0, 0
		} else {
			n.last = from - 1
		}
		n.next = from
	case r == 18: // a snapshot restore: everything goes
		if err := s.DeleteRange(n.first, n.last); err != nil {
			return err
		}
		clear(n.terms)
		n.next = n.last + 50
		n.first, n.last = 0, 0
	default:
		if err := s.SetUint64([]byte("CurrentTerm"), n.term); err != nil {
			return err
		}
		n.saved = n.term
	}
	return nil
}

// check compares s with the model.
func (n *neighbour) check(s *Store) error {
	first, err1 := s.FirstIndex()
	last, err2 := s.LastIndex()
	if err1 != nil || err2 != nil || first != n.first || last != n.last {
		return fmt.Errorf("group %d after %d steps: bounds %d..%d (%v, %v), want %d..%d", n.id, n.steps, first, last, err1, err2, n.first, n.last)
	}
	for i := first; last > 0 && i <= last; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			return fmt.Errorf("group %d: GetLog(%d): %v", n.id, i, err)
		}
		if w := nbLog(n.id, i, n.terms[i]); l.Term != w.Term || string(l.Data) != string(w.Data) {
			return fmt.Errorf("group %d: GetLog(%d) = term %d %q, want term %d %q", n.id, i, l.Term, l.Data, w.Term, w.Data)
		}
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != n.saved {
		return fmt.Errorf("group %d: CurrentTerm = %d (%v), want %d", n.id, v, err, n.saved)
	}
	return nil
}
