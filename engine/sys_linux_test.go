package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers for the system-level tests (*_linux_test.go): real mounts, loop
// devices, strace. Each one skips the test, with the reason, when the machine
// cannot do what it needs, and undoes what it did in t.Cleanup, so a failing
// test leaves no mount, loop device or sysctl behind.

// needRoot skips t unless it runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount, losetup, sysctls)")
	}
}

// needCmd skips t unless name is on PATH, and returns its path.
func needCmd(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s: %v", name, err)
	}
	return p
}

// runCmd runs a command (bounded to 30 s) and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), errors.Join(err, errors.New(strings.TrimSpace(string(out))))
	}
	return string(out), nil
}

// mountT mounts source on dir (fstype, data) and unmounts it in t.Cleanup.
// It skips t when mounting is not permitted here (a container without
// CAP_SYS_ADMIN, say); any other failure fails t.
func mountT(t *testing.T, source, dir, fstype, data string) {
	t.Helper()
	if err := unix.Mount(source, dir, fstype, 0, data); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			t.Skipf("cannot mount %s here: %v", fstype, err)
		}
		t.Fatalf("mount -t %s %s %s: %v", fstype, source, dir, err)
	}
	t.Cleanup(func() { unmount(t, dir) })
}

// unmount unmounts dir, retrying while it is busy, and detaches it lazily as
// a last resort so that no mount outlives the test.
func unmount(t *testing.T, dir string) {
	t.Helper()
	var err error
	for range 50 {
		if err = unix.Unmount(dir, 0); err == nil || errors.Is(err, unix.EINVAL) {
			return // EINVAL: not mounted (any more)
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("umount %s: %v; detaching lazily", dir, err)
	unix.Unmount(dir, unix.MNT_DETACH)
}

// remount unmounts dir and mounts source there again (as a fresh mount: the
// file system's in-memory state is dropped, what is on the device stays).
func remount(t *testing.T, source, dir, fstype, data string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("umount %s: %v", dir, err)
	}
	if err := unix.Mount(source, dir, fstype, 0, data); err != nil {
		t.Fatalf("mount -t %s %s %s again: %v", fstype, source, dir, err)
	}
}

// fullImage creates a fully allocated (never sparse) image file of size
// bytes in a temporary directory on the test's disk.
func fullImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Skipf("cannot allocate a %d-byte image (need it fully allocated): %v", size, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < size {
		t.Fatalf("image has %d bytes allocated, want %d (it must not be sparse)", st.Blocks*512, size)
	}
	return p
}

// loopDevice attaches img to a free loop device with direct I/O and detaches
// it in t.Cleanup. It skips t when there is no losetup or no loop device.
func loopDevice(t *testing.T, img string) string {
	t.Helper()
	needRoot(t)
	needCmd(t, "losetup")
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	out, err := runCmd("losetup", "--find", "--show", "--direct-io=on", img)
	if err != nil {
		t.Skipf("losetup --find --show --direct-io=on: %v", err)
	}
	dev := strings.TrimSpace(out)
	t.Cleanup(func() {
		var err error
		for range 50 {
			if _, err = runCmd("losetup", "-d", dev); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("losetup -d %s: %v", dev, err)
	})
	return dev
}

// fsName names the file system dir is on (from statfs), for messages.
func fsName(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext2/3/4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.RAMFS_MAGIC:
		return "ramfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("magic %#x", st.Type)
}

// freeBytes is the space left on dir's file system for root.
func freeBytes(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bfree) * st.Bsize
}
