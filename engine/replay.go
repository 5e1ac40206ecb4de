package engine

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// Replay calls fn for every live entry (not deleted by DeleteBefore or
// TruncateAfter) with LSN >= from, in write order: segment
// by segment, batch by batch, entry by entry. It reads what was written when
// it starts (later writes are not seen) and stops at the end of each
// segment's log; it returns fn's first error, or an error wrapping ErrCorrupt
// when a sealed segment holds fewer or more entries than its .meta says. The
// bytes given to fn are only valid during the call.
func (c *Coordinator) Replay(from LSN, fn func(LSN, []byte) error) error {
	p := &c.pipe
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	ids, err := c.segmentIDs()
	st := c.state.log0() // what is deleted (DeleteBefore, TruncateAfter) is not replayed
	actID, actOff := uint64(0), int64(0)
	if p.act != nil {
		actID, actOff = p.act.id, p.act.settled
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	for _, id := range ids {
		meta, hasMeta := c.ReadSegmentMetadata(id)
		if hasMeta && meta.MaxLSN < from || st.Covers(segment.Whole(id), meta.format(), hasMeta) == segment.DeletesAll {
			continue
		}
		live := func(lsn LSN, b []byte) error {
			if st.Dead(segment.SegmentStart(id), uint64(lsn)) {
				return nil
			}
			return fn(lsn, b)
		}
		if err := c.replaySegment(id, id == actID, actOff, meta, hasMeta, from, live); err != nil {
			return err
		}
	}
	return nil
}

func (c *Coordinator) replaySegment(id uint64, isActive bool, actOff int64, meta SegmentMetadata, hasMeta bool, from LSN, fn func(LSN, []byte) error) error {
	name := segment.Name(id)
	f, err := c.fs.Open(name, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by retention or truncation since the listing
		}
		return fmt.Errorf("dwal: replay %s: %w", name, err)
	}
	defer f.Close()
	limit := actOff
	if !isActive {
		if limit, err = f.Size(); err != nil {
			return fmt.Errorf("dwal: replay %s: %w", name, err)
		}
	}
	sc, err := segment.Scan(f, c.align, limit, false, c.keys, func(lsn uint64, b []byte) error {
		if LSN(lsn) < from {
			return nil
		}
		return fn(LSN(lsn), b)
	})
	if err != nil {
		return err
	}
	if hasMeta && !isActive && metadataOf(sc.Meta) != meta {
		return segment.MetaMismatch(name, sc, meta.format())
	}
	return nil
}
