package engine

import (
	"runtime"
	"sync"
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
	done *completionState // nil for async entries
}

// Completion is the waiting side of a sync entry.
type Completion struct {
	st *completionState
}

type completionState struct {
	once sync.Once
	ch   chan struct{}
	set  atomic.Bool
	err  error
}

func (s *completionState) finish(err error) {
	s.once.Do(func() {
		s.err = err
		s.set.Store(true)
		close(s.ch)
	})
}

// NewAsyncEntry makes an entry nobody waits for.
func NewAsyncEntry(lsn LSN, data []byte) *PendingEntry {
	return &PendingEntry{LSN: lsn, Data: data}
}

// NewSyncEntry makes an entry and the Completion its writer waits on.
func NewSyncEntry(lsn LSN, data []byte) (*PendingEntry, *Completion) {
	st := &completionState{ch: make(chan struct{})}
	e := &PendingEntry{LSN: lsn, Data: data, done: st}
	// NB: the cleanup must not reference e itself, or e never becomes
	// unreachable; it holds only the shared state.
	runtime.AddCleanup(e, func(s *completionState) { s.finish(ErrDropped) }, st)
	return e, &Completion{st: st}
}

// complete tells the entry's Completion (if any) the outcome.
func (e *PendingEntry) complete(err error) {
	if e != nil && e.done != nil {
		e.done.finish(err)
	}
}

// Wait blocks until the entry's batch is durable (nil) or failed (its error).
func (c *Completion) Wait() error {
	<-c.st.ch
	return c.st.err
}

// IsComplete reports whether the outcome is known.
func (c *Completion) IsComplete() bool { return c.st.set.Load() }

// Done is closed when the outcome is known (for select).
func (c *Completion) Done() <-chan struct{} { return c.st.ch }

// Err returns the outcome once Done is closed (nil before).
func (c *Completion) Err() error {
	if !c.IsComplete() {
		return nil
	}
	return c.st.err
}
