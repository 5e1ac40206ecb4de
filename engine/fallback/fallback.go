// Package fallback is dwal's portable backend: os.File with buffered
// (page-cache) writes and a durable Sync: fdatasync on Linux, F_FULLFSYNC on
// darwin, FlushFileBuffers on windows, fsync elsewhere. It writes the same
// bytes as the io_uring backend, so a directory written by one opens with the
// other.
//
// The directory operations, small files, the lock and the system calls
// around a write are package osdir's, which the io_uring backend uses too;
// neither backend imports the other.
package fallback

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

// FS is a directory served through os.File.
type FS struct {
	d     *osdir.Dir
	align int
}

var (
	_ vfs.FS       = (*FS)(nil)
	_ vfs.File     = (*File)(nil)
	_ vfs.DirectIO = (*FS)(nil)
)

// New opens (creating it if needed, with opts.DirPerm) the directory dir.
func New(dir string, opts vfs.Options) (*FS, error) {
	d, err := osdir.New(dir, opts)
	if err != nil {
		return nil, err
	}
	a := opts.Alignment
	if a <= 0 {
		a, _ = align.Discover(dir)
	} else if a&(a-1) != 0 || a < align.Default {
		return nil, fmt.Errorf("dwal: alignment %d is not a power of two of at least %d", a, align.Default)
	}
	return &FS{d: d, align: a}, nil
}

// Dir is the directory this FS serves.
func (f *FS) Dir() string { return f.d.Path() }

// Options are the options the FS was made with.
func (f *FS) Options() vfs.Options { return f.d.Options() }

// Name implements vfs.FS.
func (f *FS) Name() string { return "fallback" }

// Alignment implements vfs.FS. Buffered writes need no alignment, but the
// format is the same on every backend, so the fallback keeps the directory's
// DIO alignment and checks it like the others do.
func (f *FS) Alignment() int { return f.align }

// Path returns the full path of name, refusing names that leave the directory.
func (f *FS) Path(name string) (string, error) { return f.d.Join(name) }

// Create implements vfs.FS.
func (f *FS) Create(name string, size int64) (vfs.File, error) {
	of, err := f.d.Create(name, size)
	if err != nil {
		return nil, err
	}
	return &File{f: of, align: f.align}, nil
}

// Open implements vfs.FS.
func (f *FS) Open(name string, readOnly bool) (vfs.File, error) {
	of, err := f.d.Open(name, readOnly)
	if err != nil {
		return nil, err
	}
	return &File{f: of, align: f.align}, nil
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error { return f.d.Remove(name) }

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error { return f.d.Rename(oldname, newname) }

// SyncDir implements vfs.FS.
func (f *FS) SyncDir() error { return f.d.SyncDir() }

// List implements vfs.FS.
func (f *FS) List() ([]fs.DirEntry, error) { return f.d.List() }

// ReadFile implements vfs.FS.
func (f *FS) ReadFile(name string) ([]byte, error) { return f.d.ReadFile(name) }

// WriteFile implements vfs.FS.
func (f *FS) WriteFile(name string, data []byte) error { return f.d.WriteFile(name, data) }

// Lock implements vfs.FS.
func (f *FS) Lock() (io.Closer, error) { return f.d.Lock() }

// Close implements vfs.FS.
func (f *FS) Close() error { return nil }

// DirectIO implements vfs.DirectIO: false, writes go through the page
// cache. After a failed fsync the kernel may have dropped or kept the dirty
// pages, so the engine turns read-only rather than trust a rollback.
func (f *FS) DirectIO() bool { return false }

// File is an os.File with the vfs.File contract.
type File struct {
	f     *os.File
	align int
}

// WriteAt implements vfs.File. DSync is served as a write followed by
// fdatasync: buffered I/O has no FUA.
func (f *File) WriteAt(p []byte, off int64, mode vfs.SyncMode) error {
	if err := align.Check(p, off, f.align); err != nil {
		return err
	}
	if mode > vfs.DSync {
		return fmt.Errorf("dwal: unknown sync mode %d: %w", mode, fs.ErrInvalid)
	}
	n, err := f.f.WriteAt(p, off)
	if err != nil {
		return osdir.NoSpace(err)
	}
	if n != len(p) {
		return fmt.Errorf("%w: %d of %d bytes at %d", vfs.ErrShortWrite, n, len(p), off)
	}
	if mode != vfs.NoSync {
		return osdir.Fdatasync(f.f)
	}
	return nil
}

// ReadAt implements vfs.File.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := align.Check(p, off, f.align); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

// Sync implements vfs.File.
func (f *File) Sync() error { return osdir.Fdatasync(f.f) }

// Truncate implements vfs.File.
func (f *File) Truncate(size int64) error { return f.f.Truncate(size) }

// Size implements vfs.File.
func (f *File) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Close implements vfs.File.
func (f *File) Close() error { return f.f.Close() }
