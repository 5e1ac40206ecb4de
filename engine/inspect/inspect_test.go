package inspect

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/internal/segment"
)

// inspectDir writes a log of 13 batches of 3 entries of 1000 bytes
// (LSN 1..39, unordered inside each batch) in segments of 16 KiB, so that
// segments 1..4 are sealed (3 batches each) and segment 5, holding the last
// batch, is left active: Close seals it, and its .meta is removed after, as
// a writer that crashed after its last batch leaves it.
func inspectDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.SegmentSize = 16 << 10
	c := openT(t, cfg)
	for b := 0; b < 13; b++ {
		base := engine.LSN(3*b + 1)
		mustFlush(t, c, []*engine.PendingEntry{
			entry(base+2, byte('a'+b), 1000),
			entry(base, byte('a'+b), 1000),
			entry(base+1, byte('a'+b), 1000),
		}, true)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, segment.MetaName(5))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// batchOffsets lists the offsets of the batches of a segment file.
func inspectBatchOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off, seq := int64(h.Align), uint64(1); off+segment.BatchHeaderLen <= int64(len(b)); seq++ {
		bh, why := segment.DecodeBatchHeader(b[off:], h.Salt, seq)
		if why != segment.OK {
			break
		}
		offs = append(offs, off)
		off += bh.Span(int(h.Align))
	}
	return offs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// dirState is every name, mode, size, mtime and content hash of a directory.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s %v %d %d %x\n", e.Name(), info.Mode(), info.Size(), info.ModTime().UnixNano(), sha256.Sum256(b))
	}
	return sb.String()
}

func TestInspectCleanDirectory(t *testing.T) {
	dir := inspectDir(t)
	r, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Fatalf("problems in a clean directory: %v", r.Problems)
	}
	if len(r.Segments) != 5 {
		t.Fatalf("%d segments, want 5: %+v", len(r.Segments), r.Segments)
	}
	var entries uint64
	for i, s := range r.Segments {
		id := uint64(i + 1)
		wantState, wantMeta, wantBatches := SegmentSealed, MetaOK, uint64(3)
		if id == 5 {
			wantState, wantMeta, wantBatches = SegmentActive, MetaMissing, 1
		}
		if s.ID != id || s.File != segment.Name(id) || s.State != wantState || s.Meta != wantMeta || s.Batches != wantBatches {
			t.Errorf("segment %d: %+v; want state %s, meta %s, %d batches", id, s, wantState, wantMeta, wantBatches)
		}
		first := engine.LSN(9*(id-1) + 1)
		if s.MinLSN != first || s.MaxLSN != first+engine.LSN(3*wantBatches)-1 || s.Entries != 3*wantBatches {
			t.Errorf("segment %d: LSN %d..%d, %d entries", id, s.MinLSN, s.MaxLSN, s.Entries)
		}
		if s.Header == nil || s.Header.ID != id || s.Header.Version != segment.Version3 || s.Header.Flags&segment.FlagOneLog == 0 || s.Header.Encrypted || s.Header.Salt == 0 ||
			s.Header.Alignment < 4096 || s.Header.Created.IsZero() {
			t.Errorf("segment %d: header %+v", id, s.Header)
		}
		offs := inspectBatchOffsets(t, filepath.Join(dir, s.File))
		last := offs[len(offs)-1]
		if want := last + int64(segment.BatchSpan(3*(segment.EntryHeaderLen2+1000), int(s.Header.Alignment))); s.Used != want {
			t.Errorf("segment %d: used %d, want %d", id, s.Used, want)
		}
		if s.FileSize < s.Used || s.Torn != 0 {
			t.Errorf("segment %d: file size %d, used %d, torn %d", id, s.FileSize, s.Used, s.Torn)
		}
		if s.Meta == MetaOK && (s.MetaFile == nil || *s.MetaFile != (engine.SegmentMetadata{MinLSN: s.MinLSN, MaxLSN: s.MaxLSN, EntryCount: s.Entries})) {
			t.Errorf("segment %d: .meta %+v", id, s.MetaFile)
		}
		entries += s.Entries
	}
	if entries != 39 {
		t.Errorf("%d entries, want 39", entries)
	}
	found := false
	for _, o := range r.Other {
		found = found || o.Name == segment.LockName
	}
	if !found {
		t.Errorf("LOCK not listed among other files: %+v", r.Other)
	}
	if p, err := Verify(dir); err != nil || len(p) != 0 {
		t.Fatalf("Verify: %v, %v", p, err)
	}
}

func TestInspectVerifyDumpMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := Dir(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Inspect: %v, want fs.ErrNotExist", err)
	}
	if _, err := Verify(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Verify: %v, want fs.ErrNotExist", err)
	}
	if err := Dump(dir, DumpOptions{}, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dump: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the directory was created: %v", err)
	}
}

func TestVerifyCorruptSealedSegment(t *testing.T) {
	dir := inspectDir(t)
	path := filepath.Join(dir, segment.Name(2))
	offs := inspectBatchOffsets(t, path)
	flipByte(t, path, offs[1]+segment.BatchHeaderLen+500) // entry bytes of batch 2
	before := dirState(t, dir)

	probs, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seg, meta *Problem
	for i, p := range probs {
		switch {
		case p.File == segment.Name(2) && p.Offset == offs[1] && p.Severity == SeverityError:
			seg = &probs[i]
		case p.File == segment.MetaName(2) && p.Severity == SeverityError:
			meta = &probs[i]
		default:
			t.Errorf("unexpected problem: %v", p)
		}
	}
	if seg == nil || !strings.Contains(seg.What, string(segment.BadCRC)) {
		t.Errorf("no CRC error at offset %d of %s: %v", offs[1], segment.Name(2), probs)
	}
	if meta == nil || !strings.Contains(meta.What, "says 9 entries") || !strings.Contains(meta.What, "holds 3 entries") {
		t.Errorf("no .meta mismatch reported: %v", probs)
	}
	r, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Segments[1]; s.State != SegmentBroken || s.Meta != MetaMismatch || s.Used != offs[1] || s.Torn == 0 || s.Entries != 3 {
		t.Errorf("segment 2: %+v", s)
	}
	for _, s := range r.Segments {
		if s.ID != 2 && s.State == SegmentBroken {
			t.Errorf("segment %d marked broken", s.ID)
		}
	}
	if after := dirState(t, dir); after != before {
		t.Fatalf("Verify/Inspect changed the directory:\n%s\n%s", before, after)
	}
	// The engine agrees: Replay fails on it.
	c := openT(t, engine.DefaultConfig(dir))
	if err := c.Replay(0, func(engine.LSN, []byte) error { return nil }); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("Replay: %v, want engine.ErrCorrupt", err)
	}
}

func TestVerifyTornTailOfLastSegmentIsAWarning(t *testing.T) {
	dir := inspectDir(t)
	path := filepath.Join(dir, segment.Name(5))
	offs := inspectBatchOffsets(t, path)
	flipByte(t, path, offs[0]+segment.BatchHeaderLen+10)
	probs, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 1 || probs[0].Severity != SeverityWarning || probs[0].File != segment.Name(5) || probs[0].Offset != offs[0] ||
		!strings.Contains(probs[0].What, "torn tail") {
		t.Fatalf("problems: %v", probs)
	}
	r, _ := Dir(dir)
	if s := r.Segments[4]; s.State != SegmentActive || s.Torn == 0 || s.Batches != 0 {
		t.Errorf("segment 5: %+v", s)
	}
	// engine.Open repairs it as Verify said; then the directory is clean.
	c := openT(t, engine.DefaultConfig(dir))
	c.Close()
	if probs, err := Verify(dir); err != nil || len(probs) != 0 {
		t.Fatalf("after Open: %v, %v", probs, err)
	}
}

func TestVerifyHeaderMetaAndFenceProblems(t *testing.T) {
	const anyOffset = -2
	cases := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		want    []Problem // What is matched as a substring
		state   map[uint64]SegmentState
	}{
		{
			name:    "bad header of a sealed segment",
			corrupt: func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, segment.Name(3)), 20) },
			want:    []Problem{{SeverityError, segment.Name(3), 0, "bad segment header"}},
			state:   map[uint64]SegmentState{3: SegmentBroken},
		},
		{
			name: "header of another segment",
			corrupt: func(t *testing.T, dir string) {
				os.Rename(filepath.Join(dir, segment.Name(3)), filepath.Join(dir, "x"))
				os.Rename(filepath.Join(dir, segment.Name(2)), filepath.Join(dir, segment.Name(3)))
				os.Rename(filepath.Join(dir, "x"), filepath.Join(dir, segment.Name(2)))
			},
			want: []Problem{
				{SeverityError, segment.Name(2), 0, "names segment 3"}, {SeverityError, segment.MetaName(2), -1, "LSN 10..18; 000002.log holds 9 entries, LSN 19..27"},
				{SeverityError, segment.Name(3), 0, "names segment 2"}, {SeverityError, segment.MetaName(3), -1, "LSN 19..27; 000003.log holds 9 entries, LSN 10..18"},
			},
		},
		{
			name:    "missing .meta",
			corrupt: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, segment.MetaName(1))) },
			want:    []Problem{{SeverityWarning, segment.Name(1), -1, "no .meta"}},
			state:   map[uint64]SegmentState{1: SegmentSealed},
		},
		{
			name: "short .meta",
			corrupt: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, segment.MetaName(4)), []byte{1, 2, 3}, 0o600)
			},
			want: []Problem{{SeverityWarning, segment.MetaName(4), -1, "3 bytes, want 24"}},
		},
		{
			name: "wrong .meta",
			corrupt: func(t *testing.T, dir string) {
				b := segment.Meta{MinLSN: 1, MaxLSN: 9, Entries: 8}.Encode()
				os.WriteFile(filepath.Join(dir, segment.MetaName(1)), b[:], 0o600)
			},
			want:  []Problem{{SeverityError, segment.MetaName(1), -1, "says 8 entries"}},
			state: map[uint64]SegmentState{1: SegmentBroken},
		},
		{
			name: "end-of-log record",
			corrupt: func(t *testing.T, dir string) {
				b := segment.EncodeFence(8192)
				os.WriteFile(filepath.Join(dir, segment.FenceName(5)), b[:], 0o600)
			},
			want:  []Problem{{SeverityWarning, segment.FenceName(5), -1, "ends at offset 8192"}},
			state: map[uint64]SegmentState{5: SegmentActive},
		},
		{
			name: "a sealed segment with bytes of its own after the end of its log",
			corrupt: func(t *testing.T, dir string) {
				p := filepath.Join(dir, segment.Name(4))
				os.Remove(filepath.Join(dir, segment.MetaName(4)))
				flipByte(t, p, inspectBatchOffsets(t, p)[2]+segment.BatchHeaderLen) // last batch: its CRC fails
			},
			want: []Problem{
				{SeverityWarning, segment.Name(4), -1, "no .meta"},
				{SeverityError, segment.Name(4), anyOffset, "rebuild the missing .meta without them"},
			},
			state: map[uint64]SegmentState{4: SegmentBroken},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := inspectDir(t)
			tc.corrupt(t, dir)
			r, err := Dir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) != len(tc.want) {
				t.Fatalf("problems %v, want %v", r.Problems, tc.want)
			}
			for i, w := range tc.want {
				p := r.Problems[i]
				if p.Severity != w.Severity || p.File != w.File || (w.Offset != anyOffset && p.Offset != w.Offset) || !strings.Contains(p.What, w.What) {
					t.Errorf("problem %d: %v, want %v", i, p, w)
				}
			}
			for id, st := range tc.state {
				if got := r.Segments[id-1].State; got != st {
					t.Errorf("segment %d: state %s, want %s", id, got, st)
				}
			}
		})
	}
}

type dumped struct {
	seg uint64
	off int64
	lsn engine.LSN
	b   string
}

func dumpAll(t *testing.T, dir string, from, to engine.LSN) ([]dumped, error) {
	var out []dumped
	err := Dump(dir, DumpOptions{From: from, To: to}, func(seg uint64, off int64, _ uint64, lsn engine.LSN, b []byte) error {
		out = append(out, dumped{seg, off, lsn, string(b)})
		return nil
	})
	return out, err
}

func TestDumpWriteOrderAndOffsets(t *testing.T) {
	dir := inspectDir(t)
	before := dirState(t, dir)
	got, err := dumpAll(t, dir, 0, ^engine.LSN(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 39 {
		t.Fatalf("%d entries, want 39", len(got))
	}
	for i, d := range got {
		b, base := i/3, engine.LSN(3*(i/3)+1)
		want := []engine.LSN{base + 2, base, base + 1}[i%3]
		if d.lsn != want || d.seg != uint64(b/3+1) || d.b != strings.Repeat(string(rune('a'+b)), 1000) {
			t.Fatalf("entry %d: segment %d LSN %d, want segment %d LSN %d", i, d.seg, d.lsn, b/3+1, want)
		}
		// off names the entry's header in its file.
		f, err := os.ReadFile(filepath.Join(dir, segment.Name(d.seg)))
		if err != nil {
			t.Fatal(err)
		}
		rec := f[d.off:]
		// Layout 2: | length u32 | kind u32 | log u64 | LSN u64 | data |.
		if binary.LittleEndian.Uint32(rec) != uint32(len(d.b)) || binary.LittleEndian.Uint32(rec[4:]) != uint32(segment.KindData) ||
			binary.LittleEndian.Uint64(rec[8:]) != 0 || engine.LSN(binary.LittleEndian.Uint64(rec[16:])) != d.lsn ||
			!bytes.Equal(rec[segment.EntryHeaderLen2:segment.EntryHeaderLen2+len(d.b)], []byte(d.b)) {
			t.Fatalf("entry %d: offset %d does not hold it", i, d.off)
		}
	}
	if after := dirState(t, dir); after != before {
		t.Fatalf("Dump changed the directory")
	}

	// A range, inclusive at both ends.
	got, err = dumpAll(t, dir, 10, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].lsn != 12 || got[1].lsn != 10 || got[2].lsn != 11 || got[0].seg != 2 {
		t.Fatalf("range 10..12: %+v", got)
	}

	// fn's error stops it and comes back as it is.
	stop := errors.New("stop")
	n := 0
	err = Dump(dir, DumpOptions{}, func(uint64, int64, uint64, engine.LSN, []byte) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if err != stop || n != 5 {
		t.Fatalf("Dump: %v after %d entries, want stop after 5", err, n)
	}
}

func TestDumpStopsAtTheEndOfTheLog(t *testing.T) {
	dir := inspectDir(t)
	// A torn last batch of the last segment: the log ends before it.
	p := filepath.Join(dir, segment.Name(5))
	flipByte(t, p, inspectBatchOffsets(t, p)[0]+segment.BatchHeaderLen+10)
	got, err := dumpAll(t, dir, 0, ^engine.LSN(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 36 || got[35].lsn != 35 || got[35].seg != 4 {
		t.Fatalf("%d entries (last: segment %d LSN %d), want 36 ending at LSN 35 of segment 4", len(got), got[len(got)-1].seg, got[len(got)-1].lsn)
	}

	// A CRC error in sealed segment 2: its log ends there; the other
	// segments are still dumped, and the error names the offset.
	p = filepath.Join(dir, segment.Name(2))
	off := inspectBatchOffsets(t, p)[1]
	flipByte(t, p, off+segment.BatchHeaderLen+1)
	got, err = dumpAll(t, dir, 0, ^engine.LSN(0))
	if !errors.Is(err, engine.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("log ends at offset %d (CRC mismatch)", off)) {
		t.Fatalf("Dump: %v", err)
	}
	if len(got) != 30 {
		t.Fatalf("%d entries, want 30", len(got))
	}
	for _, d := range got {
		if d.seg == 2 && d.lsn > 12 {
			t.Fatalf("entry past the end of segment 2's log: %+v", d)
		}
	}
}

func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "dwal-example-*")
	defer os.RemoveAll(dir)
	c, _ := engine.Open(engine.DefaultConfig(dir))
	e, _ := engine.NewSyncEntry(1, []byte("hello"))
	c.Flush([]*engine.PendingEntry{e}, true)
	c.Close()

	probs, err := Verify(dir)
	fmt.Println(len(probs), err)
	Dump(dir, DumpOptions{}, func(seg uint64, off int64, _ uint64, lsn engine.LSN, data []byte) error {
		fmt.Printf("segment %d LSN %d: %s\n", seg, lsn, data)
		return nil
	})
	// Output:
	// 0 <nil>
	// segment 1 LSN 1: hello
}

func TestDumpAndInspectEncryptedSegments(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	ciph, err := engine.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig(dir)
	cfg.SegmentSize = 16 << 10
	cfg.Cipher = ciph
	c := openT(t, cfg)
	for b := range 4 {
		mustFlush(t, c, []*engine.PendingEntry{entry(engine.LSN(2*b+1), 'p', 900), entry(engine.LSN(2*b+2), 'q', 900)}, true)
	}
	c.Close()

	r, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 || len(r.Segments) == 0 {
		t.Fatalf("report: %+v", r)
	}
	var entries uint64
	for _, s := range r.Segments {
		if s.Header == nil || !s.Header.Encrypted || s.Header.Flags&segment.FlagEncrypted == 0 {
			t.Errorf("segment %d: header %+v", s.ID, s.Header)
		}
		entries += s.Entries
	}
	if entries != 8 {
		t.Errorf("%d entries, want 8", entries)
	}

	// Without the key: engine.ErrDecrypt, nothing handed out.
	got, err := dumpAll(t, dir, 0, ^engine.LSN(0))
	if !errors.Is(err, engine.ErrDecrypt) || len(got) != 0 {
		t.Fatalf("no key: %d entries, %v", len(got), err)
	}
	// With it: the plaintext, in write order; off names the entry's batch.
	var out []dumped
	err = Dump(dir, DumpOptions{To: ^engine.LSN(0), Cipher: ciph}, func(seg uint64, off int64, _ uint64, lsn engine.LSN, b []byte) error {
		out = append(out, dumped{seg, off, lsn, string(b)})
		return nil
	})
	if err != nil || len(out) != 8 {
		t.Fatalf("with the key: %d entries, %v", len(out), err)
	}
	for i, d := range out {
		if d.lsn != engine.LSN(i+1) || d.b != strings.Repeat(string("pq"[i%2]), 900) {
			t.Fatalf("entry %d: %+v", i, d)
		}
		offs := inspectBatchOffsets(t, filepath.Join(dir, segment.Name(d.seg)))
		if !slices.Contains(offs, d.off) || (i%2 == 1 && d.off != out[i-1].off) {
			t.Fatalf("entry %d: offset %d is not its batch's (%v)", i, d.off, offs)
		}
	}
}

// The index files of sealed segments are checked against the scan: a
// good one is ok, a missing or bad one (corrupt, another segment's) is a
// warning naming the file, and an orphan one is listed with a note.
func TestInspectIndexFiles(t *testing.T) {
	dir := inspectDir(t)
	if err := os.Remove(filepath.Join(dir, segment.IndexName(2))); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(dir, segment.IndexName(3)), 60)
	one, err := os.ReadFile(filepath.Join(dir, segment.IndexName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segment.IndexName(4)), one, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segment.IndexName(99)), one, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []IndexState{IndexOK, IndexMissing, IndexBad, IndexBad, IndexNotYet}
	for i, s := range r.Segments {
		if s.Index != want[i] {
			t.Errorf("segment %d: index %q, want %q", s.ID, s.Index, want[i])
		}
	}
	if r.Segments[0].IndexRefs != 3 {
		t.Errorf("segment 1's index lists %d batches, want 3", r.Segments[0].IndexRefs)
	}
	if r.Errors() != 0 {
		t.Errorf("index problems counted as errors: %v", r.Problems)
	}
	for _, id := range []uint64{2, 3, 4} {
		name := segment.IndexName(id)
		if !slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.File == name && p.Severity == SeverityWarning }) {
			t.Errorf("no warning for %s: %v", name, r.Problems)
		}
	}
	if !slices.ContainsFunc(r.Other, func(o OtherFile) bool {
		return o.Name == segment.IndexName(99) && strings.Contains(o.Note, "orphan index")
	}) {
		t.Errorf("the orphan index is not listed as one: %+v", r.Other)
	}
	// Open repairs nothing it need not, and the first reads rebuild the
	// bad ones: then inspect finds every index ok.
	c := openT(t, engine.DefaultConfig(dir))
	for l := engine.LSN(1); l <= 39; l++ {
		if _, err := c.Read(l, nil); err != nil {
			t.Fatalf("Read(%d): %v", l, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Segments {
		if s.Index != IndexOK {
			t.Errorf("after the reads segment %d's index is %q", s.ID, s.Index)
		}
	}
}
