package errorfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

const a = 4096

func fill(n int, b byte) []byte {
	p := align.Alloc(n, a)
	for i := range p {
		p[i] = b
	}
	return p
}

// world is the state every call of the table below runs against.
type world struct {
	fs   *errorfs.FS
	mem  *memfs.FS
	file vfs.File // "seg", 4 blocks

	extra []vfs.File // opened by the calls, closed by finish
	lock  io.Closer  // taken by the FS.Lock call
}

// finish closes what the calls left open, with faults off.
func (w *world) finish(t *testing.T) {
	t.Helper()
	w.fs.SetInjector(nil)
	for _, f := range w.extra {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
	if open := w.mem.OpenFiles(); len(open) > 0 {
		t.Errorf("files left open: %q", open)
	}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	mem := memfs.New(a)
	efs := errorfs.New(mem, nil)
	for _, n := range []string{"f", "f2", "f3"} {
		if err := efs.WriteFile(n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := efs.Create("seg", 4*a)
	if err != nil {
		t.Fatal(err)
	}
	return &world{fs: efs, mem: mem, file: f}
}

// call is one method call; kinds are the op kinds it asks the injector about.
type call struct {
	method string // "FS.X", "File.X" or "Lock.Close", for the coverage check
	kinds  []errorfs.OpKind
	run    func(w *world) error
}

// calls exercises every fallible method once, in an order where each works
// when nothing is injected.
var calls = []call{
	{"FS.Create", []errorfs.OpKind{errorfs.OpCreate}, func(w *world) error {
		f, err := w.fs.Create("new", a)
		if err == nil {
			w.extra = append(w.extra, f)
		}
		return err
	}},
	{"FS.Open", []errorfs.OpKind{errorfs.OpOpen}, func(w *world) error {
		f, err := w.fs.Open("seg", true)
		if err == nil {
			w.extra = append(w.extra, f)
		}
		return err
	}},
	{"FS.Remove", []errorfs.OpKind{errorfs.OpRemove}, func(w *world) error { return w.fs.Remove("f2") }},
	{"FS.Rename", []errorfs.OpKind{errorfs.OpRename}, func(w *world) error { return w.fs.Rename("f3", "f4") }},
	{"FS.SyncDir", []errorfs.OpKind{errorfs.OpSyncDir}, func(w *world) error { return w.fs.SyncDir() }},
	{"FS.List", []errorfs.OpKind{errorfs.OpList}, func(w *world) error { _, err := w.fs.List(); return err }},
	{"FS.ReadFile", []errorfs.OpKind{errorfs.OpReadFile}, func(w *world) error { _, err := w.fs.ReadFile("f"); return err }},
	{"FS.WriteFile", []errorfs.OpKind{errorfs.OpWriteFile}, func(w *world) error { return w.fs.WriteFile("f5", []byte("x")) }},
	{"FS.Lock", []errorfs.OpKind{errorfs.OpLock}, func(w *world) error {
		var err error
		w.lock, err = w.fs.Lock()
		return err
	}},
	{"Lock.Close", []errorfs.OpKind{errorfs.OpUnlock}, func(w *world) error {
		if w.lock == nil {
			return nil // Lock failed: nothing to release, nothing asked
		}
		return w.lock.Close()
	}},
	{"File.WriteAt", []errorfs.OpKind{errorfs.OpWrite}, func(w *world) error {
		return w.file.WriteAt(fill(a, 1), 0, vfs.NoSync)
	}},
	{"File.WriteAt(sync)", []errorfs.OpKind{errorfs.OpWrite, errorfs.OpWriteSync}, func(w *world) error {
		return w.file.WriteAt(fill(a, 2), a, vfs.Fdatasync)
	}},
	{"File.ReadAt", []errorfs.OpKind{errorfs.OpRead}, func(w *world) error {
		_, err := w.file.ReadAt(fill(a, 0), 0)
		return err
	}},
	{"File.Sync", []errorfs.OpKind{errorfs.OpSync}, func(w *world) error { return w.file.Sync() }},
	{"File.Truncate", []errorfs.OpKind{errorfs.OpTruncate}, func(w *world) error { return w.file.Truncate(4 * a) }},
	{"File.Size", []errorfs.OpKind{errorfs.OpSize}, func(w *world) error { _, err := w.file.Size(); return err }},
	{"File.Close", []errorfs.OpKind{errorfs.OpClose}, func(w *world) error { return w.file.Close() }},
	{"FS.Close", []errorfs.OpKind{errorfs.OpFSClose}, func(w *world) error { return w.fs.Close() }},
}

// infallible methods return no error and have no kind.
var infallible = []string{"FS.Name", "FS.Alignment"}

// TestKindsCoverTheInterfaces checks, by reflection, that every method of
// vfs.FS and vfs.File is exercised by the call table (or is infallible), and
// that every OpKind is asked about by some call.
func TestKindsCoverTheInterfaces(t *testing.T) {
	covered := map[string]bool{}
	claimed := map[errorfs.OpKind]bool{}
	for _, c := range calls {
		covered[strings.TrimSuffix(c.method, "(sync)")] = true
		for _, k := range c.kinds {
			claimed[k] = true
		}
	}
	for _, m := range infallible {
		covered[m] = true
	}
	for prefix, typ := range map[string]reflect.Type{
		"FS.":   reflect.TypeFor[vfs.FS](),
		"File.": reflect.TypeFor[vfs.File](),
		"Lock.": reflect.TypeFor[io.Closer](),
	} {
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			name := prefix + m.Name
			if !covered[name] {
				t.Errorf("%s has no op kind", name)
			}
			fallible := m.Type.NumOut() > 0 && m.Type.Out(m.Type.NumOut()-1) == reflect.TypeFor[error]()
			if fallible == slices.Contains(infallible, name) {
				t.Errorf("%s: returns an error %v, but listed as infallible %v", name, fallible, !fallible)
			}
			delete(covered, name)
		}
	}
	for name := range covered {
		t.Errorf("the call table names %s, which is no interface method", name)
	}
	for _, k := range errorfs.Kinds() {
		if !claimed[k] {
			t.Errorf("op kind %v is asked about by no method", k)
		}
		if strings.HasPrefix(k.String(), "OpKind(") {
			t.Errorf("op kind %d has no name", k)
		}
		_ = k.Mutates() // panics on a kind it does not classify
	}
	if !slices.Contains(errorfs.MutatingKinds(), errorfs.OpWriteSync) || slices.Contains(errorfs.MutatingKinds(), errorfs.OpRead) {
		t.Errorf("MutatingKinds: %v", errorfs.MutatingKinds())
	}
}

// TestEachKindInjects fails one kind at a time and checks that exactly the
// calls asking about it fail, with an injected error, and are counted.
func TestEachKindInjects(t *testing.T) {
	for _, k := range errorfs.Kinds() {
		t.Run(k.String(), func(t *testing.T) {
			w := newWorld(t)
			w.fs.SetInjector(errorfs.ByKind(errorfs.Always(), k))
			want := int64(0)
			for _, c := range calls {
				asks := slices.Contains(c.kinds, k)
				err := c.run(w)
				if asks {
					want++
					if !errors.Is(err, errorfs.ErrInjected) {
						t.Errorf("%s: %v, want an injected error", c.method, err)
					}
				} else if err != nil {
					t.Errorf("%s: %v, want no error", c.method, err)
				}
			}
			w.finish(t)
			if got := w.fs.Injected(k); got != want || w.fs.InjectedTotal() != want {
				t.Errorf("Injected(%v) = %d, total %d, want %d (%s)", k, got, w.fs.InjectedTotal(), want, w.fs.Report())
			}
		})
	}
}

func TestNoInjector(t *testing.T) {
	w := newWorld(t)
	for _, c := range calls {
		if err := c.run(w); err != nil {
			t.Errorf("%s: %v", c.method, err)
		}
	}
	w.finish(t)
	if w.fs.InjectedTotal() != 0 || w.fs.Ops() == 0 {
		t.Fatal(w.fs.Report())
	}
	if w.fs.Name() != "errorfs(memfs)" || w.fs.Alignment() != a {
		t.Fatalf("Name %q Alignment %d", w.fs.Name(), w.fs.Alignment())
	}
}

func op(k errorfs.OpKind, name string) errorfs.Op { return errorfs.Op{Kind: k, Name: name} }

func fires(inj errorfs.Injector, ops ...errorfs.Op) []int {
	var out []int
	for i, o := range ops {
		if inj.MaybeError(o) != nil {
			out = append(out, i)
		}
	}
	return out
}

func repeat(o errorfs.Op, n int) []errorfs.Op {
	out := make([]errorfs.Op, n)
	for i := range out {
		out[i] = o
	}
	return out
}

func TestOnIndex(t *testing.T) {
	x := errorfs.OnIndex(3)
	if got := fires(x, repeat(op(errorfs.OpWrite, "a"), 8)...); !slices.Equal(got, []int{3}) {
		t.Fatalf("OnIndex(3) fired at %v", got)
	}
	if x.Seen() != 8 {
		t.Fatalf("Seen %d", x.Seen())
	}
	if got := fires(errorfs.OnIndex(-1), repeat(op(errorfs.OpWrite, "a"), 8)...); got != nil {
		t.Fatalf("OnIndex(-1) fired at %v", got)
	}
	// Exactly once under concurrency.
	x = errorfs.OnIndex(500)
	var wg sync.WaitGroup
	var mu sync.Mutex
	hits := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if x.MaybeError(op(errorfs.OpSync, "a")) != nil {
					mu.Lock()
					hits++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if hits != 1 || x.Seen() != 1000 {
		t.Fatalf("OnIndex(500) over 1000 concurrent ops fired %d times, saw %d", hits, x.Seen())
	}
}

func TestByKindAndByName(t *testing.T) {
	ops := []errorfs.Op{
		op(errorfs.OpWrite, "000001.log"), op(errorfs.OpSync, "000001.log"),
		op(errorfs.OpWrite, "x.meta"), op(errorfs.OpSync, "x.meta"),
		op(errorfs.OpSync, "000002.log"),
		{Kind: errorfs.OpRename, Name: "prepared-1.tmp", NewName: "000003.log"},
		op(errorfs.OpSyncDir, ""),
	}
	if got := fires(errorfs.ByKind(errorfs.OnIndex(1), errorfs.OpSync), ops...); !slices.Equal(got, []int{3}) {
		t.Fatalf("second sync: fired at %v", got)
	}
	if got := fires(errorfs.ByKind(errorfs.Always(), errorfs.OpSync, errorfs.OpSyncDir), ops...); !slices.Equal(got, []int{1, 3, 4, 6}) {
		t.Fatalf("syncs: fired at %v", got)
	}
	if got := fires(errorfs.ByName(errorfs.Always(), "*.log"), ops...); !slices.Equal(got, []int{0, 1, 4, 5}) {
		t.Fatalf("*.log: fired at %v", got)
	}
	if got := fires(errorfs.ByName(errorfs.ByKind(errorfs.Always(), errorfs.OpWrite), "*.meta"), ops...); !slices.Equal(got, []int{2}) {
		t.Fatalf("writes of *.meta: fired at %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("ByName with a bad pattern did not panic")
		}
	}()
	errorfs.ByName(errorfs.Always(), "[")
}

func TestRandomly(t *testing.T) {
	ops := repeat(op(errorfs.OpWrite, "a"), 10000)
	x, y := fires(errorfs.Randomly(0.3, 7), ops...), fires(errorfs.Randomly(0.3, 7), ops...)
	if !slices.Equal(x, y) {
		t.Fatal("same seed, different faults")
	}
	if len(x) < 2700 || len(x) > 3300 {
		t.Fatalf("p=0.3 fired %d of 10000", len(x))
	}
	if z := fires(errorfs.Randomly(0.3, 8), ops...); slices.Equal(x, z) {
		t.Fatal("different seeds, same faults")
	}
	if n := len(fires(errorfs.Randomly(0, 1), ops...)); n != 0 {
		t.Fatalf("p=0 fired %d", n)
	}
	if n := len(fires(errorfs.Randomly(1, 1), ops...)); n != len(ops) {
		t.Fatalf("p=1 fired %d", n)
	}
}

func TestAny(t *testing.T) {
	x, y := errorfs.OnIndex(1), errorfs.OnIndex(3)
	nospc := errorfs.Fault{Errno: syscall.ENOSPC}.On(x)
	inj := errorfs.Any(nospc, y)
	var errs []error
	for range 5 {
		errs = append(errs, inj.MaybeError(op(errorfs.OpWrite, "a")))
	}
	if errs[0] != nil || errs[2] != nil || errs[4] != nil {
		t.Fatalf("Any: %v", errs)
	}
	if !errors.Is(errs[1], syscall.ENOSPC) || !errors.Is(errs[3], syscall.EIO) {
		t.Fatalf("Any returned %v and %v", errs[1], errs[3])
	}
	if x.Seen() != 5 || y.Seen() != 5 {
		t.Fatalf("Any did not ask every injector: %d, %d", x.Seen(), y.Seen())
	}
}

func TestForeignErrorIsWrapped(t *testing.T) {
	cause := errors.New("my cause")
	efs := errorfs.New(memfs.New(a), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpSyncDir {
			return cause
		}
		return nil
	}))
	err := efs.SyncDir()
	if !errors.Is(err, cause) || !errors.Is(err, errorfs.ErrInjected) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("SyncDir: %v", err)
	}
	var e *errorfs.Error
	if !errors.As(err, &e) || e.Op.Kind != errorfs.OpSyncDir {
		t.Fatalf("errors.As: %v", err)
	}
}

// writeFixture is a durable 4-block file of 0xAA through errorfs over memfs.
func writeFixture(t *testing.T, inj errorfs.Injector) (*memfs.FS, *errorfs.FS, vfs.File) {
	t.Helper()
	mem := memfs.New(a)
	efs := errorfs.New(mem, nil)
	f, err := efs.Create("seg", 4*a)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteAt(fill(4*a, 0xAA), 0, vfs.Fdatasync); err != nil {
		t.Fatal(err)
	}
	if err := efs.SyncDir(); err != nil {
		t.Fatal(err)
	}
	efs.SetInjector(inj)
	return mem, efs, f
}

func contents(t *testing.T, m *memfs.FS) []byte {
	t.Helper()
	b, err := m.ReadFile("seg")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expect checks that the file holds new bytes in [0, landed) and old after,
// and that a crash dropping unsynced data gives back the old bytes only.
func expect(t *testing.T, mem *memfs.FS, landed int) {
	t.Helper()
	want := append(bytes.Repeat([]byte{0x55}, landed), bytes.Repeat([]byte{0xAA}, 4*a-landed)...)
	if got := contents(t, mem); !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && got[n] == 0x55 {
			n++
		}
		t.Fatalf("file holds %d new bytes, want %d", n, landed)
	}
	if got, _ := mem.CrashClone(1, memfs.DropUnsynced()).ReadFile("seg"); !bytes.Equal(got, fill(4*a, 0xAA)) {
		t.Fatal("the failed write was synced")
	}
}

func TestWriteFaults(t *testing.T) {
	writes := errorfs.ByKind(errorfs.Always(), errorfs.OpWrite)
	for _, mode := range []vfs.SyncMode{vfs.NoSync, vfs.Fdatasync, vfs.DSync} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Run("fail", func(t *testing.T) {
				mem, efs, f := writeFixture(t, writes)
				err := f.WriteAt(fill(4*a, 0x55), 0, mode)
				if !errors.Is(err, errorfs.ErrInjected) || !errors.Is(err, syscall.EIO) || errors.Is(err, vfs.ErrShortWrite) {
					t.Fatalf("WriteAt: %v", err)
				}
				expect(t, mem, 0)
				if efs.Injected(errorfs.OpWrite) != 1 || efs.Injected(errorfs.OpWriteSync) != 0 {
					t.Fatal(efs.Report())
				}
			})
			t.Run("short", func(t *testing.T) {
				mem, _, f := writeFixture(t, errorfs.Fault{Write: errorfs.WriteShort, Sectors: 12}.On(writes))
				err := f.WriteAt(fill(4*a, 0x55), 0, mode)
				if !errors.Is(err, vfs.ErrShortWrite) || errors.Is(err, syscall.EIO) {
					t.Fatalf("WriteAt: %v", err)
				}
				if cancelled := errors.Is(err, syscall.ECANCELED); cancelled != (mode != vfs.NoSync) {
					t.Fatalf("WriteAt %v: linked sync cancelled %v: %v", mode, cancelled, err)
				}
				var e *errorfs.Error
				if !errors.As(err, &e) || e.Landed != 12*512 {
					t.Fatalf("Landed: %v", err)
				}
				expect(t, mem, 12*512) // one block and a half: the half by read-modify-write
			})
			t.Run("torn", func(t *testing.T) {
				mem, _, f := writeFixture(t, errorfs.Fault{Write: errorfs.WriteTorn}.On(writes))
				err := f.WriteAt(fill(4*a, 0x55), 0, mode)
				if !errors.Is(err, syscall.EIO) || errors.Is(err, vfs.ErrShortWrite) || errors.Is(err, syscall.ECANCELED) {
					t.Fatalf("WriteAt: %v", err)
				}
				expect(t, mem, 2*a) // half of the sectors by default
			})
			t.Run("torn all but one", func(t *testing.T) {
				mem, _, f := writeFixture(t, errorfs.Fault{Write: errorfs.WriteTorn, Sectors: 1000}.On(writes))
				if err := f.WriteAt(fill(4*a, 0x55), 0, mode); !errors.Is(err, syscall.EIO) {
					t.Fatalf("WriteAt: %v", err)
				}
				expect(t, mem, 4*a-512)
			})
			t.Run("no space", func(t *testing.T) {
				mem, _, f := writeFixture(t, errorfs.Fault{Errno: syscall.ENOSPC}.On(writes))
				err := f.WriteAt(fill(4*a, 0x55), 0, mode)
				if !errors.Is(err, vfs.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("WriteAt: %v", err)
				}
				expect(t, mem, 0)
			})
		})
	}
}

// TestLinkedSyncFault: the write lands, its linked sync fails, the data is
// readable but not durable.
func TestLinkedSyncFault(t *testing.T) {
	for _, mode := range []vfs.SyncMode{vfs.Fdatasync, vfs.DSync} {
		t.Run(mode.String(), func(t *testing.T) {
			mem, efs, f := writeFixture(t, errorfs.ByKind(errorfs.Always(), errorfs.OpWriteSync))
			err := f.WriteAt(fill(4*a, 0x55), 0, mode)
			if !errors.Is(err, syscall.EIO) || !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("WriteAt: %v", err)
			}
			expect(t, mem, 4*a)
			// NoSync writes never ask about the sync half.
			if err := f.WriteAt(fill(a, 0x55), 0, vfs.NoSync); err != nil {
				t.Fatal(err)
			}
			if efs.Injected(errorfs.OpWriteSync) != 1 || efs.Injected(errorfs.OpWrite) != 0 {
				t.Fatal(efs.Report())
			}
		})
	}
}

func TestSyncFaultLeavesDataUnsynced(t *testing.T) {
	mem, _, f := writeFixture(t, errorfs.ByKind(errorfs.Always(), errorfs.OpSync))
	if err := f.WriteAt(fill(4*a, 0x55), 0, vfs.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v", err)
	}
	expect(t, mem, 4*a)
}

func TestCloseFaultsStillRelease(t *testing.T) {
	mem := memfs.New(a)
	efs := errorfs.New(mem, errorfs.ByKind(errorfs.Always(), errorfs.OpClose, errorfs.OpUnlock))
	f, err := efs.Create("seg", a)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Close: %v", err)
	}
	if open := mem.OpenFiles(); len(open) != 0 {
		t.Fatalf("a failed Close left %q open", open)
	}
	l, err := efs.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("unlock: %v", err)
	}
	l, err = efs.Lock()
	if err != nil {
		t.Fatalf("Lock after a failed unlock: %v", err)
	}
	_ = l.Close()
}

func TestMisalignedIsNotAFault(t *testing.T) {
	mem := memfs.New(a)
	efs := errorfs.New(mem, errorfs.Always())
	efs.SetInjector(nil)
	f, err := efs.Create("seg", a)
	if err != nil {
		t.Fatal(err)
	}
	efs.SetInjector(errorfs.Always())
	if err := f.WriteAt(fill(a, 1)[:100], 0, vfs.NoSync); !errors.Is(err, align.ErrMisaligned) || errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("misaligned WriteAt: %v", err)
	}
	if _, err := f.ReadAt(fill(a, 1), 1); !errors.Is(err, align.ErrMisaligned) {
		t.Fatalf("misaligned ReadAt: %v", err)
	}
	if efs.InjectedTotal() != 0 {
		t.Fatal(efs.Report())
	}
}

func TestReport(t *testing.T) {
	efs := errorfs.New(memfs.New(a), errorfs.ByKind(errorfs.Always(), errorfs.OpSyncDir, errorfs.OpList))
	_ = efs.SyncDir()
	_ = efs.SyncDir()
	_, _ = efs.List()
	_, _ = efs.ReadFile("x")
	want := "4 ops, 3 faults, sync-dir 2, list 1"
	if got := efs.Report(); got != want {
		t.Fatalf("Report %q, want %q", got, want)
	}
	var e *errorfs.Error
	if err := efs.SyncDir(); !errors.As(err, &e) || !strings.Contains(err.Error(), "sync-dir") {
		t.Fatalf("error %v", err)
	}
	_ = fmt.Sprint(e.Op)
}
