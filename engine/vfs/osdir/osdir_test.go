package osdir_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

func newDir(t *testing.T) *osdir.Dir {
	t.Helper()
	d, err := osdir.New(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// names lists the directory straight from the OS.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestNew(t *testing.T) {
	base := t.TempDir()
	nested := filepath.Join(base, "a", "b")
	d, err := osdir.New(nested, vfs.Options{DirPerm: 0o750})
	if err != nil {
		t.Fatal(err)
	}
	if d.Path() != nested {
		t.Errorf("Path() = %q, want %q", d.Path(), nested)
	}
	st, err := os.Stat(nested)
	if err != nil || !st.IsDir() {
		t.Fatalf("New did not create %s: %v", nested, err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&^0o750 != 0 {
		t.Errorf("directory mode %v, want at most 0750", st.Mode().Perm())
	}
	if o := d.Options(); o.FilePerm != 0o600 || o.DirPerm != 0o750 {
		t.Errorf("Options() = %+v, want FilePerm 0600 (the default) and the given DirPerm 0750", o)
	}
	if _, err := osdir.New("", vfs.Options{}); err == nil {
		t.Error("New(\"\") succeeded")
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := osdir.New(file, vfs.Options{}); err == nil {
		t.Error("New of a regular file succeeded")
	}
}

// Names that would leave the directory are refused by every method, with an
// error wrapping fs.ErrInvalid, and nothing is created anywhere.
func TestBadNames(t *testing.T) {
	parent := t.TempDir()
	d, err := osdir.New(filepath.Join(parent, "d"), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("good", []byte("x")); err != nil {
		t.Fatal(err)
	}
	bad := []string{"", ".", "..", "a/b", "/abs", "../up", "dir/", `a\b`, `..\up`, "nul\x00byte"}
	for _, name := range bad {
		if err := osdir.CheckName(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("CheckName(%q) = %v, want fs.ErrInvalid", name, err)
		}
		calls := map[string]error{}
		_, calls["Join"] = d.Join(name)
		f, err := d.Create(name, 0)
		calls["Create"] = err
		if f != nil {
			f.Close()
		}
		f, err = d.CreateDirect(name, 0)
		calls["CreateDirect"] = err
		if f != nil {
			f.Close()
		}
		f, err = d.Open(name, true)
		calls["Open"] = err
		if f != nil {
			f.Close()
		}
		f, err = d.OpenDirect(name, true)
		calls["OpenDirect"] = err
		if f != nil {
			f.Close()
		}
		calls["Remove"] = d.Remove(name)
		calls["Rename to"] = d.Rename("good", name)
		calls["Rename from"] = d.Rename(name, "good2")
		_, calls["ReadFile"] = d.ReadFile(name)
		calls["WriteFile"] = d.WriteFile(name, []byte("x"))
		for what, err := range calls {
			if !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("%s(%q): %v, want an error wrapping fs.ErrInvalid", what, name, err)
			}
		}
	}
	for _, good := range []string{"a", "000001.log", "..a", "a..", ".hidden"} {
		if err := osdir.CheckName(good); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", good, err)
		}
	}
	if got := names(t, d.Path()); !slices.Equal(got, []string{"good"}) {
		t.Errorf("directory holds %v after the refused calls, want [good]", got)
	}
	if got := names(t, parent); !slices.Equal(got, []string{"d"}) {
		t.Errorf("parent holds %v after the refused calls, want [d]", got)
	}
}

func TestCreate(t *testing.T) {
	d := newDir(t)
	f, err := d.Create("seg", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 1<<20 {
		t.Errorf("created file is %d bytes, want the preallocated %d", st.Size(), 1<<20)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("created file mode %v, want 0600", st.Mode().Perm())
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 1<<20-4096); err != nil || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Errorf("preallocated bytes do not read back as zeros (%v)", err)
	}
	if _, err := d.Create("seg", 0); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of an existing name: %v, want fs.ErrExist", err)
	}
	if _, err := d.Create("neg", -1); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Create with a negative size: %v, want fs.ErrInvalid", err)
	}
	if got := names(t, d.Path()); !slices.Equal(got, []string{"seg"}) {
		t.Errorf("directory holds %v, want [seg]", got)
	}
	ro, err := d.Open("seg", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.WriteAt(buf, 0); err == nil {
		t.Error("WriteAt on a read-only Open succeeded")
	}
	if _, err := d.Open("missing", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestDirectoryOps(t *testing.T) {
	d := newDir(t)
	if err := d.WriteFile("a.tmp", []byte("longer contents")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("a.tmp", []byte("short")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.ReadFile("a.tmp"); err != nil || string(b) != "short" {
		t.Errorf("ReadFile after a shorter WriteFile = %q, %v; want \"short\" (truncated)", b, err)
	}
	if err := d.WriteFile("a", []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename("a.tmp", "a"); err != nil {
		t.Fatal(err)
	}
	if b, _ := d.ReadFile("a"); string(b) != "short" {
		t.Errorf("Rename did not replace the target: %q", b)
	}
	if err := d.SyncDir(); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
	ents, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "a" {
		t.Errorf("List = %v, want [a]", ents)
	}
	if err := d.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := d.ReadFile("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a removed file: %v, want fs.ErrNotExist", err)
	}
	if err := osdir.SyncDir(filepath.Join(d.Path(), "missing")); err == nil && runtime.GOOS != "windows" {
		t.Error("SyncDir of a missing directory succeeded")
	}
}

// The lock is exclusive, also between two holders in one process, and
// released by closing it.
func TestLock(t *testing.T) {
	d := newDir(t)
	l, err := d.Lock()
	if err != nil {
		t.Fatal(err)
	}
	again, err := osdir.New(d.Path(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := again.Lock(); !errors.Is(err, vfs.ErrLocked) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second Lock: %v, want vfs.ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l3, err := again.Lock()
	if err != nil {
		t.Fatalf("Lock after the holder closed it: %v", err)
	}
	l3.Close()
	if got := names(t, d.Path()); !slices.Equal(got, []string{"LOCK"}) {
		t.Errorf("directory holds %v, want [LOCK]", got)
	}
}

func TestNoSpace(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	err := osdir.NoSpace(enospc)
	if !errors.Is(err, vfs.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("NoSpace(ENOSPC) = %v, want it to wrap vfs.ErrNoSpace and keep ENOSPC", err)
	}
	if again := osdir.NoSpace(err); again != err {
		t.Errorf("NoSpace wrapped an already wrapped error again: %v", again)
	}
	eio := &os.PathError{Op: "write", Path: "x", Err: syscall.EIO}
	if got := osdir.NoSpace(eio); got != error(eio) {
		t.Errorf("NoSpace(EIO) = %v, want it unchanged", got)
	}
	if osdir.NoSpace(nil) != nil {
		t.Error("NoSpace(nil) is not nil")
	}
	wrapped := fmt.Errorf("fallocate: %w", syscall.ENOSPC)
	if !errors.Is(osdir.NoSpace(wrapped), vfs.ErrNoSpace) {
		t.Error("NoSpace does not see ENOSPC deeper in the chain")
	}
}

func TestPreallocateAndFdatasync(t *testing.T) {
	d := newDir(t)
	f, err := d.Create("f", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := osdir.Preallocate(f, 0); err != nil {
		t.Errorf("Preallocate(0): %v", err)
	}
	if err := osdir.Preallocate(f, 64<<10); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 64<<10 {
		t.Errorf("size after Preallocate = %d, want %d", st.Size(), 64<<10)
	}
	if _, err := f.WriteAt([]byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	if err := osdir.Fdatasync(f); err != nil {
		t.Errorf("Fdatasync: %v", err)
	}
	f.Close()
	if err := osdir.Fdatasync(f); err == nil {
		t.Error("Fdatasync of a closed file succeeded")
	}
}
