package bench

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// nines maps a percentile to the "nines" scale of latency plots: 0 at 0%,
// 1 at 90%, 2 at 99%, 3 at 99.9%, ... capped at maxNines (so the tail,
// where stalls show, gets as much room as the body).
const maxNines = 5

func nines(p float64) float64 {
	if p >= 100 {
		return maxNines
	}
	return min(-math.Log10(1-p/100), maxNines)
}

var ninesTicks = plot.ConstantTicks{
	{Value: 0, Label: "0%"}, {Value: 1, Label: "90%"}, {Value: 2, Label: "99%"},
	{Value: 3, Label: "99.9%"}, {Value: 4, Label: "99.99%"}, {Value: 5, Label: "99.999%+"},
}

// writePlots writes the PNG plots of rep to dir and returns their names.
func writePlots(rep *Report, dir string) ([]string, error) {
	var files []string
	rs := sortResults(rep.Results)
	for _, c := range []int{1, 64} {
		var series []cdfSeries
		size := 0
		for _, r := range rs {
			if r.Workload == wlCommit && r.Writers == c && r.Error == "" && len(r.Latency.CDF) > 0 {
				series = append(series, cdfSeries{r.System, r.label(), r.Latency.CDF, r.Warm})
				size = r.EntrySize
			}
		}
		if len(series) == 0 {
			continue
		}
		name := filepath.Join(dir, fmt.Sprintf("commit-c%d-cdf.png", c))
		title := fmt.Sprintf("commit, C=%d writers, %d B entries: latency CDF from Open (dashed: --warm)", c, size)
		if err := plotCDF(name, title, series); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	var rot []cdfSeries
	for _, r := range rs {
		if (r.Workload == wlRotate || r.Workload == wlRotateNone) && !r.Warm && r.Error == "" && len(r.Latency.CDF) > 0 {
			label := r.System + fmt.Sprintf(" %d MiB segments", r.SegmentSize>>20)
			rot = append(rot, cdfSeries{r.System, label, r.Latency.CDF, r.Workload == wlRotateNone})
		}
	}
	if len(rot) > 0 {
		name := filepath.Join(dir, "rotate-cdf.png")
		if err := plotCDF(name, "rotate: commit latency with small segments (solid) and without rotation (dashed)", rot); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	for _, pl := range []struct {
		name string
		draw func(string, []Result) (bool, error)
	}{{"commit-throughput.png", plotThroughput}, {"scale-first-read.png", plotScale}, {"partitions.png", plotPartitions}} {
		name := filepath.Join(dir, pl.name)
		ok, err := pl.draw(name, rs)
		if err != nil {
			return files, err
		}
		if ok {
			files = append(files, name)
		}
	}
	return files, nil
}

// style gives each system the same colour, width and dashes in every plot:
// dwal in blues and wider, the baseline grey, the floors black, the peers
// in colours of their own.
func style(system string) (color.Color, vg.Length, []vg.Length) {
	rgb := func(r, g, b uint8) color.Color { return color.RGBA{r, g, b, 255} }
	thin, wide := vg.Points(1.3), vg.Points(2.4)
	switch system {
	case "dwal-uring":
		return rgb(0x1f, 0x4e, 0xc8), wide, nil
	case "dwal-fallback":
		return rgb(0x4f, 0xa3, 0xe0), wide, nil
	case "dwal-auto":
		return rgb(0x10, 0x20, 0x70), wide, nil
	case "dwal-uring-aes":
		return rgb(0x1f, 0x4e, 0xc8), wide, []vg.Length{vg.Points(6), vg.Points(3)}
	case "dwal-uring-d1":
		return rgb(0x1f, 0x4e, 0xc8), thin, nil
	case "dwal-uring-linked":
		return rgb(0x1f, 0x4e, 0xc8), thin, []vg.Length{vg.Points(2), vg.Points(2)}
	case "dwal-set":
		return rgb(0x1f, 0x4e, 0xc8), wide, nil
	case "dwal-logs":
		return rgb(0x4f, 0xa3, 0xe0), thin, nil
	case "dwal-one-log":
		return rgb(0x10, 0x20, 0x70), thin, []vg.Length{vg.Points(6), vg.Points(3)}
	case "floor-files":
		return rgb(0, 0, 0), thin, []vg.Length{vg.Points(5), vg.Points(3)}
	case "seed":
		return rgb(0x80, 0x80, 0x80), thin, nil
	case "floor-pwrite":
		return rgb(0, 0, 0), thin, []vg.Length{vg.Points(5), vg.Points(3)}
	case "floor-pwritev2":
		return rgb(0, 0, 0), thin, []vg.Length{vg.Points(1.5), vg.Points(2)}
	case "floor-group":
		return rgb(0, 0, 0), wide, nil
	case "pebble":
		return rgb(0xe6, 0x7e, 0x22), thin, nil
	case "etcd":
		return rgb(0x27, 0xae, 0x60), thin, nil
	case "tidwall":
		return rgb(0x8e, 0x44, 0xad), thin, nil
	case "raftwal":
		return rgb(0xc0, 0x39, 0x2b), thin, nil
	}
	return rgb(0x99, 0x66, 0x33), thin, nil
}

type cdfSeries struct {
	system string
	name   string
	cdf    [][2]float64
	dashed bool
}

func plotCDF(file, title string, series []cdfSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (µs, log scale)"
	p.Y.Label.Text = "fraction of ops at or below"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = ninesTicks
	p.Y.Min, p.Y.Max = 0, maxNines
	p.Add(plotter.NewGrid())
	p.Legend.Top = true // the curves rise on the right: the top left is free
	p.Legend.Left = true
	for _, s := range series {
		xy := make(plotter.XYs, 0, len(s.cdf))
		for _, pt := range s.cdf {
			if pt[0] > 0 {
				xy = append(xy, plotter.XY{X: pt[0], Y: nines(pt[1])})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color, l.Width, l.Dashes = style(s.system)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	return p.Save(9*vg.Inch, 6*vg.Inch, file)
}

// plotThroughput plots commit entries/s against writers, one line per
// system; it reports false when there is nothing to plot.
func plotThroughput(file string, rs []Result) (bool, error) {
	return plotRate(file, rs, wlCommit, "commit: durable entries/s vs writers (%d B entries; dashed: --warm)", "writers C (log scale)")
}

// plotPartitions plots the partitions workload's commits/s against N.
func plotPartitions(file string, rs []Result) (bool, error) {
	return plotRate(file, rs, wlPartitions, "partitions: N logs x 1 writer, durable commits/s (%d B entries)", "logs N (log scale; one log: N writers)")
}

// plotRate plots a workload's entries/s against its writers, one line per
// system.
func plotRate(file string, rs []Result, workload, title, xlabel string) (bool, error) {
	bySys := map[string]plotter.XYs{}
	var order []string
	var cs []int
	size := 0
	warm := map[string]bool{}
	for _, r := range rs {
		if r.Workload != workload || r.Error != "" || r.Skipped != "" || r.EntriesPerS <= 0 {
			continue
		}
		n := r.label()
		if _, ok := bySys[n]; !ok {
			order = append(order, n)
		}
		bySys[n] = append(bySys[n], plotter.XY{X: float64(r.Writers), Y: r.EntriesPerS})
		warm[n] = r.Warm
		if !slices.Contains(cs, r.Writers) {
			cs = append(cs, r.Writers)
		}
		size = r.EntrySize
	}
	if len(order) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf(title, size)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "entries/s (log scale)"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	slices.Sort(cs)
	var ticks plot.ConstantTicks
	for _, c := range cs {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	p.X.Tick.Marker = ticks
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	for i, n := range order {
		xy := bySys[n]
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return false, err
		}
		l.Color, l.Width, l.Dashes = style(strings.TrimSuffix(n, warmLabel(true)))
		if warm[n] {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		pts.Color = l.Color
		pts.Shape = plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(n, l, pts)
	}
	if len(cs) == 1 {
		p.X.Min, p.X.Max = float64(cs[0])/2, float64(cs[0])*2
	}
	return true, p.Save(9*vg.Inch, 6*vg.Inch, file)
}

// plotScale plots the scale workload's Open + first read time against the
// log's size, per system and batch shape (log-log).
func plotScale(file string, rs []Result) (bool, error) {
	series := map[string]plotter.XYs{}
	var order []string
	for _, r := range rs {
		if r.Workload != wlScale || r.Error != "" || r.Skipped != "" || !isPhase(r.Phase, PhaseOpenRead) && !isPhase(r.Phase, PhaseCrashRead) {
			continue
		}
		if r.OpenUS+r.FirstReadUS <= 0 {
			continue
		}
		what := r.System
		if isPhase(r.Phase, PhaseCrashRead) {
			what += " after a crash"
		}
		n := fmt.Sprintf("%s, %d-entry batches", what, r.BatchEntries)
		if _, ok := series[n]; !ok {
			order = append(order, n)
		}
		series[n] = append(series[n], plotter.XY{X: float64(r.LogBytes) / (1 << 20), Y: (r.OpenUS + r.FirstReadUS) / 1e3})
	}
	if len(order) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "scale: Open + first read of a middle entry, fresh process, page cache dropped"
	p.X.Label.Text = "log size, MiB of dwal segments (log scale)"
	p.Y.Label.Text = "ms (log scale)"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	for i, n := range order {
		xy := series[n]
		slices.SortFunc(xy, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return false, err
		}
		sys := strings.TrimSuffix(strings.Fields(n)[0], ",")
		look := map[string]string{"dwal": "dwal-uring", "raftstore": "dwal-uring-d1", "raft-wal": "raftwal"}[sys]
		l.Color, l.Width, l.Dashes = style(look)
		if strings.Contains(n, " 1-entry") {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		pts.Color = l.Color
		pts.Shape = plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(n, l, pts)
	}
	return true, p.Save(9*vg.Inch, 6*vg.Inch, file)
}
