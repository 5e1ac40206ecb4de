//go:build !linux

package uring

import (
	"fmt"
	"io"
	"io/fs"
	"runtime"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// FS is the io_uring backend; it cannot be constructed on this system (New
// always fails), and every method of one fails wrapping vfs.ErrUnsupported.
type FS struct{}

// New always fails here, wrapping vfs.ErrUnsupported: io_uring is Linux's.
func New(dir string, opts vfs.Options) (*FS, error) { return nil, unsupported() }

// Probe always fails here, wrapping vfs.ErrUnsupported.
func Probe(dir string) error { return unsupported() }

func unsupported() error {
	return fmt.Errorf("%w: io_uring is Linux only (GOOS=%s)", vfs.ErrUnsupported, runtime.GOOS)
}

// Alignment implements vfs.FS.
func (f *FS) Alignment() int { return align.Default }

// Create implements vfs.FS.
func (f *FS) Create(string, int64) (vfs.File, error) { return nil, unsupported() }

// Open implements vfs.FS.
func (f *FS) Open(string, bool) (vfs.File, error) { return nil, unsupported() }

// Remove implements vfs.FS.
func (f *FS) Remove(string) error { return unsupported() }

// Rename implements vfs.FS.
func (f *FS) Rename(string, string) error { return unsupported() }

// SyncDir implements vfs.FS.
func (f *FS) SyncDir() error { return unsupported() }

// List implements vfs.FS.
func (f *FS) List() ([]fs.DirEntry, error) { return nil, unsupported() }

// ReadFile implements vfs.FS.
func (f *FS) ReadFile(string) ([]byte, error) { return nil, unsupported() }

// WriteFile implements vfs.FS.
func (f *FS) WriteFile(string, []byte) error { return unsupported() }

// Lock implements vfs.FS.
func (f *FS) Lock() (io.Closer, error) { return nil, unsupported() }

// Close implements vfs.FS.
func (f *FS) Close() error { return nil }
