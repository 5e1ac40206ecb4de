// Package engine is dwal's write-ahead log: the API of the Rust WAL flush
// coordinator that dwal replaces as a backend ("Card 1": Open, Flush,
// TruncateToLSN, Segments, Replay, FlushThread, PendingEntry and Completion,
// with the same behaviour, so programs written against it can swap dwal in),
// and group commit for many goroutines (Append), over one backend interface
// (package vfs) with two real backends: io_uring + O_DIRECT on Linux
// (package uring) and a portable os.File backend (package fallback).
//
// # Usage
//
//	c, err := engine.Open(engine.DefaultConfig("/var/lib/app/wal"))
//	...
//	e, done := engine.NewSyncEntry(42, payload)
//	_, err = c.Flush([]*engine.PendingEntry{e}, true) // durable when nil
//	err = c.Append(ctx, 43, payload)                   // many goroutines share syncs
//	err = c.Replay(0, func(lsn engine.LSN, b []byte) error { ...; return nil })
//	b, err := c.Read(43, nil)                          // one entry by LSN (ErrNotFound)
//	err = c.DeleteBefore(40)                           // a prefix, exact, durable
//	err = c.TruncateAfter(42)                          // a suffix, exact, durable
//
// # Files
//
// A directory holds segments NNNNNN.log (IDs grow; any number of digits is
// parsed), their NNNNNN.log.meta and NNNNNN.log.idx (the segment's index)
// once sealed, and a LOCK file (flock: a second opener gets ErrLocked). A segment being prepared lives under
// prepared-N.tmp, and a retired one kept for reuse under recycle-N.tmp; each
// is renamed when it becomes the active segment, so only real segments end
// in .log. Close leaves them in place; the next Open reuses one for its
// first segment (as far as the file system's extent map shows it written)
// and removes the others. After a repair NNNNNN.log.broken holds bytes cut off a torn tail,
// kept for the operator. NNNNNN.log.end records where a segment's log ends
// after a failed write could not be rolled back (the next Open cuts the
// segment there, then removes it). log.state, once DeleteBefore,
// TruncateAfter or SetUserRecord has run, records what was deleted (and the
// caller's record); it is replaced through log.state.tmp. Other files are
// ignored.
//
// A segment becomes current at the first flush after the previous one was sealed
// (as in Card 1): right after a rotation CurrentSegmentID still names the sealed
// segment and CurrentSegmentSize is 0.
//
// # Format
//
// The on-disk format (segment header, batches, entries, the .meta and
// end-of-log records, the log-state record) is drawn and specified in one
// place, beside its codec: the package doc of engine/internal/segment
// (go doc ./engine/internal/segment). In brief: every batch starts at an
// aligned offset, its header carries a CRC32C seeded with the segment's
// random salt and a sequence number, and the end of a segment's log is the
// first aligned offset whose batch fails magic, salt, sequence, length or
// CRC; nothing past it is replayed, and acknowledged bytes are never
// overwritten.
//
// Deleting never rewrites a segment byte: DeleteBefore raises the log
// state's first LSN; TruncateAfter(x) seals the active segment, adds the
// cut (x, R) with R the next segment's ID, and the writes after it go to R
// on; a TruncateAfter that leaves nothing sets the base to R instead. The
// record is replaced atomically (temp file, fsync, rename, directory
// fsync) before the deletion returns. Replay, Read, Bounds, recovery and
// the inspect tools skip what it deletes (one rule, segment.State), and a
// segment all of whose entries are deleted is removed.
//
// Reading by LSN (Read, Bounds) goes through a two-level index: every
// segment's LSN range from its .meta (known at Open, which reads no segment
// body), then the segment's batches from its index file (one 24-byte ref per
// batch), read when a lookup first needs it and kept in a cache bounded by
// Config.IndexCacheBytes; the active segment's refs are kept in memory as
// its batches settle. The first Read of any LSN after Open costs one index
// read and one batch read. An index file is trusted only as far as the
// segment agrees with it: one missing, torn, stale or wrong costs one scan
// of that segment, which writes it again. Lookups are binary searches while
// LSNs increase across batches (any order inside one), a scan of the
// segments and batches whose range holds the LSN otherwise. Sealed
// segments are read through the page cache where the backend offers it
// (vfs.CachedReader); the active one as it is written.
//
// # Durability contract
//
// Flush(entries, true) (with SyncOnFlush) and Append return nil only once the
// batch and everything needed to find it (the segment's directory entry, its
// size and allocation) are durable. A new segment is created under a
// temporary name, preallocated, its header written and synced, then renamed
// and the directory synced, before any batch goes into it. A .meta is written
// atomically (temp file, fsync, rename); its rename is made durable by the
// next directory sync (the next segment's start, TruncateToLSN or Close),
// and one lost in a crash is rebuilt by recovery.
//
// When a write or its sync fails, every entry of that batch gets the error,
// never success, and the failed batch is never replayed. The sync is never
// retried (after a writeback error the kernel may mark dirty pages clean, so
// a second fsync can succeed falsely). Instead the segment is truncated back
// to where the batch started and that is synced; with O_DIRECT (no page
// cache in between) the segment is then sealed and writing resumes on a fresh
// segment whose first batch is synced. With a buffered backend (the
// fallback, or any Config.FS that does not declare vfs.DirectIO), or
// when the rollback itself fails, the Coordinator turns read-only: every
// later write returns ErrReadOnly naming the cause and the LSN range whose
// fate is unknown; reads still work; reopening runs recovery. Running out of
// space while preparing a segment fails that batch with ErrNoSpace before
// anything is written; the Coordinator stays writable.
//
// # Recovery
//
// Open takes the lock and reads every segment header, .meta and
// end-of-log record and the log-state record before changing anything;
// then each segment gets the action of recovery's decision table
// (recoveryTable in recovery.go: a segment its writer sealed is trusted, one
// left open is synced, cut at the end of its log with any torn tail copied
// to NNNNNN.log.broken, and sealed; a sealed one that lost its .meta gets
// it rebuilt; a last segment with no valid header is set aside; anything no
// crash explains, or a segment of a newer format, fails Open with the
// directory untouched). Leftovers of interrupted work go, but for one
// prepared or retired segment file kept for reuse. What it did is in
// Recovery(). Sealed segments with a .meta are trusted at Open and checked
// when replayed (a mismatch gives ErrCorrupt).
//
// # Fault model
//
// dwal assumes what the kernel and file systems promise, no more: data is
// durable only after a successful fdatasync/fsync (or an RWF_DSYNC write);
// directory entries only after an fsync of the directory; a write may be torn
// at any sector boundary by a crash; a failed fsync means the state of
// everything written since the last good one is unknown. It detects, but
// cannot repair, media corruption of acknowledged data (a CRC mismatch in a
// sealed segment is reported, never skipped silently).
//
// # Code map
//
// Read in this order; each concern lives in one place.
//
//   - vfs: the backend interface, its contract and capabilities; vfs/osdir
//     the OS calls both real backends share; uring and fallback the
//     backends; vfs/memfs (crashable), vfs/errorfs (fault injection) and
//     vfs/vfstest (the conformance suite) the test doubles.
//   - internal/segment: the on-disk format, drawn in its package doc
//     (names, header, batch codec, .meta, end-of-log and log-state records,
//     the deletion rule, the directory listing, the scanner).
//   - config.go, errors.go, metadata.go: Config and its defaults, the
//     sentinel errors, SegmentMetadata.
//   - coordinator.go: the Coordinator and its parts, Open, Close, Flush,
//     the Card 1 accessors; backend.go and probe.go: which backend runs and
//     why.
//   - pipeline.go: the write pipeline, and the lock order, the conditions
//     and the invariants of the whole Coordinator; write.go: one batch's
//     encoding; group.go: Append's group commit over the pipeline;
//     invariants*.go: the checks compiled in under the race detector.
//   - segments.go: a segment's life (started, sealed, retired), directory
//     syncs, retention, TruncateToLSN.
//   - prepare.go: segments prepared off the hot path; recycle.go: every
//     decision about reusing a segment file; frontier.go: the active
//     segment's blocks initialised ahead of the write cursor.
//   - recovery.go: what Open repairs, as a decision table; replay.go:
//     Replay.
//   - index.go: the LSN index and Bounds; readers.go: Read, reading a
//     batch from its segment; cache.go: the cache of recent batches
//     (Config.ReadCacheBytes).
//   - state.go: the log-state record, DeleteBefore, SetUserRecord;
//     truncate.go: TruncateAfter.
//   - entry.go, signal.go: PendingEntry, Completion, FlushSignal,
//     FlushThread; crypt.go: Cipher; stats.go: Stats and the counters.
//   - inspect: the operator's read-only tools, outside the log's API.
package engine
