package memfs_test

import (
	"fmt"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
	"github.com/dwal-project/dwal/engine/vfs/vfstest"
)

// TestConformance runs the backend contract suite shared by every backend,
// at the smallest and the usual alignment.
func TestConformance(t *testing.T) {
	for _, align := range []int{512, 4096} {
		t.Run(fmt.Sprint(align), func(t *testing.T) {
			vfstest.Run(t, func(t *testing.T) vfs.FS {
				m := memfs.New(align)
				t.Cleanup(func() {
					if open := m.OpenFiles(); len(open) > 0 {
						t.Errorf("files left open: %q", open)
					}
				})
				return m
			})
		})
	}
}
