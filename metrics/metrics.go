// Package metrics exports a dwal Coordinator's counters to Prometheus.
//
// It lives apart from package engine so that the engine does not depend on
// client_golang: a program that wants Prometheus metrics imports this
// package; one that does not reads the Coordinator's counters directly
// (TotalEntriesFlushed, TotalBytesWritten, ..., and Stats).
//
// The Collector reads its Source at scrape time (no goroutine, no polling):
//
//	c, _ := engine.Open(engine.DefaultConfig(dir))
//	prometheus.MustRegister(metrics.NewCollector(c, metrics.WithConstLabels(prometheus.Labels{"wal": "orders"})))
//
// Exported, with the default namespace "dwal":
//
//	dwal_entries_total                 counter  entries written successfully
//	dwal_payload_bytes_total           counter  entry payload bytes written successfully (as given)
//	dwal_disk_bytes_total              counter  segment bytes written: batch headers and padding included
//	dwal_batches_total                 counter  batches written successfully
//	dwal_current_segment_id            gauge    the segment being written (the last sealed one right after a rotation)
//	dwal_current_segment_bytes         gauge    bytes used in it (0 right after a rotation)
//	dwal_backend_info{backend,reason}  gauge    1: the backend in use and why it was picked
//
// and, from the Coordinator's Stats (engine.Stats, read at each scrape; for
// a Source that has no Stats method, only when WithStats supplies them):
//
//	dwal_segment_rotations_total           counter    segments sealed (full, or rolled back after a failed write)
//	dwal_sync_errors_total                 counter    batches whose write or sync failed
//	dwal_read_only                         gauge      1 once the log turned read-only
//	dwal_flush_duration_seconds            histogram  one successful batch's write (with its sync when synced)
//	dwal_sync_duration_seconds             histogram  the same, for synced batches only
//	dwal_segment_prepare_duration_seconds  histogram  preparing one segment in the background
//
// engine.Stats also counts segments prepared and recycled, preparation
// errors and the read-only cause; the Collector does not export those.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwal-project/dwal/engine"
)

// Source is what the Collector reads at each scrape. *engine.Coordinator
// implements it; each method must be cheap and safe for concurrent use.
type Source interface {
	TotalEntriesFlushed() uint64
	TotalBytesWritten() uint64
	TotalDiskBytesWritten() uint64
	TotalFlushes() uint64
	CurrentSegmentID() uint64
	CurrentSegmentSize() uint64
	Backend() engine.BackendInfo
}

var _ Source = (*engine.Coordinator)(nil)

// Stats are the figures exported beyond the Source's counters. For a
// Source with a Stats method (*engine.Coordinator) NewCollector reads them
// from it at each scrape (see FromEngine); WithStats supplies them for any
// other Source, or replaces the engine's. Counters must only grow.
type Stats struct {
	Rotations  uint64 // segments sealed (full, or rolled back after a failed write)
	SyncErrors uint64 // batches whose write or sync failed
	ReadOnly   bool   // the Coordinator turned read-only (ErrReadOnly)
	// Latency histograms; nil ones are not exported.
	FlushLatency   *Histogram // one successful batch's write, with its sync when synced (engine.Stats.BatchLatency)
	SyncLatency    *Histogram // the same, for synced batches only: write + fdatasync, or an RWF_DSYNC write
	PrepareLatency *Histogram // preparing one segment in the background, off the hot path
}

// Histogram is a latency histogram in seconds: fixed buckets, as the engine
// keeps them (engine.HistogramSnapshot), read at scrape time.
type Histogram struct {
	Bounds []float64 // bucket upper bounds in seconds, ascending (+Inf implied)
	Counts []uint64  // Counts[i]: observations <= Bounds[i] and > Bounds[i-1] (not cumulative)
	Count  uint64    // all observations, the +Inf bucket included
	Sum    float64   // seconds
}

// Collector is a prometheus.Collector over one Source.
type Collector struct {
	src    Source
	stats  func() Stats
	ns     string
	labels prometheus.Labels

	entries, payload, disk, batches *prometheus.Desc
	segID, segBytes, backend        *prometheus.Desc
	rotations, syncErrs, readOnly   *prometheus.Desc
	flushLat, syncLat, prepLat      *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// Option configures a Collector.
type Option func(*Collector)

// WithNamespace replaces the metric name prefix "dwal".
func WithNamespace(ns string) Option { return func(c *Collector) { c.ns = ns } }

// WithConstLabels adds labels to every metric, to tell several logs of one
// process apart (e.g. {"wal": "orders"}).
func WithConstLabels(l prometheus.Labels) Option { return func(c *Collector) { c.labels = l } }

// WithStats supplies the Stats of a Source that has no Stats method of its
// own, or replaces the Coordinator's; fn is called at each scrape.
func WithStats(fn func() Stats) Option { return func(c *Collector) { c.stats = fn } }

// NewCollector returns a Collector reading src at scrape time.
func NewCollector(src Source, opts ...Option) *Collector {
	c := &Collector{src: src, ns: "dwal"}
	if es, ok := src.(interface{ Stats() engine.Stats }); ok {
		c.stats = func() Stats { return FromEngine(es.Stats()) }
	}
	for _, o := range opts {
		o(c)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(c.ns, "", name), help, labels, c.labels)
	}
	c.entries = d("entries_total", "Entries written successfully.")
	c.payload = d("payload_bytes_total", "Entry payload bytes written successfully, as given by callers.")
	c.disk = d("disk_bytes_total", "Segment bytes written: batch headers and padding included.")
	c.batches = d("batches_total", "Batches written successfully (each one write, synced or not).")
	c.segID = d("current_segment_id", "ID of the segment being written (the last sealed one right after a rotation).")
	c.segBytes = d("current_segment_bytes", "Bytes used in the current segment: its header block and padded batches.")
	c.backend = d("backend_info", "The storage backend in use (always 1); reason says why it was picked.", "backend", "reason")
	c.rotations = d("segment_rotations_total", "Segments sealed: full, or rolled back after a failed write.")
	c.syncErrs = d("sync_errors_total", "Batches whose write or sync failed.")
	c.readOnly = d("read_only", "1 when the log turned read-only after an unrecoverable write failure.")
	c.flushLat = d("flush_duration_seconds", "Time of one successful batch write, with its sync when the batch is synced.")
	c.syncLat = d("sync_duration_seconds", "Time of one synced batch write: write + fdatasync, or an RWF_DSYNC write.")
	c.prepLat = d("segment_prepare_duration_seconds", "Time to prepare one segment in the background, off the hot path.")
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.payload, c.disk, c.batches, c.segID, c.segBytes, c.backend} {
		ch <- d
	}
	if c.stats != nil {
		for _, d := range []*prometheus.Desc{c.rotations, c.syncErrs, c.readOnly, c.flushLat, c.syncLat, c.prepLat} {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector: it reads the Source now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.entries, c.src.TotalEntriesFlushed())
	counter(c.payload, c.src.TotalBytesWritten())
	counter(c.disk, c.src.TotalDiskBytesWritten())
	counter(c.batches, c.src.TotalFlushes())
	gauge(c.segID, float64(c.src.CurrentSegmentID()))
	gauge(c.segBytes, float64(c.src.CurrentSegmentSize()))
	b := c.src.Backend()
	gauge(c.backend, 1, b.Name, b.Reason)
	if c.stats == nil {
		return
	}
	s := c.stats()
	counter(c.rotations, s.Rotations)
	counter(c.syncErrs, s.SyncErrors)
	ro := 0.0
	if s.ReadOnly {
		ro = 1
	}
	gauge(c.readOnly, ro)
	for _, h := range []struct {
		d *prometheus.Desc
		h *Histogram
	}{{c.flushLat, s.FlushLatency}, {c.syncLat, s.SyncLatency}, {c.prepLat, s.PrepareLatency}} {
		if h.h != nil {
			ch <- h.h.metric(h.d)
		}
	}
}

// metric turns h into a constant Prometheus histogram (cumulative buckets).
func (h *Histogram) metric(d *prometheus.Desc) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, ub := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[ub] = cum
	}
	m, err := prometheus.NewConstHistogram(d, max(h.Count, cum), h.Sum, buckets)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// FromEngine converts an engine.Stats snapshot (what *engine.Coordinator's
// Stats returns; NewCollector uses it by itself) to Stats.
func FromEngine(s engine.Stats) Stats {
	return Stats{
		Rotations:      s.Rotations,
		SyncErrors:     s.SyncErrors,
		ReadOnly:       s.ReadOnly,
		FlushLatency:   fromSnapshot(s.BatchLatency),
		SyncLatency:    fromSnapshot(s.SyncLatency),
		PrepareLatency: fromSnapshot(s.PrepareLatency),
	}
}

func fromSnapshot(h engine.HistogramSnapshot) *Histogram {
	out := &Histogram{Counts: h.Counts, Count: h.Count, Sum: h.Sum.Seconds()}
	for _, b := range h.Bounds {
		out.Bounds = append(out.Bounds, b.Seconds())
	}
	return out
}
