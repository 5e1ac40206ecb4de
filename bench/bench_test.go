package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runQuick runs the program with args (and --fio off, --format json, no
// progress) on a temporary directory and returns its report and --out.
func runQuick(t *testing.T, args ...string) (*Report, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the benchmark program for a few seconds")
	}
	dir, out := t.TempDir(), t.TempDir()
	var stdout, stderr bytes.Buffer
	args = append(args, "--fio", "off", "--dir", dir, "--out", out, "--format", "json", "--progress", "off")
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", code, stderr.String(), stdout.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	return &rep, out
}

// checkLatency checks that r's latency summary is ordered and has a CDF.
func checkLatency(t *testing.T, r Result) {
	t.Helper()
	l := r.Latency
	if l.Count <= 0 || !(0 < l.P50US && l.P50US <= l.P99US && l.P99US <= l.P999US && l.P999US <= l.MaxUS) || len(l.CDF) < 2 {
		t.Errorf("%s %s %s C=%d: bad latency %+v", r.label(), r.Workload, r.Phase, r.Writers, l)
	}
}

// TestQuick runs the quick preset for a few seconds on a temporary
// directory with the dwal systems only, headline and --warm cells, and
// checks that the JSON it prints and writes has sane fields (benchmarks are
// not tests: this only shows that the program works).
func TestQuick(t *testing.T) {
	const restartEntries = 2000
	rep, out := runQuick(t, "--quick", "--warm", "--systems", "dwal", "--workloads", "commit,latency,bulk,replay,restart",
		"--writers", "1,4", "--duration", "150ms", "--warmup", "50ms", "--replay-size", "4MiB", "--segment-size", "8MiB", "--bulk-warmup", "16MiB",
		"--restart-entries", fmt.Sprint(restartEntries), "--restart-writers", "4")
	b, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var latest Report
	if err := json.Unmarshal(b, &latest); err != nil {
		t.Fatalf("latest.json: %v", err)
	}
	if len(latest.Results) != len(rep.Results) || !latest.Started.Equal(rep.Started) {
		t.Errorf("latest.json differs from stdout: %d vs %d results", len(latest.Results), len(rep.Results))
	}
	if rep.Host.CPUs <= 0 || rep.Host.Go == "" || rep.Options.Duration <= 0 {
		t.Errorf("host or options missing: %+v %+v", rep.Host, rep.Options)
	}
	ran := map[string]bool{}
	phases := map[string][]string{} // restart: system (warm) -> phases
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.System, "dwal-") {
			t.Errorf("system %q was not asked for", r.System)
		}
		if r.Error != "" {
			t.Errorf("%s %s C=%d: %s", r.label(), r.Workload, r.Writers, r.Error)
			continue
		}
		if r.Skipped != "" {
			if r.System == "dwal-fallback" {
				t.Errorf("fallback skipped %s: %s", r.Workload, r.Skipped)
			}
			t.Logf("%s %s skipped: %s", r.label(), r.Workload, r.Skipped)
			continue
		}
		ran[r.Workload+warmLabel(r.Warm)] = true
		if r.Entries <= 0 || r.EntriesPerS <= 0 || r.MBPerS <= 0 || r.Bytes != r.Entries*int64(r.EntrySize) {
			t.Errorf("%s %s C=%d: bad counts %+v", r.label(), r.Workload, r.Writers, r)
		}
		if r.CPUPerEntryUS < 0 || r.AllocsPerEntry < 0 || r.Backend == "" || r.OpenUS <= 0 {
			t.Errorf("%s %s: bad cpu/allocs/backend/open time: %+v", r.label(), r.Workload, r)
		}
		// The headline starts writing at once; only --warm cells wait for
		// dwal's preparation (WarmUp, WaitPrepared) and write unmeasured first.
		switch {
		case !r.Warm && (r.WarmedUp || r.WarmupBytes != 0):
			t.Errorf("%s %s C=%d: a headline cell warmed up (WarmUp %v, %d bytes before the clock)", r.label(), r.Workload, r.Writers, r.WarmedUp, r.WarmupBytes)
		case r.Warm && !r.WarmedUp:
			t.Errorf("%s %s C=%d: a warm dwal cell did not call WarmUp", r.label(), r.Workload, r.Writers)
		case r.Warm && r.Workload == wlBulk && r.WarmupBytes < 16<<20:
			t.Errorf("%s bulk: measured after %d bytes, want a warmup of at least 16 MiB", r.label(), r.WarmupBytes)
		case r.Warm && r.Workload == wlCommit && r.WarmupBytes <= 0:
			t.Errorf("%s commit: no warmup before the clock", r.label())
		}
		switch r.Workload {
		case wlReplay:
			if want := int64(4<<20) / int64(r.EntrySize); r.Entries != want {
				t.Errorf("%s replay: %d entries, want %d", r.System, r.Entries, want)
			}
			if r.Warm {
				t.Errorf("%s: a warm replay cell", r.label())
			}
		case wlRestart:
			phases[r.label()] = append(phases[r.label()], r.Phase)
			if r.Entries != restartEntries {
				t.Errorf("%s restart %s: %d entries, want %d", r.label(), r.Phase, r.Entries, restartEntries)
			}
			checkLatency(t, r)
		default:
			checkLatency(t, r)
		}
	}
	for _, w := range []string{wlCommit, wlLatency, wlBulk, wlReplay, wlRestart} {
		for _, l := range []string{"", warmLabel(true)} {
			if !ran[w+l] && (w != wlReplay || l == "") {
				t.Errorf("workload %s%s: no result", w, l)
			}
		}
	}
	for sys, ph := range phases {
		if !slices.Equal(ph, []string{phaseFirst, phaseReopened}) {
			t.Errorf("%s restart: phases %q, want first open then reopened", sys, ph)
		}
	}
	if len(phases) < 2 {
		t.Errorf("restart ran for %v only", phases)
	}
	if len(rep.Targets) == 0 {
		t.Error("no targets evaluated")
	}
	txt, err := os.ReadFile(filepath.Join(out, "latest.txt"))
	if err != nil || !bytes.Contains(txt, []byte("\ntargets (")) {
		t.Errorf("latest.txt is not the table (%v):\n%s", err, txt)
	}
	for _, want := range []string{"dwal-fallback (warm)", "restart: first open", "restart: reopened", "restart, time of Open"} {
		if !bytes.Contains(txt, []byte(want)) {
			t.Errorf("latest.txt has no %q:\n%s", want, txt)
		}
	}
	if bytes.Contains(txt, []byte("issue")) {
		t.Errorf("the table speaks of an issue:\n%s", txt)
	}
	for _, png := range []string{"commit-c1-cdf.png", "commit-throughput.png"} {
		if fi, err := os.Stat(filepath.Join(out, png)); err != nil || fi.Size() == 0 {
			t.Errorf("plot %s: %v", png, err)
		}
	}
}

// TestQuickBaselines runs the seed baseline and the floors briefly: every
// floor commits at every writer count, floor-group in batches, and the
// seed restarts.
func TestQuickBaselines(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the floors need Linux")
	}
	rep, _ := runQuick(t, "--quick", "--systems", "seed,floors", "--workloads", "commit,restart",
		"--writers", "1,8", "--duration", "150ms", "--restart-entries", "500", "--restart-writers", "4")
	got := map[string]Result{}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s %s C=%d: %s", r.label(), r.Workload, r.Writers, r.Error)
		}
		got[fmt.Sprintf("%s %s %s C=%d", r.System, r.Workload, r.Phase, r.Writers)] = r
	}
	for _, f := range floorNames {
		for _, c := range []int{1, 8} {
			r, ok := got[fmt.Sprintf("%s commit  C=%d", f, c)]
			if !ok || r.Skipped != "" || r.Entries <= 0 {
				t.Errorf("%s commit C=%d: %+v", f, c, r)
				continue
			}
			checkLatency(t, r)
		}
	}
	if r := got["floor-group commit  C=8"]; r.EntriesPerSync < 1 {
		t.Errorf("floor-group at C=8: %.2f entries per sync", r.EntriesPerSync)
	}
	for _, ph := range []string{phaseFirst, phaseReopened} {
		if r := got["seed restart "+ph+" C=4"]; r.Skipped != "" || r.Entries != 500 {
			t.Errorf("seed restart %s: %+v", ph, r)
		}
	}
}

// TestFunnel: every commit is answered, in batches no larger than the caps.
func TestFunnel(t *testing.T) {
	var mu sync.Mutex
	saved, biggest := 0, 0
	f := NewFunnel(func(d [][]byte) error {
		mu.Lock()
		saved += len(d)
		biggest = max(biggest, len(d))
		mu.Unlock()
		return nil
	}, 5, 0)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := f.Commit([]byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	f.Close()
	if saved != 800 || biggest > 5 || f.Batches() == 0 {
		t.Fatalf("saved %d in %d batches, biggest %d", saved, f.Batches(), biggest)
	}
	if err := f.Commit(nil); err != ErrFunnelClosed {
		t.Fatalf("after Close: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"128": 128, "4KiB": 4096, "8MiB": 8 << 20, "1GiB": 1 << 30, "2M": 2 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// fakeSystem is a log that keeps nothing: a commit takes delay.
type fakeSystem struct {
	delay time.Duration
	log   *fakeLog
}

func (s *fakeSystem) Name() string { return "fake" }

func (s *fakeSystem) Open(cfg Config) (Log, error) {
	s.log = &fakeLog{delay: s.delay}
	return s.log, nil
}

type fakeLog struct {
	delay            time.Duration
	commits, flushes atomic.Int64
	closes, warmUps  atomic.Int64
}

func (l *fakeLog) Commit(uint64, []byte) error {
	time.Sleep(l.delay)
	l.commits.Add(1)
	return nil
}

func (l *fakeLog) Flush(_ uint64, es [][]byte) error {
	time.Sleep(l.delay)
	l.flushes.Add(1)
	return nil
}

func (l *fakeLog) Close() error { l.closes.Add(1); return nil }

func (l *fakeLog) Syncs() uint64 { return uint64(l.commits.Load() + l.flushes.Load()) }

func (l *fakeLog) WarmUp() error { l.warmUps.Add(1); return nil }

// TestRunCellPhases: a headline cell measures from the first op after Open
// and never warms the log up; a warm cell calls WarmUp, primes the log
// with one op and warms up before its window. Both close the log once,
// and their figures add up.
func TestRunCellPhases(t *testing.T) {
	for _, warm := range []bool{false, true} {
		sys := &fakeSystem{delay: 200 * time.Microsecond}
		p := &runParams{root: t.TempDir(), duration: 150 * time.Millisecond, warmup: 30 * time.Millisecond, process: "main"}
		c := cell{workload: wlCommit, writers: 4, entrySize: 128, perOp: 1, quiet: 200 * time.Millisecond, warm: warm}
		r := runCell(sys, c, p)
		if r.Error != "" || r.Skipped != "" {
			t.Fatalf("warm %v: %+v", warm, r)
		}
		l := sys.log
		if l.closes.Load() != 1 {
			t.Errorf("warm %v: closed %d times", warm, l.closes.Load())
		}
		if r.Ops <= 0 || r.Entries != r.Ops || r.Bytes != 128*r.Entries || r.EntriesPerSync < 0.95 || r.EntriesPerSync > 1.05 {
			t.Errorf("warm %v: counts: %+v", warm, r)
		}
		total := l.commits.Load()
		if warm {
			if l.warmUps.Load() != 1 || !r.WarmedUp || !r.Warm {
				t.Errorf("warm cell: WarmUp called %d times, recorded %v", l.warmUps.Load(), r.WarmedUp)
			}
			if total < r.Ops+2 || r.WarmupBytes < 2*128 {
				t.Errorf("warm cell: %d commits in all, %d measured, %d bytes before the clock: no prime op or no warmup", total, r.Ops, r.WarmupBytes)
			}
		} else {
			if l.warmUps.Load() != 0 || r.WarmedUp || r.Warm || r.WarmupBytes != 0 {
				t.Errorf("headline cell warmed up: WarmUp called %d times, %d bytes before the clock", l.warmUps.Load(), r.WarmupBytes)
			}
			// Only the ops completed between the window's end (the counters'
			// snapshot) and the writers' stop are not counted: about one
			// per writer, a few more when the race detector and a loaded
			// machine delay the stop. A warm-up would add hundreds (30 ms
			// of ops).
			if total > r.Ops+4*int64(c.writers) {
				t.Errorf("headline cell: %d commits in all, %d measured: something ran before the clock", total, r.Ops)
			}
		}
		if d := r.DurationS; d < 0.15 || d > 1 {
			t.Errorf("warm %v: measured for %.3fs, want 0.15", warm, d)
		}
		// An op that straddles the window's start is counted but not timed;
		// one that straddles its end is timed but not counted.
		if n := r.Latency.Count; n < r.Ops-4*int64(c.writers) || n > r.Ops+4*int64(c.writers) {
			t.Errorf("warm %v: %d latencies recorded for %d ops of %d writers", warm, n, r.Ops, c.writers)
		}
		if r.Latency.P50US < 200 {
			t.Errorf("warm %v: p50 %.0f µs, below the log's 200 µs", warm, r.Latency.P50US)
		}
	}
}

// TestRunRestartPhases: the restart workload opens, commits n, closes,
// reopens and commits n more, its LSNs going on across the restart.
func TestRunRestartPhases(t *testing.T) {
	sys := &fakeReopener{fakeSystem: fakeSystem{delay: 100 * time.Microsecond}}
	p := &runParams{root: t.TempDir(), duration: time.Second, process: "main"}
	c := cell{workload: wlRestart, writers: 3, entrySize: 64, perOp: 1}
	rs := runRestart(sys, c, 100, p)
	if len(rs) != 2 || rs[0].Phase != phaseFirst || rs[1].Phase != phaseReopened {
		t.Fatalf("phases: %+v", rs)
	}
	for _, r := range rs {
		if r.Error != "" || r.Skipped != "" || r.Entries != 100 || r.Latency.Count != 100 || r.WarmupBytes != 0 {
			t.Errorf("%s: %+v", r.Phase, r)
		}
	}
	if sys.opens != 1 || sys.reopens != 1 || sys.log.closes.Load() != 1 || sys.first.closes.Load() != 1 {
		t.Errorf("%d opens, %d reopens", sys.opens, sys.reopens)
	}
	if sys.maxLSN.Load() != 200 {
		t.Errorf("last LSN %d, want 200: the second phase does not go on after the first", sys.maxLSN.Load())
	}
	if rs := runRestart(&fakeSystem{}, c, 10, p); rs[0].Skipped == "" || rs[1].Skipped == "" {
		t.Errorf("a system without Reopen ran the restart workload: %+v", rs)
	}
}

// fakeReopener is fakeSystem with Reopen, and it notes the largest LSN.
type fakeReopener struct {
	fakeSystem
	opens, reopens int
	first          *fakeLog
	maxLSN         atomic.Uint64
}

func (s *fakeReopener) Open(cfg Config) (Log, error) {
	s.opens++
	l, _ := s.fakeSystem.Open(cfg)
	s.first = s.log
	return &lsnLog{l.(*fakeLog), &s.maxLSN}, nil
}

func (s *fakeReopener) Reopen(cfg Config) (Log, error) {
	s.reopens++
	l, _ := s.fakeSystem.Open(cfg)
	return &lsnLog{l.(*fakeLog), &s.maxLSN}, nil
}

type lsnLog struct {
	*fakeLog
	max *atomic.Uint64
}

func (l *lsnLog) Commit(lsn uint64, b []byte) error {
	for {
		m := l.max.Load()
		if lsn <= m || l.max.CompareAndSwap(m, lsn) {
			break
		}
	}
	return l.fakeLog.Commit(lsn, b)
}

// TestSourcesNameWhatExists: the package's comments and strings point to
// files that exist and speak of the project, not of its tracker.
func TestSourcesNameWhatExists(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	stale := regexp.MustCompile(`(?i)\bissue #?[0-9]+|\b(DESIGN|STYLE)\.md\b|\.\./shared`)
	goFile := regexp.MustCompile(`\b[a-z][a-z_]*\.go\b`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range stale.FindAll(b, -1) {
			t.Errorf("%s mentions %q", f, m)
		}
		for _, m := range goFile.FindAll(b, -1) {
			if _, err := os.Stat(string(m)); err != nil {
				t.Errorf("%s names %s, which is not in the package", f, m)
			}
		}
	}
}

// TestWaitPreparedOnlyOnTheWarmPath: the benchmark starts dwal as users
// do. Outside tests, WaitPrepared is called only in a WarmUp method, and
// WarmUp only by warmUp, the --warm path's first step (TestQuick checks
// that headline cells never take it).
func TestWaitPreparedOnlyOnTheWarmPath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := map[string][]string{} // method called -> functions calling it
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if c, ok := n.(*ast.CallExpr); ok {
					if sel, ok := c.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "WaitPrepared" || sel.Sel.Name == "WarmUp") {
						calls[sel.Sel.Name] = append(calls[sel.Sel.Name], fmt.Sprintf("%s (%s)", fd.Name.Name, fset.Position(c.Pos())))
					}
				}
				return true
			})
		}
	}
	for method, want := range map[string]string{"WaitPrepared": "WarmUp", "WarmUp": "warmUp"} {
		if len(calls[method]) == 0 {
			t.Errorf("nothing calls %s", method)
		}
		for _, by := range calls[method] {
			if !strings.HasPrefix(by, want+" ") {
				t.Errorf("%s is called by %s; only %s may call it", method, by, want)
			}
		}
	}
}

// TestSeedReopenGoesOn: the seed baseline reopened writes on in a new
// segment after the last, and its replay reads both runs in order.
func TestSeedReopenGoesOn(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), EntrySize: 32}
	entry := func(i int) []byte { return fmt.Appendf(nil, "%-32d", i) }
	write := func(l Log, from int) {
		t.Helper()
		for i := from; i < from+10; i++ {
			if err := l.Commit(uint64(i), entry(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := SeedSystem().Open(cfg)
	write(l, 1)
	l, err := SeedSystem().(Reopener).Reopen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write(l, 11)
	if ids := seedSegments(cfg.Dir); !slices.Equal(ids, []uint64{1, 2}) {
		t.Errorf("segments %v, want 1 and 2", ids)
	}
	var got []string
	if err := SeedSystem().(Replayer).Replay(cfg, func(b []byte) { got = append(got, string(b)) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || got[0] != string(entry(1)) || got[19] != string(entry(20)) {
		t.Errorf("replayed %d entries: %q", len(got), got)
	}
}

// The Raft workload runs only when named: --workloads raft parses, the
// default list leaves it out, and without the peers' binary the child
// says it has no raft stores rather than failing silently.
func TestRaftWorkloadOptIn(t *testing.T) {
	parse := func(args ...string) (*Options, error) {
		var o Options
		fl, finish := newFlagSet(&o, io.Discard)
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		return &o, finish()
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(o.Workloads, wlRaft) {
		t.Fatalf("the default workloads %v include raft", o.Workloads)
	}
	if o, err = parse("--workloads", "raft"); err != nil || !slices.Equal(o.Workloads, []string{wlRaft}) {
		t.Fatalf("--workloads raft: %v, %v", o, err)
	}
	if _, err := parse("--workloads", "rafts"); err == nil {
		t.Fatal("an unknown workload parsed")
	}
	saved := RaftBench
	RaftBench = nil
	defer func() { RaftBench = saved }()
	rs := runRaftChild(&Options{Dir: t.TempDir()}, &progress{})
	if len(rs) != 1 || rs[0].Skipped == "" {
		t.Fatalf("runRaftChild without stores: %+v", rs)
	}
}

// TestRaftTargets: each cluster cell of raftstore is judged against the
// same cell of raft-wal (2x) and raft-boltdb (3x); a peer that did not
// run it leaves the target n/a.
func TestRaftTargets(t *testing.T) {
	cell := func(sys, phase string, perS float64) Result {
		return Result{Workload: wlRaft, System: sys, Phase: phase, EntriesPerS: perS}
	}
	tcp := "3-node cluster over TCP, 64 clients"
	rep := &Report{Results: []Result{
		cell("raft-dwal", tcp, 30000), cell("raft-wal", tcp, 10000), cell("raft-boltdb", tcp, 15000),
		cell("raft-dwal", "3-node cluster, 64 clients", 40000), cell("raft-wal", "3-node cluster, 64 clients", 25000),
		cell("raft-dwal", "StoreLogs 64x128B", 1e6),
	}}
	got := map[string]string{}
	for _, tg := range raftTargets(rep) {
		got[tg.Name] = fmt.Sprintf("%s %.1f", tg.Status, tg.Ratio)
	}
	want := map[string]string{
		"raft " + tcp + " vs raft-wal":                   "PASS 3.0",
		"raft " + tcp + " vs raft-boltdb":                "MISS 2.0",
		"raft 3-node cluster, 64 clients vs raft-wal":    "MISS 1.6",
		"raft 3-node cluster, 64 clients vs raft-boltdb": "n/a 0.0",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("raft targets %v, want %v", got, want)
	}
}

// TestPartitionsWorkload runs the partitions workload briefly and checks
// its cells: every system at every N, the set's disk use independent of N
// and below N Coordinators', the resources counted, the plot written.
func TestPartitionsWorkload(t *testing.T) {
	rep, out := runQuick(t, "--workloads", "partitions", "--systems", "dwal", "--partitions", "1,4", "--duration", "150ms")
	cells := map[string]Result{}
	for _, r := range rep.Results {
		if r.Workload != wlPartitions {
			t.Errorf("result of workload %q", r.Workload)
		}
		if r.Error != "" || r.Skipped != "" {
			t.Errorf("%s N=%d: %s%s", r.System, r.Writers, r.Error, r.Skipped)
			continue
		}
		if r.Entries <= 0 || r.EntriesPerS <= 0 {
			t.Errorf("%s N=%d: no commits: %+v", r.System, r.Writers, r)
		}
		checkLatency(t, r)
		cells[fmt.Sprintf("%s/%d", r.System, r.Writers)] = r
	}
	for _, sys := range []string{"dwal-set", "dwal-logs", "dwal-one-log", "floor-files", "floor-group"} {
		for _, n := range []int{1, 4} {
			if _, ok := cells[fmt.Sprintf("%s/%d", sys, n)]; !ok && (runtime.GOOS == "linux" || strings.HasPrefix(sys, "dwal-")) {
				t.Errorf("no %s cell at N=%d", sys, n)
			}
		}
	}
	set1, set4, logs4 := cells["dwal-set/1"], cells["dwal-set/4"], cells["dwal-logs/4"]
	if set1.DiskWritten <= 0 || set1.DiskBytes <= set1.DiskWritten || set4.DiskBytes > set1.DiskBytes*3/2 {
		t.Errorf("set's disk use %d bytes at N=4, %d at N=1: not independent of N", set4.DiskBytes, set1.DiskBytes)
	}
	if logs4.DiskBytes < 3*set4.DiskBytes {
		t.Errorf("4 Coordinators allocate %d bytes, the set of 4 logs %d: the cells do not measure what they say", logs4.DiskBytes, set4.DiskBytes)
	}
	if logs4.OpenFiles <= set4.OpenFiles || logs4.Goroutines < set4.Goroutines || set4.MaxRSSBytes <= 0 {
		t.Errorf("resources: set %d files %d goroutines %d RSS, 4 Coordinators %d files %d goroutines",
			set4.OpenFiles, set4.Goroutines, set4.MaxRSSBytes, logs4.OpenFiles, logs4.Goroutines)
	}
	if _, err := os.Stat(filepath.Join(out, "partitions.png")); err != nil {
		t.Errorf("no partitions plot: %v", err)
	}
	found := false
	for _, tg := range rep.Targets {
		if strings.HasPrefix(tg.Name, "partitions disk beyond") {
			found = tg.Status == "PASS"
		}
		if tg.System != "dwal-set" && strings.HasPrefix(tg.Name, "partitions") {
			t.Errorf("target %q of %s", tg.Name, tg.System)
		}
	}
	if !found {
		t.Errorf("the disk-use target did not pass: %+v", rep.Targets)
	}
	var table bytes.Buffer
	printTable(&table, rep)
	if !strings.Contains(table.String(), "partitions (N logs x 1 writer") {
		t.Errorf("no partitions table:\n%s", table.String())
	}
}
