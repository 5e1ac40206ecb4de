package engine

import (
	"errors"
	"fmt"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// TruncateAfter deletes every entry with LSN > lsn, exact to the entry,
// without rewriting a byte of what stays: Replay, Read, Bounds, recovery
// and the inspect tools no longer see them, and no crash brings them back.
// It waits for the batches in flight, seals the active segment, durably
// records the cut, and the writes after it go to a fresh segment. When it
// leaves no entry at all the log is as new: the next write may carry any
// LSN (a first LSN set by DeleteBefore no longer holds). Nothing to delete
// (no live entry above lsn) changes nothing. It is durable when it returns
// nil. When the record's directory sync fails the log turns read-only
// (ErrReadOnly): whether the cut survives a crash is unknown, and a write
// into the fresh segment could otherwise sit beside an uncut suffix.
func (c *Coordinator) TruncateAfter(lsn LSN) error {
	c.state.write.Lock()
	defer c.state.write.Unlock()
	p := &c.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drain()
	if err := p.writable(); err != nil {
		return err
	}
	// Exact bounds, with every batch settled (nothing in flight). NB:
	// bounds takes no pipeline.mu (it may read index files and batches).
	first, last, ok, err := c.bounds()
	if err != nil {
		return err
	}
	if !ok || last <= lsn {
		return nil
	}
	below := first <= lsn
	if p.act != nil {
		c.rotate()
		if p.roErr != nil {
			return p.roErr
		}
	}
	r := p.curID.Load() + 1 // the next segment: what is written after the cut
	l := c.state.log0().Clone()
	if below {
		l.Cuts = append(l.Cuts, segment.Cut{After: uint64(lsn), Below: segment.SegmentStart(r)})
		l.Prune(segment.SegmentStart(c.lowestSegment()))
	} else {
		l = &segment.LogState{Base: segment.SegmentStart(r), User: l.User}
	}
	st := c.state.with0(l)
	st.Floor = max(st.Floor, r)
	if err := c.writeState(&st); err != nil {
		if errors.Is(err, errStateUnknown) {
			p.roErr = fmt.Errorf("%w: truncate after LSN %d: %w", ErrReadOnly, lsn, err)
			c.log.Error("dwal: turned read-only", "err", p.roErr)
		}
		return fmt.Errorf("dwal: truncate after LSN %d: %w", lsn, err)
	}
	c.applyState(&st)
	c.removeDeadLocked()
	return nil
}
