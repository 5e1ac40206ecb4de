// Package segment is dwal's on-disk format, and only that: the names of the
// files in a log directory, the segment header, the batch and entry codec,
// the .meta and end-of-log records, the one directory listing, and the
// scanner that finds where a segment's log ends. The engine writes with it
// and recovers with it; the inspection tools read with it, so "where the log
// ends" means the same thing everywhere.
//
// It knows files only through package vfs and LSNs only as uint64; the
// durability contract the format serves is package engine's.
//
// # Layout
//
// All integers little endian. A is the segment's alignment (the directory's
// Direct I/O alignment, at least 4096), recorded in its header.
//
//	offset 0, one block of A bytes:
//	+--------+---------+-------+-------+--------+--------+---------+--------+
//	| magic  | version | flags | align | seg ID | salt   | created | CRC32C |
//	| 8 B    | u16     | u16   | u32   | u64    | u64    | i64 ns  | u32    |
//	+--------+---------+-------+-------+--------+--------+---------+--------+
//	then, in formats (versions) 2 and 3, from byte 44:
//	+--------+----------+--------+
//	| key ID | key salt | CRC32C |
//	| u32    | 16 B     | u32    |
//	+--------+----------+--------+
//	then zeros to A. magic "DWALSEG\x00"; each CRC32C (Castagnoli) is of
//	every byte before it; flags bit 0 (FlagEncrypted): entries are
//	encrypted by the log's cipher; bit 1 (FlagOneLog, format 3): every entry
//	is log 0's, written by engine.Open (a set's segments, engine.OpenSet,
//	have it clear, and Open refuses them). This build writes format 3;
//	formats 1 (plain) and 2 (encrypted) are read as before. An encrypted
//	segment of format 2 or 3 seals its batches under a key of its own derived from
//	master key "key ID" and KeyInfo (the key ID, the segment's ID and salt,
//	the random key salt). An encrypted segment of format 1 (written before
//	key IDs) was encrypted under master key 0 itself. Every format keeps
//	the first 44 bytes, so an older dwal tells a newer format from a
//	damaged header.
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
//	each entry, in formats 1 and 2 (layout 1): | length u32 | LSN u64 | bytes |
//	in format 3 (layout 2):  | length u32 | kind u32 | log u64 | LSN u64 | bytes |
//
//	kind 0 is a data entry of log "log"; any other is a record of what the
//	log's owner did, applied in stream order as its batch settles (and at
//	recovery), its LSN the argument: 1 DeleteBefore (entries below LSN),
//	2 TruncateAfter (entries above LSN in earlier batches), 3 TruncateAfter
//	of everything (every entry in earlier batches; the log's deletions
//	forgotten), 4 the user record (bytes), 5 a rewrite (entries with LSN at
//	or below LSN in batches before the rewrite's first chunk: this batch, or
//	the position its bytes name, segment u64 and offset u64). A batch holds
//	entries of any logs and records; it is replayed whole or not at all.
//
//	in an encrypted segment the entries are replaced by
//	| nonce 12 B | AES-256-GCM ciphertext of the entries | tag 16 B |
//	authenticating BatchAD (the segment's ID and salt, the batch's seq,
//	count and LSN range); the nonce is the number of batches the segment's
//	writer encrypted before this one (u32 big endian) and 8 random bytes
//	(format 1: 12 random bytes). length counts all of it.
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
// The segment index, NNNNNN.log.idx, written when the segment is sealed:
//
//	+-------+---------+-------+-------+--------+------+-----+---------+------+
//	| magic | version | flags | align | seg ID | salt | end | batches | logs |
//	| 8 B   | u16     | u16   | u32   | u64    | u64  | u64 | u64     | u32  |
//	+-------+---------+-------+-------+--------+------+-----+---------+------+
//	then logs × | log ID u64 | min LSN u64 | max LSN u64 | entries u64 | refs u32 | records u32 |
//	then a CRC32C (u32) of everything before it;
//	then each log's refs, in the log table's order, each
//	| min LSN u64 | max LSN u64 | first block u32 | blocks u32 |
//	(the batch's aligned offset and span in units of align, and the log's
//	LSN range in it), in write order;
//	magic "DWALIDX\x00"; end is where the segment's log ends.
//
//	then the records of each log, in the log table's order, each
//	| kind u32 | block u32 | LSN u64 | data length u32 | data |
//	(the block of its batch); then a CRC32C (u32) of the refs and records.
//
// A segment of one log lists its entries as log 0's. The index is trusted
// only when it names the segment's ID, salt and alignment and agrees with
// its .meta, and a batch read through it is checked as a scan checks it.
//
// The log-state record, log.state: the checkpoint of every log's state,
// written at every seal and at Close (version 2):
//
//	+----------+---------+-------+------+-------+--------+
//	| magic    | version | flags | logs | floor | covers |
//	| 8 B      | u16     | u16   | u32  | u64   | u64    |
//	+----------+---------+-------+------+-------+--------+
//	then logs × (by ascending ID)
//	| log ID u64 | first u64 | base segment u64 | base offset u64 | cuts u32 | moves u32 | user len u32 | 0 u32 |
//	  then cuts × | after u64 | below segment u64 | below offset u64 |
//	  then moves × | through u64 | below segment u64 | below offset u64 |
//	  then the user record
//	then a CRC32C (u32) of every byte before it. magic "DWALSTAT".
//
// Version 1 (written before sets) held one log's state, its positions
// segment starts; it reads as log 0's. A position is a batch's segment and
// offset. An entry with LSN l of log L in the batch at position p is
// deleted when l < first, or p < base, or a cut has p < below and
// l > after, or a move has p < below and l <= through (LogState.Dead and
// the methods beside it: the one statement of the rule). The checkpoint
// covers the records of the segments below covers: Open applies it, then
// the records of the segments from covers on (from their index files, or
// a scan), so a segment holding records may go only once a durable
// checkpoint covers it. New segments get IDs of at least floor. The record
// is replaced atomically (temp file, fsync, rename, directory fsync), so a
// crash leaves the old record or the new one, whole.
//
// An end-of-log record, NNNNNN.log.end, is 8 bytes (the offset where the
// segment's log ends whatever follows, u64) and its CRC32C (u32).
//
// NB: the constants marked "never change" fix the bytes on disk: directories
// written by an older build must keep opening. A new layout gets a new
// Version.
package segment

import "errors"

// Sentinel errors, re-exported by package engine under the same names.
var (
	// ErrCorrupt: bytes that no crash can explain.
	ErrCorrupt = errors.New("dwal: corrupt segment")
	// ErrUnsupportedFormat: a segment written by a newer dwal.
	ErrUnsupportedFormat = errors.New("dwal: unsupported segment format")
	// ErrDecrypt: an encrypted batch could not be decrypted (wrong or missing key,
	// or bytes altered or moved).
	ErrDecrypt = errors.New("dwal: cannot decrypt")
	// ErrBadHeader marks a header block that is not a dwal segment header
	// (wrong magic, CRC or alignment). One written by a newer dwal gives
	// ErrUnsupportedFormat instead.
	ErrBadHeader = errors.New("bad segment header")
)
