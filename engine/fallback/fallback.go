// Package fallback is dwal's portable backend: os.File with buffered
// (page-cache) writes and a durable Sync: fdatasync on Linux, F_FULLFSYNC on
// darwin, FlushFileBuffers on windows, fsync elsewhere. It writes the same
// bytes as the io_uring backend, so a directory written by one opens with the
// other.
//
// The io_uring backend reuses this package for everything off the write path
// (directory operations, small files, the lock).
package fallback

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// FS is a directory served through os.File.
type FS struct {
	dir   string
	opts  vfs.Options
	align int
}

var (
	_ vfs.FS       = (*FS)(nil)
	_ vfs.File     = (*File)(nil)
	_ vfs.DirectIO = (*FS)(nil)
)

// New opens (creating it if needed, with opts.DirPerm) the directory dir.
func New(dir string, opts vfs.Options) (*FS, error) {
	if dir == "" {
		return nil, errors.New("dwal: empty directory path")
	}
	opts = opts.WithDefaults()
	if err := os.MkdirAll(dir, opts.DirPerm); err != nil {
		return nil, fmt.Errorf("dwal: create directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("dwal: stat directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dwal: %s is not a directory", dir)
	}
	a := opts.Alignment
	if a <= 0 {
		a, _ = align.Discover(dir)
	} else if a&(a-1) != 0 || a < align.Default {
		return nil, fmt.Errorf("dwal: alignment %d is not a power of two of at least %d", a, align.Default)
	}
	return &FS{dir: dir, opts: opts, align: a}, nil
}

// Dir is the directory this FS serves.
func (f *FS) Dir() string { return f.dir }

// Options are the options the FS was made with.
func (f *FS) Options() vfs.Options { return f.opts }

// Name implements vfs.FS.
func (f *FS) Name() string { return "fallback" }

// Alignment implements vfs.FS. Buffered writes need no alignment, but the
// format is the same on every backend, so the fallback keeps the directory's
// DIO alignment and checks it like the others do.
func (f *FS) Alignment() int { return f.align }

// Path returns the full path of name, refusing names that leave the directory.
func (f *FS) Path(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("dwal: bad file name %q: %w", name, fs.ErrInvalid)
	}
	return filepath.Join(f.dir, name), nil
}

// Create implements vfs.FS.
func (f *FS) Create(name string, size int64) (vfs.File, error) {
	p, err := f.Path(name)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("dwal: create %s: negative size %d: %w", name, size, fs.ErrInvalid)
	}
	of, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, f.opts.FilePerm)
	if err != nil {
		return nil, err
	}
	if err := Preallocate(of, size); err != nil {
		of.Close()
		os.Remove(p)
		return nil, err
	}
	return &File{f: of, align: f.align}, nil
}

// Open implements vfs.FS.
func (f *FS) Open(name string, readOnly bool) (vfs.File, error) {
	p, err := f.Path(name)
	if err != nil {
		return nil, err
	}
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	of, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return nil, err
	}
	return &File{f: of, align: f.align}, nil
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	p, err := f.Path(name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	po, err := f.Path(oldname)
	if err != nil {
		return err
	}
	pn, err := f.Path(newname)
	if err != nil {
		return err
	}
	return os.Rename(po, pn)
}

// SyncDir implements vfs.FS.
func (f *FS) SyncDir() error { return syncDir(f.dir) }

// List implements vfs.FS.
func (f *FS) List() ([]fs.DirEntry, error) { return os.ReadDir(f.dir) }

// ReadFile implements vfs.FS.
func (f *FS) ReadFile(name string) ([]byte, error) {
	p, err := f.Path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// WriteFile implements vfs.FS.
func (f *FS) WriteFile(name string, data []byte) error {
	p, err := f.Path(name)
	if err != nil {
		return err
	}
	of, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, f.opts.FilePerm)
	if err != nil {
		return err
	}
	if _, err := of.Write(data); err != nil {
		of.Close()
		return noSpace(err)
	}
	if err := Fdatasync(of); err != nil {
		of.Close()
		return err
	}
	return of.Close()
}

// Lock implements vfs.FS.
func (f *FS) Lock() (io.Closer, error) {
	p, err := f.Path("LOCK")
	if err != nil {
		return nil, err
	}
	of, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, f.opts.FilePerm)
	if err != nil {
		return nil, fmt.Errorf("dwal: open LOCK: %w", err)
	}
	if err := lockFile(of); err != nil {
		of.Close()
		return nil, fmt.Errorf("%w (%s): %w", vfs.ErrLocked, p, err)
	}
	return of, nil
}

// Close implements vfs.FS.
func (f *FS) Close() error { return nil }

// File is an os.File with the vfs.File contract.
type File struct {
	f     *os.File
	align int
}

// WriteAt implements vfs.File. SyncDSync is served as a write followed by
// fdatasync: buffered I/O has no FUA.
func (f *File) WriteAt(p []byte, off int64, mode vfs.SyncMode) error {
	if err := align.Check(p, off, f.align); err != nil {
		return err
	}
	if mode > vfs.SyncDSync {
		return fmt.Errorf("dwal: unknown sync mode %d: %w", mode, fs.ErrInvalid)
	}
	n, err := f.f.WriteAt(p, off)
	if err != nil {
		return noSpace(err)
	}
	if n != len(p) {
		return fmt.Errorf("%w: %d of %d bytes at %d", vfs.ErrShortWrite, n, len(p), off)
	}
	if mode != vfs.SyncNone {
		return Fdatasync(f.f)
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
func (f *File) Sync() error { return Fdatasync(f.f) }

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

// noSpace wraps ENOSPC with vfs.ErrNoSpace, keeping the cause.
func noSpace(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) && !errors.Is(err, vfs.ErrNoSpace) {
		return fmt.Errorf("%w: %w", vfs.ErrNoSpace, err)
	}
	return err
}

// NoSpace wraps ENOSPC with vfs.ErrNoSpace (for other backends).
func NoSpace(err error) error { return noSpace(err) }

// DirectIO implements vfs.DirectIO: false, writes go through the page
// cache. After a failed fsync the kernel may have dropped or kept the dirty
// pages, so the engine turns read-only rather than trust a rollback.
func (f *FS) DirectIO() bool { return false }
