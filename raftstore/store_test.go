package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine"
	"github.com/hashicorp/raft"
)

// The behaviour table raft's users rely on, re-implemented from what
// raft-boltdb v2's store tests and raft-wal's StoreLogs and DeleteRange
// tables check; every case is checked again after a reopen of the
// directory. Each test runs on a store from Open and on a group of a set
// whose other groups write beside it (storeKinds, kinds_test.go).

// testLog is entry idx with fields that all depend on idx.
func testLog(idx uint64) *raft.Log {
	l := &raft.Log{
		Index:      idx,
		Term:       1 + idx/100,
		Type:       raft.LogType(idx % 6),
		Data:       []byte(fmt.Sprintf("data-%d-%s", idx, strings.Repeat("x", int(idx%37)))),
		AppendedAt: time.Unix(1700000000, int64(idx)*1000).UTC(),
	}
	if idx%3 == 0 {
		l.Extensions = []byte(fmt.Sprintf("ext-%d", idx))
	}
	return l
}

func logs(lo, hi uint64) []*raft.Log {
	var out []*raft.Log
	for i := lo; i <= hi; i++ {
		out = append(out, testLog(i))
	}
	return out
}

// sameLog compares every field raft writes.
func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && bytes.Equal(a.Data, b.Data) &&
		bytes.Equal(a.Extensions, b.Extensions) && (a.Extensions == nil) == (b.Extensions == nil) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

// checkLog checks that the store holds exactly lo..hi (0, 0: empty), each
// entry as testLog made it (or as want says), and that the indexes beside
// the range give raft.ErrLogNotFound itself.
func checkLog(t *testing.T, s *Store, lo, hi uint64, want func(uint64) *raft.Log) {
	t.Helper()
	if want == nil {
		want = testLog
	}
	first, err1 := s.FirstIndex()
	last, err2 := s.LastIndex()
	if err1 != nil || err2 != nil || first != lo || last != hi {
		t.Fatalf("FirstIndex, LastIndex = %d, %d (%v, %v); want %d, %d", first, last, err1, err2, lo, hi)
	}
	if hi > 0 {
		for i := lo; i <= hi; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				t.Fatalf("GetLog(%d): %v", i, err)
			}
			if w := want(i); !sameLog(&l, w) {
				t.Fatalf("GetLog(%d) = %+v, want %+v", i, l, *w)
			}
		}
	}
	for _, i := range []uint64{lo - 1, hi + 1, hi + 100} {
		if i == 0 && lo == 0 {
			continue
		}
		var l raft.Log
		if err := s.GetLog(i, &l); err != raft.ErrLogNotFound { // == on purpose: raft compares so
			t.Fatalf("GetLog(%d) outside %d..%d = %v, want raft.ErrLogNotFound itself", i, lo, hi, err)
		}
	}
}

// raft-boltdb: FirstIndex, LastIndex, GetLog, StoreLog, StoreLogs,
// DeleteRange on a fresh store.
func TestBoltStoreCases(t *testing.T) { forKinds(t, testBoltStoreCases) }

func testBoltStoreCases(t *testing.T, k storeKind) {
	dir := t.TempDir()
	s := openStore(t, k, dir)
	checkLog(t, s, 0, 0, nil) // FirstIndex/LastIndex 0 on an empty store
	var l raft.Log
	if err := s.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog of an empty store: %v", err)
	}
	if err := s.StoreLog(testLog(1)); err != nil { // SetLog
		t.Fatal(err)
	}
	checkLog(t, s, 1, 1, nil)
	if err := s.StoreLogs(logs(2, 3)); err != nil { // SetLogs
		t.Fatal(err)
	}
	checkLog(t, s, 1, 3, nil)
	s = reopen(t, k, s, dir)
	checkLog(t, s, 1, 3, nil)
	if err := s.DeleteRange(1, 2); err != nil { // DeleteRange
		t.Fatal(err)
	}
	checkLog(t, s, 3, 3, nil)
	s = reopen(t, k, s, dir)
	checkLog(t, s, 3, 3, nil)
}

// raft-boltdb: Set/Get and SetUint64/GetUint64, with a missing key. Here a
// missing key is nil (0) and a nil error, as raft's StableStore contract
// says; raft-boltdb returns an error "not found", which raft also
// tolerates. Keys and values are any bytes.
func TestStableStore(t *testing.T) { forKinds(t, testStableStore) }

func testStableStore(t *testing.T, k storeKind) {
	dir := t.TempDir()
	s := openStore(t, k, dir)
	if v, err := s.Get([]byte("missing")); v != nil || err != nil {
		t.Fatalf("Get(missing) = %q, %v; want nil, nil", v, err)
	}
	if v, err := s.GetUint64([]byte("missing")); v != 0 || err != nil {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, nil", v, err)
	}
	cases := map[string][]byte{
		"CurrentTerm\x00": {0, 0, 0, 0, 0, 0, 0, 9},
		"":                []byte("empty key"),
		"empty value":     {},
		"\xff\x00binary":  {0, 1, 2, 255},
		"LastVoteCand":    []byte("node-2"),
	}
	for k, v := range cases {
		if err := s.Set([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetUint64([]byte("LastVoteTerm"), 1<<40+7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-3")); err != nil { // overwrite
		t.Fatal(err)
	}
	cases["LastVoteCand"] = []byte("node-3")
	check := func(s *Store) {
		t.Helper()
		for k, want := range cases {
			got, err := s.Get([]byte(k))
			if err != nil || !bytes.Equal(got, want) || got == nil {
				t.Fatalf("Get(%q) = %q, %v; want %q", k, got, err, want)
			}
		}
		if v, err := s.GetUint64([]byte("LastVoteTerm")); v != 1<<40+7 || err != nil {
			t.Fatalf("GetUint64 = %d, %v", v, err)
		}
		if v, err := s.GetUint64([]byte("CurrentTerm\x00")); v != 9 || err != nil {
			t.Fatalf("GetUint64 of a Set value = %d, %v", v, err)
		}
		if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil {
			t.Fatal("GetUint64 of a 6-byte value succeeded")
		}
	}
	check(s)
	s = reopen(t, k, s, dir)
	check(s)
	// The stable store and the log live side by side.
	if err := s.StoreLogs(logs(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, k, s, dir)
	check(s)
	checkLog(t, s, 5, 10, nil)
}

// raft-wal's StoreLogs table: appends to an empty and an existing log,
// across segments, out of order and out of sequence (refused, nothing
// written), each checked again after a reopen.
func TestStoreLogsTable(t *testing.T) { forKinds(t, testStoreLogsTable) }

func testStoreLogsTable(t *testing.T, k storeKind) {
	for _, tc := range []struct {
		name     string
		segSize  int64
		store    [][2]uint64 // StoreLogs calls: lo..hi, in order
		bad      []uint64    // a final StoreLogs with these indexes, which must fail
		msg      []string    // ... with an error saying these
		notMsg   string      // ... and not this
		lo, hi   uint64
		segments int // at least this many segments after it (0: any)
	}{
		{name: "empty log append", store: [][2]uint64{{1, 5}}, lo: 1, hi: 5},
		{name: "empty log append, start from non-zero", store: [][2]uint64{{10000, 10004}}, lo: 10000, hi: 10004},
		{name: "existing log append", store: [][2]uint64{{1, 10}, {11, 15}}, lo: 1, hi: 15},
		{name: "existing multi segment log append", segSize: 8 << 10, store: [][2]uint64{{1, 100}, {101, 150}, {151, 215}}, lo: 1, hi: 215, segments: 3},
		{name: "out of order", store: [][2]uint64{{1, 5}}, bad: []uint64{6, 8, 7}, lo: 1, hi: 5},
		{name: "out of sequence", store: [][2]uint64{{1, 5}}, bad: []uint64{7, 8, 9}, lo: 1, hi: 5,
			msg: []string{"holds up to index 5", "offered index 7", "a gap of 1", "must forward IsMonotonic", "raft.LogCache"}},
		{name: "repeated index", store: [][2]uint64{{1, 5}}, bad: []uint64{5, 6}, lo: 1, hi: 5,
			msg: []string{"holds up to index 5", "offered index 5", "DeleteRange"}, notMsg: "IsMonotonic"},
		{name: "index zero", bad: []uint64{0, 1}, lo: 0, hi: 0},
		{name: "rotate when full", segSize: 8 << 10, store: [][2]uint64{{1, 104}}, lo: 1, hi: 104},
		{name: "rotate and append more", segSize: 8 << 10, store: [][2]uint64{{1, 100}, {101, 109}}, lo: 1, hi: 109, segments: 2},
		{name: "one entry a call", segSize: 16 << 10, store: [][2]uint64{{100, 100}, {101, 101}, {102, 102}, {103, 205}}, lo: 100, hi: 205},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var opts []Option
			if tc.segSize > 0 {
				opts = append(opts, WithSegmentSize(tc.segSize))
			}
			s := openStore(t, k, dir, opts...)
			for _, r := range tc.store {
				if err := s.StoreLogs(logs(r[0], r[1])); err != nil {
					t.Fatalf("StoreLogs(%d..%d): %v", r[0], r[1], err)
				}
			}
			if tc.bad != nil {
				var ls []*raft.Log
				for _, i := range tc.bad {
					ls = append(ls, testLog(i))
				}
				err := s.StoreLogs(ls)
				if !errors.Is(err, ErrNonContiguous) {
					t.Fatalf("StoreLogs(%v) = %v, want ErrNonContiguous", tc.bad, err)
				}
				for _, m := range tc.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("StoreLogs(%v) = %q, which does not say %q", tc.bad, err, m)
					}
				}
				if tc.notMsg != "" && strings.Contains(err.Error(), tc.notMsg) {
					t.Errorf("StoreLogs(%v) = %q, which should not say %q", tc.bad, err, tc.notMsg)
				}
			}
			checkLog(t, s, tc.lo, tc.hi, nil)
			s = reopen(t, k, s, dir, opts...)
			checkLog(t, s, tc.lo, tc.hi, nil)
			if tc.segments > 0 {
				if n := countSegments(t, dir); n < tc.segments {
					t.Fatalf("%d segments, want at least %d", n, tc.segments)
				}
			}
			// And it goes on.
			if err := s.StoreLogs(logs(tc.hi+1, tc.hi+3)); tc.hi > 0 && err != nil {
				t.Fatal(err)
			}
		})
	}
}

func countSegments(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// raft-wal's DeleteRange table, on a log of 1000..1209 over several
// segments: no-ops, a middle range (refused), head truncations within a
// segment, across segments and of everything, tail truncations within and
// across segments, and everything; after each the log is checked, again
// after a reopen, and an append continues it (at any index once empty).
func TestDeleteRangeTable(t *testing.T) { forKinds(t, testDeleteRangeTable) }

func testDeleteRangeTable(t *testing.T, k storeKind) {
	const lo, hi = 1000, 1209
	for _, tc := range []struct {
		name        string
		min, max    uint64
		err         error
		first, last uint64 // after; 0, 0: empty
	}{
		{name: "no-op empty range", min: 1000, max: 999, first: lo, last: hi},
		{name: "no-op truncate from head", min: 0, max: 100, first: lo, last: hi},
		{name: "no-op truncate from after tail", min: 5000, max: 5100, first: lo, last: hi},
		{name: "error: truncate from middle", min: 1010, max: 1020, err: ErrMiddleRange, first: lo, last: hi},
		{name: "in-segment head truncation", min: 0, max: 1010, first: 1011, last: hi},
		{name: "segment deleting head truncation", min: 1000, max: 1101, first: 1102, last: hi},
		{name: "head truncation deleting all segments", min: 1000, max: hi, first: 0, last: 0},
		{name: "non-deleting tail truncation", min: hi - 1, max: hi, first: lo, last: hi - 2},
		{name: "tail-deleting tail truncation", min: 1151, max: hi, first: lo, last: 1150},
		{name: "multi-segment deleting tail truncation", min: 1051, max: hi, first: lo, last: 1050},
		{name: "tail truncation past the end", min: 1100, max: 99999, first: lo, last: 1099},
		{name: "everything deleting truncation", min: 1, max: 99999, first: 0, last: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := []Option{WithSegmentSize(8 << 10)}
			s := openStore(t, k, dir, opts...)
			for i := uint64(lo); i <= hi; i += 10 {
				if err := s.StoreLogs(logs(i, min(i+9, hi))); err != nil {
					t.Fatal(err)
				}
			}
			err := s.DeleteRange(tc.min, tc.max)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("DeleteRange(%d, %d) = %v, want %v", tc.min, tc.max, err, tc.err)
			}
			checkLog(t, s, tc.first, tc.last, nil)
			s = reopen(t, k, s, dir, opts...)
			checkLog(t, s, tc.first, tc.last, nil)
			// The next append continues the log; into an empty one, at any
			// index (here below where the old log began).
			next := tc.last + 1
			if tc.last == 0 {
				next = 7
			}
			if err := s.StoreLogs(logs(next, next+4)); err != nil {
				t.Fatalf("append at %d after the deletion: %v", next, err)
			}
			wantFirst := tc.first
			if tc.last == 0 {
				wantFirst = next
			}
			checkLog(t, s, wantFirst, next+4, nil)
			s = reopen(t, k, s, dir, opts...)
			checkLog(t, s, wantFirst, next+4, nil)
		})
	}
}

// A suffix deleted on a conflict never comes back: the new entries at the
// same indexes read as themselves, after reopens too.
func TestConflictSuffixNeverReturns(t *testing.T) { forKinds(t, testConflictSuffixNeverReturns) }

func testConflictSuffixNeverReturns(t *testing.T, k storeKind) {
	dir := t.TempDir()
	s := openStore(t, k, dir, WithSegmentSize(8<<10))
	if err := s.StoreLogs(logs(1, 300)); err != nil {
		t.Fatal(err)
	}
	newer := func(i uint64) *raft.Log {
		l := testLog(i)
		if i > 120 {
			l.Term += 50
			l.Data = append([]byte("newer-"), l.Data...)
		}
		return l
	}
	if err := s.DeleteRange(121, 300); err != nil {
		t.Fatal(err)
	}
	checkLog(t, s, 1, 120, nil)
	for i := uint64(121); i <= 200; i += 20 {
		var ls []*raft.Log
		for j := i; j < i+20; j++ {
			ls = append(ls, newer(j))
		}
		if err := s.StoreLogs(ls); err != nil {
			t.Fatal(err)
		}
	}
	checkLog(t, s, 1, 200, newer)
	s = reopen(t, k, s, dir, WithSegmentSize(8<<10))
	checkLog(t, s, 1, 200, newer)
}

// Every field of raft.Log round-trips: nil and empty Data and Extensions,
// a zero AppendedAt, every type, large terms and big entries.
func TestLogEncodingRoundTrip(t *testing.T) { forKinds(t, testLogEncodingRoundTrip) }

func testLogEncodingRoundTrip(t *testing.T, k storeKind) {
	dir := t.TempDir()
	s := openStore(t, k, dir)
	ls := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte{1, 2}},
		{Index: 2, Term: 1 << 62, Type: raft.LogNoop},
		{Index: 3, Term: 3, Type: raft.LogCommand, Data: []byte{}, Extensions: []byte{}},
		{Index: 4, Term: 3, Type: raft.LogBarrier, Extensions: []byte("only ext"), AppendedAt: time.Unix(0, -5)},
		{Index: 5, Term: 3, Type: raft.LogCommand, Data: bytes.Repeat([]byte("big"), 1<<18), AppendedAt: time.Now()},
	}
	if err := s.StoreLogs(ls); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		for _, want := range ls {
			var got raft.Log
			if err := s.GetLog(want.Index, &got); err != nil {
				t.Fatal(err)
			}
			if !sameLog(&got, want) || (got.Data == nil) != (want.Data == nil) {
				t.Fatalf("index %d: got %+v, want %+v", want.Index, got, *want)
			}
		}
	}
	check(s)
	s = reopen(t, k, s, dir)
	check(s)
}

// The staged commit index rides in the next StoreLogs and is read back
// from the last entry, never above LastIndex.
func TestCommitTracking(t *testing.T) { forKinds(t, testCommitTracking) }

func testCommitTracking(t *testing.T, k storeKind) {
	dir := t.TempDir()
	s := openStore(t, k, dir)
	if c, err := s.GetCommitIndex(); c != 0 || err != nil {
		t.Fatalf("empty store: GetCommitIndex = %d, %v", c, err)
	}
	s.StageCommitIndex(3)
	if c, _ := s.GetCommitIndex(); c != 0 {
		t.Fatalf("a staged index was persisted before any StoreLogs: %d", c)
	}
	if err := s.StoreLogs(logs(1, 5)); err != nil {
		t.Fatal(err)
	}
	s.StageCommitIndex(9) // higher than the log
	if err := s.StoreLogs(logs(6, 7)); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, k, s, dir)
	if c, err := s.GetCommitIndex(); c != 7 || err != nil {
		t.Fatalf("GetCommitIndex = %d, %v; want 7 (the staged 9, capped at the last index)", c, err)
	}
	if err := s.DeleteRange(7, 7); err != nil {
		t.Fatal(err)
	}
	if c, err := s.GetCommitIndex(); c != 6 || err != nil {
		t.Fatalf("after index 7 went: GetCommitIndex = %d, %v; want 6 (6 was written with 9)", c, err)
	}
	if err := s.DeleteRange(6, 6); err != nil {
		t.Fatal(err)
	}
	if c, err := s.GetCommitIndex(); c != 3 || err != nil {
		t.Fatalf("after the suffix went: GetCommitIndex = %d, %v; want 3 (written with 1..5)", c, err)
	}
}

// Bad input gets a clear error and loses nothing: a second Open of the
// directory, a corrupt sealed segment (found when it is read).
func TestBadInput(t *testing.T) { forKinds(t, testBadInput) }

func testBadInput(t *testing.T, k storeKind) {
	dir := t.TempDir()
	opts := []Option{WithSegmentSize(8 << 10)}
	s := openStore(t, k, dir, opts...)
	if err := s.StoreLogs(logs(1, 200)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, WithBackend(engine.BackendFallback)); !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if _, err := OpenSet(dir, WithBackend(engine.BackendFallback)); !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("OpenSet of an open directory: %v, want ErrLocked", err)
	}
	checkLog(t, s, 1, 200, nil)
	if err := closeStore(t, k, s); err != nil {
		t.Fatal(err)
	}
	// Flip a byte of entry 1 inside its (sealed) segment's batch: alone in
	// the directory, the first segment's first batch, at 4096.
	name, off := findBytes(t, dir, testLog(1).Data)
	if !k.set && (filepath.Base(name) != "000001.log" || off/4096*4096 != 4096) {
		t.Fatalf("entry 1 is at %s offset %d, not in the first batch of 000001.log", name, off)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Open reads no sealed segment's body: the damage is found by the
	// first read of it, which says where it is.
	s = openStore(t, k, dir, append(opts, WithBackend(engine.BackendFallback))...)
	var l raft.Log
	err = s.GetLog(1, &l)
	at := fmt.Sprintf("offset %d", off/4096*4096) // the batch begins in the block of its first entry
	if !errors.Is(err, engine.ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(name)) || !strings.Contains(err.Error(), at) {
		t.Fatalf("GetLog of an entry in a corrupt sealed segment: %v; want ErrCorrupt naming %s and %s", err, filepath.Base(name), at)
	}
}

// findBytes returns the segment of dir, and the offset in it, where b is.
func findBytes(t *testing.T, dir string, b []byte) (string, int) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, b); i >= 0 {
			return name, i
		}
	}
	t.Fatalf("no segment of %s holds %q", dir, b)
	return "", 0
}

// Prefix deletions from another goroutine (raft compacts from its snapshot
// goroutine while the main loop appends) neither lose an appended entry
// nor let a deleted one back.
func TestCompactionConcurrentWithStoreLogs(t *testing.T) {
	forKinds(t, testCompactionConcurrentWithStoreLogs)
}

func testCompactionConcurrentWithStoreLogs(t *testing.T, k storeKind) {
	dir := t.TempDir()
	s := openStore(t, k, dir, WithSegmentSize(16<<10))
	if err := s.StoreLogs(logs(1, 64)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for i := uint64(65); i <= 3000 && err == nil; i += 16 {
			err = s.StoreLogs(logs(i, i+15))
		}
		done <- err
	}()
	var cut uint64
	for k := 0; k < 40; k++ {
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if last-first > 100 {
			cut = last - 50
			if err := s.DeleteRange(first, cut); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cut == 0 {
		t.Fatal("no compaction ran while appending")
	}
	first, _ := s.FirstIndex()
	if first <= cut {
		t.Fatalf("FirstIndex %d after deleting up to %d", first, cut)
	}
	checkLog(t, s, first, 3008, nil)
	s = reopen(t, k, s, dir, WithSegmentSize(16<<10))
	checkLog(t, s, first, 3008, nil)
}
