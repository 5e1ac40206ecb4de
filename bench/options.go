package bench

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options are the benchmark's settings (its flags).
type Options struct {
	Workloads      []string      `json:"workloads"`
	Systems        []string      `json:"systems"`
	Backend        string        `json:"backend"`
	Duration       time.Duration `json:"duration_ns"`
	Warmup         time.Duration `json:"warmup_ns"`
	Writers        []int         `json:"writers"`
	EntrySize      int           `json:"entry_size"`
	IOSize         int           `json:"io_size"`
	BatchSize      int           `json:"batch_size"`
	BulkWarmup     int64         `json:"bulk_warmup"`
	Rate           float64       `json:"rate_per_s"`
	ReplaySize     int64         `json:"replay_size"`
	RotateSegment  int64         `json:"rotate_segment"`
	RotateWriters  int           `json:"rotate_writers"`
	RestartEntries int64         `json:"restart_entries"`
	RestartWriters int           `json:"restart_writers"`
	ScaleSizes     []int64       `json:"scale_sizes"`
	Partitions     []int         `json:"partitions"`
	Warm           bool          `json:"warm"`
	SegmentSize    int64         `json:"segment_size"`
	Dir            string        `json:"dir"`
	Format         string        `json:"format"`
	Out            string        `json:"out"`
	Fio            string        `json:"fio"`
	FioRuntime     time.Duration `json:"fio_runtime_ns"`
	FioScript      string        `json:"fio_script"`
	PeersDir       string        `json:"peers_dir"`
	Progress       string        `json:"progress"`
	Quick          bool          `json:"quick"`
	Keep           bool          `json:"keep"`
	From           string        `json:"-"`
	Child          bool          `json:"-"`
}

// Names of systems and groups for --systems.
var (
	peerNames  = []string{"pebble", "etcd", "tidwall", "raftwal"}
	floorNames = []string{"floor-pwrite", "floor-pwritev2", "floor-group"}
	groups     = map[string][]string{
		"all":    {"dwal", "seed", "floors", "peers"},
		"dwal":   {"dwal-uring", "dwal-fallback"},
		"floors": floorNames,
		"peers":  peerNames,
	}
)

// rawFlags are the flags parsed into Options only once every flag is set
// (lists and sizes, which --quick may change).
type rawFlags struct {
	workloads, systems, writers, entry, io, batch, bulkWarm, replay, rotSeg, seg, restart, scale, partitions string
}

// newFlagSet defines the flags into o; finish, called after Parse, applies
// --quick and parses and checks the rest.
func newFlagSet(o *Options, stderr io.Writer) (fl *flag.FlagSet, finish func() error) {
	fl = flag.NewFlagSet("bench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var r rawFlags
	fl.StringVar(&r.workloads, "workloads", strings.Join(AllWorkloads, ","), "workloads to run: "+strings.Join(AllWorkloads, ", ")+" (and raft, only when named)")
	fl.StringVar(&r.workloads, "workload", strings.Join(AllWorkloads, ","), "same as --workloads")
	fl.StringVar(&r.systems, "systems", "all", "systems: dwal-uring, dwal-fallback, dwal-auto, dwal-uring-aes (Config.Cipher AES-256-GCM),\ndwal-uring-d1 (Config.GroupCommitDepth 1), dwal-uring-linked (Config.SyncMethod SyncFdatasync), seed, floor-pwrite, floor-pwritev2, floor-group,\npebble, etcd, tidwall, raftwal, or the groups dwal, floors, peers, all")
	fl.StringVar(&o.Backend, "backend", "both", "which dwal backends run: both, uring, fallback, auto (auto adds dwal-auto)")
	fl.DurationVar(&o.Duration, "duration", 2*time.Second, "measured time per cell, from the first op after Open (--warm cells: after their warmup)")
	fl.BoolVar(&o.Warm, "warm", false, "also measure each system's steady state, in cells marked (warm) beside the headline ones:\nafter Open, WarmUp (dwal: WaitPrepared), one op, a quiet directory, --warmup and --bulk-warmup unmeasured")
	fl.DurationVar(&o.Warmup, "warmup", 500*time.Millisecond, "--warm cells: unmeasured time before the measurement")
	fl.StringVar(&r.writers, "writers", "1,4,16,64,256", "writer counts C of the commit workload")
	fl.StringVar(&r.entry, "entry-size", "128", "entry size of the commit workload (bytes; KiB, MiB suffixes)")
	fl.StringVar(&r.io, "io-size", "4KiB", "entry size of the latency, bulk, rotate and replay workloads")
	fl.StringVar(&r.batch, "batch-size", "1MiB", "bytes per synced batch of the bulk workload")
	fl.StringVar(&r.bulkWarm, "bulk-warmup", "1GiB", "--warm bulk cells: bytes each system writes, unmeasured, before the measurement starts,\nso that they show the steady state (dwal reuses retired segments from its 12th on)")
	fl.Float64Var(&o.Rate, "rate", 0, "open loop: ops per second over all writers, on a fixed schedule, latency\nfrom each op's intended start (0: closed loop)")
	fl.StringVar(&r.replay, "replay-size", "1GiB", "bytes written, then read back, by the replay workload")
	fl.StringVar(&r.rotSeg, "rotate-segment", "8MiB", "segment size of the rotate workload")
	fl.IntVar(&o.RotateWriters, "rotate-writers", 16, "writers of the rotate workload")
	fl.StringVar(&r.restart, "restart-entries", "100000", "entries (of --entry-size) the restart workload commits before closing the log, and again after reopening it")
	fl.IntVar(&o.RestartWriters, "restart-writers", 16, "writers of the restart workload")
	fl.StringVar(&r.scale, "scale-sizes", "256MiB,1GiB,4GiB", "log sizes (bytes of dwal segments) of the scale workload")
	fl.StringVar(&r.partitions, "partitions", "1,16,64,256", "log counts N of the partitions workload (N logs, one writer each)")
	fl.StringVar(&r.seg, "segment-size", "0", "segment size of the commit, latency, bulk and replay workloads (0: each system's default)")
	fl.StringVar(&o.Dir, "dir", "", "directory on the disk to measure (default: the system's temporary directory)")
	fl.StringVar(&o.Format, "format", "table", "stdout format: table or json")
	fl.StringVar(&o.Out, "out", "bench/results", "directory for <timestamp>.json, latest.json and the PNG plots (\"\": none)")
	fl.StringVar(&o.Fio, "fio", "on", "device limit from scripts/fio-limit.sh: on, off")
	fl.DurationVar(&o.FioRuntime, "fio-runtime", 5*time.Second, "fio runtime per job")
	fl.StringVar(&o.FioScript, "fio-script", "", "path of fio-limit.sh (default: scripts/fio-limit.sh found from the working directory)")
	fl.StringVar(&o.PeersDir, "peers-dir", "", "the peers module (default: bench/peers found from the working directory)")
	fl.StringVar(&o.Progress, "progress", "auto", "progress lines on stderr: auto (when stdout is a terminal), on, off")
	fl.BoolVar(&o.Quick, "quick", false, "smoke preset (~30 s): 300ms cells, 100ms warmup, writers 1,64, 32 MiB replay,\nno bulk warmup, 5000 restart entries, 1s fio jobs; flags given explicitly still win")
	fl.BoolVar(&o.Keep, "keep", false, "keep the data directories")
	fl.StringVar(&o.From, "from", "", "measure nothing: print the table of a saved JSON report (and redraw its plots in --out)")
	fl.BoolVar(&o.Child, "child", false, "internal: run as the peers' subprocess (JSON results on stdout)")
	finish = func() error {
		set := map[string]bool{}
		fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if o.Quick {
			quickPreset(o, &r, set)
		}
		if err := r.parse(o); err != nil {
			return err
		}
		return o.check()
	}
	return fl, finish
}

// quickPreset is --quick: a smoke run of about 30 s, for the flags not set
// explicitly.
func quickPreset(o *Options, r *rawFlags, set map[string]bool) {
	if !set["duration"] {
		o.Duration = 300 * time.Millisecond
	}
	if !set["warmup"] {
		o.Warmup = 100 * time.Millisecond
	}
	if !set["writers"] {
		r.writers = "1,64"
	}
	if !set["replay-size"] {
		r.replay = "32MiB"
	}
	if !set["bulk-warmup"] {
		r.bulkWarm = "0"
	}
	if !set["restart-entries"] {
		r.restart = "5000"
	}
	if !set["scale-sizes"] {
		r.scale = "16MiB,64MiB"
	}
	if !set["partitions"] {
		r.partitions = "1,16"
	}
	if !set["fio-runtime"] {
		o.FioRuntime = time.Second
	}
}

// counts parses a list of positive counts.
func counts(list, what string) ([]int, error) {
	var out []int
	for _, s := range splitList(list) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad %s %q", what, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parse sets o's lists and sizes from r.
func (r *rawFlags) parse(o *Options) error {
	var err error
	o.Workloads = splitList(r.workloads)
	for _, w := range o.Workloads {
		if !contains(KnownWorkloads, w) {
			return fmt.Errorf("unknown workload %q", w)
		}
	}
	if o.Systems, err = expandSystems(splitList(r.systems), o.Backend); err != nil {
		return err
	}
	if o.Writers, err = counts(r.writers, "writer count"); err != nil {
		return err
	}
	if o.Partitions, err = counts(r.partitions, "--partitions count"); err != nil {
		return err
	}
	sizes := []struct {
		s   string
		dst *int64
	}{{r.replay, &o.ReplaySize}, {r.rotSeg, &o.RotateSegment}}
	for _, x := range sizes {
		if *x.dst, err = ParseSize(x.s); err != nil || *x.dst <= 0 {
			return fmt.Errorf("bad size %q", x.s)
		}
	}
	if o.BulkWarmup, err = ParseSize(r.bulkWarm); err != nil || o.BulkWarmup < 0 {
		return fmt.Errorf("bad --bulk-warmup %q", r.bulkWarm)
	}
	if o.RestartEntries, err = strconv.ParseInt(r.restart, 10, 64); err != nil || o.RestartEntries <= 0 {
		return fmt.Errorf("bad --restart-entries %q", r.restart)
	}
	if o.ScaleSizes, err = scaleSizes(r.scale); err != nil {
		return err
	}
	if o.SegmentSize, err = ParseSize(r.seg); err != nil || o.SegmentSize < 0 {
		return fmt.Errorf("bad --segment-size %q", r.seg)
	}
	ints := []struct {
		s   string
		dst *int
	}{{r.entry, &o.EntrySize}, {r.io, &o.IOSize}, {r.batch, &o.BatchSize}}
	for _, x := range ints {
		n, err := ParseSize(x.s)
		if err != nil || n <= 0 || n > 1<<30 {
			return fmt.Errorf("bad size %q", x.s)
		}
		*x.dst = int(n)
	}
	return nil
}

// check rejects settings that do not go together.
func (o *Options) check() error {
	switch {
	case o.Duration <= 0 || o.Warmup < 0:
		return fmt.Errorf("bad duration %v or warmup %v", o.Duration, o.Warmup)
	case o.Format != "table" && o.Format != "json":
		return fmt.Errorf("unknown format %q (table, json)", o.Format)
	case o.Fio != "on" && o.Fio != "off":
		return fmt.Errorf("--fio is on or off, not %q", o.Fio)
	case o.Progress != "auto" && o.Progress != "on" && o.Progress != "off":
		return fmt.Errorf("--progress is auto, on or off, not %q", o.Progress)
	case o.Rate < 0 || o.RotateWriters <= 0 || o.RestartWriters <= 0:
		return fmt.Errorf("bad --rate, --rotate-writers or --restart-writers")
	case o.BatchSize < o.IOSize:
		return fmt.Errorf("--batch-size %d is smaller than --io-size %d", o.BatchSize, o.IOSize)
	}
	return nil
}

// expandSystems resolves groups and applies --backend to the dwal systems.
func expandSystems(names []string, backend string) ([]string, error) {
	known := append(append([]string{"dwal-uring", "dwal-fallback", "dwal-auto", "dwal-uring-aes", "dwal-uring-d1", "dwal-uring-linked", "seed"}, floorNames...), peerNames...)
	var out []string
	var add func(n string) error
	add = func(n string) error {
		if g, ok := groups[n]; ok {
			for _, m := range g {
				if err := add(m); err != nil {
					return err
				}
			}
			return nil
		}
		if !contains(known, n) {
			return fmt.Errorf("unknown system %q", n)
		}
		if !contains(out, n) {
			out = append(out, n)
		}
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	keep := func(n string) bool {
		switch backend {
		case "both":
			return true
		case "uring":
			return n != "dwal-fallback" && n != "dwal-auto"
		case "fallback":
			return n != "dwal-uring" && n != "dwal-auto" && n != "dwal-uring-aes" && n != "dwal-uring-d1" && n != "dwal-uring-linked"
		case "auto":
			return n != "dwal-uring" && n != "dwal-fallback" && n != "dwal-uring-aes" && n != "dwal-uring-d1" && n != "dwal-uring-linked"
		}
		return true
	}
	switch backend {
	case "both", "uring", "fallback", "auto":
	default:
		return nil, fmt.Errorf("unknown backend %q (both, uring, fallback, auto)", backend)
	}
	var res []string
	hadDwal := false
	for _, n := range out {
		if strings.HasPrefix(n, "dwal-") {
			hadDwal = true
			if !keep(n) {
				continue
			}
		}
		res = append(res, n)
	}
	if hadDwal && backend == "auto" && !contains(res, "dwal-auto") {
		res = append([]string{"dwal-auto"}, res...)
	}
	return res, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseSize parses a byte count: 4096, 4KiB, 8MiB, 1GiB (also K, M, G, KB,
// MB, GB as powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
