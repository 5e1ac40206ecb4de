// Package vfstest is the one conformance suite for dwal's storage
// backends: Run checks the vfs.FS and vfs.File contract method by method,
// through the interface only (no OS calls), so the same checks run against
// io_uring, fallback, memfs and errorfs(memfs).
//
// It does not check durability (that needs a crash: see memfs.CrashClone)
// nor fault handling (see errorfs).
package vfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"testing"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Run runs the suite. newFS returns a fresh, empty FS for each subtest (for
// a disk backend, one over t.TempDir()); Run closes it when the subtest ends.
func Run(t *testing.T, newFS func(t *testing.T) vfs.FS) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := newFS(t)
			t.Cleanup(func() {
				if err := fsys.Close(); err != nil {
					t.Errorf("FS.Close: %v", err)
				}
			})
			c.run(t, fsys)
		})
	}
}

var cases = []struct {
	name string
	run  func(*testing.T, vfs.FS)
}{
	{"Basics", testBasics},
	{"CreateZeroed", testCreateZeroed},
	{"CreateExisting", testCreateExisting},
	{"RoundTrip", testRoundTrip},
	{"Misaligned", testMisaligned},
	{"ReadAtEOF", testReadAtEOF},
	{"ConcurrentWriteAt", testConcurrentWriteAt},
	{"TruncateSize", testTruncateSize},
	{"SyncModes", testSyncModes},
	{"SharedFile", testSharedFile},
	{"ReadOnly", testReadOnly},
	{"CachedReader", testCachedReader},
	{"ClosedFile", testClosedFile},
	{"Rename", testRename},
	{"Remove", testRemove},
	{"Missing", testMissing},
	{"List", testList},
	{"WriteFileReadFile", testWriteFileReadFile},
	{"Lock", testLock},
	{"BadNames", testBadNames},
}

// pattern fills b with bytes that differ by position and seed, so a block
// written to the wrong place or a stale block is caught.
func pattern(b []byte, seed int) []byte {
	for i := range b {
		b[i] = byte(i*7 + seed*13 + i>>9 + 1)
	}
	return b
}

func buf(fsys vfs.FS, n int) []byte { return align.Alloc(n, fsys.Alignment()) }

func create(t *testing.T, fsys vfs.FS, name string, size int64) vfs.File {
	t.Helper()
	f, err := fsys.Create(name, size)
	if err != nil {
		t.Fatalf("Create(%q, %d): %v", name, size, err)
	}
	return f
}

func open(t *testing.T, fsys vfs.FS, name string, readOnly bool) vfs.File {
	t.Helper()
	f, err := fsys.Open(name, readOnly)
	if err != nil {
		t.Fatalf("Open(%q, %v): %v", name, readOnly, err)
	}
	return f
}

func closeFile(t *testing.T, f vfs.File) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatalf("File.Close: %v", err)
	}
}

func write(t *testing.T, f vfs.File, p []byte, off int64, mode vfs.SyncMode) {
	t.Helper()
	if err := f.WriteAt(p, off, mode); err != nil {
		t.Fatalf("WriteAt(%d bytes, %d, %v): %v", len(p), off, mode, err)
	}
}

func size(t *testing.T, f vfs.File) int64 {
	t.Helper()
	n, err := f.Size()
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	return n
}

// contents reads the whole file with aligned reads.
func contents(t *testing.T, fsys vfs.FS, f vfs.File) []byte {
	t.Helper()
	n := size(t, f)
	a := fsys.Alignment()
	if n == 0 {
		return []byte{}
	}
	p := buf(fsys, align.Up(int(n), a))
	got, err := f.ReadAt(p, 0)
	if int64(got) != n {
		t.Fatalf("ReadAt whole file: %d bytes of %d, %v", got, n, err)
	}
	if err != nil && err != io.EOF {
		t.Fatalf("ReadAt whole file: %v", err)
	}
	return p[:n]
}

func equal(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	i := 0
	for got[i] == want[i] {
		i++
	}
	t.Fatalf("%s: first difference at byte %d: %#x, want %#x", what, i, got[i], want[i])
}

func names(t *testing.T, fsys vfs.FS) []string {
	t.Helper()
	ents, err := fsys.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("List: %q is a directory", e.Name())
		}
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func testBasics(t *testing.T, fsys vfs.FS) {
	if fsys.Name() == "" {
		t.Error("Name is empty")
	}
	a := fsys.Alignment()
	if a < 512 || a&(a-1) != 0 {
		t.Fatalf("Alignment %d is not a power of two >= 512", a)
	}
	if b := fsys.Alignment(); b != a {
		t.Fatalf("Alignment changed: %d then %d", a, b)
	}
}

func testCreateZeroed(t *testing.T, fsys vfs.FS) {
	a := int64(fsys.Alignment())
	for i, n := range []int64{0, a, 3 * a, 1 << 20} {
		name := fmt.Sprintf("f%d", i)
		f := create(t, fsys, name, n)
		if got := size(t, f); got != n {
			t.Fatalf("Create(%q, %d): size %d", name, n, got)
		}
		equal(t, "new file "+name, contents(t, fsys, f), make([]byte, n))
		closeFile(t, f)
	}
}

func testCreateExisting(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(2*a))
	want := pattern(buf(fsys, 2*a), 1)
	write(t, f, want, 0, vfs.Fdatasync)
	closeFile(t, f)
	if g, err := fsys.Create("seg", int64(4*a)); !errors.Is(err, fs.ErrExist) {
		if err == nil {
			g.Close()
		}
		t.Fatalf("Create over an existing file: %v, want an error wrapping fs.ErrExist", err)
	}
	if err := fsys.WriteFile("small", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Create("small", 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a WriteFile file: %v, want an error wrapping fs.ErrExist", err)
	}
	f = open(t, fsys, "seg", true)
	defer closeFile(t, f)
	equal(t, "file after a failed Create", contents(t, fsys, f), want)
}

func testRoundTrip(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(8*a))
	defer closeFile(t, f)
	model := make([]byte, 8*a)
	for i, w := range []struct{ blk, n int }{{0, 1}, {3, 2}, {1, 1}, {7, 1}, {2, 4}, {0, 8}, {5, 1}} {
		p := pattern(buf(fsys, w.n*a), i)
		write(t, f, p, int64(w.blk*a), vfs.NoSync)
		copy(model[w.blk*a:], p)
		equal(t, fmt.Sprintf("after write %d", i), contents(t, fsys, f), model)
	}
	// Single aligned reads of each block.
	p := buf(fsys, a)
	for blk := range 8 {
		n, err := f.ReadAt(p, int64(blk*a))
		if n != a || err != nil {
			t.Fatalf("ReadAt block %d: %d, %v", blk, n, err)
		}
		equal(t, fmt.Sprintf("block %d", blk), p, model[blk*a:(blk+1)*a])
	}
	// A write past the end extends the file; the gap reads as zeros.
	p = pattern(buf(fsys, a), 99)
	write(t, f, p, int64(10*a), vfs.NoSync)
	if got := size(t, f); got != int64(11*a) {
		t.Fatalf("size after a write past the end: %d, want %d", got, 11*a)
	}
	model = append(model, make([]byte, 2*a)...)
	model = append(model, p...)
	equal(t, "after a write past the end", contents(t, fsys, f), model)
	// The caller may reuse its buffer: the file keeps what was written.
	clear(p)
	equal(t, "after the caller cleared its buffer", contents(t, fsys, f), model)
}

func testMisaligned(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(4*a))
	defer closeFile(t, f)
	want := pattern(buf(fsys, 4*a), 3)
	write(t, f, want, 0, vfs.NoSync)

	big := pattern(buf(fsys, 3*a), 5)
	bad := []struct {
		what string
		p    []byte
		off  int64
	}{
		{"address", big[1 : 1+a], 0},
		{"address by half", big[a/2 : a/2+a], 0},
		{"length", big[:a/2], 0},
		{"length plus one", big[:a+1], 0},
		{"offset", big[:a], int64(a / 2)},
		{"offset by one", big[:a], 1},
		{"negative offset", big[:a], -int64(a)},
		{"empty buffer", big[:0], 0},
		{"nil buffer", nil, 0},
	}
	for _, mode := range []vfs.SyncMode{vfs.NoSync, vfs.Fdatasync, vfs.DSync} {
		for _, c := range bad {
			if err := f.WriteAt(c.p, c.off, mode); !errors.Is(err, align.ErrMisaligned) {
				t.Errorf("WriteAt with bad %s (%v): %v, want an error wrapping align.ErrMisaligned", c.what, mode, err)
			}
		}
	}
	for _, c := range bad {
		n, err := f.ReadAt(c.p, c.off)
		if !errors.Is(err, align.ErrMisaligned) || n != 0 {
			t.Errorf("ReadAt with bad %s: %d, %v, want 0 and an error wrapping align.ErrMisaligned", c.what, n, err)
		}
	}
	if got := size(t, f); got != int64(4*a) {
		t.Fatalf("size after rejected writes: %d, want %d", got, 4*a)
	}
	equal(t, "file after rejected writes", contents(t, fsys, f), want)
}

func testReadAtEOF(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(2*a))
	defer closeFile(t, f)
	want := pattern(buf(fsys, 2*a), 4)
	write(t, f, want, 0, vfs.NoSync)

	p := buf(fsys, 2*a)
	n, err := f.ReadAt(p, int64(a))
	if n != a || err != io.EOF {
		t.Fatalf("ReadAt across EOF: %d, %v, want %d, io.EOF", n, err, a)
	}
	equal(t, "read across EOF", p[:n], want[a:])
	for _, off := range []int64{int64(2 * a), int64(5 * a)} {
		if n, err := f.ReadAt(p, off); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt at %d of a %d-byte file: %d, %v, want 0, io.EOF", off, 2*a, n, err)
		}
	}
	// An unaligned size: the read stops at it.
	if err := f.Truncate(int64(a + 100)); err != nil {
		t.Fatal(err)
	}
	n, err = f.ReadAt(p, 0)
	if n != a+100 || err != io.EOF {
		t.Fatalf("ReadAt of a %d-byte file: %d, %v, want %d, io.EOF", a+100, n, err, a+100)
	}
	equal(t, "read of an unaligned size", p[:n], want[:a+100])
	// An empty file.
	e := create(t, fsys, "empty", 0)
	defer closeFile(t, e)
	if n, err := e.ReadAt(p, 0); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt of an empty file: %d, %v, want 0, io.EOF", n, err)
	}
}

func testConcurrentWriteAt(t *testing.T, fsys vfs.FS) {
	const writers, perWriter = 16, 8
	a := fsys.Alignment()
	total := writers * perWriter
	f := create(t, fsys, "seg", int64(total*a))
	defer closeFile(t, f)
	block := func(blk int) []byte { return pattern(buf(fsys, a), blk) }

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				blk := i*writers + w // interleaved, disjoint
				mode := vfs.NoSync
				if i == perWriter-1 {
					mode = vfs.Fdatasync
				}
				if err := f.WriteAt(block(blk), int64(blk*a), mode); err != nil {
					t.Errorf("writer %d: WriteAt block %d: %v", w, blk, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := buf(fsys, a)
			for i := range perWriter {
				blk := w*perWriter + i
				if n, err := f.ReadAt(p, int64(blk*a)); n != a || err != nil {
					t.Errorf("reader %d: ReadAt block %d: %d, %v", w, blk, n, err)
					return
				}
				if !bytes.Equal(p, block(blk)) {
					t.Errorf("reader %d: block %d holds the wrong bytes", w, blk)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func testTruncateSize(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", 0)
	defer closeFile(t, f)
	data := pattern(buf(fsys, 2*a), 6)
	write(t, f, data, 0, vfs.NoSync)
	steps := []struct {
		size int64
		want []byte
	}{
		{int64(a), data[:a]},
		{int64(3 * a), append(slices.Clone(data[:a]), make([]byte, 2*a)...)}, // no stale bytes come back
		{100, data[:100]},
		{0, nil},
		{int64(a), make([]byte, a)},
	}
	for _, s := range steps {
		if err := f.Truncate(s.size); err != nil {
			t.Fatalf("Truncate(%d): %v", s.size, err)
		}
		if got := size(t, f); got != s.size {
			t.Fatalf("Size after Truncate(%d): %d", s.size, got)
		}
		equal(t, fmt.Sprintf("after Truncate(%d)", s.size), contents(t, fsys, f), append([]byte{}, s.want...))
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync after Truncate: %v", err)
	}
}

func testSyncModes(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(4*a))
	defer closeFile(t, f)
	want := make([]byte, 4*a)
	for i, mode := range []vfs.SyncMode{vfs.NoSync, vfs.Fdatasync, vfs.DSync} {
		p := pattern(buf(fsys, a), 10+i)
		write(t, f, p, int64(i*a), mode)
		copy(want[i*a:], p)
	}
	// A write past the preallocated end, synced: the size must follow.
	p := pattern(buf(fsys, a), 20)
	write(t, f, p, int64(4*a), vfs.DSync)
	want = append(want, p...)
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	if err := fsys.SyncDir(); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	equal(t, "after synced writes", contents(t, fsys, f), want)
}

func testSharedFile(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	w := create(t, fsys, "seg", int64(2*a))
	defer closeFile(t, w)
	r := open(t, fsys, "seg", true)
	defer closeFile(t, r)
	p := pattern(buf(fsys, a), 7)
	write(t, w, p, int64(a), vfs.NoSync)
	want := append(make([]byte, a), p...)
	equal(t, "read through a second handle", contents(t, fsys, r), want)
	rw := open(t, fsys, "seg", false)
	q := pattern(buf(fsys, a), 8)
	write(t, rw, q, 0, vfs.Fdatasync)
	closeFile(t, rw)
	copy(want, q)
	equal(t, "read after a write through a third handle", contents(t, fsys, w), want)
}

func testReadOnly(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(2*a))
	want := pattern(buf(fsys, 2*a), 9)
	write(t, f, want, 0, vfs.Fdatasync)
	closeFile(t, f)
	r := open(t, fsys, "seg", true)
	defer closeFile(t, r)
	equal(t, "read-only read", contents(t, fsys, r), want)
	if err := r.WriteAt(pattern(buf(fsys, a), 1), 0, vfs.NoSync); err == nil {
		t.Error("WriteAt on a read-only file succeeded")
	}
	if err := r.Truncate(0); err == nil {
		t.Error("Truncate on a read-only file succeeded")
	}
	equal(t, "read-only file after refused writes", contents(t, fsys, r), want)
}

// testCachedReader checks a backend's page-cache reads (vfs.CachedReader):
// they return what was written, are read-only, and stay coherent with the
// backend's writes to the same file after its pages were cached, also
// once the file is renamed and written again (a reused segment file).
func testCachedReader(t *testing.T, fsys vfs.FS) {
	cr, ok := fsys.(vfs.CachedReader)
	if !ok {
		t.Skipf("%s reads through one path only (no vfs.CachedReader)", fsys.Name())
	}
	if _, err := cr.OpenCached("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenCached of a missing file: %v", err)
	}
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(3*a))
	want := pattern(buf(fsys, 3*a), 21)
	write(t, f, want, 0, vfs.Fdatasync)
	c, err := cr.OpenCached("seg")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "cached read", contents(t, fsys, c), want) // its pages are cached now
	if err := c.WriteAt(pattern(buf(fsys, a), 1), 0, vfs.NoSync); err == nil {
		t.Error("WriteAt on a cached reader succeeded")
	}
	if err := c.Truncate(0); err == nil {
		t.Error("Truncate on a cached reader succeeded")
	}
	b := pattern(buf(fsys, a), 22)
	write(t, f, b, int64(a), vfs.Fdatasync)
	copy(want[a:], b)
	equal(t, "cached read after a write over cached pages", contents(t, fsys, c), want)
	closeFile(t, c)
	closeFile(t, f)
	if err := fsys.Rename("seg", "reused"); err != nil {
		t.Fatal(err)
	}
	f = open(t, fsys, "reused", false)
	b = pattern(buf(fsys, 2*a), 23)
	write(t, f, b, 0, vfs.DSync)
	copy(want, b)
	closeFile(t, f)
	c, err = cr.OpenCached("reused")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "cached read of a renamed file written again", contents(t, fsys, c), want)
	closeFile(t, c)
}

func testClosedFile(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	f := create(t, fsys, "seg", int64(a))
	closeFile(t, f)
	p := buf(fsys, a)
	if err := f.WriteAt(p, 0, vfs.NoSync); err == nil {
		t.Error("WriteAt after Close succeeded")
	}
	if _, err := f.ReadAt(p, 0); err == nil {
		t.Error("ReadAt after Close succeeded")
	}
	if _, err := f.Size(); err == nil {
		t.Error("Size after Close succeeded")
	}
	if err := f.Sync(); err == nil {
		t.Error("Sync after Close succeeded")
	}
	if err := f.Truncate(0); err == nil {
		t.Error("Truncate after Close succeeded")
	}
	if err := f.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

func testRename(t *testing.T, fsys vfs.FS) {
	a := fsys.Alignment()
	wa := pattern(buf(fsys, a), 1)
	wb := pattern(buf(fsys, a), 2)
	for name, p := range map[string][]byte{"a.tmp": wa, "b.log": wb} {
		f := create(t, fsys, name, int64(a))
		write(t, f, p, 0, vfs.Fdatasync)
		closeFile(t, f)
	}
	if err := fsys.Rename("a.tmp", "b.log"); err != nil {
		t.Fatalf("Rename over an existing file: %v", err)
	}
	if err := fsys.SyncDir(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fsys); slices.Contains(got, "a.tmp") || !slices.Contains(got, "b.log") {
		t.Fatalf("List after Rename: %q", got)
	}
	f := open(t, fsys, "b.log", true)
	equal(t, "renamed file", contents(t, fsys, f), wa)
	closeFile(t, f)
	if _, err := fsys.Open("a.tmp", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of the old name: %v, want an error wrapping fs.ErrNotExist", err)
	}
	// To a fresh name.
	if err := fsys.Rename("b.log", "c.log"); err != nil {
		t.Fatalf("Rename to a new name: %v", err)
	}
	if got := names(t, fsys); slices.Contains(got, "b.log") || !slices.Contains(got, "c.log") {
		t.Fatalf("List after Rename: %q", got)
	}
	if err := fsys.Rename("missing", "d.log"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Rename of a missing file: %v, want an error wrapping fs.ErrNotExist", err)
	}
	if slices.Contains(names(t, fsys), "d.log") {
		t.Fatal("Rename of a missing file made its target")
	}
}

func testRemove(t *testing.T, fsys vfs.FS) {
	f := create(t, fsys, "seg", int64(fsys.Alignment()))
	closeFile(t, f)
	if err := fsys.Remove("seg"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := fsys.SyncDir(); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names(t, fsys), "seg") {
		t.Fatal("List shows a removed file")
	}
	if _, err := fsys.Open("seg", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a removed file: %v, want an error wrapping fs.ErrNotExist", err)
	}
	if err := fsys.Remove("seg"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove: %v, want an error wrapping fs.ErrNotExist", err)
	}
	// The name is free again.
	f = create(t, fsys, "seg", 0)
	closeFile(t, f)
}

func testMissing(t *testing.T, fsys vfs.FS) {
	for _, ro := range []bool{false, true} {
		if f, err := fsys.Open("missing", ro); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				f.Close()
			}
			t.Errorf("Open(missing, readOnly=%v): %v, want an error wrapping fs.ErrNotExist", ro, err)
		}
	}
	if err := fsys.Remove("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(missing): %v, want an error wrapping fs.ErrNotExist", err)
	}
	if _, err := fsys.ReadFile("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing): %v, want an error wrapping fs.ErrNotExist", err)
	}
	if slices.Contains(names(t, fsys), "missing") {
		t.Error("a failed Open made the file")
	}
}

func testList(t *testing.T, fsys vfs.FS) {
	for _, n := range names(t, fsys) {
		if n != "LOCK" {
			t.Fatalf("a new FS lists %q", n)
		}
	}
	want := []string{"000001.log", "000002.log", "000002.log.meta", "prepared-1.tmp"}
	for _, n := range want {
		if n == "000002.log.meta" {
			if err := fsys.WriteFile(n, make([]byte, 24)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		closeFile(t, create(t, fsys, n, int64(fsys.Alignment())))
	}
	got := names(t, fsys)
	for _, n := range want {
		if !slices.Contains(got, n) {
			t.Fatalf("List %q lacks %q", got, n)
		}
	}
	if err := fsys.Remove("000001.log"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fsys); slices.Contains(got, "000001.log") || len(got) < len(want)-1 {
		t.Fatalf("List after Remove: %q", got)
	}
}

func testWriteFileReadFile(t *testing.T, fsys vfs.FS) {
	big := make([]byte, 10007)
	for i := range big {
		big[i] = byte(i % 251)
	}
	for _, data := range [][]byte{[]byte("37 bytes of metadata, not aligned.!!"), []byte("short"), {}, big, make([]byte, 24)} {
		if err := fsys.WriteFile("x.meta", data); err != nil {
			t.Fatalf("WriteFile(%d bytes): %v", len(data), err)
		}
		got, err := fsys.ReadFile("x.meta")
		if err != nil {
			t.Fatalf("ReadFile: %v", err)
		}
		equal(t, fmt.Sprintf("ReadFile after WriteFile of %d bytes", len(data)), got, data)
	}
	// ReadFile of a file made by Create reads it whole, unaligned size too.
	f := create(t, fsys, "seg", int64(fsys.Alignment()))
	if err := f.Truncate(77); err != nil {
		t.Fatal(err)
	}
	closeFile(t, f)
	got, err := fsys.ReadFile("seg")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "ReadFile of a truncated file", got, make([]byte, 77))
}

func testLock(t *testing.T, fsys vfs.FS) {
	l1, err := fsys.Lock()
	if err != nil {
		t.Fatalf("first Lock: %v", err)
	}
	for range 2 {
		if l, err := fsys.Lock(); !errors.Is(err, vfs.ErrLocked) {
			if err == nil {
				l.Close()
			}
			t.Fatalf("Lock while locked: %v, want an error wrapping vfs.ErrLocked", err)
		}
	}
	if err := l1.Close(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	l2, err := fsys.Lock()
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
}

func testBadNames(t *testing.T, fsys vfs.FS) {
	if err := fsys.WriteFile("good", []byte("g")); err != nil {
		t.Fatal(err)
	}
	before := names(t, fsys)
	for _, bad := range []string{"", ".", "..", "a/b", "/abs", "../up", "dir/"} {
		if f, err := fsys.Create(bad, 0); err == nil {
			f.Close()
			t.Errorf("Create(%q) succeeded", bad)
		}
		if f, err := fsys.Open(bad, true); err == nil {
			f.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
		if err := fsys.Remove(bad); err == nil {
			t.Errorf("Remove(%q) succeeded", bad)
		}
		if err := fsys.Rename("good", bad); err == nil {
			t.Errorf("Rename(good, %q) succeeded", bad)
		}
		if err := fsys.Rename(bad, "good2"); err == nil {
			t.Errorf("Rename(%q, good2) succeeded", bad)
		}
		if _, err := fsys.ReadFile(bad); err == nil {
			t.Errorf("ReadFile(%q) succeeded", bad)
		}
		if err := fsys.WriteFile(bad, []byte("x")); err == nil {
			t.Errorf("WriteFile(%q) succeeded", bad)
		}
	}
	if after := names(t, fsys); !slices.Equal(before, after) {
		t.Fatalf("bad names changed the directory: %q, then %q", before, after)
	}
}
