package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/uring"
)

const doctorUsage = `usage: dwal doctor [DIR] [--duration D]

Explains how dwal will behave on this machine for a WAL in DIR (default: the
current directory): the kernel; whether io_uring is available and, if not,
why (kernel.io_uring_disabled, a seccomp filter, an old kernel); the file
system of DIR, whether it takes O_DIRECT, its Direct I/O alignment, the
device's write cache, the free space; a measurement of 4 KiB O_DIRECT
write + fdatasync latency (p50/p99) into initialised blocks, freshly
fallocated blocks and at the end of a growing file; whether the CPU has AES
instructions (for Config.Cipher); which backend BackendAuto picks and why;
and advice in plain words.

It writes temporary files (dwal-doctor-*.tmp, and the backend probe's) in DIR
and removes them; it touches no dwal file. Exit status 1 when DIR cannot be
used at all.`

// latency is one sync-latency measurement.
type latency struct {
	name     string // for the table
	where    string // for sentences: "into freshly fallocated blocks"
	n        int
	p50, p99 time.Duration
	max      time.Duration
	note     string // why it stopped early, or what was measured instead
	err      error
}

// fsInfo is what the platform knows about DIR's file system.
type fsInfo struct {
	name        string // "ext4", or "unknown"
	magic       int64  // statfs f_type
	mountPoint  string
	mountSource string
	mountOpts   string
	free, total uint64
	memory      bool // files live in memory only (tmpfs, ramfs)
	network     bool // NFS, CIFS, FUSE...: fsync semantics depend on the server
}

// doctorReport is everything doctor found.
type doctorReport struct {
	dir        string
	kernel     string
	uringErr   error // io_uring_setup's error (nil: works)
	uringDisab int   // kernel.io_uring_disabled, -1 when unknown
	uringHere  error // uring.Probe(dir)
	fs         fsInfo
	fsErr      error
	direct     error // O_DIRECT open + aligned write in DIR
	align      int
	alignSrc   align.Source
	device     string
	lat        []latency
	latDesc    string
	cpu        string
	aes        string
	hasAES     bool
	backend    engine.BackendInfo
	backendErr error
	advice     []string
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("doctor", doctorUsage, stderr)
	dur := fl.Duration("duration", 3*time.Second, "total time of the sync-latency measurement, split across its three runs (0 skips it)")
	pos, code, ok := parseArgs(fl, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return badUsage(fl, stderr, "want at most one directory, got %d arguments", len(pos))
	}
	if *dur < 0 {
		return badUsage(fl, stderr, "negative --duration %v", *dur)
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	if st, err := os.Stat(dir); err != nil {
		return fail(stderr, "doctor", err)
	} else if !st.IsDir() {
		fmt.Fprintf(stderr, "dwal doctor: %s is not a directory\n", dir)
		return 1
	}
	r := diagnose(dir, *dur)
	printDoctor(stdout, r)
	return 0
}

func diagnose(dir string, dur time.Duration) *doctorReport {
	r := &doctorReport{dir: dir}
	r.kernel = kernelVersion()
	r.uringDisab, r.uringErr = uringAvailable()
	r.uringHere = uring.Probe(dir)
	r.fs, r.fsErr = fileSystem(dir)
	r.align, r.alignSrc = align.Discover(dir)
	r.direct = probeDirect(dir, max(4096, r.align))
	r.device = deviceInfo(dir)
	if dur > 0 {
		bs := max(4096, r.align)
		r.latDesc = fmt.Sprintf("%d KiB O_DIRECT write + fdatasync", bs>>10)
		if r.direct != nil {
			r.latDesc = fmt.Sprintf("%d KiB buffered write + fdatasync, as O_DIRECT is refused", bs>>10)
		}
		r.lat = measureSync(dir, dur, bs, r.direct == nil)
	}
	r.cpu = cpuid.CPU.BrandName
	if r.cpu == "" {
		r.cpu = runtime.GOARCH
	}
	switch {
	case cpuid.CPU.Supports(cpuid.AESNI):
		r.hasAES, r.aes = true, "yes (AES-NI)"
	case cpuid.CPU.Supports(cpuid.AESARM):
		r.hasAES, r.aes = true, "yes (ARMv8 AES)"
	default:
		r.aes = "no"
	}
	r.backend, r.backendErr = engine.ProbeBackend(dir)
	r.advice = advise(r)
	return r
}

func printDoctor(w io.Writer, r *doctorReport) {
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-16s %s\n", k+":", fmt.Sprintf(format, args...)) }
	fmt.Fprintf(w, "dwal doctor: %s\n\n", r.dir)
	row("kernel", "%s", r.kernel)
	row("io_uring", "%s", r.uringLine())
	if r.uringErr == nil {
		if r.uringHere == nil {
			row("io_uring in DIR", "works (ring, opcodes, O_DIRECT write read back)")
		} else {
			row("io_uring in DIR", "does not work: %v", r.uringHere)
		}
	}
	if r.fsErr != nil {
		row("file system", "unknown: %v", r.fsErr)
	} else {
		fsLine := fmt.Sprintf("%s (statfs f_type %#x)", r.fs.name, r.fs.magic)
		if r.fs.mountPoint != "" {
			fsLine += fmt.Sprintf(", mounted at %s from %s (%s)", r.fs.mountPoint, r.fs.mountSource, r.fs.mountOpts)
		}
		row("file system", "%s", fsLine)
	}
	if r.direct == nil {
		row("O_DIRECT", "accepted (open and an aligned write)")
	} else {
		row("O_DIRECT", "refused: %v", r.direct)
	}
	row("DIO alignment", "%d bytes (%s)", r.align, r.alignSrc)
	if r.device != "" {
		row("device", "%s", r.device)
	}
	switch {
	case r.fsErr != nil:
	case r.fs.total == 0:
		row("free space", "no size reported (bounded by memory)")
	default:
		row("free space", "%s of %s", bytesIEC(r.fs.free), bytesIEC(r.fs.total))
	}
	row("CPU", "%s; AES instructions: %s", r.cpu, r.aes)
	if len(r.lat) > 0 {
		fmt.Fprintf(w, "\nsync latency (%s, one writer; other I/O on the device inflates it):\n", r.latDesc)
		for _, l := range r.lat {
			switch {
			case l.err != nil:
				fmt.Fprintf(w, "  %-20s failed: %v\n", l.name, l.err)
			case l.n == 0:
				fmt.Fprintf(w, "  %-20s no sample\n", l.name)
			default:
				fmt.Fprintf(w, "  %-20s n=%-6d p50 %-9s p99 %-9s max %s", l.name, l.n, us(l.p50), us(l.p99), us(l.max))
				if l.note != "" {
					fmt.Fprintf(w, "  (%s)", l.note)
				}
				fmt.Fprintln(w)
			}
		}
	}
	fmt.Fprintln(w)
	if r.backendErr != nil {
		row("backend (Auto)", "cannot tell: %v", r.backendErr)
	} else {
		row("backend (Auto)", "%s: %s", r.backend.Name, r.backend.Reason)
	}
	if len(r.advice) > 0 {
		fmt.Fprintln(w, "\nadvice:")
		for _, a := range r.advice {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
}

func (r *doctorReport) uringLine() string {
	sys := "kernel.io_uring_disabled unknown"
	switch r.uringDisab {
	case 0:
		sys = "kernel.io_uring_disabled = 0"
	case 1:
		sys = "kernel.io_uring_disabled = 1: only root and members of kernel.io_uring_group"
	case 2:
		sys = "kernel.io_uring_disabled = 2: disabled for everyone"
	}
	if r.uringErr == nil {
		return "available (io_uring_setup works; " + sys + ")"
	}
	return fmt.Sprintf("not available: %v (%s)", r.uringErr, sys)
}

// advise turns the findings into plain words.
func advise(r *doctorReport) []string {
	var a []string
	switch {
	case r.backendErr != nil:
	case r.backend.Name == "io_uring":
		a = append(a, "dwal will use io_uring with O_DIRECT here: writes bypass the page cache, each batch is one write that carries its own sync (RWF_DSYNC), and after a failed sync the segment is rolled back and writing goes on in a fresh segment.")
	default:
		a = append(a, "dwal will use the portable fallback backend here (buffered writes + fdatasync): just as durable, but slower under load, and after a failed sync the log turns read-only until it is reopened.")
	}
	if r.uringErr != nil {
		switch {
		case r.uringDisab == 2:
			a = append(a, "io_uring is switched off by the sysctl kernel.io_uring_disabled=2; `sysctl -w kernel.io_uring_disabled=0` turns it on (or 1, and add the service's user to the group in kernel.io_uring_group).")
		case r.uringDisab == 1 && errors.Is(r.uringErr, errPerm):
			a = append(a, "io_uring is limited to root and the group in kernel.io_uring_group (kernel.io_uring_disabled=1): add the service's user to that group.")
		case errors.Is(r.uringErr, errPerm):
			a = append(a, "io_uring_setup is refused (EPERM) although the kernel allows it: a seccomp filter blocks it (container runtimes' default profiles often do); allow io_uring_setup, io_uring_enter and io_uring_register in the profile.")
		case errors.Is(r.uringErr, errNoSys):
			a = append(a, "this kernel has no io_uring (too old, or built without CONFIG_IO_URING); dwal needs Linux 5.6 or later for it.")
		}
	}
	if r.direct != nil && r.fsErr == nil {
		a = append(a, fmt.Sprintf("%s refuses O_DIRECT, so io_uring cannot be used in this directory: put the WAL on ext4 or xfs on a real device for the io_uring backend.", r.fs.name))
	}
	if r.fsErr == nil {
		switch {
		case r.fs.memory:
			a = append(a, fmt.Sprintf("%s keeps files in memory only: the log is lost at reboot or power loss whatever dwal syncs. Use it for tests, never for data you must keep.", r.fs.name))
		case r.fs.name == "overlayfs":
			a = append(a, "this is an overlay file system (a container's writable layer, say): put the WAL on a volume or bind mount of a real file system.")
		case r.fs.network:
			a = append(a, fmt.Sprintf("%s is a network or FUSE file system: whether fsync reaches stable storage depends on its server; prefer a local file system for a WAL.", r.fs.name))
		}
		need := uint64(engine.DefaultSegmentsToRetain+2) * engine.DefaultSegmentSize
		if r.fs.total > 0 && r.fs.free < need {
			a = append(a, fmt.Sprintf("only %s free: with the defaults a WAL keeps up to %d segments of %s (the current one, %d retained, one prepared ahead), %s in all; lower SegmentSize or SegmentsToRetain, or free some space.",
				bytesIEC(r.fs.free), engine.DefaultSegmentsToRetain+2, bytesIEC(engine.DefaultSegmentSize), engine.DefaultSegmentsToRetain, bytesIEC(need)))
		}
	}
	if r.alignSrc == align.SourceDefault && r.fsErr == nil && !r.fs.memory {
		a = append(a, "the file system reports no Direct I/O alignment (statx STATX_DIOALIGN) nor a block size; dwal uses 4096 bytes, which suits almost every device.")
	}
	a = append(a, latencyAdvice(r)...)
	if r.hasAES {
		a = append(a, "the CPU has AES instructions: Config.Cipher (AES-256-GCM) costs little.")
	} else {
		a = append(a, "the CPU has no AES instructions: Config.Cipher (AES-256-GCM) runs in software, several times slower; expect encryption to cost CPU.")
	}
	return a
}

func latencyAdvice(r *doctorReport) []string {
	var a []string
	get := func(name string) *latency {
		i := slices.IndexFunc(r.lat, func(l latency) bool { return l.name == name })
		if i < 0 || r.lat[i].err != nil || r.lat[i].n == 0 {
			return nil
		}
		return &r.lat[i]
	}
	init, falloc, app := get(latInit), get(latFalloc), get(latAppend)
	if init == nil {
		return nil
	}
	if r.fs.memory {
		return append(a, "the sync latencies above are memory copies: this file system has no device behind it.")
	}
	var slower []string
	for _, o := range []*latency{falloc, app} {
		if o != nil && o.p50 > init.p50*5/4 {
			slower = append(slower, fmt.Sprintf("%s %s", us(o.p50), o.where))
		}
	}
	if len(slower) > 0 {
		a = append(a, fmt.Sprintf("a sync takes %s (p50) into initialised blocks but %s: there the file system must also commit metadata. That is why dwal prepares the next segment off the hot path (initialised, or recycled from a retired one).",
			us(init.p50), strings.Join(slower, " and ")))
	}
	if init.p50 < 40*time.Microsecond {
		a = append(a, fmt.Sprintf("syncs take %s: faster than a flush to stable media usually is. Either the device has power-loss protection, or its volatile write cache acknowledges flushes it has not done (some virtual disks do); make sure of which before trusting it with acknowledged data.", us(init.p50)))
	}
	if init.p99 > 10*init.p50 && init.p99 > time.Millisecond {
		a = append(a, fmt.Sprintf("p99 (%s) is more than ten times p50 (%s): syncs stall now and then; group commit (Append from many goroutines) spreads one stall over many entries.", us(init.p99), us(init.p50)))
	}
	if init.max > time.Second {
		a = append(a, fmt.Sprintf("a sync took %s: dwal logs a warning for syncs over Config.SlowSyncThreshold (1s by default).", us(init.max)))
	}
	return a
}

const (
	latInit   = "initialised blocks"
	latFalloc = "fallocated blocks"
	latAppend = "appending"
)

// percentiles fills l from its samples.
func percentiles(l *latency, samples []time.Duration) {
	l.n = len(samples)
	if l.n == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) time.Duration { return samples[min(l.n-1, int(q*float64(l.n)))] }
	l.p50, l.p99, l.max = at(0.50), at(0.99), samples[l.n-1]
}

func us(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0fµs", float64(d)/1e3)
}

func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
