package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/align"
)

// The group-commit floor, floor-group: the obvious group commit, and no
// log format, over the floors' pre-zeroed O_DIRECT file. Writers enqueue
// their records and wait; one flusher goroutine takes everything queued,
// copies it back to back into one aligned buffer (zero-padded to the
// alignment), writes it with one pwrite at the next offset (wrapping
// around the file), makes it durable with one fdatasync and wakes every
// writer of the batch. It is what batching alone buys on this disk, the
// bar for a log's group commit at C writers, beside floor-pwrite and
// floor-pwritev2, whose writers each make their own write durable.

// floorGroupMaxBatch caps one batch's bytes (as dwal caps a group-commit
// batch); what is queued beyond it goes in the next batch.
const floorGroupMaxBatch = 4 << 20

// errFloorGroupClosed is returned by Commit and Flush after Close.
var errFloorGroupClosed = errors.New("floor-group: closed")

type floorGroupSystem struct{}

// FloorGroupSystem returns the group-commit floor.
func FloorGroupSystem() System { return floorGroupSystem{} }

func (floorGroupSystem) Name() string { return "floor-group" }

func (floorGroupSystem) Supports(workload string, _ int) (bool, string) {
	switch workload {
	case wlRotate, wlRotateNone:
		return false, "a floor has no segments"
	case wlReplay:
		return false, "a floor is write-only; fio's sequential read is the read floor"
	}
	return true, ""
}

func (floorGroupSystem) Open(cfg Config) (Log, error) {
	f, a, err := OpenPreZeroed(filepath.Join(cfg.Dir, "floor-group.dat"), floorFileSize)
	if err != nil {
		return nil, fmt.Errorf("floor-group: %w", err)
	}
	return newFloorGroupLog(f, a, floorFileSize), nil
}

// groupReq is one writer's records, waiting for their batch.
type groupReq struct {
	one  [1][]byte // Commit's record, so that it needs no slice of its own
	recs [][]byte
	n    int // bytes
	done chan error
}

type floorGroupLog struct {
	f     *os.File // owns fd
	fd    int
	align int
	size  int64 // of the file

	mu     sync.Mutex
	queue  []*groupReq // waiting for the flusher
	closed bool

	wake   chan struct{} // one token: the queue has work
	quit   chan struct{}
	exited chan struct{}
	reqs   sync.Pool // *groupReq

	// The flusher's own.
	buf   []byte // aligned, floorGroupMaxBatch
	off   int64  // where the next batch goes
	spare []*groupReq

	syncs   atomic.Uint64 // batches made durable
	records atomic.Uint64 // records in them
}

func newFloorGroupLog(f *os.File, a int, size int64) *floorGroupLog {
	l := &floorGroupLog{f: f, fd: int(f.Fd()), align: a, size: size,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{}),
		buf: align.Alloc(min(floorGroupMaxBatch, int(size)), a)}
	l.reqs.New = func() any { return &groupReq{done: make(chan error, 1)} }
	go l.flusher()
	return l
}

// submit queues r and waits until its batch is durable.
func (l *floorGroupLog) submit(r *groupReq) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errFloorGroupClosed
	}
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // a token is already there: the flusher will look again
	}
	return <-r.done
}

func (l *floorGroupLog) Commit(_ uint64, data []byte) error {
	r := l.reqs.Get().(*groupReq)
	r.one[0] = data
	r.recs, r.n = r.one[:], len(data)
	err := l.submit(r)
	r.one[0], r.recs = nil, nil
	l.reqs.Put(r)
	return err
}

func (l *floorGroupLog) Flush(_ uint64, entries [][]byte) error {
	r := l.reqs.Get().(*groupReq)
	r.recs, r.n = entries, 0
	for _, e := range entries {
		r.n += len(e)
	}
	err := l.submit(r)
	r.recs = nil
	l.reqs.Put(r)
	return err
}

// flusher is the one goroutine that writes: woken by a queued request, it
// takes the whole queue and writes it in as few batches as the buffer
// allows, then looks again; after Close it writes what is still queued
// and exits.
func (l *floorGroupLog) flusher() {
	defer close(l.exited)
	for {
		quitting := false
		select {
		case <-l.wake:
		case <-l.quit:
			quitting = true
		}
		l.mu.Lock()
		taken := l.queue
		l.queue = l.spare[:0]
		l.mu.Unlock()
		for rest := taken; len(rest) > 0; {
			rest = rest[l.writeBatch(rest):]
		}
		clear(taken)
		l.spare = taken[:0]
		if quitting {
			return
		}
	}
}

// writeBatch writes the longest prefix of reqs that fits the buffer as one
// durable batch, answers its writers and returns how many it took (a
// request too large for the buffer is answered with an error alone).
func (l *floorGroupLog) writeBatch(reqs []*groupReq) int {
	n, k := 0, 0
	for k < len(reqs) && n+reqs[k].n <= len(l.buf) {
		for _, rec := range reqs[k].recs {
			n += copy(l.buf[n:], rec)
		}
		k++
	}
	if k == 0 {
		reqs[0].done <- fmt.Errorf("floor-group: %d bytes do not fit a %d-byte batch", reqs[0].n, len(l.buf))
		return 1
	}
	err := l.write(n)
	if err == nil {
		l.syncs.Add(1)
		for _, r := range reqs[:k] {
			l.records.Add(uint64(len(r.recs)))
		}
	}
	for _, r := range reqs[:k] {
		r.done <- err
	}
	return k
}

// write makes buf[:n], zero-padded to the alignment, durable at the next
// offset: one pwrite, one fdatasync.
func (l *floorGroupLog) write(n int) error {
	up := align.Up(max(n, 1), l.align)
	clear(l.buf[n:up])
	if l.off+int64(up) > l.size {
		l.off = 0
	}
	if _, err := unix.Pwrite(l.fd, l.buf[:up], l.off); err != nil {
		return err
	}
	if err := unix.Fdatasync(l.fd); err != nil {
		return err
	}
	l.off += int64(up)
	return nil
}

func (l *floorGroupLog) Syncs() uint64 { return l.syncs.Load() }

// Close writes what is queued, stops the flusher and closes the file;
// later commits fail.
func (l *floorGroupLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errFloorGroupClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	<-l.exited
	return l.f.Close()
}
