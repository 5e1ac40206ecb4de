package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator: a cell's writers running ops on one log in closed
// or open loop, the measured window, and the counters read around it.

// warmStart is the --warm path, which brings the log to its steady state
// before the clock starts: the log's WarmUp (dwal: WaitPrepared), one op
// and a quiet directory (prime), then the writers, unmeasured for
// p.warmup and c.warmBytes (warm).
func (ld *load) warmStart(dir string, p *runParams, res *Result) error {
	if err := warmUp(ld.log, res); err != nil {
		return err
	}
	if err := ld.prime(dir); err != nil {
		return err
	}
	ld.start(p.rate, 0)
	return ld.warm(p)
}

// load is a cell's writers running ops on one log, each in its own loop
// (closed, or open at a fixed rate), their latency recorded once the
// measured window has started.
type load struct {
	log    Log
	c      cell
	bufs   [][][]byte // per writer: the op's entries
	lsn    atomic.Uint64
	base   time.Time
	lat    *latencies
	primed int64 // ops made by prime, before the writers started

	stop    atomic.Bool
	budget  int64        // ops in all, then the writers stop (0: until stopped)
	claimed atomic.Int64 // ops the writers have started, for budget
	mStart  atomic.Int64 // ops that start at or after this (ns since base) are recorded
	done    atomic.Int64 // ops completed
	errOnce sync.Once
	err     error // the first op that failed
	wg      sync.WaitGroup
}

func newLoad(log Log, c cell) *load {
	ld := &load{log: log, c: c, bufs: payloads(c), base: time.Now(), lat: newLatencies()}
	ld.mStart.Store(math.MaxInt64)
	return ld
}

// payloads are random (incompressible) bytes, one buffer of c.perOp
// entries per writer.
func payloads(c cell) [][][]byte {
	bufs := make([][][]byte, c.writers)
	for w := range bufs {
		all := make([]byte, c.entrySize*c.perOp)
		fillRandom(all, uint64(w+1))
		for i := range c.perOp {
			bufs[w] = append(bufs[w], all[i*c.entrySize:(i+1)*c.entrySize])
		}
	}
	return bufs
}

func (ld *load) now() int64 { return int64(time.Since(ld.base)) }

// op is one op of writer w: a Commit, or a Flush of c.perOp entries.
func (ld *load) op(w int) error {
	n := uint64(ld.c.perOp)
	first := ld.lsn.Add(n) - n + 1
	if ld.c.flush {
		return ld.log.Flush(first, ld.bufs[w])
	}
	if pl, ok := ld.log.(perWriterLog); ok {
		return pl.CommitAs(w, first, ld.bufs[w][0])
	}
	return ld.log.Commit(first, ld.bufs[w][0])
}

// prime (warm cells) makes one op before the clock starts, then waits
// until dir is quiet: files are created, the first segment made ready and
// any background preparation (dwal initialises its next segment) done,
// outside the measurement, for every system alike. What a rotation costs
// later is the rotate workload's to show.
func (ld *load) prime(dir string) error {
	if err := ld.op(0); err != nil {
		return err
	}
	ld.primed++
	quiet := ld.c.quiet
	if quiet == 0 {
		quiet = 10 * time.Second
	}
	waitQuiet(dir, quiet)
	return nil
}

// start starts the writers: closed loop, or with rate > 0 (ops/s over all
// writers) open loop; with budget > 0 they stop after that many ops in all.
func (ld *load) start(rate float64, budget int64) {
	ld.budget = budget
	interval := 0.0 // ns between one writer's ops in open loop
	if rate > 0 {
		interval = float64(ld.c.writers) / rate * 1e9
	}
	for w := range ld.c.writers {
		ld.wg.Add(1)
		go ld.writer(w, interval)
	}
}

func (ld *load) writer(w int, interval float64) {
	defer ld.wg.Done()
	for k := 0; !ld.stop.Load(); k++ {
		if ld.budget > 0 && ld.claimed.Add(1) > ld.budget {
			return
		}
		var t0 int64
		if interval > 0 {
			// Open loop: op k of writer w is due at a fixed time; its
			// latency counts from then, however late it starts.
			t0 = int64(interval*float64(k) + interval*float64(w)/float64(ld.c.writers))
			for d := t0 - ld.now(); d > 0 && !ld.stop.Load(); d = t0 - ld.now() {
				time.Sleep(min(time.Duration(d), 50*time.Millisecond))
			}
			if ld.stop.Load() {
				return
			}
		} else {
			t0 = ld.now()
		}
		if err := ld.op(w); err != nil {
			ld.errOnce.Do(func() { ld.err = err })
			ld.stop.Store(true)
			return
		}
		t1 := ld.now()
		if t0 >= ld.mStart.Load() {
			ld.lat.record(w, t1-t0)
		}
		ld.done.Add(1)
	}
}

// written is the entry bytes of the ops completed so far.
func (ld *load) written() int64 { return ld.done.Load() * int64(ld.c.perOp*ld.c.entrySize) }

// warm runs the writers unmeasured for p.warmup, then (bulk) until they
// have written c.warmBytes: a log's first gigabyte is not its steady state
// (dwal writes new segments until retired ones come back, after
// SegmentsToRetain+1 of them; peers create and grow files). A volume
// warmup that does not finish is an error, not a measurement.
func (ld *load) warm(p *runParams) error {
	sleepUnless(p.warmup, &ld.stop)
	for limit := time.Now().Add(hangLimit(p)); !ld.stop.Load() && ld.written() < ld.c.warmBytes && time.Now().Before(limit); {
		time.Sleep(10 * time.Millisecond)
	}
	if w := ld.written(); w < ld.c.warmBytes && !ld.stop.Load() {
		return fmt.Errorf("warmup wrote %d of %d bytes in %v: not measured", w, ld.c.warmBytes, hangLimit(p))
	}
	return nil
}

// counters are what the measured window is computed from, read at its
// start and its end.
type counters struct {
	t      int64 // ns since the load's base
	done   int64 // ops completed
	cpu    time.Duration
	cpuOK  bool
	allocs uint64
	syncs  uint64
}

func (ld *load) syncs() uint64 {
	if s, ok := ld.log.(Syncer); ok {
		return s.Syncs()
	}
	return 0
}

// begin starts the measured window: ops that start from now on are timed.
// It returns the counters at the window's start.
func (ld *load) begin() (c counters) {
	c.cpu, c.cpuOK = cpuTime()
	c.allocs = allocs()
	c.syncs = ld.syncs()
	c.done = ld.done.Load()
	c.t = ld.now()
	ld.mStart.Store(c.t)
	return c
}

// end returns the counters at the end of the measured window.
func (ld *load) end() (c counters) {
	c.t = ld.now()
	c.done = ld.done.Load()
	c.allocs = allocs()
	c.syncs = ld.syncs()
	c.cpu, c.cpuOK = cpuTime()
	return c
}

// halt stops the writers and waits for them, at most limit; it reports
// whether they all returned.
func (ld *load) halt(limit time.Duration) bool {
	ld.stop.Store(true)
	return waitTimeout(&ld.wg, limit)
}

// setMeasures fills r's figures from the counters at the start and the end
// of ld's measured window and the latencies recorded in it.
func (r *Result) setMeasures(ld *load, before, after counters) {
	c := ld.c
	el := time.Duration(after.t - before.t).Seconds()
	r.DurationS = el
	r.Ops = after.done - before.done
	r.WarmupBytes = (before.done + ld.primed) * int64(c.perOp*c.entrySize)
	r.Entries = r.Ops * int64(c.perOp)
	r.Bytes = r.Entries * int64(c.entrySize)
	if el > 0 {
		r.EntriesPerS = float64(r.Entries) / el
		r.MBPerS = float64(r.Bytes) / el / 1e6
	}
	r.Latency = summarise(ld.lat.merged())
	if r.Entries > 0 {
		if before.cpuOK && after.cpuOK {
			r.CPUPerEntryUS = float64(after.cpu-before.cpu) / 1e3 / float64(r.Entries)
		}
		r.AllocsPerEntry = float64(after.allocs-before.allocs) / float64(r.Entries)
		if after.syncs > before.syncs {
			r.EntriesPerSync = float64(r.Entries) / float64(after.syncs-before.syncs)
		}
	}
}

// allocs reads the heap allocations so far without stopping the world.
func allocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}}
	metrics.Read(s)
	var n uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += x.Value.Uint64()
		}
	}
	return n
}

func fillRandom(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}
