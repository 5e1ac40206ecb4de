package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dwal-project/dwal/engine"
)

// The partitions workload (--workloads partitions, only when named): N
// logs, one writer each, every Append of --entry-size bytes durable on
// return, for N in --partitions. The systems:
//
//   - dwal-set: one engine.Set, writer w appending to log w (one stream,
//     one group commit for every log);
//   - dwal-logs: N Coordinators (N directories), writer w on Coordinator w;
//   - dwal-one-log: one Coordinator with N writers (the bar: a set of N
//     logs should commit as fast as one log with as many writers);
//   - floor-files: N pre-zeroed files, each writer its own pwrite +
//     fdatasync in its own file (what N separate logs cannot beat);
//   - floor-group: one pre-zeroed file, one flusher's group commit for
//     all N writers (what one shared stream cannot beat).
//
// Each cell opens its system and measures from the first op, as the other
// commit-style cells do, and reports the disk bytes allocated at its end,
// the process's peak RSS over the cell, and the goroutines and open files
// the system holds.

const wlPartitions = "partitions"

// perWriterLog is a Log whose writers each write their own log.
type perWriterLog interface {
	CommitAs(w int, lsn uint64, data []byte) error
}

// cellMeasurer is a Log that adds its own figures to its cell's result
// once the writers have stopped, before Close.
type cellMeasurer interface {
	measure(r *Result)
}

// partitionSystems are the systems of the partitions workload.
func partitionSystems() []System {
	return append([]System{partSystem{"dwal-set"}, partSystem{"dwal-logs"}, partSystem{"dwal-one-log"}}, partitionFloors()...)
}

// runPartitions runs the partitions workload (in the main process only).
func runPartitions(o *Options, p *runParams, pr *progress) []Result {
	if p.process != "main" {
		return nil
	}
	var out []Result
	for _, n := range o.Partitions {
		for _, s := range partitionSystems() {
			pr.step("partitions N=%d %s", n, s.Name())
			c := cell{workload: wlPartitions, writers: n, entrySize: o.EntrySize, perOp: 1}
			base := baseline()
			sys := measured{System: s, base: base}
			r := runCell(sys, c, p)
			out = append(out, r)
		}
	}
	return out
}

// measured wraps a partitions system so that its logs report the cell's
// resources against base, the process before Open.
type measured struct {
	System
	base procUse
}

func (m measured) Open(cfg Config) (Log, error) {
	l, err := m.System.Open(cfg)
	if err != nil {
		return nil, err
	}
	return &measuredLog{Log: l, base: m.base, dir: cfg.Dir, writers: cfg.Writers}, nil
}

type measuredLog struct {
	Log
	base    procUse
	dir     string
	writers int
}

func (l *measuredLog) CommitAs(w int, lsn uint64, data []byte) error {
	if pl, ok := l.Log.(perWriterLog); ok {
		return pl.CommitAs(w, lsn, data)
	}
	return l.Commit(lsn, data)
}

func (l *measuredLog) Syncs() uint64 {
	if s, ok := l.Log.(Syncer); ok {
		return s.Syncs()
	}
	return 0
}

func (l *measuredLog) Describe() string {
	if d, ok := l.Log.(Describer); ok {
		return d.Describe()
	}
	return ""
}

func (l *measuredLog) measure(r *Result) {
	now := useNow()
	r.DiskBytes = DiskBytes(l.dir)
	if dw, ok := l.Log.(interface{ diskWritten() int64 }); ok {
		r.DiskWritten = dw.diskWritten()
	}
	r.MaxRSSBytes = now.peakRSS
	r.Goroutines = now.goroutines - l.base.goroutines
	r.OpenFiles = now.files - l.base.files
}

// procUse is what the process holds: goroutines, open files, peak RSS.
type procUse struct {
	goroutines, files int
	peakRSS           int64
}

// baseline returns the process's use before a cell, after returning freed
// memory to the OS and resetting the peak RSS (Linux: clear_refs 5).
func baseline() procUse {
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return useNow()
}

func useNow() procUse {
	u := procUse{goroutines: runtime.NumGoroutine(), peakRSS: MaxRSS()}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.files = len(ents)
	}
	return u
}

// MaxRSS is this process's peak resident set (VmHWM), in bytes (0 where
// /proc does not say).
func MaxRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// DiskBytes sums what the files under dir have allocated on disk.
func DiskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += allocatedBytes(fi)
		}
		return nil
	})
	return n
}

// partSystem is one of dwal's ways of holding N logs.
type partSystem struct{ name string }

func (s partSystem) Name() string { return s.name }

func (s partSystem) Open(cfg Config) (Log, error) {
	switch s.name {
	case "dwal-set":
		set, err := engine.OpenSet(engine.DefaultConfig(cfg.Dir))
		if err != nil {
			return nil, err
		}
		l := &setLog{s: set}
		for w := range cfg.Writers {
			l.logs = append(l.logs, set.Log(uint64(w)))
		}
		return l, nil
	case "dwal-logs":
		l := &coordLogs{}
		for w := range cfg.Writers {
			c, err := engine.Open(engine.DefaultConfig(filepath.Join(cfg.Dir, fmt.Sprintf("log-%d", w))))
			if err != nil {
				l.Close()
				return nil, err
			}
			l.cs = append(l.cs, c)
		}
		return l, nil
	default:
		c, err := engine.Open(engine.DefaultConfig(cfg.Dir))
		if err != nil {
			return nil, err
		}
		return &coordLogs{cs: []*engine.Coordinator{c}}, nil
	}
}

// setLog is a Set whose writer w appends to log w.
type setLog struct {
	s    *engine.Set
	logs []*engine.Log
}

func (l *setLog) CommitAs(w int, lsn uint64, data []byte) error {
	return l.logs[w].Append(context.Background(), engine.LSN(lsn), data)
}

func (l *setLog) Commit(lsn uint64, data []byte) error { return l.CommitAs(0, lsn, data) }

func (l *setLog) Flush(lsn uint64, entries [][]byte) error {
	_, err := l.logs[0].Flush(asyncEntries(lsn, entries), true)
	return err
}

// asyncEntries are entries as a batch from LSN lsn.
func asyncEntries(lsn uint64, entries [][]byte) []*engine.PendingEntry {
	es := make([]*engine.PendingEntry, len(entries))
	for i, e := range entries {
		es[i] = engine.NewAsyncEntry(engine.LSN(lsn+uint64(i)), e)
	}
	return es
}

func (l *setLog) Syncs() uint64 { return l.s.Stats().Batches }

func (l *setLog) Describe() string { return describe(l.s.Backend()) }

func (l *setLog) Close() error { return l.s.Close() }

func (l *setLog) diskWritten() int64 { return int64(l.s.Stats().DiskBytes) }

// coordLogs is N Coordinators, writer w on the w-th (all on the one when
// there is one).
type coordLogs struct{ cs []*engine.Coordinator }

func (l *coordLogs) CommitAs(w int, lsn uint64, data []byte) error {
	return l.cs[w%len(l.cs)].Append(context.Background(), engine.LSN(lsn), data)
}

func (l *coordLogs) Commit(lsn uint64, data []byte) error { return l.CommitAs(0, lsn, data) }

func (l *coordLogs) Flush(lsn uint64, entries [][]byte) error {
	_, err := l.cs[0].Flush(asyncEntries(lsn, entries), true)
	return err
}

func (l *coordLogs) Syncs() uint64 {
	var n uint64
	for _, c := range l.cs {
		n += c.TotalFlushes()
	}
	return n
}

func (l *coordLogs) Describe() string { return describe(l.cs[0].Backend()) }

func (l *coordLogs) diskWritten() int64 {
	var n int64
	for _, c := range l.cs {
		n += int64(c.TotalDiskBytesWritten())
	}
	return n
}

func (l *coordLogs) Close() error {
	var err error
	for _, c := range l.cs {
		if e := c.Close(); err == nil {
			err = e
		}
	}
	return err
}

// partCell finds the partitions result of system at n logs.
func partCell(rs []Result, system string, n int) (Result, bool) {
	for _, r := range rs {
		if r.Workload == wlPartitions && r.System == system && r.Writers == n && r.Error == "" && r.Skipped == "" {
			return r, true
		}
	}
	return Result{}, false
}

// renderPartitions prints the partitions workload's table: a row per N.
func renderPartitions(w io.Writer, rs []Result) {
	var ns []int
	for _, r := range rs {
		if r.Workload == wlPartitions && !slices.Contains(ns, r.Writers) {
			ns = append(ns, r.Writers)
		}
	}
	if len(ns) == 0 {
		return
	}
	fmt.Fprintln(w, "\npartitions (N logs x 1 writer, each Append durable; commits/s, p50 µs, MiB):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tset\tN logs\tone log xN\tfloor N files\tfloor group\tset/one log\tset/N logs\tp50 set\tp50 one log\tdisk set\tbeyond data\tdisk N logs\tbeyond data\tRSS set\tN logs\tgoroutines set\tN logs\tfiles set\tN logs\t")
	num := func(v float64, ok bool, f string) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf(f, v)
	}
	ratio := func(a, b Result, aok, bok bool) string {
		if !aok || !bok || b.EntriesPerS == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a.EntriesPerS/b.EntriesPerS)
	}
	const mib = 1 << 20
	for _, n := range ns {
		set, sok := partCell(rs, "dwal-set", n)
		logs, lok := partCell(rs, "dwal-logs", n)
		one, ook := partCell(rs, "dwal-one-log", n)
		ff, fok := partCell(rs, "floor-files", n)
		fg, gok := partCell(rs, "floor-group", n)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", n,
			num(set.EntriesPerS, sok, "%.0f"), num(logs.EntriesPerS, lok, "%.0f"), num(one.EntriesPerS, ook, "%.0f"),
			num(ff.EntriesPerS, fok, "%.0f"), num(fg.EntriesPerS, gok, "%.0f"),
			ratio(set, one, sok, ook), ratio(set, logs, sok, lok),
			num(set.Latency.P50US, sok, "%.0f"), num(one.Latency.P50US, ook, "%.0f"),
			num(float64(set.DiskBytes)/mib, sok, "%.0f"), num(float64(set.DiskBytes-set.DiskWritten)/mib, sok, "%.0f"),
			num(float64(logs.DiskBytes)/mib, lok, "%.0f"), num(float64(logs.DiskBytes-logs.DiskWritten)/mib, lok, "%.0f"),
			num(float64(set.MaxRSSBytes)/mib, sok, "%.0f"), num(float64(logs.MaxRSSBytes)/mib, lok, "%.0f"),
			num(float64(set.Goroutines), sok, "%.0f"), num(float64(logs.Goroutines), lok, "%.0f"),
			num(float64(set.OpenFiles), sok, "%.0f"), num(float64(logs.OpenFiles), lok, "%.0f"))
	}
	tw.Flush()
}

// partitionTargets: a set of 64 logs x 1 writer >= 0.9x one log with 64
// writers and >= 6x 64 Coordinators; 256 logs >= 0.8x one log with 256
// writers; the set's p50 at 64 logs within 1.2x one log's at 64 writers;
// the set's disk beyond the data it wrote at the largest N within 1.5x
// that at the smallest.
func partitionTargets(rep *Report) []Target {
	e := &targetEval{rep: rep, rs: rep.Results, sys: "dwal-set"}
	vs := func(n int, other string, goal float64) {
		set, sok := partCell(e.rs, "dwal-set", n)
		o, ook := partCell(e.rs, other, n)
		ok := sok && ook && o.EntriesPerS > 0
		r := 0.0
		if ok {
			r = set.EntriesPerS / o.EntriesPerS
		}
		e.add(fmt.Sprintf("partitions N=%d commits/s vs %s", n, other), fmt.Sprintf(">= %gx", goal), r, r >= goal, ok,
			fmt.Sprintf("%.0f vs %.0f", set.EntriesPerS, o.EntriesPerS))
	}
	vs(64, "dwal-one-log", 0.9)
	vs(64, "dwal-logs", 6)
	vs(256, "dwal-one-log", 0.8)
	set, sok := partCell(e.rs, "dwal-set", 64)
	one, ook := partCell(e.rs, "dwal-one-log", 64)
	ok := sok && ook && one.Latency.P50US > 0
	r := 0.0
	if ok {
		r = set.Latency.P50US / one.Latency.P50US
	}
	e.add("partitions N=64 p50 vs one log C=64", "<= 1.2x", r, r <= 1.2, ok, fmt.Sprintf("%.0f vs %.0f µs", set.Latency.P50US, one.Latency.P50US))
	var lo, hi Result
	var lok, hok bool
	for _, x := range e.rs {
		if x.Workload != wlPartitions || x.System != "dwal-set" || x.Error != "" || x.Skipped != "" {
			continue
		}
		if !lok || x.Writers < lo.Writers {
			lo, lok = x, true
		}
		if !hok || x.Writers > hi.Writers {
			hi, hok = x, true
		}
	}
	// What the set holds beyond the data it wrote (preallocated segments:
	// the active one and the one prepared next), whatever N.
	beyond := func(x Result) int64 { return max(x.DiskBytes-x.DiskWritten, 0) }
	ok = lok && hok && hi.Writers > lo.Writers && beyond(lo) > 0
	r = 0
	if ok {
		r = float64(beyond(hi)) / float64(beyond(lo))
	}
	e.add("partitions disk beyond the data written, largest N vs smallest", "<= 1.5x", r, r <= 1.5, ok,
		fmt.Sprintf("%d MiB at N=%d, %d MiB at N=%d", beyond(hi)>>20, hi.Writers, beyond(lo)>>20, lo.Writers))
	return e.ts
}
