package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/vfs"
)

// BackendAuto falls back, and says why, where io_uring or O_DIRECT cannot
// run; BackendUring fails there instead of falling back.

// roundTrip writes a few batches (synced and not), reopens the directory
// with the same Config and checks that both the Coordinator and its reopened
// successor replay them exactly.
func roundTrip(t *testing.T, cfg Config, c *Coordinator) {
	t.Helper()
	var want []replayed
	for i := range 10 {
		var es []*PendingEntry
		for j := range 3 {
			lsn := LSN(i*3 + j + 1)
			d := fmt.Sprintf("round-trip-%d-%s", lsn, strings.Repeat("r", int(lsn)*37))
			es = append(es, NewAsyncEntry(lsn, []byte(d)))
			want = append(want, replayed{lsn, d})
		}
		mustFlush(t, c, es, i%3 != 2)
	}
	if got := replayAll(t, c, 0); !slices.Equal(got, want) {
		t.Fatalf("replayed %d entries, want %d (first difference shown by %v)", len(got), len(want), firstDiff(got, want))
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c2 := openT(t, cfg)
	if c2.Backend().Name != c.Backend().Name {
		t.Fatalf("reopened with %q, first opened with %q", c2.Backend().Name, c.Backend().Name)
	}
	if got := replayAll(t, c2, 0); !slices.Equal(got, want) {
		t.Fatalf("after reopen replayed %d entries, want %d (%v)", len(got), len(want), firstDiff(got, want))
	}
}

// firstDiff describes where two replays first differ.
func firstDiff(got, want []replayed) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: got LSN %d (%d bytes), want LSN %d (%d bytes)",
				i, got[i].lsn, len(got[i].data), want[i].lsn, len(want[i].data))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("lengths %d and %d", len(got), len(want))
	}
	return "none"
}

// noProbeLeft fails t if a failed Open left the backend's probe file (or
// anything else) in dir.
func noProbeLeft(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("a refused BackendUring Open left %s in %s", e.Name(), dir)
	}
}

func TestAutoFallsBackOnRamfs(t *testing.T) {
	needRoot(t)
	mnt := t.TempDir()
	mountT(t, "dwal-test-ramfs", mnt, "ramfs", "mode=0700")
	if got := fsName(mnt); got != "ramfs" {
		t.Fatalf("%s is on %s after mounting a ramfs", mnt, got)
	}
	cfg := Config{Dir: filepath.Join(mnt, "auto"), Backend: BackendAuto}
	c := openT(t, cfg)
	wantFallback(t, c, "on ramfs", "auto", "O_DIRECT", "invalid argument")
	roundTrip(t, cfg, c)
	wantRefused(t, filepath.Join(mnt, "uring"), "on ramfs", syscall.EINVAL, "io_uring backend requested", "O_DIRECT", "invalid argument")
}

// wantFallback checks that c, opened with BackendAuto where io_uring
// cannot run (where says where), runs the fallback and its Reason has the
// words.
func wantFallback(t *testing.T, c *Coordinator, where string, words ...string) {
	t.Helper()
	info := c.Backend()
	t.Logf("backend %q: %s", info.Name, info.Reason)
	if info.Name != "fallback" {
		t.Fatalf("BackendAuto %s runs %q, want the fallback", where, info.Name)
	}
	for _, w := range words {
		if !strings.Contains(info.Reason, w) {
			t.Errorf("Backend().Reason %q does not mention %q", info.Reason, w)
		}
	}
}

// wantRefused checks that BackendUring in dir fails with an error wrapping
// vfs.ErrUnsupported and errno and holding the words, and leaves nothing.
func wantRefused(t *testing.T, dir, where string, errno syscall.Errno, words ...string) {
	t.Helper()
	_, err := Open(Config{Dir: dir, Backend: BackendUring})
	t.Logf("BackendUring %s: %v", where, err)
	if err == nil {
		t.Fatalf("BackendUring opened %s", where)
	}
	if !errors.Is(err, vfs.ErrUnsupported) || !errors.Is(err, errno) {
		t.Errorf("error does not wrap vfs.ErrUnsupported and %v: %v", errno, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	noProbeLeft(t, dir)
}

// seccompChildEnv makes the test binary, run as a child, refuse itself
// io_uring_setup with a seccomp filter and run the checks.
const seccompChildEnv = "DWAL_TEST_SECCOMP_DIR"

// TestAutoFallsBackUnderSeccomp: io_uring refused the way container
// runtimes refuse it (a seccomp filter makes io_uring_setup fail with
// EPERM, as Docker's default profile does). The filter is installed in a
// child process, so nothing outside it is affected (unlike the global
// kernel.io_uring_disabled sysctl).
func TestAutoFallsBackUnderSeccomp(t *testing.T) {
	if dir := os.Getenv(seccompChildEnv); dir != "" {
		refuseIoUring(t)
		checkRefusedIoUring(t, dir)
		return
	}
	if probeUring(t.TempDir()) != nil {
		t.Skip("io_uring does not run here at all; TestAutoFallbackSeam covers the fallback")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestAutoFallsBackUnderSeccomp$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), seccompChildEnv+"="+t.TempDir(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child with io_uring_setup refused by seccomp: %v", err)
	}
	if !strings.Contains(string(out), "io_uring_setup refused by seccomp") {
		t.Fatal("the child did not install its filter")
	}
}

// refuseIoUring installs, on every thread of this process, a seccomp
// filter failing io_uring_setup with EPERM.
func refuseIoUring(t *testing.T) {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		t.Skipf("no seccomp filter written for %s", runtime.GOARCH)
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ldAbs, K: 4}, // seccomp_data.arch
		{Code: jeq, Jt: 0, Jf: 3, K: arch},
		{Code: ldAbs, K: 0}, // seccomp_data.nr
		{Code: jeq, Jt: 0, Jf: 1, K: unix.SYS_IO_URING_SETUP},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_NO_NEW_PRIVS: %v", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		t.Skipf("seccomp: %v", e)
	}
	runtime.KeepAlive(prog)
	t.Log("io_uring_setup refused by seccomp")
}

// checkRefusedIoUring: with io_uring_setup refused, BackendAuto falls back
// and says why, and BackendUring fails with an error naming the cause.
func checkRefusedIoUring(t *testing.T, dir string) {
	autoDir, uringDir := filepath.Join(dir, "auto"), filepath.Join(dir, "uring")
	c, err := Open(Config{Dir: autoDir, Backend: BackendAuto})
	if err != nil {
		t.Fatalf("BackendAuto with io_uring refused: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	// The words of uring's setupError for EPERM.
	wantFallback(t, c, "with io_uring_setup refused", "io_uring_setup", "operation not permitted", "seccomp")
	wantRefused(t, uringDir, "with io_uring_setup refused", syscall.EPERM, "io_uring_setup: operation not permitted")
	roundTrip(t, Config{Dir: autoDir, Backend: BackendFallback}, c)
}

// The seam: a refusal from the io_uring backend's constructor is a
// fallback (with its reason) for BackendAuto and an error for BackendUring,
// and BackendFallback never asks it.
func TestAutoFallbackSeam(t *testing.T) {
	const why = "io_uring refused by the test seam"
	calls := 0
	old := newUring
	t.Cleanup(func() { newUring = old })
	newUring = func(dir string, opts vfs.Options) (vfs.FS, error) {
		calls++
		return nil, fmt.Errorf("uring: %w: %s", vfs.ErrUnsupported, why)
	}

	cfg := Config{Dir: t.TempDir()} // zero Backend: Auto
	c := openT(t, cfg)
	info := c.Backend()
	if info.Name != "fallback" || !strings.Contains(info.Reason, why) || !strings.HasPrefix(info.Reason, "auto: ") {
		t.Fatalf("Backend() = %+v, want the fallback with reason %q", info, why)
	}
	if calls != 1 {
		t.Fatalf("newUring called %d times by one BackendAuto Open", calls)
	}
	roundTrip(t, cfg, c)

	calls = 0
	_, err := Open(Config{Dir: t.TempDir(), Backend: BackendUring})
	if !errors.Is(err, vfs.ErrUnsupported) || !strings.Contains(err.Error(), why) {
		t.Fatalf("BackendUring refused by the seam: %v, want vfs.ErrUnsupported naming %q", err, why)
	}
	if calls != 1 {
		t.Fatalf("newUring called %d times by one BackendUring Open", calls)
	}

	calls = 0
	fb := openT(t, Config{Dir: t.TempDir(), Backend: BackendFallback})
	if calls != 0 || fb.Backend().Name != "fallback" {
		t.Fatalf("BackendFallback: newUring called %d times, backend %+v", calls, fb.Backend())
	}
}
