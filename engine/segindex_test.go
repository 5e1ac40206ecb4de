package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// indexedLog writes LSN 1..n in batches of per entries into a fresh memfs
// log of small segments and closes it: every segment sealed, with its
// index file.
func indexedLog(t *testing.T, n LSN, per int) (*memfs.FS, Config) {
	t.Helper()
	mem := memfs.New(4096)
	cfg := Config{FS: mem, SegmentSize: 64 << 10, SegmentsToRetain: RetainAll}
	c := openT(t, cfg)
	flushRange(t, c, 1, n, per)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return mem, cfg
}

// indexFiles lists the index files of mem, by segment ID.
func indexFiles(mem *memfs.FS) []uint64 {
	var ids []uint64
	for _, name := range mem.Names() {
		if id, ok := segment.ParseID(name, segment.IndexSuffix); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// opCounter counts the operations of an errorfs by kind, and the reads of
// segment bodies (past the header block).
type opCounter struct {
	mu         sync.Mutex
	kinds      map[errorfs.OpKind]int
	bodyReads  int
	indexReads int
}

func (o *opCounter) MaybeError(op errorfs.Op) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kinds[op.Kind]++
	if op.Kind == errorfs.OpRead && op.Offset > 0 && strings.HasSuffix(op.Name, segment.Suffix) {
		o.bodyReads++
	}
	if op.Kind == errorfs.OpReadFile && strings.HasSuffix(op.Name, segment.IndexSuffix) {
		o.indexReads++
	}
	return nil
}

func (o *opCounter) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kinds, o.bodyReads, o.indexReads = map[errorfs.OpKind]int{}, 0, 0
}

// After Open of a log of many sealed segments, Open reads no segment body
// and the first Read of an LSN in the middle reads one index file and one
// batch: the cost of coming back does not grow with the log.
func TestFirstReadCostsOneIndexAndOneBatch(t *testing.T) {
	mem, cfg := indexedLog(t, 4000, 8)
	if n := len(indexFiles(mem)); n < 20 {
		t.Fatalf("%d index files; the test wants a log of many segments", n)
	}
	cnt := &opCounter{}
	cnt.reset()
	cfg.FS = errorfs.New(mem, cnt)
	c := openT(t, cfg)
	if cnt.bodyReads != 0 || cnt.indexReads != 0 {
		t.Fatalf("Open read %d segment body blocks and %d index files", cnt.bodyReads, cnt.indexReads)
	}
	for _, lsn := range []LSN{2000, 1, 4000, 1234} {
		cnt.reset()
		got, err := c.Read(lsn, nil)
		if err != nil || string(got) != string(indexData(lsn)) {
			t.Fatalf("Read(%d): %v", lsn, err)
		}
		if cnt.indexReads != 1 || cnt.bodyReads != 1 {
			t.Errorf("the first Read(%d) in its segment read %d index files and %d body blocks, want 1 and 1", lsn, cnt.indexReads, cnt.bodyReads)
		}
		cnt.reset()
		next := lsn + 1
		if next > 4000 {
			next = lsn - 1
		}
		if _, err := c.Read(next, nil); err != nil {
			t.Fatal(err)
		}
		if cnt.indexReads != 0 || cnt.bodyReads > 1 {
			t.Errorf("a second Read in the same segment read %d index files and %d body blocks, want 0 and at most 1", cnt.indexReads, cnt.bodyReads)
		}
	}
	cnt.reset()
	if first, last, ok, err := c.Bounds(); err != nil || !ok || first != 1 || last != 4000 {
		t.Fatalf("Bounds %d..%d %v %v", first, last, ok, err)
	}
	if cnt.bodyReads != 0 || cnt.indexReads != 0 {
		t.Errorf("Bounds with nothing deleted read %d body blocks and %d index files", cnt.bodyReads, cnt.indexReads)
	}
	if st := c.Stats(); st.IndexRebuilds != 0 {
		t.Errorf("%d indexes rebuilt in a log closed cleanly", st.IndexRebuilds)
	}
}

// A directory written before segments had index files (or one that lost
// them) opens, each segment is scanned once when first read and its index
// written, and the next Open reads the index files instead.
func TestMissingIndexesRebuiltOnce(t *testing.T) {
	mem, cfg := indexedLog(t, 3000, 5)
	ids := indexFiles(mem)
	for _, id := range ids {
		if err := mem.Remove(segment.IndexName(id)); err != nil {
			t.Fatal(err)
		}
	}
	c := openT(t, cfg)
	checkReads(t, c, 1, 3000)
	if got := c.Stats().IndexRebuilds; got != uint64(len(ids)) {
		t.Errorf("%d indexes rebuilt, want %d (one per sealed segment)", got, len(ids))
	}
	c.Close()
	if got := indexFiles(mem); !slices.Equal(got, ids) {
		t.Fatalf("index files after the rebuild: %v, want %v", got, ids)
	}
	c = openT(t, cfg)
	checkReads(t, c, 1, 3000)
	if got := c.Stats().IndexRebuilds; got != 0 {
		t.Errorf("%d indexes rebuilt after they were written", got)
	}
}

// A segment's index file that is torn, corrupt, another segment's (stale)
// or consistent but wrong (lying: two refs swapped) is found out, the
// segment scanned and its index written again; every read is right, and
// nothing else changes.
func TestBadIndexRepaired(t *testing.T) {
	cases := map[string]func(t *testing.T, mem *memfs.FS, id uint64){
		"bit flip": func(t *testing.T, mem *memfs.FS, id uint64) {
			patchMem(t, mem, segment.IndexName(id), func(b []byte) []byte { b[len(b)/2] ^= 4; return b })
		},
		"torn": func(t *testing.T, mem *memfs.FS, id uint64) {
			patchMem(t, mem, segment.IndexName(id), func(b []byte) []byte { return b[:len(b)/3] })
		},
		"empty": func(t *testing.T, mem *memfs.FS, id uint64) {
			patchMem(t, mem, segment.IndexName(id), func(b []byte) []byte { return nil })
		},
		"stale": func(t *testing.T, mem *memfs.FS, id uint64) {
			other, err := mem.ReadFile(segment.IndexName(id + 1))
			if err != nil {
				t.Fatal(err)
			}
			patchMem(t, mem, segment.IndexName(id), func([]byte) []byte { return other })
		},
		"lying": func(t *testing.T, mem *memfs.FS, id uint64) {
			patchMem(t, mem, segment.IndexName(id), func(b []byte) []byte {
				x, err := segment.DecodeIndex(b)
				if err != nil {
					t.Fatal(err)
				}
				// Same LSN ranges, offsets of two batches swapped: CRCs and
				// totals hold, the refs lead to the wrong batches.
				y := &segment.Index{SegID: x.SegID, Salt: x.Salt, Align: x.Align, End: x.End, Batches: x.Batches}
				refs := x.Logs[0].Refs
				for i := range refs.Len() {
					r := refs.At(i)
					switch i {
					case 0:
						r.Off, r.Span = refs.At(1).Off, refs.At(1).Span
					case 1:
						r.Off, r.Span = refs.At(0).Off, refs.At(0).Span
					}
					y.Add(0, r.Off, r.Span, r.MinLSN, r.MaxLSN, 1)
				}
				y.Logs[0].Meta = x.Logs[0].Meta
				return y.Encode()
			})
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			mem, cfg := indexedLog(t, 2000, 4)
			ids := indexFiles(mem)
			id := ids[len(ids)/2]
			corrupt(t, mem, id)
			c := openT(t, cfg)
			checkReads(t, c, 1, 2000)
			if got := c.Stats().IndexRebuilds; got != 1 {
				t.Errorf("%d indexes rebuilt, want 1", got)
			}
			b, err := mem.ReadFile(segment.IndexName(id))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := segment.DecodeIndex(b); err != nil {
				t.Errorf("the rewritten index of segment %d: %v", id, err)
			}
			c.Close()
			c = openT(t, cfg)
			checkReads(t, c, 1, 2000)
			if got := c.Stats().IndexRebuilds; got != 0 {
				t.Errorf("%d indexes rebuilt after the repair", got)
			}
		})
	}
}

func patchMem(t *testing.T, mem *memfs.FS, name string, f func([]byte) []byte) {
	t.Helper()
	b, err := mem.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile(name, f(b)); err != nil {
		t.Fatal(err)
	}
}

// Reading a whole log of many segments at random keeps the memory of the
// sealed segments' indexes within Config.IndexCacheBytes.
func TestIndexCacheBound(t *testing.T) {
	mem, cfg := indexedLog(t, 6000, 1)
	cfg.FS = mem
	cfg.IndexCacheBytes = 8 << 10 // a few segments' indexes
	c := openT(t, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	largest := 0
	for _, id := range indexFiles(mem) {
		b, _ := mem.ReadFile(segment.IndexName(id))
		largest = max(largest, len(b))
	}
	for _, i := range rng.Perm(6000) {
		lsn := LSN(i + 1)
		got, err := c.Read(lsn, nil)
		if err != nil || string(got) != string(indexData(lsn)) {
			t.Fatalf("Read(%d): %v", lsn, err)
		}
		if held := c.idx.cache.held(); held > max(cfg.IndexCacheBytes, largest+64) {
			t.Fatalf("after Read(%d) the index cache holds %d bytes, bound %d", lsn, held, cfg.IndexCacheBytes)
		}
	}
	if c.idx.cache.held() == 0 {
		t.Fatal("the index cache held nothing: the bound was not exercised")
	}
}

// Deletions narrow lookups without rewriting any index: after
// DeleteBefore and TruncateAfter, and after a reopen, Read and Bounds are
// exact from the index files, and a rewritten suffix reads as the new
// version.
func TestIndexWithDeletions(t *testing.T) {
	mem, cfg := indexedLog(t, 3000, 3)
	c := openT(t, cfg)
	if err := c.DeleteBefore(1001); err != nil {
		t.Fatal(err)
	}
	if err := c.TruncateAfter(2500); err != nil {
		t.Fatal(err)
	}
	rewritten := func(l LSN) []byte { return []byte(fmt.Sprintf("v2-%d", l)) }
	for l := LSN(2501); l <= 2600; l++ {
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(l, rewritten(l))}, true)
	}
	check := func(c *Coordinator) {
		t.Helper()
		first, last, ok, err := c.Bounds()
		if err != nil || !ok || first != 1001 || last != 2600 {
			t.Fatalf("Bounds %d..%d %v %v, want 1001..2600", first, last, ok, err)
		}
		for _, l := range []LSN{1, 1000, 2601, 3000} {
			if _, err := c.Read(l, nil); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Read(%d) of a deleted LSN: %v", l, err)
			}
		}
		for l := LSN(1001); l <= 2500; l++ {
			if got, err := c.Read(l, nil); err != nil || string(got) != string(indexData(l)) {
				t.Fatalf("Read(%d): %v", l, err)
			}
		}
		for l := LSN(2501); l <= 2600; l++ {
			if got, err := c.Read(l, nil); err != nil || string(got) != string(rewritten(l)) {
				t.Fatalf("Read(%d) = %q, %v; want the rewritten version", l, got, err)
			}
		}
	}
	check(c)
	c.Close()
	c = openT(t, cfg)
	check(c)
	if got := c.Stats().IndexRebuilds; got != 0 {
		t.Errorf("%d indexes rebuilt", got)
	}
	_ = mem
}
