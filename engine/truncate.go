package engine

import (
	"fmt"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// TruncateAfter deletes every entry with LSN > lsn, exact to the entry,
// without rewriting a byte of what stays: Replay, Read, Bounds, recovery
// and the inspect tools no longer see them, and no crash brings them back.
// The cut is a record written to the log and synced: it deletes what the
// batches written before it hold, never what later ones do, so the writes
// after it may carry the same LSNs. When it leaves no entry at all the log
// is as new: the next write may carry any LSN (a first LSN set by
// DeleteBefore no longer holds). Nothing to delete (no live entry above
// lsn) changes nothing. It is durable when it returns nil. Writes racing
// it are cut when their batch comes before the record's.
func (c *Coordinator) TruncateAfter(lsn LSN) error { return c.truncateAfter(0, lsn) }

// truncateAfter is TruncateAfter of log.
func (c *Coordinator) truncateAfter(log uint64, lsn LSN) error {
	v := c.state.view(log)
	v.rec.Lock() // a rewrite of the log must not copy what the cut deletes
	defer v.rec.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	first, last, ok, err := c.bounds(log)
	if err != nil {
		return err
	}
	if !ok || last <= lsn {
		return nil
	}
	kind := segment.KindTruncate
	if first > lsn {
		kind = segment.KindTruncateAll
	}
	if err := c.writeRecord(log, kind, lsn, nil); err != nil {
		return fmt.Errorf("dwal: log %d: truncate after LSN %d: %w", log, lsn, err)
	}
	return nil
}
