//go:build linux

package uring

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

// benchDir is DWAL_BENCH_DIR, or a fresh directory under os.TempDir (which
// is the same file system as the repository on the reference machine).
func benchDir(b *testing.B) string {
	if d := os.Getenv("DWAL_BENCH_DIR"); d != "" {
		d, err := os.MkdirTemp(d, "uring-bench-*")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

const (
	benchBlock   = 4096
	benchMaxFile = 64 << 20 // offsets wrap inside this many pre-zeroed bytes
)

// benchSize is the pre-zeroed file size for n writes.
func benchSize(n int) int64 { return min(int64(max(n, 1))*benchBlock, benchMaxFile) }

// writer issues one durable 4 KiB write at off.
type writer func(p []byte, off int64) error

// runLatency times b.N writes at increasing offsets from `par` goroutines
// (each its own offsets) and reports p50/p99 per op and ops/s.
func runLatency(b *testing.B, par int, size int64, w writer) {
	lat := make([]time.Duration, b.N)
	bufs := make([][]byte, par)
	for g := range bufs {
		bufs[g] = align.Alloc(benchBlock, benchBlock)
		for i := range bufs[g] {
			bufs[g][i] = byte(i + g)
		}
	}
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	b.ResetTimer()
	start := time.Now()
	for g := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < b.N; i += par {
				off := int64(i) * benchBlock % size
				t0 := time.Now()
				if err := w(bufs[g], off); err != nil {
					once.Do(func() { ferr = err })
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if ferr != nil {
		b.Fatal(ferr)
	}
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-us")
	b.ReportMetric(us(lat[len(lat)*99/100]), "p99-us")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// vfsFile creates a file of size bytes in fsys and writes it with zeros,
// then syncs it, so the benchmark overwrites initialised blocks.
func vfsFile(b *testing.B, fsys vfs.FS, size int64) vfs.File {
	_ = fsys.Remove("bench")
	f, err := fsys.Create("bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close(); fsys.Remove("bench") })
	zero := align.Alloc(1<<20, fsys.Alignment())
	for off := int64(0); off < size; off += int64(len(zero)) {
		if err := f.WriteAt(zero[:min(int64(len(zero)), size-off)], off, vfs.NoSync); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return f
}

// rawFile is vfsFile for the floors: an O_DIRECT fd, pre-zeroed and synced.
func rawFile(b *testing.B, dir string, size int64) int {
	p := filepath.Join(dir, "bench-raw")
	f, err := osdir.OpenDirect(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close(); os.Remove(p) })
	fd := int(f.Fd())
	zero := align.Alloc(1<<20, benchBlock)
	for off := int64(0); off < size; off += int64(len(zero)) {
		if _, err := unix.Pwrite(fd, zero[:min(int64(len(zero)), size-off)], off); err != nil {
			b.Fatal(err)
		}
	}
	if err := unix.Fdatasync(fd); err != nil {
		b.Fatal(err)
	}
	return fd
}

// bufferedFile is vfsFile without O_DIRECT: a buffered file, pre-zeroed
// and synced.
func bufferedFile(b *testing.B, dir string, size int64) *os.File {
	d, err := osdir.New(dir, vfs.Options{})
	if err != nil {
		b.Fatal(err)
	}
	_ = d.Remove("bench-buffered")
	f, err := d.Create("bench-buffered", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close(); d.Remove("bench-buffered") })
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero[:min(int64(len(zero)), size-off)], off); err != nil {
			b.Fatal(err)
		}
	}
	if err := osdir.Fdatasync(f); err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkSyncWrite4K(b *testing.B) {
	dir := benchDir(b)
	if err := Probe(dir); err != nil {
		if errors.Is(err, vfs.ErrUnsupported) {
			b.Skipf("io_uring unavailable: %v", err)
		}
		b.Fatal(err)
	}
	uringCase := func(mode vfs.SyncMode, par int) func(*testing.B) {
		return func(b *testing.B) {
			fsys, err := New(dir, vfs.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer fsys.Close()
			size := benchSize(b.N)
			f := vfsFile(b, fsys, size)
			runLatency(b, par, size, func(p []byte, off int64) error { return f.WriteAt(p, off, mode) })
		}
	}
	b.Run("uring-linked-fdatasync", uringCase(vfs.Fdatasync, 1))
	b.Run("uring-rwf-dsync", uringCase(vfs.DSync, 1))
	// What the fallback backend does for a Fdatasync write (it is not
	// imported here: no backend imports another).
	b.Run("buffered-pwrite-fdatasync", func(b *testing.B) {
		size := benchSize(b.N)
		f := bufferedFile(b, dir, size)
		runLatency(b, 1, size, func(p []byte, off int64) error {
			if _, err := f.WriteAt(p, off); err != nil {
				return err
			}
			return osdir.Fdatasync(f)
		})
	})
	pwriteFdatasync := func(fd int) writer {
		return func(p []byte, off int64) error {
			if _, err := unix.Pwrite(fd, p, off); err != nil {
				return err
			}
			return unix.Fdatasync(fd)
		}
	}
	b.Run("floor-pwrite-fdatasync", func(b *testing.B) {
		size := benchSize(b.N)
		runLatency(b, 1, size, pwriteFdatasync(rawFile(b, dir, size)))
	})
	b.Run("floor-pwritev2-dsync", func(b *testing.B) {
		size := benchSize(b.N)
		fd := rawFile(b, dir, size)
		runLatency(b, 1, size, func(p []byte, off int64) error {
			iov := [][]byte{p}
			for {
				_, err := unix.Pwritev2(fd, iov, off, unix.RWF_DSYNC)
				if err != syscall.EINTR {
					return err
				}
			}
		})
	})
	// Four writers at once: what group commit pipelines.
	b.Run("uring-linked-fdatasync-x4", uringCase(vfs.Fdatasync, 4))
	b.Run("uring-rwf-dsync-x4", uringCase(vfs.DSync, 4))
	b.Run("floor-pwrite-fdatasync-x4", func(b *testing.B) {
		size := benchSize(b.N)
		runLatency(b, 4, size, pwriteFdatasync(rawFile(b, dir, size)))
	})
}
