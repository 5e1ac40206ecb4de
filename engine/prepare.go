package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// Segments are prepared off the hot path. While one segment fills, a
// background goroutine makes the next one ready under prepared-N.tmp:
// preallocated, its first chunk (aheadChunk) initialised (written once, so a
// later fdatasync into them commits no extent conversion), its header
// durable; once it is the active segment its frontier (frontier.go)
// initialises the rest ahead of the writes, or lets large batches claim
// their blocks, so bulk writes are not doubled. Where the recycler
// (recycle.go) has a spare file, the new segment is made from it instead of
// a new allocation: rotation then costs a rename and a directory sync.
//
// Measured on the machine of the README (4 KiB O_DIRECT write + fdatasync):
// ~200 µs into initialised blocks, ~300 µs into fallocated ones; on
// journaled ext4 ~460 µs vs ~1,560 µs.

// initPrepared says whether new segments' blocks are initialised at all (a
// seam for the benchmark that measures it).
var initPrepared = true

// prepared is a segment file ready to become the active segment.
type prepared struct {
	id        uint64
	name      string // its temporary name
	f         vfs.File
	hdr       segment.Header // as written into its first block
	size      int64
	encrypter SegmentCipher // encrypts its entries (nil: they are plain)
	inited    int64         // [0, inited) of the file is initialised (0: none, or init is off)
}

type preparer struct {
	c      *Coordinator
	mu     sync.Mutex
	cond   *sync.Cond
	want   uint64 // the ID asked for (0: none)
	busy   uint64 // the ID being prepared (0: none)
	ready  *prepared
	closed bool
	done   chan struct{}
}

func newPreparer(c *Coordinator) *preparer {
	p := &preparer{c: c, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.run()
	return p
}

// request asks for segment id to be prepared in the background.
func (p *preparer) request(id uint64) {
	p.mu.Lock()
	if !p.closed {
		p.want = id
		p.cond.Broadcast()
	}
	p.mu.Unlock()
}

func (p *preparer) run() {
	defer close(p.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for !p.closed && (p.want == 0 || p.ready != nil && p.ready.id == p.want) {
			p.cond.Wait()
		}
		if p.closed {
			return
		}
		id := p.want
		if p.ready != nil { // prepared for an ID no longer wanted
			p.discardLocked(p.ready)
			p.ready = nil
		}
		p.busy = id
		p.mu.Unlock()
		t0 := time.Now()
		s, err := p.c.makeSegment(id, initHead)
		p.mu.Lock()
		p.busy = 0
		if err != nil {
			p.c.ctr.prepErrors.Add(1)
			// The writer will prepare it inline and report the error then.
			p.c.log.Warn("dwal: background segment preparation failed", "segment", id, "err", err)
			if p.want == id {
				p.want = 0
			}
		} else {
			p.c.ctr.prepared.Add(1)
			p.c.ctr.prepLat.observe(time.Since(t0))
			p.ready = s
			p.c.log.Debug("dwal: segment prepared", "segment", id, "duration", time.Since(t0))
		}
		p.cond.Broadcast()
	}
}

// take returns segment id if it is prepared (waiting while it is being
// prepared), or nil.
func (p *preparer) take(id uint64) *prepared {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.busy == id { // preparing is short: a file, its head, a header
		p.cond.Wait()
	}
	if p.want == id {
		p.want = 0 // the caller prepares it; the goroutine must not start it too
	}
	if s := p.ready; s != nil && s.id == id {
		p.ready = nil
		return s
	}
	return nil
}

func (p *preparer) discardLocked(s *prepared) {
	s.f.Close()
	p.c.fs.Remove(s.name)
}

// close stops the goroutine. What it prepared stays on disk under its
// temporary name where files are reused (the recycler's rule): the next
// Open may reuse it for its first segment (recycler.adoptLeftover).
// Elsewhere it is removed.
func (p *preparer) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready != nil {
		if p.c.rec.reuses() {
			p.ready.f.Close()
		} else {
			p.discardLocked(p.ready)
		}
		p.ready = nil
	}
}

// How much of a new segment makeSegment initialises.
type initMode int

const (
	initNone initMode = iota // none: the active segment's frontier does it (or init is off)
	initHead                 // its first chunk (aheadChunk): the first commits into it
)

// makeSegment makes segment id ready under a temporary name: a spare file
// from the recycler (initialised as far as its previous life wrote it), or
// a new preallocated one with its blocks initialised as mode says (where
// the backend wants that, vfs.BlockIniter); then its header, synced.
func (c *Coordinator) makeSegment(id uint64, mode initMode) (*prepared, error) {
	size := c.segmentFileSize()
	name := segment.PreparedName(id)
	f, inited, ok := c.rec.take(name, size)
	if ok {
		c.ctr.recycled.Add(1)
	} else {
		var err error
		if f, inited, err = c.createSegment(id, name, size, mode); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*prepared, error) {
		f.Close()
		c.fs.Remove(name)
		return nil, fmt.Errorf("dwal: prepare segment %d: %w", id, err)
	}
	var saltb [8]byte
	if _, err := rand.Read(saltb[:]); err != nil {
		return fail(err)
	}
	h := segment.Header{Version: segment.Version3, Align: uint32(c.align), ID: id,
		Salt: binary.LittleEndian.Uint64(saltb[:]), Created: time.Now().UnixNano()}
	if c.oneLog {
		h.Flags |= segment.FlagOneLog
	}
	if err := c.newKeyHeader(&h); err != nil {
		return fail(err)
	}
	enc, err := c.segmentCipher(&h)
	if err != nil {
		return fail(err)
	}
	b := align.Alloc(c.align, c.align)
	h.Encode(b)
	// The header, the file's size and its allocation are durable before
	// the file can get its real name: a .log always starts with a header.
	if err := f.WriteAt(b, 0, vfs.Fdatasync); err != nil {
		return fail(err)
	}
	return &prepared{id: id, name: name, f: f, hdr: h, size: size, encrypter: enc, inited: inited}, nil
}

// createSegment creates and preallocates a new segment file under name,
// its blocks initialised as mode says, and returns how far they are.
func (c *Coordinator) createSegment(id uint64, name string, size int64, mode initMode) (vfs.File, int64, error) {
	f, err := c.fs.Create(name, size)
	if errors.Is(err, fs.ErrExist) {
		// A prepared file a Close left under this name (a Flush racing
		// that Close, say): it holds nothing acknowledged.
		c.fs.Remove(name)
		f, err = c.fs.Create(name, size)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("dwal: prepare segment %d (%d bytes): %w", id, size, err)
	}
	if mode != initHead || !initPrepared || !initBlocks(c.fs) {
		return f, 0, nil
	}
	inited, err := c.initHead(f, min(c.aheadChunk(), size))
	if err != nil {
		f.Close()
		c.fs.Remove(name)
		return nil, 0, fmt.Errorf("dwal: prepare segment %d: initialise blocks: %w", id, err)
	}
	return f, inited, nil
}

// segmentFileSize is the size of a new segment file.
func (e *env) segmentFileSize() int64 {
	return max(align.Up64(e.cfg.SegmentSize, e.align), 2*int64(e.align))
}

// initHead writes zeros over the first n bytes of f at once (made durable by
// the header's sync that follows) and returns n.
func (c *Coordinator) initHead(f vfs.File, n int64) (int64, error) {
	zeros := align.Alloc(align.Up(int(n), c.align), c.align)
	for off := int64(0); off < n; off += int64(len(zeros)) {
		if err := f.WriteAt(zeros[:min(int64(len(zeros)), n-off)], off, vfs.NoSync); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// WaitPrepared blocks until no segment preparation is pending (the next
// segment is ready, or nothing was asked for), or ctx ends. A process that
// wants its first writes to find initialised blocks (a latency benchmark,
// say) calls it after Open and Replay.
func (c *Coordinator) WaitPrepared(ctx context.Context) error {
	p := c.prep
	for {
		p.mu.Lock()
		idle := p.busy == 0 && (p.want == 0 || p.ready != nil && p.ready.id == p.want) || p.closed
		p.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// prepareFirst makes the first segment after Open ready, its first
// chunk (aheadChunk) initialised here (where the backend wants initialised
// blocks), so the first commits find initialised blocks; the active
// segment's frontier initialises the rest ahead of the writes. A failure is
// not Open's: the background preparer tries again, and the first write
// reports what still fails (ErrNoSpace, say).
func (c *Coordinator) prepareFirst() {
	id := c.pipe.curID.Load() + 1
	t0 := time.Now()
	s, err := c.makeSegment(id, initHead)
	if err != nil {
		c.log.Warn("dwal: cannot prepare the first segment", "segment", id, "err", err)
		c.prep.request(id)
		return
	}
	c.ctr.prepared.Add(1)
	c.ctr.prepLat.observe(time.Since(t0))
	c.prep.offer(s)
}

// offer hands a prepared segment to the preparer as the ready one.
func (p *preparer) offer(s *prepared) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready != nil {
		p.discardLocked(p.ready)
	}
	p.ready = s
	p.want = s.id
	p.cond.Broadcast()
}
