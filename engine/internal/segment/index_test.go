package segment

import (
	"errors"
	"testing"
)

// testIndex is the index of a segment of two logs' batches: log 1 in every
// batch, log 9 in every other one, LSNs ascending per log.
func testIndex(h *Header, batches int) *Index {
	x := NewIndex(h)
	off := int64(h.Align)
	for i := range batches {
		span := int64(h.Align) * int64(1+i%3)
		x.Add(1, off, span, uint64(10*i+1), uint64(10*i+5), 5)
		if i%2 == 0 {
			x.Add(9, off, span, uint64(i), uint64(i), 1)
		}
		x.AddBatch()
		off += span
	}
	return x
}

func TestIndexRoundTrip(t *testing.T) {
	h := &Header{ID: 7, Salt: 0xabcdef, Align: 4096}
	x := testIndex(h, 50)
	y, err := DecodeIndex(x.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if y.SegID != 7 || y.Salt != 0xabcdef || y.Align != 4096 || y.End != x.End || y.Batches != 50 || len(y.Logs) != 2 {
		t.Fatalf("decoded %+v", y)
	}
	for i, l := range x.Logs {
		dl := y.Logs[i]
		if dl.Log != l.Log || dl.Meta != l.Meta || dl.Refs.Len() != l.Refs.Len() {
			t.Fatalf("log %d: decoded %+v, want %+v", l.Log, dl, l)
		}
		for j := range l.Refs.Len() {
			if dl.Refs.At(j) != l.Refs.At(j) {
				t.Fatalf("log %d ref %d: %+v, want %+v", l.Log, j, dl.Refs.At(j), l.Refs.At(j))
			}
		}
	}
	if err := y.Matches(h, x.Meta(), true); err != nil {
		t.Fatal(err)
	}
	if m := y.Meta(); m.Entries != 50*5+25 || m.MinLSN != 0 || m.MaxLSN != 495 {
		t.Fatalf("meta %+v", m)
	}
}

// Every bit flipped and every truncation of an index file is detected: an
// index is trusted only whole.
func TestIndexCorruptionDetected(t *testing.T) {
	h := &Header{ID: 3, Salt: 42, Align: 512}
	b := testIndex(h, 6).Encode()
	for i := range len(b) * 8 {
		c := append([]byte(nil), b...)
		c[i/8] ^= 1 << (i % 8)
		if _, err := DecodeIndex(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	}
	for n := range len(b) {
		if _, err := DecodeIndex(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

// An index of another segment (a stale one: same ID, other salt, as a
// recycled file would carry) or one that disagrees with the .meta is not
// this segment's.
func TestIndexMatches(t *testing.T) {
	h := &Header{ID: 3, Salt: 42, Align: 4096}
	x := testIndex(h, 4)
	for name, other := range map[string]Header{
		"salt": {ID: 3, Salt: 43, Align: 4096}, "id": {ID: 4, Salt: 42, Align: 4096}, "align": {ID: 3, Salt: 42, Align: 512},
	} {
		if err := x.Matches(&other, Meta{}, false); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s differs: %v", name, err)
		}
	}
	m := x.Meta()
	m.Entries++
	if err := x.Matches(h, m, true); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a .meta with one entry more: %v", err)
	}
}

// Find returns the ref holding an LSN: by binary search when ordered, by
// a scan newest first when not.
func TestRefsFind(t *testing.T) {
	r := NewRefs(4096)
	for i := range uint64(100) {
		r.Append(Ref{MinLSN: 10 * i, MaxLSN: 10*i + 4, Off: int64(4096 * (i + 1)), Span: 4096})
	}
	if !r.Ordered() {
		t.Fatal("ascending refs not ordered")
	}
	for lsn := range uint64(1000) {
		got := r.Find(lsn, true, nil)
		want := lsn%10 <= 4
		if want != (len(got) == 1) || want && got[0] != int(lsn/10) {
			t.Fatalf("Find(%d) = %v", lsn, got)
		}
		if slow := r.Find(lsn, false, nil); len(slow) != len(got) || len(got) == 1 && slow[0] != got[0] {
			t.Fatalf("Find(%d) unordered = %v, ordered %v", lsn, slow, got)
		}
	}
	r.Append(Ref{MinLSN: 3, MaxLSN: 3, Off: 4096 * 200, Span: 4096})
	if r.Ordered() {
		t.Fatal("a ref below the last one left the refs ordered")
	}
	if got := r.Find(3, false, nil); len(got) != 2 || got[0] != 100 || got[1] != 0 {
		t.Fatalf("Find(3) = %v, want [100 0] (newest first)", got)
	}
}

// TestBatchLogsManyLogs: a batch's per-log sums are the same whether its
// logs are found by a scan (few) or by the map (many), across Resets.
func TestBatchLogsManyLogs(t *testing.T) {
	var b BatchLogs
	for round, logs := range []int{3, 40, 16, 17, 2} {
		b.Reset()
		want := map[uint64]LogRange{}
		for i := range 200 {
			e := Entry{Log: uint64((i * 7) % logs), LSN: uint64(1000 - i), Data: make([]byte, i%5)}
			b.Add(e)
			r, ok := want[e.Log]
			if !ok {
				r = LogRange{Log: e.Log, MinLSN: e.LSN, MaxLSN: e.LSN}
			}
			r.MinLSN, r.MaxLSN = min(r.MinLSN, e.LSN), max(r.MaxLSN, e.LSN)
			r.Count++
			r.Bytes += uint64(EntryHeaderLen2 + len(e.Data))
			want[e.Log] = r
		}
		got := b.Logs()
		if len(got) != len(want) {
			t.Fatalf("round %d: %d logs, want %d", round, len(got), len(want))
		}
		for _, r := range got {
			if r != want[r.Log] {
				t.Fatalf("round %d: log %d summed %+v, want %+v", round, r.Log, r, want[r.Log])
			}
		}
	}
}
