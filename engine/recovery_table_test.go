package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// recoveryFixture is a directory of two sealed segments of two one-entry
// batches each (LSN 1, 2 in segment 1; 3, 4 in segment 2), every batch one
// block, written with the fallback backend so the test can change the
// files with os calls.
func recoveryFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.Backend = BackendFallback
	cfg.SegmentSize = 3 * 4096 // a header block and two batch blocks
	c := openT(t, cfg)
	for l := LSN(1); l <= 4; l++ {
		mustFlush(t, c, []*PendingEntry{entry(l, byte(l), 100)}, true)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := logIDs(t, dir); !slices.Equal(ids, []uint64{1, 2}) {
		t.Fatalf("fixture has segments %v, want [1 2]", ids)
	}
	return dir
}

// makeCase changes segment s of a fixture so that recovery finds what sf
// describes. The segment keeps a preallocated-looking tail of zeros, so
// sealing it shows as a cut.
func makeCase(t *testing.T, dir string, sf segFile) {
	t.Helper()
	path := filepath.Join(dir, segment.Name(sf.id))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, make([]byte, 4096)...)
	h, err := segment.DecodeHeader(b[:4096])
	if err != nil {
		t.Fatal(err)
	}
	switch sf.state {
	case headerBad:
		clear(b[:4096])
	case headerNewer:
		h.Version = segment.Version + 1
		h.Encode(b)
	case headerWrongID:
		h.ID += 100
		h.Encode(b)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if sf.state == notRegular {
		elsewhere := filepath.Join(t.TempDir(), "segment")
		if err := os.Rename(path, elsewhere); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, path); err != nil {
			t.Fatal(err)
		}
	}
	if !sf.hasMeta {
		if err := os.Remove(filepath.Join(dir, segment.MetaName(sf.id))); err != nil {
			t.Fatal(err)
		}
	}
	if sf.fence > 0 {
		fb := segment.EncodeFence(sf.fence)
		if err := os.WriteFile(filepath.Join(dir, segment.FenceName(sf.id)), fb[:], 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot reads every file of dir (following no link).
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			out[e.Name()] = []byte("-> " + target)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestRecoveryTable builds every case recovery's decision table tells
// apart (header state, last or not, .meta or not, fence or not: 40
// directories), opens each, and checks that the action the table gives
// is what happened: refuse leaves the directory untouched, setAside keeps
// the bytes as .broken, keepSealed trusts the files as they are,
// rebuildMeta writes the .meta and cuts nothing, sealOpen cuts the
// segment where its log (or its fence) ends. It also checks that every
// row of the table decides some case.
func TestRecoveryTable(t *testing.T) {
	reached := map[int]bool{}
	for _, state := range []headerState{headerOK, headerBad, headerNewer, headerWrongID, notRegular} {
		for _, last := range []bool{false, true} {
			for _, meta := range []bool{false, true} {
				for _, fence := range []bool{false, true} {
					sf := segFile{id: 1, last: last, state: state, hasMeta: meta}
					if last {
						sf.id = 2
					}
					if fence {
						sf.fence = 2 * 4096 // the segment's second batch
					}
					row := decide(&sf)
					reached[slices.IndexFunc(recoveryTable, func(r recoveryCase) bool { return r == row })] = true
					name := fmt.Sprintf("header=%d/last=%t/meta=%t/fence=%t", state, last, meta, fence)
					t.Run(name, func(t *testing.T) { checkRecoveryCase(t, sf, row) })
				}
			}
		}
	}
	for i, r := range recoveryTable {
		if !reached[i] {
			t.Errorf("row %d of the table (%+v) decides no case: an earlier row shadows it", i, r)
		}
	}
}

func checkRecoveryCase(t *testing.T, sf segFile, row recoveryCase) {
	dir := recoveryFixture(t)
	makeCase(t, dir, sf)
	before := snapshot(t, dir)
	name := segment.Name(sf.id)
	cfg := DefaultConfig(dir)
	cfg.Backend = BackendFallback
	c, err := Open(cfg)
	if row.action == refuse {
		if sf.state == headerOK || sf.state == headerBad && sf.last {
			t.Errorf("the table refuses a directory a crash can leave (%s)", row.why)
		}
		if err == nil {
			c.Close()
			t.Fatalf("Open succeeded; the table says refuse (%s)", row.why)
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("Open: %v, want ErrCorrupt or ErrUnsupportedFormat", err)
		}
		after := snapshot(t, dir)
		for n, b := range before {
			if !bytes.Equal(after[n], b) {
				t.Errorf("a refused Open changed %s", n)
			}
		}
		if len(after) != len(before) {
			t.Errorf("a refused Open changed the file list: %d files, then %d", len(before), len(after))
		}
		return
	}
	if err != nil {
		t.Fatalf("Open: %v (the table says action %d: %s)", err, row.action, row.why)
	}
	defer c.Close()
	checkRecoveryPolicy(t, dir, sf, before)
	all := map[uint64][]LSN{1: {1, 2}, 2: {3, 4}}
	want := map[uint64][]LSN{1: all[1], 2: all[2]}
	path := filepath.Join(dir, name)
	switch row.action {
	case setAside:
		want[sf.id] = nil
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after setAside: %v", name, err)
		}
		if !bytes.Equal(osFileBytes(t, filepath.Join(dir, segment.BrokenName(sf.id))), before[name]) {
			t.Errorf("%s does not hold the set-aside segment's bytes", segment.BrokenName(sf.id))
		}
	case keepSealed:
		if !bytes.Equal(osFileBytes(t, path), before[name]) {
			t.Errorf("%s changed though its .meta was trusted", name)
		}
	case rebuildMeta:
		if !bytes.Equal(osFileBytes(t, path), before[name]) {
			t.Errorf("%s changed; rebuilding its .meta should read it only", name)
		}
		checkMeta(t, c, sf.id, all[sf.id])
	case sealOpen:
		end := int64(3 * 4096)
		if sf.fence > 0 {
			end = sf.fence
			want[sf.id] = all[sf.id][:1]
		}
		if got := fileSize(t, path); got != end {
			t.Errorf("%s is %d bytes after sealOpen, want its log's end %d", name, got, end)
		}
		checkMeta(t, c, sf.id, want[sf.id])
		if _, err := os.Stat(filepath.Join(dir, segment.FenceName(sf.id))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the fence of %s survived recovery: %v", name, err)
		}
	}
	var got []LSN
	for _, r := range replayAll(t, c, 0) {
		got = append(got, r.lsn)
	}
	if exp := append(slices.Clone(want[1]), want[2]...); !slices.Equal(got, exp) {
		t.Errorf("replayed %v, want %v", got, exp)
	}
}

// checkRecoveryPolicy checks what holds whatever the table says, so a
// wrong row fails here even though the actions carry it out faithfully: a
// segment sealed by its writer (a .meta, or a later segment exists, and no
// fence) is never rewritten, and a fenced segment's log ends at its fence.
func checkRecoveryPolicy(t *testing.T, dir string, sf segFile, before map[string][]byte) {
	t.Helper()
	name := segment.Name(sf.id)
	if sf.state == headerOK && sf.fence == 0 && (sf.hasMeta || !sf.last) {
		if !bytes.Equal(osFileBytes(t, filepath.Join(dir, name)), before[name]) {
			t.Errorf("recovery rewrote %s, a segment its writer sealed", name)
		}
	}
	if sf.state == headerOK && sf.fence > 0 {
		if got := fileSize(t, filepath.Join(dir, name)); got > sf.fence {
			t.Errorf("%s is %d bytes, past its fence at %d", name, got, sf.fence)
		}
	}
}

func checkMeta(t *testing.T, c *Coordinator, id uint64, lsns []LSN) {
	t.Helper()
	m, ok := c.ReadSegmentMetadata(id)
	want := SegmentMetadata{MinLSN: lsns[0], MaxLSN: lsns[len(lsns)-1], EntryCount: uint64(len(lsns))}
	if !ok || m != want {
		t.Errorf("segment %d's .meta is %+v (present %t), want %+v", id, m, ok, want)
	}
}

func osFileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
