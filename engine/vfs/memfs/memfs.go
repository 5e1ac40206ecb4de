// Package memfs is a crashable in-memory vfs.FS for tests. It models a
// volatile write cache: what was written but not synced may or may not be on
// the medium after a crash, and a write may be torn at sector granularity.
// There is no page cache in front of that cache, so the FS declares direct
// I/O (vfs.DirectIO), as the io_uring backend does.
//
// State kept per file (an inode, independent of its names):
//   - the current bytes and size, which reads see;
//   - the durable bytes and size, as of the last Sync;
//   - the writes and truncates since that Sync, in order (the pending ops).
//
// State kept for the directory (one directory per FS):
//   - the current names (name → inode), which Open, List and friends see;
//   - the durable names, as of the last SyncDir;
//   - the creates, removes and renames since that SyncDir, in order.
//
// File.Sync, and WriteAt with vfs.Fdatasync or vfs.DSync, make the file's
// bytes and size durable (the whole file, as fdatasync does). SyncDir makes
// the current names durable. Nothing else is durable.
//
// CrashClone returns a new, independent FS holding what a power cut could
// leave: the durable state, then a seeded random prefix of the directory ops,
// then for each surviving file a random subset of its pending writes (some
// whole, some torn to a sector prefix or a scattered set of sectors, some
// lost) and pending truncates, and either its durable or its current size.
// See CrashClone for the exact model and what it leaves out.
//
// Every WriteAt and ReadAt goes through align.Check with the FS alignment.
// An optional capacity (SetCapacity, WithCapacity) makes Create, WriteAt,
// Truncate and WriteFile fail with errors wrapping vfs.ErrNoSpace.
//
// Concurrency: every method of FS and File is safe for concurrent use (one
// mutex per FS serialises them; this is a test double, not a fast path).
package memfs

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// DefaultSectorSize is the unit a torn write is cut at: a device writes a
// 512-byte sector whole or not at all (the usual atomicity assumption; 4Kn
// devices give 4096, see WithSectorSize).
const DefaultSectorSize = 512

// MaxFileSize bounds a file's size (every byte lives in memory, twice once
// synced): Create, WriteAt and Truncate past it fail wrapping syscall.EFBIG.
const MaxFileSize = 1 << 32

// lockName is the file Lock creates, as the real backends do.
const lockName = "LOCK"

// FS is a crashable in-memory directory. Make one with New.
type FS struct {
	align  int // I/O alignment, a power of two >= 512
	sector int // tearing unit, a power of two <= align

	mu       sync.Mutex
	capacity int64             // bytes of file sizes allowed; 0 = no limit
	nextID   uint64            // inode numbers, for Dump
	names    map[string]*inode // current directory entries
	durable  map[string]*inode // directory entries as of the last SyncDir
	dirLog   []dirOp           // entry changes since the last SyncDir, in order
	locked   bool              // Lock is held
	open     map[*File]struct{}
	report   string // what CrashClone did, on a clone

	extents bool        // WithExtents: model unwritten extents, report cold writes
	cold    []ColdWrite // synced writes of data into unwritten blocks
}

var (
	_ vfs.FS          = (*FS)(nil)
	_ vfs.File        = (*File)(nil)
	_ vfs.DirectIO    = (*FS)(nil)
	_ vfs.BlockIniter = (*FS)(nil)

	_ vfs.WrittenPrefixer = (*FS)(nil)
)

// inode is one file, whatever names it has.
type inode struct {
	id      uint64
	data    []byte   // current contents; len is the current size
	synced  []byte   // durable contents; len is the durable size
	pending []fileOp // writes and truncates since the last sync, in order
	// unwritten marks the blocks (of the FS alignment) allocated but never
	// written, with WithExtents: Create's preallocation, a Truncate's growth.
	unwritten []bool
}

// fileOp is a write (data != nil) or a truncate (trunc) not yet synced.
type fileOp struct {
	off   int64  // write offset, or the new size of a truncate
	data  []byte // a private copy of the written bytes
	trunc bool
}

type dirOpKind uint8

const (
	dirCreate dirOpKind = iota
	dirRemove
	dirRename
)

// dirOp is a directory entry change not yet made durable by SyncDir.
type dirOp struct {
	kind dirOpKind
	name string // created, removed or renamed-from name
	to   string // renamed-to name
	ino  *inode // created inode
}

// Option configures New.
type Option func(*FS)

// WithSectorSize sets the tearing unit (a power of two from 512 up to the
// alignment). The default is DefaultSectorSize.
func WithSectorSize(n int) Option { return func(f *FS) { f.sector = n } }

// WithCapacity sets the capacity in bytes (see SetCapacity).
func WithCapacity(n int64) Option { return func(f *FS) { f.capacity = n } }

// WithExtents models what makes a real file's first writes slow: blocks
// that Create preallocates (or a Truncate adds) are unwritten until a write
// covers them, and a synced write of data (not all zeros: zeros are
// initialisation) into an unwritten block is recorded as a ColdWrite (on a
// real file system its fdatasync also commits the extent conversion). The
// FS then asks for initialised blocks (vfs.BlockIniter). CrashClone's
// clones start with every block written.
func WithExtents() Option { return func(f *FS) { f.extents = true } }

// WrittenPrefix implements vfs.WrittenPrefixer: the bytes of name before
// its first unwritten block (all of them without WithExtents), and its size.
func (f *FS) WrittenPrefix(name string) (written, size int64, err error) {
	if err := checkName("fiemap", name); err != nil {
		return 0, 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, ok := f.names[name]
	if !ok {
		return 0, 0, notExist("fiemap", name)
	}
	size = int64(len(ino.data))
	if i := slices.Index(ino.unwritten, true); i >= 0 {
		return min(int64(i)*int64(f.align), size), size, nil
	}
	return size, size, nil
}

// ColdWrite is a synced write of data into blocks that were never written.
type ColdWrite struct {
	Names []string // the file's names when it was written, sorted
	Off   int64
	Len   int
}

// InitBlocks implements vfs.BlockIniter: true with WithExtents.
func (f *FS) InitBlocks() bool { return f.extents }

// ColdWrites returns the cold writes so far (see WithExtents), in order.
func (f *FS) ColdWrites() []ColdWrite {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cold)
}

// New returns an empty FS with the given I/O alignment (a power of two >=
// 512, say 4096). It panics on a bad alignment or sector size: those are
// programming errors of the test.
func New(alignment int, opts ...Option) *FS {
	f := &FS{
		align:   alignment,
		sector:  DefaultSectorSize,
		names:   map[string]*inode{},
		durable: map[string]*inode{},
		open:    map[*File]struct{}{},
	}
	for _, o := range opts {
		o(f)
	}
	if alignment < 512 || alignment&(alignment-1) != 0 {
		panic(fmt.Sprintf("memfs: alignment %d is not a power of two >= 512", alignment))
	}
	if f.sector < 512 || f.sector&(f.sector-1) != 0 || f.sector > alignment {
		panic(fmt.Sprintf("memfs: sector size %d is not a power of two in [512, %d]", f.sector, alignment))
	}
	if f.capacity < 0 {
		panic(fmt.Sprintf("memfs: negative capacity %d", f.capacity))
	}
	return f
}

// SetCapacity limits the sum of the sizes of all files (named, or open after
// a Remove) to n bytes; 0 removes the limit. An operation that would pass it
// fails with an error wrapping vfs.ErrNoSpace and syscall.ENOSPC and changes
// nothing. Lowering the limit below what is used only stops further growth.
//
// NB: it counts apparent sizes, as if every file were fully allocated: a
// sparse Truncate costs its whole size here, unlike on a real file system.
func (f *FS) SetCapacity(n int64) {
	if n < 0 {
		panic(fmt.Sprintf("memfs: negative capacity %d", n))
	}
	f.mu.Lock()
	f.capacity = n
	f.mu.Unlock()
}

// Used returns the bytes counted against the capacity.
func (f *FS) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usedLocked()
}

func (f *FS) usedLocked() int64 {
	seen := map[*inode]bool{}
	var n int64
	add := func(ino *inode) {
		if !seen[ino] {
			seen[ino] = true
			n += int64(len(ino.data))
		}
	}
	for _, ino := range f.names {
		add(ino)
	}
	for h := range f.open {
		add(h.ino)
	}
	return n
}

// reserveLocked fails with ErrNoSpace when growing the used bytes by grow
// would pass the capacity.
func (f *FS) reserveLocked(op, name string, grow int64) error {
	if f.capacity == 0 || grow <= 0 {
		return nil
	}
	if used := f.usedLocked(); used+grow > f.capacity {
		return fmt.Errorf("memfs: %s %q: %w: %d bytes used, %d more asked, capacity %d: %w",
			op, name, vfs.ErrNoSpace, used, grow, f.capacity, syscall.ENOSPC)
	}
	return nil
}

// Name implements vfs.FS.
func (f *FS) Name() string { return "memfs" }

// Alignment implements vfs.FS.
func (f *FS) Alignment() int { return f.align }

// DirectIO implements vfs.DirectIO: true. memfs models a device with a
// volatile write cache and no page cache in front of it (as O_DIRECT
// files on a real disk): a write is in that cache once WriteAt returns, a
// sync never loses or hides it, and a truncate and sync after a failed sync
// (injected with errorfs) leave exactly the bytes they say. So the engine's
// rollback after a failed sync can be trusted here, as with io_uring.
func (f *FS) DirectIO() bool { return true }

// SectorSize is the unit torn writes are cut at.
func (f *FS) SectorSize() int { return f.sector }

func checkName(op, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("memfs: %s: bad file name %q: %w", op, name, fs.ErrInvalid)
	}
	return nil
}

func checkSize(op, name string, n int64) error {
	if n > MaxFileSize {
		return fmt.Errorf("memfs: %s %q: size %d passes MaxFileSize %d: %w", op, name, n, int64(MaxFileSize), syscall.EFBIG)
	}
	return nil
}

func notExist(op, name string) error {
	return fmt.Errorf("memfs: %s %q: %w", op, name, fs.ErrNotExist)
}

// Create implements vfs.FS. The new file holds size zero bytes. Its name is
// durable after SyncDir, its size after File.Sync.
func (f *FS) Create(name string, size int64) (vfs.File, error) {
	if err := checkName("create", name); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("memfs: create %q: negative size %d: %w", name, size, fs.ErrInvalid)
	}
	if err := checkSize("create", name, size); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.names[name]; ok {
		return nil, fmt.Errorf("memfs: create %q: %w", name, fs.ErrExist)
	}
	if err := f.reserveLocked("create", name, size); err != nil {
		return nil, err
	}
	ino := f.newInodeLocked()
	ino.data = make([]byte, size)
	f.markUnwrittenLocked(ino, 0, size)
	if size > 0 {
		ino.pending = append(ino.pending, fileOp{off: size, trunc: true})
	}
	f.names[name] = ino
	f.dirLog = append(f.dirLog, dirOp{kind: dirCreate, name: name, ino: ino})
	return f.openLocked(name, ino, false), nil
}

func (f *FS) newInodeLocked() *inode {
	f.nextID++
	return &inode{id: f.nextID}
}

func (f *FS) openLocked(name string, ino *inode, readOnly bool) *File {
	h := &File{fs: f, ino: ino, name: name, readOnly: readOnly}
	f.open[h] = struct{}{}
	return h
}

// Open implements vfs.FS.
func (f *FS) Open(name string, readOnly bool) (vfs.File, error) {
	if err := checkName("open", name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, ok := f.names[name]
	if !ok {
		return nil, notExist("open", name)
	}
	return f.openLocked(name, ino, readOnly), nil
}

// Remove implements vfs.FS. Open files of the removed name stay usable, as
// on POSIX.
func (f *FS) Remove(name string) error {
	if err := checkName("remove", name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.names[name]; !ok {
		return notExist("remove", name)
	}
	delete(f.names, name)
	f.dirLog = append(f.dirLog, dirOp{kind: dirRemove, name: name})
	return nil
}

// Rename implements vfs.FS. Renaming a name to itself does nothing.
func (f *FS) Rename(oldname, newname string) error {
	if err := checkName("rename", oldname); err != nil {
		return err
	}
	if err := checkName("rename", newname); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, ok := f.names[oldname]
	if !ok {
		return notExist("rename", oldname)
	}
	if oldname == newname {
		return nil
	}
	f.names[newname] = ino
	delete(f.names, oldname)
	f.dirLog = append(f.dirLog, dirOp{kind: dirRename, name: oldname, to: newname})
	return nil
}

// SyncDir implements vfs.FS: the current names become durable.
func (f *FS) SyncDir() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.durable = maps.Clone(f.names)
	f.dirLog = nil
	return nil
}

// List implements vfs.FS. Entries come sorted by name.
func (f *FS) List() ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fs.DirEntry, 0, len(f.names))
	for _, name := range slices.Sorted(maps.Keys(f.names)) {
		out = append(out, fileInfo{name: name, size: int64(len(f.names[name].data))})
	}
	return out, nil
}

// ReadFile implements vfs.FS.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if err := checkName("read file", name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, ok := f.names[name]
	if !ok {
		return nil, notExist("read file", name)
	}
	return slices.Clone(ino.data), nil
}

// WriteFile implements vfs.FS: the file's bytes and size are durable on
// return, a new name only after SyncDir. On ErrNoSpace nothing changes.
func (f *FS) WriteFile(name string, data []byte) error {
	if err := checkName("write file", name); err != nil {
		return err
	}
	if err := checkSize("write file", name, int64(len(data))); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, ok := f.names[name]
	grow := int64(len(data))
	if ok {
		grow -= int64(len(ino.data))
	}
	if err := f.reserveLocked("write file", name, grow); err != nil {
		return err
	}
	if !ok {
		ino = f.newInodeLocked()
		f.names[name] = ino
		f.dirLog = append(f.dirLog, dirOp{kind: dirCreate, name: name, ino: ino})
	}
	ino.truncate(0)
	if len(data) > 0 {
		ino.write(data, 0)
	}
	ino.sync()
	return nil
}

// Lock implements vfs.FS within the process: a second Lock fails with an
// error wrapping vfs.ErrLocked until the returned Closer is closed. Like the
// real backends it creates a LOCK file (durable after SyncDir). A crash
// clone starts unlocked: the holder died with the crash.
func (f *FS) Lock() (io.Closer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.locked {
		return nil, fmt.Errorf("memfs: lock: %w", vfs.ErrLocked)
	}
	if _, ok := f.names[lockName]; !ok {
		ino := f.newInodeLocked()
		f.names[lockName] = ino
		f.dirLog = append(f.dirLog, dirOp{kind: dirCreate, name: lockName, ino: ino})
	}
	f.locked = true
	return &lockHandle{fs: f}, nil
}

type lockHandle struct {
	fs     *FS
	closed bool // under fs.mu
}

func (l *lockHandle) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	if l.closed {
		return fmt.Errorf("memfs: unlock: %w", fs.ErrClosed)
	}
	l.closed = true
	l.fs.locked = false
	return nil
}

// Close implements vfs.FS. It releases nothing and the FS stays usable, so
// a test can reopen an engine on the same FS; OpenFiles reports files a
// caller forgot to close.
func (f *FS) Close() error { return nil }

// File is an open file of an FS.
type File struct {
	fs       *FS
	ino      *inode
	name     string // the name it was opened with, for OpenFiles
	readOnly bool
	closed   bool // under fs.mu
}

func (h *File) usableLocked(op string, write bool) error {
	if h.closed {
		return fmt.Errorf("memfs: %s %q: %w", op, h.name, fs.ErrClosed)
	}
	if write && h.readOnly {
		return fmt.Errorf("memfs: %s %q: opened read-only: %w", op, h.name, fs.ErrPermission)
	}
	return nil
}

// WriteAt implements vfs.File. The bytes are copied; p is not retained.
func (h *File) WriteAt(p []byte, off int64, mode vfs.SyncMode) error {
	if err := align.Check(p, off, h.fs.align); err != nil {
		return err
	}
	if mode > vfs.DSync {
		return fmt.Errorf("memfs: write %q: unknown sync mode %d: %w", h.name, mode, fs.ErrInvalid)
	}
	if err := checkSize("write", h.name, off+int64(len(p))); err != nil {
		return err
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usableLocked("write", true); err != nil {
		return err
	}
	if err := h.fs.reserveLocked("write", h.name, off+int64(len(p))-int64(len(h.ino.data))); err != nil {
		return err
	}
	h.fs.noteWriteLocked(h.ino, p, off, mode)
	h.ino.write(p, off)
	if mode != vfs.NoSync {
		h.ino.sync()
	}
	return nil
}

// markUnwrittenLocked marks the blocks of [from, to) unwritten (WithExtents).
func (f *FS) markUnwrittenLocked(ino *inode, from, to int64) {
	if !f.extents {
		return
	}
	n := int((to + int64(f.align) - 1) / int64(f.align))
	for len(ino.unwritten) < n {
		ino.unwritten = append(ino.unwritten, int64(len(ino.unwritten))*int64(f.align) >= from)
	}
	ino.unwritten = ino.unwritten[:n]
}

// noteWriteLocked records a cold write and marks the blocks written.
func (f *FS) noteWriteLocked(ino *inode, p []byte, off int64, mode vfs.SyncMode) {
	if !f.extents {
		return
	}
	first, last := int(off/int64(f.align)), int((off+int64(len(p))-1)/int64(f.align))
	cold := false
	for b := first; b <= last && b < len(ino.unwritten); b++ {
		cold = cold || ino.unwritten[b]
		ino.unwritten[b] = false
	}
	if cold && mode != vfs.NoSync && slices.ContainsFunc(p, func(c byte) bool { return c != 0 }) {
		var names []string
		for n, i := range f.names {
			if i == ino {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		f.cold = append(f.cold, ColdWrite{Names: names, Off: off, Len: len(p)})
	}
}

// ReadAt implements vfs.File.
func (h *File) ReadAt(p []byte, off int64) (int, error) {
	if err := align.Check(p, off, h.fs.align); err != nil {
		return 0, err
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usableLocked("read", false); err != nil {
		return 0, err
	}
	if off >= int64(len(h.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Sync implements vfs.File: the file's bytes and size become durable.
func (h *File) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usableLocked("sync", false); err != nil {
		return err
	}
	h.ino.sync()
	return nil
}

// Truncate implements vfs.File. Growing adds zeros.
func (h *File) Truncate(size int64) error {
	if size < 0 {
		return fmt.Errorf("memfs: truncate %q: negative size %d: %w", h.name, size, fs.ErrInvalid)
	}
	if err := checkSize("truncate", h.name, size); err != nil {
		return err
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usableLocked("truncate", true); err != nil {
		return err
	}
	if err := h.fs.reserveLocked("truncate", h.name, size-int64(len(h.ino.data))); err != nil {
		return err
	}
	old := int64(len(h.ino.data))
	h.ino.truncate(size)
	if size > old {
		h.fs.markUnwrittenLocked(h.ino, old, size)
	} else {
		h.fs.markUnwrittenLocked(h.ino, size, size)
	}
	return nil
}

// Size implements vfs.File.
func (h *File) Size() (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usableLocked("size", false); err != nil {
		return 0, err
	}
	return int64(len(h.ino.data)), nil
}

// Close implements vfs.File. A second Close fails wrapping fs.ErrClosed.
func (h *File) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.usableLocked("close", false); err != nil {
		return err
	}
	h.closed = true
	delete(h.fs.open, h)
	return nil
}

// write applies a write to the current bytes and logs it.
func (ino *inode) write(p []byte, off int64) {
	end := int(off) + len(p)
	if end > len(ino.data) {
		ino.data = resize(ino.data, end)
	}
	copy(ino.data[off:], p)
	ino.pending = append(ino.pending, fileOp{off: off, data: slices.Clone(p)})
}

// truncate sets the current size and logs it.
func (ino *inode) truncate(size int64) {
	ino.data = resize(ino.data, int(size))
	ino.pending = append(ino.pending, fileOp{off: size, trunc: true})
}

// sync makes the current bytes and size durable, applying the pending ops to
// the durable copy (cheaper than copying a large preallocated file).
func (ino *inode) sync() {
	for _, op := range ino.pending {
		ino.synced = op.apply(ino.synced)
	}
	ino.pending = nil
	ino.synced = resize(ino.synced, len(ino.data))
}

func (op fileOp) apply(b []byte) []byte {
	if op.trunc {
		return resize(b, int(op.off))
	}
	if end := int(op.off) + len(op.data); end > len(b) {
		b = resize(b, end)
	}
	copy(b[op.off:], op.data)
	return b
}

// resize returns b with length n; bytes added are zero.
//
// NB: a shrunk slice keeps its old bytes in its capacity; growing back must
// clear them, or a truncate-then-extend would resurrect stale data.
func resize(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n]
	}
	old := len(b)
	b = slices.Grow(b, n-old)[:n]
	clear(b[old:])
	return b
}

// fileInfo is a directory entry of List.
type fileInfo struct {
	name string
	size int64
}

func (e fileInfo) Name() string               { return e.name }
func (e fileInfo) IsDir() bool                { return false }
func (e fileInfo) Type() fs.FileMode          { return 0 }
func (e fileInfo) Info() (fs.FileInfo, error) { return e, nil }
func (e fileInfo) Size() int64                { return e.size }
func (e fileInfo) Mode() fs.FileMode          { return 0o600 }
func (e fileInfo) ModTime() time.Time         { return time.Time{} }
func (e fileInfo) Sys() any                   { return nil }

// Names returns the current names, sorted.
func (f *FS) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.names))
}

// DurableNames returns the names as of the last SyncDir, sorted.
func (f *FS) DurableNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.durable))
}

// OpenFiles returns the names (as opened) of files not yet closed, sorted;
// tests use it to find leaked handles.
func (f *FS) OpenFiles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for h := range f.open {
		out = append(out, h.name)
	}
	slices.Sort(out)
	return out
}

// Dump describes the state for a test failure message: one line per current
// or durable name with its inode, current and durable sizes and the number
// of pending ops, then the pending directory ops.
func (f *FS) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	all := maps.Clone(f.names)
	maps.Copy(all, f.durable)
	for _, name := range slices.Sorted(maps.Keys(all)) {
		cur, dur := f.names[name], f.durable[name]
		ino := cur
		if ino == nil {
			ino = dur
		}
		state := "durable"
		switch {
		case dur == nil:
			state = "not durable"
		case cur == nil:
			state = "removed, not durable"
		case cur != dur:
			state = fmt.Sprintf("replaced, durable is inode %d", dur.id)
		}
		fmt.Fprintf(&b, "%s: inode %d (%s) size %d durable %d pending %d\n",
			name, ino.id, state, len(ino.data), len(ino.synced), len(ino.pending))
	}
	for _, op := range f.dirLog {
		switch op.kind {
		case dirCreate:
			fmt.Fprintf(&b, "pending create %s (inode %d)\n", op.name, op.ino.id)
		case dirRemove:
			fmt.Fprintf(&b, "pending remove %s\n", op.name)
		case dirRename:
			fmt.Fprintf(&b, "pending rename %s -> %s\n", op.name, op.to)
		}
	}
	if f.locked {
		b.WriteString("locked\n")
	}
	return b.String()
}
