package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Coordinator is a write-ahead log in one directory: the Card 1 flush
// coordinator API plus group commit (Append). Its methods are safe for
// concurrent use; Flush calls are serialised.
type Coordinator struct {
	cfg   Config
	fs    vfs.FS
	ownFS bool // the Coordinator opened fs and closes it
	info  BackendInfo
	lock  io.Closer
	log   *slog.Logger
	align int
	pool  *align.Pool
	rep   RecoveryReport

	// mu guards the write state: the active segment, the batches in flight,
	// rotation, truncation and Close. It is not held during I/O.
	mu       sync.Mutex
	cond     *sync.Cond // on mu: a batch's I/O finished or a batch settled
	act      *active    // the segment being written; nil between rotation and the next flush
	closed   bool
	roErr    error         // sticky ErrReadOnly, set once
	syncNext bool          // the next batch must be synced (first write on a fresh segment after a failure)
	dirDirty bool          // directory changes not yet synced (see syncDir)
	retired  []retiredFile // recycle-N.tmp files waiting for that sync before reuse
	leftover retiredFile   // a segment file an earlier process left, kept by recovery for reuse
	// warm holds, for the sealed segments this process knows about, how
	// many bytes from the start are initialised (written at least once):
	// only those are recycled, and a recycled file is taken as initialised
	// that far.
	warm       map[uint64]int64
	head, tail *flight // batches reserved and not yet settled, in reservation order
	ioPending  int     // batches whose I/O has not finished
	unsyncedIO int     // of them, the unsynced ones
	failErr    error   // set while a failed batch and those after it settle

	curID    atomic.Uint64
	curSize  atomic.Uint64
	entries  atomic.Uint64
	bytes    atomic.Uint64
	diskByte atomic.Uint64
	flushes  atomic.Uint64

	group *groupCommit
	prep  *preparer
	stats stats

	stateMu sync.Mutex  // orders the log-state record's writers (state.go); before mu
	idx     lsnIndex    // reading by LSN (index.go)
	rd      readers     // read-only handles for it
	cache   *batchCache // recent batches (cache.go); nil: Config.ReadCacheBytes is 0
}

// active is the segment being written.
type active struct {
	id        uint64
	f         vfs.File
	salt      uint64
	size      int64 // preallocated file size
	off       int64 // where the next batch goes (reserved, maybe not yet written)
	seq       uint64
	full      bool  // a reserved batch takes it to SegmentSize: no more batches go here
	settled   int64 // end of the last batch that settled successfully: what Replay reads
	unsynced  bool  // an unsynced batch settled here: sync before sealing or closing
	encrypter SegmentCipher
	meta      segment.Meta
	init      *frontier // initialises blocks ahead of off (nil: none needed)
}

// stopInit stops a's initialiser, if any, and waits for its write in
// flight: before a's file is synced, truncated or closed.
func (a *active) stopInit() {
	if a.init != nil {
		a.init.halt()
	}
}

// BackendInfo says which backend runs and why.
type BackendInfo struct {
	Name   string // "io_uring" or "fallback" (or a Config.FS's name)
	Reason string
}

// FlushStats describes one Flush.
type FlushStats struct {
	EntriesFlushed int
	BytesWritten   int // entry payload bytes as given
	DiskBytes      int // bytes written to the segment: headers and padding included
	FlushDuration  time.Duration
	SegmentRotated bool
}

// SegmentInfo names a sealed segment and its metadata.
type SegmentInfo struct {
	ID   uint64
	Meta SegmentMetadata
}

// Open takes the directory's lock, recovers what a previous process left
// and returns a Coordinator ready to write. A second Open of the same
// directory (in this or another process) fails with ErrLocked.
func Open(cfg Config) (*Coordinator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fsys, info, own, err := openBackend(cfg)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, fs: fsys, ownFS: own, info: info, log: cfg.Logger, align: fsys.Alignment()}
	c.cond = sync.NewCond(&c.mu)
	c.pool = align.NewPool(c.align)
	c.cache = newBatchCache(cfg.ReadCacheBytes)
	lock, err := fsys.Lock()
	if err != nil {
		c.closeFS()
		return nil, fmt.Errorf("dwal: open %s: %w", cfg.Dir, err)
	}
	c.lock = lock
	if err := c.recover(); err != nil {
		lock.Close()
		c.closeFS()
		return nil, fmt.Errorf("dwal: open %s: %w", cfg.Dir, err)
	}
	c.log.Info("dwal: opened", "dir", cfg.Dir, "backend", info.Name, "reason", info.Reason,
		"segments", c.rep.Segments, "repairs", len(c.rep.Repairs))
	c.group = newGroupCommit(c)
	c.prep = newPreparer(c)
	if c.leftover.name != "" {
		c.prep.keep(c.leftover)
	}
	c.prepareFirst()
	return c, nil
}

func (c *Coordinator) closeFS() {
	if c.ownFS {
		c.fs.Close()
	}
}

// Backend says which backend runs and why.
func (c *Coordinator) Backend() BackendInfo { return c.info }

// Recovery reports what Open found and repaired.
func (c *Coordinator) Recovery() RecoveryReport { return c.rep }

// SegmentPath is the path of segment id's file.
func (c *Coordinator) SegmentPath(id uint64) string {
	return filepath.Join(c.cfg.Dir, segment.Name(id))
}

// TotalEntriesFlushed counts entries written successfully.
func (c *Coordinator) TotalEntriesFlushed() uint64 { return c.entries.Load() }

// TotalBytesWritten counts entry payload bytes written successfully.
func (c *Coordinator) TotalBytesWritten() uint64 { return c.bytes.Load() }

// TotalDiskBytesWritten counts segment bytes written: headers and padding included.
func (c *Coordinator) TotalDiskBytesWritten() uint64 { return c.diskByte.Load() }

// TotalFlushes counts successful batches.
func (c *Coordinator) TotalFlushes() uint64 { return c.flushes.Load() }

// CurrentSegmentID is the segment being written, or the last sealed one
// until the next flush starts a new one.
func (c *Coordinator) CurrentSegmentID() uint64 { return c.curID.Load() }

// CurrentSegmentSize is the bytes used in the current segment (its header
// block and its padded batches); 0 right after a rotation.
func (c *Coordinator) CurrentSegmentSize() uint64 { return c.curSize.Load() }

// Flush writes entries as one batch (in the order given; LSNs may be
// unordered) and, when sync and Config.SyncOnFlush, makes it durable before
// returning. Every entry's Completion is told the outcome. An empty flush is
// a no-op. An entry over Config.MaxEntrySize fails the whole batch with
// ErrEntryTooLarge before anything is written. After a failed write or sync
// no byte of the batch is ever replayed (see the package doc).
func (c *Coordinator) Flush(entries []*PendingEntry, sync bool) (FlushStats, error) {
	if len(entries) == 0 {
		return FlushStats{}, nil
	}
	start := time.Now()
	st, err := c.writeBatch(len(entries), func(i int) (LSN, []byte) {
		return entries[i].LSN, entries[i].Data
	}, sync)
	for _, e := range entries {
		e.complete(err)
	}
	st.FlushDuration = time.Since(start)
	return st, err
}

// pageCache reports whether f (or a backend it wraps, as errorfs does) may
// write through the page cache: true unless it declares direct I/O
// (vfs.DirectIO). An FS that does not say is treated as buffered.
func pageCache(f vfs.FS) bool {
	d, ok := findIface[vfs.DirectIO](f)
	return !ok || !d.DirectIO()
}

// initBlocks reports whether f (or a backend it wraps) wants the blocks of
// prepared segments written once (vfs.BlockIniter).
func initBlocks(f vfs.FS) bool {
	p, ok := findIface[vfs.BlockIniter](f)
	return ok && p.InitBlocks()
}

// findIface finds an optional interface on f or on the backends it wraps.
func findIface[T any](f vfs.FS) (T, bool) {
	for f != nil {
		if t, ok := f.(T); ok {
			return t, true
		}
		u, ok := f.(interface{ Unwrap() vfs.FS })
		if !ok {
			break
		}
		f = u.Unwrap()
	}
	var zero T
	return zero, false
}

// startSegment makes the next segment the active one: the one prepared in
// the background when it is ready, else one prepared here. Nothing is
// written to a .log on failure.
func (c *Coordinator) startSegment() error {
	id := c.curID.Load() + 1
	s := c.prep.take(id)
	if s == nil {
		var err error
		if s, err = c.makeSegment(id, initNone); err != nil {
			return err
		}
	}
	if err := c.fs.Rename(s.name, segment.Name(id)); err != nil {
		s.f.Close()
		c.fs.Remove(s.name)
		return fmt.Errorf("dwal: activate segment %d: %w", id, err)
	}
	c.dirDirty = true
	if err := c.syncDir(); err != nil {
		// The rename may or may not survive a crash; the file is a valid,
		// empty segment either way. Do not write to it: a batch acknowledged
		// in a file whose name is not durable could vanish.
		s.f.Close()
		return fmt.Errorf("dwal: activate segment %d: sync dir: %w", id, err)
	}
	hdrLen := int64(c.align)
	c.act = &active{id: id, f: s.f, salt: s.salt, size: s.size, off: hdrLen, settled: hdrLen, seq: 1, encrypter: s.encrypter}
	c.startFrontier(c.act, s.inited)
	c.curID.Store(id)
	c.curSize.Store(uint64(hdrLen))
	c.prep.request(id + 1)
	c.log.Debug("dwal: segment started", "segment", id, "size", s.size)
	return nil
}

// seal closes the active segment: syncs what is not yet durable, writes its
// .meta (or removes it when it holds nothing) and applies retention. Errors
// writing the .meta are logged, not returned: the batches are durable, and
// recovery rebuilds a missing .meta.
func (c *Coordinator) seal() {
	a := c.act
	c.act = nil
	c.curSize.Store(0)
	a.stopInit()
	if a.unsynced {
		if err := a.f.Sync(); err != nil {
			c.roErr = fmt.Errorf("%w: sync at seal of segment %d: %w; fate of its unsynced batches unknown",
				ErrReadOnly, a.id, err)
			c.log.Error("dwal: turned read-only", "err", c.roErr)
			a.f.Close()
			return
		}
	}
	a.f.Close()
	inited := a.size // no initialiser: initialised whole, or the backend needs none
	if a.init != nil {
		inited = min(a.init.end.Load(), a.size)
	}
	// A prefix shorter than a new segment's initialised head is not worth
	// keeping the file for.
	if inited >= min(c.aheadChunk(), a.size) {
		if c.warm == nil {
			c.warm = map[uint64]int64{}
		}
		c.warm[a.id] = inited
	}
	if a.meta.Entries == 0 {
		if err := c.fs.Remove(segment.Name(a.id)); err == nil {
			c.dirDirty = true
		}
		return
	}
	if err := c.writeMeta(a.id, a.meta); err != nil {
		c.log.Error("dwal: cannot write segment metadata; recovery will rebuild it", "segment", a.id, "err", err)
	}
	c.stats.rotations.Add(1)
	c.log.Debug("dwal: segment sealed", "segment", a.id, "entries", a.meta.Entries)
	c.retain()
}

// writeMeta writes id's .meta atomically: temp file, fsync, rename. The
// rename is made durable by the next syncDir (a .meta lost in a crash is
// rebuilt by recovery).
func (c *Coordinator) writeMeta(id uint64, m segment.Meta) error {
	b := m.Encode()
	tmp := segment.MetaName(id) + segment.TmpSuffix
	if err := c.fs.WriteFile(tmp, b[:]); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, segment.MetaName(id)); err != nil {
		return err
	}
	c.dirDirty = true
	return nil
}

// syncDir makes the directory changes made so far durable, then hands the
// retired files whose renames it covered to the preparer (or removes them
// when it failed). A rotation's changes (the sealed segment's .meta, the
// segments retention retires) share the sync that startSegment needs
// anyway before the next segment's first write: one directory sync per
// rotation, not three. None of them needs to be durable sooner: a lost
// .meta is rebuilt, a retired segment that comes back after a crash holds
// only older, valid batches, and a retired file is not reused before it.
func (c *Coordinator) syncDir() error {
	if !c.dirDirty {
		return nil
	}
	// NB: after a failed directory sync dirDirty stays set and the next
	// call syncs again. That is not a retried fsync vouching for lost data:
	// nothing acknowledged depends on these entries (a lost .meta is
	// rebuilt, retired files are removed below, and a segment whose name
	// was not made durable is never written to).
	err := c.fs.SyncDir()
	if err == nil {
		c.dirDirty = false
	}
	c.offerRecycled(c.retired, err == nil)
	clear(c.retired)
	c.retired = c.retired[:0]
	return err
}

// writeFence records, in NNNNNN.log.end, that segment id's log ends at off
// whatever lies after it (temp file, fsync, rename, and, unlike a .meta,
// a directory sync at once). Recovery honours it and then removes it.
func (c *Coordinator) writeFence(id uint64, off int64) error {
	b := segment.EncodeFence(off)
	tmp := segment.FenceName(id) + segment.TmpSuffix
	if err := c.fs.WriteFile(tmp, b[:]); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, segment.FenceName(id)); err != nil {
		return err
	}
	return c.fs.SyncDir()
}

// retain removes segments older than the current one minus SegmentsToRetain.
func (c *Coordinator) retain() {
	cur := c.curID.Load()
	if cur <= uint64(c.cfg.SegmentsToRetain) {
		return
	}
	from := cur - uint64(c.cfg.SegmentsToRetain)
	ids, err := c.segmentIDs()
	if err != nil {
		c.log.Error("dwal: retention: list", "err", err)
		return
	}
	for _, id := range ids {
		if id >= from {
			break
		}
		if err := c.retire(id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Error("dwal: retention: remove", "segment", id, "err", err)
		}
	}
}

// segmentIDs lists the segment IDs present, ascending.
func (c *Coordinator) segmentIDs() ([]uint64, error) {
	l, err := segment.List(c.fs)
	if err != nil {
		return nil, err
	}
	return l.IDs, nil
}

// ReadSegmentMetadata reads id's .meta; ok is false when it is missing or
// malformed (not 24 bytes).
func (c *Coordinator) ReadSegmentMetadata(id uint64) (SegmentMetadata, bool) {
	m, ok, err := segment.ReadMeta(c.fs, id)
	return metadataOf(m), ok && err == nil
}

// Segments lists the segments that have metadata (the sealed ones), by ID.
func (c *Coordinator) Segments() []SegmentInfo {
	ids, err := c.segmentIDs()
	if err != nil {
		return nil
	}
	var out []SegmentInfo
	for _, id := range ids {
		if m, ok := c.ReadSegmentMetadata(id); ok {
			out = append(out, SegmentInfo{ID: id, Meta: m})
		}
	}
	return out
}

// MinLSN is the smallest LSN of the sealed segments; ok is false when there
// are none.
func (c *Coordinator) MinLSN() (LSN, bool) {
	var min LSN
	ok := false
	for _, s := range c.Segments() {
		if !ok || s.Meta.MinLSN < min {
			min, ok = s.Meta.MinLSN, true
		}
	}
	return min, ok
}

// TruncateToLSN removes the sealed segments whose MaxLSN < lsn, never the
// current one and never one whose .meta is missing, and returns how many it
// removed. Call it only once everything below lsn is safe elsewhere.
func (c *Coordinator) TruncateToLSN(lsn LSN) (removed int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	if c.roErr != nil {
		return 0, c.roErr
	}
	ids, err := c.segmentIDs()
	if err != nil {
		return 0, err
	}
	cur := c.curID.Load()
	for _, id := range ids {
		if id >= cur {
			break
		}
		m, ok := c.ReadSegmentMetadata(id)
		if !ok || m.MaxLSN >= lsn {
			continue
		}
		if err := c.retire(id); err != nil {
			err = fmt.Errorf("dwal: truncate: remove segment %d: %w", id, err)
			if serr := c.syncDir(); serr != nil {
				err = errors.Join(err, fmt.Errorf("dwal: truncate: sync dir: %w", serr))
			}
			return removed, err
		}
		removed++
	}
	// Unlike retention's, these removals are durable before the call
	// returns: the caller asked for them.
	if err := c.syncDir(); err != nil {
		return removed, fmt.Errorf("dwal: truncate: sync dir: %w", err)
	}
	return removed, nil
}

// Close stops group commit (failing queued Appends with ErrClosed), cuts the
// active segment's preallocated tail off, syncs it and seals it (writes its
// .meta), and releases the directory. The next Open then reads the .meta
// files instead of the last segment's batches: after a crash (no .meta) it
// reads that segment through to find where its log ends.
func (c *Coordinator) Close() error {
	c.group.close()
	c.prep.close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	for c.head != nil { // let the batches in flight settle
		c.cond.Wait()
	}
	var err error
	if a := c.act; a != nil {
		a.stopInit()
		if c.roErr == nil {
			// Cut the preallocated tail off: the next Open's recovery then
			// has nothing past the end of the log to read through, and the
			// sync makes any unsynced batch durable.
			err = a.f.Truncate(a.settled)
			if err == nil {
				err = a.f.Sync()
			}
			// Seal it: with its .meta the next Open trusts where its log
			// ends instead of reading the segment through to find it.
			if err == nil && a.meta.Entries > 0 {
				err = c.writeMeta(a.id, a.meta)
			}
		}
		if cerr := a.f.Close(); err == nil {
			err = cerr
		}
		c.act = nil
	}
	if derr := c.syncDir(); err == nil && derr != nil {
		err = fmt.Errorf("dwal: close: sync dir: %w", derr)
	}
	c.rd.closeAll()
	if lerr := c.lock.Close(); err == nil {
		err = lerr
	}
	if c.ownFS {
		if ferr := c.fs.Close(); err == nil {
			err = ferr
		}
	}
	return err
}
