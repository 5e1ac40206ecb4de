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
//	then, in format (version) 2 only, from byte 44:
//	+--------+----------+--------+
//	| key ID | key salt | CRC32C |
//	| u32    | 16 B     | u32    |
//	+--------+----------+--------+
//	then zeros to A. magic "DWALSEG\x00"; each CRC32C (Castagnoli) is of
//	every byte before it; flags bit 0 (FlagEncrypted): entries are
//	encrypted by the log's cipher. Plain segments are written in format 1,
//	encrypted ones in format 2, each under a key of its own derived from
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
//	each entry: | length u32 | LSN u64 | bytes |
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
//	then logs × | log ID u64 | min LSN u64 | max LSN u64 | entries u64 | refs u32 | flags u32 |
//	then a CRC32C (u32) of everything before it;
//	then each log's refs, in the log table's order, each
//	| min LSN u64 | max LSN u64 | first block u32 | blocks u32 |
//	(the batch's aligned offset and span in units of align, and the log's
//	LSN range in it), in write order; then a CRC32C (u32) of the refs.
//	magic "DWALIDX\x00"; end is where the segment's log ends.
//
// A segment of one log lists its entries as log 0's. The index is trusted
// only when it names the segment's ID, salt and alignment and agrees with
// its .meta, and a batch read through it is checked as a scan checks it.
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
// or a cut has s < below and l > after (State.Dead and the methods beside
// it: the one statement of the rule). New segments get IDs of at least
// floor, so a cut never reaches a segment written after it. The record is
// replaced atomically (temp file, fsync, rename, directory fsync), so a
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
