package memfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

const (
	a      = 4096
	sector = memfs.DefaultSectorSize
	seeds  = 200 // crash clones per randomized check
)

func fill(n int, b byte) []byte {
	p := align.Alloc(n, a)
	for i := range p {
		p[i] = b
	}
	return p
}

func mustCreate(t *testing.T, m *memfs.FS, name string, size int64) vfs.File {
	t.Helper()
	f, err := m.Create(name, size)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustWrite(t *testing.T, f vfs.File, p []byte, off int64, mode vfs.SyncMode) {
	t.Helper()
	if err := f.WriteAt(p, off, mode); err != nil {
		t.Fatal(err)
	}
}

// read returns a file's bytes, or nil and false when the name is gone.
func read(t *testing.T, m *memfs.FS, name string) ([]byte, bool) {
	t.Helper()
	b, err := m.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// durableFile makes name hold p, synced, with its name synced.
func durableFile(t *testing.T, m *memfs.FS, name string, p []byte) vfs.File {
	t.Helper()
	f := mustCreate(t, m, name, int64(len(p)))
	mustWrite(t, f, p, 0, vfs.Fdatasync)
	if err := m.SyncDir(); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSyncedDataSurvivesEveryCrash(t *testing.T) {
	m := memfs.New(a)
	// NB: append may move the bytes to an unaligned array; copy into an
	// aligned one instead.
	want := fill(2*a, 1)
	copy(want[a:], fill(a, 2))
	f := durableFile(t, m, "000001.log", want)
	// More synced data through Sync rather than a synced write.
	p := fill(a, 3)
	mustWrite(t, f, p, int64(2*a), vfs.NoSync)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	want = append(want, p...)
	// Unsynced writes elsewhere must not disturb it.
	g := mustCreate(t, m, "other", 0)
	mustWrite(t, g, fill(2*a, 9), 0, vfs.NoSync)
	mustWrite(t, f, fill(a, 4), int64(3*a), vfs.NoSync)

	for seed := range int64(seeds) {
		opts := [][]memfs.CrashOption{nil, {memfs.DropUnsynced()}, {memfs.KeepUnsynced()}, {memfs.Probabilities(0, 1)}}[seed%4]
		c := m.CrashClone(seed, opts...)
		got, ok := read(t, c, "000001.log")
		if !ok || len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
			t.Fatalf("seed %d: synced data lost (present %v, %d bytes)\n%s", seed, ok, len(got), c.CrashReport())
		}
	}
}

func TestUnsyncedDataSurvivesSometimes(t *testing.T) {
	m := memfs.New(a)
	f := durableFile(t, m, "seg", make([]byte, 2*a))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	p := fill(a, 7)
	mustWrite(t, f, p, int64(a), vfs.NoSync)

	kept, lost := 0, 0
	for seed := range int64(seeds) {
		got, _ := read(t, m.CrashClone(seed), "seg")
		switch {
		case bytes.Equal(got[a:], p):
			kept++
		case bytes.Equal(got[a:], make([]byte, a)):
			lost++
		}
	}
	if kept == 0 || lost == 0 {
		t.Fatalf("over %d crashes: %d kept the unsynced write, %d lost it; want some of each", seeds, kept, lost)
	}
	if got, _ := read(t, m.CrashClone(1, memfs.KeepUnsynced()), "seg"); !bytes.Equal(got[a:], p) {
		t.Fatal("KeepUnsynced lost an unsynced write")
	}
	if got, _ := read(t, m.CrashClone(1, memfs.DropUnsynced()), "seg"); !bytes.Equal(got[a:], make([]byte, a)) {
		t.Fatal("DropUnsynced kept an unsynced write")
	}
}

func TestCreateWithoutSyncDirMayVanish(t *testing.T) {
	m := memfs.New(a)
	f := mustCreate(t, m, "000002.log", a)
	mustWrite(t, f, fill(a, 5), 0, vfs.Fdatasync) // the data is durable, the name is not
	seen := map[bool]int{}
	for seed := range int64(seeds) {
		_, ok := read(t, m.CrashClone(seed), "000002.log")
		seen[ok]++
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("a create without SyncDir survived %d and vanished %d of %d crashes; want both", seen[true], seen[false], seeds)
	}
	if _, ok := read(t, m.CrashClone(0, memfs.DropUnsynced()), "000002.log"); ok {
		t.Fatal("DropUnsynced kept a name that was never synced")
	}
	if err := m.SyncDir(); err != nil {
		t.Fatal(err)
	}
	for seed := range int64(seeds) {
		if got, ok := read(t, m.CrashClone(seed), "000002.log"); !ok || !bytes.Equal(got, fill(a, 5)) {
			t.Fatalf("seed %d: a synced create with synced data was lost", seed)
		}
	}
}

// TestDirOpsSurviveInOrder: unsynced directory ops survive as a prefix, as a
// journaling file system commits them in order.
func TestDirOpsSurviveInOrder(t *testing.T) {
	m := memfs.New(a)
	order := []string{"000001.log", "000002.log", "000003.log", "000004.log"}
	for _, n := range order {
		if err := m.WriteFile(n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	lengths := map[int]int{}
	for seed := range int64(seeds) {
		got := m.CrashClone(seed).Names()
		if !slices.Equal(got, order[:len(got)]) {
			t.Fatalf("seed %d: surviving names %q are not a prefix of %q", seed, got, order)
		}
		lengths[len(got)]++
	}
	if len(lengths) != len(order)+1 {
		t.Fatalf("prefix lengths seen %v, want each of 0..%d", lengths, len(order))
	}
}

func TestCreateSizeDurableOnlyAfterSync(t *testing.T) {
	m := memfs.New(a)
	f := mustCreate(t, m, "prepared-1.tmp", 8*a)
	if err := m.SyncDir(); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, m.CrashClone(0, memfs.DropUnsynced()), "prepared-1.tmp"); len(got) != 0 {
		t.Fatalf("an unsynced allocation survived: %d bytes", len(got))
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, m.CrashClone(0, memfs.DropUnsynced()), "prepared-1.tmp"); !bytes.Equal(got, make([]byte, 8*a)) {
		t.Fatalf("a synced allocation was lost: %d bytes", len(got))
	}
}

func TestRenameWithoutSyncDirMayBeUndone(t *testing.T) {
	m := memfs.New(a)
	durableFile(t, m, "prepared-1.tmp", fill(a, 1))
	durableFile(t, m, "x.meta", fill(a, 2))
	durableFile(t, m, "x.meta.tmp", fill(a, 3))
	if err := m.Rename("prepared-1.tmp", "000003.log"); err != nil {
		t.Fatal(err)
	}
	if err := m.Rename("x.meta.tmp", "x.meta"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for seed := range int64(seeds) {
		c := m.CrashClone(seed)
		_, old := read(t, c, "prepared-1.tmp")
		_, new := read(t, c, "000003.log")
		if old == new {
			t.Fatalf("seed %d: after a crash mid-rename old name present %v, new name present %v\n%s", seed, old, new, c.Dump())
		}
		meta, ok := read(t, c, "x.meta")
		if !ok || (!bytes.Equal(meta, fill(a, 2)) && !bytes.Equal(meta, fill(a, 3))) {
			t.Fatalf("seed %d: a replacing rename left x.meta present %v with other bytes", seed, ok)
		}
		_, tmp := read(t, c, "x.meta.tmp")
		if tmp != bytes.Equal(meta, fill(a, 2)) {
			t.Fatalf("seed %d: x.meta.tmp present %v but x.meta holds %v", seed, tmp, meta[0])
		}
		seen[fmt.Sprint(old, tmp)]++
	}
	if seen["true true"] == 0 || seen["false false"] == 0 {
		t.Fatalf("outcomes %v: want renames both undone and kept", seen)
	}
}

// TestTornWritesAtSectorGranularity: an unsynced write of 8 sectors over old
// bytes leaves, after a crash, every sector whole (old or new), and across
// seeds both prefixes and scattered subsets appear.
func TestTornWritesAtSectorGranularity(t *testing.T) {
	for _, sec := range []int{512, 1024, 4096} {
		t.Run(fmt.Sprint(sec), func(t *testing.T) {
			m := memfs.New(a, memfs.WithSectorSize(sec))
			old, new := fill(2*a, 0xAA), fill(2*a, 0x55)
			f := durableFile(t, m, "seg", old)
			mustWrite(t, f, new, 0, vfs.NoSync)
			n := 2 * a / sec
			var prefix, scattered, whole, none int
			for seed := range int64(seeds) {
				c := m.CrashClone(seed, memfs.Probabilities(0.1, 0.8))
				got, _ := read(t, c, "seg")
				if len(got) != 2*a {
					t.Fatalf("seed %d: size %d, want %d", seed, len(got), 2*a)
				}
				mask := make([]bool, n)
				for s := range n {
					b := got[s*sec : (s+1)*sec]
					switch {
					case bytes.Equal(b, new[:sec]):
						mask[s] = true
					case bytes.Equal(b, old[:sec]):
					default:
						t.Fatalf("seed %d: sector %d is torn inside itself\n%s", seed, s, c.CrashReport())
					}
				}
				k := 0
				for k < n && mask[k] {
					k++
				}
				switch {
				case k == n:
					whole++
				case !slices.Contains(mask, true):
					none++
				case !slices.Contains(mask[k:], true):
					prefix++
				default:
					scattered++
				}
			}
			if n > 1 && (prefix == 0 || scattered == 0 || whole == 0 || none == 0) {
				t.Fatalf("outcomes over %d crashes: whole %d, none %d, prefix %d, scattered %d; want each", seeds, whole, none, prefix, scattered)
			}
			if n == 1 && (prefix != 0 || scattered != 0) {
				t.Fatalf("a one-sector write was torn")
			}
		})
	}
}

func TestTruncateCrash(t *testing.T) {
	m := memfs.New(a)
	want := fill(2*a, 3)
	f := durableFile(t, m, "seg", want)
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 * a); err != nil { // zeros now, until synced
		t.Fatal(err)
	}
	if got, _ := read(t, m.CrashClone(0, memfs.DropUnsynced()), "seg"); !bytes.Equal(got, want) {
		t.Fatal("DropUnsynced applied an unsynced truncate")
	}
	if got, _ := read(t, m.CrashClone(0, memfs.KeepUnsynced()), "seg"); !bytes.Equal(got, make([]byte, 2*a)) {
		t.Fatal("KeepUnsynced lost an unsynced truncate")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	for seed := range int64(20) {
		if got, _ := read(t, m.CrashClone(seed), "seg"); !bytes.Equal(got, make([]byte, 2*a)) {
			t.Fatalf("seed %d: a synced truncate was undone", seed)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	m := memfs.New(a)
	f := durableFile(t, m, "seg", fill(a, 1))
	l, err := m.Lock()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := m.CrashClone(42, memfs.KeepUnsynced())

	// The clone starts unlocked: the holder died in the crash.
	cl, err := c.Lock()
	if err != nil {
		t.Fatalf("Lock on a clone: %v", err)
	}
	defer cl.Close()
	// Writes to the original do not reach the clone, and back.
	mustWrite(t, f, fill(a, 2), 0, vfs.Fdatasync)
	g, err := c.Open("seg", false)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, g, fill(a, 3), 0, vfs.Fdatasync)
	if got, _ := read(t, c, "seg"); !bytes.Equal(got, fill(a, 3)) {
		t.Fatal("clone lost its own write")
	}
	if got, _ := read(t, m, "seg"); !bytes.Equal(got, fill(a, 2)) {
		t.Fatal("a write to the clone reached the original")
	}
	if err := c.Remove("seg"); err != nil {
		t.Fatal(err)
	}
	if _, ok := read(t, m, "seg"); !ok {
		t.Fatal("a remove in the clone reached the original")
	}
	if len(c.OpenFiles()) != 1 || len(m.OpenFiles()) != 1 {
		t.Fatalf("open files: clone %q, original %q", c.OpenFiles(), m.OpenFiles())
	}
	g.Close()
	f.Close()
}

func TestCrashCloneIsDeterministic(t *testing.T) {
	m := memfs.New(a)
	f := durableFile(t, m, "seg", make([]byte, 4*a))
	for i := range 4 {
		mustWrite(t, f, fill(a, byte(i+1)), int64(i*a), vfs.NoSync)
	}
	_ = m.Rename("seg", "seg2")
	x, y := m.CrashClone(7), m.CrashClone(7)
	if x.Dump() != y.Dump() || x.CrashReport() != y.CrashReport() || x.CrashReport() == "" {
		t.Fatalf("same seed, different clones:\n%s\n%s", x.CrashReport(), y.CrashReport())
	}
	for _, n := range x.Names() {
		bx, _ := read(t, x, n)
		by, _ := read(t, y, n)
		if !bytes.Equal(bx, by) {
			t.Fatalf("same seed, %s differs", n)
		}
	}
	// A clone of a clone is the clone: everything in it is durable.
	z := x.CrashClone(99)
	if !slices.Equal(z.Names(), x.Names()) || !slices.Equal(x.DurableNames(), x.Names()) {
		t.Fatalf("a clone has non-durable state: %q vs %q", z.Names(), x.Names())
	}
}

func TestWriteFileDurability(t *testing.T) {
	m := memfs.New(a)
	if err := m.WriteFile("000001.log.meta.tmp", []byte("24 bytes of metadata...")); err != nil {
		t.Fatal(err)
	}
	if _, ok := read(t, m.CrashClone(0, memfs.DropUnsynced()), "000001.log.meta.tmp"); ok {
		t.Fatal("WriteFile's name survived without SyncDir")
	}
	if err := m.SyncDir(); err != nil {
		t.Fatal(err)
	}
	for seed := range int64(20) {
		if got, _ := read(t, m.CrashClone(seed), "000001.log.meta.tmp"); string(got) != "24 bytes of metadata..." {
			t.Fatalf("seed %d: WriteFile + SyncDir lost data: %q", seed, got)
		}
	}
}

func TestCapacity(t *testing.T) {
	m := memfs.New(a, memfs.WithCapacity(3*a))
	f := mustCreate(t, m, "a", 2*a)
	noSpace := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, vfs.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s: %v, want an error wrapping vfs.ErrNoSpace and ENOSPC", what, err)
		}
	}
	_, err := m.Create("b", 2*a)
	noSpace("Create past capacity", err)
	if _, ok := read(t, m, "b"); ok {
		t.Fatal("a failed Create left its file")
	}
	noSpace("WriteAt past capacity", f.WriteAt(fill(2*a, 1), int64(2*a), vfs.NoSync))
	if n, _ := f.Size(); n != 2*a {
		t.Fatalf("a failed WriteAt changed the size to %d", n)
	}
	if got, _ := read(t, m, "a"); !bytes.Equal(got, make([]byte, 2*a)) {
		t.Fatal("a failed WriteAt wrote")
	}
	noSpace("Truncate past capacity", f.Truncate(4*a))
	noSpace("WriteFile past capacity", m.WriteFile("c", make([]byte, 2*a)))
	// Writes inside the allocation and up to the limit work.
	mustWrite(t, f, fill(a, 1), int64(2*a), vfs.NoSync)
	if m.Used() != 3*a {
		t.Fatalf("Used %d, want %d", m.Used(), 3*a)
	}
	f.Close()
	if err := m.Remove("a"); err != nil {
		t.Fatal(err)
	}
	g := mustCreate(t, m, "b", 2*a) // room again
	g.Close()
	m.SetCapacity(0)
	h := mustCreate(t, m, "big", 64*a)
	h.Close()
}

func TestMaxFileSize(t *testing.T) {
	m := memfs.New(a)
	if _, err := m.Create("huge", memfs.MaxFileSize+1); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Create past MaxFileSize: %v", err)
	}
	f := mustCreate(t, m, "seg", 0)
	defer f.Close()
	if err := f.WriteAt(fill(a, 1), memfs.MaxFileSize, vfs.NoSync); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("WriteAt past MaxFileSize: %v", err)
	}
	if err := f.Truncate(memfs.MaxFileSize + 1); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Truncate past MaxFileSize: %v", err)
	}
}

func TestRemovedOpenFileStaysUsable(t *testing.T) {
	m := memfs.New(a)
	f := mustCreate(t, m, "seg", a)
	if err := m.Remove("seg"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, fill(a, 1), 0, vfs.Fdatasync)
	p := align.Alloc(a, a)
	if n, err := f.ReadAt(p, 0); n != a || err != nil || !bytes.Equal(p, fill(a, 1)) {
		t.Fatalf("read of a removed open file: %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadGeometry(t *testing.T) {
	for _, c := range []struct {
		align int
		opts  []memfs.Option
	}{{0, nil}, {1000, nil}, {256, nil}, {4096, []memfs.Option{memfs.WithSectorSize(8192)}}, {4096, []memfs.Option{memfs.WithSectorSize(100)}}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d, ...) did not panic", c.align)
				}
			}()
			memfs.New(c.align, c.opts...)
		}()
	}
}

// TestConcurrentCrashClone takes clones while writers run (for -race): each
// clone must hold every write that was synced before it was taken.
func TestConcurrentCrashClone(t *testing.T) {
	m := memfs.New(a)
	const writers, blocks = 4, 48
	files := make([]vfs.File, writers)
	synced := make([]atomic.Int64, writers) // blocks [0, n) are durable
	for w := range files {
		files[w] = durableFile(t, m, fmt.Sprintf("w%d", w), make([]byte, blocks*a))
	}
	block := func(w, i int) []byte { return fill(a, byte(w*blocks+i+1)) }
	var wg sync.WaitGroup
	for w, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range blocks {
				mode := []vfs.SyncMode{vfs.NoSync, vfs.Fdatasync, vfs.DSync}[i%3]
				if err := f.WriteAt(block(w, i), int64(i*a), mode); err != nil {
					t.Error(err)
					return
				}
				if mode != vfs.NoSync {
					synced[w].Store(int64(i + 1))
				}
			}
		}()
	}
	for seed := range int64(30) {
		var before [writers]int64
		for w := range before {
			before[w] = synced[w].Load()
		}
		c := m.CrashClone(seed)
		for w := range writers {
			got, ok := read(t, c, fmt.Sprintf("w%d", w))
			if !ok {
				t.Fatalf("seed %d: w%d lost", seed, w)
			}
			for i := range int(before[w]) {
				if !bytes.Equal(got[i*a:(i+1)*a], block(w, i)) {
					t.Fatalf("seed %d: w%d block %d was synced before the crash but lost\n%s", seed, w, i, c.CrashReport())
				}
			}
		}
	}
	wg.Wait()
	for _, f := range files {
		f.Close()
	}
}

// WithExtents records a synced write of data into blocks never written
// (Create's preallocation, a Truncate's growth), and only that: not zeros
// (initialisation), not an unsynced write, not blocks written before.
func TestExtentsRecordColdWrites(t *testing.T) {
	m := memfs.New(a, memfs.WithExtents())
	if !m.InitBlocks() || memfs.New(a).InitBlocks() {
		t.Fatal("InitBlocks must say true with WithExtents only")
	}
	f := mustCreate(t, m, "000001.log", 8*a)
	mustWrite(t, f, fill(a, 0), 0, vfs.Fdatasync)     // zeros: initialisation
	mustWrite(t, f, fill(a, 1), 0, vfs.Fdatasync)     // block 0 was written
	mustWrite(t, f, fill(a, 2), a, vfs.NoSync)        // not synced
	mustWrite(t, f, fill(a, 3), a, vfs.Fdatasync)     // block 1 was written
	mustWrite(t, f, fill(2*a, 4), 3*a, vfs.Fdatasync) // cold: blocks 3 and 4
	mustWrite(t, f, fill(a, 5), 4*a, vfs.DSync)       // block 4 is written now
	if err := f.Truncate(12 * a); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, fill(a, 6), 10*a, vfs.DSync) // cold: the truncate's growth
	want := []memfs.ColdWrite{{Names: []string{"000001.log"}, Off: 3 * a, Len: 2 * a}, {Names: []string{"000001.log"}, Off: 10 * a, Len: a}}
	if got := m.ColdWrites(); !reflect.DeepEqual(got, want) {
		t.Fatalf("cold writes %+v, want %+v", got, want)
	}
	f.Close()
}
