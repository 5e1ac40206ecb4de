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
// their blocks, so bulk writes are not doubled. A segment retired by
// retention or truncation is recycled instead of removed when possible: its
// blocks are initialised as far as this process saw them written or zeroed
// (all of them, or up to where a bulk writer's last batch ended), its
// frontier takes it from there, and the new header's salt makes its stale
// batches end the log. Rotation then costs a rename and a directory sync,
// not an allocation.
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
	salt      uint64
	size      int64
	encrypter SegmentCipher
	inited    int64 // [0, inited) of the file is initialised (0: none, or init is off)
}

type preparer struct {
	c       *Coordinator
	mu      sync.Mutex
	cond    *sync.Cond
	want    uint64 // the ID asked for (0: none)
	busy    uint64 // the ID being prepared (0: none)
	ready   *prepared
	recycle []retiredFile // retired segment files kept for reuse (at most one)
	closed  bool
	done    chan struct{}
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
			p.c.stats.prepErrors.Add(1)
			// The writer will prepare it inline and report the error then.
			p.c.log.Warn("dwal: background segment preparation failed", "segment", id, "err", err)
			if p.want == id {
				p.want = 0
			}
		} else {
			p.c.stats.prepared.Add(1)
			p.c.stats.prepLat.observe(time.Since(t0))
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

// retiredFile is a retired segment file kept for reuse.
type retiredFile struct {
	name   string // recycle-N.tmp
	inited int64  // [0, inited) of it is initialised
}

// takeRecycled returns a retired segment file to reuse, or one with no
// name.
func (p *preparer) takeRecycled() retiredFile {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.recycle) == 0 {
		return retiredFile{}
	}
	n := p.recycle[len(p.recycle)-1]
	p.recycle = p.recycle[:len(p.recycle)-1]
	return n
}

// keep offers a retired segment (already renamed to r.name) for reuse; it
// reports false when none is wanted (the caller removes it).
func (p *preparer) keep(r retiredFile) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.recycle) > 0 {
		return false
	}
	p.recycle = append(p.recycle, r)
	return true
}

func (p *preparer) discardLocked(s *prepared) {
	s.f.Close()
	p.c.fs.Remove(s.name)
}

// close stops the goroutine. What it prepared or kept stays on disk under
// its temporary name where files are recycled (no page cache): the next
// Open reuses one such file for its first segment (see pickReusable) and
// removes the others. Elsewhere it is removed.
func (p *preparer) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := !pageCache(p.c.fs)
	if p.ready != nil {
		if keep {
			p.ready.f.Close()
		} else {
			p.discardLocked(p.ready)
		}
		p.ready = nil
	}
	if !keep {
		for _, r := range p.recycle {
			p.c.fs.Remove(r.name)
		}
	}
	p.recycle = nil
}

// How much of a new segment makeSegment initialises.
type initMode int

const (
	initNone initMode = iota // none: the active segment's frontier does it (or init is off)
	initHead                 // its first chunk (aheadChunk): the first commits into it
)

// makeSegment makes segment id ready under a temporary name: a recycled
// file (initialised as far as its previous life wrote it), or a new
// preallocated one with its blocks initialised as mode says (where the
// backend wants that, vfs.BlockIniter); then its header, synced.
func (c *Coordinator) makeSegment(id uint64, mode initMode) (*prepared, error) {
	size := c.segmentFileSize()
	name := segment.PreparedName(id)
	var f vfs.File
	var inited int64
	if old := c.prep.takeRecycled(); old.name != "" {
		var err error
		if old.name != name { // a file kept from an earlier process may have it already
			err = c.fs.Rename(old.name, name)
		}
		if err == nil {
			f, err = c.fs.Open(name, false)
			if err != nil {
				c.fs.Remove(name)
				f = nil
			} else if sz, err := f.Size(); err != nil || sz < size {
				f.Close()
				c.fs.Remove(name)
				f = nil
			} else {
				c.stats.recycled.Add(1)
				inited = min(old.inited, size)
			}
		} else {
			c.fs.Remove(old.name)
		}
	}
	if f == nil {
		var err error
		f, err = c.fs.Create(name, size)
		if errors.Is(err, fs.ErrExist) {
			// A prepared file a Close left under this name (a Flush racing
			// that Close, say): it holds nothing acknowledged.
			c.fs.Remove(name)
			f, err = c.fs.Create(name, size)
		}
		if err != nil {
			return nil, fmt.Errorf("dwal: prepare segment %d (%d bytes): %w", id, size, err)
		}
		if mode == initHead && initPrepared && initBlocks(c.fs) {
			var err error
			if inited, err = c.initHead(f, min(c.aheadChunk(), size)); err != nil {
				f.Close()
				c.fs.Remove(name)
				return nil, fmt.Errorf("dwal: prepare segment %d: initialise blocks: %w", id, err)
			}
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
	h := segment.Header{Version: segment.Version1, Align: uint32(c.align), ID: id,
		Salt: binary.LittleEndian.Uint64(saltb[:]), Created: time.Now().UnixNano()}
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
	return &prepared{id: id, name: name, f: f, salt: h.Salt, size: size, encrypter: enc, inited: inited}, nil
}

// segmentFileSize is the size of a new segment file.
func (c *Coordinator) segmentFileSize() int64 {
	return max(align.Up64(c.cfg.SegmentSize, c.align), 2*int64(c.align))
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

// retire removes segment id and its .meta (under mu). With a backend that
// bypasses the page cache, when id is known to be initialised from its
// start (c.warm, or for a segment an earlier process wrote, the file
// system's extent map), the file is renamed to recycle-N.tmp instead and kept in
// c.retired: the next syncDir makes the rename durable and only then
// offers the file for reuse. NB: reusing it before would write a new header
// into a file that a crash could bring back under its old name.
func (c *Coordinator) retire(id uint64) error {
	c.unindexSegment(id)
	recycled := ""
	inited, warm := c.warm[id]
	delete(c.warm, id)
	if !warm && initBlocks(c.fs) {
		inited, warm = c.reusable(segment.Name(id))
	}
	if warm && !pageCache(c.fs) {
		tmp := segment.RecycleName(id)
		if err := c.fs.Rename(segment.Name(id), tmp); err == nil {
			recycled = tmp
		} else if errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if recycled == "" {
		if err := c.fs.Remove(segment.Name(id)); err != nil {
			return err
		}
	} else {
		c.retired = append(c.retired, retiredFile{name: recycled, inited: inited})
	}
	c.fs.Remove(segment.MetaName(id))
	c.dirDirty = true
	return nil
}

// reusable reports whether segment file name, which this process did not
// write to its end (an earlier one did, or it is a leftover), can become a
// new segment, and how much of it from the start is initialised: it must
// be full-sized and, where blocks are initialised before use, written
// (the file system's extent map, vfs.WrittenPrefixer) for at least a new
// segment's initialised head. Only speed depends on the answer: a reused
// file's stale bytes never replay, and its frontier initialises the rest.
func (c *Coordinator) reusable(name string) (int64, bool) {
	size := c.segmentFileSize()
	if !initBlocks(c.fs) {
		f, err := c.fs.Open(name, true)
		if err != nil {
			return 0, false
		}
		sz, err := f.Size()
		f.Close()
		return sz, err == nil && sz >= size
	}
	w, ok := findIface[vfs.WrittenPrefixer](c.fs)
	if !ok {
		return 0, false
	}
	n, sz, err := w.WrittenPrefix(name)
	if err != nil || sz < size || n < min(c.aheadChunk(), sz) {
		return 0, false
	}
	return n, true
}

// offerRecycled hands retired files to the preparer once their renames are
// durable (synced), and removes those it does not want or all of them when
// the directory sync failed.
func (c *Coordinator) offerRecycled(files []retiredFile, synced bool) {
	for _, r := range files {
		if !synced || c.prep == nil || !c.prep.keep(r) { // no preparer yet during recovery
			c.fs.Remove(r.name)
		}
	}
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
	id := c.curID.Load() + 1
	t0 := time.Now()
	s, err := c.makeSegment(id, initHead)
	if err != nil {
		c.log.Warn("dwal: cannot prepare the first segment", "segment", id, "err", err)
		c.prep.request(id)
		return
	}
	c.stats.prepared.Add(1)
	c.stats.prepLat.observe(time.Since(t0))
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
