// Package segment is dwal's on-disk format, and only that: the names of the
// files in a log directory, the segment header, the batch and entry codec,
// the .meta and end-of-log records, the one directory listing, and the
// scanner that finds where a segment's log ends. The engine writes with it
// and recovers with it; the inspection tools read with it, so "where the log
// ends" means the same thing everywhere.
//
// It knows files only through package vfs and LSNs only as uint64. The
// layout itself (the diagram) is documented in package engine, with the
// durability contract it serves.
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
