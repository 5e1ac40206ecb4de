// Package osdir is the operating-system layer the real backends share: one
// directory of regular files addressed by base name (Dir), and the calls on
// a file whose form differs between systems (Fdatasync, Preallocate,
// OpenDirect).
//
// It imports only the standard library, golang.org/x/sys and packages vfs
// and align.
// The backends (uring, fallback) import it and never each other.
//
// Dir has no optional vfs methods (vfs.DirectIO, vfs.BlockIniter): a
// backend says what it is itself, and nothing is inherited by embedding.
package osdir

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

// lockName is the file Lock creates and locks.
const lockName = "LOCK"

// Dir is a directory whose files are named by base names. Safe for
// concurrent use (it holds no state but its path and options).
type Dir struct {
	path string
	opts vfs.Options
}

// New opens (creating it if needed, with opts.DirPerm) the directory path.
// Files it creates get opts.FilePerm. Zero options get vfs.Options'
// defaults; opts.Alignment is not osdir's (the backends discover or check
// it) and is only kept.
func New(path string, opts vfs.Options) (*Dir, error) {
	if path == "" {
		return nil, errors.New("dwal: empty directory path")
	}
	opts = opts.WithDefaults()
	if err := os.MkdirAll(path, opts.DirPerm); err != nil {
		return nil, fmt.Errorf("dwal: create directory: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dwal: stat directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dwal: %s is not a directory", path)
	}
	return &Dir{path: path, opts: opts}, nil
}

// Path is the directory's path, as given to New.
func (d *Dir) Path() string { return d.path }

// Options are the options the Dir was made with (defaults filled).
func (d *Dir) Options() vfs.Options { return d.opts }

// CheckName returns an error wrapping fs.ErrInvalid unless name is a base
// name that stays inside a directory: not empty, "." or "..", and without a
// separator (either slash, on every system) or a NUL byte.
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("dwal: bad file name %q: %w", name, fs.ErrInvalid)
	}
	return nil
}

// Join returns the full path of name, refusing names that leave the
// directory (CheckName).
func (d *Dir) Join(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(d.path, name), nil
}

// Create makes a new file (O_RDWR|O_CREATE|O_EXCL; an existing name gives
// an error wrapping fs.ErrExist) and preallocates size bytes (Preallocate).
// On any failure the new file is removed. A negative size gives an error
// wrapping fs.ErrInvalid.
func (d *Dir) Create(name string, size int64) (*os.File, error) {
	return d.create(name, size, func(p string, flag int) (*os.File, error) {
		return os.OpenFile(p, flag, d.opts.FilePerm)
	})
}

// CreateDirect is Create with O_DIRECT (see OpenDirect), set before the
// file is preallocated.
func (d *Dir) CreateDirect(name string, size int64) (*os.File, error) {
	return d.create(name, size, func(p string, flag int) (*os.File, error) {
		return OpenDirect(p, flag, d.opts.FilePerm)
	})
}

func (d *Dir) create(name string, size int64, open func(string, int) (*os.File, error)) (*os.File, error) {
	p, err := d.Join(name)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("dwal: create %s: negative size %d: %w", name, size, fs.ErrInvalid)
	}
	f, err := open(p, os.O_RDWR|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, err
	}
	if err := Preallocate(f, size); err != nil {
		f.Close()
		os.Remove(p)
		return nil, err
	}
	return f, nil
}

// Open opens an existing file for reading and writing, or reading only
// with readOnly. A missing file gives an error wrapping fs.ErrNotExist.
func (d *Dir) Open(name string, readOnly bool) (*os.File, error) {
	p, err := d.Join(name)
	if err != nil {
		return nil, err
	}
	return os.OpenFile(p, openFlag(readOnly), 0)
}

// OpenDirect is Open with O_DIRECT (see OpenDirect).
func (d *Dir) OpenDirect(name string, readOnly bool) (*os.File, error) {
	p, err := d.Join(name)
	if err != nil {
		return nil, err
	}
	return OpenDirect(p, openFlag(readOnly), 0)
}

func openFlag(readOnly bool) int {
	if readOnly {
		return os.O_RDONLY
	}
	return os.O_RDWR
}

// Remove deletes a file; durable after SyncDir.
func (d *Dir) Remove(name string) error {
	p, err := d.Join(name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

// Rename atomically replaces newname with oldname; durable after SyncDir.
func (d *Dir) Rename(oldname, newname string) error {
	po, err := d.Join(oldname)
	if err != nil {
		return err
	}
	pn, err := d.Join(newname)
	if err != nil {
		return err
	}
	return os.Rename(po, pn)
}

// SyncDir makes the creates, renames and removes done in the directory
// durable (SyncDir of its path).
func (d *Dir) SyncDir() error { return SyncDir(d.path) }

// List returns the directory's entries (os.ReadDir: sorted by name).
func (d *Dir) List() ([]fs.DirEntry, error) { return os.ReadDir(d.path) }

// ReadFile reads a small file whole.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	p, err := d.Join(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// WriteFile creates or truncates name, writes data and makes it durable
// (Fdatasync) before returning. Not atomic: see vfs.FS.WriteFile.
func (d *Dir) WriteFile(name string, data []byte) error {
	p, err := d.Join(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, d.opts.FilePerm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return NoSpace(err)
	}
	if err := Fdatasync(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Lock takes the directory's exclusive lock: it creates (if needed) and
// locks the file LOCK (flock on Unix, LockFileEx on windows). It fails at
// once, wrapping vfs.ErrLocked, when another holder has it, in this process
// or another; closing the returned Closer (or exiting) releases it.
func (d *Dir) Lock() (io.Closer, error) {
	p := filepath.Join(d.path, lockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, d.opts.FilePerm)
	if err != nil {
		return nil, fmt.Errorf("dwal: open LOCK: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s): %w", vfs.ErrLocked, p, err)
	}
	return f, nil
}

// NoSpace wraps an error caused by ENOSPC with vfs.ErrNoSpace, keeping the
// cause in the chain; other errors (and nil) are returned as they are.
func NoSpace(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) && !errors.Is(err, vfs.ErrNoSpace) {
		return fmt.Errorf("%w: %w", vfs.ErrNoSpace, err)
	}
	return err
}

// CachedFile is a file opened for reading through the page cache (no
// O_DIRECT), with the vfs.File contract of a read-only handle: the
// backends that write with O_DIRECT open sealed files this way
// (vfs.CachedReader).
type CachedFile struct {
	f     *os.File
	align int
}

// OpenCached opens name read-only through the page cache; its reads keep
// alignment a.
func (d *Dir) OpenCached(name string, a int) (*CachedFile, error) {
	f, err := d.Open(name, true)
	if err != nil {
		return nil, err
	}
	return &CachedFile{f: f, align: a}, nil
}

var errReadOnly = fmt.Errorf("dwal: file opened for reading only: %w", fs.ErrPermission)

// WriteAt fails: the handle is read-only.
func (f *CachedFile) WriteAt(p []byte, off int64, mode vfs.SyncMode) error { return errReadOnly }

// ReadAt reads len(p) bytes at off (aligned as the FS's), fewer only at the
// end of the file, with io.EOF.
func (f *CachedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := align.Check(p, off, f.align); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

// Sync makes what was written to the file durable (fdatasync).
func (f *CachedFile) Sync() error { return Fdatasync(f.f) }

// Truncate fails: the handle is read-only.
func (f *CachedFile) Truncate(size int64) error { return errReadOnly }

// Size returns the file's size.
func (f *CachedFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Close closes the file.
func (f *CachedFile) Close() error { return f.f.Close() }
