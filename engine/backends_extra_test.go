package engine

import (
	"testing"

	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// extraBackends adds the backends beyond the fallback: io_uring when this
// machine runs it, memfs, and errorfs(memfs) with no faults.
func extraBackends(t *testing.T) []backend {
	bs := uringBackends(t)
	bs = append(bs,
		backend{name: "memfs", config: func(t *testing.T) Config {
			c := DefaultConfig("memfs")
			c.FS = memfs.New(4096)
			c.SegmentSize = 1 << 20 // memory, not disk: keep it small
			return c
		}},
		backend{name: "errorfs(memfs)", config: func(t *testing.T) Config {
			c := DefaultConfig("errorfs")
			c.FS = errorfs.New(memfs.New(4096), nil)
			c.SegmentSize = 1 << 20
			return c
		}},
	)
	return bs
}
