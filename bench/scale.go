package bench

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The scale workload (--workloads scale): what it costs to come back to a
// log, and to read it, as the log grows. For each log size (--scale-sizes,
// bytes of dwal segments on disk) and two batch shapes (raft-shaped, 64
// entries of 128 B a batch, and one 128-byte entry a batch), a log is
// written, closed, and then measured in fresh processes, the page cache
// dropped before each (as after a reboot; when the harness may drop it):
//
//   - Open and the first Read of an LSN in the middle (dwal; raftstore's
//     Open with FirstIndex, LastIndex and GetLog of the last and a middle
//     index, as raft.NewRaft reads them; raft-wal's Open and GetLog);
//   - the same after a crash (the last segment's .meta and index gone);
//   - random reads from 4 readers, for the cell's duration from a cold page
//     cache and then as long again: dwal with sealed segments read through
//     the page cache (its default), dwal reading them with O_DIRECT, and
//     raft-wal; the reading process's maximum RSS;
//   - Replay of the whole log against raw O_DIRECT sequential reads of the
//     same files;
//   - disk bytes per payload byte.
//
// It runs in the peers' process (bench/peers), where raft-wal lives, and
// only when named; bench/peers sets ScaleBench.

const wlScale = "scale"

// The phases of a scale result.
const (
	PhaseOpenRead   = "open+first read"
	PhaseCrashRead  = "open+first read after a crash"
	PhaseRandom     = "random reads"       // after a first pass of the same length (the page cache warm)
	PhaseRandomCold = "random reads, cold" // the first pass
	PhaseReplay     = "replay"
	PhaseRawRead    = "raw sequential read"
	PhaseWrite      = "write"
)

// ScaleParams is what the scale workload is given.
type ScaleParams struct {
	Root     string  // a fresh directory on the disk measured
	Sizes    []int64 // log sizes (bytes of dwal segments)
	Duration time.Duration
	Keep     bool // keep each log's directory (else it goes once measured)
	Step     func(format string, args ...any)
}

// ScaleBench runs the scale workload; bench/peers sets it in its binary.
var ScaleBench func(ScaleParams) []Result

// runScaleChild runs the scale workload in the peers' process.
func runScaleChild(o *Options, pr *progress) []Result {
	if ScaleBench == nil {
		return []Result{{Workload: wlScale, System: "scale", Process: "peers", Skipped: "this binary has no scale workload"}}
	}
	root := filepath.Join(o.Dir, "scale")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return []Result{{Workload: wlScale, System: "scale", Process: "peers", Error: err.Error()}}
	}
	if !o.Keep {
		defer os.RemoveAll(root)
	}
	return ScaleBench(ScaleParams{Root: root, Sizes: o.ScaleSizes, Duration: o.Duration, Keep: o.Keep, Step: pr.step})
}

// ScaleResult is one measurement of the scale workload.
func ScaleResult(system, phase string, perBatch int, logBytes int64) Result {
	return Result{Workload: wlScale, System: system, Phase: phase, Writers: 1, EntrySize: 128,
		BatchEntries: perBatch, LogBytes: logBytes, Process: "peers"}
}

// scaleSizes parses --scale-sizes.
func scaleSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range splitList(s) {
		n, err := ParseSize(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad --scale-sizes entry %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func fmtSizes(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// scaleCell finds the scale result of system and phase for a shape and
// size (the page-cache note, if any, ignored).
func scaleCell(rs []Result, system, phase string, perBatch int, size int64) (Result, bool) {
	for _, r := range rs {
		if r.Workload == wlScale && r.System == system && r.BatchEntries == perBatch && r.LogBytes == size &&
			isPhase(r.Phase, phase) && r.Error == "" && r.Skipped == "" {
			return r, true
		}
	}
	return Result{}, false
}

// renderScale prints the scale workload's table: a row per shape and log
// size.
func renderScale(w io.Writer, rs []Result) {
	type key struct {
		per  int
		size int64
	}
	var keys []key
	for _, r := range rs {
		if r.Workload == wlScale && r.LogBytes > 0 && !slices.Contains(keys, key{r.BatchEntries, r.LogBytes}) {
			keys = append(keys, key{r.BatchEntries, r.LogBytes})
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.per != b.per {
			return b.per - a.per
		}
		return cmp.Compare(a.size, b.size)
	})
	fmt.Fprintln(w, "\nscale (fresh process, page cache dropped; ms, reads/s, MiB):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tlog\topen+1st read dwal\tafter crash\traftstore\traft-wal\tdwal/raft-wal\trandom dwal\tdwal O_DIRECT\traft-wal\tcold dwal\traft-wal\tRSS dwal\traft-wal\treplay MB/s\traw\tdisk/payload dwal\traft-wal\t")
	ms := func(r Result, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.2f", (r.OpenUS+r.FirstReadUS)/1e3)
	}
	num := func(v float64, ok bool, f string) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf(f, v)
	}
	for _, k := range keys {
		get := func(sys, phase string) (Result, bool) { return scaleCell(rs, sys, phase, k.per, k.size) }
		d, dok := get("dwal", PhaseOpenRead)
		c, cok := get("dwal", PhaseCrashRead)
		rst, rok := get("raftstore", PhaseOpenRead)
		rw, wok := get("raft-wal", PhaseOpenRead)
		ratio := "-"
		if dok && wok && rw.OpenUS+rw.FirstReadUS > 0 {
			ratio = fmt.Sprintf("%.3fx", (d.OpenUS+d.FirstReadUS)/(rw.OpenUS+rw.FirstReadUS))
		}
		dr, drok := get("dwal", PhaseRandom)
		dd, ddok := get("dwal-direct", PhaseRandom)
		wr, wrok := get("raft-wal", PhaseRandom)
		dc, dcok := get("dwal", PhaseRandomCold)
		wc, wcok := get("raft-wal", PhaseRandomCold)
		rp, rpok := get("dwal", PhaseReplay)
		raw, rawok := get("raw O_DIRECT", PhaseRawRead)
		dw, dwok := get("dwal", PhaseWrite)
		ww, wwok := get("raft-wal", PhaseWrite)
		fmt.Fprintf(tw, "%d x %d B\t%d MiB\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			k.per, 128, k.size>>20, ms(d, dok), ms(c, cok), ms(rst, rok), ms(rw, wok), ratio,
			num(dr.EntriesPerS, drok, "%.0f"), num(dd.EntriesPerS, ddok, "%.0f"), num(wr.EntriesPerS, wrok, "%.0f"),
			num(dc.EntriesPerS, dcok, "%.0f"), num(wc.EntriesPerS, wcok, "%.0f"),
			num(float64(dr.MaxRSSBytes)/(1<<20), drok, "%.0f"), num(float64(wr.MaxRSSBytes)/(1<<20), wrok, "%.0f"),
			num(rp.MBPerS, rpok, "%.0f"), num(raw.MBPerS, rawok, "%.0f"),
			num(dw.DiskPerPayload, dwok, "%.1f"), num(ww.DiskPerPayload, wwok, "%.1f"))
	}
	tw.Flush()
}

// isPhase reports whether a result's phase is phase (with or without a
// note in parentheses).
func isPhase(got, phase string) bool { return got == phase || strings.HasPrefix(got, phase+" (") }
