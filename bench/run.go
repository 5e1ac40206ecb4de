package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The workloads: what a cell is, how each workload runs its cells (the
// commit-style workloads through runCell, restart and replay their own
// way), and the directory hygiene between cells. The result schema is in
// schema.go, the load generator in load.go.

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
	if m, ok := log.(cellMeasurer); ok {
		m.measure(&res)
	}
	if err := log.Close(); err != nil {
		res.Error = "close: " + err.Error()
	}
	res.setMeasures(ld, before, after)
	return res
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
