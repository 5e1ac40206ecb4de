package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is the JSON the program writes.
type Report struct {
	Version  int       `json:"version"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Host     Host      `json:"host"`
	Options  Options   `json:"options"`
	Fio      *FioLimit `json:"fio,omitempty"`
	FioError string    `json:"fio_error,omitempty"`
	Peers    PeersInfo `json:"peers"`
	Results  []Result  `json:"results"`
	Targets  []Target  `json:"targets"`
	Notes    []string  `json:"notes"`
}

// Host describes the machine and the measured directory.
type Host struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel,omitempty"`
	CPU      string `json:"cpu,omitempty"`
	CPUs     int    `json:"cpus"`
	Go       string `json:"go"`
	Dir      string `json:"dir"`
	FS       string `json:"fs,omitempty"`     // file system type of Dir
	Device   string `json:"device,omitempty"` // what it is mounted from
	Load     string `json:"load,omitempty"`   // /proc/loadavg at the start
}

func builtinSystems() []System {
	return append(append(append(DwalSystems(), SeedSystem()), FloorSystems()...), FloorGroupSystem())
}

// Main is the benchmark program (dwalbench, go run ./bench/cmd/dwalbench):
// it parses args, runs the workloads on every selected system, prints a
// table (or JSON) and writes the JSON and PNG plots to --out. Exit codes: 0
// success, 1 a dwal system failed or the results could not be written, 2
// bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	var o Options
	fl, finish := newFlagSet(&o, stderr)
	fl.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := finish(); err != nil {
		fmt.Fprintf(stderr, "dwalbench: %v\n", err)
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "dwalbench: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if o.Child {
		fmt.Fprintln(stderr, "dwalbench: --child is for the peers' binary")
		return 2
	}
	if o.From != "" {
		return replot(&o, stdout, stderr)
	}
	rep, err := run(&o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dwalbench: %v\n", err)
		return 1
	}
	code := 0
	if o.Out != "" {
		files, err := writeOutputs(rep, o.Out)
		if err != nil {
			fmt.Fprintf(stderr, "dwalbench: %v\n", err)
			code = 1
		}
		rep.Notes = append(rep.Notes, "wrote "+strings.Join(files, ", "))
	}
	if o.Format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printTable(stdout, rep)
	}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.System, "dwal-") && r.Error != "" {
			code = 1
		}
	}
	return code
}

// replot prints the table of a saved report and redraws its plots.
func replot(o *Options, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(o.From)
	if err != nil {
		fmt.Fprintf(stderr, "dwalbench: %v\n", err)
		return 1
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		fmt.Fprintf(stderr, "dwalbench: %s: %v\n", o.From, err)
		return 1
	}
	rep.Targets = evalTargets(&rep)
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			fmt.Fprintf(stderr, "dwalbench: %v\n", err)
			return 1
		}
		if _, err := writePlots(&rep, o.Out); err != nil {
			fmt.Fprintf(stderr, "dwalbench: plots: %v\n", err)
			return 1
		}
	}
	if o.Format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(&rep)
	} else {
		printTable(stdout, &rep)
	}
	return 0
}

const usageText = `usage: dwalbench [flags]

Runs write-ahead logs side by side on one directory's disk: dwal (io_uring
and fallback backends), a seed-style baseline (Card 1's buffered append +
fdatasync), the floors on a pre-zeroed O_DIRECT file (pwrite+fdatasync and
pwritev2(RWF_DSYNC) by each writer, and floor-group, one flusher's group
commit), and the peers pebble record.LogWriter, etcd wal, tidwall/wal and
hashicorp/raft-wal (built from the bench/peers module and run as a
subprocess). Each cell opens its log and measures from the first write, as
users start a log; --warm adds the steady state beside it. Prints a table
with the device limit from scripts/fio-limit.sh and dwal's performance
targets, and writes <out>/<timestamp>.json, <out>/latest.json and PNG plots.

workloads:
  commit   C writers each appending one entry and waiting until it is durable
  latency  one writer, one 4 KiB entry per synced flush
  bulk     one writer, 1 MiB synced batches
  rotate   commit with small segments, and the same without rotation
  replay   write --replay-size, drop it from the page cache, reopen, read it back
  restart  commit --restart-entries, close, reopen, commit as many again (each phase)
  raft     (only when named) hashicorp/raft's log stores: dwal's raftstore, raft-wal,
           raft-boltdb: StoreLogs latency, GetLog throughput, a 3-node cluster (in
           memory and over TCP); and
           the floor of one 64x128 B write + fdatasync

flags:
`

// run measures everything o asks for.
func run(o *Options, stderr io.Writer) (*Report, error) {
	rep := &Report{Version: 1, Started: time.Now().UTC(), Options: *o}
	base := o.Dir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(base, "dwal-bench-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		rep.Notes = append(rep.Notes, "data kept in "+root)
	} else {
		defer os.RemoveAll(root)
	}
	rep.Host = hostInfo(root)
	pr := &progress{on: o.Progress == "on" || o.Progress == "auto" && stdoutIsTerminal(), w: stderr}
	defer pr.done()

	measureFio(o, rep, root, pr)
	local, peers := splitSystems(o.Systems)
	build := peers
	if (slices.Contains(o.Workloads, wlRaft) || slices.Contains(o.Workloads, wlScale)) && len(peers) == 0 {
		// The raft stores live in the peers' module: build it for them.
		build = []string{raftPeer}
	}
	pe := startPeers(o, rep, build, root, pr, stderr)
	p := &runParams{root: root, duration: o.Duration, warmup: o.Warmup, rate: o.Rate, keep: o.Keep, process: "main"}
	for _, w := range o.Workloads {
		rep.Results = append(rep.Results, runWorkload(o, w, local, p, pr)...)
		switch {
		case pe != nil && (w == wlRaft || w == wlScale):
			rep.Results = append(rep.Results, pe.runWorkload(o, w, build, root, pr, rep)...)
		case pe != nil && len(peers) > 0:
			rep.Results = append(rep.Results, pe.runWorkload(o, w, peers, root, pr, rep)...)
		}
	}
	pr.done()
	rep.Finished = time.Now().UTC()
	rep.Targets = evalTargets(rep)
	rep.Notes = append(rep.Notes, runNotes(o)...)
	return rep, nil
}

// measureFio runs fio's device limit into rep (or says why not).
func measureFio(o *Options, rep *Report, root string, pr *progress) {
	if o.Fio != "on" {
		rep.FioError = "not run (--fio off)"
		return
	}
	pr.step("fio device limit (%v per job)", o.FioRuntime)
	f, err := runFio(o.FioScript, root, o.FioRuntime)
	if err != nil {
		rep.FioError = err.Error()
		return
	}
	rep.Fio = f
}

// splitSystems returns the systems of this process, in builtinSystems'
// order, and the names of the peers, which run in the peers' process.
func splitSystems(names []string) (local []System, peers []string) {
	for _, s := range builtinSystems() {
		if contains(names, s.Name()) {
			local = append(local, s)
		}
	}
	for _, n := range names {
		if contains(peerNames, n) {
			peers = append(peers, n)
		}
	}
	return local, peers
}

// startPeers builds the peers' binary when peers are asked for; when it
// cannot, it records them as not run and returns nil.
func startPeers(o *Options, rep *Report, peers []string, root string, pr *progress, stderr io.Writer) *peerRunner {
	if len(peers) == 0 {
		return nil
	}
	pr.step("building the peers' binary (bench/peers)")
	pe, dir, err := buildPeers(o, root, stderr)
	rep.Peers.Dir = dir
	if err != nil {
		rep.Peers.Error = err.Error()
		for _, n := range peers {
			rep.Results = append(rep.Results, Result{System: n, Workload: "*", Process: "peers", Skipped: "peers not built: " + err.Error()})
		}
		return nil
	}
	return pe
}

// runWorkload runs workload w on the peers in their process.
func (pe *peerRunner) runWorkload(o *Options, w string, peers []string, root string, pr *progress, rep *Report) []Result {
	pr.step("%s: peers (%s)", w, strings.Join(peers, ", "))
	limit := 30*time.Minute + time.Duration(len(o.Writers)*len(peers)*4)*(o.Duration+o.Warmup+10*time.Second)
	co, err := pe.run(childArgs(o, w, peers, root, pr.on), limit)
	if err != nil {
		var out []Result
		for _, n := range peers {
			out = append(out, Result{System: n, Workload: w, Process: "peers", Error: err.Error()})
		}
		return out
	}
	rep.Peers.Versions = co.Versions
	return co.Results
}

// runNotes are the report's notes on how o measured.
func runNotes(o *Options) []string {
	start := "each cell opens its log and measures from the first op, as a user who opens the log and writes: nothing waits for background preparation, nothing is written unmeasured first"
	if o.Warm {
		start += "; the (warm) cells beside them show the steady state: WarmUp (dwal: WaitPrepared), one op, a quiet directory and --warmup unmeasured first"
	} else {
		start += " (--warm adds the steady state beside them)"
	}
	notes := []string{
		start,
		"latency is per op: one commit (commit, rotate, restart), one synced flush (latency), one synced batch (bulk); MB = 10^6 bytes",
		"CPU per entry is the whole process's user+system time (getrusage) over the measured window divided by its entries; allocs per entry likewise (runtime/metrics)",
		dropCacheNote,
		"floors and fio write into initialised (pre-written) blocks; logs write where their design puts them",
	}
	if o.Warm && o.BulkWarmup > 0 && slices.Contains(o.Workloads, wlBulk) {
		notes = append(notes, fmt.Sprintf("bulk (warm): each system first writes %d MiB unmeasured (--bulk-warmup): the steady state of a long-running log, not its first seconds", o.BulkWarmup>>20))
	}
	if slices.Contains(o.Workloads, wlRestart) {
		notes = append(notes, fmt.Sprintf("restart: %d writers commit %d entries after opening a fresh directory (first open), close the log, reopen it and commit %d more (reopened); each phase timed from its first op, its Open time in the JSON (open_us)",
			o.RestartWriters, o.RestartEntries, o.RestartEntries))
	}
	if o.Rate > 0 {
		notes = append(notes, fmt.Sprintf("open loop at %.0f ops/s: latency counts from each op's scheduled start (no coordinated omission)", o.Rate))
	}
	return notes
}

// runWorkload runs one workload on systems: each cell as the headline and,
// with --warm, right after it the same cell warm (the replay workload has
// no warm cells: its writing is not measured).
func runWorkload(o *Options, w string, systems []System, p *runParams, pr *progress) []Result {
	var out []Result
	variants := []bool{false}
	if o.Warm && w != wlReplay {
		variants = append(variants, true)
	}
	each := func(c cell, fn func(s System, c cell) []Result) {
		for _, s := range systems {
			for _, warm := range variants {
				c.warm = warm
				out = append(out, fn(s, c)...)
			}
		}
	}
	one := func(s System, c cell) []Result {
		pr.step("%s C=%d %s%s", c.workload, c.writers, s.Name(), warmLabel(c.warm))
		return []Result{runCell(s, c, p)}
	}
	switch w {
	case wlCommit:
		for _, n := range o.Writers {
			each(cell{workload: wlCommit, writers: n, entrySize: o.EntrySize, perOp: 1, segSize: o.SegmentSize}, one)
		}
	case wlLatency:
		each(cell{workload: wlLatency, writers: 1, entrySize: o.IOSize, perOp: 1, flush: true, segSize: o.SegmentSize}, one)
	case wlBulk:
		each(cell{workload: wlBulk, writers: 1, entrySize: o.IOSize, perOp: max(o.BatchSize/o.IOSize, 1), flush: true, segSize: o.SegmentSize, warmBytes: o.BulkWarmup}, one)
	case wlRotate:
		each(cell{workload: wlRotate, writers: o.RotateWriters, entrySize: o.IOSize, perOp: 1, segSize: o.RotateSegment}, func(s System, c cell) []Result {
			r := one(s, c)[0]
			c.workload = wlRotateNone
			if r.Skipped != "" || r.Error != "" {
				n := c.result(s, p)
				n.Skipped = "rotate did not run"
				return []Result{r, n}
			}
			c.segSize = noRotationSegment(r)
			c.quiet = time.Minute // warm: a big segment is prepared before the clock starts
			return append([]Result{r}, one(s, c)...)
		})
	case wlReplay:
		each(cell{workload: wlReplay, writers: 1, entrySize: o.IOSize, perOp: 1, segSize: o.SegmentSize}, func(s System, c cell) []Result {
			pr.step("replay %s (%d MiB)", s.Name(), o.ReplaySize>>20)
			return []Result{runReplay(s, c, o.ReplaySize, p)}
		})
	case wlRaft:
		if p.process == "main" {
			out = append(out, raftFloor(o, p, pr)...)
		}
	case wlPartitions:
		out = append(out, runPartitions(o, p, pr)...)
	case wlRestart:
		each(cell{workload: wlRestart, writers: o.RestartWriters, entrySize: o.EntrySize, perOp: 1, segSize: o.SegmentSize}, func(s System, c cell) []Result {
			pr.step("restart C=%d %s%s (%d entries per phase)", c.writers, s.Name(), warmLabel(c.warm), o.RestartEntries)
			return runRestart(s, c, o.RestartEntries, p)
		})
	}
	return out
}

// warmLabel is what marks a warm cell after its system's name.
func warmLabel(warm bool) string {
	if warm {
		return " (warm)"
	}
	return ""
}

// noRotationSegment is a segment size that holds everything the rotate run
// wrote (warmup included) with a margin, so that the same workload runs
// without a rotation (at most 2 GiB; the result counts rotations anyway).
func noRotationSegment(r Result) int64 {
	written := float64(r.Bytes + r.WarmupBytes)
	const step = 8 << 20
	s := max(int64(1.5*written), 64<<20)
	return min((s+step-1)/step*step, 2<<30)
}

// hostInfo describes the machine and dir.
func hostInfo(dir string) Host {
	h := Host{OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(), Dir: dir}
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	h.FS, h.Device = mountOf(dir)
	return h
}

// mountOf finds the file system type and source of the mount holding dir
// (the longest mount point that prefixes it, from /proc/self/mountinfo).
func mountOf(dir string) (fstype, source string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		abs = dir
	}
	best := -1
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		mp := f[4]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, fstype, source = len(mp), g[0], g[1]
		}
	}
	return fstype, source
}
