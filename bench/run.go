package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Workloads.
const (
	wlCommit     = "commit"      // C writers, one entry each, durable on return
	wlLatency    = "latency"     // one writer, one 4 KiB entry per synced flush
	wlBulk       = "bulk"        // one writer, 1 MiB synced batches
	wlRotate     = "rotate"      // commit with small segments
	wlRotateNone = "rotate-none" // the same commit without rotation
	wlReplay     = "replay"      // read back what was written
)

// AllWorkloads lists the workloads in the order they run.
var AllWorkloads = []string{wlCommit, wlLatency, wlBulk, wlRotate, wlReplay}

// Result is one measured cell: one system on one workload with one writer
// count. Latencies are per op (one commit, or one synced batch).
type Result struct {
	Workload     string  `json:"workload"`
	System       string  `json:"system"`
	Writers      int     `json:"writers"`
	EntrySize    int     `json:"entry_size"`
	BatchEntries int     `json:"batch_entries"` // entries per op
	RatePerS     float64 `json:"rate_per_s,omitempty"`
	SegmentSize  int64   `json:"segment_size,omitempty"`
	Backend      string  `json:"backend,omitempty"`
	Process      string  `json:"process"` // "main", or "peers" for the peers' subprocess

	DurationS      float64 `json:"duration_s"`
	Ops            int64   `json:"ops"`
	Entries        int64   `json:"entries"`
	Bytes          int64   `json:"bytes"`
	EntriesPerS    float64 `json:"entries_per_s"`
	MBPerS         float64 `json:"mb_per_s"`
	Latency        Latency `json:"latency"`
	CPUPerEntryUS  float64 `json:"cpu_us_per_entry"`
	AllocsPerEntry float64 `json:"allocs_per_entry"`
	EntriesPerSync float64 `json:"entries_per_sync,omitempty"`
	Rotations      int     `json:"rotations"`
	WarmupBytes    int64   `json:"warmup_bytes"` // entry bytes written before the measured window

	Error   string `json:"error,omitempty"`
	Skipped string `json:"skipped,omitempty"`
}

// cell is what to run.
type cell struct {
	workload  string
	writers   int
	entrySize int
	perOp     int           // entries per op
	flush     bool          // ops are Log.Flush batches, not Log.Commit
	segSize   int64         // 0: the system's default
	warmBytes int64         // the warmup also lasts until this many bytes are written
	quiet     time.Duration // longest wait for the directory to go quiet (0: 10 s)
}

// runParams are the measurement settings shared by every cell.
type runParams struct {
	root     string // the run's directory; each cell gets a fresh subdirectory
	duration time.Duration
	warmup   time.Duration
	rate     float64 // ops/s over all writers; 0 is closed loop
	keep     bool
	process  string
}

func (c cell) dirName(sys string) string {
	return fmt.Sprintf("%s-%s-c%d", sys, c.workload, c.writers)
}

func (c cell) result(sys System, p *runParams) Result {
	r := Result{Workload: c.workload, System: sys.Name(), Writers: c.writers, EntrySize: c.entrySize,
		BatchEntries: c.perOp, SegmentSize: c.segSize, Process: p.process}
	if c.workload != wlReplay {
		r.RatePerS = p.rate
	}
	return r
}

// supports asks sys whether it runs c.
func supports(sys System, workload string, writers int) (bool, string) {
	if s, ok := sys.(Supporter); ok {
		return s.Supports(workload, writers)
	}
	return true, ""
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

// cellDir checks that sys runs c and makes c's empty directory; when it
// reports false, res says why not.
func cellDir(sys System, c cell, p *runParams, res *Result) (string, bool) {
	if ok, why := supports(sys, c.workload, c.writers); !ok {
		res.Skipped = why
		return "", false
	}
	dir := filepath.Join(p.root, c.dirName(sys.Name()))
	if err := mkdirEmpty(dir); err != nil {
		res.Error = err.Error()
		return "", false
	}
	return dir, true
}

// openLog opens sys with cfg and notes its backend in res; when it reports
// false, res says why not.
func openLog(sys System, cfg Config, res *Result) (Log, bool) {
	log, err := sys.Open(cfg)
	if err != nil {
		res.Skipped = "open: " + err.Error()
		return nil, false
	}
	if d, ok := log.(Describer); ok {
		res.Backend = d.Describe()
	}
	return log, true
}

// runCell measures sys on c: warmup, then duration, with the writers of c.
func runCell(sys System, c cell, p *runParams) Result {
	res := c.result(sys, p)
	dir, ok := cellDir(sys, c, p, &res)
	if !ok {
		return res
	}
	if !p.keep {
		defer os.RemoveAll(dir)
	}
	log, ok := openLog(sys, Config{Dir: dir, Workload: c.workload, Writers: c.writers, EntrySize: c.entrySize, SegmentSize: c.segSize}, &res)
	if !ok {
		return res
	}
	closed := false
	defer func() {
		if !closed {
			log.Close()
		}
	}()

	// Payloads: random (incompressible) bytes, one buffer per writer.
	bufs := make([][][]byte, c.writers)
	for w := range bufs {
		all := make([]byte, c.entrySize*c.perOp)
		fillRandom(all, uint64(w+1))
		for i := range c.perOp {
			bufs[w] = append(bufs[w], all[i*c.entrySize:(i+1)*c.entrySize])
		}
	}
	var lsn atomic.Uint64
	op := func(w int) error {
		first := lsn.Add(uint64(c.perOp)) - uint64(c.perOp) + 1
		if c.flush {
			return log.Flush(first, bufs[w])
		}
		return log.Commit(first, bufs[w][0])
	}
	// One op before the clock starts, then a wait until the directory is
	// quiet: files are created, the first segment made ready and any
	// background preparation (dwal initialises its next segment) done,
	// outside the measurement, for every system alike. What a rotation
	// costs later is the rotate workload's to show.
	if err := op(0); err != nil {
		res.Error = err.Error()
		return res
	}
	if c.quiet == 0 {
		c.quiet = 10 * time.Second
	}
	waitQuiet(dir, c.quiet)

	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	lat := newLatencies()
	var (
		stop    atomic.Bool
		mStart  atomic.Int64
		done    atomic.Int64
		errOnce sync.Once
		runErr  error
		wg      sync.WaitGroup
	)
	mStart.Store(math.MaxInt64)
	interval := 0.0 // ns between one writer's ops in open loop
	if p.rate > 0 {
		interval = float64(c.writers) / p.rate * 1e9
	}
	for w := range c.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				var t0 int64
				if interval > 0 {
					// Open loop: op k of writer w is due at a fixed time;
					// its latency counts from then, however late it starts.
					t0 = int64(interval*float64(k) + interval*float64(w)/float64(c.writers))
					for d := t0 - now(); d > 0 && !stop.Load(); d = t0 - now() {
						time.Sleep(min(time.Duration(d), 50*time.Millisecond))
					}
					if stop.Load() {
						return
					}
				} else {
					t0 = now()
				}
				if err := op(w); err != nil {
					errOnce.Do(func() { runErr = err })
					stop.Store(true)
					return
				}
				t1 := now()
				if t0 >= mStart.Load() {
					lat.record(w, t1-t0)
				}
				done.Add(1)
			}
		}()
	}
	syncs := func() uint64 {
		if s, ok := log.(Syncer); ok {
			return s.Syncs()
		}
		return 0
	}
	sleepUnless(p.warmup, &stop)
	// A volume warmup (bulk): a log's first gigabyte is not its steady
	// state (dwal writes new segments until retired ones come back, after
	// SegmentsToRetain+1 of them; peers create and grow files).
	written := func() int64 { return done.Load() * int64(c.perOp*c.entrySize) }
	for limit := time.Now().Add(hangLimit(p)); !stop.Load() && written() < c.warmBytes && time.Now().Before(limit); {
		time.Sleep(10 * time.Millisecond)
	}
	if w := written(); w < c.warmBytes && !stop.Load() {
		stop.Store(true)
		if !waitTimeout(&wg, hangLimit(p)) {
			closed = true // writers blocked: leave the log open, as below
		}
		res.Error = fmt.Sprintf("warmup wrote %d of %d bytes in %v: not measured", w, c.warmBytes, hangLimit(p))
		return res
	}
	cpu0, cpuOK := cpuTime()
	al0 := allocs()
	sy0 := syncs()
	done0 := done.Load()
	t0 := now()
	mStart.Store(t0)
	sleepUnless(p.duration, &stop)
	t1 := now()
	done1 := done.Load()
	al1 := allocs()
	sy1 := syncs()
	cpu1, _ := cpuTime()
	stop.Store(true)
	if !waitTimeout(&wg, hangLimit(p)) {
		// Leave the log open and its writers blocked: closing it could
		// block too. The process ends soon anyway.
		closed = true
		res.Error = fmt.Sprintf("writers still blocked %v after the end of the measurement", hangLimit(p))
		return res
	}
	if runErr != nil {
		res.Error = runErr.Error()
		return res
	}
	if r, ok := log.(Rotator); ok {
		res.Rotations = r.Rotations()
	}
	closed = true
	if err := log.Close(); err != nil {
		res.Error = "close: " + err.Error()
	}

	el := time.Duration(t1 - t0).Seconds()
	res.DurationS = el
	res.Ops = done1 - done0
	res.WarmupBytes = (done0 + 1) * int64(c.perOp*c.entrySize) // +1: the op before the clock
	res.Entries = res.Ops * int64(c.perOp)
	res.Bytes = res.Entries * int64(c.entrySize)
	if el > 0 {
		res.EntriesPerS = float64(res.Entries) / el
		res.MBPerS = float64(res.Bytes) / el / 1e6
	}
	res.Latency = summarise(lat.merged())
	if res.Entries > 0 {
		if cpuOK {
			res.CPUPerEntryUS = float64(cpu1-cpu0) / 1e3 / float64(res.Entries)
		}
		res.AllocsPerEntry = float64(al1-al0) / float64(res.Entries)
		if sy1 > sy0 {
			res.EntriesPerSync = float64(res.Entries) / float64(sy1-sy0)
		}
	}
	return res
}

// hangLimit is how long writers may take to return once a cell ends.
func hangLimit(p *runParams) time.Duration { return max(time.Minute, 10*(p.duration+p.warmup)) }

// waitTimeout waits for wg, at most d; it reports whether wg finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// sleepUnless sleeps for d, or less once stop is set.
func sleepUnless(d time.Duration, stop *atomic.Bool) {
	end := time.Now().Add(d)
	for !stop.Load() {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		time.Sleep(min(left, 20*time.Millisecond))
	}
}

// waitQuiet waits until no file under dir changes size or modification
// time for 150 ms (background work such as a segment being prepared has
// finished), or until limit.
func waitQuiet(dir string, limit time.Duration) {
	sig := func() (s int64) {
		filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				s = s*31 + fi.Size() + fi.ModTime().UnixNano()
			}
			return nil
		})
		return s
	}
	end := time.Now().Add(limit)
	last, same := sig(), 0
	for same < 3 && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		s := sig()
		if s == last {
			same++
		} else {
			last, same = s, 0
		}
	}
}

// replayBatchBytes is the size of the synced batches that write the data a
// replay reads back.
const replayBatchBytes = 1 << 20

// runReplay writes total bytes of entrySize entries with sys (in synced
// 1 MiB batches, not measured), closes it, drops the files from the page
// cache, then measures reopening the directory and reading every entry.
func runReplay(sys System, c cell, total int64, p *runParams) Result {
	res := c.result(sys, p)
	dir, ok := cellDir(sys, c, p, &res)
	if !ok {
		return res
	}
	if !p.keep {
		defer os.RemoveAll(dir)
	}
	rp, ok := sys.(Replayer)
	if !ok {
		res.Skipped = "no replay adapter"
		return res
	}
	cfg := Config{Dir: dir, Workload: c.workload, Writers: 1, EntrySize: c.entrySize, SegmentSize: c.segSize, KeepAll: true}
	log, ok := openLog(sys, cfg, &res)
	if !ok {
		return res
	}
	perBatch := max(replayBatchBytes/c.entrySize, 1)
	all := make([]byte, perBatch*c.entrySize)
	fillRandom(all, 7)
	batch := make([][]byte, perBatch)
	for i := range batch {
		batch[i] = all[i*c.entrySize : (i+1)*c.entrySize]
	}
	want := max(total/int64(c.entrySize), int64(perBatch))
	var lsn uint64 = 1
	for n := int64(0); n < want; {
		b := batch[:min(int64(perBatch), want-n)]
		if err := log.Flush(lsn, b); err != nil {
			log.Close()
			res.Error = "write: " + err.Error()
			return res
		}
		lsn += uint64(len(b))
		n += int64(len(b))
	}
	if err := log.Close(); err != nil {
		res.Error = "close: " + err.Error()
		return res
	}
	if err := dropCache(dir); err != nil {
		res.Error = "drop cache: " + err.Error()
		return res
	}

	var entries, bytes int64
	cpu0, cpuOK := cpuTime()
	al0 := allocs()
	start := time.Now()
	var err error
	errc := make(chan error, 1)
	go func() { errc <- rp.Replay(cfg, func(b []byte) { entries++; bytes += int64(len(b)) }) }()
	limit := 2*time.Minute + time.Duration(float64(total)/5e6)*time.Second
	select {
	case err = <-errc:
	case <-time.After(limit):
		res.Error = fmt.Sprintf("replay still running after %v", limit)
		return res
	}
	el := time.Since(start).Seconds()
	al1 := allocs()
	cpu1, _ := cpuTime()
	if err == nil && entries != want {
		err = fmt.Errorf("replayed %d entries of %d written", entries, want)
	}
	if err != nil {
		res.Error = "replay: " + err.Error()
		return res
	}
	res.DurationS, res.Ops, res.Entries, res.Bytes = el, 1, entries, bytes
	res.BatchEntries = perBatch
	if el > 0 {
		res.EntriesPerS = float64(entries) / el
		res.MBPerS = float64(bytes) / el / 1e6
	}
	if entries > 0 {
		if cpuOK {
			res.CPUPerEntryUS = float64(cpu1-cpu0) / 1e3 / float64(entries)
		}
		res.AllocsPerEntry = float64(al1-al0) / float64(entries)
	}
	return res
}
