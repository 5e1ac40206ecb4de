package engine

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"dwal/engine/align"
	"dwal/engine/vfs"
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

	// mu serialises writers, rotation, truncation and Close.
	mu       sync.Mutex
	act      *active // the segment being written; nil between rotation and the next flush
	closed   bool
	roErr    error // sticky ErrReadOnly, set once
	syncNext bool  // the next batch must be synced (first write on a fresh segment after a failure)

	curID    atomic.Uint64
	curSize  atomic.Uint64
	entries  atomic.Uint64
	bytes    atomic.Uint64
	diskByte atomic.Uint64
	flushes  atomic.Uint64

	group *groupCommit
}

// active is the segment being written.
type active struct {
	id      uint64
	f       vfs.File
	salt    uint64
	size    int64 // preallocated file size
	off     int64 // where the next batch goes
	durable int64 // everything before it is durable
	seq     uint64
	meta    SegmentMetadata
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
	c.pool = align.NewPool(c.align)
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
func (c *Coordinator) SegmentPath(id uint64) string { return filepath.Join(c.cfg.Dir, segName(id)) }

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

// writeBatch writes n entries (got through at) as one batch.
func (c *Coordinator) writeBatch(n int, at func(int) (LSN, []byte), sync bool) (FlushStats, error) {
	var st FlushStats
	payload := 0
	for i := range n {
		_, d := at(i)
		if len(d) > c.cfg.MaxEntrySize {
			return st, fmt.Errorf("%w: entry %d is %d bytes, limit %d", ErrEntryTooLarge, i, len(d), c.cfg.MaxEntrySize)
		}
		payload += entryHeaderLen + len(d)
		st.BytesWritten += len(d)
	}
	if payload > maxBatchPayload {
		return st, fmt.Errorf("%w: batch of %d bytes exceeds the %d-byte batch limit", ErrEntryTooLarge, payload, maxBatchPayload)
	}
	span := batchSpan(payload, c.align)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return st, ErrClosed
	}
	if c.roErr != nil {
		return st, c.roErr
	}
	if c.act != nil && c.act.meta.EntryCount > 0 && c.act.off+int64(span) > c.act.size {
		// The batch does not fit the preallocated space: seal first, so no
		// write ever extends a segment file (an extending write costs a
		// metadata commit per sync) and a huge entry gets a segment of its own.
		c.seal()
		st.SegmentRotated = true
		if c.roErr != nil {
			return st, c.roErr
		}
	}
	if c.act == nil {
		if err := c.startSegment(int64(span)); err != nil {
			return st, err
		}
	}
	a := c.act
	bp := c.pool.Get(span)
	defer c.pool.Put(bp)
	buf := *bp
	h := batchHeader{length: uint32(payload), count: uint32(n), seq: a.seq, salt: a.salt}
	p := batchHeaderLen
	for i := range n {
		lsn, d := at(i)
		if i == 0 || lsn < h.minLSN {
			h.minLSN = lsn
		}
		if i == 0 || lsn > h.maxLSN {
			h.maxLSN = lsn
		}
		binary.LittleEndian.PutUint32(buf[p:], uint32(len(d)))
		binary.LittleEndian.PutUint64(buf[p+4:], uint64(lsn))
		copy(buf[p+entryHeaderLen:], d)
		p += entryHeaderLen + len(d)
	}
	clear(buf[p:span])
	encodeBatchHeader(buf, &h)

	mode := vfs.SyncNone
	if (sync && c.cfg.SyncOnFlush) || c.syncNext {
		mode = vfs.SyncData
		if c.cfg.SyncMethod == SyncDSync {
			mode = vfs.SyncDSync
		}
	}
	t0 := time.Now()
	if err := a.f.WriteAt(buf[:span], a.off, mode); err != nil {
		return st, c.failBatch(err, h.minLSN, h.maxLSN)
	}
	if d := time.Since(t0); mode != vfs.SyncNone && d > c.cfg.SlowSyncThreshold {
		c.log.Warn("dwal: slow sync", "segment", a.id, "duration", d, "bytes", span)
	}
	c.syncNext = false
	a.off += int64(span)
	if mode != vfs.SyncNone {
		a.durable = a.off
	}
	a.seq++
	if a.meta.EntryCount == 0 || h.minLSN < a.meta.MinLSN {
		a.meta.MinLSN = h.minLSN
	}
	if a.meta.EntryCount == 0 || h.maxLSN > a.meta.MaxLSN {
		a.meta.MaxLSN = h.maxLSN
	}
	a.meta.EntryCount += uint64(n)
	c.curSize.Store(uint64(a.off))
	c.entries.Add(uint64(n))
	c.bytes.Add(uint64(st.BytesWritten))
	c.diskByte.Add(uint64(span))
	c.flushes.Add(1)
	st.EntriesFlushed = n
	st.DiskBytes = span
	if a.off >= c.cfg.SegmentSize {
		c.seal()
		st.SegmentRotated = true
	}
	return st, nil
}

// failBatch applies the sync-failure rule to a batch whose write or sync
// failed at c.act.off: roll the segment back to where the batch started and
// make that durable, seal it, and go on with a fresh segment whose first
// write is synced; where that cannot be trusted (buffered I/O, or the
// rollback failed) turn read-only. Returns the batch's error.
func (c *Coordinator) failBatch(cause error, minLSN, maxLSN LSN) error {
	a := c.act
	if errors.Is(cause, align.ErrMisaligned) {
		// Nothing was submitted: a bug, not an I/O failure.
		return fmt.Errorf("dwal: internal error: %w", cause)
	}
	batchErr := fmt.Errorf("dwal: write of LSN %d..%d to segment %d failed: %w", minLSN, maxLSN, a.id, cause)
	rbErr := a.f.Truncate(a.off)
	if rbErr == nil {
		// NB: this is not a retry of the failed sync: it makes the truncation
		// durable. If it fails too, nothing written since the last durable
		// offset can be trusted.
		rbErr = a.f.Sync()
	}
	if rbErr != nil || pageCache(c.fs) {
		why := "buffered backend: the page cache may hold the failed batch's state"
		if rbErr != nil {
			why = "rollback failed: " + rbErr.Error()
		}
		c.roErr = fmt.Errorf("%w: %w (%s); fate of LSN %d..%d unknown", ErrReadOnly, cause, why, minLSN, maxLSN)
		c.log.Error("dwal: turned read-only", "err", c.roErr)
		if rbErr != nil {
			// The failed batch may still be in the file, whole. Record where
			// the log really ends so recovery cuts it off rather than replay
			// a batch whose caller was told it failed.
			if err := c.writeFence(a.id, a.off); err != nil {
				c.log.Error("dwal: cannot record the end of the log; recovery may replay the failed batch",
					"segment", a.id, "offset", a.off, "err", err)
			}
		}
		return batchErr
	}
	a.durable = a.off
	c.log.Warn("dwal: write failed; segment rolled back and sealed", "segment", a.id, "offset", a.off, "err", cause)
	c.seal()
	c.syncNext = true
	return batchErr
}

// pageCache reports whether f (or a backend it wraps, as errorfs does)
// writes through the page cache.
func pageCache(f vfs.FS) bool {
	for f != nil {
		if p, ok := f.(interface{ PageCache() bool }); ok {
			return p.PageCache()
		}
		u, ok := f.(interface{ Unwrap() vfs.FS })
		if !ok {
			return false
		}
		f = u.Unwrap()
	}
	return false
}

// startSegment creates the next segment, big enough for a batch of span
// bytes, and makes it the active one. Nothing is written on failure.
func (c *Coordinator) startSegment(span int64) error {
	id := c.curID.Load() + 1
	hdrLen := int64(c.align)
	size := max(align.Up64(c.cfg.SegmentSize, c.align), hdrLen+span)
	tmp := fmt.Sprintf("%s%d%s", preparedPrefix, id, tmpSuffix)
	f, err := c.fs.Create(tmp, size)
	if err != nil {
		if errors.Is(err, vfs.ErrNoSpace) {
			return fmt.Errorf("dwal: prepare segment %d (%d bytes): %w", id, size, err)
		}
		return fmt.Errorf("dwal: prepare segment %d: %w", id, err)
	}
	fail := func(err error) error {
		f.Close()
		c.fs.Remove(tmp)
		return fmt.Errorf("dwal: prepare segment %d: %w", id, err)
	}
	var saltb [8]byte
	if _, err := rand.Read(saltb[:]); err != nil {
		return fail(err)
	}
	h := segHeader{version: formatVersion, align: uint32(c.align), id: id,
		salt: binary.LittleEndian.Uint64(saltb[:]), created: time.Now().UnixNano()}
	b := align.Alloc(c.align, c.align)
	h.encode(b)
	// The header (and the file's size and allocation) must be durable before
	// the file gets its real name: a .log always starts with a valid header.
	if err := f.WriteAt(b, 0, vfs.SyncData); err != nil {
		return fail(err)
	}
	if err := c.fs.Rename(tmp, segName(id)); err != nil {
		return fail(err)
	}
	if err := c.fs.SyncDir(); err != nil {
		// The rename may or may not survive a crash; the file is a valid,
		// empty segment either way. Do not write to it: a batch acknowledged
		// in a file whose name is not durable could vanish.
		f.Close()
		return fmt.Errorf("dwal: prepare segment %d: sync dir: %w", id, err)
	}
	c.act = &active{id: id, f: f, salt: h.salt, size: size, off: hdrLen, durable: hdrLen, seq: 1}
	c.curID.Store(id)
	c.curSize.Store(uint64(hdrLen))
	c.log.Debug("dwal: segment started", "segment", id, "size", size)
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
	if a.durable < a.off {
		if err := a.f.Sync(); err != nil {
			c.roErr = fmt.Errorf("%w: sync at seal of segment %d: %w; fate of batches after offset %d unknown",
				ErrReadOnly, a.id, err, a.durable)
			c.log.Error("dwal: turned read-only", "err", c.roErr)
			a.f.Close()
			return
		}
	}
	a.f.Close()
	if a.meta.EntryCount == 0 {
		if err := c.fs.Remove(segName(a.id)); err == nil {
			c.fs.SyncDir()
		}
		return
	}
	if err := c.writeMeta(a.id, a.meta); err != nil {
		c.log.Error("dwal: cannot write segment metadata; recovery will rebuild it", "segment", a.id, "err", err)
	}
	c.log.Debug("dwal: segment sealed", "segment", a.id, "entries", a.meta.EntryCount)
	c.retain()
}

// writeMeta writes id's .meta atomically: temp file, fsync, rename, fsync dir.
func (c *Coordinator) writeMeta(id uint64, m SegmentMetadata) error {
	b := m.Bytes()
	tmp := metaName(id) + tmpSuffix
	if err := c.fs.WriteFile(tmp, b[:]); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, metaName(id)); err != nil {
		return err
	}
	return c.fs.SyncDir()
}

// writeFence records, in NNNNNN.log.end, that segment id's log ends at off
// whatever lies after it (written like a .meta: temp, fsync, rename, fsync
// dir). Recovery honours it and then removes it.
func (c *Coordinator) writeFence(id uint64, off int64) error {
	b := encodeFence(off)
	tmp := fenceName(id) + tmpSuffix
	if err := c.fs.WriteFile(tmp, b[:]); err != nil {
		c.fs.Remove(tmp)
		return err
	}
	if err := c.fs.Rename(tmp, fenceName(id)); err != nil {
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
	removed := 0
	for _, id := range ids {
		if id >= from {
			break
		}
		if err := c.fs.Remove(segName(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Error("dwal: retention: remove", "segment", id, "err", err)
			continue
		}
		c.fs.Remove(metaName(id))
		removed++
	}
	if removed > 0 {
		if err := c.fs.SyncDir(); err != nil {
			c.log.Error("dwal: retention: sync dir", "err", err)
		}
	}
}

// segmentIDs lists the segment IDs present, ascending.
func (c *Coordinator) segmentIDs() ([]uint64, error) {
	ents, err := c.fs.List()
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, e := range ents {
		if id, ok := parseID(e.Name(), segSuffix); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ReadSegmentMetadata reads id's .meta; ok is false when it is missing or short.
func (c *Coordinator) ReadSegmentMetadata(id uint64) (SegmentMetadata, bool) {
	b, err := c.fs.ReadFile(metaName(id))
	if err != nil {
		return SegmentMetadata{}, false
	}
	return ParseSegmentMetadata(b)
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
		if err := c.fs.Remove(segName(id)); err != nil {
			return removed, fmt.Errorf("dwal: truncate: remove segment %d: %w", id, err)
		}
		c.fs.Remove(metaName(id))
		removed++
	}
	if removed > 0 {
		if err := c.fs.SyncDir(); err != nil {
			return removed, fmt.Errorf("dwal: truncate: sync dir: %w", err)
		}
	}
	return removed, nil
}

// Close stops group commit (failing queued Appends with ErrClosed), syncs
// the active segment, and releases the directory. The active segment stays
// unsealed; the next Open seals it.
func (c *Coordinator) Close() error {
	c.group.close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	var err error
	if a := c.act; a != nil {
		if a.durable < a.off && c.roErr == nil {
			err = a.f.Sync()
		}
		if cerr := a.f.Close(); err == nil {
			err = cerr
		}
		c.act = nil
	}
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
