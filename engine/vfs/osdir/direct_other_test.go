//go:build !linux

package osdir_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

// Off Linux OpenDirect is refused, wrapping vfs.ErrUnsupported, and creates
// nothing.
func TestOpenDirectUnsupported(t *testing.T) {
	dir := t.TempDir()
	f, err := osdir.OpenDirect(filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if !errors.Is(err, vfs.ErrUnsupported) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("OpenDirect: %v, want vfs.ErrUnsupported", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("a refused OpenDirect left %v", got)
	}
}
