package fallback_test

import (
	"testing"

	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/vfstest"
)

func newFallback(t *testing.T) vfs.FS {
	f, err := fallback.New(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConformance runs the backend contract suite shared by every backend.
func TestConformance(t *testing.T) { vfstest.Run(t, newFallback) }

// TestConformanceUnderErrorFS runs it through the fault-injection wrapper
// with an injector that never fires: the wrapper's plumbing over a real
// disk must keep the contract too.
func TestConformanceUnderErrorFS(t *testing.T) {
	vfstest.Run(t, func(t *testing.T) vfs.FS {
		return errorfs.New(newFallback(t), errorfs.Randomly(0, 1))
	})
}
