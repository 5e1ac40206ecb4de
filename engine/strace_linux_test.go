package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// The write path of the io_uring backend, seen from outside the process: a
// child (this test binary, re-executed) writes synced batches through
// BackendUring under strace, and the trace must show that segment files
// are opened O_DIRECT, preallocated with fallocate right after they are
// created, and written and synced only through io_uring_enter: never a
// pwrite or an fdatasync on a segment's fd. The only plain fsync/fdatasync
// calls allowed are those off the hot path: the directory and the temp
// files of .meta (and .log.end) records.

const (
	straceChildEnv   = "DWAL_TEST_STRACE_DIR"
	straceSyncEnv    = "DWAL_TEST_STRACE_SYNC" // "linked": SyncFdatasync
	straceFlushes    = 50
	straceSegSize    = 64 << 10
	straceEntryBytes = 3000
	straceMarkBegin  = "/dwal-strace-marker-begin"
	straceMarkEnd    = "/dwal-strace-marker-end"
)

// straceChild is what the re-executed test binary does under strace. It
// reports through its exit status and stderr.
func straceChild(dir string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "CHILD-FAIL: "+format+"\n", args...)
		os.Exit(1)
	}
	cfg := Config{Dir: dir, Backend: BackendUring, SegmentSize: straceSegSize, SegmentsToRetain: 1000}
	if os.Getenv(straceSyncEnv) == "linked" {
		cfg.SyncMethod = SyncFdatasync
	}
	c, err := Open(cfg)
	if err != nil {
		fail("Open: %v", err)
	}
	data := make([]byte, straceEntryBytes)
	// The markers are openat calls of paths that do not exist: they show in
	// the trace where the synced flushes begin and end.
	os.Open(straceMarkBegin)
	for i := range straceFlushes {
		lsn := LSN(i + 1)
		data[0] = byte(lsn)
		e, done := NewSyncEntry(lsn, data)
		if _, err := c.Flush([]*PendingEntry{e}, true); err != nil {
			fail("Flush %d: %v", lsn, err)
		}
		if err := done.Wait(); err != nil {
			fail("completion %d: %v", lsn, err)
		}
	}
	os.Open(straceMarkEnd)
	for i := range 5 { // unsynced batches take the ring too
		lsn := LSN(straceFlushes + i + 1)
		data[0] = byte(lsn)
		if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(lsn, data)}, false); err != nil {
			fail("unsynced Flush %d: %v", lsn, err)
		}
	}
	if err := c.Close(); err != nil {
		fail("Close: %v", err)
	}
	// Reopen: recovery opens, reads and seals segments through the backend.
	c, err = Open(cfg)
	if err != nil {
		fail("reopen: %v", err)
	}
	n := 0
	if err := c.Replay(0, func(LSN, []byte) error { n++; return nil }); err != nil {
		fail("Replay: %v", err)
	}
	if n != straceFlushes+5 {
		fail("replayed %d entries, want %d", n, straceFlushes+5)
	}
	if err := c.Close(); err != nil {
		fail("Close after reopen: %v", err)
	}
	fmt.Fprintf(os.Stderr, "CHILD-OK backend %s\n", c.Backend().Name)
	os.Exit(0)
}

func TestUringPathUnderStrace(t *testing.T) {
	if dir := os.Getenv(straceChildEnv); dir != "" {
		straceChild(dir)
		return
	}
	strace := needCmd(t, "strace")
	if out, err := runCmd(strace, "-f", "-o", os.DevNull, "true"); err != nil {
		t.Skipf("strace cannot trace here (ptrace refused?): %v\n%s", err, out)
	}
	// Synced batches are one WRITE carrying RWF_DSYNC by default, a WRITE
	// linked to an FSYNC with SyncFdatasync: one or two SQEs per flush.
	for _, m := range []struct {
		name       string
		sqesPerOne int
	}{{"dsync", 1}, {"linked", 2}} {
		t.Run(m.name, func(t *testing.T) { straceParent(t, strace, m.name, m.sqesPerOne) })
	}
}

// straceParent runs the child under strace with sync method mode and
// checks its trace; sqesPerFlush is what one synced flush submits.
func straceParent(t *testing.T, strace, mode string, sqesPerFlush int) {
	dir := t.TempDir()
	if err := probeUring(dir); err != nil {
		t.Skipf("io_uring backend does not run in %s: %v", dir, err)
	}
	t.Logf("WAL directory %s is on %s", dir, fsName(dir))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	traceFile := filepath.Join(t.TempDir(), "trace")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, "-f", "-qq", "-y", "-s", "0", "-o", traceFile,
		// "?": skip calls this architecture lacks (arm64 has no open, creat, rename).
		"-e", "trace=io_uring_enter,io_uring_setup,pwrite64,pwritev,pwritev2,write,writev,"+
			"fdatasync,fsync,sync_file_range,openat,?open,?creat,close,fcntl,fallocate,?rename,renameat,?renameat2",
		self, "-test.run=^TestUringPathUnderStrace$", "-test.count=1")
	cmd.Env = append(os.Environ(), straceChildEnv+"="+dir, straceSyncEnv+"="+mode)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("child under strace: %v", time.Since(start).Round(time.Millisecond))
	if err != nil || !strings.Contains(string(out), "CHILD-OK backend io_uring") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}
	calls, err := parseStrace(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := checkTrace(calls, dir)
	for _, v := range r.violations {
		t.Error(v)
	}
	defer func() {
		if t.Failed() { // the trace goes with the temp dir: show its WAL lines
			var lines []string
			for _, l := range strings.Split(string(raw), "\n") {
				if strings.Contains(l, dir) && len(lines) < 400 {
					lines = append(lines, l)
				}
			}
			t.Logf("trace lines naming %s:\n%s", dir, strings.Join(lines, "\n"))
		}
	}()
	t.Logf("trace: %d calls; %d io_uring_setup; %d io_uring_enter submitting %d SQEs "+
		"between the markers; %d segment files opened (%d created, %d fallocated, O_DIRECT by open %d, by fcntl %d); "+
		"%d renamed into .log; plain syncs: %d on the directory, %d on temp files",
		len(calls), r.setups, r.entersInWindow, r.sqesInWindow, r.segOpens, r.segCreates, r.fallocs,
		r.directByOpen, r.directByFcntl, r.renamedToLog, r.dirSyncs, r.tmpSyncs)
	if r.setups != 2 {
		t.Errorf("%d successful io_uring_setup calls, want 2 (one ring per Open)", r.setups)
	}
	if !r.sawBegin || !r.sawEnd {
		t.Fatalf("markers not found in the trace (begin %t, end %t)", r.sawBegin, r.sawEnd)
	}
	// Each synced flush submits its SQEs in one io_uring_enter of its own
	// or of the goroutine reaping for it.
	if r.entersInWindow < straceFlushes || r.sqesInWindow < sqesPerFlush*straceFlushes {
		t.Errorf("%d io_uring_enter calls submitting %d SQEs during %d synced flushes, want at least %d calls and %d SQEs",
			r.entersInWindow, r.sqesInWindow, straceFlushes, straceFlushes, sqesPerFlush*straceFlushes)
	}
	checkAllocated(t, dir)
	// 55 batches of one 4 KiB block in 64 KiB segments (15 batches each).
	if r.segCreates < 4 || r.renamedToLog < 4 {
		t.Errorf("%d segment files created, %d renamed to .log; want at least 4 (rotations)", r.segCreates, r.renamedToLog)
	}
	if r.fallocs < r.segCreates {
		t.Errorf("%d fallocate calls for %d created segment files", r.fallocs, r.segCreates)
	}
	if r.dirSyncs == 0 {
		t.Error("no directory fsync seen: the trace does not cover the off-path syncs")
	}
}

// checkAllocated checks that every segment left in dir has blocks for all
// of its bytes (no hole: it was preallocated, not grown by writes).
func checkAllocated(t *testing.T, dir string) {
	t.Helper()
	for _, id := range logIDs(t, dir) {
		var st unix.Stat_t
		p := filepath.Join(dir, segment.Name(id))
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 < st.Size {
			t.Errorf("%s: %d bytes but only %d allocated", p, st.Size, st.Blocks*512)
		}
	}
}

// probeUring reports whether BackendUring opens in dir.
func probeUring(dir string) error {
	f, err := newUring(dir, vfs.Options{})
	if err != nil {
		return err
	}
	return f.Close()
}

// sysCall is one completed system call from an strace -f -y log.
type sysCall struct {
	pid  int
	name string
	args []string // top-level arguments, -y decorations kept
	ret  string   // everything after "= "
}

var (
	straceDone       = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*)\)\s+= (.*)$`)
	straceUnfinished = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*?),?\s*<unfinished \.\.\.>$`)
	straceResumed    = regexp.MustCompile(`^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$`)
)

// parseStrace turns an strace -f log into completed calls, in completion
// order, joining calls that strace split into <unfinished ...> and
// <... resumed> lines.
func parseStrace(log string) ([]sysCall, error) {
	var out []sysCall
	pending := map[int]string{} // pid -> "name(args" of its unfinished call
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var pid int
		var name, args, ret string
		switch {
		case straceResumed.MatchString(line):
			m := straceResumed.FindStringSubmatch(line)
			pid, _ = strconv.Atoi(m[1])
			head, ok := pending[pid]
			if !ok {
				return nil, fmt.Errorf("strace: resumed call without its start: %q", line)
			}
			delete(pending, pid)
			name = m[2]
			if !strings.HasPrefix(head, name+"(") {
				return nil, fmt.Errorf("strace: %q resumes %q", line, head)
			}
			rest := strings.TrimPrefix(strings.TrimSpace(m[3]), ",")
			args = strings.TrimPrefix(head, name+"(")
			if rest = strings.TrimSpace(rest); rest != "" {
				if args != "" {
					args += ", "
				}
				args += rest
			}
			ret = m[4]
		case straceUnfinished.MatchString(line):
			m := straceUnfinished.FindStringSubmatch(line)
			pid, _ = strconv.Atoi(m[1])
			pending[pid] = m[2] + "(" + m[3]
			continue
		case straceDone.MatchString(line):
			m := straceDone.FindStringSubmatch(line)
			pid, _ = strconv.Atoi(m[1])
			name, args, ret = m[2], m[3], m[4]
		default:
			continue // signals, exits, "= ?" of a thread killed mid-call
		}
		out = append(out, sysCall{pid: pid, name: name, args: splitArgs(args), ret: ret})
	}
	return out, sc.Err()
}

// splitArgs splits an argument list at top-level commas (not inside quotes,
// braces, brackets or the <path> of -y).
func splitArgs(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '{' || c == '[' || c == '(' || c == '<':
			depth++
		case c == '}' || c == ']' || c == ')' || c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if last := strings.TrimSpace(s[start:]); last != "" || len(out) > 0 {
		out = append(out, last)
	}
	return out
}

// fdOf parses an fd argument or return value ("7</tmp/x/000001.log>" or "7").
func fdOf(s string) (int, bool) {
	if i := strings.IndexAny(s, "< "); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// quoted returns the contents of a quoted string argument.
func quoted(s string) string {
	if u, err := strconv.Unquote(strings.TrimSuffix(s, "...")); err == nil {
		return u
	}
	return strings.Trim(s, `"`)
}

// segFileName matches the files written through the ring: segments, the
// prepared ones and the backend's probe file.
var segFileName = regexp.MustCompile(`^(prepared-\d+\.tmp|recycle-\d+\.tmp|\d+\.log|uring-probe-[\d-]+\.tmp)$`)

// traceReport is what checkTrace found.
type traceReport struct {
	violations                    []string
	setups                        int
	sawBegin, sawEnd              bool
	entersInWindow, sqesInWindow  int
	segOpens, segCreates, fallocs int
	directByOpen, directByFcntl   int
	renamedToLog                  int
	dirSyncs, tmpSyncs            int
}

// checkTrace follows the fds of a trace (an fd number is reused after
// close, so each open starts a new life of it) and checks the rules of the
// io_uring write path for the WAL directory dir.
func checkTrace(calls []sysCall, dir string) traceReport {
	type fdLife struct {
		path       string
		seg        bool
		created    bool
		direct     bool
		fallocated bool
		touched    string // the first call on the fd other than fcntl, before its fallocate
	}
	var r traceReport
	bad := func(format string, args ...any) { r.violations = append(r.violations, fmt.Sprintf(format, args...)) }
	fds := map[int]*fdLife{}
	endLife := func(fd int, l *fdLife) {
		if !l.seg {
			return
		}
		if !l.direct {
			bad("%s (fd %d) was never switched to O_DIRECT", l.path, fd)
		}
		// The backend's probe file is created empty (size 0: nothing to
		// allocate); every other file created here is a segment.
		if l.created && !l.fallocated && !strings.HasPrefix(filepath.Base(l.path), "uring-probe-") {
			bad("%s (fd %d) was created but never fallocated", l.path, fd)
		}
	}
	inWindow := false
	for _, c := range calls {
		failed := strings.HasPrefix(c.ret, "-1") || strings.HasPrefix(c.ret, "?")
		switch c.name {
		case "openat", "open", "creat":
			pi := 0
			if c.name == "openat" {
				pi = 1
			}
			if len(c.args) <= pi {
				bad("unparsed %s: %v", c.name, c.args)
				continue
			}
			path := quoted(c.args[pi])
			switch path {
			case straceMarkBegin:
				r.sawBegin, inWindow = true, true
				continue
			case straceMarkEnd:
				r.sawEnd, inWindow = true, false
				continue
			}
			fd, ok := fdOf(c.ret)
			if failed || !ok {
				continue
			}
			flags := ""
			if len(c.args) > pi+1 {
				flags = c.args[pi+1]
			}
			if c.name == "creat" {
				flags = "O_CREAT|O_WRONLY|O_TRUNC"
			}
			if old, ok := fds[fd]; ok {
				bad("fd %d opened for %s while the trace still has it open for %s (a close was missed)", fd, path, old.path)
			}
			l := &fdLife{path: path}
			l.seg = filepath.Dir(path) == dir && segFileName.MatchString(filepath.Base(path))
			l.created = strings.Contains(flags, "O_CREAT")
			l.direct = strings.Contains(flags, "O_DIRECT")
			fds[fd] = l
			if l.seg {
				r.segOpens++
				if l.created && !strings.HasPrefix(filepath.Base(path), "uring-probe-") {
					r.segCreates++ // the backend's probe files are created empty
				}
				if l.direct {
					r.directByOpen++
				}
			}
		case "close":
			if fd, ok := fdOf(c.args[0]); ok {
				if l, ok := fds[fd]; ok {
					if l.created && !l.fallocated && l.touched == "" {
						l.touched = "close"
					}
					endLife(fd, l)
					delete(fds, fd)
				}
			}
		case "fcntl":
			fd, _ := fdOf(c.args[0])
			l := fds[fd]
			if l == nil || !l.seg || len(c.args) < 3 || c.args[1] != "F_SETFL" || failed {
				continue
			}
			had := l.direct
			l.direct = strings.Contains(c.args[2], "O_DIRECT")
			if had && !l.direct {
				bad("fcntl turned O_DIRECT off on %s: %v", l.path, c.args)
			}
			if !had && l.direct {
				r.directByFcntl++
				if l.created && l.fallocated {
					bad("%s: O_DIRECT set only after fallocate", l.path)
				}
			}
		case "fallocate":
			fd, _ := fdOf(c.args[0])
			l := fds[fd]
			if l == nil || !l.seg {
				continue
			}
			if failed {
				bad("fallocate of %s failed: %s", l.path, c.ret)
				continue
			}
			if l.created && l.touched != "" {
				bad("%s: %s before its fallocate: blocks must be allocated right after creation", l.path, l.touched)
			}
			if len(c.args) != 4 || c.args[1] != "0" || c.args[2] != "0" {
				bad("fallocate of %s is not mode 0 from offset 0: %v", l.path, c.args)
			}
			if n, _ := strconv.ParseInt(c.args[3], 10, 64); strings.HasPrefix(filepath.Base(l.path), segment.PreparedPrefix) && n < straceSegSize {
				bad("fallocate of %s reserves %d bytes, want the segment size %d", l.path, n, straceSegSize)
			}
			l.fallocated = true
			r.fallocs++
		case "io_uring_setup":
			if !failed {
				r.setups++
			}
		case "io_uring_enter":
			if inWindow {
				r.entersInWindow++
				if n, err := strconv.Atoi(strings.Fields(c.ret + " ")[0]); err == nil && n > 0 {
					r.sqesInWindow += n // SQEs this call submitted
				}
			}
		case "pwrite64", "pwritev", "pwritev2", "write", "writev", "fdatasync", "fsync", "sync_file_range":
			fd, _ := fdOf(c.args[0])
			l := fds[fd]
			if l == nil {
				continue
			}
			if l.seg {
				bad("%s on segment file %s (fd %d): segments must be written and synced through io_uring", c.name, l.path, fd)
				if !l.fallocated && l.touched == "" {
					l.touched = c.name
				}
				continue
			}
			if c.name != "fsync" && c.name != "fdatasync" {
				continue
			}
			base := filepath.Base(l.path)
			switch {
			case l.path == dir:
				r.dirSyncs++
			case filepath.Dir(l.path) == dir && (strings.HasSuffix(base, segment.MetaSuffix+segment.TmpSuffix) || strings.HasSuffix(base, segment.IndexSuffix+segment.TmpSuffix) || strings.HasSuffix(base, segment.FenceSuffix+segment.TmpSuffix) || base == segment.StateTmpName):
				r.tmpSyncs++
			case filepath.Dir(l.path) == dir:
				bad("%s on %s: only the directory and .meta/.idx/.end/log.state temp files may be synced outside the ring", c.name, l.path)
			}
		case "rename", "renameat", "renameat2":
			var from, to string
			if c.name == "rename" && len(c.args) >= 2 {
				from, to = quoted(c.args[0]), quoted(c.args[1])
			} else if len(c.args) >= 4 {
				from, to = quoted(c.args[1]), quoted(c.args[3])
			}
			for _, l := range fds {
				if l.path == from && l.created && !l.fallocated && l.touched == "" {
					l.touched = c.name
				}
			}
			if failed || !strings.HasSuffix(to, segment.Suffix) {
				continue
			}
			id, ok := segment.ParseID(filepath.Base(to), segment.Suffix)
			if !ok || filepath.Base(from) != fmt.Sprintf("%s%d%s", segment.PreparedPrefix, id, segment.TmpSuffix) {
				bad("%s renamed to %s: a segment must come from its prepared file", from, to)
			}
			r.renamedToLog++
		}
	}
	for fd, l := range fds {
		endLife(fd, l)
	}
	return r
}

// The trace checker itself must catch what it is there to catch: a
// synthetic trace of a backend that writes segments with pwrite and
// fdatasync, without O_DIRECT, with an fd number reused across files and
// calls split by strace -f.
func TestStraceCheckerCatchesPlainWrites(t *testing.T) {
	const dir = "/w"
	log := strings.Join([]string{
		`100 openat(AT_FDCWD</>, "/w/prepared-1.tmp", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 7</w/prepared-1.tmp>`,
		`100 pwrite64(7</w/prepared-1.tmp>, ""..., 4096, 0) = 4096`,
		`100 fallocate(7</w/prepared-1.tmp>, 0, 0, 65536) = 0`,
		`100 fdatasync(7</w/prepared-1.tmp>) = 0`,
		`100 close(7</w/prepared-1.tmp>) = 0`,
		`100 openat(AT_FDCWD</>, "/w/000001.log", O_RDWR|O_CLOEXEC <unfinished ...>`,
		`101 io_uring_enter(5<anon_inode:[io_uring]>, 2, 1, IORING_ENTER_GETEVENTS, NULL, 0 <unfinished ...>`,
		`100 <... openat resumed>) = 7</w/000001.log>`,
		`101 <... io_uring_enter resumed>) = 2`,
		`100 close(7</w/000001.log>) = 0`,
		`100 openat(AT_FDCWD</>, "/w/000001.log.meta.tmp", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0600) = 7</w/000001.log.meta.tmp>`,
		`100 fdatasync(7</w/000001.log.meta.tmp>) = 0`,
		`100 close(7</w/000001.log.meta.tmp>) = 0`,
		`100 openat(AT_FDCWD</>, "/w/prepared-2.tmp", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 7</w/prepared-2.tmp>`,
		`100 fcntl(7</w/prepared-2.tmp>, F_SETFL, O_RDWR|O_DIRECT|O_LARGEFILE) = 0`,
		`100 fallocate(7</w/prepared-2.tmp>, 0, 0, 65536) = 0`,
		`100 renameat(AT_FDCWD</>, "/w/prepared-2.tmp", AT_FDCWD</>, "/w/000003.log") = 0`,
		`100 openat(AT_FDCWD</>, "/w/LOCK", O_RDWR|O_CREAT|O_CLOEXEC, 0600) = 8</w/LOCK>`,
		`100 fsync(8</w/LOCK>) = 0`,
		`100 openat(AT_FDCWD</>, "/w", O_RDONLY|O_CLOEXEC) = 9</w>`,
		`100 fsync(9</w>) = 0`,
	}, "\n")
	calls, err := parseStrace(log)
	if err != nil {
		t.Fatal(err)
	}
	r := checkTrace(calls, dir)
	want := []string{
		"pwrite64 on segment file /w/prepared-1.tmp",
		"/w/prepared-1.tmp: pwrite64 before its fallocate",
		"fdatasync on segment file /w/prepared-1.tmp",
		"/w/prepared-1.tmp (fd 7) was never switched to O_DIRECT",
		"/w/000001.log (fd 7) was never switched to O_DIRECT",
		"fsync on /w/LOCK",
		"/w/prepared-2.tmp renamed to /w/000003.log",
	}
	got := strings.Join(r.violations, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("violation %q not reported; got:\n%s", w, got)
		}
	}
	if len(r.violations) != len(want) {
		t.Errorf("%d violations, want %d:\n%s", len(r.violations), len(want), got)
	}
	if strings.Contains(got, "meta.tmp") {
		t.Errorf("the .meta temp file's fdatasync is allowed:\n%s", got)
	}
	if r.dirSyncs != 1 || r.tmpSyncs != 1 || r.directByFcntl != 1 || r.fallocs != 2 || r.segCreates != 2 {
		t.Errorf("counts: %+v", r)
	}
}
