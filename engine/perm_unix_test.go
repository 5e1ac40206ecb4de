//go:build unix

package engine

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A directory the process may not write gives a clear permission error.
// Root bypasses permission bits, so as root the check runs in a child
// process of this test binary as user nobody.
func TestDirectoryWithoutPermission(t *testing.T) {
	if dir := os.Getenv("DWAL_TEST_NOPERM_DIR"); dir != "" {
		_, err := Open(Config{Dir: dir, Backend: BackendFallback})
		if err == nil || !errors.Is(err, fs.ErrPermission) {
			os.Stderr.WriteString("CHILD-FAIL: Open gave " + errString(err) + "\n")
			os.Exit(1)
		}
		os.Stderr.WriteString("CHILD-OK: " + err.Error() + "\n")
		os.Exit(0)
	}
	base, err := os.MkdirTemp("", "dwal-perm-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	wal := filepath.Join(base, "wal")
	if err := os.Mkdir(wal, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		os.Chmod(wal, 0)
		defer os.Chmod(wal, 0o700)
		_, err := Open(Config{Dir: wal, Backend: BackendFallback})
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("Open: %v, want a permission error", err)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "engine.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestDirectoryWithoutPermission$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DWAL_TEST_NOPERM_DIR="+wal, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CHILD-OK") {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "permission denied") {
		t.Fatalf("error does not say why: %s", out)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
