package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The peers (pebble's record.LogWriter, etcd's wal, tidwall/wal,
// hashicorp/raft-wal) live in their own module, bench/peers, so that dwal's
// go.mod carries none of their dependencies. That module imports this
// package for the harness (System, Funnel, the cell runner of run.go) and
// builds a binary, peerbench, which is this program with the peers as its
// systems. The main program builds it once per run (go build, in the peers
// module) and runs it once per workload with the same settings and
// --child; the child measures the peers with the same cell runner on the
// same directory's disk and prints its results as JSON on stdout, which
// are merged with the rest.

// PeersInfo says which peer modules ran, or why none did.
type PeersInfo struct {
	Dir      string            `json:"dir,omitempty"`
	Versions map[string]string `json:"versions,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// ChildOutput is what the peers' subprocess prints.
type ChildOutput struct {
	Results  []Result          `json:"results"`
	Versions map[string]string `json:"versions"`
}

type peerRunner struct {
	bin    string
	stderr io.Writer
}

// buildPeers builds the peers' binary into workDir.
func buildPeers(o *Options, workDir string, stderr io.Writer) (*peerRunner, string, error) {
	dir := o.PeersDir
	if dir == "" {
		p, ok := findUp(filepath.Join("bench", "peers", "go.mod"))
		if !ok {
			return nil, "", errors.New("bench/peers not found from the working directory (run from the dwal repository or pass --peers-dir)")
		}
		dir = filepath.Dir(p)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, dir, errors.New("the go command is not in PATH (it builds the peers' binary)")
	}
	bin := filepath.Join(workDir, "peerbench")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/peerbench")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, dir, fmt.Errorf("go build ./cmd/peerbench in %s: %v: %s", dir, err, strings.TrimSpace(out.String()))
	}
	return &peerRunner{bin: bin, stderr: stderr}, dir, nil
}

// childArgs are the flags that make the child run workload for systems
// under root with the settings of o.
func childArgs(o *Options, workload string, systems []string, root string, progress bool) []string {
	ints := func(xs []int) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	}
	pr := "off"
	if progress {
		pr = "on"
	}
	return []string{"--child",
		"--workloads", workload,
		"--systems", strings.Join(systems, ","),
		"--duration", o.Duration.String(),
		"--warmup", o.Warmup.String(),
		"--writers", ints(o.Writers),
		"--entry-size", strconv.Itoa(o.EntrySize),
		"--io-size", strconv.Itoa(o.IOSize),
		"--batch-size", strconv.Itoa(o.BatchSize),
		"--bulk-warmup", strconv.FormatInt(o.BulkWarmup, 10),
		"--rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"--replay-size", strconv.FormatInt(o.ReplaySize, 10),
		"--rotate-segment", strconv.FormatInt(o.RotateSegment, 10),
		"--rotate-writers", strconv.Itoa(o.RotateWriters),
		"--restart-entries", strconv.FormatInt(o.RestartEntries, 10),
		"--restart-writers", strconv.Itoa(o.RestartWriters),
		"--scale-sizes", fmtSizes(o.ScaleSizes),
		"--warm=" + strconv.FormatBool(o.Warm),
		"--segment-size", strconv.FormatInt(o.SegmentSize, 10),
		"--dir", root,
		"--progress", pr,
		"--keep=" + strconv.FormatBool(o.Keep),
	}
}

// run runs the child for one workload and returns its output.
func (p *peerRunner) run(args []string, limit time.Duration) (*ChildOutput, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, p.stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("peerbench: %v", err)
	}
	var co ChildOutput
	if err := json.Unmarshal(out.Bytes(), &co); err != nil {
		return nil, fmt.Errorf("peerbench output: %v", err)
	}
	return &co, nil
}

// Child is the peers' program: it runs the workloads of its flags (which
// must include --child) for the given systems and prints a ChildOutput.
// versions names the peer modules and versions it was built with.
func Child(args []string, stdout, stderr io.Writer, systems []System, versions map[string]string) int {
	var o Options
	fl, finish := newFlagSet(&o, stderr)
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if err := finish(); err != nil || !o.Child || o.Dir == "" {
		fmt.Fprintf(stderr, "peerbench: run by the bench program (dwalbench), with --child and --dir: %v\n", err)
		return 2
	}
	var run []System
	for _, s := range systems {
		if contains(o.Systems, s.Name()) {
			run = append(run, s)
		}
	}
	pr := &progress{on: o.Progress == "on", w: stderr}
	p := &runParams{root: o.Dir, duration: o.Duration, warmup: o.Warmup, rate: o.Rate, keep: o.Keep, process: "peers"}
	out := ChildOutput{Versions: versions}
	for _, w := range o.Workloads {
		switch w {
		case wlRaft:
			out.Results = append(out.Results, runRaftChild(&o, pr)...)
			continue
		case wlScale:
			out.Results = append(out.Results, runScaleChild(&o, pr)...)
			continue
		}
		out.Results = append(out.Results, runWorkload(&o, w, run, p, pr)...)
	}
	pr.done()
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "peerbench:", err)
		return 1
	}
	return 0
}

// progress prints one line per cell on a terminal.
type progress struct {
	on    bool
	w     io.Writer
	shown bool
	start time.Time
}

func (p *progress) step(format string, args ...any) {
	if !p.on {
		return
	}
	if p.start.IsZero() {
		p.start = time.Now()
	}
	el := time.Since(p.start).Round(time.Second)
	fmt.Fprintf(p.w, "\r\033[K[bench %d:%02d] "+format, append([]any{int(el.Minutes()), int(el.Seconds()) % 60}, args...)...)
	p.shown = true
}

func (p *progress) done() {
	if p.on && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// stdoutIsTerminal is a seam for tests.
var stdoutIsTerminal = func() bool { return isTerminal(os.Stdout) }
