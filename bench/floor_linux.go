package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

// The floors: the least a durable write can cost on this disk from Go, no
// log format at all. With C writers each does its own durable write (no
// batching): the device's own behaviour, and its tail, under C concurrent
// write+syncs. A file opened with O_DIRECT is pre-zeroed
// (written once and synced, so later writes land in initialised blocks and
// their sync commits no extent conversion) and then written in place,
// wrapping around: each op copies its bytes into an aligned buffer and makes
// them durable with pwrite + fdatasync, or with one pwritev2(RWF_DSYNC).

// floorFileSize is the pre-zeroed file's size (at least 4 batches).
const floorFileSize = 64 << 20

type floorSystem struct {
	name  string
	dsync bool
}

// FloorSystems returns the pwrite+fdatasync and pwritev2(RWF_DSYNC) floors.
func FloorSystems() []System {
	return []System{&floorSystem{"floor-pwrite", false}, &floorSystem{"floor-pwritev2", true}}
}

func (s *floorSystem) Name() string { return s.name }

func (s *floorSystem) Supports(workload string, writers int) (bool, string) {
	switch workload {
	case wlRotate, wlRotateNone:
		return false, "a floor has no segments"
	case wlReplay:
		return false, "a floor is write-only; fio's sequential read is the read floor"
	}
	return true, ""
}

func (s *floorSystem) Open(cfg Config) (Log, error) {
	f, a, err := OpenPreZeroed(filepath.Join(cfg.Dir, "floor.dat"), floorFileSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return &floorLog{f: f, fd: int(f.Fd()), align: a, dsync: s.dsync, size: floorFileSize}, nil
}

// OpenPreZeroed creates path (it must not exist) with O_DIRECT
// (osdir.OpenDirect), writes size bytes of zeros into it and syncs it and
// its directory, so that later writes land in initialised blocks and their
// syncs commit no extent conversion. It returns the file and the
// directory's DIO alignment; the caller closes the file (its Fd stays valid
// until then).
func OpenPreZeroed(path string, size int64) (*os.File, int, error) {
	a, _ := align.Discover(filepath.Dir(path))
	f, err := osdir.OpenDirect(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open O_DIRECT: %w", err)
	}
	zeros := align.Alloc(1<<20, a)
	for off := int64(0); off < size && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off)
	}
	if err == nil {
		err = osdir.Fdatasync(f)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, fmt.Errorf("pre-zero: %w", err)
	}
	osdir.SyncDir(filepath.Dir(path))
	return f, a, nil
}

type floorLog struct {
	f     *os.File // owns fd
	fd    int
	align int
	dsync bool
	size  int64        // of the file
	off   atomic.Int64 // next offset, before wrapping
	syncs atomic.Uint64
	bufs  sync.Pool // *floorBuf: one per writer in flight
}

// write makes p[:n] durable at the next offset: each writer its own
// pwrite+fdatasync (or pwritev2 RWF_DSYNC), no batching.
func (l *floorLog) write(fb *floorBuf, n int) error {
	p := fb.b[:align.Up(n, l.align)]
	if int64(len(p)) > l.size {
		return fmt.Errorf("a %d-byte write is larger than the floor's %d-byte file", len(p), l.size)
	}
	off := (l.off.Add(int64(len(p))) - int64(len(p))) % (l.size - int64(len(p)) + 1)
	off = off / int64(l.align) * int64(l.align)
	var err error
	if l.dsync {
		fb.iov[0] = p
		_, err = unix.Pwritev2(l.fd, fb.iov[:], off, unix.RWF_DSYNC)
	} else {
		if _, err = unix.Pwrite(l.fd, p, off); err == nil {
			err = unix.Fdatasync(l.fd)
		}
	}
	if err != nil {
		return err
	}
	l.syncs.Add(1)
	return nil
}

// floorBuf is one writer's aligned buffer (and its iovec, reused).
type floorBuf struct {
	b   []byte
	iov [1][]byte
}

// buf returns a buffer of at least n bytes.
func (l *floorLog) buf(n int) *floorBuf {
	b, _ := l.bufs.Get().(*floorBuf)
	if b == nil || len(b.b) < n {
		b = &floorBuf{b: align.Alloc(align.Up(max(n, l.align), l.align), l.align)}
	}
	return b
}

func (l *floorLog) Commit(_ uint64, data []byte) error {
	b := l.buf(len(data))
	defer l.bufs.Put(b)
	copy(b.b, data)
	return l.write(b, len(data))
}

func (l *floorLog) Flush(_ uint64, entries [][]byte) error {
	n := 0
	for _, e := range entries {
		n += len(e)
	}
	b := l.buf(n)
	defer l.bufs.Put(b)
	n = 0
	for _, e := range entries {
		n += copy(b.b[n:], e)
	}
	return l.write(b, n)
}

func (l *floorLog) Syncs() uint64 { return l.syncs.Load() }

func (l *floorLog) Close() error { return l.f.Close() }

// dropCache makes the kernel forget the cached pages of the files under dir
// (each is synced first, since only clean pages are dropped), so that a
// replay reads from the disk as it would after a restart.
func dropCache(dir string) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		unix.Fdatasync(int(f.Fd()))
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
}

// dropCacheNote says what dropCache does here.
const dropCacheNote = "page cache of the written files dropped (fdatasync + POSIX_FADV_DONTNEED) before each replay"

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// partFloorFileSize is each file's size in floor-files (small: N files are
// pre-zeroed before the cell).
const partFloorFileSize = 1 << 20

// floorFilesSystem is the partitions workload's floor for N separate logs:
// N pre-zeroed O_DIRECT files, writer w making its own record durable in
// file w with pwrite + fdatasync (one device flush per record, per file).
type floorFilesSystem struct{}

func (floorFilesSystem) Name() string { return "floor-files" }

func (floorFilesSystem) Open(cfg Config) (Log, error) {
	l := &floorFiles{}
	for w := range cfg.Writers {
		f, a, err := OpenPreZeroed(filepath.Join(cfg.Dir, fmt.Sprintf("floor-%d.dat", w)), partFloorFileSize)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("floor-files: %w", err)
		}
		l.files = append(l.files, &floorLog{f: f, fd: int(f.Fd()), align: a, size: partFloorFileSize})
	}
	return l, nil
}

type floorFiles struct{ files []*floorLog }

func (l *floorFiles) CommitAs(w int, lsn uint64, data []byte) error {
	return l.files[w].Commit(lsn, data)
}

func (l *floorFiles) Commit(lsn uint64, data []byte) error { return l.files[0].Commit(lsn, data) }

func (l *floorFiles) Flush(lsn uint64, entries [][]byte) error {
	return l.files[0].Flush(lsn, entries)
}

func (l *floorFiles) Syncs() uint64 {
	var n uint64
	for _, f := range l.files {
		n += f.Syncs()
	}
	return n
}

func (l *floorFiles) Close() error {
	var err error
	for _, f := range l.files {
		if e := f.Close(); err == nil {
			err = e
		}
	}
	return err
}

// partitionFloors are the partitions workload's floors: N files, each its
// own pwrite + fdatasync; one file with one flusher's group commit for all.
func partitionFloors() []System { return []System{floorFilesSystem{}, FloorGroupSystem()} }
