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
// parsed), their NNNNNN.log.meta once sealed, and a LOCK file (flock: a
// second opener gets ErrLocked). A segment being prepared lives under
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
// # Segment format
//
// The codec and its constants (marked "never change") are in
// internal/segment; this is their layout.
//
// All integers little endian. A is the segment's alignment (the directory's
// Direct I/O alignment, at least 4096), recorded in its header.
//
//	offset 0, one block of A bytes:
//	+--------+---------+-------+-------+--------+--------+---------+--------+
//	| magic  | version | flags | align | seg ID | salt   | created | CRC32C |
//	| 8 B    | u16     | u16   | u32   | u64    | u64    | i64 ns  | u32    |
//	+--------+---------+-------+-------+--------+--------+---------+--------+
//	then, in format (version) 2 only, from byte 44:
//	+--------+----------+--------+
//	| key ID | key salt | CRC32C |
//	| u32    | 16 B     | u32    |
//	+--------+----------+--------+
//	then zeros to A. magic "DWALSEG\x00"; each CRC32C (Castagnoli) is of
//	every byte before it; flags bit 0: entries are encrypted by
//	Config.Cipher. Plain segments are written in format 1, encrypted ones
//	in format 2, each under a key of its own derived from master key "key
//	ID" and the segment's ID, salt and key salt (random). An encrypted
//	segment of format 1 (written before key IDs) was encrypted under master
//	key 0 itself. Every format keeps the first 44 bytes, so an older dwal
//	tells a newer format from a damaged header.
//
//	then batches, each at a multiple of A, padded with zeros to the next one:
//	+-------+-------+--------+-------+-----+---------+---------+------+---------+-----+
//	| magic | CRC   | length | count | seq | min LSN | max LSN | salt | entries | 0.. |
//	| u32   | u32   | u32    | u32   | u64 | u64     | u64     | u64  | length  |     |
//	+-------+-------+--------+-------+-----+---------+---------+------+---------+-----+
//	magic "DWB1"; CRC32C over the bytes from length to the end of the
//	entries, seeded with the segment's salt; seq is 1 for the first batch of
//	a segment and grows by one.
//
//	each entry: | length u32 | LSN u64 | bytes |
//
//	in an encrypted segment the entries are replaced by
//	| nonce 12 B | AES-256-GCM ciphertext of the entries | tag 16 B |
//	authenticating the segment's ID and salt and the batch's seq, count
//	and LSN range; the nonce is the number of batches the segment's writer
//	encrypted before this one (u32 big endian) and 8 random bytes (format
//	1: 12 random bytes). length counts all of it.
//
// The end of a segment's log is the first aligned offset whose batch fails
// magic, salt, sequence, length or CRC: preallocated zeros, stale bytes of
// another segment (other salt, so the CRC fails too) and a torn batch all end
// it there, and nothing past it is replayed. A batch is replayed whole or not
// at all. Acknowledged bytes are never overwritten: each batch takes fresh
// aligned blocks (padding, never a rewrite of a partial tail block).
//
// The .meta file is 24 bytes: min LSN, max LSN, entry count.
//
// The log-state record, log.state (absent until something is deleted):
//
//	+----------+---------+-------+------+-------+------+-------+----------+---------------------+------+--------+
//	| magic    | version | flags | cuts | first | base | floor | user len | cuts × after, below | user | CRC32C |
//	| 8 B      | u16     | u16   | u32  | u64   | u64  | u64   | u32      | u64, u64 each       |      | u32    |
//	+----------+---------+-------+------+-------+------+-------+----------+---------------------+------+--------+
//	magic "DWALSTAT"; CRC32C of every byte before it.
//
// An entry with LSN l in segment s is deleted when l < first, or s < base,
// or a cut has s < below and l > after; Replay, Read, Bounds, recovery and
// the inspect tools skip it, and a segment all of whose entries are deleted
// is removed. No segment byte is rewritten to delete: DeleteBefore raises
// first; TruncateAfter(x) seals the active segment, adds the cut (x, R)
// with R the next segment's ID, and the writes after it go to R on; a
// TruncateAfter that leaves nothing sets base to R instead and clears first
// and the cuts. New segments get IDs of at least floor. The record is
// replaced atomically (temp file, fsync, rename, directory fsync) before
// the deletion returns, so a crash leaves the old record or the new one,
// whole.
//
// Reading by LSN (Read, Bounds) goes through an in-memory index of batches
// (segment, offset, span, LSN range: 40 bytes each), built by one scan at
// first use and kept while writing. Lookups are binary searches while LSNs
// increase across batches (any order inside one), a scan of every batch
// otherwise.
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
// Open takes the lock, removes leftovers of interrupted work (keeping one
// prepared or retired segment file for reuse), reads every
// segment header before changing anything (a segment of a newer format fails
// Open with ErrUnsupportedFormat and the directory untouched), syncs the last
// segment (a crashed process may have left writes in the page cache), finds
// the end of its log, copies any torn tail to NNNNNN.log.broken and cuts it
// off, seals it, and rebuilds missing .meta files of sealed segments. What it
// did is in Recovery(). Sealed segments with a .meta are trusted at Open and
// checked when replayed (a mismatch gives ErrCorrupt).
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
//   - internal/segment: the on-disk format (names, header, batch codec,
//     .meta, end-of-log and log-state records, the directory listing, the
//     scanner).
//   - config.go, errors.go, metadata.go: Config and its defaults, the
//     sentinel errors, SegmentMetadata.
//   - coordinator.go: Open, Close, Flush, the Card 1 accessors, sealing and
//     retention; backend.go and probe.go: which backend runs and why.
//   - write.go: one batch from reservation to settlement, the rollback of a
//     failed one; group.go: Append's group commit over it.
//   - prepare.go: segments prepared (and recycled) off the hot path;
//     frontier.go: the active segment's blocks initialised ahead of the
//     write cursor.
//   - recovery.go: what Open repairs; replay.go: Replay.
//   - index.go: Read and Bounds through the LSN index; cache.go: the cache
//     of recent batches (Config.ReadCacheBytes); state.go: the log-state
//     record, DeleteBefore, SetUserRecord; truncate.go: TruncateAfter.
//   - entry.go, signal.go: PendingEntry, Completion, FlushSignal,
//     FlushThread; crypt.go: Cipher; stats.go: Stats.
//   - inspect: the operator's read-only tools, outside the log's API.
package engine
