package engine

import (
	"errors"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Sentinel errors. Test with errors.Is: the returned errors wrap them with
// the file, offset or cause.
var (
	// ErrClosed: the Coordinator (or FlushThread) was closed.
	ErrClosed = errors.New("dwal: closed")
	// ErrLocked: another process (or Coordinator) holds the directory's LOCK.
	ErrLocked = vfs.ErrLocked
	// ErrEntryTooLarge: an entry exceeds Config.MaxEntrySize; its whole batch
	// failed before anything was written.
	ErrEntryTooLarge = errors.New("dwal: entry too large")
	// ErrReadOnly: an earlier write or sync failed in a way that cannot be
	// rolled back; every later write fails with it (the message names the
	// cause and the LSN range whose fate is unknown). Reads still work;
	// reopening the directory runs recovery.
	ErrReadOnly = errors.New("dwal: read-only after an unrecoverable write failure")
	// ErrNoSpace: the file system is full. When it comes from preparing a
	// segment nothing was written and the call can be retried once space
	// returns.
	ErrNoSpace = vfs.ErrNoSpace
	// ErrDecrypt: an encrypted entry could not be decrypted (wrong or missing key, or
	// the bytes were altered or moved).
	ErrDecrypt = segment.ErrDecrypt
	// ErrCorrupt: a segment holds bytes that no crash can explain (a bad
	// header, a sealed segment that disagrees with its .meta).
	ErrCorrupt = segment.ErrCorrupt
	// ErrUnsupportedFormat: a segment was written by a newer dwal.
	ErrUnsupportedFormat = segment.ErrUnsupportedFormat
	// ErrBadConfig: Config holds an invalid value.
	ErrBadConfig = errors.New("dwal: bad config")
	// ErrDropped: a PendingEntry was garbage collected without being flushed.
	ErrDropped = errors.New("dwal: entry dropped without being flushed")
)
