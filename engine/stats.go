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

// stats are the Coordinator's own counters beyond Card 1's.
type stats struct {
	rotations, syncErrors, prepared, recycled, prepErrors atomic.Uint64
	batchLat, syncLat, prepLat                            latencyHist
}

// Stats returns a snapshot of the Coordinator's counters and histograms.
func (c *Coordinator) Stats() Stats {
	s := Stats{
		EntriesFlushed:      c.entries.Load(),
		PayloadBytes:        c.bytes.Load(),
		DiskBytes:           c.diskByte.Load(),
		Batches:             c.flushes.Load(),
		CurrentSegmentID:    c.curID.Load(),
		CurrentSegmentBytes: c.curSize.Load(),
		Rotations:           c.stats.rotations.Load(),
		SyncErrors:          c.stats.syncErrors.Load(),
		SegmentsPrepared:    c.stats.prepared.Load(),
		SegmentsRecycled:    c.stats.recycled.Load(),
		PrepareErrors:       c.stats.prepErrors.Load(),
		BatchLatency:        c.stats.batchLat.snapshot(),
		SyncLatency:         c.stats.syncLat.snapshot(),
		PrepareLatency:      c.stats.prepLat.snapshot(),
	}
	c.mu.Lock()
	if c.roErr != nil {
		s.ReadOnly, s.ReadOnlyCause = true, c.roErr.Error()
	}
	c.mu.Unlock()
	return s
}
