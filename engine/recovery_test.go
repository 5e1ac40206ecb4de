package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// writeLog writes batches of entries with LSNs 1.. (batch i holds
// perBatch entries), closes the log and leaves its last segment unsealed
// (its .meta removed, as after a crash), and returns what was written, in
// order.
func writeLog(t *testing.T, cfg Config, batches, perBatch int) []replayed {
	t.Helper()
	c := openT(t, cfg)
	var all []replayed
	lsn := LSN(1)
	for b := 0; b < batches; b++ {
		var es []*PendingEntry
		for i := 0; i < perBatch; i++ {
			d := fmt.Sprintf("entry-%d-%s", lsn, strings.Repeat("x", int(lsn%50)))
			es = append(es, NewAsyncEntry(lsn, []byte(d)))
			all = append(all, replayed{lsn, d})
			lsn++
		}
		mustFlush(t, c, es, true)
	}
	last := c.CurrentSegmentID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	unseal(t, cfg, last)
	return all
}

// unseal removes segment id's .meta and index, which Close wrote: the directory is
// then as a writer that crashed after its last batch leaves it, and the
// next Open reads the segment through to find the end of its log.
func unseal(t *testing.T, cfg Config, id uint64) {
	t.Helper()
	fsys := cfg.FS
	if fsys == nil {
		err := os.Remove(filepath.Join(cfg.Dir, segment.MetaName(id)))
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(cfg.Dir, segment.IndexName(id)))
		return
	}
	if err := fsys.Remove(segment.MetaName(id)); err != nil {
		t.Fatal(err)
	}
	fsys.Remove(segment.IndexName(id))
}

// batchOffsets returns the offsets of the batches of a segment file.
func batchOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := segment.DecodeHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	off := int64(h.Align)
	for seq := uint64(1); off+segment.BatchHeaderLen <= int64(len(data)); seq++ {
		bh, why := segment.DecodeBatchHeader(data[off:], h.Salt, seq)
		if why != segment.OK {
			break
		}
		offs = append(offs, off)
		off += bh.Span(int(h.Align))
	}
	return offs
}

func patchFile(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReopenReplaysEverythingTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.SegmentSize = 3 * 4096
		want := writeLog(t, cfg, 7, 3)
		for round := 0; round < 2; round++ {
			c := openT(t, cfg)
			got := replayAll(t, c, 0)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: replayed %d entries, want %d", round, len(got), len(want))
			}
			if from := replayAll(t, c, 10); len(from) != len(want)-9 || from[0].lsn != 10 {
				t.Fatalf("Replay(10) gave %d entries starting %v", len(from), from[0])
			}
			c.Close()
		}
	})
}

func TestReopenContinuesInNewSegment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		want := writeLog(t, cfg, 2, 2)
		c := openT(t, cfg)
		if c.CurrentSegmentID() != 1 {
			t.Fatalf("current segment %d after reopen", c.CurrentSegmentID())
		}
		if segs := c.Segments(); len(segs) != 1 || segs[0].Meta.EntryCount != 4 {
			t.Fatalf("recovered segments %+v", segs)
		}
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(5, []byte("after"))}, true)
		if c.CurrentSegmentID() != 2 {
			t.Fatalf("wrote into segment %d", c.CurrentSegmentID())
		}
		got := replayAll(t, c, 0)
		want = append(want, replayed{5, "after"})
		if !slices.Equal(got, want) {
			t.Fatalf("replayed %v", got)
		}
	})
}

// corruption is one row of the recovery table: it damages the directory
// written by writeLog (3 batches of 2 entries in segment 1, left unsealed)
// and says what must replay afterwards.
type corruption struct {
	name       string
	corrupt    func(t *testing.T, dir string, offs []int64)
	batches    int  // whole batches that must replay
	broken     bool // a .broken copy must be kept
	openErr    error
	keepsFiles bool // Open must not change the directory
}

func TestRecoveryCorruptionTable(t *testing.T) {
	seg := func(dir string) string { return filepath.Join(dir, segment.Name(1)) }
	table := []corruption{
		{name: "clean", corrupt: func(*testing.T, string, []int64) {}, batches: 3},
		{name: "torn last batch", batches: 2, broken: true, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte { b[offs[2]+segment.BatchHeaderLen+3] ^= 0xff; return b })
		}},
		{name: "last batch cut short", batches: 2, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte { return b[:offs[2]+20] })
		}},
		{name: "zeroed sector in the middle", batches: 1, broken: true, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte { clear(b[offs[1] : offs[1]+512]); return b })
		}},
		{name: "bit flip in batch header", batches: 1, broken: true, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte { b[offs[1]+25] ^= 0x10; return b }) // min LSN
		}},
		{name: "bit flip in payload", batches: 0, broken: true, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte { b[offs[0]+segment.BatchHeaderLen+segment.EntryHeaderLen2+1] ^= 1; return b })
		}},
		{name: "stale bytes after the end", batches: 3, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte {
				// A well-formed batch of another segment (other salt) where the
				// next batch would go.
				end := int(offs[2]) + 4096
				if len(b) < end+4096 {
					b = append(b, make([]byte, end+4096-len(b))...)
				}
				stale := b[end : end+4096]
				copy(stale, b[offs[0]:offs[0]+4096])
				binary.LittleEndian.PutUint64(stale[16:], 4) // the next sequence number
				binary.LittleEndian.PutUint64(stale[40:], 0xdeadbeef)
				binary.LittleEndian.PutUint32(stale[4:], crc32.Update(segment.SeedCRC(0xdeadbeef), segment.Castagnoli, stale[8:segment.BatchHeaderLen+int(binary.LittleEndian.Uint32(stale[8:]))]))
				return b
			})
		}},
		{name: "truncated header block", batches: 0, broken: true, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte { return b[:30] })
		}},
		{name: "newer format version", openErr: ErrUnsupportedFormat, keepsFiles: true, corrupt: func(t *testing.T, dir string, offs []int64) {
			patchFile(t, seg(dir), func(b []byte) []byte {
				binary.LittleEndian.PutUint16(b[8:], segment.Version+1)
				binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[:40], segment.Castagnoli))
				return b
			})
		}},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("corrupts files through the OS")
		}
		for _, tc := range table {
			t.Run(tc.name, func(t *testing.T) {
				cfg := b.config(t)
				want := writeLog(t, cfg, 3, 2)
				offs := batchOffsets(t, filepath.Join(cfg.Dir, segment.Name(1)))
				if len(offs) != 3 {
					t.Fatalf("%d batches written", len(offs))
				}
				tc.corrupt(t, cfg.Dir, offs)
				before := snapshotDir(t, cfg.Dir)
				c, err := Open(cfg)
				if tc.openErr != nil {
					if !errors.Is(err, tc.openErr) {
						t.Fatalf("Open: %v, want %v", err, tc.openErr)
					}
					if after := snapshotDir(t, cfg.Dir); tc.keepsFiles && !equalSnap(before, after) {
						t.Fatalf("Open changed the directory")
					}
					return
				}
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				got := replayAll(t, c, 0)
				if !slices.Equal(got, want[:2*tc.batches]) {
					t.Fatalf("replayed %d entries, want %d", len(got), 2*tc.batches)
				}
				_, statErr := os.Stat(filepath.Join(cfg.Dir, segment.BrokenName(1)))
				if (statErr == nil) != tc.broken {
					t.Fatalf(".broken kept: %v, want %v (repairs %q)", statErr == nil, tc.broken, c.Recovery().Repairs)
				}
				// The log continues after the repair, and a reopen sees the
				// same state (twice).
				mustFlush(t, c, []*PendingEntry{NewAsyncEntry(100, []byte("next"))}, true)
				state := replayAll(t, c, 0)
				c.Close()
				for round := 0; round < 2; round++ {
					c2 := openT(t, cfg)
					if again := replayAll(t, c2, 0); !slices.Equal(again, state) {
						t.Fatalf("reopen %d: %v, want %v", round, again, state)
					}
					// Close sealed the segment "next" went to: nothing is
					// left to repair.
					if n := len(c2.Recovery().Repairs); n != 0 {
						t.Fatalf("reopen %d repaired %q", round, c2.Recovery().Repairs)
					}
					c2.Close()
				}
			})
		}
	})
}

func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

func equalSnap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestRecoveryRebuildsMissingOrShortMeta(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("edits files through the OS")
		}
		for _, damage := range []string{"missing", "short"} {
			t.Run(damage, func(t *testing.T) {
				cfg := b.config(t)
				cfg.SegmentSize = 1 // every flush seals its segment
				cfg.SegmentsToRetain = 100
				want := writeLog(t, cfg, 4, 3)
				p := filepath.Join(cfg.Dir, segment.MetaName(2))
				orig, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if damage == "missing" {
					os.Remove(p)
				} else {
					os.WriteFile(p, orig[:10], 0o600)
				}
				c := openT(t, cfg)
				if got, _ := os.ReadFile(p); !bytes.Equal(got, orig) {
					t.Fatalf("rebuilt meta %v, want %v", got, orig)
				}
				if got := replayAll(t, c, 0); !slices.Equal(got, want) {
					t.Fatalf("replayed %d, want %d", len(got), len(want))
				}
			})
		}
	})
}

func TestRecoveryCorruptSealedSegmentFailsOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("edits files through the OS")
		}
		cfg := b.config(t)
		cfg.SegmentSize = 1
		cfg.SegmentsToRetain = 100
		writeLog(t, cfg, 3, 1)
		patchFile(t, filepath.Join(cfg.Dir, segment.Name(1)), func(b []byte) []byte { b[3] ^= 1; return b })
		before := snapshotDir(t, cfg.Dir)
		_, err := Open(cfg)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), segment.Name(1)) {
			t.Fatalf("Open: %v, want ErrCorrupt naming %s", err, segment.Name(1))
		}
		if !equalSnap(before, snapshotDir(t, cfg.Dir)) {
			t.Fatal("a failed Open changed the directory")
		}
	})
}

func TestReplayDetectsCorruptSealedSegment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("edits files through the OS")
		}
		cfg := b.config(t)
		cfg.SegmentSize = 4096 * 3
		cfg.SegmentsToRetain = 100
		writeLog(t, cfg, 6, 1)
		c := openT(t, cfg)
		p := filepath.Join(cfg.Dir, segment.Name(1))
		offs := batchOffsets(t, p)
		patchFile(t, p, func(b []byte) []byte { b[offs[1]+segment.BatchHeaderLen+segment.EntryHeaderLen2] ^= 1; return b })
		var got []LSN
		err := c.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Replay: %v, want ErrCorrupt", err)
		}
		if !slices.Equal(got, []LSN{1}) {
			t.Fatalf("replayed %v before the corruption, want [1]", got)
		}
	})
}

func TestRecoveryRemovesLeftoversAndIgnoresUnknownFiles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.realDir {
			t.Skip("edits files through the OS")
		}
		cfg := b.config(t)
		want := writeLog(t, cfg, 1, 1)
		for name, keep := range map[string]bool{
			"prepared-9.tmp": false, "000001.log.meta.tmp": false,
			"README": true, "notes.log.txt": true, "abc.log": true,
		} {
			os.WriteFile(filepath.Join(cfg.Dir, name), []byte("x"), 0o600)
			defer func(name string, keep bool) {
				_, err := os.Stat(filepath.Join(cfg.Dir, name))
				if (err == nil) != keep {
					t.Errorf("%s kept %v, want %v", name, err == nil, keep)
				}
			}(name, keep)
		}
		c := openT(t, cfg)
		if got := replayAll(t, c, 0); !slices.Equal(got, want) {
			t.Fatalf("replayed %v", got)
		}
	})
}

// Close seals the active segment (its .meta), so the next Open reads only
// segment headers and .meta files: it does not read a segment through to
// find where its log ends, as it must after a crash.
func TestReopenAfterCloseReadsNoSegmentBody(t *testing.T) {
	var opening atomic.Bool
	var bodyReads atomic.Int32
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if opening.Load() && op.Kind == errorfs.OpRead && strings.HasSuffix(op.Name, ".log") && op.Offset > 0 {
			bodyReads.Add(1)
		}
		return nil
	})
	cfg := DefaultConfig("reopen")
	cfg.FS = errorfs.New(memfs.New(4096), inj)
	cfg.SegmentSize = 64 << 10
	c := openT(t, cfg)
	for i := range 100 {
		mustFlush(t, c, []*PendingEntry{entry(LSN(i+1), byte(i), 3000)}, true)
	}
	last := c.CurrentSegmentID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	opening.Store(true)
	c = openT(t, cfg)
	opening.Store(false)
	if n := bodyReads.Load(); n != 0 {
		t.Errorf("Open after a clean Close read segment bodies %d times", n)
	}
	if r := c.Recovery().Repairs; len(r) != 0 {
		t.Errorf("Open after a clean Close repaired %q", r)
	}
	if got := replayAll(t, c, 0); len(got) != 100 || got[99].lsn != 100 {
		t.Fatalf("replayed %d entries", len(got))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// As after a crash: without the .meta, Open reads the segment through.
	unseal(t, cfg, last)
	opening.Store(true)
	openT(t, cfg)
	opening.Store(false)
	if bodyReads.Load() == 0 {
		t.Error("Open of an unsealed last segment read none of it: the check above proves nothing")
	}
}
