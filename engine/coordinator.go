package engine

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Coordinator is a write-ahead log in one directory: the Card 1 flush
// coordinator API plus group commit (Append). Its methods are safe for
// concurrent use; Flush calls are serialised.
//
// It is made of parts, each in its own file with the state it guards and
// the rules it keeps; the locks and the order they are taken in are
// written once, in pipeline.go.
type Coordinator struct {
	env                  // the directory, its backend and configuration: fixed at Open
	pipe  pipeline       // the write pipeline: the active segment and the batches in flight (pipeline.go)
	rec   recycler       // every decision about reusing a segment file (recycle.go)
	prep  *preparer      // segments prepared off the hot path (prepare.go)
	group *groupCommit   // Append's group commit (group.go)
	state logStates      // every log's deletions and user record, and the checkpoint (state.go)
	idx   lsnIndex       // where each batch is, by LSN (index.go)
	rd    readers        // read-only handles of the segments being read (readers.go)
	cache *batchCache    // recent batches (cache.go); nil: Config.ReadCacheBytes is 0
	rw    *rewriter      // a set's rewriter of lagging logs (rewrite.go); nil for Open's one log
	ctr   counters       // what was written, and how fast (stats.go)
	rep   RecoveryReport // what Open repaired (recovery.go)
}

// env is what a Coordinator runs on, fixed at Open.
type env struct {
	cfg   Config
	fs    vfs.FS
	ownFS bool // the Coordinator opened fs and closes it
	info  BackendInfo
	lock  io.Closer
	log   *slog.Logger
	align int
	pool  *align.Pool // aligned buffers for batches
	// oneLog: the Coordinator's log 0 is the only log (Open); clear for a
	// Set of logs (OpenSet). Its segments say so in their header.
	oneLog bool
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
func Open(cfg Config) (*Coordinator, error) { return open(cfg, true) }

// open opens the directory for one log (Open) or a set of them (OpenSet).
func open(cfg Config, oneLog bool) (*Coordinator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	fsys, info, own, err := openBackend(cfg)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{env: env{cfg: cfg, fs: fsys, ownFS: own, info: info, log: cfg.Logger, align: fsys.Alignment(), oneLog: oneLog}}
	c.pool = align.NewPool(c.align)
	c.pipe.init()
	c.rec.init(&c.env)
	c.state.init()
	c.idx.init(cfg.IndexCacheBytes)
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
	c.prepareFirst()
	if !oneLog {
		c.startRewriter()
	}
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
func (c *Coordinator) TotalEntriesFlushed() uint64 { return c.ctr.entries.Load() }

// TotalBytesWritten counts entry payload bytes written successfully.
func (c *Coordinator) TotalBytesWritten() uint64 { return c.ctr.payload.Load() }

// TotalDiskBytesWritten counts segment bytes written: headers and padding included.
func (c *Coordinator) TotalDiskBytesWritten() uint64 { return c.ctr.disk.Load() }

// TotalFlushes counts successful batches.
func (c *Coordinator) TotalFlushes() uint64 { return c.ctr.batches.Load() }

// CurrentSegmentID is the segment being written, or the last sealed one
// until the next flush starts a new one.
func (c *Coordinator) CurrentSegmentID() uint64 { return c.pipe.curID.Load() }

// CurrentSegmentSize is the bytes used in the current segment (its header
// block and its padded batches); 0 right after a rotation.
func (c *Coordinator) CurrentSegmentSize() uint64 { return c.pipe.curSize.Load() }

// Flush writes entries as one batch (in the order given; LSNs may be
// unordered) and, when sync and Config.SyncOnFlush, makes it durable before
// returning. Every entry's Completion is told the outcome. An empty flush is
// a no-op. An entry over Config.MaxEntrySize fails the whole batch with
// ErrEntryTooLarge before anything is written. After a failed write or sync
// no byte of the batch is ever replayed (see the package doc).
func (c *Coordinator) Flush(entries []*PendingEntry, sync bool) (FlushStats, error) {
	return c.flush(0, entries, sync)
}

// flush is Flush of log.
func (c *Coordinator) flush(log uint64, entries []*PendingEntry, sync bool) (FlushStats, error) {
	if len(entries) == 0 {
		return FlushStats{}, nil
	}
	start := time.Now()
	st, err := c.writeBatch(len(entries), func(i int) segment.Entry {
		return segment.Entry{Log: log, LSN: uint64(entries[i].LSN), Data: entries[i].Data}
	}, sync)
	for _, e := range entries {
		e.complete(err)
	}
	st.FlushDuration = time.Since(start)
	return st, err
}

// Close stops group commit (failing queued Appends with ErrClosed), cuts the
// active segment's preallocated tail off, syncs it and seals it (writes its
// .meta), and releases the directory. The next Open then reads the .meta
// files instead of the last segment's batches: after a crash (no .meta) it
// reads that segment through to find where its log ends.
func (c *Coordinator) Close() error {
	c.stopRewriter()
	c.group.close()
	c.prep.close()
	p := &c.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.closed = true
	p.drain() // let the batches in flight settle
	err := c.closeActive()
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

// closeActive seals the active segment at Close (under mu): its
// preallocated tail cut off (the next Open's recovery then has nothing past
// the end of the log to read through), synced (any unsynced batch becomes
// durable), and its .meta written, so the next Open trusts where its log
// ends instead of reading the segment through.
func (c *Coordinator) closeActive() error {
	a := c.pipe.act
	if a == nil {
		return nil
	}
	c.pipe.act = nil
	a.stopInit()
	var err error
	if c.pipe.roErr == nil {
		err = a.f.Truncate(a.settled)
		if err == nil {
			err = a.f.Sync()
		}
		if x := c.idx.seal(a.id); err == nil && x != nil {
			err = c.writeIndex(x)
		}
		if err == nil && a.settled > int64(c.align) {
			err = c.writeMeta(a.id, a.meta)
			c.writeCheckpoint(a.id)
		}
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	return err
}
