package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestQuick runs the quick preset for about two seconds on a temporary
// directory with the dwal systems only, and checks that the JSON it prints
// and writes has sane fields (benchmarks are not tests: this only shows
// that the program works).
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark program for ~2 s")
	}
	dir, out := t.TempDir(), t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--systems", "dwal", "--workloads", "commit,latency,bulk,replay",
		"--writers", "1,4", "--duration", "150ms", "--warmup", "50ms", "--replay-size", "4MiB", "--segment-size", "8MiB", "--bulk-warmup", "16MiB",
		"--fio", "off", "--dir", dir, "--out", out, "--format", "json", "--progress", "off"}
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", code, stderr.String(), stdout.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
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
	for _, r := range rep.Results {
		if !strings.HasPrefix(r.System, "dwal-") {
			t.Errorf("system %q was not asked for", r.System)
		}
		if r.Error != "" {
			t.Errorf("%s %s C=%d: %s", r.System, r.Workload, r.Writers, r.Error)
			continue
		}
		if r.Skipped != "" {
			if r.System == "dwal-fallback" {
				t.Errorf("fallback skipped %s: %s", r.Workload, r.Skipped)
			}
			t.Logf("%s %s skipped: %s", r.System, r.Workload, r.Skipped)
			continue
		}
		ran[r.Workload] = true
		if r.Entries <= 0 || r.EntriesPerS <= 0 || r.MBPerS <= 0 || r.Bytes != r.Entries*int64(r.EntrySize) {
			t.Errorf("%s %s C=%d: bad counts %+v", r.System, r.Workload, r.Writers, r)
		}
		if r.CPUPerEntryUS < 0 || r.AllocsPerEntry < 0 || r.Backend == "" {
			t.Errorf("%s %s: bad cpu/allocs/backend: %+v", r.System, r.Workload, r)
		}
		if r.Workload == wlBulk && r.WarmupBytes < 16<<20 {
			t.Errorf("%s bulk: measured after %d bytes, want a warmup of at least 16 MiB", r.System, r.WarmupBytes)
		}
		if r.Workload == wlReplay {
			if want := int64(4<<20) / int64(r.EntrySize); r.Entries != want {
				t.Errorf("%s replay: %d entries, want %d", r.System, r.Entries, want)
			}
			continue
		}
		l := r.Latency
		if l.Count <= 0 || !(0 < l.P50US && l.P50US <= l.P99US && l.P99US <= l.P999US && l.P999US <= l.MaxUS) || len(l.CDF) < 2 {
			t.Errorf("%s %s C=%d: bad latency %+v", r.System, r.Workload, r.Writers, l)
		}
	}
	for _, w := range []string{wlCommit, wlLatency, wlBulk, wlReplay} {
		if !ran[w] {
			t.Errorf("workload %s: no result", w)
		}
	}
	if len(rep.Targets) == 0 {
		t.Error("no targets evaluated")
	}
	if txt, err := os.ReadFile(filepath.Join(out, "latest.txt")); err != nil || !bytes.Contains(txt, []byte("\ntargets (")) {
		t.Errorf("latest.txt is not the table (%v):\n%s", err, txt)
	} else if bytes.Contains(txt, []byte("issue")) {
		t.Errorf("the table speaks of an issue:\n%s", txt)
	}
	for _, png := range []string{"commit-c1-cdf.png", "commit-throughput.png"} {
		if fi, err := os.Stat(filepath.Join(out, png)); err != nil || fi.Size() == 0 {
			t.Errorf("plot %s: %v", png, err)
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
	closes           atomic.Int64
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

// TestRunCellPhases: a cell primes the log with one op, warms up, measures
// and closes the log once; its figures add up.
func TestRunCellPhases(t *testing.T) {
	sys := &fakeSystem{delay: 200 * time.Microsecond}
	p := &runParams{root: t.TempDir(), duration: 150 * time.Millisecond, warmup: 30 * time.Millisecond, process: "main"}
	c := cell{workload: wlCommit, writers: 4, entrySize: 128, perOp: 1, quiet: 200 * time.Millisecond}
	r := runCell(sys, c, p)
	if r.Error != "" || r.Skipped != "" {
		t.Fatalf("%+v", r)
	}
	l := sys.log
	if l.closes.Load() != 1 {
		t.Errorf("closed %d times", l.closes.Load())
	}
	if r.Ops <= 0 || r.Entries != r.Ops || r.Bytes != 128*r.Entries || r.EntriesPerSync < 0.95 || r.EntriesPerSync > 1.05 {
		t.Errorf("counts: %+v", r)
	}
	if total := l.commits.Load(); total < r.Ops+2 {
		t.Errorf("%d commits in all, %d measured: no prime op or no warmup", total, r.Ops)
	}
	if r.WarmupBytes < 2*128 {
		t.Errorf("warmup bytes %d: want the prime op and the warmup's", r.WarmupBytes)
	}
	if d := r.DurationS; d < 0.15 || d > 1 {
		t.Errorf("measured for %.3fs, want 0.15", d)
	}
	// An op that straddles the window's start is counted but not timed;
	// one that straddles its end is timed but not counted.
	if n := r.Latency.Count; n < r.Ops-int64(c.writers) || n > r.Ops+int64(c.writers) {
		t.Errorf("%d latencies recorded for %d ops of %d writers", n, r.Ops, c.writers)
	}
	if r.Latency.P50US < 200 {
		t.Errorf("p50 %.0f µs, below the log's 200 µs", r.Latency.P50US)
	}
}

// TestSourcesNameWhatExists: the package's comments and strings point to
// files that exist and speak of the project, not of its tracker.
func TestSourcesNameWhatExists(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	stale := regexp.MustCompile(`(?i)\bissue #?[0-9]+|\b(DESIGN|STYLE)\.md\b|\.\./shared`)
	goFile := regexp.MustCompile(`\b[a-z_]+\.go\b`)
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
