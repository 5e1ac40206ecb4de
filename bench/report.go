package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// Target is one of the performance targets dwal is held to, evaluated on
// this run.
type Target struct {
	Name   string  `json:"name"`
	System string  `json:"system"`
	Ratio  float64 `json:"ratio,omitempty"`
	Goal   string  `json:"goal"`
	Status string  `json:"status"` // PASS, MISS or n/a
	Detail string  `json:"detail"`
}

// find returns the first headline result that ran (no error, not
// skipped) matching.
func find(rs []Result, system, workload string, writers int) (Result, bool) {
	return findCell(rs, system, workload, writers, false)
}

// findCell is find for headline (warm false) or --warm cells.
func findCell(rs []Result, system, workload string, writers int, warm bool) (Result, bool) {
	for _, r := range rs {
		if r.System == system && r.Workload == workload && (writers == 0 || r.Writers == writers) && r.Warm == warm &&
			r.Error == "" && r.Skipped == "" && r.Entries > 0 {
			return r, true
		}
	}
	return Result{}, false
}

func dwalNames(rs []Result) []string {
	var out []string
	for _, r := range rs {
		if strings.HasPrefix(r.System, "dwal-") && r.Workload != wlPartitions && !contains(out, r.System) {
			out = append(out, r.System)
		}
	}
	return out
}

// evalTargets checks the targets for each dwal system that ran, on the
// headline cells (what a user who opens the log and writes gets): commit
// C=64 against the best peer and the seed baseline, commit C=1 p50 against
// the pwritev2(RWF_DSYNC) floor, bulk and replay against fio, and
// allocations per entry; and rotation's p99.9 against the same load
// without rotation, on the --warm cells when they ran (what a rotation
// costs is a steady-state figure).
func evalTargets(rep *Report) []Target {
	var ts []Target
	for _, d := range dwalNames(rep.Results) {
		e := &targetEval{rep: rep, rs: rep.Results, sys: d}
		e.commitC64()
		e.commitC1()
		e.bulk()
		e.rotate()
		e.replay()
		e.allocations()
		ts = append(ts, e.ts...)
	}
	ts = append(ts, raftTargets(rep)...)
	return append(ts, partitionTargets(rep)...)
}

// raftTargets: each 3-node cluster cell of the Raft workload (in memory,
// over TCP), commands/s on raftstore against the same cluster on raft-wal
// (>= 2x) and on raft-boltdb (>= 3x).
func raftTargets(rep *Report) []Target {
	e := &targetEval{rep: rep, rs: rep.Results, sys: "raft-dwal"}
	for _, r := range rep.Results {
		if r.Workload != wlRaft || r.System != e.sys || !strings.HasPrefix(r.Phase, "3-node cluster") || r.Error != "" {
			continue
		}
		for _, peer := range []struct {
			name, goal string
			x          float64
		}{{"raft-wal", ">= 2x", 2}, {"raft-boltdb", ">= 3x", 3}} {
			name := fmt.Sprintf("raft %s vs %s", r.Phase, peer.name)
			i := slices.IndexFunc(rep.Results, func(p Result) bool {
				return p.Workload == wlRaft && p.System == peer.name && p.Phase == r.Phase && p.Error == "" && p.EntriesPerS > 0
			})
			if i < 0 {
				e.add(name, peer.goal, 0, false, false, peer.name+" did not run it")
				continue
			}
			p := rep.Results[i]
			x := r.EntriesPerS / p.EntriesPerS
			e.add(name, peer.goal, x, x >= peer.x, true, fmt.Sprintf("%.0f vs %.0f commands/s", r.EntriesPerS, p.EntriesPerS))
		}
	}
	// Multi-raft: 16 groups per node on one set >= 4x the same on 16
	// raft-wal stores per node.
	set := slices.IndexFunc(rep.Results, func(p Result) bool {
		return p.Workload == wlRaft && p.System == "raft-dwal-set" && strings.HasPrefix(p.Phase, "multi-raft") && p.Error == "" && p.EntriesPerS > 0
	})
	if set >= 0 {
		s := rep.Results[set]
		w := slices.IndexFunc(rep.Results, func(p Result) bool {
			return p.Workload == wlRaft && p.System == "raft-wal" && p.Phase == s.Phase && p.Error == "" && p.EntriesPerS > 0
		})
		es := &targetEval{rep: rep, rs: rep.Results, sys: "raft-dwal-set"}
		name := "raft " + s.Phase + " vs raft-wal per group"
		if w < 0 {
			es.add(name, ">= 4x", 0, false, false, "raft-wal did not run it")
		} else {
			x := s.EntriesPerS / rep.Results[w].EntriesPerS
			es.add(name, ">= 4x", x, x >= 4, true, fmt.Sprintf("%.0f vs %.0f commands/s", s.EntriesPerS, rep.Results[w].EntriesPerS))
		}
		e.ts = append(e.ts, es.ts...)
	}
	return e.ts
}

// targetEval evaluates the targets of one dwal system.
type targetEval struct {
	rep *Report
	rs  []Result
	sys string
	ts  []Target
}

// add records a target: n/a unless ok, else PASS or MISS by pass.
func (e *targetEval) add(name, goal string, ratio float64, pass, ok bool, detail string) {
	t := Target{Name: name, System: e.sys, Goal: goal, Detail: detail}
	switch {
	case !ok:
		t.Status = "n/a"
	case pass:
		t.Status, t.Ratio = "PASS", ratio
	default:
		t.Status, t.Ratio = "MISS", ratio
	}
	e.ts = append(e.ts, t)
}

// commitC64: commit C=64, 128 B, vs the best peer and vs the seed baseline.
func (e *targetEval) commitC64() {
	c64, ok64 := find(e.rs, e.sys, wlCommit, 64)
	size := ""
	if ok64 && c64.EntrySize != 128 {
		size = fmt.Sprintf(" (run with %d B entries; the target is for 128 B)", c64.EntrySize)
	}
	best, bestName := 0.0, ""
	for _, p := range peerNames {
		if r, ok := find(e.rs, p, wlCommit, 64); ok && r.EntriesPerS > best {
			best, bestName = r.EntriesPerS, p
		}
	}
	switch {
	case !ok64:
		e.add("commit C=64 128 B vs best peer", ">= 2x", 0, false, false, "dwal commit C=64 not run")
	case bestName == "":
		e.add("commit C=64 128 B vs best peer", ">= 2x", 0, false, false, "no peer ran commit C=64")
	default:
		x := c64.EntriesPerS / best
		e.add("commit C=64 128 B vs best peer", ">= 2x", x, x >= 2, true,
			fmt.Sprintf("%.0f vs %s %.0f entries/s%s", c64.EntriesPerS, bestName, best, size))
	}
	if seed, ok := find(e.rs, "seed", wlCommit, 64); ok && ok64 {
		x := c64.EntriesPerS / seed.EntriesPerS
		e.add("commit C=64 128 B vs seed baseline", ">= 3x", x, x >= 3, true,
			fmt.Sprintf("%.0f vs %.0f entries/s%s", c64.EntriesPerS, seed.EntriesPerS, size))
	} else {
		e.add("commit C=64 128 B vs seed baseline", ">= 3x", 0, false, false, "dwal or seed commit C=64 not run")
	}
}

// commitC1: commit C=1 p50 vs the pwritev2(RWF_DSYNC) floor.
func (e *targetEval) commitC1() {
	c1, ok1 := find(e.rs, e.sys, wlCommit, 1)
	fl, okf := find(e.rs, "floor-pwritev2", wlCommit, 1)
	if ok1 && okf {
		x := c1.Latency.P50US / fl.Latency.P50US
		e.add("commit C=1 p50 vs pwritev2(RWF_DSYNC) floor", "<= 1.10x", x, x <= 1.10, true,
			fmt.Sprintf("%.0f µs vs %.0f µs", c1.Latency.P50US, fl.Latency.P50US))
	} else {
		e.add("commit C=1 p50 vs pwritev2(RWF_DSYNC) floor", "<= 1.10x", 0, false, false, "dwal or floor-pwritev2 commit C=1 not run")
	}
}

// bulk: bulk MB/s vs fio's 1 MiB writes + fdatasync, QD1.
func (e *targetEval) bulk() {
	if b, ok := find(e.rs, e.sys, wlBulk, 1); ok && e.rep.Fio != nil && e.rep.Fio.Write1M.MBPerS > 0 {
		x := b.MBPerS / e.rep.Fio.Write1M.MBPerS
		e.add("bulk MB/s vs fio 1 MiB write+fdatasync", ">= 90%", x, x >= 0.9, true,
			fmt.Sprintf("%.1f vs %.1f MB/s", b.MBPerS, e.rep.Fio.Write1M.MBPerS))
	} else {
		e.add("bulk MB/s vs fio 1 MiB write+fdatasync", ">= 90%", 0, false, false, "bulk or fio not run")
	}
}

// rotate: rotate p99.9 vs the same workload without rotation, warm when
// the --warm cells ran: cold, the unrotated log's one big segment is still
// being prepared while it is measured.
func (e *targetEval) rotate() {
	rot, okr := findCell(e.rs, e.sys, wlRotate, 0, true)
	none, okn := findCell(e.rs, e.sys, wlRotateNone, 0, true)
	start := "warm"
	if !okr || !okn {
		rot, okr = find(e.rs, e.sys, wlRotate, 0)
		none, okn = find(e.rs, e.sys, wlRotateNone, 0)
		start = "cold start; --warm for the steady state"
	}
	switch {
	case okr && okn && rot.Rotations == 0:
		e.add("rotate p99.9 vs no rotation", "<= 1.5x", 0, false, false,
			fmt.Sprintf("no rotation happened (%.1f MB/s for %.1fs with %d MiB segments): run longer", rot.MBPerS, rot.DurationS, rot.SegmentSize>>20))
	case okr && okn:
		x := rot.Latency.P999US / none.Latency.P999US
		e.add("rotate p99.9 vs no rotation", "<= 1.5x", x, x <= 1.5, true,
			fmt.Sprintf("%.0f µs (%d rotations, %d MiB segments) vs %.0f µs (%d, %d MiB); %s", rot.Latency.P999US, rot.Rotations,
				rot.SegmentSize>>20, none.Latency.P999US, none.Rotations, none.SegmentSize>>20, start))
	default:
		e.add("rotate p99.9 vs no rotation", "<= 1.5x", 0, false, false, "rotate not run")
	}
}

// replay: replay MB/s vs fio's sequential reads.
func (e *targetEval) replay() {
	f := e.rep.Fio
	if r, ok := find(e.rs, e.sys, wlReplay, 0); ok && f != nil && f.Read1M.MBPerS > 0 {
		x := r.MBPerS / f.Read1M.MBPerS
		q16 := ""
		if q := f.Read1MQ16.MBPerS; q > 0 {
			q16 = fmt.Sprintf("; %.0f%% of QD16's %.1f MB/s", 100*r.MBPerS/q, q)
		}
		e.add("replay MB/s vs fio sequential 1 MiB read (QD1)", ">= 80%", x, x >= 0.8, true,
			fmt.Sprintf("%.1f vs %.1f MB/s (%d MiB)%s", r.MBPerS, f.Read1M.MBPerS, r.Bytes>>20, q16))
	} else {
		e.add("replay MB/s vs fio sequential 1 MiB read (QD1)", ">= 80%", 0, false, false, "replay or fio not run")
	}
}

// allocations: allocations per entry in steady state (the commit cell
// with the most writers).
func (e *targetEval) allocations() {
	var al Result
	ok := false
	for _, r := range e.rs {
		if r.System == e.sys && r.Workload == wlCommit && r.Error == "" && r.Skipped == "" && r.Entries > 0 && r.Writers >= al.Writers {
			al, ok = r, true
		}
	}
	if ok {
		e.add("allocations per entry (commit)", "0 (<= 0.05: pools refill after a GC)", al.AllocsPerEntry, al.AllocsPerEntry <= 0.05, true,
			fmt.Sprintf("%.3f allocs/entry at C=%d", al.AllocsPerEntry, al.Writers))
	} else {
		e.add("allocations per entry (commit)", "0", 0, false, false, "commit not run")
	}
}

// workloadOrder sorts results for the table.
var workloadOrder = []string{wlCommit, wlLatency, wlBulk, wlRotate, wlRotateNone, wlReplay, wlRestart, wlRaft, wlScale, wlPartitions}

var systemOrder = []string{"dwal-uring", "dwal-fallback", "dwal-auto", "dwal-uring-aes", "dwal-uring-d1", "dwal-uring-linked", "seed",
	"floor-pwrite", "floor-pwritev2", "floor-group", "pebble", "etcd", "tidwall", "raftwal"}

var phaseOrder = []string{"", phaseFirst, phaseReopened}

// label is a result's system as the table and plots name it: (warm) marks
// a --warm cell.
func (r Result) label() string { return r.System + warmLabel(r.Warm) }

// workloadLabel is a result's workload with its phase, if any.
func (r Result) workloadLabel() string {
	if r.Phase != "" {
		return r.Workload + ": " + r.Phase
	}
	return r.Workload
}

func sortResults(rs []Result) []Result {
	out := slices.Clone(rs)
	idx := func(list []string, s string) int {
		if i := slices.Index(list, s); i >= 0 {
			return i
		}
		return len(list)
	}
	slices.SortStableFunc(out, func(a, b Result) int {
		if x, y := idx(workloadOrder, a.Workload), idx(workloadOrder, b.Workload); x != y {
			return x - y
		}
		if a.Writers != b.Writers {
			return a.Writers - b.Writers
		}
		if x, y := idx(phaseOrder, a.Phase), idx(phaseOrder, b.Phase); x != y {
			return x - y
		}
		if x, y := idx(systemOrder, a.System), idx(systemOrder, b.System); x != y {
			return x - y
		}
		if a.Warm != b.Warm {
			if a.Warm {
				return 1
			}
			return -1
		}
		return 0
	})
	return out
}

func fmtUS(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtCount(v float64) string {
	if v == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func short(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// printTable prints the report for people.
func printTable(out io.Writer, rep *Report) {
	var buf bytes.Buffer
	render(&buf, rep)
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		io.WriteString(out, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n")))
	}
}

func render(w io.Writer, rep *Report) {
	renderHeader(w, rep)
	failed, skipped := renderResults(w, rep)
	renderOpenTimes(w, rep.Results)
	renderScale(w, rep.Results)
	renderPartitions(w, rep.Results)
	renderProblems(w, failed, skipped)
	renderBackends(w, rep.Results)
	renderTargets(w, rep.Targets)
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}

// renderHeader prints the host, the directory, fio's device limit and the
// peers' versions.
func renderHeader(w io.Writer, rep *Report) {
	h := rep.Host
	fmt.Fprintf(w, "dwalbench  %s  host %s (%s, %d CPUs, %s, kernel %s, load %s)\n",
		rep.Started.Format("2006-01-02 15:04:05Z"), h.Hostname, h.CPU, h.CPUs, h.OS, h.Kernel, h.Load)
	fmt.Fprintf(w, "dir %s  (%s on %s)\n", h.Dir, h.FS, h.Device)
	if f := rep.Fio; f != nil {
		fmt.Fprintf(w, "device limit (%s, %s engine, direct=1, QD1, %gs per job%s):\n", f.Version, f.Engine, f.RuntimeS, ifNote(f.EngineNote))
		fmt.Fprintf(w, "  4 KiB write+fdatasync: %s IOPS, mean %s µs, p50 %s µs (write %s + sync %s), p99 %s µs\n",
			fmtCount(f.Write4K.IOPS), fmtUS(f.Write4K.MeanUS), fmtUS(f.Write4K.P50US), fmtUS(f.Write4K.WriteP50US),
			fmtUS(f.Write4K.SyncP50US), fmtUS(f.Write4K.P99US))
		fmt.Fprintf(w, "  1 MiB write+fdatasync: %.1f MB/s    1 MiB sequential read: %.1f MB/s (QD16: %.1f MB/s)\n",
			f.Write1M.MBPerS, f.Read1M.MBPerS, f.Read1MQ16.MBPerS)
	} else {
		fmt.Fprintf(w, "device limit: fio not available: %s\n", rep.FioError)
	}
	if len(rep.Peers.Versions) > 0 {
		var vs []string
		for m, v := range rep.Peers.Versions {
			vs = append(vs, m+" "+v)
		}
		slices.Sort(vs)
		fmt.Fprintf(w, "peers: %s\n", strings.Join(vs, ", "))
	}
	if rep.Peers.Error != "" {
		fmt.Fprintf(w, "peers not run: %s\n", rep.Peers.Error)
	}
	fmt.Fprintln(w)
}

// renderResults prints one row per cell that ran, grouped by workload with
// fio's figure beside each group, and returns the cells that failed and
// those that did not run.
func renderResults(w io.Writer, rep *Report) (failed, skipped []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tsystem\tC\tentry B\tentries/s\tMB/s\tp50 µs\tp99 µs\tp99.9 µs\tmax µs\tCPU µs/e\tallocs/e\te/sync\trot\t")
	last, lastWorkload := "", ""
	for _, r := range sortResults(rep.Results) {
		if r.Skipped != "" {
			skipped = append(skipped, r)
			continue
		}
		if r.Workload == wlScale {
			if r.Error != "" {
				failed = append(failed, r)
			}
			continue // renderScale's table
		}
		if last != "" && r.workloadLabel() != last {
			fioRow(tw, rep.Fio, lastWorkload)
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t\t\t\t\t")
		}
		last, lastWorkload = r.workloadLabel(), r.Workload
		if r.Error != "" {
			failed = append(failed, r)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\tfailed\t\t\t\t\t\t\t\t\t\t\n", last, r.label(), r.Writers, r.EntrySize)
			continue
		}
		ps := "-"
		if r.EntriesPerSync > 0 {
			ps = fmt.Sprintf("%.1f", r.EntriesPerSync)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%.1f\t%.2f\t%s\t%d\t\n",
			last, r.label(), r.Writers, r.EntrySize, fmtCount(r.EntriesPerS), r.MBPerS,
			fmtUS(r.Latency.P50US), fmtUS(r.Latency.P99US), fmtUS(r.Latency.P999US), fmtUS(r.Latency.MaxUS),
			r.CPUPerEntryUS, r.AllocsPerEntry, ps, r.Rotations)
	}
	if last != "" {
		fioRow(tw, rep.Fio, lastWorkload)
	}
	tw.Flush()
	return failed, skipped
}

// renderOpenTimes says how long each system's Open took in the restart
// workload: on a fresh directory, and reopening what it wrote (recovery or
// replay included).
func renderOpenTimes(w io.Writer, rs []Result) {
	var lines []string
	for _, r := range sortResults(rs) {
		if r.Workload != wlRestart || r.Phase != phaseFirst || r.Error != "" || r.Skipped != "" {
			continue
		}
		line := fmt.Sprintf("  %-22s first open %s µs", r.label(), fmtUS(r.OpenUS))
		for _, a := range rs {
			if a.Workload == wlRestart && a.Phase == phaseReopened && a.System == r.System && a.Warm == r.Warm && a.Error == "" && a.Skipped == "" {
				line += fmt.Sprintf(", reopened %s µs (after %s entries)", fmtUS(a.OpenUS), fmtCount(float64(r.Entries)))
			}
		}
		lines = append(lines, line)
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nrestart, time of Open:")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}

// renderProblems lists the cells that failed, and those that did not run
// grouped by system and reason.
func renderProblems(w io.Writer, failed, skipped []Result) {
	if len(failed) > 0 {
		fmt.Fprintln(w, "\nfailed:")
		for _, r := range failed {
			fmt.Fprintf(w, "  %-15s %s C=%d%s: %s\n", r.System, r.workloadLabel(), r.Writers, warmLabel(r.Warm), short(r.Error, 300))
		}
	}
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintln(w, "\nnot run:")
	type key struct{ sys, why string }
	var keys []key
	where := map[key][]string{}
	for _, r := range skipped {
		k := key{r.System, r.Skipped}
		if _, ok := where[k]; !ok {
			keys = append(keys, k)
		}
		cell := r.Workload
		if r.Workload == wlCommit {
			cell = fmt.Sprintf("%s C=%d", r.Workload, r.Writers)
		}
		cell += warmLabel(r.Warm)
		if !slices.Contains(where[k], cell) {
			where[k] = append(where[k], cell)
		}
	}
	for _, k := range keys {
		fmt.Fprintf(w, "  %-15s %s: %s\n", k.sys, strings.Join(where[k], ", "), k.why)
	}
}

// renderBackends says which backend each dwal system ran on, and why.
func renderBackends(w io.Writer, rs []Result) {
	backends := map[string]string{}
	for _, r := range rs {
		if strings.HasPrefix(r.System, "dwal-") && r.Backend != "" {
			backends[r.System] = r.Backend
		}
	}
	if len(backends) == 0 {
		return
	}
	fmt.Fprintln(w, "\ndwal backends:")
	for _, n := range systemOrder {
		if b, ok := backends[n]; ok {
			fmt.Fprintf(w, "  %-15s %s\n", n, b)
		}
	}
}

func renderTargets(w io.Writer, ts []Target) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(w, "\ntargets (dwal's performance goals):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range ts {
		ratio := "-"
		if t.Status != "n/a" {
			ratio = fmt.Sprintf("%.2f", t.Ratio)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tgoal %s\t%s\t%s\n", t.Status, t.System, t.Name, t.Goal, ratio, t.Detail)
	}
	tw.Flush()
}

func ifNote(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

// fioRow prints the device limit beside a workload's rows.
func fioRow(tw io.Writer, f *FioLimit, workload string) {
	if f == nil {
		return
	}
	switch workload {
	case wlLatency, wlCommit:
		fmt.Fprintf(tw, "%s\t(fio 4k+fdatasync)\t1\t4096\t%s\t%.1f\t%s\t%s\t\t\t\t\t\t\t\n", workload,
			fmtCount(f.Write4K.IOPS), f.Write4K.IOPS*4096/1e6, fmtUS(f.Write4K.P50US), fmtUS(f.Write4K.P99US))
	case wlBulk:
		fmt.Fprintf(tw, "%s\t(fio 1M+fdatasync)\t1\t1048576\t\t%.1f\t\t\t\t\t\t\t\t\t\n", workload, f.Write1M.MBPerS)
	case wlReplay:
		fmt.Fprintf(tw, "%s\t(fio 1M seq read)\t1\t1048576\t\t%.1f\t\t\t\t\t\t\t\t\t\n", workload, f.Read1M.MBPerS)
		if f.Read1MQ16.MBPerS > 0 {
			fmt.Fprintf(tw, "%s\t(fio same, QD16)\t16\t1048576\t\t%.1f\t\t\t\t\t\t\t\t\t\n", workload, f.Read1MQ16.MBPerS)
		}
	}
}

// writeOutputs writes <out>/<timestamp>.json, <out>/latest.json, the table
// as <out>/latest.txt, and the plots.
func writeOutputs(rep *Report, out string) ([]string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	plots, perr := writePlots(rep, out)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	name := filepath.Join(out, rep.Started.Format("20060102T150405Z")+".json")
	files := []string{name, filepath.Join(out, "latest.json")}
	for _, f := range files {
		if err := writeFileAtomic(f, b); err != nil {
			return nil, err
		}
	}
	var table bytes.Buffer
	printTable(&table, rep)
	txt := filepath.Join(out, "latest.txt")
	if err := writeFileAtomic(txt, table.Bytes()); err != nil {
		return nil, err
	}
	files = append(files, txt)
	files = append(files, plots...)
	if perr != nil {
		return files, fmt.Errorf("plots: %w", perr)
	}
	return files, nil
}

func writeFileAtomic(name string, b []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
