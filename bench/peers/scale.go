package peers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/dwal-project/dwal/bench"
	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/raftstore"
)

// The scale workload (bench/scale.go says what it measures). Each log is
// written here; each measurement runs in a fresh process of this binary
// (ScaleProbe), after the page cache is dropped, so its Open is a cold
// start and its maximum RSS is its own.

// scaleShape is a batch shape: entries per batch of 128 bytes.
type scaleShape struct {
	name     string
	perBatch int
}

var scaleShapes = []scaleShape{{"raft-shaped", 64}, {"one-entry", 1}}

const (
	scaleEntry   = 128
	scaleReaders = 4
	// scaleMaxSyncs bounds the synced StoreLogs calls spent writing one
	// raft-wal log (raft-wal has no unsynced write): at ~0.2 ms each, a
	// minute.
	scaleMaxSyncs = 300_000
)

// ScaleBench is bench.ScaleBench for this binary.
func ScaleBench(p bench.ScaleParams) []bench.Result {
	self, err := os.Executable()
	if err != nil {
		r := bench.ScaleResult("scale", "", 0, 0)
		r.Error = err.Error()
		return []bench.Result{r}
	}
	var out []bench.Result
	for _, sh := range scaleShapes {
		for _, size := range p.Sizes {
			s := &scaleRun{p: p, self: self, shape: sh, size: size,
				dir: filepath.Join(p.Root, fmt.Sprintf("%s-%d", sh.name, size))}
			out = append(out, s.run()...)
			if !p.Keep {
				os.RemoveAll(s.dir) // the next size's needs the room
			}
		}
	}
	return out
}

// scaleRun is one shape at one size.
type scaleRun struct {
	p       bench.ScaleParams
	self    string
	shape   scaleShape
	size    int64
	dir     string
	last    uint64 // LSNs 1..last were written
	payload int64
	out     []bench.Result
}

func (s *scaleRun) result(system, phase string) bench.Result {
	return bench.ScaleResult(system, phase, s.shape.perBatch, s.size)
}

func (s *scaleRun) fail(system, phase string, err error) {
	r := s.result(system, phase)
	r.Error = err.Error()
	s.out = append(s.out, r)
}

func (s *scaleRun) run() []bench.Result {
	dwalDir, walDir := filepath.Join(s.dir, "dwal"), filepath.Join(s.dir, "raft-wal")
	s.p.Step("scale: %s, %d MiB: write dwal", s.shape.name, s.size>>20)
	if err := s.writeDwal(dwalDir); err != nil {
		s.fail("dwal", bench.PhaseWrite, err)
		return s.out
	}
	mid := s.last / 2
	w := s.result("dwal", bench.PhaseWrite)
	w.Entries, w.Bytes = int64(s.last), s.payload
	w.DiskPerPayload = float64(bench.DiskBytes(dwalDir)) / float64(s.payload)
	s.out = append(s.out, w)
	s.probe("dwal", bench.PhaseOpenRead, probeSpec{Kind: "dwal", Dir: dwalDir, Mid: mid, Last: s.last})
	s.probe("dwal", bench.PhaseRandom, probeSpec{Kind: "dwal", Dir: dwalDir, Mid: mid, Last: s.last, Readers: scaleReaders, Duration: s.p.Duration})
	s.probe("dwal-direct", bench.PhaseRandom, probeSpec{Kind: "dwal-direct", Dir: dwalDir, Mid: mid, Last: s.last, Readers: scaleReaders, Duration: s.p.Duration})
	s.probe("dwal", bench.PhaseReplay, probeSpec{Kind: "dwal-replay", Dir: dwalDir, Last: s.last})
	s.probe("raw O_DIRECT", bench.PhaseRawRead, probeSpec{Kind: "raw", Dir: dwalDir})
	if s.shape.perBatch > 1 {
		s.probe("raftstore", bench.PhaseOpenRead, probeSpec{Kind: "raftstore", Dir: dwalDir, Mid: mid, Last: s.last})
	}
	if err := unsealLast(dwalDir); err != nil {
		s.fail("dwal", bench.PhaseCrashRead, err)
	} else {
		s.probe("dwal", bench.PhaseCrashRead, probeSpec{Kind: "dwal", Dir: dwalDir, Mid: mid, Last: s.last})
	}
	if syncs := (s.last + uint64(s.shape.perBatch) - 1) / uint64(s.shape.perBatch); syncs > scaleMaxSyncs {
		r := s.result("raft-wal", bench.PhaseOpenRead)
		r.Skipped = fmt.Sprintf("%d synced StoreLogs calls to write it (raft-wal has no unsynced write): over %d", syncs, scaleMaxSyncs)
		s.out = append(s.out, r)
		return s.out
	}
	s.p.Step("scale: %s, %d MiB: write raft-wal", s.shape.name, s.size>>20)
	if err := s.writeRaftWAL(walDir); err != nil {
		s.fail("raft-wal", bench.PhaseWrite, err)
		return s.out
	}
	rw := s.result("raft-wal", bench.PhaseWrite)
	rw.Entries, rw.Bytes = int64(s.last), s.payload
	rw.DiskPerPayload = float64(bench.DiskBytes(walDir)) / float64(s.payload)
	s.out = append(s.out, rw)
	s.probe("raft-wal", bench.PhaseOpenRead, probeSpec{Kind: "raft-wal", Dir: walDir, Mid: mid, Last: s.last})
	s.probe("raft-wal", bench.PhaseRandom, probeSpec{Kind: "raft-wal", Dir: walDir, Mid: mid, Last: s.last, Readers: scaleReaders, Duration: s.p.Duration})
	return s.out
}

// writeDwal writes the log: raft-shaped batches through raftstore (each
// StoreLogs synced, as raft makes them), one-entry batches through the
// engine unsynced (a million syncs would take the run), until its
// segments hold s.size bytes; then closes it.
func (s *scaleRun) writeDwal(dir string) error {
	data := make([]byte, scaleEntry)
	if s.shape.perBatch > 1 {
		st, err := raftstore.Open(dir)
		if err != nil {
			return err
		}
		for int64(st.Stats().DiskBytes) < s.size {
			for range 256 {
				if err := st.StoreLogs(benchLogs(s.last+1, s.shape.perBatch, scaleEntry, data)); err != nil {
					st.Close()
					return err
				}
				s.last += uint64(s.shape.perBatch)
			}
		}
		s.payload = int64(s.last) * scaleEntry
		return st.Close()
	}
	cfg := engine.DefaultConfig(dir)
	cfg.SegmentsToRetain = engine.RetainAll
	c, err := engine.Open(cfg)
	if err != nil {
		return err
	}
	e := []*engine.PendingEntry{nil}
	for int64(c.TotalDiskBytesWritten()) < s.size {
		s.last++
		e[0] = engine.NewAsyncEntry(engine.LSN(s.last), data)
		if _, err := c.Flush(e, false); err != nil {
			c.Close()
			return err
		}
	}
	s.payload = int64(s.last) * scaleEntry
	return c.Close()
}

// writeRaftWAL writes the same entries, in the same batches, to raft-wal.
func (s *scaleRun) writeRaftWAL(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return err
	}
	data := make([]byte, scaleEntry)
	for next := uint64(1); next <= s.last; next += uint64(s.shape.perBatch) {
		if err := w.StoreLogs(benchLogs(next, s.shape.perBatch, scaleEntry, data)); err != nil {
			w.Close()
			meta.Close()
			return err
		}
	}
	return errors.Join(w.Close(), meta.Close())
}

// probe runs one measurement in a fresh process of this binary and adds
// its result.
func (s *scaleRun) probe(system, phase string, spec probeSpec) {
	s.p.Step("scale: %s, %d MiB: %s %s", s.shape.name, s.size>>20, system, phase)
	cold := dropCaches() == nil
	if !cold {
		phase += " (page cache not dropped)"
	}
	arg, _ := json.Marshal(spec)
	cmd := exec.Command(s.self, "scale-probe", string(arg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := s.result(system, phase)
	if err := cmd.Run(); err != nil {
		r.Error = fmt.Sprintf("probe: %v: %s", err, strings.TrimSpace(stderr.String()))
		s.out = append(s.out, r)
		return
	}
	var pr probeResult
	if err := json.Unmarshal(stdout.Bytes(), &pr); err != nil {
		r.Error = fmt.Sprintf("probe output: %v", err)
	}
	r.Error = pr.Err
	r.OpenUS, r.FirstReadUS, r.MaxRSSBytes = pr.OpenUS, pr.FirstReadUS, pr.MaxRSS
	r.Ops, r.Entries, r.Bytes, r.DurationS = pr.Ops, pr.Ops, pr.Bytes, pr.Seconds
	r.Writers = max(1, spec.Readers)
	if pr.Seconds > 0 {
		r.EntriesPerS = float64(pr.Ops) / pr.Seconds
		r.MBPerS = float64(pr.Bytes) / 1e6 / pr.Seconds
	}
	s.out = append(s.out, r)
	if pr.ColdSeconds > 0 {
		cold := r
		cold.Phase = strings.Replace(r.Phase, bench.PhaseRandom, bench.PhaseRandomCold, 1)
		cold.Ops, cold.Entries, cold.Bytes, cold.DurationS = pr.ColdOps, pr.ColdOps, pr.ColdOps*scaleEntry, pr.ColdSeconds
		cold.EntriesPerS = float64(pr.ColdOps) / pr.ColdSeconds
		cold.MBPerS = float64(cold.Bytes) / 1e6 / pr.ColdSeconds
		s.out = append(s.out, cold)
	}
}

// probeSpec is one measurement, run by ScaleProbe.
type probeSpec struct {
	Kind      string // dwal, dwal-direct, dwal-replay, raftstore, raft-wal, raw
	Dir       string
	Mid, Last uint64
	Readers   int
	Duration  time.Duration
}

// probeResult is what ScaleProbe prints.
type probeResult struct {
	OpenUS, FirstReadUS float64
	Ops, Bytes          int64
	Seconds             float64
	ColdOps             int64 // random reads: the first pass's
	ColdSeconds         float64
	MaxRSS              int64
	Err                 string
}

// ScaleProbe is the probe process (peerbench scale-probe SPEC): it runs
// the measurement of the JSON spec and prints a probeResult.
func ScaleProbe(args []string) int {
	var spec probeSpec
	if len(args) != 1 || json.Unmarshal([]byte(args[0]), &spec) != nil {
		fmt.Fprintln(os.Stderr, "usage: peerbench scale-probe SPEC (run by the scale workload)")
		return 2
	}
	var res probeResult
	var err error
	switch spec.Kind {
	case "dwal", "dwal-direct":
		err = probeDwal(spec, &res)
	case "dwal-replay":
		err = probeReplay(spec, &res)
	case "raftstore":
		err = probeRaftstore(spec, &res)
	case "raft-wal":
		err = probeRaftWAL(spec, &res)
	case "raw":
		res.Bytes, res.Seconds, err = rawRead(spec.Dir)
	default:
		err = fmt.Errorf("unknown probe %q", spec.Kind)
	}
	if err != nil {
		res.Err = err.Error()
	}
	res.MaxRSS = bench.MaxRSS()
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// noCachedReads hides the backend's page-cache reads (vfs.CachedReader):
// every read goes as the backend writes, O_DIRECT on io_uring.
type noCachedReads struct{ vfs.FS }

func (n noCachedReads) Unwrap() vfs.FS { return n.FS }

func probeDwal(spec probeSpec, res *probeResult) error {
	cfg := engine.DefaultConfig(spec.Dir)
	cfg.SegmentsToRetain = engine.RetainAll
	if spec.Kind == "dwal-direct" {
		probe, err := engine.Open(cfg) // the backend Open would pick
		if err != nil {
			return err
		}
		name := probe.Backend().Name
		probe.Close()
		if name != "io_uring" {
			return fmt.Errorf("the backend here is %s: no O_DIRECT reads to compare", name)
		}
		fsys, err := newUringFS(spec.Dir)
		if err != nil {
			return err
		}
		defer fsys.Close()
		cfg.FS = noCachedReads{fsys}
	}
	t0 := time.Now()
	c, err := engine.Open(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	res.OpenUS = us(time.Since(t0))
	t0 = time.Now()
	if _, err := c.Read(engine.LSN(spec.Mid), nil); err != nil {
		return fmt.Errorf("Read(%d): %w", spec.Mid, err)
	}
	res.FirstReadUS = us(time.Since(t0))
	return randomReads(spec, res, func() func(uint64) error {
		var buf []byte
		return func(l uint64) error {
			var err error
			buf, err = c.Read(engine.LSN(l), buf[:0])
			return err
		}
	})
}

func probeReplay(spec probeSpec, res *probeResult) error {
	cfg := engine.DefaultConfig(spec.Dir)
	cfg.SegmentsToRetain = engine.RetainAll
	c, err := engine.Open(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	t0 := time.Now()
	var n uint64
	if err := c.Replay(0, func(engine.LSN, []byte) error { n++; return nil }); err != nil {
		return err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Ops, res.Bytes = int64(n), segBytes(spec.Dir)
	if n != spec.Last {
		return fmt.Errorf("replayed %d entries, wrote %d", n, spec.Last)
	}
	return nil
}

func probeRaftstore(spec probeSpec, res *probeResult) error {
	t0 := time.Now()
	s, err := raftstore.Open(spec.Dir)
	if err != nil {
		return err
	}
	defer s.Close()
	res.OpenUS = us(time.Since(t0))
	t0 = time.Now()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	var l raft.Log
	if err := s.GetLog(last, &l); err != nil {
		return err
	}
	if err := s.GetLog(spec.Mid, &l); err != nil {
		return err
	}
	res.FirstReadUS = us(time.Since(t0))
	if first != 1 || last != spec.Last {
		return fmt.Errorf("bounds %d..%d, wrote 1..%d", first, last, spec.Last)
	}
	return nil
}

func probeRaftWAL(spec probeSpec, res *probeResult) error {
	t0 := time.Now()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(spec.Dir, wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return err
	}
	defer meta.Close()
	defer w.Close()
	res.OpenUS = us(time.Since(t0))
	t0 = time.Now()
	var l raft.Log
	if err := w.GetLog(spec.Mid, &l); err != nil {
		return fmt.Errorf("GetLog(%d): %w", spec.Mid, err)
	}
	res.FirstReadUS = us(time.Since(t0))
	return randomReads(spec, res, func() func(uint64) error {
		var l raft.Log
		return func(i uint64) error { return w.GetLog(i, &l) }
	})
}

// randomReads runs spec.Readers readers of random LSNs 1..spec.Last for
// spec.Duration twice (none when Readers is 0): the first pass from a cold
// page cache, the second as it left it.
func randomReads(spec probeSpec, res *probeResult, reader func() func(uint64) error) error {
	if spec.Readers == 0 {
		return nil
	}
	if err := readPass(spec, res, reader, 1); err != nil {
		return err
	}
	res.ColdOps, res.ColdSeconds = res.Ops, res.Seconds
	return readPass(spec, res, reader, 2)
}

// readPass is one pass of randomReads.
func readPass(spec probeSpec, res *probeResult, reader func() func(uint64) error, pass uint64) error {
	var ops atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for r := range spec.Readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read := reader()
			rng := rand.New(rand.NewPCG(uint64(r), 11*pass))
			for time.Since(start) < spec.Duration {
				if err := read(1 + rng.Uint64N(spec.Last)); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Ops = ops.Load()
	res.Bytes = res.Ops * scaleEntry
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// unsealLast removes the last segment's .meta and index, as a crash after
// its last batch leaves them.
func unsealLast(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	last := ""
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".log") && n > last {
			last = n
		}
	}
	if last == "" {
		return errors.New("no segment")
	}
	os.Remove(filepath.Join(dir, last+".idx"))
	return os.Remove(filepath.Join(dir, last+".meta"))
}

// segBytes sums the sizes of dir's segments (NNNNNN.log).
func segBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
	}
	return n
}
