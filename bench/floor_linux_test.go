package bench

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// OpenPreZeroed gives an O_DIRECT file of the asked size holding zeros, and
// refuses (leaving it alone) a path that exists.
func TestOpenPreZeroed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "floor.dat")
	f, a, err := OpenPreZeroed(p, 1<<20)
	if errors.Is(err, syscall.EINVAL) {
		t.Skipf("%s refuses O_DIRECT: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a < 512 || a&(a-1) != 0 {
		t.Errorf("alignment %d is not a power of two >= 512", a)
	}
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_DIRECT == 0 {
		t.Errorf("pre-zeroed file is not O_DIRECT (flags %#x, %v)", fl, err)
	}
	b, err := os.ReadFile(p)
	if err != nil || len(b) != 1<<20 || !bytes.Equal(b, make([]byte, 1<<20)) {
		t.Errorf("pre-zeroed file: %d bytes, all zero %t, %v; want %d zeros", len(b), bytes.Equal(b, make([]byte, len(b))), err, 1<<20)
	}
	if _, _, err := OpenPreZeroed(p, 1<<20); !errors.Is(err, fs.ErrExist) {
		t.Errorf("OpenPreZeroed of an existing path: %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("a refused OpenPreZeroed removed the existing file: %v", err)
	}
}
