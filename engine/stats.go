package engine

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of what a Coordinator has done, beyond the Card 1
// counters: for metrics (package metrics exports it to Prometheus) and
// for operators.
type Stats struct {
	EntriesFlushed, PayloadBytes, DiskBytes, Batches uint64
	CurrentSegmentID, CurrentSegmentBytes            uint64
	Rotations                                        uint64 // segments sealed
	SyncErrors                                       uint64 // batches whose write or sync failed
	SegmentsPrepared                                 uint64 // segments made ready off the hot path
	SegmentsRecycled                                 uint64 // of them, retired segment files reused
	PrepareErrors                                    uint64
	IndexRebuilds                                    uint64 // sealed segments' index files rebuilt by a scan (missing or bad)
	Rewrites                                         uint64 // a set's lagging logs rewritten forward
	RewrittenEntries                                 uint64 // the entries those rewrites copied
	ReadOnly                                         bool
	ReadOnlyCause                                    string
	BatchLatency                                     HistogramSnapshot // one batch's write (+ sync), as submitted
	SyncLatency                                      HistogramSnapshot // synced batches only
	PrepareLatency                                   HistogramSnapshot // preparing one segment
}

// HistogramSnapshot is a latency histogram: Counts[i] observations fell at
// or below Bounds[i] (and above Bounds[i-1]); the last count is above all.
type HistogramSnapshot struct {
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// histBounds: 25 µs doubling to ~1.6 s.
const histBuckets = 17

var histBounds = func() []time.Duration {
	b := make([]time.Duration, histBuckets)
	for i := range b {
		b[i] = 25 * time.Microsecond << i
	}
	return b
}()

// latencyHist is a lock-free histogram; observe does not allocate.
type latencyHist struct {
	counts [histBuckets + 1]atomic.Uint64
	sumNs  atomic.Int64
}

func (h *latencyHist) observe(d time.Duration) {
	i := 0
	for i < histBuckets && d > histBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

func (h *latencyHist) snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: histBounds, Counts: make([]uint64, histBuckets+1), Sum: time.Duration(h.sumNs.Load())}
	for i := range s.Counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	return s
}

// counters are what a Coordinator counts: Card 1's totals, the events of
// its parts, and latency histograms. Lock-free: every field is atomic.
type counters struct {
	entries, payload, disk, batches                       atomic.Uint64 // of settled batches (Card 1's totals)
	rotations, syncErrors, prepared, recycled, prepErrors atomic.Uint64
	indexRebuilds                                         atomic.Uint64 // sealed segments' indexes rebuilt by a scan
	rewrites, rewritten                                   atomic.Uint64 // a set's logs rewritten forward, and the entries copied
	batchLat, syncLat, prepLat                            latencyHist
}

// written counts settled batch f.
func (k *counters) written(f *flight) {
	k.entries.Add(uint64(f.n - len(f.recs)))
	k.payload.Add(uint64(f.bytes))
	k.disk.Add(uint64(f.span))
	k.batches.Add(1)
}

// Stats returns a snapshot of the Coordinator's counters and histograms.
func (c *Coordinator) Stats() Stats {
	k := &c.ctr
	s := Stats{
		EntriesFlushed:      k.entries.Load(),
		PayloadBytes:        k.payload.Load(),
		DiskBytes:           k.disk.Load(),
		Batches:             k.batches.Load(),
		CurrentSegmentID:    c.pipe.curID.Load(),
		CurrentSegmentBytes: c.pipe.curSize.Load(),
		Rotations:           k.rotations.Load(),
		SyncErrors:          k.syncErrors.Load(),
		SegmentsPrepared:    k.prepared.Load(),
		SegmentsRecycled:    k.recycled.Load(),
		PrepareErrors:       k.prepErrors.Load(),
		IndexRebuilds:       k.indexRebuilds.Load(),
		Rewrites:            k.rewrites.Load(),
		RewrittenEntries:    k.rewritten.Load(),
		BatchLatency:        k.batchLat.snapshot(),
		SyncLatency:         k.syncLat.snapshot(),
		PrepareLatency:      k.prepLat.snapshot(),
	}
	c.pipe.mu.Lock()
	if err := c.pipe.roErr; err != nil {
		s.ReadOnly, s.ReadOnlyCause = true, err.Error()
	}
	c.pipe.mu.Unlock()
	return s
}
