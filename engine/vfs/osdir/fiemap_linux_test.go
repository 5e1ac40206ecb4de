package osdir_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

// WrittenPrefix reads the extent map: a fallocated file is written only as
// far as data went into it (synced or not), a sparse file not at all.
func TestWrittenPrefix(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 1 << 20
	if err := osdir.Preallocate(f, size); err != nil {
		t.Fatal(err)
	}
	prefix := func(want int64, what string) {
		t.Helper()
		n, sz, err := osdir.WrittenPrefix(f)
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("no FIEMAP on this file system: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != want || sz != size {
			t.Fatalf("%s: WrittenPrefix = %d of %d bytes, want %d of %d", what, n, sz, want, size)
		}
	}
	prefix(0, "fallocated, never written")
	data := make([]byte, 256<<10)
	for i := range data {
		data[i] = byte(i)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	prefix(256<<10, "first 256 KiB written")
	if _, err := f.WriteAt(data, 512<<10); err != nil {
		t.Fatal(err)
	}
	prefix(256<<10, "a gap of unwritten blocks after the first 256 KiB")
	if _, err := f.WriteAt(data, 256<<10); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 768<<10); err != nil {
		t.Fatal(err)
	}
	prefix(size, "written whole")

	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer sparse.Close()
	if err := sparse.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if n, sz, err := osdir.WrittenPrefix(sparse); err != nil || n != 0 || sz != size {
		t.Fatalf("sparse file: WrittenPrefix = %d of %d bytes, %v; want 0 of %d", n, sz, err, size)
	}
}
