package osdir_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

// alignedBlock returns a 4096-byte buffer at a 4096-aligned address.
func alignedBlock() []byte {
	b := make([]byte, 2*4096)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & 4095)
	return b[off : off+4096]
}

func isDirect(t *testing.T, f *os.File) bool {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.O_DIRECT != 0
}

// On a file system that takes O_DIRECT, OpenDirect creates and opens files
// with it; on one that refuses it, it fails with EINVAL and leaves no file.
func TestOpenDirect(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := osdir.OpenDirect(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, syscall.EINVAL) {
		if got := names(t, dir); len(got) != 0 {
			t.Fatalf("a refused OpenDirect left %v", got)
		}
		t.Skipf("%s refuses O_DIRECT: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !isDirect(t, f) {
		t.Error("a file created by OpenDirect is not O_DIRECT")
	}
	want := alignedBlock()
	for i := range want {
		want[i] = byte(i*7 + 1)
	}
	if _, err := f.WriteAt(want, 0); err != nil {
		t.Fatalf("aligned write: %v", err)
	}
	if err := osdir.Fdatasync(f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(want[:100], 4096); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unaligned write on an O_DIRECT file: %v, want EINVAL (the flag is not in effect)", err)
	}
	f.Close()

	if _, err := osdir.OpenDirect(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("OpenDirect(O_EXCL) of an existing file: %v, want fs.ErrExist", err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Errorf("directory holds %v, want [f] (a failed O_EXCL create must not remove the existing file)", got)
	}
	ro, err := osdir.OpenDirect(p, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if !isDirect(t, ro) {
		t.Error("a file opened by OpenDirect is not O_DIRECT")
	}
	got := alignedBlock()
	if _, err := ro.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Errorf("O_DIRECT read back: %v, equal %t", err, bytes.Equal(got, want))
	}

	d, err := osdir.New(dir, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := d.CreateDirect("seg", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if st, _ := seg.Stat(); !isDirect(t, seg) || st.Size() != 1<<20 {
		t.Errorf("CreateDirect: O_DIRECT %t, size %d; want true, %d", isDirect(t, seg), st.Size(), 1<<20)
	}
}

// On ramfs, which refuses O_DIRECT, a create through OpenDirect fails with
// EINVAL from the fcntl (not from open) and removes the file it created
// with O_EXCL; without O_EXCL it cannot know the file is its own and leaves
// it. Needs root (mount).
func TestOpenDirectRefusedOnRamfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount)")
	}
	mnt := t.TempDir()
	if err := unix.Mount("dwal-test-ramfs", mnt, "ramfs", 0, "mode=0700"); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			t.Skipf("cannot mount ramfs here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := unix.Unmount(mnt, 0); err == nil || !errors.Is(err, unix.EBUSY) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		unix.Unmount(mnt, unix.MNT_DETACH)
	})
	p := filepath.Join(mnt, "excl")
	_, err := osdir.OpenDirect(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	var pe *os.PathError
	if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &pe) || pe.Op != "fcntl O_DIRECT" {
		t.Fatalf("OpenDirect(O_CREATE|O_EXCL) on ramfs: %v, want EINVAL from fcntl O_DIRECT", err)
	}
	if got := names(t, mnt); len(got) != 0 {
		t.Errorf("a refused O_EXCL create left %v", got)
	}
	if _, err := osdir.OpenDirect(filepath.Join(mnt, "shared"), os.O_RDWR|os.O_CREATE, 0o600); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("OpenDirect(O_CREATE) on ramfs: %v, want EINVAL", err)
	}
	if got := names(t, mnt); !slices.Equal(got, []string{"shared"}) {
		t.Errorf("after a refused create without O_EXCL the directory holds %v, want [shared] (left alone)", got)
	}
	if _, err := osdir.OpenDirect(filepath.Join(mnt, "shared"), os.O_RDWR, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("OpenDirect of an existing file on ramfs: %v, want EINVAL", err)
	}
	d, err := osdir.New(mnt, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateDirect("seg", 1<<20); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("CreateDirect on ramfs: %v, want EINVAL", err)
	}
	if got := names(t, mnt); !slices.Equal(got, []string{"shared"}) {
		t.Errorf("a refused CreateDirect left %v", got)
	}
}
