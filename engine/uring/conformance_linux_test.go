//go:build linux

package uring

import (
	"errors"
	"testing"

	"github.com/dwal-project/dwal/engine/enginetest"
	"github.com/dwal-project/dwal/engine/vfs"
)

// TestConformance runs the backend contract suite shared by every backend.
func TestConformance(t *testing.T) {
	if err := Probe(t.TempDir()); errors.Is(err, vfs.ErrUnsupported) {
		t.Skipf("io_uring backend unavailable: %v", err)
	}
	enginetest.Run(t, func(t *testing.T) vfs.FS {
		f, err := New(t.TempDir(), vfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}
