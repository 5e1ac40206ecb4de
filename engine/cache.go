package engine

import "sync"

// The read cache (Config.ReadCacheBytes): a copy of the most recently
// written or read batches' entries, so a read of what was just written (a
// Raft leader sending its new entries to followers) costs no disk read,
// and reading a batch's entries one after another (a follower catching up)
// costs one. Batches are copied into one byte ring as they are encoded
// (plain, before sealing) or read; one larger than a quarter of the ring is
// not cached. Slots are
// found by (segment, offset), which no two batches ever share in one
// process (a failed batch's offset is never reused: its segment is sealed
// or the log turns read-only), and a slot is only reached through the
// index, which holds only settled batches. Putting allocates nothing.

// cacheSlots bounds the batches held at once.
const cacheSlots = 256

type batchCache struct {
	mu    sync.Mutex
	data  []byte
	pos   int // where the next batch goes
	next  int // the slot the next batch takes
	slots [cacheSlots]cacheSlot
}

type cacheSlot struct {
	seg   uint64
	off   int64
	start int
	n     int // 0: empty
}

func newBatchCache(bytes int) *batchCache {
	if bytes <= 0 {
		return nil
	}
	return &batchCache{data: make([]byte, bytes)}
}

// put copies the entries body of the batch at (seg, off).
func (bc *batchCache) put(seg uint64, off int64, body []byte) {
	n := len(body)
	if n == 0 || n > len(bc.data)/4 {
		return
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.pos+n > len(bc.data) {
		bc.pos = 0
	}
	lo, hi := bc.pos, bc.pos+n
	for i := range bc.slots {
		s := &bc.slots[i]
		if s.n > 0 && s.start < hi && lo < s.start+s.n {
			s.n = 0 // overwritten below
		}
	}
	copy(bc.data[lo:hi], body)
	bc.slots[bc.next] = cacheSlot{seg: seg, off: off, start: lo, n: n}
	bc.next = (bc.next + 1) % cacheSlots
	bc.pos = hi
}

// find calls fn with the cached entries of the batch at (seg, off), under
// the cache's lock (fn must copy what it keeps), and reports whether it
// was cached.
func (bc *batchCache) find(seg uint64, off int64, fn func(body []byte)) bool {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	for k := range cacheSlots {
		s := &bc.slots[(bc.next-1-k+2*cacheSlots)%cacheSlots]
		if s.n > 0 && s.seg == seg && s.off == off {
			fn(bc.data[s.start : s.start+s.n])
			return true
		}
	}
	return false
}

// cacheBatch puts the batch of f, whose plain entries are body, in the
// cache (when there is one).
func (c *Coordinator) cacheBatch(f *flight, body []byte) {
	if c.cache != nil {
		c.cache.put(f.a.id, f.off, body)
	}
}
