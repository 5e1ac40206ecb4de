//go:build !linux

package uring

import (
	"fmt"
	"runtime"

	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/vfs"
)

// FS is the io_uring backend; it cannot be constructed on this system.
type FS struct{ *fallback.FS }

// New always fails here, wrapping vfs.ErrUnsupported: io_uring is Linux's.
func New(dir string, opts vfs.Options) (*FS, error) { return nil, unsupported() }

// Probe always fails here, wrapping vfs.ErrUnsupported.
func Probe(dir string) error { return unsupported() }

func unsupported() error {
	return fmt.Errorf("%w: io_uring is Linux only (GOOS=%s)", vfs.ErrUnsupported, runtime.GOOS)
}
