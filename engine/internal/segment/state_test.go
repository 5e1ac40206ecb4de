package segment

import (
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomPos draws a position among 6 segments of 4 batches.
func randomPos(r *rand.Rand) Pos { return Pos{Seg: uint64(r.IntN(6)), Off: int64(r.IntN(4))} }

// randomLogState draws a log's state over small positions and LSNs, so
// that every case of the rule (before the base, below first, above a cut
// or at or below a move that reaches a span whole or in part, two cuts,
// two moves) comes up often. Its cuts and moves are by ascending Below, as
// the engine makes them (each reaches the batches written before it).
func randomLogState(r *rand.Rand) *LogState {
	s := &LogState{First: uint64(r.IntN(12))}
	if r.IntN(3) == 0 {
		s.Base = randomPos(r)
	}
	below := Pos{}
	for range r.IntN(4) {
		below.Off += int64(1 + r.IntN(3))
		if below.Off > 3 {
			below.Seg, below.Off = below.Seg+1, below.Off-4
		}
		s.Cuts = append(s.Cuts, Cut{After: uint64(r.IntN(20)), Below: below})
	}
	below = Pos{}
	for range r.IntN(3) {
		below.Off += int64(1 + r.IntN(3))
		if below.Off > 3 {
			below.Seg, below.Off = below.Seg+1, below.Off-4
		}
		s.Moves = append(s.Moves, Move{Through: uint64(r.IntN(20)), Below: below})
	}
	return s
}

// TestDeletionRuleAgrees checks that Clip, Covers and Prune say what Dead
// says, entry by entry and batch by batch: the four are the one rule, read
// four ways. A span of entries is drawn as the batches of one segment,
// each holding the LSN range lo..hi.
func TestDeletionRuleAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		s := randomLogState(r)
		seg := uint64(r.IntN(6))
		from, to := int64(r.IntN(4)), int64(0)
		to = from + int64(r.IntN(int(4-from)))
		span := Span{Pos{seg, from}, Pos{seg, to}}
		lo := uint64(r.IntN(20))
		hi := lo + uint64(r.IntN(8))
		liveLo, liveHi, live := uint64(0), uint64(0), 0
		for off := from; off <= to; off++ {
			for l := lo; l <= hi; l++ {
				if !s.Dead(Pos{seg, off}, l) {
					if live == 0 || l < liveLo {
						liveLo = l
					}
					liveHi = max(liveHi, l)
					live++
				}
			}
		}
		clo, chi, ok := s.Clip(span, lo, hi)
		if live > 0 && (!ok || clo > liveLo || chi < liveHi) {
			t.Fatalf("%+v span %+v [%d,%d]: Clip [%d,%d] %v misses live entries %d..%d", s, span, lo, hi, clo, chi, ok, liveLo, liveHi)
		}
		if from == to && ok != (live > 0) {
			// One batch: the clip is exact.
			t.Fatalf("%+v at %+v [%d,%d]: Clip ok=%v, %d live entries", s, span.From, lo, hi, ok, live)
		}
		if from == to && ok && (clo != liveLo || chi != liveHi) {
			t.Fatalf("%+v at %+v [%d,%d]: Clip [%d,%d], live %d..%d", s, span.From, lo, hi, clo, chi, liveLo, liveHi)
		}
		m := Meta{MinLSN: lo, MaxLSN: hi, Entries: hi - lo + 1}
		all := uint64(to-from+1) * (hi - lo + 1)
		switch got := s.Covers(span, m, true); {
		case got == DeletesAll && live > 0:
			t.Fatalf("%+v span %+v [%d,%d]: Covers says all deleted, %d live", s, span, lo, hi, live)
		case got == DeletesNone && uint64(live) != all:
			t.Fatalf("%+v span %+v [%d,%d]: Covers says none deleted, %d of %d live", s, span, lo, hi, live, all)
		case from == to && live == 0 && got != DeletesAll:
			t.Fatalf("%+v at %+v [%d,%d]: Covers %d, nothing live", s, span.From, lo, hi, got)
		}
		lowest := randomPos(r)
		p := s.Clone()
		p.Prune(lowest)
		for sg := lowest.Seg; sg < 7; sg++ {
			for off := int64(0); off < 4; off++ {
				if (Pos{sg, off}).Before(lowest) {
					continue
				}
				for l := range uint64(24) {
					if p.Dead(Pos{sg, off}, l) != s.Dead(Pos{sg, off}, l) {
						t.Fatalf("%+v pruned at %+v to %+v: batch %d/%d LSN %d changed", s, lowest, p, sg, off, l)
					}
				}
			}
		}
	}
}

// TestStateRoundTrip checks a record of many logs survives encoding, and
// that a version 1 record (one log, segment IDs) reads as log 0's state
// with segment starts for its positions.
func TestStateRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := State{Floor: 17, Covers: 12, Logs: map[uint64]*LogState{}}
	for id := uint64(1); id < 50; id += 7 {
		l := randomLogState(r)
		l.User = []byte{byte(id)}
		s.Logs[id] = l
	}
	s.Logs[99] = &LogState{} // empty: left out
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	delete(s.Logs, 99)
	if got.Floor != 17 || got.Covers != 12 || !reflect.DeepEqual(got.Logs, s.Logs) {
		t.Fatalf("decoded %+v, want %+v", got, s)
	}
	for i := range len(b) * 8 {
		c := append([]byte(nil), b...)
		c[i/8] ^= 1 << (i % 8)
		if _, err := DecodeState(c); err == nil {
			t.Fatalf("bit %d flipped: decoded", i)
		}
	}
	for n := range len(b) {
		if _, err := DecodeState(b[:n]); err == nil {
			t.Fatalf("cut to %d bytes: decoded", n)
		}
	}
	// version 1: cuts (after 5, below segment 3), base 2, first 4, floor 9, user "u"
	v1 := []byte(StateMagic)
	v1 = append(v1, 1, 0, 0, 0, 1, 0, 0, 0)
	for _, x := range []uint64{4, 2, 9} {
		v1 = appendU64(v1, x)
	}
	v1 = append(v1, 1, 0, 0, 0)
	v1 = appendU64(appendU64(v1, 5), 3)
	v1 = append(v1, 'u')
	v1 = appendCRC(v1)
	got, err = DecodeState(v1)
	if err != nil {
		t.Fatal(err)
	}
	want := &LogState{First: 4, Base: SegmentStart(2), Cuts: []Cut{{After: 5, Below: SegmentStart(3)}}, User: []byte("u")}
	if got.Floor != 9 || got.Covers != 0 || len(got.Logs) != 1 || !reflect.DeepEqual(got.Logs[0], want) {
		t.Fatalf("version 1 record read as %+v (log 0 %+v)", got, got.Logs[0])
	}
	bad := append([]byte(nil), b...)
	bad[8] = 3
	bad = appendCRC(bad[:len(bad)-4])
	if _, err := DecodeState(bad); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("version 3: %v", err)
	}
}

// TestStateCloneShares checks that a clone can be changed without
// changing the record it came from.
func TestStateCloneShares(t *testing.T) {
	s := &LogState{Cuts: []Cut{{After: 1, Below: SegmentStart(2)}}, User: []byte("u")}
	c := s.Clone()
	c.Cuts[0].After = 9
	c.User[0] = 'x'
	if s.Cuts[0].After != 1 || s.User[0] != 'u' {
		t.Fatalf("clone shares with the original: %+v", s)
	}
}

func appendU64(b []byte, x uint64) []byte {
	for i := range 8 {
		b = append(b, byte(x>>(8*i)))
	}
	return b
}

func appendCRC(b []byte) []byte {
	c := crc32.Checksum(b, Castagnoli)
	return append(b, byte(c), byte(c>>8), byte(c>>16), byte(c>>24))
}

// TestRewriteRecords checks what a rewrite's records do, applied as the
// engine writes them: the first batch's record names no position (its
// own), the later ones the first's; the originals of the copied LSNs die,
// the copies live, later entries are untouched, and the later records of
// one rewrite leave one move.
func TestRewriteRecords(t *testing.T) {
	s := &LogState{First: 3}
	p1, p2 := Pos{Seg: 5, Off: 4096}, Pos{Seg: 6, Off: 0}
	s = s.Apply(p1, Entry{Kind: KindRewrite, Log: 1, LSN: 10})
	s = s.Apply(p2, Entry{Kind: KindRewrite, Log: 1, LSN: 20, Data: EncodePos(p1)})
	if len(s.Moves) != 1 || s.Moves[0] != (Move{Through: 20, Below: p1}) {
		t.Fatalf("moves %+v, want one through 20 below %+v", s.Moves, p1)
	}
	old, copy1, copy2, later := Pos{Seg: 2}, p1, p2, Pos{Seg: 6, Off: 8192}
	for _, c := range []struct {
		at   Pos
		lsn  uint64
		dead bool
	}{
		{old, 2, true}, {old, 3, true}, {old, 20, true}, {old, 21, false},
		{copy1, 3, false}, {copy1, 10, false}, {copy2, 15, false}, {later, 25, false}, {later, 5, false},
	} {
		if got := s.Dead(c.at, c.lsn); got != c.dead {
			t.Errorf("batch %+v LSN %d: dead %v, want %v", c.at, c.lsn, got, c.dead)
		}
	}
	// A segment before the rewrite whose entries it copied whole is dead;
	// one holding later LSNs too is not.
	if got := s.Covers(Whole(2), Meta{MinLSN: 3, MaxLSN: 20, Entries: 18}, true); got != DeletesAll {
		t.Errorf("copied segment: %v", got)
	}
	if got := s.Covers(Whole(3), Meta{MinLSN: 18, MaxLSN: 30, Entries: 13}, true); got != DeletesSome {
		t.Errorf("segment with later LSNs: %v", got)
	}
	// A record at a position before the one it names is not the engine's:
	// it changes nothing.
	if n := s.Apply(Pos{Seg: 1}, Entry{Kind: KindRewrite, Log: 1, LSN: 99, Data: EncodePos(p2)}); len(n.Moves) != 1 {
		t.Errorf("record before its rewrite's start applied: %+v", n.Moves)
	}
	// TruncateAfter of everything forgets the moves with the rest.
	if n := s.Apply(Pos{Seg: 7}, Entry{Kind: KindTruncateAll, Log: 1}); len(n.Moves) != 0 {
		t.Errorf("moves after TruncateAll: %+v", n.Moves)
	}
}
