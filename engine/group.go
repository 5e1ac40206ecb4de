package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit: Append queues an entry and waits; one committer goroutine
// takes everything queued when the previous batch's write+sync completes
// (no timer: the batch closes when the disk is ready for the next one, or at
// groupBatchBytes), writes it as one synced batch and tells every waiter.
// Acknowledgements therefore follow batch order, and batch order is LSN
// order for callers that append in LSN order.

// groupBatchBytes caps the entry bytes of one group-commit batch; a larger
// single entry gets a batch of its own.
const groupBatchBytes = 4 << 20

const (
	reqQueued int32 = iota
	reqTaken
	reqCancelled
)

type appendReq struct {
	lsn   LSN
	data  []byte
	state atomic.Int32
	done  chan error // buffered 1
}

type groupCommit struct {
	c       *Coordinator
	mu      sync.Mutex
	queue   []*appendReq
	spare   []*appendReq
	closed  bool
	running bool
	wake    chan struct{} // buffered 1
	stopped chan struct{}
	reqs    sync.Pool
}

func newGroupCommit(c *Coordinator) *groupCommit {
	g := &groupCommit{c: c, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	g.reqs.New = func() any { return &appendReq{done: make(chan error, 1)} }
	return g
}

// Append writes one entry and returns once it is durable (nil), or with the
// error of its batch, or with ctx.Err() if ctx ends while the entry is still
// queued (once its batch is being written, Append waits for the outcome).
// Many goroutines may call it at once; their entries share batches and syncs.
func (c *Coordinator) Append(ctx context.Context, lsn LSN, data []byte) error {
	if len(data) > c.cfg.MaxEntrySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrEntryTooLarge, len(data), c.cfg.MaxEntrySize)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g := c.group
	r := g.reqs.Get().(*appendReq)
	r.lsn, r.data = lsn, data
	r.state.Store(reqQueued)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		g.reqs.Put(r)
		return ErrClosed
	}
	g.queue = append(g.queue, r)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		r.data = nil
		g.reqs.Put(r)
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			// The committer drops it; it is not reused.
			return ctx.Err()
		}
		err := <-r.done
		r.data = nil
		g.reqs.Put(r)
		return err
	}
}

func (g *groupCommit) run() {
	defer close(g.stopped)
	var batch []*appendReq
	for {
		g.mu.Lock()
		for len(g.queue) == 0 && !g.closed {
			g.mu.Unlock()
			<-g.wake
			g.mu.Lock()
		}
		if len(g.queue) == 0 && g.closed {
			g.mu.Unlock()
			return
		}
		batch = batch[:0]
		for _, r := range g.queue {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				batch = append(batch, r)
			}
		}
		clear(g.queue)
		g.queue, g.spare = g.spare[:0], g.queue
		closed := g.closed
		g.mu.Unlock()
		if closed {
			for _, r := range batch {
				r.done <- ErrClosed
			}
			continue
		}
		for len(batch) > 0 {
			n, bytes := 0, 0
			for n < len(batch) && (n == 0 || bytes+len(batch[n].data) <= groupBatchBytes) {
				bytes += len(batch[n].data)
				n++
			}
			part := batch[:n]
			_, err := g.c.writeBatch(n, func(i int) (LSN, []byte) { return part[i].lsn, part[i].data }, true)
			for _, r := range part {
				r.done <- err
			}
			batch = batch[n:]
		}
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
	select {
	case g.wake <- struct{}{}:
	default:
	}
	if running {
		<-g.stopped
	}
}
