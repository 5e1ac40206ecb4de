package raftstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine"
	"github.com/hashicorp/raft"
)

// What is particular to SetStore: Group's identity, a group's Close (it
// detaches the group; the set goes on), the set's Close, Groups, many
// groups written at once, a directory of Open opened as a set, and a bad
// stable store found by OpenSet.

func openSet(t *testing.T, dir string, opts ...Option) *SetStore {
	t.Helper()
	ss, err := OpenSet(dir, append([]Option{WithBackend(engine.BackendFallback)}, opts...)...)
	if err != nil {
		t.Fatalf("OpenSet: %v", err)
	}
	t.Cleanup(func() { ss.Close() })
	return ss
}

// checkClosed checks that every call of s fails wrapping engine.ErrClosed.
func checkClosed(t *testing.T, s *Store) {
	t.Helper()
	var l raft.Log
	_, err1 := s.FirstIndex()
	_, err2 := s.LastIndex()
	_, err3 := s.Get([]byte("k"))
	_, err4 := s.GetUint64([]byte("k"))
	_, err5 := s.GetCommitIndex()
	for i, err := range []error{err1, err2, s.GetLog(1, &l), s.StoreLogs(logs(1, 2)), s.StoreLog(testLog(1)), s.DeleteRange(1, 1),
		err3, err4, s.Set([]byte("k"), nil), s.SetUint64([]byte("k"), 1), s.StageCommitIndex(1), err5, s.Close()} {
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("call %d on a closed store: %v, want ErrClosed", i, err)
		}
	}
}

// A store from Open fails every call once closed, as a group's does.
func TestClosedStore(t *testing.T) {
	s, err := Open(t.TempDir(), WithBackend(engine.BackendFallback))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(1, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, s)
}

// Group returns one Store per ID; a group's Close detaches it (its calls
// fail, the set and the other groups go on, and the next Group reads the
// same log again); the set's Close closes every group.
func TestGroupClose(t *testing.T) {
	dir := t.TempDir()
	ss := openSet(t, dir)
	g := ss.Group(1)
	if ss.Group(1) != g {
		t.Fatal("Group(1) twice: two stores")
	}
	h := ss.Group(2)
	if err := g.StoreLogs(logs(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := h.StoreLogs(logs(100, 120)); err != nil {
		t.Fatal(err)
	}
	if err := g.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("a group's Close: %v", err)
	}
	checkClosed(t, g)
	if err := h.StoreLogs(logs(121, 130)); err != nil {
		t.Fatalf("another group after a group's Close: %v", err)
	}
	checkLog(t, h, 100, 130, nil)
	g2 := ss.Group(1)
	if g2 == g {
		t.Fatal("Group after the group's Close returned the closed store")
	}
	if ss.Group(1) != g2 {
		t.Fatal("Group(1) twice after a detach: two stores")
	}
	checkLog(t, g2, 1, 10, nil)
	if v, err := g2.GetUint64([]byte("CurrentTerm")); v != 4 || err != nil {
		t.Fatalf("the stable store after a detach: %d, %v", v, err)
	}
	if err := g2.StoreLogs(logs(11, 12)); err != nil {
		t.Fatal(err)
	}
	if got := ss.Groups(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("Groups = %v, want [1 2]", got)
	}
	if ss.Group(3); !slices.Equal(ss.Groups(), []uint64{1, 2}) {
		t.Fatalf("Groups lists a group never written: %v", ss.Groups())
	}
	if st := ss.Stats(); st.EntriesFlushed < 10+31+2 || g2.Stats().EntriesFlushed != st.EntriesFlushed {
		t.Fatalf("Stats: the set's %d entries, the group's %d", st.EntriesFlushed, g2.Stats().EntriesFlushed)
	}

	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, g2)
	checkClosed(t, h)
	checkClosed(t, ss.Group(1))
	checkClosed(t, ss.Group(9))
	if got := ss.Groups(); got != nil {
		t.Fatalf("Groups of a closed set: %v", got)
	}
	if err := ss.Close(); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("a second Close: %v", err)
	}

	ss = openSet(t, dir)
	if got := ss.Groups(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("Groups after a reopen = %v, want [1 2]", got)
	}
	checkLog(t, ss.Group(1), 1, 12, nil)
	checkLog(t, ss.Group(2), 100, 130, nil)
	if v, err := ss.Group(1).GetUint64([]byte("CurrentTerm")); v != 4 || err != nil {
		t.Fatalf("the stable store after a reopen: %d, %v", v, err)
	}
}

// Many groups written at once from their own goroutines, each asking
// Group for its store every time, beside Groups, Stats and a group
// detached and attached again: each group holds what it wrote, then
// after a reopen.
func TestGroupsConcurrent(t *testing.T) {
	const groups, rounds = 16, 40
	dir := t.TempDir()
	opts := []Option{WithSegmentSize(32 << 10)}
	ss := openSet(t, dir, opts...)
	type span struct{ first, last, term uint64 }
	want := make([]span, groups)
	var wg sync.WaitGroup
	errs := make(chan error, groups+1)
	for id := range uint64(groups) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(id, 5))
			next := 1 + 1000*id
			w := span{first: next}
			for r := range rounds {
				g := ss.Group(id)
				n := 1 + uint64(rng.IntN(16))
				if err := g.StoreLogs(logs(next, next+n-1)); err != nil {
					errs <- fmt.Errorf("group %d: %w", id, err)
					return
				}
				next += n
				w.last = next - 1
				switch {
				case r%7 == 6 && w.last-w.first > 20: // compact
					if err := g.DeleteRange(w.first, w.last-10); err != nil {
						errs <- fmt.Errorf("group %d: %w", id, err)
						return
					}
					w.first = w.last - 9
				case r%11 == 10 && w.last-w.first > 5: // a conflict suffix
					if err := g.DeleteRange(w.last-2, w.last); err != nil {
						errs <- fmt.Errorf("group %d: %w", id, err)
						return
					}
					w.last -= 3
					next = w.last + 1
				case r%5 == 0:
					w.term = uint64(r)
					if err := g.SetUint64([]byte("CurrentTerm"), w.term); err != nil {
						errs <- fmt.Errorf("group %d: %w", id, err)
						return
					}
				}
				if id == 3 && r == rounds/2 { // a restart of one group
					if err := g.Close(); err != nil {
						errs <- fmt.Errorf("group %d: %w", id, err)
						return
					}
				}
			}
			want[id] = w
		}()
	}
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ids := ss.Groups()
			if !slices.IsSorted(ids) || len(ids) > groups {
				errs <- fmt.Errorf("Groups = %v", ids)
				return
			}
			ss.Stats()
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(ss *SetStore) {
		t.Helper()
		if got := ss.Groups(); len(got) != groups {
			t.Fatalf("Groups = %v, want %d groups", got, groups)
		}
		for id := range uint64(groups) {
			g := ss.Group(id)
			checkLog(t, g, want[id].first, want[id].last, nil)
			if v, err := g.GetUint64([]byte("CurrentTerm")); v != want[id].term || err != nil {
				t.Fatalf("group %d: CurrentTerm %d (%v), want %d", id, v, err, want[id].term)
			}
		}
	}
	check(ss)
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	check(openSet(t, dir, opts...))
}

// A directory of Open opens as a set whose group 0 is its store; once
// the set wrote, Open refuses it.
func TestOpenSetOfAnOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithBackend(engine.BackendFallback), WithSegmentSize(8<<10))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ss := openSet(t, dir)
	if got := ss.Groups(); !slices.Equal(got, []uint64{0}) {
		t.Fatalf("Groups = %v, want [0]", got)
	}
	g := ss.Group(0)
	checkLog(t, g, 31, 100, nil)
	if v, err := g.GetUint64([]byte("CurrentTerm")); v != 3 || err != nil {
		t.Fatalf("CurrentTerm = %d, %v", v, err)
	}
	if err := ss.Group(5).StoreLogs(logs(1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := g.StoreLogs(logs(101, 110)); err != nil {
		t.Fatal(err)
	}
	if err := ss.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, WithBackend(engine.BackendFallback)); err == nil {
		s.Close()
		t.Fatal("Open of a directory a set wrote succeeded")
	}
	ss = openSet(t, dir)
	checkLog(t, ss.Group(0), 31, 110, nil)
	checkLog(t, ss.Group(5), 1, 3, nil)
}

// A group's stable store that does not decode fails OpenSet, naming the
// group.
func TestOpenSetBadStableStore(t *testing.T) {
	dir := t.TempDir()
	set, err := engine.OpenSet(config(dir, []Option{WithBackend(engine.BackendFallback)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Log(3).SetUserRecord([]byte{kvVersion + 1, 0}); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = OpenSet(dir, WithBackend(engine.BackendFallback))
	if err == nil || !strings.Contains(err.Error(), "group 3") || !strings.Contains(err.Error(), "stable store record version") {
		t.Fatalf("OpenSet with a bad stable store in group 3: %v", err)
	}
	// It released the directory.
	set, err = engine.OpenSet(config(dir, []Option{WithBackend(engine.BackendFallback)}))
	if err != nil {
		t.Fatalf("after a failed OpenSet: %v", err)
	}
	set.Close()
}
