package metrics

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dwal-project/dwal/engine"
)

// scrape serves reg through promhttp on a loopback httptest server and
// parses what one GET returns.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return mfs
}

// value returns the one sample of family name (counter or gauge), failing
// when there is not exactly one.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string) (float64, *dto.Metric) {
	t.Helper()
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: missing or not one sample: %v", name, mf)
	}
	m := mf.GetMetric()[0]
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), m
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), m
	}
	t.Fatalf("%s: type %v", name, mf.GetType())
	return 0, nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestCollectorScrapedThroughPromhttp(t *testing.T) {
	cfg := engine.DefaultConfig(t.TempDir())
	cfg.SegmentSize = 64 << 10
	c, err := engine.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(c, WithConstLabels(prometheus.Labels{"wal": "test"})))

	check := func() {
		t.Helper()
		mfs := scrape(t, reg)
		for name, want := range map[string]uint64{
			"dwal_entries_total":         c.TotalEntriesFlushed(),
			"dwal_payload_bytes_total":   c.TotalBytesWritten(),
			"dwal_disk_bytes_total":      c.TotalDiskBytesWritten(),
			"dwal_batches_total":         c.TotalFlushes(),
			"dwal_current_segment_id":    c.CurrentSegmentID(),
			"dwal_current_segment_bytes": c.CurrentSegmentSize(),
		} {
			got, m := value(t, mfs, name)
			if got != float64(want) {
				t.Errorf("%s = %v, want %d", name, got, want)
			}
			if labels(m)["wal"] != "test" {
				t.Errorf("%s: labels %v", name, labels(m))
			}
		}
		got, m := value(t, mfs, "dwal_backend_info")
		b := c.Backend()
		if l := labels(m); got != 1 || l["backend"] != b.Name || l["reason"] != b.Reason || b.Name == "" {
			t.Errorf("dwal_backend_info = %v %v, want 1 {backend=%q reason=%q}", got, l, b.Name, b.Reason)
		}
	}
	check() // all zero
	payload := make([]byte, 3000)
	for i := range 50 {
		e, _ := engine.NewSyncEntry(engine.LSN(i+1), payload[:100+i*50])
		if _, err := c.Flush([]*engine.PendingEntry{e}, true); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if err := c.Append(context.Background(), engine.LSN(100+i), payload[:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if c.TotalEntriesFlushed() != 70 || c.CurrentSegmentID() < 2 {
		t.Fatalf("setup: %d entries, segment %d", c.TotalEntriesFlushed(), c.CurrentSegmentID())
	}
	check() // read at scrape time: the counters as they are now

	// The engine's own Stats are exported without WithStats: every batch
	// here was synced, so the sync histogram counts them all, and the
	// segment rotations the counter says happened did.
	mfs := scrape(t, reg)
	st := c.Stats()
	if got, _ := value(t, mfs, "dwal_segment_rotations_total"); got != float64(st.Rotations) || st.Rotations == 0 {
		t.Errorf("rotations %v, engine says %d", got, st.Rotations)
	}
	for _, name := range []string{"dwal_sync_duration_seconds", "dwal_flush_duration_seconds"} {
		h := mfs[name]
		if h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() != c.TotalFlushes() {
			t.Errorf("%s %v, want %d samples (one per batch)", name, h, c.TotalFlushes())
		}
	}
	// Preparation goes on in the background: Stats, read after the scrape,
	// may count one more.
	if h := mfs["dwal_segment_prepare_duration_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() > st.SegmentsPrepared {
		t.Errorf("prepare histogram %v, want at most %d samples (one per segment prepared)", h, st.SegmentsPrepared)
	}
	if got, _ := value(t, mfs, "dwal_read_only"); got != 0 {
		t.Errorf("read_only %v", got)
	}
}

// fakeSource stands for a Coordinator, with Stats as the engine would give them.
type fakeSource struct{ n uint64 }

func (f *fakeSource) TotalEntriesFlushed() uint64   { return f.n }
func (f *fakeSource) TotalBytesWritten() uint64     { return 2 * f.n }
func (f *fakeSource) TotalDiskBytesWritten() uint64 { return 3 * f.n }
func (f *fakeSource) TotalFlushes() uint64          { return 4 * f.n }
func (f *fakeSource) CurrentSegmentID() uint64      { return 5 }
func (f *fakeSource) CurrentSegmentSize() uint64    { return 6 }
func (f *fakeSource) Backend() engine.BackendInfo {
	return engine.BackendInfo{Name: "fallback", Reason: "Config.Backend is BackendFallback"}
}

func TestCollectorStatsAndHistograms(t *testing.T) {
	src := &fakeSource{n: 7}
	hist := &Histogram{Bounds: []float64{0.0001, 0.001, 0.01}, Counts: []uint64{5, 3, 1}, Count: 10, Sum: 0.5}
	c := NewCollector(src, WithNamespace("wal"), WithStats(func() Stats {
		return Stats{Rotations: 2, SyncErrors: 1, ReadOnly: true, SyncLatency: hist}
	}))
	reg := prometheus.NewPedanticRegistry() // checks Describe against Collect
	reg.MustRegister(c)
	mfs := scrape(t, reg)
	for name, want := range map[string]float64{
		"wal_entries_total": 7, "wal_payload_bytes_total": 14, "wal_disk_bytes_total": 21, "wal_batches_total": 28,
		"wal_current_segment_id": 5, "wal_current_segment_bytes": 6,
		"wal_segment_rotations_total": 2, "wal_sync_errors_total": 1, "wal_read_only": 1,
	} {
		if got, _ := value(t, mfs, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	h := mfs["wal_sync_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 10 || h.GetSampleSum() != 0.5 {
		t.Errorf("histogram count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	var got []string
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			got = append(got, fmt.Sprintf("%g:%d", b.GetUpperBound(), b.GetCumulativeCount()))
		}
	}
	if s := strings.Join(got, " "); s != "0.0001:5 0.001:8 0.01:9" {
		t.Errorf("buckets %s", s)
	}
	for _, name := range []string{"wal_flush_duration_seconds", "wal_segment_prepare_duration_seconds"} {
		if _, ok := mfs[name]; ok {
			t.Errorf("%s exported without data", name)
		}
	}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}

func TestCollectorWithoutStatsDescribesOnlyWhatItCollects(t *testing.T) {
	c := NewCollector(&fakeSource{n: 1})
	if n := testutil.CollectAndCount(c); n != 7 {
		t.Errorf("collected %d metrics, want 7", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}
