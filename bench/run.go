package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
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
	wlRestart    = "restart"     // open, commit N, close, reopen, commit N
)

// AllWorkloads lists the workloads in the order they run.
var AllWorkloads = []string{wlCommit, wlLatency, wlBulk, wlRotate, wlReplay, wlRestart}

// wlRaft is the Raft workload (raft.go): dwal's raftstore beside raft-wal
// and raft-boltdb under hashicorp/raft. It runs only when asked for
// (--workloads raft), in the peers' process, where the other stores live.
const wlRaft = "raft"

// KnownWorkloads are the workloads --workloads accepts.
var KnownWorkloads = append(slices.Clone(AllWorkloads), wlRaft)

// The phases of the restart workload.
const (
	phaseFirst    = "first open" // a fresh directory
	phaseReopened = "reopened"   // the same directory after Close, opened again
)

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
	// Warm marks a --warm cell: the steady state, measured beside the
	// headline cell of the same system and workload, which starts writing
	// right after Open with nothing unmeasured before it.
	Warm bool `json:"warm,omitempty"`
	// WarmedUp says the harness called the log's WarmUp after Open (dwal:
	// WaitPrepared); only --warm cells do.
	WarmedUp bool `json:"warmed_up,omitempty"`
	// Phase is the restart workload's phase (first open, reopened).
	Phase string `json:"phase,omitempty"`
	// OpenUS is how long Open (or Reopen) took, in µs.
	OpenUS float64 `json:"open_us,omitempty"`

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
	WarmupBytes    int64   `json:"warmup_bytes"` // entry bytes written before the measured window (0 but in --warm cells)

	Error   string `json:"error,omitempty"`
	Skipped string `json:"skipped,omitempty"`
}

// cell is what to run. A headline cell opens the log and measures from its
// first op; a warm cell (--warm) first brings the log to its steady state:
// WarmUp, one op, a quiet directory, --warmup and warmBytes unmeasured.
type cell struct {
	workload  string
	writers   int
	entrySize int
	perOp     int           // entries per op
	flush     bool          // ops are Log.Flush batches, not Log.Commit
	segSize   int64         // 0: the system's default
	warm      bool          // a --warm cell
	warmBytes int64         // warm cells: the warmup also lasts until this many bytes are written
	quiet     time.Duration // warm cells: longest wait for the directory to go quiet (0: 10 s)
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
	if c.warm {
		return fmt.Sprintf("%s-%s-c%d-warm", sys, c.workload, c.writers)
	}
	return fmt.Sprintf("%s-%s-c%d", sys, c.workload, c.writers)
}

func (c cell) result(sys System, p *runParams) Result {
	r := Result{Workload: c.workload, System: sys.Name(), Writers: c.writers, EntrySize: c.entrySize,
		BatchEntries: c.perOp, SegmentSize: c.segSize, Process: p.process, Warm: c.warm}
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

// openLog opens sys with cfg and notes its backend and how long Open took
// in res; when it reports false, res says why not.
func openLog(sys System, cfg Config, res *Result) (Log, bool) {
	return openWith(sys.Open, cfg, res, "open")
}

// openWith is openLog with open (Open or Reopen) named what.
func openWith(open func(Config) (Log, error), cfg Config, res *Result, what string) (Log, bool) {
	t0 := time.Now()
	log, err := open(cfg)
	res.OpenUS = float64(time.Since(t0).Nanoseconds()) / 1e3
	if err != nil {
		res.Skipped = what + ": " + err.Error()
		return nil, false
	}
	if d, ok := log.(Describer); ok {
		res.Backend = d.Describe()
	}
	return log, true
}

// warmUp is the --warm path's first step: the log's WarmUp, if it has one
// (dwal waits there until its first segment is prepared). Headline cells
// never come here.
func warmUp(log Log, res *Result) error {
	w, ok := log.(Warmer)
	if !ok {
		return nil
	}
	if err := w.WarmUp(); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	res.WarmedUp = true
	return nil
}

// runCell measures sys on c with the writers of c for p.duration: a
// headline cell from the first op after Open, a warm cell after its
// warm-up (see warmStart).
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
	ld := newLoad(log, c)
	var before counters
	if c.warm {
		if err := ld.warmStart(dir, p, &res); err != nil {
			// The writers are stopped; if they did not return, the log is
			// left open (closing it could block too).
			if ld.halt(hangLimit(p)) {
				log.Close()
			}
			res.Error = err.Error()
			return res
		}
		before = ld.begin()
	} else {
		// The headline: the clock starts with the writers, right after Open.
		before = ld.begin()
		ld.start(p.rate, 0)
	}
	sleepUnless(p.duration, &ld.stop)
	after := ld.end()
	if !ld.halt(hangLimit(p)) {
		// Leave the log open and its writers blocked: closing it could
		// block too. The process ends soon anyway.
		res.Error = fmt.Sprintf("writers still blocked %v after the end of the measurement", hangLimit(p))
		return res
	}
	if ld.err != nil {
		log.Close()
		res.Error = ld.err.Error()
		return res
	}
	if r, ok := log.(Rotator); ok {
		res.Rotations = r.Rotations()
	}
	if err := log.Close(); err != nil {
		res.Error = "close: " + err.Error()
	}
	res.setMeasures(ld, before, after)
	return res
}

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

// runRestart is the restart workload: open sys on a fresh directory,
// commit n entries with the writers of c, close it, reopen the directory
// (Reopener) and commit n more. It returns one result per phase, each
// timed from its first op after Open (a warm cell calls the log's WarmUp
// after each Open first), with how long that Open took.
func runRestart(sys System, c cell, n int64, p *runParams) []Result {
	first, again := c.result(sys, p), c.result(sys, p)
	first.Phase, again.Phase = phaseFirst, phaseReopened
	rs, ok := sys.(Reopener)
	if !ok {
		first.Skipped, again.Skipped = "no reopen adapter", "no reopen adapter"
		return []Result{first, again}
	}
	dir, ok := cellDir(sys, c, p, &first)
	if !ok {
		again.Skipped, again.Error = first.Skipped, first.Error
		return []Result{first, again}
	}
	if !p.keep {
		defer os.RemoveAll(dir)
	}
	cfg := Config{Dir: dir, Workload: c.workload, Writers: c.writers, EntrySize: c.entrySize, SegmentSize: c.segSize}
	lsn := uint64(0)
	if !restartPhase(sys.Open, cfg, c, n, p, &lsn, &first, "open") {
		again.Skipped = "the first phase did not finish"
		return []Result{first, again}
	}
	restartPhase(rs.Reopen, cfg, c, n, p, &lsn, &again, "reopen")
	return []Result{first, again}
}

// restartPhase opens the log with open, commits n entries after *lsn
// (which it advances), closes the log and fills res; it reports whether
// the log was closed cleanly.
func restartPhase(open func(Config) (Log, error), cfg Config, c cell, n int64, p *runParams, lsn *uint64, res *Result, what string) bool {
	log, ok := openWith(open, cfg, res, what)
	if !ok {
		return false
	}
	if c.warm {
		if err := warmUp(log, res); err != nil {
			log.Close()
			res.Error = err.Error()
			return false
		}
	}
	ld := newLoad(log, c)
	ld.lsn.Store(*lsn)
	before := ld.begin()
	ld.start(p.rate, (n+int64(c.perOp)-1)/int64(c.perOp))
	if !waitTimeout(&ld.wg, hangLimit(p)+time.Duration(n)*time.Millisecond) {
		res.Error = fmt.Sprintf("%d entries not committed in %v", n, hangLimit(p)+time.Duration(n)*time.Millisecond)
		ld.stop.Store(true)
		return false
	}
	after := ld.end()
	*lsn = ld.lsn.Load()
	if ld.err != nil {
		log.Close()
		res.Error = ld.err.Error()
		return false
	}
	if err := log.Close(); err != nil {
		res.Error = "close: " + err.Error()
		return false
	}
	res.setMeasures(ld, before, after)
	return true
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

// writeReplayData writes want entries of entrySize bytes to log in synced
// batches of perBatch entries (LSN 1 on), and closes it.
func writeReplayData(log Log, entrySize, perBatch int, want int64) error {
	all := make([]byte, perBatch*entrySize)
	fillRandom(all, 7)
	batch := make([][]byte, perBatch)
	for i := range batch {
		batch[i] = all[i*entrySize : (i+1)*entrySize]
	}
	var lsn uint64 = 1
	for n := int64(0); n < want; {
		b := batch[:min(int64(perBatch), want-n)]
		if err := log.Flush(lsn, b); err != nil {
			log.Close()
			return fmt.Errorf("write: %w", err)
		}
		lsn += uint64(len(b))
		n += int64(len(b))
	}
	if err := log.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

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
	want := max(total/int64(c.entrySize), int64(perBatch))
	if err := writeReplayData(log, c.entrySize, perBatch, want); err != nil {
		res.Error = err.Error()
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
