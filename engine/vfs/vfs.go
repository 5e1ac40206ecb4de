// Package vfs is the one interface between the dwal engine and its storage
// backends: the files of one directory.
//
// It imports nothing else of dwal. The engine imports it and picks a backend;
// the backends (uring, fallback) and the test backends (memfs, errorfs) import
// it and never the engine, so each can be tested alone and there is no import
// cycle. The real backends share their operating-system layer, package
// osdir, and never import each other.
//
// Layers: bytes (this package) → format (engine segment files) → log
// (engine.Coordinator).
package vfs

import (
	"errors"
	"io"
	"io/fs"
)

// Sentinel errors a backend returns (wrapped, so errors.Is works). The engine
// re-exports ErrLocked; it maps ErrNoSpace (and syscall.ENOSPC) to its own.
var (
	// ErrLocked: Lock found the directory locked by another opener.
	ErrLocked = errors.New("dwal: directory is locked by another process")
	// ErrNoSpace: the file system has no room for the requested allocation.
	ErrNoSpace = errors.New("dwal: no space left on device")
	// ErrShortWrite: the device accepted fewer bytes than asked. The linked
	// sync, if any, was not run.
	ErrShortWrite = errors.New("dwal: short write")
	// ErrUnsupported: the backend cannot run here (wrapped with the reason).
	ErrUnsupported = errors.New("dwal: backend not supported")
)

// SyncMode says what WriteAt must make durable before it returns.
type SyncMode uint8

const (
	// NoSync: the write is submitted and completed; nothing is made durable
	// (for O_DIRECT it may sit in the device cache, for buffered I/O in the
	// page cache).
	NoSync SyncMode = iota
	// Fdatasync: the write is followed by an fdatasync of the file; on io_uring
	// the two are one submission (WRITE linked to FDATASYNC with
	// IOSQE_IO_LINK), so a failed or short write cancels the sync.
	Fdatasync
	// DSync: the write itself carries RWF_DSYNC (FUA where the device has
	// it); backends without it emulate it as Fdatasync.
	DSync
)

func (m SyncMode) String() string {
	switch m {
	case NoSync:
		return "none"
	case Fdatasync:
		return "fdatasync"
	case DSync:
		return "dsync"
	}
	return "unknown"
}

// FS is a directory of files. All names are base names inside that directory
// (no separators). Methods are safe for concurrent use unless a method says
// otherwise.
type FS interface {
	// Name names the backend ("io_uring", "fallback", "memfs", ...).
	Name() string

	// Alignment is the byte alignment every WriteAt and ReadAt buffer
	// address, length and offset must have (a power of two >= 512). It never
	// changes for the life of the FS.
	Alignment() int

	// Create makes a new file (an existing name gives an error wrapping
	// fs.ErrExist) and preallocates size bytes
	// (fallocate: the file's size is size, its blocks reserved, reads return
	// zeros). A failed allocation removes the file and returns an error
	// wrapping ErrNoSpace when the cause is ENOSPC. The new directory entry is
	// durable only after SyncDir; the allocation only after File.Sync.
	Create(name string, size int64) (File, error)

	// Open opens an existing file for reading and writing (or reading only
	// with readOnly). A missing file gives an error wrapping fs.ErrNotExist.
	Open(name string, readOnly bool) (File, error)

	// Remove deletes a file; durable after SyncDir. A missing file gives an
	// error wrapping fs.ErrNotExist.
	Remove(name string) error

	// Rename atomically replaces newname with oldname; durable after SyncDir.
	Rename(oldname, newname string) error

	// SyncDir makes every create, rename and remove done before it durable.
	SyncDir() error

	// List returns the directory's entries, in no particular order. It may
	// hold unrelated names, subdirectories and the LOCK file.
	List() ([]fs.DirEntry, error)

	// ReadFile reads a small file whole (no alignment needed).
	ReadFile(name string) ([]byte, error)

	// WriteFile creates or truncates name, writes data (no alignment needed)
	// and syncs the file before returning. It is not atomic: callers write a
	// temporary name, then Rename and SyncDir.
	WriteFile(name string, data []byte) error

	// Lock takes the directory's exclusive lock (a LOCK file, flock on Unix).
	// It fails at once, wrapping ErrLocked, when another holder has it, in
	// this process or another; the lock is released by closing the returned
	// Closer (or by process exit).
	Lock() (io.Closer, error)

	// Close releases the backend's own resources (a ring, say). Files it
	// opened must be closed first; the FS is not used after Close.
	Close() error
}

// File is one open file of an FS.
//
// Concurrency: WriteAt and ReadAt may be called from many goroutines at once
// on disjoint ranges; the backend bounds what is in flight and blocks callers
// beyond that bound. Sync, Truncate and Close must not run concurrently with
// a WriteAt or ReadAt on the same file.
//
// Errors: every method of a closed file returns an error; WriteAt and
// Truncate on a read-only handle return an error; a bad name, a negative
// size or an unknown SyncMode gives an error wrapping fs.ErrInvalid; ENOSPC
// is wrapped with ErrNoSpace.
//
// Buffers: p is only read (WriteAt) or written (ReadAt) until the call
// returns; the backend keeps it alive until the kernel is done with it, and
// the caller may reuse it after the call.
type File interface {
	// WriteAt writes all of p at off. p's address, len(p) and off must be
	// multiples of the FS alignment and len(p) > 0 (align.Check); otherwise
	// it returns an error and writes nothing. With mode Fdatasync or DSync
	// it returns nil only when p and the metadata needed to read it back (file
	// size, extent state) are durable. A short write returns an error wrapping
	// ErrShortWrite. Errors from the sync are final: a failed fdatasync is
	// never retried (after a writeback error the kernel may have marked pages
	// clean, so a second fsync could succeed falsely).
	WriteAt(p []byte, off int64, mode SyncMode) error

	// ReadAt reads len(p) bytes at off, with the alignment rules of WriteAt.
	// It returns the bytes read; fewer than len(p) only at the end of the
	// file, with io.EOF itself (not wrapped).
	ReadAt(p []byte, off int64) (int, error)

	// Sync makes all completed writes and the file's size durable
	// (fdatasync; F_FULLFSYNC on darwin). Never retried after an error.
	Sync() error

	// Truncate sets the file's size (growing does not reserve blocks).
	// Durable after Sync.
	Truncate(size int64) error

	// Size returns the file's current size in bytes.
	Size() (int64, error)

	// Close closes the file after every operation in flight on it completes.
	Close() error
}

// Options are what every real backend's constructor takes.
type Options struct {
	// FilePerm is the mode of files the backend creates (0600 when zero).
	FilePerm fs.FileMode
	// DirPerm is the mode of the directory when the backend creates it (0700
	// when zero).
	DirPerm fs.FileMode
	// Alignment, when > 0, is the I/O alignment to use instead of
	// discovering it (which creates and removes a probe file): for readers
	// that must change nothing in the directory. A power of two of at least
	// 4096. Backends that need the device's real alignment (O_DIRECT)
	// ignore it.
	Alignment int
}

// WithDefaults fills zero fields.
func (o Options) WithDefaults() Options {
	if o.FilePerm == 0 {
		o.FilePerm = 0o600
	}
	if o.DirPerm == 0 {
		o.DirPerm = 0o700
	}
	return o
}

// DirectIO is implemented by backends that can say whether their writes
// bypass the page cache. DirectIO reports true when they do (O_DIRECT): then
// nothing between the backend and the device can silently drop a failed
// write's state, so after a failed sync the engine may cut the segment back,
// sync the cut and go on. A backend that does not implement DirectIO, or
// whose DirectIO reports false, is treated as buffered — the safe answer:
// after a writeback error the page cache may have dropped the dirty pages or
// kept them marked clean, a rollback cannot be trusted, and the engine turns
// the log read-only instead. Wrappers (errorfs) expose the backend they wrap
// with an Unwrap() FS method instead of implementing it.
type DirectIO interface {
	DirectIO() bool
}

// BlockIniter is implemented by backends whose newly allocated blocks cost
// more to sync than blocks written once (real files under O_DIRECT: the
// first fdatasync into an unwritten extent must also commit its
// conversion). The engine writes the blocks of segments it prepares in the
// background once when InitBlocks reports true. Wrappers (errorfs) expose
// the backend they wrap with an Unwrap() FS method instead.
type BlockIniter interface {
	InitBlocks() bool
}

// WrittenPrefixer is implemented by backends that can read, from the file
// system's own extent map, how many bytes of a file from its start have
// been written (no hole, no fallocated-but-unwritten extent), and the
// file's size. The engine
// asks it before recycling a segment that an earlier process wrote, so the
// file's initialised part is reused after a restart too. Only speed
// depends on the answer (a recycled file's stale bytes never replay, and
// a commit into blocks wrongly taken as written only pays the conversion
// it would have paid anyway), so an error just means the file is not
// reused. Wrappers (errorfs) expose the backend they wrap with an Unwrap()
// FS method instead.
type WrittenPrefixer interface {
	WrittenPrefix(name string) (written, size int64, err error)
}

// CachedReader is implemented by backends that write with direct I/O but
// can also open a file for reading through the page cache. The engine
// reads sealed segments, which never change, through such a handle: a
// random read the page cache holds costs a copy instead of a device read.
// The file OpenCached returns is read-only (WriteAt and Truncate fail, as
// on any read-only handle) and keeps the FS's alignment rules. The page
// cache stays coherent with the backend's direct writes: the kernel
// invalidates the cached pages a direct write covers, so a file written
// again after its pages were cached (a reused segment file) reads back
// what was written since. A missing file gives an error wrapping
// fs.ErrNotExist. Wrappers (errorfs) implement it themselves, so that
// their faults reach its reads.
type CachedReader interface {
	OpenCached(name string) (File, error)
}
