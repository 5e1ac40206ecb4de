package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine"
)

func checkDoctorPlatform(t *testing.T, dir, out string) {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil && !strings.Contains(out, "kernel:          Linux "+unix.ByteSliceToString(u.Release[:])) {
		t.Errorf("kernel release missing:\n%s", out)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == 0xEF53 && !regexp.MustCompile(`file system:\s+ext[234] \(statfs f_type 0xef53\)`).MatchString(out) {
		t.Errorf("ext4 not named:\n%s", out)
	}
	if strings.Contains(out, "O_DIRECT:        accepted") && !strings.Contains(out, "sync latency (4 KiB O_DIRECT write + fdatasync") {
		t.Errorf("no O_DIRECT measurement:\n%s", out)
	}
	for _, run := range []string{"initialised blocks", "fallocated blocks", "appending"} {
		if !regexp.MustCompile(`(?m)^  ` + run + `\s+(n=\d+\s+p50 \S+\s+p99 \S+\s+max \S+|failed: )`).MatchString(out) {
			t.Errorf("no %q latency row:\n%s", run, out)
		}
	}
}

// TestDoctorOnRamfs mounts a ramfs (root only), which refuses O_DIRECT:
// doctor must say so and name the fallback as Auto's pick, as Open does.
func TestDoctorOnRamfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting ramfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "ramfs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("ramfs", mnt, "ramfs", 0, ""); err != nil {
		t.Skipf("mount -t ramfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
		}
	})
	code, out, errs := runCLI(t, "doctor", mnt, "--duration", "300ms")
	if code != 0 {
		t.Fatalf("doctor: %d %s", code, errs)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"file system:     ramfs (statfs f_type 0x858458f6)",
		"O_DIRECT:        refused: open(O_DIRECT): invalid argument",
		"io_uring in DIR: does not work",
		"backend (Auto):  fallback: auto: ",
		"ramfs refuses O_DIRECT",
		"ramfs keeps files in memory only",
		"sync latency (4 KiB buffered write + fdatasync, as O_DIRECT is refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	// What doctor says is what Open does.
	c, err := engine.Open(engine.DefaultConfig(mnt))
	if err != nil {
		t.Fatal(err)
	}
	// The reason names the probe's temporary file, which differs per probe.
	probe := regexp.MustCompile(`uring-probe-\d+-\d+\.tmp`)
	if b := c.Backend(); b.Name != "fallback" || !strings.Contains(probe.ReplaceAllString(out, "P"), probe.ReplaceAllString(b.Reason, "P")) {
		t.Errorf("Open picked %+v", b)
	}
	c.Close()
}
