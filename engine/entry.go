package engine

import (
	"runtime"
	"sync/atomic"
)

// PendingEntry is one record handed to Flush: its LSN, its bytes and, for a
// sync entry, the Completion to tell. Flush tells every entry it is given
// success or failure exactly once; an entry dropped without ever reaching
// Flush (garbage collected) tells its Completion ErrDropped, so no waiter is
// left hanging.
type PendingEntry struct {
	LSN  LSN
	Data []byte
	done *Completion // nil for async entries
}

// Completion is the waiting side of a sync entry.
type Completion struct {
	claimed atomic.Bool // the outcome is being set: later finishes do nothing
	set     atomic.Bool // err is final and ch closed
	ch      chan struct{}
	err     error
}

// finish sets the outcome once; later calls do nothing.
func (c *Completion) finish(err error) {
	if !c.claimed.CompareAndSwap(false, true) {
		return
	}
	c.err = err
	c.set.Store(true)
	close(c.ch)
}

// NewAsyncEntry makes an entry nobody waits for.
func NewAsyncEntry(lsn LSN, data []byte) *PendingEntry {
	return &PendingEntry{LSN: lsn, Data: data}
}

// NewSyncEntry makes an entry and the Completion its writer waits on.
func NewSyncEntry(lsn LSN, data []byte) (*PendingEntry, *Completion) {
	c := &Completion{ch: make(chan struct{})}
	e := &PendingEntry{LSN: lsn, Data: data, done: c}
	// NB: the cleanup must not reference e itself, or e never becomes
	// unreachable; it holds only the Completion.
	runtime.AddCleanup(e, dropped, c)
	return e, c
}

// dropped tells the Completion of an entry garbage collected before it
// reached Flush.
func dropped(c *Completion) { c.finish(ErrDropped) }

// complete tells the entry's Completion (if any) the outcome.
func (e *PendingEntry) complete(err error) {
	if e != nil && e.done != nil {
		e.done.finish(err)
	}
}

// Wait blocks until the entry's batch is durable (nil) or failed (its error).
func (c *Completion) Wait() error {
	<-c.ch
	return c.err
}

// IsComplete reports whether the outcome is known.
func (c *Completion) IsComplete() bool { return c.set.Load() }

// Done is closed when the outcome is known (for select).
func (c *Completion) Done() <-chan struct{} { return c.ch }

// Err returns the outcome once Done is closed (nil before).
func (c *Completion) Err() error {
	if !c.IsComplete() {
		return nil
	}
	return c.err
}
