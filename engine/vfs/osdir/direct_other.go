//go:build !linux

package osdir

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/dwal-project/dwal/engine/vfs"
)

// OpenDirect always fails here with a *os.PathError wrapping
// vfs.ErrUnsupported: dwal uses O_DIRECT on Linux only.
func OpenDirect(path string, flag int, perm fs.FileMode) (*os.File, error) {
	return nil, &os.PathError{Op: "open O_DIRECT", Path: path,
		Err: fmt.Errorf("%w: O_DIRECT is used on Linux only (GOOS=%s)", vfs.ErrUnsupported, runtime.GOOS)}
}
