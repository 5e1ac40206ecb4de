package bench

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrFunnelClosed is returned by Commit after Close.
var ErrFunnelClosed = errors.New("bench: funnel closed")

// Funnel turns concurrent durable commits into batches saved by one
// goroutine, the way a raft node (etcd's raftNode, hashicorp/raft's leader
// loop) or a WAL flush thread (Card 1's FlushThread) feeds a log that is not
// itself safe for concurrent writers: the loop waits for a first request,
// takes whatever else is queued (up to the caps, as hashicorp/raft's
// MaxAppendEntries does), saves the batch with one sync, and answers every
// waiter. One batch is in flight at a time.
type Funnel struct {
	save       func(data [][]byte) error
	maxEntries int // 0: no cap
	maxBytes   int // 0: no cap
	reqs       chan *funnelReq
	pool       sync.Pool
	batches    atomic.Uint64
	closeOnce  sync.Once
	quit       chan struct{}
	done       chan struct{}
}

type funnelReq struct {
	data []byte
	done chan error
}

// NewFunnel starts the loop; save writes one batch durably (called by the
// loop goroutine only; the slices are valid until it returns).
func NewFunnel(save func(data [][]byte) error, maxEntries, maxBytes int) *Funnel {
	f := &Funnel{save: save, maxEntries: maxEntries, maxBytes: maxBytes,
		reqs: make(chan *funnelReq, 4096), quit: make(chan struct{}), done: make(chan struct{})}
	f.pool.New = func() any { return &funnelReq{done: make(chan error, 1)} }
	go f.loop()
	return f
}

// Commit queues data and waits until its batch is saved.
func (f *Funnel) Commit(data []byte) error {
	select {
	case <-f.quit:
		return ErrFunnelClosed
	default:
	}
	r := f.pool.Get().(*funnelReq)
	r.data = data
	select {
	case f.reqs <- r:
	case <-f.quit:
		return ErrFunnelClosed
	}
	var err error
	select {
	case err = <-r.done:
	case <-f.done:
		// The loop has ended: it answered r while draining, or never saw it
		// (then r stays unanswered in the queue and is not reused).
		select {
		case err = <-r.done:
		default:
			return ErrFunnelClosed
		}
	}
	r.data = nil
	f.pool.Put(r)
	return err
}

// Batches counts the batches saved so far.
func (f *Funnel) Batches() uint64 { return f.batches.Load() }

// Close stops the loop after the batch in flight; requests still queued get
// ErrFunnelClosed.
func (f *Funnel) Close() {
	f.closeOnce.Do(func() { close(f.quit) })
	<-f.done
}

func (f *Funnel) loop() {
	defer close(f.done)
	var batch []*funnelReq
	var data [][]byte
	for {
		var first *funnelReq
		select {
		case first = <-f.reqs:
		case <-f.quit:
			for {
				select {
				case r := <-f.reqs:
					r.done <- ErrFunnelClosed
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		data = append(data[:0], first.data)
		bytes := len(first.data)
	drain:
		for f.maxEntries == 0 || len(batch) < f.maxEntries {
			select {
			case r := <-f.reqs:
				batch = append(batch, r)
				data = append(data, r.data)
				bytes += len(r.data)
				if f.maxBytes > 0 && bytes >= f.maxBytes {
					break drain
				}
			default:
				break drain
			}
		}
		err := f.save(data)
		if err == nil {
			f.batches.Add(1)
		}
		for _, r := range batch {
			r.done <- err
		}
		clear(batch)
		clear(data)
	}
}
