//go:build linux

package uring

import (
	"errors"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/vfstest"
)

// TestConformance runs the backend contract suite shared by every backend.
func TestConformance(t *testing.T) {
	if err := Probe(t.TempDir()); errors.Is(err, vfs.ErrUnsupported) {
		t.Skipf("io_uring backend unavailable: %v", err)
	}
	vfstest.Run(t, func(t *testing.T) vfs.FS {
		f, err := New(t.TempDir(), vfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}
