package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// Group commit: Append queues an entry and waits; one committer goroutine
// takes everything queued when the previous batch's write+sync completes
// (no timer: the batch closes when the disk is ready for the next one, or at
// groupBatchBytes), writes it as one synced batch and tells every waiter.
// Batches settle in order: when a waiter is told success, every earlier
// batch is durable too (its waiters may still be waking up). Batch order is
// LSN order for callers that append in LSN order.

// groupBatchBytes caps the entry bytes of one group-commit batch; a larger
// single entry gets a batch of its own.
const groupBatchBytes = 4 << 20

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

type appendReq struct {
	e     segment.Entry
	state atomic.Int32
	done  chan error // buffered 1
}

type groupCommit struct {
	c       *Coordinator
	mu      sync.Mutex
	queue   []*appendReq
	qbytes  int // entry bytes queued
	closed  bool
	running bool
	busy    int           // batches handed to workers and not finished
	last    int           // entries in the last batch launched
	wake    chan struct{} // buffered 1: an arrival or a finished batch
	stopped chan struct{}
	jobs    chan *groupJob
	workers sync.WaitGroup
	depth   int // batches in flight at most (Config.GroupCommitDepth)
	reqs    sync.Pool
	jobPool sync.Pool
}

// groupJob is one batch on its way from the committer to a worker.
type groupJob struct {
	reqs []*appendReq
	f    *flight
	st   FlushStats
	err  error // from begin
}

func newGroupCommit(c *Coordinator) *groupCommit {
	d := c.cfg.GroupCommitDepth
	g := &groupCommit{c: c, depth: d, wake: make(chan struct{}, 1), stopped: make(chan struct{}), jobs: make(chan *groupJob, d)}
	g.reqs.New = func() any { return &appendReq{done: make(chan error, 1)} }
	g.jobPool.New = func() any { return &groupJob{} }
	return g
}

func (g *groupCommit) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Append writes one entry and returns once it is durable (nil), or with the
// error of its batch, or with ctx.Err() if ctx ends while the entry is still
// queued (once its batch is being written, Append waits for the outcome).
// Many goroutines may call it at once; their entries share batches and syncs.
func (c *Coordinator) Append(ctx context.Context, lsn LSN, data []byte) error {
	return c.appendData(ctx, 0, lsn, data)
}

// appendData is Append of log.
func (c *Coordinator) appendData(ctx context.Context, log uint64, lsn LSN, data []byte) error {
	return c.appendEntry(ctx, segment.Entry{Log: log, LSN: uint64(lsn), Data: data})
}

// appendTo is appendData of a set's log v, through its gate: a rewrite of
// the log waits for this entry, or it for the rewrite.
func (c *Coordinator) appendTo(ctx context.Context, v *logView, lsn LSN, data []byte) error {
	v.gate.RLock()
	defer v.gate.RUnlock()
	return c.appendEntry(ctx, segment.Entry{Log: v.id, LSN: uint64(lsn), Data: data})
}

// appendEntry writes entry e (data or a record) through group commit and
// returns once it is durable (nil) or failed; see Append.
func (c *Coordinator) appendEntry(ctx context.Context, e segment.Entry) error {
	if e.Kind == segment.KindData && len(e.Data) > c.cfg.MaxEntrySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrEntryTooLarge, len(e.Data), c.cfg.MaxEntrySize)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g := c.group
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	if len(g.queue) == 0 && g.busy == 0 {
		// Nothing queued, nothing in flight: this caller's entry is the whole
		// batch, so write it here rather than hand it to the committer and a
		// worker (two goroutine hops). It counts as the batch in flight, so
		// entries arriving meanwhile queue and launch as the next batch.
		g.busy++
		g.last = 1
		g.mu.Unlock()
		_, err := c.writeBatch(1, func(int) segment.Entry { return e }, true)
		g.mu.Lock()
		g.busy--
		g.mu.Unlock()
		g.signal()
		return err
	}
	r := g.reqs.Get().(*appendReq)
	r.e = e
	r.state.Store(reqQueued)
	g.queue = append(g.queue, r)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.qbytes += len(e.Data)
	g.mu.Unlock()
	g.signal()
	select {
	case err := <-r.done:
		r.e = segment.Entry{}
		g.reqs.Put(r)
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			// The committer drops it; it is not reused.
			return ctx.Err()
		}
		err := <-r.done
		r.e = segment.Entry{}
		g.reqs.Put(r)
		return err
	}
}

// run is the committer: it forms batches and reserves them in queue order,
// and hands each to a worker that writes it and tells its waiters. A batch
// is launched when nothing is in flight, or when as many entries are queued
// as the last batch held (another full group formed while the disk was
// busy), or groupBatchBytes are queued; at most g.depth are in flight.
func (g *groupCommit) run() {
	defer close(g.stopped)
	for range g.depth {
		g.workers.Add(1)
		go g.work()
	}
	defer func() {
		close(g.jobs)
		g.workers.Wait()
	}()
	for {
		g.mu.Lock()
		for !g.closed && !g.ready() {
			g.mu.Unlock()
			<-g.wake
			g.mu.Lock()
		}
		if g.closed {
			for _, r := range g.queue {
				if r.state.CompareAndSwap(reqQueued, reqTaken) {
					r.done <- ErrClosed
				}
			}
			clear(g.queue)
			g.queue = g.queue[:0]
			g.mu.Unlock()
			return
		}
		j := g.jobPool.Get().(*groupJob)
		n, bytes := 0, 0
		for n < len(g.queue) && (n == 0 || bytes+len(g.queue[n].e.Data) <= groupBatchBytes) {
			r := g.queue[n]
			bytes += len(r.e.Data)
			n++
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				j.reqs = append(j.reqs, r)
			}
		}
		rest := copy(g.queue, g.queue[n:])
		clear(g.queue[rest:])
		g.queue = g.queue[:rest]
		g.qbytes -= bytes
		if len(j.reqs) == 0 { // all cancelled
			g.mu.Unlock()
			g.jobPool.Put(j)
			continue
		}
		g.busy++
		g.last = len(j.reqs)
		g.mu.Unlock()
		reqs := j.reqs
		j.f, j.st, j.err = g.c.begin(len(reqs), func(i int) segment.Entry { return reqs[i].e }, true)
		g.jobs <- j
	}
}

// ready reports whether the committer should launch a batch now.
func (g *groupCommit) ready() bool {
	if len(g.queue) == 0 || g.busy >= g.depth {
		return false
	}
	return g.busy == 0 || len(g.queue) >= g.last || g.qbytes >= groupBatchBytes
}

// work writes the batches the committer reserved and tells their waiters.
func (g *groupCommit) work() {
	defer g.workers.Done()
	for j := range g.jobs {
		err := j.err
		if err == nil {
			_, err = g.c.finish(j.f, j.st)
		}
		// Let the committer launch the next batch before waking this
		// batch's waiters: the disk works while they run.
		g.mu.Lock()
		g.busy--
		g.mu.Unlock()
		g.signal()
		for _, r := range j.reqs {
			r.done <- err
		}
		clear(j.reqs)
		j.reqs, j.f, j.err = j.reqs[:0], nil, nil
		g.jobPool.Put(j)
	}
}

// close fails what is queued with ErrClosed and waits for the committer.
func (g *groupCommit) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	running := g.running
	g.mu.Unlock()
	g.signal()
	if running {
		<-g.stopped
	}
}
