package bench

import (
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in nanoseconds, from 1 ns to 100 s, with 3
// significant digits (0.1% resolution).
const (
	histMaxNS  = 100e9
	histDigits = 3
	histShards = 16 // writers share these by index: little contention, bounded memory
)

// latencies is an HDR histogram sharded by writer, so 256 writers do not
// contend on one lock nor each hold a 200 KiB histogram.
type latencies struct {
	shards [histShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
		_  [40]byte
	}
}

func newLatencies() *latencies {
	l := &latencies{}
	for i := range l.shards {
		l.shards[i].h = hdrhistogram.New(1, histMaxNS, histDigits)
	}
	return l
}

// record adds one latency of ns nanoseconds observed by writer w.
func (l *latencies) record(w int, ns int64) {
	s := &l.shards[w%histShards]
	s.mu.Lock()
	s.h.RecordValue(min(max(ns, 1), histMaxNS))
	s.mu.Unlock()
}

// merged returns one histogram of everything recorded.
func (l *latencies) merged() *hdrhistogram.Histogram {
	h := hdrhistogram.New(1, histMaxNS, histDigits)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		h.Merge(s.h)
		s.mu.Unlock()
	}
	return h
}

// Latency summarises a latency distribution, in microseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanUS float64 `json:"mean_us"`
	P50US  float64 `json:"p50_us"`
	P99US  float64 `json:"p99_us"`
	P999US float64 `json:"p999_us"`
	MaxUS  float64 `json:"max_us"`
	// CDF holds [latency µs, percentile] points, dense in the tail, for
	// plots.
	CDF [][2]float64 `json:"cdf,omitempty"`
}

// cdfPercentiles are the percentiles a CDF is sampled at: every 2% up to
// 90, then denser towards the tail (the nines are where stalls show).
var cdfPercentiles = func() []float64 {
	var ps []float64
	for p := 0.0; p < 90; p += 2 {
		ps = append(ps, p)
	}
	for p := 90.0; p < 99; p += 0.5 {
		ps = append(ps, p)
	}
	for p := 99.0; p < 99.9; p += 0.1 {
		ps = append(ps, p)
	}
	for p := 99.9; p < 99.99; p += 0.01 {
		ps = append(ps, p)
	}
	return append(ps, 99.99, 99.995, 99.999, 100)
}()

func summarise(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	l := Latency{
		Count:  h.TotalCount(),
		MeanUS: h.Mean() / 1e3,
		P50US:  us(h.ValueAtQuantile(50)),
		P99US:  us(h.ValueAtQuantile(99)),
		P999US: us(h.ValueAtQuantile(99.9)),
		MaxUS:  us(h.Max()),
	}
	for _, p := range cdfPercentiles {
		v := us(h.ValueAtQuantile(p))
		if p == 100 {
			v = l.MaxUS
		}
		if n := len(l.CDF); n > 0 && l.CDF[n-1][0] == v {
			l.CDF[n-1][1] = p // one point per distinct value: the highest percentile at it
			continue
		}
		l.CDF = append(l.CDF, [2]float64{v, p})
	}
	return l
}
