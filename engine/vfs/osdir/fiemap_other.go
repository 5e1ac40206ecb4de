//go:build !linux

package osdir

import (
	"os"

	"errors"
)

// WrittenPrefix is supported on Linux only (FS_IOC_FIEMAP).
func WrittenPrefix(f *os.File) (written, size int64, err error) {
	return 0, 0, &os.PathError{Op: "fiemap", Path: f.Name(), Err: errors.ErrUnsupported}
}
