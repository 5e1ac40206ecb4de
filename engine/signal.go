package engine

import (
	"sync"
	"time"
)

// FlushSignal is a sticky "flush now" request: Request sets it and wakes a
// waiter, Take clears it. Safe for concurrent use.
type FlushSignal struct {
	mu        sync.Mutex
	requested bool
	ch        chan struct{} // closed and replaced on every Request
}

// NewFlushSignal returns a signal with no request pending.
func NewFlushSignal() *FlushSignal { return &FlushSignal{ch: make(chan struct{})} }

// Request asks for a flush and wakes every waiter.
func (s *FlushSignal) Request() {
	s.mu.Lock()
	s.requested = true
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// Take reports whether a flush was requested, and clears the request.
func (s *FlushSignal) Take() bool {
	s.mu.Lock()
	r := s.requested
	s.requested = false
	s.mu.Unlock()
	return r
}

// Wait blocks until a flush is requested or timeout passes, and reports
// whether one is requested (it does not clear it).
func (s *FlushSignal) Wait(timeout time.Duration) bool {
	s.mu.Lock()
	if s.requested {
		s.mu.Unlock()
		return true
	}
	ch := s.ch
	s.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requested
}

// FlushThread is the Card 1 background flusher: every interval, or at once
// on RequestFlush, it drains entries and flushes them with sync.
type FlushThread struct {
	c        *Coordinator
	drain    func() []*PendingEntry
	interval time.Duration
	signal   *FlushSignal
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// StartFlushThread starts a flusher that calls drain every interval (0 means
// Config.FlushInterval) or on RequestFlush, and flushes what it returns with
// sync. Errors are logged through Config.Logger and given to each entry's
// Completion, as Flush does.
func StartFlushThread(c *Coordinator, drain func() []*PendingEntry, interval time.Duration) *FlushThread {
	if interval <= 0 {
		interval = c.cfg.FlushInterval
	}
	t := &FlushThread{
		c:        c,
		drain:    drain,
		interval: interval,
		signal:   NewFlushSignal(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go t.run()
	return t
}

func (t *FlushThread) run() {
	defer close(t.done)
	for {
		select {
		case <-t.stop:
			// Final flush of what is left; Shutdown waits for it.
			t.flushOnce()
			return
		default:
		}
		t.signal.Wait(t.interval)
		t.signal.Take()
		t.flushOnce()
	}
}

func (t *FlushThread) flushOnce() {
	entries := t.drain()
	if len(entries) == 0 {
		return
	}
	if _, err := t.c.Flush(entries, true); err != nil {
		t.c.log.Error("dwal: background flush failed", "entries", len(entries), "err", err)
	}
}

// RequestFlush asks for a flush now.
func (t *FlushThread) RequestFlush() { t.signal.Request() }

// Shutdown stops the thread after a final flush of what drain still returns,
// and waits for it. Safe to call more than once.
func (t *FlushThread) Shutdown() {
	t.once.Do(func() {
		close(t.stop)
		t.signal.Request()
	})
	<-t.done
}
