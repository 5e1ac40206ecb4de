package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"dwal/engine/vfs"
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
	info := c.Backend()
	t.Logf("backend %q: %s", info.Name, info.Reason)
	if info.Name != "fallback" {
		t.Fatalf("BackendAuto on ramfs runs %q, want the fallback", info.Name)
	}
	for _, w := range []string{"auto", "O_DIRECT", "invalid argument"} {
		if !strings.Contains(info.Reason, w) {
			t.Errorf("Backend().Reason %q does not mention %q", info.Reason, w)
		}
	}
	roundTrip(t, cfg, c)

	udir := filepath.Join(mnt, "uring")
	_, err := Open(Config{Dir: udir, Backend: BackendUring})
	t.Logf("BackendUring on ramfs: %v", err)
	if err == nil {
		t.Fatal("BackendUring opened on ramfs, where O_DIRECT is refused")
	}
	if !errors.Is(err, vfs.ErrUnsupported) || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("error does not wrap vfs.ErrUnsupported and EINVAL: %v", err)
	}
	for _, w := range []string{"io_uring backend requested", "O_DIRECT", "invalid argument"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	noProbeLeft(t, udir)
}

const ioUringDisabled = "/proc/sys/kernel/io_uring_disabled"

// setIoUringDisabled writes v to kernel.io_uring_disabled and returns a
// function restoring the old value (also registered with t.Cleanup; calling
// it twice is harmless). It skips t when the sysctl is missing or cannot be
// written.
func setIoUringDisabled(t *testing.T, v string) (restore func()) {
	t.Helper()
	needRoot(t)
	old, err := os.ReadFile(ioUringDisabled)
	if err != nil {
		t.Skipf("no %s (kernel before 6.6?): %v", ioUringDisabled, err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if err := os.WriteFile(ioUringDisabled, old, 0o644); err != nil {
			t.Errorf("restore %s to %q: %v", ioUringDisabled, strings.TrimSpace(string(old)), err)
		}
	}
	if err := os.WriteFile(ioUringDisabled, []byte(v), 0o644); err != nil {
		t.Skipf("cannot write %s: %v", ioUringDisabled, err)
	}
	t.Cleanup(restore)
	return restore
}

func TestAutoFallsBackWhenIoUringDisabled(t *testing.T) {
	autoDir, uringDir := t.TempDir(), t.TempDir()
	// NB: the sysctl is global. Keep the window short: other test binaries
	// (go test ./... runs packages in parallel) may set up rings meanwhile;
	// rings set up before keep working.
	restore := setIoUringDisabled(t, "2")
	c, autoErr := Open(Config{Dir: autoDir, Backend: BackendAuto})
	_, uringErr := Open(Config{Dir: uringDir, Backend: BackendUring})
	restore()
	if autoErr != nil {
		t.Fatalf("BackendAuto with io_uring disabled: %v", autoErr)
	}
	t.Cleanup(func() { c.Close() })
	info := c.Backend()
	t.Logf("backend %q: %s", info.Name, info.Reason)
	if info.Name != "fallback" {
		t.Fatalf("BackendAuto with kernel.io_uring_disabled=2 runs %q, want the fallback", info.Name)
	}
	// The words of uring's setupError for EPERM.
	for _, w := range []string{"io_uring_setup", "operation not permitted", "io_uring_disabled"} {
		if !strings.Contains(info.Reason, w) {
			t.Errorf("Backend().Reason %q does not mention %q", info.Reason, w)
		}
	}
	t.Logf("BackendUring with io_uring disabled: %v", uringErr)
	if uringErr == nil {
		t.Fatal("BackendUring opened with kernel.io_uring_disabled=2")
	}
	if !errors.Is(uringErr, vfs.ErrUnsupported) || !errors.Is(uringErr, syscall.EPERM) {
		t.Errorf("error does not wrap vfs.ErrUnsupported and EPERM: %v", uringErr)
	}
	if !strings.Contains(uringErr.Error(), "io_uring_setup: operation not permitted") {
		t.Errorf("error does not say io_uring_setup was not permitted: %v", uringErr)
	}
	noProbeLeft(t, uringDir)
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
