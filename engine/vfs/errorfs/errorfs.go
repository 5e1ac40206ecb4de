// Package errorfs wraps any vfs.FS and injects faults, Pebble-style: before
// each operation it builds an Op and asks an Injector; a non-nil error makes
// the operation fail as the error's Fault says.
//
// What a failure does, by kind:
//   - OpWrite: WriteFail writes nothing; WriteShort and WriteTorn write the
//     first Fault.Sectors sectors (see Fault), and the linked sync does not
//     run. The error says how many bytes landed.
//   - OpWriteSync (asked only for WriteAt with vfs.Fdatasync or
//     vfs.DSync, and only after OpWrite passed): the write lands in the
//     wrapped FS unsynced and the call fails with EIO, as a failed fdatasync
//     linked to a completed write does.
//   - OpClose, OpUnlock, OpFSClose: the wrapped operation runs (a failed
//     close(2) still releases the descriptor), then the error is returned.
//   - Every other kind: the operation does not run and the error is returned.
//
// Every injected error wraps ErrInjected and an errno (syscall.EIO by
// default; syscall.ENOSPC also wraps vfs.ErrNoSpace), or vfs.ErrShortWrite
// for a short write; see Error.
//
// Faults are counted by kind (Injected, Report) so a test can say what it
// exercised. WriteAt and ReadAt check alignment (align.Check) before asking
// the injector: a misaligned call is a bug, not a fault.
//
// Concurrency: as safe as the wrapped FS; the wrapper adds only atomics.
package errorfs

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// DefaultSectorSize is the unit short and torn writes are cut at.
const DefaultSectorSize = 512

// FS is a fault-injecting vfs.FS. Make one with New.
type FS struct {
	inner    vfs.FS
	sector   int
	inj      atomic.Pointer[holder]
	ops      atomic.Int64
	injected [numKinds]atomic.Int64
}

// holder boxes an Injector for atomic.Pointer (nil inj: no faults).
type holder struct{ inj Injector }

var (
	_ vfs.FS   = (*FS)(nil)
	_ vfs.File = (*File)(nil)
)

// Option configures New.
type Option func(*FS)

// WithSectorSize sets the unit short and torn writes are cut at (a power of
// two from 512 up to the wrapped FS's alignment). Cuts inside an aligned
// block are made by reading the block, patching it and writing it back.
func WithSectorSize(n int) Option { return func(f *FS) { f.sector = n } }

// New wraps inner; inj may be nil (no faults until SetInjector).
func New(inner vfs.FS, inj Injector, opts ...Option) *FS {
	f := &FS{inner: inner, sector: DefaultSectorSize}
	for _, o := range opts {
		o(f)
	}
	a := inner.Alignment()
	if f.sector < 512 || f.sector&(f.sector-1) != 0 || f.sector > a {
		f.sector = min(DefaultSectorSize, a)
	}
	f.SetInjector(inj)
	return f
}

// SetInjector replaces the injector (nil: no faults), e.g. to turn faults on
// after a test's setup. Ops already asking the old one may still fail.
func (f *FS) SetInjector(inj Injector) { f.inj.Store(&holder{inj: inj}) }

// Unwrap returns the wrapped FS. The engine looks for the wrapped backend's
// optional interfaces (vfs.DirectIO, vfs.BlockIniter) through it, so a
// wrapped backend keeps what it declares.
func (f *FS) Unwrap() vfs.FS { return f.inner }

// Ops returns how many ops the injector was asked about.
func (f *FS) Ops() int64 { return f.ops.Load() }

// Injected returns how many faults were injected on ops of kind k.
func (f *FS) Injected(k OpKind) int64 { return f.injected[k].Load() }

// InjectedTotal returns how many faults were injected.
func (f *FS) InjectedTotal() int64 {
	var n int64
	for i := range f.injected {
		n += f.injected[i].Load()
	}
	return n
}

// Report lists the ops asked and the faults injected by kind, for a test log.
func (f *FS) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops, %d faults", f.Ops(), f.InjectedTotal())
	for _, k := range Kinds() {
		if n := f.Injected(k); n > 0 {
			fmt.Fprintf(&b, ", %s %d", k, n)
		}
	}
	return b.String()
}

// maybe asks the injector about op and returns the *Error to fail with.
func (f *FS) maybe(op Op) *Error {
	f.ops.Add(1)
	h := f.inj.Load()
	if h == nil || h.inj == nil {
		return nil
	}
	err := h.inj.MaybeError(op)
	if err == nil {
		return nil
	}
	var e *Error
	if ie, ok := err.(*Error); ok {
		c := *ie // a copy: an injector may hand out one *Error many times
		e = &c
	} else {
		e = &Error{Cause: err}
	}
	e.Op = op // the FS's view of the op wins over what the injector set
	f.injected[op.Kind].Add(1)
	return e
}

// Name implements vfs.FS: the wrapped backend's name with a prefix.
func (f *FS) Name() string { return "errorfs(" + f.inner.Name() + ")" }

// Alignment implements vfs.FS.
func (f *FS) Alignment() int { return f.inner.Alignment() }

// Create implements vfs.FS.
func (f *FS) Create(name string, size int64) (vfs.File, error) {
	if e := f.maybe(Op{Kind: OpCreate, Name: name, Offset: size}); e != nil {
		return nil, e
	}
	inner, err := f.inner.Create(name, size)
	if err != nil {
		return nil, err
	}
	return &File{fs: f, inner: inner, name: name}, nil
}

// Open implements vfs.FS.
func (f *FS) Open(name string, readOnly bool) (vfs.File, error) {
	if e := f.maybe(Op{Kind: OpOpen, Name: name}); e != nil {
		return nil, e
	}
	inner, err := f.inner.Open(name, readOnly)
	if err != nil {
		return nil, err
	}
	return &File{fs: f, inner: inner, name: name}, nil
}

// OpenCached implements vfs.CachedReader, injected as an OpOpen: the wrapped
// backend's OpenCached, or its read-only Open where it has none. Its reads
// are injected like any File's.
func (f *FS) OpenCached(name string) (vfs.File, error) {
	if e := f.maybe(Op{Kind: OpOpen, Name: name}); e != nil {
		return nil, e
	}
	var inner vfs.File
	var err error
	if c, ok := f.inner.(vfs.CachedReader); ok {
		inner, err = c.OpenCached(name)
	} else {
		inner, err = f.inner.Open(name, true)
	}
	if err != nil {
		return nil, err
	}
	return &File{fs: f, inner: inner, name: name}, nil
}

// Remove implements vfs.FS.
func (f *FS) Remove(name string) error {
	if e := f.maybe(Op{Kind: OpRemove, Name: name}); e != nil {
		return e
	}
	return f.inner.Remove(name)
}

// Rename implements vfs.FS.
func (f *FS) Rename(oldname, newname string) error {
	if e := f.maybe(Op{Kind: OpRename, Name: oldname, NewName: newname}); e != nil {
		return e
	}
	return f.inner.Rename(oldname, newname)
}

// SyncDir implements vfs.FS.
func (f *FS) SyncDir() error {
	if e := f.maybe(Op{Kind: OpSyncDir}); e != nil {
		return e
	}
	return f.inner.SyncDir()
}

// List implements vfs.FS.
func (f *FS) List() ([]fs.DirEntry, error) {
	if e := f.maybe(Op{Kind: OpList}); e != nil {
		return nil, e
	}
	return f.inner.List()
}

// ReadFile implements vfs.FS.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if e := f.maybe(Op{Kind: OpReadFile, Name: name}); e != nil {
		return nil, e
	}
	return f.inner.ReadFile(name)
}

// WriteFile implements vfs.FS. An injected failure writes nothing.
func (f *FS) WriteFile(name string, data []byte) error {
	if e := f.maybe(Op{Kind: OpWriteFile, Name: name, Len: len(data)}); e != nil {
		return e
	}
	return f.inner.WriteFile(name, data)
}

// Lock implements vfs.FS.
func (f *FS) Lock() (io.Closer, error) {
	if e := f.maybe(Op{Kind: OpLock, Name: "LOCK"}); e != nil {
		return nil, e
	}
	l, err := f.inner.Lock()
	if err != nil {
		return nil, err
	}
	return &lock{fs: f, inner: l}, nil
}

type lock struct {
	fs    *FS
	inner io.Closer
}

// Close releases the wrapped lock, then reports an injected OpUnlock fault.
func (l *lock) Close() error {
	err := l.inner.Close()
	if e := l.fs.maybe(Op{Kind: OpUnlock, Name: "LOCK"}); e != nil {
		return e
	}
	return err
}

// Close implements vfs.FS: the wrapped FS is closed, then an injected
// OpFSClose fault is reported.
func (f *FS) Close() error {
	err := f.inner.Close()
	if e := f.maybe(Op{Kind: OpFSClose}); e != nil {
		return e
	}
	return err
}

// File is a fault-injecting vfs.File.
type File struct {
	fs    *FS
	inner vfs.File
	name  string
}

// WriteAt implements vfs.File; see the package doc for what faults do.
func (h *File) WriteAt(p []byte, off int64, mode vfs.SyncMode) error {
	if err := align.Check(p, off, h.fs.inner.Alignment()); err != nil {
		return err
	}
	op := Op{Kind: OpWrite, Name: h.name, Offset: off, Len: len(p), Mode: mode}
	if e := h.fs.maybe(op); e != nil {
		if e.Fault.Write == WriteFail {
			return e
		}
		n := len(p) / h.fs.sector
		k := e.Fault.Sectors
		if k <= 0 {
			k = n / 2
		}
		k = min(k, n-1)
		if err := h.writePrefix(p[:k*h.fs.sector], off); err != nil {
			return fmt.Errorf("%w (landing the first %d sectors: %w)", e, k, err)
		}
		e.Landed = k * h.fs.sector
		return e
	}
	if mode != vfs.NoSync {
		op.Kind = OpWriteSync
		if e := h.fs.maybe(op); e != nil {
			if err := h.inner.WriteAt(p, off, vfs.NoSync); err != nil {
				return err // the write failed by itself: the sync was never reached
			}
			return e
		}
	}
	return h.inner.WriteAt(p, off, mode)
}

// writePrefix writes b (a multiple of the sector size, maybe not of the
// alignment) at off without syncing: whole aligned blocks directly, the tail
// by read-modify-write of its block.
func (h *File) writePrefix(b []byte, off int64) error {
	a := h.fs.inner.Alignment()
	whole := len(b) / a * a
	if whole > 0 {
		if err := h.inner.WriteAt(b[:whole], off, vfs.NoSync); err != nil {
			return err
		}
	}
	tail := b[whole:]
	if len(tail) == 0 {
		return nil
	}
	blk := align.Alloc(a, a)
	if _, err := h.inner.ReadAt(blk, off+int64(whole)); err != nil && err != io.EOF {
		return err
	}
	copy(blk, tail)
	return h.inner.WriteAt(blk, off+int64(whole), vfs.NoSync)
}

// ReadAt implements vfs.File.
func (h *File) ReadAt(p []byte, off int64) (int, error) {
	if err := align.Check(p, off, h.fs.inner.Alignment()); err != nil {
		return 0, err
	}
	if e := h.fs.maybe(Op{Kind: OpRead, Name: h.name, Offset: off, Len: len(p)}); e != nil {
		return 0, e
	}
	return h.inner.ReadAt(p, off)
}

// Sync implements vfs.File. An injected failure leaves the data unsynced.
func (h *File) Sync() error {
	if e := h.fs.maybe(Op{Kind: OpSync, Name: h.name}); e != nil {
		return e
	}
	return h.inner.Sync()
}

// Truncate implements vfs.File.
func (h *File) Truncate(size int64) error {
	if e := h.fs.maybe(Op{Kind: OpTruncate, Name: h.name, Offset: size}); e != nil {
		return e
	}
	return h.inner.Truncate(size)
}

// Size implements vfs.File.
func (h *File) Size() (int64, error) {
	if e := h.fs.maybe(Op{Kind: OpSize, Name: h.name}); e != nil {
		return 0, e
	}
	return h.inner.Size()
}

// Close implements vfs.File: the wrapped file is closed, then an injected
// OpClose fault is reported.
func (h *File) Close() error {
	err := h.inner.Close()
	if e := h.fs.maybe(Op{Kind: OpClose, Name: h.name}); e != nil {
		return e
	}
	return err
}
