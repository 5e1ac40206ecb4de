//go:build linux

package peers

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/uring"
	"github.com/dwal-project/dwal/engine/vfs"
)

func newUringFS(dir string) (vfs.FS, error) {
	f, err := uring.New(dir, vfs.Options{})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// dropCaches writes the dirty pages back and drops the page cache (as
// root), so the next process starts cold.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

// rawRead reads dir's segments through in ID order, 1 MiB O_DIRECT reads
// one after the other: the floor of a sequential replay.
func rawRead(dir string) (int64, float64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return 0, 0, err
	}
	sort.Strings(names)
	buf := align.Alloc(1<<20, 4096)
	var total int64
	start := time.Now()
	for _, name := range names {
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			return 0, 0, err
		}
		for off := int64(0); ; {
			n, err := f.ReadAt(buf, off)
			total += int64(n)
			off += int64(n)
			if errors.Is(err, io.EOF) || n == 0 {
				break
			}
			if err != nil {
				f.Close()
				return 0, 0, err
			}
		}
		f.Close()
	}
	return total, time.Since(start).Seconds(), nil
}
