package errorfs_test

import (
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
	"github.com/dwal-project/dwal/engine/vfs/vfstest"
)

// TestConformance runs the backend contract suite over memfs through the
// wrapper, with no injector and with one that is asked about every op and
// never fires: the wrapper's own plumbing must keep the contract.
func TestConformance(t *testing.T) {
	t.Run("nil", func(t *testing.T) {
		vfstest.Run(t, func(t *testing.T) vfs.FS { return errorfs.New(memfs.New(4096), nil) })
	})
	t.Run("never-firing", func(t *testing.T) {
		vfstest.Run(t, func(t *testing.T) vfs.FS { return errorfs.New(memfs.New(4096), errorfs.OnIndex(-1)) })
	})
}
