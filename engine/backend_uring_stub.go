package engine

import (
	"fmt"

	"dwal/engine/vfs"
)

// newUring opens the io_uring backend (replaced once engine/uring lands).
func newUring(dir string, opts vfs.Options) (vfs.FS, error) {
	return nil, fmt.Errorf("%w: io_uring backend not built yet", vfs.ErrUnsupported)
}
