package engine

import (
	"sync"
	"time"

	"github.com/dwal-project/dwal/engine/internal/segment"
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
//
// NB: a request while one is pending changes nothing: the first woke every
// waiter, and a Wait that starts while it is pending returns at once. So
// many producers requesting at once (Card 1's way: each queues an entry and
// requests) allocate one channel per Take, not one each.
func (s *FlushSignal) Request() {
	s.mu.Lock()
	if !s.requested {
		s.requested = true
		close(s.ch)
		s.ch = make(chan struct{})
	}
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
	s.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	return s.waitTimer(t, timeout)
}

// waitTimer is Wait with the caller's timer (stopped or expired), which it
// resets to timeout and leaves stopped or expired: a loop that waits again
// and again allocates no timer per wait.
func (s *FlushSignal) waitTimer(t *time.Timer, timeout time.Duration) bool {
	s.mu.Lock()
	if s.requested {
		s.mu.Unlock()
		return true
	}
	ch := s.ch
	s.mu.Unlock()
	t.Reset(timeout)
	select {
	case <-ch:
		t.Stop()
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requested
}

// FlushThread is the Card 1 background flusher: every interval, or at once
// on RequestFlush, it drains entries and writes them as one synced batch.
// It shares the write pipeline with Append: drained entries are reserved as
// a batch in drain order and written by one of Config.GroupCommitDepth
// workers, so the next drain and reservation need not wait for the previous
// batch's sync. As Append's committer does, it launches a batch when nothing
// is in flight, or once as many entries are pending as the last batch held
// (another full group formed while the disk was busy); a finished batch
// wakes it. Batches settle in reservation order, as every batch does: when
// an entry is told success, every entry drained before it is durable.
type FlushThread struct {
	c        *Coordinator
	drain    func() []*PendingEntry
	interval time.Duration
	signal   *FlushSignal
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	jobs     chan *flushJob // reserved batches, to the workers
	free     chan *flushJob // jobs not in flight: at most depth are
	workers  sync.WaitGroup
	pending  []*PendingEntry // drained, not yet launched (the run goroutine's)
	last     int             // entries in the last batch launched
}

// flushJob is one drained batch between its reservation and its outcome.
type flushJob struct {
	entries []*PendingEntry
	f       *flight
	st      FlushStats
}

// StartFlushThread starts a flusher that calls drain every interval (0 means
// Config.FlushInterval) or on RequestFlush, and flushes what it returns with
// sync. Errors are logged through Config.Logger and given to each entry's
// Completion, as Flush does.
func StartFlushThread(c *Coordinator, drain func() []*PendingEntry, interval time.Duration) *FlushThread {
	if interval <= 0 {
		interval = c.cfg.FlushInterval
	}
	depth := c.cfg.GroupCommitDepth
	t := &FlushThread{
		c:        c,
		drain:    drain,
		interval: interval,
		signal:   NewFlushSignal(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		jobs:     make(chan *flushJob, depth),
		free:     make(chan *flushJob, depth),
	}
	for range depth {
		t.free <- &flushJob{}
		t.workers.Add(1)
		go t.work()
	}
	go t.run()
	return t
}

func (t *FlushThread) run() {
	defer close(t.done)
	defer func() {
		close(t.jobs)
		t.workers.Wait() // every batch in flight settled
	}()
	timer := time.NewTimer(t.interval)
	timer.Stop()
	for {
		select {
		case <-t.stop:
			// Final flush of what is left; Shutdown waits for it.
			t.flushOnce()
			return
		default:
		}
		t.signal.waitTimer(timer, t.interval)
		t.signal.Take()
		t.pending = append(t.pending, t.drain()...)
		// NB: only when a slot is free. Launching into a full pipeline
		// would wait for a slot holding the entries drained so far, and
		// those arriving meanwhile would miss the batch: a batch formed
		// when its write can start holds everything queued by then.
		if n := len(t.pending); n > 0 && len(t.free) > 0 && (len(t.free) == cap(t.free) || n >= t.last) {
			t.launch()
		}
	}
}

// flushOnce drains and launches everything pending (at Shutdown).
func (t *FlushThread) flushOnce() {
	t.pending = append(t.pending, t.drain()...)
	if len(t.pending) > 0 {
		t.launch()
	}
}

// launch reserves the pending entries as one batch and hands it to a worker
// (waiting for one when depth batches are in flight).
func (t *FlushThread) launch() {
	j := <-t.free
	j.entries = append(j.entries[:0], t.pending...)
	clear(t.pending)
	t.pending = t.pending[:0]
	t.last = len(j.entries)
	entries := j.entries
	f, st, err := t.c.begin(len(entries), func(i int) segment.Entry {
		return segment.Entry{LSN: uint64(entries[i].LSN), Data: entries[i].Data}
	}, true)
	if err != nil {
		t.settled(entries, err)
		clear(j.entries)
		t.free <- j
		return
	}
	j.f, j.st = f, st
	t.jobs <- j
}

// work writes reserved batches and tells their entries. As Append's
// workers do, it frees the batch's slot and lets the next batch launch
// before it wakes this batch's waiters: the disk works while they run.
func (t *FlushThread) work() {
	defer t.workers.Done()
	var spare []*PendingEntry
	for j := range t.jobs {
		_, err := t.c.finish(j.f, j.st)
		entries := j.entries
		j.entries, j.f, j.st = spare[:0], nil, FlushStats{}
		t.free <- j
		t.signal.Request() // a slot is free: launch what is pending
		t.settled(entries, err)
		clear(entries)
		spare = entries[:0]
	}
}

func (t *FlushThread) settled(entries []*PendingEntry, err error) {
	for _, e := range entries {
		e.complete(err)
	}
	if err != nil {
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
