package segment

import (
	"math/rand/v2"
	"testing"
)

// randomState draws a record over small segment IDs and LSNs, so every
// case of the rule (below the base, below first, above a cut, two cuts
// reaching one segment) comes up often. Its cuts are by ascending Below,
// as the engine makes them (each cut reaches the segments written before
// it).
func randomState(r *rand.Rand) State {
	s := State{First: uint64(r.IntN(12)), Base: uint64(r.IntN(4))}
	below := uint64(0)
	for range r.IntN(4) {
		below += uint64(1 + r.IntN(3))
		s.Cuts = append(s.Cuts, Cut{After: uint64(r.IntN(20)), Below: below})
	}
	return s
}

// TestDeletionRuleAgrees checks that Clip, Covers and Prune say what Dead
// says, entry by entry: the three are the one rule, read three ways.
func TestDeletionRuleAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		s := randomState(r)
		seg := uint64(r.IntN(9))
		lo := uint64(r.IntN(20))
		hi := lo + uint64(r.IntN(8))
		live := 0
		for l := lo; l <= hi; l++ {
			if !s.Dead(seg, l) {
				live++
			}
		}
		clo, chi, ok := s.Clip(seg, lo, hi)
		if ok != (live > 0) {
			t.Fatalf("%+v seg %d [%d,%d]: Clip ok=%v, %d live entries", s, seg, lo, hi, ok, live)
		}
		if ok {
			// The rule is a range per segment, so the clip is exact.
			if uint64(live) != chi-clo+1 || s.Dead(seg, clo) || s.Dead(seg, chi) {
				t.Fatalf("%+v seg %d [%d,%d]: Clip [%d,%d], %d live entries", s, seg, lo, hi, clo, chi, live)
			}
		}
		want := DeletesNone
		switch {
		case live == 0:
			want = DeletesAll
		case uint64(live) < hi-lo+1:
			want = DeletesSome
		}
		if got := s.Covers(seg, Meta{MinLSN: lo, MaxLSN: hi, Entries: hi - lo + 1}, true); got != want {
			t.Fatalf("%+v seg %d [%d,%d]: Covers %d, want %d", s, seg, lo, hi, got, want)
		}
		if got := s.Covers(seg, Meta{}, false); got == DeletesAll != (seg < s.Base) {
			t.Fatalf("%+v seg %d: Covers without a .meta says %d", s, seg, got)
		}
		lowest := uint64(r.IntN(9))
		p := s.Clone()
		p.Prune(lowest)
		for sg := lowest; sg < 10; sg++ {
			for l := range uint64(24) {
				if p.Dead(sg, l) != s.Dead(sg, l) {
					t.Fatalf("%+v pruned at %d to %+v: segment %d LSN %d changed", s, lowest, p, sg, l)
				}
			}
		}
	}
}

// TestStateCloneShares checks that a clone can be changed without
// changing the record it came from.
func TestStateCloneShares(t *testing.T) {
	s := State{Cuts: []Cut{{After: 1, Below: 2}}, User: []byte("u")}
	c := s.Clone()
	c.Cuts[0].After = 9
	c.User[0] = 'x'
	if s.Cuts[0].After != 1 || s.User[0] != 'u' {
		t.Fatalf("clone shares with the original: %+v", s)
	}
}
