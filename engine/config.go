package engine

import (
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"time"

	"github.com/dwal-project/dwal/engine/vfs"
)

// LSN is a log sequence number, chosen by the caller.
type LSN uint64

// BackendKind selects the storage backend.
type BackendKind int

const (
	// BackendAuto (the zero value) uses io_uring + O_DIRECT when both work
	// for the directory, else the fallback, and says why in Backend().
	BackendAuto BackendKind = iota
	// BackendUring requires io_uring + O_DIRECT; Open fails where they cannot
	// run.
	BackendUring
	// BackendFallback uses the portable os.File backend.
	BackendFallback
)

func (k BackendKind) String() string {
	switch k {
	case BackendAuto:
		return "auto"
	case BackendUring:
		return "io_uring"
	case BackendFallback:
		return "fallback"
	}
	return fmt.Sprintf("BackendKind(%d)", int(k))
}

// SyncMethod says how a synced batch is made durable.
type SyncMethod int

const (
	// SyncDSync (the zero value, the default): the batch is one write
	// carrying RWF_DSYNC, so the write and its sync are one request (FUA
	// where the device has it and the blocks are initialised, else the
	// kernel's fdatasync of that range before the write completes). A
	// failed write or sync fails the request: nothing is acknowledged.
	// On io_uring it is one SQE; the fallback backend, which has no such
	// write, serves it as pwrite then fdatasync.
	//
	// NB: it is the default because it is measured faster than the linked
	// chain wherever dwal was measured (4 KiB O_DIRECT durable writes,
	// journaled ext4 and xfs on a loop device and a journal-less ext4, 2
	// vCPUs; BenchmarkSyncWrite4K in engine/uring): p50 173/163/91 µs
	// against 220/225/103 µs linked, and pwrite+fdatasync's 197/158/84.
	// io_uring runs every FSYNC request on an io-wq worker thread, one
	// thread hop more per sync than RWF_DSYNC, whose flush completes in
	// the kernel's own completion work.
	SyncDSync SyncMethod = iota
	// SyncFdatasync: the batch's WRITE is linked (IOSQE_IO_LINK) to an
	// FDATASYNC in one submission; a failed or short write cancels the
	// sync. The fallback backend does pwrite then fdatasync, as for
	// SyncDSync.
	SyncFdatasync
)

// Config configures a Coordinator. Zero values mean the defaults.
type Config struct {
	// Dir is the WAL directory; it is created (DirPerm) when missing.
	Dir string
	// SegmentSize is the size at which a segment is sealed and the next one
	// started (default 64 MiB). A segment rotates after the flush that makes
	// it reach SegmentSize; tiny sizes are legal and mean "rotate after every
	// flush".
	SegmentSize int64
	// SegmentsToRetain is how many sealed segments are kept before the
	// current one (default 10); older ones are removed at rotation.
	// RetainAll turns retention off: segments go only when the caller
	// deletes them (TruncateToLSN, DeleteBefore, TruncateAfter), as a
	// consensus log such as Raft's needs until its snapshot covers them.
	SegmentsToRetain int
	// FlushInterval is the FlushThread's default period (default 10ms).
	FlushInterval time.Duration
	// SyncOnFlush makes Flush(..., true) and Append durable (default true).
	// Turning it off (tests, benchmarks of the CPU path) works only on a
	// Config from DefaultConfig, which records that its SyncOnFlush is meant
	// as written: in a Config literal the zero value cannot be told from
	// "unset", so it means the default, true. NB: a zero Config must be a
	// durable one.
	SyncOnFlush bool
	// MaxEntrySize bounds one entry (default 64 MiB, at most 1 GiB).
	MaxEntrySize int
	// Backend picks the storage backend (default BackendAuto).
	Backend BackendKind
	// FS, when set, is the backend to use as it is (Backend is ignored, Dir
	// only names the directory in messages): a custom backend, or the test
	// backends memfs and errorfs. The Coordinator does not close it. An FS
	// that does not implement vfs.DirectIO (reporting true) is treated as
	// buffered: after a failed sync the log turns read-only instead of
	// rolling the segment back, and retired segments are not recycled.
	FS vfs.FS
	// SyncMethod picks how a synced batch is made durable: RWF_DSYNC
	// writes (the default) or a write linked to an fdatasync.
	SyncMethod SyncMethod
	// GroupCommitDepth bounds Append's batches in flight at once, each its
	// own write+sync (default 4, at most 16). More give lower latency where
	// the device completes syncs in parallel; 1 makes the fewest syncs for
	// a load (each carries more entries): for volumes that limit IOPS.
	GroupCommitDepth int
	// FilePerm and DirPerm are the modes of created files (default 0600) and
	// of the directory when created (default 0700).
	FilePerm fs.FileMode
	DirPerm  fs.FileMode
	// Cipher, when set, encrypts the entries of every new segment, under a
	// key of the segment's own derived from the Cipher's current master
	// key, whose ID the segment's header records (see Cipher). Segments
	// written without it stay readable in their own mode; encrypted ones
	// need a Cipher holding the key their header names: Open fails with
	// ErrDecrypt, naming the segment and the key, when one is missing.
	Cipher Cipher
	// Logger receives recovery actions, the backend choice, rotations (debug)
	// and slow syncs (warn). Nil means silent.
	Logger *slog.Logger
	// SlowSyncThreshold is the sync duration above which a warning is logged
	// (default 1s).
	SlowSyncThreshold time.Duration
	// ReadCacheBytes, when positive, keeps a copy of the most recently
	// written or read batches' entries in a ring of this many bytes, so
	// Read of what was just written needs no disk read (a Raft leader
	// replicating its new entries), and reading the entries of a batch one
	// after another (a follower catching up) needs one. Each batch is
	// copied as it is written or read; one over a quarter of the ring is
	// not kept. Entries of an encrypted segment are kept in plain form.
	// Default 0: no cache.
	ReadCacheBytes int
	// IndexCacheBytes bounds the memory that sealed segments' indexes take
	// once read (default 16 MiB: the indexes of about 40 segments of
	// one-block batches, or of every segment of a log of larger batches).
	// Each is read from its NNNNNN.log.idx file when a lookup first needs
	// it; the least recently used go first. The active segment's index is
	// always in memory.
	IndexCacheBytes int
	// RewriteDeadFraction (a Set's): once this share of the sealed
	// segments' entry bytes is deleted, the live entries that the logs pinning
	// the oldest segment hold in sealed segments are rewritten forward, so
	// that a log that lags (never deletes) does not keep the disk for ever
	// (default 0.5; 1 never rewrites; a Coordinator never does).
	RewriteDeadFraction float64

	// fromDefault marks a Config made by DefaultConfig, whose SyncOnFlush is
	// meant as written (see SyncOnFlush).
	fromDefault bool
}

// Defaults.
const (
	DefaultSegmentSize      = 64 << 20
	DefaultSegmentsToRetain = 10
	DefaultFlushInterval    = 10 * time.Millisecond
	DefaultMaxEntrySize     = 64 << 20
	DefaultGroupCommitDepth = 4
	DefaultIndexCacheBytes  = 16 << 20
	// DefaultRewriteDeadFraction is Config.RewriteDeadFraction's default.
	DefaultRewriteDeadFraction = 0.5
)

// RetainAll, as Config.SegmentsToRetain, keeps every sealed segment:
// rotation removes none. (Zero cannot say it: a zero Config field means the
// default, 10.) It is the largest int, so "keep this many" holds for it
// too: no directory has more segments.
const RetainAll = math.MaxInt

// DefaultConfig returns the defaults for dir: SegmentSize 64 MiB,
// SegmentsToRetain 10, FlushInterval 10ms, SyncOnFlush true, Backend Auto.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:              dir,
		SegmentSize:      DefaultSegmentSize,
		SegmentsToRetain: DefaultSegmentsToRetain,
		FlushInterval:    DefaultFlushInterval,
		SyncOnFlush:      true,
		MaxEntrySize:     DefaultMaxEntrySize,
		fromDefault:      true,
	}
}

// maxEntrySizeCap is the largest Config.MaxEntrySize accepted.
const maxEntrySizeCap = 1 << 30

// withDefaults validates c and fills its zero values.
func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" && c.FS == nil {
		return c, fmt.Errorf("%w: empty Dir", ErrBadConfig)
	}
	if c.SegmentSize < 0 {
		return c, fmt.Errorf("%w: negative SegmentSize %d", ErrBadConfig, c.SegmentSize)
	}
	if c.SegmentsToRetain < 0 {
		return c, fmt.Errorf("%w: negative SegmentsToRetain %d", ErrBadConfig, c.SegmentsToRetain)
	}
	if c.FlushInterval < 0 {
		return c, fmt.Errorf("%w: negative FlushInterval %v", ErrBadConfig, c.FlushInterval)
	}
	if c.MaxEntrySize < 0 || c.MaxEntrySize > maxEntrySizeCap {
		return c, fmt.Errorf("%w: MaxEntrySize %d outside 0..%d", ErrBadConfig, c.MaxEntrySize, maxEntrySizeCap)
	}
	if c.ReadCacheBytes < 0 {
		return c, fmt.Errorf("%w: negative ReadCacheBytes %d", ErrBadConfig, c.ReadCacheBytes)
	}
	if c.IndexCacheBytes < 0 {
		return c, fmt.Errorf("%w: negative IndexCacheBytes %d", ErrBadConfig, c.IndexCacheBytes)
	}
	if c.IndexCacheBytes == 0 {
		c.IndexCacheBytes = DefaultIndexCacheBytes
	}
	if !(c.RewriteDeadFraction >= 0 && c.RewriteDeadFraction <= 1) {
		return c, fmt.Errorf("%w: RewriteDeadFraction %v outside 0..1", ErrBadConfig, c.RewriteDeadFraction)
	}
	if c.RewriteDeadFraction == 0 {
		c.RewriteDeadFraction = DefaultRewriteDeadFraction
	}
	if c.SlowSyncThreshold < 0 {
		return c, fmt.Errorf("%w: negative SlowSyncThreshold %v", ErrBadConfig, c.SlowSyncThreshold)
	}
	switch c.Backend {
	case BackendAuto, BackendUring, BackendFallback:
	default:
		return c, fmt.Errorf("%w: unknown Backend %d", ErrBadConfig, int(c.Backend))
	}
	switch c.SyncMethod {
	case SyncDSync, SyncFdatasync:
	default:
		return c, fmt.Errorf("%w: unknown SyncMethod %d", ErrBadConfig, int(c.SyncMethod))
	}
	if c.GroupCommitDepth < 0 || c.GroupCommitDepth > maxInFlight {
		return c, fmt.Errorf("%w: GroupCommitDepth %d outside 0..%d", ErrBadConfig, c.GroupCommitDepth, maxInFlight)
	}
	if c.GroupCommitDepth == 0 {
		c.GroupCommitDepth = DefaultGroupCommitDepth
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxEntrySize == 0 {
		c.MaxEntrySize = DefaultMaxEntrySize
	}
	if c.SlowSyncThreshold == 0 {
		c.SlowSyncThreshold = time.Second
	}
	if c.SegmentsToRetain == 0 {
		c.SegmentsToRetain = DefaultSegmentsToRetain
	}
	if !c.fromDefault {
		c.SyncOnFlush = true // see SyncOnFlush
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
